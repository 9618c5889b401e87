//! The SQL behind each planned [`Action`], for `--dry-run`: exactly what the adapters in
//! this crate send, with every password shown as `'***'`.

use amsu_core::{Action, Checked, Coordinates, Positioning, ReplicationSource, Secret};

use crate::dialect::{ChangeSourceOptions, Dialect};
use crate::quote;

/// A position no binary log reaches, rendered and then replaced by a placeholder: the
/// plan is made before the snapshot, so its position is not known yet.
const PLACEHOLDER_POSITION: u64 = 987_654_321_987_654_321;

/// Replaces [`PLACEHOLDER_POSITION`] in `sql` by `placeholder`.
fn placeholder(sql: String, placeholder: &str) -> String {
    sql.replace(&PLACEHOLDER_POSITION.to_string(), placeholder)
}

/// Every action of a checked plan with the statements it runs, passwords redacted. The
/// copy shows `copy` (the copier's own statements, [`amsu_core::DataCopier::statements`])
/// when given, else the logical copy's.
pub fn plan(checked: &Checked, copy: Option<Vec<String>>) -> Vec<(&Action, Vec<String>)> {
    let dm = Dialect::new(checked.master.flavor, checked.master.version);
    let dr = Dialect::new(checked.replica.flavor, checked.replica.version);
    checked
        .plan
        .iter()
        .map(|a| match (a, &copy) {
            (Action::CopyData, Some(copy)) => (a, copy.clone()),
            _ => (a, statements(a, &dm, &dr)),
        })
        .collect()
}

/// The statements `action` runs on its server (master or replica, see
/// [`Action::server`]), passwords redacted; what is known only later is shown as a
/// `<placeholder>`.
pub fn statements(action: &Action, master: &Dialect, replica: &Dialect) -> Vec<String> {
    let redacted = "'***'";
    match action {
        Action::CreateReplicationUser { user, host } => {
            let a = quote::account(user, host);
            vec![
                format!("CREATE USER {a} IDENTIFIED BY {redacted}"),
                master.grant_replication(user, host),
            ]
        }
        Action::ResetReplicationPassword { user, host } => vec![format!(
            "ALTER USER {} IDENTIFIED BY {redacted}",
            quote::account(user, host)
        )],
        Action::SetMasterServerId { id } => vec![format!("SET GLOBAL server_id = {id}")],
        Action::ResetReplica => vec![
            replica.stop_replica().to_string(),
            replica.reset_replica_all().to_string(),
        ],
        Action::DropReplicaDatabases { names } => {
            let mut v = vec!["SET SESSION sql_log_bin = 0".to_string()];
            v.extend(
                names
                    .iter()
                    .map(|n| format!("DROP DATABASE {}", quote::ident(n))),
            );
            v
        }
        Action::ConfigureReplica {
            server_id,
            read_only,
        } => {
            let mut v = Vec::new();
            if let Some(id) = server_id {
                v.push(format!("SET GLOBAL server_id = {id}"));
            }
            v.push(format!(
                "SET GLOBAL read_only = {}",
                if *read_only { "ON" } else { "OFF" }
            ));
            v
        }
        Action::RelaxReplicaDurability { settings } => settings
            .iter()
            .filter_map(|g| {
                set_global(&g.name, &g.relaxed).map(|sql| format!("{sql}  -- was {}", g.original))
            })
            .collect(),
        Action::RestoreReplicaSettings { settings } => amsu_core::restore_pairs(settings)
            .iter()
            .filter_map(|(name, value)| set_global(name, value))
            .collect(),
        Action::RaiseBinlogRetention { settings } => settings
            .iter()
            .filter_map(|g| {
                set_global(&g.name, &g.relaxed).map(|sql| format!("{sql}  -- was {}", g.original))
            })
            .collect(),
        Action::RestoreBinlogRetention { settings } => amsu_core::restore_pairs(settings)
            .iter()
            .filter_map(|(name, value)| set_global(name, value))
            .collect(),
        Action::CopyData => vec![
            "-- on the master, after opening every worker connection:".into(),
            "BACKUP STAGE START".into(),
            "BACKUP STAGE BLOCK_COMMIT".into(),
            "START TRANSACTION WITH CONSISTENT SNAPSHOT  -- on each worker".into(),
            master.show_binlog_status().to_string(),
            "SELECT @@global.gtid_binlog_pos".into(),
            "SHOW CREATE USER … / SHOW GRANTS FOR …  -- each non-system account".into(),
            "SELECT … FROM <non-transactional table>  -- copied while commits are blocked".into(),
            "BACKUP STAGE END".into(),
            "SELECT <columns> FROM <table> WHERE <key range>  -- each chunk, in the snapshot"
                .into(),
            "-- on the replica (sql_log_bin = 0, foreign_key_checks = 0):".into(),
            "CREATE DATABASE … / CREATE TABLE …  -- from SHOW CREATE on the master".into(),
            "START TRANSACTION; LOAD DATA LOCAL INFILE … INTO TABLE <table> CHARACTER SET binary …; COMMIT  -- each chunk".into(),
            "CREATE VIEW / PROCEDURE / FUNCTION / TRIGGER / EVENT …; ALTER EVENT … DISABLE ON SLAVE".into(),
            "DROP USER IF EXISTS …; CREATE USER …; GRANT …  -- each copied account".into(),
        ],
        Action::ChangeMaster {
            host,
            port,
            user,
            coordinates,
            positioning,
            tls,
        } => {
            let at = coordinates.clone().unwrap_or(
                Coordinates::new("<snapshot file>", PLACEHOLDER_POSITION)
                    .with_gtid(Some("<snapshot GTID position>".into())),
            );
            let source =
                ReplicationSource::new(host.clone(), *port, user.clone(), Secret::new("***"), at)
                    .with_positioning(*positioning)
                    .with_tls(tls.clone());
            let opts = ChangeSourceOptions::for_source(&source);
            let mut v: Vec<String> = replica
                .change_source_statements(&source, &opts)
                .into_iter()
                .map(|(_, shown)| placeholder(shown, "<snapshot position>"))
                .collect();
            if coordinates.is_none() {
                if let Some(last) = v.last_mut() {
                    last.push_str("  -- coordinates from the snapshot");
                }
            }
            v
        }
        Action::UpdateReplicaCredentials { user, tls } => vec![
            replica.stop_replica().to_string(),
            replica
                .change_source_credentials_redacted(user, &ChangeSourceOptions::for_tls(tls)),
        ],
        Action::StartReplica => vec![
            replica.start_replica().to_string(),
            format!("{}  -- until both threads run", replica.show_replica_status()),
        ],
        Action::WaitCaughtUp { positioning } => {
            let mut v = vec![format!("{}  -- on the master", master.show_binlog_status())];
            if *positioning == Positioning::Gtid {
                v.push(format!(
                    "SELECT @@global.{}  -- on the master",
                    master.gtid_position_variable()
                ));
                v.push(replica.wait_for_gtid("<GTID position>", 1) + "  -- repeated until reached");
            } else {
                v.push(
                    placeholder(
                        replica.wait_for_position(
                            &Coordinates::new("<file>", PLACEHOLDER_POSITION),
                            1,
                        ),
                        "<position>",
                    ) + "  -- repeated until reached",
                );
            }
            v
        }
        Action::WriteReplicaConfig { path, report_host } => {
            vec![
                "SELECT @@version AS version, @@global.server_id AS server_id, …  -- on the replica".into(),
                "SHOW GLOBAL VARIABLES LIKE 'relay_log_basename'".into(),
                format!(
                    "-- then writes [mysqld] server_id, read_only, {}, relay_log{} to {} on this host",
                    replica.skip_replica_start_variable(),
                    if report_host.is_some() { ", report_host" } else { "" },
                    path.display()
                ),
            ]
        }
        Action::VerifyData => vec![
            "STOP SLAVE SQL_THREAD  -- on the replica, restarted afterwards (also after an error)".into(),
            "START TRANSACTION WITH CONSISTENT SNAPSHOT  -- on the master".into(),
            "SHOW STATUS LIKE 'binlog_snapshot_%'  -- on the master: position <P>".into(),
            "-- the replica applies exactly up to <P>, then its SQL thread stops there".into(),
            "-- then digests every table on both servers and compares them (read-only)".into(),
        ],
        _ => vec![],
    }
}

/// `SET GLOBAL name = value`: a number as it is, anything else as a quoted string;
/// `None` when `name` is not a plain variable name (`[a-z0-9_]`, from a journal that may
/// have been edited).
pub(crate) fn set_global(name: &str, value: &str) -> Option<String> {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !plain {
        return None;
    }
    let numeric = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    let v = if numeric {
        value.to_string()
    } else {
        quote::string(value)
    };
    Some(format!("SET GLOBAL {name} = {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amsu_core::{Flavor, ReplicationTls, Version};

    #[test]
    fn set_global_quotes_text_and_refuses_odd_names() {
        assert_eq!(
            set_global("sync_binlog", "0").as_deref(),
            Some("SET GLOBAL sync_binlog = 0")
        );
        assert_eq!(
            set_global("x_mode", "a'b").as_deref(),
            Some("SET GLOBAL x_mode = 'a''b'")
        );
        assert_eq!(set_global("a = 1; DROP", "0"), None);
        let g = amsu_core::GlobalChange::new("sync_binlog", "1", "0");
        let d = Dialect::new(Flavor::MariaDb, Version::new(10, 11, 19));
        assert_eq!(
            statements(
                &Action::RelaxReplicaDurability {
                    settings: vec![g.clone()]
                },
                &d,
                &d
            ),
            vec!["SET GLOBAL sync_binlog = 0  -- was 1"]
        );
        assert_eq!(
            statements(
                &Action::RestoreReplicaSettings { settings: vec![g] },
                &d,
                &d
            ),
            vec!["SET GLOBAL sync_binlog = 1"]
        );
    }

    #[test]
    fn never_shows_a_password() {
        let d = Dialect::new(Flavor::MariaDb, Version::new(10, 11, 19));
        let a = Action::CreateReplicationUser {
            user: "amsu_repl".into(),
            host: "%".into(),
        };
        let s = statements(&a, &d, &d);
        assert_eq!(s[0], "CREATE USER 'amsu_repl'@'%' IDENTIFIED BY '***'");
        assert!(s[1].starts_with("GRANT REPLICATION SLAVE ON *.* TO"));
        let c = Action::ChangeMaster {
            host: "db1".into(),
            port: 3306,
            user: "amsu_repl".into(),
            coordinates: None,
            positioning: Positioning::FilePosition,
            tls: ReplicationTls::default(),
        };
        let s = statements(&c, &d, &d).join(" ");
        assert!(s.contains("MASTER_HOST") && s.contains("'***'"), "{s}");
        assert!(
            s.contains("MASTER_LOG_FILE='<snapshot file>', MASTER_LOG_POS=<snapshot position>"),
            "{s}"
        );
        let w = statements(
            &Action::WaitCaughtUp {
                positioning: Positioning::FilePosition,
            },
            &d,
            &d,
        )
        .join(" ");
        assert!(w.contains("<position>") && !w.contains(", 0,"), "{w}");
        assert!(!s.contains("MASTER_SSL"), "{s}");
    }

    #[test]
    fn change_master_shows_tls_and_gtid() {
        let d = Dialect::new(Flavor::MariaDb, Version::new(10, 11, 19));
        let c = Action::ChangeMaster {
            host: "db1".into(),
            port: 3306,
            user: "amsu_repl".into(),
            coordinates: None,
            positioning: Positioning::Gtid,
            tls: ReplicationTls::new(false, Some("/etc/ca.pem".into()), None, None, false),
        };
        let s = statements(&c, &d, &d);
        assert_eq!(
            s[0],
            "SET GLOBAL gtid_slave_pos = '<snapshot GTID position>'"
        );
        assert!(
            s[1].contains("MASTER_USE_GTID=slave_pos, MASTER_SSL=1, MASTER_SSL_CA='/etc/ca.pem'"),
            "{}",
            s[1]
        );
        let u = statements(
            &Action::UpdateReplicaCredentials {
                user: "amsu_repl".into(),
                tls: ReplicationTls::default(),
            },
            &d,
            &d,
        );
        assert_eq!(
            u,
            [
                "STOP SLAVE",
                "CHANGE MASTER TO MASTER_USER='amsu_repl', MASTER_PASSWORD='***'"
            ]
        );
        let w = statements(
            &Action::WaitCaughtUp {
                positioning: Positioning::Gtid,
            },
            &d,
            &d,
        );
        assert!(w[2].starts_with("SELECT MASTER_GTID_WAIT("), "{w:?}");
        let w = statements(
            &Action::WaitCaughtUp {
                positioning: Positioning::FilePosition,
            },
            &d,
            &d,
        );
        assert!(w[1].starts_with("SELECT MASTER_POS_WAIT("), "{w:?}");
    }
}
