//! Issue 17 item 2: a new replica seeded from a donor (a running replica of the master,
//! itself set up by amsu) with `amsu setup --donor URL`, under a write load on the master:
//! by file and position and by GTID the new replica replicates from the master and
//! `verify` finds it equal; the master's InnoDB row reads grow by at most 1 % of the rows
//! copied (only the writer's own reads), while the donor's grow by the whole copy; the
//! donor is left as it was. A lagging donor, the master given as donor and a donor
//! restarted mid-copy are refused or fail clearly; the rerun works. A rerun after a crash
//! that left the donor's SQL thread stopped starts it again.

use std::process::Stdio;
use std::time::{Duration, Instant};

use amsu_core::ServerAddr;
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use amsu_tests::servers::{
    amsu_bin, amsu_output, create_bank, exec, journal_dir_for_tests, pair, query, scalar,
    wait_caught_up, Pair, Writer,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Rows of the big table.
const ITEMS: u64 = 60_000;

/// Master (server_id 1), new replica (2) and donor (3), the donor set up from the master
/// by amsu itself and caught up. The master holds a bank (for the writer) and a big table.
struct Trio {
    p: Pair,
    donor: Sandbox,
}

impl Trio {
    fn m(&self) -> ServerAddr {
        self.p.master.addr()
    }
    fn d(&self) -> ServerAddr {
        self.donor.addr()
    }
    fn r(&self) -> ServerAddr {
        self.p.replica.addr()
    }
}

async fn trio() -> Trio {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let donor = Sandbox::deploy(
        SandboxOptions::new("x")
            .base_dir(p.dir.path())
            .name("donor")
            .server_id(3),
    )
    .await
    .expect("donor sandbox starts");
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
            "INSERT INTO shop.legacy SELECT seq, CONCAT('v', seq) FROM shop.seq_1_to_500",
            "ANALYZE TABLE shop.items, shop.legacy, bank.accounts",
        ],
    )
    .await;
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &donor.url(),
            "--yes",
            "--wait-caught-up",
            "--threads",
            "2",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "the donor is set up:\n{}", out.text());
    wait_caught_up(&m, &donor.addr()).await;
    Trio { p, donor }
}

/// What must be the same on the donor before and after: its replication threads, master,
/// read_only, delay.
async fn donor_state(d: &ServerAddr) -> Vec<Option<String>> {
    let st = query(
        d,
        "SELECT @@global.read_only, @@global.server_id, @@global.gtid_strict_mode",
    )
    .await;
    let mut v = st[0].clone();
    let mut s = amsu_mysql::conn::Session::open(d).await.unwrap();
    let row = s
        .first_row("SHOW SLAVE STATUS", "status")
        .await
        .unwrap()
        .expect("the donor replicates");
    for c in [
        "Master_Host",
        "Master_Port",
        "Slave_IO_Running",
        "Slave_SQL_Running",
        "SQL_Delay",
        "Using_Gtid",
        "Last_Error",
    ] {
        v.push(amsu_mysql::conn::field(&row, c).map(str::to_string));
    }
    v
}

/// The sum of global status counters `names`.
async fn status_sum(addr: &ServerAddr, names: &[&str]) -> u64 {
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = query(
        addr,
        &format!("SHOW GLOBAL STATUS WHERE Variable_name IN ({list})"),
    )
    .await;
    assert_eq!(rows.len(), names.len(), "{rows:?}");
    rows.iter()
        .map(|r| r[1].as_deref().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Rows read from user tables (`information_schema.TABLE_STATISTICS`, userstat on): from
/// `bank.accounts` (the writer reads two rows per commit) and from every other table.
async fn rows_read(addr: &ServerAddr) -> (u64, u64) {
    let rows = query(
        addr,
        "SELECT TABLE_SCHEMA = 'bank' AND TABLE_NAME = 'accounts', SUM(ROWS_READ)          FROM information_schema.TABLE_STATISTICS          WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')          GROUP BY 1",
    )
    .await;
    let get = |k: &str| {
        rows.iter()
            .find(|r| r[0].as_deref() == Some(k))
            .and_then(|r| r[1].as_deref())
            .map_or(0, |v| v.parse().unwrap())
    };
    (get("1"), get("0"))
}

/// Full-scan and range reads of every table (information_schema's included).
const SCANS: &[&str] = &["Handler_read_rnd_next", "Handler_read_next"];

/// The rows the setup's copy loaded (its JSON report).
fn copied_rows(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.contains("\"event\":\"report\""))
        .unwrap_or_else(|| panic!("no report in:\n{stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["report"]["copy"]["rows"].as_u64().unwrap()
}

fn setup_args<'a>(t: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "setup",
        "--master",
        &t[0],
        "--replica",
        &t[1],
        "--donor",
        &t[2],
        "--yes",
        "--json",
        "--threads",
        "2",
    ];
    a.extend_from_slice(extra);
    a
}

/// Seeds the new replica from the donor under a write load and checks everything the
/// issue asks: equal, replicating from the master, the master spared, the donor as it was.
async fn seed_from_donor(gtid: bool) {
    let t = trio().await;
    let (m, d, r) = (t.m(), t.d(), t.r());
    let urls = [t.p.master.url(), t.p.replica.url(), t.donor.url()];
    let before = donor_state(&d).await;

    // The dry run shows the donor's steps and changes nothing.
    let extra: &[&str] = if gtid { &["--gtid"] } else { &[] };
    let mut dry = setup_args(&urls, extra);
    dry.retain(|a| *a != "--json");
    dry.push("--dry-run");
    let out = amsu_output(&dry, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let donor_name = format!("127.0.0.1:{}", t.donor.port());
    assert!(
        out.stdout.contains(&format!("on the donor {donor_name}"))
            && out.stdout.contains("STOP SLAVE SQL_THREAD")
            && out.stdout.contains("START SLAVE SQL_THREAD"),
        "the plan shows the donor's steps:\n{}",
        out.text()
    );
    assert_eq!(donor_state(&d).await, before);

    exec(&m, &["SET GLOBAL userstat = 1"]).await;
    exec(&d, &["SET GLOBAL userstat = 1"]).await;
    let writer = Writer::start(m.clone(), "bank", 1000);
    writer.wait_commits(20).await;
    let (m_accounts, m_other) = rows_read(&m).await;
    let m_scan = status_sum(&m, SCANS).await;
    let (_, d_other) = rows_read(&d).await;
    let commits_before = writer.commits();

    let out = amsu_output(&setup_args(&urls, extra), &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());

    let commits = writer.commits() - commits_before;
    let (a, o) = rows_read(&m).await;
    let (m_accounts, m_other) = (a - m_accounts, o - m_other);
    let m_scan = status_sum(&m, SCANS).await - m_scan;
    let d_other = rows_read(&d).await.1 - d_other;
    let rows = copied_rows(&out.stdout);
    eprintln!(
        "donor seeding (gtid {gtid}): {rows} rows copied; master: {m_other} rows read from \
         the copied tables but bank.accounts, {m_accounts} from bank.accounts (the writer's \
         {commits} commits read 2 each), Handler_read_rnd_next + Handler_read_next +{m_scan}; \
         donor: {d_other} rows read from the tables but bank.accounts"
    );
    assert!(rows >= ITEMS, "{rows}");
    assert!(
        m_other <= rows / 100,
        "the master's tables gave {m_other} rows, more than 1 % of {rows}"
    );
    // The writer's UPDATEs read one row each, two per commit (one commit may straddle
    // each reading).
    let writer_reads = 2 * (commits + 2);
    assert!(
        m_accounts <= writer_reads + rows / 100,
        "the master read {m_accounts} rows of bank.accounts ({writer_reads} by the writer)"
    );
    assert!(
        m_scan <= rows / 100,
        "the master's Handler_read_rnd_next + Handler_read_next grew by {m_scan}, more than 1 % of {rows}"
    );
    assert!(
        d_other >= ITEMS,
        "the copy read the donor: its tables gave {d_other} rows only"
    );
    // The JSON events name the donor.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("\"server\":\"donor\"") && l.contains("SQL_THREAD")),
        "{}",
        out.stdout
    );

    // The new replica replicates from the master, not from the donor.
    let st = query(&r, "SHOW SLAVE STATUS").await;
    assert_eq!(st.len(), 1);
    let port = scalar(
        &r,
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'Slave_running'",
    )
    .await;
    assert_eq!(port.as_deref(), Some("ON"));
    let mut s = amsu_mysql::conn::Session::open(&r).await.unwrap();
    let row = s
        .first_row("SHOW SLAVE STATUS", "s")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        amsu_mysql::conn::field(&row, "Master_Port"),
        Some(t.p.master.port().to_string().as_str())
    );
    assert_eq!(
        amsu_mysql::conn::field(&row, "Using_Gtid"),
        Some(if gtid { "Slave_Pos" } else { "No" })
    );

    writer.wait_commits(commits_before + commits + 30).await;
    writer.stop().await;
    wait_caught_up(&m, &r).await;
    assert_verified_equal(&t).await;
    let sum = scalar(&r, "SELECT SUM(balance) FROM bank.accounts").await;
    assert_eq!(sum.as_deref(), Some("1000000"));

    // The donor as it was, replicating.
    wait_caught_up(&m, &d).await;
    assert_eq!(donor_state(&d).await, before, "the donor is left as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn donor_seeds_by_file_and_position_and_spares_the_master() {
    seed_from_donor(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn donor_seeds_by_gtid_and_spares_the_master() {
    seed_from_donor(true).await;
}

/// The master given as donor, and a donor lagging beyond the limit, are refused before
/// anything changes (exit 3, a message naming the problem).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_donor_and_master_as_donor_are_refused() {
    let t = trio().await;
    let (m, d, r) = (t.m(), t.d(), t.r());
    let master_as_donor = [t.p.master.url(), t.p.replica.url(), t.p.master.url()];
    let out = amsu_output(&setup_args(&master_as_donor, &[]), &[]).await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    assert!(out.text().contains("donor_is_master"), "{}", out.text());

    // A donor that does not answer: the donor checks' own finding (the checks of the
    // data, which read the donor, used to stop first with a connection error).
    let unreachable = [
        t.p.master.url(),
        t.p.replica.url(),
        "mysql://root@127.0.0.1:1".to_string(),
    ];
    let out = amsu_output(&setup_args(&unreachable, &[]), &[]).await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    assert!(out.text().contains("donor_unreachable"), "{}", out.text());

    // The donor applies everything an hour late: its lag grows with each write.
    exec(
        &d,
        &[
            "STOP SLAVE",
            "CHANGE MASTER TO MASTER_DELAY = 3600",
            "START SLAVE",
        ],
    )
    .await;
    let t0 = Instant::now();
    loop {
        exec(
            &m,
            &["UPDATE bank.accounts SET touched = touched + 1 WHERE id = 1"],
        )
        .await;
        let mut s = amsu_mysql::conn::Session::open(&d).await.unwrap();
        let row = s
            .first_row("SHOW SLAVE STATUS", "s")
            .await
            .unwrap()
            .unwrap();
        let behind = amsu_mysql::conn::field(&row, "Seconds_Behind_Master")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if behind >= 3 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the donor never lagged: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // (Read once the I/O thread runs, not while it still connects.)
    let before = donor_state(&d).await;
    let urls = [t.p.master.url(), t.p.replica.url(), t.donor.url()];
    let out = amsu_output(&setup_args(&urls, &["--donor-max-lag", "2"]), &[]).await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    assert!(
        out.text().contains("donor_lagging") && out.text().contains("behind the master"),
        "{}",
        out.text()
    );
    // Nothing changed: the new replica holds no copy, the donor is as it was.
    let dbs = query(&r, "SHOW DATABASES LIKE 'shop'").await;
    assert!(dbs.is_empty(), "{dbs:?}");
    assert_eq!(donor_state(&d).await, before);
}

/// The donor is restarted in the middle of the copy: the setup fails naming the donor's
/// connection, exit 1, and leaves the donor's SQL thread as it was; once the donor
/// replicates again, the rerun seeds the replica and `verify` finds it equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn donor_restarted_mid_copy_fails_clearly_and_the_rerun_works() {
    let mut t = trio().await;
    let (m, d, r) = (t.m(), t.d(), t.r());
    let urls = [t.p.master.url(), t.p.replica.url(), t.donor.url()];
    let journal = t.p.dir.path().join("new.json");
    let journal_s = journal.display().to_string();
    // Fresh statistics on the donor, so that its big table is copied in many chunks.
    exec(
        &d,
        &["SET SESSION sql_log_bin = 0", "ANALYZE TABLE shop.items"],
    )
    .await;
    let writer = Writer::start(m.clone(), "bank", 1000);
    writer.wait_commits(10).await;

    let args = setup_args(
        &urls,
        &[
            "--chunk-size",
            "64K",
            "--max-rate",
            "512K",
            "--journal",
            &journal_s,
        ],
    );
    let mut child = tokio::process::Command::new(amsu_bin())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("amsu starts");
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
    let mut restarted = false;
    while let Some(line) = lines.next_line().await.expect("stdout") {
        stdout.push_str(&line);
        stdout.push('\n');
        if !restarted && line.contains("\"event\":\"progress\"") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["rows"].as_u64().unwrap_or(0) >= 5_000 {
                t.donor.restart().await.expect("the donor restarts");
                restarted = true;
            }
        }
    }
    let status = child.wait().await.expect("wait");
    let stderr = err_task.await.unwrap();
    assert!(restarted, "never reached the middle of the copy:\n{stdout}");
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    for l in stdout.lines().filter(|l| l.contains("\"event\":\"error\"")) {
        eprintln!("the failure: {l}");
    }
    let donor_url = format!("127.0.0.1:{}", t.donor.port());
    assert!(
        stdout.lines().any(|l| l.contains("\"event\":\"error\"")
            && l.contains(&donor_url)
            && l.contains("copy_data")),
        "the failure names the donor:\n{stdout}\n{stderr}"
    );

    // The operator makes the donor replicate again (a restarted replica may not start
    // its threads by itself), then reruns the same command.
    exec(&d, &["START SLAVE"]).await;
    wait_caught_up(&m, &d).await;
    let out = amsu_output(&args, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    writer.stop().await;
    wait_caught_up(&m, &r).await;
    assert_verified_equal(&t).await;
    let st = donor_state(&d).await;
    assert_eq!(st[6].as_deref(), Some("Yes"), "donor SQL thread: {st:?}");
}

/// A crash (`kill -9`) while amsu held the donor's SQL thread stopped leaves its marker
/// next to the journal; the rerun warns, starts the thread again before its snapshot and
/// removes the marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_starts_the_donor_sql_thread_a_crashed_run_stopped() {
    let t = trio().await;
    let (m, d, r) = (t.m(), t.d(), t.r());
    let before = donor_state(&d).await;
    let journal = t.p.dir.path().join("crashed.json");
    let marker = journal.with_extension("donor-stopped");
    // What the crashed run left: the marker written, then the thread stopped.
    std::fs::write(&marker, format!("127.0.0.1:{}", t.donor.port())).unwrap();
    exec(&d, &["STOP SLAVE SQL_THREAD"]).await;
    exec(
        &m,
        &["UPDATE bank.accounts SET touched = touched + 1 WHERE id = 2"],
    )
    .await;

    let urls = [t.p.master.url(), t.p.replica.url(), t.donor.url()];
    let journal_s = journal.display().to_string();
    let out = amsu_output(&setup_args(&urls, &["--journal", &journal_s]), &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(
        out.text().contains("donor_stopped_by_amsu"),
        "the rerun says so:\n{}",
        out.text()
    );
    assert!(!marker.exists(), "the marker is removed");
    wait_caught_up(&m, &d).await;
    assert_eq!(donor_state(&d).await, before, "the donor replicates again");
    wait_caught_up(&m, &r).await;
}

/// `amsu verify` of the trio's master and new replica says they are equal.
async fn assert_verified_equal(t: &Trio) {
    let verify = amsu_output(
        &[
            "verify",
            "--master",
            &t.p.master.url(),
            "--replica",
            &t.p.replica.url(),
        ],
        &[],
    )
    .await;
    assert_eq!(verify.code, Some(0), "verify: {}", verify.text());
}
