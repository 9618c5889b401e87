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
pub mod encode;
pub mod image;
mod image_restore;
mod indexes;
mod load;
mod logical;
mod meter;
mod outfile;
mod physical;
mod progress;
pub mod restore;
mod snapshot;

pub use backup::ImageBackup;
pub use image::{ImageError, ImageReader, ImageWriter};
pub use image_restore::{ImageRestore, ImageSource};
pub use logical::{LogicalCopy, LogicalOptions};
pub use outfile::{OutfileCopy, OutfileTarget};
pub use physical::{
    backup_image, CommandService, ImageInfo, PhysicalCopy, PhysicalError, PhysicalImage,
    PhysicalOptions, PhysicalSource, PhysicalTimings, ReplicaLeft, ReplicaService, SandboxService,
    ServiceCommandError, SystemdService,
};

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
    /// A bug or a panic in a worker.
    #[error("internal error: {0}")]
    Internal(String),
}
