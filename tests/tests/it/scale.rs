//! Many tables: `amsu check` and `amsu setup` on a master with 10,000 tables finish,
//! report what they found from the start, and copy every table; a metadata statement
//! that runs past its bound is stopped by the server and named in the error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use amsu_core::ServerAddr;
use amsu_mysql::conn::Session;
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use amsu_mysql::MysqlError;
use amsu_tests::servers::{amsu_bin, query, scalar, Pair};

/// Databases × tables per database: 10,000 tables.
const DATABASES: usize = 20;
const TABLES_PER_DB: usize = 500;

/// A pair whose data directories live in memory when the machine has `/dev/shm`: creating
/// 10,000 tables is then bound by the server's CPU, not by one fsync per `CREATE TABLE`
/// (about 13 ms each on this machine's disk, 1 ms in memory).
async fn pair_in_memory() -> Pair {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("temp dir in /dev/shm")
    } else {
        tempfile::tempdir().expect("temp dir")
    };
    let base = SandboxOptions::new("x").base_dir(dir.path());
    let (m, r) = tokio::join!(
        Sandbox::deploy(base.clone().name("master").server_id(1)),
        Sandbox::deploy(base.name("replica").server_id(2)),
    );
    Pair {
        master: m.expect("master sandbox starts"),
        replica: r.expect("replica sandbox starts"),
        dir,
    }
}

/// Creates `DATABASES` × `TABLES_PER_DB` small tables (a primary key, a secondary key, a
/// TEXT column, two rows each), many statements per round trip, over two connections.
async fn create_tables(addr: &ServerAddr) {
    let mut jobs = Vec::new();
    for half in 0..2 {
        let addr = addr.clone();
        jobs.push(tokio::spawn(async move {
            let mut s = Session::open(&addr).await.expect("connect");
            for d in (half..DATABASES).step_by(2) {
                s.exec(&format!("CREATE DATABASE many{d}"), "creating a database")
                    .await
                    .unwrap();
                for batch in (0..TABLES_PER_DB).collect::<Vec<_>>().chunks(100) {
                    let sql: String = batch
                        .iter()
                        .map(|t| {
                            format!(
                                "CREATE TABLE many{d}.t{t} (id INT PRIMARY KEY, v VARCHAR(20), \
                                 n TEXT, KEY (v)) ENGINE=InnoDB; \
                                 INSERT INTO many{d}.t{t} VALUES (1, 'a{t}', 'b'), (2, 'c', NULL);"
                            )
                        })
                        .collect();
                    s.exec(&sql, "creating tables").await.unwrap();
                }
            }
        }));
    }
    for j in jobs {
        j.await.expect("creator");
    }
}

/// `CHECKSUM TABLE` of every table of the `many*` databases, one statement per database.
async fn checksums(addr: &ServerAddr) -> BTreeMap<String, Option<String>> {
    let mut s = Session::open(addr).await.expect("connect");
    let mut out = BTreeMap::new();
    for d in 0..DATABASES {
        let list = (0..TABLES_PER_DB)
            .map(|t| format!("many{d}.t{t}"))
            .collect::<Vec<_>>()
            .join(", ");
        for r in s
            .rows(&format!("CHECKSUM TABLE {list}"), "checksums")
            .await
            .unwrap()
        {
            let name = r.text(0).unwrap_or_default();
            out.insert(name, r.text(1));
        }
    }
    out
}

fn url(sb: &Sandbox) -> String {
    format!("mysql://root@127.0.0.1:{}", sb.port())
}

/// 10,000 tables: `amsu check` finishes and says, first, that it reads the catalog and
/// how many tables it found; `amsu setup` copies all of them (equal checksums) and the
/// replica replicates. Reproduces issue 13's report (check printed nothing for 120 s,
/// its per-table correlated catalog query ran on for minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tables_are_checked_and_copied() {
    let p = pair_in_memory().await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    let started = Instant::now();
    create_tables(&m).await;
    eprintln!("created 10,000 tables in {:?}", started.elapsed());
    let total = DATABASES * TABLES_PER_DB;

    let started = Instant::now();
    let out = tokio::process::Command::new(amsu_bin())
        .args(["check", "--master", &url(&p.master)])
        .output()
        .await
        .expect("amsu check runs");
    eprintln!("amsu check took {:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    let reading = stderr
        .find("reading the master's catalog for the checks")
        .unwrap_or_else(|| panic!("no catalog progress line: {stderr}"));
    let found = stderr
        .find(&format!("master: {total} tables in {DATABASES} databases"))
        .unwrap_or_else(|| panic!("no table count: {stderr}"));
    assert!(reading < found, "{stderr}");
    assert!(stdout.contains("master: MariaDB"), "{stdout}");

    let started = Instant::now();
    let journal = p.dir.path().join("journal.json");
    let out = tokio::process::Command::new(amsu_bin())
        .args([
            "setup",
            "--master",
            &url(&p.master),
            "--replica",
            &url(&p.replica),
        ])
        .args(["--yes", "--threads", "2"])
        .arg("--journal")
        .arg(&journal)
        .output()
        .await
        .expect("amsu setup runs");
    eprintln!("amsu setup took {:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("reading the master's catalog for the copy"),
        "{stderr}"
    );
    let copied = scalar(
        &r,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE 'many%'",
    )
    .await;
    assert_eq!(copied, Some(total.to_string()));
    let (a, b) = (checksums(&m).await, checksums(&r).await);
    assert_eq!(a.len(), total);
    assert!(
        a.values().all(Option::is_some),
        "every table has a checksum"
    );
    assert_eq!(a, b, "every table equal on the replica");
    let status = query(&r, "SHOW SLAVE STATUS").await;
    assert_eq!(status.len(), 1, "the replica replicates");
}

/// A metadata statement that runs past the session's bound is stopped by the server and
/// reported naming what it was for; a statement the client abandons stops on the server
/// at the bound too (what a killed amsu leaves behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_statement_past_its_bound_is_stopped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::deploy(SandboxOptions::new("bound").base_dir(dir.path()))
        .await
        .expect("sandbox starts");
    let addr = sb.addr();

    let mut s = Session::open(&addr).await.unwrap();
    s.limit_statements(Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(s.statement_limit(), Some(Duration::from_millis(200)));
    let err = s
        .rows("SELECT SLEEP(5)", "reading the test catalog")
        .await
        .expect_err("the server stops the statement");
    assert!(
        matches!(err, MysqlError::StatementTimeout { millis: 200, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("reading the test catalog")
            && msg.contains("0.2 s")
            && msg.contains("AMSU_METADATA_TIMEOUT"),
        "{msg}"
    );
    // The session stays usable, still bounded; a zero bound lifts it.
    assert_eq!(
        s.column("SELECT 1", "one").await.unwrap(),
        vec!["1".to_string()]
    );
    s.limit_statements(Duration::ZERO).await.unwrap();
    assert_eq!(s.statement_limit(), None);
    assert_eq!(
        s.column("SELECT SLEEP(0.3)", "sleeping").await.unwrap(),
        vec!["0".to_string()]
    );

    // An abandoned statement: the client goes away, the server stops it at the bound.
    let mut gone = Session::open(&addr).await.unwrap();
    gone.limit_statements(Duration::from_secs(1)).await.unwrap();
    let marker = "SELECT SLEEP(600) /* abandoned */";
    let task = tokio::spawn(async move {
        let _ = gone.rows(marker, "abandoned").await;
    });
    let running = format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = '{}'",
        marker.replace('\'', "''")
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(&addr, &running).await.as_deref() != Some("1") {
        assert!(Instant::now() < deadline, "the statement never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    let _ = task.await;
    while scalar(&addr, &running).await.as_deref() != Some("0") {
        assert!(
            Instant::now() < deadline,
            "the abandoned statement still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
