//! The `--json` contract: every line on stdout is one JSON object carrying `"v": 1` and an
//! `"event"` tag, for every command (`setup`, `check`, `status`, `verify`, `backup`,
//! `restore`). A command's last line is a `result` or an `error`. The JSON Schema of a
//! line ([`schema`]) is checked in as `docs/amsu-json.schema.json`.
//!
//! The setup's progress events (`step_started`, `progress`, …) are the library's
//! [`amsu_core::Event`] with `"v"` added; the lines this module owns are typed here.

use amsu_core::{Finding, Remedy, Role, Severity};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

/// The version of the JSON lines; bumped only when a field changes meaning or goes away
/// (new events and new fields keep it).
pub const VERSION: u32 = 1;

/// The command a `result` or `error` line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandName {
    /// `amsu setup`.
    Setup,
    /// `amsu check`.
    Check,
    /// `amsu status`.
    Status,
    /// `amsu verify`.
    Verify,
    /// `amsu backup`.
    Backup,
    /// `amsu restore`.
    Restore,
}

/// A preflight finding, whole.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FindingJson {
    /// `info`, `warning` or `blocking`.
    pub severity: SeverityJson,
    /// `master` or `replica`.
    pub server: RoleJson,
    /// A stable identifier (e.g. `log_bin_off`).
    pub code: String,
    /// What was found.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
    /// The amsu flag that lets amsu fix it itself, when there is one (e.g. `--force`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// The fix as data, when the library knows it: SQL to run, an option-file line, or a
    /// setting of the setup with which amsu fixes it itself (which `flag` renders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remedies: Vec<RemedyJson>,
}

/// One remedy of a finding (the library's `amsu_core::Remedy`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemedyJson {
    /// SQL to run on the finding's server.
    Sql(String),
    /// A line for the server's option file.
    OptionFileLine {
        /// The option-file group, without brackets (e.g. `mysqld`).
        group: String,
        /// The line, e.g. `binlog_format = ROW`.
        line: String,
    },
    /// A setting of the setup (named by the library's setter, e.g. `force`), with its
    /// value when it is not simply "on".
    Setting {
        /// The setter's name.
        name: String,
        /// The value, e.g. `physical` for `method`.
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    /// Anything else, in words.
    Text(String),
}

impl From<&Remedy> for RemedyJson {
    fn from(r: &Remedy) -> Self {
        match r {
            Remedy::Sql(sql) => RemedyJson::Sql(sql.clone()),
            Remedy::OptionFileLine { group, line } => RemedyJson::OptionFileLine {
                group: group.clone(),
                line: line.clone(),
            },
            Remedy::Setting { name, value } => RemedyJson::Setting {
                name: name.clone(),
                value: value.clone(),
            },
            Remedy::Text(t) => RemedyJson::Text(t.clone()),
            other => RemedyJson::Text(format!("{other:?}")),
        }
    }
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeverityJson {
    /// For information only.
    Info,
    /// Worth a look; does not stop a setup.
    Warning,
    /// Stops a setup until fixed.
    Blocking,
}

/// A server's role.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleJson {
    /// The master.
    Master,
    /// The replica.
    Replica,
    /// The donor replica the copy is read from (`--donor`).
    Donor,
}

impl From<Role> for RoleJson {
    fn from(r: Role) -> Self {
        match r {
            Role::Master => RoleJson::Master,
            Role::Replica => RoleJson::Replica,
            Role::Donor => RoleJson::Donor,
        }
    }
}

impl From<&Finding> for FindingJson {
    fn from(f: &Finding) -> Self {
        FindingJson {
            severity: match f.severity {
                Severity::Info => SeverityJson::Info,
                Severity::Warning => SeverityJson::Warning,
                Severity::Blocking => SeverityJson::Blocking,
            },
            server: f.server.into(),
            code: f.code.to_string(),
            problem: f.problem.clone(),
            fix: f.fix.clone(),
            flag: crate::remedy::flag_for(f).map(str::to_string),
            remedies: f.remedies.iter().map(RemedyJson::from).collect(),
        }
    }
}

/// Findings as JSON.
pub fn findings(f: &[Finding]) -> Vec<FindingJson> {
    f.iter().map(FindingJson::from).collect()
}

/// What kind of failure an `error` line reports (its exit code follows from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The command line is wrong (exit 2).
    Usage,
    /// A precondition failed; nothing was changed (exit 3).
    Precondition,
    /// Failed while changing things (exit 1); the message says what was left behind.
    Failed,
    /// Stopped on request (a signal, a closed stdout).
    Interrupted,
    /// A server could not be reached or read (`status`, exit 1).
    Unreachable,
}

/// A structured error.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorJson {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The process exit code.
    pub exit_code: i32,
    /// The setup step that failed, when known (e.g. `copy_data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The server concerned, when known (`master` / `replica`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<RoleJson>,
    /// The server's error number (e.g. 1045 for access denied), when the server sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_error: Option<u16>,
    /// What failed, as the library classifies it: `precondition`, `connection`,
    /// `authentication`, `server` (see `server_error`), `timeout`, `replication`,
    /// `unexpected`, `copy`, `transfer`, `journal`, `cancelled`, `io` or `other`; absent
    /// when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The whole message, for people.
    pub message: String,
    /// What to do about it, when amsu knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// The blocking findings of a failed preflight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingJson>,
}

/// One statement-carrying action of a dry-run plan.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanStep {
    /// The step it belongs to (e.g. `replication_user`).
    pub step: String,
    /// Where it runs.
    pub server: RoleJson,
    /// The action, as the library describes it.
    pub action: Value,
    /// Every statement it runs, passwords as `'***'`; placeholders in `<…>`.
    pub statements: Vec<String>,
}

/// A line this module owns; the `event` tag names it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Body {
    /// `setup --dry-run`: the findings and the plan.
    Plan {
        /// Every finding (none blocking, or the line is an `error`).
        findings: Vec<FindingJson>,
        /// The actions in order.
        steps: Vec<PlanStep>,
    },
    /// `check`: the master and every finding.
    Preflight {
        /// The master as probed (flavor, version, server_id, log_bin, binlog_format…).
        master: Value,
        /// Every finding.
        findings: Vec<FindingJson>,
    },
    /// The report of a finished setup (what was copied, the coordinates, what changed).
    Report {
        /// The library's setup report.
        report: Value,
    },
    /// `backup`: the image written.
    Manifest {
        /// Where it was written (a directory or a URL without its password).
        location: String,
        /// The image's manifest.
        manifest: Value,
        /// The copy's report (tables, rows, commit block) or the physical backup's info.
        report: Value,
        /// The upload to a remote store (bytes, seconds, MB/s in total and per stream),
        /// when the image went to FTP or S3.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upload: Option<Value>,
    },
    /// `restore`: the image loaded.
    Restored {
        /// The image (a directory or a URL without its password).
        image: String,
        /// The load's report.
        report: Value,
        /// Replication state after `--start-replication`.
        #[serde(skip_serializing_if = "Option::is_none")]
        replication: Option<Value>,
    },
    /// `status`: the replica's replication state.
    Status {
        /// The replica.
        replica: String,
        /// `SHOW SLAVE STATUS` as read, `null` when not a replica.
        replication: Option<Value>,
        /// Both threads run, no error, lag within `--max-lag`.
        healthy: bool,
        /// The verdict in words.
        verdict: String,
    },
    /// `verify`: one difference.
    VerifyDifference {
        /// `db.table`.
        table: String,
        /// `rows`, `schema`, `only_on_master` or `only_on_replica`.
        kind: Value,
        /// The key range that differs, when the table was compared in ranges.
        key_range: Option<Value>,
        /// Rows on the master (in the range).
        master_rows: Option<u64>,
        /// Rows on the replica (in the range).
        replica_rows: Option<u64>,
        /// More detail (e.g. how the definitions differ).
        detail: Option<String>,
    },
    /// `verify`: the outcome.
    VerifyResult {
        /// No difference.
        equal: bool,
        /// Tables compared.
        tables: usize,
        /// Tables with a difference.
        tables_differing: usize,
        /// Differences found.
        differences: usize,
        /// Key ranges compared.
        ranges: u64,
        /// The master position both sides were compared at.
        position: Value,
    },
    /// Replica settings made only at runtime (lost on restart) and the option-file lines
    /// that make them stick.
    RuntimeOnly {
        /// The settings.
        settings: Vec<String>,
        /// The lines to add to the replica's option file.
        option_file_snippet: Option<String>,
    },
    /// `--replica-config-file` was written.
    ReplicaConfigFile {
        /// Its path.
        path: String,
    },
    /// A generated replication password was kept for the next replica (mode 0600).
    ReplPasswordSaved {
        /// Where.
        paths: Vec<String>,
    },
    /// Fan-out (several `--replica`): the image of the master every replica is seeded
    /// from, dumped once (or reused from an earlier run).
    Spool {
        /// The spool directory (or the `--image` given).
        path: String,
        /// True when a complete image from an earlier run was reused.
        reused: bool,
    },
    /// Fan-out: one replica's run ended (its own lines carry `"replica"` too).
    ReplicaResult {
        /// The replica (no password).
        replica: String,
        /// True when it is done.
        ok: bool,
        /// Its run's exit code (`null`: ended by a signal).
        exit_code: Option<i32>,
        /// Its error line's `error`, when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Value>,
        /// The command that resumes this replica alone, when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rerun: Option<String>,
    },
    /// The command finished; always the last line of a run that did not fail.
    Result {
        /// The command.
        command: CommandName,
        /// True when the command did what it should (`status`: the replica is healthy;
        /// `check`: nothing blocking; `verify`: equal).
        ok: bool,
        /// The process exit code.
        exit_code: i32,
        /// `setup --dry-run`: nothing was changed.
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        dry_run: bool,
    },
    /// The command failed; the last line.
    Error {
        /// The command.
        command: CommandName,
        /// The error.
        error: ErrorJson,
    },
}

/// The `event` names of the library's setup events ([`amsu_core::Event`]).
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CoreEventName {
    /// A step began.
    StepStarted,
    /// A step finished.
    StepFinished,
    /// A step had nothing to do.
    StepSkipped,
    /// amsu changed something on a server.
    Changed,
    /// Something worth knowing that does not stop the run.
    Warning,
    /// Copy progress.
    Progress,
    /// How long the master's commits were blocked.
    CommitBlocked,
    /// The snapshot's coordinates.
    Snapshot,
    /// Reading the master's catalog began.
    CatalogReading,
    /// The master's catalog was read (tables and databases counted).
    CatalogRead,
    /// Replication state while starting or catching up.
    Replication,
}

/// The schema of the version number: always 1.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct V(#[schemars(range(min = 1, max = 1))] pub u32);

/// One line amsu prints with `--json` (schema only; see [`emit`] and [`emit_event`]).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Line {
    /// A line the CLI owns.
    Cli {
        /// Always 1.
        v: V,
        /// The event.
        #[serde(flatten)]
        body: Body,
    },
    /// A setup event of the library, with its own fields.
    Setup {
        /// Always 1.
        v: V,
        /// Its name.
        event: CoreEventName,
        /// Its fields (see the library's `Event`).
        #[serde(flatten)]
        fields: Map<String, Value>,
    },
}

/// The JSON Schema of one `--json` line, pretty-printed (as checked in).
pub fn schema() -> String {
    let mut s = serde_json::to_string_pretty(&schemars::schema_for!(Line)).expect("schema");
    s.push('\n');
    s
}

/// The text of one line.
pub fn line(body: &Body) -> String {
    serde_json::to_string(&Line::Cli {
        v: V(VERSION),
        body: body.clone(),
    })
    .expect("JSON line")
}

/// Prints one line on stdout.
pub fn emit(body: Body) {
    outln!("{}", line(&body));
}

/// Prints a library setup event as a line (its own `event` tag, and `"v"`).
pub fn emit_event(event: &amsu_core::Event) {
    emit_tagged_event(event, None)
}

/// [`emit_event`], with `"replica": replica` when given (a fan-out's replicas).
pub fn emit_tagged_event(event: &amsu_core::Event, replica: Option<&str>) {
    match serde_json::to_value(event) {
        Ok(Value::Object(mut m)) => {
            let mut out = Map::new();
            out.insert("v".into(), VERSION.into());
            out.append(&mut m);
            if let Some(r) = replica {
                out.insert("replica".into(), r.into());
            }
            outln!("{}", Value::Object(out));
        }
        Ok(_) | Err(_) => errln!("amsu: cannot render an event as JSON"),
    }
}

/// Any serializable value as JSON (`null` if it cannot be).
pub fn value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in schema is the one the types generate. After changing the types,
    /// regenerate it: `AMSU_WRITE_SCHEMA=1 cargo test -p amsu-cli schema_file`.
    #[test]
    fn schema_file_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/amsu-json.schema.json");
        let generated = schema();
        if std::env::var_os("AMSU_WRITE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{} is out of date: run AMSU_WRITE_SCHEMA=1 cargo test -p amsu-cli schema_file",
            path.display()
        );
    }

    #[test]
    fn every_line_is_versioned_and_tagged() {
        let l: Value = serde_json::from_str(&line(&Body::Result {
            command: CommandName::Check,
            ok: true,
            exit_code: 0,
            dry_run: false,
        }))
        .unwrap();
        assert_eq!(l["v"], 1);
        assert_eq!(l["event"], "result");
        assert_eq!(l["command"], "check");
        assert!(l.get("dry_run").is_none());
    }
}
