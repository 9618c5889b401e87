//! The `logical` method: a consistent parallel snapshot of the master, streamed straight
//! into the replica with `LOAD DATA LOCAL INFILE` (dump and load overlap per chunk).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use amsu_core::{
    BoxError, Coordinates, CopyReport, DataCopier, Event, EventSink, Flavor, ServerAddr,
};
use amsu_mysql::conn::{text, Session};
use amsu_mysql::{binlog_position, probe, MysqlError};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;

use crate::catalog::{self, Table};
use crate::encode::push_values;
use crate::meter::Meter;
use crate::{restore, BackupError};

/// Options of the logical copy. Build with [`LogicalOptions::default`] and the setters.
#[derive(Debug, Clone)]
pub struct LogicalOptions {
    threads: usize,
    chunk_bytes: u64,
    piece_bytes: usize,
}

impl Default for LogicalOptions {
    /// Threads: the number of cores (at least 2); chunks of about 32 MiB of table data;
    /// pieces of 1 MiB per packet sent to the replica.
    fn default() -> Self {
        LogicalOptions {
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
            chunk_bytes: 32 << 20,
            piece_bytes: 1 << 20,
        }
    }
}

impl LogicalOptions {
    /// Parallel worker connections on each server.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Target size of a chunk of table data (tables with an integer primary key are
    /// split into key ranges of about this size).
    pub fn chunk_bytes(mut self, bytes: u64) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }
}

/// The logical copy from one master into one replica.
#[derive(Debug, Clone)]
pub struct LogicalCopy {
    master: ServerAddr,
    replica: ServerAddr,
    options: LogicalOptions,
}

impl LogicalCopy {
    /// A copy from `master` into `replica` (both with admin users).
    pub fn new(master: ServerAddr, replica: ServerAddr, options: LogicalOptions) -> Self {
        LogicalCopy {
            master,
            replica,
            options,
        }
    }
}

#[async_trait]
impl DataCopier for LogicalCopy {
    async fn copy(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        Ok(self.run(events).await?)
    }
}

/// One unit of work: a table or a key range of one.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) table: Arc<Table>,
    pub(crate) filter: String,
    pub(crate) weight: u64,
}

struct Counters {
    meter: Meter,
    failed: AtomicBool,
}

struct Worker {
    master: Session,
    replica: Session,
}

impl LogicalCopy {
    async fn run(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BackupError> {
        let n = self.options.threads;
        let mut ctl = Session::open(&self.master).await?;
        let info = probe(&mut ctl).await?;
        let dbs = catalog::databases(&mut ctl).await?;
        let tables = catalog::tables(&mut ctl).await?;
        let objects = catalog::objects(&mut ctl).await?;
        if let Some(why) = catalog::refusal(&tables) {
            return Err(BackupError::Unsupported(why));
        }
        let plugins = catalog::account_plugins(&mut ctl, info.flavor).await?;

        let mut rs = Session::open(&self.replica).await?;
        let active = catalog::active_auth_plugins(&mut rs).await?;
        if let Some(why) = catalog::plugin_refusal(&plugins, &active) {
            return Err(BackupError::Unsupported(why));
        }
        restore::prepare_session(&mut rs).await?;
        restore::create_databases(&mut rs, &dbs).await?;
        let deferred =
            restore::create_tables(&mut rs, &tables, &std::collections::HashSet::new()).await?;

        // Every connection (and its handshake) before any lock.
        let mut workers = Vec::with_capacity(n);
        for _ in 0..n {
            let mut m = Session::open(&self.master).await?;
            for sql in [
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                "SET SESSION character_set_results = binary",
                "SET SESSION net_write_timeout = 3600",
            ] {
                m.exec(sql, sql).await?;
            }
            let mut r = Session::open(&self.replica).await?;
            restore::prepare_session(&mut r).await?;
            r.exec(
                "SET SESSION net_read_timeout = 3600",
                "setting net_read_timeout",
            )
            .await?;
            workers.push(Worker {
                master: m,
                replica: r,
            });
        }
        ctl.exec(
            "SET SESSION lock_wait_timeout = 30",
            "setting lock_wait_timeout",
        )
        .await?;

        // Sequences hold no rows to copy: their state is read in the window below.
        let (sequences, tables): (Vec<Table>, Vec<Table>) = tables
            .into_iter()
            .partition(|t| t.kind == catalog::TableKind::Sequence);
        let (transactional, other): (Vec<Table>, Vec<Table>) =
            tables.into_iter().partition(|t| t.transactional());
        let tables_total = (transactional.len() + other.len() + sequences.len()) as u64;
        let counters = Arc::new(Counters {
            meter: Meter::new((transactional.len() + other.len()) as u64),
            failed: AtomicBool::new(false),
        });
        counters.meter.plan(
            transactional
                .iter()
                .chain(&other)
                .map(|t| t.data_length)
                .sum(),
        );

        // --- The window in which the master's commits are blocked. ---
        let blocked_at = Instant::now();
        match info.flavor {
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
        let blocked_at = blocked_at.max(Instant::now());
        let window = async {
            let snaps = futures_util::future::join_all(workers.iter_mut().map(|w| {
                w.master.exec(
                    "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                    "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                )
            }))
            .await;
            for r in snaps {
                r?;
            }
            let coords = binlog_position(&mut ctl).await?;
            let accounts = catalog::accounts(&mut ctl, info.flavor).await?;
            let sequence_states = catalog::sequence_states(&mut ctl, &sequences).await?;
            // Non-transactional tables have no snapshot: copy them while nothing commits.
            let chunks = other
                .iter()
                .map(|t| Chunk {
                    table: Arc::new(t.clone()),
                    filter: String::new(),
                    weight: t.data_length,
                })
                .collect();
            let ws = std::mem::take(&mut workers);
            let ws = run_chunks(ws, chunks, &counters, &events, self.options.piece_bytes).await?;
            Ok::<_, BackupError>((coords, accounts, sequence_states, ws))
        }
        .await;
        let release = match info.flavor {
            Flavor::MariaDb => "BACKUP STAGE END",
            Flavor::MySql => "UNLOCK TABLES",
        };
        let released = ctl.exec(release, release).await;
        let blocked_ms = blocked_at.elapsed().as_secs_f64() * 1000.0;
        let (coords, accounts, sequence_states, ws) = window?;
        released?;
        events.emit(&Event::CommitBlocked { millis: blocked_ms });
        events.emit(&Event::Snapshot {
            coordinates: coords.clone(),
        });
        tracing::info!(blocked_ms, %coords, "snapshot taken");
        workers = ws;

        // --- Transactional tables, from the shared snapshot. ---
        let chunks = plan_chunks(
            &mut workers[0].master,
            &transactional,
            self.options.chunk_bytes,
        )
        .await?;
        let workers = run_chunks(
            workers,
            chunks,
            &counters,
            &events,
            self.options.piece_bytes,
        )
        .await?;
        let mut replicas = Vec::with_capacity(workers.len());
        for mut w in workers {
            let _ = w.master.exec("COMMIT", "ending the snapshot").await;
            replicas.push(w.replica);
        }
        restore::add_deferred_keys(replicas, deferred).await?;

        restore::restore_sequences(&mut rs, &sequence_states).await?;
        restore::create_objects(&mut rs, &objects, info.flavor).await?;
        restore::create_accounts(&mut rs, &accounts).await?;

        Ok(CopyReport {
            coordinates: Some(Coordinates { ..coords }),
            databases: dbs.len() as u64,
            tables: tables_total,
            rows: counters.meter.rows(),
            bytes: counters.meter.bytes(),
            accounts: accounts.len() as u64,
            objects: objects.len() as u64,
            commit_blocked_ms: blocked_ms,
        })
    }
}

/// Splits tables into chunks: key ranges of about `chunk_bytes` for tables with an
/// integer primary key, whole tables otherwise; largest first.
pub(crate) async fn plan_chunks(
    s: &mut Session,
    tables: &[Table],
    chunk_bytes: u64,
) -> Result<Vec<Chunk>, MysqlError> {
    let mut chunks = Vec::new();
    for t in tables {
        let table = Arc::new(t.clone());
        let parts = t.data_length.div_ceil(chunk_bytes).max(1);
        let key = match (&t.chunk_key, parts) {
            (Some(k), p) if p > 1 => k,
            _ => {
                chunks.push(Chunk {
                    table,
                    filter: String::new(),
                    weight: t.data_length,
                });
                continue;
            }
        };
        let qk = amsu_mysql::quote::ident(key);
        let what = format!("reading the key range of {}", t.qualified());
        let row = s
            .rows(
                &format!("SELECT MIN({qk}), MAX({qk}) FROM {}", t.qualified()),
                &what,
            )
            .await?;
        let bound = |i: usize| -> Option<i128> {
            row.first()
                .and_then(|r| r.as_ref(i))
                .and_then(text)
                .and_then(|v| v.parse().ok())
        };
        let (Some(lo), Some(hi)) = (bound(0), bound(1)) else {
            chunks.push(Chunk {
                table,
                filter: String::new(),
                weight: 0,
            });
            continue;
        };
        let step = ((hi - lo) / parts as i128).max(1);
        let weight = t.data_length / parts;
        let mut start: Option<i128> = None;
        let mut b = lo + step;
        loop {
            let filter = match start {
                None => format!("WHERE {qk} < {b}"),
                Some(a) if b > hi => format!("WHERE {qk} >= {a}"),
                Some(a) => format!("WHERE {qk} >= {a} AND {qk} < {b}"),
            };
            let last = b > hi;
            chunks.push(Chunk {
                table: table.clone(),
                filter,
                weight,
            });
            if last {
                break;
            }
            start = Some(b);
            b += step;
        }
    }
    chunks.sort_by_key(|c| std::cmp::Reverse(c.weight));
    Ok(chunks)
}

/// Runs chunks on the workers in parallel; returns the workers when all are done, or
/// the first error.
async fn run_chunks(
    workers: Vec<Worker>,
    chunks: Vec<Chunk>,
    counters: &Arc<Counters>,
    events: &Arc<dyn EventSink>,
    piece_bytes: usize,
) -> Result<Vec<Worker>, BackupError> {
    if chunks.is_empty() {
        return Ok(workers);
    }
    // A table is done when its last chunk is.
    let mut remaining: std::collections::HashMap<(String, String), u64> =
        std::collections::HashMap::new();
    for c in &chunks {
        *remaining
            .entry((c.table.db.clone(), c.table.name.clone()))
            .or_default() += 1;
    }
    let remaining = Arc::new(Mutex::new(remaining));
    let queue = Arc::new(Mutex::new(VecDeque::from(chunks)));
    let mut handles = Vec::new();
    for mut w in workers {
        let queue = queue.clone();
        let counters = counters.clone();
        let events = events.clone();
        let remaining = remaining.clone();
        handles.push(tokio::spawn(async move {
            loop {
                if counters.failed.load(Ordering::Relaxed) {
                    return (w, Ok(()));
                }
                let Some(chunk) = queue.lock().expect("queue lock").pop_front() else {
                    return (w, Ok(()));
                };
                match copy_chunk(&mut w, &chunk, piece_bytes).await {
                    Ok((rows, bytes)) => {
                        let key = (chunk.table.db.clone(), chunk.table.name.clone());
                        let table_finished = {
                            let mut r = remaining.lock().expect("remaining lock");
                            let left = r.get_mut(&key).expect("known table");
                            *left -= 1;
                            *left == 0
                        };
                        events.emit(&counters.meter.chunk_done(
                            rows,
                            bytes,
                            chunk.weight,
                            table_finished,
                        ));
                    }
                    Err(e) => {
                        counters.failed.store(true, Ordering::Relaxed);
                        return (w, Err(e));
                    }
                }
            }
        }));
    }
    let mut workers = Vec::new();
    let mut first_err = None;
    for h in handles {
        let (w, r) = h.await.map_err(|e| BackupError::Internal(e.to_string()))?;
        workers.push(w);
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(workers),
    }
}

/// Streams one chunk from the master into the replica in one transaction; rolls it back
/// on any error, so a chunk is loaded whole or not at all.
async fn copy_chunk(
    w: &mut Worker,
    chunk: &Chunk,
    piece_bytes: usize,
) -> Result<(u64, u64), BackupError> {
    let t = &chunk.table;
    let cols: Vec<_> = t.copied_columns().collect();
    let select = format!(
        "SELECT {} FROM {} {}",
        cols.iter()
            .map(|c| c.select_expr())
            .collect::<Vec<_>>()
            .join(", "),
        t.qualified(),
        chunk.filter
    );
    let mut targets = Vec::new();
    let mut sets = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        let (target, set) = c.load_target(i);
        targets.push(target);
        sets.extend(set);
    }
    let load = format!(
        "LOAD DATA LOCAL INFILE 'amsu-chunk' INTO TABLE {} CHARACTER SET binary \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({}){}",
        t.qualified(),
        targets.join(", "),
        if sets.is_empty() {
            String::new()
        } else {
            format!(" SET {}", sets.join(", "))
        }
    );
    let what_load = format!("loading {} {}", t.qualified(), chunk.filter);
    let what_dump = format!("reading {} {}", t.qualified(), chunk.filter);

    w.replica
        .exec("START TRANSACTION", "START TRANSACTION")
        .await?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    w.replica.conn.set_infile_handler(async move {
        Ok(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed())
    });
    let master_server = w.master.server().to_string();
    let (mconn, rconn) = (&mut w.master.conn, &mut w.replica.conn);
    let dump = async move {
        let result: Result<(u64, u64), BackupError> =
            async {
                let mut res = mconn.query_iter(select.as_str()).await.map_err(|source| {
                    MysqlError::Query {
                        server: master_server.clone(),
                        what: what_dump.clone(),
                        source,
                    }
                })?;
                let mut buf = Vec::with_capacity(piece_bytes + (64 << 10));
                let (mut rows, mut bytes) = (0u64, 0u64);
                while let Some(row) = res.next().await.map_err(|source| MysqlError::Query {
                    server: master_server.clone(),
                    what: what_dump.clone(),
                    source,
                })? {
                    push_values(&mut buf, &row.unwrap());
                    rows += 1;
                    if buf.len() >= piece_bytes {
                        bytes += buf.len() as u64;
                        let piece = Bytes::from(std::mem::replace(
                            &mut buf,
                            Vec::with_capacity(piece_bytes + (64 << 10)),
                        ));
                        if tx.send(Ok(piece)).await.is_err() {
                            return Err(BackupError::LoadStopped);
                        }
                    }
                }
                if !buf.is_empty() {
                    bytes += buf.len() as u64;
                    if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                        return Err(BackupError::LoadStopped);
                    }
                }
                Ok((rows, bytes))
            }
            .await;
        if result.is_err() {
            let _ = tx
                .send(Err(io::Error::other("the read from the master failed")))
                .await;
        }
        result
    };
    let load = rconn.query_drop(load.as_str());
    let (loaded, dumped) = tokio::join!(load, dump);
    let ok = loaded.is_ok() && dumped.is_ok();
    if ok {
        if let Err(e) = restore::check_no_warnings(&mut w.replica, &what_load).await {
            let _ = w.replica.exec("ROLLBACK", "ROLLBACK").await;
            return Err(e.into());
        }
    }
    if !ok {
        let _ = w.replica.exec("ROLLBACK", "ROLLBACK").await;
        if let Err(source) = loaded {
            return Err(MysqlError::Query {
                server: w.replica.server().to_string(),
                what: what_load,
                source,
            }
            .into());
        }
        return Err(dumped.expect_err("one side failed"));
    }
    w.replica.exec("COMMIT", "COMMIT").await?;
    Ok(dumped.expect("checked above"))
}
