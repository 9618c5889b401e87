//! `amsu backup --out s3://…` streams the image to a real Garage while it is written, and
//! a second backup of an unchanged master sends only what changed: the chunks already in
//! the store with the right checksum are not sent again. The image restores equal.

use amsu_core::manifest::MANIFEST_FILE;
use amsu_core::Transport;
use amsu_tests::garage::Garage;
use amsu_tests::servers::{amsu_output, checksums, create_bank, exec, pair, wait_caught_up};
use amsu_transfer::UPLOAD_STATE_FILE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_streams_to_garage_and_a_rerun_sends_only_what_changed() {
    let g = Garage::single();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 2000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE d",
            "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB",
            "INSERT INTO d.t SELECT seq, CONCAT('v', seq, REPEAT('x', seq % 150)) FROM d.seq_1_to_40000",
            "ANALYZE TABLE d.t",
        ],
    )
    .await;
    let url = g.url("images/stream");
    let creds = g.credentials_file().display().to_string();
    let (endpoint, region) = (g.endpoint(0), g.region.clone());
    let backup = || {
        let args = vec![
            "backup".to_string(),
            "--master".into(),
            p.master.url(),
            "--out".into(),
            url.clone(),
            "--json".into(),
            "--chunk-size".into(),
            "256K".into(),
            "--s3-endpoint".into(),
            endpoint.clone(),
            "--s3-region".into(),
            region.clone(),
            "--s3-path-style".into(),
            "--s3-credentials-file".into(),
            creds.clone(),
        ];
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = amsu_output(&a, &[]).await;
            assert_eq!(out.code, Some(0), "{}", out.text());
            let line = out
                .stdout
                .lines()
                .find(|l| l.contains("\"event\":\"manifest\""))
                .unwrap_or_else(|| panic!("no manifest line: {}", out.text()))
                .to_string();
            serde_json::from_str::<serde_json::Value>(&line).unwrap()
        }
    };
    let first = backup().await;
    let u = &first["upload"];
    let chunks = first["manifest"]["files"].as_array().unwrap().len() as u64 - 1;
    assert!(chunks >= 5, "{first}");
    assert_eq!(u["streamed"], true, "{u}");
    assert_eq!(u["files_skipped"], 0, "{u}");
    assert_eq!(u["files"].as_u64(), Some(chunks + 1), "{u}");
    assert!(
        u["mb_per_s"].as_f64().unwrap() > 0.0 && u["mb_per_s_per_stream"].as_f64().unwrap() > 0.0
    );
    let t = g.transport(0, "images/stream");
    assert!(t.size(MANIFEST_FILE).await.unwrap().is_some());
    assert!(t.size(UPLOAD_STATE_FILE).await.unwrap().is_none());

    // One table changes; the other's chunks are already there and are not sent again.
    exec(
        &m,
        &["UPDATE bank.accounts SET touched = touched + 1 WHERE id <= 5"],
    )
    .await;
    let second = backup().await;
    let u = &second["upload"];
    let skipped = u["files_skipped"].as_u64().unwrap();
    assert!(skipped >= chunks - 1, "{u}");
    assert!(
        u["files"].as_u64().unwrap() >= 1,
        "the changed chunk is sent: {u}"
    );

    // The image in the store is the second one, whole.
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--image",
            &url,
            "--yes",
            "--s3-endpoint",
            &endpoint,
            "--s3-region",
            &region,
            "--s3-path-style",
            "--s3-credentials-file",
            &creds,
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
}
