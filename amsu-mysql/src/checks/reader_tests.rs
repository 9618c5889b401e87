//! The fact readers of the preflight checks, on scripted sessions ([`FakeSession`]): what
//! a server answers (or refuses) becomes the right facts, and through `evaluate` the right
//! findings.

use super::*;
use crate::testing::FakeSession;

const MARIA_ROOT: &str = "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION";

/// A MariaDB 10.11 server `name` whose URL user is `user` (`user@host`, as
/// `CURRENT_USER()` shows it) with the grant `lines`, the global `variables` and otherwise
/// plain answers: one binary log, time zone tables loaded, not a replica, only root.
fn maria(
    name: &str,
    server_id: &str,
    user: &str,
    lines: &[&str],
    variables: &[(&str, &str)],
) -> FakeSession {
    let lines: Vec<[Option<&str>; 1]> = lines.iter().map(|l| [Some(*l)]).collect();
    let lines: Vec<&[Option<&str>]> = lines.iter().map(|l| &l[..]).collect();
    let vars: Vec<[Option<&str>; 2]> = variables
        .iter()
        .map(|(k, v)| [Some(*k), Some(*v)])
        .collect();
    let vars: Vec<&[Option<&str>]> = vars.iter().map(|v| &v[..]).collect();
    FakeSession::new(format!("mysql://{user}@{name}:3306"))
        .answer(
            "SELECT @@version",
            &[
                "version",
                "server_id",
                "log_bin",
                "binlog_format",
                "read_only",
            ],
            &[&[
                Some("10.11.6-MariaDB-log"),
                Some(server_id),
                Some("1"),
                Some("ROW"),
                Some("0"),
            ]],
        )
        .answer("SELECT CURRENT_USER()", &["u"], &[&[Some(user)]])
        .answer("SELECT CURRENT_ROLE()", &["r"], &[&[None]])
        .answer("SHOW GRANTS", &["Grants"], &lines)
        .answer("SHOW GLOBAL VARIABLES", &["Variable_name", "Value"], &vars)
        .answer(
            "SHOW BINARY LOGS",
            &["Log_name", "File_size"],
            &[&[Some("bin.000001"), Some("4096")]],
        )
        .answer("mysql.time_zone_name", &["n"], &[&[Some("1800")]])
        .answer("SHOW SLAVE STATUS", &["Master_Host"], &[])
        .answer(
            "SELECT User, Host FROM mysql.user",
            &["User", "Host"],
            &[&[Some("root"), Some("localhost")]],
        )
        .answer("SELECT Host, plugin", &["Host", "plugin"], &[])
}

fn root_master() -> FakeSession {
    maria(
        "master",
        "1",
        "root@localhost",
        &[MARIA_ROOT],
        &LONG_RETENTION,
    )
}

const LONG_RETENTION: [(&str, &str); 2] = [
    ("binlog_expire_logs_seconds", "864000"),
    ("max_allowed_packet", "67108864"),
];

/// Scripts the master's catalog: base tables `(db, name, engine, bytes, avg_row_length)`,
/// those with a primary key, large columns `(db, name, column)` and defined objects
/// `(kind, db, name, definer)`.
fn catalog(
    s: FakeSession,
    tables: &[(&str, &str, &str, u64, u64)],
    keyed: &[(&str, &str)],
    lobs: &[(&str, &str, &str)],
    objects: &[(&str, &str, &str, &str)],
) -> FakeSession {
    let tables: Vec<[String; 5]> = tables
        .iter()
        .map(|(d, n, e, b, a)| {
            [
                d.to_string(),
                n.to_string(),
                e.to_string(),
                b.to_string(),
                a.to_string(),
            ]
        })
        .collect();
    let tables: Vec<Vec<Option<&str>>> = tables
        .iter()
        .map(|t| t.iter().map(|v| Some(v.as_str())).collect())
        .collect();
    let tables: Vec<&[Option<&str>]> = tables.iter().map(Vec::as_slice).collect();
    let keyed: Vec<[Option<&str>; 2]> = keyed.iter().map(|(d, n)| [Some(*d), Some(*n)]).collect();
    let keyed: Vec<&[Option<&str>]> = keyed.iter().map(|k| &k[..]).collect();
    let lobs: Vec<[Option<&str>; 3]> = lobs
        .iter()
        .map(|(d, n, c)| [Some(*d), Some(*n), Some(*c)])
        .collect();
    let lobs: Vec<&[Option<&str>]> = lobs.iter().map(|l| &l[..]).collect();
    let objects: Vec<[Option<&str>; 4]> = objects
        .iter()
        .map(|(k, d, n, w)| [Some(*k), Some(*d), Some(*n), Some(*w)])
        .collect();
    let objects: Vec<&[Option<&str>]> = objects.iter().map(|o| &o[..]).collect();
    s.answer(
        "information_schema.TABLES WHERE",
        &[
            "TABLE_SCHEMA",
            "TABLE_NAME",
            "ENGINE",
            "BYTES",
            "AVG_ROW_LENGTH",
        ],
        &tables,
    )
    .answer(
        "information_schema.STATISTICS",
        &["TABLE_SCHEMA", "TABLE_NAME"],
        &keyed,
    )
    .answer(
        "information_schema.COLUMNS",
        &["TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME"],
        &lobs,
    )
    .answer(
        "information_schema.VIEWS",
        &["kind", "db", "name", "DEFINER"],
        &objects,
    )
}

/// What `MysqlPreflight::facts` reads, from scripted sessions (no admin account, the
/// replica's disk not examined).
async fn read(m: &mut FakeSession, r: Option<&mut FakeSession>) -> Facts {
    let master = server_facts(m, Role::Master).await.unwrap();
    let data = data_facts(m).await.unwrap();
    let repl_user = repl_user_facts(m, "amsu_repl").await.unwrap();
    let replica = match r {
        Some(r) => Some(server_facts(r, Role::Replica).await.unwrap()),
        None => None,
    };
    Facts {
        master,
        admin: None,
        replica,
        data,
        repl_user,
        replica_disk: DiskSpace::NoReplica,
    }
}

fn find<'a>(f: &'a [Finding], code: &str) -> Vec<&'a Finding> {
    f.iter().filter(|f| f.code.as_str() == code).collect()
}

// --- privileges ------------------------------------------------------------------------

#[tokio::test]
async fn root_on_a_plain_master_has_nothing_to_fix() {
    let mut m = catalog(
        root_master(),
        &[("app", "t", "InnoDB", 1000, 100)],
        &[("app", "t")],
        &[],
        &[],
    );
    let facts = read(&mut m, None).await;
    assert_eq!(facts.master.info.server_id, 1);
    assert_eq!(
        facts.master.binlogs,
        [BinlogFile {
            name: "bin.000001".into(),
            size: 4096
        }]
    );
    assert_eq!(facts.master.time_zone_names, Some(1800));
    assert_eq!(facts.repl_user.accounts, Some(vec![]));
    let f = evaluate(&facts, &CheckOptions::default());
    assert!(f.iter().all(|f| f.severity != Severity::Blocking), "{f:#?}");
    assert!(find(&f, "missing_privilege").is_empty(), "{f:#?}");
}

#[tokio::test]
async fn a_user_that_may_only_select_misses_privileges() {
    let mut m = catalog(
        maria(
            "master",
            "1",
            "reader@%",
            &["GRANT SELECT ON *.* TO `reader`@`%`"],
            &LONG_RETENTION,
        ),
        &[],
        &[],
        &[],
        &[],
    );
    let facts = read(&mut m, None).await;
    assert_eq!(
        (
            facts.master.grants.user.as_str(),
            facts.master.grants.host.as_str()
        ),
        ("reader", "%")
    );
    let f = evaluate(&facts, &CheckOptions::default());
    let missing = find(&f, "missing_privilege");
    assert!(!missing.is_empty(), "{f:#?}");
    assert!(missing.iter().all(|f| f.severity == Severity::Blocking));
    assert!(
        missing.iter().any(|f| f.problem.contains("'reader'@'%'")),
        "{missing:#?}"
    );
}

#[tokio::test]
async fn grants_that_cannot_be_read_are_reported_not_fatal() {
    let mut m = catalog(
        maria("master", "1", "u@%", &[], &LONG_RETENTION),
        &[],
        &[],
        &[],
        &[],
    );
    m.fail_once(
        "SHOW GRANTS",
        1044,
        "Access denied for user 'u'@'%' to database 'mysql'",
    );
    let facts = read(&mut m, None).await;
    assert_eq!(facts.master.grants.grants, None);
    let f = evaluate(&facts, &CheckOptions::default());
    let unknown = find(&f, "grants_unknown");
    assert!(!unknown.is_empty(), "{f:#?}");
    assert!(
        unknown.iter().all(|f| f.severity == Severity::Info),
        "{f:#?}"
    );
    assert!(
        unknown[0].problem.contains("'u'@'%'"),
        "{}",
        unknown[0].problem
    );
    assert!(find(&f, "missing_privilege").is_empty(), "{f:#?}");
}

#[tokio::test]
async fn the_active_roles_privileges_count_and_are_read_once() {
    let mut m = catalog(
        maria(
            "master",
            "1",
            "app@%",
            &[
                "GRANT USAGE ON *.* TO `app`@`%`",
                "GRANT `dba` TO `app`@`%`",
            ],
            &LONG_RETENTION,
        ),
        &[],
        &[],
        &[],
        &[],
    );
    m.answer_once("SELECT CURRENT_ROLE()", &["r"], &[&[Some("dba")]]);
    m.answer_once(
        "SHOW GRANTS FOR `dba`",
        &["Grants"],
        &[&[Some(
            "GRANT ALL PRIVILEGES ON *.* TO `dba` WITH GRANT OPTION",
        )]],
    );
    let facts = read(&mut m, None).await;
    assert_eq!(
        facts.master.grants.active_roles,
        Some(vec![crate::grants::Account::role("dba")])
    );
    let f = evaluate(&facts, &CheckOptions::default());
    assert!(find(&f, "missing_privilege").is_empty(), "{f:#?}");
    let role_reads = m
        .executed()
        .iter()
        .filter(|q| q.starts_with("SHOW GRANTS FOR"))
        .count();
    assert_eq!(role_reads, 1, "{:?}", m.executed());
}

// --- binary log retention --------------------------------------------------------------

#[tokio::test]
async fn a_retention_too_short_for_the_data_is_raised_or_refused() {
    let gib = 1024 * MIB;
    let mut m = catalog(
        maria(
            "master",
            "1",
            "root@localhost",
            &[MARIA_ROOT],
            &[("binlog_expire_logs_seconds", "600")],
        ),
        &[("app", "big", "InnoDB", 100 * gib, 100)],
        &[("app", "big")],
        &[],
        &[],
    );
    let facts = read(&mut m, None).await;
    let plan = retention_plan(&facts.master, facts.data.total_bytes()).expect("a raise");
    let need = 2 * (FIXED_OVERHEAD_SECS + 100 * gib / ASSUMED_BYTES_PER_SEC);
    assert_eq!(
        (plan.variable.as_str(), plan.original.as_str()),
        ("binlog_expire_logs_seconds", "600")
    );
    assert_eq!(plan.raised, need.to_string());
    let refused = evaluate(&facts, &CheckOptions::default());
    assert_eq!(
        find(&refused, "binlog_retention")
            .iter()
            .map(|f| f.severity)
            .collect::<Vec<_>>(),
        [Severity::Blocking],
        "{refused:#?}"
    );
    let protect = CheckOptions {
        protect_binlogs: true,
        ..CheckOptions::default()
    };
    let raised = evaluate(&facts, &protect);
    assert_eq!(
        find(&raised, "binlog_retention")
            .iter()
            .map(|f| f.severity)
            .collect::<Vec<_>>(),
        [Severity::Info],
        "{raised:#?}"
    );
}

#[tokio::test]
async fn a_server_with_only_expire_logs_days_gets_it_raised_in_days() {
    let mut m = catalog(
        maria(
            "master",
            "1",
            "root@localhost",
            &[MARIA_ROOT],
            &[("expire_logs_days", "0.01")],
        ),
        &[],
        &[],
        &[],
        &[],
    );
    let facts = read(&mut m, None).await;
    let plan = retention_plan(&facts.master, 0).expect("a raise");
    assert_eq!(
        (
            plan.variable.as_str(),
            plan.original.as_str(),
            plan.raised.as_str()
        ),
        ("expire_logs_days", "0.01", "1")
    );
}

// --- GTIDs -----------------------------------------------------------------------------

fn replica_with(gtid_binlog_state: &str, gtid_slave_pos: &str) -> FakeSession {
    maria(
        "replica",
        "2",
        "root@localhost",
        &[MARIA_ROOT],
        &[
            ("gtid_binlog_state", gtid_binlog_state),
            ("gtid_slave_pos", gtid_slave_pos),
            ("max_allowed_packet", "67108864"),
        ],
    )
}

fn master_at(gtid: &str) -> FakeSession {
    catalog(
        maria(
            "master",
            "1",
            "root@localhost",
            &[MARIA_ROOT],
            &[
                ("binlog_expire_logs_seconds", "864000"),
                ("gtid_binlog_state", gtid),
                ("max_allowed_packet", "67108864"),
            ],
        ),
        &[],
        &[],
        &[],
        &[],
    )
}

#[tokio::test]
async fn a_replica_holding_transactions_the_master_lacks_is_refused() {
    let mut m = master_at("0-1-100");
    let mut r = replica_with("0-1-90,0-2-5", "0-1-90");
    r.answer_once(
        "SHOW SLAVE STATUS",
        &["Master_Host", "Slave_IO_Running", "Slave_SQL_Running"],
        &[&[Some("old-master"), Some("No"), Some("No")]],
    );
    let facts = read(&mut m, Some(&mut r)).await;
    assert!(facts.replica.as_ref().unwrap().has_replication_config);
    let f = evaluate(&facts, &CheckOptions::default());
    let errant = find(&f, "errant_gtids");
    assert_eq!(errant.len(), 1, "{f:#?}");
    assert_eq!(errant[0].severity, Severity::Blocking);
    assert!(errant[0].problem.contains("0-2-5"), "{}", errant[0].problem);
    assert!(!errant[0].problem.contains("0-1-"), "{}", errant[0].problem);

    let forced = CheckOptions {
        force: true,
        ..CheckOptions::default()
    };
    let f = evaluate(&facts, &forced);
    assert_eq!(find(&f, "errant_gtids")[0].severity, Severity::Warning);
}

#[tokio::test]
async fn a_replica_that_never_replicated_is_not_compared() {
    // Its status cannot be read (no privilege) and it has no slave position: its own
    // writes are not errant transactions.
    let mut m = master_at("0-1-100");
    let mut r = replica_with("0-2-5", "");
    r.fail_once(
        "SHOW SLAVE STATUS",
        1227,
        "Access denied; you need the REPLICA MONITOR privilege",
    );
    let facts = read(&mut m, Some(&mut r)).await;
    assert!(!facts.replica.as_ref().unwrap().has_replication_config);
    let f = evaluate(&facts, &CheckOptions::default());
    assert!(find(&f, "errant_gtids").is_empty(), "{f:#?}");
}

#[tokio::test]
async fn a_replica_caught_up_with_its_master_has_no_errant_gtids() {
    let mut m = master_at("0-1-100");
    let mut r = replica_with("0-1-90", "0-1-90");
    let facts = read(&mut m, Some(&mut r)).await;
    let f = evaluate(&facts, &CheckOptions::default());
    assert!(find(&f, "errant_gtids").is_empty(), "{f:#?}");
}

// --- tables ----------------------------------------------------------------------------

#[tokio::test]
async fn tables_without_a_primary_key_and_myisam_tables_are_named() {
    let mut m = catalog(
        root_master(),
        &[
            ("app", "orders", "InnoDB", 1000, 100),
            ("app", "log", "InnoDB", 1000, 100),
            ("app", "legacy", "MyISAM", 5000, 100),
        ],
        &[("app", "orders"), ("app", "legacy")],
        &[],
        &[],
    );
    let facts = read(&mut m, None).await;
    let names: Vec<(&str, bool)> = facts
        .data
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.has_primary_key))
        .collect();
    // Sorted by database and name.
    assert_eq!(names, [("legacy", true), ("log", false), ("orders", true)]);
    let f = evaluate(&facts, &CheckOptions::default());
    let no_pk = find(&f, "no_primary_key");
    assert_eq!(no_pk.len(), 1, "{f:#?}");
    assert!(
        no_pk[0]
            .problem
            .contains("1 table(s) without a primary key: `app`.`log`"),
        "{}",
        no_pk[0].problem
    );
    let non_tx = find(&f, "non_transactional_tables");
    assert_eq!(non_tx.len(), 1, "{f:#?}");
    assert!(
        non_tx[0].problem.contains("`app`.`legacy` (MyISAM"),
        "{}",
        non_tx[0].problem
    );
}

// --- definers --------------------------------------------------------------------------

#[tokio::test]
async fn an_object_whose_definer_does_not_exist_is_named() {
    let mut m = catalog(
        root_master(),
        &[],
        &[],
        &[],
        &[
            ("VIEW", "app", "v", "ghost@%"),
            ("PROCEDURE", "app", "p", "root@localhost"),
        ],
    );
    let facts = read(&mut m, None).await;
    assert_eq!(facts.data.objects.len(), 2);
    let f = evaluate(&facts, &CheckOptions::default());
    let missing = find(&f, "missing_definer");
    assert_eq!(missing.len(), 1, "{f:#?}");
    assert!(
        missing[0].problem.contains("'ghost'@'%'"),
        "{}",
        missing[0].problem
    );
    assert!(
        missing[0].problem.contains("view `app`.`v`"),
        "{}",
        missing[0].problem
    );
    assert!(
        !missing[0].problem.contains("procedure"),
        "{}",
        missing[0].problem
    );
}

#[tokio::test]
async fn definers_are_not_checked_when_the_accounts_cannot_be_read() {
    let mut m = catalog(
        root_master(),
        &[],
        &[],
        &[],
        &[("VIEW", "app", "v", "ghost@%")],
    );
    // Read twice: the accounts, and the replication user.
    for _ in 0..2 {
        m.fail_once(
            "FROM mysql.user",
            1142,
            "SELECT command denied to user 'u'@'%' for table `mysql`.`user`",
        );
    }
    let facts = read(&mut m, None).await;
    assert_eq!(facts.data.accounts, None);
    assert_eq!(facts.repl_user.accounts, None);
    let f = evaluate(&facts, &CheckOptions::default());
    assert!(find(&f, "missing_definer").is_empty(), "{f:#?}");
    assert!(
        find(&f, "not_checkable")
            .iter()
            .any(|f| f.problem.contains("DEFINER")),
        "{f:#?}"
    );
}

// --- packet size -----------------------------------------------------------------------

#[tokio::test]
async fn a_measured_row_larger_than_a_packet_blocks() {
    let mut m = catalog(
        maria(
            "master",
            "1",
            "root@localhost",
            &[MARIA_ROOT],
            &[
                ("binlog_expire_logs_seconds", "864000"),
                ("max_allowed_packet", "16777216"),
            ],
        ),
        &[("app", "docs", "InnoDB", 50 * MIB, 2000)],
        &[("app", "docs")],
        &[("app", "docs", "body"), ("app", "docs", "meta")],
        &[],
    )
    .answer(
        "SELECT 0, MAX(",
        &["i", "max"],
        &[&[Some("0"), Some("20000000")]],
    );
    let facts = read(&mut m, None).await;
    assert!(
        m.executed().iter().any(|q| q
            == "SELECT 0, MAX(COALESCE(LENGTH(`body`), 0) + COALESCE(LENGTH(`meta`), 0)) FROM `app`.`docs`"),
        "{:?}",
        m.executed()
    );
    assert_eq!(
        facts.data.rows,
        [RowSize {
            table: "`app`.`docs`".into(),
            bytes: 20_000_000,
            measured: true
        }]
    );
    let f = evaluate(&facts, &CheckOptions::default());
    let packet = find(&f, "max_allowed_packet");
    assert_eq!(packet.len(), 1, "{f:#?}");
    assert_eq!(packet[0].severity, Severity::Blocking);
    assert!(
        packet[0]
            .fix
            .contains("SET GLOBAL max_allowed_packet = 40894464"),
        "{}",
        packet[0].fix
    );
}

#[tokio::test]
async fn a_table_too_big_to_scan_is_estimated_and_only_warned_about() {
    let mut m = catalog(
        maria(
            "master",
            "1",
            "root@localhost",
            &[MARIA_ROOT],
            &[
                ("binlog_expire_logs_seconds", "864000"),
                ("max_allowed_packet", "16777216"),
            ],
        ),
        &[(
            "app",
            "huge",
            "InnoDB",
            MEASURE_ROWS_UP_TO_BYTES + 1,
            20_000_000,
        )],
        &[("app", "huge")],
        &[("app", "huge", "body")],
        &[],
    );
    let facts = read(&mut m, None).await;
    assert!(
        !m.executed().iter().any(|q| q.contains("MAX(")),
        "{:?}",
        m.executed()
    );
    assert!(!facts.data.rows[0].measured);
    let f = evaluate(&facts, &CheckOptions::default());
    let packet = find(&f, "max_allowed_packet");
    assert_eq!(packet.len(), 1, "{f:#?}");
    assert_eq!(packet[0].severity, Severity::Warning);
}

#[tokio::test]
async fn a_refused_batch_is_measured_table_by_table_and_a_timeout_left_to_the_estimate() {
    let mut m = catalog(
        root_master(),
        &[
            ("app", "a", "InnoDB", MIB, 10),
            ("app", "b", "InnoDB", MIB, 20),
            ("app", "c", "InnoDB", MIB, 30),
        ],
        &[("app", "a"), ("app", "b"), ("app", "c")],
        &[("app", "a", "x"), ("app", "b", "x"), ("app", "c", "x")],
        &[],
    )
    // The batch names table b, which the user may not read.
    .fail(" UNION ALL SELECT 1, MAX(", 1142, "SELECT command denied")
    .answer(
        "SELECT 0, MAX(",
        &["i", "max"],
        &[&[Some("0"), Some("5000")]],
    )
    .fail("SELECT 1, MAX(", 1142, "SELECT command denied")
    .fail(
        "SELECT 2, MAX(",
        crate::codes::STATEMENT_TIMEOUT,
        "Query execution was interrupted (max_statement_time exceeded)",
    );
    let facts = read(&mut m, None).await;
    let measuring: Vec<&String> = m.executed().iter().filter(|q| q.contains("MAX(")).collect();
    assert_eq!(
        measuring.len(),
        4,
        "one batch, then each table: {measuring:?}"
    );
    let rows: Vec<(&str, u64, bool)> = facts
        .data
        .rows
        .iter()
        .map(|r| (r.table.as_str(), r.bytes, r.measured))
        .collect();
    assert_eq!(
        rows,
        [
            ("`app`.`a`", 5000, true),
            ("`app`.`c`", 30, false),
            ("`app`.`b`", 20, false)
        ]
    );
}

#[tokio::test]
async fn only_a_refusal_of_the_server_is_soft() {
    // The objects' query is optional (a refusal leaves them unchecked), but an answer
    // that is not a refusal still fails the checks.
    let mut m = root_master()
        .answer(
            "information_schema.TABLES WHERE",
            &["a", "b", "c", "d", "e"],
            &[],
        )
        .answer("information_schema.STATISTICS", &["a", "b"], &[])
        .answer("information_schema.COLUMNS", &["a", "b", "c"], &[]);
    let e = data_facts(&mut m).await.unwrap_err();
    assert!(e.server_code().is_none(), "{e}");
    assert!(e.to_string().contains("information_schema.VIEWS"), "{e}");

    let mut m = catalog(root_master(), &[], &[], &[], &[]);
    m.fail_once("information_schema.VIEWS", 1142, "SELECT command denied");
    let d = data_facts(&mut m).await.unwrap();
    assert!(d.objects.is_empty());
}

#[tokio::test]
async fn mysql_errant_transactions_are_named_by_source_uuid() {
    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "4f22ab58-82db-22f2-af44-d91bb0530673";
    let as_mysql = |s: &mut FakeSession, id: &str| {
        s.answer_once(
            "SELECT @@version",
            &[
                "version",
                "server_id",
                "log_bin",
                "binlog_format",
                "read_only",
            ],
            &[&[Some("8.0.36"), Some(id), Some("1"), Some("ROW"), Some("0")]],
        );
    };
    let master_gtids = format!("{A}:1-100");
    let mut m = catalog(
        maria(
            "master",
            "1",
            "root@localhost",
            &[MARIA_ROOT],
            &[
                ("binlog_expire_logs_seconds", "864000"),
                ("gtid_mode", "ON"),
                ("gtid_executed", &master_gtids),
            ],
        ),
        &[],
        &[],
        &[],
        &[],
    );
    as_mysql(&mut m, "1");
    // MySQL breaks a long set over lines.
    let replica_gtids = format!("{A}:1-90,\n{B}:1-3");
    let mut r = maria(
        "replica",
        "2",
        "root@localhost",
        &[MARIA_ROOT],
        &[("gtid_mode", "ON"), ("gtid_executed", &replica_gtids)],
    )
    .answer(
        "SHOW REPLICA STATUS",
        &["Source_Host", "Replica_IO_Running", "Replica_SQL_Running"],
        &[&[Some("old-master"), Some("No"), Some("No")]],
    );
    as_mysql(&mut r, "2");
    let facts = read(&mut m, Some(&mut r)).await;
    assert_eq!(facts.replica.as_ref().unwrap().info.flavor, Flavor::MySql);
    assert!(facts.replica.as_ref().unwrap().has_replication_config);
    let f = evaluate(&facts, &CheckOptions::default());
    let errant = find(&f, "errant_gtids");
    assert_eq!(errant.len(), 1, "{f:#?}");
    assert!(
        errant[0].problem.contains(&format!("{B}:1-3")),
        "{}",
        errant[0].problem
    );
    assert!(!errant[0].problem.contains(A), "{}", errant[0].problem);
}
