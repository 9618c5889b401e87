//! `amsu check` and the preflight of `amsu setup` on real MariaDB servers: each finding
//! MariaDB can show, provoked for real, with its code, severity and fix; a blocking one
//! stops `amsu setup` before anything changes; `--protect-binlogs` and
//! `--replica-config-file` on a setup that goes through.

use amsu_core::{Finding, Role, Severity};
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use amsu_tests::servers::{amsu, exec, pair, query, scalar, wait_caught_up};

fn find<'a>(findings: &'a [Finding], code: &str, needle: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.code == code && f.problem.contains(needle))
        .unwrap_or_else(|| panic!("no finding {code} mentioning {needle:?} in {findings:#?}"))
}

/// A URL with a user and password (test-only credentials).
fn url_as(sb: &Sandbox, user: &str, password: &str) -> String {
    format!("mysql://{user}:{password}@127.0.0.1:{}", sb.port())
}

/// One pair holds every condition at once: STATEMENT binlog format and a one-second
/// binlog retention on the master, clashing server_ids, a MyISAM table, a table without
/// a primary key, a row larger than the replica's max_allowed_packet, a view whose
/// DEFINER does not exist, a different sql_mode on the replica, and a master user
/// missing RELOAD and BINLOG MONITOR. `amsu check` reports them all (exit 3);
/// `amsu setup` refuses and changes nothing. With the problems fixed (and the
/// retention left short), `setup --protect-binlogs --replica-config-file` goes through,
/// restores the retention and writes the option file. Then a local write on the replica
/// is an errant transaction that blocks a new setup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_every_problem_and_setup_refuses() {
    let p = pair(|o| o.binlog_format("STATEMENT"), |o| o.server_id(1)).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(200)) ENGINE=InnoDB",
            "INSERT INTO shop.items SELECT seq, REPEAT('n', 180) FROM shop.seq_1_to_30000",
            "CREATE TABLE shop.conf (k VARCHAR(20) PRIMARY KEY, v TEXT) ENGINE=MyISAM",
            "INSERT INTO shop.conf VALUES ('a', 'x')",
            "CREATE TABLE shop.nokey (a INT, b VARCHAR(20)) ENGINE=InnoDB",
            "INSERT INTO shop.nokey VALUES (1, 'x'), (1, 'x')",
            "CREATE TABLE shop.blobs (id INT PRIMARY KEY, body LONGBLOB) ENGINE=InnoDB",
            "INSERT INTO shop.blobs VALUES (1, REPEAT('b', 3000000))",
            "CREATE DEFINER = 'ghost'@'%' SQL SECURITY DEFINER VIEW shop.v_ghost AS SELECT id FROM shop.items",
            "CREATE USER 'limited'@'%' IDENTIFIED BY 'Limited-pw-1'",
            "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, PROCESS ON *.* TO 'limited'@'%'",
            "SET GLOBAL binlog_expire_logs_seconds = 1",
        ],
    )
    .await;
    exec(
        &r,
        &[
            "SET GLOBAL max_allowed_packet = 1048576",
            "SET GLOBAL sql_mode = 'ANSI_QUOTES'",
        ],
    )
    .await;
    let limited: amsu_core::ServerAddr = url_as(&p.master, "limited", "Limited-pw-1")
        .parse()
        .unwrap();

    let findings = report(&limited, Some(&r)).await;

    let f = find(&findings, "binlog_format", "STATEMENT");
    assert_eq!((f.severity, f.server), (Severity::Warning, Role::Master));
    assert!(f.fix.contains("binlog_format = ROW"), "{}", f.fix);

    let f = find(&findings, "server_id_clash", "server_id 1");
    assert_eq!((f.severity, f.server), (Severity::Warning, Role::Replica));

    let f = find(&findings, "missing_privilege", "consistent snapshot");
    assert_eq!((f.severity, f.server), (Severity::Blocking, Role::Master));
    assert!(
        f.problem.contains("'limited'@'%' lacks RELOAD ON *.*"),
        "{}",
        f.problem
    );
    assert!(
        f.problem.contains("BINLOG MONITOR or SUPER"),
        "{}",
        f.problem
    );
    assert_eq!(
        f.fix,
        "as an administrator on the master: GRANT RELOAD, BINLOG MONITOR ON *.* TO 'limited'@'%';"
    );
    let f = find(&findings, "missing_privilege", "replication_user");
    assert_eq!(f.severity, Severity::Blocking);
    assert!(
        f.fix
            .contains("GRANT REPLICATION SLAVE ON *.* TO 'limited'@'%' WITH GRANT OPTION;"),
        "{}",
        f.fix
    );

    let f = find(&findings, "binlog_retention", "kept for 1 s");
    assert_eq!((f.severity, f.server), (Severity::Blocking, Role::Master));
    assert!(f.problem.contains("assumed 20 MiB/s"), "{}", f.problem);
    assert!(f.fix.contains("binlog protection"), "{}", f.fix);
    assert!(
        f.fix
            .contains("SET GLOBAL binlog_expire_logs_seconds = 3600"),
        "{}",
        f.fix
    );

    let f = find(
        &findings,
        "non_transactional_tables",
        "`shop`.`conf` (MyISAM",
    );
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.fix.contains("ALTER TABLE `shop`.`conf` ENGINE=InnoDB;"));

    let f = find(&findings, "no_primary_key", "`shop`.`nokey`");
    assert_eq!(f.severity, Severity::Warning);
    assert!(!f.problem.contains("`shop`.`items`"), "{}", f.problem);

    let f = find(&findings, "max_allowed_packet", "`shop`.`blobs`");
    assert_eq!((f.severity, f.server), (Severity::Blocking, Role::Replica));
    assert!(f.problem.contains("MAX(LENGTH())"), "{}", f.problem);
    assert!(
        f.fix.contains("SET GLOBAL max_allowed_packet = 6291456"),
        "{}",
        f.fix
    );

    let f = find(&findings, "missing_definer", "'ghost'@'%'");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.problem.contains("view `shop`.`v_ghost`"), "{}", f.problem);
    assert!(
        f.fix.contains("CREATE USER 'ghost'@'%' ACCOUNT LOCK;"),
        "{}",
        f.fix
    );

    let f = find(&findings, "sql_mode", "ANSI_QUOTES");
    assert_eq!((f.severity, f.server), (Severity::Warning, Role::Replica));

    // The replica is this host's: its free space was checked, and is plenty.
    assert!(
        !findings
            .iter()
            .any(|f| f.code.as_str().starts_with("disk_space")),
        "{findings:#?}"
    );
    assert!(!findings.iter().any(|f| f.code == "errant_gtids"));

    // The command line: exit 3, human and JSON.
    let limited_url = url_as(&p.master, "limited", "Limited-pw-1");
    for json in [false, true] {
        let mut args = vec!["check", "--master", &limited_url];
        let replica_url = p.replica.url();
        args.extend(["--replica", &replica_url]);
        if json {
            args.push("--json");
        }
        assert_eq!(amsu(&args).await, 3, "check --json={json}");
    }

    // setup refuses and changes nothing.
    let users_before = query(&m, "SELECT User, Host FROM mysql.user ORDER BY 1, 2").await;
    let code = amsu(&[
        "setup",
        "--master",
        &limited_url,
        "--replica",
        &p.replica.url(),
        "--yes",
    ])
    .await;
    assert_eq!(code, 3);
    assert_eq!(
        query(&m, "SELECT User, Host FROM mysql.user ORDER BY 1, 2").await,
        users_before
    );
    assert_eq!(
        scalar(&m, "SELECT @@global.binlog_expire_logs_seconds")
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        scalar(&r, "SELECT @@global.server_id").await.as_deref(),
        Some("1")
    );
    assert_eq!(
        scalar(&r, "SELECT @@global.read_only").await.as_deref(),
        Some("0")
    );
    assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty());
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'"
        )
        .await
        .as_deref(),
        Some("0")
    );

    // As root, with the packet fixed, only the retention blocks: without
    // --protect-binlogs exit 3, with it the setup goes through.
    exec(&r, &["SET GLOBAL max_allowed_packet = 67108864"]).await;
    let setup_args = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--yes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let a = setup_args(&[]);
    assert_eq!(
        amsu(&a.iter().map(String::as_str).collect::<Vec<_>>()).await,
        3
    );
    assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty());

    let conf = p.dir.path().join("replica-amsu.cnf");
    let conf_s = conf.to_str().unwrap().to_string();
    let a = setup_args(&[
        "--protect-binlogs",
        "--replica-config-file",
        &conf_s,
        "--report-host",
        "replica.test",
    ]);
    assert_eq!(
        amsu(&a.iter().map(String::as_str).collect::<Vec<_>>()).await,
        0
    );
    assert_eq!(
        scalar(&m, "SELECT @@global.binlog_expire_logs_seconds")
            .await
            .as_deref(),
        Some("1"),
        "the retention is restored after the setup"
    );
    let id = scalar(&r, "SELECT @@global.server_id").await.unwrap();
    assert_ne!(id, "1");
    let text = std::fs::read_to_string(&conf).expect("option file written");
    assert!(text.contains("[mysqld]\n"), "{text}");
    assert!(text.contains(&format!("\nserver_id = {id}\n")), "{text}");
    assert!(text.contains("\nread_only = 1\n"), "{text}");
    assert!(text.contains("\nskip_slave_start = 0\n"), "{text}");
    assert!(text.contains("\nrelay_log = "), "{text}");
    assert!(text.contains("\nreport_host = replica.test\n"), "{text}");
    wait_caught_up(&m, &r).await;
    assert_eq!(
        scalar(&r, "SELECT COUNT(*) FROM shop.items")
            .await
            .as_deref(),
        Some("30000")
    );

    // A write on the replica itself is a transaction the master does not have: a new
    // setup of this replica (which has replicated) is refused, naming the GTID.
    exec(&r, &["CREATE DATABASE local_only"]).await;
    let findings = report(&m, Some(&r)).await;
    let f = find(&findings, "errant_gtids", &format!("0-{id}-"));
    assert_eq!((f.severity, f.server), (Severity::Blocking, Role::Replica));
    assert!(f.fix.contains("RESET MASTER"), "{}", f.fix);
}

/// A master without a binary log, checked alone (one server): blocking, with the option
/// to set and the restart it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_master_without_binlog() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::deploy(
        SandboxOptions::new("nobinlog")
            .base_dir(dir.path())
            .log_bin(false),
    )
    .await
    .expect("sandbox starts");
    let findings = report(&sb.addr(), None).await;
    let f = find(&findings, "log_bin_off", "binary logging is off");
    assert_eq!((f.severity, f.server), (Severity::Blocking, Role::Master));
    assert!(
        f.fix.contains("log_bin") && f.fix.contains("restart"),
        "{}",
        f.fix
    );
    // Without a binary log there is no retention to check.
    assert!(!findings.iter().any(|f| f.code == "binlog_retention"));
    assert_eq!(amsu(&["check", "--master", &sb.url()]).await, 3);
}

/// An account whose privileges all come through roles: a default role, and a role
/// granted to that role. With the default role set, `amsu check` finds no missing
/// privilege (exit 0); with the role granted but not the default, it is not active at
/// login and the blocking finding names the missing privileges and the inactive role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileges_through_a_default_role_count() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "CREATE ROLE amsu_copy",
            "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, PROCESS, RELOAD, BINLOG MONITOR ON *.* TO amsu_copy",
            "CREATE ROLE amsu_users",
            "GRANT CREATE USER ON *.* TO amsu_users",
            "GRANT REPLICATION SLAVE ON *.* TO amsu_users WITH GRANT OPTION",
            "GRANT amsu_users TO amsu_copy",
            "CREATE USER 'opsadmin'@'%' IDENTIFIED BY 'Ops-admin-pw-1'",
            "GRANT amsu_copy TO 'opsadmin'@'%'",
            "SET DEFAULT ROLE amsu_copy FOR 'opsadmin'@'%'",
        ],
    )
    .await;
    let url = url_as(&p.master, "opsadmin", "Ops-admin-pw-1");
    let ops: amsu_core::ServerAddr = url.parse().unwrap();
    let privilege_findings = || async {
        let findings = report(&ops, Some(&r)).await;
        findings
            .into_iter()
            .filter(|f| f.code == "missing_privilege")
            .collect::<Vec<_>>()
    };
    let found = privilege_findings().await;
    assert!(found.is_empty(), "{found:#?}");
    let replica_url = p.replica.url();
    assert_eq!(
        amsu(&["check", "--master", &url, "--replica", &replica_url]).await,
        0
    );

    // The role stays granted but is no longer the default: nothing is active at login.
    exec(&m, &["SET DEFAULT ROLE NONE FOR 'opsadmin'@'%'"]).await;
    let found = privilege_findings().await;
    let f = find(&found, "missing_privilege", "consistent snapshot");
    assert_eq!((f.severity, f.server), (Severity::Blocking, Role::Master));
    assert!(
        f.problem.contains("'opsadmin'@'%' lacks SELECT ON *.*")
            && f.problem.contains("RELOAD ON *.*")
            && f.problem.contains("BINLOG MONITOR or SUPER ON *.*"),
        "{}",
        f.problem
    );
    assert!(
        f.problem
            .contains("role(s) `amsu_copy` are not active at login"),
        "{}",
        f.problem
    );
    let f = find(&found, "missing_privilege", "replication_user");
    assert_eq!(f.severity, Severity::Blocking);
    assert!(f.problem.contains("CREATE USER"), "{}", f.problem);
    assert_eq!(
        amsu(&["check", "--master", &url, "--replica", &replica_url]).await,
        3
    );
}

/// Every finding of `amsu check` through the façade: with a replica the setup's checks
/// ([`amsu_backup::check_report`]), else the master's alone ([`amsu_backup::check_master`]).
async fn report(
    master: &amsu_core::ServerAddr,
    replica: Option<&amsu_core::ServerAddr>,
) -> Vec<amsu_core::Finding> {
    let events = std::sync::Arc::new(amsu_core::NoEvents);
    let report = match replica {
        Some(r) => {
            let config = amsu_backup::SetupConfig::new(master.clone(), r.clone()).without_journal();
            amsu_backup::check_report(&config, events).await
        }
        None => amsu_backup::check_master(master, None, "amsu_repl", events).await,
    };
    report.expect("check runs").findings
}
