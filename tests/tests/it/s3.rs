//! Images in S3-compatible object storage, against a real Garage: the transport (multipart
//! uploads on parallel streams, resumed downloads, unsafe paths), `amsu backup --out
//! s3://…` and `amsu setup --image s3://…` with credentials only in the environment (never
//! in output, argv or journal), a damaged object refused before anything loads, and a
//! three-node cluster that loses a node in the middle of an upload and still completes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use amsu_core::manifest::MANIFEST_FILE;
use amsu_core::{NoEvents, Transport};
use amsu_tests::garage::Garage;
use amsu_tests::servers::{
    amsu, amsu_bin, checksums, create_bank, exec, pair, scalar, wait_caught_up,
};
use amsu_transfer::{put_image, RetryPolicy, TransferError};

/// `len` bytes that differ from offset to offset.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect()
}

/// The S3 flags of a Garage node, the credentials file included.
fn s3_flags(g: &Garage, node: usize) -> Vec<String> {
    vec![
        "--s3-endpoint".into(),
        g.endpoint(node),
        "--s3-region".into(),
        g.region.clone(),
        "--s3-path-style".into(),
        "--s3-credentials-file".into(),
        g.credentials_file().display().to_string(),
    ]
}

async fn fill(m: &amsu_core::ServerAddr, rows: u32) {
    create_bank(m, "bank", 2000).await;
    exec(
        m,
        &[
            "CREATE DATABASE d",
            "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB",
            &format!(
                "INSERT INTO d.t SELECT seq, CONCAT('v', seq, REPEAT('x', seq % 150)) FROM d.seq_1_to_{rows}"
            ),
        ],
    )
    .await;
}

/// Multipart upload (3 parts on parallel streams), size, listing, a download resumed from
/// the middle, replacement, deletion; `..` and absolute paths refused before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_transport_multipart_resume_and_unsafe_paths() {
    let g = Garage::single();
    let t = g.transport(0, "unit");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big");
    let data = pattern(20 * 1024 * 1024 + 123);
    std::fs::write(&src, &data).unwrap();
    assert_eq!(t.put(&src, "a/big").await.unwrap(), data.len() as u64);
    assert_eq!(t.size("a/big").await.unwrap(), Some(data.len() as u64));
    assert_eq!(t.size("a/none").await.unwrap(), None);
    let list = t.list("a").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "big");
    assert_eq!(list[0].size, Some(data.len() as u64));
    let top = t.list("").await.unwrap();
    assert!(top.iter().any(|e| e.name == "a" && e.is_dir), "{top:?}");

    // A download cut at 7 MB resumes there.
    let dst = dir.path().join("dst");
    std::fs::write(&dst, &data[..7_000_000]).unwrap();
    let n = t.fetch("a/big", 7_000_000, &dst).await.unwrap();
    assert_eq!(n as usize, data.len() - 7_000_000);
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "resumed download differs"
    );
    // At the end: nothing more.
    assert_eq!(t.fetch("a/big", data.len() as u64, &dst).await.unwrap(), 0);

    let e = t
        .fetch("a/none", 0, &dir.path().join("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(TransferError::from_boxed(e), TransferError::NotFound { .. }),
        "a missing object is NotFound"
    );
    for p in ["../x", "/etc/passwd", "a/../../b"] {
        let e = t.put(&src, p).await.unwrap_err();
        assert!(
            matches!(
                TransferError::from_boxed(e),
                TransferError::UnsafePath { .. }
            ),
            "{p}"
        );
    }
    // Small objects are single PUTs; replacing keeps one object.
    std::fs::write(&src, b"small").unwrap();
    t.put(&src, "a/big").await.unwrap();
    assert_eq!(t.size("a/big").await.unwrap(), Some(5));
    t.delete("a/big").await.unwrap();
    assert_eq!(t.size("a/big").await.unwrap(), None);
}

/// `amsu backup --out s3://…` then `amsu setup --image s3://…` as separate processes with
/// the key only in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: the replica replicates and
/// is equal, and the secret is in no output and no journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_round_trip_through_garage_keeps_credentials_secret() {
    let g = Garage::single();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    fill(&m, 30_000).await;
    let url = g.url("images/first");
    let endpoint = g.endpoint(0);
    let run = |args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(amsu_bin());
        cmd.args(&args)
            .env("AWS_ACCESS_KEY_ID", &g.key_id)
            .env("AWS_SECRET_ACCESS_KEY", g.secret.expose())
            .env("AMSU_HOME", p.dir.path().join("home"))
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("AWS_PROFILE");
        async move { cmd.output().await.unwrap() }
    };
    let s3 = |mut v: Vec<String>| {
        v.extend([
            "--s3-endpoint".into(),
            endpoint.clone(),
            "--s3-region".into(),
            "garage".into(),
            "--s3-path-style".into(),
        ]);
        v
    };
    let out = run(s3(vec![
        "backup".into(),
        "--master".into(),
        p.master.url(),
        "--out".into(),
        url.clone(),
        "--zstd".into(),
        "--json".into(),
    ]))
    .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "backup: {text}");
    assert!(
        !text.contains(g.secret.expose()),
        "the secret leaked: {text}"
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("\"event\":\"manifest\""))
        .unwrap_or_else(|| panic!("no manifest line: {text}"))
        .to_string();
    let report: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert!(
        report["upload"]["mb_per_s"].as_f64().unwrap() > 0.0,
        "{last}"
    );
    assert!(report["upload"]["mb_per_s_per_stream"].as_f64().unwrap() > 0.0);
    // The manifest is there, with every file it names.
    let t = g.transport(0, "images/first");
    assert!(t.size(MANIFEST_FILE).await.unwrap().is_some());

    let journal = p.dir.path().join("journal.json");
    let out = run(s3(vec![
        "setup".into(),
        "--master".into(),
        p.master.url(),
        "--replica".into(),
        p.replica.url(),
        "--image".into(),
        url.clone(),
        "--journal".into(),
        journal.display().to_string(),
        "--yes".into(),
    ]))
    .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "setup --image s3://: {text}");
    assert!(
        !text.contains(g.secret.expose()),
        "the secret leaked: {text}"
    );
    let j = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(
        !j.contains(g.secret.expose()),
        "the secret is in the journal"
    );
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

/// A chunk object changed in the bucket (same size) is refused by its checksum and nothing
/// is loaded; a prefix without a manifest is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_object_is_refused_before_anything_loads() {
    let g = Garage::single();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "CREATE DATABASE d",
            "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB",
            "INSERT INTO d.t SELECT seq, CONCAT('v', seq) FROM d.seq_1_to_5000",
        ],
    )
    .await;
    let flags = s3_flags(&g, 0);
    let url = g.url("dmg");
    let master_url = p.master.url();
    let mut args = vec!["backup", "--master", &master_url, "--out", &url];
    args.extend(flags.iter().map(String::as_str));
    assert_eq!(amsu(&args).await, 0, "backup to s3 must succeed");

    // Damage the one chunk of d.t in the bucket.
    let local = p.dir.path().join("img");
    let t = g.transport(0, "dmg");
    let rep = amsu_transfer::fetch_image(&t, "", &local, 2, &RetryPolicy::default(), &|_, _| {})
        .await
        .expect("the image downloads intact");
    let chunk = rep
        .manifest
        .files
        .iter()
        .find(|f| f.path.starts_with("data/"))
        .expect("a chunk of d.t, the only table")
        .clone();
    let path = local.join(&chunk.path);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    t.put(&path, &chunk.path).await.unwrap();

    let replica_url = p.replica.url();
    let mut args = vec!["restore", "--image", &url, "--replica", &replica_url];
    args.extend(flags.iter().map(String::as_str));
    assert_ne!(
        amsu(&args).await,
        0,
        "a damaged object must fail the restore"
    );
    assert!(
        matches!(
            scalar(
                &r,
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'd'"
            )
            .await
            .as_deref(),
            None | Some("0")
        ),
        "nothing may be loaded from a damaged image"
    );

    // No manifest: refused.
    t.delete(MANIFEST_FILE).await.unwrap();
    assert_ne!(
        amsu(&args).await,
        0,
        "an image without a manifest is refused"
    );
}

/// Three Garage nodes, replication factor 3: node 2 is stopped in the middle of the
/// upload (after its first file, with more than half of the bytes to go), the upload through node 0 completes,
/// a multipart object goes through with the node down, and the image restores into an
/// equal replica that replicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_stopped_mid_upload_still_completes() {
    let g = Arc::new(Garage::start(3));
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    // Eight tables of the same size: the upload is many similar files, so the first one
    // done is early in the upload.
    exec(&m, &["CREATE DATABASE many"]).await;
    for i in 0..8 {
        exec(
            &m,
            &[
                &format!("CREATE TABLE many.t{i} (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB"),
                &format!(
                    "INSERT INTO many.t{i} SELECT seq, CONCAT('v', seq, REPEAT('y', seq % 150)) FROM many.seq_1_to_8000"
                ),
            ],
        )
        .await;
    }
    let local = p.dir.path().join("img");
    amsu_backup::ImageBackup::new(m.clone(), &local)
        .threads(2)
        .run(Arc::new(NoEvents))
        .await
        .expect("local backup");

    let t = g.transport(0, "three");
    let stopped = AtomicBool::new(false);
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let gg = g.clone();
    let rep = put_image(
        &local,
        &t,
        "",
        2,
        &RetryPolicy::default(),
        &|done, total| {
            calls.fetch_add(1, Ordering::Relaxed);
            // After the first file, with more than half of the bytes still to go.
            if done > 0 && done < total / 2 && !stopped.swap(true, Ordering::SeqCst) {
                gg.stop_node(2);
            }
        },
    )
    .await
    .expect("the upload completes with a node stopped");
    assert!(
        stopped.load(Ordering::SeqCst),
        "node 2 was stopped during the upload ({} progress calls)",
        calls.load(Ordering::Relaxed)
    );
    assert!(rep.manifest.files.len() >= 3);

    // A multipart object with the node down.
    let big = p.dir.path().join("big");
    let data = pattern(12 * 1024 * 1024);
    std::fs::write(&big, &data).unwrap();
    t.put(&big, "extra/big")
        .await
        .expect("multipart upload with a node down");
    let back = p.dir.path().join("back");
    t.fetch("extra/big", 0, &back).await.unwrap();
    assert!(std::fs::read(&back).unwrap() == data);

    let flags = s3_flags(&g, 0);
    let url = g.url("three");
    let (mu, ru) = (p.master.url(), p.replica.url());
    let mut args = vec![
        "restore",
        "--image",
        &url,
        "--replica",
        &ru,
        "--start-replication",
        "--master",
        &mu,
    ];
    args.extend(flags.iter().map(String::as_str));
    assert_eq!(amsu(&args).await, 0, "restore from the degraded cluster");
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

/// A multipart upload cut in its second part (the HTTP client's own retries off) fails;
/// the next `put` of the same file resumes: it sends only the parts not yet stored, and
/// the object is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_multipart_upload_resumes_its_missing_parts() {
    use amsu_tests::proxy::Proxy;
    use amsu_transfer::{S3Config, S3Credentials, S3Transport};
    let g = Garage::single();
    let proxy = Proxy::start(g.endpoint(0).trim_start_matches("http://").parse().unwrap()).await;
    let c = S3Config::from_url(&g.url("cut"))
        .unwrap()
        .endpoint(Some(format!("http://{}", proxy.addr())))
        .region(Some(g.region.clone()))
        .path_style(true)
        .streams(1)
        .client_retries(0)
        .credentials(S3Credentials::new(&g.key_id, g.secret.clone()));
    let t = S3Transport::new(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big");
    let data = pattern(3 * 8 * 1024 * 1024 - 1000);
    std::fs::write(&src, &data).unwrap();

    // The first connection to carry more than 10 MB (part 1 is 8 MiB) is cut.
    proxy.cut_first_over(10_000_000);
    let e = t.put(&src, "big").await.expect_err("the cut upload fails");
    assert!(TransferError::from_boxed(e).is_retryable());
    // The proxy counts the cut once both directions of the relay ended.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while proxy.cuts() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(proxy.cuts(), 1, "the proxy cut the upload");
    assert_eq!(t.size("big").await.unwrap(), None, "no partial object");
    let before: u64 = proxy.uploads().iter().sum();

    assert_eq!(t.put(&src, "big").await.unwrap(), data.len() as u64);
    let resent: u64 = proxy.uploads().iter().sum::<u64>() - before;
    assert!(
        resent < data.len() as u64 - 8 * 1024 * 1024 + 1_000_000,
        "the resumed upload sent {resent} bytes: part 1 must not be sent again"
    );
    let back = dir.path().join("back");
    t.fetch("big", 0, &back).await.unwrap();
    assert!(
        std::fs::read(&back).unwrap() == data,
        "the resumed object differs"
    );
}
