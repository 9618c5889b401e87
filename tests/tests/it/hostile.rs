//! Hostile and careless use (issue 12, items 1–6): the replica URL naming the master, a
//! rerun after an interrupted copy with the operator's own data on the replica, two runs
//! at once, an account that exists on both servers, anonymous accounts on the master.
//! Each case is the reproduction that failed before, now a refusal or a correct run.

use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use amsu_tests::servers::{
    amsu_output, checksums, create_bank, exec, journal_dir_for_tests, pair, query, scalar,
    wait_caught_up,
};

use crate::resume;

/// What must still hold on a server amsu was not allowed to touch.
async fn state(addr: &amsu_core::ServerAddr) -> Vec<Option<String>> {
    vec![
        scalar(addr, "SELECT @@global.server_id").await,
        scalar(addr, "SELECT @@global.read_only").await,
        scalar(addr, "SELECT COUNT(*) FROM mysql.user WHERE User = 'amsu_repl'").await,
        scalar(
            addr,
            "SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA",
        )
        .await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_url_naming_the_master_is_refused_under_every_spelling() {
    journal_dir_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let m = Sandbox::deploy(
        SandboxOptions::new("solo")
            .base_dir(dir.path())
            .server_id(1),
    )
    .await
    .expect("sandbox");
    let addr = m.addr();
    create_bank(&addr, "keep", 50).await;
    let before = (state(&addr).await, checksums(&addr).await);
    let master = m.url();
    let spellings = [
        format!("mysql://root@127.0.0.1:{}", m.port()),
        format!("mysql://root@localhost:{}", m.port()),
        format!("mysql://root@localhost/?socket={}", m.socket().display()),
    ];
    for replica in &spellings {
        let host = replica;
        for extra in [&[][..], &["--force"][..]] {
            let mut args = vec![
                "setup",
                "--master",
                &master,
                "--replica",
                &replica,
                "--yes",
                "--json",
            ];
            args.extend_from_slice(extra);
            let out = amsu_output(&args, &[]).await;
            assert_eq!(out.code, Some(3), "{host} {extra:?}: {}", out.text());
            assert!(out.text().contains("same server"), "{}", out.text());
            let out = amsu_output(&["check", "--master", &master, "--replica", replica], &[]).await;
            assert_eq!(out.code, Some(3), "check {host}: {}", out.text());
            assert!(out.text().contains("same_server"), "{}", out.text());
        }
    }
    // An image of the master restored "into a replica" that is the master itself.
    let image = dir.path().join("image");
    let out = amsu_output(
        &[
            "backup",
            "--master",
            &master,
            "--out",
            image.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let replica = format!("mysql://root@localhost:{}", m.port());
    let out = amsu_output(
        &[
            "restore",
            "--image",
            image.to_str().unwrap(),
            "--replica",
            &replica,
            "--start-replication",
            "--master",
            &master,
            "--force",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    assert!(out.text().contains("same server"), "{}", out.text());
    assert_eq!((state(&addr).await, checksums(&addr).await), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_drops_only_what_its_copy_created() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 1000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, note TEXT)",
            "INSERT INTO shop.items SELECT seq, REPEAT('n', seq % 300) FROM shop.seq_1_to_200000",
        ],
    )
    .await;
    let journal = p.dir.path().join("journal.json");
    let first = resume::setup(
        &p,
        &journal,
        &[],
        "root",
        Some("\"event\":\"progress\""),
        &[],
    )
    .await;
    assert_eq!(first.code, None, "killed: {}", first.stderr);
    let owned = query(&r, "SELECT name FROM mysql.amsu_owned ORDER BY name").await;
    assert!(!owned.is_empty(), "the copy recorded what it created");
    // The operator makes a database of their own on the replica in between.
    exec(
        &r,
        &[
            "CREATE DATABASE operator_notes",
            "CREATE TABLE operator_notes.n (id INT PRIMARY KEY)",
            "INSERT INTO operator_notes.n VALUES (1), (2)",
        ],
    )
    .await;
    let second = resume::setup(&p, &journal, &[], "root", None, &[]).await;
    assert_eq!(second.code, Some(3), "{}\n{}", second.stdout, second.stderr);
    let text = format!("{}{}", second.stdout, second.stderr);
    assert!(text.contains("operator_notes"), "{text}");
    assert_eq!(
        scalar(&r, "SELECT COUNT(*) FROM operator_notes.n")
            .await
            .as_deref(),
        Some("2")
    );
    // Once the operator allows it, the rerun drops it and finishes.
    let third = resume::setup(&p, &journal, &[], "root", None, &["--force"]).await;
    assert_eq!(third.code, Some(0), "{}\n{}", third.stdout, third.stderr);
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
    assert!(query(&r, "SHOW DATABASES LIKE 'operator_notes'")
        .await
        .is_empty());
    // The records are gone once the copy is done.
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'amsu_owned'"
        )
        .await
        .as_deref(),
        Some("0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_replica_is_refused() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 10).await;
    let before = (state(&m).await, state(&r).await);
    let journal = p.dir.path().join("journal.json");
    let args = |j: &str| {
        vec![
            "setup".to_string(),
            "--master".into(),
            p.master.url(),
            "--replica".into(),
            p.replica.url(),
            "--yes".into(),
            "--journal".into(),
            j.to_string(),
        ]
    };
    let run = |a: Vec<String>| async move {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        amsu_output(&a, &[]).await
    };

    // Another run (here: this test) holds the replica's run lock.
    let mut holder = amsu_mysql::conn::Session::open(&r).await.unwrap();
    holder
        .exec("DO GET_LOCK('amsu_setup', 0)", "lock")
        .await
        .unwrap();
    let out = run(args(journal.to_str().unwrap())).await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    assert!(out.text().contains("another amsu run"), "{}", out.text());
    assert!(
        out.text().contains("connection"),
        "names the holder: {}",
        out.text()
    );
    assert_eq!((state(&m).await, state(&r).await), before);
    drop(holder);

    // Another run on this host holds the journal.
    let lock_path = journal.with_extension("json.lock");
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.try_lock().unwrap();
    std::fs::write(
        &lock_path,
        "pid 4242 on host testhost, started at unix time 1",
    )
    .unwrap();
    let out = run(args(journal.to_str().unwrap())).await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    assert!(
        out.text().contains("pid 4242 on host testhost"),
        "{}",
        out.text()
    );
    assert_eq!((state(&m).await, state(&r).await), before);
    drop(lock);

    // Alone, it runs.
    let out = run(args(journal.to_str().unwrap())).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_amsu_logs_in_with_is_never_replaced() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 10).await;
    for (addr, pw) in [(&m, "master-side-pw"), (&r, "replica-side-pw")] {
        exec(
            addr,
            &[
                &format!("CREATE USER 'ops'@'%' IDENTIFIED BY '{pw}'"),
                "GRANT ALL PRIVILEGES ON *.* TO 'ops'@'%' WITH GRANT OPTION",
                &format!("CREATE USER 'app'@'%' IDENTIFIED BY '{pw}'"),
            ],
        )
        .await;
    }
    let replica = format!("mysql://ops@127.0.0.1:{}", p.replica.port());
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &replica,
            "--yes",
            "--json",
            "--wait-caught-up",
        ],
        &[("AMSU_REPLICA_PASSWORD", "replica-side-pw")],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(out.text().contains("account_kept"), "{}", out.text());
    assert!(out.text().contains("accounts_replaced"), "{}", out.text());
    // The replica's own login still works; the other colliding account is the master's.
    let login = |user: &str, pw: &str| {
        r.clone()
            .user(user)
            .password(Some(amsu_core::Secret::new(pw)))
    };
    amsu_mysql::conn::Session::open(&login("ops", "replica-side-pw"))
        .await
        .expect("the replica keeps the account amsu logged in with");
    amsu_mysql::conn::Session::open(&login("app", "master-side-pw"))
        .await
        .expect("other accounts mirror the master");
    assert!(!out.text().contains("replica-side-pw") && !out.text().contains("master-side-pw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_accounts_on_the_master_are_found_before_any_change() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 10).await;
    exec(
        &m,
        &["CREATE USER ''@'localhost'", "CREATE USER ''@'127.0.0.1'"],
    )
    .await;
    let before = (state(&m).await, state(&r).await);
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--yes",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    assert!(out.text().contains("anonymous accounts"), "{}", out.text());
    assert!(
        out.text().contains("DROP USER ''@'localhost'"),
        "{}",
        out.text()
    );
    assert_eq!((state(&m).await, state(&r).await), before);
    // Fixed as the message says, the same command succeeds.
    exec(
        &m,
        &["DROP USER ''@'localhost'", "DROP USER ''@'127.0.0.1'"],
    )
    .await;
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--yes",
            "--wait-caught-up",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_after_a_failed_start_does_not_call_its_own_state_errant() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 10).await;
    // The replica has transactions of its own in its binary log (it never replicated).
    exec(&r, &["CREATE DATABASE scratch", "DROP DATABASE scratch"]).await;
    let journal = p.dir.path().join("journal.json");
    let args = [
        "setup",
        "--master",
        &p.master.url(),
        "--replica",
        &p.replica.url(),
        "--yes",
        "--gtid",
        // The replica cannot reach the master there: replication fails to start.
        "--master-host-for-replica",
        "127.0.0.2",
        "--journal",
        journal.to_str().unwrap(),
    ];
    let first = amsu_output(&args, &[]).await;
    assert_eq!(first.code, Some(1), "{}", first.text());
    assert!(first.text().contains("start_replica"), "{}", first.text());
    // The plain rerun goes on to the failing step again instead of refusing the
    // replica's own transactions (which the first run accepted) as errant.
    let second = amsu_output(&args, &[]).await;
    assert!(!second.text().contains("errant"), "{}", second.text());
    assert_eq!(second.code, Some(1), "{}", second.text());
    assert!(second.text().contains("start_replica"), "{}", second.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_mariadb_backup_cannot_lock_refuses_the_physical_method_first() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 10).await;
    exec(
        &m,
        &[
            "CREATE DATABASE `odd``name`",
            "CREATE TABLE `odd``name`.t (id INT PRIMARY KEY) ENGINE=Aria",
        ],
    )
    .await;
    let before = (state(&m).await, state(&r).await);
    let (stop, start, _restarted) = crate::physical::shell_service(&p.replica);
    let (mu, ru) = (p.master.url(), p.replica.url());
    let physical = [
        "setup",
        "--master",
        &mu,
        "--replica",
        &ru,
        "--replica-stop-command",
        &stop,
        "--replica-start-command",
        &start,
        "--yes",
        "--wait-caught-up",
    ];
    // Asked for by name, physical is refused before any change.
    let mut named = physical.to_vec();
    named.extend(["--method", "physical"]);
    let out = amsu_output(&named, &[]).await;
    assert_eq!(out.code, Some(3), "{}", out.text());
    assert!(
        out.text().contains("physical_identifier") || out.text().contains("backtick"),
        "{}",
        out.text()
    );
    assert!(out.text().contains("odd`name"), "{}", out.text());
    assert_eq!((state(&m).await, state(&r).await), before);
    // With the same flags and no --method, auto sees that physical cannot copy this
    // master, says why, and copies it with the logical method.
    let out = amsu_output(&physical, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(
        out.text().contains("physical is not possible here"),
        "{}",
        out.text()
    );
    assert!(out.text().contains("method: logical"), "{}", out.text());
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

/// Bytes the files below `dir` take on disk (the larger of size and allocated blocks).
fn disk_use(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let md = e.metadata().unwrap();
        if md.is_dir() {
            total += disk_use(&e.path());
        } else {
            total += md.len().max(md.blocks() * 512);
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_estimate_holds_for_what_a_restore_really_uses() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    // Many small tables (the case a plain sum of DATA_LENGTH got wrong) and a larger one
    // with a secondary key built after its data.
    let mut sqls = vec!["CREATE DATABASE many".to_string()];
    for i in 0..150 {
        sqls.push(format!(
            "CREATE TABLE many.t{i} (id INT PRIMARY KEY, v VARCHAR(40), KEY (v))"
        ));
        sqls.push(format!("INSERT INTO many.t{i} VALUES (1, 'a'), (2, 'b')"));
    }
    sqls.push(
        "CREATE TABLE many.big (id BIGINT PRIMARY KEY, note VARCHAR(200), KEY (note))".into(),
    );
    sqls.push(
        "INSERT INTO many.big SELECT seq, REPEAT(CHAR(65 + seq % 26), 150) FROM many.seq_1_to_120000"
            .into(),
    );
    sqls.push("ANALYZE TABLE many.big".into());
    let sqls: Vec<&str> = sqls.iter().map(String::as_str).collect();
    exec(&m, &sqls).await;
    let facts = amsu_mysql::checks::MysqlPreflight::new(m.clone())
        .replica(Some(r.clone()))
        .facts()
        .await
        .expect("facts");
    let need = amsu_mysql::checks::replica_disk_need(&facts.data.tables);
    let before = disk_use(p.replica.datadir());
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--yes",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let used = disk_use(p.replica.datadir()).saturating_sub(before);
    eprintln!("disk estimate {need} bytes, the restore used {used} bytes");
    assert!(
        used <= need,
        "the restore used {used} bytes but the estimate was {need}"
    );
}
