//! `amsu setup` end to end on real MariaDB servers, through the command line.

use amsu_tests::servers::{
    amsu, amsu_bin, checksums, create_bank, exec, pair, query, scalar, wait_caught_up, Writer,
    BANK_TOTAL,
};

fn url(sb: &amsu_mysql::sandbox::Sandbox) -> String {
    sb.url()
}

/// Several databases, a writer committing the whole time, the replica caught up and
/// equal table for table; later writes replicate. Both servers start with server_id 1,
/// so the master's is changed (T2) and reported. Then a second setup on the now
/// non-empty replica is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_under_write_load_yields_equal_replica() {
    let p = pair(|o| o, |o| o.server_id(1)).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 2000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(50), price DECIMAL(10,2), note TEXT) ENGINE=InnoDB",
            "INSERT INTO shop.items SELECT seq, CONCAT('item ', seq), seq / 7, IF(seq % 5 = 0, NULL, REPEAT('x\\ty\\n', seq % 9)) FROM shop.seq_1_to_60000",
            "CREATE TABLE shop.nokey (a INT, b VARCHAR(20)) ENGINE=InnoDB",
            "INSERT INTO shop.nokey SELECT seq % 10, 'dup' FROM shop.seq_1_to_500",
            "CREATE TABLE shop.conf (k VARCHAR(20) PRIMARY KEY, v TEXT) ENGINE=MyISAM",
            "INSERT INTO shop.conf VALUES ('a', 'NULL'), ('b', ''), ('c', NULL)",
            "CREATE DATABASE `odd db``name`",
            "CREATE TABLE `odd db``name`.`select` (`from` INT PRIMARY KEY, `the value` VARCHAR(10)) ENGINE=InnoDB",
            "INSERT INTO `odd db``name`.`select` VALUES (1, 'één'), (2, 'zwei')",
        ],
    )
    .await;
    let writer = Writer::start(m.clone(), "bank", 2000);
    writer.wait_commits(20).await;

    let code = amsu(&[
        "setup",
        "--master",
        &url(&p.master),
        "--replica",
        &url(&p.replica),
        "--yes",
        "--wait-caught-up",
        "--threads",
        "2",
    ])
    .await;
    assert_eq!(code, 0, "setup must succeed");
    let during = writer.commits();
    writer.wait_commits(during + 50).await;
    let commits = writer.stop().await;
    assert!(
        commits > during,
        "the master kept committing during the setup"
    );

    // T2: the clash is resolved on the replica; the master keeps its server_id (sessions
    // open on the master keep their own copy of it).
    assert_eq!(
        scalar(&m, "SELECT @@global.server_id").await.as_deref(),
        Some("1")
    );
    let replica_id = scalar(&r, "SELECT @@global.server_id").await.unwrap();
    assert_ne!(
        replica_id, "1",
        "the replica's server_id must have been changed"
    );
    assert_ne!(replica_id, "0");

    // The replication user exists with REPLICATION SLAVE and nothing more.
    let grants = query(&m, "SHOW GRANTS FOR 'amsu_repl'@'%'").await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    let g = grants[0][0].clone().unwrap();
    assert!(
        g.starts_with("GRANT REPLICATION SLAVE ON *.* TO `amsu_repl`@`%`"),
        "{g}"
    );

    wait_caught_up(&m, &r).await;
    let (cm, cr) = (checksums(&m).await, checksums(&r).await);
    assert_eq!(cm.len(), 6, "{cm:?}");
    assert_eq!(cm, cr, "every table's row count and checksum must be equal");
    let sum = scalar(&r, "SELECT SUM(balance) FROM bank.accounts")
        .await
        .unwrap();
    assert_eq!(sum, BANK_TOTAL.to_string());
    let st = query(&r, "SHOW SLAVE STATUS").await;
    assert_eq!(st.len(), 1);

    // Later writes replicate.
    exec(
        &m,
        &["INSERT INTO shop.items VALUES (1000001, 'late', 1.5, 'after setup')"],
    )
    .await;
    wait_caught_up(&m, &r).await;
    assert_eq!(
        scalar(&r, "SELECT name FROM shop.items WHERE id = 1000001")
            .await
            .as_deref(),
        Some("late")
    );

    // Rerunning the same command finds the setup finished (journal) and changes nothing.
    let before = checksums(&r).await;
    let code = amsu(&[
        "setup",
        "--master",
        &url(&p.master),
        "--replica",
        &url(&p.replica),
        "--yes",
    ])
    .await;
    assert_eq!(code, 0);
    assert_eq!(checksums(&r).await, before);

    // Without that journal, a setup onto the non-empty replica is refused (exit 3) and
    // changes nothing.
    let other_journal = p.dir.path().join("other-journal.json");
    let code = amsu(&[
        "setup",
        "--master",
        &url(&p.master),
        "--replica",
        &url(&p.replica),
        "--yes",
        "--journal",
        other_journal.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 3);
    assert_eq!(checksums(&r).await, before);
    let st2 = query(&r, "SHOW SLAVE STATUS").await;
    assert_eq!(st2[0][0..3], st[0][0..3], "replication config untouched");
}

/// Binary log off: exit 3, and neither server changed (no user created, nothing loaded,
/// no replication configured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_bin_off_is_refused_and_nothing_changes() {
    let p = pair(|o| o.log_bin(false), |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &["CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)"],
    )
    .await;
    let users_before = query(&m, "SELECT User, Host FROM mysql.user ORDER BY 1, 2").await;
    let id_before = scalar(&m, "SELECT @@global.server_id").await;
    let code = amsu(&[
        "setup",
        "--master",
        &url(&p.master),
        "--replica",
        &url(&p.replica),
        "--yes",
    ])
    .await;
    assert_eq!(code, 3);
    assert_eq!(
        query(&m, "SELECT User, Host FROM mysql.user ORDER BY 1, 2").await,
        users_before
    );
    assert_eq!(scalar(&m, "SELECT @@global.server_id").await, id_before);
    assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty());
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'd'"
        )
        .await
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        scalar(&r, "SELECT @@global.read_only").await.as_deref(),
        Some("0")
    );

    // The library error (the façade's checks, as `amsu check` runs them) names log_bin
    // and the option to set.
    let config = amsu_backup::SetupConfig::new(m.clone(), r.clone()).without_journal();
    let err = amsu_backup::check(&config, std::sync::Arc::new(amsu_core::NoEvents))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let msg = err.to_string();
    assert!(msg.contains("log_bin"), "{msg}");
    assert!(
        msg.contains("option file") && msg.contains("restart"),
        "{msg}"
    );
}

/// Equal server_ids are fixed (on the replica) and reported; an existing replication
/// user with the given password is reused, not recreated. (MariaDB refuses server_id 0:
/// `SET GLOBAL server_id = 0` leaves 1, so the 0 case is covered by unit tests.) With GTID
/// positioning, under a write load: replication starts at the snapshot's GTID position
/// (`Using_Gtid = Slave_Pos`), the catch-up waits by GTID, and the data is equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_id_clash_fixed_and_existing_user_reused() {
    let p = pair(|o| o.server_id(7), |o| o.server_id(7)).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "CREATE USER 'repl_x'@'%' IDENTIFIED BY 'Known-pw-123'",
            "GRANT REPLICATION SLAVE ON *.* TO 'repl_x'@'%'",
            "CREATE DATABASE d",
            "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(10))",
            "INSERT INTO d.t VALUES (1, 'a'), (2, 'b')",
        ],
    )
    .await;
    create_bank(&m, "bank", 300).await;
    let writer = Writer::start(m.clone(), "bank", 300);
    writer.wait_commits(20).await;
    let created_before = query(&m, "SELECT JSON_EXTRACT(Priv, '$.password_last_changed') FROM mysql.global_priv WHERE User = 'repl_x'").await;

    let config = amsu_backup::SetupConfig::new(m.clone(), r.clone())
        .replication(
            amsu_backup::ReplicationSettings::new()
                .repl_user("repl_x")
                .repl_password(Some("Known-pw-123".into()))
                .positioning(amsu_core::Positioning::Gtid),
        )
        .options(|o| o.wait_caught_up(true))
        .without_journal();
    let report = amsu_backup::setup(
        config,
        std::sync::Arc::new(amsu_core::NoEvents),
        amsu_core::CancellationToken::new(),
    )
    .await
    .expect("setup succeeds")
    .report;
    let commits = writer.stop().await;
    let snapshot_gtid = report.copy.coordinates.clone().and_then(|c| c.gtid);
    let caught_up_gtid = report.caught_up_to.clone().and_then(|c| c.gtid);
    assert!(
        snapshot_gtid.is_some() && caught_up_gtid.is_some() && snapshot_gtid != caught_up_gtid,
        "the master wrote between the snapshot ({snapshot_gtid:?}) and the catch-up ({caught_up_gtid:?}); {commits} commits"
    );
    let using = query(&r, "SHOW SLAVE STATUS").await;
    assert!(
        format!("{using:?}").contains("Slave_Pos"),
        "GTID positioning: {using:?}"
    );
    // Caught up by GTID: the replica has applied at least the position waited for.
    let slave_pos = scalar(&r, "SELECT @@global.gtid_slave_pos").await.unwrap();
    let seq = |g: &str| g.rsplit('-').next().unwrap().parse::<u64>().unwrap();
    assert!(
        seq(&slave_pos) >= seq(caught_up_gtid.as_deref().unwrap()),
        "{slave_pos} vs {caught_up_gtid:?}"
    );
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
    assert_eq!(
        scalar(&m, "SELECT @@global.server_id").await.as_deref(),
        Some("7")
    );
    let id = scalar(&r, "SELECT @@global.server_id").await.unwrap();
    assert_ne!(id, "7");
    assert!(
        report
            .replica_changes
            .iter()
            .any(|c| c.contains(&format!("server_id changed from 7 to {id}"))),
        "{:?}",
        report.replica_changes
    );
    assert!(
        !report
            .master_changes
            .iter()
            .any(|c| c.contains("created user")),
        "the existing user must be reused: {:?}",
        report.master_changes
    );
    assert_eq!(
        query(&m, "SELECT JSON_EXTRACT(Priv, '$.password_last_changed') FROM mysql.global_priv WHERE User = 'repl_x'").await,
        created_before
    );
    assert_eq!(
        scalar(&r, "SELECT v FROM d.t WHERE id = 2")
            .await
            .as_deref(),
        Some("b")
    );
    exec(&m, &["INSERT INTO d.t VALUES (3, 'c')"]).await;
    wait_caught_up(&m, &r).await;
    assert_eq!(
        scalar(&r, "SELECT COUNT(*) FROM d.t").await.as_deref(),
        Some("3")
    );
}

/// A replica holding user data is refused without --force (exit 3, untouched) and
/// replaced with --force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_empty_replica_needs_force() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT PRIMARY KEY)",
            "INSERT INTO app.t VALUES (1)",
        ],
    )
    .await;
    exec(
        &r,
        &[
            "CREATE DATABASE precious",
            "CREATE TABLE precious.t (id INT PRIMARY KEY)",
            "INSERT INTO precious.t VALUES (42)",
        ],
    )
    .await;
    let args = |force: bool| {
        let mut v = vec![
            "setup".to_string(),
            "--master".into(),
            p.master.url(),
            "--replica".into(),
            p.replica.url(),
            "--yes".into(),
        ];
        if force {
            v.push("--force".into());
        }
        v
    };
    let a = args(false);
    let code = amsu(&a.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(code, 3);
    assert_eq!(
        scalar(&r, "SELECT id FROM precious.t").await.as_deref(),
        Some("42")
    );
    assert!(
        query(&m, "SELECT 1 FROM mysql.user WHERE User = 'amsu_repl'")
            .await
            .is_empty()
    );

    let a = args(true);
    let code = amsu(&a.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(code, 0);
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'precious'"
        )
        .await
        .as_deref(),
        Some("0")
    );
    wait_caught_up(&m, &r).await;
    assert_eq!(
        scalar(&r, "SELECT id FROM app.t").await.as_deref(),
        Some("1")
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with the `openssl`
/// command line: `(ca.pem, server.pem, server.key)`.
fn tls_files(dir: &std::path::Path) -> (String, String, String) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=amsu test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

/// `--repl-ssl-ca` (with `--repl-ssl-verify-server-cert`): the replica replicates from a
/// TLS master over TLS. The plan of a dry run shows the TLS settings. A first run with a
/// CA file that does not exist fails to start replication and drops the user it created;
/// the rerun with the right CA resumes. Then `SHOW SLAVE STATUS` has the TLS settings,
/// both threads run and the data arrives; and once the replication user is made to
/// REQUIRE SSL, the I/O thread still reconnects — so the connection really is encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_replicates_over_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(certs.path());
    let p = pair(
        |o| {
            o.extra_option(format!("--ssl-ca={ca}"))
                .extra_option(format!("--ssl-cert={cert}"))
                .extra_option(format!("--ssl-key={key}"))
        },
        |o| o,
    )
    .await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    assert_eq!(
        scalar(&m, "SELECT @@have_ssl").await.as_deref(),
        Some("YES"),
        "the master sandbox runs with TLS"
    );
    exec(
        &m,
        &[
            "CREATE DATABASE d",
            "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO d.t VALUES (1, 'before')",
        ],
    )
    .await;
    let journal = p.dir.path().join("journal.json");
    let base = [
        "setup",
        "--master",
        &url(&p.master),
        "--replica",
        &url(&p.replica),
        "--repl-ssl-ca",
        &ca,
        "--repl-ssl-verify-server-cert",
        "--journal",
        journal.to_str().unwrap(),
    ];

    let mut dry = base.to_vec();
    dry.extend(["--dry-run", "--json"]);
    let out = tokio::process::Command::new(amsu_bin())
        .args(&dry)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "MASTER_USE_GTID=no, MASTER_SSL=1, MASTER_SSL_CA='{ca}', MASTER_SSL_VERIFY_SERVER_CERT=1"
        )),
        "{stdout}"
    );
    assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty());

    // A CA file that does not exist: the copy and CHANGE MASTER go through, the I/O
    // thread cannot connect. The failed setup drops the replication user it created.
    let missing_ca = certs.path().join("missing-ca.pem");
    let missing_ca = missing_ca.to_str().unwrap();
    let wrong: Vec<&str> = base
        .iter()
        .map(|a| if *a == ca.as_str() { missing_ca } else { a })
        .chain(["--yes", "--wait-caught-up"])
        .collect();
    let out = tokio::process::Command::new(amsu_bin())
        .args(&wrong)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("start_replica"), "{stderr}");
    assert!(
        stderr.contains("dropped user 'amsu_repl'@'%' again, since the setup failed"),
        "{stderr}"
    );
    assert_eq!(
        scalar(
            &m,
            "SELECT COUNT(*) FROM mysql.user WHERE User = 'amsu_repl'"
        )
        .await
        .as_deref(),
        Some("0")
    );

    // The same command with the right CA: the user is created anew, the configured
    // replica gets its new password and TLS settings, and replication runs.
    let mut run = base.to_vec();
    run.extend(["--yes", "--wait-caught-up"]);
    assert_eq!(amsu(&run).await, 0, "setup over TLS succeeds");
    let status = |name: &'static str| {
        let r = r.clone();
        async move {
            let mut s = amsu_mysql::conn::Session::open(&r).await.unwrap();
            let row = s
                .first_row("SHOW SLAVE STATUS", "status")
                .await
                .unwrap()
                .expect("a replica");
            amsu_mysql::conn::field(&row, name)
                .unwrap_or_default()
                .to_string()
        }
    };
    assert_eq!(status("Master_SSL_Allowed").await, "Yes");
    assert_eq!(status("Master_SSL_CA_File").await, ca);
    assert_eq!(status("Master_SSL_Verify_Server_Cert").await, "Yes");
    assert_eq!(status("Slave_IO_Running").await, "Yes");
    assert_eq!(status("Slave_SQL_Running").await, "Yes");
    exec(&m, &["INSERT INTO d.t VALUES (2, 'after')"]).await;
    wait_caught_up(&m, &r).await;
    assert_eq!(
        scalar(&r, "SELECT GROUP_CONCAT(v ORDER BY id) FROM d.t")
            .await
            .as_deref(),
        Some("before,after")
    );

    // Only a TLS connection may log in now: the I/O thread reconnects all the same.
    exec(
        &m,
        &["ALTER USER 'amsu_repl'@'%' REQUIRE SSL", "FLUSH PRIVILEGES"],
    )
    .await;
    wait_caught_up(&m, &r).await;
    exec(&r, &["STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"]).await;
    exec(&m, &["INSERT INTO d.t VALUES (3, 'tls only')"]).await;
    let t = std::time::Instant::now();
    while status("Slave_IO_Running").await != "Yes" {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "the I/O thread does not reconnect: {}",
            status("Last_IO_Error").await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    wait_caught_up(&m, &r).await;
    assert_eq!(
        scalar(&r, "SELECT v FROM d.t WHERE id = 3")
            .await
            .as_deref(),
        Some("tls only")
    );
}

/// A setup that fails after creating the replication user drops that user again and
/// says so; the rerun after fixing the cause creates it anew and goes through. The
/// failure is real: the master has an ARCHIVE table and the replica lacks the ARCHIVE
/// engine, so the copy cannot create the table there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_setup_drops_the_user_it_created() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "INSTALL SONAME 'ha_archive'",
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB",
            "INSERT INTO app.t SELECT seq, CONCAT('v', seq) FROM app.seq_1_to_1000",
            "CREATE TABLE app.log (id INT, msg VARCHAR(20)) ENGINE=ARCHIVE",
            "INSERT INTO app.log VALUES (1, 'archived'), (2, 'too')",
        ],
    )
    .await;
    let users = || {
        let m = m.clone();
        async move {
            scalar(
                &m,
                "SELECT COUNT(*) FROM mysql.user WHERE User = 'amsu_repl'",
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(users().await, "0");
    let journal = p.dir.path().join("journal.json");
    let run = || {
        let (master, replica, journal) = (url(&p.master), url(&p.replica), journal.clone());
        async move {
            tokio::process::Command::new(amsu_bin())
                .args(["setup", "--master", &master, "--replica", &replica, "--yes"])
                .arg("--journal")
                .arg(&journal)
                .output()
                .await
                .expect("amsu runs")
        }
    };

    let out = run().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("copy_data"), "{stderr}");
    assert!(
        stderr.contains("dropped user 'amsu_repl'@'%' again, since the setup failed"),
        "{stderr}"
    );
    assert_eq!(users().await, "0", "the created user was dropped");
    let j = std::fs::read_to_string(&journal).unwrap();
    let compact: String = j.split_whitespace().collect();
    assert!(
        compact.contains("\"reverted_user\":[\"amsu_repl\",\"%\"]")
            && compact.contains("\"created_user\":null"),
        "{j}"
    );
    assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty());

    // Fix the cause; the same command creates the user again and finishes.
    exec(&r, &["INSTALL SONAME 'ha_archive'"]).await;
    let out = run().await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(users().await, "1");
    exec(&m, &["INSERT INTO app.t VALUES (1001, 'late')"]).await;
    wait_caught_up(&m, &r).await;
    assert_eq!(
        scalar(&r, "SELECT COUNT(*) FROM app.t").await.as_deref(),
        Some("1001")
    );
    assert_eq!(
        scalar(&r, "SELECT GROUP_CONCAT(msg ORDER BY id) FROM app.log")
            .await
            .as_deref(),
        Some("archived,too")
    );
}
