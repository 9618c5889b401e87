//! `amsu setup --dry-run --replica A --replica B`: every replica's checks and plan, run
//! in the amsu process (no child amsu per replica), shown as the single `setup --dry-run`
//! shows them and tagged with the replica; a replica whose checks fail is reported alone
//! in its `replica_result`, the others' plans are shown; nothing changes on any server.

use amsu_core::ServerAddr;
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use amsu_tests::servers::{exec, pair, query};
use serde_json::Value;

use crate::cli_contract::{event, run, validated};

/// What a dry run must not change on a server: its identity and read-only state, its
/// accounts, its databases, its replication configuration, its fast-load globals.
async fn state(addr: &ServerAddr) -> Vec<Vec<Vec<Option<String>>>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT @@global.server_id, @@global.read_only, @@global.sync_binlog, \
         @@global.innodb_flush_log_at_trx_commit",
        "SELECT user, host FROM mysql.user ORDER BY user, host",
        "SELECT schema_name FROM information_schema.schemata ORDER BY schema_name",
        "SHOW SLAVE STATUS",
    ] {
        out.push(query(addr, sql).await);
    }
    out
}

fn tag(s: &Sandbox) -> String {
    format!("127.0.0.1:{}", s.port())
}

fn with_event<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == name).collect()
}

/// Two replicas: each one's plan line (tagged with it) and `replica_result`, the whole
/// output valid against the schema, nothing changed on the master or either replica.
/// Then the second replica holds a database: it alone is refused, with its structured
/// error in its `replica_result`, while the first one's plan is still shown; in text the
/// refusal is tagged with the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_of_two_replicas_in_process_one_bad_replica_alone() {
    let p = pair(|o| o, |o| o).await;
    let r2 = Sandbox::deploy(
        SandboxOptions::new("replica2")
            .base_dir(p.dir.path())
            .name("replica2")
            .server_id(3),
    )
    .await
    .expect("replica2 starts");
    let m = p.master.addr();
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20))",
            "INSERT INTO shop.items SELECT seq, CONCAT('n', seq) FROM shop.seq_1_to_200",
        ],
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let repl = [("AMSU_REPL_PASSWORD", "Dry-Run-Repl-1")];
    let servers = [p.master.addr(), p.replica.addr(), r2.addr()];
    let mut before = Vec::new();
    for s in &servers {
        before.push(state(s).await);
    }
    let (master_url, r1_url, r2_url) = (p.master.url(), p.replica.url(), r2.url());
    let args = [
        "setup",
        "--master",
        &master_url,
        "--replica",
        &r1_url,
        "--replica",
        &r2_url,
        "--dry-run",
        "--json",
    ];

    let out = run(&args, &repl, h).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let lines = validated(&out, "setup --dry-run");
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "result", "{last}");
    assert_eq!(last["dry_run"], true, "{last}");
    for r in [tag(&p.replica), tag(&r2)] {
        let plans: Vec<_> = with_event(&lines, "plan")
            .into_iter()
            .filter(|l| l["replica"] == r.as_str())
            .collect();
        assert_eq!(plans.len(), 1, "one plan line for {r}: {lines:#?}");
        let steps = plans[0]["steps"].to_string();
        assert!(
            steps.contains("copy_data") && steps.contains("MASTER_LOG_POS=<snapshot position>"),
            "{r}: the logical copy's plan: {steps}"
        );
        let results: Vec<_> = with_event(&lines, "replica_result")
            .into_iter()
            .filter(|l| l["replica"] == r.as_str())
            .collect();
        assert_eq!(results.len(), 1, "{lines:#?}");
        assert_eq!(results[0]["ok"], true, "{}", results[0]);
        assert_eq!(results[0]["exit_code"], 0, "{}", results[0]);
    }
    for (s, b) in servers.iter().zip(&before) {
        assert_eq!(&state(s).await, b, "a dry run changed {s}");
    }

    // The second replica holds a database: refused alone, the first one's plan shown.
    exec(
        &r2.addr(),
        &[
            "CREATE DATABASE leftover",
            "CREATE TABLE leftover.t (id INT PRIMARY KEY)",
        ],
    )
    .await;
    let before_r2 = state(&r2.addr()).await;
    let out = run(&args, &repl, h).await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let lines = validated(&out, "setup --dry-run");
    let result = |r: &str| {
        with_event(&lines, "replica_result")
            .into_iter()
            .find(|l| l["replica"] == r)
            .unwrap_or_else(|| panic!("no replica_result for {r}: {lines:#?}"))
            .clone()
    };
    let good = result(&tag(&p.replica));
    assert_eq!(good["ok"], true, "{good}");
    assert!(
        with_event(&lines, "plan")
            .iter()
            .any(|l| l["replica"] == tag(&p.replica).as_str()),
        "the good replica's plan is shown: {lines:#?}"
    );
    let bad = result(&tag(&r2));
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["exit_code"], 3, "{bad}");
    assert_eq!(bad["error"]["kind"], "precondition", "{bad}");
    assert!(
        bad["error"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "replica_not_empty"),
        "{bad}"
    );
    assert!(
        !with_event(&lines, "plan")
            .iter()
            .any(|l| l["replica"] == tag(&r2).as_str()),
        "no plan for the refused replica: {lines:#?}"
    );
    assert_eq!(event(&lines, "result")["exit_code"], 3);

    // In text: the refusal tagged with the replica, the other replica done.
    let text_args: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
    let out = run(&text_args, &repl, h).await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let (t1, t2) = (tag(&p.replica), tag(&r2));
    assert!(
        out.stdout.contains(&format!("[{t1}] Plan: make"))
            && out.stdout.contains(&format!("[{t1}] done")),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains(&format!("[{t2}] error: preflight check failed"))
            && out.stderr.contains("leftover")
            && out.stderr.contains(&format!("[{t2}] FAILED (exit 3)")),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains(&format!("[{t2}] Plan")),
        "{}",
        out.stdout
    );

    for (s, b) in servers[..2].iter().zip(&before) {
        assert_eq!(&state(s).await, b, "a dry run changed {s}");
    }
    assert_eq!(
        state(&r2.addr()).await,
        before_r2,
        "a dry run changed replica2"
    );
}
