//! Throwaway local MariaDB servers ("sandboxes") for tests, the demo and `amsu sandbox`.
//!
//! A sandbox is one directory, `BASE/NAME/`, holding everything the server owns:
//!
//! | path | what |
//! |---|---|
//! | `data/` | the data directory, created by `mariadb-install-db` |
//! | `binlog/mariadb-bin.*` | binary logs (when enabled) |
//! | `mysqld.sock`, `mariadbd.pid` | socket and pid file |
//! | `error.log` | the server's error log (its stdout and stderr go there too) |
//! | `install-db.log` | output of `mariadb-install-db` |
//! | `tmp/` | the server's `tmpdir` |
//! | `sandbox.json` | a [`SandboxInfo`]: how to find and stop a detached sandbox |
//!
//! The server runs with `--no-defaults` (no option file is read), listens on a free
//! loopback port and accepts `root` with an empty password both over TCP
//! (`mysql://root@127.0.0.1:PORT`) and over its socket. `mariadb-install-db` runs with
//! `--skip-test-db`, so there is no `test` database and there are no anonymous accounts
//! (which would otherwise shadow `user@'%'` accounts logging in from `localhost`).
//! Every sandbox has its own `tmpdir`: bootstraps sharing `/tmp` collide on temporary
//! table names now and then (`ERROR: 1051 Unknown table 'mysql.tmp_user_sys'`).
//!
//! A [`Sandbox`] stops its server when dropped, so a test never leaks one; [`Sandbox::keep`]
//! detaches it instead, and [`list`] / [`stop_by_name`] find and stop it later through its
//! `sandbox.json`. Processes are only ever signalled by their recorded PID, after checking
//! that the PID is still a `mariadbd` serving that very data directory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), amsu_mysql::sandbox::SandboxError> {
//! use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
//!
//! let master = Sandbox::deploy(
//!     SandboxOptions::new("master")
//!         .base_dir("/tmp/amsu-test")
//!         .server_id(1),
//! )
//! .await?;
//! println!("master listens at {}", master.url());
//! master.stop().await?;
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use amsu_core::ServerAddr;

use crate::programs;
use mysql_async::prelude::Queryable;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

mod error;
mod process;
mod registry;

use error::io_err;
pub use error::SandboxError;
use process::*;
use registry::write_manifest;
pub use registry::{list, stop_by_name};

/// The file in a sandbox's directory that describes it.
pub const MANIFEST_FILE: &str = "sandbox.json";
/// Environment variable that overrides [`default_base_dir`].
pub(crate) const SANDBOX_HOME_ENV: &str = "AMSU_SANDBOX_HOME";

const DATA_DIR: &str = "data";
const BINLOG_DIR: &str = "binlog";
const BINLOG_BASENAME: &str = "mariadb-bin";
const SOCKET_FILE: &str = "mysqld.sock";
const PID_FILE: &str = "mariadbd.pid";
const ERROR_LOG: &str = "error.log";
const INSTALL_LOG: &str = "install-db.log";
const TMP_DIR: &str = "tmp";

/// How many lines of a log an error carries.
const LOG_TAIL_LINES: usize = 30;
/// How long a clean shutdown may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for the process to vanish after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a condition (server up, process gone) is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long one connection attempt may take while waiting for the server.
const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many fresh ports to try when the chosen one turns out to be taken.
const PORT_ATTEMPTS: usize = 5;
/// Longest socket path a `sockaddr_un` holds on Linux (108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// How to deploy a sandbox. By-value setters; the defaults:
///
/// | setting | default |
/// |---|---|
/// | `base_dir` | [`default_base_dir`] (`$AMSU_SANDBOX_HOME` or `$HOME/.amsu/sandboxes`) |
/// | `server_id` | `1` |
/// | `log_bin` | on, files in `DIR/binlog/` |
/// | `binlog_format` | `ROW` |
/// | `extra_options` | none |
/// | `startup_timeout` | 60 s (for `mariadb-install-db`, and again for the server) |
/// | `detached` | off: the server shares the caller's process group |
/// | `bin_dir` | none: `$PATH`, then `/usr/sbin`, `/usr/bin`, `/usr/local/…` |
///
/// The server always gets small-memory settings (`--innodb-buffer-pool-size=128M`,
/// `--innodb-log-file-size=32M`) before the extra options, so extra options override them.
/// Do not override `--datadir`, `--port`, `--socket`, `--bind-address` or `--pid-file`:
/// the sandbox relies on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOptions {
    name: String,
    base_dir: PathBuf,
    server_id: u32,
    log_bin: bool,
    binlog_format: String,
    extra_options: Vec<String>,
    startup_timeout: Duration,
    detached: bool,
    bin_dir: Option<PathBuf>,
}

impl SandboxOptions {
    /// Options for a sandbox named `name` (letters, digits, `-`, `_`, `.`), with the defaults.
    pub fn new(name: impl Into<String>) -> Self {
        SandboxOptions {
            name: name.into(),
            base_dir: default_base_dir(),
            server_id: 1,
            log_bin: true,
            binlog_format: "ROW".into(),
            extra_options: Vec::new(),
            startup_timeout: Duration::from_secs(60),
            detached: false,
            bin_dir: None,
        }
    }

    /// Sets the name, which is also the name of the sandbox's directory.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the parent directory in which the sandbox's own directory is created.
    pub fn base_dir(mut self, base_dir: impl Into<PathBuf>) -> Self {
        self.base_dir = base_dir.into();
        self
    }

    /// Sets `server_id`.
    pub fn server_id(mut self, server_id: u32) -> Self {
        self.server_id = server_id;
        self
    }

    /// Turns the binary log on or off.
    pub fn log_bin(mut self, on: bool) -> Self {
        self.log_bin = on;
        self
    }

    /// Sets `binlog_format` (`ROW`, `MIXED` or `STATEMENT`).
    pub fn binlog_format(mut self, format: impl Into<String>) -> Self {
        self.binlog_format = format.into();
        self
    }

    /// Replaces the extra server options (`--option=value`, passed after the defaults).
    pub fn extra_options<I, S>(mut self, options: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_options = options.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one extra server option (`--option=value`).
    pub fn extra_option(mut self, option: impl Into<String>) -> Self {
        self.extra_options.push(option.into());
        self
    }

    /// Sets how long `mariadb-install-db`, and then the server start, may take.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Starts the server in its own process group, so that a Ctrl-C in the terminal that
    /// deployed it does not stop it. Meant for sandboxes that are [`Sandbox::keep`]t.
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    /// Looks for `mariadbd` and `mariadb-install-db` in this directory only.
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }
}

/// What `sandbox.json` records about a sandbox, and what [`list`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxInfo {
    /// The sandbox's name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// TCP port on 127.0.0.1 (0 before the first start).
    pub port: u16,
    /// Unix socket.
    pub socket: PathBuf,
    /// PID of the last started server (0 before the first start).
    pub pid: u32,
    /// Data directory.
    pub datadir: PathBuf,
    /// Error log.
    pub error_log: PathBuf,
    /// `server_id`.
    pub server_id: u32,
    /// Whether the binary log is on.
    pub log_bin: bool,
    /// `binlog_format`.
    pub binlog_format: String,
    /// `VERSION()` of the server (empty before the first start).
    pub version: String,
    /// Whether the server is running. [`list`] checks it when it reads the manifest: the
    /// PID is alive and is a `mariadbd` serving [`datadir`](Self::datadir).
    #[serde(default)]
    pub running: bool,
}

impl SandboxInfo {
    /// `mysql://root@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// `root@127.0.0.1:PORT` without a password.
    pub fn addr(&self) -> ServerAddr {
        ServerAddr::new("127.0.0.1", self.port)
    }

    /// Whether the recorded PID is a live `mariadbd` serving this data directory.
    pub fn is_running(&self) -> bool {
        pid_serves_datadir(self.pid, &self.datadir)
    }
}

/// The base directory the CLI uses: `$AMSU_SANDBOX_HOME`, else `$HOME/.amsu/sandboxes`,
/// else `amsu-sandboxes` in the temporary directory.
pub fn default_base_dir() -> PathBuf {
    base_dir_from(std::env::var_os(SANDBOX_HOME_ENV), std::env::var_os("HOME"))
}

fn base_dir_from(sandbox_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    match (sandbox_home, home) {
        (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
        (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".amsu").join("sandboxes"),
        _ => std::env::temp_dir().join("amsu-sandboxes"),
    }
}

/// A running local MariaDB server in its own directory. Dropping it stops the server
/// (synchronously, by its PID); [`keep`](Self::keep) detaches it instead.
pub struct Sandbox {
    info: SandboxInfo,
    mariadbd: PathBuf,
    extra_options: Vec<String>,
    startup_timeout: Duration,
    detached: bool,
    child: Option<Child>,
    armed: bool,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("name", &self.info.name)
            .field("port", &self.info.port)
            .field("pid", &self.info.pid)
            .field("dir", &self.info.dir)
            .field("running", &self.child.is_some())
            .finish()
    }
}

impl Sandbox {
    /// Creates the sandbox directory, initialises a data directory with
    /// `mariadb-install-db`, starts `mariadbd` on a free loopback port and waits until
    /// `root` with an empty password can run `SELECT 1` over TCP.
    ///
    /// On error nothing keeps running; the directory stays for inspection (its
    /// `sandbox.json` lets [`stop_by_name`] remove it).
    pub async fn deploy(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        validate_name(&opts.name)?;
        let (mariadbd, install_db_bin) = match &opts.bin_dir {
            Some(dir) => (
                find_binary(&["mariadbd", "mysqld"], std::slice::from_ref(dir))?,
                find_binary(
                    &["mariadb-install-db", "mysql_install_db"],
                    std::slice::from_ref(dir),
                )?,
            ),
            None => {
                let dirs = programs::search_dirs();
                (
                    find_binary(&["mariadbd", "mysqld"], &dirs)?,
                    find_binary(&["mariadb-install-db", "mysql_install_db"], &dirs)?,
                )
            }
        };

        fs::create_dir_all(&opts.base_dir).map_err(io_err("create", &opts.base_dir))?;
        let base = fs::canonicalize(&opts.base_dir).map_err(io_err("resolve", &opts.base_dir))?;
        let dir = base.join(&opts.name);
        if dir
            .as_os_str()
            .to_string_lossy()
            .contains(char::is_whitespace)
        {
            return Err(SandboxError::WhitespaceInPath { path: dir });
        }
        let socket = dir.join(SOCKET_FILE);
        let socket_len = socket.as_os_str().len();
        if socket_len > MAX_SOCKET_PATH {
            return Err(SandboxError::SocketPathTooLong {
                path: socket,
                len: socket_len,
            });
        }
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SandboxError::AlreadyExists { dir })
            }
            Err(e) => return Err(io_err("create", &dir)(e)),
        }

        let info = SandboxInfo {
            name: opts.name.clone(),
            datadir: dir.join(DATA_DIR),
            error_log: dir.join(ERROR_LOG),
            socket,
            dir,
            port: 0,
            pid: 0,
            server_id: opts.server_id,
            log_bin: opts.log_bin,
            binlog_format: opts.binlog_format.clone(),
            version: String::new(),
            running: false,
        };
        write_manifest(&info)?;
        let tmp_dir = info.dir.join(TMP_DIR);
        fs::create_dir(&tmp_dir).map_err(io_err("create", &tmp_dir))?;
        if info.log_bin {
            let binlog_dir = info.dir.join(BINLOG_DIR);
            fs::create_dir(&binlog_dir).map_err(io_err("create", &binlog_dir))?;
        }
        install_db(&install_db_bin, &info, opts.startup_timeout).await?;

        let mut sandbox = Sandbox {
            info,
            mariadbd,
            extra_options: opts.extra_options,
            startup_timeout: opts.startup_timeout,
            detached: opts.detached,
            child: None,
            armed: true,
        };
        // From here on, an error drops `sandbox`, which stops the server.
        sandbox.start_on_free_port().await?;
        sandbox.ensure_tcp_root().await?;
        sandbox.check_tcp_login().await?;
        write_manifest(&sandbox.info)?;
        tracing::info!(
            name = %sandbox.info.name,
            port = sandbox.info.port,
            pid = sandbox.info.pid,
            version = %sandbox.info.version,
            "sandbox deployed"
        );
        Ok(sandbox)
    }

    /// The sandbox's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.info.port
    }

    /// `root@127.0.0.1:PORT`, no password.
    pub fn addr(&self) -> ServerAddr {
        self.info.addr()
    }

    /// `mysql://root@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.info.url()
    }

    /// The server's Unix socket (`root` logs in there too, as `root@localhost`).
    pub fn socket(&self) -> &Path {
        &self.info.socket
    }

    /// The sandbox's directory.
    pub fn dir(&self) -> &Path {
        &self.info.dir
    }

    /// The data directory.
    pub fn datadir(&self) -> &Path {
        &self.info.datadir
    }

    /// The server's error log.
    pub fn error_log(&self) -> &Path {
        &self.info.error_log
    }

    /// PID of the running server, or of the last one after [`shutdown`](Self::shutdown).
    pub fn pid(&self) -> u32 {
        self.info.pid
    }

    /// `VERSION()` of the server.
    pub fn version(&self) -> &str {
        &self.info.version
    }

    /// Everything `sandbox.json` records.
    pub fn info(&self) -> &SandboxInfo {
        &self.info
    }

    /// Whether this handle has a started server that has not been shut down (it may
    /// still have crashed meanwhile; [`SandboxInfo::is_running`] checks the process).
    pub fn is_started(&self) -> bool {
        self.child.is_some()
    }

    /// The extra server options used by the next [`start`](Self::start), to change
    /// between a [`shutdown`](Self::shutdown) and a start.
    pub fn extra_options_mut(&mut self) -> &mut Vec<String> {
        &mut self.extra_options
    }

    /// Stops the server cleanly (SIGTERM, at most 60 s, then SIGKILL). Files are kept.
    pub async fn stop(mut self) -> Result<(), SandboxError> {
        self.shutdown().await
    }

    /// Stops the server like [`stop`](Self::stop) but keeps the handle, so that
    /// [`start`](Self::start) can run it again on the same data. Does nothing when the
    /// server is not started.
    pub async fn shutdown(&mut self) -> Result<(), SandboxError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        send_signal(pid, Signal::SIGTERM)?;
        let start = Instant::now();
        loop {
            if reaped(&mut child, &self.info.error_log)? {
                tracing::debug!(name = %self.info.name, pid, "sandbox stopped");
                return Ok(());
            }
            if start.elapsed() >= STOP_TIMEOUT {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        tracing::warn!(name = %self.info.name, pid, "mariadbd ignored SIGTERM; sending SIGKILL");
        send_signal(pid, Signal::SIGKILL)?;
        let kill_start = Instant::now();
        while kill_start.elapsed() < KILL_TIMEOUT {
            if reaped(&mut child, &self.info.error_log)? {
                return Ok(());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        Err(SandboxError::StopTimeout {
            pid,
            waited: start.elapsed(),
        })
    }

    /// Starts the server again after [`shutdown`](Self::shutdown), on the same port,
    /// and waits until it accepts connections. Does nothing when it is started.
    pub async fn start(&mut self) -> Result<(), SandboxError> {
        if self.child.is_some() {
            return Ok(());
        }
        let port = self.info.port;
        match self.start_on(port).await {
            Ok(()) => {}
            Err(StartError::AddrInUse(log_tail)) => {
                return Err(SandboxError::PortInUse {
                    attempts: 1,
                    error_log: self.info.error_log.clone(),
                    log_tail,
                })
            }
            Err(StartError::Other(e)) => return Err(e),
        }
        self.check_tcp_login().await?;
        write_manifest(&self.info)
    }

    /// [`shutdown`](Self::shutdown), then [`start`](Self::start).
    pub async fn restart(&mut self) -> Result<(), SandboxError> {
        self.shutdown().await?;
        self.start().await
    }

    /// Leaves the server running after this handle is gone (for `amsu sandbox deploy`);
    /// find and stop it later with [`list`] and [`stop_by_name`]. Returns its manifest.
    pub fn keep(mut self) -> SandboxInfo {
        self.armed = false;
        let mut info = self.info.clone();
        info.running = self.child.is_some();
        info
    }

    async fn start_on_free_port(&mut self) -> Result<(), SandboxError> {
        let mut last_tail = String::new();
        for attempt in 1..=PORT_ATTEMPTS {
            let port =
                free_port().map_err(io_err("pick a free port on", Path::new("127.0.0.1")))?;
            match self.start_on(port).await {
                Ok(()) => return Ok(()),
                Err(StartError::AddrInUse(tail)) => {
                    tracing::debug!(port, attempt, "port taken meanwhile; trying another");
                    last_tail = tail;
                }
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(SandboxError::PortInUse {
            attempts: PORT_ATTEMPTS,
            error_log: self.info.error_log.clone(),
            log_tail: last_tail,
        })
    }

    /// Spawns mariadbd on `port` and waits until it answers on its socket.
    async fn start_on(&mut self, port: u16) -> Result<(), StartError> {
        let log_path = self.info.error_log.clone();
        let log_start = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err("open", &log_path))?;
        let log2 = log.try_clone().map_err(io_err("open", &log_path))?;

        let args = server_args(&ServerArgs {
            dir: &self.info.dir,
            datadir: &self.info.datadir,
            socket: &self.info.socket,
            error_log: &log_path,
            port,
            server_id: self.info.server_id,
            log_bin: self.info.log_bin,
            binlog_format: &self.info.binlog_format,
            as_root: nix::unistd::geteuid().is_root(),
            extra: &self.extra_options,
        });
        tracing::debug!(binary = %self.mariadbd.display(), ?args, "starting mariadbd");
        let mut cmd = Command::new(&self.mariadbd);
        cmd.args(&args)
            .current_dir(&self.info.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        if self.detached {
            cmd.process_group(0);
        }
        let child = cmd.spawn().map_err(io_err("run", &self.mariadbd))?;
        self.info.port = port;
        self.info.pid = child.id();
        self.child = Some(child);

        match self.wait_ready().await {
            Ok(version) => {
                self.info.version = version;
                self.info.running = true;
                Ok(())
            }
            Err(e) => {
                // Stop whatever is left of it before reporting.
                let _ = self.shutdown().await;
                let tail = read_tail_from(&log_path, log_start);
                match e {
                    WaitError::Exited(_) if is_addr_in_use(&tail) => {
                        Err(StartError::AddrInUse(tail))
                    }
                    WaitError::Exited(status) => {
                        Err(StartError::Other(SandboxError::ServerExited {
                            status: status.to_string(),
                            error_log: log_path,
                            log_tail: tail,
                        }))
                    }
                    WaitError::TimedOut(last_error) => {
                        Err(StartError::Other(SandboxError::Timeout {
                            what: "mariadbd",
                            timeout: self.startup_timeout,
                            last_error,
                            log: log_path,
                            log_tail: tail,
                        }))
                    }
                    WaitError::Fatal(e) => Err(StartError::Other(e)),
                }
            }
        }
    }

    /// Polls the socket until `SELECT VERSION()` answers, the process exits or time runs out.
    async fn wait_ready(&mut self) -> Result<String, WaitError> {
        let deadline = Instant::now() + self.startup_timeout;
        let mut last_error = String::from("the socket does not exist yet");
        loop {
            let child = self
                .child
                .as_mut()
                .expect("wait_ready needs a started server");
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Err(WaitError::Exited(status));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(WaitError::Fatal(io_err("wait for", &self.mariadbd)(e)));
                }
            }
            if self.info.socket.exists() {
                let attempt = tokio::time::timeout(CONNECT_ATTEMPT_TIMEOUT, async {
                    let mut conn = mysql_async::Conn::new(self.socket_opts()).await?;
                    let version: Option<String> = conn.query_first("SELECT VERSION()").await?;
                    conn.disconnect().await?;
                    Ok::<_, mysql_async::Error>(version.unwrap_or_default())
                })
                .await;
                match attempt {
                    Ok(Ok(version)) => return Ok(version),
                    Ok(Err(e)) => last_error = e.to_string(),
                    Err(_) => last_error = "a connection attempt timed out".into(),
                }
            }
            if Instant::now() >= deadline {
                return Err(WaitError::TimedOut(last_error));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn socket_opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .socket(Some(self.info.socket.to_string_lossy().into_owned()))
            .user(Some("root"))
            .into()
    }

    fn tcp_opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.info.port)
            .user(Some("root"))
            // Otherwise mysql_async switches a loopback connection to the socket.
            .prefer_socket(false)
            .into()
    }

    fn sql_err(&self, action: &'static str) -> impl FnOnce(mysql_async::Error) -> SandboxError {
        let name = self.info.name.clone();
        let port = self.info.port;
        move |source| SandboxError::Sql {
            action,
            name,
            port,
            source: crate::error::classify(source),
        }
    }

    /// install-db creates `root@localhost`, `root@127.0.0.1`, `root@::1` and
    /// `root@HOSTNAME`; make sure about `root@127.0.0.1`, which a TCP login matches when
    /// the server runs with `--skip-name-resolve`.
    async fn ensure_tcp_root(&self) -> Result<(), SandboxError> {
        let mut conn = mysql_async::Conn::new(self.socket_opts())
            .await
            .map_err(self.sql_err("connect over the socket"))?;
        let count: Option<u64> = conn
            .query_first(
                "SELECT COUNT(*) FROM mysql.user WHERE User = 'root' AND Host = '127.0.0.1'",
            )
            .await
            .map_err(self.sql_err("look up root@127.0.0.1"))?;
        if count.unwrap_or(0) == 0 {
            tracing::debug!(name = %self.info.name, "creating root@127.0.0.1");
            conn.query_drop("CREATE USER 'root'@'127.0.0.1'")
                .await
                .map_err(self.sql_err("create root@127.0.0.1"))?;
            conn.query_drop("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
                .await
                .map_err(self.sql_err("grant to root@127.0.0.1"))?;
        }
        conn.disconnect()
            .await
            .map_err(self.sql_err("disconnect"))?;
        Ok(())
    }

    async fn check_tcp_login(&self) -> Result<(), SandboxError> {
        let mut conn = mysql_async::Conn::new(self.tcp_opts())
            .await
            .map_err(self.sql_err("log in as root with an empty password over TCP"))?;
        conn.query_drop("SELECT 1")
            .await
            .map_err(self.sql_err("run SELECT 1 over TCP"))?;
        conn.disconnect()
            .await
            .map_err(self.sql_err("disconnect"))?;
        Ok(())
    }

    /// The blocking stop used by `Drop`.
    fn shutdown_blocking(&mut self) -> Result<(), SandboxError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        send_signal(pid, Signal::SIGTERM)?;
        let start = Instant::now();
        let mut signal = Signal::SIGTERM;
        loop {
            if reaped(&mut child, &self.info.error_log)? {
                return Ok(());
            }
            if signal == Signal::SIGTERM && start.elapsed() >= STOP_TIMEOUT {
                send_signal(pid, Signal::SIGKILL)?;
                signal = Signal::SIGKILL;
            } else if start.elapsed() >= STOP_TIMEOUT + KILL_TIMEOUT {
                return Err(SandboxError::StopTimeout {
                    pid,
                    waited: start.elapsed(),
                });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Err(e) = self.shutdown_blocking() {
            tracing::warn!(name = %self.info.name, error = %e, "could not stop sandbox");
        }
    }
}

enum StartError {
    /// The port was taken; the error log's tail.
    AddrInUse(String),
    Other(SandboxError),
}

impl From<SandboxError> for StartError {
    fn from(e: SandboxError) -> Self {
        StartError::Other(e)
    }
}

enum WaitError {
    Exited(ExitStatus),
    TimedOut(String),
    Fatal(SandboxError),
}

#[cfg(test)]
mod tests;
