//! What a finished setup changed only at runtime: `SET GLOBAL server_id` and `read_only`
//! on the replica are lost when it restarts (replication then stops, with "equal server
//! ids" when the old id was the master's). Without `--replica-config-file`, the report
//! names them and prints the option-file lines to add.

use amsu_core::{Action, ServerAddr, SetupReport};

/// The replica settings the setup made at runtime only, by name.
pub(crate) fn runtime_only(report: &SetupReport) -> Vec<&'static str> {
    let mut names = Vec::new();
    for a in &report.plan {
        if let Action::ConfigureReplica {
            server_id,
            read_only,
        } = a
        {
            if server_id.is_some() {
                names.push("server_id");
            }
            if *read_only {
                names.push("read_only");
            }
        }
    }
    names
}

/// Says which settings are runtime-only and prints the option-file snippet that makes
/// them stick (text, or one JSON line).
pub(crate) async fn report_runtime_only(report: &SetupReport, replica: &ServerAddr, json: bool) {
    let names = runtime_only(report);
    if names.is_empty() || report.already_done {
        return;
    }
    let snippet = match amsu_mysql::replica_config::read(replica, None).await {
        Ok(c) => Some(amsu_mysql::replica_config::option_snippet(
            &c,
            &replica.to_string(),
        )),
        Err(e) => {
            errln!("warning: cannot read the replica's settings for its option file: {e}");
            None
        }
    };
    if json {
        crate::json::emit(crate::json::Body::RuntimeOnly {
            settings: names.iter().map(|n| n.to_string()).collect(),
            option_file_snippet: snippet,
        });
        return;
    }
    outln!(
        "Runtime only: {} on the replica were set with SET GLOBAL and are lost when it restarts \
         (replication then stops). Add these lines to its option file (or rerun with \
         --replica-config-file PATH and include that file):",
        names.join(" and ")
    );
    if let Some(s) = snippet {
        for line in s.lines() {
            outln!("    {line}");
        }
    }
}
