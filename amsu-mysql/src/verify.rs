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

/// Digests by (`db.table`, key bucket); the bucket is -1 for a table digested whole.
pub type Digests = BTreeMap<(String, i64), TableDigest>;

/// How a table is digested: whole, or in buckets of its integer primary key so that a
/// difference is located to a key range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSpec {
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// Every column, in order.
    pub columns: Vec<String>,
    /// The integer primary key and its buckets, when it has one.
    pub key: Option<KeyBuckets>,
}

/// Buckets of an integer key: bucket `i` holds keys in `[low + i*width, low + (i+1)*width)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyBuckets {
    /// The key column.
    pub column: String,
    /// The smallest key.
    pub low: i128,
    /// Keys per bucket.
    pub width: i128,
}

/// Buckets per table (about).
const BUCKETS: i128 = 64;

/// The SQL that digests one table, given its column names.
pub fn digest_sql(db: &str, table: &str, columns: &[String]) -> String {
    format!(
        "SELECT -1, COUNT(*), {} FROM {}",
        row_hash_sum(columns),
        quote::qualified(db, table)
    )
}

fn row_hash_sum(columns: &[String]) -> String {
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
        "COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('|', {cols}, {nulls})), 1, 16), 16, 10) AS UNSIGNED)), 0)"
    )
}

/// The SQL that digests a table per key bucket.
pub fn bucket_sql(spec: &TableSpec, key: &KeyBuckets) -> String {
    let k = quote::ident(&key.column);
    format!(
        "SELECT FLOOR((CAST({k} AS DECIMAL(65,0)) - {}) / {}), COUNT(*), {} FROM {} GROUP BY 1",
        key.low,
        key.width,
        row_hash_sum(&spec.columns),
        quote::qualified(&spec.db, &spec.table)
    )
}

/// Lists every base table of the user databases with how to digest it (run inside the
/// master's snapshot, so key bounds are those of the snapshot).
pub async fn table_specs(s: &mut Session) -> Result<Vec<TableSpec>, MysqlError> {
    let sys = SYSTEM_DATABASES
        .iter()
        .map(|d| quote::string(d))
        .collect::<Vec<_>>()
        .join(",");
    // One statement per information_schema table, grouped here (a correlated subquery
    // per column is quadratic on a server with many tables), each bounded in time.
    let prior = s.statement_limit();
    s.limit_statements(crate::conn::metadata_limit()).await?;
    let base: std::collections::HashSet<(String, String)> = s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA NOT IN ({sys}) AND TABLE_TYPE = 'BASE TABLE'"
            ),
            "listing tables to digest",
        )
        .await?
        .iter()
        .map(pair)
        .collect();
    let mut primary: std::collections::HashMap<(String, String), Vec<String>> =
        std::collections::HashMap::new();
    for r in s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA NOT IN ({sys}) AND INDEX_NAME = 'PRIMARY'"
            ),
            "listing primary keys to digest",
        )
        .await?
    {
        let col = r.as_ref(2).and_then(text).unwrap_or_default();
        primary.entry(pair(&r)).or_default().push(col);
    }
    let rows = s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE) \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN ({sys}) \
                 ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
            ),
            "listing columns to digest",
        )
        .await?;
    s.limit_statements(prior.unwrap_or_default()).await?;
    let mut specs: Vec<TableSpec> = Vec::new();
    let mut keys: Vec<Option<String>> = Vec::new();
    for r in &rows {
        let t = |i: usize| r.as_ref(i).and_then(text).unwrap_or_default();
        let (db, table, col) = (t(0), t(1), t(2));
        let id = (db, table);
        if !base.contains(&id) {
            continue;
        }
        let (db, table) = id;
        if specs.last().map(|l| (&l.db, &l.table)) != Some((&db, &table)) {
            specs.push(TableSpec {
                db: db.clone(),
                table: table.clone(),
                columns: vec![],
                key: None,
            });
            keys.push(None);
        }
        let integer = matches!(
            t(3).as_str(),
            "tinyint" | "smallint" | "mediumint" | "int" | "bigint"
        );
        // The key is a primary key of one integer column.
        let pk = primary.get(&(db, table));
        if pk.is_some_and(|k| k.len() == 1 && k[0] == col) && integer {
            *keys.last_mut().expect("pushed") = Some(col.clone());
        }
        specs.last_mut().expect("pushed").columns.push(col);
    }
    for (spec, key) in specs.iter_mut().zip(keys) {
        let Some(column) = key else { continue };
        let k = quote::ident(&column);
        let what = format!(
            "reading the key range of {}",
            quote::qualified(&spec.db, &spec.table)
        );
        let row = s
            .first_row(
                &format!(
                    "SELECT MIN({k}), MAX({k}) FROM {}",
                    quote::qualified(&spec.db, &spec.table)
                ),
                &what,
            )
            .await?
            .unwrap_or_default();
        let bound = |i: usize| {
            row.get(i)
                .and_then(|(_, v)| v.as_deref())
                .and_then(|v| v.parse::<i128>().ok())
        };
        if let (Some(lo), Some(hi)) = (bound(0), bound(1)) {
            spec.key = Some(KeyBuckets {
                column,
                low: lo,
                width: ((hi - lo + 1) + BUCKETS - 1) / BUCKETS,
            });
        }
    }
    Ok(specs)
}

/// (schema, table) of the first two columns of a row.
fn pair(r: &mysql_async::Row) -> (String, String) {
    let t = |i: usize| r.as_ref(i).and_then(text).unwrap_or_default();
    (t(0), t(1))
}

/// Digests the tables of `specs` on this session (inside whatever transaction it has).
pub async fn digests(s: &mut Session, specs: &[TableSpec]) -> Result<Digests, MysqlError> {
    let mut out = Digests::new();
    for spec in specs {
        let name = format!("{}.{}", spec.db, spec.table);
        let sql = match &spec.key {
            Some(k) => bucket_sql(spec, k),
            None => digest_sql(&spec.db, &spec.table, &spec.columns),
        };
        let what = format!("digesting {}", quote::qualified(&spec.db, &spec.table));
        for r in s.rows(&sql, &what).await? {
            let num = |i: usize| {
                r.as_ref(i)
                    .and_then(text)
                    .and_then(|v| v.parse::<f64>().ok())
            };
            let bucket = num(0).unwrap_or(-1.0) as i64;
            let rows = num(1).unwrap_or(0.0) as u64;
            let hash = r
                .as_ref(2)
                .and_then(text)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if rows > 0 || spec.key.is_none() {
                out.insert((name.clone(), bucket), TableDigest { rows, hash });
            }
        }
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
    // Already there (an idle master): `START … UNTIL` a position the SQL thread has
    // reached would only stop after the next event, which may never come.
    let row = s
        .first_row(d.show_replica_status(), "reading the replication status")
        .await?
        .unwrap_or_default();
    let st = parse_replica_status(&row);
    if st.exec_file == at.file && st.exec_position >= at.position {
        return Ok(());
    }
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
        // The SQL thread checks UNTIL before each next event, so once it has executed
        // up to `at` it never goes past it; it may just wait for an event that an idle
        // master never sends. Stop it there.
        if st.exec_file == at.file && st.exec_position >= at.position {
            if st.sql_running {
                s.exec("STOP SLAVE SQL_THREAD", "stopping the SQL thread")
                    .await?;
            }
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

/// One table (or key range of one) that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `db.table`.
    pub table: String,
    /// The key range `[from, to)` of the primary key, when the table is digested in ranges.
    pub key_range: Option<(String, i128, i128)>,
    /// The master's digest (`None`: no rows there).
    pub master: Option<TableDigest>,
    /// The replica's digest (`None`: no rows there).
    pub replica: Option<TableDigest>,
}

/// Compares two sets of digests, locating differences to key ranges where `specs` has
/// buckets.
pub fn compare(specs: &[TableSpec], master: &Digests, replica: &Digests) -> Vec<Difference> {
    let mut keys: Vec<&(String, i64)> = master.keys().chain(replica.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (m, r) = (master.get(k).copied(), replica.get(k).copied());
            if m == r {
                return None;
            }
            let key_range = specs
                .iter()
                .find(|s| format!("{}.{}", s.db, s.table) == k.0)
                .and_then(|s| s.key.as_ref())
                .filter(|_| k.1 >= 0)
                .map(|b| {
                    let from = b.low + k.1 as i128 * b.width;
                    (b.column.clone(), from, from + b.width)
                });
            Some(Difference {
                table: k.0.clone(),
                key_range,
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
        let specs = table_specs(&mut m).await?;
        let (md, rd) = tokio::join!(digests(&mut m, &specs), digests(&mut r, &specs));
        let (md, rd) = (md?, rd?);
        let _ = m.exec("COMMIT", "ending the snapshot").await;
        Ok(VerifyOutcome {
            tables: specs.len(),
            differences: compare(&specs, &md, &rd),
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
    fn compare_locates_differences_to_key_ranges() {
        let d = |rows, hash| TableDigest { rows, hash };
        let specs = vec![TableSpec {
            db: "a".into(),
            table: "t".into(),
            columns: vec!["id".into()],
            key: Some(KeyBuckets {
                column: "id".into(),
                low: 1,
                width: 10,
            }),
        }];
        let m: Digests = [
            (("a.t".to_string(), 0), d(10, 1)),
            (("a.t".to_string(), 1), d(10, 2)),
            (("a.u".to_string(), -1), d(3, 4)),
        ]
        .into();
        let r: Digests = [
            (("a.t".to_string(), 0), d(10, 1)),
            (("a.t".to_string(), 1), d(10, 9)),
        ]
        .into();
        let diff = compare(&specs, &m, &r);
        assert_eq!(diff.len(), 2);
        assert_eq!(diff[0].table, "a.t");
        assert_eq!(diff[0].key_range, Some(("id".into(), 11, 21)));
        assert_eq!(diff[1].table, "a.u");
        assert_eq!(diff[1].replica, None);
        assert_eq!(diff[1].key_range, None);
    }

    #[test]
    fn digest_sql_quotes_and_covers_nulls() {
        let sql = digest_sql("d b", "t`", &["a".into(), "b c".into()]);
        assert!(sql.contains("`d b`.`t```"));
        assert!(sql.contains("ISNULL(`b c`)"));
    }
}
