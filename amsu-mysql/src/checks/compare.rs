//! Master against replica: the pure decisions of this part of the preflight (see the parent module).

use super::*;

/// Settings that must agree between master and replica: `lower_case_table_names`,
/// server character set and collation, `sql_mode`, `time_zone` and the time zone tables;
/// pure.
pub(crate) fn consistency_findings(master: &ServerFacts, replica: &ServerFacts) -> Vec<Finding> {
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
