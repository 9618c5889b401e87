//! Errors of the MySQL side, keeping the server's error number.

use amsu_core::{AdapterError, ErrorKind};
use thiserror::Error;

/// Server error numbers amsu branches on (shared by MySQL and MariaDB).
pub mod codes {
    /// `ER_DBACCESS_DENIED_ERROR`: access denied to a database.
    pub const DBACCESS_DENIED: u16 = 1044;
    /// `ER_ACCESS_DENIED_ERROR`: wrong user or password.
    pub const ACCESS_DENIED: u16 = 1045;
    /// `ER_ACCESS_DENIED_NO_PASSWORD_ERROR`: a login without a password refused.
    pub const ACCESS_DENIED_NO_PASSWORD: u16 = 1698;
    /// `ER_TABLEACCESS_DENIED_ERROR`.
    pub const TABLEACCESS_DENIED: u16 = 1142;
    /// `ER_SPECIFIC_ACCESS_DENIED_ERROR`: a privilege such as SUPER is missing.
    pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    /// `ER_CANNOT_USER`: CREATE/DROP USER failed (e.g. the user exists).
    pub const CANNOT_USER: u16 = 1396;
    /// `ER_NO_SUCH_USER`: the definer of an object does not exist (a note when the
    /// creating user may name any definer; an error when a view is used through one).
    pub const NO_SUCH_USER: u16 = 1449;
    /// `ER_UNSUPPORTED_PS`: the statement cannot be prepared (MySQL's `CREATE PROCEDURE`).
    pub const UNSUPPORTED_PS: u16 = 1295;
    /// `ER_LOCK_WAIT_TIMEOUT`: a lock (also a metadata or backup lock) was not granted
    /// within `lock_wait_timeout`.
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// `ER_MASTER_FATAL_ERROR_READING_BINLOG`: the binlog the replica needs is gone.
    pub const MASTER_FATAL_READING_BINLOG: u16 = 1236;
    /// `ER_UNKNOWN_SYSTEM_VARIABLE`.
    pub const UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;
    /// MariaDB's `ER_STATEMENT_TIMEOUT`: `max_statement_time` exceeded.
    pub const STATEMENT_TIMEOUT: u16 = 1969;
    /// MySQL's `ER_QUERY_TIMEOUT`: `max_execution_time` exceeded.
    pub const QUERY_TIMEOUT: u16 = 3024;
}

/// An error talking to a MySQL-family server. Messages name the server (never a password)
/// and what amsu was doing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MysqlError {
    /// Could not connect or log in.
    #[error("cannot connect to {server}: {source}")]
    Connect {
        /// The server (`mysql://user@host:port`, no password).
        server: String,
        /// The driver's error, classified ([`ErrorKind::Connection`] or
        /// [`ErrorKind::Authentication`], with the server's error number).
        #[source]
        source: AdapterError,
    },
    /// A statement failed.
    #[error("{server}: {what} failed: {source}{}", disk_hint(source))]
    Query {
        /// The server.
        server: String,
        /// What amsu was doing (never contains a secret).
        what: String,
        /// The driver's error, classified ([`ErrorKind::Server`] with the server's error
        /// number, or [`ErrorKind::Connection`] when the connection failed).
        #[source]
        source: AdapterError,
    },
    /// The server answered something amsu did not expect.
    #[error("{server}: unexpected answer to {what}: {detail}")]
    Unexpected {
        /// The server.
        server: String,
        /// What amsu asked.
        what: String,
        /// What was wrong.
        detail: String,
        /// The classification ([`ErrorKind::Unexpected`]), for
        /// [`amsu_core::kind_of`]; see [`MysqlError::unexpected`].
        #[source]
        source: AdapterError,
    },
    /// Replication did not start or stopped with an error.
    #[error("replication on {server} is not running: IO thread {io_state}, SQL thread {sql_state}; Last_IO_Error: {last_io_error:?}; Last_SQL_Error: {last_sql_error:?}")]
    Replication {
        /// The replica.
        server: String,
        /// `Slave_IO_Running` (boxed, like `sql_state`, to keep the error small).
        io_state: Box<str>,
        /// `Slave_SQL_Running`.
        sql_state: Box<str>,
        /// `Last_IO_Error`, verbatim.
        last_io_error: String,
        /// `Last_SQL_Error`, verbatim.
        last_sql_error: String,
        /// The classification ([`ErrorKind::Replication`]); see
        /// [`MysqlError::replication`].
        #[source]
        source: AdapterError,
    },
    /// The server stopped a statement that ran longer than the session's bound (see
    /// `Session::limit_statements`).
    #[error(
        "{server}: {what} took longer than {} s and was stopped by the server \
         (the bound on amsu's metadata statements; raise it with AMSU_METADATA_TIMEOUT=SECONDS)",
        *millis as f64 / 1000.0
    )]
    StatementTimeout {
        /// The server.
        server: String,
        /// What the statement was for.
        what: String,
        /// The bound, in milliseconds (0 when unknown).
        millis: u64,
        /// The classification ([`ErrorKind::Server`] with the server's error number,
        /// `max_statement_time`'s 1969 or `max_execution_time`'s 3024); see
        /// [`MysqlError::statement_timeout`].
        #[source]
        source: AdapterError,
    },
    /// A wait ran out of time.
    #[error("{server}: timed out after {seconds} s waiting for {what}")]
    Timeout {
        /// The server.
        server: String,
        /// What amsu waited for.
        what: String,
        /// The time limit.
        seconds: u64,
        /// The classification ([`ErrorKind::Timeout`], or [`ErrorKind::Connection`] for
        /// a connection); see [`MysqlError::timeout`].
        #[source]
        source: AdapterError,
    },
}

/// The classification of a [`MysqlError`] without a driver error: shown as a phrase the
/// error's own message already holds (so a rendered source chain does not repeat it).
#[derive(Debug)]
struct Phrase(&'static str);

impl std::fmt::Display for Phrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Phrase {}

fn classified(kind: ErrorKind, phrase: &'static str) -> AdapterError {
    AdapterError::new(kind, Phrase(phrase))
}

impl MysqlError {
    /// A failed connection or login to `server` (`mysql://user@host:port`, no password).
    pub(crate) fn connect(server: impl Into<String>, source: mysql_async::Error) -> Self {
        let errno = server_code(&source);
        let kind = match errno {
            Some(codes::ACCESS_DENIED | codes::ACCESS_DENIED_NO_PASSWORD) => {
                ErrorKind::Authentication
            }
            _ => ErrorKind::Connection,
        };
        MysqlError::Connect {
            server: server.into(),
            source: AdapterError::new(kind, source).with_errno(errno),
        }
    }

    /// A statement that failed on `server` while amsu was doing `what` (never a secret).
    pub(crate) fn query(
        server: impl Into<String>,
        what: impl Into<String>,
        source: mysql_async::Error,
    ) -> Self {
        MysqlError::Query {
            server: server.into(),
            what: what.into(),
            source: classify(source),
        }
    }

    /// An unexpected answer from `server` to `what` ([`ErrorKind::Unexpected`]).
    pub fn unexpected(
        server: impl Into<String>,
        what: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        MysqlError::Unexpected {
            server: server.into(),
            what: what.into(),
            detail: detail.into(),
            source: classified(ErrorKind::Unexpected, "unexpected answer"),
        }
    }

    /// Replication on `server` is not running ([`ErrorKind::Replication`]): the raw
    /// thread states and the last errors, verbatim.
    pub fn replication(
        server: impl Into<String>,
        io_state: impl Into<String>,
        sql_state: impl Into<String>,
        last_io_error: impl Into<String>,
        last_sql_error: impl Into<String>,
    ) -> Self {
        MysqlError::Replication {
            server: server.into(),
            io_state: io_state.into().into_boxed_str(),
            sql_state: sql_state.into().into_boxed_str(),
            last_io_error: last_io_error.into(),
            last_sql_error: last_sql_error.into(),
            source: classified(ErrorKind::Replication, "is not running"),
        }
    }

    /// The server stopped a statement for `what` at the session's bound of `millis`
    /// (0 when unknown) with error `errno` ([`ErrorKind::Server`]).
    pub fn statement_timeout(
        server: impl Into<String>,
        what: impl Into<String>,
        millis: u64,
        errno: u16,
    ) -> Self {
        MysqlError::StatementTimeout {
            server: server.into(),
            what: what.into(),
            millis,
            source: classified(ErrorKind::Server { errno }, "was stopped by the server"),
        }
    }

    /// A wait on `server` for `what` ran out after `seconds` ([`ErrorKind::Timeout`]).
    pub fn timeout(server: impl Into<String>, what: impl Into<String>, seconds: u64) -> Self {
        MysqlError::Timeout {
            server: server.into(),
            what: what.into(),
            seconds,
            source: classified(ErrorKind::Timeout, "timed out"),
        }
    }

    /// Connecting to `server` took longer than `seconds` ([`ErrorKind::Connection`]).
    pub fn connect_timeout(server: impl Into<String>, seconds: u64) -> Self {
        MysqlError::Timeout {
            server: server.into(),
            what: "the connection".into(),
            seconds,
            source: classified(ErrorKind::Connection, "timed out"),
        }
    }

    /// What kind of failure this is (also what [`amsu_core::kind_of`] finds for it in a
    /// source chain).
    pub fn kind(&self) -> ErrorKind {
        match self {
            MysqlError::Connect { source, .. }
            | MysqlError::Query { source, .. }
            | MysqlError::Unexpected { source, .. }
            | MysqlError::Replication { source, .. }
            | MysqlError::StatementTimeout { source, .. }
            | MysqlError::Timeout { source, .. } => source.kind(),
        }
    }

    /// The server's error number, when the server returned one.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            MysqlError::Connect { source, .. }
            | MysqlError::Query { source, .. }
            | MysqlError::StatementTimeout { source, .. } => source.server_errno(),
            _ => None,
        }
    }

    /// True when the server refused the credentials.
    pub fn is_access_denied(&self) -> bool {
        self.server_code() == Some(codes::ACCESS_DENIED)
    }
}

/// A statement's driver error as a core [`AdapterError`]: a server error with its number
/// (also 1045, which a statement gets for a missing FILE privilege), else a connection
/// failure (the driver's I/O and protocol errors).
pub(crate) fn classify(e: mysql_async::Error) -> AdapterError {
    match server_code(&e) {
        Some(errno) => AdapterError::new(ErrorKind::Server { errno }, e),
        None => AdapterError::new(ErrorKind::Connection, e),
    }
}

/// The server's error number inside a driver error.
pub(crate) fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// Server errors that mean a full disk (or a file that cannot grow): `ER_ERROR_ON_WRITE`,
/// `ER_DISK_FULL`, `ER_RECORD_FILE_FULL`, `ER_OUTOFMEMORY`-free write failures.
const DISK_CODES: &[u16] = &[3, 1021, 1114];

/// A note added to an error that looks like a full disk: the server's own words (e.g.
/// "Can't change size of file (Errcode: …)") do not say so.
fn disk_hint(e: &AdapterError) -> &'static str {
    let text = e.to_string();
    let disk = e.server_errno().is_some_and(|c| DISK_CODES.contains(&c))
        || text.contains("Can't change size of file")
        || text.contains("No space left")
        || text.contains("Errcode: 28");
    if disk {
        " (this usually means the server's disk is full: check the free space of its data directory and temporary directory, free or add space, then rerun)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amsu_core::{Error, Role, Step};

    fn server(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: message.into(),
            state: "HY000".into(),
        })
    }

    /// The error as the orchestrator gives it to the caller.
    fn failed(e: MysqlError) -> Error {
        Error::Failed {
            step: Step::ConfigureReplica,
            server: Role::Replica,
            source: Box::new(e),
            state: String::new(),
        }
    }

    #[test]
    fn a_refused_login_is_an_authentication_error_with_its_number() {
        let e = MysqlError::connect("mysql://u@db:3306", server(1045, "Access denied"));
        assert!(e.is_access_denied());
        let e = failed(e);
        assert_eq!(e.kind(), ErrorKind::Authentication);
        assert_eq!(e.server_errno(), Some(1045));
        assert!(
            e.to_string()
                .contains("cannot connect to mysql://u@db:3306"),
            "{e}"
        );
        assert!(e.to_string().contains("Access denied"), "{e}");
    }

    #[test]
    fn an_unreachable_server_is_a_connection_error() {
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        )));
        let e = failed(MysqlError::connect("mysql://u@db:3306", io));
        assert_eq!(e.kind(), ErrorKind::Connection);
        assert_eq!(e.server_errno(), None);
    }

    #[test]
    fn a_refused_statement_is_a_server_error_with_its_number() {
        let e = MysqlError::query(
            "mysql://u@db:3306",
            "setting server_id",
            server(1227, "Access denied; you need the SUPER privilege"),
        );
        assert_eq!(e.server_code(), Some(1227));
        let e = failed(e);
        assert_eq!(e.kind(), ErrorKind::Server { errno: 1227 });
        assert_eq!(e.server_errno(), Some(1227));
        assert!(e.to_string().contains("setting server_id failed"), "{e}");
        // A full disk still gets its hint.
        let e = MysqlError::query("s", "loading t", server(1114, "The table 't' is full"));
        assert!(e.to_string().contains("disk is full"), "{e}");
    }

    /// Every message of the source chain, as the CLI renders it: a link whose text the
    /// message already holds is not repeated.
    fn rendered(e: &(dyn std::error::Error + 'static)) -> String {
        let mut out = String::new();
        for e in std::iter::successors(Some(e), |e| e.source()) {
            let msg = e.to_string();
            if !out.contains(&msg) {
                if !out.is_empty() {
                    out.push_str(": ");
                }
                out.push_str(&msg);
            }
        }
        out
    }

    #[test]
    fn errors_without_a_driver_error_have_a_fitting_kind() {
        let cases = [
            (
                MysqlError::timeout("mysql://u@r:3306", "the replica's SQL thread", 5),
                ErrorKind::Timeout,
            ),
            (
                MysqlError::connect_timeout("mysql://u@r:3306", 30),
                ErrorKind::Connection,
            ),
            (
                MysqlError::replication("mysql://u@r:3306", "No", "Yes", "error 1236", ""),
                ErrorKind::Replication,
            ),
            (
                MysqlError::unexpected("mysql://u@r:3306", "SHOW MASTER STATUS", "no row"),
                ErrorKind::Unexpected,
            ),
            (
                MysqlError::statement_timeout("mysql://u@r:3306", "counting rows", 200, 1969),
                ErrorKind::Server { errno: 1969 },
            ),
        ];
        for (e, kind) in cases {
            let message = e.to_string();
            assert_eq!(e.kind(), kind, "{message}");
            assert_eq!(amsu_core::kind_of(&e), Some(kind), "{message}");
            // The classification adds nothing to what is shown.
            assert_eq!(rendered(&e), message);
            let e = failed(e);
            assert_eq!(e.kind(), kind, "{message}");
            assert_eq!(rendered(&e), e.to_string());
        }
        let e = MysqlError::statement_timeout("s", "counting rows", 200, 3024);
        assert_eq!(e.server_code(), Some(3024));
        assert_eq!(amsu_core::server_errno(&e), Some(3024));
        assert_eq!(MysqlError::timeout("s", "x", 1).server_code(), None);
    }

    #[test]
    fn driver_errors_keep_their_kind() {
        let e = MysqlError::query("s", "reading", server(1142, "denied"));
        assert_eq!(e.kind(), ErrorKind::Server { errno: 1142 });
        let e = MysqlError::connect("s", server(1698, "no password"));
        assert_eq!(e.kind(), ErrorKind::Authentication);
        let e = MysqlError::connect("s", server(1040, "Too many connections"));
        assert_eq!(e.kind(), ErrorKind::Connection);
        assert_eq!(e.server_code(), Some(1040));
    }
}
