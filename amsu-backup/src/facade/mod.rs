//! The façade: everything `amsu setup` and `amsu check` do, as a library.
//!
//! A typed [`SetupConfig`] says which servers, which [`CopyMethod`] and which options;
//! [`Provision`] wires the adapters of `amsu-mysql`, the copier of the method with its own
//! preflight, the MySQL preflight (with the same options) and the [`FileJournal`] into
//! one [`amsu_core::Setup`]. Its [`Provision::check`] runs every check once and returns
//! the plan ([`Checked`]); [`Provision::execute`] runs exactly that plan — the binary log
//! protection, the replication user, the copy, `CHANGE MASTER`, the start, and the steps
//! after it: the replica's option file and the data verification, each a journaled
//! action of the plan (shown by the dry run, rerun after a crash). [`check`] and
//! [`setup`] are the one-call forms; the `amsu` command line uses these same functions.
//!
//! ```no_run
//! use std::sync::Arc;
//! use amsu_backup::{setup, CopyMethod, SetupConfig};
//! use amsu_core::{CancellationToken, NoEvents, ServerAddr};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let master: ServerAddr = "mysql://amsu@db1.example:3306".parse()?;
//! let replica: ServerAddr = "mysql://root@db2.example:3306".parse()?;
//! let config = SetupConfig::new(master, replica)
//!     .method(CopyMethod::logical())
//!     .protect_binlogs(true)
//!     .options(|o| o.wait_caught_up(true));
//! let outcome = setup(config, Arc::new(NoEvents), CancellationToken::new()).await?;
//! println!("replicating from {}", outcome.report.master.version_string);
//! # Ok(())
//! # }
//! ```

mod backup;
mod journal;
mod replication;
mod report;
mod restore;
mod status;
mod verify;

/// The README's library example, compiled as a doc-test.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExample;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amsu_core::{
    Action, BoxError, CancellationToken, Checked, DataCopier, EventSink, FindingCode, Finishing,
    MasterServer, Preflight, ServerAddr, Setup, SetupOptions, SetupReport, Severity,
};
use amsu_mysql::checks::{CheckOptions, MysqlPreflight};
use amsu_mysql::grants::StepKind;
use amsu_mysql::replica_config::ReplicaConfig;
use amsu_mysql::verify::VerifyOutcome;
use amsu_mysql::{MysqlMaster, MysqlReplica};
use amsu_transfer::FtpTransport;

pub use backup::{
    backup, clear_local_target, BackupConfig, BackupFailure, BackupMethod, BackupReport,
    BackupTarget, UploadReport,
};
pub use journal::{default_journal_dir, default_journal_path, FileJournal};
pub use replication::{check_repl_user, ReplUser, ReplUserError, ReplicationSettings};
pub use report::{check_master, check_report, CheckReport};
pub use restore::{restore, RestoreConfig, RestoreFailure, RestoreReport, StartReplication};
pub use status::{health, status, Health, StatusConfig, StatusError, StatusReport};
pub use verify::{verify, VerifyConfig};

use crate::{
    Donor, DonorChecks, ImageKey, ImageRestore, ImageSource, LogicalCopy, LogicalOptions,
    OutfileCopy, PhysicalCopy, PhysicalOptions, PhysicalSource, ReplicaService,
};

/// How the data is copied. Each method carries only what it uses, so no invalid mix of
/// options can be expressed; [`Provision`] builds its copier and gives the MySQL preflight
/// the matching privilege checks.
#[derive(Clone)]
#[non_exhaustive]
pub enum CopyMethod {
    /// A consistent logical snapshot over the MySQL protocol, loaded in parallel.
    Logical {
        /// Threads, governor, chunk size.
        options: LogicalOptions,
    },
    /// The master writes each chunk with `SELECT … INTO OUTFILE` into its
    /// `secure_file_priv` directory, which `ftp` serves to the replica host.
    Outfile {
        /// The FTP/FTPS endpoint serving the master's `secure_file_priv` directory.
        ftp: Arc<FtpTransport>,
        /// Parallel chunk writers and loaders.
        threads: usize,
        /// Keep the run directory as an image for further replicas.
        keep_image: bool,
        /// Target size of a chunk (`None`: the method's default).
        chunk_bytes: Option<u64>,
    },
    /// mariadb-backup: the replica's data directory is replaced by a prepared backup.
    Physical {
        /// Where the backup comes from.
        source: PhysicalSource,
        /// How the replica server is stopped and started.
        service: Arc<dyn ReplicaService>,
        /// Data and work directories, parallelism, rate.
        options: PhysicalOptions,
    },
    /// A logical image made earlier (`amsu backup`), loaded into the replica.
    Image {
        /// Where the image is.
        source: ImageSource,
        /// Parallel loaders.
        threads: usize,
        /// The key the image's signature is checked with, if it is signed.
        key: Option<ImageKey>,
    },
}

impl fmt::Debug for CopyMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl CopyMethod {
    /// The logical method with its default options.
    pub fn logical() -> Self {
        CopyMethod::Logical {
            options: LogicalOptions::default(),
        }
    }

    /// The method's name: `logical`, `outfile`, `physical` or `image`.
    pub fn name(&self) -> &'static str {
        match self {
            CopyMethod::Logical { .. } => "logical",
            CopyMethod::Outfile { .. } => "outfile",
            CopyMethod::Physical { .. } => "physical",
            CopyMethod::Image { .. } => "image",
        }
    }

    /// What the method does on the master, for the privilege checks.
    fn snapshot(&self) -> StepKind {
        match self {
            CopyMethod::Logical { .. } | CopyMethod::Image { .. } => StepKind::LogicalSnapshot,
            CopyMethod::Outfile { .. } => StepKind::OutfileSnapshot,
            CopyMethod::Physical { .. } => StepKind::PhysicalBackup,
        }
    }

    fn copier(&self, master: &ServerAddr, replica: &ServerAddr) -> Copier {
        match self.clone() {
            CopyMethod::Logical { options } => {
                Copier::Logical(LogicalCopy::new(master.clone(), replica.clone(), options))
            }
            CopyMethod::Outfile {
                ftp,
                threads,
                keep_image,
                chunk_bytes,
            } => {
                let copy = OutfileCopy::new(master.clone(), replica.clone(), ftp)
                    .threads(threads)
                    .keep_image(keep_image);
                Copier::Outfile(match chunk_bytes {
                    Some(b) => copy.chunk_bytes(b),
                    None => copy,
                })
            }
            CopyMethod::Physical {
                source,
                service,
                options,
            } => Copier::Physical(PhysicalCopy::new(
                master.clone(),
                replica.clone(),
                source,
                service,
                options,
            )),
            CopyMethod::Image {
                source,
                threads,
                key,
            } => Copier::Image(
                ImageRestore::new(source, replica.clone())
                    .threads(threads)
                    .master(master.clone())
                    .key(key),
            ),
        }
    }
}

/// The copier of a [`CopyMethod`], with its own preflight.
enum Copier {
    Logical(LogicalCopy),
    Outfile(OutfileCopy),
    Image(ImageRestore),
    Physical(PhysicalCopy),
}

impl Copier {
    fn copier(&self) -> &dyn DataCopier {
        match self {
            Copier::Logical(c) => c,
            Copier::Outfile(c) => c,
            Copier::Image(c) => c,
            Copier::Physical(c) => c,
        }
    }

    fn preflight(&self) -> &dyn Preflight {
        match self {
            Copier::Logical(c) => c,
            Copier::Outfile(c) => c,
            Copier::Image(c) => c,
            Copier::Physical(c) => c,
        }
    }
}

/// Everything one setup needs: the servers, the copy method, the
/// [`ReplicationSettings`] and the [`SetupOptions`] of `amsu setup`. Build it with
/// [`SetupConfig::new`] and the by-value setters; each setter documents its default.
#[derive(Clone)]
#[non_exhaustive]
pub struct SetupConfig {
    master: ServerAddr,
    replica: ServerAddr,
    admin: Option<ServerAddr>,
    method: CopyMethod,
    replication: ReplicationSettings,
    options: SetupOptions,
    protect_binlogs: bool,
    use_journal: bool,
    donor: Option<Donor>,
}

impl fmt::Debug for SetupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ServerAddr's Debug hides passwords; the replication passwords are not shown.
        f.debug_struct("SetupConfig")
            .field("master", &self.master)
            .field("replica", &self.replica)
            .field("admin", &self.admin)
            .field("method", &self.method)
            .field("replication", &self.replication)
            .field("force", &self.options.is_forced())
            .field("protect_binlogs", &self.protect_binlogs)
            .field("donor", &self.donor)
            .finish_non_exhaustive()
    }
}

impl SetupConfig {
    /// A setup of `replica` from `master` (whose URL user is the one the copy reads as).
    /// Defaults: the logical method, no admin account, the defaults of
    /// [`ReplicationSettings::new`] (replication user `amsu_repl` with a generated
    /// password, file and position replication without TLS, the journal at
    /// [`default_journal_path`]), no binary log protection, and the defaults of
    /// [`SetupOptions`] except the catch-up timeout, 600 s here (not forced, the
    /// fast-load profile on, no redo log resize, no wait for the catch-up, no option
    /// file, no verification).
    pub fn new(master: ServerAddr, replica: ServerAddr) -> Self {
        let options = SetupOptions::new(master.host.clone(), master.port)
            .catch_up_timeout(Duration::from_secs(600));
        SetupConfig {
            master,
            replica,
            admin: None,
            method: CopyMethod::logical(),
            replication: ReplicationSettings::new(),
            options,
            protect_binlogs: false,
            use_journal: true,
            donor: None,
        }
    }

    /// How the data is copied. Default: [`CopyMethod::logical`].
    pub fn method(mut self, method: CopyMethod) -> Self {
        self.method = method;
        self
    }

    /// The replica to set up (a fan-out sets up several replicas from one
    /// configuration). Default: the one given to [`SetupConfig::new`].
    pub fn replica(mut self, replica: ServerAddr) -> Self {
        self.replica = replica;
        self
    }

    /// An account of the master that creates the replication user and changes the
    /// master's settings, when the URL user may not. Default: the URL user.
    pub fn admin(mut self, admin: Option<ServerAddr>) -> Self {
        self.admin = admin;
        self
    }

    /// How the replica replicates: user, passwords, the master's host as the replica
    /// reaches it, TLS, positioning, journal. Default: [`ReplicationSettings::new`].
    pub fn replication(mut self, replication: ReplicationSettings) -> Self {
        self.replication = replication;
        self
    }

    /// The options of the setup, changed by `f` from the current ones: `force`,
    /// `fast_load`, `resize_redo_log`, `wait_caught_up` (always waited for with
    /// `verify`), `catch_up_timeout` (also the verification's), `replica_config_file`,
    /// `verify` — see [`SetupOptions`]. The master's host, the replica id and the
    /// replication settings are set from the servers and
    /// [`replication`](Self::replication) when the setup runs.
    ///
    /// ```
    /// # use amsu_backup::SetupConfig;
    /// # let (m, r) = ("mysql://a@db1".parse().unwrap(), "mysql://b@db2".parse().unwrap());
    /// let config = SetupConfig::new(m, r).options(|o| o.force(true).verify(true));
    /// ```
    pub fn options(mut self, f: impl FnOnce(SetupOptions) -> SetupOptions) -> Self {
        self.options = f(self.options);
        self
    }

    /// Raise a binary log retention too short for the setup, for its duration (a
    /// journaled plan step, restored at the end and by a rerun after a crash). Default:
    /// false (a too short retention blocks the setup).
    pub fn protect_binlogs(mut self, protect: bool) -> Self {
        self.protect_binlogs = protect;
        self
    }

    /// Checks and runs as a fresh setup, without reading or writing a journal (what an
    /// earlier interrupted or finished run did is not taken into account, and a rerun
    /// does not resume). Default: journaled.
    pub fn without_journal(mut self) -> Self {
        self.use_journal = false;
        self
    }

    /// Read the data from `donor`, a running replica of the master, instead of the
    /// master (the logical method only; see [`Donor`]): the new replica is pointed
    /// at the master at the donor's executed master position, and the master serves no
    /// bulk reads. The donor's SQL thread is stopped briefly for the snapshot and
    /// started again; a marker next to the journal lets a rerun after a crash start it
    /// again. Users and grants come from the donor (the master's, when the donor
    /// replicates everything); the replication user is still created on the master.
    /// Default: none (the copy reads the master).
    pub fn donor(mut self, donor: Option<Donor>) -> Self {
        self.donor = donor;
        self
    }

    /// The donor, if any.
    pub fn donor_addr(&self) -> Option<&ServerAddr> {
        self.donor.as_ref().map(Donor::addr)
    }

    /// The master.
    pub fn master_addr(&self) -> &ServerAddr {
        &self.master
    }

    /// The replica.
    pub fn replica_addr(&self) -> &ServerAddr {
        &self.replica
    }

    /// The admin account, if any.
    pub(crate) fn admin_addr(&self) -> Option<&ServerAddr> {
        self.admin.as_ref()
    }

    /// The replication user.
    pub(crate) fn repl_user_name(&self) -> &str {
        self.replication.user()
    }

    /// The replication settings.
    pub fn replication_settings(&self) -> &ReplicationSettings {
        &self.replication
    }

    /// The copy method.
    pub fn copy_method(&self) -> &CopyMethod {
        &self.method
    }

    /// The journal's path.
    pub(crate) fn journal_path(&self) -> PathBuf {
        self.replication
            .journal_given()
            .cloned()
            .unwrap_or_else(|| default_journal_path(&self.replica))
    }

    fn check_options(&self) -> CheckOptions {
        CheckOptions {
            force: self.options.is_forced(),
            protect_binlogs: self.protect_binlogs,
            repl_user: self.replication.user().to_string(),
            snapshot: self.method.snapshot(),
            ..CheckOptions::default()
        }
    }

    /// The options the setup runs with: the options given, with the replication
    /// settings and the replica's id.
    pub(crate) fn setup_options(&self) -> SetupOptions {
        self.replication
            .apply(&self.master, self.options.clone())
            .replica_id(format!("{}:{}", self.replica.host, self.replica.port))
    }
}

/// What a finished [`Provision::execute`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SetupOutcome {
    /// The setup's report.
    pub report: SetupReport,
    /// The option file written (the setup option `replica_config_file`, [`SetupOptions`]), and what it says.
    pub replica_config: Option<(PathBuf, ReplicaConfig)>,
    /// The comparison of the data (the setup option `verify`, [`SetupOptions`]).
    pub verify: Option<VerifyOutcome>,
    /// The replica settings this run set at runtime only and no option file keeps
    /// ([`SetupReport::runtime_only`], when no
    /// [`replica_config_file`](amsu_core::SetupOptions::replica_config_file) was written),
    /// with the option-file lines that keep them; `None` when there are none.
    pub runtime_only: Option<RuntimeOnly>,
}

/// Replica settings a setup made with `SET GLOBAL` only: lost when the replica restarts
/// (replication then stops) unless its option file sets them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeOnly {
    /// The settings, by name (`server_id`, `read_only`).
    pub settings: Vec<&'static str>,
    /// The option-file lines that make them survive a restart, read from the replica
    /// after the setup (what [`replica_config_file`](amsu_core::SetupOptions::replica_config_file)
    /// would have written); the error when the replica could not be read.
    pub option_file_snippet: Result<String, Arc<amsu_mysql::MysqlError>>,
}

impl RuntimeOnly {
    /// The settings of `report` made at runtime only, with the option-file lines read
    /// from `replica`; `None` when there are none.
    pub async fn of(report: &SetupReport, replica: &ServerAddr) -> Option<RuntimeOnly> {
        let settings = report.runtime_only();
        if settings.is_empty() {
            return None;
        }
        let option_file_snippet = amsu_mysql::replica_config::read(replica, None)
            .await
            .map(|c| amsu_mysql::replica_config::option_snippet(&c, &replica.to_string()))
            .map_err(Arc::new);
        Some(RuntimeOnly {
            settings,
            option_file_snippet,
        })
    }
}

/// A failed [`Provision::execute`] or [`setup`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The checks or the plan failed (see [`amsu_core::Error`]: nothing changed, or
    /// what was changed, and whether a rerun resumes). The option file and the
    /// verification are steps of the plan ([`amsu_core::Step::ReplicaConfigFile`],
    /// [`amsu_core::Step::Verify`]): their failure is [`amsu_core::Error::Failed`] at
    /// that step, and a rerun runs them.
    #[error(transparent)]
    Setup(#[from] amsu_core::Error),
}

/// The option file and the verification of a setup ([`amsu_core::Finishing`]), from
/// `amsu-mysql`; keeps what they found for [`SetupOutcome`].
struct FinishingWork {
    master: ServerAddr,
    replica: ServerAddr,
    timeout: Duration,
    replica_config: Mutex<Option<(PathBuf, ReplicaConfig)>>,
    verify: Mutex<Option<VerifyOutcome>>,
}

#[async_trait::async_trait]
impl Finishing for FinishingWork {
    async fn write_replica_config(
        &self,
        path: &Path,
        report_host: Option<String>,
    ) -> Result<(), BoxError> {
        let c = write_replica_config(path, &self.replica, report_host).await?;
        *self.replica_config.lock().expect("replica config lock") = Some((path.to_path_buf(), c));
        Ok(())
    }

    async fn verify(&self) -> Result<(), BoxError> {
        let config =
            VerifyConfig::new(self.master.clone(), self.replica.clone()).timeout(self.timeout);
        let v = verify(&config).await?;
        *self.verify.lock().expect("verify lock") = Some(v);
        Ok(())
    }
}

/// One setup, wired: the MySQL adapters, the copier of the method and its preflight, the
/// MySQL preflight and the file journal. See the [module documentation](self).
pub struct Provision {
    config: SetupConfig,
    master: MysqlMaster,
    replica: MysqlReplica,
    copier: Copier,
    checks: MysqlPreflight,
    journal: FileJournal,
    finishing: FinishingWork,
    options: SetupOptions,
    cancel: CancellationToken,
    donor_checks: Option<DonorChecks>,
}

impl fmt::Debug for Provision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provision")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Provision {
    /// Wires `config`; `events` hears the progress of the checks (the catalog read).
    /// Nothing is contacted yet.
    pub fn new(config: SetupConfig, events: Arc<dyn EventSink>) -> Self {
        let mut master = MysqlMaster::new(config.master.clone());
        if let Some(admin) = config.admin.clone() {
            master = master.with_admin(admin);
        }
        let replica = MysqlReplica::new(config.replica.clone());
        let mut copier = config.method.copier(&config.master, &config.replica);
        let donor = config.donor.clone().map(|d| {
            let marker = config.journal_path().with_extension("donor-stopped");
            d.marker(Some(marker))
        });
        if let (Some(d), CopyMethod::Logical { options }) = (&donor, &config.method) {
            copier = Copier::Logical(
                LogicalCopy::new(
                    config.master.clone(),
                    config.replica.clone(),
                    options.clone(),
                )
                .from_donor(d.clone()),
            );
        }
        let donor_checks = donor.map(|d| {
            DonorChecks::new(
                d,
                config.master.clone(),
                config.replica.clone(),
                config.replication.positioning_of(),
                config.method.name(),
            )
        });
        let checks = MysqlPreflight::new(config.master.clone())
            .events(events)
            .admin(config.admin.clone())
            .replica(Some(config.replica.clone()))
            .data_from(config.donor.as_ref().map(|d| d.addr().clone()))
            .options(config.check_options());
        let journal = FileJournal::new(config.journal_path());
        let options = config.setup_options();
        let finishing = FinishingWork {
            master: config.master.clone(),
            replica: config.replica.clone(),
            timeout: config.options.catch_up_wait(),
            replica_config: Mutex::new(None),
            verify: Mutex::new(None),
        };
        Provision {
            config,
            master,
            replica,
            copier,
            checks,
            journal,
            finishing,
            options,
            cancel: CancellationToken::new(),
            donor_checks,
        }
    }

    /// Stops the run when `token` is cancelled (see
    /// [`Setup::with_cancellation`](amsu_core::Setup::with_cancellation)); the
    /// verification stops too. Default: never.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SetupConfig {
        &self.config
    }

    /// The master, as the setup drives it.
    pub fn master(&self) -> &dyn MasterServer {
        &self.master
    }

    /// The copier of the method.
    pub fn copier(&self) -> &dyn DataCopier {
        self.copier.copier()
    }

    /// With [`CopyMethod::Physical`]: the first reason the physical method cannot copy
    /// this master (exactly) from here while a logical copy can — an identifier or
    /// version it cannot carry, the backup tool missing or too old, a master on another
    /// host — from its own read-only preflight; `None` when it can, for other methods,
    /// or when the preflight cannot run (its error then shows in [`check`](Self::check)).
    /// What `amsu setup --method auto` falls back to the logical method on.
    pub async fn physical_obstacle(&self) -> Option<String> {
        const CANNOT: &[FindingCode] = &[
            FindingCode::PhysicalIdentifier,
            FindingCode::PhysicalVersionMismatch,
            FindingCode::BackupToolMissing,
            FindingCode::BackupToolVersion,
            FindingCode::MasterNotLocal,
        ];
        if !matches!(self.config.copy_method(), CopyMethod::Physical { .. }) {
            return None;
        }
        let findings = self.copier.preflight().findings().await.ok()?;
        findings
            .into_iter()
            .find(|f| f.severity == Severity::Blocking && CANNOT.contains(&f.code))
            .map(|f| f.problem)
    }

    /// The method's own read-only checks (run by [`check`](Self::check) too).
    pub fn method_preflight(&self) -> &dyn Preflight {
        self.copier.preflight()
    }

    /// The journal's path.
    pub fn journal_path(&self) -> PathBuf {
        self.config.journal_path()
    }

    fn setup(&self) -> Setup<'_> {
        let setup = Setup::new(
            &self.master,
            &self.replica,
            self.copier.copier(),
            self.options.clone(),
        )
        .with_cancellation(self.cancel.clone())
        .with_preflight(&self.checks)
        .with_preflight(self.copier.preflight())
        .with_finishing(&self.finishing);
        let setup = match &self.donor_checks {
            Some(d) => setup.with_preflight(d),
            None => setup,
        };
        if self.config.use_journal {
            setup.with_journal(&self.journal)
        } else {
            setup
        }
    }

    /// Every check, once, changing nothing: the findings and the plan, or
    /// [`amsu_core::Error::Preconditions`] with the findings when one blocks.
    pub async fn check(&self, events: &dyn EventSink) -> Result<Checked, amsu_core::Error> {
        self.setup().check(events).await
    }

    /// The plan of `checked` with the statements each action runs (passwords redacted;
    /// the copy's as its method describes them).
    pub fn plan<'c>(&self, checked: &'c Checked) -> Vec<(&'c Action, Vec<String>)> {
        amsu_mysql::plan_sql::plan(checked, self.copier.copier().statements())
    }

    /// Runs the plan of `checked` (from [`check`](Self::check)): binary log protection,
    /// replication user, copy, `CHANGE MASTER`, start, catch-up, and the option file and
    /// the verification when configured — each a journaled step.
    pub async fn execute(
        &self,
        checked: Checked,
        events: Arc<dyn EventSink>,
    ) -> Result<SetupOutcome, SetupError> {
        let report = self.setup().execute(checked, events).await?;
        let replica_config = self
            .finishing
            .replica_config
            .lock()
            .expect("replica config lock")
            .take();
        let runtime_only = match replica_config {
            Some(_) => None,
            None => RuntimeOnly::of(&report, &self.config.replica).await,
        };
        Ok(SetupOutcome {
            report,
            replica_config,
            verify: self.finishing.verify.lock().expect("verify lock").take(),
            runtime_only,
        })
    }
}

/// The replica's settings, written as an option file at `path`.
async fn write_replica_config(
    path: &Path,
    replica: &ServerAddr,
    report_host: Option<String>,
) -> Result<ReplicaConfig, BoxError> {
    let c = amsu_mysql::replica_config::read(replica, report_host).await?;
    let text = amsu_mysql::replica_config::option_snippet(&c, &replica.to_string());
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::write(&path, text).map_err(|e| (path, e)))
        .await?
        .map_err(|(path, e)| format!("cannot write {}: {e}", path.display()))?;
    Ok(c)
}

/// Every check of a setup with `config`, once, changing nothing (what `amsu check` and
/// `amsu setup --dry-run` show): the findings and the plan, or
/// [`amsu_core::Error::Preconditions`] with the findings when one blocks.
pub async fn check(
    config: &SetupConfig,
    events: Arc<dyn EventSink>,
) -> Result<Checked, amsu_core::Error> {
    Provision::new(config.clone(), events.clone())
        .check(&*events)
        .await
}

/// The whole `amsu setup`: every check, then the plan (binary log protection, replication
/// user, copy, `CHANGE MASTER`, start, catch-up), journaled so that a rerun resumes, then
/// the option file and the verification when configured. `cancel` stops it like a
/// failure (resumable).
pub async fn setup(
    config: SetupConfig,
    events: Arc<dyn EventSink>,
    cancel: CancellationToken,
) -> Result<SetupOutcome, SetupError> {
    let p = Provision::new(config, events.clone()).with_cancellation(cancel);
    let checked = p.check(&*events).await?;
    p.execute(checked, events).await
}
