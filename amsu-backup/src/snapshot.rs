//! A consistent parallel snapshot of the master whose chunks go to a pluggable sink: a
//! local image ([`crate::ImageBackup`]) or the master's own `INTO OUTFILE`
//! ([`crate::OutfileCopy`]). The snapshot is taken like the logical copy's: every worker
//! connection opened first, then `BACKUP STAGE BLOCK_COMMIT` (MariaDB) or `FLUSH TABLES
//! WITH READ LOCK` (MySQL) held while the workers start their snapshot transactions, the
//! coordinates and accounts are read and the non-transactional tables are dumped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use amsu_core::{Coordinates, Event, EventSink, Flavor, ServerAddr, ServerInfo};
use amsu_mysql::conn::Session;
use amsu_mysql::{binlog_position, probe};
use async_trait::async_trait;

use crate::catalog::{self, Account, Database, SchemaObject, SequenceState, Table, TableKind};
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
}

impl Catalog {
    /// Reads the catalog; refuses what the copy cannot carry yet.
    pub(crate) async fn read(ctl: &mut Session) -> Result<Catalog, ImageError> {
        let info = probe(ctl).await?;
        let databases = catalog::databases(ctl).await?;
        let tables = catalog::tables(ctl).await?;
        let objects = catalog::objects(ctl).await?;
        if let Some(why) = catalog::refusal(&tables) {
            return Err(BackupError::Unsupported(why).into());
        }
        Ok(Catalog {
            info,
            databases,
            tables,
            objects,
        })
    }
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
            "SELECT {} FROM {} {}",
            t.copied_columns()
                .map(|c| c.select_expr())
                .collect::<Vec<_>>()
                .join(", "),
            t.qualified(),
            self.chunk.filter
        )
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
/// `cat` into the sinks. `ctl` is the control session that takes the lock.
pub(crate) async fn dump<S: ChunkSink>(
    master: &ServerAddr,
    ctl: &mut Session,
    cat: &Catalog,
    sinks: Vec<S>,
    chunk_bytes: u64,
    events: &Arc<dyn EventSink>,
) -> Result<(Dumped, Vec<S>), ImageError> {
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
    ctl.exec(
        "SET SESSION lock_wait_timeout = 30",
        "setting lock_wait_timeout",
    )
    .await?;
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

    let blocked_at = Instant::now();
    match cat.info.flavor {
        Flavor::MariaDb => {
            ctl.exec("BACKUP STAGE START", "BACKUP STAGE START").await?;
            ctl.exec("BACKUP STAGE BLOCK_COMMIT", "BACKUP STAGE BLOCK_COMMIT")
                .await?;
        }
        Flavor::MySql => {
            ctl.exec("FLUSH TABLES WITH READ LOCK", "FLUSH TABLES WITH READ LOCK")
                .await?;
        }
    }
    let window = async {
        let snaps = futures_util::future::join_all(workers.iter_mut().map(|(m, _)| {
            m.exec(
                "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                "START TRANSACTION WITH CONSISTENT SNAPSHOT",
            )
        }))
        .await;
        for r in snaps {
            r?;
        }
        let coords = binlog_position(ctl).await?;
        let accounts = catalog::accounts(ctl, cat.info.flavor).await?;
        let sequences = catalog::sequence_states(ctl, &sequences).await?;
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
        let ws = run(std::mem::take(&mut workers), jobs, &progress, events).await?;
        Ok::<_, ImageError>((coords, accounts, sequences, ws))
    }
    .await;
    let release = match cat.info.flavor {
        Flavor::MariaDb => "BACKUP STAGE END",
        Flavor::MySql => "UNLOCK TABLES",
    };
    let released = ctl.exec(release, release).await;
    let blocked_ms = blocked_at.elapsed().as_secs_f64() * 1000.0;
    let (coordinates, accounts, sequences, mut workers) = window?;
    released?;
    events.emit(&Event::CommitBlocked { millis: blocked_ms });
    events.emit(&Event::Snapshot {
        coordinates: coordinates.clone(),
    });

    let chunks = plan_chunks(&mut workers[0].0, &transactional, chunk_bytes).await?;
    let jobs = chunks.into_iter().map(job).collect();
    let workers = run(workers, jobs, &progress, events).await?;
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

struct Progress {
    meter: Meter,
    failed: AtomicBool,
    // Chunks left per table.
    left: Mutex<HashMap<usize, u64>>,
}

/// Runs `jobs` on the workers in parallel; returns the workers, or the first error.
async fn run<S: ChunkSink>(
    workers: Vec<(Session, S)>,
    jobs: Vec<ChunkJob>,
    progress: &Arc<Progress>,
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
