//! The replica's fast-load profile: durability relaxed for the copy, every relaxed global
//! back to its original value before replication starts — also when `amsu setup` is
//! killed in the middle of the load and run again. (The redo log is resized only with
//! `--resize-redo-log`; `innodb_log_file_size` is checked to stay as it was.)

use amsu_core::ServerAddr;
use amsu_tests::servers::{
    checksums, create_bank, exec, journal_dir_for_tests, pair, query, wait_caught_up,
};

use crate::resume::setup;

const GLOBALS: &str = "SELECT @@global.innodb_flush_log_at_trx_commit, @@global.sync_binlog, \
                       @@global.innodb_log_file_size";

async fn globals(r: &ServerAddr) -> Vec<Option<String>> {
    query(r, GLOBALS).await.remove(0)
}

/// The globals the journal says are relaxed and not restored.
fn journaled_relaxed(journal: &std::path::Path) -> Vec<serde_json::Value> {
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(journal).unwrap()).unwrap();
    j["relaxed"].as_array().cloned().unwrap_or_default()
}

/// The JSON `changed` events of a run, in order.
fn changes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "changed")
        .filter_map(|v| v["what"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_load_a_rerun_restores_every_relaxed_global_before_replication() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    // Durable settings on the replica, so that the profile has something to relax.
    exec(
        &r,
        &[
            "SET GLOBAL innodb_flush_log_at_trx_commit = 1",
            "SET GLOBAL sync_binlog = 1",
        ],
    )
    .await;
    let original = globals(&r).await;
    create_bank(&m, "bank", 1000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(50), note TEXT)",
            "INSERT INTO shop.items SELECT seq, CONCAT('item ', seq), REPEAT('n', seq % 200) FROM shop.seq_1_to_150000",
            "CREATE USER 'admin'@'%' IDENTIFIED BY 'Adm1n-Secret-Pw'",
            "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION",
        ],
    )
    .await;
    let journal = p.dir.path().join("journal.json");
    let env = [
        ("AMSU_MASTER_PASSWORD", "Adm1n-Secret-Pw"),
        ("AMSU_REPL_PASSWORD", "Repl-Secret-Pw-77"),
    ];

    // The plan shows every global it relaxes, with the statement.
    let dry = setup(&p, &journal, &env, "admin", None, &["--dry-run"]).await;
    assert_eq!(dry.code, Some(0), "{}\n{}", dry.stdout, dry.stderr);
    assert!(
        dry.stdout.contains("SET GLOBAL sync_binlog = 0  -- was 1")
            && dry
                .stdout
                .contains("SET GLOBAL innodb_flush_log_at_trx_commit = 0  -- was 1")
            && !dry.stdout.contains("innodb_log_file_size"),
        "{}",
        dry.stdout
    );
    assert_eq!(globals(&r).await, original, "a dry run changes nothing");

    let first = setup(
        &p,
        &journal,
        &env,
        "admin",
        Some("\"event\":\"progress\""),
        &[],
    )
    .await;
    assert_eq!(first.code, None, "killed by a signal");
    let relaxed = globals(&r).await;
    assert_eq!(relaxed[0].as_deref(), Some("0"), "relaxed while loading");
    assert_eq!(relaxed[1].as_deref(), Some("0"), "relaxed while loading");
    let pending = journaled_relaxed(&journal);
    assert_eq!(pending.len(), 2, "originals journaled: {pending:?}");

    let second = setup(&p, &journal, &env, "admin", None, &[]).await;
    assert_eq!(
        second.code,
        Some(0),
        "rerun resumes: {}\n{}",
        second.stdout,
        second.stderr
    );
    let changed = changes(&second.stdout);
    let restored = changed
        .iter()
        .position(|c| c.starts_with("restored innodb"))
        .unwrap_or_else(|| panic!("no restore in {changed:#?}"));
    let started = changed
        .iter()
        .position(|c| c == "replication started")
        .unwrap_or_else(|| panic!("no start in {changed:#?}"));
    assert_eq!(restored, 0, "the rerun restores first: {changed:#?}");
    assert!(restored < started);
    assert_eq!(
        globals(&r).await,
        original,
        "every global back after the setup"
    );
    assert!(journaled_relaxed(&journal).is_empty());
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
}
