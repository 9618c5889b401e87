//! Issue 17: an interrupted streamed (`logical`) copy resumes instead of starting over.
//! `amsu setup` is killed (`kill -9`) early, in the middle and near the end of its copy
//! while the master takes writes; the rerun keeps the chunks of tables unchanged since
//! their snapshot, copies fewer rows than the whole data, and `verify` finds the replica
//! equal. Where keeping chunks cannot be proven right (statement-based binary log, DDL,
//! purged binary logs, non-transactional tables) the rerun says why and copies again
//! what it must, and the result is equal too.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use amsu_tests::servers::{
    amsu_bin, create_bank, exec, journal_dir_for_tests, pair, query, scalar, wait_caught_up, Pair,
    Writer,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Rows of the big table (the bank adds 1000 and the writer's transfers).
const ITEMS: u64 = 60_000;
const LEGACY: u64 = 3_000;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The rows the run's copy loaded (its final report).
    fn copied_rows(&self) -> u64 {
        let line = self
            .stdout
            .lines()
            .find(|l| l.contains("\"event\":\"report\""))
            .unwrap_or_else(|| panic!("no report in:\n{}", self.stdout));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["report"]["copy"]["rows"]
            .as_u64()
            .unwrap_or_else(|| panic!("no copy rows in {line}"))
    }
}

/// `amsu setup --json -vv` with small chunks; with `kill_at_rows`, SIGKILL once a progress
/// event reports at least that many rows copied.
async fn setup(p: &Pair, journal: &Path, kill_at_rows: Option<u64>) -> Run {
    let master = format!("mysql://admin@127.0.0.1:{}", p.master.port());
    let mut cmd = tokio::process::Command::new(amsu_bin());
    cmd.args([
        "-vv",
        "setup",
        "--master",
        &master,
        "--replica",
        &p.replica.url(),
        "--method",
        "logical",
        "--threads",
        "2",
        "--chunk-size",
        "256K",
        "--yes",
        "--json",
        "--wait-caught-up",
        "--journal",
    ])
    .arg(journal)
    .env("AMSU_MASTER_PASSWORD", "Adm1n-Secret-Pw")
    .env("AMSU_REPL_PASSWORD", "Repl-Secret-Pw-77")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("amsu starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s)
            .await
            .ok();
        s
    });
    let mut stdout = String::new();
    let mut killed = false;
    while let Some(line) = lines.next_line().await.expect("read stdout") {
        stdout.push_str(&line);
        stdout.push('\n');
        if let (Some(at), false) = (kill_at_rows, killed) {
            if line.contains("\"event\":\"progress\"") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if v["rows"].as_u64().unwrap_or(0) >= at {
                    child.start_kill().expect("SIGKILL");
                    killed = true;
                }
            }
        }
    }
    let status = child.wait().await.expect("wait");
    if kill_at_rows.is_some() {
        assert!(killed, "never reached the kill point in:\n{stdout}");
    }
    Run {
        code: status.code(),
        stdout,
        stderr: err_task.await.unwrap(),
    }
}

/// A master with a bank (written to by the writer), a big untouched InnoDB table and a
/// MyISAM table; a replica.
async fn servers() -> Pair {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 1000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(50), note TEXT) ENGINE=InnoDB",
            &format!(
                "INSERT INTO shop.items SELECT seq, CONCAT('item ', seq), REPEAT('n', seq % 300) \
                 FROM shop.seq_1_to_{ITEMS}"
            ),
            "CREATE TABLE shop.legacy (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=MyISAM",
            &format!("INSERT INTO shop.legacy SELECT seq, CONCAT('v', seq) FROM shop.seq_1_to_{LEGACY}"),
            "ANALYZE TABLE shop.items, shop.legacy, bank.accounts",
            "CREATE USER 'admin'@'%' IDENTIFIED BY 'Adm1n-Secret-Pw'",
            "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION",
        ],
    )
    .await;
    p
}

/// Rows of the copied tables on the master now.
async fn total_rows(p: &Pair) -> u64 {
    let m = p.master.addr();
    let mut n = 0;
    for t in [
        "shop.items",
        "shop.legacy",
        "bank.accounts",
        "bank.transfers",
    ] {
        n += scalar(&m, &format!("SELECT COUNT(*) FROM {t}"))
            .await
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    n
}

/// Chunks recorded on the replica by the killed run.
async fn recorded_chunks(p: &Pair) -> u64 {
    scalar(
        &p.replica.addr(),
        "SELECT COUNT(*) FROM mysql.amsu_stream_progress",
    )
    .await
    .unwrap()
    .parse()
    .unwrap()
}

/// The replica equals the master (verify at one position, while the writer commits), and
/// replication runs.
async fn assert_equal(p: &Pair) {
    let (m, r) = (p.master.addr(), p.replica.addr());
    wait_caught_up(&m, &r).await;
    let outcome = amsu_mysql::verify::verify(&m, &r, Duration::from_secs(120))
        .await
        .expect("verify runs");
    assert!(outcome.differences.is_empty(), "{:?}", outcome.differences);
    let left = query(
        &r,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' \
         AND TABLE_NAME = 'amsu_stream_progress'",
    )
    .await;
    assert_eq!(left[0][0].as_deref(), Some("0"), "progress records left");
}

/// Killed once `fraction` of the rows were copied, under a write load; the rerun resumes.
async fn killed_then_resumed(fraction: f64) {
    let p = servers().await;
    let journal = p.dir.path().join("journal.json");
    let writer = Writer::start(p.master.addr(), "bank", 1000);
    writer.wait_commits(5).await;
    let at = ((ITEMS + LEGACY + 1000) as f64 * fraction) as u64;
    let first = setup(&p, &journal, Some(at.max(1))).await;
    assert_eq!(first.code, None, "killed by a signal");
    let kept = recorded_chunks(&p).await;
    assert!(kept >= 1, "chunks recorded before the kill");

    let second = setup(&p, &journal, None).await;
    assert_eq!(
        second.code,
        Some(0),
        "rerun resumes: {}\n{}",
        second.stdout,
        second.stderr
    );
    let out = format!("{}\n{}", second.stdout, second.stderr);
    assert!(out.contains("resuming the interrupted copy: "), "{out}");
    assert!(
        out.contains("`shop`.`legacy` is not transactional"),
        "the MyISAM table is copied again, saying why: {out}"
    );
    assert!(!out.contains("cannot keep the interrupted copy"), "{out}");
    let copied = second.copied_rows();
    let total = total_rows(&p).await;
    eprintln!("measured: killed at {fraction}: {kept} chunks kept; the rerun copied {copied} of {total} rows");
    assert!(
        copied < total,
        "the rerun copied {copied} rows of {total}: it should keep the loaded chunks"
    );
    assert_equal(&p).await;
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_early_resumes() {
    killed_then_resumed(0.05).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_middle_resumes() {
    killed_then_resumed(0.5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_the_last_chunks_resumes() {
    killed_then_resumed(0.9).await;
}

/// A refusal: killed in the middle, `change` run on the master, then the rerun says
/// `message` and copies again what it must; the replica ends equal.
async fn refused(change: &[&str], message: &str) -> Run {
    let p = servers().await;
    let journal = p.dir.path().join("journal.json");
    let m = p.master.addr();
    let first = setup(&p, &journal, Some(ITEMS / 2)).await;
    assert_eq!(first.code, None, "killed by a signal");
    assert!(recorded_chunks(&p).await >= 1);
    exec(&m, change).await;
    let second = setup(&p, &journal, None).await;
    assert_eq!(
        second.code,
        Some(0),
        "rerun: {}\n{}",
        second.stdout,
        second.stderr
    );
    let out = format!("{}\n{}", second.stdout, second.stderr);
    assert!(out.contains(message), "expected {message:?} in:\n{out}");
    assert_equal(&p).await;
    second
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_based_binlog_recopies_every_table() {
    let run = refused(
        &[
            "SET GLOBAL binlog_format = 'STATEMENT'",
            "SET SESSION binlog_format = 'STATEMENT'",
            "UPDATE shop.items SET name = 'changed by a statement' WHERE id % 1000 = 7",
        ],
        "statement-based changes",
    )
    .await;
    assert!(run.copied_rows() >= ITEMS, "every table copied again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_since_the_snapshot_starts_over() {
    let run = refused(
        &["ALTER TABLE shop.items ADD COLUMN extra INT NOT NULL DEFAULT 7"],
        "DDL ran on the master since its snapshot",
    )
    .await;
    assert!(run.copied_rows() >= ITEMS, "copied from the start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_binlog_starts_over() {
    let run = refused(
        &[
            "FLUSH BINARY LOGS",
            "UPDATE shop.items SET name = 'after the kill' WHERE id = 3",
            "FLUSH BINARY LOGS",
            // Every file but the current one: the interrupted copy's snapshot is gone.
            "PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 DAY",
        ],
        "was purged",
    )
    .await;
    assert!(run.copied_rows() >= ITEMS, "copied from the start");
}

/// A row change on the big table after the kill: that table is copied again (it is
/// named), the others keep their chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_table_is_copied_again_others_kept() {
    let run = refused(
        &["UPDATE shop.items SET name = 'changed' WHERE id = 5"],
        "tables changed on the master since the interrupted copy are copied again: `shop`.`items`",
    )
    .await;
    assert!(run.copied_rows() >= ITEMS, "shop.items copied again whole");
    let out = format!("{}\n{}", run.stdout, run.stderr);
    assert!(
        out.contains(", 1 tables copied again"),
        "only the changed table: {out}"
    );
}
