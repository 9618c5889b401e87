//! The orchestrator of `amsu setup`: decides in pure code, acts through the traits.

use crate::{FindingCode, Remedy};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{
    profile, Action, AdapterError, BoxError, CancellationToken, Coordinates, CopyReport,
    DataCopier, Error, ErrorKind, Event, EventSink, Finding, Finishing, Flavor, Interrupted,
    Journal, JournalStore, LockOutcome, LoginCheck, MasterServer, Positioning, Preflight,
    PreflightContext, ReplicaServer, ReplicationSource, ReplicationStatus, ReplicationTls, Role,
    Secret, ServerInfo, Severity, Step,
};

/// Options of a setup. Build with [`SetupOptions::new`]; every setter documents its default.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    master_host: String,
    master_port: u16,
    repl_user: String,
    repl_password: Option<Secret>,
    new_repl_password: Option<Secret>,
    repl_user_host: String,
    replica_id: String,
    force: bool,
    wait_caught_up: bool,
    start_timeout: Duration,
    catch_up_timeout: Duration,
    positioning: Positioning,
    tls: ReplicationTls,
    fast_load: bool,
    resize_redo: bool,
    replica_config_file: Option<(PathBuf, Option<String>)>,
    verify: bool,
}

impl SetupOptions {
    /// Options for a master the replica reaches at `master_host:master_port`.
    pub fn new(master_host: impl Into<String>, master_port: u16) -> Self {
        SetupOptions {
            master_host: master_host.into(),
            master_port,
            repl_user: "amsu_repl".into(),
            repl_password: None,
            new_repl_password: None,
            repl_user_host: "%".into(),
            replica_id: String::new(),
            force: false,
            wait_caught_up: false,
            start_timeout: Duration::from_secs(60),
            catch_up_timeout: Duration::from_secs(3600),
            positioning: Positioning::FilePosition,
            tls: ReplicationTls::off(),
            fast_load: true,
            resize_redo: false,
            replica_config_file: None,
            verify: false,
        }
    }

    /// Relax the replica's durability while the copy loads ([`GlobalChange`](crate::GlobalChange)): the
    /// changed globals are journaled, shown in the plan and restored before replication
    /// starts. Default `true`.
    pub fn fast_load(mut self, fast_load: bool) -> Self {
        self.fast_load = fast_load;
        self
    }

    /// With [`fast_load`](Self::fast_load): also grow the replica's redo log for the copy
    /// where the server resizes it online (see [`GlobalChange`](crate::GlobalChange); resizing takes seconds
    /// each way, worth it only for large copies). Default `false`.
    pub fn resize_redo_log(mut self, resize: bool) -> Self {
        self.resize_redo = resize;
        self
    }

    /// Replication user name. Default `amsu_repl`.
    pub fn repl_user(mut self, user: impl Into<String>) -> Self {
        self.repl_user = user.into();
        self
    }

    /// Replication user password. Default: none given — an existing user cannot be used,
    /// and a created one gets a generated 32-character password.
    pub fn repl_password(mut self, password: Option<Secret>) -> Self {
        self.repl_password = password;
        self
    }

    /// The password a replication user created (or reset) by this setup gets, when no
    /// [`repl_password`](Self::repl_password) is given; it is never tried for logging in
    /// as an existing user. Give it to keep the password (the CLI saves it for the next
    /// replica of the same master). Default: a generated 32-character password.
    pub fn new_repl_password(mut self, password: Option<Secret>) -> Self {
        self.new_repl_password = password;
        self
    }

    /// Host part of a created replication account. Default `%`.
    pub fn repl_user_host(mut self, host: impl Into<String>) -> Self {
        self.repl_user_host = host.into();
        self
    }

    /// Names the replica (`host:port`) in the journal, so a journal is only resumed for
    /// the same pair. Default: empty.
    pub fn replica_id(mut self, id: impl Into<String>) -> Self {
        self.replica_id = id.into();
        self
    }

    /// Allow a replica that holds user databases or a replication configuration: they are
    /// dropped / reset. Default `false`.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Wait until the replica has applied what the master had written when the replica
    /// started. Default `false`.
    pub fn wait_caught_up(mut self, wait: bool) -> Self {
        self.wait_caught_up = wait;
        self
    }

    /// How long to wait for both replication threads to run. Default 60 s.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long to wait for the replica to catch up. Default 1 hour.
    pub fn catch_up_timeout(mut self, timeout: Duration) -> Self {
        self.catch_up_timeout = timeout;
        self
    }

    /// How replication is positioned: [`Positioning::Gtid`] starts from the snapshot's
    /// GTID position (MariaDB only) and waits for catch-up by GTID. Default
    /// [`Positioning::FilePosition`].
    pub fn positioning(mut self, positioning: Positioning) -> Self {
        self.positioning = positioning;
        self
    }

    /// TLS settings of the replica's connection to the master. Default: no TLS.
    pub fn tls(mut self, tls: ReplicationTls) -> Self {
        self.tls = tls;
        self
    }

    /// Once replication runs, write the replica's settings as an option file at `path`
    /// (with `report_host`, if given): [`Action::WriteReplicaConfig`], done by the
    /// setup's [`Finishing`] work. Default: none.
    pub fn replica_config_file(mut self, file: Option<(PathBuf, Option<String>)>) -> Self {
        self.replica_config_file = file;
        self
    }

    /// Once the replica caught up, compare the data of both servers:
    /// [`Action::VerifyData`], done by the setup's [`Finishing`] work (implies the wait
    /// for the catch-up). Default `false`.
    pub fn verify(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }

    /// The master's host as the replica reaches it (`CHANGE MASTER TO MASTER_HOST`).
    /// Default: the one given to [`new`](Self::new).
    pub fn master_host(mut self, host: impl Into<String>) -> Self {
        self.master_host = host.into();
        self
    }

    /// Whether a replica holding user databases or a replication configuration is
    /// allowed ([`force`](Self::force)).
    pub fn is_forced(&self) -> bool {
        self.force
    }

    /// How long the catch-up is waited for ([`catch_up_timeout`](Self::catch_up_timeout)).
    pub fn catch_up_wait(&self) -> Duration {
        self.catch_up_timeout
    }

    /// The actions after the replication runs and the master is restored: the option
    /// file, the verification (also run again by a rerun of a finished setup).
    fn finishing_actions(&self) -> Vec<Action> {
        let mut plan = Vec::new();
        if let Some((path, report_host)) = &self.replica_config_file {
            plan.push(Action::WriteReplicaConfig {
                path: path.clone(),
                report_host: report_host.clone(),
            });
        }
        if self.verify {
            plan.push(Action::VerifyData);
        }
        plan
    }
}

/// What the replication-user step will do, decided before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplUserPlan {
    /// The user exists and the password works.
    Reuse(Secret),
    /// The user does not exist: create it with this password.
    Create(Secret),
    /// amsu created the user in an interrupted earlier run: give it this new password.
    ResetPassword(Secret),
}

/// What a finished setup reports.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SetupReport {
    /// The master as probed.
    pub master: ServerInfo,
    /// The replica as probed.
    pub replica: ServerInfo,
    /// Every change amsu made on the master, in words.
    pub master_changes: Vec<String>,
    /// Every change amsu made on the replica, in words.
    pub replica_changes: Vec<String>,
    /// Warnings from the preflight checks.
    pub warnings: Vec<Finding>,
    /// The data copy.
    pub copy: CopyReport,
    /// Replication state after start.
    pub replication: ReplicationStatus,
    /// The master position the replica caught up to, with `wait_caught_up`.
    pub caught_up_to: Option<Coordinates>,
    /// Milliseconds per step.
    pub step_millis: Vec<(Step, u64)>,
    /// The changes that were planned (and made).
    pub plan: Vec<Action>,
    /// This run continued an interrupted earlier one.
    pub resumed: bool,
    /// An earlier run had finished this setup; nothing was done.
    pub already_done: bool,
}

impl SetupReport {
    /// The replica settings this run set with `SET GLOBAL` only (`server_id`,
    /// `read_only`), by name: they are lost when the replica restarts (replication then
    /// stops, with "equal server ids" when the old id was the master's) unless its option
    /// file sets them. Empty when the run changed nothing ([`already_done`](Self::already_done)).
    pub fn runtime_only(&self) -> Vec<&'static str> {
        if self.already_done {
            return Vec::new();
        }
        let mut names = Vec::new();
        for a in &self.plan {
            if let Action::ConfigureReplica {
                server_id,
                read_only,
            } = a
            {
                if server_id.is_some() && !names.contains(&"server_id") {
                    names.push("server_id");
                }
                if *read_only && !names.contains(&"read_only") {
                    names.push("read_only");
                }
            }
        }
        names
    }
}

/// Checks the master alone (binary log, format); pure.
pub fn preflight_master(master: &ServerInfo) -> Vec<Finding> {
    let mut f = Vec::new();
    if !master.log_bin {
        f.push(Finding::blocking(
            Role::Master,
            FindingCode::LogBinOff,
            "binary logging is off (@@global.log_bin = 0); a replica needs the master's binary log, and turning it on needs a restart",
            "add `log_bin = mysql-bin` (and a unique `server_id`) under [mysqld] in the master's option file and restart the master",
        ));
    } else if !master.binlog_format.eq_ignore_ascii_case("ROW") {
        f.push(Finding::warning(
            Role::Master,
            FindingCode::BinlogFormat,
            format!(
                "binlog_format is {}; ROW is the safe format for replication",
                master.binlog_format
            ),
            "SET GLOBAL binlog_format = 'ROW' and add `binlog_format = ROW` to the master's option file",
        ));
    }
    f
}

/// Checks every precondition from what was probed; pure, so tests give it any state.
/// Returns all findings (blocking ones stop the setup).
pub fn preflight(
    master: &ServerInfo,
    replica: &ServerInfo,
    replica_status: Option<&ReplicationStatus>,
    replica_databases: &[String],
    force: bool,
) -> Vec<Finding> {
    let mut f = preflight_master(master);
    if master.flavor != replica.flavor {
        f.push(Finding::blocking(
            Role::Replica,
            FindingCode::FlavorMismatch,
            format!(
                "the replica runs {} but the master runs {}",
                replica.flavor, master.flavor
            ),
            format!("use a {} server as the replica", master.flavor),
        ));
    } else if replica.version < master.version
        && (replica.version.major, replica.version.minor)
            != (master.version.major, master.version.minor)
    {
        f.push(Finding::blocking(
            Role::Replica,
            FindingCode::ReplicaOlder,
            format!(
                "the replica's version {} is older than the master's {}; a replica must not be older",
                replica.version, master.version
            ),
            format!("upgrade the replica to {} or newer", master.version),
        ));
    }
    if let Some(st) = replica_status {
        if !force {
            f.push(
                Finding::blocking(
                    Role::Replica,
                    FindingCode::AlreadyReplica,
                    format!(
                        "the replica is already configured to replicate from {}:{} ({})",
                        st.master_host,
                        st.master_port,
                        if st.is_active() { "running" } else { "stopped" }
                    ),
                    "run `STOP SLAVE; RESET SLAVE ALL` on it, or allow amsu to reset it (force)",
                )
                .with_remedy(Remedy::setting("force")),
            );
        }
    }
    if !replica_databases.is_empty() && !force {
        f.push(
            Finding::blocking(
                Role::Replica,
                FindingCode::ReplicaNotEmpty,
                format!(
                    "the replica holds user databases: {}",
                    replica_databases.join(", ")
                ),
                "use an empty server, or allow amsu to drop these databases on the replica (force)",
            )
            .with_remedy(Remedy::setting("force")),
        );
    }
    f
}

/// How the server_ids are made valid (T2): both non-zero and distinct.
///
/// A master with `server_id` 0 gets a new one with `SET GLOBAL server_id` (it cannot
/// have replicas otherwise). A clash is resolved on the replica, never on the master:
/// MariaDB gives every session its own copy of `server_id`, so master sessions opened
/// before a change would keep logging the old id — which the replica would then skip as
/// its own events, silently losing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerIdFix {
    /// New `server_id` for the master, when its own is 0.
    pub master: Option<u32>,
    /// New `server_id` for the replica, when its own is 0 or equal to the master's.
    pub replica: Option<u32>,
}

/// The globals amsu changed on `role`'s server and has yet to put back, as journaled:
/// the master's raised by binary log protection, the replica's relaxed for the load.
fn changed_globals(journal: &mut Journal, role: Role) -> &mut Vec<crate::GlobalChange> {
    match role {
        // The donor's globals are never changed.
        Role::Master | Role::Donor => &mut journal.raised_master,
        Role::Replica => &mut journal.relaxed,
    }
}

/// Decides the server_id changes; pure (random ids are drawn from 1000..2e9).
pub fn server_id_fix(master_id: u32, replica_id: u32) -> ServerIdFix {
    let master = (master_id == 0).then(|| fresh_server_id(&[replica_id]));
    let effective_master = master.unwrap_or(master_id);
    let replica = (replica_id == 0 || replica_id == effective_master)
        .then(|| fresh_server_id(&[effective_master]));
    ServerIdFix { master, replica }
}

fn fresh_server_id(avoid: &[u32]) -> u32 {
    use rand::Rng;
    let mut rng = rand::rng();
    loop {
        let id = rng.random_range(1000..=2_000_000_000u32);
        if !avoid.contains(&id) {
            return id;
        }
    }
}

/// The user-level lock an `amsu setup` holds on the replica for its whole run.
pub(crate) const RUN_LOCK: &str = "amsu_setup";

/// Runs a whole setup: all checks first, then the changes, step by step.
pub struct Setup<'a> {
    master: &'a dyn MasterServer,
    replica: &'a dyn ReplicaServer,
    copier: &'a dyn DataCopier,
    preflight: Vec<&'a dyn Preflight>,
    journal: Option<&'a dyn JournalStore>,
    finishing: Option<&'a dyn Finishing>,
    options: SetupOptions,
    cancel: CancellationToken,
}

struct Progress<'e> {
    events: &'e dyn EventSink,
    master_changes: Vec<String>,
    replica_changes: Vec<String>,
    step_millis: Vec<(Step, u64)>,
    /// Said after the changes when the setup fails.
    notes: Vec<String>,
    /// Stops the step that runs (see [`Setup::with_cancellation`]).
    cancel: CancellationToken,
}

impl<'e> Progress<'e> {
    fn new(events: &'e dyn EventSink, cancel: &CancellationToken) -> Self {
        Progress {
            cancel: cancel.clone(),
            events,
            master_changes: vec![],
            replica_changes: vec![],
            step_millis: vec![],
            notes: vec![],
        }
    }

    fn changed(&mut self, server: Role, what: String) {
        self.events.emit(&Event::Changed {
            server,
            what: what.clone(),
        });
        match server {
            Role::Master => self.master_changes.push(what),
            Role::Replica => self.replica_changes.push(what),
            // Listed with the master's: the donor stands in for it.
            Role::Donor => self.master_changes.push(format!("donor: {what}")),
        }
    }

    async fn step<T, F>(&mut self, step: Step, fut: F) -> Result<T, BoxError>
    where
        F: std::future::Future<Output = Result<T, BoxError>>,
    {
        self.events.emit(&Event::StepStarted { step });
        let t = Instant::now();
        // A cancelled token wins over the step, checked first: a run asked to stop starts
        // no new step.
        let mut cancelled = std::pin::pin!(self.cancel.cancelled());
        let mut fut = std::pin::pin!(fut);
        let r = std::future::poll_fn(|cx| {
            if std::future::Future::poll(cancelled.as_mut(), cx).is_ready() {
                return std::task::Poll::Ready(Err(Interrupted.into()));
            }
            std::future::Future::poll(fut.as_mut(), cx)
        })
        .await;
        if r.is_ok() {
            let millis = t.elapsed().as_millis() as u64;
            self.step_millis.push((step, millis));
            self.events.emit(&Event::StepFinished { step, millis });
        }
        r
    }

    fn failed(&self, step: Step, server: Role, source: BoxError) -> Error {
        let mut state = String::from("State left behind:");
        if self.master_changes.is_empty() && self.replica_changes.is_empty() {
            state.push_str(" nothing was changed yet.");
        }
        for c in &self.master_changes {
            state.push_str(&format!("\n  - master: {c}"));
        }
        for c in &self.replica_changes {
            state.push_str(&format!("\n  - replica: {c}"));
        }
        for n in &self.notes {
            state.push_str(&format!("\n{n}"));
        }
        state.push_str(
            "\nFix the cause and rerun the same command: amsu resumes from its journal \
             (a partial copy keeps what it provably can, the rest is copied again).",
        );
        Error::Failed {
            step,
            server,
            source,
            state,
        }
    }
}

impl<'a> Setup<'a> {
    /// A setup of `replica` from `master`, copying data with `copier`.
    pub fn new(
        master: &'a dyn MasterServer,
        replica: &'a dyn ReplicaServer,
        copier: &'a dyn DataCopier,
        options: SetupOptions,
    ) -> Self {
        Setup {
            master,
            replica,
            copier,
            preflight: Vec::new(),
            journal: None,
            finishing: None,
            options,
            cancel: CancellationToken::new(),
        }
    }

    /// Stops the run when `token` is cancelled: the step that runs fails with
    /// [`Interrupted`](crate::Interrupted) and the setup ends like after any failure
    /// (journaled, resumable, the state left behind in the error). Default: a token that
    /// is never cancelled.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Adds read-only checks that run with the built-in ones, before any change.
    pub fn with_preflight(mut self, checks: &'a dyn Preflight) -> Self {
        self.preflight.push(checks);
        self
    }

    /// Journals every finished change to `store`, and resumes from it: a rerun after a
    /// crash continues where the last run stopped; a rerun after success changes nothing.
    pub fn with_journal(mut self, store: &'a dyn JournalStore) -> Self {
        self.journal = Some(store);
        self
    }

    /// Who writes the replica's option file and compares the data, when the options
    /// ask for them ([`SetupOptions::replica_config_file`], [`SetupOptions::verify`]).
    /// Default: none (a plan with those actions then fails at them).
    pub fn with_finishing(mut self, work: &'a dyn Finishing) -> Self {
        self.finishing = Some(work);
        self
    }

    /// Runs one of the [`Finishing`] actions.
    async fn finish_action(&self, p: &mut Progress<'_>, action: &Action) -> Result<(), BoxError> {
        let work = self.finishing.ok_or_else(|| {
            BoxError::from(format!(
                "the setup was given nothing to do the step {} with",
                action.step()
            ))
        })?;
        let step = action.step();
        match action {
            Action::WriteReplicaConfig { path, report_host } => {
                p.step(step, work.write_replica_config(path, report_host.clone()))
                    .await
            }
            Action::VerifyData => p.step(step, work.verify()).await,
            _ => unreachable!("only the finishing actions"),
        }
    }

    fn identity(&self) -> (String, String) {
        (
            format!("{}:{}", self.options.master_host, self.options.master_port),
            self.options.replica_id.clone(),
        )
    }

    fn load_journal(&self) -> Result<Journal, Error> {
        let (m, r) = self.identity();
        let loaded = match self.journal {
            Some(store) => store.load().map_err(|source| Error::Unchanged {
                step: Step::ProbeMaster,
                server: Role::Replica,
                source: Box::new(AdapterError::new(
                    ErrorKind::Journal,
                    format!("cannot read the journal: {source}"),
                )),
            })?,
            None => None,
        };
        Ok(loaded
            .filter(|j| j.master == m && j.replica == r)
            .unwrap_or_else(|| Journal::new(m, r)))
    }

    /// Runs every check, and stops with [`Error::Preconditions`] (nothing changed) if one
    /// blocks; returns the probed state, the findings and the plan of changes.
    pub async fn check(&self, events: &dyn EventSink) -> Result<Checked, Error> {
        let mut p = Progress::new(events, &self.cancel);
        let mut journal = self.load_journal()?;
        self.check_with(&mut p, &mut journal).await
    }

    async fn check_with(
        &self,
        p: &mut Progress<'_>,
        journal: &mut Journal,
    ) -> Result<Checked, Error> {
        let loaded = journal.clone();
        let unchanged = |step, server| {
            move |source| Error::Unchanged {
                step,
                server,
                source,
            }
        };
        let master = p
            .step(Step::ProbeMaster, self.master.probe())
            .await
            .map_err(unchanged(Step::ProbeMaster, Role::Master))?;
        let (replica, status, dbs) = p
            .step(Step::ReplicaChecks, async {
                let info = self.replica.probe().await?;
                let status = self.replica.replication_status().await?;
                let dbs = self.replica.user_databases().await?;
                Ok((info, status, dbs))
            })
            .await
            .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?;
        // Before anything else is decided: the two URLs must reach two servers.
        p.step(Step::ReplicaChecks, self.check_distinct())
            .await
            .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?
            .map_or(Ok(()), |f| Err(Error::Preconditions(vec![f])))?;
        // A journal that does not match the replica (a server rebuilt on the same port)
        // is stale: start over.
        let consistent = (!journal.is_done(Step::CopyData) || !dbs.is_empty())
            && (!journal.is_done(Step::ChangeMaster) || status.is_some());
        if !consistent {
            p.events.emit(&Event::Warning {
                server: Some(Role::Replica),
                message: "the journal does not match the replica's state; starting over".into(),
            });
            *journal = Journal::new(journal.master.clone(), journal.replica.clone());
        }
        let journal = &*journal;
        // What an interrupted earlier run of this same setup left is amsu's own.
        let ours_configured = journal_configured_replica(journal, status.as_ref(), &self.options);
        let status_to_check = status.as_ref().filter(|_| !ours_configured);
        // The databases amsu's interrupted copy created (recorded on the replica) are its
        // own; any other user database is the operator's and needs --force.
        let copy_interrupted = journal.copy_started && !journal.is_done(Step::CopyData);
        let owned = if copy_interrupted {
            self.replica
                .owned_databases()
                .await
                .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?
        } else {
            Vec::new()
        };
        let dbs_to_check: Vec<String> = if journal.is_done(Step::CopyData) {
            // The copy is done and is not run again: nothing on the replica is dropped.
            Vec::new()
        } else {
            dbs.iter().filter(|d| !owned.contains(d)).cloned().collect()
        };
        let mut findings = preflight(
            &master,
            &replica,
            status_to_check,
            &dbs_to_check,
            self.options.force,
        );
        if copy_interrupted && !dbs_to_check.is_empty() {
            if let Some(f) = findings.iter_mut().find(|f| f.code == "replica_not_empty") {
                f.problem = format!(
                    "{}; amsu's interrupted copy did not create these (it recorded {} as its own), so a rerun does not drop them",
                    f.problem,
                    if owned.is_empty() { "no database".to_string() } else { owned.join(", ") }
                );
            }
        }
        let (repl_plan, user_finding) = p
            .step(Step::ReplicationUser, self.plan_repl_user(journal))
            .await
            .map_err(unchanged(Step::ReplicationUser, Role::Master))?;
        findings.extend(user_finding);
        if self.options.positioning == Positioning::Gtid && master.flavor == Flavor::MySql {
            findings.push(
                Finding::blocking(
                    Role::Master,
                    FindingCode::GtidPositioning,
                    "GTID positioning is only supported with MariaDB masters",
                    "replicate by binary log file and position instead of GTID positioning",
                )
                .with_remedy(Remedy::setting_to("positioning", "file")),
            );
        }
        let context = PreflightContext {
            own_replication_config: ours_configured,
            resuming_copy: journal.copy_started,
            master_raised: journal.raised_master.clone(),
        };
        let mut master_globals: Vec<crate::GlobalChange> = Vec::new();
        for check in &self.preflight {
            let more = p
                .step(Step::ReplicaChecks, check.prepare(&context))
                .await
                .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?;
            findings.extend(more.findings);
            profile::journal_pending(&mut master_globals, &more.master_globals);
        }
        if findings.iter().any(|f| f.severity == Severity::Blocking) {
            return Err(Error::Preconditions(findings));
        }
        for w in &findings {
            p.events.emit(&Event::Warning {
                server: Some(w.server),
                message: format!("{} Fix: {}", w.problem, w.fix),
            });
        }
        let replica_globals = if self.options.fast_load && !journal.is_done(Step::CopyData) {
            let names = profile::knob_names(&profile::knobs(&replica, self.options.resize_redo));
            p.step(Step::ReplicaChecks, self.replica.read_globals(&names))
                .await
                .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?
        } else {
            Vec::new()
        };
        let mut checked = Checked {
            replica_globals,
            master,
            replica,
            replica_status: status,
            replica_databases: dbs,
            owned_databases: owned,
            findings,
            repl_user: repl_plan,
            plan: Vec::new(),
            master_globals,
            journal: journal.clone(),
            loaded_journal: loaded.clone(),
        };
        checked.plan = self.plan(&checked, journal);
        Ok(checked)
    }

    async fn check_distinct(&self) -> Result<Option<Finding>, BoxError> {
        crate::identity::distinct_servers(self.master, self.replica).await
    }

    async fn plan_repl_user(
        &self,
        journal: &Journal,
    ) -> Result<(Option<ReplUserPlan>, Option<Finding>), BoxError> {
        let user = &self.options.repl_user;
        if let Some(pw) = &self.options.repl_password {
            if self.master.check_login(user, pw).await? == LoginCheck::Ok {
                return Ok((Some(ReplUserPlan::Reuse(pw.clone())), None));
            }
        }
        let new_password = || {
            self.options
                .repl_password
                .clone()
                .or_else(|| self.options.new_repl_password.clone())
                .unwrap_or_else(Secret::generate)
        };
        if self.master.user_exists(user).await? {
            let ours = journal.created_user.as_ref()
                == Some(&(user.clone(), self.options.repl_user_host.clone()));
            if ours {
                return Ok((Some(ReplUserPlan::ResetPassword(new_password())), None));
            }
            let problem = if self.options.repl_password.is_some() {
                format!(
                    "the replication user '{user}' exists but the given password does not log in"
                )
            } else {
                format!("the replication user '{user}' exists and no password for it was given")
            };
            return Ok((
                None,
                Some(Finding::blocking(
                    Role::Master,
                    FindingCode::ReplUserPassword,
                    problem,
                    format!("give its password (amsu keeps the passwords it generates in ~/.amsu/repl/), or choose another replication user; do not drop '{user}': replicas that replicate as it would stop"),
                ).with_remedy(Remedy::setting("repl_password"))),
            ));
        }
        Ok((Some(ReplUserPlan::Create(new_password())), None))
    }

    /// Every change the setup will make, in order (pure: from the checks and the journal).
    fn plan(&self, c: &Checked, journal: &Journal) -> Vec<Action> {
        let o = &self.options;
        let mut plan = Vec::new();
        // Globals an interrupted earlier run relaxed go back first, whatever comes next.
        if !journal.relaxed.is_empty() {
            plan.push(Action::RestoreReplicaSettings {
                settings: journal.relaxed.clone(),
            });
        }
        // Master globals an interrupted earlier run raised go back first, unless this run
        // keeps them raised (then they are restored at its end, to the journaled original).
        let wanted = &c.master_globals;
        let restore_first: Vec<_> = journal
            .raised_master
            .iter()
            .filter(|p| !wanted.iter().any(|w| w.name == p.name))
            .cloned()
            .collect();
        if !restore_first.is_empty() {
            plan.push(Action::RestoreBinlogRetention {
                settings: restore_first,
            });
        }
        let raise: Vec<_> = wanted
            .iter()
            .filter(|w| {
                !journal
                    .raised_master
                    .iter()
                    .any(|p| p.name == w.name && p.relaxed == w.relaxed)
            })
            .cloned()
            .collect();
        if !raise.is_empty() {
            plan.push(Action::RaiseBinlogRetention { settings: raise });
        }
        match &c.repl_user {
            Some(ReplUserPlan::Create(_)) => plan.push(Action::CreateReplicationUser {
                user: o.repl_user.clone(),
                host: o.repl_user_host.clone(),
            }),
            Some(ReplUserPlan::ResetPassword(_)) => plan.push(Action::ResetReplicationPassword {
                user: o.repl_user.clone(),
                host: o.repl_user_host.clone(),
            }),
            _ => {}
        }
        let ids = server_id_fix(c.master.server_id, c.replica.server_id);
        if let Some(id) = ids.master {
            plan.push(Action::SetMasterServerId { id });
        }
        let configured_by_us =
            journal_configured_replica(journal, c.replica_status.as_ref(), &self.options);
        if c.replica_status.is_some() && !configured_by_us {
            plan.push(Action::ResetReplica);
        }
        let change_master_done = configured_by_us && journal.is_done(Step::ChangeMaster);
        if !journal.is_done(Step::CopyData) {
            // An interrupted copy that can go on keeps what it loaded.
            let resume = journal.copy_started && self.copier.resumable();
            // Drop only what amsu can prove it created (its interrupted copy), unless
            // `force` allows dropping everything; a copy that resumes keeps its own.
            let names: Vec<String> = c
                .replica_databases
                .iter()
                .filter(|d| {
                    let ours = c.owned_databases.contains(d);
                    if resume {
                        o.force && !ours
                    } else {
                        o.force || ours
                    }
                })
                .cloned()
                .collect();
            if !names.is_empty() {
                plan.push(Action::DropReplicaDatabases { names });
            }
            plan.push(Action::ConfigureReplica {
                server_id: ids.replica,
                read_only: true,
            });
            let relaxed = profile::relax(
                &profile::knobs(&c.replica, o.resize_redo),
                &profile::originals(&c.replica_globals, &journal.relaxed),
            );
            if !relaxed.is_empty() {
                plan.push(Action::RelaxReplicaDurability {
                    settings: relaxed.clone(),
                });
            }
            plan.push(Action::CopyData);
            if !relaxed.is_empty() {
                plan.push(Action::RestoreReplicaSettings { settings: relaxed });
            }
        }
        if !change_master_done {
            plan.push(Action::ChangeMaster {
                host: o.master_host.clone(),
                port: o.master_port,
                user: o.repl_user.clone(),
                coordinates: journal.coordinates().cloned(),
                positioning: o.positioning,
                tls: o.tls.clone(),
            });
        } else if matches!(
            c.repl_user,
            Some(ReplUserPlan::Create(_) | ReplUserPlan::ResetPassword(_))
        ) {
            // The replica keeps its position, but the user's password is new.
            plan.push(Action::UpdateReplicaCredentials {
                user: o.repl_user.clone(),
                tls: o.tls.clone(),
            });
        }
        plan.push(Action::StartReplica);
        if o.wait_caught_up || o.verify {
            plan.push(Action::WaitCaughtUp {
                positioning: o.positioning,
            });
        }
        if !wanted.is_empty() {
            plan.push(Action::RestoreBinlogRetention {
                settings: wanted.clone(),
            });
        }
        plan.extend(o.finishing_actions());
        plan
    }

    fn save(&self, journal: &Journal) -> Result<(), BoxError> {
        match self.journal {
            Some(store) => store
                .save(journal)
                .map_err(|e| AdapterError::new(ErrorKind::Journal, e).into()),
            None => Ok(()),
        }
    }

    /// Runs the whole setup: [`check`](Self::check), then the plan, under the run lock.
    /// Every check runs before the first change; a failed check returns
    /// [`Error::Preconditions`] and nothing is changed. A cancelled token (see
    /// [`with_cancellation`](Self::with_cancellation)) ends it like a failure, with
    /// [`Error::is_interrupted`]; dropping the future instead leaves the journal as a crash
    /// would (the action in flight is journaled before it starts), so a rerun resumes.
    pub async fn run(&self, events: Arc<dyn EventSink>) -> Result<SetupReport, Error> {
        self.lock_run().await?;
        let r = self.run_locked(events, None).await;
        self.release_run_lock().await;
        r
    }

    /// Executes the plan of `checked` (from [`check`](Self::check) on this same setup)
    /// under the run lock, without checking again: the plan shown is the plan run. Only
    /// when the journal changed since the check (another run of this setup went on in
    /// between, or the finished setup it recorded no longer replicates) do the checks run
    /// again, since the plan was made from a journal that is no longer true. Errors and
    /// interruption as [`run`](Self::run).
    pub async fn execute(
        &self,
        checked: Checked,
        events: Arc<dyn EventSink>,
    ) -> Result<SetupReport, Error> {
        self.lock_run().await?;
        let r = self.run_locked(events, Some(checked)).await;
        self.release_run_lock().await;
        r
    }

    async fn release_run_lock(&self) {
        if let Err(e) = self.replica.release_lock(RUN_LOCK).await {
            tracing::warn!(error = %e, "could not release the run lock on the replica");
        }
    }

    /// One amsu per replica: the journal's lock and a user-level lock held on the replica
    /// for the whole run ([`RUN_LOCK`]); a second run stops, naming the holder.
    async fn lock_run(&self) -> Result<(), Error> {
        let refused = |source: BoxError| Error::Unchanged {
            step: Step::ProbeMaster,
            server: Role::Replica,
            source,
        };
        if let Some(store) = self.journal {
            store
                .lock()
                .map_err(|e| refused(AdapterError::new(ErrorKind::Journal, e).into()))?;
        }
        match self.replica.hold_lock(RUN_LOCK).await.map_err(refused)? {
            LockOutcome::Acquired => Ok(()),
            LockOutcome::HeldBy(who) => Err(refused(
                format!(
                    "another amsu run is setting up this replica (it holds the lock `{RUN_LOCK}`: {who}); wait for it to end, or stop it, then rerun"
                )
                .into(),
            )),
        }
    }

    async fn run_locked(
        &self,
        events: Arc<dyn EventSink>,
        checked: Option<Checked>,
    ) -> Result<SetupReport, Error> {
        let mut p = Progress::new(&*events, &self.cancel);
        let mut journal = self.load_journal()?;
        let loaded = journal.clone();
        let resumed = !journal.done.is_empty() || journal.copy_started;
        if journal.complete {
            let finishing = self.options.finishing_actions();
            if let Some(mut report) = self.already_done(&mut p, &journal, &finishing).await? {
                // The option file and the verification change nothing on the servers:
                // asked for again, they run again.
                for action in &finishing {
                    self.finish_action(&mut p, action)
                        .await
                        .map_err(|e| p.failed(action.step(), action.server(), e))?;
                }
                report.plan = finishing;
                return Ok(report);
            }
            let (m, r) = self.identity();
            journal = Journal::new(m, r);
        }
        p.master_changes = journal.master_changes.clone();
        p.replica_changes = journal.replica_changes.clone();
        let checked = match checked {
            Some(c) if c.loaded_journal == loaded && !loaded.complete => {
                journal = c.journal.clone();
                c
            }
            _ => self.check_with(&mut p, &mut journal).await?,
        };
        match self
            .execute_plan(&mut p, &checked, &mut journal, events.clone())
            .await
        {
            Ok(mut report) => {
                journal.complete = true;
                journal.stopped = None;
                if let Err(e) = self.save(&journal) {
                    p.events.emit(&Event::Warning {
                        server: None,
                        message: format!("the journal could not be saved: {e}"),
                    });
                }
                report.resumed = resumed;
                Ok(report)
            }
            Err((step, server, source)) => {
                journal.stopped = Some(format!("step {step} failed on the {server}: {source}"));
                self.restore_after_failure(Role::Replica, &mut p, &mut journal)
                    .await;
                self.restore_after_failure(Role::Master, &mut p, &mut journal)
                    .await;
                self.revert_created_user(&mut p, &mut journal).await;
                let _ = self.save(&journal);
                Err(p.failed(step, server, source))
            }
        }
    }

    /// After a failed run: drops the replication user this setup created (in this run or
    /// an interrupted earlier one), so that a failed setup leaves no account behind, and
    /// journals that it did (a rerun creates the user again, and gives a replica already
    /// pointed at the master the new password). A user that existed before is never
    /// dropped (it is not in the journal), nor one replication already runs with (the
    /// failure came while waiting for the catch-up).
    async fn revert_created_user(&self, p: &mut Progress<'_>, journal: &mut Journal) {
        let Some((user, host)) = journal.created_user.clone() else {
            return;
        };
        // A failed CREATE USER changed nothing, and the account may be somebody else's.
        if !journal.is_done(Step::ReplicationUser) {
            return;
        }
        if journal.is_done(Step::StartReplica) {
            p.notes.push(format!(
                "The replication user '{user}'@'{host}' is kept: replication runs as it."
            ));
            return;
        }
        match self.master.drop_replication_user(&user, &host).await {
            Ok(()) => {
                p.changed(
                    Role::Master,
                    format!(
                        "dropped user '{user}'@'{host}' again, since the setup failed (a rerun creates it anew)"
                    ),
                );
                journal.created_user = None;
                journal.reverted_user = Some((user, host));
                journal.done.retain(|s| *s != Step::ReplicationUser);
                journal.master_changes = p.master_changes.clone();
            }
            Err(e) => {
                p.events.emit(&Event::Warning {
                    server: Some(Role::Master),
                    message: format!("could not drop the replication user '{user}'@'{host}': {e}"),
                });
                p.notes.push(format!(
                    "The replication user '{user}'@'{host}' is kept: dropping it failed ({e}); a rerun reuses it, or drop it with `DROP USER '{user}'@'{host}'` on the master."
                ));
            }
        }
    }

    /// After a failed run: puts back the globals changed on `role`'s server — the
    /// replica's relaxed by the fast-load profile, the master's raised by binary log
    /// protection (a rerun would restore them first anyway; the journal keeps them until
    /// it worked).
    async fn restore_after_failure(&self, role: Role, p: &mut Progress<'_>, journal: &mut Journal) {
        let on_master = role == Role::Master;
        let settings = changed_globals(journal, role).clone();
        if settings.is_empty() {
            return;
        }
        let pairs = profile::restore_pairs(&settings);
        let restored = if on_master {
            self.master.set_globals(&pairs).await
        } else {
            self.replica.set_globals(&pairs).await
        };
        match restored {
            Ok(()) => {
                p.changed(
                    role,
                    format!(
                        "restored {}, since the setup failed",
                        profile::describe(&settings, true)
                    ),
                );
                profile::forget_restored(changed_globals(journal, role), &settings);
                if on_master {
                    journal.master_changes = p.master_changes.clone();
                } else {
                    journal.replica_changes = p.replica_changes.clone();
                }
            }
            Err(e) if on_master => p.notes.push(format!(
                "The master's globals {} are still raised for the setup: restoring them failed ({e}); a rerun restores them, or run `SET GLOBAL` with the original values on the master.",
                profile::describe(&settings, false)
            )),
            Err(e) => p.notes.push(format!(
                "The replica's globals {} are still relaxed for the load: restoring them failed ({e}); a rerun restores them first.",
                profile::describe(&settings, false)
            )),
        }
    }

    async fn already_done(
        &self,
        p: &mut Progress<'_>,
        journal: &Journal,
        runs: &[Action],
    ) -> Result<Option<SetupReport>, Error> {
        let unchanged = |step, server| {
            move |source| Error::Unchanged {
                step,
                server,
                source,
            }
        };
        let master = self
            .master
            .probe()
            .await
            .map_err(unchanged(Step::ProbeMaster, Role::Master))?;
        let replica = self
            .replica
            .probe()
            .await
            .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?;
        let status = self
            .replica
            .replication_status()
            .await
            .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?;
        let Some(status) = status.filter(|s| s.master_port == self.options.master_port) else {
            return Ok(None);
        };
        for step in Step::ALL
            .into_iter()
            .filter(|s| runs.iter().all(|a| a.step() != *s))
        {
            p.events.emit(&Event::StepSkipped {
                step,
                reason: "an earlier run finished this setup".into(),
            });
        }
        Ok(Some(SetupReport {
            master,
            replica,
            master_changes: vec![],
            replica_changes: vec![],
            warnings: vec![],
            copy: journal.copy.clone().unwrap_or_default(),
            replication: status,
            caught_up_to: None,
            step_millis: vec![],
            plan: vec![],
            resumed: false,
            already_done: true,
        }))
    }

    /// The journal holds the finished copy: the copy's resume records and the replica's
    /// ownership records can go (failures are logged: the setup's outcome stands).
    async fn forget_copy_records(&self) {
        if let Err(e) = self.copier.finished().await {
            tracing::warn!(error = %e, "could not remove the copy's resume records");
        }
        if let Err(e) = self.replica.forget_owned().await {
            tracing::warn!(error = %e, "could not remove the copy's ownership records");
        }
    }

    async fn execute_plan(
        &self,
        p: &mut Progress<'_>,
        checked: &Checked,
        journal: &mut Journal,
        events: Arc<dyn EventSink>,
    ) -> Result<SetupReport, (Step, Role, BoxError)> {
        let o = &self.options;
        let mut master_info = checked.master.clone();
        let mut repl_password = match &checked.repl_user {
            Some(ReplUserPlan::Reuse(pw)) => Some(pw.clone()),
            _ => None,
        };
        let mut copy = journal.copy.clone();
        let mut replication = ReplicationStatus::default();
        let mut caught_up_to = None;
        if checked.plan.iter().all(|a| a.step() != Step::MasterConfig) {
            p.events.emit(&Event::StepSkipped {
                step: Step::MasterConfig,
                reason: format!(
                    "the master's server_id {} and log_bin are fine",
                    checked.master.server_id
                ),
            });
        }
        if journal.is_done(Step::CopyData) {
            // A run stopped between journaling the finished copy and removing its records
            // leaves them behind: remove them now (idempotent).
            self.forget_copy_records().await;
        }
        for action in &checked.plan {
            let step = action.step();
            let fail = |e: BoxError| (step, action.server(), e);
            // Journal the intent first: after a crash in the middle of this action, the
            // rerun knows that what it finds may be amsu's own doing.
            journal.in_flight = Some(step);
            if let Action::CreateReplicationUser { user, host } = action {
                journal.created_user = Some((user.clone(), host.clone()));
                journal.reverted_user = None;
            }
            self.save(journal).map_err(fail)?;
            match action {
                Action::CreateReplicationUser { user, host } => {
                    let Some(ReplUserPlan::Create(pw)) = &checked.repl_user else {
                        unreachable!("planned from ReplUserPlan::Create")
                    };
                    p.step(step, self.master.create_replication_user(user, host, pw))
                        .await
                        .map_err(fail)?;
                    p.changed(
                        Role::Master,
                        format!("created user '{user}'@'{host}' with REPLICATION SLAVE"),
                    );
                    repl_password = Some(pw.clone());
                    // Prove the login works from here (the replica's host) before copying:
                    // an account matched first (an anonymous ''@'localhost', or the same
                    // user with a more specific host) would make replication fail later.
                    let login = self.master.check_login(user, pw).await.map_err(fail)?;
                    if login != LoginCheck::Ok {
                        return Err(fail(format!(
                            "the new replication user '{user}'@'{host}' cannot log in to the master from this host: another account matches this host first (an anonymous account such as ''@'localhost', or '{user}' with a more specific host). Drop the anonymous accounts on the master (DROP USER ''@'localhost'; DROP USER ''@'<hostname>'), or create the replication account for this host yourself"
                        )
                        .into()));
                    }
                }
                Action::ResetReplicationPassword { user, host } => {
                    let Some(ReplUserPlan::ResetPassword(pw)) = &checked.repl_user else {
                        unreachable!("planned from ReplUserPlan::ResetPassword")
                    };
                    p.step(step, self.master.set_replication_password(user, host, pw))
                        .await
                        .map_err(fail)?;
                    p.changed(
                        Role::Master,
                        format!("new password for '{user}'@'{host}' (created by an interrupted earlier run)"),
                    );
                    repl_password = Some(pw.clone());
                }
                Action::SetMasterServerId { id } => {
                    p.step(step, self.master.set_server_id(*id))
                        .await
                        .map_err(fail)?;
                    p.changed(
                        Role::Master,
                        format!(
                            "server_id changed from {} to {id} (SET GLOBAL; not persistent: add `server_id = {id}` under [mysqld] in the master's option file)",
                            checked.master.server_id
                        ),
                    );
                    master_info.server_id = *id;
                }
                Action::ResetReplica => {
                    p.step(step, self.replica.reset_replication())
                        .await
                        .map_err(fail)?;
                    p.changed(
                        Role::Replica,
                        "stopped and reset its old replication configuration".into(),
                    );
                }
                Action::DropReplicaDatabases { names } => {
                    p.step(step, self.replica.drop_databases(names))
                        .await
                        .map_err(fail)?;
                    p.changed(
                        Role::Replica,
                        format!("dropped databases {}", names.join(", ")),
                    );
                }
                Action::ConfigureReplica {
                    server_id,
                    read_only,
                } => {
                    p.step(step, self.replica.configure(*server_id, *read_only))
                        .await
                        .map_err(fail)?;
                    if let Some(id) = server_id {
                        p.changed(
                            Role::Replica,
                            format!(
                                "server_id changed from {} to {id} (it was 0 or equal to the master's; SET GLOBAL, runtime only: lost on restart unless in the replica's option file)",
                                checked.replica.server_id
                            ),
                        );
                    }
                    p.changed(
                        Role::Replica,
                        format!(
                            "read_only = {} (SET GLOBAL, runtime only: lost on restart unless in the replica's option file)",
                            if *read_only { "ON" } else { "OFF" }
                        ),
                    );
                }
                Action::RelaxReplicaDurability { settings }
                | Action::RaiseBinlogRetention { settings } => {
                    let on_master = matches!(action, Action::RaiseBinlogRetention { .. });
                    // The originals are journaled before anything changes: after a crash
                    // the rerun knows what to put back.
                    let role = if on_master {
                        Role::Master
                    } else {
                        Role::Replica
                    };
                    profile::journal_pending(changed_globals(journal, role), settings);
                    self.save(journal).map_err(fail)?;
                    let pairs = profile::relaxed_pairs(settings);
                    let (change, what, until) = if on_master {
                        let change = self.master.set_globals(&pairs);
                        (change, "binary log protection", "at the end of the setup")
                    } else {
                        let change = self.replica.set_globals(&pairs);
                        (change, "fast-load profile", "before replication starts")
                    };
                    p.step(step, change).await.map_err(fail)?;
                    p.changed(
                        role,
                        format!(
                            "{what}: {} (SET GLOBAL; restored {until})",
                            profile::describe(settings, false)
                        ),
                    );
                }
                Action::RestoreReplicaSettings { settings }
                | Action::RestoreBinlogRetention { settings } => {
                    let on_master = matches!(action, Action::RestoreBinlogRetention { .. });
                    let pairs = profile::restore_pairs(settings);
                    let (role, change) = if on_master {
                        (Role::Master, self.master.set_globals(&pairs))
                    } else {
                        (Role::Replica, self.replica.set_globals(&pairs))
                    };
                    p.step(step, change).await.map_err(fail)?;
                    profile::forget_restored(changed_globals(journal, role), settings);
                    p.changed(
                        role,
                        format!("restored {}", profile::describe(settings, true)),
                    );
                }
                Action::CopyData => {
                    let resume = journal.copy_started && self.copier.resumable();
                    journal.copy_started = true;
                    self.save(journal).map_err(fail)?;
                    let run = async {
                        if resume {
                            tracing::info!("resuming the interrupted copy");
                            self.copier.resume(events.clone()).await
                        } else {
                            self.copier.copy(events.clone()).await
                        }
                    };
                    let report = p.step(step, run).await.map_err(fail)?;
                    if report.coordinates.is_none() {
                        return Err(fail("the copy reported no binary log coordinates".into()));
                    }
                    p.changed(
                        Role::Replica,
                        format!(
                            "loaded {} databases, {} tables, {} rows",
                            report.databases, report.tables, report.rows
                        ),
                    );
                    copy = Some(report);
                }
                Action::ChangeMaster {
                    host,
                    port,
                    user,
                    positioning,
                    tls,
                    ..
                } => {
                    let coordinates = copy
                        .as_ref()
                        .and_then(|c| c.coordinates.clone())
                        .ok_or_else(|| fail("no coordinates to replicate from".into()))?;
                    let password = repl_password
                        .clone()
                        .ok_or_else(|| fail("no replication password".into()))?;
                    let source = ReplicationSource {
                        host: host.clone(),
                        port: *port,
                        user: user.clone(),
                        password,
                        coordinates: coordinates.clone(),
                        positioning: *positioning,
                        tls: tls.clone(),
                    };
                    p.step(step, self.replica.change_master(&source))
                        .await
                        .map_err(fail)?;
                    let by = match positioning {
                        Positioning::Gtid => " by GTID",
                        _ => "",
                    };
                    let over = if tls.ssl { " over TLS" } else { "" };
                    p.changed(
                        Role::Replica,
                        format!(
                            "CHANGE MASTER TO {host}:{port} as '{user}' at {coordinates}{by}{over}"
                        ),
                    );
                }
                Action::UpdateReplicaCredentials { user, tls } => {
                    let password = repl_password
                        .clone()
                        .ok_or_else(|| fail("no replication password".into()))?;
                    p.step(
                        step,
                        self.replica
                            .set_replication_credentials(user, &password, tls),
                    )
                    .await
                    .map_err(fail)?;
                    p.changed(
                        Role::Replica,
                        format!("new replication credentials for '{user}' (position kept)"),
                    );
                }
                Action::StartReplica => {
                    replication = p
                        .step(step, self.replica.start_replication(o.start_timeout))
                        .await
                        .map_err(fail)?;
                    p.changed(Role::Replica, "replication started".into());
                    p.events.emit(&Event::Replication {
                        seconds_behind: replication.seconds_behind,
                    });
                }
                Action::WaitCaughtUp { positioning } => {
                    let target = p
                        .step(step, async {
                            let target = self.master.binlog_position().await?;
                            match target.gtid.as_deref().filter(|g| !g.is_empty()) {
                                Some(gtid) if *positioning == Positioning::Gtid => {
                                    self.replica
                                        .wait_until_gtid_applied(gtid, o.catch_up_timeout)
                                        .await?
                                }
                                _ => {
                                    self.replica
                                        .wait_until_applied(&target, o.catch_up_timeout)
                                        .await?
                                }
                            }
                            Ok(target)
                        })
                        .await
                        .map_err(fail)?;
                    caught_up_to = Some(target);
                }
                Action::WriteReplicaConfig { .. } | Action::VerifyData => {
                    self.finish_action(p, action).await.map_err(fail)?;
                }
            }
            journal.in_flight = None;
            if !journal.done.contains(&step) && action_finishes_step(action, &checked.plan) {
                journal.done.push(step);
            }
            journal.copy = copy.clone();
            journal.master_changes = p.master_changes.clone();
            journal.replica_changes = p.replica_changes.clone();
            self.save(journal).map_err(fail)?;
            if matches!(action, Action::CopyData) {
                self.forget_copy_records().await;
            }
        }
        Ok(SetupReport {
            master: master_info,
            replica: checked.replica.clone(),
            master_changes: p.master_changes.clone(),
            replica_changes: p.replica_changes.clone(),
            warnings: checked.findings.clone(),
            copy: copy.unwrap_or_default(),
            replication,
            caught_up_to,
            step_millis: p.step_millis.clone(),
            plan: checked.plan.clone(),
            resumed: false,
            already_done: false,
        })
    }
}

/// True when the replica's replication configuration is amsu's own from an earlier run
/// of this setup (finished or interrupted in the middle of `CHANGE MASTER`).
fn journal_configured_replica(
    journal: &Journal,
    status: Option<&ReplicationStatus>,
    o: &SetupOptions,
) -> bool {
    let from_our_master = status.is_some_and(|s| s.master_port == o.master_port);
    from_our_master
        && (journal.is_done(Step::ChangeMaster) || journal.in_flight == Some(Step::ChangeMaster))
}

/// True when `action` is the last planned action of its step.
fn action_finishes_step(action: &Action, plan: &[Action]) -> bool {
    plan.iter().rev().find(|a| a.step() == action.step()) == Some(action)
}

/// The result of the checks: what was probed and what was decided.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Checked {
    /// The master.
    pub master: ServerInfo,
    /// The replica.
    pub replica: ServerInfo,
    /// The replica's replication configuration, if any.
    pub replica_status: Option<ReplicationStatus>,
    /// The replica's user databases.
    pub replica_databases: Vec<String>,
    /// Those of them that amsu's interrupted earlier copy created (recorded on the
    /// replica): a rerun drops these without `force`.
    pub owned_databases: Vec<String>,
    /// Every finding (none blocking).
    pub findings: Vec<Finding>,
    /// What the replication-user step will do.
    pub repl_user: Option<ReplUserPlan>,
    /// Every change the setup will make, in order.
    pub plan: Vec<Action>,
    /// The replica's current values of the fast-load profile's globals.
    pub replica_globals: Vec<(String, Option<String>)>,
    /// The master globals binary log protection raises for the setup's duration (from
    /// the checks, with the originals an interrupted earlier run journaled).
    pub master_globals: Vec<crate::GlobalChange>,
    /// The journal the plan was made from (after a stale one was set aside).
    pub(crate) journal: Journal,
    /// The journal as the checks loaded it: [`Setup::execute`] refuses a journal that
    /// changed since (another run of the same setup went on in between).
    pub(crate) loaded_journal: Journal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Flavor, LoginCheck, MockDataCopier, MockFinishing, MockMasterServer, MockReplicaServer,
        NoEvents, ServerIdentity, Version,
    };
    use mockall::{predicate::eq, Sequence};

    fn info(server_id: u32, log_bin: bool) -> ServerInfo {
        ServerInfo {
            flavor: Flavor::MariaDb,
            version: Version::new(10, 11, 19),
            version_string: "10.11.19-MariaDB".into(),
            server_id,
            log_bin,
            binlog_format: "ROW".into(),
            read_only: false,
        }
    }

    fn coords() -> Coordinates {
        Coordinates {
            file: "bin.000001".into(),
            position: 42,
            gtid: None,
        }
    }

    /// Mocks for a master and a replica that pass every check.
    fn healthy() -> (MockMasterServer, MockReplicaServer) {
        let mut m = MockMasterServer::new();
        m.expect_probe().returning(|| Ok(info(1, true)));
        m.expect_check_login().returning(|_, _| Ok(LoginCheck::Ok));
        m.expect_user_exists().returning(|_| Ok(false));
        let mut r = MockReplicaServer::new();
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| Ok(None));
        r.expect_user_databases().returning(|| Ok(vec![]));
        two_servers(&mut m, &mut r);
        (m, r)
    }

    /// Identity, locks and ownership records of two distinct servers, nothing owned.
    fn two_servers(m: &mut MockMasterServer, r: &mut MockReplicaServer) {
        master_identity(m);
        replica_identity(r);
    }

    /// In `seq`: the copy, the relaxed globals restored, `CHANGE MASTER`, `START SLAVE`.
    fn copy_restore_then_start(
        r: &mut MockReplicaServer,
        c: &mut MockDataCopier,
        seq: &mut Sequence,
    ) {
        c.expect_copy().times(1).in_sequence(seq).returning(|_| {
            Ok(CopyReport {
                coordinates: Some(coords()),
                ..Default::default()
            })
        });
        c.expect_finished().returning(|| Ok(()));
        r.expect_set_globals()
            .withf(|pairs| pairs == profile::restore_pairs(&relaxed_settings()).as_slice())
            .times(1)
            .in_sequence(seq)
            .returning(|_| Ok(()));
        r.expect_change_master()
            .times(1)
            .in_sequence(seq)
            .returning(|_| Ok(()));
        r.expect_start_replication()
            .times(1)
            .in_sequence(seq)
            .returning(|_| Ok(ReplicationStatus::default()));
    }

    fn master_identity(m: &mut MockMasterServer) {
        m.expect_identity()
            .returning(|| Ok(ServerIdentity::new("db1", 3306, "/var/lib/mysql/")));
        m.expect_lock_in_use().returning(|_| Ok(false));
    }

    fn replica_identity(r: &mut MockReplicaServer) {
        r.expect_identity()
            .returning(|| Ok(ServerIdentity::new("db2", 3306, "/var/lib/mysql/")));
        r.expect_hold_lock()
            .returning(|_| Ok(LockOutcome::Acquired));
        r.expect_release_lock().returning(|_| Ok(()));
        r.expect_owned_databases().returning(|| Ok(vec![]));
        r.expect_forget_owned().returning(|| Ok(()));
        r.expect_read_globals()
            .returning(|names| Ok(names.iter().map(|n| (n.clone(), None)).collect()));
    }

    fn forbid_changes(m: &mut MockMasterServer, r: &mut MockReplicaServer, c: &mut MockDataCopier) {
        m.expect_create_replication_user().never();
        m.expect_drop_replication_user().never();
        m.expect_set_server_id().never();
        r.expect_set_replication_credentials().never();
        r.expect_configure().never();
        r.expect_drop_databases().never();
        r.expect_reset_replication().never();
        r.expect_change_master().never();
        r.expect_start_replication().never();
        c.expect_copy().never();
    }

    #[tokio::test]
    async fn runs_the_changing_steps_in_order() {
        let (mut m, mut r) = healthy();
        let mut c = MockDataCopier::new();
        let mut seq = Sequence::new();
        m.expect_create_replication_user()
            .withf(|u, h, _| u == "amsu_repl" && h == "%")
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        r.expect_configure()
            .with(eq(None), eq(true))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        c.expect_copy()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| {
                Ok(CopyReport {
                    coordinates: Some(coords()),
                    ..Default::default()
                })
            });
        c.expect_finished().times(1).returning(|| Ok(()));
        r.expect_change_master()
            .withf(|s| s.coordinates == coords() && s.user == "amsu_repl" && s.port == 3306)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        r.expect_start_replication()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(ReplicationStatus::default()));
        m.expect_set_server_id().never();
        let setup = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306));
        let report = setup.run(Arc::new(NoEvents)).await.expect("setup runs");
        assert_eq!(report.copy.coordinates, Some(coords()));
        assert_eq!(report.master_changes.len(), 1);
    }

    #[tokio::test]
    async fn binary_log_off_stops_before_any_change() {
        let (mut m, mut r) = healthy();
        m.checkpoint();
        m.expect_probe().returning(|| Ok(info(1, false)));
        m.expect_check_login()
            .returning(|_, _| Ok(LoginCheck::Denied));
        m.expect_user_exists().returning(|_| Ok(false));
        two_servers(&mut m, &mut r);
        let mut c = MockDataCopier::new();
        forbid_changes(&mut m, &mut r, &mut c);
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert_eq!(err.findings()[0].code, "log_bin_off");
        assert!(err.to_string().contains("log_bin"));
    }

    #[tokio::test]
    async fn non_empty_replica_is_refused_without_force() {
        let (mut m, mut r) = healthy();
        r.checkpoint();
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| Ok(None));
        r.expect_user_databases()
            .returning(|| Ok(vec!["precious".into()]));
        two_servers(&mut m, &mut r);
        let mut c = MockDataCopier::new();
        forbid_changes(&mut m, &mut r, &mut c);
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("precious"));
        assert!(err.to_string().contains("(force)"));
    }

    #[tokio::test]
    async fn unreachable_replica_changes_nothing() {
        let (mut m, mut r) = healthy();
        r.checkpoint();
        r.expect_probe()
            .returning(|| Err("connection refused".into()));
        two_servers(&mut m, &mut r);
        let mut c = MockDataCopier::new();
        forbid_changes(&mut m, &mut r, &mut c);
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Unchanged {
                step: Step::ReplicaChecks,
                ..
            }
        ));
        assert_eq!(err.exit_code(), 3);
    }

    #[tokio::test]
    async fn existing_user_without_password_is_a_blocking_finding() {
        let (mut m, mut r) = healthy();
        m.checkpoint();
        m.expect_probe().returning(|| Ok(info(1, true)));
        m.expect_user_exists().returning(|_| Ok(true));
        two_servers(&mut m, &mut r);
        let mut c = MockDataCopier::new();
        forbid_changes(&mut m, &mut r, &mut c);
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        assert_eq!(err.findings()[0].code, "repl_user_password");
        assert!(err.to_string().contains("give its password"));
    }

    #[tokio::test]
    async fn failed_copy_drops_the_user_it_created() {
        let (mut m, mut r) = healthy();
        m.expect_create_replication_user()
            .returning(|_, _, _| Ok(()));
        m.expect_drop_replication_user()
            .withf(|u, h| u == "amsu_repl" && h == "%")
            .times(1)
            .returning(|_, _| Ok(()));
        r.expect_configure().returning(|_, _| Ok(()));
        let mut c = MockDataCopier::new();
        c.expect_copy().returning(|_| Err("disk full".into()));
        r.expect_change_master().never();
        let store = MemJournal::default();
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
            .with_journal(&store)
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let msg = err.to_string();
        assert!(
            msg.contains("copy_data") && msg.contains("disk full"),
            "{msg}"
        );
        assert!(msg.contains("created user 'amsu_repl'@'%'"), "{msg}");
        assert!(
            msg.contains("dropped user 'amsu_repl'@'%' again, since the setup failed"),
            "{msg}"
        );
        assert!(msg.contains("rerun the same command"), "{msg}");
        // The journal says so: a rerun creates the user again.
        let j = store.0.lock().unwrap().clone().unwrap();
        assert_eq!(j.created_user, None);
        assert_eq!(j.reverted_user, Some(("amsu_repl".into(), "%".into())));
        assert!(!j.is_done(Step::ReplicationUser), "{:?}", j.done);
        assert!(j.copy_started);
    }

    #[tokio::test]
    async fn failed_copy_keeps_a_user_that_existed() {
        let (mut m, mut r) = healthy();
        m.checkpoint();
        master_identity(&mut m);
        m.expect_probe().returning(|| Ok(info(1, true)));
        m.expect_check_login().returning(|_, _| Ok(LoginCheck::Ok));
        m.expect_create_replication_user().never();
        m.expect_drop_replication_user().never();
        r.expect_configure().returning(|_, _| Ok(()));
        let mut c = MockDataCopier::new();
        c.expect_copy().returning(|_| Err("disk full".into()));
        let opts = SetupOptions::new("db1", 3306).repl_password(Some(Secret::new("known")));
        let err = Setup::new(&m, &r, &c, opts)
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("disk full") && !msg.contains("dropped user"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn failed_start_drops_the_user_and_the_rerun_gives_the_replica_the_new_one() {
        let store = MemJournal::default();
        let (mut m, mut r) = healthy();
        m.expect_create_replication_user()
            .times(2)
            .returning(|_, _, _| Ok(()));
        m.expect_drop_replication_user()
            .times(1)
            .returning(|_, _| Ok(()));
        r.expect_configure().returning(|_, _| Ok(()));
        let mut c = MockDataCopier::new();
        c.expect_finished().returning(|| Ok(()));
        c.expect_copy().times(1).returning(|_| {
            Ok(CopyReport {
                coordinates: Some(coords()),
                ..Default::default()
            })
        });
        r.expect_change_master().times(1).returning(|_| Ok(()));
        let mut seq = Sequence::new();
        r.expect_start_replication()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err("Last_IO_Error: cannot connect".into()));
        let opts = || SetupOptions::new("db1", 3306).replica_id("r:1");
        let err = Setup::new(&m, &r, &c, opts())
            .with_journal(&store)
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("dropped user 'amsu_repl'@'%' again"), "{msg}");
        let j = store.0.lock().unwrap().clone().unwrap();
        assert!(j.is_done(Step::ChangeMaster) && !j.is_done(Step::ReplicationUser));

        // The rerun: the user is created anew (user_exists is false again) and the
        // configured replica gets the new password, keeping its position.
        r.checkpoint();
        replica_identity(&mut r);
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| {
            Ok(Some(ReplicationStatus {
                master_port: 3306,
                ..Default::default()
            }))
        });
        r.expect_user_databases()
            .returning(|| Ok(vec!["shop".into()]));
        r.expect_reset_replication().never();
        r.expect_change_master().never();
        r.expect_set_replication_credentials()
            .withf(|u, _, t| u == "amsu_repl" && !t.ssl)
            .times(1)
            .returning(|_, _, _| Ok(()));
        r.expect_start_replication()
            .times(1)
            .returning(|_| Ok(ReplicationStatus::default()));
        let report = Setup::new(&m, &r, &c, opts())
            .with_journal(&store)
            .run(Arc::new(NoEvents))
            .await
            .expect("the rerun finishes");
        assert!(report.resumed);
        assert!(
            report
                .replica_changes
                .iter()
                .any(|c| c.contains("new replication credentials")),
            "{:?}",
            report.replica_changes
        );
    }

    #[tokio::test]
    async fn failed_catch_up_keeps_the_user_replication_runs_as() {
        let (mut m, mut r) = healthy();
        m.expect_create_replication_user()
            .returning(|_, _, _| Ok(()));
        m.expect_drop_replication_user().never();
        m.expect_binlog_position().returning(|| Ok(coords()));
        r.expect_configure().returning(|_, _| Ok(()));
        let mut c = MockDataCopier::new();
        c.expect_finished().returning(|| Ok(()));
        c.expect_copy().returning(|_| {
            Ok(CopyReport {
                coordinates: Some(coords()),
                ..Default::default()
            })
        });
        r.expect_change_master().returning(|_| Ok(()));
        r.expect_start_replication()
            .returning(|_| Ok(ReplicationStatus::default()));
        r.expect_wait_until_applied()
            .returning(|_, _| Err("timed out".into()));
        let err = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306).wait_caught_up(true),
        )
        .run(Arc::new(NoEvents))
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("'amsu_repl'@'%' is kept: replication runs as it"),
            "{msg}"
        );
    }

    /// Healthy servers whose copy succeeds, with the master at bin.000002:900 (GTID
    /// 0-1-42) when the catch-up starts.
    fn copied_and_master_at_900() -> (MockMasterServer, MockReplicaServer, MockDataCopier) {
        let (mut m, mut r) = healthy();
        m.expect_create_replication_user()
            .returning(|_, _, _| Ok(()));
        m.expect_binlog_position().returning(|| {
            Ok(Coordinates {
                file: "bin.000002".into(),
                position: 900,
                gtid: Some("0-1-42".into()),
            })
        });
        r.expect_configure().returning(|_, _| Ok(()));
        let mut c = MockDataCopier::new();
        c.expect_finished().returning(|| Ok(()));
        c.expect_copy().returning(|_| {
            Ok(CopyReport {
                coordinates: Some(coords()),
                ..Default::default()
            })
        });
        (m, r, c)
    }

    #[tokio::test]
    async fn gtid_positioning_waits_by_gtid_with_tls() {
        let (m, mut r, c) = copied_and_master_at_900();
        let tls = ReplicationTls::new(false, Some("/etc/ca.pem".into()), None, None, true);
        let want = tls.clone();
        r.expect_change_master()
            .withf(move |s| s.positioning == Positioning::Gtid && s.tls == want && s.tls.ssl)
            .times(1)
            .returning(|_| Ok(()));
        r.expect_start_replication()
            .returning(|_| Ok(ReplicationStatus::default()));
        r.expect_wait_until_gtid_applied()
            .withf(|g, _| g == "0-1-42")
            .times(1)
            .returning(|_, _| Ok(()));
        r.expect_wait_until_applied().never();
        let opts = SetupOptions::new("db1", 3306)
            .wait_caught_up(true)
            .positioning(Positioning::Gtid)
            .tls(tls);
        let report = Setup::new(&m, &r, &c, opts)
            .run(Arc::new(NoEvents))
            .await
            .expect("setup runs");
        assert_eq!(
            report.caught_up_to.and_then(|c| c.gtid).as_deref(),
            Some("0-1-42")
        );
        assert!(
            report
                .replica_changes
                .iter()
                .any(|c| c.ends_with("by GTID over TLS")),
            "{:?}",
            report.replica_changes
        );
    }

    #[tokio::test]
    async fn file_positioning_waits_by_position() {
        let (m, mut r, c) = copied_and_master_at_900();
        r.expect_change_master()
            .withf(|s| s.positioning == Positioning::FilePosition && !s.tls.ssl)
            .returning(|_| Ok(()));
        r.expect_start_replication()
            .returning(|_| Ok(ReplicationStatus::default()));
        r.expect_wait_until_gtid_applied().never();
        r.expect_wait_until_applied()
            .withf(|t, _| t.file == "bin.000002" && t.position == 900)
            .times(1)
            .returning(|_, _| Ok(()));
        Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306).wait_caught_up(true),
        )
        .run(Arc::new(NoEvents))
        .await
        .expect("setup runs");
    }

    /// The option file and the verification are the last actions of the plan, after the
    /// catch-up (which the verification implies), each journaled as done.
    #[tokio::test]
    async fn option_file_and_verification_are_journaled_plan_actions() {
        let (m, mut r, c) = copied_and_master_at_900();
        r.expect_change_master().returning(|_| Ok(()));
        r.expect_start_replication()
            .returning(|_| Ok(ReplicationStatus::default()));
        r.expect_wait_until_applied()
            .times(1)
            .returning(|_, _| Ok(()));
        let mut f = MockFinishing::new();
        let mut seq = Sequence::new();
        f.expect_write_replica_config()
            .withf(|p, h| p == std::path::Path::new("/etc/mysql/amsu.cnf") && h.is_none())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(()));
        f.expect_verify()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| Ok(()));
        let store = MemJournal::default();
        let opts = SetupOptions::new("db1", 3306)
            .replica_id("r:1")
            .replica_config_file(Some(("/etc/mysql/amsu.cnf".into(), None)))
            .verify(true);
        let report = Setup::new(&m, &r, &c, opts)
            .with_journal(&store)
            .with_finishing(&f)
            .run(Arc::new(NoEvents))
            .await
            .expect("setup runs");
        let steps: Vec<Step> = report.plan.iter().map(Action::step).collect();
        assert_eq!(
            steps[steps.len() - 3..],
            [Step::CatchUp, Step::ReplicaConfigFile, Step::Verify]
        );
        let j = store.0.lock().unwrap().clone().unwrap();
        assert!(j.complete && j.is_done(Step::ReplicaConfigFile) && j.is_done(Step::Verify));
    }

    /// A failed verification fails the setup at its step; the journal is not complete,
    /// so a rerun verifies again.
    #[tokio::test]
    async fn a_failed_verification_leaves_the_setup_unfinished() {
        let (m, mut r, c) = copied_and_master_at_900();
        r.expect_change_master().returning(|_| Ok(()));
        r.expect_start_replication()
            .returning(|_| Ok(ReplicationStatus::default()));
        r.expect_wait_until_applied().returning(|_, _| Ok(()));
        let mut f = MockFinishing::new();
        f.expect_verify()
            .times(1)
            .returning(|| Err("connection lost".into()));
        let store = MemJournal::default();
        let opts = SetupOptions::new("db1", 3306)
            .replica_id("r:1")
            .verify(true);
        let e = Setup::new(&m, &r, &c, opts)
            .with_journal(&store)
            .with_finishing(&f)
            .run(Arc::new(NoEvents))
            .await
            .expect_err("verification failed");
        assert!(
            matches!(
                e,
                Error::Failed {
                    step: Step::Verify,
                    ..
                }
            ),
            "{e:?}"
        );
        let j = store.0.lock().unwrap().clone().unwrap();
        assert!(!j.complete && j.is_done(Step::StartReplica) && !j.is_done(Step::Verify));
        assert_eq!(j.in_flight, Some(Step::Verify));
    }

    #[tokio::test]
    async fn gtid_positioning_is_refused_for_mysql() {
        let (mut m, mut r) = healthy();
        m.checkpoint();
        let mut my = info(1, true);
        my.flavor = Flavor::MySql;
        m.expect_probe().returning(move || Ok(my.clone()));
        m.expect_check_login()
            .returning(|_, _| Ok(LoginCheck::Denied));
        m.expect_user_exists().returning(|_| Ok(false));
        r.checkpoint();
        let mut my = info(2, false);
        my.flavor = Flavor::MySql;
        r.expect_probe().returning(move || Ok(my.clone()));
        r.expect_replication_status().returning(|| Ok(None));
        r.expect_user_databases().returning(|| Ok(vec![]));
        two_servers(&mut m, &mut r);
        let mut c = MockDataCopier::new();
        forbid_changes(&mut m, &mut r, &mut c);
        let err = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306).positioning(Positioning::Gtid),
        )
        .run(Arc::new(NoEvents))
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert_eq!(err.findings()[0].code, "gtid_positioning");
    }

    /// A journal kept in memory (a real fake, not a mock).
    #[derive(Default)]
    struct MemJournal(std::sync::Mutex<Option<Journal>>);

    impl JournalStore for MemJournal {
        fn load(&self) -> Result<Option<Journal>, BoxError> {
            Ok(self.0.lock().unwrap().clone())
        }
        fn save(&self, j: &Journal) -> Result<(), BoxError> {
            *self.0.lock().unwrap() = Some(j.clone());
            Ok(())
        }
    }

    fn relaxing_replica(r: &mut MockReplicaServer) {
        r.expect_read_globals().returning(|names| {
            Ok(names
                .iter()
                .map(|n| {
                    let v = match n.as_str() {
                        "innodb_flush_log_at_trx_commit" => "1",
                        "sync_binlog" => "1",
                        "innodb_log_file_size" => "100663296",
                        "innodb_buffer_pool_size" => "17179869184",
                        _ => return (n.clone(), None),
                    };
                    (n.clone(), Some(v.to_string()))
                })
                .collect())
        });
    }

    fn relaxed_settings() -> Vec<crate::GlobalChange> {
        let g = |n: &str, o: &str, r: &str| crate::GlobalChange {
            name: n.into(),
            original: o.into(),
            relaxed: r.into(),
        };
        vec![
            g("innodb_flush_log_at_trx_commit", "1", "0"),
            g("sync_binlog", "1", "0"),
            g(
                "innodb_log_file_size",
                "100663296",
                &profile::MAX_REDO_LOG_BYTES.to_string(),
            ),
        ]
    }

    #[tokio::test]
    async fn relaxes_durability_for_the_copy_and_restores_it_before_replication() {
        let store = Arc::new(MemJournal::default());
        let (mut m, mut r) = (MockMasterServer::new(), MockReplicaServer::new());
        m.expect_probe().returning(|| Ok(info(1, true)));
        m.expect_check_login().returning(|_, _| Ok(LoginCheck::Ok));
        m.expect_user_exists().returning(|_| Ok(false));
        m.expect_create_replication_user()
            .returning(|_, _, _| Ok(()));
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| Ok(None));
        r.expect_user_databases().returning(|| Ok(vec![]));
        r.expect_configure().returning(|_, _| Ok(()));
        relaxing_replica(&mut r);
        let mut seq = Sequence::new();
        let journaled = store.clone();
        r.expect_set_globals()
            .withf(|pairs| pairs == profile::relaxed_pairs(&relaxed_settings()).as_slice())
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| {
                // The originals are journaled before the first change.
                let j = journaled.0.lock().unwrap().clone().expect("journal saved");
                assert_eq!(j.relaxed, relaxed_settings());
                Ok(())
            });
        let mut c = MockDataCopier::new();
        copy_restore_then_start(&mut r, &mut c, &mut seq);
        two_servers(&mut m, &mut r);
        let setup = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306)
                .replica_id("r:1")
                .resize_redo_log(true),
        )
        .with_journal(&*store);
        let report = setup.run(Arc::new(NoEvents)).await.expect("setup runs");
        let copy_at = report.plan.iter().position(|a| *a == Action::CopyData);
        assert_eq!(
            report.plan[copy_at.unwrap() - 1],
            Action::RelaxReplicaDurability {
                settings: relaxed_settings()
            }
        );
        assert_eq!(
            report.plan[copy_at.unwrap() + 1],
            Action::RestoreReplicaSettings {
                settings: relaxed_settings()
            }
        );
        assert!(store.0.lock().unwrap().as_ref().unwrap().relaxed.is_empty());
        // read_only is always set at runtime only (the option file is the caller's).
        assert!(
            report.runtime_only().contains(&"read_only"),
            "{:?}",
            report.runtime_only()
        );
    }

    #[tokio::test]
    async fn a_rerun_after_a_crash_mid_copy_restores_the_relaxed_globals_first() {
        let store = MemJournal::default();
        let mut j = Journal::new("db1:3306".into(), "r:1".into());
        j.done = vec![Step::ReplicationUser, Step::ConfigureReplica];
        j.created_user = Some(("amsu_repl".into(), "%".into()));
        j.copy_started = true;
        j.in_flight = Some(Step::CopyData);
        j.relaxed = relaxed_settings();
        *store.0.lock().unwrap() = Some(j);

        let mut m = MockMasterServer::new();
        m.expect_probe().returning(|| Ok(info(1, true)));
        m.expect_user_exists().returning(|_| Ok(true));
        m.expect_set_replication_password()
            .returning(|_, _, _| Ok(()));
        let mut r = MockReplicaServer::new();
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| Ok(None));
        r.expect_user_databases().returning(|| Ok(vec![]));
        r.expect_configure().returning(|_, _| Ok(()));
        // The server shows amsu's relaxed values; the journal holds the true originals.
        r.expect_read_globals().returning(|names| {
            Ok(names
                .iter()
                .map(|n| {
                    let v = match n.as_str() {
                        "innodb_buffer_pool_size" => "17179869184".to_string(),
                        "innodb_log_file_size" => profile::MAX_REDO_LOG_BYTES.to_string(),
                        _ => "0".to_string(),
                    };
                    (n.clone(), Some(v))
                })
                .collect())
        });
        let mut seq = Sequence::new();
        r.expect_set_globals()
            .withf(|pairs| pairs == profile::restore_pairs(&relaxed_settings()).as_slice())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        r.expect_set_globals()
            .withf(|pairs| pairs == profile::relaxed_pairs(&relaxed_settings()).as_slice())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        let mut c = MockDataCopier::new();
        c.expect_resumable().return_const(false);
        copy_restore_then_start(&mut r, &mut c, &mut seq);
        two_servers(&mut m, &mut r);
        let setup = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306)
                .replica_id("r:1")
                .resize_redo_log(true),
        )
        .with_journal(&store);
        let report = setup.run(Arc::new(NoEvents)).await.expect("resumes");
        assert_eq!(
            report.plan[0],
            Action::RestoreReplicaSettings {
                settings: relaxed_settings()
            }
        );
        assert!(store.0.lock().unwrap().as_ref().unwrap().relaxed.is_empty());
    }

    #[tokio::test]
    async fn a_failed_copy_restores_the_relaxed_globals() {
        let store = MemJournal::default();
        let (mut m, mut r) = (MockMasterServer::new(), MockReplicaServer::new());
        m.expect_probe().returning(|| Ok(info(1, true)));
        m.expect_check_login().returning(|_, _| Ok(LoginCheck::Ok));
        m.expect_user_exists().returning(|_| Ok(false));
        m.expect_create_replication_user()
            .returning(|_, _, _| Ok(()));
        m.expect_drop_replication_user().returning(|_, _| Ok(()));
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| Ok(None));
        r.expect_user_databases().returning(|| Ok(vec![]));
        r.expect_configure().returning(|_, _| Ok(()));
        relaxing_replica(&mut r);
        let mut seq = Sequence::new();
        r.expect_set_globals()
            .withf(|pairs| pairs == profile::relaxed_pairs(&relaxed_settings()).as_slice())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        let mut c = MockDataCopier::new();
        c.expect_copy()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err("master went away".into()));
        r.expect_set_globals()
            .withf(|pairs| pairs == profile::restore_pairs(&relaxed_settings()).as_slice())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        r.expect_start_replication().never();
        two_servers(&mut m, &mut r);
        let setup = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306)
                .replica_id("r:1")
                .resize_redo_log(true),
        )
        .with_journal(&store);
        let err = setup.run(Arc::new(NoEvents)).await.unwrap_err();
        assert!(
            err.to_string().contains("copy") || err.exit_code() == 1,
            "{err}"
        );
        assert!(store.0.lock().unwrap().as_ref().unwrap().relaxed.is_empty());
    }

    /// A preflight that asks for binary log protection and records what it was told.
    struct Protecting {
        seen: std::sync::Mutex<Vec<PreflightContext>>,
    }

    fn retention_change() -> crate::GlobalChange {
        crate::GlobalChange {
            name: "binlog_expire_logs_seconds".into(),
            original: "1".into(),
            relaxed: "3600".into(),
        }
    }

    #[async_trait::async_trait]
    impl Preflight for Protecting {
        async fn findings(&self) -> Result<Vec<Finding>, BoxError> {
            Ok(vec![])
        }
        async fn prepare(&self, context: &PreflightContext) -> Result<crate::Prepared, BoxError> {
            self.seen.lock().unwrap().push(context.clone());
            Ok(crate::Prepared::new(vec![]).master_globals(vec![retention_change()]))
        }
    }

    /// A setup of replica `r:1` without the fast-load profile, journaled in `store`,
    /// with the binary log protection's checks.
    fn protecting_setup<'a>(
        m: &'a MockMasterServer,
        r: &'a MockReplicaServer,
        c: &'a MockDataCopier,
        store: &'a MemJournal,
        checks: &'a Protecting,
    ) -> Setup<'a> {
        Setup::new(
            m,
            r,
            c,
            SetupOptions::new("db1", 3306)
                .fast_load(false)
                .replica_id("r:1"),
        )
        .with_journal(store)
        .with_preflight(checks)
    }

    fn no_fast_load_replica() -> (MockReplicaServer, MockDataCopier) {
        let mut r = MockReplicaServer::new();
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| Ok(None));
        r.expect_user_databases().returning(|| Ok(vec![]));
        r.expect_configure().returning(|_, _| Ok(()));
        r.expect_change_master().returning(|_| Ok(()));
        r.expect_start_replication()
            .returning(|_| Ok(ReplicationStatus::default()));
        replica_identity(&mut r);
        let mut c = MockDataCopier::new();
        c.expect_copy().returning(|_| {
            Ok(CopyReport {
                coordinates: Some(coords()),
                ..Default::default()
            })
        });
        c.expect_finished().returning(|| Ok(()));
        (r, c)
    }

    #[tokio::test]
    async fn binlog_protection_is_journaled_before_the_raise_and_restored_at_the_end() {
        let store = Arc::new(MemJournal::default());
        let (mut m, _) = healthy();
        m.expect_create_replication_user()
            .returning(|_, _, _| Ok(()));
        let mut seq = Sequence::new();
        let journaled = store.clone();
        m.expect_set_globals()
            .withf(|p| p == profile::relaxed_pairs(&[retention_change()]).as_slice())
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| {
                let j = journaled.0.lock().unwrap().clone().expect("journal saved");
                assert_eq!(j.raised_master, vec![retention_change()]);
                Ok(())
            });
        m.expect_set_globals()
            .withf(|p| p == profile::restore_pairs(&[retention_change()]).as_slice())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
        let (r, c) = no_fast_load_replica();
        let checks = Protecting {
            seen: Default::default(),
        };
        let setup = protecting_setup(&m, &r, &c, &store, &checks);
        let checked = setup.check(&NoEvents).await.expect("checks pass");
        assert_eq!(
            checked.plan.first(),
            Some(&Action::RaiseBinlogRetention {
                settings: vec![retention_change()]
            })
        );
        assert_eq!(
            checked.plan.last(),
            Some(&Action::RestoreBinlogRetention {
                settings: vec![retention_change()]
            })
        );
        // Executed as checked: the checks do not run again.
        setup
            .execute(checked, Arc::new(NoEvents))
            .await
            .expect("setup runs");
        assert_eq!(checks.seen.lock().unwrap().len(), 1);
        assert!(store
            .0
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .raised_master
            .is_empty());
    }

    #[tokio::test]
    async fn a_rerun_after_a_crash_judges_the_master_by_the_journaled_original() {
        let store = Arc::new(MemJournal::default());
        let mut j = Journal::new("db1:3306".into(), "r:1".into());
        j.raised_master = vec![retention_change()];
        store.save(&j).unwrap();
        let (m, _) = healthy();
        let (r, c) = no_fast_load_replica();
        let checks = Protecting {
            seen: Default::default(),
        };
        let setup = protecting_setup(&m, &r, &c, &store, &checks);
        let checked = setup.check(&NoEvents).await.expect("checks pass");
        assert_eq!(
            checks.seen.lock().unwrap()[0].master_raised,
            vec![retention_change()]
        );
        // Still raised with the same value: kept raised, restored at the end to the
        // journaled original.
        assert!(!checked
            .plan
            .iter()
            .any(|a| matches!(a, Action::RaiseBinlogRetention { .. })));
        assert_eq!(
            checked.plan.last(),
            Some(&Action::RestoreBinlogRetention {
                settings: vec![retention_change()]
            })
        );
        // Without protection this time: restored first.
        let setup = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306)
                .fast_load(false)
                .replica_id("r:1"),
        )
        .with_journal(&*store);
        let checked = setup.check(&NoEvents).await.expect("checks pass");
        assert_eq!(
            checked.plan.first(),
            Some(&Action::RestoreBinlogRetention {
                settings: vec![retention_change()]
            })
        );
    }

    #[tokio::test]
    async fn no_fast_load_reads_and_changes_no_global() {
        let (mut m, _) = healthy();
        m.expect_create_replication_user()
            .returning(|_, _, _| Ok(()));
        let mut r2 = MockReplicaServer::new();
        r2.expect_probe().returning(|| Ok(info(2, false)));
        r2.expect_replication_status().returning(|| Ok(None));
        r2.expect_user_databases().returning(|| Ok(vec![]));
        r2.expect_configure().returning(|_, _| Ok(()));
        r2.expect_change_master().returning(|_| Ok(()));
        r2.expect_start_replication()
            .returning(|_| Ok(ReplicationStatus::default()));
        r2.expect_read_globals().never();
        r2.expect_set_globals().never();
        replica_identity(&mut r2);
        let mut c = MockDataCopier::new();
        c.expect_copy().returning(|_| {
            Ok(CopyReport {
                coordinates: Some(coords()),
                ..Default::default()
            })
        });
        c.expect_finished().returning(|| Ok(()));
        let setup = Setup::new(&m, &r2, &c, SetupOptions::new("db1", 3306).fast_load(false));
        let report = setup.run(Arc::new(NoEvents)).await.expect("setup runs");
        assert!(!report.plan.iter().any(|a| matches!(
            a,
            Action::RelaxReplicaDurability { .. } | Action::RestoreReplicaSettings { .. }
        )));
    }

    #[tokio::test]
    async fn resumes_after_a_crash_between_copy_and_change_master() {
        let store = MemJournal::default();
        let mut j = Journal::new("db1:3306".into(), "r:1".into());
        j.done = vec![
            Step::ReplicationUser,
            Step::ConfigureReplica,
            Step::CopyData,
        ];
        j.created_user = Some(("amsu_repl".into(), "%".into()));
        j.copy_started = true;
        j.copy = Some(CopyReport {
            coordinates: Some(coords()),
            ..Default::default()
        });
        *store.0.lock().unwrap() = Some(j);

        let mut m = MockMasterServer::new();
        m.expect_probe().returning(|| Ok(info(1, true)));
        m.expect_user_exists().returning(|_| Ok(true));
        m.expect_create_replication_user().never();
        m.expect_set_replication_password()
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut r = MockReplicaServer::new();
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| Ok(None));
        // The copied databases are amsu's own: no "replica not empty" finding.
        r.expect_user_databases()
            .returning(|| Ok(vec!["shop".into()]));
        r.expect_drop_databases().never();
        r.expect_configure().never();
        r.expect_change_master()
            .withf(|s| s.coordinates == coords())
            .times(1)
            .returning(|_| Ok(()));
        r.expect_start_replication()
            .times(1)
            .returning(|_| Ok(ReplicationStatus::default()));
        two_servers(&mut m, &mut r);
        let mut c = MockDataCopier::new();
        c.expect_copy().never();
        // Killed before the records of the finished copy were removed: removed now.
        c.expect_finished().times(1).returning(|| Ok(()));
        let setup = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306).replica_id("r:1"))
            .with_journal(&store);
        let report = setup.run(Arc::new(NoEvents)).await.expect("resumes");
        assert!(report.resumed);
        assert!(store.0.lock().unwrap().as_ref().unwrap().complete);
    }

    #[tokio::test]
    async fn a_resumable_copy_goes_on_after_a_crash_mid_copy() {
        let store = MemJournal::default();
        let mut j = Journal::new("db1:3306".into(), "r:1".into());
        j.done = vec![Step::ReplicationUser, Step::ConfigureReplica];
        j.created_user = Some(("amsu_repl".into(), "%".into()));
        j.copy_started = true;
        j.in_flight = Some(Step::CopyData);
        *store.0.lock().unwrap() = Some(j);

        let mut m = MockMasterServer::new();
        m.expect_probe().returning(|| Ok(info(1, true)));
        m.expect_user_exists().returning(|_| Ok(true));
        m.expect_set_replication_password()
            .returning(|_, _, _| Ok(()));
        let mut r = MockReplicaServer::new();
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| Ok(None));
        r.expect_user_databases()
            .returning(|| Ok(vec!["shop".into()]));
        // What the interrupted copy loaded stays: no drop.
        r.expect_drop_databases().never();
        r.expect_configure().returning(|_, _| Ok(()));
        r.expect_change_master().times(1).returning(|_| Ok(()));
        r.expect_start_replication()
            .returning(|_| Ok(ReplicationStatus::default()));
        // The interrupted copy recorded `shop` as its own.
        r.expect_owned_databases()
            .returning(|| Ok(vec!["shop".into()]));
        two_servers(&mut m, &mut r);
        let mut c = MockDataCopier::new();
        c.expect_resumable().return_const(true);
        c.expect_copy().never();
        c.expect_resume().times(1).returning(|_| {
            Ok(CopyReport {
                coordinates: Some(coords()),
                ..Default::default()
            })
        });
        c.expect_finished().times(1).returning(|| Ok(()));
        let setup = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306).replica_id("r:1"))
            .with_journal(&store);
        setup.run(Arc::new(NoEvents)).await.expect("resumes");
        let j = store.0.lock().unwrap().clone().unwrap();
        assert!(j.complete && j.is_done(Step::CopyData));
    }

    #[tokio::test]
    async fn rerun_after_success_changes_nothing() {
        let store = MemJournal::default();
        let mut j = Journal::new("db1:3306".into(), "r:1".into());
        j.complete = true;
        *store.0.lock().unwrap() = Some(j);
        let mut m = MockMasterServer::new();
        m.expect_probe().returning(|| Ok(info(1, true)));
        let mut r = MockReplicaServer::new();
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| {
            Ok(Some(ReplicationStatus {
                master_port: 3306,
                io_running: true,
                sql_running: true,
                ..Default::default()
            }))
        });
        two_servers(&mut m, &mut r);
        let mut c = MockDataCopier::new();
        forbid_changes(&mut m, &mut r, &mut c);
        let setup = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306).replica_id("r:1"))
            .with_journal(&store);
        let report = setup.run(Arc::new(NoEvents)).await.expect("nothing to do");
        assert!(report.already_done);
        assert!(report.plan.is_empty());
        assert!(
            report.runtime_only().is_empty(),
            "nothing was set by this run"
        );
        // Asked for, the verification (read-only) runs again; nothing else does.
        let mut f = MockFinishing::new();
        f.expect_verify().times(1).returning(|| Ok(()));
        let setup = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306)
                .replica_id("r:1")
                .verify(true),
        )
        .with_journal(&store)
        .with_finishing(&f);
        let report = setup.run(Arc::new(NoEvents)).await.expect("verified");
        assert!(report.already_done);
        assert_eq!(report.plan, [Action::VerifyData]);
    }

    #[tokio::test]
    async fn plan_lists_every_change_in_order() {
        let (m, r) = healthy();
        let c = MockDataCopier::new();
        let checked = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306).wait_caught_up(true),
        )
        .check(&NoEvents)
        .await
        .unwrap();
        let steps: Vec<Step> = checked.plan.iter().map(Action::step).collect();
        assert_eq!(
            steps,
            [
                Step::ReplicationUser,
                Step::ConfigureReplica,
                Step::CopyData,
                Step::ChangeMaster,
                Step::StartReplica,
                Step::CatchUp
            ]
        );
        // The plan carries the positioning and TLS settings (for --dry-run).
        let checked = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306)
                .positioning(Positioning::Gtid)
                .tls(ReplicationTls::new(true, None, None, None, false)),
        )
        .check(&NoEvents)
        .await
        .unwrap();
        assert!(checked.plan.iter().any(|a| matches!(
            a,
            Action::ChangeMaster {
                positioning: Positioning::Gtid,
                tls: ReplicationTls { ssl: true, .. },
                ..
            }
        )));
    }

    #[tokio::test]
    async fn a_cancelled_run_stops_before_the_next_step_like_a_failure() {
        let (mut m, mut r) = healthy();
        m.expect_create_replication_user()
            .times(1)
            .returning(|_, _, _| Ok(()));
        m.expect_drop_replication_user()
            .times(1)
            .returning(|_, _| Ok(()));
        let token = CancellationToken::new();
        let t = token.clone();
        // The signal arrives while the replica is being configured.
        r.expect_configure().times(1).returning(move |_, _| {
            t.cancel();
            Ok(())
        });
        r.expect_change_master().never();
        let mut c = MockDataCopier::new();
        c.expect_copy().never();
        let store = MemJournal::default();
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
            .with_journal(&store)
            .with_cancellation(token)
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        assert!(err.is_interrupted());
        assert_eq!(err.exit_code(), 1);
        let msg = err.to_string();
        assert!(msg.contains("State left behind:"), "{msg}");
        assert!(msg.contains("read_only = ON"), "{msg}");
        let j = store.0.lock().unwrap().clone().unwrap();
        assert!(
            j.stopped
                .as_deref()
                .is_some_and(|s| s.contains("interrupted")),
            "{:?}",
            j.stopped
        );
        assert_eq!(j.in_flight, Some(Step::CopyData));
        assert!(!j.complete);
    }

    #[tokio::test]
    async fn a_run_cancelled_before_it_starts_changes_nothing() {
        let (mut m, mut r) = healthy();
        let mut c = MockDataCopier::new();
        forbid_changes(&mut m, &mut r, &mut c);
        let token = CancellationToken::new();
        token.cancel();
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
            .with_cancellation(token)
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        assert!(err.is_interrupted());
        assert_eq!(err.exit_code(), 3);
    }

    #[tokio::test]
    async fn a_new_password_is_only_given_to_a_created_user() {
        let (mut m, r) = healthy();
        m.checkpoint();
        master_identity(&mut m);
        m.expect_probe().returning(|| Ok(info(1, true)));
        m.expect_check_login().never();
        m.expect_user_exists().returning(|_| Ok(true));
        let c = MockDataCopier::new();
        let err = Setup::new(
            &m,
            &r,
            &c,
            SetupOptions::new("db1", 3306).new_repl_password(Some(Secret::new("n"))),
        )
        .check(&NoEvents)
        .await
        .unwrap_err();
        let f = &err.findings()[0];
        assert!(f.problem.contains("no password for it was given"), "{f:?}");
        assert!(!f.fix.contains("DROP USER"), "{f:?}");
    }

    #[test]
    fn server_id_fixes() {
        let f = server_id_fix(0, 5);
        assert!(f.master.is_some_and(|id| id != 0 && id != 5));
        assert_eq!(f.replica, None);
        let f = server_id_fix(3, 3);
        assert_eq!(f.master, None);
        assert!(f.replica.is_some_and(|id| id != 3 && id != 0));
        let f = server_id_fix(3, 0);
        assert!(f.replica.is_some_and(|id| id != 3 && id != 0));
        assert_eq!(
            server_id_fix(1, 2),
            ServerIdFix {
                master: None,
                replica: None
            }
        );
    }

    #[test]
    fn preflight_flags_an_older_replica_and_a_configured_one() {
        let m = info(1, true);
        let mut old = info(2, false);
        old.version = Version::new(10, 6, 1);
        let f = preflight(&m, &old, None, &[], false);
        assert_eq!(f[0].code, "replica_older");
        let st = ReplicationStatus::default();
        let f = preflight(&m, &info(2, false), Some(&st), &[], false);
        assert_eq!(f[0].code, "already_replica");
        assert!(preflight(&m, &info(2, false), Some(&st), &["x".into()], true).is_empty());
    }
}
