//! Account checks: anonymous accounts that would shadow the replication user's login, and
//! accounts that exist on both servers (the copy replaces them, except the one amsu logs
//! in to the replica with). Pure.

use amsu_core::FindingCode;
use amsu_core::{Finding, Role};

use crate::grants::StepKind;
use crate::quote;

fn list(accounts: &[&(String, String)]) -> String {
    accounts
        .iter()
        .map(|(u, h)| quote::account(u, h))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Anonymous accounts (`''@'localhost'`, `''@'<hostname>'`, as a plain
/// `mariadb-install-db` leaves them) with a host more specific than `%`: the server
/// matches a login to the most specific host first, so for a client from such a host
/// they win over `'amsu_repl'@'%'` and replication fails with "Access denied". Blocking:
/// found only when replication starts, after the whole copy, otherwise.
pub(crate) fn anonymous_findings(master_accounts: &[(String, String)]) -> Vec<Finding> {
    let anon: Vec<&(String, String)> = master_accounts
        .iter()
        .filter(|(u, h)| u.is_empty() && h != "%")
        .collect();
    if anon.is_empty() {
        return vec![];
    }
    let drops = anon
        .iter()
        .map(|(u, h)| format!("DROP USER {};", quote::account(u, h)))
        .collect::<Vec<_>>()
        .join(" ");
    vec![Finding::blocking(
        Role::Master,
        FindingCode::AnonymousAccounts,
        format!(
            "the master has anonymous accounts ({}): a login from those hosts matches them before the replication user's '%' host, so the replica's connection would be refused (Access denied)",
            list(&anon)
        ),
        format!("on the master: {drops} (mariadb-secure-installation removes them too)"),
    )]
}

/// Accounts on both servers: the copy replaces the replica's with the master's, except
/// the account amsu logs in to the replica with (`login`), which is kept so that the
/// setup and the operator can go on using it. A physical copy replaces every account
/// with the data directory, so nothing is reported for it.
pub(crate) fn collision_findings(
    master_accounts: &[(String, String)],
    replica_accounts: &[(String, String)],
    login: (&str, &str),
    snapshot: StepKind,
) -> Vec<Finding> {
    if snapshot == StepKind::PhysicalBackup {
        return vec![];
    }
    let both: Vec<&(String, String)> = master_accounts
        .iter()
        .filter(|a| replica_accounts.contains(a))
        .collect();
    let (kept, replaced): (Vec<_>, Vec<_>) = both
        .into_iter()
        .partition(|(u, h)| (u.as_str(), h.as_str()) == login);
    let mut f = Vec::new();
    if let Some((u, h)) = kept.first() {
        f.push(Finding::warning(
            Role::Replica,
            FindingCode::AccountKept,
            format!(
                "{} exists on both servers and amsu logs in to the replica with it: the replica keeps its own (password and grants); the master's is not copied",
                quote::account(u, h)
            ),
            "none needed; to have the master's version, copy it by hand after the setup (SHOW CREATE USER / SHOW GRANTS on the master)",
        ));
    }
    if !replaced.is_empty() {
        f.push(Finding::warning(
                Role::Replica,
                FindingCode::AccountsReplaced,
                format!(
                    "these accounts exist on both servers and are replaced on the replica by the master's: {}",
                    list(&replaced)
                ),
                "none needed: a replica mirrors the master's accounts",
            ).with_severity(amsu_core::Severity::Info));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(u: &str, h: &str) -> (String, String) {
        (u.into(), h.into())
    }

    #[test]
    fn anonymous_accounts_with_a_host_block() {
        let f = anonymous_findings(&[a("root", "localhost"), a("", "localhost"), a("", "db1")]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "anonymous_accounts");
        assert!(
            f[0].fix.contains("DROP USER ''@'localhost';"),
            "{}",
            f[0].fix
        );
        assert!(f[0].fix.contains("DROP USER ''@'db1';"), "{}", f[0].fix);
        // ''@'%' sorts after any named user on '%': it shadows nothing.
        assert!(anonymous_findings(&[a("", "%"), a("root", "%")]).is_empty());
    }

    #[test]
    fn the_login_account_is_kept_and_others_reported() {
        let m = [a("root", "localhost"), a("app", "%"), a("only_master", "%")];
        let r = [
            a("root", "localhost"),
            a("app", "%"),
            a("only_replica", "%"),
        ];
        let f = collision_findings(&m, &r, ("root", "localhost"), StepKind::LogicalSnapshot);
        let codes: Vec<_> = f.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["account_kept", "accounts_replaced"]);
        assert!(f[0].problem.contains("'root'@'localhost'"));
        assert!(f[1].problem.contains("'app'@'%'") && !f[1].problem.contains("only_"));
        assert!(
            collision_findings(&m, &r, ("root", "localhost"), StepKind::PhysicalBackup).is_empty()
        );
    }
}
