//! One plan path: every change `amsu setup` makes is a journaled step of its plan.
//! `--protect-binlogs` killed with `kill -9` after raising the master's binary log
//! retention → a rerun restores it; `amsu check` and `amsu setup --dry-run` block on the
//! same findings; `--dry-run` shows the statements of the chosen copy method.

use std::collections::BTreeSet;

use amsu_tests::ftpd::FtpServer;
use amsu_tests::servers::{
    amsu_output, checksums, exec, journal_dir_for_tests, pair, scalar, wait_caught_up,
};
use serde_json::Value;

/// The JSON lines of `stdout`.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The codes of the blocking findings in a JSON line's `findings` (or `error.findings`).
fn blocking_codes(line: &Value) -> BTreeSet<String> {
    let findings = line
        .get("findings")
        .or_else(|| line.get("error").and_then(|e| e.get("findings")))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    findings
        .iter()
        .filter(|f| f["severity"] == "blocking")
        .map(|f| f["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn retention(m: &amsu_core::ServerAddr) -> String {
    scalar(m, "SELECT @@global.binlog_expire_logs_seconds")
        .await
        .expect("binlog_expire_logs_seconds")
}

/// `--protect-binlogs`: the raise of the master's binary log retention is a journaled
/// step. Killed with `kill -9` mid-copy (after the raise), the master keeps the raised
/// retention; the rerun finishes the setup and puts the journaled original back; a third
/// run (already done) leaves it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_binlogs_killed_after_the_raise_is_restored_by_the_rerun() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(50), note TEXT)",
            "INSERT INTO shop.items SELECT seq, CONCAT('item ', seq), REPEAT('n', seq % 200) FROM shop.seq_1_to_150000",
            "CREATE USER 'admin'@'%' IDENTIFIED BY 'Adm1n-Secret-Pw'",
            "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION",
            "SET GLOBAL binlog_expire_logs_seconds = 1",
        ],
    )
    .await;
    let journal = p.dir.path().join("journal.json");
    let env = [
        ("AMSU_MASTER_PASSWORD", "Adm1n-Secret-Pw"),
        ("AMSU_REPL_PASSWORD", "Repl-Secret-Pw-77"),
    ];
    let protect = ["--protect-binlogs"];
    let first = crate::resume::setup(
        &p,
        &journal,
        &env,
        "admin",
        Some("\"event\":\"progress\""),
        &protect,
    )
    .await;
    assert_eq!(first.code, None, "killed by a signal");
    assert_eq!(
        retention(&m).await,
        "3600",
        "the killed run raised the retention: {}",
        first.stdout
    );
    let journal_text = std::fs::read_to_string(&journal).expect("journal written");
    assert!(
        journal_text.contains("binlog_expire_logs_seconds"),
        "the original retention is journaled before the raise: {journal_text}"
    );

    let second = crate::resume::setup(&p, &journal, &env, "admin", None, &protect).await;
    assert_eq!(
        second.code,
        Some(0),
        "rerun resumes: {}\n{}",
        second.stdout,
        second.stderr
    );
    assert_eq!(
        retention(&m).await,
        "1",
        "the rerun restores the journaled original retention: {}",
        second.stdout
    );
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);

    let third = crate::resume::setup(&p, &journal, &env, "admin", None, &protect).await;
    assert_eq!(third.code, Some(0), "{}\n{}", third.stdout, third.stderr);
    assert_eq!(retention(&m).await, "1");
}

/// An existing replication user whose password is not given blocks `amsu setup`; `amsu
/// check` on the same servers reports the same blocking findings (and exit code 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_dry_run_block_on_the_same_findings() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let m = p.master.addr();
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id INT PRIMARY KEY)",
            "INSERT INTO shop.items VALUES (1), (2)",
            "CREATE USER 'amsu_repl'@'%' IDENTIFIED BY 'Somebody-Elses-Pw-1'",
            "GRANT REPLICATION SLAVE ON *.* TO 'amsu_repl'@'%'",
        ],
    )
    .await;
    let (mu, ru) = (p.master.url(), p.replica.url());
    let check = amsu_output(&["check", "--master", &mu, "--replica", &ru, "--json"], &[]).await;
    let dry = amsu_output(
        &[
            "setup",
            "--master",
            &mu,
            "--replica",
            &ru,
            "--dry-run",
            "--json",
        ],
        &[],
    )
    .await;
    assert_eq!(dry.code, Some(3), "{}", dry.text());
    let dry_codes = lines(&dry.stdout)
        .iter()
        .find(|l| l["event"] == "error")
        .map(blocking_codes)
        .unwrap_or_else(|| panic!("no error line: {}", dry.text()));
    assert!(dry_codes.contains("repl_user_password"), "{dry_codes:?}");
    let check_codes = lines(&check.stdout)
        .iter()
        .find(|l| l.get("findings").is_some())
        .map(blocking_codes)
        .unwrap_or_else(|| panic!("no findings line: {}", check.text()));
    assert_eq!(
        check_codes,
        dry_codes,
        "check and setup --dry-run disagree:\n{}\n{}",
        check.text(),
        dry.text()
    );
    assert_eq!(check.code, Some(3), "{}", check.text());
}

/// The copy statements of a dry-run plan.
fn copy_statements(stdout: &str) -> Vec<String> {
    let plan = lines(stdout)
        .into_iter()
        .find(|l| l["event"] == "plan")
        .unwrap_or_else(|| panic!("no plan line: {stdout}"));
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "copy_data")
        .flat_map(|s| s["statements"].as_array().cloned().unwrap_or_default())
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// `--dry-run --method outfile` shows the outfile method's statements (`SELECT … INTO
/// OUTFILE`), the logical method its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_the_statements_of_the_method() {
    journal_dir_for_tests();
    let ftp = FtpServer::plain();
    let served = ftp.served.display().to_string();
    let p = pair(
        |o| o.extra_option(format!("--secure-file-priv={served}")),
        |o| o,
    )
    .await;
    exec(
        &p.master.addr(),
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id INT PRIMARY KEY)",
            "INSERT INTO shop.items VALUES (1), (2)",
        ],
    )
    .await;
    let pw = p.dir.path().join("ftp-password");
    std::fs::write(&pw, format!("{}\n", ftp.password.expose())).unwrap();
    let pw = pw.display().to_string();
    let (mu, ru, fu) = (p.master.url(), p.replica.url(), ftp.url());
    let base = [
        "setup",
        "--master",
        &mu,
        "--replica",
        &ru,
        "--dry-run",
        "--json",
    ];
    let mut outfile_args = base.to_vec();
    outfile_args.extend([
        "--method",
        "outfile",
        "--ftp",
        &fu,
        "--ftp-password-file",
        &pw,
    ]);
    let outfile = amsu_output(&outfile_args, &[]).await;
    assert_eq!(outfile.code, Some(0), "{}", outfile.text());
    let statements = copy_statements(&outfile.stdout);
    assert!(
        statements.iter().any(|s| s.contains("INTO OUTFILE")),
        "{statements:#?}"
    );

    let mut logical_args = base.to_vec();
    logical_args.extend(["--method", "logical"]);
    let logical = amsu_output(&logical_args, &[]).await;
    assert_eq!(logical.code, Some(0), "{}", logical.text());
    let statements = copy_statements(&logical.stdout);
    assert!(
        statements.iter().any(|s| s.contains("LOAD DATA LOCAL")),
        "{statements:#?}"
    );
    assert!(
        !statements.iter().any(|s| s.contains("INTO OUTFILE")),
        "{statements:#?}"
    );
}
