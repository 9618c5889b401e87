//! Errors of a setup, and the preflight findings that stop one before it changes anything.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{FindingCode, Role, Step};

/// Any error an adapter (server, backup driver, transport) returns through a core trait.
/// Adapters keep their own typed errors; the orchestrator only adds context to them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How serious a preflight finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information only.
    Info,
    /// The setup can go on, but the operator should look.
    Warning,
    /// The setup cannot go on until this is fixed.
    Blocking,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Blocking => "blocking",
        })
    }
}

/// One result of the preflight checks: what was found, where, why it matters and the fix.
/// Built with [`Finding::blocking`], [`Finding::warning`] or [`Finding::info`]; new fields
/// may be added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// Which server it concerns.
    pub server: Role,
    /// A stable identifier, e.g. [`FindingCode::LogBinOff`] (`log_bin_off` in JSON;
    /// scripts may branch on it).
    pub code: FindingCode,
    /// What was found.
    pub problem: String,
    /// How to fix it, in words (SQL, an option-file line, what to change).
    pub fix: String,
    /// The fix as data, for a program to act on or render in its own words: SQL to
    /// run, an option-file line, or a setting of the setup that lets amsu do it itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remedies: Vec<Remedy>,
}

/// One way to fix a [`Finding`], as data. New forms may be added: match with a wildcard
/// arm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Remedy {
    /// SQL to run (on the finding's server).
    Sql(String),
    /// A line for the server's option file, in `group` (e.g. `mysqld`).
    OptionFileLine {
        /// The option-file group, without brackets.
        group: String,
        /// The line, e.g. `binlog_format = ROW`.
        line: String,
    },
    /// A setting of the setup (an option of `amsu_backup::SetupConfig`, its
    /// `amsu_backup::ReplicationSettings` or [`SetupOptions`](crate::SetupOptions), named
    /// by its setter) with which amsu fixes
    /// it itself, e.g. `force`, or `method` set to `physical`.
    Setting {
        /// The setter's name: `force`, `protect_binlogs`, `positioning`, `repl_password`,
        /// `method`, `method.ftp`, `method.replica_datadir`, `method.master_backup_command`,
        /// `method.image`.
        name: String,
        /// The value to set, when it is not simply "on" (`physical` for `method`,
        /// `file` for `positioning`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    /// Anything else, in words.
    Text(String),
}

impl Remedy {
    /// A [`Remedy::Setting`] turned on.
    pub fn setting(name: impl Into<String>) -> Self {
        Remedy::Setting {
            name: name.into(),
            value: None,
        }
    }

    /// A [`Remedy::Setting`] set to `value`.
    pub fn setting_to(name: impl Into<String>, value: impl Into<String>) -> Self {
        Remedy::Setting {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A [`Remedy::OptionFileLine`].
    pub fn option_file_line(group: impl Into<String>, line: impl Into<String>) -> Self {
        Remedy::OptionFileLine {
            group: group.into(),
            line: line.into(),
        }
    }
}

impl Finding {
    /// A blocking finding.
    pub fn blocking(
        server: Role,
        code: FindingCode,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Blocking,
            server,
            code,
            problem: problem.into(),
            fix: fix.into(),
            remedies: Vec::new(),
        }
    }

    /// A warning.
    pub fn warning(
        server: Role,
        code: FindingCode,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::blocking(server, code, problem, fix)
        }
    }
}

impl Finding {
    /// An informational finding.
    pub fn info(
        server: Role,
        code: FindingCode,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Info,
            ..Finding::blocking(server, code, problem, fix)
        }
    }

    /// The finding with another severity.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The finding with one more way to fix it.
    pub fn with_remedy(mut self, remedy: Remedy) -> Self {
        self.remedies.push(remedy);
        self
    }

    /// The settings of the setup that let amsu fix it itself (see [`Remedy::Setting`]):
    /// `(name, value)`.
    pub fn settings(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.remedies.iter().filter_map(|r| match r {
            Remedy::Setting { name, value } => Some((name.as_str(), value.as_deref())),
            _ => None,
        })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}: {} Fix: {}",
            self.severity, self.server, self.problem, self.fix
        )
    }
}

/// Why a setup stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A precondition does not hold; nothing was changed on either server.
    #[error("{}", preconditions_message(.0))]
    Preconditions(Vec<Finding>),

    /// A step failed before it changed anything (a server unreachable, a query refused);
    /// nothing was changed on either server.
    #[error("step {step} failed on the {server} before anything was changed: {source}")]
    Unchanged {
        /// The step.
        step: Step,
        /// The server.
        server: Role,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// A step failed after amsu had changed things.
    #[error("step {step} failed on the {server}: {source}\n{state}")]
    Failed {
        /// The step.
        step: Step,
        /// The server.
        server: Role,
        /// The underlying error.
        #[source]
        source: BoxError,
        /// What amsu had changed so far and how to go on.
        state: String,
    },
}

fn preconditions_message(findings: &[Finding]) -> String {
    let mut s = String::from("preflight check failed; nothing was changed on either server:");
    for f in findings.iter().filter(|f| f.severity == Severity::Blocking) {
        s.push_str(&format!(
            "\n  - {}: {}\n    fix: {}",
            f.server, f.problem, f.fix
        ));
    }
    s
}

impl Error {
    /// The exit code `amsu setup` gives this error: 3 when a precondition failed and
    /// nothing was changed, 1 when it failed while changing things. (A program's own codes
    /// follow from [`changed_nothing`](Self::changed_nothing) and [`kind`](Self::kind).)
    ///
    /// It stays in the library, not only in the CLI, because an embedder needs it: the
    /// fan-out (`amsu_backup::fanout`) runs setups in-process and reports each replica's
    /// outcome as the exit code `amsu setup` would have given (`ReplicaRun::exit_code`,
    /// kept in its state file and read back by a resumed fan-out), which must be the
    /// CLI's. The CLI's `exit::of` is this function.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Preconditions(_) | Error::Unchanged { .. } => 3,
            Error::Failed { .. } => 1,
        }
    }

    /// True when the setup stopped because it was asked to (a cancelled
    /// [`CancellationToken`](crate::CancellationToken)), not because something failed.
    pub fn is_interrupted(&self) -> bool {
        let source = match self {
            Error::Preconditions(_) => return false,
            Error::Unchanged { source, .. } | Error::Failed { source, .. } => source,
        };
        source.downcast_ref::<crate::Interrupted>().is_some()
    }

    /// The blocking findings, when the setup stopped at preflight.
    pub fn findings(&self) -> &[Finding] {
        match self {
            Error::Preconditions(f) => f,
            _ => &[],
        }
    }

    /// True when nothing was changed on either server: the checks failed, or a step failed
    /// before its first change.
    pub fn changed_nothing(&self) -> bool {
        matches!(self, Error::Preconditions(_) | Error::Unchanged { .. })
    }

    /// The step that failed, when a step failed (not for [`Error::Preconditions`]).
    pub fn step(&self) -> Option<Step> {
        match self {
            Error::Preconditions(_) => None,
            Error::Unchanged { step, .. } | Error::Failed { step, .. } => Some(*step),
        }
    }

    /// The server concerned, when a step failed (not for [`Error::Preconditions`]).
    pub fn server(&self) -> Option<Role> {
        match self {
            Error::Preconditions(_) => None,
            Error::Unchanged { server, .. } | Error::Failed { server, .. } => Some(*server),
        }
    }

    /// What kind of failure this is, for a program to branch on without downcasting:
    /// [`ErrorKind::Precondition`] for failed checks, [`ErrorKind::Cancelled`] when it was
    /// asked to stop, else the kind the adapter gave its error (an [`AdapterError`] in the
    /// source chain: connection, authentication, a server error with its number, …),
    /// else [`ErrorKind::Io`] for an I/O error in the chain, [`ErrorKind::Copy`] when the
    /// data copy failed and [`ErrorKind::Other`] otherwise.
    pub fn kind(&self) -> ErrorKind {
        if matches!(self, Error::Preconditions(_)) {
            return ErrorKind::Precondition;
        }
        if self.is_interrupted() {
            return ErrorKind::Cancelled;
        }
        kind_of(self).unwrap_or(match self.step() {
            Some(Step::CopyData) => ErrorKind::Copy,
            _ => ErrorKind::Other,
        })
    }

    /// The error number the server sent, when a server refused something (e.g. 1045 for
    /// access denied), found in the source chain.
    pub fn server_errno(&self) -> Option<u16> {
        server_errno(self)
    }
}

/// What kind of failure an [`Error`] (or any error carrying an [`AdapterError`]) is.
/// New kinds may be added: match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A precondition does not hold (preflight findings); nothing was changed.
    Precondition,
    /// A server (or a file store) could not be reached, or the connection was lost.
    Connection,
    /// A server refused the credentials.
    Authentication,
    /// A server refused a statement, with its error number.
    Server {
        /// The server's error number (e.g. 1227 for a missing privilege).
        errno: u16,
    },
    /// A wait ran out of time (replication catching up, a server starting, a connection
    /// being set up is [`Connection`](Self::Connection)).
    Timeout,
    /// Replication did not start, or stopped with an error.
    Replication,
    /// A server answered something amsu did not expect (a missing row, a value of another
    /// shape).
    Unexpected,
    /// The data copy (backup, load, image) failed.
    Copy,
    /// Moving files to or from a store (local directory, FTP, S3) failed.
    Transfer,
    /// The resume journal could not be read, written or locked.
    Journal,
    /// The run was asked to stop (a cancelled token).
    Cancelled,
    /// A local I/O error (a file, a directory, a process).
    Io,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The kind's stable name (`server` for every server error number).
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::Precondition => "precondition",
            ErrorKind::Connection => "connection",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Server { .. } => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Replication => "replication",
            ErrorKind::Unexpected => "unexpected",
            ErrorKind::Copy => "copy",
            ErrorKind::Transfer => "transfer",
            ErrorKind::Journal => "journal",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Io => "io",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Server { errno } => write!(f, "server error {errno}"),
            other => f.write_str(other.name()),
        }
    }
}

/// An adapter's error with its [`ErrorKind`] (and the server's error number) attached.
/// Adapters put it in the source chain of their errors, so that [`Error::kind`],
/// [`Error::server_errno`] and [`kind_of`] find it without knowing the adapter's types.
/// It is transparent: it shows and chains as the error it wraps.
#[derive(Debug)]
pub struct AdapterError {
    // Boxed: one pointer in the errors that carry it.
    inner: Box<AdapterInner>,
}

#[derive(Debug)]
struct AdapterInner {
    kind: ErrorKind,
    errno: Option<u16>,
    source: BoxError,
}

impl AdapterError {
    /// `source`, classified as `kind`. A [`ErrorKind::Server`] kind also sets the error
    /// number.
    pub fn new(kind: ErrorKind, source: impl Into<BoxError>) -> Self {
        let errno = match kind {
            ErrorKind::Server { errno } => Some(errno),
            _ => None,
        };
        AdapterError {
            inner: Box::new(AdapterInner {
                kind,
                errno,
                source: source.into(),
            }),
        }
    }

    /// Sets the server's error number (e.g. of a refused login, kind
    /// [`ErrorKind::Authentication`]).
    pub fn with_errno(mut self, errno: Option<u16>) -> Self {
        self.inner.errno = errno.or(self.inner.errno);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The server's error number, if the server sent one.
    pub fn server_errno(&self) -> Option<u16> {
        self.inner.errno
    }

    /// The wrapped error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner.source
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner.source, f)
    }
}

impl std::error::Error for AdapterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.source()
    }
}

/// The chain of `e`: `e`, its source, its source's source, …; an [`AdapterError`]'s
/// wrapped error is part of it (it is transparent to [`std::error::Error::source`]).
fn chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

fn adapter_errors<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a AdapterError> {
    chain(e).filter_map(|e| e.downcast_ref::<AdapterError>())
}

/// The kind of any error, from the first [`AdapterError`] in its source chain, else
/// [`ErrorKind::Cancelled`] for an [`Interrupted`](crate::Interrupted) and
/// [`ErrorKind::Io`] for a [`std::io::Error`] in it; `None` when nothing says.
pub fn kind_of(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    if chain(e).any(|e| e.is::<crate::Interrupted>()) {
        return Some(ErrorKind::Cancelled);
    }
    if let Some(a) = adapter_errors(e).next() {
        return Some(a.kind());
    }
    chain(e)
        .any(|e| e.is::<std::io::Error>())
        .then_some(ErrorKind::Io)
}

/// The server's error number in the source chain of any error (see [`AdapterError`]).
pub fn server_errno(e: &(dyn std::error::Error + 'static)) -> Option<u16> {
    adapter_errors(e).find_map(AdapterError::server_errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("adapter: {source}")]
    struct Outer {
        #[source]
        source: AdapterError,
    }

    fn failed(source: BoxError, step: Step) -> Error {
        Error::Failed {
            step,
            server: Role::Replica,
            source,
            state: String::new(),
        }
    }

    #[test]
    fn kind_comes_from_the_adapter_error_in_the_chain() {
        let refused = AdapterError::new(ErrorKind::Server { errno: 1227 }, "no SUPER");
        let e = failed(Box::new(Outer { source: refused }), Step::ConfigureReplica);
        assert_eq!(e.kind(), ErrorKind::Server { errno: 1227 });
        assert_eq!(e.server_errno(), Some(1227));
        assert_eq!(e.step(), Some(Step::ConfigureReplica));
        assert_eq!(e.server(), Some(Role::Replica));
        // Transparent: the message is the wrapped error's.
        assert!(e.to_string().contains("adapter: no SUPER"), "{e}");

        let denied = AdapterError::new(ErrorKind::Authentication, "denied").with_errno(Some(1045));
        let e = failed(Box::new(Outer { source: denied }), Step::ProbeMaster);
        assert_eq!(e.kind(), ErrorKind::Authentication);
        assert_eq!(e.server_errno(), Some(1045));
    }

    #[test]
    fn kind_without_an_adapter_error() {
        let e = Error::Preconditions(vec![]);
        assert_eq!(e.kind(), ErrorKind::Precondition);
        assert_eq!(e.server_errno(), None);
        assert_eq!(e.step(), None);

        let e = failed(Box::new(crate::Interrupted), Step::CopyData);
        assert_eq!(e.kind(), ErrorKind::Cancelled);

        let io = std::io::Error::other("disk on fire");
        let e = failed(Box::new(io), Step::ChangeMaster);
        assert_eq!(e.kind(), ErrorKind::Io);

        let e = failed("the loader stopped".into(), Step::CopyData);
        assert_eq!(e.kind(), ErrorKind::Copy);
        let e = failed("no idea".into(), Step::ChangeMaster);
        assert_eq!(e.kind(), ErrorKind::Other);
        assert_eq!(e.server_errno(), None);
    }

    #[test]
    fn error_kind_serializes_in_snake_case() {
        let v = serde_json::to_value(ErrorKind::Server { errno: 1045 }).unwrap();
        assert_eq!(v, serde_json::json!({"server": {"errno": 1045}}));
        let v = serde_json::to_value(ErrorKind::Authentication).unwrap();
        assert_eq!(v, "authentication");
        for k in [
            ErrorKind::Timeout,
            ErrorKind::Replication,
            ErrorKind::Unexpected,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
            assert_eq!(k.to_string(), k.name());
        }
    }

    #[test]
    fn exit_codes_of_the_design() {
        assert_eq!(Error::Preconditions(vec![]).exit_code(), 3);
        let unchanged = Error::Unchanged {
            step: Step::ProbeMaster,
            server: Role::Master,
            source: "refused".into(),
        };
        assert_eq!(unchanged.exit_code(), 3);
        assert_eq!(failed("x".into(), Step::CopyData).exit_code(), 1);
    }
}
