//! The `physical` method: a hot physical backup of the master made by `mariadb-backup`,
//! brought to the replica host, prepared there and installed as the replica's data
//! directory.
//!
//! Where the backup comes from ([`PhysicalSource`]):
//! - [`Local`](PhysicalSource::Local): master and replica share this host; amsu runs
//!   `mariadb-backup --backup` against the master over TCP, straight into a staging
//!   directory next to the replica's data directory. The master password goes into a
//!   `0600` option file passed with `--defaults-file`, never on a command line.
//! - [`Command`](PhysicalSource::Command): a shell command amsu runs here whose standard
//!   output is a `mariadb-backup --backup --stream=mbstream` stream (typically
//!   `ssh db1 mariadb-backup --backup --stream=mbstream --target-dir=/tmp`, with the
//!   credentials in the master host's own option file); amsu unpacks it with
//!   `mbstream -x` (every chunk of the stream carries a checksum).
//! - [`Image`](PhysicalSource::Image): an image made earlier by [`backup_image`] (the
//!   backup directory plus a `manifest.json` of every file's size and SHA-256), fetched
//!   through any [`Transport`] (a local directory, FTP/FTPS) with resume and checksums.
//!
//! Then `mariadb-backup --prepare` runs on the staged copy, the replica is stopped through
//! its [`ReplicaService`] (a systemd unit, a pair of commands, a sandbox), its data
//! directory is moved aside and the prepared copy moved in, the master's replication
//! metadata (`master.info`, `relay-log.info`, relay logs, `auto.cnf`) is removed, and the
//! replica is started again. The old data directory is deleted only once the new one has
//! started; if the new one does not start it is moved aside for inspection, the old one is
//! put back and started, and the error says which data the replica runs on
//! ([`ReplicaLeft`]).
//!
//! A restart forgets what `SET GLOBAL` changed, so the replica's `server_id` and
//! `read_only` are read before the stop and applied again after the start;
//! `gtid_slave_pos` is set to the snapshot's GTID position. The coordinates come from
//! `xtrabackup_binlog_info`, the master's commit-blocked time from the lock stages in
//! `mariadb-backup`'s own log (timed as its lines arrive).
//!
//! After the copy the replica holds the master's `mysql` schema, accounts included: the
//! replica user amsu connects with must exist on the master with the same password
//! (a preflight warning says so when it does not).

mod parse;
mod service;

use amsu_core::{FindingCode, Remedy};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amsu_core::manifest::{FileEntry, Manifest, SourceServer, FORMAT_VERSION, MANIFEST_FILE};
use amsu_core::{
    is_local_host, BoxError, Coordinates, CopyReport, DataCopier, Event, EventSink, Finding,
    Preflight, Role, ServerAddr, Transport, Version,
};
use amsu_mysql::conn::Session;
use amsu_mysql::dialect::Dialect;
use amsu_mysql::{option_file, programs, quote, MysqlError, SYSTEM_DATABASES};
use amsu_transfer::{fetch_verified, sha256_file, RetryPolicy, TransferError};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub use parse::{commit_blocked_ms, LogLine};
pub use service::{
    CommandService, ReplicaService, SandboxService, ServiceCommandError, SystemdService,
};

/// Names the backup tool is looked for under, in order.
pub const BACKUP_TOOLS: &[&str] = &["mariadb-backup", "mariabackup"];
/// The file in a physical image with what amsu measured while making it.
pub const IMAGE_INFO_FILE: &str = "amsu-physical.json";
/// The file in a physical image with the backup tool's log.
pub const IMAGE_LOG_FILE: &str = "amsu-backup.log";
/// Marks a staging directory as amsu's own (so a rerun may delete it).
const STAGING_MARKER: &str = ".amsu-physical-staging";
/// Written before `--prepare` runs: a staged copy with it can no longer be resumed.
const PREPARE_MARKER: &str = "prepare-started";
/// Lines of a tool's log an error carries.
const LOG_TAIL_LINES: usize = 20;
/// `--log-copy-interval` of the backups amsu runs, in milliseconds (the tool's default
/// is 1000).
const LOG_COPY_INTERVAL_MS: u32 = 50;
/// Room added to a size estimate (redo log, system tablespace growth).
const ESTIMATE_SLACK: u64 = 64 << 20;

/// Why a physical copy failed. None of the messages contains a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhysicalError {
    /// `mariadb-backup` (or `mbstream`) is not installed.
    #[error(
        "{tool} not found (looked in {searched}); install it with `apt-get install mariadb-backup`"
    )]
    ToolMissing {
        /// The program.
        tool: String,
        /// The directories searched.
        searched: String,
    },
    /// A precondition of the physical method failed; nothing was changed.
    #[error("the physical copy cannot run: {0}")]
    Precondition(String),
    /// `mariadb-backup --backup`, the backup command, `mbstream` or `--prepare` failed.
    #[error("{what} failed ({status}); last lines of {}:\n{log_tail}", log.display())]
    Tool {
        /// Which run.
        what: &'static str,
        /// Exit status, or why it could not run.
        status: String,
        /// Its full log.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },
    /// A file system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The backup's binary log coordinates cannot be read.
    #[error("cannot read the snapshot coordinates from {}: {detail}", path.display())]
    BinlogInfo {
        /// `xtrabackup_binlog_info`.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Fetching or checking the image failed (a rerun resumes the transfer).
    #[error("fetching the physical image: {0}")]
    Transfer(#[from] TransferError),
    /// A statement on the master or the replica failed.
    #[error(transparent)]
    Mysql(#[from] MysqlError),
    /// Installing the new data directory failed; `left` says what the replica runs on now.
    #[error("{failure}; {left}")]
    Install {
        /// What went wrong.
        failure: String,
        /// The state the replica was left in.
        left: ReplicaLeft,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PhysicalError {
    let path = path.to_path_buf();
    move |source| PhysicalError::Io {
        action,
        path,
        source,
    }
}

/// The state a failed install left the replica in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicaLeft {
    /// The data directory was not touched; the replica was started again on its old data.
    OldDataRunning,
    /// The data directory was not touched, but the replica did not start again.
    OldDataStopped {
        /// Why it did not start.
        error: String,
    },
    /// The new data directory did not start; it was moved to `failed_dir`, the old one was
    /// put back and the replica runs on it.
    RolledBack {
        /// Where the new data directory was kept for inspection.
        failed_dir: PathBuf,
    },
    /// Like `RolledBack`, but the old data directory did not start either.
    RolledBackStopped {
        /// Where the new data directory was kept.
        failed_dir: PathBuf,
        /// Why the old one did not start.
        error: String,
    },
    /// The replica runs on the new data directory (the master's data).
    NewDataRunning,
    /// The old data directory could not be put back; it is at `old_dir`.
    NeedsManualRestore {
        /// Where the old data directory is.
        old_dir: PathBuf,
        /// Where it belongs.
        datadir: PathBuf,
    },
}

impl std::fmt::Display for ReplicaLeft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplicaLeft::OldDataRunning => write!(
                f,
                "the replica's data directory was not changed and the replica runs on its old data"
            ),
            ReplicaLeft::OldDataStopped { error } => write!(
                f,
                "the replica's data directory was not changed, but the replica did not start again ({error}); start it through its service"
            ),
            ReplicaLeft::RolledBack { failed_dir } => write!(
                f,
                "the new data directory was moved to {} for inspection; the old data directory was put back and the replica runs on its old data again",
                failed_dir.display()
            ),
            ReplicaLeft::RolledBackStopped { failed_dir, error } => write!(
                f,
                "the new data directory was moved to {}; the old data directory was put back but did not start either ({error}); start the replica through its service",
                failed_dir.display()
            ),
            ReplicaLeft::NewDataRunning => write!(
                f,
                "the replica runs on the new data directory (the master's data)"
            ),
            ReplicaLeft::NeedsManualRestore { old_dir, datadir } => write!(
                f,
                "the old data directory could not be put back: move {} to {} by hand and start the replica",
                old_dir.display(),
                datadir.display()
            ),
        }
    }
}

/// Where the backup comes from.
#[derive(Clone)]
#[non_exhaustive]
pub enum PhysicalSource {
    /// Run `mariadb-backup --backup` on this host against the master (same host).
    Local,
    /// Run this shell command (`sh -c`); its stdout is a `mariadb-backup --backup
    /// --stream=mbstream` stream of the master.
    Command(String),
    /// An image made by [`backup_image`], in `dir` of `transport`.
    Image {
        /// Where the image is kept.
        transport: Arc<dyn Transport>,
        /// Its directory, relative to the transport's root (`""` for the root).
        dir: String,
    },
}

impl std::fmt::Debug for PhysicalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PhysicalSource::Local => f.write_str("Local"),
            PhysicalSource::Command(c) => f.debug_tuple("Command").field(c).finish(),
            PhysicalSource::Image { dir, .. } => f.debug_struct("Image").field("dir", dir).finish(),
        }
    }
}

/// Options of a physical copy. By-value setters; the defaults:
///
/// | setting | default |
/// |---|---|
/// | `datadir` | the replica's `@@datadir` |
/// | `work_dir` | `DATADIR.amsu-work`, next to the data directory (same file system, so the prepared copy is moved in by a rename) |
/// | `tool` | `mariadb-backup` (or `mariabackup`) from `$PATH`, `/usr/bin`, … |
/// | `start_timeout` | 300 s for the replica to accept connections after a start |
/// | `keep_old_datadir` | off: the old data directory is deleted once the new one runs |
/// | `parallel` | 4 files copied at once by `mariadb-backup --backup --parallel`, or fetched at once from an image |
/// | `retry` | [`RetryPolicy::default`] for image transfers |
/// | `throttle` | none: `mariadb-backup` copies as fast as it can (see [`PhysicalOptions::max_rate`]) |
/// | `ionice` | on: `mariadb-backup --backup` on this host runs at the lowest best-effort I/O priority (`ionice -c2 -n7`), below the master's own I/O |
#[derive(Debug, Clone)]
pub struct PhysicalOptions {
    datadir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    tool: Option<PathBuf>,
    start_timeout: Duration,
    keep_old_datadir: bool,
    parallel: usize,
    retry: RetryPolicy,
    throttle: BackupThrottle,
}

/// How `mariadb-backup --backup` on this host is held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupThrottle {
    /// `--throttle`: chunks of 10 MiB copied per second.
    pub chunks_per_second: Option<u64>,
    /// Run it under `ionice -c2 -n7` (when `ionice` is installed).
    pub ionice: bool,
}

impl Default for BackupThrottle {
    fn default() -> Self {
        BackupThrottle {
            chunks_per_second: None,
            ionice: true,
        }
    }
}

/// The size of the chunks `mariadb-backup --throttle` counts.
const THROTTLE_CHUNK_BYTES: u64 = 10 << 20;

impl BackupThrottle {
    /// `--throttle` for at most `bytes_per_second` (rounded up to whole chunks, at least 1).
    pub fn chunks_for(bytes_per_second: u64) -> u64 {
        bytes_per_second.div_ceil(THROTTLE_CHUNK_BYTES).max(1)
    }

    /// The command that runs `tool` with these limits: `ionice` first when asked and found.
    fn command(&self, tool: &Path) -> tokio::process::Command {
        let ionice = self
            .ionice
            .then(|| find_program(&["ionice"]).ok())
            .flatten();
        match ionice {
            Some(ionice) => {
                let mut c = tokio::process::Command::new(ionice);
                c.args(["-c2", "-n7"]).arg(tool);
                c
            }
            None => tokio::process::Command::new(tool),
        }
    }

    fn args(&self) -> Vec<String> {
        self.chunks_per_second
            .map(|n| vec![format!("--throttle={n}")])
            .unwrap_or_default()
    }
}

impl Default for PhysicalOptions {
    fn default() -> Self {
        PhysicalOptions {
            datadir: None,
            work_dir: None,
            tool: None,
            start_timeout: Duration::from_secs(300),
            keep_old_datadir: false,
            parallel: 4,
            retry: RetryPolicy::default(),
            throttle: BackupThrottle::default(),
        }
    }
}

impl PhysicalOptions {
    /// The replica's data directory (checked against its `@@datadir`).
    pub fn datadir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.datadir = Some(dir.into());
        self
    }

    /// Where the image is staged and prepared, and the logs kept.
    pub fn work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// The `mariadb-backup` binary.
    pub fn tool(mut self, path: impl Into<PathBuf>) -> Self {
        self.tool = Some(path.into());
        self
    }

    /// How long the replica may take to accept connections after a start.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Keep the old data directory (`DATADIR.amsu-old-TIME`) after success.
    pub fn keep_old_datadir(mut self, keep: bool) -> Self {
        self.keep_old_datadir = keep;
        self
    }

    /// Files copied at once by `mariadb-backup --backup` (its `--parallel`), or fetched at
    /// once from an image.
    pub fn parallel(mut self, n: usize) -> Self {
        self.parallel = n.max(1);
        self
    }

    /// Retries of image transfers.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// At most this many bytes per second read by `mariadb-backup --backup` on this host
    /// (its `--throttle`, in 10 MiB chunks). Default: no limit.
    pub fn max_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.throttle.chunks_per_second = bytes_per_second.map(BackupThrottle::chunks_for);
        self
    }

    /// Run `mariadb-backup --backup` on this host at the lowest best-effort I/O priority
    /// (`ionice -c2 -n7`). Default on.
    pub fn ionice(mut self, on: bool) -> Self {
        self.throttle.ionice = on;
        self
    }
}

/// How long each phase of the last physical copy took.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhysicalTimings {
    /// Backup (or image fetch), milliseconds.
    pub backup_ms: u64,
    /// `mariadb-backup --prepare`, milliseconds.
    pub prepare_ms: u64,
    /// Stop, swap, start and reconfigure of the replica, milliseconds.
    pub install_ms: u64,
    /// Bytes of the staged backup.
    pub image_bytes: u64,
    /// Files of an image whose transfer was resumed.
    pub files_resumed: usize,
}

/// What amsu measured while making an image ([`IMAGE_INFO_FILE`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// How long the master's commits were blocked, in milliseconds.
    pub commit_blocked_ms: Option<f64>,
    /// How long the backup took, in milliseconds.
    pub backup_ms: u64,
}

/// A physical copy of the master into the replica ([`DataCopier`]); also a [`Preflight`]
/// with its read-only checks (tool present and of the master's version, data directory,
/// free space, replica login after the copy).
pub struct PhysicalCopy {
    master: ServerAddr,
    replica: ServerAddr,
    source: PhysicalSource,
    service: Arc<dyn ReplicaService>,
    opts: PhysicalOptions,
    timings: Mutex<Option<PhysicalTimings>>,
}

impl std::fmt::Debug for PhysicalCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysicalCopy")
            .field("master", &self.master.to_string())
            .field("replica", &self.replica.to_string())
            .field("source", &self.source)
            .field("service", &self.service.describe())
            .field("opts", &self.opts)
            .finish()
    }
}

/// What the checks resolved.
struct Resolved {
    tool: PathBuf,
    datadir: PathBuf,
    work_dir: PathBuf,
}

/// The replica's settings a restart would lose.
struct ReplicaVars {
    server_id: u32,
    read_only: String,
}

impl PhysicalCopy {
    /// A copy from `master` into `replica` (both reached over SQL), the replica's server
    /// stopped and started through `service`.
    pub fn new(
        master: ServerAddr,
        replica: ServerAddr,
        source: PhysicalSource,
        service: Arc<dyn ReplicaService>,
        opts: PhysicalOptions,
    ) -> Self {
        PhysicalCopy {
            master,
            replica,
            source,
            service,
            opts,
            timings: Mutex::new(None),
        }
    }

    /// The phases of the last successful copy.
    pub fn last_timings(&self) -> Option<PhysicalTimings> {
        self.timings.lock().ok().and_then(|t| t.clone())
    }

    /// Every read-only check, and what they resolved when none blocks.
    async fn check_all(&self) -> Result<(Vec<Finding>, Option<Resolved>), BoxError> {
        let mut f = Vec::new();
        let tool = match &self.opts.tool {
            Some(t) => Some(t.clone()),
            None => find_program(BACKUP_TOOLS).ok(),
        };
        let Some(tool) = tool else {
            f.push(Finding::blocking(
                Role::Replica,
                FindingCode::BackupToolMissing,
                "mariadb-backup is not installed on the replica host (it prepares the backup)",
                "apt-get install mariadb-backup (the master's major.minor version)",
            ));
            return Ok((f, None));
        };
        let tool_version = tool_version(&tool).await;

        let mut m = Session::open(&self.master).await?;
        let master_version = m
            .column("SELECT @@version", "reading the master's version")
            .await?
            .join("");
        let master_datadir = m
            .column("SELECT @@datadir", "reading the master's datadir")
            .await?
            .join("");
        let mut r = Session::open(&self.replica).await?;
        let replica_version = r
            .column("SELECT @@version", "reading the replica's version")
            .await?
            .join("");
        let replica_datadir = PathBuf::from(
            r.column("SELECT @@datadir", "reading the replica's datadir")
                .await?
                .join(""),
        );

        // The version of the data: the image's source, or the master.
        let (source_version, estimate) = match &self.source {
            PhysicalSource::Image { transport, dir } => {
                let manifest = read_remote_manifest(&**transport, dir).await?;
                let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
                if manifest.method != "physical" {
                    f.push(
                        Finding::blocking(
                            Role::Replica,
                            FindingCode::ImageMethod,
                            format!(
                                "the image was made by the {} method, not by a physical backup",
                                manifest.method
                            ),
                            "use an image made by the physical method",
                        )
                        .with_remedy(Remedy::setting_to("method", "physical")),
                    );
                }
                (manifest.source.version, bytes)
            }
            _ => (master_version.clone(), master_size_estimate(&mut m).await?),
        };
        let mm = |v: &str| {
            amsu_mysql::dialect::parse_version(v)
                .ok()
                .map(|(_, v)| (v.major, v.minor))
        };
        match tool_version {
            Some(tv) if Some((tv.major, tv.minor)) == mm(&source_version) => {}
            other => f.push(Finding::blocking(
                Role::Replica,
                FindingCode::BackupToolVersion,
                format!(
                    "{} is {} but the backup is of a {source_version} server; it must have the same major.minor version",
                    tool.display(),
                    other.map(|v| v.to_string()).unwrap_or_else(|| "of an unknown version".into())
                ),
                "install the mariadb-backup of the master's major.minor version on the replica host",
            )),
        }
        if mm(&replica_version) != mm(&source_version) {
            f.push(Finding::blocking(
                Role::Replica,
                FindingCode::PhysicalVersionMismatch,
                format!(
                    "the replica runs {replica_version} but the data comes from {source_version}; a physical copy needs the same major.minor version"
                ),
                "install the master's major.minor version on the replica, or use the logical method",
            ).with_remedy(Remedy::setting_to("method", "logical")));
        }

        if !matches!(self.source, PhysicalSource::Image { .. }) {
            f.extend(backtick_findings(&mut m).await?);
        }

        let datadir = match &self.opts.datadir {
            Some(d) => d.clone(),
            None => replica_datadir.clone(),
        };
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        let datadir = match canon(&datadir) {
            Some(d) => d,
            None => {
                f.push(
                    Finding::blocking(
                        Role::Replica,
                        FindingCode::DatadirMissing,
                        format!(
                            "the replica's data directory {} does not exist on this host",
                            datadir.display()
                        ),
                        "run amsu on the replica host, or give the replica's data directory",
                    )
                    .with_remedy(Remedy::setting("method.replica_datadir")),
                );
                return Ok((f, None));
            }
        };
        if canon(&replica_datadir).as_ref() != Some(&datadir) {
            f.push(
                Finding::blocking(
                    Role::Replica,
                    FindingCode::DatadirMismatch,
                    format!(
                        "the replica server uses {} as its datadir, not {}",
                        replica_datadir.display(),
                        datadir.display()
                    ),
                    "give the replica's own data directory",
                )
                .with_remedy(Remedy::setting("method.replica_datadir")),
            );
        }
        if let PhysicalSource::Local = self.source {
            if !is_local_host(&self.master.host) {
                f.push(Finding::blocking(
                    Role::Master,
                    FindingCode::MasterNotLocal,
                    format!(
                        "the master {} is not on this host; mariadb-backup must run where the master's files are",
                        self.master.host
                    ),
                    "give a command that streams the master's backup (e.g. `ssh HOST mariadb-backup --backup --stream=mbstream --target-dir=/tmp`), or an image",
                ).with_remedy(Remedy::setting("method.master_backup_command")));
            } else if canon(Path::new(&master_datadir)).as_ref() == Some(&datadir) {
                f.push(Finding::blocking(
                    Role::Replica,
                    FindingCode::SameDatadir,
                    "the master and the replica use the same data directory",
                    "check the master's and the replica's addresses",
                ));
            }
        }
        let work_dir = match &self.opts.work_dir {
            Some(w) => w.clone(),
            None => sibling(&datadir, "amsu-work"),
        };
        let needed = estimate.saturating_add(ESTIMATE_SLACK).saturating_mul(2);
        match free_space(&work_dir) {
            Ok(available) if available < needed => f.push(Finding::blocking(
                Role::Replica,
                FindingCode::NoSpace,
                format!(
                    "{} has {} MiB free; the backup and its prepared copy need about {} MiB",
                    work_dir.display(),
                    available >> 20,
                    needed >> 20
                ),
                "free space there, or choose another staging directory on the data directory's file system",
            )),
            Ok(_) => {}
            Err(e) => f.push(Finding::warning(
                Role::Replica,
                FindingCode::FreeSpaceUnknown,
                format!("cannot read the free space of {}: {e}", work_dir.display()),
                "check by hand that there is room for about twice the master's data",
            )),
        }
        // After the copy the replica has the master's accounts.
        let after = self
            .master
            .clone()
            .user(self.replica.user.clone())
            .password(self.replica.password.clone());
        if let Err(e) = Session::open(&after).await {
            if e.is_access_denied() {
                f.push(Finding::warning(
                    Role::Replica,
                    FindingCode::ReplicaLoginAfterCopy,
                    format!(
                        "the replica user '{}' cannot log in to the master with the given password; after a physical copy the replica has the master's accounts, so amsu could not log in to it to finish",
                        self.replica.user
                    ),
                    "connect to the replica as a user that exists on the master with the same password",
                ));
            }
        }
        let blocked = f
            .iter()
            .any(|x| x.severity == amsu_core::Severity::Blocking);
        Ok((
            f,
            (!blocked).then_some(Resolved {
                tool,
                datadir,
                work_dir,
            }),
        ))
    }

    async fn run(&self, events: &dyn EventSink) -> Result<CopyReport, PhysicalError> {
        let (findings, resolved) = self
            .check_all()
            .await
            .map_err(|e| PhysicalError::Precondition(e.to_string()))?;
        let Some(r) = resolved else {
            let text: Vec<String> = findings
                .iter()
                .filter(|x| x.severity == amsu_core::Severity::Blocking)
                .map(|x| format!("{} (fix: {})", x.problem, x.fix))
                .collect();
            return Err(PhysicalError::Precondition(text.join("; ")));
        };
        tokio::fs::create_dir_all(&r.work_dir)
            .await
            .map_err(io_err("create", &r.work_dir))?;
        let staged = r.work_dir.join("image");
        let resumable = matches!(self.source, PhysicalSource::Image { .. })
            && !r.work_dir.join(PREPARE_MARKER).exists();
        prepare_staging(&staged, resumable)?;
        let _ = std::fs::remove_file(r.work_dir.join(PREPARE_MARKER));

        // 1. Backup, or fetch an image.
        let t = Instant::now();
        let mut timings = PhysicalTimings::default();
        let blocked = match &self.source {
            PhysicalSource::Local => {
                let lines = backup_local(
                    &r.tool,
                    &self.master,
                    &staged,
                    &r.work_dir,
                    self.opts.parallel,
                    self.opts.throttle,
                )
                .await?;
                commit_blocked_ms(&lines)
            }
            PhysicalSource::Command(cmd) => {
                let lines = backup_command(cmd, &staged, &r.work_dir).await?;
                commit_blocked_ms(&lines)
            }
            PhysicalSource::Image { transport, dir } => {
                let (bytes, resumed) = fetch_physical_image(
                    transport.clone(),
                    dir,
                    &staged,
                    self.opts.parallel,
                    &self.opts.retry,
                )
                .await?;
                tracing::info!(bytes, resumed, "physical image fetched");
                timings.files_resumed = resumed;
                let info: ImageInfo = std::fs::read_to_string(staged.join(IMAGE_INFO_FILE))
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default();
                for f in [MANIFEST_FILE, IMAGE_INFO_FILE, IMAGE_LOG_FILE] {
                    let _ = std::fs::remove_file(staged.join(f));
                }
                info.commit_blocked_ms
            }
        };
        timings.backup_ms = t.elapsed().as_millis() as u64;
        timings.image_bytes = tree_size(&staged);
        let commit_blocked_ms = blocked.unwrap_or_else(|| {
            events.emit(&Event::Warning {
                server: Some(Role::Master),
                message: "the backup log does not show the commit-blocking stage; its duration is unknown".into(),
            });
            0.0
        });
        events.emit(&Event::CommitBlocked {
            millis: commit_blocked_ms,
        });

        // 2. Prepare.
        let t = Instant::now();
        std::fs::write(r.work_dir.join(PREPARE_MARKER), b"")
            .map_err(io_err("write", &r.work_dir.join(PREPARE_MARKER)))?;
        prepare(&r.tool, &staged, &r.work_dir).await?;
        timings.prepare_ms = t.elapsed().as_millis() as u64;
        let info_path = staged.join("xtrabackup_binlog_info");
        let text = std::fs::read_to_string(&info_path).map_err(|e| PhysicalError::BinlogInfo {
            path: info_path.clone(),
            detail: e.to_string(),
        })?;
        let coordinates =
            parse::binlog_info(&text).map_err(|detail| PhysicalError::BinlogInfo {
                path: info_path.clone(),
                detail,
            })?;
        events.emit(&Event::Snapshot {
            coordinates: coordinates.clone(),
        });

        // 3. Install.
        let t = Instant::now();
        self.install(&r, &staged, &coordinates, events).await?;
        timings.install_ms = t.elapsed().as_millis() as u64;
        let _ = std::fs::remove_file(r.work_dir.join(PREPARE_MARKER));
        tracing::info!(?timings, "physical copy done");

        let mut report = self
            .count(&coordinates)
            .await
            .map_err(|e| PhysicalError::Install {
                failure: format!("the replica started but cannot be read: {e}"),
                left: ReplicaLeft::NewDataRunning,
            })?;
        report.bytes = timings.image_bytes;
        report.commit_blocked_ms = commit_blocked_ms;
        if let Ok(mut slot) = self.timings.lock() {
            *slot = Some(timings);
        }
        Ok(report)
    }

    /// Stops the replica, swaps the data directory, starts it and reconfigures it. Every
    /// failure leaves a startable replica and says which data it runs on.
    async fn install(
        &self,
        r: &Resolved,
        staged: &Path,
        coordinates: &Coordinates,
        events: &dyn EventSink,
    ) -> Result<(), PhysicalError> {
        let datadir = &r.datadir;
        let service = self.service.describe();
        let install_err = |failure: String, left| PhysicalError::Install { failure, left };
        let vars = self.replica_vars().await?;

        // Clean the staged copy before the replica stops: nothing of it is needed.
        remove_stale(staged)?;
        let _ = std::fs::remove_file(staged.join(STAGING_MARKER));
        copy_ownership(datadir, staged)?;

        let restart_old = |failure: String| async move {
            match self.start_and_wait().await {
                Ok(()) => install_err(failure, ReplicaLeft::OldDataRunning),
                Err(e) => install_err(failure, ReplicaLeft::OldDataStopped { error: e }),
            }
        };
        if let Err(e) = self.service.stop().await {
            return Err(restart_old(format!("cannot stop the replica ({service}): {e}")).await);
        }
        let stamp = unix_now();
        let old = sibling(datadir, &format!("amsu-old-{stamp}"));
        if let Err(e) = std::fs::rename(datadir, &old) {
            return Err(restart_old(format!(
                "cannot move the data directory {} aside to {}: {e}",
                datadir.display(),
                old.display()
            ))
            .await);
        }
        if let Err(e) = move_tree(staged, datadir) {
            let failure = format!(
                "cannot move the prepared backup {} to {}: {e}",
                staged.display(),
                datadir.display()
            );
            if std::fs::rename(&old, datadir).is_err() {
                return Err(install_err(
                    failure,
                    ReplicaLeft::NeedsManualRestore {
                        old_dir: old,
                        datadir: datadir.clone(),
                    },
                ));
            }
            return Err(restart_old(failure).await);
        }
        events.emit(&Event::Changed {
            server: Role::Replica,
            what: format!(
                "installed the master's physical backup as the data directory {} (the old one is at {} until the new one runs)",
                datadir.display(),
                old.display()
            ),
        });

        if let Err(e) = self.start_and_wait().await {
            let failure =
                format!("the replica did not start on the new data directory ({service}): {e}");
            // It may be half-started: stop it before touching its files.
            let _ = self.service.stop().await;
            let failed = sibling(datadir, &format!("amsu-failed-{stamp}"));
            if std::fs::rename(datadir, &failed).is_err() || std::fs::rename(&old, datadir).is_err()
            {
                return Err(install_err(
                    failure,
                    ReplicaLeft::NeedsManualRestore {
                        old_dir: old,
                        datadir: datadir.clone(),
                    },
                ));
            }
            return Err(match self.start_and_wait().await {
                Ok(()) => install_err(failure, ReplicaLeft::RolledBack { failed_dir: failed }),
                Err(error) => install_err(
                    failure,
                    ReplicaLeft::RolledBackStopped {
                        failed_dir: failed,
                        error,
                    },
                ),
            });
        }

        // The new one runs: the old one may go.
        if self.opts.keep_old_datadir {
            events.emit(&Event::Changed {
                server: Role::Replica,
                what: format!("kept the old data directory at {}", old.display()),
            });
        } else if let Err(e) = std::fs::remove_dir_all(&old) {
            events.emit(&Event::Warning {
                server: Some(Role::Replica),
                message: format!(
                    "cannot remove the old data directory {}: {e}",
                    old.display()
                ),
            });
        }
        self.reconfigure(&vars, coordinates, events)
            .await
            .map_err(|e| {
                install_err(
                    format!("the replica started on the new data but cannot be reconfigured: {e}"),
                    ReplicaLeft::NewDataRunning,
                )
            })
    }

    /// Starts the replica and waits until it accepts connections; the error as text.
    async fn start_and_wait(&self) -> Result<(), String> {
        self.service.start().await.map_err(|e| e.to_string())?;
        let deadline = Instant::now() + self.opts.start_timeout;
        loop {
            match Session::open(&self.replica).await {
                Ok(s) => {
                    let _ = s.disconnect().await;
                    return Ok(());
                }
                Err(e) if e.is_access_denied() => {
                    return Err(format!(
                        "it runs, but the replica user '{}' cannot log in to it any more: {e}",
                        self.replica.user
                    ))
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "it did not accept connections within {:?}: {e}",
                        self.opts.start_timeout
                    ))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn replica_vars(&self) -> Result<ReplicaVars, MysqlError> {
        let mut s = Session::open(&self.replica).await?;
        let row = s
            .column(
                "SELECT CONCAT(@@global.server_id, ' ', @@global.read_only)",
                "reading the replica's server_id and read_only",
            )
            .await?
            .join("");
        let mut it = row.split_whitespace();
        let server_id = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        // `ON`/`OFF` (a boolean in 10.x, an enum with more values in 11.x): set back as read.
        let read_only = it
            .next()
            .filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or("OFF")
            .to_string();
        Ok(ReplicaVars {
            server_id,
            read_only,
        })
    }

    /// Applies again what the restart forgot, and the snapshot's GTID position.
    async fn reconfigure(
        &self,
        vars: &ReplicaVars,
        coordinates: &Coordinates,
        events: &dyn EventSink,
    ) -> Result<(), MysqlError> {
        let mut s = Session::open(&self.replica).await?;
        if vars.server_id != 0 {
            let sql = format!("SET GLOBAL server_id = {}", vars.server_id);
            s.exec(&sql, &sql).await?;
        }
        let sql = format!("SET GLOBAL read_only = {}", quote::string(&vars.read_only));
        s.exec(&sql, &sql).await?;
        if let Some(gtid) = coordinates.gtid.as_deref().filter(|g| !g.is_empty()) {
            let version = s
                .column("SELECT @@version", "reading the replica's version")
                .await?
                .join("");
            if let Ok(d) = Dialect::from_version_string(&version) {
                let sql = d.set_gtid_position(gtid);
                if let Err(e) = s.exec(&sql, &sql).await {
                    events.emit(&Event::Warning {
                        server: Some(Role::Replica),
                        message: format!(
                            "could not set the GTID position to the snapshot's {gtid}: {e}; replication uses file and position"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    async fn count(&self, coordinates: &Coordinates) -> Result<CopyReport, MysqlError> {
        let mut s = Session::open(&self.replica).await?;
        let system = SYSTEM_DATABASES
            .iter()
            .map(|d| quote::string(d))
            .collect::<Vec<_>>()
            .join(",");
        let n = |v: Vec<String>| v.first().and_then(|x| x.parse().ok()).unwrap_or(0u64);
        let databases = n(s
            .column(
                &format!("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ({system})"),
                "counting databases",
            )
            .await?);
        let tables = n(s
            .column(
                &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ({system})"),
                "counting tables",
            )
            .await?);
        let objects = n(s
            .column(
                &format!(
                    "SELECT (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ({system})) \
                     + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ({system})) \
                     + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ({system})) \
                     + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA NOT IN ({system}))"
                ),
                "counting objects",
            )
            .await?);
        let accounts = n(s
            .column("SELECT COUNT(*) FROM mysql.user", "counting accounts")
            .await?);
        Ok(CopyReport {
            coordinates: Some(coordinates.clone()),
            databases,
            tables,
            accounts,
            objects,
            ..CopyReport::default()
        })
    }
}

#[async_trait]
impl DataCopier for PhysicalCopy {
    async fn copy(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        Ok(self.run(&*events).await?)
    }

    fn statements(&self) -> Option<Vec<String>> {
        Some(vec![
            "-- on the master host: mariadb-backup --backup --stream=mbstream (or the given backup command, or the image's files)".into(),
            "-- on the replica host: mbstream -x into the work directory; mariadb-backup --prepare".into(),
            "-- the replica server is stopped (its service or stop command)".into(),
            "-- its data directory is swapped for the prepared backup (the old one moved aside)".into(),
            "-- the replica server is started (its service or start command)".into(),
            "-- coordinates from the backup's xtrabackup_binlog_info".into(),
        ])
    }
}

#[async_trait]
impl Preflight for PhysicalCopy {
    async fn findings(&self) -> Result<Vec<Finding>, BoxError> {
        Ok(self.check_all().await?.0)
    }
}

/// Databases and tables whose names hold a backtick: mariadb-backup (10.11) names them
/// unescaped in its `BACKUP LOCK` statements and aborts mid-backup, so the physical method
/// is refused for such a master before anything changes (the logical methods copy them).
async fn backtick_findings(m: &mut Session) -> Result<Vec<Finding>, BoxError> {
    let names = m
        .column(
            "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES \
             WHERE LOCATE('`', TABLE_SCHEMA) > 0 OR LOCATE('`', TABLE_NAME) > 0 \
             UNION SELECT SCHEMA_NAME FROM information_schema.SCHEMATA \
             WHERE LOCATE('`', SCHEMA_NAME) > 0 ORDER BY 1 LIMIT 20",
            "looking for names mariadb-backup cannot lock",
        )
        .await?;
    if names.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![Finding::blocking(
        Role::Master,
        FindingCode::PhysicalIdentifier,
        format!(
            "names with a backtick ({}): mariadb-backup does not escape them in its BACKUP LOCK statements and aborts the backup",
            names.join(", ")
        ),
        "use the logical method, which copies them exactly, or rename them on the master",
    ).with_remedy(Remedy::setting_to("method", "logical"))])
}

/// What [`backup_image`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct PhysicalImage {
    /// The image's manifest (also in `DIR/manifest.json`).
    pub manifest: Manifest,
    /// What was measured.
    pub info: ImageInfo,
}

/// Makes a physical image of the master in `out` (which must not exist or be empty):
/// `mariadb-backup --backup` on this host (the master must be local), its log, the
/// measurements ([`IMAGE_INFO_FILE`]) and, last, `manifest.json` with every file's size
/// and SHA-256. The library side of `amsu backup --method physical`; publish it with
/// `amsu_transfer::put_image` and use it with [`PhysicalSource::Image`].
pub async fn backup_image(
    master: &ServerAddr,
    out: &Path,
    tool: Option<&Path>,
) -> Result<PhysicalImage, PhysicalError> {
    let tool = match tool {
        Some(t) => t.to_path_buf(),
        None => find_program(BACKUP_TOOLS)?,
    };
    if !is_local_host(&master.host) {
        return Err(PhysicalError::Precondition(format!(
            "the master {} is not on this host; run the backup on the master's host",
            master.host
        )));
    }
    if std::fs::read_dir(out)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        return Err(PhysicalError::Precondition(format!(
            "{} is not empty; choose a new directory for the image",
            out.display()
        )));
    }
    let mut s = Session::open(master).await?;
    let server = amsu_mysql::probe(&mut s).await?;
    let work = tempdir_in(out.parent().unwrap_or(Path::new(".")))?;
    let t = Instant::now();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let lines = backup_local(&tool, master, out, &work, cores, BackupThrottle::default()).await;
    let log = work.join("backup.log");
    let _ = std::fs::copy(&log, out.join(IMAGE_LOG_FILE));
    let _ = std::fs::remove_dir_all(&work);
    let lines = lines?;
    let info = ImageInfo {
        commit_blocked_ms: commit_blocked_ms(&lines),
        backup_ms: t.elapsed().as_millis() as u64,
    };
    let info_path = out.join(IMAGE_INFO_FILE);
    std::fs::write(
        &info_path,
        serde_json::to_string_pretty(&info).unwrap_or_default(),
    )
    .map_err(io_err("write", &info_path))?;
    let binlog_info = out.join("xtrabackup_binlog_info");
    let coordinates = std::fs::read_to_string(&binlog_info)
        .map_err(|e| e.to_string())
        .and_then(|t| parse::binlog_info(&t))
        .map_err(|detail| PhysicalError::BinlogInfo {
            path: binlog_info.clone(),
            detail,
        })?;
    let mut files = Vec::new();
    for rel in list_files(out)? {
        let path = out.join(&rel);
        let size = std::fs::metadata(&path)
            .map_err(io_err("read", &path))?
            .len();
        files.push(FileEntry {
            sha256: sha256_file(&path).await?,
            path: rel,
            size,
        });
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        method: "physical".into(),
        source: SourceServer {
            flavor: server.flavor,
            version: server.version_string.clone(),
            server_id: server.server_id,
            uuid: None,
        },
        coordinates,
        created_unix: unix_now(),
        files,
    };
    let tmp = out.join(format!("{MANIFEST_FILE}.tmp"));
    std::fs::write(&tmp, manifest.to_json()).map_err(io_err("write", &tmp))?;
    std::fs::rename(&tmp, out.join(MANIFEST_FILE)).map_err(io_err("write", &tmp))?;
    Ok(PhysicalImage { manifest, info })
}

/// Every file under `root`, relative, `/`-separated, sorted; the manifest excluded.
fn list_files(root: &Path) -> Result<Vec<String>, PhysicalError> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let e = e.map_err(io_err("list", &dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let ft = e.file_type().map_err(io_err("read", &e.path()))?;
            if ft.is_dir() {
                stack.push((e.path(), rel));
            } else if rel != MANIFEST_FILE && !rel.ends_with(".tmp") {
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

async fn read_remote_manifest(transport: &dyn Transport, dir: &str) -> Result<Manifest, BoxError> {
    let tmp = tempdir_in(&std::env::temp_dir())?;
    let local = tmp.join(MANIFEST_FILE);
    let remote = if dir.is_empty() {
        MANIFEST_FILE.to_string()
    } else {
        format!("{}/{MANIFEST_FILE}", dir.trim_end_matches('/'))
    };
    let r = transport.fetch(&remote, 0, &local).await;
    let text = r.and_then(|_| Ok(std::fs::read_to_string(&local)?));
    let _ = std::fs::remove_dir_all(&tmp);
    let text = text.map_err(|e| format!("cannot read the image's {remote}: {e}"))?;
    Ok(Manifest::from_json(&text)?)
}

/// Fetches every file of the image in `dir` into `local` with [`fetch_verified`]
/// (resuming partial files, checking size and SHA-256); returns the bytes fetched and how
/// many files were resumed. The manifest itself is not written locally.
async fn fetch_physical_image(
    transport: Arc<dyn Transport>,
    dir: &str,
    local: &Path,
    parallel: usize,
    policy: &RetryPolicy,
) -> Result<(u64, usize), PhysicalError> {
    let manifest = read_remote_manifest(&*transport, dir)
        .await
        .map_err(|e| PhysicalError::Precondition(e.to_string()))?;
    let sub = SubdirTransport {
        inner: transport,
        prefix: dir.trim_matches('/').to_string(),
    };
    let mut futures = Vec::new();
    for entry in &manifest.files {
        futures.push(fetch_verified(&sub, entry, local, policy));
    }
    let reports: Vec<_> = futures_util::stream::iter(futures)
        .buffer_unordered(parallel.max(1))
        .try_collect()
        .await?;
    Ok((
        reports.iter().map(|r| r.bytes_transferred).sum(),
        reports
            .iter()
            .filter(|r| !r.resumed_from.is_empty())
            .count(),
    ))
}

/// A transport seen from one of its directories.
struct SubdirTransport {
    inner: Arc<dyn Transport>,
    prefix: String,
}

impl SubdirTransport {
    fn path(&self, p: &str) -> String {
        if self.prefix.is_empty() {
            p.to_string()
        } else if p.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}/{p}", self.prefix)
        }
    }
}

#[async_trait]
impl Transport for SubdirTransport {
    async fn list(&self, dir: &str) -> Result<Vec<amsu_core::RemoteEntry>, BoxError> {
        self.inner.list(&self.path(dir)).await
    }
    async fn size(&self, path: &str) -> Result<Option<u64>, BoxError> {
        self.inner.size(&self.path(path)).await
    }
    async fn fetch(&self, path: &str, offset: u64, local: &Path) -> Result<u64, BoxError> {
        self.inner.fetch(&self.path(path), offset, local).await
    }
    async fn put(&self, local: &Path, path: &str) -> Result<u64, BoxError> {
        self.inner.put(local, &self.path(path)).await
    }
    async fn delete(&self, path: &str) -> Result<(), BoxError> {
        self.inner.delete(&self.path(path)).await
    }
    async fn mkdir(&self, path: &str) -> Result<(), BoxError> {
        self.inner.mkdir(&self.path(path)).await
    }
}

/// A rough size of the master's data: tables and indexes, plus the redo log.
async fn master_size_estimate(s: &mut Session) -> Result<u64, MysqlError> {
    let v = s
        .column(
            "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) + @@innodb_log_file_size FROM information_schema.TABLES",
            "estimating the size of the master's data",
        )
        .await?;
    Ok(v.first().and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) as u64)
}

/// The staging directory, empty and marked as ours; a resumable earlier one is kept.
fn prepare_staging(staged: &Path, resumable: bool) -> Result<(), PhysicalError> {
    if staged.exists() {
        if !staged.join(STAGING_MARKER).exists() {
            return Err(PhysicalError::Precondition(format!(
                "{} exists and was not made by amsu; remove it or choose another staging directory",
                staged.display()
            )));
        }
        if resumable {
            return Ok(());
        }
        std::fs::remove_dir_all(staged).map_err(io_err("remove", staged))?;
    }
    std::fs::create_dir_all(staged).map_err(io_err("create", staged))?;
    let marker = staged.join(STAGING_MARKER);
    std::fs::write(&marker, b"").map_err(io_err("write", &marker))
}

/// An option file only the current user can read, deleted when dropped.
struct SecretFile(PathBuf);

impl SecretFile {
    fn create(path: PathBuf, text: &str) -> Result<SecretFile, PhysicalError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("create", &path))?;
        let guard = SecretFile(path.clone());
        f.write_all(text.as_bytes())
            .map_err(io_err("write", &path))?;
        Ok(guard)
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `mariadb-backup --backup` against `master` into `target`; the password in an option
/// file, never on the command line.
async fn backup_local(
    tool: &Path,
    master: &ServerAddr,
    target: &Path,
    work_dir: &Path,
    parallel: usize,
    throttle: BackupThrottle,
) -> Result<Vec<LogLine>, PhysicalError> {
    let mut cnf = String::from("[xtrabackup]\n");
    if let Some(pw) = master.password.as_ref().filter(|p| !p.is_empty()) {
        if !option_file::can_hold(pw.expose()) {
            return Err(PhysicalError::Precondition(
                "the master password contains a NUL character, which an option file cannot hold"
                    .into(),
            ));
        }
        cnf.push_str(&format!("password={}\n", option_file::value(pw.expose())));
    }
    let secret = SecretFile::create(work_dir.join("backup.cnf"), &cnf)?;
    let mut cmd = throttle.command(tool);
    // --defaults-file must come first.
    cmd.arg(format!("--defaults-file={}", secret.0.display()))
        .arg("--backup")
        // The redo log copier checks every second by default, and stopping it is part of
        // the commit-blocked time.
        .arg(format!("--log-copy-interval={LOG_COPY_INTERVAL_MS}"))
        .arg(format!("--target-dir={}", target.display()))
        .arg(format!("--parallel={}", parallel.max(1)))
        .arg(format!("--host={}", master.host))
        .arg(format!("--port={}", master.port))
        .arg(format!("--user={}", master.user))
        .args(throttle.args());
    let log = work_dir.join("backup.log");
    let r = run_logged(cmd, None, &log, "mariadb-backup --backup").await;
    drop(secret);
    r
}

/// Runs `command` with `sh -c`, its stdout unpacked by `mbstream -x` into `target`.
async fn backup_command(
    command: &str,
    target: &Path,
    work_dir: &Path,
) -> Result<Vec<LogLine>, PhysicalError> {
    let mbstream = find_program(&["mbstream"])?;
    let log = work_dir.join("backup.log");
    let mb_log = work_dir.join("mbstream.log");
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(command);
    let mut mb = tokio::process::Command::new(&mbstream);
    mb.arg("-x")
        .arg("-C")
        .arg(target)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&mb_log).map_err(io_err("create", &mb_log))?)
        .kill_on_drop(true);
    run_logged(cmd, Some((mb, mb_log)), &log, "the master backup command").await
}

async fn prepare(tool: &Path, target: &Path, work_dir: &Path) -> Result<(), PhysicalError> {
    let mut cmd = tokio::process::Command::new(tool);
    cmd.arg("--prepare")
        .arg(format!("--target-dir={}", target.display()));
    run_logged(
        cmd,
        None,
        &work_dir.join("prepare.log"),
        "mariadb-backup --prepare",
    )
    .await
    .map(|_| ())
}

/// Runs `cmd`, writing its stderr to `log` line by line with arrival times. With `sink`,
/// its stdout feeds the sink command's stdin (both must succeed); else it goes to the log.
async fn run_logged(
    mut cmd: tokio::process::Command,
    sink: Option<(tokio::process::Command, PathBuf)>,
    log: &Path,
    what: &'static str,
) -> Result<Vec<LogLine>, PhysicalError> {
    let fail = |status: String| PhysicalError::Tool {
        what,
        status,
        log: log.to_path_buf(),
        log_tail: tail(log),
    };
    let mut file = tokio::fs::File::create(log)
        .await
        .map_err(io_err("create", log))?;
    cmd.stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if sink.is_some() {
        cmd.stdout(Stdio::piped());
    } else {
        let out = std::fs::OpenOptions::new()
            .append(true)
            .open(log)
            .map_err(io_err("open", log))?;
        cmd.stdout(out);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    let mut sink_child = match sink {
        Some((mut s, s_log)) => {
            let out: Stdio = child
                .stdout
                .take()
                .expect("piped")
                .try_into()
                .map_err(|e: io::Error| fail(e.to_string()))?;
            s.stdin(out);
            Some((
                s.spawn()
                    .map_err(|e| fail(format!("cannot run mbstream: {e}")))?,
                s_log,
            ))
        }
        None => None,
    };
    let stderr = child.stderr.take().expect("piped");
    let mut reader = BufReader::new(stderr);
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .await
            .map_err(io_err("read the output of", log))?;
        if n == 0 {
            break;
        }
        let arrived = start.elapsed();
        let _ = file.write_all(&buf).await;
        lines.push(LogLine {
            arrived: Some(arrived),
            text: String::from_utf8_lossy(&buf).trim_end().to_string(),
        });
    }
    let _ = file.flush().await;
    let status = child.wait().await.map_err(|e| fail(e.to_string()))?;
    if let Some((mut s, s_log)) = sink_child.take() {
        let st = s.wait().await.map_err(|e| fail(e.to_string()))?;
        if !st.success() {
            return Err(PhysicalError::Tool {
                what: "mbstream -x",
                status: st.to_string(),
                log_tail: tail(&s_log),
                log: s_log,
            });
        }
    }
    if !status.success() {
        return Err(fail(status.to_string()));
    }
    Ok(lines)
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

async fn tool_version(tool: &Path) -> Option<Version> {
    let out = tokio::process::Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    parse::tool_version(&text)
}

fn find_program(names: &[&str]) -> Result<PathBuf, PhysicalError> {
    let dirs = programs::search_dirs();
    programs::find_in(names, &dirs).ok_or_else(|| PhysicalError::ToolMissing {
        tool: names[0].to_string(),
        searched: programs::display_dirs(&dirs),
    })
}

/// `DIR.suffix` next to `dir`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "datadir".into());
    dir.with_file_name(format!("{name}.{suffix}"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn tempdir_in(parent: &Path) -> Result<PathBuf, PhysicalError> {
    let dir = parent.join(format!(
        ".amsu-tmp-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    Ok(dir)
}

/// Free bytes on the file system holding `path` (or its nearest existing ancestor).
fn free_space(path: &Path) -> io::Result<u64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent().unwrap_or(Path::new("/"));
    }
    let st = nix::sys::statvfs::statvfs(p).map_err(io::Error::from)?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

fn tree_size(root: &Path) -> u64 {
    list_files(root)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| std::fs::metadata(root.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Removes the master's replication metadata and identity from a copied data directory.
fn remove_stale(dir: &Path) -> Result<(), PhysicalError> {
    for e in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let e = e.map_err(io_err("list", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().map(|t| t.is_file()).unwrap_or(false)
            && parse::is_stale_top_level_file(&name)
        {
            std::fs::remove_file(e.path()).map_err(io_err("remove", &e.path()))?;
        }
    }
    Ok(())
}

/// Gives `dst` and everything in it the owner of `src` (when running as root).
fn copy_ownership(src: &Path, dst: &Path) -> Result<(), PhysicalError> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let m = std::fs::metadata(src).map_err(io_err("read", src))?;
    let (uid, gid) = (m.uid(), m.gid());
    let mut stack = vec![dst.to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).map_err(io_err("chown", &p))?;
        if p.is_dir() && !p.is_symlink() {
            for e in std::fs::read_dir(&p).map_err(io_err("list", &p))? {
                stack.push(e.map_err(io_err("list", &p))?.path());
            }
        }
    }
    Ok(())
}

/// Renames `src` to `dst`; across file systems, copies and then removes `src`.
fn move_tree(src: &Path, dst: &Path) -> io::Result<()> {
    match std::fs::rename(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            copy_tree(src, dst)?;
            std::fs::remove_dir_all(src)
        }
        Err(e) => Err(e),
    }
}

fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    std::fs::create_dir(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else {
            std::fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_max_rate_becomes_whole_throttle_chunks() {
        assert_eq!(BackupThrottle::chunks_for(1), 1);
        assert_eq!(BackupThrottle::chunks_for(10 << 20), 1);
        assert_eq!(BackupThrottle::chunks_for((10 << 20) + 1), 2);
        assert_eq!(BackupThrottle::chunks_for(100 << 20), 10);
        let o = PhysicalOptions::default().max_rate(Some(50 << 20));
        assert_eq!(o.throttle.args(), vec!["--throttle=5".to_string()]);
        assert!(PhysicalOptions::default().throttle.args().is_empty());
        assert!(PhysicalOptions::default().throttle.ionice);
    }

    #[test]
    fn siblings() {
        assert_eq!(
            sibling(Path::new("/var/lib/mysql"), "amsu-work"),
            PathBuf::from("/var/lib/mysql.amsu-work")
        );
    }

    #[test]
    fn replica_left_messages_say_which_data() {
        let m = ReplicaLeft::RolledBack {
            failed_dir: "/d.amsu-failed-1".into(),
        }
        .to_string();
        assert!(m.contains("old data directory was put back"), "{m}");
        assert!(m.contains("/d.amsu-failed-1"), "{m}");
        assert!(ReplicaLeft::NewDataRunning
            .to_string()
            .contains("new data directory"));
    }

    #[test]
    fn staging_is_ours_only() {
        let base = tempdir_in(&std::env::temp_dir()).unwrap();
        let staged = base.join("image");
        std::fs::create_dir_all(&staged).unwrap();
        assert!(matches!(
            prepare_staging(&staged, false),
            Err(PhysicalError::Precondition(_))
        ));
        std::fs::remove_dir_all(&staged).unwrap();
        prepare_staging(&staged, false).unwrap();
        std::fs::write(staged.join("partial"), b"x").unwrap();
        prepare_staging(&staged, true).unwrap();
        assert!(staged.join("partial").exists(), "a resumable copy is kept");
        prepare_staging(&staged, false).unwrap();
        assert!(!staged.join("partial").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn secret_file_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempdir_in(&std::env::temp_dir()).unwrap();
        let path = base.join("x.cnf");
        {
            let _f = SecretFile::create(path.clone(), "[xtrabackup]\npassword=\"s\"\n").unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!path.exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
