//! Privileges: the pure decisions of this part of the preflight (see the parent module).

use super::*;

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
pub(crate) fn retention_need(flavor: Flavor, version: Version) -> Need {
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
