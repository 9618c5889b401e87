//! The copy orchestration: backup (or image fetch), prepare, install, count; and the
//! making and fetching of physical images.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use amsu_core::manifest::{FileEntry, Manifest, SourceServer, MANIFEST_FILE};
use amsu_core::{
    is_local_host, BoxError, CopyReport, Event, EventSink, Role, ServerAddr, Transport,
};
use amsu_mysql::conn::Session;
use amsu_transfer::{fetch_verified, sha256_file, RetryPolicy};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};

use super::facts::read_remote_manifest;
use super::process::{backup_command, backup_local, find_program, prepare};
use super::swap::unix_now;
use super::{
    commit_blocked_ms, io_err, parse, BackupThrottle, ImageInfo, PhysicalCopy, PhysicalError,
    PhysicalSource, PhysicalTimings, ReplicaLeft, BACKUP_TOOLS, IMAGE_INFO_FILE, IMAGE_LOG_FILE,
    PREPARE_MARKER, STAGING_MARKER,
};

impl PhysicalCopy {
    pub(super) async fn run(&self, events: &dyn EventSink) -> Result<CopyReport, PhysicalError> {
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
}

/// What [`backup_image`] made.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PhysicalImage {
    /// The image's manifest (also in `DIR/manifest.json`).
    pub manifest: Manifest,
    /// What was measured.
    pub info: ImageInfo,
}

/// Makes a physical image of the master in `out` (which must not exist or be empty):
/// `mariadb-backup --backup` on this host (the master must be local), its log, the
/// measurements (`amsu-physical.json`) and, last, `manifest.json` with every file's size
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
    let lines = backup_local(
        &tool,
        master,
        out,
        work.path(),
        cores,
        BackupThrottle::default(),
    )
    .await;
    let log = work.path().join("backup.log");
    let _ = std::fs::copy(&log, out.join(IMAGE_LOG_FILE));
    drop(work);
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
        let sha256 = sha256_file(&path).await?;
        files.push(FileEntry::new(rel, size, sha256));
    }
    let manifest = Manifest::new(
        "physical",
        SourceServer::new(
            server.flavor,
            server.version_string.clone(),
            server.server_id,
        ),
        coordinates,
        files,
    )
    .with_created_unix(unix_now());
    let tmp = out.join(format!("{MANIFEST_FILE}.tmp"));
    std::fs::write(&tmp, manifest.to_json()).map_err(io_err("write", &tmp))?;
    std::fs::rename(&tmp, out.join(MANIFEST_FILE)).map_err(io_err("write", &tmp))?;
    Ok(PhysicalImage { manifest, info })
}

/// Every file under `root`, relative, `/`-separated, sorted; the manifest excluded.
pub(super) fn list_files(root: &Path) -> Result<Vec<String>, PhysicalError> {
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

/// Fetches every file of the image in `dir` into `local` with [`fetch_verified`]
/// (resuming partial files, checking size and SHA-256); returns the bytes fetched and how
/// many files were resumed. The manifest itself is not written locally.
pub(super) async fn fetch_physical_image(
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

/// The staging directory, empty and marked as ours; a resumable earlier one is kept.
pub(super) fn prepare_staging(staged: &Path, resumable: bool) -> Result<(), PhysicalError> {
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

/// A new private directory in `parent` (created when missing), removed when dropped.
pub(super) fn tempdir_in(parent: &Path) -> Result<tempfile::TempDir, PhysicalError> {
    std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    tempfile::Builder::new()
        .prefix(".amsu-tmp-")
        .tempdir_in(parent)
        .map_err(io_err("create a temporary directory in", parent))
}

pub(super) fn tree_size(root: &Path) -> u64 {
    list_files(root)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| std::fs::metadata(root.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_is_ours_only() {
        let base = tempfile::tempdir().unwrap();
        let staged = base.path().join("image");
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
    }

    #[test]
    fn a_subdir_transport_prefixes_paths() {
        let inner: Arc<dyn Transport> =
            Arc::new(amsu_transfer::LocalTransport::new("/nonexistent"));
        let root = SubdirTransport {
            inner: inner.clone(),
            prefix: String::new(),
        };
        assert_eq!(root.path("a/b"), "a/b");
        assert_eq!(root.path(""), "");
        let sub = SubdirTransport {
            inner,
            prefix: "img/1".into(),
        };
        assert_eq!(sub.path("ibdata1"), "img/1/ibdata1");
        assert_eq!(sub.path(""), "img/1");
    }

    #[test]
    fn list_files_is_relative_sorted_and_skips_the_manifest() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path();
        std::fs::create_dir_all(root.join("db/sub")).unwrap();
        for f in ["ibdata1", "db/t.ibd", "db/sub/x", MANIFEST_FILE, "part.tmp"] {
            std::fs::write(root.join(f), b"12345").unwrap();
        }
        assert_eq!(
            list_files(root).unwrap(),
            vec!["db/sub/x", "db/t.ibd", "ibdata1"]
        );
        assert_eq!(tree_size(root), 15);
        let made = tempdir_in(&root.join("new/parent")).unwrap();
        assert!(
            made.path().starts_with(root.join("new/parent")),
            "the parent is created"
        );
        assert!(matches!(
            list_files(&root.join("missing")),
            Err(PhysicalError::Io { action: "list", .. })
        ));
    }
}
