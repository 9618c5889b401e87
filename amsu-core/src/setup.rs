//! The orchestrator of `amsu setup`: decides in pure code, acts through the traits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{
    BoxError, Coordinates, CopyReport, DataCopier, Error, Event, EventSink, Finding, LoginCheck,
    MasterServer, Preflight, ReplicaServer, ReplicationSource, ReplicationStatus, Role, Secret,
    ServerInfo, Severity, Step,
};

/// Options of a setup. Build with [`SetupOptions::new`]; every setter documents its default.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    master_host: String,
    master_port: u16,
    repl_user: String,
    repl_password: Option<Secret>,
    repl_user_host: String,
    force: bool,
    wait_caught_up: bool,
    start_timeout: Duration,
    catch_up_timeout: Duration,
}

impl SetupOptions {
    /// Options for a master the replica reaches at `master_host:master_port`.
    pub fn new(master_host: impl Into<String>, master_port: u16) -> Self {
        SetupOptions {
            master_host: master_host.into(),
            master_port,
            repl_user: "amsu_repl".into(),
            repl_password: None,
            repl_user_host: "%".into(),
            force: false,
            wait_caught_up: false,
            start_timeout: Duration::from_secs(60),
            catch_up_timeout: Duration::from_secs(3600),
        }
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

    /// Host part of a created replication account. Default `%`.
    pub fn repl_user_host(mut self, host: impl Into<String>) -> Self {
        self.repl_user_host = host.into();
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
}

/// What the replication-user step will do, decided before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplUserPlan {
    /// The user exists and the password works.
    Reuse(Secret),
    /// The user does not exist: create it with this password.
    Create(Secret),
}

/// What a finished setup reports.
#[derive(Debug, Clone, Serialize)]
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
}

/// Checks the master alone (binary log, format); pure.
pub fn preflight_master(master: &ServerInfo) -> Vec<Finding> {
    let mut f = Vec::new();
    if !master.log_bin {
        f.push(Finding::blocking(
            Role::Master,
            "log_bin_off",
            "binary logging is off (@@global.log_bin = 0); a replica needs the master's binary log, and turning it on needs a restart",
            "add `log_bin = mysql-bin` (and a unique `server_id`) under [mysqld] in the master's option file and restart the master",
        ));
    } else if !master.binlog_format.eq_ignore_ascii_case("ROW") {
        f.push(Finding::warning(
            Role::Master,
            "binlog_format",
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
            "flavor_mismatch",
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
            "replica_older",
            format!(
                "the replica's version {} is older than the master's {}; a replica must not be older",
                replica.version, master.version
            ),
            format!("upgrade the replica to {} or newer", master.version),
        ));
    }
    if let Some(st) = replica_status {
        if !force {
            f.push(Finding::blocking(
                Role::Replica,
                "already_replica",
                format!(
                    "the replica is already configured to replicate from {}:{} ({})",
                    st.master_host,
                    st.master_port,
                    if st.is_active() { "running" } else { "stopped" }
                ),
                "run `STOP SLAVE; RESET SLAVE ALL` on it, or pass --force to let amsu do so",
            ));
        }
    }
    if !replica_databases.is_empty() && !force {
        f.push(Finding::blocking(
            Role::Replica,
            "replica_not_empty",
            format!(
                "the replica holds user databases: {}",
                replica_databases.join(", ")
            ),
            "use an empty server, or pass --force to drop these databases on the replica",
        ));
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
pub struct ServerIdFix {
    /// New `server_id` for the master, when its own is 0.
    pub master: Option<u32>,
    /// New `server_id` for the replica, when its own is 0 or equal to the master's.
    pub replica: Option<u32>,
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

/// Runs a whole setup: all checks first, then the changes, step by step.
pub struct Setup<'a> {
    master: &'a dyn MasterServer,
    replica: &'a dyn ReplicaServer,
    copier: &'a dyn DataCopier,
    preflight: Vec<&'a dyn Preflight>,
    options: SetupOptions,
}

struct Progress<'e> {
    events: &'e dyn EventSink,
    master_changes: Vec<String>,
    replica_changes: Vec<String>,
    step_millis: Vec<(Step, u64)>,
}

impl Progress<'_> {
    fn changed(&mut self, server: Role, what: String) {
        self.events.emit(&Event::Changed {
            server,
            what: what.clone(),
        });
        match server {
            Role::Master => self.master_changes.push(what),
            Role::Replica => self.replica_changes.push(what),
        }
    }

    async fn step<T, F>(&mut self, step: Step, fut: F) -> Result<T, BoxError>
    where
        F: std::future::Future<Output = Result<T, BoxError>>,
    {
        self.events.emit(&Event::StepStarted { step });
        let t = Instant::now();
        let r = fut.await;
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
        if step >= Step::CopyData {
            state.push_str("\nThe replica holds partial data. Fix the cause, then rerun the same command with --force to start the copy over.");
        } else {
            state.push_str("\nFix the cause and rerun the same command.");
        }
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
            options,
        }
    }

    /// Adds read-only checks that run with the built-in ones, before any change.
    pub fn with_preflight(mut self, checks: &'a dyn Preflight) -> Self {
        self.preflight.push(checks);
        self
    }

    /// Runs every check, and stops with [`Error::Preconditions`] (nothing changed) if one
    /// blocks; returns the probed state, the findings and the replication-user plan.
    pub async fn check(&self, events: &dyn EventSink) -> Result<Checked, Error> {
        let mut p = Progress {
            events,
            master_changes: vec![],
            replica_changes: vec![],
            step_millis: vec![],
        };
        self.check_with(&mut p).await
    }

    async fn check_with(&self, p: &mut Progress<'_>) -> Result<Checked, Error> {
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
        let mut findings = preflight(&master, &replica, status.as_ref(), &dbs, self.options.force);
        let (repl_plan, user_finding) = p
            .step(Step::ReplicationUser, self.plan_repl_user())
            .await
            .map_err(unchanged(Step::ReplicationUser, Role::Master))?;
        findings.extend(user_finding);
        for check in &self.preflight {
            let more = p
                .step(Step::ReplicaChecks, check.findings())
                .await
                .map_err(unchanged(Step::ReplicaChecks, Role::Replica))?;
            findings.extend(more);
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
        Ok(Checked {
            master,
            replica,
            replica_status: status,
            replica_databases: dbs,
            findings,
            repl_user: repl_plan,
        })
    }

    async fn plan_repl_user(&self) -> Result<(Option<ReplUserPlan>, Option<Finding>), BoxError> {
        let user = &self.options.repl_user;
        if let Some(pw) = &self.options.repl_password {
            if self.master.check_login(user, pw).await? == LoginCheck::Ok {
                return Ok((Some(ReplUserPlan::Reuse(pw.clone())), None));
            }
        }
        if self.master.user_exists(user).await? {
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
                    "repl_user_password",
                    problem,
                    format!("set AMSU_REPL_PASSWORD (or --repl-password-file) to its password, choose another user with --repl-user, or `DROP USER '{user}'` on the master"),
                )),
            ));
        }
        let pw = self
            .options
            .repl_password
            .clone()
            .unwrap_or_else(Secret::generate);
        Ok((Some(ReplUserPlan::Create(pw)), None))
    }

    /// Runs the whole setup. Every check runs before the first change; a failed check
    /// returns [`Error::Preconditions`] and nothing is changed.
    pub async fn run(&self, events: Arc<dyn EventSink>) -> Result<SetupReport, Error> {
        let mut p = Progress {
            events: &*events,
            master_changes: vec![],
            replica_changes: vec![],
            step_millis: vec![],
        };
        let checked = self.check_with(&mut p).await?;
        let repl_password = match checked.repl_user.clone() {
            Some(ReplUserPlan::Reuse(pw)) => pw,
            Some(ReplUserPlan::Create(pw)) => {
                let o = &self.options;
                p.step(
                    Step::ReplicationUser,
                    self.master
                        .create_replication_user(&o.repl_user, &o.repl_user_host, &pw),
                )
                .await
                .map_err(|e| p.failed(Step::ReplicationUser, Role::Master, e))?;
                p.changed(
                    Role::Master,
                    format!(
                        "created user '{}'@'{}' with REPLICATION SLAVE",
                        o.repl_user, o.repl_user_host
                    ),
                );
                pw
            }
            None => unreachable!("a missing replication-user plan is a blocking finding"),
        };

        let mut master_info = checked.master.clone();
        let ids = server_id_fix(checked.master.server_id, checked.replica.server_id);
        if let Some(id) = ids.master {
            p.step(Step::MasterConfig, self.master.set_server_id(id))
                .await
                .map_err(|e| p.failed(Step::MasterConfig, Role::Master, e))?;
            p.changed(
                Role::Master,
                format!(
                    "server_id changed from {} to {id} (SET GLOBAL; not persistent: add `server_id = {id}` under [mysqld] in the master's option file)",
                    checked.master.server_id
                ),
            );
            master_info.server_id = id;
        } else {
            p.events.emit(&Event::StepSkipped {
                step: Step::MasterConfig,
                reason: format!(
                    "the master's server_id {} and log_bin are fine",
                    checked.master.server_id
                ),
            });
        }

        // Configure the replica.
        if self.options.force {
            if checked.replica_status.is_some() {
                p.step(Step::ConfigureReplica, self.replica.reset_replication())
                    .await
                    .map_err(|e| p.failed(Step::ConfigureReplica, Role::Replica, e))?;
                p.changed(
                    Role::Replica,
                    "stopped and reset its old replication configuration (--force)".into(),
                );
            }
            if !checked.replica_databases.is_empty() {
                p.step(
                    Step::ConfigureReplica,
                    self.replica.drop_databases(&checked.replica_databases),
                )
                .await
                .map_err(|e| p.failed(Step::ConfigureReplica, Role::Replica, e))?;
                p.changed(
                    Role::Replica,
                    format!(
                        "dropped databases {} (--force)",
                        checked.replica_databases.join(", ")
                    ),
                );
            }
        }
        let replica_id = ids.replica;
        p.step(
            Step::ConfigureReplica,
            self.replica.configure(replica_id, true),
        )
        .await
        .map_err(|e| p.failed(Step::ConfigureReplica, Role::Replica, e))?;
        if let Some(id) = replica_id {
            p.changed(
                Role::Replica,
                format!(
                    "server_id changed from {} to {id} (it was 0 or equal to the master's)",
                    checked.replica.server_id
                ),
            );
        }
        p.changed(Role::Replica, "read_only = ON".into());

        let copy = p
            .step(Step::CopyData, self.copier.copy(events.clone()))
            .await
            .map_err(|e| p.failed(Step::CopyData, Role::Replica, e))?;
        p.changed(
            Role::Replica,
            format!(
                "loaded {} databases, {} tables, {} rows",
                copy.databases, copy.tables, copy.rows
            ),
        );
        let coordinates = copy.coordinates.clone().ok_or_else(|| {
            p.failed(
                Step::CopyData,
                Role::Master,
                "the copy reported no binary log coordinates".into(),
            )
        })?;

        let source = ReplicationSource {
            host: self.options.master_host.clone(),
            port: self.options.master_port,
            user: self.options.repl_user.clone(),
            password: repl_password,
            coordinates: coordinates.clone(),
        };
        p.step(Step::ChangeMaster, self.replica.change_master(&source))
            .await
            .map_err(|e| p.failed(Step::ChangeMaster, Role::Replica, e))?;
        p.changed(
            Role::Replica,
            format!(
                "CHANGE MASTER TO {}:{} as '{}' at {}",
                source.host, source.port, source.user, coordinates
            ),
        );

        let replication = p
            .step(
                Step::StartReplica,
                self.replica.start_replication(self.options.start_timeout),
            )
            .await
            .map_err(|e| p.failed(Step::StartReplica, Role::Replica, e))?;
        p.changed(Role::Replica, "replication started".into());
        events.emit(&Event::Replication {
            seconds_behind: replication.seconds_behind,
        });

        let mut caught_up_to = None;
        if self.options.wait_caught_up {
            let target = p
                .step(Step::CatchUp, async {
                    let target = self.master.binlog_position().await?;
                    self.replica
                        .wait_until_applied(&target, self.options.catch_up_timeout)
                        .await?;
                    Ok(target)
                })
                .await
                .map_err(|e| p.failed(Step::CatchUp, Role::Replica, e))?;
            caught_up_to = Some(target);
        }

        Ok(SetupReport {
            master: master_info,
            replica: checked.replica,
            master_changes: p.master_changes,
            replica_changes: p.replica_changes,
            warnings: checked.findings,
            copy,
            replication,
            caught_up_to,
            step_millis: p.step_millis,
        })
    }
}

/// The result of the checks: what was probed and what was decided.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The master.
    pub master: ServerInfo,
    /// The replica.
    pub replica: ServerInfo,
    /// The replica's replication configuration, if any.
    pub replica_status: Option<ReplicationStatus>,
    /// The replica's user databases.
    pub replica_databases: Vec<String>,
    /// Every finding (none blocking).
    pub findings: Vec<Finding>,
    /// What the replication-user step will do.
    pub repl_user: Option<ReplUserPlan>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Flavor, LoginCheck, MockDataCopier, MockMasterServer, MockReplicaServer, NoEvents, Version,
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
        m.expect_check_login()
            .returning(|_, _| Ok(LoginCheck::Denied));
        m.expect_user_exists().returning(|_| Ok(false));
        let mut r = MockReplicaServer::new();
        r.expect_probe().returning(|| Ok(info(2, false)));
        r.expect_replication_status().returning(|| Ok(None));
        r.expect_user_databases().returning(|| Ok(vec![]));
        (m, r)
    }

    fn forbid_changes(m: &mut MockMasterServer, r: &mut MockReplicaServer, c: &mut MockDataCopier) {
        m.expect_create_replication_user().never();
        m.expect_set_server_id().never();
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
        let mut c = MockDataCopier::new();
        forbid_changes(&mut m, &mut r, &mut c);
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("precious"));
        assert!(err.to_string().contains("--force"));
    }

    #[tokio::test]
    async fn unreachable_replica_changes_nothing() {
        let (mut m, mut r) = healthy();
        r.checkpoint();
        r.expect_probe()
            .returning(|| Err("connection refused".into()));
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
        let mut c = MockDataCopier::new();
        forbid_changes(&mut m, &mut r, &mut c);
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
            .run(Arc::new(NoEvents))
            .await
            .unwrap_err();
        assert_eq!(err.findings()[0].code, "repl_user_password");
        assert!(err.to_string().contains("AMSU_REPL_PASSWORD"));
    }

    #[tokio::test]
    async fn failed_copy_reports_what_was_changed() {
        let (mut m, mut r) = healthy();
        m.expect_create_replication_user()
            .returning(|_, _, _| Ok(()));
        r.expect_configure().returning(|_, _| Ok(()));
        let mut c = MockDataCopier::new();
        c.expect_copy().returning(|_| Err("disk full".into()));
        r.expect_change_master().never();
        let err = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306))
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
        assert!(msg.contains("--force"), "{msg}");
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
