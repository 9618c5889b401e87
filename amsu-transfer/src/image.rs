//! Robust whole-file and whole-image transfers over any [`Transport`]: resume, retry,
//! verification against the manifest, manifest last.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use amsu_core::manifest::{
    check_relative_path, FileEntry, Manifest, MANIFEST_FILE, SIGNATURE_FILE,
};
use amsu_core::Transport;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::retry::with_retry;
use crate::{RetryPolicy, TransferError};

/// Suffix of the manifest while it is being fetched; renamed to `manifest.json` last.
const PART_SUFFIX: &str = ".amsu-part";

/// What [`fetch_verified`] did for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchReport {
    /// The image path of the file.
    pub path: String,
    /// Its size (as verified).
    pub size: u64,
    /// Calls to [`Transport::fetch`] made (0 when the local file was already complete).
    pub attempts: u32,
    /// The offsets transfers were resumed from (`> 0`), in order: a partial local file
    /// from an earlier run, or the end of a transfer that was cut.
    pub resumed_from: Vec<u64>,
    /// Bytes actually transferred by this call.
    pub bytes_transferred: u64,
}

/// What [`fetch_image`] or [`put_image`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ImageReport {
    /// The image's manifest.
    pub manifest: Manifest,
    /// Total size of the image's files (the manifest excluded).
    pub bytes_total: u64,
    /// Bytes actually transferred (less than the total when files were resumed).
    pub bytes_transferred: u64,
    /// Files whose transfer was resumed from an offset.
    pub files_resumed: usize,
}

/// Fetches one image file to `local_dir/entry.path` and verifies it against `entry`.
///
/// `entry.path` is relative to the transport's root. A partial local file is resumed from
/// its length; a connection error is retried with `policy`'s backoff, resuming from what
/// arrived (the attempt counter restarts whenever an attempt made progress, so a slow but
/// moving transfer is not abandoned). A transfer that ends before `entry.size` bytes counts
/// as a connection error. Then size and SHA-256 are checked: on a mismatch the local file is
/// deleted and the error names the file and both values.
///
/// Errors: [`TransferError::UnsafePath`] before anything is fetched,
/// [`TransferError::LocalIo`] naming the local path, the transport's error when not
/// retryable or out of attempts, [`TransferError::SizeMismatch`],
/// [`TransferError::ChecksumMismatch`].
pub async fn fetch_verified<T: Transport + ?Sized>(
    transport: &T,
    entry: &FileEntry,
    local_dir: &Path,
    policy: &RetryPolicy,
) -> Result<FetchReport, TransferError> {
    fetch_file(transport, "", entry, local_dir, policy, &|_| {}).await
}

/// [`fetch_verified`] with the remote file at `remote_dir/entry.path`, reporting every
/// change of the local file's length (may be negative when a stale file is dropped).
async fn fetch_file<T: Transport + ?Sized>(
    transport: &T,
    remote_dir: &str,
    entry: &FileEntry,
    local_dir: &Path,
    policy: &RetryPolicy,
    on_bytes: &(dyn Fn(i64) + Send + Sync),
) -> Result<FetchReport, TransferError> {
    check_relative_path(&entry.path).map_err(|_| TransferError::unsafe_path(&entry.path))?;
    let remote = join(remote_dir, &entry.path);
    let local = local_dir.join(&entry.path);
    if let Some(parent) = local.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| TransferError::local(parent, e))?;
    }
    let mut report = FetchReport {
        path: entry.path.clone(),
        size: entry.size,
        attempts: 0,
        resumed_from: Vec::new(),
        bytes_transferred: 0,
    };
    let mut have = local_len(&local).await?;
    on_bytes(have as i64);
    if have > entry.size {
        tracing::info!(path = %entry.path, have, size = entry.size, "local file is longer than the manifest says; fetching it again");
        remove(&local).await?;
        on_bytes(-(have as i64));
        have = 0;
    }
    if entry.size == 0 {
        // Nothing to transfer; the empty file must still exist.
        open_for_append(&local, 0).await?;
    }
    let mut failures = 0u32;
    while have < entry.size {
        if have > 0 {
            report.resumed_from.push(have);
        }
        report.attempts += 1;
        let result = transport.fetch(&remote, have, &local).await;
        let now = local_len(&local).await?;
        let grew = now.saturating_sub(have);
        report.bytes_transferred += grew;
        on_bytes(now as i64 - have as i64);
        let error = match result {
            Ok(_) if now >= entry.size => None,
            Ok(_) if grew == 0 => {
                // The remote file has no more bytes: it is shorter than the manifest says.
                remove(&local).await?;
                on_bytes(-(now as i64));
                return Err(TransferError::SizeMismatch {
                    path: entry.path.clone(),
                    expected: entry.size,
                    actual: now,
                });
            }
            Ok(_) => Some(TransferError::Connection {
                server: remote.clone(),
                message: format!("the transfer ended early, at {now} of {} bytes", entry.size),
            }),
            Err(e) => Some(TransferError::from_boxed(e)),
        };
        have = now;
        let Some(error) = error else { break };
        if grew > 0 {
            failures = 0;
        }
        failures += 1;
        if !error.is_retryable() || failures >= policy.attempts() {
            if now == 0 {
                // Leave no empty file behind (e.g. after "not found").
                let _ = tokio::fs::remove_file(&local).await;
            }
            return Err(error);
        }
        let delay = policy.delay_after(failures);
        tracing::warn!(path = %entry.path, offset = now, attempt = failures, ?delay, %error, "fetch failed, resuming after a pause");
        tokio::time::sleep(delay).await;
    }
    // Verify.
    let size = local_len(&local).await?;
    if size != entry.size {
        remove(&local).await?;
        on_bytes(-(size as i64));
        return Err(TransferError::SizeMismatch {
            path: entry.path.clone(),
            expected: entry.size,
            actual: size,
        });
    }
    let actual = sha256_file(&local).await?;
    if !actual.eq_ignore_ascii_case(&entry.sha256) {
        remove(&local).await?;
        on_bytes(-(size as i64));
        return Err(TransferError::ChecksumMismatch {
            path: entry.path.clone(),
            expected: entry.sha256.clone(),
            actual,
        });
    }
    Ok(report)
}

/// Fetches a whole image from `remote_dir` (relative to the transport's root, `""` for the
/// root itself) into `local_dir`.
///
/// Order: any local `manifest.json` is removed first (the local image is incomplete from
/// then on); the remote manifest is fetched and validated (known version, safe paths)
/// before any other file; every file is fetched and verified with [`fetch_verified`]'s
/// logic by `parallel` concurrent workers (at least 1), resuming partial local files; the
/// signature (`manifest.sig`) is fetched when the image has one; the manifest is written
/// locally last, by a rename, so a local image with a manifest is
/// complete. `progress(done, total)` is called with the bytes present locally after every
/// transfer attempt.
///
/// On error the first failure is returned and the other transfers are abandoned; the local
/// directory has no manifest and a rerun resumes.
pub async fn fetch_image<T: Transport + ?Sized>(
    transport: &T,
    remote_dir: &str,
    local_dir: &Path,
    parallel: usize,
    policy: &RetryPolicy,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<ImageReport, TransferError> {
    check_dir(remote_dir)?;
    tokio::fs::create_dir_all(local_dir)
        .await
        .map_err(|e| TransferError::local(local_dir, e))?;
    let manifest_path = local_dir.join(MANIFEST_FILE);
    remove(&manifest_path).await?;
    let signature_path = local_dir.join(SIGNATURE_FILE);
    remove(&signature_path).await?;

    // The manifest first, into a temporary name.
    let remote_manifest = join(remote_dir, MANIFEST_FILE);
    let part = local_dir.join(format!("{MANIFEST_FILE}{PART_SUFFIX}"));
    with_retry(policy, &remote_manifest, |_| async {
        remove(&part).await?;
        transport
            .fetch(&remote_manifest, 0, &part)
            .await
            .map_err(TransferError::from_boxed)
    })
    .await
    .inspect_err(|_| {
        let _ = std::fs::remove_file(&part);
    })?;
    let text = tokio::fs::read_to_string(&part)
        .await
        .map_err(|e| TransferError::local(&part, e))?;
    let manifest = parse_manifest(&text, &remote_manifest).inspect_err(|_| {
        let _ = std::fs::remove_file(&part);
    })?;

    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    let done = AtomicU64::new(0);
    progress(0, total);
    let on_bytes = |delta: i64| {
        let now = if delta >= 0 {
            done.fetch_add(delta as u64, Ordering::Relaxed) + delta as u64
        } else {
            done.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed) - delta.unsigned_abs()
        };
        progress(now, total);
    };
    // The futures are made up front and boxed: a stream that maps with a closure is not
    // provably `Send` for every lifetime, which callers inside `#[async_trait]` methods
    // need (rust-lang/rust#102211).
    let fetches: Vec<_> = manifest
        .files
        .iter()
        .map(|f| fetch_file(transport, remote_dir, f, local_dir, policy, &on_bytes).boxed())
        .collect();
    let reports: Vec<FetchReport> = futures_util::stream::iter(fetches)
        .buffer_unordered(parallel.max(1))
        .try_collect()
        .await?;

    // The signature, when the image has one (checked by the reader, with its key).
    let remote_signature = join(remote_dir, SIGNATURE_FILE);
    let signed = with_retry(policy, &remote_signature, |_| async {
        transport
            .size(&remote_signature)
            .await
            .map_err(TransferError::from_boxed)
    })
    .await?;
    if signed.is_some() {
        with_retry(policy, &remote_signature, |_| async {
            remove(&signature_path).await?;
            transport
                .fetch(&remote_signature, 0, &signature_path)
                .await
                .map_err(TransferError::from_boxed)
        })
        .await?;
    }

    // Last: the manifest, exactly as fetched.
    tokio::fs::rename(&part, &manifest_path)
        .await
        .map_err(|e| TransferError::local(&manifest_path, e))?;
    Ok(ImageReport {
        bytes_total: total,
        bytes_transferred: reports.iter().map(|r| r.bytes_transferred).sum(),
        files_resumed: reports
            .iter()
            .filter(|r| !r.resumed_from.is_empty())
            .count(),
        manifest,
    })
}

/// Uploads the image in `local_dir` to `remote_dir` (relative to the transport's root,
/// created if missing).
///
/// The local manifest is read and validated first, and every file's size checked against
/// it. A remote `manifest.json` is deleted before anything else (the remote image is
/// incomplete from then on); every file is uploaded by `parallel` workers (at least 1),
/// retried with `policy` on connection errors and its remote size checked; the signature
/// (`manifest.sig`), when there is one, and then the manifest are uploaded last. `progress(done, total)` is called after every file.
pub async fn put_image<T: Transport + ?Sized>(
    local_dir: &Path,
    transport: &T,
    remote_dir: &str,
    parallel: usize,
    policy: &RetryPolicy,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<ImageReport, TransferError> {
    check_dir(remote_dir)?;
    let manifest_path = local_dir.join(MANIFEST_FILE);
    let text = tokio::fs::read_to_string(&manifest_path)
        .await
        .map_err(|e| TransferError::local(&manifest_path, e))?;
    let manifest = parse_manifest(&text, &manifest_path.display().to_string())?;
    for f in &manifest.files {
        let p = local_dir.join(&f.path);
        let len = tokio::fs::metadata(&p)
            .await
            .map_err(|e| TransferError::local(&p, e))?
            .len();
        if len != f.size {
            return Err(TransferError::SizeMismatch {
                path: f.path.clone(),
                expected: f.size,
                actual: len,
            });
        }
    }

    let remote_manifest = join(remote_dir, MANIFEST_FILE);
    let remote_signature = join(remote_dir, SIGNATURE_FILE);
    with_retry(policy, remote_dir, |_| async {
        if !remote_dir.is_empty() {
            transport.mkdir(remote_dir).await?;
        }
        if transport.size(&remote_manifest).await?.is_some() {
            transport.delete(&remote_manifest).await?;
        }
        if transport.size(&remote_signature).await?.is_some() {
            transport.delete(&remote_signature).await?;
        }
        let dirs: BTreeSet<&str> = manifest
            .files
            .iter()
            .filter_map(|f| f.path.rsplit_once('/').map(|(d, _)| d))
            .collect();
        for d in dirs {
            transport.mkdir(&join(remote_dir, d)).await?;
        }
        Ok::<(), TransferError>(())
    })
    .await?;

    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    let done = AtomicU64::new(0);
    progress(0, total);
    futures_util::stream::iter(&manifest.files)
        .map(|f| {
            let done = &done;
            async move {
                let remote = join(remote_dir, &f.path);
                let local = local_dir.join(&f.path);
                put_checked(transport, &local, &remote, f.size, policy).await?;
                progress(done.fetch_add(f.size, Ordering::Relaxed) + f.size, total);
                Ok::<_, TransferError>(())
            }
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<Vec<()>>()
        .await?;

    let signature_path = local_dir.join(SIGNATURE_FILE);
    if let Ok(meta) = tokio::fs::metadata(&signature_path).await {
        put_checked(
            transport,
            &signature_path,
            &remote_signature,
            meta.len(),
            policy,
        )
        .await?;
    }
    put_checked(
        transport,
        &manifest_path,
        &remote_manifest,
        text.len() as u64,
        policy,
    )
    .await?;
    Ok(ImageReport {
        bytes_total: total,
        bytes_transferred: total,
        files_resumed: 0,
        manifest,
    })
}

pub(crate) async fn put_checked<T: Transport + ?Sized>(
    transport: &T,
    local: &Path,
    remote: &str,
    size: u64,
    policy: &RetryPolicy,
) -> Result<(), TransferError> {
    with_retry(policy, remote, |_| async {
        transport
            .put(local, remote)
            .await
            .map_err(TransferError::from_boxed)?;
        check_remote_size(transport, remote, size).await
    })
    .await
}

/// Uploads `data` from memory ([`Transport::put_bytes`]) to `remote` and checks the
/// remote size, retrying with `policy`.
pub(crate) async fn put_bytes_checked<T: Transport + ?Sized>(
    transport: &T,
    data: bytes::Bytes,
    remote: &str,
    policy: &RetryPolicy,
) -> Result<(), TransferError> {
    let size = data.len() as u64;
    with_retry(policy, remote, |_| {
        let data = data.clone();
        async move {
            transport
                .put_bytes(data, remote)
                .await
                .map_err(TransferError::from_boxed)?;
            check_remote_size(transport, remote, size).await
        }
    })
    .await
}

/// After an upload: the remote file has `size` bytes.
async fn check_remote_size<T: Transport + ?Sized>(
    transport: &T,
    remote: &str,
    size: u64,
) -> Result<(), TransferError> {
    match transport
        .size(remote)
        .await
        .map_err(TransferError::from_boxed)?
    {
        Some(s) if s == size => Ok(()),
        Some(s) => Err(TransferError::Connection {
            server: remote.into(),
            message: format!("the upload ended early, at {s} of {size} bytes"),
        }),
        None => Err(TransferError::Connection {
            server: remote.into(),
            message: "the uploaded file is missing on the server".into(),
        }),
    }
}

fn parse_manifest(text: &str, location: &str) -> Result<Manifest, TransferError> {
    let m = Manifest::from_json(text).map_err(|source| TransferError::Manifest {
        location: location.into(),
        source,
    })?;
    let mut seen = BTreeSet::new();
    for f in &m.files {
        if f.path == MANIFEST_FILE
            || f.path == SIGNATURE_FILE
            || f.path.ends_with(PART_SUFFIX)
            || !seen.insert(&f.path)
        {
            return Err(TransferError::unsafe_path(&f.path));
        }
    }
    Ok(m)
}

pub(crate) fn check_dir(dir: &str) -> Result<(), TransferError> {
    if dir.is_empty() {
        return Ok(());
    }
    check_relative_path(dir).map_err(|_| TransferError::unsafe_path(dir))
}

/// `dir/path`, or `path` when `dir` is empty.
pub(crate) fn join(dir: &str, path: &str) -> String {
    if dir.is_empty() {
        path.to_string()
    } else if path.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{path}")
    }
}

async fn local_len(path: &Path) -> Result<u64, TransferError> {
    match tokio::fs::metadata(path).await {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(TransferError::local(path, e)),
    }
}

async fn remove(path: &Path) -> Result<(), TransferError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TransferError::local(path, e)),
    }
}

/// SHA-256 of a local file, lower-case hex.
pub async fn sha256_file(path: &Path) -> Result<String, TransferError> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(&p).map_err(|e| TransferError::local(&p, e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| TransferError::local(&p, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex::encode(h.finalize()))
    })
    .await
    .map_err(|e| TransferError::local(path, io::Error::other(e)))?
}

/// Opens `local` for writing at `offset`, creating it when missing. A longer file is cut at
/// `offset`; a shorter one is an error (it would leave a hole).
pub(crate) async fn open_for_append(
    local: &Path,
    offset: u64,
) -> Result<tokio::fs::File, TransferError> {
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(local)
        .await
        .map_err(|e| TransferError::local(local, e))?;
    let len = f
        .metadata()
        .await
        .map_err(|e| TransferError::local(local, e))?
        .len();
    if len < offset {
        return Err(TransferError::local(
            local,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the local file has {len} bytes, cannot resume at offset {offset}"),
            ),
        ));
    }
    if len > offset {
        f.set_len(offset)
            .await
            .map_err(|e| TransferError::local(local, e))?;
    }
    f.seek(io::SeekFrom::Start(offset))
        .await
        .map_err(|e| TransferError::local(local, e))?;
    Ok(f)
}

/// Copies `src` to `dst` in 256 KiB chunks. A read error (or no data for `read_timeout`)
/// becomes [`TransferError::Connection`] naming `source`, after what arrived was flushed to
/// `dst`; a write error is [`TransferError::LocalIo`] naming `local`.
pub(crate) async fn copy_to_local<R: AsyncRead + Unpin + ?Sized>(
    src: &mut R,
    dst: &mut tokio::fs::File,
    local: &Path,
    source: &str,
    read_timeout: Option<Duration>,
) -> Result<u64, TransferError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let read_err = loop {
        let read = src.read(&mut buf);
        let n = match read_timeout {
            Some(t) => match tokio::time::timeout(t, read).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no data for {t:?}"),
                )),
            },
            None => read.await,
        };
        match n {
            Ok(0) => break None,
            Ok(n) => {
                dst.write_all(&buf[..n])
                    .await
                    .map_err(|e| TransferError::local(local, e))?;
                total += n as u64;
            }
            Err(e) => break Some(e),
        }
    };
    dst.flush()
        .await
        .map_err(|e| TransferError::local(local, e))?;
    match read_err {
        None => Ok(total),
        Some(e) => Err(TransferError::Connection {
            server: source.into(),
            message: format!("reading failed after {total} bytes: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests;
