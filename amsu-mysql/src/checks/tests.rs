//! The decision functions of the preflight checks, on fixtures.

use super::*;
use crate::grants::parse_grants;

fn info(flavor: Flavor, version: Version, server_id: u32) -> ServerInfo {
    ServerInfo::new(flavor, version, format!("{version}"))
        .with_server_id(server_id)
        .with_log_bin(true)
        .with_binlog_format("ROW")
}

fn maria(role: Role, id: u32) -> ServerFacts {
    let mut f = ServerFacts::new(role, info(Flavor::MariaDb, Version::new(10, 11, 19), id));
    f.grants = grants("root", "localhost", MARIA_ROOT);
    f
}

fn mysql(role: Role, id: u32) -> ServerFacts {
    ServerFacts::new(role, info(Flavor::MySql, Version::new(8, 0, 36), id))
}

const MARIA_ROOT: &[&str] =
    &["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket WITH GRANT OPTION"];

fn grants(user: &str, host: &str, lines: &[&str]) -> AccountGrants {
    AccountGrants {
        user: user.into(),
        host: host.into(),
        grants: Some(parse_grants(lines).unwrap()),
        unparsed: 0,
        active_roles: None,
    }
}

fn vars(f: &mut ServerFacts, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        f.variables.insert(k.to_string(), v.to_string());
    }
}

fn table(db: &str, name: &str, engine: &str, bytes: u64, pk: bool) -> TableFacts {
    TableFacts {
        db: db.into(),
        name: name.into(),
        engine: engine.into(),
        bytes,
        avg_row_length: 100,
        has_primary_key: pk,
    }
}

fn facts(master: ServerFacts, replica: Option<ServerFacts>) -> Facts {
    Facts {
        master,
        admin: None,
        replica,
        data: DataFacts {
            accounts: Some(vec![("root".into(), "localhost".into())]),
            ..DataFacts::default()
        },
        repl_user: ReplUserFacts {
            name: "amsu_repl".into(),
            accounts: Some(vec![]),
        },
        replica_disk: DiskSpace::NoReplica,
    }
}

fn codes(f: &[Finding]) -> Vec<(&str, Severity)> {
    f.iter().map(|f| (f.code.as_str(), f.severity)).collect()
}

// --- privileges ------------------------------------------------------------------------

#[test]
fn root_everywhere_has_every_privilege() {
    let f = facts(maria(Role::Master, 1), Some(maria(Role::Replica, 2)));
    assert!(privilege_findings(&f, &CheckOptions::default()).is_empty());
}

#[test]
fn limited_master_user_lacks_reload_and_binlog_monitor_for_the_snapshot() {
    let mut m = maria(Role::Master, 1);
    m.grants = grants(
        "dump",
        "%",
        &["GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, PROCESS ON *.* TO `dump`@`%`"],
    );
    let f = privilege_findings(&facts(m, None), &CheckOptions::default());
    // Snapshot (RELOAD, BINLOG MONITOR for its coordinates), and creating the
    // replication user (CREATE USER, REPLICATION SLAVE WITH GRANT OPTION).
    assert_eq!(f.len(), 2, "{f:#?}");
    assert!(f.iter().all(|f| f.code == "missing_privilege"
        && f.severity == Severity::Blocking
        && f.server == Role::Master));
    let snap = f
        .iter()
        .find(|f| f.problem.contains("consistent snapshot"))
        .unwrap();
    assert!(snap.problem.contains("RELOAD ON *.*"), "{}", snap.problem);
    assert!(
        snap.problem.contains("BINLOG MONITOR or SUPER"),
        "{}",
        snap.problem
    );
    assert!(snap.problem.contains("'dump'@'%'"), "{}", snap.problem);
    assert_eq!(
        snap.fix,
        "as an administrator on the master: GRANT RELOAD, BINLOG MONITOR ON *.* TO 'dump'@'%';"
    );
    let create = f
        .iter()
        .find(|f| f.problem.contains("replication_user"))
        .unwrap();
    assert!(
        create
            .fix
            .contains("GRANT REPLICATION SLAVE ON *.* TO 'dump'@'%' WITH GRANT OPTION;"),
        "{}",
        create.fix
    );
    assert!(
        create.fix.contains("GRANT CREATE USER ON `mysql`.*"),
        "{}",
        create.fix
    );
}

#[test]
fn admin_account_is_checked_for_creating_the_user_and_existing_user_needs_nothing() {
    let mut m = maria(Role::Master, 1);
    m.grants = grants(
        "dump",
        "%",
        &["GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, PROCESS, RELOAD, BINLOG MONITOR ON *.* TO `dump`@`%`"],
    );
    let mut f = facts(m, None);
    f.admin = Some(grants("adm", "localhost", MARIA_ROOT));
    assert!(privilege_findings(&f, &CheckOptions::default()).is_empty());
    f.admin = Some(grants(
        "adm",
        "localhost",
        &["GRANT CREATE USER ON *.* TO `adm`@`localhost`"],
    ));
    let out = privilege_findings(&f, &CheckOptions::default());
    assert_eq!(out.len(), 1);
    assert!(out[0]
        .problem
        .contains("master admin account 'adm'@'localhost'"));
    // The user exists already: nothing to create.
    f.repl_user.accounts = Some(vec![("%".into(), "mysql_native_password".into())]);
    assert!(privilege_findings(&f, &CheckOptions::default()).is_empty());
}

#[test]
fn replica_user_without_super_is_refused_per_step() {
    let mut r = maria(Role::Replica, 2);
    r.grants = grants(
        "loader",
        "%",
        &["GRANT SELECT, INSERT, CREATE, ALTER, INDEX, CREATE VIEW, CREATE ROUTINE, TRIGGER, EVENT, SHOW DATABASES ON *.* TO `loader`@`%`"],
    );
    let out = privilege_findings(
        &facts(maria(Role::Master, 1), Some(r)),
        &CheckOptions::default(),
    );
    assert!(out
        .iter()
        .all(|f| f.server == Role::Replica && f.code == "missing_privilege"));
    let steps: Vec<&str> = out
        .iter()
        .map(|f| f.problem.rsplit("needed by step ").next().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "replica_checks",
            "configure_replica",
            "copy_data (restore)",
            "copy_data (accounts)",
            "change_master",
            "start_replica"
        ]
    );
    assert!(out[0].problem.contains("SLAVE MONITOR or SUPER"));
    assert!(
        out[1].fix.contains("GRANT SUPER, READ_ONLY ADMIN ON *.*"),
        "{}",
        out[1].fix
    );
}

#[test]
fn the_snapshot_method_decides_the_master_needs() {
    let mut m = maria(Role::Master, 1);
    m.grants = grants(
        "dump",
        "%",
        &["GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, PROCESS, RELOAD, BINLOG MONITOR ON *.* TO `dump`@`%`"],
    );
    let mut f = facts(m, None);
    f.repl_user.accounts = Some(vec![("%".into(), String::new())]);
    assert!(privilege_findings(&f, &CheckOptions::default()).is_empty());
    let outfile = CheckOptions {
        snapshot: StepKind::OutfileSnapshot,
        ..CheckOptions::default()
    };
    let out = privilege_findings(&f, &outfile);
    assert_eq!(out.len(), 1);
    assert!(out[0].problem.contains("FILE ON *.*"), "{}", out[0].problem);
    let physical = CheckOptions {
        snapshot: StepKind::PhysicalBackup,
        ..CheckOptions::default()
    };
    let out = privilege_findings(&f, &physical);
    assert!(
        out[0].problem.contains("LOCK TABLES ON *.*"),
        "{}",
        out[0].problem
    );
}

#[test]
fn role_holders_get_a_warning_and_unreadable_grants_an_info() {
    let mut m = maria(Role::Master, 1);
    m.grants = grants("dump", "%", &["GRANT `backup_role` TO `dump`@`%`"]);
    // Which roles are active is unknown and the role's lines are missing: a warning.
    let out = privilege_findings(&facts(m.clone(), None), &CheckOptions::default());
    assert!(
        out.iter().all(|f| f.severity == Severity::Warning),
        "{out:#?}"
    );
    assert!(
        out[0]
            .problem
            .contains("the privileges of its role(s) `backup_role` could not be read"),
        "{}",
        out[0].problem
    );
    m.grants.grants = None;
    let out = privilege_findings(&facts(m, None), &CheckOptions::default());
    assert_eq!(
        codes(&out),
        [
            ("grants_unknown", Severity::Info),
            ("grants_unknown", Severity::Info)
        ]
    );
}

/// Privileges through a default role (and a role granted to it) count; the same role
/// not active at login does not, and the blocking finding says why.
#[test]
fn privileges_through_roles_count_only_when_active() {
    let lines = [
        "GRANT `backup_role` TO `dump`@`%`",
        "GRANT USAGE ON *.* TO `dump`@`%`",
        "GRANT `binlog_role` TO `backup_role`",
        "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, PROCESS, RELOAD ON *.* TO `backup_role`",
        "GRANT BINLOG MONITOR, CREATE USER ON *.* TO `binlog_role`",
        "GRANT REPLICATION SLAVE ON *.* TO `binlog_role` WITH GRANT OPTION",
        "SET DEFAULT ROLE `backup_role` FOR `dump`@`%`",
    ];
    let mut m = maria(Role::Master, 1);
    m.grants = grants("dump", "%", &lines);
    let master_findings = |m: &ServerFacts| {
        privilege_findings(&facts(m.clone(), None), &CheckOptions::default())
            .into_iter()
            .filter(|f| f.server == Role::Master)
            .collect::<Vec<_>>()
    };
    assert!(master_findings(&m).is_empty(), "{:#?}", master_findings(&m));
    m.grants.active_roles = Some(vec![Account::role("backup_role")]);
    assert!(master_findings(&m).is_empty());

    // No default role: CURRENT_ROLE() is NULL at login.
    m.grants = grants("dump", "%", &lines[..6]);
    m.grants.active_roles = Some(vec![]);
    let out = master_findings(&m);
    assert!(!out.is_empty());
    let f = out
        .iter()
        .find(|f| f.problem.contains("consistent snapshot"))
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert_eq!(f.severity, Severity::Blocking);
    assert!(f.problem.contains("RELOAD ON *.*"), "{}", f.problem);
    assert!(
        f.problem
            .contains("role(s) `backup_role` are not active at login"),
        "{}",
        f.problem
    );
    assert!(
        f.fix.contains("RELOAD, PROCESS, BINLOG MONITOR ON *.*"),
        "{}",
        f.fix
    );
}

#[test]
fn protect_binlogs_needs_binlog_admin() {
    let mut m = maria(Role::Master, 1);
    vars(&mut m, &[("binlog_expire_logs_seconds", "1")]);
    m.grants = grants(
        "dump",
        "%",
        &["GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, PROCESS, RELOAD, BINLOG MONITOR ON *.* TO `dump`@`%`"],
    );
    let mut f = facts(m, None);
    f.repl_user.accounts = Some(vec![("%".into(), String::new())]);
    let opts = CheckOptions {
        protect_binlogs: true,
        ..CheckOptions::default()
    };
    let out = privilege_findings(&f, &opts);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].fix.contains("GRANT BINLOG ADMIN ON *.*"),
        "{}",
        out[0].fix
    );
    assert!(privilege_findings(&f, &CheckOptions::default()).is_empty());
}

// --- binary log retention ----------------------------------------------------------------

#[test]
fn retention_from_either_variable_zero_is_forever() {
    let mut v = BTreeMap::new();
    assert_eq!(binlog_retention_secs(&v), None);
    v.insert("expire_logs_days".into(), "0.500000".into());
    assert_eq!(binlog_retention_secs(&v), Some(43200));
    v.insert("binlog_expire_logs_seconds".into(), "0".into());
    assert_eq!(binlog_retention_secs(&v), Some(43200));
    v.insert("binlog_expire_logs_seconds".into(), "7200".into());
    assert_eq!(binlog_retention_secs(&v), Some(7200));
    v.insert("binlog_expire_logs_seconds".into(), "0".into());
    v.insert("expire_logs_days".into(), "0".into());
    assert_eq!(binlog_retention_secs(&v), None);
}

#[test]
fn estimate_uses_the_stated_rate() {
    assert_eq!(estimate_setup_secs(0), 60);
    assert_eq!(estimate_setup_secs(20 * MIB * 100), 160);
    assert_eq!(required_retention_secs(0), 3600);
    assert_eq!(required_retention_secs(20 * MIB * 3600), 2 * 3660);
}

#[test]
fn short_retention_blocks_and_names_the_oldest_binlog() {
    let mut m = maria(Role::Master, 1);
    vars(
        &mut m,
        &[
            ("binlog_expire_logs_seconds", "1"),
            ("expire_logs_days", "0.000012"),
        ],
    );
    m.binlogs = vec![
        BinlogFile {
            name: "mariadb-bin.000003".into(),
            size: MIB,
        },
        BinlogFile {
            name: "mariadb-bin.000004".into(),
            size: MIB,
        },
    ];
    let out = retention_findings(&m, 40 * MIB, false);
    assert_eq!(codes(&out), [("binlog_retention", Severity::Blocking)]);
    let p = &out[0].problem;
    assert!(p.contains("kept for 1 s"), "{p}");
    assert!(p.contains("assumed 20 MiB/s"), "{p}");
    assert!(p.contains("estimated to take 1 min 2 s"), "{p}");
    assert!(
        p.contains("oldest binary log still present is mariadb-bin.000003 (2 file(s), 2.0 MiB"),
        "{p}"
    );
    assert!(out[0].fix.contains("binlog protection"));
    assert!(out[0]
        .fix
        .contains("SET GLOBAL binlog_expire_logs_seconds = 3600"));
    assert!(out[0]
        .fix
        .contains("`binlog_expire_logs_seconds = 3600` under [mysqld]"));

    let out = retention_findings(&m, 40 * MIB, true);
    assert_eq!(codes(&out), [("binlog_retention", Severity::Info)]);
    assert!(
        out[0]
            .fix
            .contains("SET GLOBAL binlog_expire_logs_seconds = 1` afterwards"),
        "{}",
        out[0].fix
    );

    let plan = retention_plan(&m, 40 * MIB).unwrap();
    assert_eq!(
        plan.raise_sql(),
        "SET GLOBAL binlog_expire_logs_seconds = 3600"
    );
    assert_eq!(
        plan.restore_sql(),
        "SET GLOBAL binlog_expire_logs_seconds = 1"
    );
}

#[test]
fn long_or_no_retention_or_no_binlog_is_fine() {
    let mut m = maria(Role::Master, 1);
    assert!(retention_findings(&m, 100 * 1024 * MIB, false).is_empty());
    vars(&mut m, &[("binlog_expire_logs_seconds", "864000")]);
    assert!(retention_findings(&m, 100 * 1024 * MIB, false).is_empty());
    // 1 TiB at 20 MiB/s is about 14.6 h; twice that is well under 10 days.
    assert!(retention_findings(&m, 1024 * 1024 * MIB, false).is_empty());
    vars(&mut m, &[("binlog_expire_logs_seconds", "3600")]);
    assert_eq!(retention_findings(&m, 1024 * 1024 * MIB, false).len(), 1);
    m.info.log_bin = false;
    assert!(retention_findings(&m, 1024 * 1024 * MIB, false).is_empty());
}

#[test]
fn old_servers_raise_expire_logs_days() {
    let mut m = ServerFacts::new(Role::Master, info(Flavor::MySql, Version::new(5, 7, 44), 1));
    vars(&mut m, &[("expire_logs_days", "0")]);
    assert!(retention_plan(&m, 0).is_none());
    vars(&mut m, &[("expire_logs_days", "1")]);
    // 1 day is plenty for 0 bytes; 10 TiB needs more than a day.
    assert!(retention_plan(&m, 0).is_none());
    let plan = retention_plan(&m, 10 * 1024 * 1024 * MIB).unwrap();
    assert_eq!(plan.variable, "expire_logs_days");
    assert_eq!(plan.original, "1");
    assert_eq!(plan.raised, "13");
}

// --- tables ------------------------------------------------------------------------------

#[test]
fn non_transactional_and_keyless_tables_warn() {
    let out = table_findings(&[
        table("shop", "items", "InnoDB", 10 * MIB, true),
        table("shop", "conf", "MyISAM", 40 * MIB, true),
        table("shop", "cache", "MEMORY", MIB, true),
        table("shop", "log", "Aria", MIB, false),
        table("shop", "nokey", "InnoDB", MIB, false),
    ]);
    assert_eq!(
        codes(&out),
        [
            ("non_transactional_tables", Severity::Warning),
            ("no_primary_key", Severity::Warning)
        ]
    );
    let p = &out[0].problem;
    assert!(
        p.starts_with("3 non-transactional table(s) (Aria, MEMORY, MyISAM)"),
        "{p}"
    );
    assert!(p.contains("`shop`.`conf` (MyISAM, 40.0 MiB)"), "{p}");
    assert!(p.contains("commits blocked"), "{p}");
    assert!(p.contains("about 2 s longer"), "{p}");
    assert!(out[0]
        .fix
        .contains("ALTER TABLE `shop`.`conf` ENGINE=InnoDB;"));
    assert!(out[1]
        .problem
        .starts_with("2 table(s) without a primary key: `shop`.`log`, `shop`.`nokey`"));
    assert!(out[1]
        .fix
        .contains("ALTER TABLE `shop`.`log` ADD COLUMN amsu_id"));
    assert!(table_findings(&[table("a", "b", "InnoDB", 1, true)]).is_empty());
}

#[test]
fn many_tables_are_shortened() {
    let t: Vec<TableFacts> = (0..25)
        .map(|i| table("d", &format!("t{i}"), "InnoDB", 1, false))
        .collect();
    let out = table_findings(&t);
    assert!(out[0].problem.contains("and 15 more"), "{}", out[0].problem);
}

// --- max_allowed_packet ------------------------------------------------------------------

#[test]
fn a_measured_row_over_the_packet_blocks_an_estimate_warns() {
    let mut m = maria(Role::Master, 1);
    vars(&mut m, &[("max_allowed_packet", "16777216")]);
    let mut r = maria(Role::Replica, 2);
    vars(
        &mut r,
        &[
            ("max_allowed_packet", "4194304"),
            ("slave_max_allowed_packet", "1073741824"),
        ],
    );
    let row = |bytes, measured| RowSize {
        table: "`d`.`blobs`".into(),
        bytes,
        measured,
    };
    assert!(packet_findings(&m, Some(&r), &[row(MIB, true)]).is_empty());
    let out = packet_findings(&m, Some(&r), &[row(MIB, true), row(6 * MIB, true)]);
    assert_eq!(codes(&out), [("max_allowed_packet", Severity::Blocking)]);
    assert_eq!(out[0].server, Role::Replica);
    assert!(
        out[0].problem.contains("MAX(LENGTH())"),
        "{}",
        out[0].problem
    );
    assert!(out[0].problem.contains("4.0 MiB"), "{}", out[0].problem);
    assert_eq!(
        out[0].fix,
        "on the replica: SET GLOBAL max_allowed_packet = 12582912; and `max_allowed_packet = 12582912` under [mysqld] in its option file"
    );
    let out = packet_findings(&m, Some(&r), &[row(20 * MIB, false)]);
    assert_eq!(
        codes(&out),
        [
            ("max_allowed_packet", Severity::Warning),
            ("max_allowed_packet", Severity::Warning)
        ]
    );
    assert!(out[0].problem.contains("AVG_ROW_LENGTH"));
    assert!(packet_findings(&m, None, &[]).is_empty());
}

// --- semi-sync and GTID ------------------------------------------------------------------

#[test]
fn semi_sync_is_reported_for_information() {
    let mut m = maria(Role::Master, 1);
    let mut r = maria(Role::Replica, 2);
    vars(&mut m, &[("rpl_semi_sync_master_enabled", "OFF")]);
    vars(&mut r, &[("rpl_semi_sync_slave_enabled", "OFF")]);
    assert!(semi_sync_findings(&m, Some(&r)).is_empty());
    vars(
        &mut m,
        &[
            ("rpl_semi_sync_master_enabled", "ON"),
            ("rpl_semi_sync_master_timeout", "10000"),
        ],
    );
    let out = semi_sync_findings(&m, Some(&r));
    assert_eq!(codes(&out), [("semi_sync", Severity::Info)]);
    assert!(out[0].problem.contains("will not acknowledge"));
    assert!(out[0]
        .fix
        .contains("SET GLOBAL rpl_semi_sync_slave_enabled = ON"));
    vars(&mut r, &[("rpl_semi_sync_slave_enabled", "ON")]);
    assert!(semi_sync_findings(&m, Some(&r))[0]
        .problem
        .contains("will acknowledge"));
    vars(&mut m, &[("rpl_semi_sync_master_enabled", "OFF")]);
    assert_eq!(semi_sync_findings(&m, Some(&r))[0].server, Role::Replica);
}

#[test]
fn gtid_settings() {
    let mut m = maria(Role::Master, 1);
    vars(&mut m, &[("gtid_strict_mode", "OFF")]);
    assert_eq!(
        codes(&gtid_findings(&m, None)),
        [("gtid_strict_mode", Severity::Info)]
    );
    vars(&mut m, &[("gtid_strict_mode", "ON")]);
    assert!(gtid_findings(&m, None).is_empty());

    let mut mm = mysql(Role::Master, 1);
    let mut mr = mysql(Role::Replica, 2);
    vars(&mut mm, &[("gtid_mode", "ON")]);
    vars(&mut mr, &[("gtid_mode", "OFF")]);
    let out = gtid_findings(&mm, Some(&mr));
    assert_eq!(codes(&out), [("gtid_mode", Severity::Warning)]);
    vars(&mut mr, &[("gtid_mode", "ON_PERMISSIVE")]);
    assert!(gtid_findings(&mm, Some(&mr)).is_empty());
    vars(&mut mm, &[("gtid_mode", "OFF")]);
    assert_eq!(
        codes(&gtid_findings(&mm, Some(&mr))),
        [("gtid_mode", Severity::Info)]
    );
}

// --- master against replica --------------------------------------------------------------

#[test]
fn differences_between_master_and_replica_warn_with_fixes() {
    let mut m = maria(Role::Master, 1);
    let mut r = maria(Role::Replica, 2);
    let same = [
        ("lower_case_table_names", "0"),
        ("character_set_server", "utf8mb4"),
        ("collation_server", "utf8mb4_general_ci"),
        ("sql_mode", "STRICT_TRANS_TABLES"),
        ("time_zone", "SYSTEM"),
    ];
    vars(&mut m, &same);
    vars(&mut r, &same);
    m.time_zone_names = Some(0);
    r.time_zone_names = Some(0);
    assert!(consistency_findings(&m, &r).is_empty());
    vars(
        &mut r,
        &[
            ("lower_case_table_names", "1"),
            ("character_set_server", "latin1"),
            ("collation_server", "latin1_swedish_ci"),
            ("sql_mode", ""),
            ("time_zone", "+00:00"),
        ],
    );
    m.time_zone_names = Some(1800);
    let out = consistency_findings(&m, &r);
    assert_eq!(
        codes(&out),
        [
            ("lower_case_table_names", Severity::Warning),
            ("character_set_server", Severity::Warning),
            ("sql_mode", Severity::Warning),
            ("time_zone", Severity::Warning),
            ("time_zone_tables", Severity::Warning),
        ]
    );
    assert!(out[0].fix.contains("`lower_case_table_names = 0`"));
    assert!(out[1].fix.contains("SET GLOBAL character_set_server = 'utf8mb4'; SET GLOBAL collation_server = 'utf8mb4_general_ci';"));
    assert!(out[2]
        .fix
        .contains("SET GLOBAL sql_mode = 'STRICT_TRANS_TABLES';"));
    assert!(out[2]
        .fix
        .contains("`sql_mode = STRICT_TRANS_TABLES` under [mysqld]"));
    assert!(out[4].fix.contains("mariadb-tzinfo-to-sql"));
    assert!(out.iter().all(|f| f.server == Role::Replica));
}

// --- disk --------------------------------------------------------------------------------

#[test]
fn disk_space_against_data_size() {
    let free = |bytes| DiskSpace::Free {
        datadir: "/var/lib/mysql/".into(),
        bytes,
    };
    assert!(disk_findings(&free(10 * 1024 * MIB), MIB).is_empty());
    assert_eq!(
        codes(&disk_findings(&free(MIB), 2 * MIB)),
        [("disk_space", Severity::Blocking)]
    );
    assert_eq!(
        codes(&disk_findings(&free(5 * MIB / 2), 2 * MIB)),
        [("disk_space", Severity::Warning)]
    );
    let out = disk_findings(&DiskSpace::NotLocal { host: "db2".into() }, MIB);
    assert_eq!(codes(&out), [("disk_space_unknown", Severity::Info)]);
    assert!(out[0].problem.contains("db2"));
    assert!(disk_findings(&DiskSpace::NoReplica, MIB).is_empty());
}

#[test]
fn local_hosts() {
    for h in ["127.0.0.1", "localhost", "::1", "127.0.0.2", "LOCALHOST"] {
        assert!(is_local_host(h), "{h}");
    }
    for h in ["10.0.0.1", "db2.example", "::2"] {
        assert!(!is_local_host(h), "{h}");
    }
}

// --- definers ----------------------------------------------------------------------------

#[test]
fn missing_definers_warn_with_create_user() {
    let obj = |kind: &str, name: &str, definer: &str| DefinedObject {
        kind: kind.into(),
        db: "shop".into(),
        name: name.into(),
        definer: definer.into(),
    };
    let data = DataFacts {
        objects: vec![
            obj("VIEW", "v_ok", "root@localhost"),
            obj("VIEW", "v_ghost", "ghost@%"),
            obj("PROCEDURE", "p_ghost", "ghost@%"),
            obj("TRIGGER", "t_role", "app_role"),
            obj("EVENT", "e_case", "root@LOCALHOST"),
        ],
        accounts: Some(vec![("root".into(), "localhost".into())]),
        ..DataFacts::default()
    };
    let out = definer_findings(&data);
    assert_eq!(
        codes(&out),
        [
            ("missing_definer", Severity::Warning),
            ("missing_definer", Severity::Warning)
        ]
    );
    // Sorted by account: app_role (a role, no host), then ghost@%.
    assert!(
        out[0].problem.contains("DEFINER `app_role`"),
        "{}",
        out[0].problem
    );
    assert!(out[0]
        .fix
        .starts_with("on the master: CREATE ROLE `app_role`;"));
    assert!(
        out[1].problem.starts_with("2 name(s) DEFINER 'ghost'@'%'"),
        "{}",
        out[1].problem
    );
    assert!(out[1]
        .problem
        .contains("view `shop`.`v_ghost`, procedure `shop`.`p_ghost`"));
    assert!(out[1].fix.contains("CREATE USER 'ghost'@'%' ACCOUNT LOCK;"));

    let unreadable = DataFacts {
        accounts: None,
        ..data
    };
    assert_eq!(
        codes(&definer_findings(&unreadable)),
        [("not_checkable", Severity::Info)]
    );
}

// --- replication user --------------------------------------------------------------------

#[test]
fn replication_user_plugins() {
    let u = |accounts: Option<Vec<(&str, &str)>>| ReplUserFacts {
        name: "amsu_repl".into(),
        accounts: accounts.map(|a| {
            a.into_iter()
                .map(|(h, p)| (h.to_string(), p.to_string()))
                .collect()
        }),
    };
    let my = info(Flavor::MySql, Version::new(8, 0, 36), 1);
    let mut v = BTreeMap::new();
    let out = repl_user_findings(&my, &v, &u(Some(vec![("%", "caching_sha2_password")])));
    assert_eq!(codes(&out), [("repl_user_auth", Severity::Info)]);
    assert!(out[0].problem.contains("TLS"));
    assert!(repl_user_findings(&my, &v, &u(Some(vec![("%", "mysql_native_password")]))).is_empty());
    // Created with the server default.
    v.insert(
        "default_authentication_plugin".into(),
        "caching_sha2_password".into(),
    );
    assert_eq!(repl_user_findings(&my, &v, &u(Some(vec![]))).len(), 1);
    let ma = info(Flavor::MariaDb, Version::new(10, 11, 19), 1);
    assert!(repl_user_findings(&ma, &v, &u(Some(vec![("%", "mysql_native_password")]))).is_empty());
    assert!(repl_user_findings(&ma, &v, &u(Some(vec![]))).is_empty());
    let out = repl_user_findings(&ma, &v, &u(Some(vec![("%", "ed25519")])));
    assert_eq!(codes(&out), [("repl_user_auth", Severity::Info)]);
}

// --- GTID sets ---------------------------------------------------------------------------

#[test]
fn mariadb_gtid_positions() {
    let p = |t| GtidSet::parse(Flavor::MariaDb, t).unwrap();
    let master = p("0-1-100,1-5-20");
    assert!(p("0-1-100").missing_from(&master).is_empty());
    assert!(p("0-1-50,1-5-20").missing_from(&master).is_empty());
    assert!(p("").missing_from(&master).is_empty());
    assert_eq!(
        p("0-1-101,0-2-7,1-5-3").missing_from(&master),
        ["0-1-101", "0-2-7"]
    );
    assert_eq!(p("0-1-5, 0-1-9").union(&p("2-3-4")), p("0-1-9,2-3-4"));
    assert!(GtidSet::parse(Flavor::MariaDb, "0-1").is_err());
    assert!(GtidSet::parse(Flavor::MariaDb, "a-b-c").is_err());
}

#[test]
fn mysql_gtid_sets() {
    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "4e11fa47-71ca-11e1-9e33-c80aa9429562";
    let p = |t: &str| GtidSet::parse(Flavor::MySql, t).unwrap();
    let master = p(&format!("{A}:1-100:200-300,\n{B}:1-5"));
    assert!(p(&format!("{A}:1-50:250")).missing_from(&master).is_empty());
    assert_eq!(
        p(&format!("{A}:90-210:301,{B}:5-6")).missing_from(&master),
        [format!("{A}:101-199:301"), format!("{B}:6")]
    );
    assert_eq!(
        p(&format!("{}:1-3", A.to_uppercase())).union(&p(&format!("{A}:4-9"))),
        p(&format!("{A}:1-9"))
    );
    // Tagged GTIDs (MySQL 8.3+).
    assert_eq!(
        p(&format!("{A}:1-3:blue:1-2")).missing_from(&p(&format!("{A}:1-3"))),
        [format!("{A}:blue:1-2")]
    );
    assert!(GtidSet::parse(Flavor::MySql, "nope:1-2").is_err());
    assert!(GtidSet::parse(Flavor::MySql, &format!("{A}:5-2")).is_err());
}

#[test]
fn errant_transactions_block_a_replica_that_replicated_before() {
    let mut m = maria(Role::Master, 1);
    vars(
        &mut m,
        &[
            ("gtid_binlog_state", "0-1-100"),
            ("gtid_binlog_pos", "0-1-100"),
        ],
    );
    let mut r = maria(Role::Replica, 2);
    // Never replicated: its own writes are the empty-replica check's business.
    vars(
        &mut r,
        &[("gtid_binlog_state", "0-2-5"), ("gtid_slave_pos", "")],
    );
    assert!(errant_findings(&m, &r, false).is_empty());
    // Replicated from this master and nothing else.
    vars(
        &mut r,
        &[("gtid_binlog_state", ""), ("gtid_slave_pos", "0-1-90")],
    );
    assert!(errant_findings(&m, &r, false).is_empty());
    // Replicated, plus local writes.
    vars(
        &mut r,
        &[("gtid_binlog_state", "0-2-5"), ("gtid_slave_pos", "0-1-90")],
    );
    let out = errant_findings(&m, &r, false);
    assert_eq!(codes(&out), [("errant_gtids", Severity::Blocking)]);
    assert!(out[0].problem.contains("0-2-5"), "{}", out[0].problem);
    assert!(out[0].fix.contains("RESET MASTER"));
    assert_eq!(
        codes(&errant_findings(&m, &r, true)),
        [("errant_gtids", Severity::Warning)]
    );
    // A replication configuration counts as having replicated.
    vars(&mut r, &[("gtid_slave_pos", "")]);
    r.has_replication_config = true;
    assert_eq!(errant_findings(&m, &r, false).len(), 1);
    // Unreadable positions are said so.
    vars(&mut r, &[("gtid_binlog_state", "garbage")]);
    assert_eq!(
        codes(&errant_findings(&m, &r, false)),
        [("not_checkable", Severity::Info)]
    );
}

// --- all together ------------------------------------------------------------------------

#[test]
fn evaluate_collects_every_finding() {
    let mut m = maria(Role::Master, 1);
    vars(&mut m, &[("binlog_expire_logs_seconds", "1")]);
    let mut f = facts(m, Some(maria(Role::Replica, 2)));
    f.data.tables = vec![table("d", "t", "MyISAM", MIB, false)];
    let out = evaluate(&f, &CheckOptions::default());
    assert_eq!(
        codes(&out),
        [
            ("binlog_retention", Severity::Blocking),
            ("non_transactional_tables", Severity::Warning),
            ("no_primary_key", Severity::Warning),
        ]
    );
}

#[test]
fn the_disk_need_counts_small_tables_index_builds_and_logs() {
    // 100 small tables of 100 KiB each (the case where a plain sum said 10 MiB).
    let tables: Vec<_> = (0..100)
        .map(|i| table("d", &format!("t{i}"), "InnoDB", 100 * 1024, true))
        .collect();
    let need = replica_disk_need(&tables);
    assert!(
        need >= 100 * PER_TABLE_BYTES + FIXED_RESTORE_BYTES,
        "{need}"
    );
    // One large table: its data, 30 % load overhead and one more copy for sorting keys.
    let big = [table("d", "big", "InnoDB", 1000 * MIB, true)];
    assert_eq!(
        replica_disk_need(&big),
        1300 * MIB + 1000 * MIB + FIXED_RESTORE_BYTES
    );
    let free = DiskSpace::Free {
        datadir: "/var/lib/mysql/".into(),
        bytes: need - 1,
    };
    let out = disk_findings(&free, need);
    assert_eq!(codes(&out), [("disk_space", Severity::Blocking)]);
    assert!(out[0].problem.contains("needs about"), "{}", out[0].problem);
}
