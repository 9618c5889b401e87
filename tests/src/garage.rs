//! A real S3-compatible object store for the tests: Garage (<https://garagehq.deuxfleurs.fr>),
//! one node or a cluster of several, on free loopback ports, with its metadata and data in
//! a temporary directory, a generated access key and one bucket the key may read and
//! write. Every node is a child process stopped by its PID (on drop, or by
//! [`Garage::stop_node`] to test a failure).
//!
//! The binary is `$AMSU_GARAGE_BIN`, else `garage` on `PATH`, else the one
//! `../shared/tools/garage.sh` (beside the repository) prints. Without one the tests fail
//! loudly; `scripts/deps.sh` installs it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amsu_core::Secret;
use amsu_transfer::{S3Config, S3Credentials, S3Transport};

use crate::ftpd::free_port;

/// The Garage binary to run (see the module documentation). Panics with instructions when
/// there is none.
pub fn garage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AMSU_GARAGE_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.exists(), "AMSU_GARAGE_BIN={} does not exist", p.display());
        return p;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("garage");
            if p.is_file() {
                return p;
            }
        }
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf();
    let script = repo.join("../shared/tools/garage.sh");
    if script.exists() {
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.exists() {
            return p;
        }
    }
    panic!(
        "Garage is required by the S3 tests and was not found: run scripts/deps.sh, or put \
         `garage` on PATH, or set AMSU_GARAGE_BIN (`cargo install garage --locked --version 2.5.0`)"
    );
}

struct Node {
    child: std::sync::Mutex<Option<Child>>,
    config: PathBuf,
    rpc_port: u16,
    s3_port: u16,
}

/// A running Garage cluster with one bucket and one key.
pub struct Garage {
    bin: PathBuf,
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
    /// The bucket.
    pub bucket: String,
    /// The access key id.
    pub key_id: String,
    /// The secret access key.
    pub secret: Secret,
    /// The S3 region the cluster answers to.
    pub region: String,
}

impl std::fmt::Debug for Garage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garage")
            .field("nodes", &self.nodes.len())
            .field("bucket", &self.bucket)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Garage {
    /// A one-node cluster (replication factor 1).
    pub fn single() -> Garage {
        Garage::start(1)
    }

    /// A cluster of `n` nodes in one zone; with 3 nodes or more the replication factor
    /// is 3, so that a write quorum (2 of 3) survives a stopped node.
    pub fn start(n: usize) -> Garage {
        let bin = garage_bin();
        let dir = tempfile::Builder::new()
            .prefix("amsu-garage-")
            .tempdir()
            .expect("temp dir");
        let rf = if n >= 3 { 3 } else { 1 };
        let rpc_secret = hex_bytes(32);
        let region = "garage".to_string();
        let mut nodes = Vec::new();
        for i in 0..n {
            let (rpc_port, s3_port) = (free_port(), free_port());
            let base = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&base).unwrap();
            let config = base.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{meta}\"\n\
                     data_dir = \"{data}\"\n\
                     db_engine = \"sqlite\"\n\
                     replication_factor = {rf}\n\
                     rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                     rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                     rpc_secret = \"{rpc_secret}\"\n\
                     [s3_api]\n\
                     s3_region = \"{region}\"\n\
                     api_bind_addr = \"127.0.0.1:{s3_port}\"\n\
                     root_domain = \".s3.garage.localhost\"\n",
                    meta = base.join("meta").display(),
                    data = base.join("data").display(),
                ),
            )
            .unwrap();
            nodes.push(Node {
                child: std::sync::Mutex::new(None),
                config,
                rpc_port,
                s3_port,
            });
        }
        let mut g = Garage {
            bin,
            nodes,
            dir,
            bucket: "amsu-images".into(),
            key_id: String::new(),
            secret: Secret::default(),
            region,
        };
        for i in 0..n {
            g.spawn(i);
        }
        for node in &g.nodes {
            wait_port(node.rpc_port, "garage RPC");
            wait_port(node.s3_port, "garage S3 API");
        }
        // Connect the nodes, then give each a role.
        let ids: Vec<String> = (0..n)
            .map(|i| g.cli(i, &["node", "id", "-q"]).trim().to_string())
            .collect();
        for id in ids.iter().skip(1) {
            g.cli(0, &["node", "connect", id]);
        }
        for id in &ids {
            let short = id.split('@').next().unwrap();
            g.cli(0, &["layout", "assign", "-z", "dc1", "-c", "1G", short]);
        }
        g.cli(0, &["layout", "apply", "--version", "1"]);
        let out = g.cli(0, &["key", "create", "amsu-test"]);
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no {name} in `garage key create` output"))
        };
        g.key_id = field("Key ID:");
        g.secret = Secret::new(field("Secret key:"));
        let bucket = g.bucket.clone();
        g.cli(0, &["bucket", "create", &bucket]);
        g.cli(
            0,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                &bucket,
                "--key",
                "amsu-test",
            ],
        );
        g.wait_ready();
        g
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        let log = std::fs::File::create(node.config.with_file_name("garage.log")).unwrap();
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        *node.child.lock().unwrap() = Some(child);
    }

    /// Runs the Garage CLI against node `i`, returning its standard output.
    pub fn cli(&self, i: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new(&self.bin)
                .arg("-c")
                .arg(&self.nodes[i].config)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("cannot run garage {args:?}: {e}"));
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            // Just after start the nodes may not see each other yet.
            assert!(
                Instant::now() < deadline,
                "garage {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits until the bucket answers through every node's S3 API.
    fn wait_ready(&self) {
        // On a thread of its own: the caller may be inside a runtime.
        std::thread::scope(|s| {
            s.spawn(|| self.wait_ready_blocking())
                .join()
                .expect("garage readiness check")
        });
    }

    fn wait_ready_blocking(&self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for i in 0..self.nodes.len() {
            let t = self.transport(i, "ready-probe");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let r = rt.block_on(amsu_core::Transport::list(&t, ""));
                match r {
                    Ok(_) => break,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "garage node {i} not ready: {e}");
                        std::thread::sleep(Duration::from_millis(300));
                    }
                }
            }
        }
    }

    /// The S3 endpoint of node `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    /// `s3://BUCKET/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// A credentials file (AWS shared-credentials format, mode 0600) holding the key.
    pub fn credentials_file(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join("credentials");
        std::fs::write(
            &p,
            format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                self.key_id,
                self.secret.expose()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// A transport to `s3://BUCKET/prefix` through node `i`.
    pub fn transport(&self, i: usize, prefix: &str) -> S3Transport {
        let c = S3Config::from_url(&self.url(prefix))
            .unwrap()
            .endpoint(Some(self.endpoint(i)))
            .region(Some(self.region.clone()))
            .path_style(true)
            .credentials(S3Credentials::new(&self.key_id, self.secret.clone()));
        S3Transport::new(c).unwrap()
    }

    /// The directory holding node `i`'s data blocks.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].config.with_file_name("data")
    }

    /// Stops node `i` (SIGKILL, by its PID) and waits for it to exit.
    pub fn stop_node(&self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for n in &self.nodes {
            if let Some(mut c) = n.child.lock().unwrap().take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn hex_bytes(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("random bytes");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
