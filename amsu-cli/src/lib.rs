//! The `amsu` command line: argument parsing, secrets input, progress display and exit
//! codes. It wires the library crates together; no library type depends on it.

#![deny(missing_docs)]

mod args;
mod demo;
mod image_cmd;
mod journal;
mod physical;
mod render;
mod secrets;

use std::io::{IsTerminal, Write};
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
use args::{CheckArgs, Command, SandboxAction, SandboxArgs, SetupArgs, StatusArgs, VerifyArgs};
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
    let r = match cli.command {
        Command::Setup(a) => setup(a).await,
        Command::Check(a) => check(a).await,
        Command::Status(a) => status(a).await,
        Command::Verify(a) => verify(a).await,
        Command::Backup(a) => image_cmd::backup(a).await,
        Command::Restore(a) => image_cmd::restore(a).await,
        Command::Sandbox(a) => sandbox_cmd(a).await,
        Command::Demo(a) => demo::run(a).await,
    };
    match r {
        Ok(code) => code,
        Err(Exit(code, e)) => {
            eprintln!("error: {}", chain_message(e.chain()));
            code
        }
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
fn plan_json(c: &amsu_core::Checked) -> Vec<serde_json::Value> {
    let dm = Dialect::new(c.master.flavor, c.master.version);
    let dr = Dialect::new(c.replica.flavor, c.replica.version);
    c.plan
        .iter()
        .map(|a| {
            serde_json::json!({
                "step": a.step(),
                "server": a.server(),
                "action": a,
                "statements": amsu_mysql::plan_sql::statements(a, &dm, &dr),
            })
        })
        .collect()
}

fn print_plan(c: &amsu_core::Checked, master: &ServerAddr, replica: &ServerAddr) {
    println!("Plan: make {replica} a replica of {master}");
    let dm = Dialect::new(c.master.flavor, c.master.version);
    let dr = Dialect::new(c.replica.flavor, c.replica.version);
    for (i, a) in c.plan.iter().enumerate() {
        println!(
            "  {}. {} on the {}: {}",
            i + 1,
            a.step(),
            a.server(),
            a.step().describe()
        );
        for sql in amsu_mysql::plan_sql::statements(a, &dm, &dr) {
            println!("       {sql}");
        }
    }
}

fn print_findings(findings: &[amsu_core::Finding]) {
    for f in findings {
        println!(
            "[{}] {} ({}): {}\n    fix: {}",
            f.severity, f.server, f.code, f.problem, f.fix
        );
    }
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
        println!("{title} ({}):", group.len());
        for f in group {
            println!(
                "  - {} [{}]: {}\n    fix: {}",
                f.server, f.code, f.problem, f.fix
            );
        }
    }
}

async fn setup(a: SetupArgs) -> Result<i32, Exit> {
    let master = master_addr(&a.master, &a.passwords)?;
    let replica = replica_addr(&a.replica, &a.passwords)?;
    let copier = image_cmd::Copier::from_args(&a, &master, &replica)?;
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
    let repl_password = secrets::password(
        a.passwords.repl_password_file.as_deref(),
        "AMSU_REPL_PASSWORD",
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
                args::Method::Logical => StepKind::LogicalSnapshot,
                args::Method::Outfile => StepKind::OutfileSnapshot,
                args::Method::Physical => StepKind::PhysicalBackup,
            },
        });
    let opts = SetupOptions::new(
        a.master_host_for_replica
            .clone()
            .unwrap_or_else(|| master.host.clone()),
        master.port,
    )
    .repl_user(a.repl_user.clone())
    .repl_password(repl_password)
    .force(a.force)
    .wait_caught_up(a.wait_caught_up || a.verify)
    .replica_id(format!("{}:{}", replica.host, replica.port))
    .catch_up_timeout(Duration::from_secs(a.catch_up_timeout))
    .tls(a.repl_tls.tls())
    .positioning(if a.gtid {
        Positioning::Gtid
    } else {
        Positioning::FilePosition
    });
    let journal = journal::FileJournal::new(
        a.journal
            .clone()
            .unwrap_or_else(|| journal::default_path(&replica)),
    );
    let mut setup = Setup::new(&m, &r, copier.copier(), opts)
        .with_journal(&journal)
        .with_preflight(&checks);
    if let Some(p) = copier.preflight() {
        setup = setup.with_preflight(p);
    }

    if a.dry_run {
        return match setup.check(&*renderer).await {
            Ok(c) => {
                if a.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "dry_run": true,
                            "ok": true,
                            "findings": c.findings,
                            "plan": plan_json(&c),
                        })
                    );
                } else {
                    print_findings(&c.findings);
                    print_plan(&c, &master, &replica);
                    println!("Dry run: all checks passed and nothing was changed; run without --dry-run to set the replica up.");
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
            print!("Proceed? [y/N] ");
            let _ = std::io::stdout().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                eprintln!("Nothing was changed.");
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
    let result = setup.run(sink).await;
    renderer.finish();
    if let Some(plan) = &retention {
        restore_binlog_retention(admin.as_ref().unwrap_or(&master), plan, a.json).await;
    }
    let report = match result {
        Ok(report) => report,
        Err(e) => return Ok(report_error(&e, a.json)),
    };
    print_report(&report, a.json);
    if let Some(path) = &a.replica_config_file {
        write_replica_config(path, &replica, a.report_host.clone(), a.json).await?;
    }
    if a.verify {
        let outcome =
            amsu_mysql::verify::verify(&master, &replica, Duration::from_secs(a.catch_up_timeout))
                .await
                .map_err(|e| Exit(exit::FAILED, anyhow!("verify: {e}")))?;
        print_verify(&outcome, a.json);
        if !outcome.differences.is_empty() {
            return Ok(exit::FAILED);
        }
    }
    Ok(exit::OK)
}

/// Puts back the retention `--protect-binlogs` raised, and says what was done.
async fn restore_binlog_retention(admin: &ServerAddr, plan: &RetentionPlan, json: bool) {
    let restored = amsu_mysql::checks::restore_retention(admin, plan).await;
    if json {
        println!(
            "{}",
            serde_json::json!({"binlog_retention": {
                "variable": plan.variable,
                "original": plan.original,
                "raised": plan.raised,
                "restored": restored.is_ok(),
            }})
        );
    }
    match restored {
        Ok(()) if !json => eprintln!(
            "--protect-binlogs: {} on the master for the setup, and set back to {} afterwards.",
            plan, plan.original
        ),
        Ok(()) => {}
        Err(e) => eprintln!(
            "warning: --protect-binlogs: {plan} on the master for the setup, but restoring it failed ({e}); run `{}` on the master.",
            plan.restore_sql()
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
        println!(
            "{}",
            serde_json::json!({"replica_config_file": path.display().to_string()})
        );
    } else {
        println!(
            "Wrote the replica's settings to {p}. Include it in the replica's option file (add `!include {p}` to its my.cnf) so that server_id, read_only and {} survive a restart.",
            c.dialect.skip_replica_start_variable(),
            p = path.display()
        );
    }
    Ok(())
}

fn print_verify(outcome: &amsu_mysql::verify::VerifyOutcome, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"verify": outcome, "equal": outcome.differences.is_empty()})
        );
        return;
    }
    println!(
        "verified {} tables at {}: {}",
        outcome.tables,
        outcome.position,
        if outcome.differences.is_empty() {
            "master and replica data are equal".to_string()
        } else {
            format!("{} tables DIFFER", outcome.differences.len())
        }
    );
    for d in &outcome.differences {
        let range = d
            .key_range
            .as_ref()
            .map(|(k, from, to)| format!(" where {from} <= {k} < {to}"))
            .unwrap_or_default();
        println!(
            "  DIFFERENT {}{range}: master {:?}, replica {:?}",
            d.table, d.master, d.replica
        );
    }
}

fn report_error(e: &SetupError, json: bool) -> i32 {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": false,
                "exit_code": e.exit_code(),
                "error": e.to_string(),
                "findings": e.findings(),
            })
        );
    } else {
        let first: &(dyn std::error::Error + 'static) = e;
        let chain = std::iter::successors(Some(first), |e| e.source());
        eprintln!("error: {}", chain_message(chain));
    }
    e.exit_code()
}

fn print_report(r: &SetupReport, json: bool) {
    if json {
        println!("{}", serde_json::json!({"ok": true, "report": r}));
        return;
    }
    if r.already_done {
        println!("This replica was already set up by an earlier run and is replicating; nothing was changed.");
        return;
    }
    if r.resumed {
        println!("Resumed an interrupted earlier run from its journal.");
    }
    println!("Replica set up and replicating.");
    println!(
        "  master {} ({} {}), server_id {}",
        r.master.version_string, r.master.flavor, r.master.version, r.master.server_id
    );
    if let Some(c) = &r.copy.coordinates {
        println!("  snapshot coordinates: {c}");
    }
    println!(
        "  copied {} databases, {} tables, {} rows ({:.1} MiB), {} objects, {} accounts",
        r.copy.databases,
        r.copy.tables,
        r.copy.rows,
        r.copy.bytes as f64 / 1048576.0,
        r.copy.objects,
        r.copy.accounts
    );
    println!(
        "  master commits blocked for {:.1} ms",
        r.copy.commit_blocked_ms
    );
    if let Some(c) = &r.caught_up_to {
        println!("  caught up to {c}");
    }
    if !r.master_changes.is_empty() {
        println!("  changes on the master:");
        for c in &r.master_changes {
            println!("    - {c}");
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
        .map_err(|e| anyhow!("master {master}: {e}"))?;
    if let Some(replica) = replica {
        let r = MysqlReplica::new(replica.clone());
        let rinfo = r
            .probe()
            .await
            .map_err(|e| anyhow!("replica {replica}: {e}"))?;
        let st = r
            .replication_status()
            .await
            .map_err(|e| anyhow!("replica {replica}: {e}"))?;
        let dbs = r
            .user_databases()
            .await
            .map_err(|e| anyhow!("replica {replica}: {e}"))?;
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
    if a.json {
        println!(
            "{}",
            serde_json::json!({"ok": !blocking, "master": minfo, "findings": findings})
        );
    } else {
        println!(
            "master: {} {} (server_id {}, log_bin {}, binlog_format {})",
            minfo.flavor, minfo.version_string, minfo.server_id, minfo.log_bin, minfo.binlog_format
        );
        if findings.is_empty() {
            println!("No problems found.");
        }
        print_findings_by_severity(&findings);
    }
    Ok(if blocking {
        exit::PRECONDITION
    } else {
        exit::OK
    })
}

async fn status(a: StatusArgs) -> Result<i32, Exit> {
    let replica = replica_addr(&a.replica, &a.passwords)?;
    let r = MysqlReplica::new(replica.clone());
    let st = r
        .replication_status()
        .await
        .map_err(|e| Exit(exit::FAILED, anyhow!("{e}")))?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "replica": replica.to_string(), "replication": st })
        );
        return Ok(exit::OK);
    }
    match st {
        None => println!("{replica} is not configured as a replica."),
        Some(s) => {
            println!(
                "{replica} replicates from {}:{}",
                s.master_host, s.master_port
            );
            println!(
                "  IO thread: {}, SQL thread: {}",
                if s.io_running { "running" } else { "stopped" },
                if s.sql_running { "running" } else { "stopped" }
            );
            println!(
                "  executed up to {}:{}, {} s behind",
                s.exec_file,
                s.exec_position,
                s.seconds_behind.map_or("?".into(), |v| v.to_string())
            );
            if !s.last_io_error.is_empty() {
                println!("  Last_IO_Error: {}", s.last_io_error);
            }
            if !s.last_sql_error.is_empty() {
                println!("  Last_SQL_Error: {}", s.last_sql_error);
            }
        }
    }
    Ok(exit::OK)
}

async fn verify(a: VerifyArgs) -> Result<i32, Exit> {
    let master = master_addr(&a.master, &a.passwords)?;
    let replica = replica_addr(&a.replica, &a.passwords)?;
    let outcome = amsu_mysql::verify::verify(&master, &replica, Duration::from_secs(a.timeout))
        .await
        .map_err(|e| Exit(exit::FAILED, anyhow!("{e}")))?;
    print_verify(&outcome, a.json);
    Ok(if outcome.differences.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
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
            println!("{} running: {}  (pid {})", info.name, info.url(), info.pid);
            Ok(exit::OK)
        }
        SandboxAction::Stop { name, remove } => {
            sandbox::stop_by_name(&home, &name, remove)
                .await
                .map_err(|e| Exit(exit::FAILED, e.into()))?;
            println!("{name} stopped{}", if remove { " and removed" } else { "" });
            Ok(exit::OK)
        }
        SandboxAction::List => {
            let list = sandbox::list(&home).map_err(|e| Exit(exit::FAILED, e.into()))?;
            if list.is_empty() {
                println!("no sandboxes in {}", home.display());
            }
            for i in list {
                println!(
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
