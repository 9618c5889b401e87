//! Issue 17: an interrupted streamed (`logical`) copy resumes instead of starting over.
//! `amsu setup` is killed (`kill -9`) early, in the middle and near the end of its copy
//! while the master takes writes; the rerun keeps the chunks of tables unchanged since
//! their snapshot, copies fewer rows than the whole data, and `verify` finds the replica
//! equal. Where keeping chunks cannot be proven right (statement-based binary log, DDL,
//! purged binary logs, non-transactional tables) the rerun says why and copies again
//! what it must, and the result is equal too. Killed after the data (while views are
//! created, once triggers exist, right after the copy step), the rerun ends equal too,
//! objects included, and no trigger fires during its loads.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use amsu_mysql::conn::Session;
use amsu_mysql::sandbox::SandboxOptions;
use amsu_tests::servers::{
    amsu_bin, create_bank, exec, journal_dir_for_tests, pair, query, scalar, wait_caught_up, Pair,
    Writer,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Rows of the big table (the bank adds 1000 and the writer's transfers).
pub(crate) const ITEMS: u64 = 60_000;
/// Rows of the MyISAM table.
pub(crate) const LEGACY: u64 = 3_000;

/// How a run of `amsu setup` ended.
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// The rows the run's copy loaded (its final report).
    pub(crate) fn copied_rows(&self) -> u64 {
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

/// `amsu setup --method logical --json -vv` with small chunks; with `kill_at_rows`,
/// SIGKILL once a progress event reports at least that many rows copied.
async fn setup(p: &Pair, journal: &Path, kill_at_rows: Option<u64>) -> Run {
    let kill = kill_at_rows.map_or(Kill::Never, Kill::AtRows);
    setup_with(p, journal, kill, LOGICAL).await
}

/// The arguments of the logical method.
pub(crate) const LOGICAL: &[&str] = &["--method", "logical"];

/// When the test kills `amsu setup` (SIGKILL).
#[derive(Clone, Copy)]
pub(crate) enum Kill<'a> {
    /// It runs to its end.
    Never,
    /// Once a progress event reports at least this many rows copied.
    AtRows(u64),
    /// At the first JSON line on its stdout that holds every one of these strings.
    OnEvent(&'a [&'a str]),
    /// Once this query on the replica (polled every 10 ms) returns something else than
    /// `0` (an error counts as `0`).
    WhenReplica(&'a str),
    /// Once the replica's progress records count at least this many rows loaded (for
    /// `outfile`, whose progress events count rows the master wrote, ahead of the loads).
    AtLoadedRows(u64),
}

/// `amsu setup --json -vv` with small chunks and the `method` arguments, killed as `kill`
/// says (asserting that the kill point was reached).
pub(crate) async fn setup_with(p: &Pair, journal: &Path, kill: Kill<'_>, method: &[&str]) -> Run {
    let master = format!("mysql://admin@127.0.0.1:{}", p.master.port());
    let mut cmd = tokio::process::Command::new(amsu_bin());
    cmd.args([
        "-vv",
        "setup",
        "--master",
        &master,
        "--replica",
        &p.replica.url(),
    ])
    .args(method)
    .args([
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
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let loaded_sql;
    let poll = match kill {
        Kill::WhenReplica(sql) => Some(sql),
        Kill::AtLoadedRows(at) => {
            loaded_sql = format!(
                "SELECT COALESCE(SUM(rows_loaded), 0) >= {at} FROM mysql.amsu_stream_progress"
            );
            Some(loaded_sql.as_str())
        }
        _ => None,
    };
    let r = p.replica.addr();
    let mut poller = match poll {
        Some(_) => Some(Session::open(&r).await.expect("connect to the replica")),
        None => None,
    };
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line.expect("read stdout"),
            _ = tick.tick(), if poll.is_some() && !killed => {
                let s = poller.as_mut().expect("a poller");
                let got = s.column(poll.unwrap_or_default(), "polling the kill point").await;
                if got.ok().and_then(|v| v.into_iter().next()).is_some_and(|v| v != "0") {
                    child.start_kill().expect("SIGKILL");
                    killed = true;
                }
                continue;
            }
        };
        let Some(line) = line else { break };
        stdout.push_str(&line);
        stdout.push('\n');
        if killed {
            continue;
        }
        let now = match kill {
            Kill::AtRows(at) if line.contains("\"event\":\"progress\"") => {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                v["rows"].as_u64().unwrap_or(0) >= at
            }
            Kill::OnEvent(parts) => parts.iter().all(|p| line.contains(p)),
            _ => false,
        };
        if now {
            child.start_kill().expect("SIGKILL");
            killed = true;
        }
    }
    let status = child.wait().await.expect("wait");
    if !matches!(kill, Kill::Never) {
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
    servers_with(|o| o).await
}

/// [`servers`] with the master's options adjusted by `master`.
pub(crate) async fn servers_with(master: impl FnOnce(SandboxOptions) -> SandboxOptions) -> Pair {
    journal_dir_for_tests();
    let p = pair(master, |o| o).await;
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
pub(crate) async fn total_rows(p: &Pair) -> u64 {
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
pub(crate) async fn recorded_chunks(p: &Pair) -> u64 {
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
pub(crate) async fn assert_equal(p: &Pair) {
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
    killed_then_resumed_with(&p, fraction, LOGICAL, false).await;
}

/// [`killed_then_resumed`] on `p` with the `method` arguments, killed at `fraction` of
/// the rows in progress events, or with `by_records` of the rows recorded as loaded.
pub(crate) async fn killed_then_resumed_with(
    p: &Pair,
    fraction: f64,
    method: &[&str],
    by_records: bool,
) {
    let journal = p.dir.path().join("journal.json");
    let writer = Writer::start(p.master.addr(), "bank", 1000);
    writer.wait_commits(5).await;
    let at = (((ITEMS + LEGACY + 1000) as f64 * fraction) as u64).max(1);
    let kill = if by_records {
        Kill::AtLoadedRows(at)
    } else {
        Kill::AtRows(at)
    };
    let first = setup_with(p, &journal, kill, method).await;
    assert_eq!(first.code, None, "killed by a signal");
    let kept = recorded_chunks(p).await;
    assert!(kept >= 1, "chunks recorded before the kill");

    let second = setup_with(p, &journal, Kill::Never, method).await;
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
    let total = total_rows(p).await;
    eprintln!("measured: {method:?} killed at {fraction}: {kept} chunks kept; the rerun copied {copied} of {total} rows");
    assert!(
        copied < total,
        "the rerun copied {copied} rows of {total}: it should keep the loaded chunks"
    );
    assert_equal(p).await;
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
    refused_with(&p, change, message, LOGICAL).await
}

/// The kill point in the middle of the copy: rows in progress events for `logical`,
/// rows recorded as loaded for `outfile` (its progress events count rows written).
fn kill_at_half(method: &[&str]) -> Kill<'static> {
    if method.contains(&"outfile") {
        Kill::AtLoadedRows(ITEMS / 2)
    } else {
        Kill::AtRows(ITEMS / 2)
    }
}

/// [`refused`] on `p` with the `method` arguments.
pub(crate) async fn refused_with(p: &Pair, change: &[&str], message: &str, method: &[&str]) -> Run {
    let journal = p.dir.path().join("journal.json");
    let m = p.master.addr();
    let first = setup_with(p, &journal, kill_at_half(method), method).await;
    assert_eq!(first.code, None, "killed by a signal");
    assert!(recorded_chunks(p).await >= 1);
    exec(&m, change).await;
    let second = setup_with(p, &journal, Kill::Never, method).await;
    assert_eq!(
        second.code,
        Some(0),
        "rerun: {}\n{}",
        second.stdout,
        second.stderr
    );
    let out = format!("{}\n{}", second.stdout, second.stderr);
    assert!(out.contains(message), "expected {message:?} in:\n{out}");
    assert_equal(p).await;
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

/// Views, a routine, an event and a trigger that writes into another table
/// (`bank.audit`, one row per transfer) on the master of [`servers`].
async fn add_objects(p: &Pair) {
    let m = p.master.addr();
    let mut sqls = vec![
        "CREATE TABLE bank.audit (id BIGINT PRIMARY KEY AUTO_INCREMENT, transfer BIGINT NOT NULL, \
         amount INT) ENGINE=InnoDB"
            .to_string(),
        "CREATE TRIGGER bank.audit_transfer AFTER INSERT ON bank.transfers FOR EACH ROW \
         INSERT INTO bank.audit (transfer, amount) VALUES (NEW.id, NEW.amount)"
            .to_string(),
        "CREATE PROCEDURE shop.noop() SELECT 1".to_string(),
    ];
    // Enough views and events (created after the triggers) that their creation takes a
    // while after the data.
    for i in 0..OBJECTS {
        sqls.push(format!(
            "CREATE VIEW shop.v{i} AS SELECT id, name FROM shop.items WHERE id % {} = 0",
            i + 2
        ));
        sqls.push(format!(
            "CREATE EVENT shop.e{i} ON SCHEDULE EVERY 1 DAY STARTS NOW() + INTERVAL 1 DAY DO SELECT {i}"
        ));
    }
    let refs: Vec<&str> = sqls.iter().map(String::as_str).collect();
    exec(&m, &refs).await;
}

/// Views, and events, created on the master by [`add_objects`].
const OBJECTS: usize = 200;

/// The replica holds the master's views and triggers.
async fn assert_same_objects(p: &Pair) {
    let count = |kind: &'static str| {
        format!(
            "SELECT COUNT(*) FROM information_schema.{kind} WHERE TABLE_SCHEMA IN ('shop', 'bank')"
        )
    };
    let triggers = "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'bank'";
    let events = "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'shop'";
    for sql in [count("VIEWS"), triggers.to_string(), events.to_string()] {
        assert_eq!(
            scalar(&p.master.addr(), &sql).await,
            scalar(&p.replica.addr(), &sql).await,
            "{sql}"
        );
    }
}

/// Killed at `kill` after the data (under a write load); the rerun ends with an equal
/// replica, its objects and no progress records.
async fn killed_after_the_data(kill: Kill<'_>) -> Run {
    let p = servers().await;
    add_objects(&p).await;
    let journal = p.dir.path().join("journal.json");
    let writer = Writer::start(p.master.addr(), "bank", 1000);
    writer.wait_commits(5).await;
    let first = setup_with(&p, &journal, kill, LOGICAL).await;
    assert_eq!(first.code, None, "killed by a signal: {}", first.stderr);
    let second = setup(&p, &journal, None).await;
    assert_eq!(
        second.code,
        Some(0),
        "rerun: {}\n{}",
        second.stdout,
        second.stderr
    );
    assert_equal(&p).await;
    assert_same_objects(&p).await;
    writer.stop().await;
    second
}

/// Killed while the views are being created (the first one exists on the replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_views_are_created_resumes() {
    killed_after_the_data(Kill::WhenReplica(
        "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop'",
    ))
    .await;
}

/// Killed once the trigger exists on the replica (the events come next): the rerun's
/// loads must not fire it (it would add rows to `bank.audit`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_once_triggers_exist_resumes() {
    let run = killed_after_the_data(Kill::WhenReplica(
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'bank'",
    ))
    .await;
    let out = format!("{}\n{}", run.stdout, run.stderr);
    assert!(out.contains("resuming the interrupted copy: "), "{out}");
}

/// Killed right after the copy step finished (its journal entry and the removal of its
/// records race with the kill): the rerun goes on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_copy_before_change_master_resumes() {
    killed_after_the_data(Kill::OnEvent(&[
        "\"event\":\"step_finished\"",
        "\"copy_data\"",
    ]))
    .await;
}
