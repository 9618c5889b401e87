//! Preflight checks of a master (and optionally a replica) over MySQL/MariaDB: every
//! problem a setup would run into, found before anything changes, each with its fix.
//!
//! The work is split the usual way: [`MysqlPreflight::facts`] reads a [`Facts`] value with
//! a handful of read-only queries, and `evaluate` decides from it, in pure code, which
//! [`Finding`]s to report. Every decision function (`*_findings`) is public and unit-tested
//! on fixtures. [`MysqlPreflight`] implements [`amsu_core::Preflight`], so `Setup` runs the
//! same checks before it changes anything.
//!
//! Codes (stable; scripts may branch on them):
//!
//! | code | severity | what |
//! |---|---|---|
//! | `missing_privilege` | blocking (warning when an active role's privileges could not be read) | an account lacks a privilege a step needs, counting its active roles |
//! | `grants_unknown` | info | `SHOW GRANTS` could not be read |
//! | `binlog_retention` | blocking (info with `--protect-binlogs`) | binary logs may be purged before the replica reads them |
//! | `non_transactional_tables` | warning | MyISAM/Aria/MEMORY… tables lengthen the commit stall |
//! | `no_primary_key` | warning | tables without a primary key |
//! | `max_allowed_packet` | blocking (measured) / warning (estimated) | a row larger than a packet |
//! | `semi_sync` | info | semi-synchronous replication settings |
//! | `gtid_strict_mode`, `gtid_mode` | info / warning | GTID settings |
//! | `lower_case_table_names`, `character_set_server`, `sql_mode`, `time_zone`, `time_zone_tables` | warning | master and replica differ |
//! | `disk_space` | blocking / warning | the replica's disk is too small for the data |
//! | `disk_space_unknown` | info | the replica's free space cannot be checked from here |
//! | `missing_definer` | warning | a view, routine, trigger or event names a missing DEFINER |
//! | `repl_user_auth` | info | the replication user's authentication plugin |
//! | `errant_gtids` | blocking (warning with `--force`) | the replica holds GTIDs the master does not have |
//! | `not_checkable` | info | a check could not read what it needs |

use amsu_core::human::{bytes as human_bytes, secs as human_secs};
use amsu_core::{FindingCode, Remedy};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use amsu_core::{
    BoxError, Event, EventSink, Finding, Flavor, NoEvents, Role, ServerAddr, ServerInfo, Severity,
    Version,
};
use async_trait::async_trait;

use crate::conn::Session;
use crate::grants::{
    default_roles, effective_grants, granted_roles, parse_grant, required, role_closure,
    roles_without_lines, Account, Grant, Need, Privilege, Scope, StepKind,
};
use crate::server::{probe, replication_status, SYSTEM_DATABASES};
use crate::{quote, MysqlError, SqlSession};

const MIB: u64 = 1024 * 1024;

/// Assumed end-to-end rate of a logical copy (read on the master, load on the replica),
/// used to estimate how long a setup takes: 20 MiB/s.
pub(crate) const ASSUMED_BYTES_PER_SEC: u64 = 20 * MIB;
/// Fixed part of the estimate (connections, schema, replica start): 60 s.
pub(crate) const FIXED_OVERHEAD_SECS: u64 = 60;
/// The binary logs must be kept at least this long, whatever the data size: 1 hour.
pub(crate) const MIN_RETENTION_SECS: u64 = 3600;
/// Tables with large columns up to this size are scanned for their largest row
/// (`MAX(LENGTH(…))`); bigger ones are estimated from `AVG_ROW_LENGTH`.
pub(crate) const MEASURE_ROWS_UP_TO_BYTES: u64 = 256 * MIB;

/// What one account may do, from `SHOW GRANTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountGrants {
    /// `CURRENT_USER()` as `(user, host)`.
    pub user: String,
    /// Host part.
    pub host: String,
    /// The parsed lines; `None` when `SHOW GRANTS` could not be read.
    pub grants: Option<Vec<Grant>>,
    /// Lines that could not be parsed (counted, never shown: they may hold a hash).
    pub unparsed: usize,
    /// The roles active at login (`CURRENT_ROLE()` of a fresh session, MariaDB); `None`
    /// when unknown, and then the `SET DEFAULT ROLE` line of `grants` decides. `grants`
    /// also holds the lines of these roles (and of the roles granted to them).
    pub active_roles: Option<Vec<Account>>,
}

impl AccountGrants {
    fn account(&self) -> String {
        quote::account(&self.user, &self.host)
    }

    fn grantee(&self) -> Account {
        Account::new(self.user.clone(), self.host.clone())
    }

    /// The active roles: the server's word, else the default-role line; `None` when
    /// neither says (a MySQL account holding roles).
    fn active(&self, grants: &[Grant]) -> Option<Vec<Account>> {
        self.active_roles
            .clone()
            .or_else(|| default_roles(grants, &self.grantee()))
    }
}

/// One binary log file from `SHOW BINARY LOGS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogFile {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// What was read from one server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFacts {
    /// Which side it is.
    pub role: Role,
    /// Flavor, version, server_id, binary log settings.
    pub info: ServerInfo,
    /// The URL user's privileges.
    pub grants: AccountGrants,
    /// Global variables by lower-case name (only those amsu reads; missing ones are
    /// unknown to this server version).
    pub variables: BTreeMap<String, String>,
    /// `SHOW BINARY LOGS` (empty when the binary log is off or unreadable).
    pub binlogs: Vec<BinlogFile>,
    /// Rows in `mysql.time_zone_name`; `None` when unreadable.
    pub time_zone_names: Option<u64>,
    /// The server has a replication configuration (`SHOW SLAVE STATUS` returns a row).
    pub has_replication_config: bool,
    /// Its accounts as `(user, host)` (read on the replica only); `None` when unread.
    pub accounts: Option<Vec<(String, String)>>,
}

impl ServerFacts {
    /// Facts with no grants, variables or binary logs read yet (for building fixtures).
    pub fn new(role: Role, info: ServerInfo) -> Self {
        ServerFacts {
            role,
            info,
            grants: AccountGrants {
                user: "root".into(),
                host: "localhost".into(),
                grants: None,
                unparsed: 0,
                active_roles: None,
            },
            variables: BTreeMap::new(),
            binlogs: Vec::new(),
            time_zone_names: None,
            has_replication_config: false,
            accounts: None,
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    fn var_u64(&self, name: &str) -> Option<u64> {
        self.var(name)?.trim().parse::<f64>().ok().map(|v| v as u64)
    }

    fn var_on(&self, name: &str) -> Option<bool> {
        self.var(name)
            .map(|v| matches!(v.to_ascii_uppercase().as_str(), "ON" | "1" | "YES" | "TRUE"))
    }
}

/// One user table of the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFacts {
    /// Database.
    pub db: String,
    /// Table.
    pub name: String,
    /// Storage engine as the server names it.
    pub engine: String,
    /// `DATA_LENGTH + INDEX_LENGTH`.
    pub bytes: u64,
    /// `AVG_ROW_LENGTH`.
    pub avg_row_length: u64,
    /// It has a `PRIMARY KEY`.
    pub has_primary_key: bool,
}

impl TableFacts {
    fn qualified(&self) -> String {
        quote::qualified(&self.db, &self.name)
    }
}

/// The size of a table's largest row, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSize {
    /// `db`.`table`.
    pub table: String,
    /// Bytes.
    pub bytes: u64,
    /// `true`: measured with `MAX(LENGTH(…))` over its large columns; `false`: its
    /// `AVG_ROW_LENGTH`, a lower bound of the largest row.
    pub measured: bool,
}

/// A view, routine, trigger or event and the account it runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinedObject {
    /// `VIEW`, `PROCEDURE`, `FUNCTION`, `TRIGGER`, `EVENT`.
    pub kind: String,
    /// Database.
    pub db: String,
    /// Name.
    pub name: String,
    /// `DEFINER` as the server shows it: `user@host`, or a role name.
    pub definer: String,
}

/// The master's data, as far as the checks need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataFacts {
    /// Every user table.
    pub tables: Vec<TableFacts>,
    /// Largest rows per table (measured or estimated), largest first.
    pub rows: Vec<RowSize>,
    /// Views, routines, triggers and events.
    pub objects: Vec<DefinedObject>,
    /// Every account and role `(user, host)` (roles have an empty host); `None` when
    /// `mysql.user` is unreadable.
    pub accounts: Option<Vec<(String, String)>>,
}

impl DataFacts {
    /// Data and index bytes of all user tables.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum()
    }
}

/// Free space where the replica keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskSpace {
    /// Free bytes (for an unprivileged user) in the file system of `datadir`.
    Free {
        /// The replica's `@@datadir`.
        datadir: String,
        /// Free bytes.
        bytes: u64,
    },
    /// The replica is on another host: its disk cannot be seen from here.
    NotLocal {
        /// The replica's host.
        host: String,
    },
    /// Local, but the data directory could not be examined.
    Unreadable {
        /// The replica's `@@datadir`.
        datadir: String,
        /// Why.
        reason: String,
    },
    /// No replica given.
    NoReplica,
}

/// The replication user on the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplUserFacts {
    /// Its name.
    pub name: String,
    /// `(host, plugin)` of every account with that name; `None` when `mysql.user` is
    /// unreadable.
    pub accounts: Option<Vec<(String, String)>>,
}

/// Everything the checks decide from.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The master, as its URL user sees it.
    pub master: ServerFacts,
    /// The master's admin account (`--admin-user`), when given.
    pub admin: Option<AccountGrants>,
    /// The replica, when given.
    pub replica: Option<ServerFacts>,
    /// The master's data.
    pub data: DataFacts,
    /// The replication user.
    pub repl_user: ReplUserFacts,
    /// Free space on the replica.
    pub replica_disk: DiskSpace,
}

/// What the setup is going to do, as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// `--force`: the replica's databases and replication configuration are expendable.
    pub force: bool,
    /// `--protect-binlogs`: raise a too-short binary log retention for the setup instead
    /// of refusing.
    pub protect_binlogs: bool,
    /// The replication user name. Default `amsu_repl`.
    pub repl_user: String,
    /// How the master's snapshot is taken: [`StepKind::LogicalSnapshot`] (default),
    /// [`StepKind::OutfileSnapshot`] or [`StepKind::PhysicalBackup`] (no SQL restore on
    /// the replica then).
    pub snapshot: StepKind,
    /// The replica's replication configuration is amsu's own, from an interrupted earlier
    /// run of this setup: its GTID state is not compared as if it had replicated from
    /// elsewhere. Default `false`.
    pub own_replication_config: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            force: false,
            protect_binlogs: false,
            repl_user: "amsu_repl".into(),
            snapshot: StepKind::LogicalSnapshot,
            own_replication_config: false,
        }
    }
}

/// Every finding from `facts`; pure.
pub(crate) fn evaluate(facts: &Facts, opts: &CheckOptions) -> Vec<Finding> {
    let mut f = Vec::new();
    f.extend(privilege_findings(facts, opts));
    let bytes = facts.data.total_bytes();
    f.extend(retention_findings(
        &facts.master,
        bytes,
        opts.protect_binlogs,
    ));
    f.extend(table_findings(&facts.data.tables));
    f.extend(packet_findings(
        &facts.master,
        facts.replica.as_ref(),
        &facts.data.rows,
    ));
    f.extend(semi_sync_findings(&facts.master, facts.replica.as_ref()));
    f.extend(gtid_findings(&facts.master, facts.replica.as_ref()));
    if let Some(r) = &facts.replica {
        f.extend(consistency_findings(&facts.master, r));
        if !opts.own_replication_config {
            f.extend(errant_findings(&facts.master, r, opts.force));
        }
        if let (Some(m), Some(ra)) = (&facts.data.accounts, &r.accounts) {
            f.extend(accounts::collision_findings(
                m,
                ra,
                (&r.grants.user, &r.grants.host),
                opts.snapshot,
            ));
        }
    }
    if let Some(m) = &facts.data.accounts {
        f.extend(accounts::anonymous_findings(m));
    }
    f.extend(disk_findings(
        &facts.replica_disk,
        replica_disk_need(&facts.data.tables),
    ));
    f.extend(definer_findings(&facts.data));
    f.extend(repl_user_findings(
        &facts.master.info,
        &facts.master.variables,
        &facts.repl_user,
    ));
    f
}

mod privileges;
pub use privileges::*;
mod retention;
pub(crate) use retention::*;
mod tables;
pub(crate) use tables::*;
mod packet;
pub(crate) use packet::*;
mod gtid;
pub(crate) use gtid::*;
mod compare;
pub(crate) use compare::*;
mod disk;
pub use disk::*;
mod definers;
pub(crate) use definers::*;
mod repl_user;
pub(crate) use repl_user::*;
mod errant;
pub(crate) use errant::*;

// ---------------------------------------------------------------------------------------
// I/O

/// Global variables the checks read (missing ones are unknown to the server version).
pub(crate) const VARIABLES: &[&str] = &[
    "expire_logs_days",
    "binlog_expire_logs_seconds",
    "max_allowed_packet",
    "slave_max_allowed_packet",
    "replica_max_allowed_packet",
    "lower_case_table_names",
    "character_set_server",
    "collation_server",
    "sql_mode",
    "time_zone",
    "gtid_strict_mode",
    "gtid_binlog_pos",
    "gtid_binlog_state",
    "gtid_slave_pos",
    "gtid_mode",
    "gtid_executed",
    "enforce_gtid_consistency",
    "rpl_semi_sync_master_enabled",
    "rpl_semi_sync_master_timeout",
    "rpl_semi_sync_source_enabled",
    "rpl_semi_sync_source_timeout",
    "rpl_semi_sync_slave_enabled",
    "rpl_semi_sync_replica_enabled",
    "datadir",
    "default_authentication_plugin",
    "authentication_policy",
];

fn system_list() -> String {
    SYSTEM_DATABASES
        .iter()
        .map(|d| quote::string(d))
        .collect::<Vec<_>>()
        .join(",")
}

/// `Ok(None)` for an error the server returned (typically a missing privilege), so that
/// a check that cannot read what it needs says so instead of failing the whole preflight.
fn soft<T>(r: Result<T, MysqlError>) -> Result<Option<T>, MysqlError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.server_code().is_some() => {
            tracing::debug!("preflight query refused: {e}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn account_grants<S: SqlSession + ?Sized>(s: &mut S) -> Result<AccountGrants, MysqlError> {
    let who = s
        .column("SELECT CURRENT_USER()", "reading the current user")
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    let (user, host) = split_definer(&who);
    // MariaDB answers a role name (or NULL); MySQL a list of `role`@`host` (or NONE),
    // which is left to the default-role lines.
    let active_roles = soft(
        s.column("SELECT CURRENT_ROLE()", "reading the active role")
            .await,
    )?
    .and_then(|v| v.into_iter().next())
    .and_then(|r| match r.as_str() {
        "" => Some(vec![]),
        r if r.contains('@') || r.eq_ignore_ascii_case("NONE") => None,
        r => Some(vec![Account::role(r)]),
    });
    let lines = soft(s.column("SHOW GRANTS", "SHOW GRANTS").await)?;
    let mut unparsed = 0;
    let mut parse = |lines: Vec<String>, into: &mut Vec<Grant>| {
        for l in &lines {
            match parse_grant(l) {
                Ok(x) => into.push(x),
                Err(_) => unparsed += 1,
            }
        }
    };
    let grants = match lines {
        None => None,
        Some(lines) => {
            let mut g = Vec::new();
            parse(lines, &mut g);
            // The lines of the active roles and the roles granted to them, where SHOW
            // GRANTS did not include them: fetched once each (role grants may form
            // cycles in what a server shows).
            let me = Account::new(user.clone(), host.clone());
            let mut tried: Vec<Account> = Vec::new();
            loop {
                let active = active_roles
                    .clone()
                    .or_else(|| default_roles(&g, &me))
                    .unwrap_or_default();
                let todo: Vec<Account> = roles_without_lines(&g, &active)
                    .into_iter()
                    .filter(|r| !tried.contains(r))
                    .collect();
                if todo.is_empty() {
                    break;
                }
                for r in todo {
                    let sql = format!("SHOW GRANTS FOR {r}");
                    if let Some(lines) = soft(s.column(&sql, &sql).await)? {
                        parse(lines, &mut g);
                    }
                    tried.push(r);
                }
            }
            Some(g)
        }
    };
    Ok(AccountGrants {
        user,
        host,
        grants,
        unparsed,
        active_roles,
    })
}

async fn server_facts<S: SqlSession + ?Sized>(
    s: &mut S,
    role: Role,
) -> Result<ServerFacts, MysqlError> {
    let info = probe(s).await?;
    let mut f = ServerFacts::new(role, info);
    f.grants = account_grants(s).await?;
    let names = VARIABLES
        .iter()
        .map(|v| quote::string(v))
        .collect::<Vec<_>>()
        .join(",");
    let rows = s
        .rows(
            &format!("SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})"),
            "reading global variables",
        )
        .await?;
    for r in rows {
        let name = r.text(0).unwrap_or_default();
        let value = r.text(1).unwrap_or_default();
        f.variables.insert(name.to_ascii_lowercase(), value);
    }
    if f.info.log_bin {
        if let Some(rows) = soft(s.rows("SHOW BINARY LOGS", "SHOW BINARY LOGS").await)? {
            f.binlogs = rows
                .iter()
                .map(|r| BinlogFile {
                    name: r.text(0).unwrap_or_default(),
                    size: r.parse(1).unwrap_or(0),
                })
                .collect();
        }
    }
    f.time_zone_names = soft(
        s.column(
            "SELECT COUNT(*) FROM mysql.time_zone_name",
            "counting time zones",
        )
        .await,
    )?
    .and_then(|v| v.first().and_then(|n| n.parse().ok()));
    if role == Role::Replica {
        let d = crate::dialect::Dialect::new(f.info.flavor, f.info.version);
        f.has_replication_config = soft(replication_status(s, &d).await)?.flatten().is_some();
        f.accounts = data_facts_accounts(s).await?;
    }
    Ok(f)
}

/// Tables whose largest row is measured in one statement, at most.
const MEASURE_BATCH_TABLES: usize = 100;
/// Bytes of tables whose largest row is measured in one statement, at most (one table
/// larger than this is measured alone).
const MEASURE_BATCH_BYTES: u64 = 64 * MIB;

/// How long the checks measure rows, at most; the rows of the tables left are estimated
/// (on a server with very many tables).
const MEASURE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the master's tables, their keys and large columns, and its other objects, in a
/// few set-based statements (one per `information_schema` table: a correlated
/// subquery per table is quadratic on a server with many tables).
async fn data_facts<S: SqlSession + ?Sized>(s: &mut S) -> Result<DataFacts, MysqlError> {
    let sys = system_list();
    let mut d = DataFacts::default();
    let rows = s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(ENGINE, ''), \
                 COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0), COALESCE(AVG_ROW_LENGTH, 0) \
                 FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ({sys})"
            ),
            "listing the master's tables",
        )
        .await?;
    let keyed: BTreeSet<(String, String)> = s
        .rows(
            &format!(
                "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME FROM information_schema.STATISTICS \
                 WHERE INDEX_NAME = 'PRIMARY' AND TABLE_SCHEMA NOT IN ({sys})"
            ),
            "listing the master's primary keys",
        )
        .await?
        .iter()
        .map(|r| {
            let g = |i| r.text(i).unwrap_or_default();
            (g(0), g(1))
        })
        .collect();
    for r in &rows {
        let get = |i: usize| r.text_or_empty(i);
        let (db, name) = (get(0), get(1));
        let has_primary_key = keyed.contains(&(db.clone(), name.clone()));
        d.tables.push(TableFacts {
            db,
            name,
            engine: get(2),
            bytes: get(3).parse().unwrap_or(0),
            avg_row_length: get(4).parse().unwrap_or(0),
            has_primary_key,
        });
    }
    d.tables
        .sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
    // Largest rows: measured over the large columns of tables small enough to scan,
    // estimated from AVG_ROW_LENGTH otherwise.
    let lob_rows = s
        .rows(
            &format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA NOT IN ({sys}) AND DATA_TYPE IN \
                 ('tinyblob','blob','mediumblob','longblob','tinytext','text','mediumtext','longtext','json') \
                 ORDER BY 1, 2, ORDINAL_POSITION"
            ),
            "listing large columns",
        )
        .await?;
    let mut lobs: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in &lob_rows {
        let g = |i| r.text(i).unwrap_or_default();
        lobs.entry((g(0), g(1))).or_default().push(g(2));
    }
    let to_measure: Vec<(usize, String)> = d
        .tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.bytes <= MEASURE_ROWS_UP_TO_BYTES)
        .filter_map(|(i, t)| {
            let cols = lobs.get(&(t.db.clone(), t.name.clone()))?;
            let sum = cols
                .iter()
                .map(|c| format!("COALESCE(LENGTH({}), 0)", quote::ident(c)))
                .collect::<Vec<_>>()
                .join(" + ");
            Some((i, format!("SELECT {i}, MAX({sum}) FROM {}", t.qualified())))
        })
        .collect();
    let mut measured: BTreeMap<usize, u64> = BTreeMap::new();
    let batches = measure_batches(&to_measure, |i| d.tables[i].bytes);
    let started = std::time::Instant::now();
    for batch in batches {
        if started.elapsed() >= MEASURE_BUDGET {
            tracing::debug!("time to measure rows used up: the other tables' rows are estimated");
            break;
        }
        measure(s, batch, &mut measured).await?;
    }
    for (i, t) in d.tables.iter().enumerate() {
        match measured.get(&i) {
            Some(&b) => d.rows.push(RowSize {
                table: t.qualified(),
                bytes: b.max(t.avg_row_length),
                measured: true,
            }),
            None if t.avg_row_length > 0 => d.rows.push(RowSize {
                table: t.qualified(),
                bytes: t.avg_row_length,
                measured: false,
            }),
            None => {}
        }
    }
    d.rows.sort_by_key(|r| std::cmp::Reverse(r.bytes));
    d.rows.truncate(5);

    let objects = soft(
        s.rows(
            &format!(
                "SELECT 'VIEW', TABLE_SCHEMA, TABLE_NAME, DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ({sys}) \
                 UNION ALL SELECT ROUTINE_TYPE, ROUTINE_SCHEMA, ROUTINE_NAME, DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ({sys}) \
                 UNION ALL SELECT 'TRIGGER', TRIGGER_SCHEMA, TRIGGER_NAME, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ({sys}) \
                 UNION ALL SELECT 'EVENT', EVENT_SCHEMA, EVENT_NAME, DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA NOT IN ({sys})"
            ),
            "listing views, routines, triggers and events",
        )
        .await,
    )?
    .unwrap_or_default();
    for r in &objects {
        let g = |i| r.text(i).unwrap_or_default();
        d.objects.push(DefinedObject {
            kind: g(0),
            db: g(1),
            name: g(2),
            definer: g(3),
        });
    }
    d.accounts = data_facts_accounts(s).await?;
    Ok(d)
}

/// Groups the per-table measuring statements into `UNION ALL` batches of at most
/// [`MEASURE_BATCH_TABLES`] tables and (unless one table alone is larger)
/// [`MEASURE_BATCH_BYTES`].
fn measure_batches(
    selects: &[(usize, String)],
    bytes: impl Fn(usize) -> u64,
) -> Vec<&[(usize, String)]> {
    let mut out = Vec::new();
    let (mut start, mut sum) = (0, 0u64);
    for (k, (i, _)) in selects.iter().enumerate() {
        let b = bytes(*i);
        if k > start && (k - start >= MEASURE_BATCH_TABLES || sum + b > MEASURE_BATCH_BYTES) {
            out.push(&selects[start..k]);
            (start, sum) = (k, 0);
        }
        sum += b;
    }
    if start < selects.len() {
        out.push(&selects[start..]);
    }
    out
}

#[cfg(test)]
mod measure_tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_so_many_tables_and_bytes() {
        let selects: Vec<(usize, String)> = (0..250).map(|i| (i, format!("q{i}"))).collect();
        let sizes = |b: &[&[(usize, String)]]| b.iter().map(|x| x.len()).collect::<Vec<_>>();
        assert_eq!(sizes(&measure_batches(&selects, |_| 0)), [100, 100, 50]);
        // 30 MiB each: two fit under 64 MiB; a table larger than that goes alone.
        let b = measure_batches(&selects[..5], |i| if i == 2 { 100 * MIB } else { 30 * MIB });
        assert_eq!(sizes(&b), [2, 1, 2]);
        assert!(measure_batches(&[], |_| 0).is_empty());
    }
}

/// Measures the largest row of each table of `batch` in one statement. A batch the
/// server refuses (a table the user may not read) is measured table by table; a table
/// it refuses, or a statement that runs out of time, is left to the estimate.
async fn measure<S: SqlSession + ?Sized>(
    s: &mut S,
    batch: &[(usize, String)],
    measured: &mut BTreeMap<usize, u64>,
) -> Result<(), MysqlError> {
    let sql = batch
        .iter()
        .map(|(_, q)| q.as_str())
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    match s.rows(&sql, "measuring the largest rows").await {
        Ok(rows) => {
            for r in rows {
                let g = |i| r.text(i).and_then(|v| v.parse().ok());
                if let (Some(i), Some(b)) = (g(0), g(1)) {
                    measured.insert(i as usize, b);
                }
            }
            Ok(())
        }
        Err(e @ MysqlError::StatementTimeout { .. }) => {
            tracing::debug!("largest rows left to the estimate: {e}");
            Ok(())
        }
        Err(e) if e.server_code().is_some() && batch.len() > 1 => {
            for one in batch {
                Box::pin(measure(s, std::slice::from_ref(one), measured)).await?;
            }
            Ok(())
        }
        Err(e) => soft(Err::<(), _>(e)).map(|_| ()),
    }
}

async fn repl_user_facts<S: SqlSession + ?Sized>(
    s: &mut S,
    name: &str,
) -> Result<ReplUserFacts, MysqlError> {
    let accounts = soft(
        s.rows(
            &format!(
                "SELECT Host, plugin FROM mysql.user WHERE User = {}",
                quote::string(name)
            ),
            "looking up the replication user",
        )
        .await,
    )?
    .map(|rows| {
        rows.iter()
            .map(|r| (r.text(0).unwrap_or_default(), r.text(1).unwrap_or_default()))
            .collect()
    });
    Ok(ReplUserFacts {
        name: name.to_string(),
        accounts,
    })
}

/// True for a host name that means this machine (one definition, in core).
pub use amsu_core::is_local_host;

// The statvfs field types differ between platforms.
#[allow(clippy::unnecessary_cast)]
fn local_free_space(datadir: &str) -> DiskSpace {
    match nix::sys::statvfs::statvfs(datadir) {
        Ok(st) => DiskSpace::Free {
            datadir: datadir.to_string(),
            bytes: st.blocks_available() as u64 * st.fragment_size() as u64,
        },
        Err(e) => DiskSpace::Unreadable {
            datadir: datadir.to_string(),
            reason: e.desc().to_string(),
        },
    }
}

/// The MySQL/MariaDB preflight checks, for `amsu check` and before `amsu setup` changes
/// anything (as an [`amsu_core::Preflight`]). Read-only on both servers.
pub struct MysqlPreflight {
    master: ServerAddr,
    admin: Option<ServerAddr>,
    replica: Option<ServerAddr>,
    options: CheckOptions,
    events: Arc<dyn EventSink>,
    data_source: Option<ServerAddr>,
}

impl fmt::Debug for MysqlPreflight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ServerAddr's Debug hides passwords.
        f.debug_struct("MysqlPreflight")
            .field("master", &self.master)
            .field("admin", &self.admin)
            .field("replica", &self.replica)
            .field("options", &self.options)
            .finish()
    }
}

impl MysqlPreflight {
    /// Checks of the master at `master` (its URL user is the one checked for the copy).
    /// Default: no admin account, no replica, [`CheckOptions::default`].
    pub fn new(master: ServerAddr) -> Self {
        MysqlPreflight {
            master,
            admin: None,
            replica: None,
            options: CheckOptions::default(),
            events: Arc::new(NoEvents),
            data_source: None,
        }
    }

    /// Reads the data's facts (tables, their sizes, the largest rows, accounts) from
    /// `source` instead of the master: a donor replica the copy reads from
    /// (`--donor`), so that the checks do not scan the master's tables either.
    /// Default: the master.
    pub fn data_from(mut self, source: Option<ServerAddr>) -> Self {
        self.data_source = source;
        self
    }

    /// Where the checks report their progress (the catalog read, with the number of
    /// tables found). Default: nowhere.
    pub fn events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// The admin account that creates the replication user and sets server_id.
    pub fn admin(mut self, admin: Option<ServerAddr>) -> Self {
        self.admin = admin;
        self
    }

    /// Also checks this replica.
    pub fn replica(mut self, replica: Option<ServerAddr>) -> Self {
        self.replica = replica;
        self
    }

    /// The options of the setup being checked.
    pub fn options(mut self, options: CheckOptions) -> Self {
        self.options = options;
        self
    }

    /// Reads everything `evaluate` needs; read-only.
    pub async fn facts(&self) -> Result<Facts, MysqlError> {
        let mut m = Session::open_bounded(&self.master).await?;
        let master = server_facts(&mut m, Role::Master).await?;
        let data_role = match self.data_source {
            Some(_) => Role::Donor,
            None => Role::Master,
        };
        self.events.emit(&Event::CatalogReading {
            server: data_role,
            purpose: "the checks".into(),
        });
        let started = std::time::Instant::now();
        let data = match &self.data_source {
            // A donor that cannot be reached is the donor checks' finding
            // (`donor_unreachable`, which blocks the setup): the data's checks have
            // nothing to read then.
            Some(source) => match Session::open_bounded(source).await {
                Ok(mut d) => data_facts(&mut d).await?,
                Err(e) => {
                    tracing::debug!(error = %e, "the donor cannot be reached; its data is not checked");
                    DataFacts::default()
                }
            },
            None => data_facts(&mut m).await?,
        };
        self.events.emit(&Event::CatalogRead {
            server: data_role,
            databases: data
                .tables
                .iter()
                .map(|t| t.db.as_str())
                .collect::<BTreeSet<_>>()
                .len() as u64,
            tables: data.tables.len() as u64,
            millis: started.elapsed().as_millis() as u64,
        });
        let (admin, mut meta) = match &self.admin {
            Some(a) => {
                let mut s = Session::open_bounded(a).await?;
                (Some(account_grants(&mut s).await?), s)
            }
            None => (None, m),
        };
        let mut data = data;
        if data.accounts.is_none() && self.admin.is_some() {
            // The admin may read mysql.user where the URL user may not.
            let accounts = data_facts_accounts(&mut meta).await?;
            data.accounts = accounts;
        }
        let repl_user = repl_user_facts(&mut meta, &self.options.repl_user).await?;
        let (replica, replica_disk) = match &self.replica {
            None => (None, DiskSpace::NoReplica),
            Some(addr) => {
                let mut r = Session::open_bounded(addr).await?;
                let rf = server_facts(&mut r, Role::Replica).await?;
                let disk = if is_local_host(&addr.host) {
                    match rf.var("datadir") {
                        Some(d) => local_free_space(d),
                        None => DiskSpace::Unreadable {
                            datadir: "?".into(),
                            reason: "@@datadir is not readable".into(),
                        },
                    }
                } else {
                    DiskSpace::NotLocal {
                        host: addr.host.clone(),
                    }
                };
                (Some(rf), disk)
            }
        };
        Ok(Facts {
            master,
            admin,
            replica,
            data,
            repl_user,
            replica_disk,
        })
    }
}

async fn data_facts_accounts<S: SqlSession + ?Sized>(
    s: &mut S,
) -> Result<Option<Vec<(String, String)>>, MysqlError> {
    Ok(soft(
        s.rows("SELECT User, Host FROM mysql.user", "listing accounts")
            .await,
    )?
    .map(|rows| {
        rows.iter()
            .map(|r| (r.text(0).unwrap_or_default(), r.text(1).unwrap_or_default()))
            .collect()
    }))
}

#[async_trait]
impl amsu_core::Preflight for MysqlPreflight {
    async fn findings(&self) -> Result<Vec<Finding>, BoxError> {
        self.findings_in(&amsu_core::PreflightContext::default())
            .await
    }

    async fn findings_in(
        &self,
        context: &amsu_core::PreflightContext,
    ) -> Result<Vec<Finding>, BoxError> {
        Ok(self.prepare(context).await?.findings)
    }

    /// The findings, and with [`CheckOptions::protect_binlogs`] the binary log retention
    /// raise the setup needs (`retention_plan`). The master is judged as it was before
    /// an interrupted earlier run raised its retention (the journaled originals).
    async fn prepare(
        &self,
        context: &amsu_core::PreflightContext,
    ) -> Result<amsu_core::Prepared, BoxError> {
        let mut facts = self.facts().await?;
        for g in &context.master_raised {
            if facts.master.variables.contains_key(&g.name) {
                facts
                    .master
                    .variables
                    .insert(g.name.clone(), g.original.clone());
            }
        }
        let mut opts = self.options.clone();
        opts.own_replication_config |= context.own_replication_config;
        let raise = match retention_plan(&facts.master, facts.data.total_bytes()) {
            Some(plan) if opts.protect_binlogs => vec![plan.change()],
            _ => vec![],
        };
        Ok(amsu_core::Prepared::new(evaluate(&facts, &opts)).master_globals(raise))
    }
}

mod accounts;

#[cfg(test)]
mod reader_tests;
#[cfg(test)]
mod tests;
