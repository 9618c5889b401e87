//! [`SqlSession`]: the statements adapter logic sends to a server, as a trait, so that the
//! logic runs against a real [`Session`] or against a scripted fake in unit tests
//! (`testing::FakeSession`, feature `mocks`).

use std::time::Duration;

use async_trait::async_trait;

use crate::conn::Session;
use crate::dialect::Dialect;
use crate::row::Row;
use crate::MysqlError;

/// A connection to one server that runs statements and answers queries.
#[async_trait]
pub trait SqlSession: Send {
    /// The server, for messages (`mysql://user@host:port`, never a password).
    fn server(&self) -> &str;

    /// Runs a statement; `what` describes it in errors (the SQL may hold a secret).
    async fn exec(&mut self, sql: &str, what: &str) -> Result<(), MysqlError>;

    /// Runs a query and returns all rows.
    async fn rows(&mut self, sql: &str, what: &str) -> Result<Vec<Row>, MysqlError>;

    /// The server's dialect (flavor and version), read once per session and cached.
    async fn dialect(&mut self) -> Result<Dialect, MysqlError>;

    /// Runs a query and returns the first row, as text by column name.
    async fn first_row(
        &mut self,
        sql: &str,
        what: &str,
    ) -> Result<Option<Vec<(String, Option<String>)>>, MysqlError> {
        let rows = self.rows(sql, what).await?;
        Ok(rows.into_iter().next().map(|r| r.texts()))
    }

    /// Runs a query returning one column of text values (NULL as an empty string).
    async fn column(&mut self, sql: &str, what: &str) -> Result<Vec<String>, MysqlError> {
        let rows = self.rows(sql, what).await?;
        Ok(rows.iter().map(|r| r.text_or_empty(0)).collect())
    }

    /// An error for an unexpected answer.
    fn unexpected(&self, what: &str, detail: String) -> MysqlError {
        MysqlError::unexpected(self.server(), what, detail)
    }

    /// Warnings the last statement raised.
    fn warning_count(&self) -> u16;

    /// Rows the last statement changed (or loaded).
    fn affected_rows(&self) -> u64;

    /// Bounds every following statement to `limit` on the server itself (a zero `limit`
    /// lifts the bound): see [`Session::limit_statements`].
    async fn limit_statements(&mut self, limit: Duration) -> Result<(), MysqlError>;

    /// The bound set by [`SqlSession::limit_statements`], if any.
    fn statement_limit(&self) -> Option<Duration>;
}

#[async_trait]
impl SqlSession for Session {
    fn server(&self) -> &str {
        Session::server(self)
    }

    async fn exec(&mut self, sql: &str, what: &str) -> Result<(), MysqlError> {
        Session::exec(self, sql, what).await
    }

    async fn rows(&mut self, sql: &str, what: &str) -> Result<Vec<Row>, MysqlError> {
        Session::rows(self, sql, what).await
    }

    async fn dialect(&mut self) -> Result<Dialect, MysqlError> {
        if let Some(d) = self.cached_dialect() {
            return Ok(d);
        }
        let info = crate::server::probe(self).await?;
        let d = Dialect::new(info.flavor, info.version);
        self.cache_dialect(d);
        Ok(d)
    }

    fn warning_count(&self) -> u16 {
        Session::warning_count(self)
    }

    fn affected_rows(&self) -> u64 {
        Session::affected_rows(self)
    }

    async fn limit_statements(&mut self, limit: Duration) -> Result<(), MysqlError> {
        Session::limit_statements(self, limit).await
    }

    fn statement_limit(&self) -> Option<Duration> {
        Session::statement_limit(self)
    }
}

#[cfg(test)]
mod tests {
    use amsu_core::Flavor;

    use crate::testing::FakeSession;
    use crate::{binlog_position, identity, probe, SqlSession};

    const VARS: &str = "SELECT @@version AS version";
    const VAR_COLUMNS: &[&str] = &[
        "version",
        "server_id",
        "log_bin",
        "binlog_format",
        "read_only",
    ];

    fn mariadb() -> FakeSession {
        FakeSession::new("mysql://root@fake:3306").answer(
            VARS,
            VAR_COLUMNS,
            &[&[
                Some("10.11.6-MariaDB-log"),
                Some("7"),
                Some("1"),
                Some("ROW"),
                Some("0"),
            ]],
        )
    }

    #[tokio::test]
    async fn probe_reads_the_server_variables() {
        let mut s = mariadb();
        let info = probe(&mut s).await.unwrap();
        assert_eq!(info.flavor, Flavor::MariaDb);
        assert_eq!(
            (info.server_id, info.log_bin, info.read_only),
            (7, true, false)
        );
        assert_eq!(info.binlog_format, "ROW");
    }

    #[tokio::test]
    async fn probe_refuses_a_non_numeric_server_id() {
        let mut s = FakeSession::new("fake").answer(
            VARS,
            VAR_COLUMNS,
            &[&[
                Some("8.0.36"),
                Some("seven"),
                Some("1"),
                Some("ROW"),
                Some("0"),
            ]],
        );
        let e = probe(&mut s).await.unwrap_err();
        assert!(e.to_string().contains("server_id is not a number"), "{e}");
    }

    #[tokio::test]
    async fn the_dialect_is_read_once_per_session() {
        let mut s = mariadb();
        let d = s.dialect().await.unwrap();
        assert_eq!(d.flavor, Flavor::MariaDb);
        assert_eq!(s.dialect().await.unwrap(), d);
        assert_eq!(
            s.executed()
                .iter()
                .filter(|q| q.contains("@@version"))
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn mariadb_binlog_position_falls_back_to_gtid_binlog_pos() {
        let mut s = mariadb()
            .answer(
                "SHOW MASTER STATUS",
                &["File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB"],
                &[&[Some("bin.000003"), Some("1234"), Some(""), Some("")]],
            )
            .answer(
                "gtid_binlog_pos",
                &["@@global.gtid_binlog_pos"],
                &[&[Some("0-7-42")]],
            );
        let c = binlog_position(&mut s).await.unwrap();
        assert_eq!((c.file.as_str(), c.position), ("bin.000003", 1234));
        assert_eq!(c.gtid.as_deref(), Some("0-7-42"));
        assert_eq!(
            s.executed().last().map(String::as_str),
            Some("SELECT @@global.gtid_binlog_pos")
        );
    }

    #[tokio::test]
    async fn a_master_without_binary_log_has_no_position() {
        let mut s = mariadb().answer("SHOW MASTER STATUS", &["File", "Position"], &[]);
        let e = binlog_position(&mut s).await.unwrap_err();
        assert!(e.to_string().contains("is the binary log enabled?"), "{e}");
    }

    #[tokio::test]
    async fn identity_without_the_privilege_for_replica_hosts_knows_none() {
        let mut s = mariadb()
            .answer(
                "@@hostname",
                &["hostname", "port", "datadir", "server_id"],
                &[&[
                    Some("db1"),
                    Some("3306"),
                    Some("/var/lib/mysql/"),
                    Some("7"),
                ]],
            )
            .answer("gtid_binlog_state", &["s"], &[&[Some("0-7-42")]])
            .answer(
                "SHOW MASTER STATUS",
                &["File", "Position"],
                &[&[Some("bin.000003"), Some("99")]],
            )
            .answer("gtid_binlog_pos", &["p"], &[&[Some("0-7-42")]])
            .fail(
                "SHOW SLAVE HOSTS",
                1227,
                "Access denied; you need the REPLICATION MASTER ADMIN privilege",
            );
        let id = identity(&mut s).await.unwrap();
        assert_eq!(
            (id.hostname.as_str(), id.port, id.server_id),
            ("db1", 3306, 7)
        );
        assert_eq!(id.binlog.as_deref(), Some("bin.000003:99 0-7-42"));
        assert!(id.replica_ids.is_empty());
        assert!(s.executed().iter().any(|q| q == "SHOW SLAVE HOSTS"));
    }

    #[tokio::test]
    async fn identity_lists_connected_replicas_and_answers_change() {
        let mut s = mariadb()
            .answer(
                "@@hostname",
                &["hostname", "port", "datadir", "server_id"],
                &[&[Some("db1"), Some("3306"), Some("/d/"), Some("7")]],
            )
            .answer("gtid_binlog_state", &["s"], &[&[Some("")]])
            .fail("SHOW MASTER STATUS", 1227, "Access denied")
            .answer("SHOW SLAVE HOSTS", &["Server_id", "Host"], &[]);
        s.answer_once(
            "SHOW SLAVE HOSTS",
            &["Server_id", "Host"],
            &[&[Some("8"), Some("r1")], &[Some("9"), Some("r2")]],
        );
        let id = identity(&mut s).await.unwrap();
        assert_eq!(id.replica_ids, vec![8, 9]);
        assert_eq!(id.binlog.as_deref(), Some(""));
        // The once-answer is used up: the replicas went away.
        assert!(identity(&mut s).await.unwrap().replica_ids.is_empty());
    }
}
