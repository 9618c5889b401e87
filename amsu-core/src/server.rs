//! What amsu knows about a server: its address, flavor, version and replication state.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// Which side of the setup a server is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The live server whose data is copied.
    Master,
    /// The server that becomes a replica.
    Replica,
    /// A running replica of the master the copy is read from instead of the master
    /// (`--donor`).
    Donor,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Master => "master",
            Role::Replica => "replica",
            Role::Donor => "donor",
        })
    }
}

/// Where a server listens and whom to log in as: `mysql://USER[:PASSWORD]@HOST[:PORT]`,
/// or over a unix socket: `mysql://USER@localhost/?socket=/run/mysqld/mysqld.sock`.
///
/// | part | default |
/// |---|---|
/// | `USER` | `root` |
/// | `PASSWORD` | none (give it through the environment or a file instead) |
/// | `PORT` | `3306` |
/// | `?socket=PATH` | none: TCP |
///
/// `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerAddr {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password, if any.
    pub password: Option<Secret>,
    /// A unix socket to connect through instead of TCP (the host and port then only name
    /// the server in messages).
    pub socket: Option<String>,
}

impl ServerAddr {
    /// An address with the given host and port, user `root` and no password.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ServerAddr {
            host: host.into(),
            port,
            user: "root".into(),
            password: None,
            socket: None,
        }
    }

    /// Sets the user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Sets the password.
    pub fn password(mut self, password: Option<Secret>) -> Self {
        self.password = password;
        self
    }

    /// Connects through this unix socket instead of TCP.
    pub fn socket(mut self, socket: Option<String>) -> Self {
        self.socket = socket;
        self
    }

    /// Whether the server is on this machine: reached through a unix socket, or at a
    /// host name that means this machine ([`is_local_host`]).
    pub fn is_local(&self) -> bool {
        self.socket.is_some() || is_local_host(&self.host)
    }
}

/// Whether a host name means this machine: `localhost` (any case, with or without a
/// trailing dot), or a loopback address (`127.0.0.0/8`, `::1`, an IPv4-mapped `127.x`),
/// with or without IPv6 brackets. Other names of this host are not recognised.
pub fn is_local_host(host: &str) -> bool {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    if h.trim_end_matches('.').eq_ignore_ascii_case("localhost") {
        return true;
    }
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mysql://{}@{}:{}", self.user, self.host, self.port)?;
        match &self.socket {
            Some(s) => write!(f, "/?socket={s}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAddr")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("socket", &self.socket)
            .finish()
    }
}

/// A server URL that could not be parsed. The message never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server URL: {reason}; expected mysql://USER[:PASSWORD]@HOST[:PORT]")]
#[non_exhaustive]
pub struct AddrParseError {
    reason: String,
}

impl FromStr for ServerAddr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| AddrParseError {
            reason: reason.to_string(),
        };
        let percent_decode = |part: &str| {
            crate::human::percent_decode(part)
                .map_err(|_| err("a %-escape in it does not decode to UTF-8 text"))
        };
        let rest = s
            .strip_prefix("mysql://")
            .ok_or_else(|| err("it must start with mysql://"))?;
        let (rest, socket) = match rest.split_once('?') {
            Some((r, query)) => {
                let mut socket = None;
                for kv in query.split('&').filter(|kv| !kv.is_empty()) {
                    match kv.split_once('=') {
                        Some(("socket", v)) if !v.is_empty() => socket = Some(percent_decode(v)?),
                        _ => return Err(err("the only URL parameter is ?socket=PATH")),
                    }
                }
                (r, socket)
            }
            None => (rest, None),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => ("root".to_string(), None),
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (percent_decode(u)?, Some(Secret::new(percent_decode(p)?))),
                None => (percent_decode(ui)?, None),
            },
        };
        if user.is_empty() {
            return Err(err("the user name is empty"));
        }
        if hostport.contains('/') {
            return Err(err("a path after the host is not allowed"));
        }
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [IPv6]:port
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| err("unterminated [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| err("the port is not a number"))?,
                None if after.is_empty() => 3306,
                None => return Err(err("unexpected text after the host")),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse()
                        .map_err(|_| err("the port is not a number between 1 and 65535"))?,
                ),
                None => (hostport.to_string(), 3306),
            }
        };
        if host.is_empty() {
            return Err(err("the host is empty"));
        }
        if port == 0 {
            return Err(err("port 0 is not a valid port"));
        }
        Ok(ServerAddr {
            host,
            port,
            user,
            password,
            socket,
        })
    }
}

/// The server family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// MariaDB 10.x / 11.x.
    MariaDb,
    /// Oracle MySQL 5.7 / 8.x / 9.x (and compatible builds).
    MySql,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::MariaDb => "MariaDB",
            Flavor::MySql => "MySQL",
        })
    }
}

/// A server version, compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Version {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
    /// Patch number.
    pub patch: u16,
}

impl Version {
    /// A version from its three numbers.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Everything the orchestrator needs to know about a server before it decides anything.
/// Adapters build it with [`ServerInfo::new`] and the `with_*` setters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerInfo {
    /// Server family.
    pub flavor: Flavor,
    /// Parsed version.
    pub version: Version,
    /// `@@version` as the server reports it.
    pub version_string: String,
    /// `@@global.server_id`.
    pub server_id: u32,
    /// `@@global.log_bin`.
    pub log_bin: bool,
    /// `@@global.binlog_format` (`ROW`, `MIXED`, `STATEMENT`).
    pub binlog_format: String,
    /// `@@global.read_only`.
    pub read_only: bool,
}

impl ServerInfo {
    /// A server of `flavor` at `version` (`version_string` as `@@version` says it).
    /// Defaults: `server_id` 0, binary log off, empty `binlog_format`, not read-only.
    pub fn new(flavor: Flavor, version: Version, version_string: impl Into<String>) -> Self {
        ServerInfo {
            flavor,
            version,
            version_string: version_string.into(),
            server_id: 0,
            log_bin: false,
            binlog_format: String::new(),
            read_only: false,
        }
    }

    /// `@@global.server_id`. Default: 0.
    pub fn with_server_id(mut self, server_id: u32) -> Self {
        self.server_id = server_id;
        self
    }

    /// `@@global.log_bin`. Default: false.
    pub fn with_log_bin(mut self, log_bin: bool) -> Self {
        self.log_bin = log_bin;
        self
    }

    /// `@@global.binlog_format`. Default: empty.
    pub fn with_binlog_format(mut self, format: impl Into<String>) -> Self {
        self.binlog_format = format.into();
        self
    }

    /// `@@global.read_only`. Default: false.
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
}

/// A point in the master's binary log. Adapters build it with [`Coordinates::new`] and
/// [`Coordinates::with_gtid`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Coordinates {
    /// Binary log file name.
    pub file: String,
    /// Byte position in that file.
    pub position: u64,
    /// The GTID set at that point (`@@gtid_binlog_pos` on MariaDB), when known.
    pub gtid: Option<String>,
}

impl Coordinates {
    /// The point at `position` in the binary log `file`, without a GTID set.
    pub fn new(file: impl Into<String>, position: u64) -> Self {
        Coordinates {
            file: file.into(),
            position,
            gtid: None,
        }
    }

    /// The GTID set at that point, when known. Default: none.
    pub fn with_gtid(mut self, gtid: Option<String>) -> Self {
        self.gtid = gtid;
        self
    }
}

impl fmt::Display for Coordinates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.position)?;
        if let Some(g) = self.gtid.as_deref().filter(|g| !g.is_empty()) {
            write!(f, " (GTID {g})")?;
        }
        Ok(())
    }
}

/// The replication state of a server, from `SHOW SLAVE STATUS` / `SHOW REPLICA STATUS`.
/// Adapters build it with [`ReplicationStatus::new`] and the `with_*` setters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReplicationStatus {
    /// Master host it replicates from.
    pub master_host: String,
    /// Master port.
    pub master_port: u16,
    /// I/O thread running (`Slave_IO_Running` = `Yes`).
    pub io_running: bool,
    /// SQL thread running.
    pub sql_running: bool,
    /// `Last_IO_Error`, empty when none.
    pub last_io_error: String,
    /// `Last_SQL_Error`, empty when none.
    pub last_sql_error: String,
    /// `Seconds_Behind_Master`, when known.
    pub seconds_behind: Option<u64>,
    /// Master binlog file the SQL thread has executed up to (`Relay_Master_Log_File`).
    pub exec_file: String,
    /// Position in that file (`Exec_Master_Log_Pos`).
    pub exec_position: u64,
}

impl ReplicationStatus {
    /// Replication from the master at `master_host:master_port`. Defaults: both threads
    /// stopped, no errors, the lag unknown, no executed position.
    pub fn new(master_host: impl Into<String>, master_port: u16) -> Self {
        ReplicationStatus {
            master_host: master_host.into(),
            master_port,
            ..Default::default()
        }
    }

    /// Whether the I/O and the SQL thread run. Default: both stopped.
    pub fn with_threads(mut self, io_running: bool, sql_running: bool) -> Self {
        self.io_running = io_running;
        self.sql_running = sql_running;
        self
    }

    /// `Last_IO_Error` and `Last_SQL_Error` (empty: none). Default: none.
    pub fn with_errors(
        mut self,
        last_io_error: impl Into<String>,
        last_sql_error: impl Into<String>,
    ) -> Self {
        self.last_io_error = last_io_error.into();
        self.last_sql_error = last_sql_error.into();
        self
    }

    /// `Seconds_Behind_Master`, when known. Default: unknown.
    pub fn with_seconds_behind(mut self, seconds: Option<u64>) -> Self {
        self.seconds_behind = seconds;
        self
    }

    /// The master position the SQL thread has executed up to. Default: none (empty, 0).
    pub fn with_executed(mut self, file: impl Into<String>, position: u64) -> Self {
        self.exec_file = file.into();
        self.exec_position = position;
        self
    }

    /// True when the I/O or SQL thread runs.
    pub fn is_active(&self) -> bool {
        self.io_running || self.sql_running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts() {
        for h in [
            "127.0.0.1",
            "127.0.0.2",
            "localhost",
            "LOCALHOST",
            "localhost.",
            "::1",
            "[::1]",
            "0:0:0:0:0:0:0:1",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_local_host(h), "{h}");
        }
        for h in [
            "10.0.0.1",
            "db2.example",
            "::2",
            "127.example.com",
            "1270.0.0.1",
            "localhost.example",
            "",
        ] {
            assert!(!is_local_host(h), "{h}");
        }
        assert!(ServerAddr::new("db1", 3306)
            .socket(Some("/run/mysqld.sock".into()))
            .is_local());
        assert!(!ServerAddr::new("db1", 3306).is_local());
    }

    #[test]
    fn parses_a_socket_url() {
        let a: ServerAddr = "mysql://app@localhost/?socket=/run/my%20sql.sock"
            .parse()
            .unwrap();
        assert_eq!(a.socket.as_deref(), Some("/run/my sql.sock"));
        assert_eq!((a.host.as_str(), a.user.as_str()), ("localhost", "app"));
        assert_eq!(
            a.to_string(),
            "mysql://app@localhost:3306/?socket=/run/my sql.sock"
        );
        assert!("mysql://h/?sock=/x".parse::<ServerAddr>().is_err());
        assert_eq!("mysql://h:1".parse::<ServerAddr>().unwrap().socket, None);
    }

    #[test]
    fn parses_full_url() {
        let a: ServerAddr = "mysql://admin:s%40cret@db1.example:3307".parse().unwrap();
        assert_eq!(a.user, "admin");
        assert_eq!(a.password.as_ref().unwrap().expose(), "s@cret");
        assert_eq!(a.host, "db1.example");
        assert_eq!(a.port, 3307);
    }

    #[test]
    fn url_parts_are_percent_decoded() {
        let a: ServerAddr = "mysql://u%2Fx:a%2Fb%zz%C3%A4@h/?socket=/run/my%40.sock"
            .parse()
            .unwrap();
        assert_eq!(a.user, "u/x");
        // An invalid escape is kept as written; UTF-8 escapes decode.
        assert_eq!(a.password.as_ref().unwrap().expose(), "a/b%zzä");
        assert_eq!(a.socket.as_deref(), Some("/run/my@.sock"));
        // Not UTF-8 once decoded: an error (it used to become U+FFFD, a wrong password),
        // without the password in it.
        let e = "mysql://u:pw%FF@h"
            .parse::<ServerAddr>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("UTF-8") && !e.contains("pw"), "{e}");
    }

    #[test]
    fn defaults_port_and_user() {
        let a: ServerAddr = "mysql://127.0.0.1".parse().unwrap();
        assert_eq!((a.user.as_str(), a.port, a.password), ("root", 3306, None));
        let b: ServerAddr = "mysql://repl@[::1]:3310".parse().unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 3310));
    }

    #[test]
    fn rejects_bad_urls_without_leaking_password() {
        for bad in [
            "postgres://x@h",
            "mysql://u:pw@h:notaport",
            "mysql://u:pw@",
            "mysql://u:pw@h:0",
        ] {
            let e = bad.parse::<ServerAddr>().unwrap_err().to_string();
            assert!(!e.contains("pw"), "{e}");
            assert!(e.contains("mysql://USER"), "{e}");
        }
    }

    #[test]
    fn display_and_debug_hide_password() {
        let a: ServerAddr = "mysql://u:topsecret@h:1".parse().unwrap();
        assert!(!format!("{a} {a:?}").contains("topsecret"));
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(Version::new(10, 11, 2) > Version::new(10, 9, 20));
        assert!(Version::new(11, 0, 0) > Version::new(10, 11, 19));
    }
}
