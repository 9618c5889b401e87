//! `amsu backup` as a library: a consistent logical image of the master, written to a
//! local directory, or staged locally and uploaded (FTP), or uploaded chunk by chunk
//! while the dump goes on (object storage); or a physical image (mariadb-backup on the
//! master's host, [`BackupMethod::Physical`]) written locally or staged and uploaded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use amsu_core::manifest::{Manifest, MANIFEST_FILE};
use amsu_core::{
    kind_of, BoxError, CopyReport, ErrorKind, EventSink, RemoteEntry, ServerAddr, Transport,
};
use amsu_transfer::{put_image, ImageUpload, RetryPolicy, TransferError};

use crate::{backup_image, ImageBackup, ImageError, ImageInfo, ImageKey, PhysicalError};

/// How a backup reads the master.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackupMethod {
    /// A consistent logical snapshot over the MySQL protocol (chunks of rows, optionally
    /// compressed and signed). The default.
    #[default]
    Logical,
    /// `mariadb-backup --backup` on this host (the master must run here): its files with
    /// a manifest of checksums, restored by a setup with the physical method. Not
    /// compressed, chunked or signed; a [`BackupTarget::Streamed`] target is staged and
    /// uploaded like [`BackupTarget::Staged`] into the transport's root.
    Physical,
}

/// Where a backup goes.
#[derive(Clone)]
#[non_exhaustive]
pub enum BackupTarget {
    /// A local directory (created; an image already there is refused unless
    /// [`BackupConfig::overwrite`]).
    Local(PathBuf),
    /// Written to a local staging directory (removed afterwards, also after a failure),
    /// then uploaded to `dir` of `transport` with `streams` parallel uploads.
    Staged {
        /// Where the image is uploaded.
        transport: Arc<dyn Transport>,
        /// The image directory on the transport (relative; empty: its root).
        dir: String,
        /// Parallel uploads.
        streams: usize,
    },
    /// Every chunk uploaded to the root of `transport` as soon as it is written, with
    /// `streams` parallel uploads, the manifest last; files the store holds already
    /// with the right size and checksum are not sent again (a rerun goes on).
    Streamed {
        /// Where the image is uploaded.
        transport: Arc<dyn Transport>,
        /// Parallel uploads.
        streams: usize,
    },
}

impl std::fmt::Debug for BackupTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupTarget::Local(p) => f.debug_tuple("Local").field(p).finish(),
            BackupTarget::Staged { dir, streams, .. } => f
                .debug_struct("Staged")
                .field("dir", dir)
                .field("streams", streams)
                .finish_non_exhaustive(),
            BackupTarget::Streamed { streams, .. } => f
                .debug_struct("Streamed")
                .field("streams", streams)
                .finish_non_exhaustive(),
        }
    }
}

/// A logical backup: the master, where it goes and how. Build it with
/// [`BackupConfig::new`] and the by-value setters; each documents its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupConfig {
    master: ServerAddr,
    target: BackupTarget,
    method: BackupMethod,
    threads: usize,
    zstd: Option<i32>,
    key: Option<ImageKey>,
    chunk_bytes: Option<u64>,
    overwrite: bool,
}

impl BackupConfig {
    /// The zstd level to compress with when nobody chose one: 1. Measured on amsu's row
    /// chunks on a 2-core host (`zstd -b`, BENCHMARKS.md): level 1 compresses at about
    /// 210–230 MB/s a core, level 3 at 40–70 MB/s, and level 1's output was no larger
    /// (6.15× vs 6.0×); at level 3 two cores could not keep up with the dump (~170–200
    /// MB/s), so the compressor, not the store, would set the pace.
    pub const AUTO_ZSTD_LEVEL: i32 = 1;

    /// The compression of an image when nobody chose one: zstd at
    /// [`AUTO_ZSTD_LEVEL`](Self::AUTO_ZSTD_LEVEL) for an image going to a remote store
    /// (`remote`: FTP, S3 — the upload, slower than the dump, sets the pace, so fewer bytes
    /// finish sooner), none for a local directory (the compressor would slow the dump).
    pub fn auto_zstd(remote: bool) -> Option<i32> {
        remote.then_some(Self::AUTO_ZSTD_LEVEL)
    }

    /// A backup of `master` to `target`. Defaults: the logical method, 2 threads, no
    /// compression, not signed, the default chunk size, an existing local image refused.
    pub fn new(master: ServerAddr, target: BackupTarget) -> Self {
        BackupConfig {
            master,
            target,
            method: BackupMethod::Logical,
            threads: 2,
            zstd: None,
            key: None,
            chunk_bytes: None,
            overwrite: false,
        }
    }

    /// How the master is read. Default: [`BackupMethod::Logical`].
    pub fn method(mut self, method: BackupMethod) -> Self {
        self.method = method;
        self
    }

    /// Parallel readers and writers (the physical method: parallel uploads). Default: 2.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Compress the chunks with zstd at `level` (logical method only). Default: none.
    pub fn zstd(mut self, level: Option<i32>) -> Self {
        self.zstd = level;
        self
    }

    /// Sign the image with `key` (logical method only: a physical backup with a key is
    /// refused with [`BackupFailure::PhysicalNotSigned`]). Default: not signed.
    pub fn key(mut self, key: Option<ImageKey>) -> Self {
        self.key = key;
        self
    }

    /// The size of a chunk, in bytes. Default: the image writer's.
    pub fn chunk_bytes(mut self, bytes: Option<u64>) -> Self {
        self.chunk_bytes = bytes;
        self
    }

    /// Replace an image already in the local target directory. Default: false (refused
    /// with [`BackupFailure::ImageExists`], nothing changed).
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// The master.
    pub fn master_addr(&self) -> &ServerAddr {
        &self.master
    }

    fn backup(&self, dir: &Path) -> ImageBackup {
        let mut b = ImageBackup::new(self.master.clone(), dir)
            .threads(self.threads)
            .zstd(self.zstd)
            .key(self.key.clone());
        if let Some(n) = self.chunk_bytes {
            b = b.chunk_bytes(n);
        }
        b
    }
}

/// The upload of a [`BackupTarget::Staged`] or [`BackupTarget::Streamed`] backup.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct UploadReport {
    /// Bytes sent.
    pub bytes: u64,
    /// Seconds the upload took.
    pub seconds: f64,
    /// Parallel uploads.
    pub streams: usize,
    /// MB/s in total.
    pub mb_per_s: f64,
    /// MB/s per stream, while a stream was busy.
    pub mb_per_s_per_stream: f64,
    /// Streamed only: how long the upload went on after the dump ended, in seconds.
    pub seconds_after_dump: Option<f64>,
    /// Streamed only: files sent.
    pub files: Option<usize>,
    /// Streamed only: files the store already held (not sent again).
    pub files_skipped: Option<usize>,
    /// Streamed only: bytes of those files.
    pub bytes_skipped: Option<u64>,
}

/// What [`backup`] made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupReport {
    /// The image's manifest.
    pub manifest: Manifest,
    /// What was copied (the logical method; empty for the physical method, see
    /// [`physical`](Self::physical)).
    pub report: CopyReport,
    /// The upload, for a remote target.
    pub upload: Option<UploadReport>,
    /// The physical method: what was measured while the image was made.
    pub physical: Option<ImageInfo>,
}

/// A failed [`backup`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupFailure {
    /// The local target already holds an image (its manifest exists); nothing was changed.
    #[error("{} already holds an image ({} exists); nothing was changed", dir.display(), dir.join(MANIFEST_FILE).display())]
    ImageExists {
        /// The target directory.
        dir: PathBuf,
    },
    /// The old image could not be removed ([`BackupConfig::overwrite`]).
    #[error("cannot remove the old image {}: {source}", dir.display())]
    Overwrite {
        /// The target directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The local staging directory could not be made (nothing was read from the master).
    #[error("cannot create a staging directory: {0}")]
    Staging(#[source] std::io::Error),
    /// The upload could not be prepared (nothing was read from the master).
    #[error("preparing the upload: {0}")]
    Prepare(#[source] TransferError),
    /// The dump failed.
    #[error("backup of {master} failed: {source}")]
    Dump {
        /// The master, as shown (no password).
        master: String,
        /// Why.
        #[source]
        source: Box<ImageError>,
    },
    /// A physical backup was asked for with a key: physical images are not signed
    /// (nothing was read from the master).
    #[error("a physical image is not signed; a key signs logical images only")]
    PhysicalNotSigned,
    /// The physical backup (mariadb-backup) failed.
    #[error("physical backup of {master} failed: {source}")]
    Physical {
        /// The master, as shown (no password).
        master: String,
        /// Why.
        #[source]
        source: Box<PhysicalError>,
    },
    /// The image was written but its upload failed (a rerun of a streamed backup sends
    /// only what is missing).
    #[error("uploading the image: {0}")]
    Upload(#[source] TransferError),
}

impl BackupFailure {
    /// What kind of failure this is, for a program to branch on without downcasting:
    /// [`ErrorKind::Precondition`] when nothing was done because of the target or the
    /// request, else the kind in its source chain (a refused S3 or FTP login is
    /// [`ErrorKind::Authentication`], an unreachable store [`ErrorKind::Connection`], any
    /// other failure of the store [`ErrorKind::Transfer`], see
    /// [`TransferError::kind`]), else [`ErrorKind::Copy`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            BackupFailure::ImageExists { .. } | BackupFailure::PhysicalNotSigned => {
                ErrorKind::Precondition
            }
            other => kind_of(other).unwrap_or(ErrorKind::Copy),
        }
    }
}

/// Writes a consistent logical image of the master of `config` to its target; `events`
/// hears the progress. Changes nothing on the master.
pub async fn backup(
    config: &BackupConfig,
    events: Arc<dyn EventSink>,
) -> Result<BackupReport, BackupFailure> {
    if config.method == BackupMethod::Physical {
        return physical(config).await;
    }
    match &config.target {
        BackupTarget::Local(dir) => {
            clear_local_target(dir, config.overwrite)?;
            let (manifest, report) = dump(config, dir, events).await?;
            Ok(BackupReport {
                manifest,
                report,
                upload: None,
                physical: None,
            })
        }
        BackupTarget::Staged {
            transport,
            dir,
            streams,
        } => {
            let staging = tempfile::Builder::new()
                .prefix("amsu-backup-")
                .tempdir()
                .map_err(BackupFailure::Staging)?;
            let (manifest, report) = dump(config, staging.path(), events).await?;
            let metered = Metered::new(&**transport);
            let start = Instant::now();
            put_image(
                staging.path(),
                &metered,
                dir,
                *streams,
                &RetryPolicy::default(),
                &|_, _| {},
            )
            .await
            .map_err(BackupFailure::Upload)?;
            drop(staging);
            let secs = start.elapsed().as_secs_f64().max(1e-6);
            let (bytes, per_stream) = metered.per_stream();
            Ok(BackupReport {
                manifest,
                report,
                upload: Some(UploadReport {
                    bytes,
                    seconds: secs,
                    streams: *streams,
                    mb_per_s: bytes as f64 / 1e6 / secs,
                    mb_per_s_per_stream: per_stream,
                    ..Default::default()
                }),
                physical: None,
            })
        }
        BackupTarget::Streamed { transport, streams } => {
            let staging = tempfile::Builder::new()
                .prefix("amsu-backup-")
                .tempdir()
                .map_err(BackupFailure::Staging)?;
            let upload = ImageUpload::begin(
                &**transport,
                staging.path(),
                "",
                *streams,
                RetryPolicy::default(),
            )
            .await
            .map_err(BackupFailure::Prepare)?
            // Each chunk leaves the staging directory once it is in the store: the
            // staging directory holds the chunks not uploaded yet, not the whole image.
            .remove_sent(true);
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let b = config.backup(staging.path()).on_file(tx);
            let (result, streamed) = tokio::join!(
                async {
                    let r = b.run(events).await;
                    drop(b);
                    r
                },
                upload.stream(rx)
            );
            let dumped = Instant::now();
            let (manifest, report) = result.map_err(|source| BackupFailure::Dump {
                master: config.master.to_string(),
                source: Box::new(source),
            })?;
            streamed.map_err(BackupFailure::Upload)?;
            let stats = upload
                .finish(&manifest.files)
                .await
                .map_err(BackupFailure::Upload)?;
            drop(staging);
            Ok(BackupReport {
                manifest,
                report,
                upload: Some(UploadReport {
                    bytes: stats.bytes,
                    seconds: stats.seconds,
                    streams: stats.streams,
                    mb_per_s: stats.mb_per_s(),
                    mb_per_s_per_stream: stats.mb_per_s_per_stream(),
                    seconds_after_dump: Some(dumped.elapsed().as_secs_f64()),
                    files: Some(stats.files),
                    files_skipped: Some(stats.files_skipped),
                    bytes_skipped: Some(stats.bytes_skipped),
                }),
                physical: None,
            })
        }
    }
}

/// Before a backup into the local directory `dir`: an image already there (its manifest
/// exists) is refused with [`BackupFailure::ImageExists`], or removed with `overwrite`.
pub fn clear_local_target(dir: &Path, overwrite: bool) -> Result<(), BackupFailure> {
    if dir.join(MANIFEST_FILE).exists() {
        if !overwrite {
            return Err(BackupFailure::ImageExists {
                dir: dir.to_path_buf(),
            });
        }
        std::fs::remove_dir_all(dir).map_err(|source| BackupFailure::Overwrite {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// A physical backup: mariadb-backup into the local target, or into a staging directory
/// (removed afterwards, also after a failure) uploaded to the transport.
async fn physical(config: &BackupConfig) -> Result<BackupReport, BackupFailure> {
    if config.key.is_some() {
        return Err(BackupFailure::PhysicalNotSigned);
    }
    let (transport, dir, streams) = match &config.target {
        BackupTarget::Local(dir) => {
            clear_local_target(dir, config.overwrite)?;
            let image = physical_image(config, dir).await?;
            return Ok(BackupReport {
                manifest: image.manifest,
                report: CopyReport::default(),
                upload: None,
                physical: Some(image.info),
            });
        }
        BackupTarget::Staged {
            transport,
            dir,
            streams,
        } => (transport, dir.as_str(), *streams),
        BackupTarget::Streamed { transport, streams } => (transport, "", *streams),
    };
    let staging = tempfile::Builder::new()
        .prefix("amsu-physical-")
        .tempdir()
        .map_err(BackupFailure::Staging)?;
    let image = physical_image(config, staging.path()).await?;
    let metered = Metered::new(&**transport);
    let start = Instant::now();
    put_image(
        staging.path(),
        &metered,
        dir,
        streams,
        &RetryPolicy::default(),
        &|_, _| {},
    )
    .await
    .map_err(BackupFailure::Upload)?;
    drop(staging);
    let secs = start.elapsed().as_secs_f64().max(1e-6);
    let (bytes, per_stream) = metered.per_stream();
    Ok(BackupReport {
        manifest: image.manifest,
        report: CopyReport::default(),
        upload: Some(UploadReport {
            bytes,
            seconds: secs,
            streams,
            mb_per_s: bytes as f64 / 1e6 / secs,
            mb_per_s_per_stream: per_stream,
            ..Default::default()
        }),
        physical: Some(image.info),
    })
}

async fn physical_image(
    config: &BackupConfig,
    dir: &Path,
) -> Result<crate::PhysicalImage, BackupFailure> {
    backup_image(&config.master, dir, None)
        .await
        .map_err(|source| BackupFailure::Physical {
            master: config.master.to_string(),
            source: Box::new(source),
        })
}

async fn dump(
    config: &BackupConfig,
    dir: &Path,
    events: Arc<dyn EventSink>,
) -> Result<(Manifest, CopyReport), BackupFailure> {
    config
        .backup(dir)
        .run(events)
        .await
        .map_err(|source| BackupFailure::Dump {
            master: config.master.to_string(),
            source: Box::new(source),
        })
}

/// A [`Transport`] that times its uploads: bytes and the time spent in `put` summed over
/// every call, to report MB/s per stream and in total.
struct Metered<'a> {
    inner: &'a dyn Transport,
    bytes: AtomicU64,
    busy_us: AtomicU64,
}

impl<'a> Metered<'a> {
    fn new(inner: &'a dyn Transport) -> Self {
        Metered {
            inner,
            bytes: 0.into(),
            busy_us: 0.into(),
        }
    }

    /// `(bytes, MB/s per stream)`: the bytes uploaded and their rate while a stream was
    /// busy.
    fn per_stream(&self) -> (u64, f64) {
        let b = self.bytes.load(Relaxed);
        let us = self.busy_us.load(Relaxed).max(1);
        (b, b as f64 / us as f64)
    }
}

#[async_trait::async_trait]
impl Transport for Metered<'_> {
    async fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>, BoxError> {
        self.inner.list(dir).await
    }
    async fn size(&self, path: &str) -> Result<Option<u64>, BoxError> {
        self.inner.size(path).await
    }
    async fn fetch(&self, path: &str, offset: u64, local: &Path) -> Result<u64, BoxError> {
        self.inner.fetch(path, offset, local).await
    }
    async fn put(&self, local: &Path, path: &str) -> Result<u64, BoxError> {
        let start = Instant::now();
        let n = self.inner.put(local, path).await?;
        self.busy_us
            .fetch_add(start.elapsed().as_micros() as u64, Relaxed);
        self.bytes.fetch_add(n, Relaxed);
        Ok(n)
    }
    async fn put_bytes(&self, data: bytes::Bytes, path: &str) -> Result<u64, BoxError> {
        let start = Instant::now();
        let n = self.inner.put_bytes(data, path).await?;
        self.busy_us
            .fetch_add(start.elapsed().as_micros() as u64, Relaxed);
        self.bytes.fetch_add(n, Relaxed);
        Ok(n)
    }
    async fn delete(&self, path: &str) -> Result<(), BoxError> {
        self.inner.delete(path).await
    }
    async fn mkdir(&self, path: &str) -> Result<(), BoxError> {
        self.inner.mkdir(path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_to_remote_stores_are_compressed_by_default() {
        assert_eq!(
            BackupConfig::auto_zstd(true),
            Some(BackupConfig::AUTO_ZSTD_LEVEL)
        );
        assert_eq!(BackupConfig::auto_zstd(false), None);
    }

    #[test]
    fn a_failed_upload_says_what_the_store_did() {
        let refused = BackupFailure::Prepare(TransferError::AuthFailed {
            server: "s3".into(),
            user: "AK".into(),
            message: "403".into(),
        });
        assert_eq!(refused.kind(), ErrorKind::Authentication);
        let cut = BackupFailure::Upload(TransferError::Connection {
            server: "s3".into(),
            message: "reset".into(),
        });
        assert_eq!(cut.kind(), ErrorKind::Connection);
        let damaged = BackupFailure::Upload(TransferError::SizeMismatch {
            path: "p".into(),
            expected: 1,
            actual: 2,
        });
        assert_eq!(damaged.kind(), ErrorKind::Transfer);
        let exists = BackupFailure::ImageExists { dir: "/i".into() };
        assert_eq!(exists.kind(), ErrorKind::Precondition);
        let staging = BackupFailure::Staging(std::io::Error::other("full"));
        assert_eq!(staging.kind(), ErrorKind::Io);
    }
}
