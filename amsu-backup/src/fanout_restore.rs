//! One image loaded into many replicas at once (`amsu restore --replica A --replica B`).
//!
//! [`fan_out_restore`] is the whole of it as one call: the identity checks (the master,
//! when replication is started, is none of the replicas, and no two replicas are one
//! server; a replica that cannot be reached fails in its own run), the replication user (created once, before the replicas' runs, when
//! [`RestoreFanoutConfig::repl_password`] is given), then one tokio task per replica
//! running the façade's [`restore`](crate::restore) — each with its own events (tagged
//! with the replica, see [`RestoreFanoutEvents`]), its own journal (the replica's default
//! one, when replication is started) and its own failure: a failing replica does not
//! stop the others, and rerunning the restore for it alone resumes it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use amsu_backup::fanout_restore::{fan_out_restore, RestoreFanoutConfig, RestoreFanoutEvents};
//! use amsu_backup::{ImageSource, RestoreConfig};
//! use amsu_core::{CancellationToken, Event, ServerAddr};
//!
//! struct Log;
//! impl RestoreFanoutEvents for Log {
//!     fn replica(&self, r: &ServerAddr, e: &Event) { println!("{r}: {e:?}") }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let replicas: Vec<ServerAddr> = vec![
//!     "mysql://root@db2.example:3306".parse()?,
//!     "mysql://root@db3.example:3306".parse()?,
//! ];
//! let template = RestoreConfig::new(
//!     ImageSource::Local("/var/backups/amsu/image".into()),
//!     replicas[0].clone(),
//! );
//! let config = RestoreFanoutConfig::new(template, replicas);
//! let outcome = fan_out_restore(config, Arc::new(Log), CancellationToken::new()).await?;
//! for run in &outcome.runs {
//!     println!("{}: exit {}", run.replica, run.exit_code());
//! }
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use amsu_core::{CancellationToken, Event, EventSink, ReplicaServer, Secret, ServerAddr};
use amsu_mysql::{MysqlMaster, MysqlReplica};

use crate::fanout::{
    check_distinct, combined_exit_code, ensure_replication_user, FanoutError, ReplicaOutcome,
};
use crate::{RestoreConfig, RestoreFailure, RestoreReport};

/// Where a fan-out restore's events go, told apart by replica.
pub trait RestoreFanoutEvents: Send + Sync {
    /// An event of one replica's restore.
    fn replica(&self, replica: &ServerAddr, event: &Event);
    /// One replica's restore ended (the others may still run). Default: ignored.
    fn replica_done(&self, _run: &RestoreRun) {}
}

/// One replica's events, tagged with it, for its restore.
struct Tagged {
    replica: ServerAddr,
    inner: Arc<dyn RestoreFanoutEvents>,
}

impl EventSink for Tagged {
    fn emit(&self, event: &Event) {
        self.inner.replica(&self.replica, event)
    }
}

/// Everything one fan-out restore needs: a restore configuration used as the template of
/// every replica's (the image, threads, key, force, the replication start: each
/// replica's restore is the template with its replica and, when replication is started,
/// its default journal), and the replicas. Build it with [`RestoreFanoutConfig::new`]
/// and the by-value setters; each documents its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreFanoutConfig {
    template: RestoreConfig,
    replicas: Vec<ServerAddr>,
    repl_password: Option<Secret>,
}

impl RestoreFanoutConfig {
    /// The restore `template` run for each of `replicas` (the template's own replica is
    /// not used). Default: the replication user is not created before the runs (each
    /// run's setup plan creates it when missing).
    pub fn new(template: RestoreConfig, replicas: Vec<ServerAddr>) -> Self {
        RestoreFanoutConfig {
            template,
            replicas,
            repl_password: None,
        }
    }

    /// With a replication start: the replication user's password. The user is created
    /// with it on the master before the replicas' runs when it is missing (so that they
    /// do not race to create it), and every replica logs in with it. Default: none.
    pub fn repl_password(mut self, password: Secret) -> Self {
        self.repl_password = Some(password);
        self
    }

    /// The replicas.
    pub fn replicas(&self) -> &[ServerAddr] {
        &self.replicas
    }

    /// The restore of one replica: the template with `replica`, and with a replication
    /// start, the password given and the replica's default journal (the template's when
    /// there is one replica, a rerun for it).
    pub(crate) fn replica_config(&self, replica: &ServerAddr) -> RestoreConfig {
        let mut c = self.template.clone().replica(replica.clone());
        if self.replicas.len() > 1 {
            c = c.image_per_replica();
        }
        if let Some(start) = c.replication().cloned() {
            let mut r = start.replication_settings().clone();
            if self.replicas.len() > 1 {
                r = r.journal(None);
            }
            if let Some(pw) = &self.repl_password {
                r = r.repl_password(Some(pw.clone()));
            }
            c = c.start_replication(Some(start.replication(r)));
        }
        c
    }
}

/// How one replica's restore ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestoreRun {
    /// The replica.
    pub replica: ServerAddr,
    /// Its restore's outcome (a panicked task: [`RestoreFailure::Load`] with the panic).
    pub result: Result<RestoreReport, RestoreFailure>,
}

impl RestoreRun {
    /// The exit code of `amsu restore` for this replica: 0 done, 3 nothing was changed
    /// on it, else 1.
    pub fn exit_code(&self) -> i32 {
        match &self.result {
            Ok(_) => 0,
            Err(e) if e.changed_nothing() => 3,
            Err(_) => 1,
        }
    }

    /// The summary of this run: the replica as `HOST:PORT` and its exit code.
    pub fn outcome(&self) -> ReplicaOutcome {
        ReplicaOutcome {
            replica: format!("{}:{}", self.replica.host, self.replica.port),
            exit_code: Some(self.exit_code()),
        }
    }
}

/// What a [`fan_out_restore`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestoreFanoutOutcome {
    /// Every replica's run, in the order given.
    pub runs: Vec<RestoreRun>,
}

impl RestoreFanoutOutcome {
    /// The summaries of the runs.
    pub fn outcomes(&self) -> Vec<ReplicaOutcome> {
        self.runs.iter().map(RestoreRun::outcome).collect()
    }

    /// The exit code of the whole fan-out ([`combined_exit_code`]).
    pub fn exit_code(&self) -> i32 {
        combined_exit_code(&self.outcomes(), false)
    }
}

/// The identity checks of a fan-out restore, before anything changes (not overridable):
/// the master (when replication is started) is none of the replicas, and no two replicas
/// are one server — among the replicas that answer. A replica that cannot be reached is
/// left out here: its own run fails, alone, before it changes anything.
pub async fn check_distinct_reachable(
    master: Option<&ServerAddr>,
    replicas: &[ServerAddr],
) -> Result<(), FanoutError> {
    let mut reachable = Vec::with_capacity(replicas.len());
    for r in replicas {
        if MysqlReplica::new(r.clone()).identity().await.is_ok() {
            reachable.push(r.clone());
        }
    }
    check_distinct(master, &reachable).await
}

/// The whole fan-out restore: the identity checks ([`check_distinct_reachable`]), the replication user
/// ([`RestoreFanoutConfig::repl_password`]), then every replica's restore at the same
/// time, each in its own task with its own events. Returns when every replica's run
/// ended; a failed replica is in [`RestoreFanoutOutcome::runs`]. `cancel` stops every
/// replica's replication start (resumable).
pub async fn fan_out_restore(
    config: RestoreFanoutConfig,
    events: Arc<dyn RestoreFanoutEvents>,
    cancel: CancellationToken,
) -> Result<RestoreFanoutOutcome, FanoutError> {
    let start = config.template.replication().cloned();
    let master = start.as_ref().map(|s| s.master_addr().clone());
    check_distinct_reachable(master.as_ref(), &config.replicas).await?;
    if let (Some(start), Some(pw)) = (&start, &config.repl_password) {
        let master = start.master_addr();
        let user = start.replication_settings().user().to_string();
        ensure_replication_user(&MysqlMaster::new(master.clone()), &user, pw)
            .await
            .map_err(|source| FanoutError::ReplUser {
                user,
                master: master.to_string(),
                source,
            })?;
    }
    let tasks: Vec<_> = config
        .replicas
        .iter()
        .map(|r| {
            let restore_config = config.replica_config(r);
            let sink: Arc<dyn EventSink> = Arc::new(Tagged {
                replica: r.clone(),
                inner: events.clone(),
            });
            let (events, cancel, replica) = (events.clone(), cancel.child_token(), r.clone());
            tokio::spawn(async move {
                let result = crate::restore(&restore_config, sink, cancel).await;
                let run = RestoreRun { replica, result };
                events.replica_done(&run);
                run
            })
        })
        .collect();
    let mut runs = Vec::with_capacity(tasks.len());
    for (task, r) in tasks.into_iter().zip(&config.replicas) {
        runs.push(task.await.unwrap_or_else(|e| {
            let run = RestoreRun {
                replica: r.clone(),
                result: Err(RestoreFailure::Load(
                    format!("the replica's task ended abnormally: {e}").into(),
                )),
            };
            events.replica_done(&run);
            run
        }));
    }
    Ok(RestoreFanoutOutcome { runs })
}
