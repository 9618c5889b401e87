//! Connections: one place that turns a [`ServerAddr`] into mysql_async options.

use std::time::Duration;

use amsu_core::ServerAddr;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

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
pub fn opts(addr: &ServerAddr) -> OptsBuilder {
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
pub async fn connect(addr: &ServerAddr) -> Result<Conn, MysqlError> {
    connect_opts(addr, opts(addr)).await
}

/// Connects with options derived from [`opts`].
pub async fn connect_opts(addr: &ServerAddr, opts: OptsBuilder) -> Result<Conn, MysqlError> {
    match tokio::time::timeout(Duration::from_secs(30), Conn::new(opts)).await {
        Ok(r) => r.map_err(|source| MysqlError::Connect {
            server: addr.to_string(),
            source,
        }),
        Err(_) => Err(MysqlError::Timeout {
            server: addr.to_string(),
            what: "the connection".into(),
            seconds: 30,
        }),
    }
}

/// A connection that remembers which server it talks to, for error messages.
pub struct Session {
    /// The connection.
    pub conn: Conn,
    server: String,
}

impl Session {
    /// Connects to `addr`.
    pub async fn open(addr: &ServerAddr) -> Result<Session, MysqlError> {
        Ok(Session {
            conn: connect(addr).await?,
            server: addr.to_string(),
        })
    }

    /// Wraps an open connection.
    pub fn new(conn: Conn, server: String) -> Session {
        Session { conn, server }
    }

    /// The server, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn err(&self, what: &str) -> impl FnOnce(mysql_async::Error) -> MysqlError {
        let server = self.server.clone();
        let what = what.to_string();
        move |source| MysqlError::Query {
            server,
            what,
            source,
        }
    }

    /// Runs a statement; `what` describes it in errors (the SQL may hold a secret).
    pub async fn exec(&mut self, sql: &str, what: &str) -> Result<(), MysqlError> {
        let e = self.err(what);
        self.conn.query_drop(sql).await.map_err(e)
    }

    /// Runs a query and returns all rows.
    pub async fn rows(&mut self, sql: &str, what: &str) -> Result<Vec<Row>, MysqlError> {
        let e = self.err(what);
        self.conn.query(sql).await.map_err(e)
    }

    /// Runs a query and returns the first row, as text by column name.
    pub async fn first_row(
        &mut self,
        sql: &str,
        what: &str,
    ) -> Result<Option<Vec<(String, Option<String>)>>, MysqlError> {
        let rows = self.rows(sql, what).await?;
        Ok(rows.into_iter().next().map(|r| row_texts(&r)))
    }

    /// Runs a query returning one column of text values.
    pub async fn column(&mut self, sql: &str, what: &str) -> Result<Vec<String>, MysqlError> {
        let rows = self.rows(sql, what).await?;
        Ok(rows
            .iter()
            .map(|r| text(r.as_ref(0).unwrap_or(&Value::NULL)).unwrap_or_default())
            .collect())
    }

    /// An error for an unexpected answer.
    pub fn unexpected(&self, what: &str, detail: impl Into<String>) -> MysqlError {
        MysqlError::Unexpected {
            server: self.server.clone(),
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// A value as text (`None` for NULL).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

/// A row as (column name, text value) pairs.
pub fn row_texts(r: &Row) -> Vec<(String, Option<String>)> {
    r.columns_ref()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name_str().into_owned(), r.as_ref(i).and_then(text)))
        .collect()
}

/// The value of column `name` in a row from [`row_texts`].
pub fn field<'a>(row: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    row.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_deref())
}
