//! Connections: one place that turns a [`ServerAddr`] into mysql_async options.

use std::time::Duration;

use amsu_core::ServerAddr;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, TextProtocol};

use crate::row::{values_of, Row, SqlValue};
use crate::MysqlError;

/// Session settings of every amsu connection: explicit values so that nothing depends on
/// a server default (time zone, character set, sql_mode).
pub const SESSION_SETUP: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
];

/// mysql_async options for `addr`: TCP (or the unix socket `addr` names, never one
/// found on its own), no statement cache, amsu's session settings.
pub(crate) fn opts(addr: &ServerAddr) -> OptsBuilder {
    OptsBuilder::default()
        .socket(addr.socket.clone())
        .ip_or_hostname(addr.host.clone())
        .tcp_port(addr.port)
        .user(Some(addr.user.clone()))
        .pass(addr.password.as_ref().map(|p| p.expose().to_string()))
        .prefer_socket(false)
        .tcp_nodelay(true)
        .stmt_cache_size(0)
        .wait_timeout(Some(28_800))
        .setup(SESSION_SETUP.iter().map(|s| s.to_string()).collect())
}

/// Connects to `addr` with amsu's session settings.
pub(crate) async fn connect(addr: &ServerAddr) -> Result<Conn, MysqlError> {
    connect_opts(addr, opts(addr)).await
}

/// Connects with options derived from [`opts`].
pub(crate) async fn connect_opts(addr: &ServerAddr, opts: OptsBuilder) -> Result<Conn, MysqlError> {
    match tokio::time::timeout(Duration::from_secs(30), Conn::new(opts)).await {
        Ok(r) => r.map_err(|source| MysqlError::connect(addr.to_string(), source)),
        Err(_) => Err(MysqlError::connect_timeout(addr.to_string(), 30)),
    }
}

/// How long a metadata statement (a catalog read, a check, an administrative statement)
/// may run on a server by default, unless `AMSU_METADATA_TIMEOUT` (seconds) says
/// otherwise: see [`metadata_limit`].
pub const METADATA_LIMIT: Duration = Duration::from_secs(300);

/// The bound on metadata statements: `AMSU_METADATA_TIMEOUT` (whole seconds, at least 1)
/// when set to a number, [`METADATA_LIMIT`] otherwise.
pub fn metadata_limit() -> Duration {
    std::env::var("AMSU_METADATA_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.max(1)))
        .unwrap_or(METADATA_LIMIT)
}

/// The server-side limit a session runs its statements under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// MariaDB's `max_statement_time` (every statement).
    MariaDb(Duration),
    /// MySQL's `max_execution_time` (read-only `SELECT`s).
    MySql(Duration),
}

impl Limit {
    fn duration(self) -> Duration {
        match self {
            Limit::MariaDb(d) | Limit::MySql(d) => d,
        }
    }

    fn as_millis_u64(self) -> u64 {
        self.duration().as_millis() as u64
    }
}

/// A connection that remembers which server it talks to, for error messages.
pub struct Session {
    pub(crate) conn: Conn,
    server: String,
    single: bool,
    limit: Option<Limit>,
    dialect: Option<crate::dialect::Dialect>,
}

impl Session {
    /// Connects to `addr`.
    pub async fn open(addr: &ServerAddr) -> Result<Session, MysqlError> {
        Ok(Session {
            conn: connect(addr).await?,
            server: addr.to_string(),
            single: false,
            limit: None,
            dialect: None,
        })
    }

    /// Connects to `addr` for metadata work: every statement of the session is bounded
    /// by [`metadata_limit`] on the server itself (see [`Session::limit_statements`]), so
    /// none keeps running on the server when amsu is gone.
    pub async fn open_bounded(addr: &ServerAddr) -> Result<Session, MysqlError> {
        let mut s = Session::open(addr).await?;
        s.limit_statements(metadata_limit()).await?;
        Ok(s)
    }

    /// From now on, [`Session::exec_one`] never lets the server run more than one
    /// statement of a text (for SQL text from outside, such as an image).
    ///
    /// mysql_async always asks for `CLIENT_MULTI_STATEMENTS` and has no way to turn it
    /// off, so with it a text query `a; b` runs both. A statement sent with the
    /// prepared-statement protocol is always one statement: the server refuses `a; b`.
    pub fn single_statements(&mut self) {
        self.single = true;
    }

    /// True after [`Session::single_statements`].
    pub fn is_single_statements(&self) -> bool {
        self.single
    }

    /// Bounds every following statement of this session to `limit` on the server itself:
    /// MariaDB's `max_statement_time` (every statement), or MySQL's `max_execution_time`
    /// (read-only `SELECT`s). The server stops a statement that runs longer, whether or
    /// not amsu is still there to wait for it; amsu reports it as
    /// [`MysqlError::StatementTimeout`] naming what the statement was for. A zero
    /// `limit` lifts the bound.
    pub async fn limit_statements(&mut self, limit: Duration) -> Result<(), MysqlError> {
        let secs = limit.as_secs_f64();
        let mariadb = format!("SET SESSION max_statement_time = {secs:.3}");
        match self.conn.query_drop(&mariadb).await {
            Ok(()) => {
                self.limit = (!limit.is_zero()).then_some(Limit::MariaDb(limit));
                return Ok(());
            }
            // MySQL has no max_statement_time (ER_UNKNOWN_SYSTEM_VARIABLE).
            Err(e) if crate::server_code(&e) == Some(crate::codes::UNKNOWN_SYSTEM_VARIABLE) => {}
            Err(source) => {
                return Err(MysqlError::query(
                    self.server.clone(),
                    "bounding the session's statement time",
                    source,
                ))
            }
        }
        let mysql = format!("SET SESSION max_execution_time = {}", limit.as_millis());
        self.exec(&mysql, "bounding the session's statement time")
            .await?;
        self.limit = (!limit.is_zero()).then_some(Limit::MySql(limit));
        Ok(())
    }

    /// The bound set by [`Session::limit_statements`], if any.
    pub fn statement_limit(&self) -> Option<Duration> {
        self.limit.map(Limit::duration)
    }

    /// The dialect read by [`crate::SqlSession::dialect`], once read.
    pub(crate) fn cached_dialect(&self) -> Option<crate::dialect::Dialect> {
        self.dialect
    }

    /// Remembers the session's dialect.
    pub(crate) fn cache_dialect(&mut self, d: crate::dialect::Dialect) {
        self.dialect = Some(d);
    }

    /// The server, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Rows the last statement changed (or loaded).
    pub fn affected_rows(&self) -> u64 {
        self.conn.affected_rows()
    }

    /// Warnings the last statement raised.
    pub fn warning_count(&self) -> u16 {
        self.conn.get_warnings()
    }

    /// Closes the connection politely (a dropped session closes it too).
    pub async fn disconnect(self) -> Result<(), MysqlError> {
        let server = self.server.clone();
        self.conn
            .disconnect()
            .await
            .map_err(|e| MysqlError::query(server, "closing the connection", e))
    }

    fn err(&self, what: &str) -> impl FnOnce(mysql_async::Error) -> MysqlError {
        err_fn(self.server.clone(), what.to_string(), self.limit)
    }

    /// Runs a statement; `what` describes it in errors (the SQL may hold a secret).
    pub async fn exec(&mut self, sql: &str, what: &str) -> Result<(), MysqlError> {
        let e = self.err(what);
        self.conn.query_drop(sql).await.map_err(e)
    }

    /// Runs one statement of SQL text that did not come from amsu (a definition from an
    /// image); `what` describes it in errors.
    ///
    /// On a session in [`Session::single_statements`] mode the text is sent with the
    /// prepared-statement protocol (prepare, execute, close), which never runs more than
    /// one statement. A statement the server cannot prepare (`ER_UNSUPPORTED_PS`: MySQL
    /// and MariaDB before 10.6 for routines, triggers and events) is sent as text only
    /// when it lexes as a single statement (`crate::statement::is_single`); otherwise
    /// it is refused without being run. The same holds for a text with `?` or `:name`
    /// outside quotes (`crate::statement::has_parameter_markers`), which mysql_async
    /// would prepare with parameter markers in their place. Other sessions send it as
    /// text, as [`Session::exec`].
    pub async fn exec_one(&mut self, sql: &str, what: &str) -> Result<(), MysqlError> {
        if !self.single {
            return self.exec(sql, what).await;
        }
        let e = self.err(what);
        let as_text = |s: &mut Session, why: &str| {
            if crate::statement::is_single(sql) {
                return Ok(());
            }
            Err(s.unexpected(
                what,
                format!(
                    "{why}, and as text it could run more than one statement (it holds `;`); \
                     refusing to send it. Create it by hand, or restore into MariaDB 10.6 or later"
                ),
            ))
        };
        if crate::statement::has_parameter_markers(sql) {
            // mysql_async would prepare `?` in place of `:name`: not the text given.
            as_text(self, "the text holds `:name` or `?` markers")?;
            return self.exec(sql, what).await;
        }
        let prepared = match self.conn.prep(sql).await {
            Ok(stmt) => stmt,
            Err(err) if crate::server_code(&err) == Some(crate::codes::UNSUPPORTED_PS) => {
                as_text(self, "the server cannot prepare this statement")?;
                return self.exec(sql, what).await;
            }
            // mysql_async reads `:name` outside quotes as a named parameter and sends
            // `?` instead: such a text is not what the image holds.
            Err(mysql_async::Error::Driver(mysql_async::DriverError::MixedParams)) => {
                as_text(self, "the text holds `:name` or `?` markers")?;
                return self.exec(sql, what).await;
            }
            Err(err) => return Err(e(err)),
        };
        if prepared.num_params() > 0 {
            // `?` or `:name` outside quotes: executing would need values, and the text
            // the server prepared is not the text given.
            self.conn.close(prepared).await.map_err(self.err(what))?;
            as_text(self, "the text holds `:name` or `?` markers")?;
            return self.exec(sql, what).await;
        }
        let r = self.conn.exec_drop(&prepared, ()).await.map_err(e);
        let closed = self.conn.close(prepared).await.map_err(self.err(what));
        r.and(closed)
    }

    /// Runs a query and returns all rows.
    pub async fn rows(&mut self, sql: &str, what: &str) -> Result<Vec<Row>, MysqlError> {
        let e = self.err(what);
        let rows: Vec<mysql_async::Row> = self.conn.query(sql).await.map_err(e)?;
        Ok(Row::from_driver(rows))
    }

    /// Runs a query and returns its rows one at a time, as they arrive (for result sets
    /// too large to hold: a table's rows). The session is busy until the stream is read
    /// to its end or dropped.
    pub async fn stream_rows(
        &mut self,
        sql: &str,
        what: &str,
    ) -> Result<RowStream<'_>, MysqlError> {
        let server = self.server.clone();
        let limit = self.limit;
        let what = what.to_string();
        let e = err_fn(server.clone(), what.clone(), limit);
        let inner = self.conn.query_iter(sql.to_string()).await.map_err(e)?;
        Ok(RowStream {
            inner,
            server,
            what,
            limit,
        })
    }

    /// Runs a `LOAD DATA LOCAL INFILE` statement (`sql`), the file's bytes read from
    /// `data` until it closes; an `Err` item fails the load with its message. `what`
    /// describes the load in errors.
    pub async fn load_local(
        &mut self,
        sql: &str,
        what: &str,
        data: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    ) -> Result<(), MysqlError> {
        use futures_util::StreamExt;
        self.conn.set_infile_handler(async move {
            Ok(futures_util::stream::unfold(data, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            })
            .boxed())
        });
        let e = self.err(what);
        self.conn.query_drop(sql).await.map_err(e)
    }

    /// Runs a query and returns the first row, as text by column name.
    pub async fn first_row(
        &mut self,
        sql: &str,
        what: &str,
    ) -> Result<Option<Vec<(String, Option<String>)>>, MysqlError> {
        let rows = self.rows(sql, what).await?;
        Ok(rows.into_iter().next().map(|r| r.texts()))
    }

    /// Runs a query returning one column of text values.
    pub async fn column(&mut self, sql: &str, what: &str) -> Result<Vec<String>, MysqlError> {
        let rows = self.rows(sql, what).await?;
        Ok(rows.iter().map(|r| r.text_or_empty(0)).collect())
    }

    /// An error for an unexpected answer.
    pub fn unexpected(&self, what: &str, detail: impl Into<String>) -> MysqlError {
        MysqlError::unexpected(self.server.clone(), what, detail)
    }
}

/// The value of column `name` in a row from [`Session::first_row`] or [`Row::texts`].
pub fn field<'a>(row: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    row.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_deref())
}

/// The error of a failed statement: a statement stopped by the session's bound is
/// [`MysqlError::StatementTimeout`], any other [`MysqlError::query`].
fn err_fn(
    server: String,
    what: String,
    limit: Option<Limit>,
) -> impl FnOnce(mysql_async::Error) -> MysqlError {
    move |source| match crate::server_code(&source) {
        Some(errno @ (crate::codes::STATEMENT_TIMEOUT | crate::codes::QUERY_TIMEOUT)) => {
            MysqlError::statement_timeout(
                server,
                what,
                limit.map_or(0, |l| l.as_millis_u64()),
                errno,
            )
        }
        _ => MysqlError::query(server, what, source),
    }
}

/// The rows of a query as they arrive: see [`Session::stream_rows`].
pub struct RowStream<'a> {
    inner: mysql_async::QueryResult<'a, 'static, TextProtocol>,
    server: String,
    what: String,
    limit: Option<Limit>,
}

impl RowStream<'_> {
    /// The next row's values (taken from the driver by move), or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<SqlValue>>, MysqlError> {
        match self.inner.next().await {
            Ok(row) => Ok(row.map(values_of)),
            Err(e) => Err(err_fn(self.server.clone(), self.what.clone(), self.limit)(
                e,
            )),
        }
    }
}
