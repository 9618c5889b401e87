//! Fan-out: `amsu setup --replica A --replica B …` and `amsu restore --replica A
//! --replica B …`.
//!
//! `setup` is the library's [`amsu_backup::fanout::fan_out`]: the master read once into a
//! spool image, then every replica set up from it in its own task of this process, each
//! with its own journal (the default journal path of that replica), its own progress
//! (every line tagged with the replica), its own verify and its own failure; this module
//! converts the arguments and renders the events. `restore` is the library's
//! [`amsu_backup::fanout_restore::fan_out_restore`] in the same way. A `--dry-run` runs
//! every replica's checks and plan ([`amsu_backup::Provision`]) in this process, all at
//! the same time, each shown as `setup --dry-run --replica R` shows it. One replica that
//! fails does not stop the others, and
//! rerunning the command for it alone resumes from its journal and the kept spool.

use std::collections::HashMap;
use std::sync::Arc;

use amsu_backup::fanout::{
    self, FanoutConfig, FanoutEvents, ReplicaOutcome, ReplicaRun, Spool, SpoolState,
};
use amsu_backup::fanout_restore::{self, RestoreFanoutConfig, RestoreFanoutEvents, RestoreRun};
use amsu_backup::RestoreFailure;
use amsu_backup::{CopyMethod, Provision, SetupConfig, SetupError as FacadeError};
use amsu_core::{Event, EventSink, MasterServer, Secret, ServerAddr};
use amsu_mysql::MysqlMaster;
use anyhow::anyhow;
use serde_json::Value;

use crate::args::{Method, RestoreArgs, SetupArgs};
use crate::image_cmd::shown;
use crate::render::Renderer;
use crate::{
    durable, exit, interrupt, json, master_addr, repl_creds, replica_addr, secrets, usage, Exit,
};

/// Whether `setup` runs as a fan-out: several `--replica`, or `--spool`.
pub(crate) fn wanted(a: &SetupArgs) -> bool {
    a.replica.len() > 1 || a.fanout.spool.is_some()
}

/// `amsu setup` with several `--replica` (or `--spool`).
pub(crate) async fn setup(a: SetupArgs) -> Result<i32, Exit> {
    let several = a.replica.len() > 1;
    if several && a.journal.is_some() {
        return Err(usage(anyhow!(
            "--journal names one replica's journal; with several --replica each replica has \
             its own default journal (in AMSU_JOURNAL_DIR or ~/.amsu/journal)"
        )));
    }
    if matches!(a.method, Method::Outfile | Method::Physical) {
        return Err(usage(anyhow!(
            "several --replica (or --spool) read the master once into a logical image; \
             --method {} seeds one replica per run",
            format!("{:?}", a.method).to_lowercase()
        )));
    }
    if a.ftp.is_some() {
        return Err(usage(anyhow!(
            "--ftp is not used with several --replica (the master is read into --spool)"
        )));
    }
    if a.passwords.ask_pass {
        return Err(usage(anyhow!(
            "--ask-pass asks once per process; with several --replica give the passwords \
             by environment or --…-password-file"
        )));
    }
    if !a.yes && !a.dry_run {
        return Err(usage(anyhow!(
            "amsu setup changes every replica and the master; pass --yes to confirm (or \
             --dry-run to see each replica's plan)"
        )));
    }
    let master = master_addr(&a.master, &a.passwords)?;
    let replicas = a
        .replica
        .iter()
        .map(|r| replica_addr(r, &a.passwords))
        .collect::<Result<Vec<_>, _>>()?;
    if a.dry_run {
        identity_checks(Some(&master), &replicas).await?;
        return dry_run(a, replicas).await;
    }
    interrupt::install();
    identity_checks(Some(&master), &replicas).await?;
    // The command that resumes one replica alone (None when amsu runs embedded).
    let argv = own_argv("setup", &a.replica);

    // Where the replicas are seeded from: the --image given, or the spool.
    let template = SetupConfig::try_from(&a)?;
    let image = match (&a.image, template.copy_method()) {
        (Some(_), CopyMethod::Image { source, key, .. }) => Some((source.clone(), key.clone())),
        _ => None,
    };
    let spool = match &a.fanout.spool {
        Some(dir) => Spool::new(dir.clone()),
        None => Spool::default_for(&master),
    };
    if image.is_none() {
        // Before the first change (the replication user): a spool that is not amsu's,
        // or another master's, is refused as it is.
        fanout::check_spool(&spool, &master)
            .await
            .map_err(|e| Exit(e.exit_code(), anyhow!(e)))?;
    }
    // Before the first change and the master read: no replica is being set up by
    // another run now.
    fanout::check_not_busy(&FanoutConfig::new(
        template.clone(),
        replicas.clone(),
        spool.clone(),
    ))
    .map_err(|e| Exit(e.exit_code(), anyhow!(e)))?;
    let repl_password = ensure_repl_user(
        &master,
        a.admin_user.as_deref(),
        &a.repl_user,
        &a.passwords,
        a.json,
    )
    .await?;
    if image.is_none() && spool.state() != SpoolState::Complete && !a.json {
        outln!(
            "Reading the master {master} once into the spool {}",
            spool.dir().display()
        );
    }
    let threads = a.threads.unwrap_or(2).max(1);
    let mut config = FanoutConfig::new(template, replicas.clone(), spool.clone())
        .dump_threads(threads)
        .load_threads(threads)
        .chunk_bytes(a.chunk_size)
        .keep_spool(a.fanout.keep_spool);
    if let Some((source, key)) = image.clone() {
        config = config.image(Some(source)).image_key(key);
    }
    if let Some(pw) = repl_password {
        config = config.repl_password(pw);
    }
    let reruns = replicas
        .iter()
        .zip(&a.replica)
        .map(|(addr, url)| {
            let rerun = argv.as_ref().map(|argv| {
                let mut r = argv.clone();
                r.extend(["--replica".to_string(), url.clone()]);
                if image.is_none() {
                    r.extend(["--spool".to_string(), spool.dir().display().to_string()]);
                }
                command_text(&r)
            });
            (tag(addr), rerun)
        })
        .collect();
    let events = Arc::new(CliEvents {
        json: a.json,
        image_given: image.is_some(),
        master: Renderer::new(a.json),
        replicas: replicas
            .iter()
            .map(|r| (tag(r), Renderer::tagged(a.json, tag(r))))
            .collect(),
        reruns,
    });
    let result = fanout::fan_out(config, events.clone(), interrupt::token()).await;
    events.master.finish();
    let outcome = result.map_err(|e| Exit(e.exit_code(), anyhow!(e)))?;
    for run in &outcome.runs {
        if let Ok(o) = &run.result {
            durable::report_runtime_only(o.runtime_only.as_ref(), Some(&tag(&run.replica)), a.json);
        }
    }
    let outcomes = outcome.outcomes();
    let code = fanout::combined_exit_code(&outcomes, false);
    if outcome.spool_kept && code != exit::OK && !a.json {
        errln!(
            "The spool {} is kept: a rerun for the replicas that failed resumes from it.",
            spool.dir().display()
        );
    }
    Ok(summary(
        json::CommandName::Setup,
        &outcomes,
        code,
        a.json,
        false,
    ))
}

/// `amsu setup --dry-run` with several `--replica`: every replica's checks and plan, in
/// this process and at the same time. Each replica's is the setup of that replica alone
/// with the logical method (the image of `--image`), shown as `amsu setup --dry-run
/// --replica R` shows it (tagged with the replica), then its `replica_result`; a replica
/// whose checks fail is reported in its own `replica_result` and the others go on.
/// Nothing is changed on any server.
async fn dry_run(mut a: SetupArgs, replicas: Vec<ServerAddr>) -> Result<i32, Exit> {
    a.method = Method::Logical;
    let template = SetupConfig::try_from(&a)?;
    let repl_pw = crate::repl_password(&a, &template)?;
    let replication = crate::with_repl_password(template.replication_settings().clone(), &repl_pw);
    let template = template.replication(replication);
    // The command that shows one replica's dry run alone (None when amsu runs embedded).
    let argv = own_argv("setup", &a.replica);
    let json_out = a.json;
    let runs = replicas.into_iter().zip(&a.replica).map(|(addr, url)| {
        let tag = tag(&addr);
        let rerun = argv.as_ref().map(|argv| {
            let mut r = argv.clone();
            r.extend(["--replica".to_string(), url.clone()]);
            command_text(&r)
        });
        let config = template.clone().replica(addr);
        async move {
            let renderer = Arc::new(Renderer::tagged(json_out, tag.clone()));
            let p = Provision::new(config, renderer.clone());
            let checked = p.check(&*renderer).await;
            renderer.finish();
            let (code, error) = match &checked {
                Ok(c) => {
                    tagged_lines(&tag, &crate::dry_run_text(&p, c, json_out), json_out);
                    (exit::OK, None)
                }
                Err(e) => {
                    let code = exit::of(e);
                    let (message, value) = error_of(code, e, Some(e), json_out);
                    if !json_out {
                        let remedy = crate::secrets::remedy(&message);
                        tagged_err(&tag, &crate::error_text(e, &message, remedy.as_deref()));
                    }
                    (code, Some(value))
                }
            };
            replica_result(&tag, code, error, rerun, "Rerun", json_out);
            ReplicaOutcome::new(tag, Some(code))
        }
    });
    let outcomes = futures_join(runs).await;
    let code = fanout::combined_exit_code(&outcomes, true);
    Ok(summary(
        json::CommandName::Setup,
        &outcomes,
        code,
        json_out,
        true,
    ))
}

/// How a fan-out's events are shown: the master read's as `amsu backup` shows them, each
/// replica's tagged with it, and one `replica_result` (or `[replica] done`) per replica
/// as it ends.
struct CliEvents {
    json: bool,
    image_given: bool,
    master: Renderer,
    replicas: HashMap<String, Renderer>,
    /// Each replica's command to resume it alone.
    reruns: HashMap<String, Option<String>>,
}

impl FanoutEvents for CliEvents {
    fn master(&self, event: &Event) {
        self.master.emit(event)
    }

    fn replica(&self, replica: &ServerAddr, event: &Event) {
        if let Some(r) = self.replicas.get(&tag(replica)) {
            r.emit(event)
        }
    }

    fn spool_ready(&self, path: &str, reused: bool) {
        self.master.finish();
        if self.image_given {
            return;
        }
        let path = path.to_string();
        if self.json {
            json::emit(json::Body::Spool { path, reused });
        } else if reused {
            outln!("Reusing the complete image in the spool {path} (read from the master by an earlier run)");
        } else {
            outln!("Spool written: {path}; loading it into every replica");
        }
    }

    fn replica_done(&self, run: &ReplicaRun) {
        let tag = tag(&run.replica);
        if let Some(r) = self.replicas.get(&tag) {
            r.finish();
        }
        let code = run.exit_code();
        let rerun = self.reruns.get(&tag).cloned().flatten();
        let error = replica_error(run, self.json);
        if let Ok(o) = &run.result {
            tagged_lines(&tag, &report_lines(&o.report, self.json), self.json);
            if let Some((path, _)) = &o.replica_config {
                tagged_lines(
                    &tag,
                    &format!("Wrote the replica's settings to {}", path.display()),
                    false,
                );
            }
            if let Some(v) = &o.verify {
                tagged_lines(&tag, &crate::verify_cmd::render(v, self.json), self.json);
            }
        }
        if let (Some((message, _)), false) = (&error, self.json) {
            errln!("[{tag}] {} {message}", crate::style::error_label());
        }
        replica_result(
            &tag,
            code,
            error.map(|(_, v)| v),
            rerun,
            "Resume",
            self.json,
        );
    }
}

/// The closing line of one replica: its `replica_result` (with its error and, when it
/// failed, the command that reruns it alone), or `[replica] done` / `FAILED` (`verb`
/// says what that command does: "Resume", "Rerun").
fn replica_result(
    tag: &str,
    code: i32,
    error: Option<Value>,
    rerun: Option<String>,
    verb: &str,
    json_out: bool,
) {
    let ok = code == exit::OK;
    if json_out {
        json::emit(json::Body::ReplicaResult {
            replica: tag.to_string(),
            ok,
            exit_code: Some(code),
            error,
            rerun: if ok { None } else { rerun },
        });
    } else if ok {
        outln!("[{tag}] done");
    } else {
        errln!(
            "[{tag}] FAILED (exit {code}); the other replicas go on.{}",
            rerun.map_or(String::new(), |r| format!(
                " {verb} this replica alone with:\n  {r}"
            ))
        );
    }
}

/// A failed replica's error: its message, and its JSON form.
fn replica_error(run: &ReplicaRun, json_out: bool) -> Option<(String, Value)> {
    let e = run.result.as_ref().err()?;
    let setup = match e {
        FacadeError::Setup(s) => Some(s),
        _ => None,
    };
    Some(error_of(run.exit_code(), e, setup, json_out))
}

/// An error of one replica: its message, and its JSON form (`null` without `--json`).
fn error_of(
    code: i32,
    first: &(dyn std::error::Error + 'static),
    setup: Option<&amsu_core::Error>,
    json_out: bool,
) -> (String, Value) {
    let message = crate::chain_message(std::iter::successors(Some(first), |e| e.source()));
    let value = if json_out {
        let remedy = crate::secrets::remedy(&message);
        json::value(&crate::error_json(
            code,
            first,
            setup,
            json::CommandName::Setup,
            remedy,
        ))
    } else {
        Value::Null
    };
    (message, value)
}

/// A replica's setup report, as lines (JSON: its `report` line).
fn report_lines(r: &amsu_core::SetupReport, json_out: bool) -> String {
    if json_out {
        return json::line(&json::Body::Report {
            report: json::value(r),
        });
    }
    if r.already_done {
        return "already set up by an earlier run and replicating; nothing was changed".into();
    }
    format!(
        "{}replicating; copied {} tables, {} rows ({}); {}",
        if r.resumed { "resumed; " } else { "" },
        r.copy.tables,
        r.copy.rows,
        amsu_core::human::bytes(r.copy.bytes),
        r.caught_up_to
            .as_ref()
            .map_or("not waited for the catch-up".to_string(), |c| format!(
                "caught up to {c}"
            ))
    )
}

/// Prints `text`: as it is, or tagged with the replica `tag` ([`tagged_lines`]).
pub(crate) fn print_tagged(tag: Option<&str>, text: &str, json_out: bool) {
    match tag {
        Some(t) => tagged_lines(t, text, json_out),
        None => outln!("{text}"),
    }
}

/// Prints `text` on stderr line by line, tagged with the replica (`[tag] …`).
fn tagged_err(tag: &str, text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        errln!("[{tag}] {line}");
    }
}

/// Prints `text` line by line, tagged with the replica (`[tag] …`, or `"replica"` added
/// to each JSON line).
fn tagged_lines(tag: &str, text: &str, json_out: bool) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if json_out {
            if let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(line) {
                m.insert("replica".into(), Value::String(tag.to_string()));
                outln!("{}", Value::Object(m));
                continue;
            }
        }
        outln!("[{tag}] {line}");
    }
}

/// `amsu restore` with several `--replica`: the library's
/// [`fanout_restore::fan_out_restore`], the image loaded into each replica by its own task
/// of this process, at the same time; this function converts the arguments and renders
/// the events.
pub(crate) async fn restore(a: RestoreArgs) -> Result<i32, Exit> {
    if a.journal.is_some() {
        return Err(usage(anyhow!(
            "--journal names one replica's journal; with several --replica each replica has \
             its own default journal (in AMSU_JOURNAL_DIR or ~/.amsu/journal)"
        )));
    }
    let replicas = a
        .replica
        .iter()
        .map(|r| replica_addr(r, &a.passwords))
        .collect::<Result<Vec<_>, _>>()?;
    let master = match &a.master {
        Some(m) if a.start_replication => Some(master_addr(m, &a.passwords)?),
        _ => None,
    };
    // Before the replication user is created: an unreachable replica fails alone.
    fanout_restore::check_distinct_reachable(master.as_ref(), &replicas)
        .await
        .map_err(|e| Exit(exit::PRECONDITION, anyhow!(e)))?;
    let start = match &master {
        Some(m) => {
            // Ctrl-C stops the replication starts like a failure (resumable).
            interrupt::install();
            ensure_repl_user(m, None, &a.repl_user, &a.passwords, a.json).await?;
            let pw =
                repl_creds::resolve(a.passwords.repl_password_file.as_deref(), m, &a.repl_user)
                    .map_err(usage)?;
            Some(crate::image_cmd::start_replication(&a, m, &pw))
        }
        None => None,
    };
    let template = crate::image_cmd::restore_config(&a, replicas[0].clone(), start)?;
    // The command that resumes one replica alone (None when amsu runs embedded).
    let argv = own_argv("restore", &a.replica);
    let reruns = replicas
        .iter()
        .zip(&a.replica)
        .map(|(addr, url)| {
            let rerun = argv.as_ref().map(|argv| {
                let mut r = argv.clone();
                r.extend(["--replica".to_string(), url.clone()]);
                command_text(&r)
            });
            (tag(addr), rerun)
        })
        .collect();
    let events = Arc::new(CliRestoreEvents {
        json: a.json,
        image: a.image.clone(),
        replicas: replicas
            .iter()
            .map(|r| (tag(r), Renderer::tagged(a.json, tag(r))))
            .collect(),
        reruns,
    });
    let config = RestoreFanoutConfig::new(template, replicas);
    let outcome = fanout_restore::fan_out_restore(config, events, interrupt::token())
        .await
        .map_err(|e| Exit(e.exit_code(), anyhow!(e)))?;
    let outcomes = outcome.outcomes();
    let code = fanout::combined_exit_code(&outcomes, false);
    Ok(summary(
        json::CommandName::Restore,
        &outcomes,
        code,
        a.json,
        false,
    ))
}

/// How a fan-out restore's events are shown: each replica's tagged with it, and one
/// `replica_result` (or `[replica] done`) per replica as it ends.
struct CliRestoreEvents {
    json: bool,
    /// The image, as given.
    image: String,
    replicas: HashMap<String, Renderer>,
    /// Each replica's command to resume it alone.
    reruns: HashMap<String, Option<String>>,
}

impl RestoreFanoutEvents for CliRestoreEvents {
    fn replica(&self, replica: &ServerAddr, event: &Event) {
        if let Some(r) = self.replicas.get(&tag(replica)) {
            r.emit(event)
        }
    }

    fn replica_done(&self, run: &RestoreRun) {
        let tag = tag(&run.replica);
        if let Some(r) = self.replicas.get(&tag) {
            r.finish();
        }
        let code = run.exit_code();
        let rerun = self.reruns.get(&tag).cloned().flatten();
        let mut error = None;
        match &run.result {
            Ok(done) => {
                if let (Some(n), false) = (done.resumed_chunks, self.json) {
                    errln!(
                        "[{tag}] Resumed the interrupted restore of {}: {n} chunks already loaded before this run",
                        shown(&self.image)
                    );
                }
                let lines =
                    crate::image_cmd::restored_lines(&self.image, self.json, &run.replica, done);
                tagged_lines(&tag, &lines, self.json);
            }
            Err(e) => {
                let first: &(dyn std::error::Error + 'static) = e;
                let mut message =
                    crate::chain_message(std::iter::successors(Some(first), |e| e.source()));
                match (
                    crate::image_cmd::failure_context(&self.image, &run.replica, e),
                    e,
                ) {
                    (Some(c), RestoreFailure::ReplicaNotEmpty { .. }) => message = c,
                    (Some(c), _) => message = format!("{c}: {message}"),
                    (None, _) => {}
                }
                if self.json {
                    let remedy = crate::secrets::remedy(&message);
                    let setup = match e {
                        RestoreFailure::Setup(FacadeError::Setup(s)) => Some(s),
                        _ => None,
                    };
                    let mut j =
                        crate::error_json(code, first, setup, json::CommandName::Restore, remedy);
                    j.message = message;
                    error = Some(json::value(&j));
                } else {
                    errln!("[{tag}] {} {message}", crate::style::error_label());
                }
            }
        }
        replica_result(&tag, code, error, rerun, "Resume", self.json);
    }
}

/// The replica as its lines are tagged: `HOST:PORT`.
fn tag(r: &ServerAddr) -> String {
    format!("{}:{}", r.host, r.port)
}

/// Runs every replica's future at once and waits for all of them.
async fn futures_join<F: std::future::Future<Output = ReplicaOutcome> + Send + 'static>(
    runs: impl Iterator<Item = F>,
) -> Vec<ReplicaOutcome> {
    let handles: Vec<_> = runs.map(tokio::spawn).collect::<Vec<_>>();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(
            h.await
                .unwrap_or_else(|e| ReplicaOutcome::new(format!("(lost: {e})"), None)),
        );
    }
    out
}

/// This process's arguments after the program name, without `--replica`, `--spool` and
/// `--keep-spool` (the base of the command that reruns one replica alone); `None` when
/// they are not the command line this run was parsed from (amsu embedded in another
/// program) or not UTF-8.
fn own_argv(command: &str, replicas: &[String]) -> Option<Vec<String>> {
    let all: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect::<Result<_, _>>()
        .ok()?;
    let mut out = Vec::with_capacity(all.len());
    let mut seen = Vec::new();
    let mut it = all.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--replica" => seen.extend(it.next()),
            "--spool" => {
                it.next();
            }
            "--keep-spool" => {}
            s if s.starts_with("--replica=") => seen.push(s["--replica=".len()..].to_string()),
            s if s.starts_with("--spool=") => {}
            _ => out.push(arg),
        }
    }
    (seen == replicas && out.iter().any(|a| a == command)).then_some(out)
}

/// The master is not one of the replicas, and no two replicas are one server: checked
/// before anything changes (not overridable).
async fn identity_checks(master: Option<&ServerAddr>, replicas: &[ServerAddr]) -> Result<(), Exit> {
    fanout::check_distinct(master, replicas)
        .await
        .map_err(|e| Exit(exit::PRECONDITION, anyhow!(e)))
}

/// The replication user exists (created here when missing, its generated password kept
/// like `amsu setup` keeps it) before the replicas' runs start, so that they do not race
/// to create it.
async fn ensure_repl_user(
    master: &ServerAddr,
    admin_user: Option<&str>,
    repl_user: &str,
    passwords: &crate::args::PasswordFiles,
    json_out: bool,
) -> Result<Option<Secret>, Exit> {
    let mut mm = MysqlMaster::new(master.clone());
    if let Some(u) = admin_user {
        let pw = secrets::password(
            passwords.admin_password_file.as_deref(),
            "AMSU_ADMIN_PASSWORD",
        )
        .map_err(usage)?;
        mm = mm.with_admin(master.clone().user(u.to_string()).password(pw));
    }
    let ru = repl_creds::check_restore_user(
        master,
        &mm,
        repl_user,
        passwords.repl_password_file.as_deref(),
    )
    .await
    .map_err(|(checked, e)| {
        if checked {
            Exit(exit::PRECONDITION, e)
        } else {
            usage(e)
        }
    })?;
    let mut password = ru.password.password().cloned();
    if ru.create {
        let pw = password.clone().unwrap_or_else(Secret::generate);
        mm.create_replication_user(repl_user, "%", &pw)
            .await
            .map_err(|e| {
                Exit(
                    exit::PRECONDITION,
                    anyhow!("creating the replication user '{repl_user}' on {master}: {e}; nothing else was changed"),
                )
            })?;
        if !json_out {
            outln!("Created user '{repl_user}'@'%' with REPLICATION SLAVE on {master}");
        }
        password = Some(pw);
    }
    repl_creds::save_and_say(&ru.password, master, &mm, json_out).await;
    Ok(password)
}

/// A command line as shown: passwords in URLs left out, quoted for a POSIX shell.
fn command_text(args: &[String]) -> String {
    std::iter::once("amsu".to_string())
        .chain(args.iter().map(|a| {
            let a = if a.contains("://") {
                shown(a)
            } else {
                a.clone()
            };
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,%+".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The closing lines: which replicas are done and which failed; returns the exit code.
fn summary(
    command: json::CommandName,
    outcomes: &[ReplicaOutcome],
    code: i32,
    json_out: bool,
    dry_run: bool,
) -> i32 {
    if json_out {
        json::emit(json::Body::Result {
            command,
            ok: code == exit::OK,
            exit_code: code,
            dry_run,
        });
    } else if dry_run && code == exit::OK {
        outln!(
            "Dry run: the checks of all {} replicas passed and nothing was changed.",
            outcomes.len()
        );
    } else {
        let failed: Vec<_> = outcomes
            .iter()
            .filter(|o| !o.ok())
            .map(|o| o.replica.as_str())
            .collect();
        if failed.is_empty() {
            outln!("All {} replicas are done.", outcomes.len());
        } else {
            errln!(
                "{} of {} replicas done; failed: {} (exit {code})",
                outcomes.len() - failed.len(),
                outcomes.len(),
                failed.join(", ")
            );
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::command_text;

    #[test]
    fn rerun_commands_leave_passwords_out_and_quote() {
        let t = command_text(&[
            "setup".into(),
            "--master".into(),
            "mysql://root:secret@db1:3306".into(),
            "--spool".into(),
            "/tmp/a b".into(),
        ]);
        assert_eq!(
            t,
            "amsu setup --master mysql://root@db1:3306 --spool '/tmp/a b'"
        );
    }
}
