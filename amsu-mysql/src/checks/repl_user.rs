//! Replication user: the pure decisions of this part of the preflight (see the parent module).

use super::*;

/// The replication user's authentication plugin; pure. On MySQL ≥ 8.0
/// `caching_sha2_password` (an existing user's, or the default for a created one) needs
/// TLS or the server's RSA key on the replica's connection; on MariaDB a plugin other
/// than `mysql_native_password` is reported for information.
pub(crate) fn repl_user_findings(
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
