//! The report of `amsu check`: every finding, whether or not one blocks.
//!
//! [`crate::check`] returns the setup's [`Checked`](amsu_core::Checked) (or the blocking
//! findings as an error) — what a setup needs to go on. An operator's preflight report
//! wants more: every finding even when one blocks, the master's facts, the `server_id`
//! changes the plan would make, and a master-only report when no replica is named.
//! [`check_report`] and [`check_master`] are that report; both change nothing.

use std::sync::Arc;

use amsu_core::{
    preflight_master, EventSink, Finding, FindingCode, MasterServer, NoEvents, ReplicaServer, Role,
    ServerAddr, ServerInfo, Step,
};
use amsu_mysql::checks::{CheckOptions, MysqlPreflight};
use amsu_mysql::{MysqlMaster, MysqlReplica};

use super::{Provision, SetupConfig};

/// What a preflight report found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckReport {
    /// The master's facts (flavor, version, `server_id`, binary log settings).
    pub master: ServerInfo,
    /// Every finding, blocking or not, with its fix.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Whether a finding blocks a setup (`amsu check` exits 3 then).
    pub fn blocks(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == amsu_core::Severity::Blocking)
    }
}

fn unchanged(step: Step, server: Role) -> impl FnOnce(amsu_core::BoxError) -> amsu_core::Error {
    move |source| amsu_core::Error::Unchanged {
        step,
        server,
        source,
    }
}

/// Every finding of a setup with `config` — the very checks [`crate::setup`] starts with
/// ([`crate::check`]), each reported even when one blocks — and, as warnings, the
/// `server_id` changes its plan would make. Changes nothing.
///
/// Errors: [`amsu_core::Error::Unchanged`] when a server cannot be reached or read.
pub async fn check_report(
    config: &SetupConfig,
    events: Arc<dyn EventSink>,
) -> Result<CheckReport, amsu_core::Error> {
    let (master, replica) = (config.master_addr(), config.replica_addr());
    let minfo = MysqlMaster::new(master.clone())
        .probe()
        .await
        .map_err(unchanged(Step::ProbeMaster, Role::Master))?;
    let rinfo = MysqlReplica::new(replica.clone())
        .probe()
        .await
        .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?;
    let mut findings = match Provision::new(config.clone(), events.clone())
        .check(&NoEvents)
        .await
    {
        Ok(c) => c.findings,
        Err(amsu_core::Error::Preconditions(f)) => f,
        // A user that may not read what the setup's own planning reads (the replication
        // user in mysql.user): the checks alone, which say which privileges it lacks.
        Err(amsu_core::Error::Unchanged { .. }) => {
            let r = MysqlReplica::new(replica.clone());
            let status = r
                .replication_status()
                .await
                .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?;
            let dbs = r
                .user_databases()
                .await
                .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?;
            let mut f = amsu_core::preflight(&minfo, &rinfo, status.as_ref(), &dbs, false);
            let checks = MysqlPreflight::new(master.clone())
                .events(events)
                .admin(config.admin_addr().cloned())
                .replica(Some(replica.clone()))
                .options(CheckOptions {
                    repl_user: config.repl_user_name().to_string(),
                    ..CheckOptions::default()
                });
            f.extend(
                amsu_core::Preflight::findings(&checks)
                    .await
                    .map_err(unchanged(Step::ReplicaChecks, Role::Master))?,
            );
            f
        }
        Err(e) => return Err(e),
    };
    if !findings.iter().any(|f| f.code == FindingCode::SameServer) {
        findings.extend(server_id_warnings(&minfo, &rinfo));
    }
    Ok(CheckReport {
        master: minfo,
        findings,
    })
}

/// The `server_id` changes a setup's plan would make, as warnings.
fn server_id_warnings(minfo: &ServerInfo, rinfo: &ServerInfo) -> Vec<Finding> {
    let ids = amsu_core::server_id_fix(minfo.server_id, rinfo.server_id);
    let mut out = Vec::new();
    if let Some(id) = ids.master {
        out.push(Finding::warning(
            Role::Master,
            FindingCode::ServerIdZero,
            "the master's server_id is 0; a setup sets it",
            format!("SET GLOBAL server_id = {id} on the master, and `server_id = {id}` under [mysqld] in its option file"),
        ));
    }
    if let Some(id) = ids.replica {
        out.push(Finding::warning(
            Role::Replica,
            FindingCode::ServerIdClash,
            format!(
                "the replica's server_id {} is 0 or equal to the master's; a setup changes the replica's",
                rinfo.server_id
            ),
            format!("SET GLOBAL server_id = {id} on the replica, and `server_id = {id}` under [mysqld] in its option file"),
        ));
    }
    out
}

/// The master's part of the preflight alone (no replica named): binary log, flavor and
/// version, and the MySQL checks of the master (privileges, retention, tables, …) for a
/// replication user named `repl_user`; `admin` is the account that creates it, when not
/// the master's URL's. Changes nothing.
///
/// Errors: [`amsu_core::Error::Unchanged`] when the master cannot be reached or read.
pub async fn check_master(
    master: &ServerAddr,
    admin: Option<ServerAddr>,
    repl_user: &str,
    events: Arc<dyn EventSink>,
) -> Result<CheckReport, amsu_core::Error> {
    let minfo = MysqlMaster::new(master.clone())
        .probe()
        .await
        .map_err(unchanged(Step::ProbeMaster, Role::Master))?;
    let mut findings = preflight_master(&minfo);
    let checks = MysqlPreflight::new(master.clone())
        .events(events)
        .admin(admin)
        .options(CheckOptions {
            repl_user: repl_user.to_string(),
            ..CheckOptions::default()
        });
    findings.extend(
        amsu_core::Preflight::findings(&checks)
            .await
            .map_err(unchanged(Step::ProbeMaster, Role::Master))?,
    );
    Ok(CheckReport {
        master: minfo,
        findings,
    })
}
