//! What a master holds: databases, tables with their columns and keys, views, routines,
//! triggers, events and accounts — read through `information_schema` and `SHOW CREATE`.

use amsu_core::Flavor;
use amsu_mysql::conn::{field, Session};
use amsu_mysql::{quote, MysqlError, SYSTEM_DATABASES};
use serde::{Deserialize, Serialize};

/// A database and its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Database {
    /// Name.
    pub name: String,
    /// `SHOW CREATE DATABASE` text.
    pub create_sql: String,
}

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Column {
    /// Name.
    pub name: String,
    /// `DATA_TYPE` (lower case): `int`, `varchar`, `bit`, `geometry`, …
    pub data_type: String,
    /// A generated (virtual or stored) column: never copied, the server computes it.
    pub generated: bool,
}

impl Column {
    /// How the column is selected on the master (an expression for types whose text
    /// form does not load back as-is).
    pub(crate) fn select_expr(&self) -> String {
        let q = quote::ident(&self.name);
        match self.data_type.as_str() {
            // ENUM and SET by number: the index of an ENUM (0 is the error value a
            // non-strict insert stores, which no text form loads back), the bit set of a SET.
            "bit" | "enum" | "set" => format!("{q} + 0"),
            // The stored bytes, escaped byte by byte: `INTO OUTFILE` escapes a text in
            // its own character set, and leaves a `\` that is the second byte of a
            // multi-byte character (sjis, cp932, gbk, big5) unescaped.
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                format!("CAST({q} AS BINARY)")
            }
            // FLOAT's own text form has 6 digits: widen to DOUBLE, whose text form is the
            // shortest that reads back exactly. The server prints -0 as 0: keep its sign.
            "float" | "double" => {
                format!("IF({q} = 0 AND ATAN2({q}, -1) < 0, '-0', CAST({q} AS DOUBLE))")
            }
            _ => q,
        }
    }

    /// The target in `LOAD DATA`'s column list and the `SET` clause that converts it, if
    /// the value needs converting on the way in.
    pub(crate) fn load_target(&self, i: usize) -> (String, Option<String>) {
        let q = quote::ident(&self.name);
        match self.data_type.as_str() {
            "bit" | "enum" | "set" => (
                format!("@c{i}"),
                Some(format!("{q} = CAST(@c{i} AS UNSIGNED)")),
            ),
            // The server stores the text -0 as +0, but a FLOAT can hold -0 (from an
            // underflow): produce it the same way.
            "float" => (
                format!("@c{i}"),
                Some(format!("{q} = IF(@c{i} = '-0', -1e-50, @c{i})")),
            ),
            // Their text form, which a binary string would not be parsed as (a binary
            // string of the right length is taken as the raw value).
            "inet4" | "inet6" | "uuid" => (
                format!("@c{i}"),
                Some(format!("{q} = CAST(@c{i} AS CHAR CHARACTER SET latin1)")),
            ),
            t if is_spatial(t) => (
                format!("@c{i}"),
                // The server's internal form: a 4-byte little-endian SRID, then WKB.
                Some(format!(
                    "{q} = IF(@c{i} IS NULL, NULL, ST_GeomFromWKB(SUBSTRING(@c{i}, 5), \
                     CONV(HEX(REVERSE(SUBSTRING(@c{i}, 1, 4))), 16, 10)))"
                )),
            ),
            _ => (q, None),
        }
    }
}

fn is_spatial(t: &str) -> bool {
    matches!(
        t,
        "geometry"
            | "point"
            | "linestring"
            | "polygon"
            | "multipoint"
            | "multilinestring"
            | "multipolygon"
            | "geometrycollection"
    )
}

/// What kind of table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableKind {
    /// An ordinary table.
    Base,
    /// A MariaDB sequence: created with `CREATE SEQUENCE`, its state set with `SETVAL`.
    Sequence,
    /// A system-versioned table: read with `FOR SYSTEM_TIME ALL`, its row start and end
    /// columns selected by name (see `history_columns`) and loaded with
    /// `system_versioning_insert_history`, so its history arrives exactly.
    SystemVersioned,
}

/// A table with what the copy needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Table {
    /// Database.
    pub db: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: TableKind,
    /// Storage engine.
    pub engine: String,
    /// Estimated rows (`TABLE_ROWS`).
    pub rows_estimate: u64,
    /// Data size in bytes (`DATA_LENGTH`).
    pub data_length: u64,
    /// Every column, in order.
    pub columns: Vec<Column>,
    /// The integer column that leads the primary key (or, without one, a unique key whose
    /// columns are all NOT NULL), when there is one: chunks are ranges of it.
    pub chunk_key: Option<String>,
    /// `SHOW CREATE TABLE` text.
    pub create_sql: String,
}

impl Table {
    /// `db`.`name`, quoted.
    pub(crate) fn qualified(&self) -> String {
        quote::qualified(&self.db, &self.name)
    }

    /// True for engines whose reads see a consistent snapshot (InnoDB).
    pub(crate) fn transactional(&self) -> bool {
        self.engine.eq_ignore_ascii_case("InnoDB")
    }

    /// The columns that are copied (generated ones are left to the server).
    pub(crate) fn copied_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.generated)
    }
}

/// Makes the history of every system-versioned table in `tables` part of the copy: its
/// row start and end columns become copied columns (the implicit `row_start`/`row_end`
/// that `information_schema` does not list are added). Returns why the copy is refused
/// when a table is versioned by transaction id (`BIGINT UNSIGNED` row start/end, which
/// refer to `mysql.transaction_registry` and cannot be inserted).
pub(crate) async fn history_columns(
    s: &mut Session,
    tables: &mut [Table],
) -> Result<Option<String>, MysqlError> {
    if !tables.iter().any(|t| t.kind == TableKind::SystemVersioned) {
        return Ok(None);
    }
    let rows = s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE) \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN ({}) \
                 AND GENERATION_EXPRESSION IN ('ROW START', 'ROW END')",
                system_list()
            ),
            "listing the row start and end columns of system-versioned tables",
        )
        .await?;
    let explicit: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            let t = |i: usize| r.text(i).unwrap_or_default();
            (t(0), t(1), t(2), t(3))
        })
        .collect();
    let mut refused = Vec::new();
    for t in tables
        .iter_mut()
        .filter(|t| t.kind == TableKind::SystemVersioned)
    {
        let mine: Vec<_> = explicit
            .iter()
            .filter(|(db, name, _, _)| *db == t.db && *name == t.name)
            .collect();
        if mine.is_empty() {
            for name in ["row_start", "row_end"] {
                t.columns.push(Column {
                    name: name.into(),
                    data_type: "timestamp".into(),
                    generated: false,
                });
            }
            continue;
        }
        if mine.iter().any(|(_, _, _, ty)| ty != "timestamp") {
            refused.push(t.qualified());
            continue;
        }
        for c in &mut t.columns {
            if mine.iter().any(|(_, _, col, _)| *col == c.name) {
                c.generated = false;
            }
        }
    }
    Ok((!refused.is_empty()).then(|| {
        format!(
            "system-versioned table(s) {} versioned by transaction id (row start/end BIGINT \
             UNSIGNED, AS ROW START/END): their history refers to the master's \
             mysql.transaction_registry and cannot be inserted on another server; version them \
             by timestamp (ALTER TABLE … with TIMESTAMP(6) row start/end) or use the physical \
             method",
            refused.join(", ")
        )
    }))
}

/// The state of a sequence, read on the master and restored with `SETVAL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SequenceState {
    /// Database.
    pub db: String,
    /// Name.
    pub name: String,
    /// `next_not_cached_value`: the next value the sequence hands out after its cache.
    pub next_value: String,
    /// `cycle_count`: how many times a cycling sequence wrapped around.
    pub cycle_count: String,
}

impl SequenceState {
    /// The statements that give a freshly created sequence this state (`RESTART` first,
    /// since `SETVAL` cannot move a sequence backwards within one round).
    pub(crate) fn restore_sql(&self) -> Vec<String> {
        let q = quote::qualified(&self.db, &self.name);
        vec![
            format!("ALTER SEQUENCE {q} RESTART WITH {}", self.next_value),
            format!(
                "SELECT SETVAL({q}, {}, 0, {})",
                self.next_value, self.cycle_count
            ),
        ]
    }
}

/// Reads the current state of every sequence in `tables`.
pub(crate) async fn sequence_states(
    s: &mut Session,
    tables: &[Table],
) -> Result<Vec<SequenceState>, MysqlError> {
    let mut out = Vec::new();
    for t in tables.iter().filter(|t| t.kind == TableKind::Sequence) {
        let what = format!("reading the state of sequence {}", t.qualified());
        let row = s
            .first_row(
                &format!(
                    "SELECT next_not_cached_value, cycle_count FROM {}",
                    t.qualified()
                ),
                &what,
            )
            .await?
            .ok_or_else(|| s.unexpected(&what, "no row"))?;
        let value = |i: usize| {
            row.get(i)
                .and_then(|(_, v)| v.clone())
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b == b'-' || b.is_ascii_digit()))
                .ok_or_else(|| s.unexpected(&what, "not an integer"))
        };
        out.push(SequenceState {
            db: t.db.clone(),
            name: t.name.clone(),
            next_value: value(0)?,
            cycle_count: value(1)?,
        });
    }
    Ok(out)
}

/// The kind of a schema object other than a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectKind {
    /// A view.
    View,
    /// A stored procedure.
    Procedure,
    /// A stored function.
    Function,
    /// A trigger.
    Trigger,
    /// A scheduled event.
    Event,
    /// A package specification (`sql_mode=ORACLE`).
    Package,
    /// A package body (`sql_mode=ORACLE`).
    PackageBody,
}

impl ObjectKind {
    fn show_keyword(self) -> &'static str {
        match self {
            ObjectKind::View => "VIEW",
            ObjectKind::Procedure => "PROCEDURE",
            ObjectKind::Function => "FUNCTION",
            ObjectKind::Trigger => "TRIGGER",
            ObjectKind::Event => "EVENT",
            ObjectKind::Package => "PACKAGE",
            ObjectKind::PackageBody => "PACKAGE BODY",
        }
    }

    /// The keyword after `CREATE`/`DROP`/`SHOW CREATE`: `VIEW`, `PACKAGE BODY`, …
    pub(crate) fn keyword(self) -> &'static str {
        self.show_keyword()
    }
}

/// A view, routine, trigger or event with the session settings it was created under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SchemaObject {
    /// Kind.
    pub kind: ObjectKind,
    /// Database.
    pub db: String,
    /// Name.
    pub name: String,
    /// The `CREATE` statement, sent to the server as one statement, never re-parsed.
    pub create_sql: String,
    /// `sql_mode` it was created with.
    pub sql_mode: Option<String>,
    /// `character_set_client` it was created with.
    pub character_set_client: Option<String>,
    /// `collation_connection` it was created with.
    pub collation_connection: Option<String>,
    /// `time_zone` (events).
    pub time_zone: Option<String>,
    /// An event that is disabled on the master (it stays disabled on the replica; an
    /// enabled one becomes `DISABLE ON SLAVE`).
    #[serde(default)]
    pub disabled: bool,
}

/// An account or role with the statements that recreate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Account {
    /// User or role name.
    pub user: String,
    /// Host part (empty for a role).
    pub host: String,
    /// True for a role.
    pub is_role: bool,
    /// `CREATE USER …` (with the password hash and plugin) or `CREATE ROLE …`.
    pub create_sql: String,
    /// `GRANT …` and `SET DEFAULT ROLE …` statements.
    pub grants: Vec<String>,
}

/// Accounts that belong to the server itself and are never copied.
pub const SYSTEM_USERS: &[&str] = &[
    "root",
    "mariadb.sys",
    "mysql",
    "mysql.sys",
    "mysql.session",
    "mysql.infoschema",
    "PUBLIC",
    "",
];

fn system_list() -> String {
    SYSTEM_DATABASES
        .iter()
        .map(|d| quote::string(d))
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads the user databases.
pub async fn databases(s: &mut Session) -> Result<Vec<Database>, MysqlError> {
    databases_on(vec![s]).await
}

/// Reads the user databases, their `SHOW CREATE DATABASE` spread over `sessions` (the
/// first one lists them).
pub(crate) async fn databases_on(
    mut sessions: Vec<&mut Session>,
) -> Result<Vec<Database>, MysqlError> {
    let names = sessions[0]
        .column(
            &format!(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ({}) ORDER BY 1",
                system_list()
            ),
            "listing databases",
        )
        .await?;
    let shows: Vec<String> = names
        .iter()
        .map(|n| format!("SHOW CREATE DATABASE {}", quote::ident(n)))
        .collect();
    let rows = show_each(&mut sessions, &shows).await?;
    Ok(names
        .into_iter()
        .zip(rows)
        .map(|(name, row)| Database {
            name,
            create_sql: row.get(1).and_then(|(_, v)| v.clone()).unwrap_or_default(),
        })
        .collect())
}

/// A row as (column name, text value) pairs.
pub(crate) type TextRow = Vec<(String, Option<String>)>;

/// Runs `statements` (each answering one row: a `SHOW CREATE …`) spread over
/// `sessions`, concurrently; returns their first rows in order, or the first error.
pub(crate) async fn show_each(
    sessions: &mut [&mut Session],
    statements: &[String],
) -> Result<Vec<TextRow>, MysqlError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let (next, failed) = (&next, &failed);
    let parts = futures_util::future::join_all(sessions.iter_mut().map(|s| async move {
        let mut got = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= statements.len() || failed.load(Ordering::Relaxed) {
                return Ok(got);
            }
            let what = &statements[i];
            let row = match s.first_row(what, what).await {
                Ok(Some(row)) => row,
                Ok(None) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(s.unexpected(what, "no row"));
                }
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            got.push((i, row));
        }
    }))
    .await;
    let mut rows: Vec<Option<TextRow>> = vec![None; statements.len()];
    for part in parts {
        for (i, row) in part? {
            rows[i] = Some(row);
        }
    }
    Ok(rows.into_iter().map(Option::unwrap_or_default).collect())
}

/// Reads every base table and sequence of the user databases, with columns, keys and
/// `SHOW CREATE` text.
pub async fn tables(s: &mut Session) -> Result<Vec<Table>, MysqlError> {
    let mut tables = table_list(s).await?;
    table_ddl(vec![s], &mut tables).await?;
    Ok(tables)
}

/// Fills in the `SHOW CREATE` text of `tables`, spread over `sessions`.
pub(crate) async fn table_ddl(
    mut sessions: Vec<&mut Session>,
    tables: &mut [Table],
) -> Result<(), MysqlError> {
    let shows: Vec<String> = tables
        .iter()
        .map(|t| {
            let keyword = match t.kind {
                TableKind::Sequence => "SEQUENCE",
                _ => "TABLE",
            };
            format!("SHOW CREATE {keyword} {}", t.qualified())
        })
        .collect();
    let rows = show_each(&mut sessions, &shows).await?;
    for (t, row) in tables.iter_mut().zip(rows) {
        t.create_sql = row.get(1).and_then(|(_, v)| v.clone()).unwrap_or_default();
    }
    Ok(())
}

/// Reads every base table and sequence of the user databases, with columns and keys, in
/// three set-based statements (`TABLES`, `COLUMNS`, `STATISTICS`); `create_sql` is left
/// empty for [`table_ddl`].
pub(crate) async fn table_list(s: &mut Session) -> Result<Vec<Table>, MysqlError> {
    let sys = system_list();
    let rows = s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE, ''), IFNULL(TABLE_ROWS, 0), \
                 IFNULL(DATA_LENGTH, 0) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA NOT IN ({sys}) AND TABLE_TYPE <> 'VIEW' \
                 AND TABLE_TYPE <> 'TEMPORARY' ORDER BY 1, 2"
            ),
            "listing tables",
        )
        .await?;
    let mut tables = Vec::new();
    for r in &rows {
        let t = |i: usize| r.text(i).unwrap_or_default();
        let kind = match t(2).as_str() {
            "SEQUENCE" => TableKind::Sequence,
            "SYSTEM VERSIONED" => TableKind::SystemVersioned,
            _ => TableKind::Base,
        };
        tables.push(Table {
            db: t(0),
            name: t(1),
            kind,
            engine: t(3),
            rows_estimate: t(4).parse().unwrap_or(0),
            data_length: t(5).parse().unwrap_or(0),
            columns: vec![],
            chunk_key: None,
            create_sql: String::new(),
        });
    }
    let cols = s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), IFNULL(EXTRA, ''), COLUMN_KEY \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN ({sys}) \
                 ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
            ),
            "listing columns",
        )
        .await?;
    let keys = s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, NULLABLE, SUB_PART \
                 FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA NOT IN ({sys}) AND NON_UNIQUE = 0 \
                 ORDER BY 1, 2, INDEX_NAME <> 'PRIMARY', 3, SEQ_IN_INDEX"
            ),
            "listing primary and unique keys",
        )
        .await?;
    let mut by_name: std::collections::HashMap<(String, String), usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.db.clone(), t.name.clone()), i))
        .collect();
    for r in &cols {
        let t = |i: usize| r.text(i).unwrap_or_default();
        if let Some(&i) = by_name.get(&(t(0), t(1))) {
            let extra = t(4).to_ascii_uppercase();
            let generated = [
                "VIRTUAL GENERATED",
                "STORED GENERATED",
                "PERSISTENT GENERATED",
            ]
            .iter()
            .any(|g| extra.contains(g));
            tables[i].columns.push(Column {
                name: t(2),
                data_type: t(3),
                generated,
            });
        }
    }
    // Unique keys, PRIMARY first, each as (db, table, index) → [(column, usable)]: a
    // column is usable when NOT NULL and indexed whole.
    type KeyId = (String, String, String);
    let mut unique: Vec<(KeyId, Vec<(String, bool)>)> = Vec::new();
    for r in &keys {
        let t = |i: usize| r.text(i).unwrap_or_default();
        let id = (t(0), t(1), t(2));
        let usable = t(4).is_empty() && r.text(5).is_none();
        match unique.last_mut() {
            Some((last, cols)) if *last == id => cols.push((t(3), usable)),
            _ => unique.push((id, vec![(t(3), usable)])),
        }
    }
    for ((db, name, _index), cols) in &unique {
        let Some(&i) = by_name.get(&(db.clone(), name.clone())) else {
            continue;
        };
        if tables[i].chunk_key.is_some() || !cols.iter().all(|(_, usable)| *usable) {
            continue;
        }
        let lead = &cols[0].0;
        if let Some(col) = chunk_column(&tables[i].columns, lead) {
            tables[i].chunk_key = Some(col);
        }
    }
    by_name.clear();
    Ok(tables)
}

/// Reads views, routines, triggers and events.
pub async fn objects(s: &mut Session) -> Result<Vec<SchemaObject>, MysqlError> {
    objects_on(vec![s]).await
}

/// Reads views, routines, triggers and events, their `SHOW CREATE` spread over
/// `sessions` (the first one lists them).
pub(crate) async fn objects_on(
    mut sessions: Vec<&mut Session>,
) -> Result<Vec<SchemaObject>, MysqlError> {
    let sys = system_list();
    let mut names: Vec<(ObjectKind, String, String, bool)> = Vec::new();
    let lists = [
        (
            format!("SELECT TABLE_SCHEMA, TABLE_NAME, 'VIEW' FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ({sys}) ORDER BY 1, 2"),
            "listing views",
        ),
        (
            format!("SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ({sys}) AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION', 'PACKAGE', 'PACKAGE BODY') ORDER BY 1, 2"),
            "listing routines",
        ),
        (
            format!("SELECT TRIGGER_SCHEMA, TRIGGER_NAME, 'TRIGGER' FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ({sys}) ORDER BY TRIGGER_SCHEMA, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER"),
            "listing triggers",
        ),
        (
            format!("SELECT EVENT_SCHEMA, EVENT_NAME, IF(STATUS = 'DISABLED', 'EVENT DISABLED', 'EVENT') FROM information_schema.EVENTS WHERE EVENT_SCHEMA NOT IN ({sys}) ORDER BY 1, 2"),
            "listing events",
        ),
    ];
    for (sql, what) in lists {
        for r in sessions[0].rows(&sql, what).await? {
            let t = |i: usize| r.text(i).unwrap_or_default();
            let kind = match t(2).as_str() {
                "VIEW" => ObjectKind::View,
                "PROCEDURE" => ObjectKind::Procedure,
                "FUNCTION" => ObjectKind::Function,
                "TRIGGER" => ObjectKind::Trigger,
                "PACKAGE" => ObjectKind::Package,
                "PACKAGE BODY" => ObjectKind::PackageBody,
                _ => ObjectKind::Event,
            };
            names.push((kind, t(0), t(1), t(2) == "EVENT DISABLED"));
        }
    }
    let shows: Vec<String> = names
        .iter()
        .map(|(kind, db, name, _)| {
            format!(
                "SHOW CREATE {} {}",
                kind.show_keyword(),
                quote::qualified(db, name)
            )
        })
        .collect();
    let rows = show_each(&mut sessions, &shows).await?;
    let s = &sessions[0];
    let mut out = Vec::new();
    for (((kind, db, name, disabled), row), what) in names.into_iter().zip(rows).zip(&shows) {
        let create_col = match kind {
            ObjectKind::View => "Create View",
            ObjectKind::Procedure => "Create Procedure",
            ObjectKind::Function => "Create Function",
            ObjectKind::Trigger => "SQL Original Statement",
            ObjectKind::Event => "Create Event",
            ObjectKind::Package => "Create Package",
            ObjectKind::PackageBody => "Create Package Body",
        };
        let create_sql = field(&row, create_col)
            .ok_or_else(|| {
                s.unexpected(
                    what,
                    format!("no {create_col} (does the user lack a privilege on this object?)"),
                )
            })?
            .to_string();
        let get = |n: &str| field(&row, n).map(str::to_string);
        out.push(SchemaObject {
            kind,
            db,
            name,
            create_sql,
            sql_mode: get("sql_mode"),
            character_set_client: get("character_set_client"),
            collation_connection: get("collation_connection"),
            time_zone: get("time_zone"),
            disabled,
        });
    }
    Ok(out)
}

/// The authentication plugins the non-system accounts use (MariaDB; empty on MySQL).
pub(crate) async fn account_plugins(
    s: &mut Session,
    flavor: Flavor,
) -> Result<Vec<String>, MysqlError> {
    if flavor != Flavor::MariaDb {
        return Ok(Vec::new());
    }
    let excluded = SYSTEM_USERS
        .iter()
        .map(|u| quote::string(u))
        .collect::<Vec<_>>()
        .join(",");
    s.column(
        &format!(
            "SELECT DISTINCT JSON_VALUE(Priv, '$.plugin') FROM mysql.global_priv \
             WHERE User NOT IN ({excluded}) AND JSON_VALUE(Priv, '$.plugin') IS NOT NULL ORDER BY 1"
        ),
        "listing the accounts' authentication plugins",
    )
    .await
}

/// The authentication plugins active on a server.
pub(crate) async fn active_auth_plugins(s: &mut Session) -> Result<Vec<String>, MysqlError> {
    s.column(
        "SELECT PLUGIN_NAME FROM information_schema.PLUGINS \
         WHERE PLUGIN_TYPE = 'AUTHENTICATION' AND PLUGIN_STATUS = 'ACTIVE'",
        "listing the authentication plugins",
    )
    .await
}

/// Why accounts using `used` plugins cannot be created where `active` ones are active.
pub(crate) fn plugin_refusal(used: &[String], active: &[String]) -> Option<String> {
    let missing: Vec<&str> = used
        .iter()
        .filter(|u| !active.iter().any(|a| a.eq_ignore_ascii_case(u)))
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "accounts that authenticate with {} (the plugin is not active on the replica); \
             install it there first, e.g. INSTALL SONAME 'auth_{}', and rerun",
            missing.join(", "),
            missing[0]
        )
    })
}

/// Reads the non-system accounts and roles with their grants.
pub async fn accounts(s: &mut Session, flavor: Flavor) -> Result<Vec<Account>, MysqlError> {
    let excluded = SYSTEM_USERS
        .iter()
        .map(|u| quote::string(u))
        .collect::<Vec<_>>()
        .join(",");
    let sql = match flavor {
        Flavor::MariaDb => format!(
            "SELECT User, Host, IF(is_role = 'Y', 1, 0) FROM mysql.user WHERE User NOT IN ({excluded}) ORDER BY 3 DESC, 1, 2"
        ),
        Flavor::MySql => format!(
            "SELECT User, Host, 0 FROM mysql.user WHERE User NOT IN ({excluded}) ORDER BY 1, 2"
        ),
    };
    let list = s.rows(&sql, "listing accounts").await?;
    let mut out = Vec::new();
    for r in &list {
        let t = |i: usize| r.text(i).unwrap_or_default();
        let (user, host, is_role) = (t(0), t(1), t(2) == "1");
        let (create_sql, target) = if is_role {
            (
                format!("CREATE ROLE {}", quote::string(&user)),
                quote::string(&user),
            )
        } else {
            let acct = quote::account(&user, &host);
            let what = format!("SHOW CREATE USER {acct}");
            let row = s
                .first_row(&what, &what)
                .await?
                .ok_or_else(|| s.unexpected(&what, "no row"))?;
            (
                row.first().and_then(|(_, v)| v.clone()).unwrap_or_default(),
                acct,
            )
        };
        let what = format!("SHOW GRANTS FOR {target}");
        // MariaDB lists the grants of the roles granted to a role too; those belong to
        // the other roles (copied with them): keep the lines of this account only.
        let own = amsu_mysql::statement::Expected::Grant {
            user: &user,
            host: (!is_role).then_some(host.as_str()),
        };
        let grants = s
            .rows(&what, &what)
            .await?
            .iter()
            .map(|r| r.text_or_empty(0))
            .filter(|g| amsu_mysql::statement::check(g, &own).is_ok())
            .collect();
        out.push(Account {
            user,
            host,
            is_role,
            create_sql,
            grants,
        });
    }
    Ok(out)
}

/// `lead` when it can split a table into key ranges: the leading column of a primary key
/// or of a unique key whose columns are all NOT NULL, of an integer type (every row then
/// falls into exactly one range of it).
fn chunk_column(columns: &[Column], lead: &str) -> Option<String> {
    columns
        .iter()
        .find(|c| c.name == lead)
        .filter(|c| {
            matches!(
                c.data_type.as_str(),
                "tinyint" | "smallint" | "mediumint" | "int" | "bigint"
            )
        })
        .map(|c| c.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, data_type: &str) -> Column {
        Column {
            name: name.into(),
            data_type: data_type.into(),
            generated: false,
        }
    }

    #[test]
    fn special_types_are_converted_both_ways() {
        let f = col("f`", "float");
        assert_eq!(
            f.select_expr(),
            "IF(`f``` = 0 AND ATAN2(`f```, -1) < 0, '-0', CAST(`f``` AS DOUBLE))"
        );
        assert_eq!(
            f.load_target(3),
            (
                "@c3".to_string(),
                Some("`f``` = IF(@c3 = '-0', -1e-50, @c3)".to_string())
            )
        );
        let ip = col("ip", "inet6");
        assert_eq!(ip.select_expr(), "`ip`");
        assert_eq!(
            ip.load_target(0).1.as_deref(),
            Some("`ip` = CAST(@c0 AS CHAR CHARACTER SET latin1)")
        );
        assert_eq!(col("b", "bit").select_expr(), "`b` + 0");
        // ENUM by index (0, the error value, included), SET by bits.
        let e = col("e", "enum");
        assert_eq!(e.select_expr(), "`e` + 0");
        assert_eq!(
            e.load_target(2),
            (
                "@c2".to_string(),
                Some("`e` = CAST(@c2 AS UNSIGNED)".to_string())
            )
        );
        assert_eq!(col("s", "set").select_expr(), "`s` + 0");
        // Text as its stored bytes.
        assert_eq!(col("t", "varchar").select_expr(), "CAST(`t` AS BINARY)");
        assert_eq!(
            col("v", "varbinary").load_target(1),
            ("`v`".to_string(), None)
        );
    }

    #[test]
    fn a_plugin_missing_on_the_replica_is_named() {
        let used = vec!["ed25519".to_string(), "mysql_native_password".to_string()];
        let active = vec![
            "mysql_native_password".to_string(),
            "unix_socket".to_string(),
        ];
        let why = plugin_refusal(&used, &active).unwrap();
        assert!(why.contains("ed25519") && why.contains("INSTALL SONAME 'auth_ed25519'"));
        assert_eq!(plugin_refusal(&used[1..], &active), None);
    }

    #[test]
    fn sequence_state_restarts_then_sets_the_round() {
        let st = SequenceState {
            db: "d".into(),
            name: "s q".into(),
            next_value: "-9".into(),
            cycle_count: "3".into(),
        };
        assert_eq!(
            st.restore_sql(),
            [
                "ALTER SEQUENCE `d`.`s q` RESTART WITH -9",
                "SELECT SETVAL(`d`.`s q`, -9, 0, 3)"
            ]
        );
    }
}
