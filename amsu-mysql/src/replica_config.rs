//! The replica's settings as an option-file snippet, so that they survive a restart
//! (`amsu setup --replica-config-file PATH`).
//!
//! `SET GLOBAL` changes are lost when the server restarts; `skip_slave_start` cannot be set
//! at runtime at all. [`option_snippet`] renders the `[mysqld]` lines with the dialect's
//! `Dialect::persist` helpers, and [`read`] gets the values from
//! the running replica.

use amsu_core::ServerAddr;

use crate::conn::{field, Session};
use crate::dialect::{Dialect, VarValue, OPTION_FILE_SECTION};
use crate::server::probe;
use crate::MysqlError;

/// What the replica's option file must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// The replica's dialect (variable names differ between versions).
    pub dialect: Dialect,
    /// Its `server_id`.
    pub server_id: u32,
    /// Base name of its relay logs (`@@relay_log_basename`), pinned so that a changed host
    /// name does not orphan them; `None` when unknown.
    pub relay_log: Option<String>,
    /// `report_host`: the name the replica gives the master for `SHOW SLAVE HOSTS`.
    pub report_host: Option<String>,
}

fn line(d: &Dialect, var: &str, value: VarValue, runtime: bool) -> Option<String> {
    let p = if runtime {
        d.persist(var, &value)
    } else {
        d.persist_only(var, &value)
    }
    .ok()?;
    // MySQL ≥ 8.0 persists with SET PERSIST; the file asked for still gets the line.
    p.option_file_line.or_else(|| {
        Some(match value {
            VarValue::Int(i) => format!("{var} = {i}"),
            VarValue::Bool(b) => format!("{var} = {}", u8::from(b)),
            VarValue::Str(s) => format!("{var} = {s}"),
        })
    })
}

/// The snippet: a comment saying where it came from and how to use it, then `[mysqld]`
/// with `server_id`, `read_only`, `skip_slave_start = 0` (or `skip_replica_start`: the
/// set-up replica resumes replicating when it restarts), and `relay_log` / `report_host`
/// when known; pure.
pub fn option_snippet(c: &ReplicaConfig, source: &str) -> String {
    let d = &c.dialect;
    let mut out = format!(
        "# Written by amsu setup for the replica {source}.\n\
         # Include it from the replica's option file (e.g. `!include /path/to/this/file`)\n\
         # so that these settings survive a restart. Replication starts with the server;\n\
         # set {skip} = 1 to start it by hand after a restart instead.\n\
         [{OPTION_FILE_SECTION}]\n",
        skip = d.skip_replica_start_variable()
    );
    let mut lines = vec![
        line(d, "server_id", VarValue::from(c.server_id), true),
        line(d, "read_only", VarValue::from(true), true),
        line(
            d,
            d.skip_replica_start_variable(),
            VarValue::from(false),
            false,
        ),
    ];
    if let Some(r) = c.relay_log.as_deref().filter(|r| !r.is_empty()) {
        lines.push(line(d, "relay_log", VarValue::from(r), false));
    }
    if let Some(h) = c.report_host.as_deref().filter(|h| !h.is_empty()) {
        lines.push(line(d, "report_host", VarValue::from(h), false));
    }
    for l in lines.into_iter().flatten() {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Reads the running replica's `server_id` and relay log base name.
pub async fn read(
    addr: &ServerAddr,
    report_host: Option<String>,
) -> Result<ReplicaConfig, MysqlError> {
    let mut s = Session::open(addr).await?;
    let info = probe(&mut s).await?;
    let what = "reading the relay log name";
    let relay_log = s
        .first_row("SHOW GLOBAL VARIABLES LIKE 'relay_log_basename'", what)
        .await?
        .and_then(|row| field(&row, "Value").map(str::to_string));
    Ok(ReplicaConfig {
        dialect: Dialect::new(info.flavor, info.version),
        server_id: info.server_id,
        relay_log,
        report_host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use amsu_core::{Flavor, Version};

    #[test]
    fn mariadb_snippet() {
        let c = ReplicaConfig {
            dialect: Dialect::new(Flavor::MariaDb, Version::new(10, 11, 19)),
            server_id: 4711,
            relay_log: Some("/var/lib/mysql/db2-relay-bin".into()),
            report_host: Some("db2.example".into()),
        };
        let s = option_snippet(&c, "mysql://root@db2:3306");
        assert!(s.starts_with("# Written by amsu setup for the replica mysql://root@db2:3306.\n"));
        assert!(
            s.ends_with(
                "[mysqld]\nserver_id = 4711\nread_only = 1\nskip_slave_start = 0\n\
             relay_log = /var/lib/mysql/db2-relay-bin\nreport_host = db2.example\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn mysql_84_snippet_uses_the_new_name_and_skips_unknowns() {
        let c = ReplicaConfig {
            dialect: Dialect::new(Flavor::MySql, Version::new(8, 4, 0)),
            server_id: 2,
            relay_log: Some(String::new()),
            report_host: None,
        };
        let s = option_snippet(&c, "r");
        assert!(
            s.ends_with("[mysqld]\nserver_id = 2\nread_only = 1\nskip_replica_start = 0\n"),
            "{s}"
        );
    }
}
