//! Data comparison that cannot be fooled by a lossy conversion.
//!
//! Both servers are read at the same replication position: the master inside a
//! consistent snapshot at a known binlog position, the replica with its SQL thread
//! stopped at exactly that position. Then, per table:
//!
//! - the table must exist on both sides, with the same definition (`SHOW CREATE TABLE`,
//!   the `AUTO_INCREMENT` counter aside);
//! - its rows are digested in SQL on each server, per range of an integer primary key
//!   (whole when it has none): the row count and the sum over rows of 64 bits of the MD5
//!   of an unambiguous encoding of the row.
//!
//! The encoding (`value_expr`) keeps every distinction the column type can hold:
//! integers and DECIMAL as their exact text, FLOAT and DOUBLE as the shortest text that
//! reads back to the same double (adjacent values differ), strings and binaries as their
//! bytes (hex, or the MD5 of the bytes for the long types), temporal values with their
//! fractional seconds (TIMESTAMP as its epoch value, so no time zone folds two values),
//! BIT, INET6 and UUID as their bytes, ENUM and SET as index and text (an invalid ENUM
//! value `''`, index 0, differs from a legal `''` member), JSON and geometry (SRID and
//! WKB) as their bytes. A NULL is a marker no value can produce, and values are joined by
//! a separator no encoded value contains, so a value cannot move between columns. Rows
//! are combined by a sum, not an XOR, so that duplicate rows of a table without a key do
//! not cancel out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

use amsu_core::{Coordinates, ServerAddr};
use serde::Serialize;

use crate::conn::Session;
use crate::dialect::{parse_replica_status, Dialect};
use crate::{quote, MysqlError, SqlSession, SYSTEM_DATABASES};

/// The digest of one table or key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableDigest {
    /// Rows.
    pub rows: u64,
    /// Sum over rows of the first 64 bits of the MD5 of the row's encoding.
    pub hash: u128,
}

/// Digests by (`db.table`, key bucket); the bucket is `None` for a table digested whole.
pub(crate) type Digests = BTreeMap<(String, Option<i64>), TableDigest>;

/// A column and its type, which decides how its values are encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Name.
    pub name: String,
    /// `information_schema.COLUMNS.DATA_TYPE`, lower case (`decimal`, `double`, `enum`…).
    pub data_type: String,
}

impl Column {
    /// A column of type `data_type`.
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Column {
        Column {
            name: name.into(),
            data_type: data_type.into(),
        }
    }
}

/// How a table is digested: whole, or in buckets of its integer primary key so that a
/// difference is located to a key range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSpec {
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// The columns digested, in order.
    pub columns: Vec<Column>,
    /// The integer primary key and its buckets, when it has one.
    pub key: Option<KeyBuckets>,
}

impl TableSpec {
    /// `db.table`, as differences name it.
    pub fn name(&self) -> String {
        format!("{}.{}", self.db, self.table)
    }
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

impl KeyBuckets {
    /// The key range of bucket `i`.
    pub fn range(&self, i: i64) -> KeyRange {
        let from = self.low + i128::from(i) * self.width;
        KeyRange {
            column: self.column.clone(),
            from,
            to: from + self.width,
        }
    }
}

/// Buckets per table (about).
const BUCKETS: i128 = 64;

/// The SQL expression that encodes one value of `c` as text without losing anything its
/// type can distinguish; NULL stays NULL (the row encoding marks it). None of these
/// encodings contains `|`.
pub(crate) fn value_expr(c: &Column) -> String {
    let q = quote::ident(&c.name);
    match c.data_type.as_str() {
        // Exact decimal text.
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year"
        | "decimal" | "numeric" => q,
        // A double's text is the shortest that reads back to the same double, whatever
        // the column's display scale; a FLOAT widens to a double exactly. (FLOAT's own
        // text has 6 digits; HEX() of any number is its rounded integer.)
        "float" | "double" | "real" | "double precision" => format!("CAST({q} AS DOUBLE)"),
        // Bytes.
        "bit" | "char" | "varchar" | "binary" | "varbinary" | "inet4" | "inet6" | "uuid" => {
            format!("HEX({q})")
        }
        // The index (0: an invalid value stored as '') and the text.
        "enum" | "set" => format!("CONCAT({q} + 0, ':', HEX({q}))"),
        // With fractional seconds, as the column has them.
        "date" | "datetime" | "time" => format!("CAST({q} AS CHAR)"),
        // Seconds since the epoch, with fractional seconds: no time zone involved.
        "timestamp" => format!("UNIX_TIMESTAMP({q})"),
        // TEXT, BLOB, JSON, geometry (SRID and WKB) and anything else: the MD5 of the
        // bytes, which keeps the row's encoding short.
        _ => format!("MD5({q})"),
    }
}

/// The SQL expression of one row's 64-bit hash: the first 64 bits of the MD5 of the
/// row's values ([`value_expr`]), each prefixed `v` or, when NULL, the marker `n`, joined
/// by `|`.
pub(crate) fn row_hash(columns: &[Column]) -> String {
    let values = columns
        .iter()
        .map(|c| format!("IFNULL(CONCAT('v', {}), 'n')", value_expr(c)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("CAST(CONV(LEFT(MD5(CONCAT_WS('|', {values})), 16), 16, 10) AS UNSIGNED)")
}

fn row_hash_sum(columns: &[Column]) -> String {
    format!("COALESCE(SUM({}), 0)", row_hash(columns))
}

/// The SQL that digests a table whole: `(NULL, rows, hash)`.
pub(crate) fn digest_sql(spec: &TableSpec) -> String {
    format!(
        "SELECT NULL, COUNT(*), {} FROM {}",
        row_hash_sum(&spec.columns),
        quote::qualified(&spec.db, &spec.table)
    )
}

/// The SQL that digests a table per key bucket: `(bucket, rows, hash)` per bucket.
pub(crate) fn bucket_sql(spec: &TableSpec, key: &KeyBuckets) -> String {
    let k = quote::ident(&key.column);
    format!(
        "SELECT FLOOR((CAST({k} AS DECIMAL(65,0)) - {}) / {}), COUNT(*), {} FROM {} GROUP BY 1",
        key.low,
        key.width,
        row_hash_sum(&spec.columns),
        quote::qualified(&spec.db, &spec.table)
    )
}

/// A base table as listed by [`list_tables`]: its columns and its single-column integer
/// primary key, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableColumns {
    /// Every column, in order.
    pub columns: Vec<Column>,
    /// The primary key column, when the primary key is one integer column.
    pub integer_key: Option<String>,
}

/// Every base table of the user databases, by (`db`, `table`).
pub(crate) async fn list_tables<S: SqlSession + ?Sized>(
    s: &mut S,
) -> Result<BTreeMap<(String, String), TableColumns>, MysqlError> {
    let sys = SYSTEM_DATABASES
        .iter()
        .map(|d| quote::string(d))
        .collect::<Vec<_>>()
        .join(",");
    // Two plain queries (correlated subqueries on information_schema take seconds),
    // each bounded in time on the server.
    let prior = s.statement_limit();
    s.limit_statements(crate::conn::metadata_limit()).await?;
    let rows = s
        .rows(
            &format!(
                "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, LOWER(c.DATA_TYPE) \
                 FROM information_schema.COLUMNS c \
                 JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
                 WHERE c.TABLE_SCHEMA NOT IN ({sys}) AND t.TABLE_TYPE = 'BASE TABLE' \
                 ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
            ),
            "listing the tables and columns to compare",
        )
        .await?;
    let keys = s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE INDEX_NAME = 'PRIMARY' AND TABLE_SCHEMA NOT IN ({sys})"
            ),
            "listing the primary keys",
        )
        .await?;
    s.limit_statements(prior.unwrap_or_default()).await?;
    let mut primary: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in &keys {
        let t = |i: usize| r.text(i).unwrap_or_default();
        primary.entry((t(0), t(1))).or_default().push(t(2));
    }
    let mut out: BTreeMap<(String, String), TableColumns> = BTreeMap::new();
    for r in &rows {
        let t = |i: usize| r.text(i).unwrap_or_default();
        let (name, col, data_type) = ((t(0), t(1)), t(2), t(3));
        let integer = matches!(
            data_type.as_str(),
            "tinyint" | "smallint" | "mediumint" | "int" | "bigint"
        );
        let single_key = primary
            .get(&name)
            .is_some_and(|k| k == std::slice::from_ref(&col));
        let entry = out.entry(name).or_insert_with(|| TableColumns {
            columns: vec![],
            integer_key: None,
        });
        if single_key && integer {
            entry.integer_key = Some(col.clone());
        }
        entry.columns.push(Column::new(col, data_type));
    }
    Ok(out)
}

/// The buckets of `column` in a table, from its smallest and largest key (`None`: the
/// table is empty).
pub(crate) async fn key_buckets<S: SqlSession + ?Sized>(
    s: &mut S,
    db: &str,
    table: &str,
    column: &str,
) -> Result<Option<KeyBuckets>, MysqlError> {
    let k = quote::ident(column);
    let what = format!("reading the key range of {}", quote::qualified(db, table));
    let row = s
        .first_row(
            &format!(
                "SELECT MIN({k}), MAX({k}) FROM {}",
                quote::qualified(db, table)
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
    Ok(match (bound(0), bound(1)) {
        (Some(lo), Some(hi)) => Some(KeyBuckets {
            column: column.to_string(),
            low: lo,
            width: ((hi - lo + 1) + BUCKETS - 1) / BUCKETS,
        }),
        _ => None,
    })
}

/// Digests the tables of `specs` on this session (inside whatever transaction it has).
/// Fails when the server warns while digesting (a value it could not encode, e.g. over
/// `max_allowed_packet`, would otherwise read as NULL).
pub(crate) async fn digests<S: SqlSession + ?Sized>(
    s: &mut S,
    specs: &[TableSpec],
) -> Result<Digests, MysqlError> {
    let mut out = Digests::new();
    for spec in specs {
        let name = spec.name();
        let sql = match &spec.key {
            Some(k) => bucket_sql(spec, k),
            None => digest_sql(spec),
        };
        let what = format!("digesting {}", quote::qualified(&spec.db, &spec.table));
        let rows = s.rows(&sql, &what).await?;
        if s.warning_count() > 0 {
            let detail = match s.rows("SHOW WARNINGS", "reading the warnings").await {
                Ok(w) => w
                    .iter()
                    .map(|r| r.text(2).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => e.to_string(),
            };
            return Err(s.unexpected(
                &what,
                format!("the server warned, so the digest may not cover every row: {detail}"),
            ));
        }
        for r in rows {
            let cell = |i: usize| r.text(i);
            let bucket = cell(0).and_then(|v| v.parse::<i64>().ok());
            let rows = cell(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            let hash = cell(2).and_then(|v| v.parse().ok()).unwrap_or(0);
            if rows > 0 || spec.key.is_none() {
                out.insert((name.clone(), bucket), TableDigest { rows, hash });
            }
        }
    }
    Ok(out)
}

/// `SHOW CREATE TABLE`, without the `AUTO_INCREMENT=` counter (which is not data and may
/// legitimately differ).
pub(crate) async fn create_table<S: SqlSession + ?Sized>(
    s: &mut S,
    db: &str,
    table: &str,
) -> Result<String, MysqlError> {
    let q = quote::qualified(db, table);
    let what = format!("SHOW CREATE TABLE {q}");
    let row = s.rows(&what, &what).await?;
    let sql = row
        .first()
        .and_then(|r| r.text(1))
        .ok_or_else(|| s.unexpected(&what, "no definition".into()))?;
    Ok(without_auto_increment(&sql))
}

/// Removes the `AUTO_INCREMENT=N` table option from a `SHOW CREATE TABLE` text.
pub(crate) fn without_auto_increment(sql: &str) -> String {
    sql.lines()
        .map(|l| {
            if l.starts_with(')') {
                l.split(' ')
                    .filter(|w| !w.starts_with("AUTO_INCREMENT="))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How two definitions of a table differ (`None`: they do not), in a few words.
pub(crate) fn schema_difference(
    master: &str,
    replica: &str,
    master_columns: &[Column],
    replica_columns: &[Column],
) -> Option<String> {
    if master == replica {
        return None;
    }
    let names = |cs: &[Column]| cs.iter().map(|c| c.name.clone()).collect::<BTreeSet<_>>();
    let (m, r) = (names(master_columns), names(replica_columns));
    let list = |v: Vec<&String>| {
        v.iter()
            .map(|n| quote::ident(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let only_m: Vec<_> = m.difference(&r).collect();
    let only_r: Vec<_> = r.difference(&m).collect();
    let mut parts = vec![];
    if !only_m.is_empty() {
        parts.push(format!("columns only on the master: {}", list(only_m)));
    }
    if !only_r.is_empty() {
        parts.push(format!("columns only on the replica: {}", list(only_r)));
    }
    if parts.is_empty() {
        let (ml, rl): (Vec<_>, Vec<_>) = (master.lines().collect(), replica.lines().collect());
        let i = (0..ml.len().max(rl.len()))
            .find(|&i| ml.get(i) != rl.get(i))
            .unwrap_or(0);
        let line = |v: &[&str]| {
            v.get(i)
                .map_or("(nothing)".to_string(), |l| l.trim().to_string())
        };
        parts.push(format!("master: {:?}, replica: {:?}", line(&ml), line(&rl)));
    }
    Some(parts.join("; "))
}

/// Opens a consistent snapshot on a MariaDB master and returns the binlog position it
/// corresponds to (`binlog_snapshot_file` / `binlog_snapshot_position`, lock-free).
pub(crate) async fn snapshot_position<S: SqlSession + ?Sized>(
    s: &mut S,
) -> Result<Coordinates, MysqlError> {
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
        let name = r.text(0).unwrap_or_default();
        let value = r.text(1);
        match name.to_ascii_lowercase().as_str() {
            "binlog_snapshot_file" => file = value,
            "binlog_snapshot_position" => pos = value.and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    match (file, pos) {
        (Some(file), Some(position)) if !file.is_empty() => Ok(Coordinates::new(file, position)),
        _ => Err(s.unexpected(
            what,
            "the server does not report a snapshot position (needs MariaDB with the binary log on)"
                .into(),
        )),
    }
}

/// Stops the replica's SQL thread exactly at `at` (`START SLAVE SQL_THREAD UNTIL`), and
/// waits until it is there.
pub(crate) async fn stop_replica_at<S: SqlSession + ?Sized>(
    s: &mut S,
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
            return Err(MysqlError::timeout(
                s.server(),
                format!("the replica's SQL thread to reach {at}"),
                timeout.as_secs(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A range `[from, to)` of an integer primary key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRange {
    /// The key column.
    pub column: String,
    /// The first key of the range.
    pub from: i128,
    /// The first key after the range.
    pub to: i128,
}

impl std::fmt::Display for KeyRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} <= {} < {}",
            self.from,
            quote::ident(&self.column),
            self.to
        )
    }
}

/// What differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// The rows differ (in the key range, when there is one).
    Rows,
    /// The table's definitions differ.
    Schema,
    /// The table exists on the master only.
    OnlyOnMaster,
    /// The table exists on the replica only.
    OnlyOnReplica,
}

/// One difference: a table missing on one side, a table defined differently, or the rows
/// of a table (or of one key range of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `db.table`.
    pub table: String,
    /// What differs.
    pub kind: DifferenceKind,
    /// The key range of the primary key, when the rows differ there (`None`: the table is
    /// digested whole, or this is not a row difference).
    pub key_range: Option<KeyRange>,
    /// Rows on the master (in the range); `None` when not counted.
    pub master_rows: Option<u64>,
    /// Rows on the replica (in the range); `None` when not counted.
    pub replica_rows: Option<u64>,
    /// For a schema difference, what differs.
    pub detail: Option<String>,
}

/// Compares two sets of row digests, locating differences to key ranges where `specs`
/// has buckets.
pub fn compare(specs: &[TableSpec], master: &Digests, replica: &Digests) -> Vec<Difference> {
    let mut keys: Vec<&(String, Option<i64>)> = master.keys().chain(replica.keys()).collect();
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
                .find(|s| s.name() == k.0)
                .and_then(|s| s.key.as_ref())
                .zip(k.1)
                .map(|(b, i)| b.range(i));
            Some(Difference {
                table: k.0.clone(),
                kind: DifferenceKind::Rows,
                key_range,
                master_rows: Some(m.map_or(0, |d| d.rows)),
                replica_rows: Some(r.map_or(0, |d| d.rows)),
                detail: None,
            })
        })
        .collect()
}

/// The result of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct VerifyOutcome {
    /// Tables compared (on either side).
    pub tables: usize,
    /// Row digests compared (key ranges, and tables digested whole).
    pub ranges: usize,
    /// The master position both sides were compared at.
    pub position: Coordinates,
    /// What differs (empty: equal).
    pub differences: Vec<Difference>,
}

impl VerifyOutcome {
    /// True when nothing differs.
    pub fn equal(&self) -> bool {
        self.differences.is_empty()
    }

    /// How many tables have at least one difference.
    pub fn tables_differing(&self) -> usize {
        self.differences
            .iter()
            .map(|d| &d.table)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Proves a replica's data equal to its master's without stopping the master: stops the
/// replica's SQL thread, opens a consistent snapshot on the master at position P, lets
/// the replica apply exactly up to P, compares the tables and their definitions, digests
/// every table on both, and restarts replication (also after an error).
pub async fn verify(
    master: &ServerAddr,
    replica: &ServerAddr,
    timeout: Duration,
) -> Result<VerifyOutcome, MysqlError> {
    let mut r = Session::open(replica).await?;
    let mut m = Session::open(master).await?;
    verify_sessions(&mut m, &mut r, timeout).await
}

/// [`verify`] over open sessions to the master `m` and the replica `r`.
pub(crate) async fn verify_sessions<M, R>(
    m: &mut M,
    r: &mut R,
    timeout: Duration,
) -> Result<VerifyOutcome, MysqlError>
where
    M: SqlSession + ?Sized,
    R: SqlSession + ?Sized,
{
    let d = r.dialect().await?;
    // Stopping the SQL thread first guarantees the replica is not past the snapshot.
    r.exec("STOP SLAVE SQL_THREAD", "stopping the SQL thread")
        .await?;
    let outcome = async {
        let position = snapshot_position(m).await?;
        stop_replica_at(r, &d, &position, timeout).await?;
        let (mt, rt) = tokio::join!(list_tables(m), list_tables(r));
        let (mt, rt) = (mt?, rt?);
        let mut differences = vec![];
        let mut specs = vec![];
        let names: BTreeSet<&(String, String)> = mt.keys().chain(rt.keys()).collect();
        for name @ (db, table) in &names {
            let full = format!("{db}.{table}");
            let (Some(mc), Some(rc)) = (mt.get(name), rt.get(name)) else {
                differences.push(Difference {
                    table: full,
                    kind: if mt.contains_key(name) {
                        DifferenceKind::OnlyOnMaster
                    } else {
                        DifferenceKind::OnlyOnReplica
                    },
                    key_range: None,
                    master_rows: None,
                    replica_rows: None,
                    detail: None,
                });
                continue;
            };
            let (ms, rs) = tokio::join!(create_table(m, db, table), create_table(r, db, table));
            if let Some(detail) = schema_difference(&ms?, &rs?, &mc.columns, &rc.columns) {
                differences.push(Difference {
                    table: full,
                    kind: DifferenceKind::Schema,
                    key_range: None,
                    master_rows: None,
                    replica_rows: None,
                    detail: Some(detail),
                });
            }
            // The rows are compared on the columns both sides have, with the same type
            // (a type that differs is a schema difference already).
            let columns: Vec<Column> = mc
                .columns
                .iter()
                .filter(|c| rc.columns.contains(c))
                .cloned()
                .collect();
            if columns.is_empty() {
                continue;
            }
            let key = match mc
                .integer_key
                .as_ref()
                .filter(|k| rc.integer_key.as_ref() == Some(*k))
            {
                Some(k) => key_buckets(m, db, table, k).await?,
                None => None,
            };
            specs.push(TableSpec {
                db: db.clone(),
                table: table.clone(),
                columns,
                key,
            });
        }
        let (md, rd) = tokio::join!(digests(m, &specs), digests(r, &specs));
        let (md, rd) = (md?, rd?);
        let _ = m.exec("COMMIT", "ending the snapshot").await;
        differences.extend(compare(&specs, &md, &rd));
        differences.sort_by(|a, b| {
            (&a.table, a.key_range.as_ref().map(|k| k.from))
                .cmp(&(&b.table, b.key_range.as_ref().map(|k| k.from)))
        });
        let ranges = md.keys().chain(rd.keys()).collect::<BTreeSet<_>>().len();
        Ok(VerifyOutcome {
            tables: names.len(),
            ranges,
            differences,
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
mod session_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TableSpec {
        TableSpec {
            db: "a".into(),
            table: "t".into(),
            columns: vec![Column::new("id", "int")],
            key: Some(KeyBuckets {
                column: "id".into(),
                low: 1,
                width: 10,
            }),
        }
    }

    #[test]
    fn compare_locates_differences_to_key_ranges() {
        let d = |rows, hash| TableDigest { rows, hash };
        let m: Digests = [
            (("a.t".to_string(), Some(0)), d(10, 1)),
            (("a.t".to_string(), Some(1)), d(10, 2)),
            (("a.u".to_string(), None), d(3, 4)),
        ]
        .into();
        let r: Digests = [
            (("a.t".to_string(), Some(0)), d(10, 1)),
            (("a.t".to_string(), Some(1)), d(10, 9)),
            // A key below the master's smallest one: bucket -1, still a range.
            (("a.t".to_string(), Some(-1)), d(1, 5)),
        ]
        .into();
        let diff = compare(&[spec()], &m, &r);
        assert_eq!(diff.len(), 3, "{diff:?}");
        assert_eq!(diff[0].table, "a.t");
        let range = |from, to| {
            Some(KeyRange {
                column: "id".into(),
                from,
                to,
            })
        };
        assert_eq!(diff[0].key_range, range(-9, 1));
        assert_eq!(
            (diff[0].master_rows, diff[0].replica_rows),
            (Some(0), Some(1))
        );
        assert_eq!(diff[1].key_range, range(11, 21));
        assert_eq!(diff[2].table, "a.u");
        assert_eq!(diff[2].replica_rows, Some(0));
        assert_eq!(diff[2].key_range, None);
        assert!(diff.iter().all(|d| d.kind == DifferenceKind::Rows));
    }

    #[test]
    fn digest_sql_quotes_and_marks_nulls() {
        let mut s = spec();
        s.db = "d b".into();
        s.table = "t`".into();
        s.columns.push(Column::new("b c", "varchar"));
        let sql = digest_sql(&s);
        assert!(sql.contains("`d b`.`t```"), "{sql}");
        assert!(
            sql.contains("IFNULL(CONCAT('v', HEX(`b c`)), 'n')"),
            "{sql}"
        );
        assert!(
            sql.contains("SUM("),
            "a sum, so duplicate rows do not cancel: {sql}"
        );
    }

    #[test]
    fn numbers_are_never_hexed() {
        for t in ["decimal", "float", "double", "int", "bigint"] {
            let e = value_expr(&Column::new("x", t));
            assert!(!e.contains("HEX"), "{t}: {e}");
        }
        assert_eq!(
            value_expr(&Column::new("x", "float")),
            "CAST(`x` AS DOUBLE)"
        );
        assert_eq!(
            value_expr(&Column::new("x", "enum")),
            "CONCAT(`x` + 0, ':', HEX(`x`))"
        );
    }

    #[test]
    fn auto_increment_counter_is_not_a_schema_difference() {
        let a = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=17 DEFAULT CHARSET=utf8mb4";
        let b = a.replace("=17", "=3");
        assert_eq!(without_auto_increment(a), without_auto_increment(&b));
        assert!(without_auto_increment(a).contains("NOT NULL AUTO_INCREMENT,"));
        assert!(!without_auto_increment(a).contains("=17"));
    }

    #[test]
    fn schema_difference_names_missing_columns_or_the_differing_line() {
        let cols = |n: &[&str]| n.iter().map(|n| Column::new(*n, "int")).collect::<Vec<_>>();
        assert_eq!(
            schema_difference("x", "x", &cols(&["a"]), &cols(&["a"])),
            None
        );
        assert_eq!(
            schema_difference("x", "y", &cols(&["a", "b"]), &cols(&["a", "c"])).as_deref(),
            Some("columns only on the master: `b`; columns only on the replica: `c`")
        );
        assert_eq!(
            schema_difference(
                "l1\n  `a` int\nl3",
                "l1\n  `a` bigint\nl3",
                &cols(&["a"]),
                &cols(&["a"])
            )
            .as_deref(),
            Some("master: \"`a` int\", replica: \"`a` bigint\"")
        );
    }
}
