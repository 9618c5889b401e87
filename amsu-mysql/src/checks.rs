//! Preflight checks of a master (and optionally a replica) over MySQL/MariaDB: every
//! problem a setup would run into, found before anything changes, each with its fix.
//!
//! The work is split the usual way: [`MysqlPreflight::facts`] reads a [`Facts`] value with
//! a handful of read-only queries, and [`evaluate`] decides from it, in pure code, which
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

use amsu_core::{FindingCode, Remedy};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use amsu_core::{
    BoxError, Event, EventSink, Finding, Flavor, NoEvents, Role, ServerAddr, ServerInfo, Severity,
    Version,
};
use async_trait::async_trait;

use crate::conn::{row_texts, text, Session};
use crate::grants::{
    default_roles, effective_grants, granted_roles, parse_grant, required, role_closure,
    roles_without_lines, Account, Grant, Need, Privilege, Scope, StepKind,
};
use crate::server::{probe, replication_status, SYSTEM_DATABASES};
use crate::{quote, MysqlError};

const MIB: u64 = 1024 * 1024;

/// Assumed end-to-end rate of a logical copy (read on the master, load on the replica),
/// used to estimate how long a setup takes: 20 MiB/s.
pub const ASSUMED_BYTES_PER_SEC: u64 = 20 * MIB;
/// Fixed part of the estimate (connections, schema, replica start): 60 s.
pub const FIXED_OVERHEAD_SECS: u64 = 60;
/// The binary logs must be kept at least this long, whatever the data size: 1 hour.
pub const MIN_RETENTION_SECS: u64 = 3600;
/// Tables with large columns up to this size are scanned for their largest row
/// (`MAX(LENGTH(…))`); bigger ones are estimated from `AVG_ROW_LENGTH`.
pub const MEASURE_ROWS_UP_TO_BYTES: u64 = 256 * MIB;

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
    pub fn total_bytes(&self) -> u64 {
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
pub fn evaluate(facts: &Facts, opts: &CheckOptions) -> Vec<Finding> {
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

// ---------------------------------------------------------------------------------------
// Privileges

/// One unit of work an account must be able to do, for [`privilege_findings`].
struct Work {
    label: &'static str,
    needs: Vec<Need>,
}

fn work(step: StepKind, label: &'static str, flavor: Flavor, version: Version) -> Work {
    Work {
        label,
        needs: required(step, flavor, version),
    }
}

/// The privilege to raise the binary log retention with `SET GLOBAL`.
pub fn retention_need(flavor: Flavor, version: Version) -> Need {
    let alts: &[&str] = if flavor == Flavor::MariaDb && version >= Version::new(10, 5, 2) {
        &["BINLOG ADMIN", "SUPER"]
    } else if flavor == Flavor::MySql && version >= Version::new(8, 0, 0) {
        &["SYSTEM_VARIABLES_ADMIN", "SUPER"]
    } else {
        &["SUPER"]
    };
    Need {
        any_of: alts.iter().map(|p| Privilege::new(p)).collect(),
        scope: Scope::Global,
        grant_option: false,
        reason: "raise the binary log retention for the setup (binlog protection)",
    }
}

/// Missing privileges per account and step: the master's URL user for the snapshot, the
/// admin account (or the URL user) for the replication user and server_id, the replica's
/// user for everything done there; pure.
pub fn privilege_findings(facts: &Facts, opts: &CheckOptions) -> Vec<Finding> {
    let m = &facts.master.info;
    let (mf, mv) = (m.flavor, m.version);
    let mut out = Vec::new();

    // The snapshot's needs include reading the binlog position.
    let master_work = vec![work(
        opts.snapshot,
        "copy_data (consistent snapshot)",
        mf,
        mv,
    )];
    out.extend(account_findings(
        Role::Master,
        "master",
        &facts.master.grants,
        &master_work,
    ));

    let mut admin_work = Vec::new();
    let repl_exists = facts
        .repl_user
        .accounts
        .as_ref()
        .is_some_and(|a| !a.is_empty());
    if !repl_exists {
        admin_work.push(work(
            StepKind::CreateReplicationUser,
            "replication_user (create it)",
            mf,
            mv,
        ));
    }
    if m.server_id == 0 {
        admin_work.push(work(
            StepKind::SetMasterServerId,
            "master_config (server_id)",
            mf,
            mv,
        ));
    }
    if opts.protect_binlogs && retention_plan(&facts.master, facts.data.total_bytes()).is_some() {
        admin_work.push(Work {
            label: "binlog retention (binlog protection)",
            needs: vec![retention_need(mf, mv)],
        });
    }
    let (admin, admin_label) = match &facts.admin {
        Some(a) => (a, "master admin"),
        None => (&facts.master.grants, "master"),
    };
    out.extend(account_findings(
        Role::Master,
        admin_label,
        admin,
        &admin_work,
    ));

    if let Some(r) = &facts.replica {
        let (rf, rv) = (r.info.flavor, r.info.version);
        let mut w = vec![work(StepKind::ReplicaChecks, "replica_checks", rf, rv)];
        if opts.force {
            w.push(work(
                StepKind::ResetReplica,
                "replica_checks (force: reset replication)",
                rf,
                rv,
            ));
            w.push(work(
                StepKind::DropDatabases,
                "replica_checks (force: drop databases)",
                rf,
                rv,
            ));
        }
        w.push(work(
            StepKind::ConfigureReplica,
            "configure_replica",
            rf,
            rv,
        ));
        if opts.snapshot != StepKind::PhysicalBackup {
            w.push(work(
                StepKind::LogicalRestore,
                "copy_data (restore)",
                rf,
                rv,
            ));
            w.push(work(
                StepKind::RestoreAccounts,
                "copy_data (accounts)",
                rf,
                rv,
            ));
        }
        w.push(work(StepKind::ChangeMaster, "change_master", rf, rv));
        w.push(work(StepKind::StartReplica, "start_replica", rf, rv));
        out.extend(account_findings(Role::Replica, "replica", &r.grants, &w));
    }
    out
}

fn account_findings(
    role: Role,
    label: &str,
    account: &AccountGrants,
    work: &[Work],
) -> Vec<Finding> {
    if work.is_empty() {
        return vec![];
    }
    let Some(grants) = &account.grants else {
        return vec![Finding::warning(
                role,
                FindingCode::GrantsUnknown,
                format!(
                    "the {label} account {} could not read its own privileges (SHOW GRANTS); they were not checked",
                    account.account()
                ),
                "none needed; missing privileges will show as errors during the setup",
            ).with_severity(Severity::Info)];
    };
    let me = account.grantee();
    let held = granted_roles(grants, &me);
    let active = account.active(grants);
    let (effective, inactive, unreadable) = match &active {
        Some(active) => {
            let closure = role_closure(grants, active);
            let inactive: Vec<Account> = held
                .iter()
                .filter(|r| !closure.contains(r))
                .cloned()
                .collect();
            (
                effective_grants(grants, &me, active),
                inactive,
                roles_without_lines(grants, active),
            )
        }
        // Which roles are active is unknown: count only the account's own lines, and
        // warn instead of blocking when it holds roles.
        None => (effective_grants(grants, &me, &[]), vec![], held.clone()),
    };
    let role_names = |roles: &[Account]| {
        roles
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    for w in work {
        let missing = crate::grants::missing(&effective, &w.needs);
        if missing.is_empty() {
            continue;
        }
        let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
        let mut problem = format!(
            "the {label} account {} lacks {}, needed by step {}",
            account.account(),
            names.join("; "),
            w.label
        );
        if account.unparsed > 0 {
            problem.push_str(&format!(
                " ({} SHOW GRANTS line(s) could not be read)",
                account.unparsed
            ));
        }
        if !inactive.is_empty() {
            problem.push_str(&format!(
                "; its role(s) {} are not active at login (not its default role), so their privileges do not count: `SET DEFAULT ROLE <role> FOR {}` would make one active",
                role_names(&inactive),
                account.account()
            ));
        }
        let severity = if unreadable.is_empty() {
            Severity::Blocking
        } else {
            problem.push_str(&format!(
                "; the privileges of its role(s) {} could not be read: check that an active role gives it",
                role_names(&unreadable)
            ));
            Severity::Warning
        };
        let grants = grant_statements(&missing, &account.account());
        let fix = format!("as an administrator on the {role}: {grants}");
        out.push(
            Finding::blocking(role, FindingCode::MissingPrivilege, problem, fix)
                .with_severity(severity)
                .with_remedy(Remedy::Sql(grants)),
        );
    }
    out
}

/// `GRANT a, b ON scope TO account [WITH GRANT OPTION];` per scope and grant option, the
/// first alternative of each need.
fn grant_statements(needs: &[Need], account: &str) -> String {
    let mut groups: Vec<((String, bool), Vec<String>)> = Vec::new();
    for n in needs {
        let key = (n.scope.to_string(), n.grant_option);
        let p = n.any_of[0].to_string();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) if !v.contains(&p) => v.push(p),
            Some(_) => {}
            None => groups.push((key, vec![p])),
        }
    }
    groups
        .into_iter()
        .map(|((scope, go), privs)| {
            format!(
                "GRANT {} ON {scope} TO {account}{};",
                privs.join(", "),
                if go { " WITH GRANT OPTION" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------
// Binary log retention

/// How long the binary logs are kept, in seconds: `binlog_expire_logs_seconds` when set,
/// else `expire_logs_days`; `None` when they are never purged by age (both 0).
pub fn binlog_retention_secs(vars: &BTreeMap<String, String>) -> Option<u64> {
    let num = |n: &str| vars.get(n).and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(s) = num("binlog_expire_logs_seconds").filter(|s| *s > 0.0) {
        return Some(s as u64);
    }
    num("expire_logs_days")
        .filter(|d| *d > 0.0)
        .map(|d| (d * 86400.0) as u64)
}

/// Estimated duration of a setup copying `bytes`: [`FIXED_OVERHEAD_SECS`] plus the bytes
/// at [`ASSUMED_BYTES_PER_SEC`].
pub fn estimate_setup_secs(bytes: u64) -> u64 {
    FIXED_OVERHEAD_SECS + bytes / ASSUMED_BYTES_PER_SEC
}

/// The retention a setup copying `bytes` needs: twice the estimate (the replica starts
/// reading the binary log only after the copy, and slower disks or networks happen), and
/// at least [`MIN_RETENTION_SECS`].
pub fn required_retention_secs(bytes: u64) -> u64 {
    (2 * estimate_setup_secs(bytes)).max(MIN_RETENTION_SECS)
}

/// How amsu raises a too-short retention for the setup and restores it afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// The variable set: `binlog_expire_logs_seconds`, or `expire_logs_days` where the
    /// server lacks it.
    pub variable: String,
    /// Its value before (restored afterwards), as the server showed it.
    pub original: String,
    /// The value during the setup.
    pub raised: String,
}

impl RetentionPlan {
    /// As the change the setup plans ([`amsu_core::Action::RaiseBinlogRetention`]).
    pub fn change(&self) -> amsu_core::GlobalChange {
        amsu_core::GlobalChange {
            name: self.variable.clone(),
            original: self.original.clone(),
            relaxed: self.raised.clone(),
        }
    }

    /// `SET GLOBAL variable = raised`.
    pub fn raise_sql(&self) -> String {
        format!("SET GLOBAL {} = {}", self.variable, self.raised)
    }

    /// `SET GLOBAL variable = original`.
    pub fn restore_sql(&self) -> String {
        format!("SET GLOBAL {} = {}", self.variable, self.original)
    }
}

impl fmt::Display for RetentionPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} raised from {} to {}",
            self.variable, self.original, self.raised
        )
    }
}

/// The raise a master with a binary log needs for a setup copying `bytes`, `None` when
/// its retention is long enough (or it has no binary log); pure.
pub fn retention_plan(master: &ServerFacts, bytes: u64) -> Option<RetentionPlan> {
    if !master.info.log_bin {
        return None;
    }
    let have = binlog_retention_secs(&master.variables)?;
    let need = required_retention_secs(bytes);
    if have >= need {
        return None;
    }
    if let Some(orig) = master.var("binlog_expire_logs_seconds") {
        Some(RetentionPlan {
            variable: "binlog_expire_logs_seconds".into(),
            original: orig.trim().to_string(),
            raised: need.to_string(),
        })
    } else {
        Some(RetentionPlan {
            variable: "expire_logs_days".into(),
            original: master
                .var("expire_logs_days")
                .unwrap_or("0")
                .trim()
                .to_string(),
            raised: need.div_ceil(86400).to_string(),
        })
    }
}

fn human_bytes(b: u64) -> String {
    if b >= 1024 * MIB {
        format!("{:.1} GiB", b as f64 / (1024 * MIB) as f64)
    } else if b >= MIB {
        format!("{:.1} MiB", b as f64 / MIB as f64)
    } else if b >= 1024 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} bytes")
    }
}

fn human_secs(s: u64) -> String {
    if s >= 86400 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s >= 3600 {
        format!("{:.1} h", s as f64 / 3600.0)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// Binary log retention against the setup's estimated duration; pure. Blocking when too
/// short, unless `protect` (`--protect-binlogs`): then information on what amsu raises.
pub fn retention_findings(master: &ServerFacts, bytes: u64, protect: bool) -> Vec<Finding> {
    let Some(plan) = retention_plan(master, bytes) else {
        return vec![];
    };
    let have = binlog_retention_secs(&master.variables).unwrap_or(0);
    let estimate = estimate_setup_secs(bytes);
    let need = required_retention_secs(bytes);
    let oldest = match master.binlogs.first() {
        Some(b) => format!(
            "; the oldest binary log still present is {} ({} file(s), {} in all)",
            b.name,
            master.binlogs.len(),
            human_bytes(master.binlogs.iter().map(|b| b.size).sum())
        ),
        None => String::new(),
    };
    let problem = format!(
        "binary logs are kept for {} ({} = {}) but the setup is estimated to take {} ({} of data at an assumed {} MiB/s plus {} s), so it needs them kept for at least {}: the logs the replica must start from could be purged before it reads them{oldest}",
        human_secs(have),
        plan.variable,
        plan.original,
        human_secs(estimate),
        human_bytes(bytes),
        ASSUMED_BYTES_PER_SEC / MIB,
        FIXED_OVERHEAD_SECS,
        human_secs(need),
    );
    let option_line = if plan.variable == "binlog_expire_logs_seconds" {
        format!("binlog_expire_logs_seconds = {need}")
    } else {
        format!("expire_logs_days = {}", need.div_ceil(86400))
    };
    if protect {
        vec![Finding::warning(
                Role::Master,
                FindingCode::BinlogRetention,
                problem,
                format!(
                    "binlog protection: amsu runs `{}` on the master for the setup's duration and `{}` afterwards",
                    plan.raise_sql(),
                    plan.restore_sql()
                ),
            ).with_remedy(Remedy::setting("protect_binlogs")).with_severity(Severity::Info)]
    } else {
        vec![Finding::blocking(
            Role::Master,
            FindingCode::BinlogRetention,
            problem,
            format!(
                "let amsu raise it for the setup and restore it afterwards (binlog protection), or on the master `{}` and `{option_line}` under [mysqld] in its option file",
                plan.raise_sql()
            ),
        ).with_remedy(Remedy::setting("protect_binlogs"))]
    }
}

// ---------------------------------------------------------------------------------------
// Tables

/// Engines whose tables are copied inside the consistent snapshot (lower case).
pub const TRANSACTIONAL_ENGINES: &[&str] = &["innodb", "rocksdb", "tokudb", "ndbcluster", "ndb"];

fn list_tables(tables: &[&TableFacts], with_engine: bool) -> String {
    const SHOWN: usize = 10;
    let mut parts: Vec<String> = tables
        .iter()
        .take(SHOWN)
        .map(|t| {
            if with_engine {
                format!("{} ({}, {})", t.qualified(), t.engine, human_bytes(t.bytes))
            } else {
                t.qualified()
            }
        })
        .collect();
    if tables.len() > SHOWN {
        parts.push(format!("and {} more", tables.len() - SHOWN));
    }
    parts.join(", ")
}

/// Non-transactional tables and tables without a primary key; pure.
pub fn table_findings(tables: &[TableFacts]) -> Vec<Finding> {
    let mut out = Vec::new();
    let non_tx: Vec<&TableFacts> = tables
        .iter()
        .filter(|t| !TRANSACTIONAL_ENGINES.contains(&t.engine.to_ascii_lowercase().as_str()))
        .collect();
    if !non_tx.is_empty() {
        let bytes: u64 = non_tx.iter().map(|t| t.bytes).sum();
        let engines: BTreeSet<&str> = non_tx.iter().map(|t| t.engine.as_str()).collect();
        out.push(Finding::warning(
            Role::Master,
            FindingCode::NonTransactionalTables,
            format!(
                "{} non-transactional table(s) ({}): {}. A consistent copy of them needs the master's commits blocked while they are read (BACKUP STAGE BLOCK_COMMIT also blocks writes to them), so the master stalls about {} longer ({} at an assumed {} MiB/s)",
                non_tx.len(),
                engines.into_iter().collect::<Vec<_>>().join(", "),
                list_tables(&non_tx, true),
                human_secs(bytes / ASSUMED_BYTES_PER_SEC),
                human_bytes(bytes),
                ASSUMED_BYTES_PER_SEC / MIB,
            ),
            format!(
                "convert them where the application allows, on the master: {}",
                non_tx
                    .iter()
                    .take(10)
                    .map(|t| format!("ALTER TABLE {} ENGINE=InnoDB;", t.qualified()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ));
    }
    let no_pk: Vec<&TableFacts> = tables.iter().filter(|t| !t.has_primary_key).collect();
    if !no_pk.is_empty() {
        out.push(Finding::warning(
            Role::Master,
            FindingCode::NoPrimaryKey,
            format!(
                "{} table(s) without a primary key: {}. They cannot be copied in parallel chunks, and with row-based replication every UPDATE or DELETE on them makes the replica scan the table per row",
                no_pk.len(),
                list_tables(&no_pk, false)
            ),
            format!(
                "add a primary key on the master, e.g. {}",
                no_pk
                    .iter()
                    .take(3)
                    .map(|t| format!(
                        "ALTER TABLE {} ADD COLUMN amsu_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY INVISIBLE;",
                        t.qualified()
                    ))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// max_allowed_packet

/// The packet size to suggest for a row of `bytes`: twice it, rounded up to a MiB, at
/// most 1 GiB.
fn suggested_packet(bytes: u64) -> u64 {
    (2 * bytes)
        .div_ceil(MIB)
        .max(1)
        .saturating_mul(MIB)
        .min(1024 * MIB)
}

/// The largest row against `max_allowed_packet` on the master (the copy reads it) and on
/// the replica (`max_allowed_packet` for the load, `slave_max_allowed_packet` for
/// replication); pure. A measured row over the limit blocks; an estimate warns.
pub fn packet_findings(
    master: &ServerFacts,
    replica: Option<&ServerFacts>,
    rows: &[RowSize],
) -> Vec<Finding> {
    let Some(largest) = rows.iter().max_by_key(|r| r.bytes) else {
        return vec![];
    };
    let mut limits: Vec<(Role, &str, u64)> = Vec::new();
    for s in std::iter::once(master).chain(replica) {
        if let Some(v) = s.var_u64("max_allowed_packet") {
            limits.push((s.role, "max_allowed_packet", v));
        }
        if s.role == Role::Replica {
            for n in ["slave_max_allowed_packet", "replica_max_allowed_packet"] {
                if let Some(v) = s.var_u64(n) {
                    limits.push((s.role, n, v));
                    break;
                }
            }
        }
    }
    let mut out = Vec::new();
    let how = if largest.measured {
        "measured with MAX(LENGTH()) over its BLOB/TEXT/JSON columns"
    } else {
        "estimated from AVG_ROW_LENGTH, so the largest row may be bigger"
    };
    for (role, var, limit) in limits {
        // A row needs some room for the packet's own framing and the statement around it.
        if largest.bytes + 1024 <= limit {
            continue;
        }
        let want = suggested_packet(largest.bytes);
        let problem = format!(
            "the largest row found, in {}, has about {} ({how}); the {role}'s {var} is {}: a row must fit in one packet to be copied and replicated",
            largest.table,
            human_bytes(largest.bytes),
            human_bytes(limit),
        );
        let fix = format!(
            "on the {role}: SET GLOBAL {var} = {want}; and `{var} = {want}` under [mysqld] in its option file"
        );
        out.push(if largest.measured {
            Finding::blocking(role, FindingCode::MaxAllowedPacket, problem, fix)
        } else {
            Finding::warning(role, FindingCode::MaxAllowedPacket, problem, fix)
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Semi-sync, GTID

fn first_var<'a>(s: &'a ServerFacts, names: &[&'a str]) -> Option<(&'a str, bool)> {
    names.iter().find_map(|n| s.var_on(n).map(|on| (*n, on)))
}

/// Semi-synchronous replication settings; pure (information only).
pub fn semi_sync_findings(master: &ServerFacts, replica: Option<&ServerFacts>) -> Vec<Finding> {
    let info = |role, problem: String, fix: String| {
        Finding::warning(role, FindingCode::SemiSync, problem, fix).with_severity(Severity::Info)
    };
    let mut out = Vec::new();
    let m = first_var(
        master,
        &[
            "rpl_semi_sync_master_enabled",
            "rpl_semi_sync_source_enabled",
        ],
    );
    let r = replica.and_then(|r| {
        first_var(
            r,
            &[
                "rpl_semi_sync_slave_enabled",
                "rpl_semi_sync_replica_enabled",
            ],
        )
    });
    if let Some((var, true)) = m {
        let timeout = master
            .var("rpl_semi_sync_master_timeout")
            .or_else(|| master.var("rpl_semi_sync_source_timeout"))
            .unwrap_or("?");
        let replica_var = if var.contains("source") {
            "rpl_semi_sync_replica_enabled"
        } else {
            "rpl_semi_sync_slave_enabled"
        };
        let acks = matches!(r, Some((_, true)));
        out.push(info(
            Role::Master,
            format!(
                "the master runs semi-synchronous replication ({var} = ON, timeout {timeout} ms); the new replica {} acknowledge its transactions",
                if acks { "will" } else { "will not" }
            ),
            if acks {
                "none needed".into()
            } else {
                format!("if the replica should acknowledge: on the replica SET GLOBAL {replica_var} = ON; and `{replica_var} = ON` under [mysqld] in its option file")
            },
        ));
    } else if let Some((var, true)) = r {
        out.push(info(
            Role::Replica,
            format!("the replica has {var} = ON but the master does not run semi-synchronous replication; it replicates asynchronously"),
            "none needed".into(),
        ));
    }
    out
}

/// GTID settings: MariaDB `gtid_strict_mode`, MySQL `gtid_mode` on both sides; pure.
pub fn gtid_findings(master: &ServerFacts, replica: Option<&ServerFacts>) -> Vec<Finding> {
    let mut out = Vec::new();
    match master.info.flavor {
        Flavor::MariaDb => {
            if master.var_on("gtid_strict_mode") == Some(false) {
                out.push(Finding::warning(
                        Role::Master,
                        FindingCode::GtidStrictMode,
                        "gtid_strict_mode is OFF on the master: out-of-order GTIDs (from writes on a replica) are not refused, which makes a later switch to GTID positioning or a failover unreliable",
                        "SET GLOBAL gtid_strict_mode = ON; and `gtid_strict_mode = ON` under [mysqld] in the option file, on master and replica",
                    ).with_severity(Severity::Info));
            }
        }
        Flavor::MySql => {
            let mode = |s: &ServerFacts| s.var("gtid_mode").map(|v| v.to_ascii_uppercase());
            let mm = mode(master);
            if let (Some(mm), Some(rm)) = (mm.clone(), replica.and_then(mode)) {
                let incompatible = (mm == "ON" && rm == "OFF") || (mm == "OFF" && rm == "ON");
                if incompatible {
                    out.push(Finding::warning(
                        Role::Replica,
                        FindingCode::GtidMode,
                        format!("gtid_mode is {mm} on the master but {rm} on the replica: replication stops at the first transaction"),
                        format!("make them equal: on the replica set gtid_mode step by step to {mm} (OFF_PERMISSIVE / ON_PERMISSIVE in between) and `gtid_mode = {mm}` under [mysqld]"),
                    ));
                }
            }
            if mm.as_deref() == Some("OFF") {
                out.push(Finding::warning(
                        Role::Master,
                        FindingCode::GtidMode,
                        "gtid_mode is OFF on the master: the replica is positioned by binary log file and position",
                        "none needed; for GTID positioning set gtid_mode = ON and enforce_gtid_consistency = ON on both servers",
                    ).with_severity(Severity::Info));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Master against replica

/// Settings that must agree between master and replica: `lower_case_table_names`,
/// server character set and collation, `sql_mode`, `time_zone` and the time zone tables;
/// pure.
pub fn consistency_findings(master: &ServerFacts, replica: &ServerFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let differs = |name: &str| -> Option<(String, String)> {
        match (master.var(name), replica.var(name)) {
            (Some(m), Some(r)) if m != r => Some((m.to_string(), r.to_string())),
            _ => None,
        }
    };
    let set_fix = |pairs: &[(&str, &str)], restart: bool| -> String {
        let sql: Vec<String> = pairs
            .iter()
            .map(|(n, v)| format!("SET GLOBAL {n} = {};", quote::string(v)))
            .collect();
        let lines: Vec<String> = pairs.iter().map(|(n, v)| format!("`{n} = {v}`")).collect();
        if restart {
            format!(
                "on the replica put {} under [mysqld] in its option file and restart it (with an empty data directory: it can only be set when the data directory is created on MySQL 8)",
                lines.join(", ")
            )
        } else {
            format!(
                "on the replica: {} and {} under [mysqld] in its option file",
                sql.join(" "),
                lines.join(", ")
            )
        }
    };
    if let Some((m, r)) = differs("lower_case_table_names") {
        out.push(Finding::warning(
            Role::Replica,
            FindingCode::LowerCaseTableNames,
            format!("lower_case_table_names is {m} on the master but {r} on the replica: tables whose names differ only in case clash, and statements naming them in another case fail on the replica"),
            set_fix(&[("lower_case_table_names", &m)], true),
        ));
    }
    let cs = differs("character_set_server");
    let co = differs("collation_server");
    if cs.is_some() || co.is_some() {
        let mc = master.var("character_set_server").unwrap_or("?");
        let mo = master.var("collation_server").unwrap_or("?");
        out.push(Finding::warning(
            Role::Replica,
            FindingCode::CharacterSetServer,
            format!(
                "the server character set / collation is {mc} / {mo} on the master but {} / {} on the replica: databases and tables created later without an explicit one get another one on the replica",
                replica.var("character_set_server").unwrap_or("?"),
                replica.var("collation_server").unwrap_or("?")
            ),
            set_fix(&[("character_set_server", mc), ("collation_server", mo)], false),
        ));
    }
    if let Some((m, r)) = differs("sql_mode") {
        out.push(Finding::warning(
            Role::Replica,
            FindingCode::SqlMode,
            format!("sql_mode is '{m}' on the master but '{r}' on the replica: sessions that do not set it (events, some replicated statements) behave differently"),
            set_fix(&[("sql_mode", &m)], false),
        ));
    }
    if let Some((m, r)) = differs("time_zone") {
        out.push(Finding::warning(
            Role::Replica,
            FindingCode::TimeZone,
            format!("the global time_zone is {m} on the master but {r} on the replica: NOW() and TIMESTAMP values in sessions that do not set it differ"),
            set_fix(&[("time_zone", &m)], false),
        ));
    }
    if let (Some(m), Some(r)) = (master.time_zone_names, replica.time_zone_names) {
        if m > 0 && r == 0 {
            out.push(Finding::warning(
                Role::Replica,
                FindingCode::TimeZoneTables,
                format!("the master has {m} named time zones loaded (mysql.time_zone_name) but the replica has none: replicated statements using CONVERT_TZ() or SET time_zone = 'Region/City' fail or return NULL on the replica"),
                "on the replica host: mariadb-tzinfo-to-sql /usr/share/zoneinfo | mariadb mysql   (MySQL: mysql_tzinfo_to_sql … | mysql mysql)",
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Disk space

/// The replica's free space against the master's data size; pure.
/// Space a restore takes on the replica beyond the tables' own size, per table: an
/// InnoDB file-per-table starts at about 96 KiB whatever its rows (other engines: a few
/// files of a few KiB).
pub const PER_TABLE_BYTES: u64 = 128 * 1024;
/// Fixed space a restore takes beyond the tables: undo and system tablespace growth,
/// temporary files, the replica's relay log at the start: 128 MiB.
pub const FIXED_RESTORE_BYTES: u64 = 128 * MIB;

/// What the copy needs on the replica's disk, from the master's tables: their data and
/// indexes plus 30 % (pages filled less tightly by a load than on a long-lived table, and
/// `DATA_LENGTH` is an estimate), a minimum per table ([`PER_TABLE_BYTES`]), room to
/// sort the largest table's keys when they are built after its data, and
/// [`FIXED_RESTORE_BYTES`]. Pure.
pub fn replica_disk_need(tables: &[TableFacts]) -> u64 {
    let per_table: u64 = tables
        .iter()
        .map(|t| (t.bytes + t.bytes * 3 / 10).max(PER_TABLE_BYTES))
        .sum();
    let largest = tables.iter().map(|t| t.bytes).max().unwrap_or(0);
    per_table + largest + FIXED_RESTORE_BYTES
}

/// Whether the replica's disk holds `bytes`, the space the copy needs (see
/// [`replica_disk_need`]); pure.
pub fn disk_findings(disk: &DiskSpace, bytes: u64) -> Vec<Finding> {
    let info = |problem: String| {
        Finding::warning(
            Role::Replica,
            FindingCode::DiskSpaceUnknown,
            problem,
            format!(
                "check by hand that the replica's data directory has well over {} free",
                human_bytes(bytes)
            ),
        )
        .with_severity(Severity::Info)
    };
    match disk {
        DiskSpace::NoReplica => vec![],
        DiskSpace::NotLocal { host } => vec![info(format!(
            "the replica's free disk space was not checked: it runs on {host}, not on this host"
        ))],
        DiskSpace::Unreadable { datadir, reason } => vec![info(format!(
            "the replica's free disk space was not checked: its data directory {datadir} cannot be examined ({reason})"
        ))],
        DiskSpace::Free { datadir, bytes: free } => {
            let problem = format!(
                "the replica's data directory {datadir} has {} free; the copy needs about {} (the master's data and indexes with load overhead, per-table files, index builds and InnoDB logs)",
                human_bytes(*free),
                human_bytes(bytes)
            );
            if *free < bytes {
                vec![Finding::blocking(
                    Role::Replica,
                    FindingCode::DiskSpace,
                    format!("{problem}: the copy would fill the disk"),
                    format!("free at least {} in {datadir}, or use a larger disk", human_bytes(bytes - free + bytes / 2)),
                )]
            } else if *free < bytes + bytes / 2 {
                vec![Finding::warning(
                    Role::Replica,
                    FindingCode::DiskSpace,
                    format!("{problem}: less than 50% headroom for relay logs, binary logs and table growth"),
                    format!("free more space in {datadir}"),
                )]
            } else {
                vec![]
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// DEFINER accounts

/// `user@host` (or a role name) as `(user, host)`; the host is empty for a role.
fn split_definer(definer: &str) -> (String, String) {
    match definer.rsplit_once('@') {
        Some((u, h)) => (u.to_string(), h.to_string()),
        None => (definer.to_string(), String::new()),
    }
}

/// Views, routines, triggers and events whose DEFINER account does not exist; pure.
///
/// A warning, not blocking: the objects are just as broken on the master (using them
/// fails with error 1449), the copy recreates them unchanged, and refusing would make a
/// master that works for its application impossible to replicate. The replica gets the
/// same objects with the same missing definer; creating the account on the master fixes
/// both (it is copied, or replicated when created after the setup).
pub fn definer_findings(data: &DataFacts) -> Vec<Finding> {
    let Some(accounts) = &data.accounts else {
        if data.objects.is_empty() {
            return vec![];
        }
        return vec![Finding::warning(
                Role::Master,
                FindingCode::NotCheckable,
                "the DEFINER accounts of views, routines, triggers and events were not checked: mysql.user is not readable by the master user",
                "GRANT SELECT ON mysql.* to the master user to have them checked",
            ).with_severity(Severity::Info)];
    };
    let exists = |user: &str, host: &str| {
        accounts
            .iter()
            .any(|(u, h)| u == user && h.eq_ignore_ascii_case(host))
    };
    let mut missing: BTreeMap<(String, String), Vec<&DefinedObject>> = BTreeMap::new();
    for o in &data.objects {
        let (u, h) = split_definer(&o.definer);
        if !exists(&u, &h) {
            missing.entry((u, h)).or_default().push(o);
        }
    }
    missing
        .into_iter()
        .map(|((user, host), objs)| {
            let names: Vec<String> = objs
                .iter()
                .take(10)
                .map(|o| format!("{} {}", o.kind.to_ascii_lowercase(), quote::qualified(&o.db, &o.name)))
                .collect();
            let (who, create) = if host.is_empty() {
                (quote::ident(&user), format!("CREATE ROLE {};", quote::ident(&user)))
            } else {
                let a = quote::account(&user, &host);
                (a.clone(), format!("CREATE USER {a} ACCOUNT LOCK;"))
            };
            Finding::warning(
                Role::Master,
                FindingCode::MissingDefiner,
                format!(
                    "{} name(s) DEFINER {who}, which does not exist: {}{}. Using them fails (error 1449) on the master, and the replica gets them the same way",
                    objs.len(),
                    names.join(", "),
                    if objs.len() > 10 { ", …" } else { "" }
                ),
                format!(
                    "on the master: {create} then GRANT it what the objects need (e.g. GRANT SELECT ON {}.* TO {who};), or recreate the objects with an existing DEFINER",
                    quote::ident(&objs[0].db)
                ),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Replication user

/// The replication user's authentication plugin; pure. On MySQL ≥ 8.0
/// `caching_sha2_password` (an existing user's, or the default for a created one) needs
/// TLS or the server's RSA key on the replica's connection; on MariaDB a plugin other
/// than `mysql_native_password` is reported for information.
pub fn repl_user_findings(
    master: &ServerInfo,
    vars: &BTreeMap<String, String>,
    user: &ReplUserFacts,
) -> Vec<Finding> {
    let info = |problem: String, fix: &str| {
        Finding::warning(Role::Master, FindingCode::ReplUserAuth, problem, fix)
            .with_severity(Severity::Info)
    };
    let existing: Vec<(String, String)> = user.accounts.clone().unwrap_or_default();
    let plugins: Vec<(String, String)> = if existing.is_empty() {
        // A created user gets the server's default plugin.
        let default = vars
            .get("default_authentication_plugin")
            .cloned()
            .or_else(|| {
                vars.get("authentication_policy")
                    .and_then(|p| p.split(',').next())
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty() && p != "*")
            });
        match default {
            Some(d) if master.flavor == Flavor::MySql => vec![("(to be created)".into(), d)],
            _ => vec![],
        }
    } else {
        existing
    };
    let mut out = Vec::new();
    for (host, plugin) in plugins {
        let who = format!("'{}'@'{host}'", user.name);
        match master.flavor {
            Flavor::MySql
                if matches!(plugin.as_str(), "caching_sha2_password" | "sha256_password") =>
            {
                out.push(info(
                    format!("the replication user {who} authenticates with {plugin}: the replica's connection must use TLS, or fetch the master's RSA key (amsu sets GET_MASTER_PUBLIC_KEY=1 / GET_SOURCE_PUBLIC_KEY=1 when it does not use TLS)"),
                    "none needed; to avoid the key exchange, configure TLS for replication (MASTER_SSL=1)",
                ));
            }
            Flavor::MariaDb if !plugin.is_empty() && plugin != "mysql_native_password" => {
                out.push(info(
                    format!("the replication user {who} authenticates with {plugin}; the replica's client library must support it (ed25519 and mysql_native_password work; unix_socket, gssapi and pam do not over a replication connection)"),
                    "if it is not supported: ALTER USER on the master to IDENTIFIED VIA mysql_native_password USING PASSWORD('…')",
                ));
            }
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// GTID sets and errant transactions

/// A GTID set or position that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read GTID {text:?}: {reason}")]
pub struct GtidParseError {
    text: String,
    reason: &'static str,
}

/// A set of GTIDs: MariaDB's per (domain, server) highest sequence number, or MySQL's
/// intervals per source UUID (and tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidSet {
    /// `domain-server-seq,…` (`gtid_binlog_state`, `gtid_binlog_pos`, `gtid_slave_pos`):
    /// every sequence number up to the highest, per (domain, server).
    MariaDb(BTreeMap<(u32, u32), u64>),
    /// `uuid:1-5:7,…` (`gtid_executed`): intervals (inclusive) per `uuid` or `uuid:tag`.
    MySql(BTreeMap<String, Vec<(u64, u64)>>),
}

impl GtidSet {
    /// Parses a set in the flavor's notation; empty text is the empty set.
    pub fn parse(flavor: Flavor, text: &str) -> Result<GtidSet, GtidParseError> {
        let err = |reason| GtidParseError {
            text: text.chars().take(200).collect(),
            reason,
        };
        let items = text.split(',').map(str::trim).filter(|s| !s.is_empty());
        match flavor {
            Flavor::MariaDb => {
                let mut m = BTreeMap::new();
                for item in items {
                    let parts: Vec<&str> = item.split('-').collect();
                    let [d, s, n] = parts[..] else {
                        return Err(err("expected domain-server-sequence"));
                    };
                    let d: u32 = d.parse().map_err(|_| err("domain is not a number"))?;
                    let s: u32 = s.parse().map_err(|_| err("server_id is not a number"))?;
                    let n: u64 = n.parse().map_err(|_| err("sequence is not a number"))?;
                    let e = m.entry((d, s)).or_insert(0);
                    *e = (*e).max(n);
                }
                Ok(GtidSet::MariaDb(m))
            }
            Flavor::MySql => {
                let mut m: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
                for item in items {
                    let mut parts = item.split(':');
                    let uuid = parts
                        .next()
                        .filter(|u| u.len() == 36)
                        .ok_or_else(|| err("expected a source UUID"))?
                        .to_ascii_lowercase();
                    let mut key = uuid.clone();
                    for p in parts {
                        let p = p.trim();
                        if p.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                            let (a, b) = match p.split_once('-') {
                                Some((a, b)) => (a, b),
                                None => (p, p),
                            };
                            let a: u64 = a.parse().map_err(|_| err("bad interval"))?;
                            let b: u64 = b.parse().map_err(|_| err("bad interval"))?;
                            if a == 0 || b < a {
                                return Err(err("bad interval"));
                            }
                            m.entry(key.clone()).or_default().push((a, b));
                        } else {
                            key = format!("{uuid}:{}", p.to_ascii_lowercase());
                        }
                    }
                }
                for v in m.values_mut() {
                    *v = merge(std::mem::take(v));
                }
                Ok(GtidSet::MySql(m))
            }
        }
    }

    /// The union of two sets of the same flavor (`self` wins on a flavor mismatch).
    pub fn union(&self, other: &GtidSet) -> GtidSet {
        match (self, other) {
            (GtidSet::MariaDb(a), GtidSet::MariaDb(b)) => {
                let mut m = a.clone();
                for (k, v) in b {
                    let e = m.entry(*k).or_insert(0);
                    *e = (*e).max(*v);
                }
                GtidSet::MariaDb(m)
            }
            (GtidSet::MySql(a), GtidSet::MySql(b)) => {
                let mut m = a.clone();
                for (k, v) in b {
                    let e = m.entry(k.clone()).or_default();
                    e.extend(v.iter().copied());
                    *e = merge(std::mem::take(e));
                }
                GtidSet::MySql(m)
            }
            _ => self.clone(),
        }
    }

    /// The GTIDs of `self` that `other` does not hold, in the flavor's notation. For
    /// MariaDB, `d-s-n` stands for the transactions of server `s` in domain `d` after
    /// `other`'s highest sequence number for that pair, up to `n`.
    pub fn missing_from(&self, other: &GtidSet) -> Vec<String> {
        match (self, other) {
            (GtidSet::MariaDb(a), GtidSet::MariaDb(b)) => a
                .iter()
                .filter(|(k, n)| b.get(k).is_none_or(|m| m < n))
                .map(|((d, s), n)| format!("{d}-{s}-{n}"))
                .collect(),
            (GtidSet::MySql(a), GtidSet::MySql(b)) => {
                let mut out = Vec::new();
                for (k, ivs) in a {
                    let have = b.get(k).cloned().unwrap_or_default();
                    let rest = subtract(ivs, &have);
                    if !rest.is_empty() {
                        let r: Vec<String> = rest
                            .iter()
                            .map(|(x, y)| {
                                if x == y {
                                    x.to_string()
                                } else {
                                    format!("{x}-{y}")
                                }
                            })
                            .collect();
                        out.push(format!("{k}:{}", r.join(":")));
                    }
                }
                out
            }
            _ => vec![],
        }
    }
}

fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Intervals of `a` not covered by `b` (both merged and sorted).
fn subtract(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(mut lo, hi) in a {
        for &(blo, bhi) in b {
            if bhi < lo || blo > hi {
                continue;
            }
            if blo > lo {
                out.push((lo, blo - 1));
            }
            lo = bhi.saturating_add(1);
            if lo > hi {
                break;
            }
        }
        if lo <= hi {
            out.push((lo, hi));
        }
    }
    out
}

/// The GTID text of a server: MariaDB `gtid_binlog_state` (else `gtid_binlog_pos`) with
/// `gtid_slave_pos` for a replica; MySQL `gtid_executed`.
fn gtid_text(s: &ServerFacts, own: bool) -> Vec<String> {
    let pick = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| s.var(n).map(str::to_string))
            .unwrap_or_default()
    };
    match s.info.flavor {
        Flavor::MariaDb => {
            let mut v = vec![pick(&["gtid_binlog_state", "gtid_binlog_pos"])];
            if own {
                v.push(pick(&["gtid_slave_pos"]));
            }
            v
        }
        Flavor::MySql => vec![pick(&["gtid_executed"])],
    }
}

/// A replica that replicated before must not hold transactions the master does not have
/// (errant transactions): refused (blocking), or a warning with `force`, since `--force`
/// drops its data anyway; pure. A replica that never replicated (no replication
/// configuration, empty `gtid_slave_pos`) is not compared: its own writes are covered by
/// the empty-replica check.
pub fn errant_findings(master: &ServerFacts, replica: &ServerFacts, force: bool) -> Vec<Finding> {
    if master.info.flavor != replica.info.flavor {
        return vec![];
    }
    let flavor = master.info.flavor;
    let slave_pos = replica.var("gtid_slave_pos").unwrap_or("").trim();
    let replicated_before = replica.has_replication_config || !slave_pos.is_empty();
    if !replicated_before {
        return vec![];
    }
    let parse_all = |texts: Vec<String>| -> Option<GtidSet> {
        let mut acc = GtidSet::parse(flavor, "").ok()?;
        for t in texts {
            acc = acc.union(&GtidSet::parse(flavor, &t).ok()?);
        }
        Some(acc)
    };
    let (Some(m), Some(r)) = (
        parse_all(gtid_text(master, false)),
        parse_all(gtid_text(replica, true)),
    ) else {
        return vec![Finding::warning(
                Role::Replica,
                FindingCode::NotCheckable,
                "the GTID positions of master and replica could not be read; errant transactions were not checked",
                "none",
            ).with_severity(Severity::Info)];
    };
    let errant = r.missing_from(&m);
    if errant.is_empty() {
        return vec![];
    }
    let problem = format!(
        "the replica replicated before and holds transactions the master does not have (errant GTIDs): {}. Its data has diverged from the master's, and GTID-based replication or a failover would break on them",
        errant.join(", ")
    );
    let fix = match flavor {
        Flavor::MariaDb => "check what these transactions are (mariadb-binlog on the replica's binary logs); if they may be thrown away, on the replica: STOP SLAVE; RESET SLAVE ALL; RESET MASTER; SET GLOBAL gtid_slave_pos = ''; and drop its data (or allow amsu to: force)",
        Flavor::MySql => "check what these transactions are (mysqlbinlog on the replica's binary logs); if they may be thrown away, on the replica: STOP REPLICA; RESET REPLICA ALL; RESET MASTER (8.4: RESET BINARY LOGS AND GTIDS); and drop its data (or allow amsu to: force)",
    };
    if force {
        vec![Finding::warning(
            Role::Replica,
            FindingCode::ErrantGtids,
            format!("{problem}; forcing drops the replica's data, but its GTID state keeps them"),
            fix,
        )
        .with_remedy(Remedy::setting("force"))]
    } else {
        vec![
            Finding::blocking(Role::Replica, FindingCode::ErrantGtids, problem, fix)
                .with_remedy(Remedy::setting("force")),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// I/O

/// Global variables the checks read (missing ones are unknown to the server version).
pub const VARIABLES: &[&str] = &[
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

async fn account_grants(s: &mut Session) -> Result<AccountGrants, MysqlError> {
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

async fn server_facts(s: &mut Session, role: Role) -> Result<ServerFacts, MysqlError> {
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
        let name = r.as_ref(0).and_then(text).unwrap_or_default();
        let value = r.as_ref(1).and_then(text).unwrap_or_default();
        f.variables.insert(name.to_ascii_lowercase(), value);
    }
    if f.info.log_bin {
        if let Some(rows) = soft(s.rows("SHOW BINARY LOGS", "SHOW BINARY LOGS").await)? {
            f.binlogs = rows
                .iter()
                .map(|r| BinlogFile {
                    name: r.as_ref(0).and_then(text).unwrap_or_default(),
                    size: r
                        .as_ref(1)
                        .and_then(text)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
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
async fn data_facts(s: &mut Session) -> Result<DataFacts, MysqlError> {
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
            let g = |i| r.as_ref(i).and_then(text).unwrap_or_default();
            (g(0), g(1))
        })
        .collect();
    for r in &rows {
        let t = row_texts(r);
        let get = |i: usize| t.get(i).and_then(|(_, v)| v.clone()).unwrap_or_default();
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
        let g = |i| r.as_ref(i).and_then(text).unwrap_or_default();
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
        let g = |i| r.as_ref(i).and_then(text).unwrap_or_default();
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
async fn measure(
    s: &mut Session,
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
                let g = |i| r.as_ref(i).and_then(text).and_then(|v| v.parse().ok());
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

async fn repl_user_facts(s: &mut Session, name: &str) -> Result<ReplUserFacts, MysqlError> {
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
            .map(|r| {
                (
                    r.as_ref(0).and_then(text).unwrap_or_default(),
                    r.as_ref(1).and_then(text).unwrap_or_default(),
                )
            })
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

    /// Reads everything [`evaluate`] needs; read-only.
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
            Some(source) => data_facts(&mut Session::open_bounded(source).await?).await?,
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

async fn data_facts_accounts(s: &mut Session) -> Result<Option<Vec<(String, String)>>, MysqlError> {
    Ok(soft(
        s.rows("SELECT User, Host FROM mysql.user", "listing accounts")
            .await,
    )?
    .map(|rows| {
        rows.iter()
            .map(|r| {
                (
                    r.as_ref(0).and_then(text).unwrap_or_default(),
                    r.as_ref(1).and_then(text).unwrap_or_default(),
                )
            })
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
    /// raise the setup needs ([`retention_plan`]). The master is judged as it was before
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
pub use accounts::{anonymous_findings, collision_findings};

#[cfg(test)]
mod tests;
