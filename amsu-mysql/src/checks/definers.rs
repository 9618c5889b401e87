//! DEFINER accounts: the pure decisions of this part of the preflight (see the parent module).

use super::*;

/// `user@host` (or a role name) as `(user, host)`; the host is empty for a role.
pub(super) fn split_definer(definer: &str) -> (String, String) {
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
pub(crate) fn definer_findings(data: &DataFacts) -> Vec<Finding> {
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
