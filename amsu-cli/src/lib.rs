//! The `amsu` command line: argument parsing, secrets input, progress display and exit
//! codes. It wires the library crates together; no library type depends on it.

#![deny(missing_docs)]

#[macro_use]
mod output;
mod args;
mod demo;
mod durable;
mod fanout_cmd;
mod image_cmd;
mod interrupt;
pub mod json;
mod physical;
mod remedy;
mod render;
mod repl_creds;
mod secrets;
mod status_cmd;
mod style;
mod verify_cmd;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use amsu_backup::{Provision, ReplicationSettings, SetupConfig, SetupError as FacadeError};
use amsu_core::{Error as SetupError, EventSink, Positioning, ServerAddr, SetupReport, Severity};
use amsu_mysql::sandbox::{self, SandboxOptions};
use anyhow::{anyhow, Context, Result};

pub use args::Cli;
use args::{CheckArgs, Command, SandboxAction, SandboxArgs, SetupArgs};
use render::Renderer;

/// Exit codes of the CLI contract.
pub mod exit {
    /// Done.
    pub const OK: i32 = 0;
    /// Failed while changing things.
    pub const FAILED: i32 = 1;
    /// Usage error.
    pub const USAGE: i32 = 2;
    /// A precondition failed; nothing was changed.
    pub const PRECONDITION: i32 = 3;

    /// The exit code of a failed setup: [`PRECONDITION`] when nothing was changed, else
    /// [`FAILED`] — [`amsu_core::Error::exit_code`], which the library keeps because the
    /// fan-out reports each replica's exit code to embedders (one mapping for both).
    pub fn of(e: &amsu_core::Error) -> i32 {
        e.exit_code()
    }
}

/// A CLI-level error with its exit code.
#[derive(Debug)]
pub struct Exit(i32, anyhow::Error);

impl Exit {
    /// The process exit code (see [`exit`]).
    pub fn code(&self) -> i32 {
        self.0
    }

    /// The error.
    pub fn error(&self) -> &anyhow::Error {
        &self.1
    }
}

fn usage(e: impl Into<anyhow::Error>) -> Exit {
    Exit(exit::USAGE, e.into())
}

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    init_logging(cli.verbose);
    let json = cli.command.json();
    let r = match cli.command {
        Command::Setup(a) if a.donor.donor.is_some() && fanout_cmd::wanted(&a) => Err(usage(anyhow!(
            "--donor seeds one replica per run (several --replica and --spool read the master once into a spool image)"
        ))),
        Command::Setup(a) if fanout_cmd::wanted(&a) => fanout_cmd::setup(a).await,
        Command::Setup(a) => setup(a).await,
        Command::Check(a) => check(a).await,
        Command::Status(a) => status_cmd::status(a).await,
        Command::Verify(a) => verify_cmd::run(a).await,
        Command::Backup(a) => image_cmd::backup(a).await,
        Command::Restore(a) if a.replica.len() > 1 => fanout_cmd::restore(a).await,
        Command::Restore(a) => image_cmd::restore(a).await,
        Command::Sandbox(a) => sandbox_cmd(a).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Completions(a) => args::completions(a),
        Command::Man(a) => args::man(a),
    };
    match r {
        Ok(code) => code,
        Err(Exit(code, e)) => {
            let message = chain_message(e.chain());
            let remedy = secrets::remedy(&message);
            if let Some(command) = json {
                let first: &(dyn std::error::Error + 'static) = e.as_ref();
                json::emit(json::Body::Error {
                    command,
                    error: error_json(code, first, None, command, remedy),
                });
            } else {
                errln!("{} {message}", style::error_label());
                if let Some(r) = remedy {
                    errln!("  hint: {r}");
                }
            }
            code
        }
    }
}

/// The structured form of an error (its chain walked for a server error number).
fn error_json(
    code: i32,
    e: &(dyn std::error::Error + 'static),
    setup: Option<&SetupError>,
    command: json::CommandName,
    remedy: Option<String>,
) -> json::ErrorJson {
    let chain = || std::iter::successors(Some(e), |e| e.source());
    let server_error = amsu_core::server_errno(e);
    let step = setup.and_then(SetupError::step).map(|s| s.to_string());
    let server = setup.and_then(SetupError::server).map(json::RoleJson::from);
    let cause = match setup {
        Some(s) => Some(s.kind()),
        None => amsu_core::kind_of(e),
    };
    let kind = if cause == Some(amsu_core::ErrorKind::Cancelled) {
        json::ErrorKind::Interrupted
    } else {
        match code {
            exit::USAGE => json::ErrorKind::Usage,
            exit::PRECONDITION => json::ErrorKind::Precondition,
            exit::FAILED if command == json::CommandName::Status => json::ErrorKind::Unreachable,
            _ => json::ErrorKind::Failed,
        }
    };
    json::ErrorJson {
        kind,
        exit_code: code,
        step,
        server,
        server_error,
        cause: cause.map(|k| k.name().to_string()),
        message: chain_message(chain()),
        remedy,
        findings: setup
            .map(|s| json::findings(s.findings()))
            .unwrap_or_default(),
    }
}

/// An error and its causes in one line, skipping causes whose text the message already
/// contains (many errors repeat their source in their own message).
fn chain_message<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut out = String::new();
    for e in chain {
        let msg = e.to_string();
        if !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
    }
    out
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn fallbacks(p: &args::PasswordFiles) -> secrets::Fallbacks<'_> {
    secrets::Fallbacks {
        defaults_file: p.defaults_file.as_deref(),
        ask: p.ask_pass,
    }
}

fn master_addr(url: &str, p: &args::PasswordFiles) -> Result<ServerAddr, Exit> {
    secrets::server(
        url,
        p.master_password_file.as_deref(),
        "AMSU_MASTER_PASSWORD",
        "master",
        &fallbacks(p),
    )
    .map_err(usage)
}

fn replica_addr(url: &str, p: &args::PasswordFiles) -> Result<ServerAddr, Exit> {
    secrets::server(
        url,
        p.replica_password_file.as_deref(),
        "AMSU_REPLICA_PASSWORD",
        "replica",
        &fallbacks(p),
    )
    .map_err(usage)
}

/// The plan with the statements each action runs on its server (passwords redacted).
fn plan_json(plan: &[(&amsu_core::Action, Vec<String>)]) -> Vec<json::PlanStep> {
    plan.iter()
        .cloned()
        .map(|(a, statements)| json::PlanStep {
            step: a.step().to_string(),
            server: a.server().into(),
            action: json::value(a),
            statements,
        })
        .collect()
}

/// The plan as shown: each action with the statements it runs on its server.
fn plan_text(
    plan: &[(&amsu_core::Action, Vec<String>)],
    master: &ServerAddr,
    replica: &ServerAddr,
) -> String {
    let mut out = format!("Plan: make {replica} a replica of {master}\n");
    for (i, (a, statements)) in plan.iter().enumerate() {
        out.push_str(&format!(
            "  {}. {} on the {}: {}\n",
            i + 1,
            a.step(),
            a.server(),
            a.step().describe()
        ));
        for sql in statements {
            out.push_str(&format!("       {sql}\n"));
        }
    }
    out
}

/// With `--donor`: where the data comes from.
fn donor_text(donor: Option<&ServerAddr>) -> String {
    match donor {
        Some(d) => format!(
            "  The data is read from the donor {}:{} (a replica of the master), not from the master.\n",
            d.host, d.port
        ),
        None => String::new(),
    }
}

/// The findings, one with its fix per entry.
fn findings_text(findings: &[amsu_core::Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} ({}): {}\n    fix: {}{}\n",
                style::severity(f.severity),
                f.server,
                f.code,
                f.problem,
                f.fix,
                hint(f)
            )
        })
        .collect()
}

/// What `amsu setup` shows before it changes anything (the dry run, the confirmation):
/// the findings, the plan with its statements and where the data comes from.
fn plan_view(p: &Provision, checked: &amsu_core::Checked) -> String {
    let config = p.config();
    format!(
        "{}{}{}",
        findings_text(&checked.findings),
        plan_text(
            &p.plan(checked),
            config.master_addr(),
            config.replica_addr()
        ),
        donor_text(config.donor_addr())
    )
}

/// The dry run's output of one replica: the plan view and that nothing was changed, or
/// its `plan` line.
fn dry_run_text(p: &Provision, checked: &amsu_core::Checked, json_out: bool) -> String {
    if json_out {
        return json::line(&json::Body::Plan {
            findings: json::findings(&checked.findings),
            steps: plan_json(&p.plan(checked)),
        });
    }
    format!(
        "{}Dry run: all checks passed and nothing was changed; run without --dry-run to set the replica up.",
        plan_view(p, checked)
    )
}

/// The CLI's flag for a finding, as a suffix of its fix.
fn hint(f: &amsu_core::Finding) -> String {
    remedy::hint_for(f)
        .map(|h| format!(" ({h})"))
        .unwrap_or_default()
}

/// Findings grouped: blocking first, then warnings, then information.
fn print_findings_by_severity(findings: &[amsu_core::Finding]) {
    for (severity, title) in [
        (
            Severity::Blocking,
            "Blocking: amsu setup refuses to start until these are fixed",
        ),
        (Severity::Warning, "Warnings"),
        (Severity::Info, "Information"),
    ] {
        let group: Vec<_> = findings.iter().filter(|f| f.severity == severity).collect();
        if group.is_empty() {
            continue;
        }
        outln!("{} ({}):", style::heading(severity, title), group.len());
        for f in group {
            outln!(
                "  - {} [{}]: {}\n    fix: {}{}",
                f.server,
                f.code,
                f.problem,
                f.fix,
                hint(f)
            );
        }
    }
}

/// The admin account of `--admin-user` (its password from its file or the environment).
fn admin_addr(
    user: Option<&String>,
    master: &ServerAddr,
    p: &args::PasswordFiles,
) -> Result<Option<ServerAddr>, Exit> {
    match user {
        Some(u) => Ok(Some(
            master.clone().user(u.clone()).password(
                secrets::password(p.admin_password_file.as_deref(), "AMSU_ADMIN_PASSWORD")
                    .map_err(usage)?,
            ),
        )),
        None => Ok(None),
    }
}

/// The library's configuration of `amsu setup` from its flags, with the servers'
/// secrets read (from files, the environment or a terminal). The replication password is
/// not part of it: [`repl_password`] finds it (and where it came from, to keep it
/// afterwards), [`with_repl_password`] adds it to the replication settings.
impl TryFrom<&SetupArgs> for SetupConfig {
    type Error = Exit;

    fn try_from(a: &SetupArgs) -> Result<SetupConfig, Exit> {
        let master = master_addr(&a.master, &a.passwords)?;
        let replica = replica_addr(&a.replica[0], &a.passwords)?;
        let admin = admin_addr(a.admin_user.as_ref(), &master, &a.passwords)?;
        let mut config = SetupConfig::new(master, replica)
            .method(image_cmd::copy_method(a)?)
            .admin(admin)
            .replication(replication_settings(
                &a.repl_user,
                a.master_host_for_replica.clone(),
                &a.repl_tls,
                a.gtid,
                a.journal.clone(),
            ))
            .protect_binlogs(a.protect_binlogs)
            .options(|o| {
                o.force(a.force)
                    .fast_load(!a.no_fast_load)
                    .resize_redo_log(a.resize_redo_log)
                    .wait_caught_up(a.wait_caught_up)
                    .catch_up_timeout(Duration::from_secs(a.catch_up_timeout))
                    .replica_config_file(
                        a.replica_config_file
                            .clone()
                            .map(|path| (path, a.report_host.clone())),
                    )
                    .verify(a.verify)
            });
        if let Some(url) = &a.donor.donor {
            if a.image.is_some() {
                return Err(usage(anyhow!(
                    "--donor and --image are two sources of the data; give one"
                )));
            }
            let donor = secrets::server(
                url,
                a.donor.donor_password_file.as_deref(),
                "AMSU_DONOR_PASSWORD",
                "donor",
                &fallbacks(&a.passwords),
            )
            .map_err(usage)?;
            config = config.donor(Some(
                amsu_backup::Donor::new(donor).max_lag(Duration::from_secs(a.donor.donor_max_lag)),
            ));
        }
        Ok(config)
    }
}

/// The replication password of `amsu setup` (`--repl-password-file`, the environment,
/// the file saved for this master, or a new one), with where it came from.
fn repl_password(a: &SetupArgs, config: &SetupConfig) -> Result<repl_creds::ReplPassword, Exit> {
    repl_creds::resolve(
        a.passwords.repl_password_file.as_deref(),
        config.master_addr(),
        &a.repl_user,
    )
    .map_err(usage)
}

/// The replication settings of `amsu setup` and `amsu restore --start-replication`,
/// from their flags (the password is added by [`with_repl_password`]).
pub(crate) fn replication_settings(
    repl_user: &str,
    master_host_for_replica: Option<String>,
    tls: &args::ReplTlsArgs,
    gtid: bool,
    journal: Option<std::path::PathBuf>,
) -> ReplicationSettings {
    ReplicationSettings::new()
        .repl_user(repl_user)
        .master_host_for_replica(master_host_for_replica)
        .tls(tls.tls())
        .positioning(if gtid {
            Positioning::Gtid
        } else {
            Positioning::FilePosition
        })
        .journal(journal)
}

/// `settings` with the replication password `pw` found.
pub(crate) fn with_repl_password(
    settings: ReplicationSettings,
    pw: &repl_creds::ReplPassword,
) -> ReplicationSettings {
    settings
        .repl_password(pw.given.clone())
        .new_repl_password(pw.generated.clone())
}

async fn setup(mut a: SetupArgs) -> Result<i32, Exit> {
    interrupt::install();
    let auto = a.method == args::Method::Auto;
    let (method, mut why) = a.resolved_method();
    a.method = method;
    let config = SetupConfig::try_from(&a)?;
    let repl_pw = repl_password(&a, &config)?;
    let replication = with_repl_password(config.replication_settings().clone(), &repl_pw);
    let mut config = config.replication(replication);
    let renderer = Arc::new(Renderer::new(a.json));
    let provision = |config: SetupConfig| {
        Provision::new(config, renderer.clone()).with_cancellation(interrupt::token())
    };
    let mut p = provision(config.clone());
    if auto && a.method == args::Method::Physical {
        // Auto picks physical only where it can copy this master: its own preflight
        // (read-only) decides, else the logical method, which copies everything.
        if let Some(problem) = p.physical_obstacle().await {
            a.method = args::Method::Logical;
            config = config.method(image_cmd::copy_method(&a)?);
            p = provision(config.clone());
            why = "the physical method cannot copy this master";
            if !a.json {
                errln!("physical is not possible here: {problem}");
            }
        }
    }
    if auto && !a.json {
        errln!(
            "method: {} ({why})",
            format!("{:?}", a.method).to_lowercase()
        );
    }
    let master = config.master_addr().clone();
    let interactive = std::io::stdin().is_terminal() && !a.json;
    if !a.dry_run && !a.yes && !interactive {
        return Err(usage(anyhow!(
            "amsu setup changes both servers; pass --yes to confirm (or --dry-run to see the plan)"
        )));
    }
    // The checks run once: the plan they make is the plan shown and the plan run.
    let checked = match p.check(&*renderer).await {
        Ok(c) => c,
        Err(e) => return Ok(report_error(&e, a.json)),
    };
    if a.dry_run {
        outln!("{}", dry_run_text(&p, &checked, a.json));
        if a.json {
            json::emit(json::Body::Result {
                command: json::CommandName::Setup,
                ok: true,
                exit_code: exit::OK,
                dry_run: true,
            });
        }
        return Ok(exit::OK);
    }
    if !a.yes {
        out!("{}", plan_view(&p, &checked));
        out!("Proceed? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            errln!("Nothing was changed.");
            return Ok(exit::USAGE);
        }
    }
    let sink: Arc<dyn EventSink> = renderer.clone();
    if let Some(path) = &repl_pw.from_saved {
        errln!(
            "Using the replication password of '{}' saved in {}.",
            a.repl_user,
            path.display()
        );
    }
    let result = p.execute(checked, sink).await;
    renderer.finish();
    // Past the checks, the password may be the replication user's now: keep it.
    if !matches!(&result, Err(FacadeError::Setup(e)) if exit::of(e) == exit::PRECONDITION) {
        repl_creds::save_and_say(&repl_pw, &master, p.master(), a.json).await;
    }
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(FacadeError::Setup(e)) => {
            let code = report_error(&e, a.json);
            interrupt::explain(&e, &p.journal_path(), a.json);
            return Ok(code);
        }
        Err(e) => return Err(Exit(exit::FAILED, e.into())),
    };
    print_report(&outcome.report, a.json);
    if let Some((path, c)) = &outcome.replica_config {
        say_replica_config(path, c, a.json);
    }
    durable::report_runtime_only(outcome.runtime_only.as_ref(), None, a.json);
    let code = match &outcome.verify {
        Some(v) => {
            out!("{}", verify_cmd::render(v, a.json));
            if v.equal() {
                exit::OK
            } else {
                exit::FAILED
            }
        }
        None => exit::OK,
    };
    Ok(finish(json::CommandName::Setup, a.json, code))
}

/// With `json`, the closing `result` line; returns `code`.
fn finish(command: json::CommandName, json: bool, code: i32) -> i32 {
    if json {
        json::emit(json::Body::Result {
            command,
            ok: code == exit::OK,
            exit_code: code,
            dry_run: false,
        });
    }
    code
}

/// `--replica-config-file`: says where the replica's option file was written.
fn say_replica_config(
    path: &std::path::Path,
    c: &amsu_mysql::replica_config::ReplicaConfig,
    json: bool,
) {
    if json {
        json::emit(json::Body::ReplicaConfigFile {
            path: path.display().to_string(),
        });
    } else {
        outln!(
            "Wrote the replica's settings to {p}. Include it in the replica's option file (add `!include {p}` to its my.cnf) so that server_id, read_only and {} survive a restart.",
            c.dialect.skip_replica_start_variable(),
            p = path.display()
        );
    }
}

fn report_error(e: &SetupError, json: bool) -> i32 {
    report_error_of(json::CommandName::Setup, e, json)
}

/// Reports the failed setup plan `e` of `command` (the findings, or the error with its
/// step and server); returns the exit code.
pub(crate) fn report_error_of(command: json::CommandName, e: &SetupError, json: bool) -> i32 {
    let first: &(dyn std::error::Error + 'static) = e;
    let chain = std::iter::successors(Some(first), |e| e.source());
    let message = chain_message(chain);
    let remedy = secrets::remedy(&message);
    if json && !output::stdout_closed() {
        json::emit(json::Body::Error {
            command,
            error: error_json(exit::of(e), first, Some(e), command, remedy),
        });
    } else {
        errln!("{}", error_text(e, &message, remedy.as_deref()));
    }
    exit::of(e)
}

/// A failed setup plan as text: the blocking findings, or the error `message` with the
/// `remedy` hint.
fn error_text(e: &SetupError, message: &str, remedy: Option<&str>) -> String {
    if let SetupError::Preconditions(findings) = e {
        let mut out = format!(
            "{} preflight check failed; nothing was changed on either server:",
            style::error_label()
        );
        for f in findings.iter().filter(|f| f.severity == Severity::Blocking) {
            out.push_str(&format!(
                "\n  - {}: {}\n    fix: {}{}",
                f.server,
                f.problem,
                f.fix,
                hint(f)
            ));
        }
        return out;
    }
    let mut out = format!("{} {message}", style::error_label());
    if let Some(r) = remedy {
        out.push_str(&format!("\n  hint: {r}"));
    }
    out
}

fn print_report(r: &SetupReport, json: bool) {
    if json {
        json::emit(json::Body::Report {
            report: json::value(r),
        });
        return;
    }
    if r.already_done {
        outln!("This replica was already set up by an earlier run and is replicating; nothing was changed.");
        return;
    }
    if r.resumed {
        outln!("Resumed an interrupted earlier run from its journal.");
    }
    outln!("{}", style::success("Replica set up and replicating."));
    outln!(
        "  master {} ({} {}), server_id {}",
        r.master.version_string,
        r.master.flavor,
        r.master.version,
        r.master.server_id
    );
    if let Some(c) = &r.copy.coordinates {
        outln!("  snapshot coordinates: {c}");
    }
    outln!(
        "  copied {} databases, {} tables, {} rows ({}), {} objects, {} accounts",
        r.copy.databases,
        r.copy.tables,
        r.copy.rows,
        amsu_core::human::bytes(r.copy.bytes),
        r.copy.objects,
        r.copy.accounts
    );
    outln!(
        "  master commits blocked for {:.1} ms",
        r.copy.commit_blocked_ms
    );
    if let Some(c) = &r.caught_up_to {
        outln!("  caught up to {c}");
    }
    if !r.master_changes.is_empty() {
        outln!("  changes on the master:");
        for c in &r.master_changes {
            outln!("    - {c}");
        }
    }
}

async fn check(a: CheckArgs) -> Result<i32, Exit> {
    let master = master_addr(&a.master, &a.passwords)?;
    let admin = admin_addr(a.admin_user.as_ref(), &master, &a.passwords)?;
    // Progress goes to stderr as text (stdout holds the report, one JSON document with
    // --json).
    let progress: Arc<dyn EventSink> = Arc::new(Renderer::new(false));
    let found = match &a.replica {
        Some(url) => {
            // The same checks as `amsu setup` with these servers and this user.
            let replica = replica_addr(url, &a.passwords)?;
            let repl_pw = repl_creds::resolve(
                a.passwords.repl_password_file.as_deref(),
                &master,
                &a.repl_user,
            )
            .map_err(usage)?;
            let config = SetupConfig::new(master.clone(), replica)
                .admin(admin)
                .replication(
                    ReplicationSettings::new()
                        .repl_user(a.repl_user.clone())
                        .repl_password(repl_pw.given.clone()),
                )
                .without_journal();
            amsu_backup::check_report(&config, progress).await
        }
        None => amsu_backup::check_master(&master, admin, &a.repl_user, progress).await,
    };
    let amsu_backup::CheckReport {
        master: minfo,
        findings,
        ..
    } = found.map_err(|e| Exit(exit::PRECONDITION, e.into()))?;
    let blocking = findings.iter().any(|f| f.severity == Severity::Blocking);
    let code = if blocking {
        exit::PRECONDITION
    } else {
        exit::OK
    };
    if a.json {
        json::emit(json::Body::Preflight {
            master: json::value(&minfo),
            findings: json::findings(&findings),
        });
        return Ok(finish(json::CommandName::Check, true, code));
    } else {
        outln!(
            "master: {} {} (server_id {}, log_bin {}, binlog_format {})",
            minfo.flavor,
            minfo.version_string,
            minfo.server_id,
            minfo.log_bin,
            minfo.binlog_format
        );
        if findings.is_empty() {
            outln!("No problems found.");
        }
        print_findings_by_severity(&findings);
    }
    Ok(code)
}

async fn sandbox_cmd(a: SandboxArgs) -> Result<i32, Exit> {
    let home = a.home.clone().unwrap_or_else(sandbox::default_base_dir);
    match a.action {
        SandboxAction::Deploy {
            name,
            server_id,
            no_log_bin,
            binlog_format,
            server_options,
        } => {
            std::fs::create_dir_all(&home)
                .with_context(|| format!("cannot create {}", home.display()))
                .map_err(usage)?;
            let opts = SandboxOptions::new(name)
                .base_dir(home)
                .server_id(server_id)
                .log_bin(!no_log_bin)
                .binlog_format(binlog_format)
                .extra_options(server_options)
                .detached(true);
            let sb = sandbox::Sandbox::deploy(opts)
                .await
                .map_err(|e| Exit(exit::FAILED, e.into()))?;
            let info = sb.keep();
            outln!("{} running: {}  (pid {})", info.name, info.url(), info.pid);
            Ok(exit::OK)
        }
        SandboxAction::Stop { name, remove } => {
            sandbox::stop_by_name(&home, &name, remove)
                .await
                .map_err(|e| Exit(exit::FAILED, e.into()))?;
            outln!("{name} stopped{}", if remove { " and removed" } else { "" });
            Ok(exit::OK)
        }
        SandboxAction::List => {
            let list = sandbox::list(&home).map_err(|e| Exit(exit::FAILED, e.into()))?;
            if list.is_empty() {
                outln!("no sandboxes in {}", home.display());
            }
            for i in list {
                outln!(
                    "{:<16} {:<32} server_id {:<6} {}",
                    i.name,
                    i.url(),
                    i.server_id,
                    if i.is_running() { "running" } else { "stopped" }
                );
            }
            Ok(exit::OK)
        }
    }
}

#[cfg(test)]
mod tests {
    use amsu_core::{AdapterError, ErrorKind, Role, Step};

    use super::*;

    fn failed(source: amsu_core::BoxError) -> SetupError {
        SetupError::Failed {
            step: Step::ConfigureReplica,
            server: Role::Replica,
            source,
            state: "what was changed".into(),
        }
    }

    #[test]
    fn the_json_error_takes_kind_and_errno_from_the_library() {
        let refused = AdapterError::new(ErrorKind::Server { errno: 1227 }, "need SUPER");
        let e = failed(Box::new(refused));
        let j = error_json(exit::of(&e), &e, Some(&e), json::CommandName::Setup, None);
        assert_eq!(j.exit_code, exit::FAILED);
        assert_eq!(j.kind, json::ErrorKind::Failed);
        assert_eq!(j.server_error, Some(1227));
        assert_eq!(j.cause.as_deref(), Some("server"));
        assert_eq!(j.step.as_deref(), Some("configure_replica"));
        assert!(j.message.contains("need SUPER"), "{}", j.message);

        let e = failed(Box::new(AdapterError::new(ErrorKind::Cancelled, "stop")));
        let j = error_json(exit::of(&e), &e, Some(&e), json::CommandName::Setup, None);
        assert_eq!(j.kind, json::ErrorKind::Interrupted);
        assert_eq!(j.cause.as_deref(), Some("cancelled"));

        let e = SetupError::Preconditions(vec![]);
        assert_eq!(exit::of(&e), exit::PRECONDITION);
        let j = error_json(exit::of(&e), &e, Some(&e), json::CommandName::Setup, None);
        assert_eq!(j.kind, json::ErrorKind::Precondition);
        assert_eq!(j.cause.as_deref(), Some("precondition"));

        // A CLI-level error (no setup): the chain still gives the errno.
        let denied =
            AdapterError::new(ErrorKind::Authentication, "Access denied").with_errno(Some(1045));
        let any = anyhow::Error::new(denied).context("status of db2");
        let first: &(dyn std::error::Error + 'static) = any.as_ref();
        let j = error_json(exit::FAILED, first, None, json::CommandName::Status, None);
        assert_eq!(j.server_error, Some(1045));
        assert_eq!(j.cause.as_deref(), Some("authentication"));
        assert_eq!(j.kind, json::ErrorKind::Unreachable);
    }
}
