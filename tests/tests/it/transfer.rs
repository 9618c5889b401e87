//! amsu-transfer against a real pure-ftpd (plain and FTPS), with a fault-injecting proxy.

use std::path::Path;
use std::time::Duration;

use amsu_core::manifest::{FileEntry, Manifest, SourceServer, MANIFEST_FILE};
use amsu_core::{Coordinates, Flavor, Secret, Transport};
use amsu_tests::ftpd::FtpServer;
use amsu_tests::proxy::Proxy;
use amsu_transfer::{
    fetch_image, fetch_verified, put_image, sha256_file, FtpConfig, FtpSecurity, FtpTransport,
    RetryPolicy, TransferError,
};

const MIB: usize = 1 << 20;

/// Deterministic pseudo-random bytes (xorshift), different per seed.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn entry(dir: &Path, path: &str) -> FileEntry {
    let p = dir.join(path);
    FileEntry::new(
        path,
        std::fs::metadata(&p).unwrap().len(),
        sha256_file(&p).await.unwrap(),
    )
}

fn manifest(files: Vec<FileEntry>) -> Manifest {
    Manifest::new(
        "logical",
        SourceServer::new(Flavor::MariaDb, "10.11.19-MariaDB", 1),
        Coordinates::new("mysql-bin.000001", 4),
        files,
    )
    .with_created_unix(1_790_000_000)
}

/// Writes an image (files and manifest) into `dir`.
async fn write_image(dir: &Path, files: &[(&str, Vec<u8>)]) -> Manifest {
    let mut entries = Vec::new();
    for (p, d) in files {
        let full = dir.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, d).unwrap();
        entries.push(entry(dir, p).await);
    }
    let m = manifest(entries);
    std::fs::write(dir.join(MANIFEST_FILE), m.to_json()).unwrap();
    m
}

fn sample_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "db1/schema.sql",
            b"CREATE TABLE t (id INT PRIMARY KEY);\n".to_vec(),
        ),
        ("db1/t.00001.tsv", bytes(3 * MIB + 12_345, 1)),
        ("db1/t.00002.tsv", bytes(70_000, 2)),
        ("db2/u.00001.tsv", bytes(1, 3)),
        ("db2/empty.tsv", Vec::new()),
        ("accounts.sql", b"CREATE USER 'a'@'%';\n".to_vec()),
    ]
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(4)
        .base_delay(Duration::from_millis(20))
        .max_delay(Duration::from_millis(200))
}

fn assert_same_tree(files: &[(&str, Vec<u8>)], dir: &Path) {
    for (p, d) in files {
        let got = std::fs::read(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(
            got == *d,
            "{p}: {} bytes differ from {} expected",
            got.len(),
            d.len()
        );
    }
}

async fn round_trip(server: &FtpServer) {
    let ftp = FtpTransport::new(server.config()).unwrap();
    let src = tempfile::tempdir().unwrap();
    let files = sample_files();
    let m = write_image(src.path(), &files).await;

    let up = put_image(
        src.path(),
        &ftp,
        "images/one",
        3,
        &fast_retries(),
        &|_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(up.manifest, m);
    // The bytes on the server are the bytes sent.
    assert_same_tree(&files, &server.served.join("images/one"));
    assert!(server
        .served
        .join("images/one")
        .join(MANIFEST_FILE)
        .exists());

    // Listing: entries with sizes, never `.` or `..`.
    let list = ftp.list("images/one").await.unwrap();
    let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["accounts.sql", "db1", "db2", "manifest.json"]);
    assert!(list[1].is_dir);
    assert_eq!(list[0].size, Some(files[5].1.len() as u64));

    let dst = tempfile::tempdir().unwrap();
    let local = dst.path().join("image");
    let last = std::sync::Mutex::new((0, 0));
    let report = fetch_image(&ftp, "images/one", &local, 4, &fast_retries(), &|d, t| {
        *last.lock().unwrap() = (d, t)
    })
    .await
    .unwrap();
    assert_eq!(report.manifest, m);
    let total: u64 = files.iter().map(|f| f.1.len() as u64).sum();
    assert_eq!(report.bytes_total, total);
    assert_eq!(report.bytes_transferred, total);
    assert_eq!(*last.lock().unwrap(), (total, total));
    assert_same_tree(&files, &local);
    assert_eq!(
        std::fs::read(local.join(MANIFEST_FILE)).unwrap(),
        std::fs::read(src.path().join(MANIFEST_FILE)).unwrap()
    );
    ftp.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ftp_put_and_fetch_an_image() {
    let server = FtpServer::plain();
    round_trip(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ftps_put_and_fetch_an_image_with_the_ca_file() {
    let server = FtpServer::tls_required();
    assert_eq!(server.config().security_mode(), FtpSecurity::ExplicitTls);
    round_trip(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ftps_without_trust_in_the_certificate_fails_with_a_tls_error() {
    let server = FtpServer::tls_required();
    let cfg = FtpConfig::from_url(&server.url())
        .unwrap()
        .password(server.password.clone());
    let ftp = FtpTransport::new(cfg).unwrap();
    let e = ftp.check().await.unwrap_err();
    assert!(matches!(e, TransferError::Tls { .. }), "{e}");
    // `insecure` accepts it (and logs a warning).
    let ftp = FtpTransport::new(server.config().insecure(true)).unwrap();
    ftp.check().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_transfer_resumes_from_where_it_stopped() {
    let server = FtpServer::plain();
    let data = bytes(4 * MIB + 777, 9);
    std::fs::create_dir(server.served.join("img")).unwrap();
    std::fs::write(server.served.join("img/big.tsv"), &data).unwrap();
    let entry = entry(&server.served.join("img"), "big.tsv").await;

    let proxy = Proxy::start_ftp(server.addr()).await;
    let cfg = FtpConfig::new("127.0.0.1")
        .port(proxy.port)
        .user(server.user.clone())
        .password(server.password.clone())
        .root("img")
        .unwrap();
    let ftp = FtpTransport::new(cfg).unwrap();
    let cut = MIB as u64 + 4321;
    proxy.cut_next_after(cut);

    let dst = tempfile::tempdir().unwrap();
    let report = fetch_verified(&ftp, &entry, dst.path(), &fast_retries())
        .await
        .unwrap();
    assert_eq!(proxy.cuts(), 1);
    assert_eq!(report.attempts, 2, "{report:?}");
    assert_eq!(
        report.resumed_from,
        [cut],
        "resumed at the cut, not from scratch"
    );
    assert_eq!(report.bytes_transferred, data.len() as u64);
    // The second data connection carried only the rest of the file.
    assert_eq!(proxy.downloads(), [cut, data.len() as u64 - cut]);
    assert!(std::fs::read(dst.path().join("big.tsv")).unwrap() == data);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_an_authentication_error_without_the_password() {
    let server = FtpServer::plain();
    let bad = Secret::new("not-the-password-XYZ");
    let ftp = FtpTransport::new(server.config().password(bad.clone())).unwrap();
    let e = ftp.size("x").await.unwrap_err();
    let e = TransferError::from_boxed(e);
    assert!(matches!(e, TransferError::AuthFailed { .. }), "{e}");
    let text = format!("{e} {e:?}");
    assert!(!text.contains(bad.expose()), "{text}");
    assert!(!text.contains(server.password.expose()), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_file_is_not_found_and_leaves_nothing_locally() {
    let server = FtpServer::plain();
    let ftp = FtpTransport::new(server.config()).unwrap();
    assert_eq!(ftp.size("missing.tsv").await.unwrap(), None);
    let dst = tempfile::tempdir().unwrap();
    let e = fetch_verified(
        &ftp,
        &FileEntry::new("missing.tsv", 10, "00".repeat(32)),
        dst.path(),
        &fast_retries(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, TransferError::NotFound { path, .. } if path == "missing.tsv"),
        "{e}"
    );
    assert!(!dst.path().join("missing.tsv").exists());
    // And a whole image that is not there.
    let e = fetch_image(&ftp, "no/image", dst.path(), 2, &fast_retries(), &|_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(e, TransferError::NotFound { .. }), "{e}");
    assert_eq!(std::fs::read_dir(dst.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checksum_mismatch_fails_and_deletes_the_local_file() {
    let server = FtpServer::plain();
    std::fs::write(server.served.join("f.tsv"), bytes(100_000, 4)).unwrap();
    let mut e = entry(&server.served, "f.tsv").await;
    let good = e.sha256.clone();
    e.sha256 = "ab".repeat(32);
    let ftp = FtpTransport::new(server.config()).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let err = fetch_verified(&ftp, &e, dst.path(), &fast_retries())
        .await
        .unwrap_err();
    match &err {
        TransferError::ChecksumMismatch {
            path,
            expected,
            actual,
        } => {
            assert_eq!(path, "f.tsv");
            assert_eq!(expected, &"ab".repeat(32));
            assert_eq!(actual, &good);
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("f.tsv") && msg.contains(&good), "{msg}");
    assert!(!dst.path().join("f.tsv").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_with_an_escaping_path_is_refused_before_any_fetch() {
    let server = FtpServer::plain();
    let img = server.served.join("evil");
    std::fs::create_dir(&img).unwrap();
    std::fs::write(img.join("ok.tsv"), b"fine").unwrap();
    let mut m = manifest(vec![
        entry(&img, "ok.tsv").await,
        entry(&img, "ok.tsv").await,
    ]);
    m.files[1].path = "../x".into();
    std::fs::write(img.join(MANIFEST_FILE), m.to_json()).unwrap();

    let ftp = FtpTransport::new(server.config()).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let e = fetch_image(&ftp, "evil", dst.path(), 2, &fast_retries(), &|_, _| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("../x"), "{e}");
    // Not even the safe file was fetched, and no manifest was left.
    assert_eq!(std::fs::read_dir(dst.path()).unwrap().count(), 0);
    assert!(!dst.path().parent().unwrap().join("x").exists());

    // The transport itself refuses such paths too, before talking to the server.
    let e = ftp
        .fetch("../x", 0, &dst.path().join("x"))
        .await
        .unwrap_err();
    assert!(matches!(
        TransferError::from_boxed(e),
        TransferError::UnsafePath { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_local_target_is_a_clear_error() {
    let server = FtpServer::plain();
    std::fs::create_dir(server.served.join("img")).unwrap();
    let m = write_image(&server.served.join("img"), &[("a.tsv", bytes(1000, 5))]).await;
    let ftp = FtpTransport::new(server.config()).unwrap();
    let dst = tempfile::tempdir().unwrap();
    // A regular file where the image directory should be: even root cannot write there.
    let blocker = dst.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let target = blocker.join("image");
    let e = fetch_image(&ftp, "img", &target, 2, &fast_retries(), &|_, _| {})
        .await
        .unwrap_err();
    match &e {
        TransferError::LocalIo { path, .. } => assert!(path.starts_with(&blocker), "{e}"),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("not-a-dir"), "{e}");
    // Same for one file.
    let e = fetch_verified(&ftp, &m.files[0], &target, &fast_retries())
        .await
        .unwrap_err();
    assert!(matches!(e, TransferError::LocalIo { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_fetches_use_several_connections() {
    let server = FtpServer::plain();
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            (
                format!("p/f{i:02}.tsv"),
                bytes(200_000 + i * 1000, 100 + i as u64),
            )
        })
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    write_image(&server.served, &refs).await;
    let proxy = Proxy::start_ftp(server.addr()).await;
    let ftp = FtpTransport::new(server.config().port(proxy.port).max_connections(4)).unwrap();
    let dst = tempfile::tempdir().unwrap();
    fetch_image(&ftp, "", dst.path(), 6, &fast_retries(), &|_, _| {})
        .await
        .unwrap();
    assert_same_tree(&refs, dst.path());
    // Several control connections, never more than the configured maximum.
    let conns = proxy.accepted();
    assert!((2..=4).contains(&conns), "{conns} control connections");
    assert_eq!(proxy.downloads().len(), 13, "12 files and the manifest");
}
