//! Streaming an image to a remote store while it is written, resumable across runs.
//!
//! [`ImageUpload::begin`] prepares the remote directory: the old manifest (if any) is
//! taken down first, so the remote image reads as incomplete from then on, and the
//! checksums of the files already there are kept in an upload state object
//! ([`UPLOAD_STATE_FILE`]). [`ImageUpload::stream`] uploads each data file as soon as it
//! is complete, several at a time; a file whose remote copy already has its size and
//! checksum (from an earlier complete image or an interrupted upload) is not sent again.
//! [`ImageUpload::finish`] uploads what is left, the signature and, last, the manifest,
//! then removes the upload state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use amsu_core::manifest::{check_relative_path, FileEntry, MANIFEST_FILE, SIGNATURE_FILE};
use amsu_core::Transport;
use futures_util::{StreamExt, TryStreamExt};

use crate::retry::with_retry;
use crate::{RetryPolicy, TransferError};

/// The remote object that records, while an upload is unfinished, the checksum of every
/// file known to be complete in the remote directory (JSON: path → SHA-256). Not part of
/// the image; removed once the manifest is up.
pub const UPLOAD_STATE_FILE: &str = "amsu-upload.json";

/// What an upload did, for the report (MB/s per stream and in total).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct UploadStats {
    /// Bytes sent.
    pub bytes: u64,
    /// Files sent.
    pub files: usize,
    /// Files already in the store with the right size and checksum, not sent again.
    pub files_skipped: usize,
    /// Bytes of the skipped files.
    pub bytes_skipped: u64,
    /// Seconds from [`ImageUpload::begin`] to the end of [`ImageUpload::finish`].
    pub seconds: f64,
    /// Seconds the streams spent sending, summed over the streams.
    pub busy_seconds: f64,
    /// Files in flight at once, at most.
    pub streams: usize,
}

impl UploadStats {
    /// MB/s over the whole upload (10⁶ bytes).
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-6)
    }

    /// MB/s of one stream while it was sending.
    pub fn mb_per_s_per_stream(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.busy_seconds.max(1e-6)
    }
}

/// An image upload to `transport` under `remote_dir`, from the local image directory
/// being written.
pub struct ImageUpload<'a, T: Transport + ?Sized> {
    transport: &'a T,
    local_dir: PathBuf,
    remote_dir: String,
    streams: usize,
    policy: RetryPolicy,
    /// Files known complete remotely: path → SHA-256.
    known: Mutex<BTreeMap<String, String>>,
    /// Serialises writes of the upload state.
    state_write: tokio::sync::Mutex<u64>,
    sent: Mutex<BTreeSet<String>>,
    /// Remote subdirectories made.
    dirs: Mutex<BTreeSet<String>>,
    bytes: AtomicU64,
    files: AtomicUsize,
    skipped: AtomicUsize,
    bytes_skipped: AtomicU64,
    busy_us: AtomicU64,
    started: Instant,
    /// Remove each streamed file from the local directory once it is in the store.
    remove_sent: bool,
}

impl<'a, T: Transport + ?Sized> ImageUpload<'a, T> {
    /// Prepares the remote directory: creates it, reads what an earlier complete image
    /// or interrupted upload left there, records it in the upload state, and takes the
    /// old manifest and signature down.
    pub async fn begin(
        transport: &'a T,
        local_dir: &Path,
        remote_dir: &str,
        streams: usize,
        policy: RetryPolicy,
    ) -> Result<ImageUpload<'a, T>, TransferError> {
        crate::image::check_dir(remote_dir)?;
        let up = ImageUpload {
            transport,
            local_dir: local_dir.to_path_buf(),
            remote_dir: remote_dir.to_string(),
            streams: streams.max(1),
            policy,
            known: Mutex::default(),
            state_write: tokio::sync::Mutex::new(0),
            sent: Mutex::default(),
            dirs: Mutex::default(),
            bytes: AtomicU64::new(0),
            files: AtomicUsize::new(0),
            skipped: AtomicUsize::new(0),
            bytes_skipped: AtomicU64::new(0),
            busy_us: AtomicU64::new(0),
            started: Instant::now(),
            remove_sent: false,
        };
        let mut known = BTreeMap::new();
        if let Some(text) = up.read_remote(UPLOAD_STATE_FILE).await? {
            if let Ok(m) = serde_json::from_slice::<BTreeMap<String, String>>(&text) {
                known.extend(m);
            }
        }
        if let Some(text) = up.read_remote(MANIFEST_FILE).await? {
            // Only the files' checksums are needed (an image of any version lists them).
            if let Ok(m) = serde_json::from_slice::<serde_json::Value>(&text) {
                for f in m["files"].as_array().into_iter().flatten() {
                    if let (Some(p), Some(h)) = (f["path"].as_str(), f["sha256"].as_str()) {
                        known.insert(p.to_string(), h.to_string());
                    }
                }
            }
        }
        *up.known.lock().expect("lock") = known;
        let remote = |p: &str| up.remote(p);
        with_retry(&up.policy, remote_dir, |_| async {
            if !remote_dir.is_empty() {
                transport
                    .mkdir(remote_dir)
                    .await
                    .map_err(TransferError::from_boxed)?;
            }
            Ok::<(), TransferError>(())
        })
        .await?;
        // The state first: taking the manifest down must not lose what it knew.
        up.write_state().await?;
        for f in [MANIFEST_FILE, SIGNATURE_FILE] {
            let r = remote(f);
            with_retry(&up.policy, &r, |_| async {
                if transport
                    .size(&r)
                    .await
                    .map_err(TransferError::from_boxed)?
                    .is_some()
                {
                    transport
                        .delete(&r)
                        .await
                        .map_err(TransferError::from_boxed)?;
                }
                Ok::<(), TransferError>(())
            })
            .await?;
        }
        Ok(up)
    }

    /// Removes each file given to [`stream`](Self::stream) or [`file`](Self::file) from
    /// the local directory as soon as the store holds it (sent, or already there with its
    /// checksum): the local directory then holds only the files not uploaded yet, not
    /// the whole image. Default: false (the local image is kept whole).
    pub fn remove_sent(mut self, on: bool) -> Self {
        self.remove_sent = on;
        self
    }

    /// The local copy of `entry`, once the store holds it ([`remove_sent`](Self::remove_sent)).
    fn sent_local(&self, entry: &FileEntry) {
        if self.remove_sent {
            let _ = std::fs::remove_file(self.local_dir.join(&entry.path));
        }
    }

    fn remote(&self, path: &str) -> String {
        if self.remote_dir.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.remote_dir.trim_end_matches('/'))
        }
    }

    /// A local scratch file `name` beside the image (in `.amsu-upload/`, not part of it).
    fn scratch(&self, name: &str) -> Result<PathBuf, TransferError> {
        let dir = self.local_dir.join(".amsu-upload");
        std::fs::create_dir_all(&dir).map_err(|e| TransferError::local(&dir, e))?;
        Ok(dir.join(name))
    }

    /// The whole remote file `path`, or `None` when it is not there.
    async fn read_remote(&self, path: &str) -> Result<Option<Vec<u8>>, TransferError> {
        let r = self.remote(path);
        let size = with_retry(&self.policy, &r, |_| async {
            self.transport
                .size(&r)
                .await
                .map_err(TransferError::from_boxed)
        })
        .await?;
        if size.is_none() {
            return Ok(None);
        }
        let tmp = self.scratch(&format!("remote-{path}"))?;
        let _ = std::fs::remove_file(&tmp);
        with_retry(&self.policy, &r, |_| async {
            self.transport
                .fetch(&r, 0, &tmp)
                .await
                .map_err(TransferError::from_boxed)
        })
        .await?;
        let text = std::fs::read(&tmp).map_err(|e| TransferError::local(&tmp, e))?;
        let _ = std::fs::remove_file(&tmp);
        Ok(Some(text))
    }

    /// Writes the upload state (what is known complete remotely).
    async fn write_state(&self) -> Result<(), TransferError> {
        let mut n = self.state_write.lock().await;
        *n += 1;
        let text =
            serde_json::to_vec(&*self.known.lock().expect("lock")).expect("a map serializes");
        // From memory: no scratch file (S3 sends it as one PUT).
        let r = self.remote(UPLOAD_STATE_FILE);
        crate::image::put_bytes_checked(self.transport, text.into(), &r, &self.policy).await
    }

    /// Uploads one complete local file (unless the store holds it already).
    pub async fn file(&self, entry: &FileEntry) -> Result<(), TransferError> {
        check_relative_path(&entry.path).map_err(|_| TransferError::unsafe_path(&entry.path))?;
        if let Some((dir, _)) = entry.path.rsplit_once('/') {
            let new = self.dirs.lock().expect("lock").insert(dir.to_string());
            if new {
                let r = self.remote(dir);
                with_retry(&self.policy, &r, |_| async {
                    self.transport
                        .mkdir(&r)
                        .await
                        .map_err(TransferError::from_boxed)
                })
                .await?;
            }
        }
        let r = self.remote(&entry.path);
        let known = self.known.lock().expect("lock").get(&entry.path).cloned();
        if known.as_deref() == Some(entry.sha256.as_str()) {
            let size = with_retry(&self.policy, &r, |_| async {
                self.transport
                    .size(&r)
                    .await
                    .map_err(TransferError::from_boxed)
            })
            .await?;
            if size == Some(entry.size) {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                self.bytes_skipped.fetch_add(entry.size, Ordering::Relaxed);
                self.sent.lock().expect("lock").insert(entry.path.clone());
                self.sent_local(entry);
                return Ok(());
            }
        }
        if known.is_some() {
            // Overwritten from now on: forget the old checksum before the bytes change.
            self.known.lock().expect("lock").remove(&entry.path);
            self.write_state().await?;
        }
        let local = self.local_dir.join(&entry.path);
        let start = Instant::now();
        put_checked(self.transport, &local, &r, entry.size, &self.policy).await?;
        self.busy_us
            .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(entry.size, Ordering::Relaxed);
        self.files.fetch_add(1, Ordering::Relaxed);
        self.sent.lock().expect("lock").insert(entry.path.clone());
        self.known
            .lock()
            .expect("lock")
            .insert(entry.path.clone(), entry.sha256.clone());
        self.write_state().await?;
        self.sent_local(entry);
        Ok(())
    }

    /// Uploads every file received on `files` as it arrives, `streams` at a time, until
    /// the sender is dropped.
    pub async fn stream(
        &self,
        files: tokio::sync::mpsc::UnboundedReceiver<FileEntry>,
    ) -> Result<(), TransferError> {
        futures_util::stream::unfold(
            files,
            |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
        )
        .map(|e| async move { self.file(&e).await })
        .buffer_unordered(self.streams)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }

    /// Uploads the files of `entries` not sent yet, then the signature (when the local
    /// image has one) and, last, `manifest.json`; removes the upload state.
    pub async fn finish(self, entries: &[FileEntry]) -> Result<UploadStats, TransferError> {
        let todo: Vec<&FileEntry> = {
            let sent = self.sent.lock().expect("lock");
            entries.iter().filter(|e| !sent.contains(&e.path)).collect()
        };
        futures_util::stream::iter(todo)
            .map(|e| self.file(e))
            .buffer_unordered(self.streams)
            .try_collect::<Vec<()>>()
            .await?;
        for f in [SIGNATURE_FILE, MANIFEST_FILE] {
            let local = self.local_dir.join(f);
            let Ok(meta) = tokio::fs::metadata(&local).await else {
                if f == MANIFEST_FILE {
                    return Err(TransferError::local(
                        &local,
                        std::io::ErrorKind::NotFound.into(),
                    ));
                }
                continue;
            };
            put_checked(
                self.transport,
                &local,
                &self.remote(f),
                meta.len(),
                &self.policy,
            )
            .await?;
        }
        let _ = std::fs::remove_dir_all(self.local_dir.join(".amsu-upload"));
        let state = self.remote(UPLOAD_STATE_FILE);
        // Best effort: a state left behind only lists files of this complete image.
        let _ = self.transport.delete(&state).await;
        Ok(UploadStats {
            bytes: self.bytes.load(Ordering::Relaxed),
            files: self.files.load(Ordering::Relaxed),
            files_skipped: self.skipped.load(Ordering::Relaxed),
            bytes_skipped: self.bytes_skipped.load(Ordering::Relaxed),
            seconds: self.started.elapsed().as_secs_f64(),
            busy_seconds: self.busy_us.load(Ordering::Relaxed) as f64 / 1e6,
            streams: self.streams,
        })
    }
}

/// Uploads `local` to `remote` and checks the remote size, retrying with `policy`.
async fn put_checked<T: Transport + ?Sized>(
    transport: &T,
    local: &Path,
    remote: &str,
    size: u64,
    policy: &RetryPolicy,
) -> Result<(), TransferError> {
    crate::image::put_checked(transport, local, remote, size, policy).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalTransport;
    use sha2::{Digest, Sha256};

    fn entry(dir: &Path, path: &str, bytes: &[u8]) -> FileEntry {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        FileEntry::new(path, bytes.len() as u64, hex::encode(Sha256::digest(bytes)))
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// A chunk goes up while the image is still being written (before `finish`, with no
    /// manifest remotely); the manifest goes up last and the upload state is removed.
    #[tokio::test]
    async fn chunks_stream_before_the_manifest_which_goes_last() {
        let local = tempfile::tempdir().unwrap();
        let remote = tempfile::tempdir().unwrap();
        let t = LocalTransport::new(remote.path());
        std::fs::create_dir_all(remote.path().join("img")).unwrap();
        std::fs::write(remote.path().join("img").join(MANIFEST_FILE), b"{}").unwrap();
        let up = ImageUpload::begin(&t, local.path(), "img", 2, policy())
            .await
            .unwrap();
        assert!(!remote.path().join("img").join(MANIFEST_FILE).exists());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let e1 = entry(local.path(), "data/000001.tsv", b"1\tone\n");
        let streaming = up.stream(rx);
        let check = async {
            tx.send(e1.clone()).unwrap();
            // Uploaded while the sender is still open: streamed, not staged.
            for _ in 0..1000 {
                if remote.path().join("img/data/000001.tsv").exists() {
                    break;
                }
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert!(remote.path().join("img/data/000001.tsv").exists());
            assert!(!remote.path().join("img").join(MANIFEST_FILE).exists());
            drop(tx);
        };
        let (r, ()) = tokio::join!(streaming, check);
        r.unwrap();
        let e2 = entry(local.path(), "schema.json", b"{}");
        std::fs::write(local.path().join(MANIFEST_FILE), b"{\"m\":1}").unwrap();
        let stats = up.finish(&[e2, e1]).await.unwrap();
        assert_eq!((stats.files, stats.files_skipped), (2, 0));
        assert_eq!(
            std::fs::read(remote.path().join("img").join(MANIFEST_FILE)).unwrap(),
            b"{\"m\":1}"
        );
        assert!(!remote.path().join("img").join(UPLOAD_STATE_FILE).exists());
        assert!(!local.path().join(".amsu-upload").exists());
    }

    /// With `remove_sent`, a streamed chunk leaves the local directory once it is in the
    /// store (sent, or already there), and `finish` does not need it again.
    #[tokio::test]
    async fn sent_files_leave_the_local_directory() {
        let local = tempfile::tempdir().unwrap();
        let remote = tempfile::tempdir().unwrap();
        let t = LocalTransport::new(remote.path());
        let a = entry(local.path(), "data/000001.tsv", b"aaaa");
        let up = ImageUpload::begin(&t, local.path(), "", 2, policy())
            .await
            .unwrap()
            .remove_sent(true);
        up.file(&a).await.unwrap();
        assert!(!local.path().join("data/000001.tsv").exists());
        assert_eq!(
            std::fs::read(remote.path().join("data/000001.tsv")).unwrap(),
            b"aaaa"
        );
        let s = entry(local.path(), "schema.json", b"{}");
        std::fs::write(local.path().join(MANIFEST_FILE), b"{}").unwrap();
        let stats = up.finish(&[s, a.clone()]).await.unwrap();
        assert_eq!((stats.files, stats.files_skipped), (2, 0));

        // A rerun: the chunk already in the store is skipped and removed locally too.
        let a = entry(local.path(), "data/000001.tsv", b"aaaa");
        let up = ImageUpload::begin(&t, local.path(), "", 2, policy())
            .await
            .unwrap()
            .remove_sent(true);
        up.file(&a).await.unwrap();
        assert!(!local.path().join("data/000001.tsv").exists());
    }

    /// A rerun does not send again what the store holds with the right checksum (from
    /// the earlier complete image, or from an upload cut before its manifest), and sends
    /// a file whose content changed.
    #[tokio::test]
    async fn a_rerun_skips_files_already_in_the_store() {
        let local = tempfile::tempdir().unwrap();
        let remote = tempfile::tempdir().unwrap();
        let t = LocalTransport::new(remote.path());
        let a = entry(local.path(), "data/000001.tsv", b"aaaa");
        let b = entry(local.path(), "data/000002.tsv", b"bbbb");
        let s = entry(local.path(), "schema.json", b"{}");
        let files = vec![s.clone(), a.clone(), b.clone()];
        let manifest = serde_json::json!({ "files": files
            .iter()
            .map(|f| serde_json::json!({"path": f.path, "size": f.size, "sha256": f.sha256}))
            .collect::<Vec<_>>() });
        std::fs::write(local.path().join(MANIFEST_FILE), manifest.to_string()).unwrap();
        let up = ImageUpload::begin(&t, local.path(), "", 2, policy())
            .await
            .unwrap();
        up.finish(&files).await.unwrap();

        // Cut after one file: no manifest, the state lists the file sent.
        let b2 = entry(local.path(), "data/000002.tsv", b"BBBBBB");
        let c = entry(local.path(), "data/000003.tsv", b"cc");
        let up = ImageUpload::begin(&t, local.path(), "", 2, policy())
            .await
            .unwrap();
        up.file(&c).await.unwrap();
        drop(up);
        assert!(!remote.path().join(MANIFEST_FILE).exists());
        assert!(remote.path().join(UPLOAD_STATE_FILE).exists());

        let up = ImageUpload::begin(&t, local.path(), "", 2, policy())
            .await
            .unwrap();
        let stats = up
            .finish(&[s.clone(), a.clone(), b2.clone(), c.clone()])
            .await
            .unwrap();
        // schema.json, 000001 (old manifest) and 000003 (state) skipped; 000002 changed.
        assert_eq!((stats.files, stats.files_skipped), (1, 3), "{stats:?}");
        assert_eq!(stats.bytes, 6);
        assert_eq!(
            std::fs::read(remote.path().join("data/000002.tsv")).unwrap(),
            b"BBBBBB"
        );
    }
}
