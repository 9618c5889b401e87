//! # amsu-transfer
//!
//! Moves amsu images between the host where a backup is kept and the replica host.
//!
//! - Transports implementing [`amsu_core::Transport`]: [`LocalTransport`] (a directory) and
//!   [`FtpTransport`] (FTP or explicit FTPS on suppaftp, passive mode, binary type, pooled
//!   connections so files can be fetched in parallel, `REST` to resume). Every path from a
//!   caller, a listing or a manifest that is absolute, has `..` or leaves the root is
//!   refused. [`S3Transport`] keeps images in S3-compatible object storage (AWS S3,
//!   Garage, MinIO) on `object_store`: multipart uploads on parallel streams with a
//!   SHA-256 per part, resumed parts, ranged (resumable) downloads.
//! - Robust transfers over any transport: [`fetch_verified`] resumes a partial file,
//!   retries connection errors with exponential backoff ([`RetryPolicy`]) and checks size
//!   and SHA-256 against the manifest; [`fetch_image`] and [`put_image`] move a whole image
//!   with N parallel workers, the manifest first read and last written, so an image
//!   directory with a `manifest.json` is always complete.
//! - One typed error, [`TransferError`]; none of its messages contains a password.
//!
//! ```no_run
//! use amsu_core::Secret;
//! use amsu_transfer::{fetch_image, FtpConfig, FtpTransport, RetryPolicy};
//!
//! # async fn run() -> Result<(), amsu_transfer::TransferError> {
//! let config = FtpConfig::from_url("ftps://repl@db1.example:21/images")?
//!     .password(Secret::new(std::env::var("AMSU_FTP_PASSWORD").unwrap_or_default()));
//! let ftp = FtpTransport::new(config)?;
//! let report = fetch_image(&ftp, "2024-06-01", "/var/tmp/image".as_ref(), 4,
//!     &RetryPolicy::default(), &|done, total| eprintln!("{done}/{total} bytes")).await?;
//! println!("{} files", report.manifest.files.len());
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod error;
mod ftp;
mod image;
mod local;
mod retry;
mod s3;
mod stream;

pub use error::TransferError;
pub use ftp::{FtpConfig, FtpSecurity, FtpTransport, TlsTrust};
pub use image::{fetch_image, fetch_verified, put_image, sha256_file, FetchReport, ImageReport};
pub use local::LocalTransport;
pub use retry::RetryPolicy;
pub use s3::{is_s3_url, S3Config, S3Credentials, S3Transport};
pub use stream::{ImageUpload, UploadStats, UPLOAD_STATE_FILE};
