//! `amsu restore` as a library: a logical image (a local directory, or fetched from an
//! FTP or object storage transport) loaded into a replica, and optionally the replica
//! pointed at the master and started.
//!
//! Without a replication start the image is checked whole, then loaded; an interrupted
//! restore of the same image goes on where it stopped (its chunks are recorded on the
//! replica). With [`RestoreConfig::start_replication`] the restore is the copy step of
//! a setup with [`CopyMethod::Image`]: the same checks, plan and journal as
//! [`setup`](super::setup) — the replication user, `CHANGE MASTER` (GTID or file and
//! position, TLS) and the start are plan steps, and a rerun resumes from the journal.

use std::sync::Arc;

use amsu_core::manifest::Manifest;
use amsu_core::{
    BoxError, CancellationToken, CopyReport, EventSink, Finding, ReplicaServer, ServerAddr,
    SetupReport,
};
use amsu_mysql::{MysqlMaster, MysqlReplica};

use super::{Copier, CopyMethod, Provision, ReplicationSettings, SetupConfig, SetupError};
use crate::{ImageError, ImageKey, ImageRestore, ImageSource};

/// The replication start of a restore ([`RestoreConfig::start_replication`]): the
/// master and how the replica replicates from it ([`ReplicationSettings`], shared with
/// [`SetupConfig::replication`]). Build it with [`StartReplication::new`] and the
/// by-value setters; each documents its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StartReplication {
    master: ServerAddr,
    replication: ReplicationSettings,
}

impl StartReplication {
    /// Replication from `master` (whose URL user creates the replication user when it is
    /// missing), with the defaults of [`ReplicationSettings::new`].
    pub fn new(master: ServerAddr) -> Self {
        StartReplication {
            master,
            replication: ReplicationSettings::new(),
        }
    }

    /// How the replica replicates: user, passwords, the master's host as the replica
    /// reaches it, TLS, positioning, journal. Default: [`ReplicationSettings::new`].
    pub fn replication(mut self, replication: ReplicationSettings) -> Self {
        self.replication = replication;
        self
    }

    /// The master.
    pub(crate) fn master_addr(&self) -> &ServerAddr {
        &self.master
    }

    /// The replication settings.
    pub(crate) fn replication_settings(&self) -> &ReplicationSettings {
        &self.replication
    }
}

/// A restore: the image, the replica and how. Build it with [`RestoreConfig::new`] and
/// the by-value setters; each documents its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreConfig {
    source: ImageSource,
    replica: ServerAddr,
    threads: usize,
    key: Option<ImageKey>,
    force: bool,
    start: Option<StartReplication>,
}

impl RestoreConfig {
    /// A restore of the image at `source` into `replica`. Defaults: 2 loading threads,
    /// the signature not checked, a replica holding databases refused, no replication
    /// start.
    pub fn new(source: ImageSource, replica: ServerAddr) -> Self {
        RestoreConfig {
            source,
            replica,
            threads: 2,
            key: None,
            force: false,
            start: None,
        }
    }

    /// The replica to restore into (a fan-out restores several replicas from one
    /// configuration). Default: the one given to [`RestoreConfig::new`].
    pub fn replica(mut self, replica: ServerAddr) -> Self {
        self.replica = replica;
        self
    }

    /// Its image read for its replica as one of several loading it at once
    /// ([`ImageSource::for_replica`]: a remote image fetched into a work directory of
    /// the replica's own).
    pub(crate) fn image_per_replica(mut self) -> Self {
        self.source = self.source.for_replica(&self.replica);
        self
    }

    /// Parallel loading sessions. Default: 2.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Accept only an image signed with `key`. Default: the signature is not checked.
    pub fn key(mut self, key: Option<ImageKey>) -> Self {
        self.key = key;
        self
    }

    /// Without a replication start: load next to the databases the replica holds (the
    /// image's tables must not exist there) instead of refusing such a replica. Default:
    /// false. It is not used with a replication start, which needs an empty replica (or
    /// one holding an interrupted restore of the same setup, which is resumed).
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// After the load, point the replica at the master at the image's coordinates and
    /// start replicating, through the setup plan. Default: none.
    pub fn start_replication(mut self, start: Option<StartReplication>) -> Self {
        self.start = start;
        self
    }

    /// The replica.
    pub fn replica_addr(&self) -> &ServerAddr {
        &self.replica
    }

    /// The replication start, if any.
    pub fn replication(&self) -> Option<&StartReplication> {
        self.start.as_ref()
    }

    fn image_restore(&self) -> ImageRestore {
        ImageRestore::new(self.source.clone(), self.replica.clone())
            .threads(self.threads)
            .key(self.key.clone())
    }

    fn setup_config(&self, s: &StartReplication) -> SetupConfig {
        SetupConfig::new(s.master.clone(), self.replica.clone())
            .method(CopyMethod::Image {
                source: self.source.clone(),
                threads: self.threads,
                key: self.key.clone(),
            })
            .replication(s.replication.clone())
    }
}

/// What [`restore`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The image's manifest (its coordinates are where replication starts).
    pub manifest: Manifest,
    /// What was loaded.
    pub report: CopyReport,
    /// Without a replication start: the number of chunks an interrupted earlier restore
    /// of this image had loaded (this run went on from there).
    pub resumed_chunks: Option<usize>,
    /// With a replication start: the setup's report (the changes, the replication
    /// state, whether it resumed).
    pub setup: Option<SetupReport>,
}

/// A failed [`restore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreFailure {
    /// The master and the replica are the same server; nothing was changed.
    #[error("{}; nothing was changed", .0.problem)]
    SameServer(Finding),
    /// Whether the master and the replica are two servers could not be found out;
    /// nothing was changed.
    #[error("{0}")]
    Identity(#[source] BoxError),
    /// The image is damaged, not trusted ([`ImageError::is_refusal`]) or cannot be read;
    /// nothing was changed on the replica.
    #[error("{0}")]
    Image(#[source] ImageError),
    /// The replica holds databases (without [`RestoreConfig::force`]); nothing was
    /// changed.
    #[error("the replica already holds databases ({})", databases.join(", "))]
    ReplicaNotEmpty {
        /// Its user databases.
        databases: Vec<String>,
    },
    /// The load (or reading the replica before it) failed; a rerun resumes it.
    #[error("{0}")]
    Load(#[source] BoxError),
    /// With a replication start: the setup (checks, replication user, load,
    /// `CHANGE MASTER`, start) failed; see [`amsu_core::Error`] for whether anything was
    /// changed and whether a rerun resumes.
    #[error(transparent)]
    Setup(#[from] SetupError),
}

impl RestoreFailure {
    /// True when nothing was changed on either server.
    pub fn changed_nothing(&self) -> bool {
        match self {
            RestoreFailure::SameServer(_)
            | RestoreFailure::Identity(_)
            | RestoreFailure::Image(_)
            | RestoreFailure::ReplicaNotEmpty { .. } => true,
            RestoreFailure::Load(_) => false,
            RestoreFailure::Setup(SetupError::Setup(e)) => e.changed_nothing(),
        }
    }
}

/// Restores the image of `config` into its replica, and starts replication when
/// configured (see the module documentation of `amsu_backup::facade`); `events` hears the progress,
/// `cancel` stops a replication start like a failure (resumable).
pub async fn restore(
    config: &RestoreConfig,
    events: Arc<dyn EventSink>,
    cancel: CancellationToken,
) -> Result<RestoreReport, RestoreFailure> {
    // Master and replica must be two servers before anything else (not overridable).
    if let Some(s) = &config.start {
        let same = amsu_core::distinct_servers(
            &MysqlMaster::new(s.master.clone()),
            &MysqlReplica::new(config.replica.clone()),
        )
        .await
        .map_err(RestoreFailure::Identity)?;
        if let Some(f) = same {
            return Err(RestoreFailure::SameServer(f));
        }
    }
    let mut restore = config.image_restore();
    if let Some(s) = &config.start {
        restore = restore.master(s.master.clone());
    }
    // The whole image is checked before anything changes: a damaged or untrusted image
    // loads nothing. (Done once: the setup's copier below shares the result.)
    let manifest = restore.manifest().await.map_err(RestoreFailure::Image)?;
    if let Some(s) = &config.start {
        let mut p =
            Provision::new(config.setup_config(s), events.clone()).with_cancellation(cancel);
        p.copier = Copier::Image(restore);
        let checked = p.check(&*events).await.map_err(SetupError::from)?;
        let outcome = p.execute(checked, events).await?;
        return Ok(RestoreReport {
            manifest,
            report: outcome.report.copy.clone(),
            resumed_chunks: None,
            setup: Some(outcome.report),
        });
    }
    // An interrupted restore of this image goes on where it stopped; anything else on
    // the replica is left alone unless forced.
    let recorded = restore
        .recorded_chunks()
        .await
        .map_err(|e| RestoreFailure::Load(e.into()))?;
    match recorded {
        Some(_) if !config.force => restore = restore.resume(true),
        _ if !config.force => {
            let databases = MysqlReplica::new(config.replica.clone())
                .user_databases()
                .await
                .map_err(RestoreFailure::Load)?;
            if !databases.is_empty() {
                return Err(RestoreFailure::ReplicaNotEmpty { databases });
            }
        }
        _ => {}
    }
    let resumed_chunks = recorded.filter(|_| !config.force);
    let (report, manifest) = restore
        .run(events)
        .await
        .map_err(|e| RestoreFailure::Load(e.into()))?;
    restore
        .forget_progress()
        .await
        .map_err(|e| RestoreFailure::Load(e.into()))?;
    Ok(RestoreReport {
        manifest,
        report,
        resumed_chunks,
        setup: None,
    })
}
