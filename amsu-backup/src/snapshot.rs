//! A consistent parallel snapshot of the master whose chunks go to a pluggable sink: a
//! local image ([`crate::ImageBackup`]) or the master's own `INTO OUTFILE`
//! ([`crate::OutfileCopy`]). The snapshot is taken like the logical copy's: every worker
//! connection opened first, then `BACKUP STAGE BLOCK_COMMIT` (MariaDB) or `FLUSH TABLES
//! WITH READ LOCK` (MySQL) held while the workers start their snapshot transactions, the
//! coordinates and accounts are read and the non-transactional tables are dumped.

use amsu_core::{FindingCode, Remedy};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amsu_core::{Coordinates, Event, EventSink, Finding, Flavor, Role, ServerAddr, ServerInfo};
use amsu_mysql::conn::Session;
use amsu_mysql::{binlog_position, probe};
use async_trait::async_trait;

use crate::catalog::{self, Account, Database, SchemaObject, SequenceState, Table, TableKind};
use crate::governor::{Governor, GovernorOptions, LatencyProbe, RateLimiter, RoundTripProbe};
use crate::image::{ImageError, SessionSettings};
use crate::logical::{plan_chunks, Chunk};
use crate::meter::Meter;
use crate::BackupError;

/// What the master holds, read before the snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub(crate) info: ServerInfo,
    pub(crate) databases: Vec<Database>,
    pub(crate) tables: Vec<Table>,
    pub(crate) objects: Vec<SchemaObject>,
    /// The master's count of DDL statements before the catalog was read: the snapshot
    /// checks, with DDL blocked, that it has not moved since.
    ddl_count: u64,
}

impl Catalog {
    /// Waits (at most `busy_wait`) until no statement runs that the snapshot's lock would
    /// wait for, then reads the catalog; refuses what the copy cannot carry. The
    /// per-object `SHOW CREATE` statements are spread over `threads` sessions (`ctl` and
    /// helpers opened to `master`). Every statement of `ctl` is bounded in time from here
    /// on ([`amsu_mysql::conn::metadata_limit`]).
    pub(crate) async fn read(
        master: &ServerAddr,
        ctl: &mut Session,
        threads: usize,
        busy_wait: Duration,
        events: &Arc<dyn EventSink>,
    ) -> Result<Catalog, ImageError> {
        ctl.limit_statements(amsu_mysql::conn::metadata_limit())
            .await?;
        let info = probe(ctl).await?;
        // The count first, then no DDL running: any DDL not in the catalog read below
        // moves the count.
        let ddl_count = wait_until_not_busy(ctl, info.flavor, busy_wait, events).await?;
        events.emit(&Event::CatalogReading {
            server: amsu_core::Role::Master,
            purpose: "the copy".into(),
        });
        let started = Instant::now();
        let mut tables = catalog::table_list(ctl).await?;
        events.emit(&Event::CatalogRead {
            server: amsu_core::Role::Master,
            databases: tables
                .iter()
                .map(|t| t.db.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len() as u64,
            tables: tables.len() as u64,
            millis: started.elapsed().as_millis() as u64,
        });
        // Helpers only where they pay for their connection.
        let helpers = if tables.len() >= HELPERS_FROM_TABLES {
            threads.clamp(1, MAX_HELPERS) - 1
        } else {
            0
        };
        let mut extra = Vec::with_capacity(helpers);
        for _ in 0..helpers {
            extra.push(Session::open_bounded(master).await?);
        }
        fn all<'a>(ctl: &'a mut Session, extra: &'a mut [Session]) -> Vec<&'a mut Session> {
            std::iter::once(ctl).chain(extra.iter_mut()).collect()
        }
        let databases = catalog::databases_on(all(ctl, &mut extra)).await?;
        catalog::table_ddl(all(ctl, &mut extra), &mut tables).await?;
        let objects = catalog::objects_on(all(ctl, &mut extra)).await?;
        drop(extra);
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            sessions = helpers + 1,
            "catalog: SHOW CREATE read"
        );
        if let Some(why) = catalog::history_columns(ctl, &mut tables).await? {
            return Err(BackupError::Unsupported(why).into());
        }
        Ok(Catalog {
            info,
            databases,
            tables,
            objects,
            ddl_count,
        })
    }
}

/// The preflight of the snapshot-based methods (read-only): what the copy would refuse,
/// found before anything changes on either server — tables whose data cannot be carried
/// exactly, and accounts whose authentication plugin the replica lacks.
pub(crate) async fn copy_findings(
    master: &ServerAddr,
    replica: &ServerAddr,
) -> Result<Vec<Finding>, ImageError> {
    let mut ctl = Session::open_bounded(master).await?;
    let flavor = probe(&mut ctl).await?.flavor;
    let mut tables = catalog::table_list(&mut ctl).await?;
    let mut out = Vec::new();
    if let Some(why) = catalog::history_columns(&mut ctl, &mut tables).await? {
        out.push(
            Finding::blocking(
                Role::Master,
                FindingCode::UnsupportedTable,
                format!("cannot copy {why}"),
                "change or drop those tables on the master, or use the physical method",
            )
            .with_remedy(Remedy::setting_to("method", "physical")),
        );
    }
    let used = catalog::account_plugins(&mut ctl, flavor).await?;
    let mut rs = Session::open(replica).await?;
    let active = catalog::active_auth_plugins(&mut rs).await?;
    if let Some(why) = catalog::plugin_refusal(&used, &active) {
        out.push(Finding::blocking(
            Role::Replica,
            FindingCode::AuthPluginMissing,
            format!("cannot copy {why}"),
            "install the plugin on the replica",
        ));
    }
    Ok(out)
}

/// From this many tables on, the catalog's `SHOW CREATE` statements are spread over
/// helper sessions.
const HELPERS_FROM_TABLES: usize = 64;
/// At most this many sessions read the catalog's `SHOW CREATE` statements.
const MAX_HELPERS: usize = 8;

/// The status counters of statements that change the schema amsu copies (accounts are
/// left out: they are read inside the snapshot window).
const DDL_COUNTERS: &str = "SHOW GLOBAL STATUS WHERE Variable_name REGEXP \
     '^Com_(alter|create|drop|rename)_(db|event|function|index|package|package_body|procedure|sequence|table|trigger|view)$' \
     OR Variable_name = 'Com_truncate'";

/// The master's count of schema-changing statements so far (they count when they start).
async fn ddl_count(ctl: &mut Session) -> Result<u64, ImageError> {
    let rows = ctl
        .rows(DDL_COUNTERS, "reading the master's DDL counters")
        .await?;
    Ok(count_ddl(rows.iter().filter_map(|r| {
        let name = r.text(0)?;
        let value = r.text(1)?.parse().ok()?;
        Some((name, value))
    })))
}

/// Sums the counters. Temporary tables are private to a session and are never copied:
/// MariaDB counts them only in `Com_create_temporary_table`/`Com_drop_temporary_table`
/// (checked on 10.11), which are left out.
fn count_ddl(counters: impl Iterator<Item = (String, u64)>) -> u64 {
    counters
        .filter(|(name, _)| !name.to_ascii_lowercase().contains("temporary"))
        .map(|(_, value)| value)
        .sum()
}

/// One chunk to dump: its number (1-based, the file name), its table's index in the
/// catalog, and the rows it covers.
#[derive(Debug, Clone)]
pub(crate) struct ChunkJob {
    pub(crate) number: usize,
    pub(crate) table: usize,
    pub(crate) chunk: Chunk,
}

impl ChunkJob {
    /// `SELECT <columns> FROM <table> <filter>` with the catalog's select expressions.
    pub(crate) fn select(&self) -> String {
        let t = &self.chunk.table;
        format!(
            "SELECT {} FROM {}{} {}",
            t.copied_columns()
                .map(|c| c.select_expr())
                .collect::<Vec<_>>()
                .join(", "),
            t.qualified(),
            history_clause(t),
            self.chunk.filter
        )
    }
}

/// ` FOR SYSTEM_TIME ALL` for a system-versioned table (its history rows too), else empty.
pub(crate) fn history_clause(t: &Table) -> &'static str {
    if t.kind == TableKind::SystemVersioned {
        " FOR SYSTEM_TIME ALL"
    } else {
        ""
    }
}

/// Where a worker puts the chunks it reads. One sink per worker connection.
#[async_trait]
pub(crate) trait ChunkSink: Send + 'static {
    /// Dumps one chunk, reading from `master` inside its snapshot transaction. Returns
    /// rows and bytes written.
    async fn write(
        &mut self,
        master: &mut Session,
        job: &ChunkJob,
    ) -> Result<(u64, u64), ImageError>;

    /// Called once the snapshot's lock is released, before the transactional tables'
    /// chunks are planned and written, with the snapshot's coordinates. Default: nothing.
    async fn snapshot_taken(&mut self, _coordinates: &Coordinates) -> Result<(), ImageError> {
        Ok(())
    }
}

/// What the snapshot produced.
#[derive(Debug)]
pub(crate) struct Dumped {
    pub(crate) coordinates: Coordinates,
    pub(crate) accounts: Vec<Account>,
    pub(crate) sequences: Vec<SequenceState>,
    pub(crate) blocked_ms: f64,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
}

/// The session settings of every dumping connection (recorded in the image).
pub(crate) fn dump_settings() -> SessionSettings {
    SessionSettings::default()
}

/// Takes the snapshot on `sinks.len()` worker connections and dumps every table of
/// `cat` into the sinks. `ctl` is the control session that takes the lock. The reads
/// after the lock is released are governed by the default [`GovernorOptions`].
pub(crate) async fn dump<S: ChunkSink>(
    master: &ServerAddr,
    ctl: &mut Session,
    cat: &Catalog,
    sinks: Vec<S>,
    chunk_bytes: u64,
    events: &Arc<dyn EventSink>,
) -> Result<(Dumped, Vec<S>), ImageError> {
    let governor = GovernorOptions::default();
    dump_governed(master, ctl, cat, sinks, chunk_bytes, &governor, events).await
}

/// [`dump`], with the reads after the lock governed by `governor` (the window under the
/// lock is never slowed down).
pub(crate) async fn dump_governed<S: ChunkSink>(
    master: &ServerAddr,
    ctl: &mut Session,
    cat: &Catalog,
    sinks: Vec<S>,
    chunk_bytes: u64,
    governor: &GovernorOptions,
    events: &Arc<dyn EventSink>,
) -> Result<(Dumped, Vec<S>), ImageError> {
    dump_from(master, ctl, cat, sinks, chunk_bytes, governor, None, events).await
}

/// [`dump_governed`] from `master`, which is a donor replica when `donor` is given: the
/// donor's SQL thread is stopped ([`crate::donor::Donor::pause`]), the snapshot's
/// coordinates are the master position of the donor's data instead of the donor's own
/// binary log position, and the SQL thread is started again as soon as the snapshot's
/// lock is released.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn dump_from<S: ChunkSink>(
    master: &ServerAddr,
    ctl: &mut Session,
    cat: &Catalog,
    sinks: Vec<S>,
    chunk_bytes: u64,
    governor: &GovernorOptions,
    mut donor: Option<&mut crate::donor::Paused>,
    events: &Arc<dyn EventSink>,
) -> Result<(Dumped, Vec<S>), ImageError> {
    // The probe's connection and its idle samples come before the lock.
    let governor = if governor.is_active() {
        let probe = match governor.adaptive_probe() {
            true => Some(Box::new(RoundTripProbe::open(master).await?) as Box<dyn LatencyProbe>),
            false => None,
        };
        Governor::start(governor, probe).await
    } else {
        Governor::unlimited()
    };
    let settings = dump_settings();
    let mut workers = Vec::with_capacity(sinks.len());
    for sink in sinks {
        let mut m = Session::open(master).await?;
        for sql in [
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ".to_string(),
            "SET SESSION character_set_results = binary".to_string(),
            "SET SESSION net_write_timeout = 3600".to_string(),
            format!(
                "SET SESSION time_zone = {}",
                amsu_mysql::quote::string(&settings.time_zone)
            ),
        ] {
            m.exec(&sql, &sql).await?;
        }
        workers.push((m, sink));
    }
    let index: HashMap<(&str, &str), usize> = cat
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.db.as_str(), t.name.as_str()), i))
        .collect();
    let number = AtomicU64::new(0);
    let job = |chunk: Chunk| ChunkJob {
        number: number.fetch_add(1, Ordering::Relaxed) as usize + 1,
        table: index[&(chunk.table.db.as_str(), chunk.table.name.as_str())],
        chunk,
    };
    // Sequences hold no rows to dump: their state is read while commits are blocked.
    let (sequences, tables): (Vec<Table>, Vec<Table>) = cat
        .tables
        .iter()
        .cloned()
        .partition(|t| t.kind == TableKind::Sequence);
    let (transactional, other): (Vec<Table>, Vec<Table>) =
        tables.into_iter().partition(|t| t.transactional());
    let progress = Arc::new(Progress {
        meter: Meter::new((transactional.len() + other.len()) as u64),
        failed: AtomicBool::new(false),
        left: Mutex::new(HashMap::new()),
    });
    progress.meter.plan(
        transactional
            .iter()
            .chain(&other)
            .map(|t| t.data_length)
            .sum(),
    );

    let (blocked_at, earlier_ms) =
        take_lock(ctl, cat.info.flavor, LockRetry::default(), events).await?;
    let window = async {
        let (snaps, reset) = tokio::join!(
            futures_util::future::join_all(workers.iter_mut().map(|(m, _)| {
                m.exec(
                    "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                    "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                )
            })),
            // Reads inside the window may wait on a lock longer than one lock attempt.
            ctl.exec(LOCK_WAIT_DEFAULT, "setting lock_wait_timeout"),
        );
        reset?;
        for r in snaps {
            r?;
        }
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(
            ms = ms(blocked_at),
            "window: every worker's snapshot started"
        );
        if ddl_count(ctl).await? != cat.ddl_count {
            return Err(BackupError::SchemaChanged.into());
        }
        let coords = match &donor {
            Some(paused) => paused.coordinates().clone(),
            None => binlog_position(ctl).await?,
        };
        let accounts = catalog::accounts(ctl, cat.info.flavor).await?;
        let sequences = catalog::sequence_states(ctl, &sequences).await?;
        tracing::debug!(
            ms = ms(blocked_at),
            "window: coordinates, accounts and sequences read"
        );
        // Non-transactional tables have no snapshot: dump them while nothing commits.
        let jobs = other
            .iter()
            .map(|t| {
                job(Chunk {
                    table: Arc::new(t.clone()),
                    filter: String::new(),
                    weight: t.data_length,
                })
            })
            .collect();
        let ws = run(std::mem::take(&mut workers), jobs, &progress, None, events).await?;
        tracing::debug!(
            ms = ms(blocked_at),
            "window: non-transactional tables copied"
        );
        Ok::<_, ImageError>((coords, accounts, sequences, ws))
    }
    .await;
    let release = match cat.info.flavor {
        Flavor::MariaDb => "BACKUP STAGE END",
        Flavor::MySql => "UNLOCK TABLES",
    };
    let released = ctl.exec(release, release).await;
    // Commits were also held while earlier attempts queued for the lock.
    let blocked_ms = earlier_ms + blocked_at.elapsed().as_secs_f64() * 1000.0;
    // The donor replicates again before anything else can fail.
    let restarted = match donor.as_mut() {
        Some(paused) => paused.restart().await,
        None => Ok(()),
    };
    let (coordinates, accounts, sequences, mut workers) = window?;
    released?;
    restarted?;
    events.emit(&Event::CommitBlocked { millis: blocked_ms });
    events.emit(&Event::Snapshot {
        coordinates: coordinates.clone(),
    });
    for (_, sink) in workers.iter_mut() {
        sink.snapshot_taken(&coordinates).await?;
    }

    let chunks = plan_chunks(&mut workers[0].0, &transactional, chunk_bytes).await?;
    let jobs = chunks.into_iter().map(job).collect();
    let workers = run(workers, jobs, &progress, Some(governor.limiter()), events).await?;
    let mut sinks = Vec::with_capacity(workers.len());
    for (mut m, sink) in workers {
        let _ = m.exec("COMMIT", "ending the snapshot").await;
        sinks.push(sink);
    }
    let dumped = Dumped {
        coordinates,
        accounts,
        sequences,
        blocked_ms,
        rows: progress.meter.rows(),
        bytes: progress.meter.bytes(),
    };
    Ok((dumped, sinks))
}

/// `lock_wait_timeout` of the control session outside the lock attempts.
const LOCK_WAIT_DEFAULT: &str = "SET SESSION lock_wait_timeout = 30";

/// How the snapshot's lock is taken: each attempt queues for at most `wait_secs` (the
/// control session's `lock_wait_timeout`) and then gives up its place, so that a long
/// statement ahead of it does not keep the master's commits waiting behind the queued
/// lock; the next attempt follows after a growing pause, up to `attempts` in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockRetry {
    /// Seconds one attempt waits for the lock.
    pub(crate) wait_secs: u64,
    /// Attempts in all.
    pub(crate) attempts: u32,
    /// Pause after the first failed attempt; doubles after each, at most `max_pause`.
    pub(crate) pause: Duration,
    /// The longest pause.
    pub(crate) max_pause: Duration,
}

impl Default for LockRetry {
    /// 1 s per attempt, 20 attempts, pauses from 250 ms doubling up to 5 s.
    fn default() -> Self {
        LockRetry {
            wait_secs: 1,
            attempts: 20,
            pause: Duration::from_millis(250),
            max_pause: Duration::from_secs(5),
        }
    }
}

impl LockRetry {
    /// The pause after failed attempt number `failed` (1-based), `None` when it was the
    /// last one.
    pub(crate) fn pause_after(&self, failed: u32) -> Option<Duration> {
        if failed >= self.attempts {
            return None;
        }
        let doubling = 2u32.saturating_pow(failed.saturating_sub(1).min(16));
        Some(self.pause.saturating_mul(doubling).min(self.max_pause))
    }
}

/// True when `e` is a lock not granted within `lock_wait_timeout`.
fn lock_timed_out(e: &amsu_mysql::MysqlError) -> bool {
    e.server_code() == Some(amsu_mysql::codes::LOCK_WAIT_TIMEOUT)
}

/// Takes the snapshot's lock: MariaDB's backup stages up to `BLOCK_COMMIT`, MySQL's
/// `FLUSH TABLES WITH READ LOCK`, each attempt bounded by [`LockRetry`]. Returns when
/// the commit-blocking statement was sent the last time (commits can be held from then,
/// while it queues behind a running commit: the window is counted from there, not from
/// when it is granted), and the milliseconds commits were held by earlier attempts that
/// timed out. The stages before `BLOCK_COMMIT` (flushing non-transactional tables,
/// blocking DDL) hold no commit and are taken first, as mariadb-backup does.
async fn take_lock(
    ctl: &mut Session,
    flavor: Flavor,
    retry: LockRetry,
    events: &Arc<dyn EventSink>,
) -> Result<(Instant, f64), ImageError> {
    let sql = format!("SET SESSION lock_wait_timeout = {}", retry.wait_secs);
    ctl.exec(&sql, "setting lock_wait_timeout").await?;
    let mut earlier_ms = 0.0;
    let mut failed = 0;
    loop {
        // When the commit-blocking statement was sent, and whether a backup stage began.
        let mut sent: Option<Instant> = None;
        let mut in_stage = false;
        let attempt: Result<(), amsu_mysql::MysqlError> = async {
            match flavor {
                Flavor::MariaDb => {
                    ctl.exec("BACKUP STAGE START", "BACKUP STAGE START").await?;
                    in_stage = true;
                    for stage in ["BACKUP STAGE FLUSH", "BACKUP STAGE BLOCK_DDL"] {
                        ctl.exec(stage, stage).await?;
                    }
                    sent = Some(Instant::now());
                    ctl.exec("BACKUP STAGE BLOCK_COMMIT", "BACKUP STAGE BLOCK_COMMIT")
                        .await
                }
                Flavor::MySql => {
                    sent = Some(Instant::now());
                    ctl.exec("FLUSH TABLES WITH READ LOCK", "FLUSH TABLES WITH READ LOCK")
                        .await
                }
            }
        }
        .await;
        let e = match (attempt, sent) {
            (Ok(()), Some(at)) => {
                tracing::debug!(
                    ms = at.elapsed().as_secs_f64() * 1000.0,
                    attempts = failed + 1,
                    "window: lock granted"
                );
                return Ok((at, earlier_ms));
            }
            (Ok(()), None) => unreachable!("the lock statement was sent"),
            (Err(e), _) => e,
        };
        // A stage before BLOCK_COMMIT that timed out held no commit; BLOCK_COMMIT (or
        // FTWRL) did while it queued.
        let held = sent.map_or(0.0, |at| at.elapsed().as_secs_f64() * 1000.0);
        if in_stage {
            ctl.exec("BACKUP STAGE END", "BACKUP STAGE END").await?;
        }
        failed += 1;
        let pause = match retry.pause_after(failed) {
            Some(p) if lock_timed_out(&e) => p,
            _ => return Err(e.into()),
        };
        earlier_ms += held;
        events.emit(&Event::Warning {
            server: Some(Role::Master),
            message: format!(
                "the snapshot's lock was not granted within {} s (another session holds a lock it waits for); gave up the queue and trying again in {} ms (attempt {} of {})",
                retry.wait_secs,
                pause.as_millis(),
                failed + 1,
                retry.attempts
            ),
        });
        tokio::time::sleep(pause).await;
    }
}

struct Progress {
    meter: Meter,
    failed: AtomicBool,
    // Chunks left per table.
    left: Mutex<HashMap<usize, u64>>,
}

/// Runs `jobs` on the workers in parallel; returns the workers, or the first error. Each
/// chunk's bytes are charged to `limiter`, when given.
async fn run<S: ChunkSink>(
    workers: Vec<(Session, S)>,
    jobs: Vec<ChunkJob>,
    progress: &Arc<Progress>,
    limiter: Option<&Arc<RateLimiter>>,
    events: &Arc<dyn EventSink>,
) -> Result<Vec<(Session, S)>, ImageError> {
    if jobs.is_empty() {
        return Ok(workers);
    }
    {
        let mut left = progress.left.lock().expect("lock");
        for j in &jobs {
            *left.entry(j.table).or_default() += 1;
        }
    }
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let mut handles = Vec::new();
    for (mut m, mut sink) in workers {
        let (queue, progress, events) = (queue.clone(), progress.clone(), events.clone());
        let limiter = limiter.cloned();
        handles.push(tokio::spawn(async move {
            loop {
                if progress.failed.load(Ordering::Relaxed) {
                    return (m, sink, Ok(()));
                }
                let Some(job) = queue.lock().expect("queue lock").pop_front() else {
                    return (m, sink, Ok(()));
                };
                match sink.write(&mut m, &job).await {
                    Ok((rows, bytes)) => {
                        let finished = {
                            let mut left = progress.left.lock().expect("lock");
                            let l = left.get_mut(&job.table).expect("counted");
                            *l -= 1;
                            *l == 0
                        };
                        events.emit(&progress.meter.chunk_done(
                            rows,
                            bytes,
                            job.chunk.weight,
                            finished,
                        ));
                        if let Some(l) = &limiter {
                            l.charge(bytes).await;
                        }
                    }
                    Err(e) => {
                        progress.failed.store(true, Ordering::Relaxed);
                        return (m, sink, Err(e));
                    }
                }
            }
        }));
    }
    let mut out = Vec::new();
    let mut first_err = None;
    for h in handles {
        let (m, s, r) = h.await.map_err(|e| BackupError::Internal(e.to_string()))?;
        out.push((m, s));
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// How long the snapshot waits, by default, for statements that would hold its lock.
pub(crate) const BUSY_WAIT: Duration = Duration::from_secs(30);

/// The statements on the master that the snapshot's lock would wait for (and, while it
/// waits, stall other writes behind): DDL and `LOCK`/`FLUSH` statements on MariaDB
/// (`BACKUP STAGE` waits for them; running transactions do not hold it), every running
/// statement on MySQL (`FLUSH TABLES WITH READ LOCK` waits for each). Replication
/// threads and amsu's own connection are left out.
fn blockers_sql(flavor: Flavor) -> String {
    let which = match flavor {
        Flavor::MariaDb => {
            " AND UPPER(TRIM(INFO)) REGEXP \
             '^(ALTER|CREATE|DROP|RENAME|TRUNCATE|OPTIMIZE|REPAIR|LOCK|FLUSH)[[:space:]]'"
        }
        Flavor::MySql => "",
    };
    format!(
        "SELECT ID, USER, TIME, LEFT(REPLACE(REPLACE(INFO, '\\n', ' '), '\\r', ' '), 120) \
         FROM information_schema.PROCESSLIST \
         WHERE ID <> CONNECTION_ID() AND COMMAND IN ('Query', 'Execute') \
         AND INFO IS NOT NULL AND USER <> 'system user'{which} ORDER BY TIME DESC"
    )
}

/// Waits at most `wait` until nothing runs on the master that the snapshot's lock would
/// wait for; a warning names what it waits for. Fails, naming the statements, when they
/// are still running: better than queueing the master's writes behind a lock for
/// minutes. Returns the DDL count read just before the last look.
async fn wait_until_not_busy(
    ctl: &mut Session,
    flavor: Flavor,
    wait: Duration,
    events: &Arc<dyn EventSink>,
) -> Result<u64, ImageError> {
    let sql = blockers_sql(flavor);
    let started = Instant::now();
    let mut warned = false;
    loop {
        let count = ddl_count(ctl).await?;
        let rows = ctl
            .rows(&sql, "looking for statements that would block the snapshot")
            .await?;
        let found: Vec<String> = rows
            .iter()
            .map(|r| {
                let f = |i: usize| r.text(i).unwrap_or_default();
                format!("thread {} (user {}, {} s): {}", f(0), f(1), f(2), f(3))
            })
            .collect();
        if found.is_empty() {
            return Ok(count);
        }
        if started.elapsed() >= wait {
            return Err(BackupError::MasterBusy {
                statements: found.join("; "),
                waited_secs: started.elapsed().as_secs(),
            }
            .into());
        }
        if !warned {
            warned = true;
            events.emit(&Event::Warning {
                server: Some(amsu_core::Role::Master),
                message: format!(
                    "waiting up to {} s for statements that would block the snapshot: {}",
                    wait.as_secs(),
                    found.join("; ")
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_attempts_pause_longer_each_time_and_stop_at_the_limit() {
        let r = LockRetry::default();
        assert_eq!(r.wait_secs, 1);
        assert_eq!(r.pause_after(1), Some(Duration::from_millis(250)));
        assert_eq!(r.pause_after(2), Some(Duration::from_millis(500)));
        assert_eq!(r.pause_after(3), Some(Duration::from_secs(1)));
        assert_eq!(r.pause_after(10), Some(Duration::from_secs(5)));
        assert_eq!(r.pause_after(r.attempts - 1), Some(Duration::from_secs(5)));
        assert_eq!(r.pause_after(r.attempts), None);
    }

    #[test]
    fn temporary_tables_do_not_count_as_ddl() {
        let c = |v: &[(&str, u64)]| count_ddl(v.iter().map(|(n, v)| (n.to_string(), *v)));
        assert_eq!(
            c(&[
                ("Com_create_table", 5),
                ("Com_create_temporary_table", 3),
                ("Com_alter_table", 2)
            ]),
            7
        );
        assert_eq!(c(&[("Com_truncate", 1), ("Com_drop_view", 1)]), 2);
    }

    #[test]
    fn mariadb_waits_for_ddl_only_mysql_for_every_statement() {
        let m = blockers_sql(Flavor::MariaDb);
        assert!(m.contains("REGEXP '^(ALTER|CREATE|DROP|RENAME|TRUNCATE|OPTIMIZE|REPAIR|LOCK|FLUSH)[[:space:]]'"), "{m}");
        assert!(m.contains("ID <> CONNECTION_ID()"));
        let my = blockers_sql(Flavor::MySql);
        assert!(!my.contains("REGEXP"), "{my}");
        assert!(my.contains("COMMAND IN ('Query', 'Execute')"));
    }
}
