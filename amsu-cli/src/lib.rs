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
mod journal;
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

use amsu_core::{
    preflight_master, Error as SetupError, EventSink, MasterServer, Positioning, ReplicaServer,
    ServerAddr, Setup, SetupOptions, SetupReport, Severity,
};
use amsu_mysql::checks::{CheckOptions, MysqlPreflight, RetentionPlan};
use amsu_mysql::dialect::Dialect;
use amsu_mysql::grants::StepKind;
use amsu_mysql::sandbox::{self, SandboxOptions};
use amsu_mysql::{MysqlMaster, MysqlReplica};
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
}

/// A CLI-level error with its exit code.
#[derive(Debug)]
struct Exit(i32, anyhow::Error);

fn usage(e: impl Into<anyhow::Error>) -> Exit {
    Exit(exit::USAGE, e.into())
}

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    init_logging(cli.verbose);
    let json = cli.command.json();
    let r = match cli.command {
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
    let server_error = chain().find_map(|e| match e.downcast_ref::<mysql_async::Error>() {
        Some(mysql_async::Error::Server(se)) => Some(se.code),
        _ => None,
    });
    let (step, server) = match setup {
        Some(SetupError::Unchanged { step, server, .. })
        | Some(SetupError::Failed { step, server, .. }) => {
            (Some(step.to_string()), Some((*server).into()))
        }
        _ => (None, None),
    };
    let kind = if setup.is_some_and(|s| s.is_interrupted()) {
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
fn plan_json(c: &amsu_core::Checked) -> Vec<json::PlanStep> {
    let dm = Dialect::new(c.master.flavor, c.master.version);
    let dr = Dialect::new(c.replica.flavor, c.replica.version);
    c.plan
        .iter()
        .map(|a| json::PlanStep {
            step: a.step().to_string(),
            server: a.server().into(),
            action: json::value(a),
            statements: amsu_mysql::plan_sql::statements(a, &dm, &dr),
        })
        .collect()
}

fn print_plan(c: &amsu_core::Checked, master: &ServerAddr, replica: &ServerAddr) {
    outln!("Plan: make {replica} a replica of {master}");
    let dm = Dialect::new(c.master.flavor, c.master.version);
    let dr = Dialect::new(c.replica.flavor, c.replica.version);
    for (i, a) in c.plan.iter().enumerate() {
        outln!(
            "  {}. {} on the {}: {}",
            i + 1,
            a.step(),
            a.server(),
            a.step().describe()
        );
        for sql in amsu_mysql::plan_sql::statements(a, &dm, &dr) {
            outln!("       {sql}");
        }
    }
}

fn print_findings(findings: &[amsu_core::Finding]) {
    for f in findings {
        outln!(
            "{} {} ({}): {}\n    fix: {}{}",
            style::severity(f.severity),
            f.server,
            f.code,
            f.problem,
            f.fix,
            hint(&f.code)
        );
    }
}

/// The CLI's flag for a finding, as a suffix of its fix.
fn hint(code: &str) -> String {
    remedy::hint_for(code)
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
                hint(&f.code)
            );
        }
    }
}

/// Findings of the physical preflight that mean the physical method cannot copy this
/// master (exactly) from here, while a logical method can: `--method auto` falls back.
const PHYSICAL_CANNOT: &[&str] = &[
    "physical_identifier",
    "physical_version_mismatch",
    "backup_tool_missing",
    "backup_tool_version",
    "master_not_local",
];

async fn setup(mut a: SetupArgs) -> Result<i32, Exit> {
    interrupt::install();
    let auto = a.method == args::Method::Auto;
    let (method, mut why) = a.resolved_method();
    a.method = method;
    let master = master_addr(&a.master, &a.passwords)?;
    let replica = replica_addr(&a.replica[0], &a.passwords)?;
    let mut copier = image_cmd::Copier::from_args(&a, &master, &replica)?;
    if auto && a.method == args::Method::Physical {
        // Auto picks physical only where it can copy this master: its own preflight
        // (read-only) decides, else the logical method, which copies everything.
        let cannot = match copier.preflight() {
            Some(p) => p
                .findings()
                .await
                .map(|f| {
                    f.into_iter()
                        .filter(|f| {
                            f.severity == Severity::Blocking
                                && PHYSICAL_CANNOT.contains(&f.code.as_str())
                        })
                        .map(|f| f.problem)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
            None => vec![],
        };
        if let Some(problem) = cannot.first() {
            a.method = args::Method::Logical;
            copier = image_cmd::Copier::from_args(&a, &master, &replica)?;
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
    let admin = match &a.admin_user {
        Some(u) => Some(
            master.clone().user(u.clone()).password(
                secrets::password(
                    a.passwords.admin_password_file.as_deref(),
                    "AMSU_ADMIN_PASSWORD",
                )
                .map_err(usage)?,
            ),
        ),
        None => None,
    };
    let repl_pw = repl_creds::resolve(
        a.passwords.repl_password_file.as_deref(),
        &master,
        &a.repl_user,
    )
    .map_err(usage)?;
    let mut m = MysqlMaster::new(master.clone());
    if let Some(admin) = admin.clone() {
        m = m.with_admin(admin);
    }
    let r = MysqlReplica::new(replica.clone());
    let renderer = Arc::new(Renderer::new(a.json));
    let checks = MysqlPreflight::new(master.clone())
        .events(renderer.clone())
        .admin(admin.clone())
        .replica(Some(replica.clone()))
        .options(CheckOptions {
            force: a.force,
            protect_binlogs: a.protect_binlogs,
            repl_user: a.repl_user.clone(),
            snapshot: match a.method {
                args::Method::Logical | args::Method::Auto => StepKind::LogicalSnapshot,
                args::Method::Outfile => StepKind::OutfileSnapshot,
                args::Method::Physical => StepKind::PhysicalBackup,
            },
            ..CheckOptions::default()
        });
    let opts = SetupOptions::new(
        a.master_host_for_replica
            .clone()
            .unwrap_or_else(|| master.host.clone()),
        master.port,
    )
    .repl_user(a.repl_user.clone())
    .repl_password(repl_pw.given.clone())
    .new_repl_password(repl_pw.generated.clone())
    .force(a.force)
    .fast_load(!a.no_fast_load)
    .resize_redo_log(a.resize_redo_log)
    .wait_caught_up(a.wait_caught_up || a.verify)
    .replica_id(format!("{}:{}", replica.host, replica.port))
    .catch_up_timeout(Duration::from_secs(a.catch_up_timeout))
    .tls(a.repl_tls.tls())
    .positioning(if a.gtid {
        Positioning::Gtid
    } else {
        Positioning::FilePosition
    });
    let journal_path = a
        .journal
        .clone()
        .unwrap_or_else(|| journal::default_path(&replica));
    let journal = journal::FileJournal::new(journal_path.clone());
    let mut setup = Setup::new(&m, &r, copier.copier(), opts)
        .with_journal(&journal)
        .with_cancellation(interrupt::token())
        .with_preflight(&checks);
    if let Some(p) = copier.preflight() {
        setup = setup.with_preflight(p);
    }

    if a.dry_run {
        return match setup.check(&*renderer).await {
            Ok(c) => {
                if a.json {
                    json::emit(json::Body::Plan {
                        findings: json::findings(&c.findings),
                        steps: plan_json(&c),
                    });
                    json::emit(json::Body::Result {
                        command: json::CommandName::Setup,
                        ok: true,
                        exit_code: exit::OK,
                        dry_run: true,
                    });
                } else {
                    print_findings(&c.findings);
                    print_plan(&c, &master, &replica);
                    outln!("Dry run: all checks passed and nothing was changed; run without --dry-run to set the replica up.");
                }
                Ok(exit::OK)
            }
            Err(e) => Ok(report_error(&e, a.json)),
        };
    }
    if !a.yes {
        if std::io::stdin().is_terminal() && !a.json {
            let c = match setup.check(&*renderer).await {
                Ok(c) => c,
                Err(e) => return Ok(report_error(&e, a.json)),
            };
            print_findings(&c.findings);
            print_plan(&c, &master, &replica);
            out!("Proceed? [y/N] ");
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                errln!("Nothing was changed.");
                return Ok(exit::USAGE);
            }
        } else {
            return Err(usage(anyhow!(
                "amsu setup changes both servers; pass --yes to confirm (or --dry-run to see the plan)"
            )));
        }
    }
    let mut retention = None;
    if a.protect_binlogs {
        // Every check first: nothing changes while a blocking finding stands.
        if let Err(e) = setup.check(&amsu_core::NoEvents).await {
            return Ok(report_error(&e, a.json));
        }
        if let Some(plan) = checks.retention_plan() {
            amsu_mysql::checks::raise_retention(admin.as_ref().unwrap_or(&master), &plan)
                .await
                .map_err(|e| {
                    Exit(
                        exit::PRECONDITION,
                        anyhow!("raising the binary log retention (--protect-binlogs): {e}"),
                    )
                })?;
            retention = Some(plan);
        }
    }
    let sink: Arc<dyn EventSink> = renderer.clone();
    if let Some(p) = &repl_pw.from_saved {
        errln!(
            "Using the replication password of '{}' saved in {}.",
            a.repl_user,
            p.display()
        );
    }
    let result = setup.run(sink).await;
    renderer.finish();
    if let Some(plan) = &retention {
        restore_binlog_retention(admin.as_ref().unwrap_or(&master), plan, a.json).await;
    }
    // Past the checks, the password may be the replication user's now: keep it.
    if !matches!(&result, Err(e) if e.exit_code() == exit::PRECONDITION) {
        repl_creds::save_and_say(&repl_pw, &master, &m, a.json).await;
    }
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let code = report_error(&e, a.json);
            interrupt::explain(&e, &journal_path, a.json);
            return Ok(code);
        }
    };
    print_report(&report, a.json);
    match &a.replica_config_file {
        Some(path) => write_replica_config(path, &replica, a.report_host.clone(), a.json).await?,
        None => durable::report_runtime_only(&report, &replica, a.json).await,
    }
    if a.verify {
        let token = interrupt::token();
        let code = tokio::select! {
            biased;
            _ = token.cancelled() => Err(Exit(exit::FAILED, anyhow!(
                "interrupted during the verification: the replica is set up and replicating; run `amsu verify` to compare the data"
            ))),
            r = verify_cmd::compare(&master, &replica, a.catch_up_timeout, a.json, "verify: ") => r,
        }?;
        return Ok(finish(json::CommandName::Setup, a.json, code));
    }
    Ok(finish(json::CommandName::Setup, a.json, exit::OK))
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

/// Puts back the retention `--protect-binlogs` raised, and says what was done.
async fn restore_binlog_retention(admin: &ServerAddr, plan: &RetentionPlan, json: bool) {
    let restored = amsu_mysql::checks::restore_retention(admin, plan).await;
    if json {
        json::emit(json::Body::BinlogRetention {
            variable: plan.variable.to_string(),
            original: json::value(&plan.original),
            raised: json::value(&plan.raised),
            restored: restored.is_ok(),
        });
    }
    match restored {
        Ok(()) if !json => errln!(
            "--protect-binlogs: {} on the master for the setup, and set back to {} afterwards.",
            plan, plan.original
        ),
        Ok(()) => {}
        Err(e) => errln!(
            "{} --protect-binlogs: {plan} on the master for the setup, but restoring it failed ({e}); run `{}` on the master.",
            plan.restore_sql(),
            style::warning_label()
        ),
    }
}

/// `--replica-config-file`: the replica's settings as an option file to include.
async fn write_replica_config(
    path: &std::path::Path,
    replica: &ServerAddr,
    report_host: Option<String>,
    json: bool,
) -> Result<(), Exit> {
    let failed = |e: anyhow::Error| {
        Exit(
            exit::FAILED,
            e.context(format!(
                "the replica is set up and replicating, but its option file {} was not written; rerun with the same --replica-config-file after fixing this",
                path.display()
            )),
        )
    };
    let c = amsu_mysql::replica_config::read(replica, report_host)
        .await
        .map_err(|e| failed(e.into()))?;
    let text = amsu_mysql::replica_config::option_snippet(&c, &replica.to_string());
    std::fs::write(path, text)
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(failed)?;
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
    Ok(())
}

fn report_error(e: &SetupError, json: bool) -> i32 {
    let first: &(dyn std::error::Error + 'static) = e;
    let chain = std::iter::successors(Some(first), |e| e.source());
    let message = chain_message(chain);
    let remedy = secrets::remedy(&message);
    if json && !output::stdout_closed() {
        json::emit(json::Body::Error {
            command: json::CommandName::Setup,
            error: error_json(
                e.exit_code(),
                first,
                Some(e),
                json::CommandName::Setup,
                remedy,
            ),
        });
    } else if let SetupError::Preconditions(findings) = e {
        errln!(
            "{} preflight check failed; nothing was changed on either server:",
            style::error_label()
        );
        for f in findings.iter().filter(|f| f.severity == Severity::Blocking) {
            errln!(
                "  - {}: {}\n    fix: {}{}",
                f.server,
                f.problem,
                f.fix,
                hint(&f.code)
            );
        }
    } else {
        errln!("{} {message}", style::error_label());
        if let Some(r) = remedy {
            errln!("  hint: {r}");
        }
    }
    e.exit_code()
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
        "  copied {} databases, {} tables, {} rows ({:.1} MiB), {} objects, {} accounts",
        r.copy.databases,
        r.copy.tables,
        r.copy.rows,
        r.copy.bytes as f64 / 1048576.0,
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

/// Every finding of `amsu check`, as it prints them: the core checks (binary log, flavor,
/// version, replica state, server_id) and the MySQL preflight checks; changes nothing.
/// Errors: a server cannot be reached or read.
pub async fn check_findings(
    master: &ServerAddr,
    replica: Option<&ServerAddr>,
    admin: Option<ServerAddr>,
    repl_user: &str,
) -> Result<(amsu_core::ServerInfo, Vec<amsu_core::Finding>)> {
    check_findings_with(
        master,
        replica,
        admin,
        repl_user,
        Arc::new(amsu_core::NoEvents),
    )
    .await
}

/// [`check_findings`], telling `events` how the checks progress (the catalog read and
/// the number of tables found).
pub async fn check_findings_with(
    master: &ServerAddr,
    replica: Option<&ServerAddr>,
    admin: Option<ServerAddr>,
    repl_user: &str,
    events: Arc<dyn EventSink>,
) -> Result<(amsu_core::ServerInfo, Vec<amsu_core::Finding>)> {
    let m = MysqlMaster::new(master.clone());
    let mut findings = Vec::new();
    let minfo = m
        .probe()
        .await
        .map_err(|e| anyhow::Error::from_boxed(e).context(format!("master {master}")))?;
    if let Some(replica) = replica {
        let r = MysqlReplica::new(replica.clone());
        let rinfo = r
            .probe()
            .await
            .map_err(|e| anyhow::Error::from_boxed(e).context(format!("replica {replica}")))?;
        let st = r
            .replication_status()
            .await
            .map_err(|e| anyhow::Error::from_boxed(e).context(format!("replica {replica}")))?;
        let dbs = r
            .user_databases()
            .await
            .map_err(|e| anyhow::Error::from_boxed(e).context(format!("replica {replica}")))?;
        if let Some(f) = amsu_core::distinct_servers(&m, &r)
            .await
            .map_err(|e| anyhow::Error::from_boxed(e).context(format!("replica {replica}")))?
        {
            return Ok((minfo, vec![f]));
        }
        findings = amsu_core::preflight(&minfo, &rinfo, st.as_ref(), &dbs, false);
        let ids = amsu_core::server_id_fix(minfo.server_id, rinfo.server_id);
        if let Some(id) = ids.master {
            findings.push(amsu_core::Finding::warning(
                amsu_core::Role::Master,
                "server_id_zero",
                "the master's server_id is 0; amsu setup sets it",
                format!("SET GLOBAL server_id = {id} on the master, and `server_id = {id}` under [mysqld] in its option file"),
            ));
        }
        if let Some(id) = ids.replica {
            findings.push(amsu_core::Finding::warning(
                amsu_core::Role::Replica,
                "server_id_clash",
                format!(
                    "the replica's server_id {} is 0 or equal to the master's; amsu setup changes the replica's",
                    rinfo.server_id
                ),
                format!("SET GLOBAL server_id = {id} on the replica, and `server_id = {id}` under [mysqld] in its option file"),
            ));
        }
    } else {
        findings.extend(preflight_master(&minfo));
    }
    let checks = MysqlPreflight::new(master.clone())
        .events(events)
        .admin(admin)
        .replica(replica.cloned())
        .options(CheckOptions {
            repl_user: repl_user.to_string(),
            ..CheckOptions::default()
        });
    findings.extend(
        amsu_core::Preflight::findings(&checks)
            .await
            .map_err(|e| anyhow!("{e}"))?,
    );
    Ok((minfo, findings))
}

async fn check(a: CheckArgs) -> Result<i32, Exit> {
    let master = master_addr(&a.master, &a.passwords)?;
    let replica = match &a.replica {
        Some(url) => Some(replica_addr(url, &a.passwords)?),
        None => None,
    };
    let admin = match &a.admin_user {
        Some(u) => Some(
            master.clone().user(u.clone()).password(
                secrets::password(
                    a.passwords.admin_password_file.as_deref(),
                    "AMSU_ADMIN_PASSWORD",
                )
                .map_err(usage)?,
            ),
        ),
        None => None,
    };
    // Progress goes to stderr as text (stdout holds the report, one JSON document with
    // --json).
    let progress: Arc<dyn EventSink> = Arc::new(Renderer::new(false));
    let (minfo, findings) =
        check_findings_with(&master, replica.as_ref(), admin, &a.repl_user, progress)
            .await
            .map_err(|e| Exit(exit::PRECONDITION, e))?;
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
