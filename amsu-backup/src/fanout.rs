//! Many replicas from one read of the master ("fan-out").
//!
//! The master is read once, into a *spool*: an ordinary image directory on the host that
//! runs amsu (one snapshot, one commit-blocked window). Every replica is seeded from that
//! image independently — its own journal, progress, verify and failure — and starts
//! replicating at the image's coordinates. The replicas do not wait for the whole dump:
//! each starts once the snapshot is taken (its checks get the catalog and the coordinates
//! from the dump's first phase) and loads each chunk as soon as the dump has written it
//! ([`ImageSource::Stream`]), then adds keys, objects and accounts after the last one.
//! The dump never waits for a replica (the chunks are files in the spool; a replica is
//! told their names and checksums). The spool is kept until every replica is done, so a
//! replica that failed resumes from it on its own, as from any complete image.
//!
//! [`fan_out`] is the whole fan-out as one call: the identity checks, the replication
//! user, the master read once into the [`Spool`] (or an image given), and meanwhile one
//! tokio task per replica running the image setup of the façade ([`crate::setup`] with
//! [`CopyMethod::Image`]) — each with its own journal (the replica's default one), its own
//! events (tagged with the replica, see [`FanoutEvents`]), its own verification and its
//! own failure: a failing replica does not stop the others, nor the dump.
//!
//! ```no_run
//! use std::sync::Arc;
//! use amsu_backup::fanout::{fan_out, FanoutConfig, FanoutEvents, Spool};
//! use amsu_backup::SetupConfig;
//! use amsu_core::{CancellationToken, Event, Secret, ServerAddr};
//!
//! struct Log;
//! impl FanoutEvents for Log {
//!     fn master(&self, e: &Event) { println!("master: {e:?}") }
//!     fn replica(&self, r: &ServerAddr, e: &Event) { println!("{r}: {e:?}") }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let master: ServerAddr = "mysql://amsu@db1.example:3306".parse()?;
//! let replicas: Vec<ServerAddr> = vec![
//!     "mysql://root@db2.example:3306".parse()?,
//!     "mysql://root@db3.example:3306".parse()?,
//! ];
//! let template = SetupConfig::new(master.clone(), replicas[0].clone()).options(|o| o.verify(true));
//! let config = FanoutConfig::new(template, replicas, Spool::new("/var/tmp/amsu-spool"))
//!     .repl_password(Secret::generate());
//! let outcome = fan_out(config, Arc::new(Log), CancellationToken::new()).await?;
//! for run in &outcome.runs {
//!     println!("{}: exit {}", run.replica, run.exit_code());
//! }
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use amsu_core::{
    manifest::MANIFEST_FILE, BoxError, CancellationToken, CopyReport, Event, EventSink, Finding,
    LoginCheck, MasterServer, Secret, ServerAddr,
};
use amsu_mysql::{MysqlMaster, MysqlReplica};

use crate::image_stream;
use crate::{
    CopyMethod, ImageBackup, ImageError, ImageKey, ImageSource, SetupConfig, SetupError,
    SetupOutcome,
};

/// The file a fan-out writes first into a spool directory it dumps the master into,
/// naming that master: the proof that the directory's files are amsu's. Only a spool
/// with it is ever removed (an interrupted dump's files before the master is read again,
/// the whole spool once every replica is done); a directory holding other files is
/// refused ([`SpoolState::Foreign`]), and a spool of another master too.
pub const SPOOL_MARKER: &str = ".amsu-spool";

/// The local image directory a fan-out dumps the master into once.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// The state a spool directory was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolState {
    /// Nothing there yet.
    Empty,
    /// A complete image (its manifest, written last, is there): reused as it is.
    Complete,
    /// Files of an interrupted dump of amsu's (its [`SPOOL_MARKER`] is there), without a
    /// manifest: they are removed and the master is read again.
    Partial,
    /// Files amsu cannot prove are its own (neither a manifest nor its marker): never
    /// used, never removed; a fan-out refuses the directory.
    Foreign,
}

impl Spool {
    /// A spool at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Spool { dir: dir.into() }
    }

    /// The default spool of `master`: `JOURNAL_DIR/spool/HOST_PORT`, beside the
    /// replicas' journals.
    pub fn default_dir(journal_dir: &Path, master: &ServerAddr) -> PathBuf {
        let name: String = format!("{}_{}", master.host, master.port)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        journal_dir.join("spool").join(name)
    }

    /// The default spool of a fan-out from `master`: [`default_dir`](Self::default_dir)
    /// in the directory of the default journals ([`crate::default_journal_dir`]).
    pub fn default_for(master: &ServerAddr) -> Spool {
        Spool::new(Self::default_dir(&crate::default_journal_dir(), master))
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the directory holds now.
    pub fn state(&self) -> SpoolState {
        if self.dir.join(MANIFEST_FILE).is_file() {
            SpoolState::Complete
        } else if self.entries().is_empty() {
            SpoolState::Empty
        } else if self.dir.join(SPOOL_MARKER).is_file() {
            SpoolState::Partial
        } else {
            SpoolState::Foreign
        }
    }

    /// The names in the directory, sorted (none when it is missing or unreadable).
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The master named by the spool's [`SPOOL_MARKER`], when amsu wrote it.
    pub fn owner(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join(SPOOL_MARKER))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Makes the directory ready for a new dump of the master `owner` names (see
    /// [`spool_owner`]): the files of an interrupted one are removed, the marker is
    /// written. A complete image is never touched (returns its state unchanged); a
    /// directory holding files that are not amsu's is refused
    /// ([`std::io::ErrorKind::AlreadyExists`]) and left as it is.
    pub(crate) fn prepare(&self, owner: &str) -> std::io::Result<SpoolState> {
        let state = self.state();
        match state {
            SpoolState::Complete => return Ok(state),
            SpoolState::Foreign => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the directory holds files that are not amsu's",
                ))
            }
            SpoolState::Partial => std::fs::remove_dir_all(&self.dir)?,
            SpoolState::Empty => {}
        }
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.dir.join(SPOOL_MARKER), format!("{owner}\n"))?;
        Ok(state)
    }

    /// Removes the spool (once every replica is done) when amsu wrote it (its marker is
    /// there); returns false, removing nothing, otherwise (an image of `amsu backup`
    /// given as the spool is kept).
    pub fn remove(&self) -> std::io::Result<bool> {
        if !self.dir.join(SPOOL_MARKER).is_file() {
            return Ok(false);
        }
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(true),
        }
    }
}

/// What a spool's marker says of `master`: its `@@hostname`, `@@port` and `@@datadir`
/// (the same server under any spelling of its address).
pub async fn spool_owner(master: &ServerAddr) -> Result<String, BoxError> {
    let id = MysqlMaster::new(master.clone()).identity().await?;
    Ok(format!("{}:{}:{}", id.hostname, id.port, id.datadir))
}

/// Checks, before anything changes, that the spool directory can be used for `master`:
/// empty or missing; an interrupted dump or a complete spool that amsu wrote for this
/// master (its marker); or a complete image without a marker (`amsu backup`'s) taken from
/// this master (its manifest's `server_id`, and `server_uuid` when both have one).
/// Anything else is refused with [`FanoutError::Spool`], nothing in it used or removed.
/// Returns its state.
pub async fn check_spool(spool: &Spool, master: &ServerAddr) -> Result<SpoolState, FanoutError> {
    let refuse = |problem: String, fix: String| FanoutError::Spool {
        spool: spool.dir().display().to_string(),
        problem,
        fix,
    };
    let state = spool.state();
    if state == SpoolState::Empty {
        return Ok(state);
    }
    if state == SpoolState::Foreign {
        let names = spool.entries();
        let shown: Vec<_> = names.iter().take(3).cloned().collect();
        return Err(refuse(
            format!(
                "holds files that are not amsu's ({}{}) and no amsu image",
                shown.join(", "),
                if names.len() > 3 { ", …" } else { "" }
            ),
            "use an empty or new spool directory (amsu removes only a spool it wrote)".into(),
        ));
    }
    let owner = spool_owner(master).await.map_err(FanoutError::Check)?;
    match spool.owner() {
        Some(o) if o != owner => Err(refuse(
            format!("is the spool of another master ({o}; the master is {owner})"),
            format!(
                "use another spool directory, or remove {} when that spool is no longer needed",
                spool.dir().display()
            ),
        )),
        Some(_) => Ok(state),
        None => {
            let path = spool.dir().join(MANIFEST_FILE);
            let manifest = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    amsu_core::manifest::Manifest::from_json(&t).map_err(|e| e.to_string())
                })
                .map_err(|e| {
                    refuse(
                        format!("holds a manifest.json that is not a readable amsu image: {e}"),
                        "use an empty or new spool directory".into(),
                    )
                })?;
            let id = MysqlMaster::new(master.clone())
                .identity()
                .await
                .map_err(FanoutError::Check)?;
            let uuid_differs = matches!(
                (&manifest.source.uuid, &id.server_uuid),
                (Some(a), Some(b)) if a != b
            );
            if manifest.source.server_id != id.server_id || uuid_differs {
                return Err(refuse(
                    format!(
                        "holds a complete image of another server (server_id {}; the master \
                         {master} has server_id {})",
                        manifest.source.server_id, id.server_id
                    ),
                    format!(
                        "use another spool directory (or seed from that image by giving it as the \
                         image, knowingly), or remove {} when that image is no longer needed",
                        spool.dir().display()
                    ),
                ));
            }
            Ok(state)
        }
    }
}

/// Two of the replicas are one server (under two names): the indexes of the pair and the
/// finding that says so.
#[derive(Debug, Clone)]
pub struct SameReplica {
    /// The first replica of the pair (index into the list given).
    pub first: usize,
    /// The second one.
    pub second: usize,
    /// The finding, with its fix.
    pub finding: Finding,
}

/// Checks that no two `replicas` are the same server, under any spelling (host names,
/// ports, sockets): the same decisive check as master against replica
/// ([`amsu_core::distinct_servers`]), run for every pair. Changes nothing.
pub(crate) async fn distinct_replicas(
    replicas: &[ServerAddr],
) -> Result<Option<SameReplica>, BoxError> {
    for i in 0..replicas.len() {
        for j in i + 1..replicas.len() {
            let a = MysqlMaster::new(replicas[i].clone());
            let b = MysqlReplica::new(replicas[j].clone());
            if let Some(mut finding) = amsu_core::distinct_servers(&a, &b).await? {
                finding.problem = format!(
                    "the replicas {} and {} are the same server ({})",
                    replicas[i], replicas[j], finding.problem
                );
                finding.fix = "name each replica server once".into();
                return Ok(Some(SameReplica {
                    first: i,
                    second: j,
                    finding,
                }));
            }
        }
    }
    Ok(None)
}

/// How one replica's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaOutcome {
    /// The replica, as shown (no password).
    pub replica: String,
    /// The exit code of its run (0 done, 3 a precondition failed and nothing was changed
    /// on it, 1 failed while changing things; `None`: ended by a signal).
    pub exit_code: Option<i32>,
}

impl ReplicaOutcome {
    /// The outcome of the run for `replica` (as shown, no password) that ended with
    /// `exit_code` (`None`: ended by a signal, or lost).
    pub fn new(replica: impl Into<String>, exit_code: Option<i32>) -> Self {
        ReplicaOutcome {
            replica: replica.into(),
            exit_code,
        }
    }

    /// True when the replica is done.
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// The exit code of a fan-out, with the meaning the single-replica commands give it: 0
/// when every replica is done; 3 ("a precondition failed, nothing was changed") only
/// when nothing was changed on any replica — every one failed a precondition, or, in a
/// `dry_run` (which changes nothing), every failed one did; else 1 (a replica failed
/// while changing things, or some replicas were seeded and others refused: each
/// replica's own code says which).
pub fn combined_exit_code(outcomes: &[ReplicaOutcome], dry_run: bool) -> i32 {
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok()).collect();
    if failed.is_empty() {
        0
    } else if failed.iter().all(|o| o.exit_code == Some(3))
        && (dry_run || failed.len() == outcomes.len())
    {
        3
    } else {
        1
    }
}

/// Where a fan-out's events go: the master read's and each replica's, told apart.
pub trait FanoutEvents: Send + Sync {
    /// An event of the master read into the spool (the one snapshot, the one
    /// commit-blocked window).
    fn master(&self, event: &Event);
    /// An event of one replica's run.
    fn replica(&self, replica: &ServerAddr, event: &Event);
    /// The image the replicas are seeded from is complete: the spool just written
    /// (`reused` false; the replicas have been loading it while it was written), a
    /// complete spool of an earlier run, or the image given (`reused` true). Default:
    /// ignored.
    fn spool_ready(&self, _path: &str, _reused: bool) {}
    /// One replica's run ended (the others may still run). Default: ignored.
    fn replica_done(&self, _run: &ReplicaRun) {}
}

/// One replica's events, tagged with it, for its setup.
struct Tagged {
    replica: ServerAddr,
    inner: Arc<dyn FanoutEvents>,
}

impl EventSink for Tagged {
    fn emit(&self, event: &Event) {
        self.inner.replica(&self.replica, event)
    }
}

/// The master read's events.
struct MasterEvents(Arc<dyn FanoutEvents>);

impl EventSink for MasterEvents {
    fn emit(&self, event: &Event) {
        self.0.master(event)
    }
}

/// Everything one fan-out needs: a setup configuration used as the template of every
/// replica's (master, admin account, replication user, options: each replica's setup is
/// the template with its replica, its default journal and the image method), the
/// replicas, and the spool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FanoutConfig {
    template: SetupConfig,
    replicas: Vec<ServerAddr>,
    spool: Spool,
    image: Option<ImageSource>,
    key: Option<ImageKey>,
    repl_password: Option<Secret>,
    dump_threads: usize,
    load_threads: usize,
    chunk_bytes: Option<u64>,
    keep_spool: bool,
}

impl FanoutConfig {
    /// A fan-out of `template` (its replica is replaced by each of `replicas`, its method
    /// by the image in `spool`, its journal by each replica's default one) through
    /// `spool`. Defaults: 2 dump threads, 2 loaders per replica, the default chunk size,
    /// the spool removed once every replica is done, the replication user created only
    /// when a password is given ([`repl_password`](Self::repl_password)).
    pub fn new(template: SetupConfig, replicas: Vec<ServerAddr>, spool: Spool) -> Self {
        FanoutConfig {
            template,
            replicas,
            spool,
            image: None,
            key: None,
            repl_password: None,
            dump_threads: 2,
            load_threads: 2,
            chunk_bytes: None,
            keep_spool: false,
        }
    }

    /// Seed the replicas from this image instead of reading the master (no spool is
    /// written or removed). Default: none, the master is read into the spool.
    pub fn image(mut self, image: Option<ImageSource>) -> Self {
        self.image = image;
        self
    }

    /// The key the image given ([`image`](Self::image)) is signed with, checked before
    /// anything loads. Default: none (a signature is not checked).
    pub fn image_key(mut self, key: Option<ImageKey>) -> Self {
        self.key = key;
        self
    }

    /// The replication user's password: before the master is read, the user (the
    /// template's) is created with it when it does not exist yet, so that the replicas'
    /// runs do not race to create it; every replica replicates with it. Default: none
    /// (the user must exist and the template carry its password, or the replicas' plans
    /// each try to create it).
    pub fn repl_password(mut self, password: Secret) -> Self {
        self.repl_password = Some(password);
        self
    }

    /// Sessions reading the master into the spool. Default: 2.
    pub fn dump_threads(mut self, n: usize) -> Self {
        self.dump_threads = n.max(1);
        self
    }

    /// Loading sessions on each replica. Default: 2.
    pub fn load_threads(mut self, n: usize) -> Self {
        self.load_threads = n.max(1);
        self
    }

    /// The size of the spool's chunks. Default: the image writer's.
    pub fn chunk_bytes(mut self, bytes: Option<u64>) -> Self {
        self.chunk_bytes = bytes;
        self
    }

    /// Keep the spool after every replica is done. Default: false (a spool is always
    /// kept while some replica is not done, for its rerun).
    pub fn keep_spool(mut self, keep: bool) -> Self {
        self.keep_spool = keep;
        self
    }

    /// The replicas.
    pub fn replicas(&self) -> &[ServerAddr] {
        &self.replicas
    }

    /// The spool.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The setup configuration of one replica: the template with `replica`, the image
    /// method and its journal (each replica's default one; the template's when there is
    /// one replica, a rerun for it).
    pub fn replica_config(&self, replica: &ServerAddr) -> SetupConfig {
        let source = self
            .image
            .clone()
            .unwrap_or_else(|| ImageSource::Local(self.spool.dir().to_path_buf()));
        self.replica_config_from(replica, source)
    }

    /// [`replica_config`](Self::replica_config) with the image read from `source` (a
    /// remote one fetched into a work directory of the replica's own when there are
    /// several replicas).
    fn replica_config_from(&self, replica: &ServerAddr, source: ImageSource) -> SetupConfig {
        let source = if self.replicas.len() > 1 {
            source.for_replica(replica)
        } else {
            source
        };
        let c = self
            .template
            .clone()
            .replica(replica.clone())
            .method(CopyMethod::Image {
                source,
                threads: self.load_threads,
                key: self.key.clone(),
            });
        let mut r = c.replication_settings().clone();
        if self.replicas.len() > 1 {
            r = r.journal(None);
        }
        if let Some(pw) = &self.repl_password {
            r = r.repl_password(Some(pw.clone()));
        }
        c.replication(r)
    }
}

/// How one replica's run ended, in the library's terms.
#[derive(Debug)]
#[non_exhaustive]
pub struct ReplicaRun {
    /// The replica.
    pub replica: ServerAddr,
    /// Its setup's outcome (a panicked task: [`SetupError::Setup`] with the panic).
    pub result: Result<SetupOutcome, SetupError>,
}

impl ReplicaRun {
    /// The exit code of `amsu setup` for this replica: 0 done (and equal, when verified),
    /// 3 a precondition failed and nothing was changed on it, else 1.
    pub fn exit_code(&self) -> i32 {
        match &self.result {
            Ok(o) => match &o.verify {
                Some(v) if !v.equal() => 1,
                _ => 0,
            },
            Err(SetupError::Setup(e)) => e.exit_code(),
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

/// What a [`fan_out`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct FanoutOutcome {
    /// The image the replicas were seeded from (the spool directory, or the image given).
    pub image: String,
    /// What the master read dumped into the spool; `None` when nothing was read (a
    /// complete spool of an earlier run, or an image given).
    pub dump: Option<CopyReport>,
    /// Every replica's run, in the order given.
    pub runs: Vec<ReplicaRun>,
    /// True when the spool was kept (a replica is not done, or
    /// [`FanoutConfig::keep_spool`]).
    pub spool_kept: bool,
}

impl FanoutOutcome {
    /// The summaries of the runs.
    pub fn outcomes(&self) -> Vec<ReplicaOutcome> {
        self.runs.iter().map(ReplicaRun::outcome).collect()
    }

    /// The exit code of the whole fan-out ([`combined_exit_code`]).
    pub fn exit_code(&self) -> i32 {
        combined_exit_code(&self.outcomes(), false)
    }
}

/// A fan-out that failed before any replica's run started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FanoutError {
    /// Two of the servers (master and a replica, or two replicas) are one server; nothing
    /// was changed.
    #[error("{}; nothing was changed. Fix: {}", .0.problem, .0.fix)]
    SameServer(Box<Finding>),
    /// A server could not be reached or read for the checks before any change.
    #[error("{0}")]
    Check(BoxError),
    /// The replication user could not be created; nothing else was changed.
    #[error(
        "creating the replication user '{user}' on {master}: {source}; nothing else was changed"
    )]
    ReplUser {
        /// The user.
        user: String,
        /// The master (no password).
        master: String,
        /// Why.
        source: BoxError,
    },
    /// The spool directory cannot be used for this master (files that are not amsu's,
    /// another master's spool or image); nothing was changed and nothing in it removed.
    #[error(
        "the spool {spool} {problem}; nothing was changed and nothing in it removed. Fix: {fix}"
    )]
    Spool {
        /// The spool directory.
        spool: String,
        /// What is wrong with it.
        problem: String,
        /// What to do.
        fix: String,
    },
    /// Another amsu run is setting up one of the replicas now (it holds that replica's
    /// journal); refused before the master is read, nothing was changed.
    #[error(
        "another amsu run is setting up the replica {replica} (it holds the journal \
         {journal}: {holder}); nothing was changed and the master was not read. Fix: wait \
         for that run to end, or stop it, then rerun"
    )]
    Busy {
        /// The replica (no password).
        replica: String,
        /// Its journal.
        journal: String,
        /// Who holds it, in words (process, host, start time).
        holder: String,
    },
    /// The spool could not be prepared or the master read into it. Every replica's run
    /// stopped with it (they load the dump as it is written); the same fan-out again
    /// reads the master again and starts over what the replicas loaded of this read.
    #[error(
        "reading the master {master} into the spool {spool}: {source}; every replica stopped \
         with it: run the same command again to read the master again and seed them"
    )]
    Dump {
        /// The master (no password).
        master: String,
        /// The spool directory.
        spool: String,
        /// Why.
        source: Box<ImageError>,
    },
}

impl FanoutError {
    /// The exit code of `amsu setup`: 3 when nothing was changed (identity, checks, the
    /// replication user), 1 when the master read failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            FanoutError::Dump { .. } => 1,
            _ => 3,
        }
    }
}

/// No other amsu run is setting up one of the replicas now (holding its journal): checked
/// before the master is read and before any change, since such a replica would refuse
/// its run only after the whole read ([`FanoutError::Busy`]). Changes nothing.
pub fn check_not_busy(config: &FanoutConfig) -> Result<(), FanoutError> {
    for r in &config.replicas {
        let journal = crate::FileJournal::new(config.replica_config(r).journal_path());
        if let Some(holder) = journal.held_by() {
            return Err(FanoutError::Busy {
                replica: r.to_string(),
                journal: journal.path().display().to_string(),
                holder,
            });
        }
    }
    Ok(())
}

/// The master is not one of the replicas, and no two replicas are one server: checked
/// before anything changes (not overridable).
pub async fn check_distinct(
    master: Option<&ServerAddr>,
    replicas: &[ServerAddr],
) -> Result<(), FanoutError> {
    if let Some(m) = master {
        for r in replicas {
            let same = amsu_core::distinct_servers(
                &MysqlMaster::new(m.clone()),
                &MysqlReplica::new(r.clone()),
            )
            .await
            .map_err(FanoutError::Check)?;
            if let Some(f) = same {
                return Err(FanoutError::SameServer(Box::new(f)));
            }
        }
    }
    match distinct_replicas(replicas)
        .await
        .map_err(FanoutError::Check)?
    {
        Some(same) => Err(FanoutError::SameServer(Box::new(same.finding))),
        None => Ok(()),
    }
}

/// Creates the replication `user` with `password` on `master` when it does not exist
/// (`'user'@'%'`, REPLICATION SLAVE only); returns true when it was created. A user that
/// exists is left as it is (the replicas' checks say whether `password` logs in).
pub(crate) async fn ensure_replication_user(
    master: &dyn MasterServer,
    user: &str,
    password: &Secret,
) -> Result<bool, BoxError> {
    if master.check_login(user, password).await? == LoginCheck::Ok
        || master.user_exists(user).await?
    {
        return Ok(false);
    }
    master.create_replication_user(user, "%", password).await?;
    Ok(true)
}

/// The whole fan-out: the identity checks, the replication user
/// ([`FanoutConfig::repl_password`]), the master read once into the spool (unless a
/// complete spool of an earlier run is there, or an image was given), and every
/// replica's image setup at the same time, each in its own task with its own journal and
/// events, started once the snapshot is taken and loading each chunk as soon as it is
/// written (a dump that fails after that fails the replicas' loads too, and the fan-out
/// returns [`FanoutError::Dump`]). Returns when every replica's run ended; a failed replica is in
/// [`FanoutOutcome::runs`] (its rerun resumes from its journal and the kept spool).
/// `cancel` stops the master read and every replica's run (resumable).
pub async fn fan_out(
    config: FanoutConfig,
    events: Arc<dyn FanoutEvents>,
    cancel: CancellationToken,
) -> Result<FanoutOutcome, FanoutError> {
    let master = config.template.master_addr().clone();
    check_distinct(Some(&master), &config.replicas).await?;
    check_not_busy(&config)?;
    if config.image.is_none() {
        check_spool(&config.spool, &master).await?;
    }
    if let Some(pw) = &config.repl_password {
        let mut mm = MysqlMaster::new(master.clone());
        if let Some(admin) = config.template.admin_addr() {
            mm = mm.with_admin(admin.clone());
        }
        let user = config.template.repl_user_name().to_string();
        ensure_replication_user(&mm, &user, pw)
            .await
            .map_err(|source| FanoutError::ReplUser {
                user,
                master: master.to_string(),
                source,
            })?;
    }
    let spool = &config.spool;
    let spool_path = spool.dir().display().to_string();
    let dump_error = |source| FanoutError::Dump {
        master: master.to_string(),
        spool: spool_path.clone(),
        source: Box::new(source),
    };
    let start = |sources: Vec<ImageSource>| -> Vec<_> {
        config
            .replicas
            .iter()
            .zip(sources)
            .map(|(r, source)| {
                let setup_config = config.replica_config_from(r, source);
                let sink: Arc<dyn EventSink> = Arc::new(Tagged {
                    replica: r.clone(),
                    inner: events.clone(),
                });
                let (events, cancel, replica) = (events.clone(), cancel.child_token(), r.clone());
                tokio::spawn(async move {
                    let result = crate::setup(setup_config, sink, cancel).await;
                    let run = ReplicaRun { replica, result };
                    events.replica_done(&run);
                    run
                })
            })
            .collect()
    };
    let every = |source: ImageSource| vec![source; config.replicas.len()];
    let mut dump = None;
    let (image, tasks) = match &config.image {
        Some(ImageSource::Local(p)) => {
            let p = p.display().to_string();
            events.spool_ready(&p, true);
            (p, start(every(config.image.clone().expect("given"))))
        }
        Some(ImageSource::Remote { dir, .. }) => {
            events.spool_ready(dir, true);
            (
                dir.clone(),
                start(every(config.image.clone().expect("given"))),
            )
        }
        Some(ImageSource::Stream(s)) => {
            return Err(FanoutError::Check(
                format!(
                    "{} is an image being written: a fan-out reads a complete image",
                    s.dir().display()
                )
                .into(),
            ))
        }
        None => {
            let owner = spool_owner(&master).await.map_err(FanoutError::Check)?;
            let state = spool.prepare(&owner).map_err(|source| {
                dump_error(ImageError::Io {
                    path: spool.dir().to_path_buf(),
                    source,
                })
            })?;
            let local = ImageSource::Local(spool.dir().to_path_buf());
            if state == SpoolState::Complete {
                events.spool_ready(&spool_path, true);
                (spool_path.clone(), start(every(local)))
            } else {
                // The replicas load each chunk as soon as the dump has written it: one
                // stream per replica, and one to learn when the snapshot is taken.
                let (writer, mut streams) =
                    image_stream::channel(spool.dir(), config.replicas.len() + 1);
                let snapshot = streams.pop().expect("one more stream");
                let mut backup = ImageBackup::new(master.clone(), spool.dir())
                    .threads(config.dump_threads)
                    .stream(writer.clone());
                if let Some(b) = config.chunk_bytes {
                    backup = backup.chunk_bytes(b);
                }
                let sink: Arc<dyn EventSink> = Arc::new(MasterEvents(events.clone()));
                let reading = async {
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => Err(ImageError::Io {
                            path: spool.dir().to_path_buf(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::Interrupted,
                                "interrupted while reading the master; a rerun reads it again",
                            ),
                        }),
                        r = backup.run(sink) => r,
                    }
                };
                tokio::pin!(reading);
                // The replicas start once the snapshot is taken (not while commits are
                // blocked); the dump goes on meanwhile and never waits for them.
                let mut read = None;
                let taken = tokio::select! {
                    h = snapshot.head() => h.is_ok(),
                    r = &mut reading => {
                        let ok = r.is_ok();
                        read = Some(r);
                        ok
                    }
                };
                drop(snapshot);
                let tasks = if taken {
                    start(
                        streams
                            .into_iter()
                            .map(ImageSource::Stream)
                            .collect::<Vec<_>>(),
                    )
                } else {
                    drop(streams);
                    Vec::new()
                };
                let read = match read {
                    Some(r) => r,
                    None => reading.await,
                };
                match read {
                    Ok((_, report)) => {
                        events.spool_ready(&spool_path, false);
                        dump = Some(report);
                    }
                    Err(e) => {
                        // Every replica's load stops with it. A rerun reads the master
                        // again, into a new image: a replica that loaded part of this
                        // one cannot resume from that (its error says so).
                        writer.failed(&e.to_string());
                        drop(writer);
                        for t in tasks {
                            let _ = t.await;
                        }
                        return Err(dump_error(e));
                    }
                }
                (spool_path.clone(), tasks)
            }
        }
    };
    let mut runs = Vec::with_capacity(tasks.len());
    for (task, r) in tasks.into_iter().zip(&config.replicas) {
        runs.push(task.await.unwrap_or_else(|e| {
            let run = ReplicaRun {
                replica: r.clone(),
                result: Err(SetupError::Setup(amsu_core::Error::Failed {
                    step: amsu_core::Step::CopyData,
                    server: amsu_core::Role::Replica,
                    source: format!("the replica's task ended abnormally: {e}").into(),
                    state: "unknown; a rerun resumes from the replica's journal".into(),
                })),
            };
            events.replica_done(&run);
            run
        }));
    }
    let all_done = runs.iter().all(|r| r.exit_code() == 0);
    let mut spool_kept = config.image.is_none() && (!all_done || config.keep_spool);
    if config.image.is_none() && !spool_kept {
        match config.spool.remove() {
            Ok(removed) => spool_kept = !removed,
            Err(e) => {
                spool_kept = true;
                tracing::warn!(
                    "cannot remove the spool {}: {e}",
                    config.spool.dir().display()
                );
            }
        }
    }
    Ok(FanoutOutcome {
        image,
        dump,
        runs,
        spool_kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: Option<i32>) -> ReplicaOutcome {
        ReplicaOutcome {
            replica: "r".into(),
            exit_code: code,
        }
    }

    #[test]
    fn exit_code_says_whether_some_failed() {
        assert_eq!(
            combined_exit_code(&[outcome(Some(0)), outcome(Some(0))], false),
            0
        );
        // One seeded, one refused: something was changed, so not 3.
        assert_eq!(
            combined_exit_code(&[outcome(Some(0)), outcome(Some(3))], false),
            1
        );
        // A dry run changes nothing: one refused is 3.
        assert_eq!(
            combined_exit_code(&[outcome(Some(0)), outcome(Some(3))], true),
            3
        );
        assert_eq!(
            combined_exit_code(&[outcome(Some(3)), outcome(Some(3))], false),
            3
        );
        assert_eq!(
            combined_exit_code(&[outcome(Some(1)), outcome(Some(3))], false),
            1
        );
        assert_eq!(
            combined_exit_code(&[outcome(None), outcome(Some(0))], false),
            1
        );
    }

    #[test]
    fn a_partial_spool_is_cleared_and_a_complete_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::new(dir.path().join("s"));
        assert_eq!(s.prepare("m:1:/d").unwrap(), SpoolState::Empty);
        assert_eq!(s.owner().as_deref(), Some("m:1:/d"));
        std::fs::write(s.dir().join("chunk"), b"x").unwrap();
        assert_eq!(s.state(), SpoolState::Partial);
        assert_eq!(s.prepare("m:1:/d").unwrap(), SpoolState::Partial);
        assert!(!s.dir().join("chunk").exists() && s.dir().is_dir());
        std::fs::write(s.dir().join("chunk"), b"x").unwrap();
        std::fs::write(s.dir().join(MANIFEST_FILE), b"{}").unwrap();
        assert_eq!(s.prepare("m:1:/d").unwrap(), SpoolState::Complete);
        assert!(s.dir().join("chunk").exists());
        assert!(s.remove().unwrap());
        assert_eq!(s.state(), SpoolState::Empty);
        assert!(!s.remove().unwrap());
    }

    #[test]
    fn files_that_are_not_amsus_are_never_used_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::new(dir.path().join("s"));
        std::fs::create_dir_all(s.dir()).unwrap();
        std::fs::write(s.dir().join("notes.txt"), b"mine").unwrap();
        assert_eq!(s.state(), SpoolState::Foreign);
        let e = s.prepare("m:1:/d").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(!s.remove().unwrap(), "no marker: nothing removed");
        assert_eq!(std::fs::read(s.dir().join("notes.txt")).unwrap(), b"mine");
        assert!(s.owner().is_none());
        // A complete image without the marker (amsu backup's) is used, never removed.
        std::fs::write(s.dir().join(MANIFEST_FILE), b"{}").unwrap();
        assert_eq!(s.state(), SpoolState::Complete);
        assert!(!s.remove().unwrap());
        assert!(s.dir().join(MANIFEST_FILE).exists());
    }

    #[test]
    fn default_spool_names_the_master() {
        let m: ServerAddr = "mysql://root@db1.example:3307".parse().unwrap();
        assert_eq!(
            Spool::default_dir(Path::new("/j"), &m),
            PathBuf::from("/j/spool/db1.example_3307")
        );
    }
}
