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

mod copy;
mod facts;
mod findings;
mod parse;
mod process;
mod service;
mod swap;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amsu_core::{
    BoxError, CopyReport, DataCopier, EventSink, Finding, Preflight, ServerAddr, Transport,
};
use amsu_mysql::MysqlError;
use amsu_transfer::{RetryPolicy, TransferError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use copy::{backup_image, PhysicalImage};
pub(crate) use parse::{commit_blocked_ms, LogLine};
pub use service::{
    CommandService, ReplicaService, SandboxService, ServiceCommandError, SystemdService,
};

/// Names the backup tool is looked for under, in order.
pub(crate) const BACKUP_TOOLS: &[&str] = &["mariadb-backup", "mariabackup"];
/// The file in a physical image with what amsu measured while making it.
pub(crate) const IMAGE_INFO_FILE: &str = "amsu-physical.json";
/// The file in a physical image with the backup tool's log.
pub(crate) const IMAGE_LOG_FILE: &str = "amsu-backup.log";
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
    pub(crate) fn chunks_for(bytes_per_second: u64) -> u64 {
        bytes_per_second.div_ceil(THROTTLE_CHUNK_BYTES).max(1)
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
#[non_exhaustive]
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

/// What amsu measured while making an image (`amsu-physical.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
}
