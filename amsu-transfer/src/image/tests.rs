use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;

use amsu_core::manifest::SourceServer;
use amsu_core::{BoxError, Coordinates, Flavor, MockTransport, RemoteEntry};
use async_trait::async_trait;

use super::*;
use crate::LocalTransport;

/// An in-memory transport with fault switches: the next `fail_next` fetches fail before
/// sending anything; each value of `cut_after` makes one fetch send that many bytes and
/// then fail.
#[derive(Default)]
struct FakeTransport {
    files: Mutex<HashMap<String, Vec<u8>>>,
    fail_next: AtomicU32,
    cut_after: Mutex<Vec<u64>>,
    fetches: Mutex<Vec<(String, u64)>>,
    puts: Mutex<Vec<String>>,
}

fn conn_err() -> BoxError {
    Box::new(TransferError::Connection {
        server: "fake".into(),
        message: "connection reset".into(),
    })
}

#[async_trait]
impl Transport for FakeTransport {
    async fn list(&self, _dir: &str) -> Result<Vec<RemoteEntry>, BoxError> {
        Ok(Vec::new())
    }
    async fn size(&self, path: &str) -> Result<Option<u64>, BoxError> {
        Ok(self.files.lock().unwrap().get(path).map(|d| d.len() as u64))
    }
    async fn fetch(&self, path: &str, offset: u64, local: &Path) -> Result<u64, BoxError> {
        self.fetches
            .lock()
            .unwrap()
            .push((path.to_string(), offset));
        if self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(conn_err());
        }
        let data = self
            .files
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| TransferError::NotFound {
                path: path.into(),
                message: "550 no such file".into(),
            })?;
        let cut = {
            let mut c = self.cut_after.lock().unwrap();
            (!c.is_empty()).then(|| c.remove(0))
        };
        let mut f = open_for_append(local, offset).await?;
        let rest = &data[(offset as usize).min(data.len())..];
        let n = cut.map_or(rest.len(), |c| (c as usize).min(rest.len()));
        f.write_all(&rest[..n]).await.unwrap();
        f.flush().await.unwrap();
        if cut.is_some() {
            return Err(conn_err());
        }
        Ok(n as u64)
    }
    async fn put(&self, local: &Path, path: &str) -> Result<u64, BoxError> {
        let data = std::fs::read(local)?;
        self.puts.lock().unwrap().push(path.to_string());
        let n = data.len() as u64;
        self.files.lock().unwrap().insert(path.to_string(), data);
        Ok(n)
    }
    async fn delete(&self, path: &str) -> Result<(), BoxError> {
        self.files.lock().unwrap().remove(path);
        Ok(())
    }
    async fn mkdir(&self, _path: &str) -> Result<(), BoxError> {
        Ok(())
    }
}

fn entry(path: &str, data: &[u8]) -> FileEntry {
    FileEntry::new(path, data.len() as u64, hex::encode(Sha256::digest(data)))
}

fn manifest(files: Vec<FileEntry>) -> Manifest {
    Manifest::new(
        "logical",
        SourceServer::new(Flavor::MariaDb, "10.11.19-MariaDB", 1),
        Coordinates::new("bin.000001", 4),
        files,
    )
    .with_created_unix(0)
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(4)
        .base_delay(Duration::from_secs(1))
        .max_delay(Duration::from_secs(10))
}

#[tokio::test(start_paused = true)]
async fn retries_with_backoff_then_succeeds() {
    let t = FakeTransport::default();
    let d = data(1000);
    t.files.lock().unwrap().insert("f".into(), d.clone());
    t.fail_next.store(3, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let start = tokio::time::Instant::now();
    let r = fetch_verified(&t, &entry("f", &d), dir.path(), &policy())
        .await
        .unwrap();
    assert_eq!(r.attempts, 4);
    assert!(r.resumed_from.is_empty());
    // 1 s + 2 s + 4 s of backoff, in virtual time.
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), d);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_and_leaves_no_empty_file() {
    let t = FakeTransport::default();
    let d = data(10);
    t.files.lock().unwrap().insert("f".into(), d.clone());
    t.fail_next.store(10, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let start = tokio::time::Instant::now();
    let e = fetch_verified(&t, &entry("f", &d), dir.path(), &policy())
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(t.fetches.lock().unwrap().len(), 4);
    assert_eq!(start.elapsed(), Duration::from_secs(1 + 2 + 4));
    assert!(!dir.path().join("f").exists());
}

#[tokio::test(start_paused = true)]
async fn resumes_from_the_cut_offset() {
    let t = FakeTransport::default();
    let d = data(10_000);
    t.files.lock().unwrap().insert("a/f".into(), d.clone());
    *t.cut_after.lock().unwrap() = vec![3000, 4000];
    let dir = tempfile::tempdir().unwrap();
    let r = fetch_verified(&t, &entry("a/f", &d), dir.path(), &policy())
        .await
        .unwrap();
    assert_eq!(r.resumed_from, [3000, 7000]);
    assert_eq!(r.bytes_transferred, 10_000);
    let offsets: Vec<u64> = t.fetches.lock().unwrap().iter().map(|f| f.1).collect();
    assert_eq!(offsets, [0, 3000, 7000]);
    assert_eq!(std::fs::read(dir.path().join("a/f")).unwrap(), d);
}

#[tokio::test(start_paused = true)]
async fn progress_resets_the_attempt_count() {
    // Four cuts with progress are more than max_attempts failures, but each moved forward.
    let t = FakeTransport::default();
    let d = data(1000);
    t.files.lock().unwrap().insert("f".into(), d.clone());
    *t.cut_after.lock().unwrap() = vec![100, 100, 100, 100, 100];
    let dir = tempfile::tempdir().unwrap();
    let r = fetch_verified(&t, &entry("f", &d), dir.path(), &policy())
        .await
        .unwrap();
    assert_eq!(r.attempts, 6);
}

#[tokio::test]
async fn resumes_a_partial_local_file() {
    let t = FakeTransport::default();
    let d = data(5000);
    t.files.lock().unwrap().insert("f".into(), d.clone());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), &d[..1234]).unwrap();
    let r = fetch_verified(&t, &entry("f", &d), dir.path(), &policy())
        .await
        .unwrap();
    assert_eq!(r.resumed_from, [1234]);
    assert_eq!(r.bytes_transferred, 5000 - 1234);
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let mut t = MockTransport::new();
    t.expect_fetch().times(1).returning(|p, _, _| {
        Err(Box::new(TransferError::NotFound {
            path: p.into(),
            message: "550".into(),
        }))
    });
    let dir = tempfile::tempdir().unwrap();
    let e = fetch_verified(&t, &entry("f", b"x"), dir.path(), &policy())
        .await
        .unwrap_err();
    assert!(matches!(e, TransferError::NotFound { .. }), "{e}");
}

#[tokio::test]
async fn checksum_mismatch_deletes_the_file() {
    let t = FakeTransport::default();
    let d = data(100);
    t.files.lock().unwrap().insert("f".into(), d.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut e = entry("f", &d);
    e.sha256 = "ab".repeat(32);
    let err = fetch_verified(&t, &e, dir.path(), &policy())
        .await
        .unwrap_err();
    match &err {
        TransferError::ChecksumMismatch {
            path,
            expected,
            actual,
        } => {
            assert_eq!(path, "f");
            assert_eq!(expected, &"ab".repeat(32));
            assert_eq!(actual, &entry("f", &d).sha256);
        }
        other => panic!("{other}"),
    }
    assert!(!dir.path().join("f").exists());
}

#[tokio::test]
async fn shorter_remote_file_is_a_size_mismatch() {
    let t = FakeTransport::default();
    let d = data(100);
    t.files.lock().unwrap().insert("f".into(), d[..50].to_vec());
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_verified(&t, &entry("f", &d), dir.path(), &policy())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransferError::SizeMismatch {
                expected: 100,
                actual: 50,
                ..
            }
        ),
        "{err}"
    );
    assert!(!dir.path().join("f").exists());
}

#[tokio::test]
async fn unsafe_entry_is_refused_before_fetching() {
    let t = MockTransport::new(); // any call would panic
    let dir = tempfile::tempdir().unwrap();
    for p in ["../x", "/etc/passwd", "a/../../x"] {
        let e = fetch_verified(&t, &entry(p, b"x"), dir.path(), &policy())
            .await
            .unwrap_err();
        assert!(matches!(e, TransferError::UnsafePath { .. }), "{p}: {e}");
    }
}

fn write_image(dir: &Path, files: &[(&str, Vec<u8>)]) -> Manifest {
    let mut entries = Vec::new();
    for (p, d) in files {
        let full = dir.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, d).unwrap();
        entries.push(entry(p, d));
    }
    let m = manifest(entries);
    std::fs::write(dir.join(MANIFEST_FILE), m.to_json()).unwrap();
    m
}

#[tokio::test]
async fn fetch_image_fetches_everything_and_writes_the_manifest_last() {
    let src = tempfile::tempdir().unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..7)
        .map(|i| (format!("db{}/t{i}.tsv", i % 2), data(1000 * i + 1)))
        .collect();
    let files_ref: Vec<(&str, Vec<u8>)> =
        files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    let m = write_image(&src.path().join("img"), &files_ref);
    let t = LocalTransport::new(src.path());
    let dst = tempfile::tempdir().unwrap();
    let seen = Mutex::new(Vec::new());
    let manifest_seen_early = std::sync::atomic::AtomicBool::new(false);
    let local = dst.path().join("out");
    let progress = |done: u64, total: u64| {
        if local.join(MANIFEST_FILE).exists() {
            manifest_seen_early.store(true, Ordering::SeqCst);
        }
        seen.lock().unwrap().push((done, total));
    };
    let r = fetch_image(&t, "img", &local, 3, &policy(), &progress)
        .await
        .unwrap();
    assert_eq!(r.manifest, m);
    assert!(!manifest_seen_early.load(Ordering::SeqCst));
    let total: u64 = m.files.iter().map(|f| f.size).sum();
    assert_eq!(*seen.lock().unwrap().last().unwrap(), (total, total));
    for (p, d) in &files {
        assert_eq!(&std::fs::read(local.join(p)).unwrap(), d);
    }
    assert_eq!(
        std::fs::read(local.join(MANIFEST_FILE)).unwrap(),
        std::fs::read(src.path().join("img").join(MANIFEST_FILE)).unwrap()
    );
    assert!(!local.join("manifest.json.amsu-part").exists());
}

#[tokio::test]
async fn fetch_image_refuses_an_unsafe_manifest_before_any_file() {
    let src = tempfile::tempdir().unwrap();
    let mut m = manifest(vec![entry("ok", b"x"), entry("ok2", b"y")]);
    m.files[1].path = "../x".into();
    std::fs::write(src.path().join(MANIFEST_FILE), m.to_json()).unwrap();
    let t = FakeTransport::default();
    t.files
        .lock()
        .unwrap()
        .insert(MANIFEST_FILE.into(), m.to_json().into_bytes());
    let dst = tempfile::tempdir().unwrap();
    let e = fetch_image(&t, "", dst.path(), 2, &policy(), &|_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(e, TransferError::Manifest { .. }), "{e}");
    let fetched: Vec<String> = t
        .fetches
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.0.clone())
        .collect();
    assert_eq!(fetched, [MANIFEST_FILE]);
    assert_eq!(std::fs::read_dir(dst.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn fetch_image_refuses_an_unknown_version() {
    let mut m = manifest(vec![]);
    m.format_version = 42;
    let t = FakeTransport::default();
    t.files
        .lock()
        .unwrap()
        .insert("img/manifest.json".into(), m.to_json().into_bytes());
    let dst = tempfile::tempdir().unwrap();
    let e = fetch_image(&t, "img", dst.path(), 2, &policy(), &|_, _| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("format version 42"), "{e}");
}

#[tokio::test]
async fn failed_fetch_image_leaves_no_manifest() {
    let d = data(100);
    let mut m = manifest(vec![entry("a", &d), entry("b", &d)]);
    m.files[1].sha256 = "00".repeat(32);
    let t = FakeTransport::default();
    {
        let mut f = t.files.lock().unwrap();
        f.insert(MANIFEST_FILE.into(), m.to_json().into_bytes());
        f.insert("a".into(), d.clone());
        f.insert("b".into(), d.clone());
    }
    let dst = tempfile::tempdir().unwrap();
    std::fs::write(dst.path().join(MANIFEST_FILE), "stale").unwrap();
    let e = fetch_image(&t, "", dst.path(), 1, &policy(), &|_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(e, TransferError::ChecksumMismatch { .. }), "{e}");
    assert!(!dst.path().join(MANIFEST_FILE).exists());
    assert!(!dst.path().join("b").exists());
}

#[tokio::test]
async fn unwritable_local_target_names_the_path() {
    let d = data(10);
    let m = manifest(vec![entry("a", &d)]);
    let t = FakeTransport::default();
    t.files
        .lock()
        .unwrap()
        .insert(MANIFEST_FILE.into(), m.to_json().into_bytes());
    let dst = tempfile::tempdir().unwrap();
    let blocker = dst.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let target = blocker.join("image");
    let e = fetch_image(&t, "", &target, 1, &policy(), &|_, _| {})
        .await
        .unwrap_err();
    match &e {
        TransferError::LocalIo { path, .. } => assert!(path.starts_with(&blocker), "{e}"),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("file/image"), "{e}");
}

#[tokio::test]
async fn put_image_uploads_the_manifest_last_and_round_trips() {
    let src = tempfile::tempdir().unwrap();
    let files = [("a/x", data(300)), ("b", data(5)), ("a/y/z", data(0))];
    let m = write_image(src.path(), &files);
    let t = FakeTransport::default();
    t.files
        .lock()
        .unwrap()
        .insert("img/manifest.json".into(), b"old".to_vec());
    let r = put_image(src.path(), &t, "img", 2, &policy(), &|_, _| {})
        .await
        .unwrap();
    assert_eq!(r.manifest, m);
    let puts = t.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 4);
    assert_eq!(puts.last().unwrap(), "img/manifest.json");
    let dst = tempfile::tempdir().unwrap();
    fetch_image(&t, "img", dst.path(), 2, &policy(), &|_, _| {})
        .await
        .unwrap();
    for (p, d) in &files {
        assert_eq!(&std::fs::read(dst.path().join(p)).unwrap(), d);
    }
}

#[tokio::test]
async fn put_image_refuses_a_local_image_without_manifest() {
    let src = tempfile::tempdir().unwrap();
    let t = MockTransport::new();
    let e = put_image(src.path(), &t, "img", 2, &policy(), &|_, _| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");
}
