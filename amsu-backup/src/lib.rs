//! # amsu-backup
//!
//! The backup drivers of amsu. The `logical` method ([`LogicalCopy`]) takes a consistent
//! snapshot of the master with parallel worker connections that share one point in time
//! (MariaDB: `BACKUP STAGE BLOCK_COMMIT` held only while every worker starts its
//! snapshot transaction and the coordinates are read), and streams each chunk straight
//! into the replica with `LOAD DATA LOCAL INFILE`, one transaction per chunk.
//!
//! The copy implements `amsu_core::DataCopier`, so the orchestrator drives it like any
//! other method.

#![deny(missing_docs)]

mod backup;
pub mod catalog;
mod donor;
mod encode;
pub mod facade;
pub mod fanout;
pub mod fanout_restore;
mod governor;
pub mod image;
mod image_restore;
mod image_stream;
mod indexes;
mod load;
mod logical;
mod meter;
mod outfile;
mod physical;
mod progress;
mod restore;
mod signature;
mod sizing;
mod snapshot;
mod stream_resume;

pub use backup::ImageBackup;
pub use donor::Donor;
pub(crate) use donor::DonorChecks;
pub use encode::{push_field, push_values};
pub use facade::{
    backup, check, check_master, check_repl_user, check_report, default_journal_dir,
    default_journal_path, restore, setup, status, verify, BackupConfig, BackupFailure,
    BackupMethod, BackupReport, BackupTarget, CheckReport, CopyMethod, FileJournal, Health,
    Provision, ReplUser, ReplUserError, ReplicationSettings, RestoreConfig, RestoreFailure,
    RestoreReport, RuntimeOnly, SetupConfig, SetupError, SetupOutcome, StartReplication,
    StatusConfig, StatusError, StatusReport, VerifyConfig,
};
pub use governor::GovernorOptions;
pub use image::{ImageError, ImageReader, ImageWriter};
pub use image_restore::{ImageRestore, ImageSource};
pub use logical::{LogicalCopy, LogicalOptions};
pub use outfile::{OutfileCopy, OutfileTarget};
pub use physical::{
    backup_image, BackupThrottle, CommandService, ImageInfo, PhysicalCopy, PhysicalError,
    PhysicalImage, PhysicalOptions, PhysicalSource, PhysicalTimings, ReplicaLeft, ReplicaService,
    SandboxService, ServiceCommandError, SystemdService,
};
pub use signature::{ImageKey, KeyError};

use amsu_mysql::MysqlError;

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// A server error (connection or statement), with the server and what was running.
    #[error(transparent)]
    Mysql(#[from] MysqlError),
    /// The replica stopped reading a chunk (its own error is reported with it).
    #[error("the replica stopped loading the chunk")]
    LoadStopped,
    /// Something amsu cannot copy faithfully yet; refused rather than copied wrong.
    #[error("cannot copy {0}")]
    Unsupported(String),
    /// Statements on the master that would hold the snapshot's lock kept running for
    /// longer than amsu waits; nothing was locked.
    #[error("the master is busy with statements that would make the snapshot's lock wait \
             (and stall writes behind it), still running after {waited_secs} s: {statements}; \
             nothing was locked. Let them finish (or stop them with KILL <id>), then run amsu again")]
    MasterBusy {
        /// The statements: `thread ID (user U, N s): SQL…`.
        statements: String,
        /// How long amsu waited.
        waited_secs: u64,
    },
    /// A statement changed the master's schema between reading it and taking the
    /// snapshot: the copy would not match. Nothing was copied from the snapshot.
    #[error(
        "the master's schema changed (a DDL statement ran) while amsu read it; nothing \
             was copied from the snapshot. Run amsu again (at a time without schema changes)"
    )]
    SchemaChanged,
    /// A bug or a panic in a worker.
    #[error("internal error: {0}")]
    Internal(String),
}
