//! The readers of [`verify`](super::verify) and the whole comparison, on scripted
//! sessions ([`FakeSession`]).

use super::*;
use crate::testing::FakeSession;
use amsu_core::{Flavor, Version};

fn mariadb() -> Dialect {
    Dialect::new(Flavor::MariaDb, Version::new(10, 11, 6))
}

/// Rows for [`FakeSession::answer`] from owned texts.
fn texts(rows: &[&[&str]]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|r| r.iter().map(|v| Some(v.to_string())).collect())
        .collect()
}

fn answer(s: FakeSession, pattern: &str, columns: &[&str], rows: &[&[&str]]) -> FakeSession {
    let owned = texts(rows);
    let refs: Vec<Vec<Option<&str>>> = owned
        .iter()
        .map(|r| r.iter().map(|v| v.as_deref()).collect())
        .collect();
    let refs: Vec<&[Option<&str>]> = refs.iter().map(Vec::as_slice).collect();
    s.answer(pattern, columns, &refs)
}

/// A server with the tables `columns` (`db`, `table`, `column`, `type`) and primary key
/// columns `keys` (`db`, `table`, `column`).
fn server(name: &str, columns: &[&[&str]], keys: &[&[&str]]) -> FakeSession {
    let s = FakeSession::new(format!("mysql://root@{name}:3306")).with_dialect(mariadb());
    let s = answer(
        s,
        "FROM information_schema.COLUMNS c",
        &["TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "DATA_TYPE"],
        columns,
    );
    answer(
        s,
        "information_schema.STATISTICS",
        &["TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME"],
        keys,
    )
}

const T_DEFINITION: &str = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `v` varchar(10) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=641";

/// A master at `bin.000002:500` with `app.t` (keys 1…640, in buckets of 10) and
/// `app.only_m`; its digest of `app.t` has `bucket1` as the hash of bucket 1.
fn master(bucket1: &str) -> FakeSession {
    let m = server(
        "master",
        &[
            &["app", "only_m", "x", "int"],
            &["app", "t", "id", "int"],
            &["app", "t", "v", "varchar"],
        ],
        &[&["app", "t", "id"]],
    );
    let m = answer(
        m,
        "SHOW STATUS LIKE 'binlog_snapshot_%'",
        &["Variable_name", "Value"],
        &[
            &["binlog_snapshot_file", "bin.000002"],
            &["binlog_snapshot_position", "500"],
        ],
    );
    let m = answer(
        m,
        "SHOW CREATE TABLE `app`.`t`",
        &["Table", "Create Table"],
        &[&["t", T_DEFINITION]],
    );
    let m = answer(
        m,
        "SELECT MIN(`id`), MAX(`id`)",
        &["min", "max"],
        &[&["1", "640"]],
    );
    answer(
        m,
        "FROM `app`.`t` GROUP BY 1",
        &["bucket", "rows", "hash"],
        &[&["0", "10", "111"], &["1", "10", bucket1]],
    )
}

/// A replica that has applied the master up to `bin.000002:500`, with `app.t` (digest
/// hashes 111 and 222) and `app.only_r`.
fn replica() -> FakeSession {
    let r = server(
        "replica",
        &[
            &["app", "only_r", "y", "int"],
            &["app", "t", "id", "int"],
            &["app", "t", "v", "varchar"],
        ],
        &[&["app", "t", "id"]],
    );
    let r = answer(
        r,
        "SHOW SLAVE STATUS",
        &[
            "Relay_Master_Log_File",
            "Exec_Master_Log_Pos",
            "Slave_SQL_Running",
        ],
        &[&["bin.000002", "500", "No"]],
    );
    let r = answer(
        r,
        "SHOW CREATE TABLE `app`.`t`",
        &["Table", "Create Table"],
        &[&["t", &T_DEFINITION.replace("=641", "=17")]],
    );
    answer(
        r,
        "FROM `app`.`t` GROUP BY 1",
        &["bucket", "rows", "hash"],
        &[&["0", "10", "111"], &["1", "10", "222"]],
    )
}

/// [`master`] with only `app.t`.
fn master_only_t() -> FakeSession {
    let mut m = master("222");
    m.answer_once(
        "FROM information_schema.COLUMNS c",
        &["TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "DATA_TYPE"],
        &[
            &[Some("app"), Some("t"), Some("id"), Some("int")],
            &[Some("app"), Some("t"), Some("v"), Some("varchar")],
        ],
    );
    m
}

/// [`replica`] with only `app.t`.
fn replica_only_t() -> FakeSession {
    let mut r = replica();
    r.answer_once(
        "FROM information_schema.COLUMNS c",
        &["TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "DATA_TYPE"],
        &[
            &[Some("app"), Some("t"), Some("id"), Some("int")],
            &[Some("app"), Some("t"), Some("v"), Some("varchar")],
        ],
    );
    r
}

fn position(s: &FakeSession, sql: &str) -> usize {
    s.executed()
        .iter()
        .position(|q| q == sql)
        .unwrap_or_else(|| panic!("{sql} not sent: {:?}", s.executed()))
}

#[tokio::test]
async fn equal_servers_verify_equal_and_replication_restarts() {
    let (mut m, mut r) = (master_only_t(), replica_only_t());
    let out = verify_sessions(&mut m, &mut r, Duration::from_secs(5))
        .await
        .unwrap();
    // The AUTO_INCREMENT counters differ: not a difference.
    assert!(out.equal(), "{:?}", out.differences);
    assert_eq!((out.tables, out.ranges), (1, 2));
    assert_eq!(out.position, Coordinates::new("bin.000002", 500));
    // The master is read inside its snapshot, which ends at the end.
    assert!(
        position(&m, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
            < position(&m, "SHOW STATUS LIKE 'binlog_snapshot_%'")
    );
    assert_eq!(m.executed().last().map(String::as_str), Some("COMMIT"));
    // The replica's SQL thread stops first and replication restarts last.
    assert_eq!(
        r.executed().first().map(String::as_str),
        Some("STOP SLAVE SQL_THREAD")
    );
    assert_eq!(r.executed().last().map(String::as_str), Some("START SLAVE"));
    // The catalog is read under the metadata bound, lifted for the digests.
    for s in [&m, &r] {
        let bound = format!(
            "SET SESSION max_statement_time = {:.3}",
            crate::conn::metadata_limit().as_secs_f64()
        );
        let lifted = "SET SESSION max_statement_time = 0.000";
        let columns = s
            .executed()
            .iter()
            .position(|q| q.contains("information_schema.COLUMNS"))
            .unwrap();
        assert!(position(s, &bound) < columns && columns < position(s, lifted));
        assert_eq!(s.statement_limit(), None);
    }
}

#[tokio::test]
async fn differences_are_located_to_tables_and_key_ranges() {
    let (mut m, mut r) = (master("999"), replica());
    let out = verify_sessions(&mut m, &mut r, Duration::from_secs(5))
        .await
        .unwrap();
    type Found<'a> = (&'a str, DifferenceKind, Option<(i128, i128)>);
    let found: Vec<Found> = out
        .differences
        .iter()
        .map(|d| {
            (
                d.table.as_str(),
                d.kind,
                d.key_range.as_ref().map(|k| (k.from, k.to)),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("app.only_m", DifferenceKind::OnlyOnMaster, None),
            ("app.only_r", DifferenceKind::OnlyOnReplica, None),
            ("app.t", DifferenceKind::Rows, Some((11, 21))),
        ]
    );
    assert_eq!(out.tables_differing(), 3);
    assert_eq!(
        (
            out.differences[2].master_rows,
            out.differences[2].replica_rows
        ),
        (Some(10), Some(10))
    );
    // Tables on one side only are neither described nor digested.
    assert!(!m.executed().iter().any(|q| q.contains("only_m")));
    assert!(!r.executed().iter().any(|q| q.contains("only_r")));
}

#[tokio::test]
async fn a_digest_the_server_warned_about_fails_and_replication_still_restarts() {
    let m = master_only_t().warns("FROM `app`.`t` GROUP BY", 1);
    let mut m = answer(
        m,
        "SHOW WARNINGS",
        &["Level", "Code", "Message"],
        &[&[
            "Warning",
            "1301",
            "Result of concat() was larger than max_allowed_packet",
        ]],
    );
    let mut r = replica_only_t();
    let e = verify_sessions(&mut m, &mut r, Duration::from_secs(5))
        .await
        .unwrap_err();
    let e = e.to_string();
    assert!(e.contains("the server warned"), "{e}");
    assert!(e.contains("larger than max_allowed_packet"), "{e}");
    assert_eq!(r.executed().last().map(String::as_str), Some("START SLAVE"));
}

const STATUS: &[&str] = &[
    "Relay_Master_Log_File",
    "Exec_Master_Log_Pos",
    "Slave_SQL_Running",
    "Last_SQL_Error",
];

#[tokio::test]
async fn a_replica_behind_the_snapshot_is_stopped_exactly_there() {
    let mut r = answer(
        FakeSession::new("replica"),
        "SHOW SLAVE STATUS",
        STATUS,
        &[&["bin.000002", "500", "Yes", ""]],
    );
    r.answer_once(
        "SHOW SLAVE STATUS",
        STATUS,
        &[&[Some("bin.000002"), Some("300"), Some("No"), Some("")]],
    );
    r.answer_once(
        "SHOW SLAVE STATUS",
        STATUS,
        &[&[Some("bin.000002"), Some("400"), Some("Yes"), Some("")]],
    );
    let at = Coordinates::new("bin.000002", 500);
    stop_replica_at(&mut r, &mariadb(), &at, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        r.executed(),
        [
            "STOP SLAVE SQL_THREAD",
            "SHOW SLAVE STATUS",
            "START SLAVE SQL_THREAD UNTIL MASTER_LOG_FILE = 'bin.000002', MASTER_LOG_POS = 500",
            "SHOW SLAVE STATUS",
            "SHOW SLAVE STATUS",
            "STOP SLAVE SQL_THREAD",
        ]
    );
}

#[tokio::test]
async fn an_sql_error_while_catching_up_is_reported() {
    let mut r = answer(
        FakeSession::new("replica"),
        "SHOW SLAVE STATUS",
        STATUS,
        &[&[
            "bin.000002",
            "300",
            "No",
            "Duplicate entry '7' for key 'PRIMARY'",
        ]],
    );
    let at = Coordinates::new("bin.000002", 500);
    let e = stop_replica_at(&mut r, &mariadb(), &at, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Last_SQL_Error: Duplicate entry '7' for key 'PRIMARY'"),
        "{e}"
    );
}

#[tokio::test]
async fn only_a_single_integer_primary_key_buckets_a_table() {
    let mut s = server(
        "s",
        &[
            &["a", "c", "a", "int"],
            &["a", "c", "b", "int"],
            &["a", "k", "id", "bigint"],
            &["a", "n", "x", "int"],
            &["a", "s", "code", "varchar"],
        ],
        &[
            &["a", "c", "a"],
            &["a", "c", "b"],
            &["a", "k", "id"],
            &["a", "s", "code"],
        ],
    );
    s.limit_statements(Duration::from_secs(5)).await.unwrap();
    let t = list_tables(&mut s).await.unwrap();
    let keys: Vec<(&str, Option<&str>, usize)> = t
        .iter()
        .map(|((_, n), c)| (n.as_str(), c.integer_key.as_deref(), c.columns.len()))
        .collect();
    assert_eq!(
        keys,
        [
            ("c", None, 2),
            ("k", Some("id"), 1),
            ("n", None, 1),
            ("s", None, 1)
        ]
    );
    // The session's own bound is back.
    assert_eq!(s.statement_limit(), Some(Duration::from_secs(5)));
    assert_eq!(
        s.executed().last().map(String::as_str),
        Some("SET SESSION max_statement_time = 5.000")
    );
}

#[tokio::test]
async fn a_table_without_a_definition_or_a_master_without_a_snapshot_position_fails() {
    let mut s = answer(
        FakeSession::new("s"),
        "SHOW CREATE TABLE",
        &["Table", "Create Table"],
        &[],
    );
    let e = create_table(&mut s, "a", "t").await.unwrap_err();
    assert!(e.to_string().contains("no definition"), "{e}");

    let mut s = answer(
        FakeSession::new("s"),
        "SHOW STATUS LIKE",
        &["Variable_name", "Value"],
        &[
            &["binlog_snapshot_file", ""],
            &["binlog_snapshot_position", "0"],
        ],
    );
    let e = snapshot_position(&mut s).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("does not report a snapshot position"),
        "{e}"
    );
}
