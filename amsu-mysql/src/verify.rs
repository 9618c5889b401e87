//! Data comparison: a digest per table (row count and a 64-bit XOR of row hashes),
//! computed on the master inside a consistent snapshot at a known binlog position and on
//! the replica with its SQL thread stopped at exactly that position.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use amsu_core::{Coordinates, ServerAddr};
use serde::Serialize;

use crate::conn::{text, Session};
use crate::dialect::{parse_replica_status, Dialect};
use crate::{quote, MysqlError, SYSTEM_DATABASES};

/// The digest of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableDigest {
    /// Rows.
    pub rows: u64,
    /// XOR over rows of the first 64 bits of MD5 of the row's values.
    pub hash: u64,
}

/// Digests of every user table, by `db`.`table`.
pub type Digests = BTreeMap<String, TableDigest>;

/// The SQL that digests one table, given its column names.
pub fn digest_sql(db: &str, table: &str, columns: &[String]) -> String {
    let cols = columns
        .iter()
        .map(|c| format!("HEX({})", quote::ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let nulls = columns
        .iter()
        .map(|c| format!("ISNULL({})", quote::ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('|', {cols}, {nulls})), 1, 16), 16, 10) AS UNSIGNED)), 0) FROM {}",
        quote::qualified(db, table)
    )
}

/// Digests every base table of the user databases on this session (inside whatever
/// transaction the session has open).
pub async fn digests(s: &mut Session) -> Result<Digests, MysqlError> {
    let sys = SYSTEM_DATABASES
        .iter()
        .map(|d| quote::string(d))
        .collect::<Vec<_>>()
        .join(",");
    let rows = s
        .rows(
            &format!(
                "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME FROM information_schema.COLUMNS c \
                 JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
                 WHERE c.TABLE_SCHEMA NOT IN ({sys}) AND t.TABLE_TYPE = 'BASE TABLE' \
                 ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
            ),
            "listing columns to digest",
        )
        .await?;
    let mut tables: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in &rows {
        let t = |i: usize| r.as_ref(i).and_then(text).unwrap_or_default();
        tables.entry((t(0), t(1))).or_default().push(t(2));
    }
    let mut out = Digests::new();
    for ((db, table), cols) in tables {
        let sql = digest_sql(&db, &table, &cols);
        let what = format!("digesting {}", quote::qualified(&db, &table));
        let row = s.first_row(&sql, &what).await?.unwrap_or_default();
        let num = |i: usize| {
            row.get(i)
                .and_then(|(_, v)| v.as_deref())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        out.insert(
            format!("{}.{}", db, table),
            TableDigest {
                rows: num(0),
                hash: num(1),
            },
        );
    }
    Ok(out)
}

/// Opens a consistent snapshot on a MariaDB master and returns the binlog position it
/// corresponds to (`binlog_snapshot_file` / `binlog_snapshot_position`, lock-free).
pub async fn snapshot_position(s: &mut Session) -> Result<Coordinates, MysqlError> {
    s.exec(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "setting the isolation level",
    )
    .await?;
    s.exec(
        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
    )
    .await?;
    let what = "reading binlog_snapshot_file/position";
    let rows = s.rows("SHOW STATUS LIKE 'binlog_snapshot_%'", what).await?;
    let mut file = None;
    let mut pos = None;
    for r in &rows {
        let name = r.as_ref(0).and_then(text).unwrap_or_default();
        let value = r.as_ref(1).and_then(text);
        match name.to_ascii_lowercase().as_str() {
            "binlog_snapshot_file" => file = value,
            "binlog_snapshot_position" => pos = value.and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    match (file, pos) {
        (Some(file), Some(position)) if !file.is_empty() => Ok(Coordinates {
            file,
            position,
            gtid: None,
        }),
        _ => Err(s.unexpected(
            what,
            "the server does not report a snapshot position (needs MariaDB with the binary log on)",
        )),
    }
}

/// Stops the replica's SQL thread exactly at `at` (`START SLAVE SQL_THREAD UNTIL`), and
/// waits until it is there.
pub async fn stop_replica_at(
    s: &mut Session,
    d: &Dialect,
    at: &Coordinates,
    timeout: Duration,
) -> Result<(), MysqlError> {
    s.exec("STOP SLAVE SQL_THREAD", "stopping the SQL thread")
        .await?;
    let sql = format!(
        "START SLAVE SQL_THREAD UNTIL MASTER_LOG_FILE = {}, MASTER_LOG_POS = {}",
        quote::string(&at.file),
        at.position
    );
    s.exec(&sql, &sql).await?;
    let deadline = Instant::now() + timeout;
    loop {
        let row = s
            .first_row(d.show_replica_status(), "reading the replication status")
            .await?
            .unwrap_or_default();
        let st = parse_replica_status(&row);
        if st.exec_file == at.file && st.exec_position >= at.position && !st.sql_running {
            return Ok(());
        }
        if !st.last_sql_error.is_empty() {
            return Err(s.unexpected(
                "waiting for the SQL thread",
                format!("Last_SQL_Error: {}", st.last_sql_error),
            ));
        }
        if Instant::now() >= deadline {
            return Err(MysqlError::Timeout {
                server: s.server().into(),
                what: format!("the replica's SQL thread to reach {at}"),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One table that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `db.table`.
    pub table: String,
    /// The master's digest (`None`: missing there).
    pub master: Option<TableDigest>,
    /// The replica's digest (`None`: missing there).
    pub replica: Option<TableDigest>,
}

/// Compares two sets of digests.
pub fn compare(master: &Digests, replica: &Digests) -> Vec<Difference> {
    let mut names: Vec<&String> = master.keys().chain(replica.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| {
            let (m, r) = (master.get(n).copied(), replica.get(n).copied());
            (m != r).then(|| Difference {
                table: n.clone(),
                master: m,
                replica: r,
            })
        })
        .collect()
}

/// The result of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct VerifyOutcome {
    /// Tables compared.
    pub tables: usize,
    /// The master position both sides were compared at.
    pub position: Coordinates,
    /// Tables that differ (empty: equal).
    pub differences: Vec<Difference>,
}

/// Proves a replica's data equal to its master's without stopping the master: stops the
/// replica's SQL thread, opens a consistent snapshot on the master at position P, lets
/// the replica apply exactly up to P, digests every table on both, and restarts
/// replication (also after an error).
pub async fn verify(
    master: &ServerAddr,
    replica: &ServerAddr,
    timeout: Duration,
) -> Result<VerifyOutcome, MysqlError> {
    let mut r = Session::open(replica).await?;
    let d = crate::server::dialect(&mut r).await?;
    // Stopping the SQL thread first guarantees the replica is not past the snapshot.
    r.exec("STOP SLAVE SQL_THREAD", "stopping the SQL thread")
        .await?;
    let outcome = async {
        let mut m = Session::open(master).await?;
        let position = snapshot_position(&mut m).await?;
        stop_replica_at(&mut r, &d, &position, timeout).await?;
        let (md, rd) = tokio::join!(digests(&mut m), digests(&mut r));
        let (md, rd) = (md?, rd?);
        let _ = m.exec("COMMIT", "ending the snapshot").await;
        Ok(VerifyOutcome {
            tables: md.len().max(rd.len()),
            differences: compare(&md, &rd),
            position,
        })
    }
    .await;
    let restarted = r.exec(d.start_replica(), "restarting replication").await;
    let outcome = outcome?;
    restarted?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_lists_missing_and_changed_tables() {
        let d = |rows, hash| TableDigest { rows, hash };
        let m: Digests = [("a.t".to_string(), d(1, 2)), ("a.u".to_string(), d(3, 4))].into();
        let r: Digests = [("a.t".to_string(), d(1, 2)), ("a.v".to_string(), d(0, 0))].into();
        let diff = compare(&m, &r);
        assert_eq!(diff.len(), 2);
        assert_eq!(diff[0].table, "a.u");
        assert_eq!(diff[0].replica, None);
        assert_eq!(diff[1].master, None);
    }

    #[test]
    fn digest_sql_quotes_and_covers_nulls() {
        let sql = digest_sql("d b", "t`", &["a".into(), "b c".into()]);
        assert!(sql.contains("`d b`.`t```"));
        assert!(sql.contains("ISNULL(`b c`)"));
    }
}
