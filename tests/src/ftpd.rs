//! A real FTP server for the tests: Debian's pure-ftpd, in the foreground, on a free
//! loopback port, with one virtual user and optional explicit TLS.
//!
//! The user's password is hashed with `openssl passwd -6` (pure-pw's default argon2 hash
//! costs seconds per login, and `pure-pw useradd` as long again); the passwd line is written in
//! the format `pure-pw useradd` produces and compiled with `pure-pw mkdb`. pure-ftpd refuses
//! uid 0 for virtual users, so the served directory belongs to [`FTP_UID`] with a default
//! ACL that keeps every file readable and writable by it. The server is stopped by PID on
//! drop.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amsu_core::Secret;
use amsu_transfer::{FtpConfig, FtpSecurity};

/// The uid and gid files of the virtual user belong to.
pub const FTP_UID: u32 = 2001;

/// Whether the server offers or requires explicit TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtpTls {
    /// Plain FTP only.
    Off,
    /// TLS offered, plain accepted (`-Y 1`).
    Optional,
    /// TLS required on control and data connections (`-Y 3`).
    Required,
}

/// A running pure-ftpd.
pub struct FtpServer {
    child: Child,
    dir: tempfile::TempDir,
    /// Its control port on 127.0.0.1.
    pub port: u16,
    /// The virtual user.
    pub user: String,
    /// Its password.
    pub password: Secret,
    /// The user's home (its FTP root `/`).
    pub served: PathBuf,
    /// The self-signed server certificate (PEM), when TLS is on; use it as the CA file.
    pub cert: Option<PathBuf>,
}

impl std::fmt::Debug for FtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpServer")
            .field("pid", &self.child.id())
            .field("port", &self.port)
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `openssl passwd -6` (SHA-512 crypt) of `password`, fed on standard input.
fn openssl_passwd(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{password}").expect("write password");
    drop(stdin);
    let out = child.wait_with_output().expect("openssl passwd");
    assert!(out.status.success(), "openssl passwd failed");
    String::from_utf8(out.stdout).expect("utf8 hash")
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl FtpServer {
    /// Starts a plain FTP server.
    pub fn plain() -> FtpServer {
        FtpServer::start(FtpTls::Off)
    }

    /// Starts a server that requires TLS.
    pub fn tls_required() -> FtpServer {
        FtpServer::start(FtpTls::Required)
    }

    /// Starts pure-ftpd and waits until it greets. Panics (with its output) when it cannot
    /// start: the tests need it, they never skip.
    pub fn start(tls: FtpTls) -> FtpServer {
        let bin = Path::new("/usr/sbin/pure-ftpd");
        assert!(
            bin.exists(),
            "pure-ftpd is not installed (apt-get install pure-ftpd)"
        );
        let dir = tempfile::Builder::new()
            .prefix("amsu-ftpd-")
            .tempdir()
            .expect("tempdir");
        let base = dir.path();
        run(Command::new("chmod").arg("0755").arg(base));
        let served = base.join("served");
        std::fs::create_dir(&served).expect("mkdir served");
        run(Command::new("chown")
            .arg(format!("{FTP_UID}:{FTP_UID}"))
            .arg(&served));
        let acl = format!("u:{FTP_UID}:rwX,g:{FTP_UID}:rwX,m::rwx");
        run(Command::new("setfacl").args(["-m", &acl]).arg(&served));
        run(Command::new("setfacl")
            .args(["-d", "-m", &format!("{acl},u::rwX,g::rwX,o::rX")])
            .arg(&served));

        let user = "amsu".to_string();
        let password = Secret::generate();
        let hash = openssl_passwd(password.expose());
        let passwd = base.join("pureftpd.passwd");
        std::fs::write(
            &passwd,
            format!(
                "{user}:{}:{FTP_UID}:{FTP_UID}::{}/./::::::::::::\n",
                hash.trim(),
                served.display()
            ),
        )
        .expect("write passwd");
        let pdb = base.join("pureftpd.pdb");
        run(Command::new("pure-pw")
            .arg("mkdb")
            .arg(&pdb)
            .arg("-f")
            .arg(&passwd));

        let cert = (tls != FtpTls::Off).then(|| {
            let cert = base.join("cert.pem");
            let key = base.join("key.pem");
            run(Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
                .args(["-subj", "/CN=127.0.0.1"])
                .args(["-addext", "subjectAltName=IP:127.0.0.1"])
                .args(["-addext", "basicConstraints=critical,CA:FALSE"])
                .args(["-addext", "keyUsage=critical,digitalSignature"])
                .args(["-addext", "extendedKeyUsage=serverAuth"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert));
            (cert, key)
        });

        // Passive ports below the kernel's ephemeral range (32768+), so they do not collide
        // with ports handed out for port 0; pure-ftpd tries another one of the range when
        // one is busy.
        let port = free_port();
        let pasv = 20000 + (port as u32 * 7919 + std::process::id()) % 12000;
        let mut cmd = Command::new(bin);
        cmd.arg("-S")
            .arg(format!("127.0.0.1,{port}"))
            .arg("-l")
            .arg(format!("puredb:{}", pdb.display()))
            .args(["-E", "-A", "-H", "-4", "-c", "64", "-C", "64", "-I", "5"])
            .arg("-p")
            .arg(format!("{pasv}:{}", pasv + 60))
            .args(["-P", "127.0.0.1"]);
        if let Some((cert, key)) = &cert {
            cmd.arg("-Y")
                .arg(if tls == FtpTls::Required { "3" } else { "1" })
                .arg("-2")
                .arg(format!("{},{}", cert.display(), key.display()));
        }
        let log = std::fs::File::create(base.join("pure-ftpd.log")).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start pure-ftpd");
        let mut server = FtpServer {
            child,
            port,
            user,
            password,
            served,
            cert: cert.map(|(c, _)| c),
            dir,
        };
        server.wait_ready();
        server
    }

    /// Waits until the server sends its `220` greeting.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "pure-ftpd exited with {status}: {}",
                    std::fs::read_to_string(self.dir.path().join("pure-ftpd.log"))
                        .unwrap_or_default()
                );
            }
            if let Ok(s) = TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)) {
                s.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("220") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "pure-ftpd did not start in 15 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The control address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `ftp://user@127.0.0.1:port/` (`ftps://` when TLS is on); no password.
    pub fn url(&self) -> String {
        let scheme = if self.cert.is_some() { "ftps" } else { "ftp" };
        format!("{scheme}://{}@127.0.0.1:{}/", self.user, self.port)
    }

    /// A client configuration: TLS with the generated certificate as CA file when TLS is on,
    /// the right password, short timeouts.
    pub fn config(&self) -> FtpConfig {
        let mut c = FtpConfig::from_url(&self.url())
            .expect("valid URL")
            .password(self.password.clone())
            .connect_timeout(Duration::from_secs(5))
            .io_timeout(Duration::from_secs(20));
        if let Some(cert) = &self.cert {
            c = c.security(FtpSecurity::ExplicitTls).ca_file(cert);
        }
        c
    }

    /// The PID of the pure-ftpd process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        // Our own child, by its PID.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
