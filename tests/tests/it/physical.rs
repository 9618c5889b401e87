//! `--method physical` on real MariaDB servers: mariadb-backup of a live master, prepare,
//! data directory swap on a sandbox replica, replication from the backup's coordinates.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amsu_backup::{
    backup_image, PhysicalCopy, PhysicalError, PhysicalOptions, PhysicalSource, ReplicaLeft,
    ReplicaService, SandboxService,
};
use amsu_core::{
    BoxError, DataCopier, Event, EventSink, RemoteEntry, Secret, ServerAddr, Setup, SetupOptions,
    Transport,
};
use amsu_mysql::{MysqlMaster, MysqlReplica};
use amsu_tests::servers::{
    checksums, create_bank, exec, pair, query, scalar, wait_caught_up, Pair, Writer, BANK_TOTAL,
};
use amsu_transfer::{LocalTransport, RetryPolicy};
use async_trait::async_trait;

/// The backup user's password: quotes and a backslash test the option-file escaping.
const BACKUP_PASSWORD: &str = "Bk\"pw\\7x-s3cr3t'Q";

fn no_events() -> Arc<dyn EventSink> {
    Arc::new(|_: &Event| {})
}

/// A master user with just what mariadb-backup needs, and a password.
async fn backup_user(master: &ServerAddr) -> ServerAddr {
    exec(
        master,
        &[
            &format!(
                "CREATE USER amsu_bk@'127.0.0.1' IDENTIFIED BY '{}'",
                BACKUP_PASSWORD.replace('\\', "\\\\").replace('\'', "\\'")
            ),
            "GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO amsu_bk@'127.0.0.1'",
        ],
    )
    .await;
    master
        .clone()
        .user("amsu_bk")
        .password(Some(Secret::new(BACKUP_PASSWORD)))
}

async fn shop(master: &ServerAddr) {
    exec(
        master,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(50), note TEXT) ENGINE=InnoDB",
            "INSERT INTO shop.items SELECT seq, CONCAT('item ', seq), REPEAT('x', seq % 300) FROM shop.seq_1_to_40000",
            "CREATE TABLE shop.conf (k VARCHAR(20) PRIMARY KEY, v TEXT) ENGINE=Aria",
            "INSERT INTO shop.conf VALUES ('a', 'one'), ('b', NULL)",
        ],
    )
    .await;
}

/// A physical copy from the image in `dir` of `transport` into the sandbox `replica`,
/// which it stops and starts; `opts` adjusts the options (its data directory is set).
fn image_copy(
    m: &ServerAddr,
    r: &ServerAddr,
    replica: amsu_mysql::sandbox::Sandbox,
    transport: Arc<dyn Transport>,
    dir: &str,
    opts: impl FnOnce(PhysicalOptions) -> PhysicalOptions,
) -> (PhysicalCopy, Arc<SandboxService>) {
    let datadir = replica.datadir().to_path_buf();
    let service = Arc::new(SandboxService::new(replica));
    let copy = PhysicalCopy::new(
        m.clone(),
        r.clone(),
        PhysicalSource::Image {
            transport,
            dir: dir.into(),
        },
        service.clone(),
        opts(PhysicalOptions::default().datadir(&datadir)),
    );
    (copy, service)
}

/// Command lines of every process now running that mention mariadb-backup.
fn backup_cmdlines() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            if c.windows(14).any(|w| w == b"mariadb-backup") {
                out.push(c);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Everything named `DATADIR.amsu-…` next to the data directory.
fn leftovers(datadir: &Path, kind: &str) -> Vec<PathBuf> {
    let name = datadir.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(datadir.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.amsu-{kind}"))
        })
        .collect()
}

/// A full `Setup` with the physical method under a write load: the replica (same
/// server_id as the master, so the orchestrator changes it before the copy) ends up equal
/// to the master, keeps its own server_id across the data directory swap, replicates
/// later writes, and no process ever had the backup password on its command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn physical_setup_under_write_load_yields_equal_replica() {
    let Pair {
        master,
        replica,
        dir: _dir,
    } = pair(|o| o, |o| o.server_id(1)).await;
    let (m, r) = (master.addr(), replica.addr());
    create_bank(&m, "bank", 2000).await;
    shop(&m).await;
    let bk = backup_user(&m).await;
    let datadir = replica.datadir().to_path_buf();
    let service = Arc::new(SandboxService::new(replica));

    let writer = Writer::start(m.clone(), "bank", 2000);
    writer.wait_commits(20).await;

    // Watch every process's command line while the setup runs.
    let seen = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, stop) = (seen.clone(), stop_watch.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                seen.lock().unwrap().extend(backup_cmdlines());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let copy = PhysicalCopy::new(
        bk,
        r.clone(),
        PhysicalSource::Local,
        service.clone(),
        PhysicalOptions::default().datadir(&datadir),
    );
    let (mm, rr) = (MysqlMaster::new(m.clone()), MysqlReplica::new(r.clone()));
    let opts = SetupOptions::new("127.0.0.1", m.port)
        .wait_caught_up(true)
        .replica_id(format!("127.0.0.1:{}", r.port));
    let events = Arc::new(Mutex::new(Vec::<Event>::new()));
    let sink: Arc<dyn EventSink> = {
        let events = events.clone();
        Arc::new(move |e: &Event| events.lock().unwrap().push(e.clone()))
    };
    let report = Setup::new(&mm, &rr, &copy, opts)
        .with_preflight(&copy)
        .run(sink)
        .await
        .unwrap_or_else(|e| panic!("physical setup failed: {e}"));
    stop_watch.store(true, Ordering::Relaxed);
    watcher.await.unwrap();

    let during = writer.commits();
    writer.wait_commits(during + 50).await;
    writer.stop().await;
    wait_caught_up(&m, &r).await;

    // Equal data, a consistent bank, replication running.
    assert_eq!(checksums(&m).await, checksums(&r).await);
    assert_eq!(
        scalar(&r, "SELECT SUM(balance) FROM bank.accounts").await,
        Some(BANK_TOTAL.to_string())
    );
    let st = query(&r, "SHOW SLAVE STATUS").await;
    assert_eq!(st.len(), 1, "one replication connection");
    let copy_report = &report.copy;
    let coords = copy_report.coordinates.as_ref().expect("coordinates");
    assert!(coords.file.starts_with("mariadb-bin."), "{coords}");
    assert!(coords.gtid.is_some(), "{coords}");
    assert!(copy_report.tables >= 4, "{copy_report:?}");

    // The orchestrator's server_id and read_only survived the restart.
    let id = scalar(&r, "SELECT @@global.server_id").await.unwrap();
    assert!(id != "1" && id != "0", "replica server_id {id}");
    assert_eq!(
        scalar(&r, "SELECT @@global.read_only").await.as_deref(),
        Some("1")
    );
    // The GTID position started at the snapshot's and moved on with replication.
    let seq = |g: &str| g.rsplit('-').next().unwrap().parse::<u64>().unwrap();
    let slave_pos = scalar(&r, "SELECT @@global.gtid_slave_pos").await.unwrap();
    let snapshot = coords.gtid.clone().unwrap();
    assert!(slave_pos.starts_with("0-1-"), "{slave_pos}");
    assert!(
        seq(&slave_pos) >= seq(&snapshot),
        "{slave_pos} vs {snapshot}"
    );

    // Later writes replicate.
    exec(&m, &["INSERT INTO shop.conf VALUES ('later', 'x')"]).await;
    wait_caught_up(&m, &r).await;
    assert_eq!(
        scalar(&r, "SELECT v FROM shop.conf WHERE k = 'later'")
            .await
            .as_deref(),
        Some("x")
    );

    // The password was never on a command line, though mariadb-backup was seen running.
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "the watcher saw mariadb-backup running");
    for c in seen.iter() {
        assert!(
            !contains(c, BACKUP_PASSWORD) && !contains(c, "s3cr3t"),
            "password on a command line: {}",
            String::from_utf8_lossy(c)
        );
    }
    assert!(
        seen.iter()
            .any(|c| contains(c, "--backup") && contains(c, "--defaults-file=")),
        "mariadb-backup --backup was seen, with its option file"
    );
    // Nor in the logs or anything left in the work directory.
    let work = datadir.with_file_name(format!(
        "{}.amsu-work",
        datadir.file_name().unwrap().to_string_lossy()
    ));
    for e in std::fs::read_dir(&work).unwrap().flatten() {
        if e.path().is_file() {
            let text = std::fs::read(e.path()).unwrap();
            assert!(!contains(&text, "s3cr3t"), "{}", e.path().display());
        }
    }
    assert!(
        !work.join("backup.cnf").exists(),
        "the option file is removed"
    );

    // The old data directory is gone once the new one runs; the master's identity and
    // replication metadata were not carried over.
    assert!(leftovers(&datadir, "old").is_empty());
    assert!(!datadir.join("auto.cnf").exists());
    let blocked = events
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            Event::CommitBlocked { millis } => Some(*millis),
            _ => None,
        })
        .expect("a CommitBlocked event");
    assert_eq!(blocked, copy_report.commit_blocked_ms);
    assert!(blocked > 0.0 && blocked < 30_000.0, "{blocked} ms");
    let t = copy.last_timings().expect("timings");
    eprintln!(
        "physical copy: backup {} ms, prepare {} ms, install {} ms, {} MiB, master commits blocked {:.1} ms",
        t.backup_ms,
        t.prepare_ms,
        t.install_ms,
        t.image_bytes >> 20,
        blocked
    );
    drop(copy);
    drop(master);
    drop(service);
}

/// A sandbox whose next start fails once (as a service manager would report a server
/// that did not come up), without starting it.
struct FailingStart {
    inner: SandboxService,
    fail_next: AtomicBool,
    starts: Mutex<u32>,
}

#[async_trait]
impl ReplicaService for FailingStart {
    fn describe(&self) -> String {
        "test sandbox with a failing start".into()
    }
    async fn stop(&self) -> Result<(), BoxError> {
        self.inner.stop().await
    }
    async fn start(&self) -> Result<(), BoxError> {
        *self.starts.lock().unwrap() += 1;
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err("injected: the server did not come up".into());
        }
        self.inner.start().await
    }
}

/// The new data directory does not start: it is moved aside for inspection, the old one
/// is put back and started, and the error says so. A rerun then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_start_after_swap_puts_old_datadir_back() {
    let Pair {
        master,
        replica,
        dir: _dir,
    } = pair(|o| o, |o| o).await;
    let (m, r) = (master.addr(), replica.addr());
    shop(&m).await;
    exec(
        &r,
        &[
            "CREATE DATABASE replica_own",
            "CREATE TABLE replica_own.t (id INT PRIMARY KEY) ENGINE=InnoDB",
            "INSERT INTO replica_own.t VALUES (42)",
        ],
    )
    .await;
    let datadir = replica.datadir().to_path_buf();
    let service = Arc::new(FailingStart {
        inner: SandboxService::new(replica),
        fail_next: AtomicBool::new(true),
        starts: Mutex::new(0),
    });
    let copy = PhysicalCopy::new(
        m.clone(),
        r.clone(),
        PhysicalSource::Local,
        service.clone(),
        PhysicalOptions::default().datadir(&datadir),
    );
    let err = copy.copy(no_events()).await.expect_err("the start fails");
    let msg = err.to_string();
    let failed_dir = match err.downcast_ref::<PhysicalError>() {
        Some(PhysicalError::Install {
            left: ReplicaLeft::RolledBack { failed_dir },
            ..
        }) => failed_dir.clone(),
        other => panic!("expected a rolled-back install, got {other:?}: {msg}"),
    };
    assert!(
        msg.contains("did not start on the new data directory"),
        "{msg}"
    );
    assert!(msg.contains("injected"), "{msg}");
    assert!(msg.contains("old data directory was put back"), "{msg}");
    assert_eq!(
        *service.starts.lock().unwrap(),
        2,
        "failed start, then the old one"
    );

    // The replica runs on its old data; the new data is kept for inspection.
    assert_eq!(
        scalar(&r, "SELECT id FROM replica_own.t").await.as_deref(),
        Some("42")
    );
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'"
        )
        .await
        .as_deref(),
        Some("0")
    );
    assert!(failed_dir.join("shop").is_dir(), "{}", failed_dir.display());
    assert!(leftovers(&datadir, "old").is_empty());

    // A rerun installs the master's data.
    let report = copy.copy(no_events()).await.expect("the rerun succeeds");
    assert!(report.coordinates.is_some());
    let tables: BTreeSet<String> = checksums(&r).await.into_keys().collect();
    assert!(tables.contains("shop.items"), "{tables:?}");
    assert!(!tables.contains("replica_own.t"), "{tables:?}");
    assert_eq!(checksums(&m).await, checksums(&r).await);
    drop(copy);
    drop(master);
    drop(service);
}

/// A local transport whose fetch of one file stops halfway once (a cut connection).
struct CutOnce {
    inner: LocalTransport,
    root: PathBuf,
    victim: String,
    armed: AtomicBool,
}

#[async_trait]
impl Transport for CutOnce {
    async fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>, BoxError> {
        self.inner.list(dir).await
    }
    async fn size(&self, path: &str) -> Result<Option<u64>, BoxError> {
        self.inner.size(path).await
    }
    async fn fetch(&self, path: &str, offset: u64, local: &Path) -> Result<u64, BoxError> {
        if path.ends_with(&self.victim) && self.armed.swap(false, Ordering::SeqCst) {
            let all = std::fs::read(self.root.join(path))?;
            let half = &all[offset as usize..all.len() / 2];
            use std::io::Write;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(local)?
                .write_all(half)?;
            return Err("connection cut by the test".into());
        }
        self.inner.fetch(path, offset, local).await
    }
    async fn put(&self, local: &Path, path: &str) -> Result<u64, BoxError> {
        self.inner.put(local, path).await
    }
    async fn delete(&self, path: &str) -> Result<(), BoxError> {
        self.inner.delete(path).await
    }
    async fn mkdir(&self, path: &str) -> Result<(), BoxError> {
        self.inner.mkdir(path).await
    }
}

/// An image made by `backup_image` (the library side of `amsu backup --method
/// physical`), fetched through a transport that is cut halfway through the largest file:
/// the replica is untouched, and a rerun resumes that file and installs the image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_transfer_cut_midway_resumes_on_rerun() {
    let Pair {
        master,
        replica,
        dir,
    } = pair(|o| o, |o| o).await;
    let (m, r) = (master.addr(), replica.addr());
    shop(&m).await;
    let images = dir.path().join("images");
    let image = backup_image(&m, &images.join("img1"), None)
        .await
        .expect("image made");
    assert_eq!(image.manifest.method, "physical");
    assert!(image.info.commit_blocked_ms.is_some());
    let victim = image
        .manifest
        .files
        .iter()
        .max_by_key(|f| f.size)
        .unwrap()
        .path
        .clone();

    let transport = Arc::new(CutOnce {
        inner: LocalTransport::new(&images),
        root: images.clone(),
        victim: victim.clone(),
        armed: AtomicBool::new(true),
    });
    let (copy, service) = image_copy(&m, &r, replica, transport.clone(), "img1", |o| {
        o.retry(RetryPolicy::none())
    });
    let err = copy
        .copy(no_events())
        .await
        .expect_err("the cut fails the copy");
    assert!(
        matches!(
            err.downcast_ref::<PhysicalError>(),
            Some(PhysicalError::Transfer(_))
        ),
        "{err}"
    );
    // Untouched replica.
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'"
        )
        .await
        .as_deref(),
        Some("0")
    );

    let report = copy.copy(no_events()).await.expect("the rerun succeeds");
    let t = copy.last_timings().unwrap();
    assert!(t.files_resumed >= 1, "{t:?} (victim {victim})");
    assert_eq!(
        report.coordinates.as_ref(),
        Some(&image.manifest.coordinates)
    );
    assert_eq!(checksums(&m).await, checksums(&r).await);
    drop(copy);
    drop(master);
    drop(service);
}

/// The command line: `amsu backup --method physical` writes an image with a manifest;
/// `amsu setup --method physical` needs a way to restart the replica, runs the physical
/// preflight in a dry run, and refuses a data directory that is not the replica's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_physical_backup_and_checks() {
    use amsu_tests::servers::amsu;
    let p = pair(|o| o, |o| o).await;
    shop(&p.master.addr()).await;
    let (m, r) = (p.master.url(), p.replica.url());
    let out = p.dir.path().join("cli-image");
    let out_s = out.to_string_lossy().into_owned();
    let code = amsu(&[
        "backup", "--method", "physical", "--master", &m, "--out", &out_s,
    ])
    .await;
    assert_eq!(code, 0);
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"method\": \"physical\""), "{manifest}");
    assert!(out.join("xtrabackup_binlog_info").is_file());

    let base = [
        "setup",
        "--method",
        "physical",
        "--master",
        &m,
        "--replica",
        &r,
    ];
    let no_service = [&base[..], &["--yes"]].concat();
    assert_eq!(amsu(&no_service).await, 2, "no way to restart the replica");
    let dry = [
        &base[..],
        &[
            "--dry-run",
            "--replica-stop-command",
            "false",
            "--replica-start-command",
            "false",
        ],
    ]
    .concat();
    assert_eq!(amsu(&dry).await, 0, "the physical preflight passes");
    let wrong_dir = p.dir.path().join("master/data");
    let wrong_dir = wrong_dir.to_string_lossy().into_owned();
    let wrong = [&dry[..], &["--replica-datadir", &wrong_dir]].concat();
    assert_eq!(amsu(&wrong).await, 3, "not the replica's datadir: refused");
    assert_eq!(
        scalar(
            &p.replica.addr(),
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'"
        )
        .await
        .as_deref(),
        Some("0"),
        "nothing was changed"
    );
}

/// The backup comes from a command's standard output (`mariadb-backup --stream=mbstream`,
/// as it would over ssh), unpacked with mbstream; the commit-blocked time is read from the
/// command's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_stream_source_installs_master_data() {
    let Pair {
        master,
        replica,
        dir,
    } = pair(|o| o, |o| o).await;
    let (m, r) = (master.addr(), replica.addr());
    shop(&m).await;
    let datadir = replica.datadir().to_path_buf();
    let service = Arc::new(SandboxService::new(replica));
    let tmp = dir.path().join("stream-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let command = format!(
        "mariadb-backup --no-defaults --backup --stream=mbstream --target-dir={} --host=127.0.0.1 --port={} --user=root",
        tmp.display(),
        m.port
    );
    let copy = PhysicalCopy::new(
        m.clone(),
        r.clone(),
        PhysicalSource::Command(command),
        service.clone(),
        PhysicalOptions::default().datadir(&datadir),
    );
    let report = copy.copy(no_events()).await.expect("stream copy");
    assert!(report.coordinates.is_some());
    assert!(report.commit_blocked_ms > 0.0, "{report:?}");
    assert_eq!(checksums(&m).await, checksums(&r).await);
    drop(copy);
    drop(master);
    drop(service);
}

/// The replication user's password, shared by the setups of one test.
const REPL_PASSWORD: &str = "Repl-pw-1234";

/// The FTP password in a file, for `--ftp-password-file`.
fn ftp_password_file(dir: &Path, ftp: &amsu_tests::ftpd::FtpServer) -> String {
    let f = dir.join("ftp-password");
    std::fs::write(&f, format!("{}\n", ftp.password.expose())).unwrap();
    f.display().to_string()
}

/// Checks the image in `dir` (as the FTP server stores it) against its manifest: every
/// file there with its size and SHA-256. Returns the manifest.
async fn assert_image_complete(dir: &Path) -> amsu_core::manifest::Manifest {
    let text = std::fs::read_to_string(dir.join(amsu_core::manifest::MANIFEST_FILE))
        .unwrap_or_else(|e| panic!("no manifest in {}: {e}", dir.display()));
    let manifest = amsu_core::manifest::Manifest::from_json(&text).expect("a valid manifest");
    assert_eq!(manifest.method, "physical");
    assert!(
        manifest
            .files
            .iter()
            .any(|f| f.path == "xtrabackup_binlog_info"),
        "{:?}",
        manifest.files
    );
    for f in &manifest.files {
        let p = dir.join(&f.path);
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .len();
        assert_eq!(len, f.size, "{}", f.path);
        let sum = amsu_transfer::sha256_file(&p).await.unwrap();
        assert_eq!(sum, f.sha256, "{}", f.path);
    }
    manifest
}

/// A single-quoted shell word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Stops, by the PID in its pid file, a sandbox server that a start command of
/// [`shell_service`] ran outside this process's children.
pub(crate) struct RestartedServer {
    pid_file: PathBuf,
    /// The sandbox's own child, which its `Sandbox` handle stops and reaps.
    original_pid: u32,
}

impl Drop for RestartedServer {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        else {
            return;
        };
        if pid as u32 == self.original_pid {
            return;
        }
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let gone = || {
            std::fs::read_to_string(proc_dir.join("stat"))
                .map(|st| st.contains(") Z"))
                .unwrap_or(true)
        };
        let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !gone() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !gone() {
            let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// `--replica-stop-command` and `--replica-start-command` for a running sandbox, as a
/// service manager would provide them: the stop command sends SIGTERM to the PID in the
/// pid file and returns once the server has exited (a zombie child of this test process
/// counts); the start command runs the server's own command line again (read from /proc,
/// with `--skip-slave-start`), detached. The guard stops a server started that way.
pub(crate) fn shell_service(
    sandbox: &amsu_mysql::sandbox::Sandbox,
) -> (String, String, RestartedServer) {
    let pid = sandbox.pid();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the server's cmdline");
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect();
    let pid_file = args
        .iter()
        .find_map(|a| a.strip_prefix("--pid-file="))
        .map(PathBuf::from)
        .expect("a --pid-file option");
    let pf = sh_quote(&pid_file.display().to_string());
    let stop = format!(
        "P=$(cat {pf}) && kill -TERM \"$P\" && i=0 && \
         while [ -e {pf} ] || {{ [ -e /proc/$P ] && ! grep -q ') Z' /proc/$P/stat; }}; do \
         i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done"
    );
    let words: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
    let dir = sandbox.dir().display().to_string();
    let start = format!(
        "cd {} && setsid {} --skip-slave-start </dev/null >>{} 2>&1 &",
        sh_quote(&dir),
        words.join(" "),
        sh_quote(&format!("{dir}/restarted.out"))
    );
    (
        stop,
        start,
        RestartedServer {
            pid_file,
            original_pid: pid,
        },
    )
}

/// `amsu backup --method physical --out ftps://…` of a master under a write load uploads
/// the image to a real pure-ftpd that requires TLS. Two replicas are installed from it
/// while the writes go on: one by a physical `Setup` of the library (the test sandbox as
/// its `SandboxService`), one by `amsu setup --method physical --image ftps://…` with
/// shell stop/start commands. Both replicate, catch up and equal the master, with the
/// bank total intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn physical_image_over_ftps_yields_equal_replica() {
    use amsu_tests::ftpd::{FtpServer, FtpTls};
    use amsu_tests::servers::amsu;
    use amsu_transfer::{FtpConfig, FtpTransport};

    let ftp = FtpServer::start(FtpTls::Required);
    let Pair {
        master,
        replica,
        dir,
    } = pair(|o| o, |o| o).await;
    let (m, r) = (master.addr(), replica.addr());
    create_bank(&m, "bank", 2000).await;
    shop(&m).await;
    let pw = ftp_password_file(dir.path(), &ftp);
    let ca = ftp.cert.clone().unwrap().display().to_string();
    let image_url = format!("{}nightly/pimg", ftp.url());
    assert!(image_url.starts_with("ftps://"), "{image_url}");

    let writer = Writer::start(m.clone(), "bank", 2000);
    writer.wait_commits(20).await;
    let code = amsu(&[
        "backup",
        "--method",
        "physical",
        "--master",
        &master.url(),
        "--out",
        &image_url,
        "--ftp-password-file",
        &pw,
        "--ftp-ca-file",
        &ca,
    ])
    .await;
    assert_eq!(code, 0, "physical backup to FTPS must succeed");
    let during_backup = writer.commits();

    // The image is on the FTP server, complete, in the URL's directory.
    let served = ftp.served.join("nightly/pimg");
    let manifest = assert_image_complete(&served).await;
    assert!(
        manifest.coordinates.gtid.is_some(),
        "{}",
        manifest.coordinates
    );
    let image_bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    assert!(image_bytes > 1 << 20, "{image_bytes} bytes");

    // Install it from the FTPS server while the writer goes on.
    writer.wait_commits(during_backup + 20).await;
    let config = FtpConfig::from_url(&image_url)
        .unwrap()
        .password(ftp.password.clone())
        .ca_file(ftp.cert.clone().unwrap())
        .connect_timeout(Duration::from_secs(5))
        .io_timeout(Duration::from_secs(20));
    let transport: Arc<dyn Transport> = Arc::new(FtpTransport::new(config).unwrap());
    let (copy, service) = image_copy(&m, &r, replica, transport, "", |o| o);
    let (mm, rr) = (MysqlMaster::new(m.clone()), MysqlReplica::new(r.clone()));
    let opts = SetupOptions::new("127.0.0.1", m.port)
        .wait_caught_up(true)
        .repl_password(Some(Secret::new(REPL_PASSWORD)))
        .replica_id(format!("127.0.0.1:{}", r.port));
    let report = Setup::new(&mm, &rr, &copy, opts)
        .with_preflight(&copy)
        .run(no_events())
        .await
        .unwrap_or_else(|e| panic!("physical setup from FTPS failed: {e}"));
    assert_eq!(
        report.copy.coordinates.as_ref(),
        Some(&manifest.coordinates),
        "replication starts at the image's snapshot"
    );
    let t = copy.last_timings().expect("timings");
    assert!(t.image_bytes > 0, "{t:?}");

    // A second replica from the same FTPS image, through the command line: `amsu setup
    // --method physical --image ftps://…`, the server restarted by shell commands.
    let r2sb = amsu_mysql::sandbox::Sandbox::deploy(
        amsu_mysql::sandbox::SandboxOptions::new("replica2")
            .base_dir(dir.path())
            .server_id(3),
    )
    .await
    .expect("a third sandbox");
    let r2 = r2sb.addr();
    let (stop, start, _restarted) = shell_service(&r2sb);
    let repl_pw = dir.path().join("repl-password");
    std::fs::write(&repl_pw, format!("{REPL_PASSWORD}\n")).unwrap();
    let repl_pw = repl_pw.display().to_string();
    let code = amsu(&[
        "setup",
        "--method",
        "physical",
        "--image",
        &image_url,
        "--ftp-password-file",
        &pw,
        "--ftp-ca-file",
        &ca,
        "--repl-password-file",
        &repl_pw,
        "--master",
        &master.url(),
        "--replica",
        &r2sb.url(),
        "--replica-stop-command",
        &stop,
        "--replica-start-command",
        &start,
        "--yes",
        "--wait-caught-up",
    ])
    .await;
    assert_eq!(
        code, 0,
        "amsu setup --method physical --image ftps://… must succeed"
    );
    assert_eq!(
        scalar(&r2, "SELECT @@global.server_id").await.as_deref(),
        Some("3"),
        "the second replica keeps its server_id"
    );

    // Replication runs, and both replicas end equal to the master.
    let during = writer.commits();
    writer.wait_commits(during + 50).await;
    writer.stop().await;
    wait_caught_up(&m, &r).await;
    assert_replicating(&r).await;
    wait_caught_up(&m, &r2).await;
    assert_replicating(&r2).await;
    assert_eq!(checksums(&m).await, checksums(&r2).await);
    assert_eq!(
        scalar(&r2, "SELECT SUM(balance) FROM bank.accounts").await,
        Some(BANK_TOTAL.to_string())
    );
    assert_eq!(checksums(&m).await, checksums(&r).await);
    assert_eq!(
        scalar(&r, "SELECT SUM(balance) FROM bank.accounts").await,
        Some(BANK_TOTAL.to_string())
    );
    // Transfers made after the snapshot arrived by replication.
    let transfers: u64 = scalar(&r, "SELECT COUNT(*) FROM bank.transfers")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(transfers > during_backup, "{transfers} transfers");
    drop(copy);
    drop(master);
    drop(service);
}

/// Both replication threads of `r` run, without an error.
async fn assert_replicating(r: &ServerAddr) {
    assert_eq!(
        query(r, "SHOW SLAVE STATUS").await.len(),
        1,
        "one replication connection"
    );
    let mut s = amsu_mysql::conn::Session::open(r).await.unwrap();
    let row = s
        .first_row("SHOW SLAVE STATUS", "status")
        .await
        .unwrap()
        .expect("a replica");
    let col = |name: &str| {
        amsu_mysql::conn::field(&row, name)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(col("Slave_IO_Running"), "Yes", "{}", col("Last_IO_Error"));
    assert_eq!(col("Slave_SQL_Running"), "Yes", "{}", col("Last_SQL_Error"));
}

/// Plain FTP, through a proxy that cuts the first data connection carrying more than
/// 1 MiB: `amsu backup --method physical --out ftp://…` (a separate process, with the
/// password in the URL, which its output never shows) uploads the image; the physical
/// copy fetches it through the proxy, resumes the cut file where it stopped, checks every
/// checksum and installs a replica equal to the master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn physical_image_fetch_over_ftp_resumes_after_a_cut() {
    use amsu_tests::ftpd::FtpServer;
    use amsu_tests::proxy::Proxy;
    use amsu_tests::servers::amsu_bin;
    use amsu_transfer::{FtpConfig, FtpTransport};

    let ftp = FtpServer::plain();
    let Pair {
        master,
        replica,
        dir: _dir,
    } = pair(|o| o, |o| o).await;
    let (m, r) = (master.addr(), replica.addr());
    shop(&m).await;

    let secret = ftp.password.expose().to_string();
    let with_password = format!("ftp://{}:{secret}@127.0.0.1:{}/pimg", ftp.user, ftp.port);
    let out = tokio::process::Command::new(amsu_bin())
        .args(["backup", "--method", "physical", "--master", &master.url()])
        .args(["--out", &with_password])
        .env_remove("AMSU_FTP_PASSWORD")
        .output()
        .await
        .expect("amsu runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !stdout.contains(&secret) && !stderr.contains(&secret),
        "the FTP password was printed: {stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!("ftp://{}@127.0.0.1:{}/pimg", ftp.user, ftp.port)),
        "{stdout}"
    );
    let manifest = assert_image_complete(&ftp.served.join("pimg")).await;
    let largest = manifest.files.iter().map(|f| f.size).max().unwrap();
    assert!(largest > 2 << 20, "largest file {largest} bytes");

    let proxy = Proxy::start_ftp(ftp.addr()).await;
    proxy.cut_first_over(1 << 20);
    let config = FtpConfig::from_url(&format!("ftp://{}@127.0.0.1:{}/pimg", ftp.user, proxy.port))
        .unwrap()
        .password(ftp.password.clone())
        .connect_timeout(Duration::from_secs(5))
        .io_timeout(Duration::from_secs(20));
    let transport: Arc<dyn Transport> = Arc::new(FtpTransport::new(config).unwrap());
    let (copy, service) = image_copy(&m, &r, replica, transport, "", |o| o);
    let report = copy
        .copy(no_events())
        .await
        .unwrap_or_else(|e| panic!("the copy must survive the cut: {e}"));
    assert_eq!(proxy.cuts(), 1, "one data connection was cut");
    let t = copy.last_timings().expect("timings");
    assert_eq!(t.files_resumed, 1, "{t:?}");
    assert!(
        proxy.downloads().len() > manifest.files.len(),
        "every file came through the proxy: {:?}",
        proxy.downloads()
    );
    assert_eq!(report.coordinates.as_ref(), Some(&manifest.coordinates));
    assert_eq!(checksums(&m).await, checksums(&r).await);
    drop(copy);
    drop(master);
    drop(service);
}
