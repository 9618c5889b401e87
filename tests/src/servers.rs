//! Real MariaDB servers for tests: sandbox pairs, SQL helpers, an independent data
//! comparison (`CHECKSUM TABLE` and row counts) and a writer that commits during a test.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amsu_core::ServerAddr;
use amsu_mysql::conn::Session;
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use tempfile::TempDir;

/// A master and a replica sandbox in one temporary directory.
pub struct Pair {
    /// The master.
    pub master: Sandbox,
    /// The replica.
    pub replica: Sandbox,
    /// Keeps the directory alive (dropped after the servers).
    pub dir: TempDir,
}

/// Starts a master and a replica; `tweak` adjusts each one's options.
pub async fn pair(
    master: impl FnOnce(SandboxOptions) -> SandboxOptions,
    replica: impl FnOnce(SandboxOptions) -> SandboxOptions,
) -> Pair {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = SandboxOptions::new("x").base_dir(dir.path());
    let (m, r) = tokio::join!(
        Sandbox::deploy(master(base.clone().name("master").server_id(1))),
        Sandbox::deploy(replica(base.name("replica").server_id(2))),
    );
    Pair {
        master: m.expect("master sandbox starts"),
        replica: r.expect("replica sandbox starts"),
        dir,
    }
}

/// Runs statements on a server, panicking with the statement on error.
pub async fn exec(addr: &ServerAddr, sqls: &[&str]) {
    let mut s = Session::open(addr).await.expect("connect");
    for sql in sqls {
        s.exec(sql, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Rows of a query as text (NULL as `None`).
pub async fn query(addr: &ServerAddr, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut s = Session::open(addr).await.expect("connect");
    let rows = s
        .rows(sql, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| (0..r.len()).map(|i| r.text(i)).collect())
        .collect()
}

/// The first column of the first row.
pub async fn scalar(addr: &ServerAddr, sql: &str) -> Option<String> {
    query(addr, sql)
        .await
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
}

/// Row count and `CHECKSUM TABLE` of every user table — computed by the server, not by
/// amsu's own verify code.
pub async fn checksums(addr: &ServerAddr) -> BTreeMap<String, (String, String)> {
    let tables = query(
        addr,
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
         AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1, 2",
    )
    .await;
    let mut out = BTreeMap::new();
    for t in tables {
        let (db, name) = (t[0].clone().unwrap(), t[1].clone().unwrap());
        let q = format!("`{}`.`{}`", db.replace('`', "``"), name.replace('`', "``"));
        let count = scalar(addr, &format!("SELECT COUNT(*) FROM {q}"))
            .await
            .unwrap();
        let sum = query(addr, &format!("CHECKSUM TABLE {q} EXTENDED")).await;
        let sum = sum[0][1].clone().unwrap_or_default();
        out.insert(format!("{db}.{name}"), (count, sum));
    }
    out
}

/// Waits until the replica has executed everything the master has written so far.
pub async fn wait_caught_up(master: &ServerAddr, replica: &ServerAddr) {
    let st = query(master, "SHOW MASTER STATUS").await;
    let (file, pos) = (st[0][0].clone().unwrap(), st[0][1].clone().unwrap());
    let r = scalar(
        replica,
        &format!("SELECT MASTER_POS_WAIT('{file}', {pos}, 120)"),
    )
    .await;
    assert!(
        r.as_deref().map(|v| v != "-1").unwrap_or(false),
        "replica did not reach {file}:{pos}: MASTER_POS_WAIT returned {r:?}; status: {:?}",
        query(replica, "SHOW SLAVE STATUS").await
    );
}

/// A bank: `accounts` rows whose balances always sum to the same total. The writer moves
/// money between random rows in transactions, so any inconsistent snapshot shows up as a
/// wrong sum.
pub const BANK_TOTAL: i64 = 1_000_000;

/// Creates `db`.accounts with `n` rows summing to [`BANK_TOTAL`].
pub async fn create_bank(addr: &ServerAddr, db: &str, n: u32) {
    let per = BANK_TOTAL / n as i64;
    let rest = BANK_TOTAL - per * n as i64;
    exec(
        addr,
        &[
            &format!("CREATE DATABASE IF NOT EXISTS `{db}`"),
            &format!("CREATE TABLE `{db}`.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, touched INT NOT NULL DEFAULT 0) ENGINE=InnoDB"),
            &format!("INSERT INTO `{db}`.accounts (id, balance) SELECT seq, {per} + IF(seq = 1, {rest}, 0) FROM `{db}`.seq_1_to_{n}"),
            &format!("CREATE TABLE `{db}`.transfers (id BIGINT PRIMARY KEY AUTO_INCREMENT, src INT, dst INT, amount INT, at DATETIME(6)) ENGINE=InnoDB"),
        ],
    )
    .await;
}

/// Commits transfers on the master until stopped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Starts transfers between rows of `db`.accounts (ids 1..=n).
    pub fn start(addr: ServerAddr, db: &str, n: u32) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let (s, c, db) = (stop.clone(), commits.clone(), db.to_string());
        let handle = tokio::spawn(async move {
            let mut m = Session::open(&addr).await.expect("writer connects");
            let mut i: u64 = 0;
            while !s.load(Ordering::Relaxed) {
                i += 1;
                let src = 1 + (i * 7919 % n as u64);
                let dst = 1 + (i * 104_729 % n as u64);
                let amount = 1 + i % 50;
                for sql in [
                    "START TRANSACTION".to_string(),
                    format!("UPDATE `{db}`.accounts SET balance = balance - {amount}, touched = touched + 1 WHERE id = {src}"),
                    format!("UPDATE `{db}`.accounts SET balance = balance + {amount}, touched = touched + 1 WHERE id = {dst}"),
                    format!("INSERT INTO `{db}`.transfers (src, dst, amount, at) VALUES ({src}, {dst}, {amount}, NOW(6))"),
                    "COMMIT".to_string(),
                ] {
                    m.exec(&sql, "writer").await.expect("writer statement");
                }
                c.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Writer {
            stop,
            commits,
            handle,
        }
    }

    /// Commits so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` commits happened (bounded).
    pub async fn wait_commits(&self, n: u64) {
        let t = Instant::now();
        while self.commits() < n {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "writer made no progress"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops and returns the number of commits.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.expect("writer task");
        self.commits.load(Ordering::Relaxed)
    }
}

/// Points amsu's journals (and `AMSU_HOME`, where it keeps generated replication
/// passwords) at a directory of this test process, so tests never resume a journal or
/// read a password of another run.
pub fn journal_dir_for_tests() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("journal dir"));
    std::env::set_var("AMSU_JOURNAL_DIR", dir.path());
    std::env::set_var("AMSU_HOME", dir.path().join("home"));
    dir.path().to_path_buf()
}

/// Runs the `amsu` command line in-process and returns its exit code.
pub async fn amsu(args: &[&str]) -> i32 {
    use clap::Parser;
    journal_dir_for_tests();
    let cli = amsu_cli::Cli::try_parse_from(std::iter::once("amsu").chain(args.iter().copied()))
        .expect("valid arguments");
    amsu_cli::run(cli).await
}

/// What a finished `amsu` process printed.
pub struct Output {
    /// Its exit code (`None`: ended by a signal).
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Output {
    /// Both streams, for assertion messages and searches.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs the `amsu` binary with `args` and extra environment variables, to its end.
pub async fn amsu_output(args: &[&str], env: &[(&str, &str)]) -> Output {
    journal_dir_for_tests();
    let mut cmd = tokio::process::Command::new(amsu_bin());
    cmd.args(args).kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("amsu runs");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `amsu` binary next to the test binary, for tests that need a separate process
/// (its output, a kill). Panics when it was not built: `cargo build -p amsu-cli` first.
pub fn amsu_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("amsu");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p amsu-cli` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// One more empty replica sandbox `name` with `server_id`, under `dir` (beside a [`pair`]'s).
pub async fn extra_replica(dir: &std::path::Path, name: &str, server_id: u32) -> Sandbox {
    Sandbox::deploy(
        SandboxOptions::new(name)
            .base_dir(dir)
            .name(name)
            .server_id(server_id),
    )
    .await
    .expect("replica sandbox starts")
}

/// Every line of `stdout` as JSON (a line that is not JSON fails the test).
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The lines with `"event": event`.
pub fn events<'a>(lines: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}
