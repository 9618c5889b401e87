//! `SHOW GRANTS` output as data, and the privilege decisions made from it.
//!
//! `parse_grant` reads one line of `SHOW GRANTS` (MariaDB and MySQL spellings) into a
//! [`Grant`]. [`holds`] and [`missing`] decide from those lines whether an account can do
//! something, and [`required`] lists, as data, what each kind of amsu step needs on each
//! flavor and version, so that a preflight check can say up front which privileges are
//! missing instead of failing half-way.
//!
//! Roles: [`holds`] and [`missing`] count every privilege line they are given. To decide
//! for one account, first keep the lines that apply to it with `effective_grants`: its
//! own, and those of its active roles (`default_roles`, or the server's
//! `CURRENT_ROLE()`) and of every role granted to them (`role_closure`, cycle-safe). The
//! caller fetches `SHOW GRANTS FOR role` for each role whose lines it lacks
//! (`roles_without_lines`).
//!
//! Limits, on purpose: column-level grants never satisfy a table-level need, and
//! authentication clauses (`IDENTIFIED …`, `REQUIRE …`, resource limits) are skipped and
//! not kept: no password hash ends up in a [`Grant`] or an error.

use std::fmt;

use amsu_core::{Flavor, Version};

use crate::quote;

/// A `SHOW GRANTS` line that could not be read. Never contains quoted text from the line
/// (it could be a password hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantParseError {
    /// A quoted name or string does not end.
    #[error("unterminated quote starting at byte {at}")]
    UnterminatedQuote {
        /// Byte offset of the opening quote.
        at: usize,
    },
    /// The line ended where more was expected.
    #[error("the grant ends early: expected {expected}")]
    UnexpectedEnd {
        /// What was expected.
        expected: &'static str,
    },
    /// Something else than expected.
    #[error("expected {expected} at byte {at}, found {found}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// What was found (a keyword or punctuation; quoted text is not shown).
        found: String,
        /// Byte offset.
        at: usize,
    },
    /// The line is not a `GRANT`, `REVOKE` or `SET DEFAULT ROLE` statement.
    #[error("not a GRANT, REVOKE or SET DEFAULT ROLE statement")]
    NotAGrant,
}

/// A privilege name in upper case with single spaces: `SELECT`, `REPLICATION SLAVE`,
/// `ALL PRIVILEGES`, MySQL dynamic privileges such as `BACKUP_ADMIN`.
///
/// Compare with `Privilege::same_as`, which knows the aliases: `ALL` = `ALL PRIVILEGES`,
/// and MariaDB's `REPLICATION CLIENT` = `BINLOG MONITOR`, `REPLICATION REPLICA` =
/// `REPLICATION SLAVE`, `REPLICATION REPLICA ADMIN` = `REPLICATION SLAVE ADMIN`,
/// `REPLICA MONITOR` = `SLAVE MONITOR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Privilege(String);

impl Privilege {
    /// A privilege from its name in any case and spacing.
    pub fn new(name: &str) -> Self {
        Privilege(
            name.split_whitespace()
                .map(str::to_ascii_uppercase)
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    /// The name as given (normalised case and spacing).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name its aliases share.
    fn canonical(&self) -> &str {
        match self.0.as_str() {
            "ALL" => "ALL PRIVILEGES",
            "REPLICATION CLIENT" => "BINLOG MONITOR",
            "REPLICATION REPLICA" => "REPLICATION SLAVE",
            "REPLICATION REPLICA ADMIN" => "REPLICATION SLAVE ADMIN",
            "REPLICA MONITOR" => "SLAVE MONITOR",
            other => other,
        }
    }

    /// True for the same privilege, aliases included.
    pub(crate) fn same_as(&self, other: &Privilege) -> bool {
        self.canonical() == other.canonical()
    }

    /// True for `ALL` / `ALL PRIVILEGES`.
    pub(crate) fn is_all(&self) -> bool {
        self.canonical() == "ALL PRIVILEGES"
    }

    /// True when holding `self` gives `wanted`: the same privilege, or `ALL PRIVILEGES`
    /// for anything but `USAGE`, `GRANT OPTION` and `PROXY` (which `ALL` does not include).
    pub fn covers(&self, wanted: &Privilege) -> bool {
        self.same_as(wanted)
            || (self.is_all() && !matches!(wanted.as_str(), "USAGE" | "GRANT OPTION" | "PROXY"))
    }
}

impl From<&str> for Privilege {
    fn from(name: &str) -> Self {
        Privilege::new(name)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A privilege in a grant, with its column list for column-level grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeItem {
    /// The privilege.
    pub privilege: Privilege,
    /// Columns, for `SELECT (a, b)`; empty for the whole object.
    pub columns: Vec<String>,
}

/// The kind of a stored routine in a routine-level grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RoutineKind {
    /// `PROCEDURE`.
    Procedure,
    /// `FUNCTION`.
    Function,
    /// `PACKAGE` (MariaDB, Oracle mode).
    Package,
    /// `PACKAGE BODY` (MariaDB, Oracle mode).
    PackageBody,
}

impl RoutineKind {
    fn keyword(self) -> &'static str {
        match self {
            RoutineKind::Procedure => "PROCEDURE",
            RoutineKind::Function => "FUNCTION",
            RoutineKind::Package => "PACKAGE",
            RoutineKind::PackageBody => "PACKAGE BODY",
        }
    }
}

/// What a grant applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `*.*`: the whole server.
    Global,
    /// `db.*`. In a grant the name is a pattern: `_` and `%` are wildcards, `\_` and `\%`
    /// literal, as the server reads it.
    Database(String),
    /// `db.table`.
    Table {
        /// Database.
        db: String,
        /// Table or view.
        table: String,
    },
    /// `PROCEDURE db.name`, `FUNCTION db.name`, …
    Routine {
        /// Procedure, function or package.
        kind: RoutineKind,
        /// Database.
        db: String,
        /// Routine name.
        name: String,
    },
}

impl Scope {
    /// `db.*`.
    pub fn database(db: impl Into<String>) -> Self {
        Scope::Database(db.into())
    }

    /// `db.table`.
    pub fn table(db: impl Into<String>, table: impl Into<String>) -> Self {
        Scope::Table {
            db: db.into(),
            table: table.into(),
        }
    }

    /// True when a grant on `self` applies to `wanted`: global covers everything, a
    /// database (pattern) covers itself and its tables and routines, a table or routine
    /// only itself. Routine names compare without case, as the server does.
    pub fn covers(&self, wanted: &Scope) -> bool {
        match (self, wanted) {
            (Scope::Global, _) => true,
            (Scope::Database(pattern), Scope::Database(db))
            | (Scope::Database(pattern), Scope::Table { db, .. })
            | (Scope::Database(pattern), Scope::Routine { db, .. }) => like(pattern, db),
            (Scope::Table { db, table }, Scope::Table { db: d, table: t }) => db == d && table == t,
            (
                Scope::Routine { kind, db, name },
                Scope::Routine {
                    kind: k,
                    db: d,
                    name: n,
                },
            ) => kind == k && db == d && name.eq_ignore_ascii_case(n),
            _ => false,
        }
    }

    /// The database a non-global scope is in.
    fn db(&self) -> Option<&str> {
        match self {
            Scope::Global => None,
            Scope::Database(db) | Scope::Table { db, .. } | Scope::Routine { db, .. } => Some(db),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("*.*"),
            Scope::Database(db) => write!(f, "{}.*", quote::ident(db)),
            Scope::Table { db, table } => f.write_str(&quote::qualified(db, table)),
            Scope::Routine { kind, db, name } => {
                write!(f, "{} {}", kind.keyword(), quote::qualified(db, name))
            }
        }
    }
}

/// SQL `LIKE` matching as used for database names in grants: `%` any run, `_` any one
/// character, backslash escapes the next character.
fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('%', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('_', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                n.first() == Some(&rest[0]) && go(&rest[1..], &n[1..])
            }
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// A user (`'user'@'host'`) or a role (MariaDB roles have no host; MySQL roles do).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    /// User or role name (`PUBLIC` for MariaDB's public role).
    pub user: String,
    /// Host pattern; `None` for a MariaDB role.
    pub host: Option<String>,
}

impl Account {
    /// `'user'@'host'`.
    pub fn new(user: impl Into<String>, host: impl Into<String>) -> Self {
        Account {
            user: user.into(),
            host: Some(host.into()),
        }
    }

    /// A role without host (MariaDB).
    pub fn role(name: impl Into<String>) -> Self {
        Account {
            user: name.into(),
            host: None,
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(h) => f.write_str(&quote::account(&self.user, h)),
            None if self.user == "PUBLIC" => f.write_str("PUBLIC"),
            None => f.write_str(&quote::ident(&self.user)),
        }
    }
}

/// `GRANT <privileges> ON <scope> TO <account> [WITH GRANT OPTION]`, or the same shape
/// for a partial revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeGrant {
    /// The privileges, in the order listed.
    pub privileges: Vec<PrivilegeItem>,
    /// What they apply to.
    pub scope: Scope,
    /// Who holds them.
    pub grantee: Account,
    /// `WITH GRANT OPTION`: the grantee may grant these privileges on.
    pub grant_option: bool,
}

impl PrivilegeGrant {
    /// True when this grant gives `privilege` on the whole of `scope`.
    fn gives(&self, privilege: &Privilege, scope: &Scope) -> bool {
        self.scope.covers(scope)
            && self
                .privileges
                .iter()
                .any(|i| i.columns.is_empty() && i.privilege.covers(privilege))
    }
}

/// `GRANT role[, role] TO <account> [WITH ADMIN OPTION]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    /// The roles granted.
    pub roles: Vec<Account>,
    /// Who holds them.
    pub grantee: Account,
    /// `WITH ADMIN OPTION`: the grantee may grant the roles on.
    pub admin_option: bool,
}

/// MariaDB `GRANT PROXY ON <proxied> TO <account> [WITH GRANT OPTION]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyGrant {
    /// The account that may be proxied (`''@'%'` is any).
    pub proxied: Account,
    /// Who may proxy it.
    pub grantee: Account,
    /// `WITH GRANT OPTION`.
    pub grant_option: bool,
}

/// Which roles `SET DEFAULT ROLE` enables at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultRoles {
    /// `NONE`.
    None,
    /// `ALL` (MySQL).
    All,
    /// The listed roles.
    Roles(Vec<Account>),
}

/// `SET DEFAULT ROLE … [FOR|TO <account>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRole {
    /// The roles.
    pub roles: DefaultRoles,
    /// The account; `None` for the current user.
    pub account: Option<Account>,
}

/// One line of `SHOW GRANTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// Privileges on a scope.
    Privileges(PrivilegeGrant),
    /// A MySQL partial revoke (`partial_revokes=ON`): `REVOKE … ON db.* FROM …` takes
    /// global privileges away for one database.
    PartialRevoke(PrivilegeGrant),
    /// Roles granted to the account.
    Role(RoleGrant),
    /// A MariaDB proxy grant.
    Proxy(ProxyGrant),
    /// The default role.
    DefaultRole(DefaultRole),
}

// ---------------------------------------------------------------------------------------
// Tokenizer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A bare word: keyword, privilege word, unquoted name or number.
    Word(String),
    /// A backtick-quoted identifier, unescaped.
    Ident(String),
    /// A single- or double-quoted string, unescaped.
    Str(String),
    /// Any other character.
    Punct(char),
}

fn tokenize(line: &str) -> Result<Vec<(usize, Tok)>, GrantParseError> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '`' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err(GrantParseError::UnterminatedQuote { at }),
                    Some((_, '`')) if chars.peek().map(|p| p.1) == Some('`') => {
                        chars.next();
                        s.push('`');
                    }
                    Some((_, '`')) => break,
                    Some((_, ch)) => s.push(ch),
                }
            }
            out.push((at, Tok::Ident(s)));
        } else if c == '\'' || c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err(GrantParseError::UnterminatedQuote { at }),
                    Some((_, ch)) if ch == c && chars.peek().map(|p| p.1) == Some(c) => {
                        chars.next();
                        s.push(c);
                    }
                    Some((_, ch)) if ch == c => break,
                    Some((_, '\\')) => match chars.next() {
                        None => return Err(GrantParseError::UnterminatedQuote { at }),
                        Some((_, e)) => match e {
                            '0' => s.push('\0'),
                            'n' => s.push('\n'),
                            'r' => s.push('\r'),
                            't' => s.push('\t'),
                            'b' => s.push('\u{8}'),
                            'Z' => s.push('\u{1a}'),
                            // The server keeps the backslash of \% and \_ (LIKE escapes).
                            '%' | '_' => {
                                s.push('\\');
                                s.push(e);
                            }
                            e => s.push(e),
                        },
                    },
                    Some((_, ch)) => s.push(ch),
                }
            }
            out.push((at, Tok::Str(s)));
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut s = String::new();
            while let Some(&(_, ch)) = chars.peek() {
                if ch.is_alphanumeric() || ch == '_' || ch == '$' {
                    s.push(ch);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push((at, Tok::Word(s)));
        } else {
            chars.next();
            out.push((at, Tok::Punct(c)));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Parser

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |t| t.0)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.1.clone());
        self.pos += 1;
        t
    }

    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.peek_kw(kw);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(&Tok::Punct(c));
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn error(&self, expected: &'static str) -> GrantParseError {
        match self.peek() {
            None => GrantParseError::UnexpectedEnd { expected },
            Some(t) => GrantParseError::Unexpected {
                expected,
                found: match t {
                    Tok::Word(w) => w.clone(),
                    Tok::Punct(c) => format!("{c:?}"),
                    Tok::Ident(_) => "a quoted name".into(),
                    Tok::Str(_) => "a quoted string".into(),
                },
                at: self.at(),
            },
        }
    }

    fn expect_kw(&mut self, kw: &'static str) -> Result<(), GrantParseError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error(kw))
        }
    }

    /// A name: backtick-quoted, quoted or bare.
    fn name(&mut self, expected: &'static str) -> Result<String, GrantParseError> {
        match self.peek() {
            Some(Tok::Ident(s)) | Some(Tok::Str(s)) | Some(Tok::Word(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.error(expected)),
        }
    }

    /// `user[@host]`.
    fn account(&mut self) -> Result<Account, GrantParseError> {
        let user = self.name("an account name")?;
        let host = if self.eat_punct('@') {
            Some(self.name("a host name")?)
        } else {
            None
        };
        Ok(Account { user, host })
    }

    fn accounts_until(&mut self, kw: &str) -> Result<Vec<Account>, GrantParseError> {
        let mut list = vec![self.account()?];
        while self.eat_punct(',') {
            list.push(self.account()?);
        }
        if !self.peek_kw(kw) {
            return Err(self.error("a comma or TO"));
        }
        Ok(list)
    }

    /// True when a top-level `ON` comes before `TO`: a privilege grant, not a role grant.
    fn has_on_before_to(&self) -> bool {
        for (_, t) in &self.toks[self.pos..] {
            if let Tok::Word(w) = t {
                if w.eq_ignore_ascii_case("ON") {
                    return true;
                }
                if w.eq_ignore_ascii_case("TO") {
                    return false;
                }
            }
        }
        false
    }

    fn privileges(&mut self) -> Result<Vec<PrivilegeItem>, GrantParseError> {
        let mut items = Vec::new();
        loop {
            let mut words = Vec::new();
            while let Some(Tok::Word(w)) = self.peek() {
                if w.eq_ignore_ascii_case("ON") {
                    break;
                }
                words.push(w.clone());
                self.pos += 1;
            }
            if words.is_empty() {
                return Err(self.error("a privilege name"));
            }
            let mut columns = Vec::new();
            if self.eat_punct('(') {
                loop {
                    columns.push(self.name("a column name")?);
                    if self.eat_punct(')') {
                        break;
                    }
                    if !self.eat_punct(',') {
                        return Err(self.error("a comma or ')'"));
                    }
                }
            }
            items.push(PrivilegeItem {
                privilege: Privilege::new(&words.join(" ")),
                columns,
            });
            if !self.eat_punct(',') {
                break;
            }
        }
        Ok(items)
    }

    /// `*.*`, `db.*`, `db.tbl`, `[TABLE] …`, `PROCEDURE db.p`, `FUNCTION db.f`, ….
    fn scope(&mut self) -> Result<Scope, GrantParseError> {
        let routine = if self.eat_kw("PROCEDURE") {
            Some(RoutineKind::Procedure)
        } else if self.eat_kw("FUNCTION") {
            Some(RoutineKind::Function)
        } else if self.eat_kw("PACKAGE") {
            Some(if self.eat_kw("BODY") {
                RoutineKind::PackageBody
            } else {
                RoutineKind::Package
            })
        } else {
            self.eat_kw("TABLE");
            None
        };
        let first = if self.eat_punct('*') {
            None
        } else {
            Some(self.name("a database name or *")?)
        };
        if !self.eat_punct('.') {
            return Err(self.error("'.' (a qualified name)"));
        }
        let second = if self.eat_punct('*') {
            None
        } else {
            Some(self.name("a table or routine name or *")?)
        };
        match (routine, first, second) {
            (None, None, None) => Ok(Scope::Global),
            (None, Some(db), None) => Ok(Scope::Database(db)),
            (None, Some(db), Some(table)) => Ok(Scope::Table { db, table }),
            (Some(kind), Some(db), Some(name)) => Ok(Scope::Routine { kind, db, name }),
            _ => Err(GrantParseError::Unexpected {
                expected: "a valid grant scope",
                found: "a wildcard".into(),
                at: self.at(),
            }),
        }
    }

    /// Scans the rest for `WITH … <first> OPTION` (`GRANT` or `ADMIN`), skipping
    /// authentication clauses and resource limits.
    fn option_in_tail(&mut self, first: &str) -> bool {
        let mut seen_with = false;
        let mut found = false;
        while let Some(t) = self.next() {
            if let Tok::Word(w) = &t {
                if w.eq_ignore_ascii_case("WITH") {
                    seen_with = true;
                } else if seen_with && w.eq_ignore_ascii_case(first) && self.peek_kw("OPTION") {
                    found = true;
                }
            }
        }
        found
    }
}

/// Reads one line of `SHOW GRANTS` output. Names may be quoted with backticks (doubled
/// backtick inside) or single/double quotes (doubled quote or backslash escapes); a
/// trailing `;` is allowed.
pub(crate) fn parse_grant(line: &str) -> Result<Grant, GrantParseError> {
    let line = line.trim().trim_end_matches(';');
    let mut p = Parser {
        toks: tokenize(line)?,
        pos: 0,
    };
    if p.eat_kw("SET") {
        p.expect_kw("DEFAULT")?;
        p.expect_kw("ROLE")?;
        let roles = if p.eat_kw("NONE") {
            DefaultRoles::None
        } else if p.eat_kw("ALL") {
            DefaultRoles::All
        } else {
            let mut list = vec![p.account()?];
            while p.eat_punct(',') {
                list.push(p.account()?);
            }
            DefaultRoles::Roles(list)
        };
        let account = if p.eat_kw("FOR") || p.eat_kw("TO") {
            Some(p.account()?)
        } else {
            None
        };
        if p.peek().is_some() {
            return Err(p.error("the end of the statement"));
        }
        return Ok(Grant::DefaultRole(DefaultRole { roles, account }));
    }
    let revoke = if p.eat_kw("GRANT") {
        false
    } else if p.eat_kw("REVOKE") {
        true
    } else {
        return Err(GrantParseError::NotAGrant);
    };
    if !revoke && !p.has_on_before_to() {
        let roles = p.accounts_until("TO")?;
        p.expect_kw("TO")?;
        let grantee = p.account()?;
        let admin_option = p.option_in_tail("ADMIN");
        return Ok(Grant::Role(RoleGrant {
            roles,
            grantee,
            admin_option,
        }));
    }
    let privileges = p.privileges()?;
    p.expect_kw("ON")?;
    let is_proxy = privileges.len() == 1 && privileges[0].privilege.as_str() == "PROXY";
    if is_proxy && !revoke {
        let proxied = p.account()?;
        p.expect_kw("TO")?;
        let grantee = p.account()?;
        let grant_option = p.option_in_tail("GRANT");
        return Ok(Grant::Proxy(ProxyGrant {
            proxied,
            grantee,
            grant_option,
        }));
    }
    let scope = p.scope()?;
    p.expect_kw(if revoke { "FROM" } else { "TO" })?;
    let grantee = p.account()?;
    let grant_option = !revoke && p.option_in_tail("GRANT");
    let g = PrivilegeGrant {
        privileges,
        scope,
        grantee,
        grant_option,
    };
    Ok(if revoke {
        Grant::PartialRevoke(g)
    } else {
        Grant::Privileges(g)
    })
}

/// Reads every line of `SHOW GRANTS` output; stops at the first line it cannot read.
pub fn parse_grants<I, S>(lines: I) -> Result<Vec<Grant>, GrantParseError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    lines
        .into_iter()
        .filter(|l| !l.as_ref().trim().is_empty())
        .map(|l| parse_grant(l.as_ref()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Decisions

fn holds_impl(grants: &[Grant], privilege: &Privilege, scope: &Scope, grant_option: bool) -> bool {
    let granted = grants.iter().any(|g| match g {
        Grant::Privileges(pg) => pg.gives(privilege, scope) && (!grant_option || pg.grant_option),
        _ => false,
    });
    // A partial revoke takes a global privilege away from one database; a global need is
    // then not met either. Partial-revoke names are literal, not patterns.
    let revoked = grants.iter().any(|g| match g {
        Grant::PartialRevoke(r) => {
            r.privileges.iter().any(|i| i.privilege.covers(privilege))
                && match (r.scope.db(), scope.db()) {
                    (_, None) => true,
                    (Some(rdb), Some(db)) => rdb == db,
                    (None, Some(_)) => true,
                }
        }
        _ => false,
    });
    granted && !revoked
}

/// True when `grants` give `privilege` on the whole of `scope`: a grant at that scope or
/// a wider one (global covers databases, a database covers its tables and routines), with
/// the privilege itself, an alias of it, or `ALL PRIVILEGES`; and no partial revoke takes
/// it away. Every privilege line counts, whoever its grantee: pass `effective_grants`
/// to decide for one account.
pub fn holds(grants: &[Grant], privilege: &Privilege, scope: &Scope) -> bool {
    holds_impl(grants, privilege, scope, false)
}

/// Like [`holds`], and the grant that gives it carries `WITH GRANT OPTION`, so that the
/// holder may grant it to another account.
pub fn holds_with_grant_option(grants: &[Grant], privilege: &Privilege, scope: &Scope) -> bool {
    holds_impl(grants, privilege, scope, true)
}

/// A privilege requirement: any one of `any_of` on `scope` (with `WITH GRANT OPTION` when
/// `grant_option`), and why amsu needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// Alternatives; holding one of them is enough (e.g. `SUPER` or the finer privilege
    /// that replaced it).
    pub any_of: Vec<Privilege>,
    /// Where it is needed. Wider grants count (see [`holds`]).
    pub scope: Scope,
    /// The privilege must be held `WITH GRANT OPTION` (to grant it to someone else).
    pub grant_option: bool,
    /// What amsu does with it, for the message.
    pub reason: &'static str,
}

impl Need {
    fn global(any_of: &[&str], reason: &'static str) -> Self {
        Need {
            any_of: any_of.iter().map(|p| Privilege::new(p)).collect(),
            scope: Scope::Global,
            grant_option: false,
            reason,
        }
    }

    /// True when `grants` meet this need.
    pub(crate) fn is_met(&self, grants: &[Grant]) -> bool {
        self.any_of
            .iter()
            .any(|p| holds_impl(grants, p, &self.scope, self.grant_option))
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.any_of.iter().map(Privilege::as_str).collect();
        write!(f, "{} ON {}", names.join(" or "), self.scope)?;
        if self.grant_option {
            f.write_str(" WITH GRANT OPTION")?;
        }
        write!(f, " (to {})", self.reason)
    }
}

/// The roles granted to `account` directly (`GRANT role TO account` lines).
pub(crate) fn granted_roles(grants: &[Grant], account: &Account) -> Vec<Account> {
    let mut out: Vec<Account> = Vec::new();
    for g in grants {
        if let Grant::Role(rg) = g {
            if &rg.grantee == account {
                for r in &rg.roles {
                    if !out.contains(r) {
                        out.push(r.clone());
                    }
                }
            }
        }
    }
    out
}

/// The roles `SET DEFAULT ROLE` lines enable for `account` at login (a line without an
/// account is the current user's; `ALL` is every role granted to it); `None` when no
/// line says (MariaDB shows the line only when a default role is set; MySQL never does).
pub(crate) fn default_roles(grants: &[Grant], account: &Account) -> Option<Vec<Account>> {
    grants.iter().rev().find_map(|g| match g {
        Grant::DefaultRole(d) if d.account.as_ref().is_none_or(|a| a == account) => {
            Some(match &d.roles {
                DefaultRoles::None => vec![],
                DefaultRoles::All => granted_roles(grants, account),
                DefaultRoles::Roles(r) => r.clone(),
            })
        }
        _ => None,
    })
}

/// `roles` and every role granted to them, transitively, each once, in the order found;
/// a cycle of role grants ends where it comes back.
pub(crate) fn role_closure(grants: &[Grant], roles: &[Account]) -> Vec<Account> {
    let mut out: Vec<Account> = Vec::new();
    let mut pending: Vec<Account> = roles.to_vec();
    pending.reverse();
    while let Some(r) = pending.pop() {
        if out.contains(&r) {
            continue;
        }
        let mut inner = granted_roles(grants, &r);
        inner.reverse();
        out.push(r);
        pending.extend(inner);
    }
    out
}

/// The roles of `role_closure(grants, active)` for which `grants` hold no line at all
/// (no privilege or role granted to them): their `SHOW GRANTS FOR role` is still needed.
pub(crate) fn roles_without_lines(grants: &[Grant], active: &[Account]) -> Vec<Account> {
    role_closure(grants, active)
        .into_iter()
        .filter(|r| {
            !grants.iter().any(|g| match g {
                Grant::Privileges(pg) | Grant::PartialRevoke(pg) => &pg.grantee == r,
                Grant::Role(rg) => &rg.grantee == r,
                _ => false,
            })
        })
        .collect()
}

/// The privilege lines that apply to `account` when `active` roles are enabled: its own
/// grants and partial revokes, and those of the active roles and every role granted to
/// them. Lines of roles that are not active are left out, so [`holds`] and [`missing`]
/// can be used on the result. A grantee that is not a role (a MariaDB role has no host;
/// a MySQL role is named in a role grant) counts as the account itself: `SHOW GRANTS`
/// shows one account's lines.
pub(crate) fn effective_grants(
    grants: &[Grant],
    account: &Account,
    active: &[Account],
) -> Vec<Grant> {
    let roles = role_closure(grants, active);
    let is_role = |a: &Account| {
        a.host.is_none()
            || grants
                .iter()
                .any(|g| matches!(g, Grant::Role(rg) if rg.roles.contains(a)))
    };
    grants
        .iter()
        .filter(|g| match g {
            Grant::Privileges(pg) | Grant::PartialRevoke(pg) => {
                &pg.grantee == account || roles.contains(&pg.grantee) || !is_role(&pg.grantee)
            }
            _ => false,
        })
        .cloned()
        .collect()
}

/// The needs in `needs` that `grants` do not meet, in order.
pub fn missing(grants: &[Grant], needs: &[Need]) -> Vec<Need> {
    needs
        .iter()
        .filter(|n| !n.is_met(grants))
        .cloned()
        .collect()
}

/// What it takes to grant the privileges of `grants` again elsewhere (when accounts are
/// copied): each privilege, on its scope, `WITH GRANT OPTION`. Column-level items and
/// `USAGE` are left out; role, proxy and default-role lines need no privilege beyond
/// `CREATE USER` / the role's admin option, which the caller checks.
pub fn needs_to_grant(grants: &[Grant]) -> Vec<Need> {
    let mut needs = Vec::new();
    for g in grants {
        if let Grant::Privileges(pg) = g {
            for item in &pg.privileges {
                if item.columns.is_empty() && item.privilege.as_str() != "USAGE" {
                    needs.push(Need {
                        any_of: vec![item.privilege.clone()],
                        scope: pg.scope.clone(),
                        grant_option: true,
                        reason: "grant it to a copied account",
                    });
                }
            }
        }
    }
    needs
}

/// A kind of work amsu does, for [`required`]. Each says on which server it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepKind {
    /// Master: connect, read version and variables (`SELECT @@global.server_id`, …).
    ProbeMaster,
    /// Master: `CREATE USER` and `GRANT REPLICATION SLAVE` for the replication user.
    CreateReplicationUser,
    /// Master: `SET GLOBAL server_id`.
    SetMasterServerId,
    /// Master: `SHOW MASTER STATUS` / `SHOW BINARY LOG STATUS`.
    ReadBinlogPosition,
    /// Master: consistent logical snapshot over the protocol (method `logical`).
    LogicalSnapshot,
    /// Master: the snapshot written with `SELECT … INTO OUTFILE` (method `outfile`).
    OutfileSnapshot,
    /// Master: hot physical backup with mariadb-backup / xtrabackup (method `physical`).
    PhysicalBackup,
    /// Replica: is it a replica already, which databases does it hold.
    ReplicaChecks,
    /// Replica: `STOP SLAVE` and `RESET SLAVE ALL`.
    ResetReplica,
    /// Replica: drop user databases (`--force`).
    DropDatabases,
    /// Replica: `SET GLOBAL server_id`, `read_only`.
    ConfigureReplica,
    /// Replica: load a logical image (schema, data with `LOAD DATA LOCAL INFILE`, views,
    /// routines, triggers, events).
    LogicalRestore,
    /// Replica: recreate the master's accounts. Also check [`needs_to_grant`] for the
    /// privileges the copied accounts hold.
    RestoreAccounts,
    /// Replica: `CHANGE MASTER TO` / `CHANGE REPLICATION SOURCE TO`.
    ChangeMaster,
    /// Replica: set `gtid_slave_pos` / `gtid_purged` for GTID positioning.
    SetGtidPosition,
    /// Replica: start the threads and watch `SHOW SLAVE STATUS`.
    StartReplica,
    /// Replica: `MASTER_POS_WAIT` and status until caught up.
    WaitForCatchUp,
    /// Master and replica: read the same data to compare it.
    Verify,
}

/// Lists the privileges a kind of step needs on a flavor and version, as data for
/// [`missing`]. Each choice, and the alternatives the server accepts, from the manuals
/// (MariaDB's `privilege.h` for ≥ 10.5.2):
///
/// - `ProbeMaster`: nothing beyond logging in; `@@global` variables are readable by every
///   account (the design's "SELECT privilege only" is not even needed).
/// - `CreateReplicationUser`: `CREATE USER` (or `INSERT` on `mysql`, which the server also
///   accepts; expressed as either privilege on `mysql`.*, which a global grant covers) and
///   `REPLICATION SLAVE` `WITH GRANT OPTION`, since an account can only grant what it
///   holds with the grant option.
/// - `SetMasterServerId`: `SUPER`; MariaDB ≥ 10.5.2 also `REPLICATION MASTER ADMIN`;
///   MySQL ≥ 8.0 `SYSTEM_VARIABLES_ADMIN`.
/// - `ReadBinlogPosition`: `REPLICATION CLIENT` (MariaDB ≥ 10.5.2 calls it `BINLOG
///   MONITOR`) or `SUPER`.
/// - `LogicalSnapshot`: global `SELECT` (tables, `mysql.*` for accounts, routine bodies),
///   `SHOW VIEW`, `TRIGGER`, `EVENT` (their `SHOW CREATE`), `RELOAD` (`BACKUP STAGE` on
///   MariaDB ≥ 10.4.1, `FLUSH TABLES WITH READ LOCK` elsewhere), `PROCESS` (to see the
///   sessions and long transactions a lock would wait for) and the `ReadBinlogPosition`
///   privilege for the snapshot's coordinates. No `LOCK TABLES`.
/// - `OutfileSnapshot`: the same plus `FILE` for `INTO OUTFILE`.
/// - `PhysicalBackup`: `RELOAD`, `PROCESS`, `LOCK TABLES` and the binlog-position
///   privilege; MySQL ≥ 8.0 also `BACKUP_ADMIN` (`LOCK INSTANCE FOR BACKUP`,
///   `performance_schema.log_status`) and global `SELECT`.
/// - `ReplicaChecks`: the replica-status privilege (`SUPER` or: MariaDB < 10.5.2
///   `REPLICATION CLIENT`, 10.5.2–10.5.8 `REPLICATION SLAVE ADMIN`, ≥ 10.5.9 `SLAVE
///   MONITOR`; MySQL `REPLICATION CLIENT`) and `SHOW DATABASES` (or global `SELECT`) to see
///   every database.
/// - `ResetReplica`: the replica-admin privilege for `STOP SLAVE` (`SUPER`; MariaDB ≥
///   10.5.2 `REPLICATION SLAVE ADMIN`; MySQL ≥ 8.0 `REPLICATION_SLAVE_ADMIN`) and `RELOAD`
///   for `RESET` (every version).
/// - `DropDatabases`: global `DROP`.
/// - `ConfigureReplica`: `server_id` as for the master; `read_only`: `SUPER` (MariaDB
///   10.5.2–10.11 also `READ_ONLY ADMIN`, ≥ 11.0.1 only `READ_ONLY ADMIN`; MySQL ≥ 8.0
///   `SYSTEM_VARIABLES_ADMIN`).
/// - `LogicalRestore`: global `CREATE`, `INSERT`, `ALTER`, `INDEX`, `CREATE VIEW`,
///   `CREATE ROUTINE`, `TRIGGER`, `EVENT`; the right to name another `DEFINER` (`SUPER`;
///   MariaDB ≥ 10.5.2 `SET USER`; MySQL ≥ 8.0 `SET_USER_ID`, ≥ 8.2 `SET_ANY_DEFINER`); and
///   `SET sql_log_bin = 0` so the load stays out of the replica's own binary log (`SUPER`;
///   MariaDB ≥ 10.5.2 `BINLOG ADMIN`; MySQL ≥ 8.0 `SYSTEM_VARIABLES_ADMIN` or
///   `SESSION_VARIABLES_ADMIN`). `FILE` is not needed: the data arrives with
///   `LOAD DATA LOCAL INFILE` from the client.
/// - `RestoreAccounts`: `CREATE USER`; plus [`needs_to_grant`] of the copied grants.
/// - `ChangeMaster`, `StartReplica`: the replica-admin privilege; `StartReplica` and
///   `WaitForCatchUp` also the replica-status privilege (`MASTER_POS_WAIT` itself needs
///   none).
/// - `SetGtidPosition`: MariaDB `gtid_slave_pos`: the replica-admin privilege; MySQL
///   `gtid_purged`: `SUPER` or (≥ 8.0) `SYSTEM_VARIABLES_ADMIN`.
/// - `Verify`: global `SELECT`.
pub fn required(step: StepKind, flavor: Flavor, version: Version) -> Vec<Need> {
    let maria = flavor == Flavor::MariaDb;
    let mysql8 = flavor == Flavor::MySql && version >= Version::new(8, 0, 0);
    let maria_1052 = maria && version >= Version::new(10, 5, 2);

    let set_server_id = || {
        let alts: &[&str] = if maria_1052 {
            &["SUPER", "REPLICATION MASTER ADMIN"]
        } else if mysql8 {
            &["SYSTEM_VARIABLES_ADMIN", "SUPER"]
        } else {
            &["SUPER"]
        };
        Need::global(alts, "set server_id with SET GLOBAL")
    };
    let binlog_position = || {
        let alts: &[&str] = if maria_1052 {
            &["BINLOG MONITOR", "SUPER"]
        } else {
            &["REPLICATION CLIENT", "SUPER"]
        };
        Need::global(alts, "read the binary log position (SHOW MASTER STATUS)")
    };
    let replica_status = || {
        let alts: &[&str] = if !maria {
            &["REPLICATION CLIENT", "SUPER"]
        } else if version >= Version::new(10, 5, 9) {
            &["SLAVE MONITOR", "SUPER"]
        } else if maria_1052 {
            &["REPLICATION SLAVE ADMIN", "SUPER"]
        } else {
            &["REPLICATION CLIENT", "SUPER"]
        };
        Need::global(alts, "read the replica status (SHOW SLAVE STATUS)")
    };
    let replica_admin = |reason: &'static str| {
        let alts: &[&str] = if maria_1052 {
            &["REPLICATION SLAVE ADMIN", "SUPER"]
        } else if mysql8 {
            &["REPLICATION_SLAVE_ADMIN", "SUPER"]
        } else {
            &["SUPER"]
        };
        Need::global(alts, reason)
    };
    let g = Need::global;

    match step {
        StepKind::ProbeMaster => vec![],
        StepKind::CreateReplicationUser => vec![
            Need {
                any_of: vec!["CREATE USER".into(), "INSERT".into()],
                scope: Scope::database("mysql"),
                grant_option: false,
                reason: "create the replication user",
            },
            Need {
                any_of: vec!["REPLICATION SLAVE".into()],
                scope: Scope::Global,
                grant_option: true,
                reason: "grant REPLICATION SLAVE to the replication user",
            },
        ],
        StepKind::SetMasterServerId => vec![set_server_id()],
        StepKind::ReadBinlogPosition => vec![binlog_position()],
        StepKind::LogicalSnapshot | StepKind::OutfileSnapshot => {
            let mut v = vec![
                g(&["SELECT"], "read every table, account and routine"),
                g(&["SHOW VIEW"], "read view definitions"),
                g(&["TRIGGER"], "read trigger definitions"),
                g(&["EVENT"], "read event definitions"),
                g(
                    &["RELOAD"],
                    if maria && version >= Version::new(10, 4, 1) {
                        "take BACKUP STAGE locks for a consistent point"
                    } else {
                        "take FLUSH TABLES WITH READ LOCK for a consistent point"
                    },
                ),
                g(
                    &["PROCESS"],
                    "see the sessions a backup lock would wait for",
                ),
                binlog_position(),
            ];
            if step == StepKind::OutfileSnapshot {
                v.push(g(&["FILE"], "write the image with SELECT … INTO OUTFILE"));
            }
            v
        }
        StepKind::PhysicalBackup => {
            let mut v = vec![
                g(&["RELOAD"], "take the backup locks"),
                g(
                    &["PROCESS"],
                    "see the sessions a backup lock would wait for",
                ),
                g(&["LOCK TABLES"], "lock non-transactional tables"),
                binlog_position(),
            ];
            if mysql8 {
                v.push(g(
                    &["BACKUP_ADMIN"],
                    "LOCK INSTANCE FOR BACKUP and read performance_schema.log_status",
                ));
                v.push(g(&["SELECT"], "read performance_schema.log_status"));
            }
            v
        }
        StepKind::ReplicaChecks => vec![
            replica_status(),
            g(&["SHOW DATABASES", "SELECT"], "list every database"),
        ],
        StepKind::ResetReplica => vec![
            replica_admin("stop the replica threads"),
            g(&["RELOAD"], "RESET SLAVE ALL"),
        ],
        StepKind::DropDatabases => vec![g(&["DROP"], "drop the replica's old databases")],
        StepKind::ConfigureReplica => {
            let read_only: &[&str] = if maria && version >= Version::new(11, 0, 1) {
                &["READ_ONLY ADMIN"]
            } else if maria_1052 {
                &["READ_ONLY ADMIN", "SUPER"]
            } else if mysql8 {
                &["SYSTEM_VARIABLES_ADMIN", "SUPER"]
            } else {
                &["SUPER"]
            };
            vec![
                set_server_id(),
                Need::global(read_only, "set read_only with SET GLOBAL"),
            ]
        }
        StepKind::LogicalRestore => {
            let definer: &[&str] = if maria_1052 {
                &["SET USER", "SUPER"]
            } else if flavor == Flavor::MySql && version >= Version::new(8, 2, 0) {
                &["SET_ANY_DEFINER", "SET_USER_ID", "SUPER"]
            } else if mysql8 {
                &["SET_USER_ID", "SUPER"]
            } else {
                &["SUPER"]
            };
            let log_bin: &[&str] = if maria_1052 {
                &["BINLOG ADMIN", "SUPER"]
            } else if mysql8 {
                &["SYSTEM_VARIABLES_ADMIN", "SESSION_VARIABLES_ADMIN", "SUPER"]
            } else {
                &["SUPER"]
            };
            vec![
                g(&["CREATE"], "create databases and tables"),
                g(&["INSERT"], "load the rows"),
                g(&["ALTER"], "add indexes and constraints after the load"),
                g(&["INDEX"], "add indexes after the load"),
                g(&["CREATE VIEW"], "create views"),
                g(&["CREATE ROUTINE"], "create procedures and functions"),
                g(&["TRIGGER"], "create triggers"),
                g(&["EVENT"], "create events"),
                Need::global(definer, "create objects with their original DEFINER"),
                Need::global(log_bin, "keep the load out of the replica's binary log"),
            ]
        }
        StepKind::RestoreAccounts => vec![g(&["CREATE USER"], "recreate the master's accounts")],
        StepKind::ChangeMaster => vec![replica_admin("point the replica at the master")],
        StepKind::SetGtidPosition => {
            if maria {
                vec![replica_admin("set gtid_slave_pos")]
            } else if mysql8 {
                vec![g(&["SYSTEM_VARIABLES_ADMIN", "SUPER"], "set gtid_purged")]
            } else {
                vec![g(&["SUPER"], "set gtid_purged")]
            }
        }
        StepKind::StartReplica => {
            vec![replica_admin("start the replica threads"), replica_status()]
        }
        StepKind::WaitForCatchUp => vec![replica_status()],
        StepKind::Verify => vec![g(&["SELECT"], "read the data to compare")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Grant {
        parse_grant(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn privs(g: &Grant) -> Vec<&str> {
        match g {
            Grant::Privileges(pg) | Grant::PartialRevoke(pg) => {
                pg.privileges.iter().map(|i| i.privilege.as_str()).collect()
            }
            other => panic!("not a privilege grant: {other:?}"),
        }
    }

    fn pg(g: &Grant) -> &PrivilegeGrant {
        match g {
            Grant::Privileges(pg) | Grant::PartialRevoke(pg) => pg,
            other => panic!("not a privilege grant: {other:?}"),
        }
    }

    const MARIADB_ROOT: &[&str] = &[
        "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket WITH GRANT OPTION",
        "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
    ];

    /// `SHOW GRANTS FOR root@localhost` of MySQL 8.0.36.
    const MYSQL_ROOT: &[&str] = &[
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, SHUTDOWN, PROCESS, FILE, REFERENCES, INDEX, ALTER, SHOW DATABASES, SUPER, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, CREATE TABLESPACE, CREATE ROLE, DROP ROLE ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        "GRANT APPLICATION_PASSWORD_ADMIN,AUDIT_ABORT_EXEMPT,AUDIT_ADMIN,AUTHENTICATION_POLICY_ADMIN,BACKUP_ADMIN,BINLOG_ADMIN,BINLOG_ENCRYPTION_ADMIN,CLONE_ADMIN,CONNECTION_ADMIN,ENCRYPTION_KEY_ADMIN,FIREWALL_EXEMPT,FLUSH_OPTIMIZER_COSTS,FLUSH_STATUS,FLUSH_TABLES,FLUSH_USER_RESOURCES,GROUP_REPLICATION_ADMIN,GROUP_REPLICATION_STREAM,INNODB_REDO_LOG_ARCHIVE,INNODB_REDO_LOG_ENABLE,PASSWORDLESS_USER_ADMIN,PERSIST_RO_VARIABLES_ADMIN,REPLICATION_APPLIER,REPLICATION_SLAVE_ADMIN,RESOURCE_GROUP_ADMIN,RESOURCE_GROUP_USER,ROLE_ADMIN,SENSITIVE_VARIABLES_OBSERVER,SERVICE_CONNECTION_ADMIN,SESSION_VARIABLES_ADMIN,SET_USER_ID,SHOW_ROUTINE,SYSTEM_USER,SYSTEM_VARIABLES_ADMIN,TABLE_ENCRYPTION_ADMIN,TELEMETRY_LOG_ADMIN,XA_RECOVER_ADMIN ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        "GRANT PROXY ON ``@`` TO `root`@`localhost` WITH GRANT OPTION",
    ];

    #[test]
    fn parses_mariadb_root() {
        let g = parse_grants(MARIADB_ROOT).unwrap();
        let root = Account::new("root", "localhost");
        assert_eq!(
            g[0],
            Grant::Privileges(PrivilegeGrant {
                privileges: vec![PrivilegeItem {
                    privilege: Privilege::new("ALL PRIVILEGES"),
                    columns: vec![],
                }],
                scope: Scope::Global,
                grantee: root.clone(),
                grant_option: true,
            })
        );
        assert_eq!(
            g[1],
            Grant::Proxy(ProxyGrant {
                proxied: Account::new("", "%"),
                grantee: root,
                grant_option: true,
            })
        );
    }

    #[test]
    fn parses_mysql_root_with_dynamic_privileges() {
        let g = parse_grants(MYSQL_ROOT).unwrap();
        assert_eq!(privs(&g[0]).len(), 30);
        assert!(privs(&g[0]).contains(&"CREATE TEMPORARY TABLES"));
        assert!(privs(&g[0]).contains(&"SHOW DATABASES"));
        assert!(privs(&g[1]).contains(&"REPLICATION_SLAVE_ADMIN"));
        assert!(pg(&g[1]).grant_option);
        assert!(matches!(&g[2], Grant::Proxy(p) if p.proxied == Account::new("", "")));
    }

    #[test]
    fn parses_scopes() {
        assert_eq!(
            pg(&p("GRANT SELECT ON `shop`.* TO `u`@`%`")).scope,
            Scope::database("shop")
        );
        assert_eq!(
            pg(&p(
                "GRANT SELECT, INSERT ON `shop`.`orders` TO 'u'@'10.0.%'"
            ))
            .scope,
            Scope::table("shop", "orders")
        );
        assert_eq!(
            pg(&p("GRANT SELECT ON TABLE shop.orders TO u@localhost")).scope,
            Scope::table("shop", "orders")
        );
        assert_eq!(
            pg(&p(
                "GRANT EXECUTE, ALTER ROUTINE ON PROCEDURE `shop`.`restock` TO `u`@`%`"
            ))
            .scope,
            Scope::Routine {
                kind: RoutineKind::Procedure,
                db: "shop".into(),
                name: "restock".into()
            }
        );
        assert_eq!(
            pg(&p("GRANT EXECUTE ON FUNCTION `shop`.`price` TO `u`@`%`")).scope,
            Scope::Routine {
                kind: RoutineKind::Function,
                db: "shop".into(),
                name: "price".into()
            }
        );
        assert!(matches!(
            pg(&p("GRANT EXECUTE ON PACKAGE BODY `db`.`pkg` TO `u`@`%`")).scope,
            Scope::Routine {
                kind: RoutineKind::PackageBody,
                ..
            }
        ));
    }

    #[test]
    fn parses_column_grants_both_spellings() {
        for line in [
            "GRANT SELECT (b, a), INSERT (c) ON `db`.`t` TO `u`@`%`",
            "GRANT SELECT (`b`, `a`), INSERT (`c`) ON `db`.`t` TO `u`@`%`",
        ] {
            let g = p(line);
            let items = &pg(&g).privileges;
            assert_eq!(items[0].columns, ["b", "a"]);
            assert_eq!(items[1].privilege.as_str(), "INSERT");
            assert_eq!(items[1].columns, ["c"]);
            // Column-level grants never count for the whole table.
            assert!(!holds(
                std::slice::from_ref(&g),
                &"SELECT".into(),
                &Scope::table("db", "t")
            ));
        }
    }

    #[test]
    fn unescapes_quoted_names() {
        let g = p("GRANT SELECT ON `we``ird`.`t``1` TO 'it''s'@'h\\'x'");
        let g = pg(&g);
        assert_eq!(g.scope, Scope::table("we`ird", "t`1"));
        assert_eq!(g.grantee, Account::new("it's", "h'x"));
        let g = p("GRANT USAGE ON *.* TO \"dq\"\"user\"@\"%\";");
        assert_eq!(pg(&g).grantee, Account::new("dq\"user", "%"));
        assert_eq!(
            Account::new("it's", "%").to_string(),
            "'it''s'@'%'",
            "displays with amsu's own quoting"
        );
        assert_eq!(Scope::table("we`ird", "t").to_string(), "`we``ird`.`t`");
    }

    #[test]
    fn parses_identified_clauses_without_keeping_the_hash() {
        let line = "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9' WITH MAX_QUERIES_PER_HOUR 100";
        let g = p(line);
        assert!(!pg(&g).grant_option);
        assert!(!format!("{g:?}").contains("6BB4837E"));
        let g = p("GRANT REPLICATION SLAVE ON *.* TO `repl`@`%` IDENTIFIED BY PASSWORD '*AB' REQUIRE SSL WITH GRANT OPTION MAX_USER_CONNECTIONS 5");
        assert!(pg(&g).grant_option);
    }

    #[test]
    fn parses_role_grants_and_default_roles() {
        assert_eq!(
            p("GRANT `dba` TO `alice`@`%`"),
            Grant::Role(RoleGrant {
                roles: vec![Account::role("dba")],
                grantee: Account::new("alice", "%"),
                admin_option: false,
            })
        );
        assert_eq!(
            p("GRANT `dba` TO `root`@`localhost` WITH ADMIN OPTION"),
            Grant::Role(RoleGrant {
                roles: vec![Account::role("dba")],
                grantee: Account::new("root", "localhost"),
                admin_option: true,
            })
        );
        // MySQL 8 roles are accounts.
        assert_eq!(
            p("GRANT `app_read`@`%`,`app_write`@`%` TO `bob`@`localhost`"),
            Grant::Role(RoleGrant {
                roles: vec![
                    Account::new("app_read", "%"),
                    Account::new("app_write", "%")
                ],
                grantee: Account::new("bob", "localhost"),
                admin_option: false,
            })
        );
        assert_eq!(
            p("SET DEFAULT ROLE `dba` FOR `alice`@`%`"),
            Grant::DefaultRole(DefaultRole {
                roles: DefaultRoles::Roles(vec![Account::role("dba")]),
                account: Some(Account::new("alice", "%")),
            })
        );
        assert_eq!(
            p("SET DEFAULT ROLE NONE FOR 'alice'@'%'"),
            Grant::DefaultRole(DefaultRole {
                roles: DefaultRoles::None,
                account: Some(Account::new("alice", "%")),
            })
        );
        assert_eq!(
            p("SET DEFAULT ROLE ALL TO `bob`@`localhost`"),
            Grant::DefaultRole(DefaultRole {
                roles: DefaultRoles::All,
                account: Some(Account::new("bob", "localhost")),
            })
        );
        // A role's own grants (MariaDB) and the PUBLIC role (MariaDB ≥ 11.1).
        assert_eq!(
            pg(&p("GRANT SELECT ON `shop`.* TO `dba`")).grantee,
            Account::role("dba")
        );
        assert_eq!(
            pg(&p("GRANT SELECT ON `pub`.* TO PUBLIC"))
                .grantee
                .to_string(),
            "PUBLIC"
        );
    }

    #[test]
    fn parses_partial_revokes() {
        let g = p("REVOKE INSERT, UPDATE, DELETE ON `mysql`.* FROM `ops`@`%`");
        assert!(matches!(&g, Grant::PartialRevoke(r) if r.scope == Scope::database("mysql")));
        let grants = vec![p("GRANT SELECT, INSERT ON *.* TO `ops`@`%`"), g];
        assert!(holds(&grants, &"INSERT".into(), &Scope::database("shop")));
        assert!(!holds(&grants, &"INSERT".into(), &Scope::database("mysql")));
        assert!(!holds(&grants, &"INSERT".into(), &Scope::Global));
        assert!(holds(&grants, &"SELECT".into(), &Scope::Global));
    }

    #[test]
    fn rejects_bad_lines_without_echoing_strings() {
        assert_eq!(parse_grant("SELECT 1"), Err(GrantParseError::NotAGrant));
        assert!(matches!(
            parse_grant("GRANT SELECT ON `db.* TO u"),
            Err(GrantParseError::UnterminatedQuote { at: 16 })
        ));
        assert!(matches!(
            parse_grant("GRANT SELECT ON"),
            Err(GrantParseError::UnexpectedEnd { .. })
        ));
        assert!(matches!(
            parse_grant("GRANT SELECT ON db TO u"),
            Err(GrantParseError::Unexpected { .. })
        ));
        let e = parse_grant("GRANT SELECT ON 'secret-hash' TO u").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(parse_grant("GRANT ON *.* TO u").is_err());
        assert!(parse_grant("GRANT SELECT ON *.x TO u").is_err());
    }

    #[test]
    fn holds_honours_all_privileges_and_wider_scopes() {
        let maria = parse_grants(MARIADB_ROOT).unwrap();
        for priv_ in [
            "SUPER",
            "REPLICATION SLAVE",
            "BINLOG MONITOR",
            "SLAVE MONITOR",
        ] {
            assert!(holds(&maria, &priv_.into(), &Scope::Global), "{priv_}");
        }
        assert!(holds_with_grant_option(
            &maria,
            &"REPLICATION SLAVE".into(),
            &Scope::Global
        ));
        assert!(
            !holds(&maria, &"PROXY".into(), &Scope::Global),
            "ALL does not include PROXY"
        );

        let app = parse_grants([
            "GRANT USAGE ON *.* TO `app`@`%`",
            "GRANT ALL PRIVILEGES ON `shop`.* TO `app`@`%`",
            "GRANT SELECT ON `stats`.`daily` TO `app`@`%`",
            "GRANT SELECT ON `tenant\\_%`.* TO `app`@`%`",
        ])
        .unwrap();
        assert!(holds(&app, &"DELETE".into(), &Scope::database("shop")));
        assert!(holds(
            &app,
            &"DELETE".into(),
            &Scope::table("shop", "orders")
        ));
        assert!(!holds(&app, &"DELETE".into(), &Scope::Global));
        assert!(!holds(&app, &"SUPER".into(), &Scope::Global));
        assert!(holds(
            &app,
            &"SELECT".into(),
            &Scope::table("stats", "daily")
        ));
        assert!(!holds(&app, &"SELECT".into(), &Scope::database("stats")));
        assert!(!holds(
            &app,
            &"SELECT".into(),
            &Scope::table("stats", "monthly")
        ));
        assert!(holds(&app, &"SELECT".into(), &Scope::database("tenant_42")));
        assert!(!holds(
            &app,
            &"SELECT".into(),
            &Scope::database("tenantX42")
        ));
        assert!(!holds_with_grant_option(
            &app,
            &"DELETE".into(),
            &Scope::database("shop")
        ));
    }

    #[test]
    fn aliases_count_as_the_same_privilege() {
        let g = parse_grants(["GRANT REPLICATION CLIENT, REPLICATION REPLICA ON *.* TO `m`@`%`"])
            .unwrap();
        assert!(holds(&g, &"BINLOG MONITOR".into(), &Scope::Global));
        assert!(holds(&g, &"REPLICATION SLAVE".into(), &Scope::Global));
        assert!(Privilege::new("all").covers(&"select".into()));
        assert!(Privilege::new("replication   slave").same_as(&"REPLICATION SLAVE".into()));
    }

    #[test]
    fn missing_says_what_a_step_lacks() {
        let maria = Version::new(10, 11, 19);
        let repl_admin = parse_grants([
            "GRANT RELOAD, PROCESS, BINLOG MONITOR ON *.* TO `backup`@`localhost` IDENTIFIED BY PASSWORD '*AB'",
            "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON *.* TO `backup`@`localhost`",
        ])
        .unwrap();
        let needs = required(StepKind::LogicalSnapshot, Flavor::MariaDb, maria);
        assert!(missing(&repl_admin, &needs).is_empty());
        let needs = required(StepKind::OutfileSnapshot, Flavor::MariaDb, maria);
        let m = missing(&repl_admin, &needs);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].to_string(),
            "FILE ON *.* (to write the image with SELECT … INTO OUTFILE)"
        );

        // Creating the replication user needs REPLICATION SLAVE with grant option.
        let needs = required(StepKind::CreateReplicationUser, Flavor::MariaDb, maria);
        let no_go =
            parse_grants(["GRANT CREATE USER, REPLICATION SLAVE ON *.* TO `a`@`%`"]).unwrap();
        let m = missing(&no_go, &needs);
        assert_eq!(m.len(), 1);
        assert!(m[0].grant_option);
        assert!(m[0]
            .to_string()
            .contains("REPLICATION SLAVE ON *.* WITH GRANT OPTION"));
        let via_insert = parse_grants([
            "GRANT REPLICATION SLAVE ON *.* TO `a`@`%` WITH GRANT OPTION",
            "GRANT INSERT ON `mysql`.* TO `a`@`%`",
        ])
        .unwrap();
        assert!(missing(&via_insert, &needs).is_empty());
        assert!(missing(&parse_grants(MARIADB_ROOT).unwrap(), &needs).is_empty());
        assert!(missing(&parse_grants(MYSQL_ROOT).unwrap(), &needs).is_empty());
    }

    #[test]
    fn fine_grained_privileges_replace_super_where_the_server_allows() {
        let maria = Version::new(10, 11, 19);
        let slave_admin = parse_grants([
            "GRANT RELOAD, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, SLAVE MONITOR ON *.* TO `ops`@`%`",
        ])
        .unwrap();
        for step in [
            StepKind::ResetReplica,
            StepKind::ChangeMaster,
            StepKind::StartReplica,
            StepKind::SetGtidPosition,
            StepKind::ConfigureReplica,
            StepKind::WaitForCatchUp,
        ] {
            let needs = required(step, Flavor::MariaDb, maria);
            assert!(missing(&slave_admin, &needs).is_empty(), "{step:?}");
        }
        // Before 10.5.2 only SUPER does.
        let needs = required(
            StepKind::ChangeMaster,
            Flavor::MariaDb,
            Version::new(10, 4, 34),
        );
        assert_eq!(missing(&slave_admin, &needs).len(), 1);
        // MariaDB 11: SUPER no longer sets read_only.
        let sup = parse_grants(["GRANT SUPER ON *.* TO `s`@`%`"]).unwrap();
        assert!(missing(
            &sup,
            &required(StepKind::ConfigureReplica, Flavor::MariaDb, maria)
        )
        .is_empty());
        let m = missing(
            &sup,
            &required(
                StepKind::ConfigureReplica,
                Flavor::MariaDb,
                Version::new(11, 4, 2),
            ),
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].any_of, [Privilege::new("READ_ONLY ADMIN")]);
    }

    #[test]
    fn mysql_8_root_meets_every_step() {
        let root = parse_grants(MYSQL_ROOT).unwrap();
        let v = Version::new(8, 0, 36);
        for step in [
            StepKind::ProbeMaster,
            StepKind::CreateReplicationUser,
            StepKind::SetMasterServerId,
            StepKind::ReadBinlogPosition,
            StepKind::LogicalSnapshot,
            StepKind::OutfileSnapshot,
            StepKind::PhysicalBackup,
            StepKind::ReplicaChecks,
            StepKind::ResetReplica,
            StepKind::DropDatabases,
            StepKind::ConfigureReplica,
            StepKind::LogicalRestore,
            StepKind::RestoreAccounts,
            StepKind::ChangeMaster,
            StepKind::SetGtidPosition,
            StepKind::StartReplica,
            StepKind::WaitForCatchUp,
            StepKind::Verify,
        ] {
            let m = missing(&root, &required(step, Flavor::MySql, v));
            assert!(m.is_empty(), "{step:?}: {m:?}");
        }
        // A plain replication-admin account on MySQL 8.
        let ops = parse_grants([
            "GRANT RELOAD, REPLICATION CLIENT ON *.* TO `ops`@`%`",
            "GRANT REPLICATION_SLAVE_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `ops`@`%`",
        ])
        .unwrap();
        for step in [
            StepKind::ChangeMaster,
            StepKind::StartReplica,
            StepKind::ConfigureReplica,
        ] {
            assert!(
                missing(&ops, &required(step, Flavor::MySql, v)).is_empty(),
                "{step:?}"
            );
        }
        assert!(required(StepKind::ProbeMaster, Flavor::MySql, v).is_empty());
        assert_eq!(
            required(
                StepKind::ChangeMaster,
                Flavor::MySql,
                Version::new(5, 7, 44)
            )[0]
            .any_of,
            [Privilege::new("SUPER")]
        );
    }

    #[test]
    fn needs_to_grant_lists_privileges_with_grant_option() {
        let grants = parse_grants([
            "GRANT USAGE ON *.* TO `app`@`%`",
            "GRANT SELECT, INSERT ON `shop`.* TO `app`@`%`",
            "GRANT SELECT (a) ON `shop`.`t` TO `app`@`%`",
        ])
        .unwrap();
        let needs = needs_to_grant(&grants);
        assert_eq!(needs.len(), 2);
        assert!(needs
            .iter()
            .all(|n| n.grant_option && n.scope == Scope::database("shop")));
        assert!(missing(&parse_grants(MARIADB_ROOT).unwrap(), &needs).is_empty());
        let plain = parse_grants(["GRANT ALL PRIVILEGES ON *.* TO `x`@`%`"]).unwrap();
        assert_eq!(missing(&plain, &needs).len(), 2);
    }

    /// `SHOW GRANTS` of MariaDB 10.11 for a user whose default role `r_outer` has SELECT
    /// and the role `r_inner` (RELOAD, BINLOG MONITOR), and who also holds the inactive
    /// role `r_other` (REPLICATION SLAVE).
    const ROLE_USER: &[&str] = &[
        "GRANT `r_outer` TO `u1`@`%`",
        "GRANT `r_other` TO `u1`@`%`",
        "GRANT USAGE ON *.* TO `u1`@`%` IDENTIFIED BY PASSWORD '*2B602296A79E0A8784ACC5C88D92E46588CCA3C3'",
        "GRANT `r_inner` TO `r_outer`",
        "GRANT SELECT ON *.* TO `r_outer`",
        "GRANT RELOAD, BINLOG MONITOR ON *.* TO `r_inner`",
        "GRANT REPLICATION SLAVE ON *.* TO `r_other`",
        "SET DEFAULT ROLE `r_outer` FOR `u1`@`%`",
    ];

    #[test]
    fn roles_expand_through_the_default_role_transitively() {
        let g = parse_grants(ROLE_USER).unwrap();
        let u1 = Account::new("u1", "%");
        assert_eq!(
            granted_roles(&g, &u1),
            [Account::role("r_outer"), Account::role("r_other")]
        );
        let active = default_roles(&g, &u1).unwrap();
        assert_eq!(active, [Account::role("r_outer")]);
        assert_eq!(
            role_closure(&g, &active),
            [Account::role("r_outer"), Account::role("r_inner")]
        );
        let eff = effective_grants(&g, &u1, &active);
        let global = |p: &str| holds(&eff, &Privilege::new(p), &Scope::Global);
        assert!(global("SELECT") && global("RELOAD") && global("BINLOG MONITOR"));
        // r_other is granted but not active: its privilege does not count.
        assert!(!global("REPLICATION SLAVE"));
        // Without an active role only the user's own USAGE is left.
        let none = effective_grants(&g, &u1, &[]);
        assert!(!holds(&none, &Privilege::new("SELECT"), &Scope::Global));
        assert_eq!(none.len(), 1);
        // Role lines never count for an account without active roles.
        let other = effective_grants(&g, &Account::new("u2", "%"), &[]);
        assert!(!holds(&other, &Privilege::new("SELECT"), &Scope::Global));
    }

    #[test]
    fn role_cycles_end_and_missing_role_lines_are_named() {
        // MariaDB refuses a cycle, but a parser must not loop on lines that have one.
        let g = parse_grants([
            "GRANT `a` TO `u`@`h`",
            "GRANT `b` TO `a`",
            "GRANT `a` TO `b`",
            "GRANT `c` TO `b`",
            "GRANT SELECT ON `shop`.* TO `b`",
        ])
        .unwrap();
        let closure = role_closure(&g, &[Account::role("a")]);
        assert_eq!(
            closure,
            [Account::role("a"), Account::role("b"), Account::role("c")]
        );
        // `c` has no line yet: the caller fetches SHOW GRANTS FOR `c`.
        assert_eq!(
            roles_without_lines(&g, &[Account::role("a")]),
            [Account::role("c")]
        );
        let eff = effective_grants(&g, &Account::new("u", "h"), &[Account::role("a")]);
        assert!(holds(
            &eff,
            &Privilege::new("SELECT"),
            &Scope::database("shop")
        ));
    }

    #[test]
    fn default_role_lines() {
        let u = Account::new("u", "%");
        let g = parse_grants(["GRANT `r` TO `u`@`%`"]).unwrap();
        assert_eq!(default_roles(&g, &u), None);
        let g =
            parse_grants(["GRANT `r` TO `u`@`%`", "SET DEFAULT ROLE NONE FOR `u`@`%`"]).unwrap();
        assert_eq!(default_roles(&g, &u), Some(vec![]));
        let g = parse_grants([
            "GRANT `r`@`%`, `s`@`%` TO `u`@`%`",
            "SET DEFAULT ROLE ALL TO `u`@`%`",
        ])
        .unwrap();
        assert_eq!(
            default_roles(&g, &u),
            Some(vec![Account::new("r", "%"), Account::new("s", "%")])
        );
        // Another account's default role is not this one's.
        let g = parse_grants(["SET DEFAULT ROLE `r` FOR `v`@`%`"]).unwrap();
        assert_eq!(default_roles(&g, &u), None);
    }
}
