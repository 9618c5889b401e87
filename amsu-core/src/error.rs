//! Errors of a setup, and the preflight findings that stop one before it changes anything.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Role, Step};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// Which server it concerns.
    pub server: Role,
    /// A stable identifier, e.g. `log_bin_off` (scripts may branch on it).
    pub code: String,
    /// What was found.
    pub problem: String,
    /// How to fix it: SQL, an option-file line or a flag.
    pub fix: String,
}

impl Finding {
    /// A blocking finding.
    pub fn blocking(
        server: Role,
        code: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Blocking,
            server,
            code: code.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// A warning.
    pub fn warning(
        server: Role,
        code: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::blocking(server, code, problem, fix)
        }
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
    /// The process exit code the design gives this error: 3 when a precondition failed
    /// and nothing was changed, 1 when it failed while changing things.
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
}
