//! Semi-sync, GTID: the pure decisions of this part of the preflight (see the parent module).

use super::*;

fn first_var<'a>(s: &'a ServerFacts, names: &[&'a str]) -> Option<(&'a str, bool)> {
    names.iter().find_map(|n| s.var_on(n).map(|on| (*n, on)))
}

/// Semi-synchronous replication settings; pure (information only).
pub(crate) fn semi_sync_findings(
    master: &ServerFacts,
    replica: Option<&ServerFacts>,
) -> Vec<Finding> {
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
pub(crate) fn gtid_findings(master: &ServerFacts, replica: Option<&ServerFacts>) -> Vec<Finding> {
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
