//! A scripted [`SqlSession`] for unit tests of adapter logic (feature `mocks`).
//!
//! [`FakeSession`] answers each query with the rows scripted for the first pattern the
//! SQL contains (ASCII case-insensitive), fails it with a scripted server error, and logs
//! every statement it was sent. Answers given with [`FakeSession::answer_once`] are used
//! once, before the lasting ones, so a test can script a server whose answers change.
//! A statement can also leave warnings ([`FakeSession::warns`]) or a count of changed
//! rows ([`FakeSession::affects`]), and [`SqlSession::limit_statements`] is sent as the
//! MariaDB statement (`SET SESSION max_statement_time = …`), so it can be failed too.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::dialect::Dialect;
use crate::row::{Row, SqlValue};
use crate::{MysqlError, SqlSession};

/// What a scripted statement does.
#[derive(Debug, Clone)]
enum Answer {
    Rows(Vec<Row>),
    Fail { errno: u16, message: String },
}

/// A scripted session: see the module documentation.
#[derive(Debug)]
pub struct FakeSession {
    server: String,
    dialect: Option<Dialect>,
    once: VecDeque<(String, Answer)>,
    lasting: Vec<(String, Answer)>,
    log: Vec<String>,
    /// Warnings and changed rows left by statements containing a pattern.
    effects: Vec<(String, Effect)>,
    /// What the last statement left.
    last: Effect,
    limit: Option<Duration>,
}

/// What a statement leaves behind.
#[derive(Debug, Clone, Copy, Default)]
struct Effect {
    warnings: u16,
    affected: u64,
}

impl FakeSession {
    /// A session with no scripted answers, for messages named `server`.
    pub fn new(server: impl Into<String>) -> FakeSession {
        FakeSession {
            server: server.into(),
            dialect: None,
            once: VecDeque::new(),
            lasting: Vec::new(),
            log: Vec::new(),
            effects: Vec::new(),
            last: Effect::default(),
            limit: None,
        }
    }

    /// The dialect [`SqlSession::dialect`] returns without a query (otherwise it is
    /// read from the scripted answer to `SELECT @@version …`).
    pub fn with_dialect(mut self, d: Dialect) -> FakeSession {
        self.dialect = Some(d);
        self
    }

    fn rows_of(columns: &[&str], rows: &[&[Option<&str>]]) -> Vec<Row> {
        let names: Arc<[String]> = columns.iter().map(|c| c.to_string()).collect();
        rows.iter()
            .map(|r| {
                let values = r
                    .iter()
                    .map(|v| v.map_or(SqlValue::Null, |t| SqlValue::Bytes(t.as_bytes().to_vec())))
                    .collect();
                Row::new(names.clone(), values)
            })
            .collect()
    }

    /// Every query containing `pattern` answers `rows` (text values, `None` for NULL)
    /// under the column names `columns`; statements containing it succeed.
    pub fn answer(mut self, pattern: &str, columns: &[&str], rows: &[&[Option<&str>]]) -> Self {
        self.lasting.push((
            pattern.to_string(),
            Answer::Rows(Self::rows_of(columns, rows)),
        ));
        self
    }

    /// The next query containing `pattern` answers `rows`; later ones fall through to
    /// the lasting answers. Several once-answers for a pattern are used in order.
    pub fn answer_once(
        &mut self,
        pattern: &str,
        columns: &[&str],
        rows: &[&[Option<&str>]],
    ) -> &mut Self {
        self.once.push_back((
            pattern.to_string(),
            Answer::Rows(Self::rows_of(columns, rows)),
        ));
        self
    }

    /// Every statement or query containing `pattern` fails with server error `errno`.
    pub fn fail(mut self, pattern: &str, errno: u16, message: &str) -> Self {
        self.lasting.push((
            pattern.to_string(),
            Answer::Fail {
                errno,
                message: message.to_string(),
            },
        ));
        self
    }

    /// Every statement or query containing `pattern` leaves `count` warnings
    /// ([`SqlSession::warning_count`]); others leave none.
    pub fn warns(mut self, pattern: &str, count: u16) -> Self {
        self.effect(pattern).warnings = count;
        self
    }

    /// Every statement containing `pattern` changes `rows` rows
    /// ([`SqlSession::affected_rows`]); others change none.
    pub fn affects(mut self, pattern: &str, rows: u64) -> Self {
        self.effect(pattern).affected = rows;
        self
    }

    fn effect(&mut self, pattern: &str) -> &mut Effect {
        let i = match self.effects.iter().position(|(p, _)| p == pattern) {
            Some(i) => i,
            None => {
                self.effects.push((pattern.to_string(), Effect::default()));
                self.effects.len() - 1
            }
        };
        &mut self.effects[i].1
    }

    /// Logs `sql` and remembers what it leaves behind.
    fn sent(&mut self, sql: &str) {
        let lower = sql.to_ascii_lowercase();
        self.last = self
            .effects
            .iter()
            .find(|(p, _)| lower.contains(&p.to_ascii_lowercase()))
            .map(|(_, e)| *e)
            .unwrap_or_default();
        self.log.push(sql.to_string());
    }

    /// The next statement or query containing `pattern` fails with server error `errno`;
    /// later ones fall through to the lasting answers.
    pub fn fail_once(&mut self, pattern: &str, errno: u16, message: &str) -> &mut Self {
        self.once.push_back((
            pattern.to_string(),
            Answer::Fail {
                errno,
                message: message.to_string(),
            },
        ));
        self
    }

    /// The statements and queries sent so far, in order.
    pub fn executed(&self) -> &[String] {
        &self.log
    }

    /// The answer for `sql`: the first once-answer whose pattern it contains (used up),
    /// else the first lasting one.
    fn take(&mut self, sql: &str) -> Option<Answer> {
        let lower = sql.to_ascii_lowercase();
        let hit = |p: &str| lower.contains(&p.to_ascii_lowercase());
        if let Some(i) = self.once.iter().position(|(p, _)| hit(p)) {
            return self.once.remove(i).map(|(_, a)| a);
        }
        self.lasting
            .iter()
            .find(|(p, _)| hit(p))
            .map(|(_, a)| a.clone())
    }

    /// The error of a failed statement, as a real session makes it: one stopped by the
    /// statement bound is [`MysqlError::StatementTimeout`].
    fn failure(&self, what: &str, errno: u16, message: String) -> MysqlError {
        if matches!(
            errno,
            crate::codes::STATEMENT_TIMEOUT | crate::codes::QUERY_TIMEOUT
        ) {
            let millis = self.limit.map_or(0, |l| l.as_millis() as u64);
            return MysqlError::statement_timeout(self.server.clone(), what, millis, errno);
        }
        MysqlError::query(
            self.server.clone(),
            what,
            mysql_async::Error::Server(mysql_async::ServerError {
                code: errno,
                message,
                state: "HY000".into(),
            }),
        )
    }
}

#[async_trait]
impl SqlSession for FakeSession {
    fn server(&self) -> &str {
        &self.server
    }

    async fn exec(&mut self, sql: &str, what: &str) -> Result<(), MysqlError> {
        self.sent(sql);
        match self.take(sql) {
            Some(Answer::Fail { errno, message }) => Err(self.failure(what, errno, message)),
            _ => Ok(()),
        }
    }

    async fn rows(&mut self, sql: &str, what: &str) -> Result<Vec<Row>, MysqlError> {
        self.sent(sql);
        match self.take(sql) {
            Some(Answer::Rows(rows)) => Ok(rows),
            Some(Answer::Fail { errno, message }) => Err(self.failure(what, errno, message)),
            None => Err(self.unexpected(what, format!("no scripted answer for: {sql}"))),
        }
    }

    async fn dialect(&mut self) -> Result<Dialect, MysqlError> {
        if let Some(d) = self.dialect {
            return Ok(d);
        }
        let info = crate::server::probe(self).await?;
        let d = Dialect::new(info.flavor, info.version);
        self.dialect = Some(d);
        Ok(d)
    }

    fn warning_count(&self) -> u16 {
        self.last.warnings
    }

    fn affected_rows(&self) -> u64 {
        self.last.affected
    }

    async fn limit_statements(&mut self, limit: Duration) -> Result<(), MysqlError> {
        let sql = format!(
            "SET SESSION max_statement_time = {:.3}",
            limit.as_secs_f64()
        );
        self.exec(&sql, "bounding the session's statement time")
            .await?;
        self.limit = (!limit.is_zero()).then_some(limit);
        Ok(())
    }

    fn statement_limit(&self) -> Option<Duration> {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn warnings_and_changed_rows_belong_to_the_last_statement() {
        let mut s = FakeSession::new("fake")
            .answer("SELECT x", &["x"], &[&[Some("1")]])
            .warns("SELECT x", 2)
            .affects("DELETE", 5);
        s.rows("SELECT x FROM t", "reading").await.unwrap();
        assert_eq!((s.warning_count(), s.affected_rows()), (2, 0));
        s.exec("DELETE FROM t", "deleting").await.unwrap();
        assert_eq!((s.warning_count(), s.affected_rows()), (0, 5));
        s.exec("COMMIT", "committing").await.unwrap();
        assert_eq!((s.warning_count(), s.affected_rows()), (0, 0));
    }

    #[tokio::test]
    async fn a_statement_limit_is_sent_and_remembered_unless_refused() {
        let mut s = FakeSession::new("fake");
        s.limit_statements(Duration::from_secs(300)).await.unwrap();
        assert_eq!(s.statement_limit(), Some(Duration::from_secs(300)));
        assert_eq!(s.executed(), ["SET SESSION max_statement_time = 300.000"]);
        s.limit_statements(Duration::ZERO).await.unwrap();
        assert_eq!(s.statement_limit(), None);

        let mut s =
            FakeSession::new("fake").fail("max_statement_time", 1193, "Unknown system variable");
        let e = s
            .limit_statements(Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.server_code(), Some(1193), "{e}");
        assert_eq!(s.statement_limit(), None);
    }

    #[tokio::test]
    async fn a_statement_over_the_bound_is_a_statement_timeout() {
        let mut s = FakeSession::new("fake").fail(
            "SELECT SLEEP",
            crate::codes::STATEMENT_TIMEOUT,
            "Query execution was interrupted (max_statement_time exceeded)",
        );
        s.limit_statements(Duration::from_secs(2)).await.unwrap();
        let e = s.rows("SELECT SLEEP(5)", "sleeping").await.unwrap_err();
        assert!(
            matches!(e, MysqlError::StatementTimeout { millis: 2000, .. }),
            "{e:?}"
        );
        // Used once: the next one succeeds.
        let mut s = FakeSession::new("fake").answer("SELECT 1", &["1"], &[&[Some("1")]]);
        s.fail_once("SELECT 1", 1205, "Lock wait timeout exceeded");
        assert_eq!(
            s.rows("SELECT 1", "one").await.unwrap_err().server_code(),
            Some(1205)
        );
        assert_eq!(s.column("SELECT 1", "one").await.unwrap(), ["1"]);
    }

    #[tokio::test]
    async fn once_answers_come_before_lasting_ones_and_unscripted_queries_fail() {
        let mut s = FakeSession::new("fake").answer("SELECT", &["n"], &[&[Some("lasting")]]);
        s.answer_once("select n", &["n"], &[&[Some("first")]]);
        assert_eq!(s.column("SELECT n", "n").await.unwrap(), ["first"]);
        assert_eq!(s.column("SELECT n", "n").await.unwrap(), ["lasting"]);
        let e = s.rows("SHOW TABLES", "listing").await.unwrap_err();
        assert!(
            e.to_string()
                .contains("no scripted answer for: SHOW TABLES"),
            "{e}"
        );
        // A statement nobody scripted succeeds.
        s.exec("SET x = 1", "setting").await.unwrap();
    }
}
