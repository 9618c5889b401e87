//! A scripted [`SqlSession`] for unit tests of adapter logic (feature `mocks`).
//!
//! [`FakeSession`] answers each query with the rows scripted for the first pattern the
//! SQL contains (ASCII case-insensitive), fails it with a scripted server error, and logs
//! every statement it was sent. Answers given with [`FakeSession::answer_once`] are used
//! once, before the lasting ones, so a test can script a server whose answers change.

use std::collections::VecDeque;
use std::sync::Arc;

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

    fn failure(&self, what: &str, errno: u16, message: String) -> MysqlError {
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
        self.log.push(sql.to_string());
        match self.take(sql) {
            Some(Answer::Fail { errno, message }) => Err(self.failure(what, errno, message)),
            _ => Ok(()),
        }
    }

    async fn rows(&mut self, sql: &str, what: &str) -> Result<Vec<Row>, MysqlError> {
        self.log.push(sql.to_string());
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
}
