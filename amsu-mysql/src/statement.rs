//! Checking SQL text that comes from outside (an image) before it is sent to a server:
//! exactly one statement, of the expected kind, naming the expected object.
//!
//! # Why a tokenizer and not a parser crate
//!
//! A full SQL parser (`sqlparser`) does not know every MariaDB/MySQL `SHOW CREATE` form
//! (sequences, system versioning, engine options, partitions, routine bodies), so it
//! would refuse good images; and it treats `/*! … */` as a comment, which the server
//! runs as code. What has to be right is only where the statement ends and how it
//! starts, and that needs exactly the server's *lexer*: strings, quoted identifiers,
//! comments and executable comments. [`check`] lexes the text as the server does, with
//! the content of `/*!NNNNN … */` and `/*M!NNNNN … */` read as code (a `;` inside one is
//! a statement separator), and it lexes it three times — with backslash escapes, with
//! none (`NO_BACKSLASH_ESCAPES`), and with none in `"…"` only (`ANSI_QUOTES`) — since
//! the loading session's `sql_mode` also comes from the image. The text must be one
//! statement, of the expected kind and name, in every one of them.
//!
//! Routine, trigger and event bodies may hold `;` (`BEGIN … END`): for those the
//! statement boundary is the server's to find, so they are sent with the
//! prepared-statement protocol ([`crate::conn::Session::exec_one`]), which never runs
//! more than one statement; here their head (kind and name) and lexing are checked.

use std::fmt;

/// What a statement must create (or grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected<'a> {
    /// `CREATE DATABASE|SCHEMA name`.
    Database(&'a str),
    /// `CREATE TABLE [db.]name` (a table in `db`).
    Table {
        /// Database.
        db: &'a str,
        /// Table.
        name: &'a str,
    },
    /// `CREATE SEQUENCE [db.]name` (or the `CREATE TABLE` form of a sequence).
    Sequence {
        /// Database.
        db: &'a str,
        /// Sequence.
        name: &'a str,
    },
    /// `CREATE [options] VIEW|PROCEDURE|FUNCTION|TRIGGER|EVENT [db.]name`.
    Object {
        /// `VIEW`, `PROCEDURE`, `FUNCTION`, `TRIGGER` or `EVENT`.
        kind: ObjectKeyword,
        /// Database.
        db: &'a str,
        /// Name.
        name: &'a str,
    },
    /// `CREATE USER user@host`.
    User {
        /// User.
        user: &'a str,
        /// Host.
        host: &'a str,
    },
    /// `CREATE ROLE name`.
    Role(&'a str),
    /// `GRANT … TO grantee`, `REVOKE … FROM grantee` or `SET DEFAULT ROLE … FOR grantee`,
    /// with one grantee: `user@host`, or a role (`host` `None`).
    Grant {
        /// User or role.
        user: &'a str,
        /// Host (`None` for a role).
        host: Option<&'a str>,
    },
    /// `ALTER TABLE [db.]name` (keys added after the data).
    AlterTable {
        /// Database.
        db: &'a str,
        /// Table.
        name: &'a str,
    },
}

/// The object kinds of [`Expected::Object`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKeyword {
    /// `VIEW`.
    View,
    /// `PROCEDURE`.
    Procedure,
    /// `FUNCTION`.
    Function,
    /// `TRIGGER`.
    Trigger,
    /// `EVENT`.
    Event,
    /// `PACKAGE` (MariaDB, `sql_mode=ORACLE`).
    Package,
    /// `PACKAGE BODY` (MariaDB, `sql_mode=ORACLE`).
    PackageBody,
}

impl ObjectKeyword {
    fn word(self) -> &'static str {
        match self {
            ObjectKeyword::View => "VIEW",
            ObjectKeyword::Procedure => "PROCEDURE",
            ObjectKeyword::Function => "FUNCTION",
            ObjectKeyword::Trigger => "TRIGGER",
            ObjectKeyword::Event => "EVENT",
            ObjectKeyword::Package | ObjectKeyword::PackageBody => "PACKAGE",
        }
    }

    /// Bodies that may hold `;`.
    fn compound(self) -> bool {
        !matches!(self, ObjectKeyword::View)
    }

    /// Names compared without regard to case.
    fn case_insensitive(self) -> bool {
        matches!(
            self,
            ObjectKeyword::Procedure
                | ObjectKeyword::Function
                | ObjectKeyword::Event
                | ObjectKeyword::Package
                | ObjectKeyword::PackageBody
        )
    }
}

impl fmt::Display for Expected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Database(n) => write!(f, "CREATE DATABASE `{n}`"),
            Expected::Table { db, name } => write!(f, "CREATE TABLE `{db}`.`{name}`"),
            Expected::Sequence { db, name } => write!(f, "CREATE SEQUENCE `{db}`.`{name}`"),
            Expected::Object { kind, db, name } => {
                write!(f, "CREATE {} `{db}`.`{name}`", kind.word())
            }
            Expected::User { user, host } => write!(f, "CREATE USER '{user}'@'{host}'"),
            Expected::Role(n) => write!(f, "CREATE ROLE '{n}'"),
            Expected::Grant {
                user,
                host: Some(h),
            } => write!(f, "GRANT … TO '{user}'@'{h}'"),
            Expected::Grant { user, host: None } => write!(f, "GRANT … TO '{user}'"),
            Expected::AlterTable { db, name } => write!(f, "ALTER TABLE `{db}`.`{name}`"),
        }
    }
}

/// Why a statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// A string, quoted name or comment is not closed.
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    /// No statement at all.
    #[error("the text is empty")]
    Empty,
    /// More than one statement (a `;` that is not the last thing).
    #[error("more than one statement (a `;` at byte {at} is followed by more text)")]
    Several {
        /// Byte offset of the separating `;`.
        at: usize,
    },
    /// Not the expected kind of statement or object.
    #[error("expected {expected}, found {found:?}")]
    WrongKind {
        /// What was expected.
        expected: String,
        /// The start of what was found.
        found: String,
    },
    /// The statement names another object than expected.
    #[error("expected {expected}, but the statement names {found}")]
    WrongName {
        /// What was expected.
        expected: String,
        /// The name found.
        found: String,
    },
    /// A construct that has no place in such a statement.
    #[error("{0}")]
    Forbidden(String),
    /// The text reads differently under different `sql_mode`s.
    #[error("the statement reads differently with and without backslash escapes or ANSI_QUOTES")]
    ModeDependent,
}

/// How strings are lexed (the `sql_mode` parts that change statement boundaries).
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// `\` escapes in `'…'`.
    backslash_single: bool,
    /// `\` escapes in `"…"` (off with `ANSI_QUOTES`, where `"…"` is a name).
    backslash_double: bool,
}

const MODES: [Mode; 3] = [
    Mode {
        backslash_single: true,
        backslash_double: true,
    },
    Mode {
        backslash_single: false,
        backslash_double: false,
    },
    Mode {
        backslash_single: true,
        backslash_double: false,
    },
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A bare word (keyword, name, number).
    Word,
    /// `` `…` `` (value unquoted).
    Backtick,
    /// `"…"` (value unquoted).
    Double,
    /// `'…'` (value unquoted).
    Single,
    /// `;`.
    Semicolon,
    /// Any other character.
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// The word, or the unquoted value of a quoted token.
    value: String,
    start: usize,
    /// Inside an executable comment.
    exec: bool,
}

impl Token {
    fn is_word(&self, w: &str) -> bool {
        self.kind == Kind::Word && self.value.eq_ignore_ascii_case(w)
    }
    fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct(c)
    }
    /// A name: a bare word or a quoted name/string.
    fn name(&self) -> Option<&str> {
        match self.kind {
            Kind::Word | Kind::Backtick | Kind::Double | Kind::Single => Some(&self.value),
            _ => None,
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Lexes `sql` as the server does in `mode`.
fn lex(sql: &str, mode: Mode) -> Result<Vec<Token>, StatementError> {
    let b: Vec<(usize, char)> = sql.char_indices().collect();
    let at = |i: usize| b.get(i).map(|&(_, c)| c);
    let mut out = Vec::new();
    let mut i = 0;
    let mut exec = false;
    while i < b.len() {
        let (start, c) = b[i];
        let next = at(i + 1);
        if c.is_whitespace() {
            i += 1;
        } else if c == '#'
            || (c == '-'
                && next == Some('-')
                && at(i + 2).is_none_or(|c| c.is_whitespace() || c.is_control()))
        {
            while i < b.len() && b[i].1 != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let bang = at(i + 2) == Some('!');
            let m_bang = at(i + 2) == Some('M') && at(i + 3) == Some('!');
            if exec {
                return Err(StatementError::Forbidden(
                    "a comment inside an executable comment".into(),
                ));
            }
            if bang || m_bang {
                i += if m_bang { 4 } else { 3 };
                while at(i).is_some_and(|c| c.is_ascii_digit()) {
                    i += 1;
                }
                exec = true;
            } else {
                i += 2;
                loop {
                    match at(i) {
                        None => return Err(StatementError::Unterminated("comment")),
                        Some('*') if at(i + 1) == Some('/') => {
                            i += 2;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
        } else if exec && c == '*' && next == Some('/') {
            exec = false;
            i += 2;
        } else if c == '\'' || c == '"' || c == '`' {
            let backslash = match c {
                '\'' => mode.backslash_single,
                '"' => mode.backslash_double,
                _ => false,
            };
            let mut value = String::new();
            i += 1;
            loop {
                match at(i) {
                    None => {
                        return Err(StatementError::Unterminated(match c {
                            '`' => "quoted name",
                            _ => "string",
                        }))
                    }
                    Some('\\') if backslash => {
                        let Some(e) = at(i + 1) else {
                            return Err(StatementError::Unterminated("string"));
                        };
                        value.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(q) if q == c => {
                        if at(i + 1) == Some(c) {
                            value.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            let kind = match c {
                '\'' => Kind::Single,
                '"' => Kind::Double,
                _ => Kind::Backtick,
            };
            out.push(Token {
                kind,
                value,
                start,
                exec,
            });
        } else if is_word_char(c) {
            let mut value = String::new();
            while let Some(c) = at(i).filter(|&c| is_word_char(c)) {
                value.push(c);
                i += 1;
            }
            out.push(Token {
                kind: Kind::Word,
                value,
                start,
                exec,
            });
        } else {
            out.push(Token {
                kind: if c == ';' {
                    Kind::Semicolon
                } else {
                    Kind::Punct(c)
                },
                value: c.to_string(),
                start,
                exec,
            });
            i += 1;
        }
    }
    if exec {
        return Err(StatementError::Unterminated("executable comment"));
    }
    Ok(out)
}

/// Checks that `sql` is exactly one statement as `expected` says, in every lexing mode.
/// Returns the statement without a trailing `;` (and what follows it), ready to send.
pub fn check<'s>(sql: &'s str, expected: &Expected<'_>) -> Result<&'s str, StatementError> {
    let mut end = None;
    for mode in MODES {
        let e = check_in(sql, expected, mode)?;
        if end.is_some_and(|x| x != e) {
            return Err(StatementError::ModeDependent);
        }
        end = Some(e);
    }
    Ok(sql[..end.expect("three modes")].trim_end())
}

/// True when `sql` lexes as one statement (no `;` but a trailing one) in every mode.
pub(crate) fn is_single(sql: &str) -> bool {
    MODES.iter().all(|&m| {
        lex(sql, m)
            .ok()
            .is_some_and(|t| !t.is_empty() && statement_end(sql, &t).is_ok())
    })
}

/// True when `sql` holds, outside quotes and comments, a `?` or a `:` directly followed
/// by a lower-case letter or `_`: what mysql_async's prepared statements read as
/// parameter markers (a label written `l1:begin`, say). Unlexable text counts as having
/// them.
pub(crate) fn has_parameter_markers(sql: &str) -> bool {
    let Ok(tokens) = lex(sql, MODES[0]) else {
        return true;
    };
    tokens.iter().enumerate().any(|(i, t)| {
        t.is_punct('?')
            || (t.is_punct(':')
                && tokens.get(i + 1).is_some_and(|n| {
                    n.start == t.start + 1
                        && n.kind == Kind::Word
                        && n.value
                            .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                }))
    })
}

/// The end of the one statement in `tokens`: the offset of a trailing `;`, or the length.
fn statement_end(sql: &str, tokens: &[Token]) -> Result<usize, StatementError> {
    match tokens.iter().position(|t| t.kind == Kind::Semicolon) {
        None => Ok(sql.len()),
        Some(p) if p + 1 == tokens.len() => Ok(tokens[p].start),
        Some(p) => Err(StatementError::Several {
            at: tokens[p].start,
        }),
    }
}

fn check_in(sql: &str, expected: &Expected<'_>, mode: Mode) -> Result<usize, StatementError> {
    let tokens = lex(sql, mode)?;
    if tokens.is_empty() {
        return Err(StatementError::Empty);
    }
    let compound = matches!(expected, Expected::Object { kind, .. } if kind.compound());
    let end = if compound {
        // The body is the server's to delimit (sent as one prepared statement); a
        // trailing `;` is still dropped.
        match tokens.last() {
            Some(t) if t.kind == Kind::Semicolon => t.start,
            _ => sql.len(),
        }
    } else {
        statement_end(sql, &tokens)?
    };
    let body: Vec<&Token> = tokens.iter().filter(|t| t.start < end).collect();
    let mut h = Head {
        t: &body,
        i: 0,
        expected,
    };
    h.check()?;
    Ok(end)
}

struct Head<'t, 'e> {
    t: &'t [&'t Token],
    i: usize,
    expected: &'e Expected<'e>,
}

impl Head<'_, '_> {
    fn peek(&self) -> Option<&Token> {
        self.t.get(self.i).copied()
    }

    fn wrong_kind(&self) -> StatementError {
        let found: Vec<&str> = self.t.iter().take(8).map(|t| t.value.as_str()).collect();
        StatementError::WrongKind {
            expected: self.expected.to_string(),
            found: found.join(" "),
        }
    }

    /// The next token, which must not come from an executable comment (the server may
    /// skip it, so it must not decide what the statement is).
    fn next(&mut self) -> Result<Token, StatementError> {
        let t = self
            .t
            .get(self.i)
            .copied()
            .ok_or_else(|| self.wrong_kind())?;
        if t.exec {
            return Err(StatementError::Forbidden(format!(
                "the statement's kind or name ({:?}) is inside an executable comment",
                t.value
            )));
        }
        self.i += 1;
        Ok(t.clone())
    }

    /// The next token as a name.
    fn next_name(&mut self) -> Result<String, StatementError> {
        let t = self.next()?;
        match t.name() {
            Some(n) => Ok(n.to_string()),
            None => Err(self.wrong_kind()),
        }
    }

    fn word(&mut self, w: &str) -> Result<(), StatementError> {
        if self.next()?.is_word(w) {
            Ok(())
        } else {
            Err(self.wrong_kind())
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_word(w)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.peek().is_some_and(|t| t.is_punct(c)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `IF NOT EXISTS` (possibly inside an executable comment).
    fn if_not_exists(&mut self) {
        let w = |i: usize, s: &str| self.t.get(i).is_some_and(|t| t.is_word(s));
        if w(self.i, "IF") && w(self.i + 1, "NOT") && w(self.i + 2, "EXISTS") {
            self.i += 3;
        }
    }

    /// An account: `user[@host]`; returns (user, host).
    fn account(&mut self) -> Result<(String, Option<String>), StatementError> {
        let user = self.next_name()?;
        if user.eq_ignore_ascii_case("CURRENT_USER") && self.eat_punct('(') {
            if !self.eat_punct(')') {
                return Err(self.wrong_kind());
            }
            return Ok((user, None));
        }
        if self.eat_punct('@') {
            let host = self.next_name()?;
            return Ok((user, Some(host)));
        }
        Ok((user, None))
    }

    /// `[db.]name`, compared with the expected one.
    fn object_name(&mut self, db: &str, name: &str, fold: bool) -> Result<(), StatementError> {
        let first = self.next_name()?;
        let (d, n) = if self.eat_punct('.') {
            let n = self.next_name()?;
            (Some(first), n)
        } else {
            (None, first)
        };
        let same = |a: &str, b: &str| {
            if fold {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        if d.as_deref().is_some_and(|d| d != db) || !same(&n, name) {
            return Err(StatementError::WrongName {
                expected: self.expected.to_string(),
                found: match d {
                    Some(d) => format!("`{d}`.`{n}`"),
                    None => format!("`{n}`"),
                },
            });
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), StatementError> {
        match *self.expected {
            Expected::Database(name) => {
                self.word("CREATE")?;
                let t = self.next()?;
                if !(t.is_word("DATABASE") || t.is_word("SCHEMA")) {
                    return Err(self.wrong_kind());
                }
                self.if_not_exists();
                let n = self.next_name()?;
                if n != name {
                    return Err(StatementError::WrongName {
                        expected: self.expected.to_string(),
                        found: format!("`{n}`"),
                    });
                }
                self.no_select()
            }
            Expected::Table { db, name } | Expected::Sequence { db, name } => {
                self.word("CREATE")?;
                if self.eat_word("OR") {
                    self.word("REPLACE")?;
                }
                let t = self.next()?;
                let sequence = matches!(self.expected, Expected::Sequence { .. });
                if !(t.is_word("TABLE") || (sequence && t.is_word("SEQUENCE"))) {
                    return Err(self.wrong_kind());
                }
                self.if_not_exists();
                self.object_name(db, name, false)?;
                self.no_select()
            }
            Expected::AlterTable { db, name } => {
                self.word("ALTER")?;
                self.word("TABLE")?;
                self.object_name(db, name, false)?;
                self.no_select()
            }
            Expected::Object { kind, db, name } => {
                self.word("CREATE")?;
                if self.eat_word("OR") {
                    self.word("REPLACE")?;
                }
                loop {
                    let t = self.next()?;
                    if t.is_word(kind.word()) {
                        if kind == ObjectKeyword::PackageBody {
                            self.word("BODY")?;
                        } else if kind == ObjectKeyword::Package && self.eat_word("BODY") {
                            return Err(self.wrong_kind());
                        }
                        break;
                    }
                    if t.is_word("ALGORITHM") {
                        self.expect_punct('=')?;
                        self.next()?;
                    } else if t.is_word("DEFINER") {
                        self.expect_punct('=')?;
                        self.account()?;
                    } else if t.is_word("SQL") {
                        self.word("SECURITY")?;
                        self.next()?;
                    } else if t.is_word("AGGREGATE") && kind == ObjectKeyword::Function {
                    } else {
                        return Err(self.wrong_kind());
                    }
                }
                self.if_not_exists();
                self.object_name(db, name, kind.case_insensitive())
            }
            Expected::User { user, host } => {
                self.word("CREATE")?;
                if self.eat_word("OR") {
                    self.word("REPLACE")?;
                }
                self.word("USER")?;
                self.if_not_exists();
                let (u, h) = self.account()?;
                if u != user || h.as_deref() != Some(host) {
                    return Err(self.wrong_account(&u, h.as_deref()));
                }
                self.one_account()
            }
            Expected::Role(name) => {
                self.word("CREATE")?;
                if self.eat_word("OR") {
                    self.word("REPLACE")?;
                }
                self.word("ROLE")?;
                self.if_not_exists();
                let (u, h) = self.account()?;
                if u != name || h.is_some() {
                    return Err(self.wrong_account(&u, h.as_deref()));
                }
                self.one_account()
            }
            Expected::Grant { user, host } => {
                let first = self.next()?;
                let to = if first.is_word("GRANT") {
                    "TO"
                } else if first.is_word("REVOKE") {
                    "FROM"
                } else if first.is_word("SET") {
                    self.word("DEFAULT")?;
                    self.word("ROLE")?;
                    "FOR"
                } else {
                    return Err(self.wrong_kind());
                };
                // The grantee follows the first `TO`/`FROM`/`FOR` outside parentheses.
                let mut depth = 0i32;
                loop {
                    let t = self.next()?;
                    match &t.kind {
                        Kind::Punct('(') => depth += 1,
                        Kind::Punct(')') => depth -= 1,
                        Kind::Word if depth == 0 && t.value.eq_ignore_ascii_case(to) => break,
                        _ => {}
                    }
                }
                let (u, h) = self.account()?;
                if u != user || h.as_deref() != host {
                    return Err(self.wrong_account(&u, h.as_deref()));
                }
                self.one_account()
            }
        }
    }

    fn expect_punct(&mut self, c: char) -> Result<(), StatementError> {
        if self.next()?.is_punct(c) {
            Ok(())
        } else {
            Err(self.wrong_kind())
        }
    }

    fn wrong_account(&self, user: &str, host: Option<&str>) -> StatementError {
        StatementError::WrongName {
            expected: self.expected.to_string(),
            found: match host {
                Some(h) => format!("'{user}'@'{h}'"),
                None => format!("'{user}'"),
            },
        }
    }

    /// No further account in a list (`, other@host`).
    fn one_account(&self) -> Result<(), StatementError> {
        if self.peek().is_some_and(|t| t.is_punct(',')) {
            return Err(StatementError::Forbidden(format!(
                "more than one account where {} was expected",
                self.expected
            )));
        }
        Ok(())
    }

    /// A table or database definition reads no data (`CREATE TABLE … SELECT`).
    fn no_select(&self) -> Result<(), StatementError> {
        if let Some(t) = self.t[self.i..].iter().find(|t| t.is_word("SELECT")) {
            return Err(StatementError::Forbidden(format!(
                "{} must not contain a query (SELECT at byte {})",
                self.expected, t.start
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
