//! The `logical` method: a consistent parallel snapshot of the master
//! ([`crate::snapshot`]), streamed straight into the replica with `LOAD DATA LOCAL
//! INFILE` (dump and load overlap per chunk), secondary keys added after the data.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use amsu_core::{
    BoxError, Coordinates, CopyReport, DataCopier, EventSink, Finding, Preflight, ServerAddr,
};
use amsu_mysql::conn::Session;
use amsu_mysql::MysqlError;
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::catalog::{self, Table};
use crate::donor::Donor;
use crate::encode::push_values;
use crate::governor::GovernorOptions;
use crate::image::ImageError;
use crate::snapshot::{self, Catalog, ChunkJob, ChunkSink};
use crate::stream_resume::{self, StreamState};
use crate::{load, restore, BackupError};

/// Options of the logical copy. Build with [`LogicalOptions::default`] and the setters.
#[derive(Debug, Clone)]
pub struct LogicalOptions {
    /// `None`: sized from the replica's idle CPU when the copy starts ([`crate::sizing`]).
    threads: Option<usize>,
    bulk_load: bool,
    chunk_bytes: u64,
    piece_bytes: usize,
    busy_wait: Duration,
    governor: GovernorOptions,
}

impl Default for LogicalOptions {
    /// Threads: the replica's idle cores (see `sizing`); the ordinary insert path
    /// (not the bulk-load one, see [`LogicalOptions::bulk_load`]); chunks of about 32 MiB of table data; pieces of 1 MiB per packet
    /// sent to the replica; 30 s of waiting for statements that would block the
    /// snapshot's lock.
    fn default() -> Self {
        LogicalOptions {
            threads: None,
            bulk_load: false,
            chunk_bytes: 32 << 20,
            piece_bytes: 1 << 20,
            busy_wait: snapshot::BUSY_WAIT,
            governor: GovernorOptions::default(),
        }
    }
}

impl LogicalOptions {
    /// Parallel worker connections on each server.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// Load each table's first chunk through InnoDB's bulk-insert path (MariaDB ≥ 10.6:
    /// an insert into an empty table, first in its transaction, with `unique_checks = 0`
    /// and `foreign_key_checks = 0`, is undo-logged once for the table and its indexes are
    /// built by sorting at commit). The chunks are ordered so that the first chunks of
    /// the tables load before any table's second one: the bulk insert locks its table
    /// until it commits. Default: off. Measured on MariaDB 10.11.19 (one 250 000-row
    /// sysbench chunk, 50 MB, into an empty table): 12 % slower with the primary key
    /// only, no faster with a secondary key. The rows arrive in primary-key order, which
    /// the ordinary path appends, and the secondary keys are added after the data anyway
    /// (amsu's deferred secondary keys), so the bulk path only adds its sort.
    pub fn bulk_load(mut self, on: bool) -> Self {
        self.bulk_load = on;
        self
    }

    /// How long to wait, before taking the snapshot's lock, for statements on the master
    /// that the lock would wait for (DDL on MariaDB; any statement on MySQL). When they
    /// still run after that, the copy fails naming them, with nothing locked.
    pub fn busy_wait(mut self, wait: Duration) -> Self {
        self.busy_wait = wait;
        self
    }

    /// How the reads from the master are governed (after the snapshot's lock). Default:
    /// [`GovernorOptions::default`] (adaptive, no fixed limit).
    pub fn governor(mut self, governor: GovernorOptions) -> Self {
        self.governor = governor;
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
    donor: Option<Donor>,
}

impl LogicalCopy {
    /// A copy from `master` into `replica` (both with admin users).
    pub fn new(master: ServerAddr, replica: ServerAddr, options: LogicalOptions) -> Self {
        LogicalCopy {
            master,
            replica,
            options,
            donor: None,
        }
    }

    /// Reads the data from `donor`, a running replica of the master, instead of the
    /// master (see [`Donor`](crate::Donor)): the copy's coordinates are the master position of
    /// the donor's data. The `master` given to [`LogicalCopy::new`] is not read then.
    pub fn from_donor(mut self, donor: Donor) -> Self {
        self.master = donor.addr().clone();
        self.donor = Some(donor);
        self
    }
}

#[async_trait]
impl DataCopier for LogicalCopy {
    async fn copy(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        // A refusal or a server error is reported as the BackupError it is.
        let state = StreamState::fresh(self.master.clone(), self.replica.clone(), events.clone());
        self.run(events, Arc::new(state)).await.map_err(boxed)
    }

    /// A streamed copy resumes: the binary log since the interrupted snapshot is read back. One from a donor starts
    /// again (its snapshots are the donor's, not positions of the master's binary log
    /// the resume scans).
    fn resumable(&self) -> bool {
        self.donor.is_none()
    }

    /// With a donor, its steps; else the logical copy's, which the plan knows.
    fn statements(&self) -> Option<Vec<String>> {
        self.donor.as_ref().map(crate::donor::plan_statements)
    }

    /// Keeps the chunks the interrupted copy loaded that are provably still those of a
    /// new snapshot, copies the rest (reading the binary log since the interrupted snapshot); where the proof does not
    /// hold, says why and copies again what it must.
    async fn resume(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        self.resume_run(events).await.map_err(boxed)
    }

    /// Drops the copy's progress records.
    async fn finished(&self) -> Result<(), BoxError> {
        let mut rs = Session::open(&self.replica).await?;
        stream_resume::forget(&mut rs).await?;
        Ok(())
    }
}

/// A refusal or a server error is reported as the BackupError it is.
fn boxed(e: ImageError) -> BoxError {
    match e {
        ImageError::Backup(b) => Box::new(b),
        other => Box::new(other),
    }
}

/// The preflight of the logical copy (read-only): tables it cannot carry exactly and
/// account plugins the replica lacks are reported before anything changes.
#[async_trait]
impl Preflight for LogicalCopy {
    async fn findings(&self) -> Result<Vec<Finding>, BoxError> {
        // The copy reads a donor in place of the master: one that cannot be reached is
        // the donor checks' finding (`donor_unreachable`), which blocks the setup.
        if let Some(d) = &self.donor {
            if Session::open(d.addr()).await.is_err() {
                return Ok(Vec::new());
            }
        }
        Ok(snapshot::copy_findings(&self.master, &self.replica).await?)
    }
}

/// One unit of work: a table or a key range of one.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) table: Arc<Table>,
    pub(crate) filter: String,
    pub(crate) weight: u64,
}

impl LogicalCopy {
    /// Resumes an interrupted copy, or starts over (dropping only amsu's own databases)
    /// where keeping its chunks cannot be proven right.
    async fn resume_run(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, ImageError> {
        let state =
            stream_resume::resume_state(&self.master, &self.replica, events.clone()).await?;
        self.run(events, Arc::new(state)).await
    }

    async fn run(
        &self,
        events: Arc<dyn EventSink>,
        state: Arc<StreamState>,
    ) -> Result<CopyReport, ImageError> {
        let threads = self
            .options
            .threads
            .unwrap_or_else(|| crate::sizing::threads_for(&self.replica));
        tracing::info!(threads, "copy workers");
        if let Some(d) = &self.donor {
            d.recover(&events).await?;
        }
        let mut ctl = Session::open(&self.master).await?;
        let cat = Catalog::read(
            &self.master,
            &mut ctl,
            threads,
            self.options.busy_wait,
            &events,
        )
        .await?;
        let plugins = catalog::account_plugins(&mut ctl, cat.info.flavor).await?;

        let settings = snapshot::dump_settings();
        let mut rs = Session::open(&self.replica).await?;
        let active = catalog::active_auth_plugins(&mut rs).await?;
        if let Some(why) = catalog::plugin_refusal(&plugins, &active) {
            return Err(BackupError::Unsupported(why).into());
        }
        load::apply_settings(&mut rs, &settings).await?;
        let existing = if state.resuming() {
            stream_resume::drop_triggers(&mut rs, &cat.objects).await?;
            restore::existing_tables(&mut rs, &cat.tables).await?
        } else {
            stream_resume::start_fresh(&mut rs).await?;
            HashSet::new()
        };
        restore::create_databases(&mut rs, &cat.databases).await?;
        let deferred = restore::create_tables(&mut rs, &cat.tables, &existing).await?;
        tracing::debug!(tables = cat.tables.len(), "tables created on the replica");

        // Every connection (and its handshake) before the snapshot's lock.
        let mut sessions = load::open_sessions(&self.replica, threads, &settings).await?;
        if self.options.bulk_load {
            for s in &mut sessions {
                load::enable_bulk_load(s).await?;
            }
        }
        let sinks = sessions
            .into_iter()
            .map(|replica| ReplicaSink {
                replica,
                piece_bytes: self.options.piece_bytes,
                character_set: settings.character_set.clone(),
                state: state.clone(),
            })
            .collect();
        let mut paused = match &self.donor {
            Some(d) => Some(d.pause(&events).await?),
            None => None,
        };
        let dumped = snapshot::dump_from(
            &self.master,
            &mut ctl,
            &cat,
            sinks,
            self.options.chunk_bytes,
            &self.options.governor,
            paused.as_mut(),
            &events,
        )
        .await;
        if let Some(p) = paused.as_mut() {
            // Started again already unless the snapshot failed before its lock ended.
            p.restart().await?;
        }
        let (dumped, sinks) = dumped?;
        tracing::info!(blocked_ms = dumped.blocked_ms, coordinates = %dumped.coordinates, "copied");
        let replicas = sinks.into_iter().map(|s| s.replica).collect();
        restore::add_deferred_keys(replicas, deferred).await?;

        restore::restore_sequences(&mut rs, &dumped.sequences).await?;
        restore::create_objects_and_accounts(
            &mut rs,
            &cat.objects,
            &dumped.accounts,
            cat.info.flavor,
        )
        .await?;

        Ok(CopyReport::new(dumped.coordinates)
            .with_catalog(
                cat.databases.len() as u64,
                cat.tables.len() as u64,
                dumped.accounts.len() as u64,
                cat.objects.len() as u64,
            )
            .with_data(dumped.rows, dumped.bytes)
            .with_commit_blocked_ms(dumped.blocked_ms))
    }
}

/// Splits tables into chunks: key ranges of about `chunk_bytes` for tables with an
/// integer primary key, whole tables otherwise; every table's first chunk before any
/// table's second one ([`load_order`]), largest first.
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
                &format!(
                    "SELECT MIN({qk}), MAX({qk}) FROM {}{}",
                    t.qualified(),
                    snapshot::history_clause(t)
                ),
                &what,
            )
            .await?;
        let bound = |i: usize| -> Option<i128> { row.first().and_then(|r| r.parse(i)) };
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
    let keys: Vec<(usize, u64)> = chunks
        .iter()
        .map(|c| (Arc::as_ptr(&c.table) as usize, c.weight))
        .collect();
    let mut slots: Vec<Option<Chunk>> = chunks.into_iter().map(Some).collect();
    Ok(load_order(&keys)
        .into_iter()
        .filter_map(|i| slots[i].take())
        .collect())
}

/// The order to load chunks given as (table, weight) with each table's chunks next to
/// each other: by their rank within their table (every first chunk, then every second
/// one, …), then largest first: the workers load different tables side by side. With
/// [`LogicalOptions::bulk_load`] a table's first chunk goes into the empty table through
/// InnoDB's bulk-insert path, which locks the table until it commits, so this order also
/// keeps the workers from waiting on each other.
fn load_order(chunks: &[(usize, u64)]) -> Vec<usize> {
    let mut rank = Vec::with_capacity(chunks.len());
    for (i, (table, _)) in chunks.iter().enumerate() {
        let r = match i.checked_sub(1).map(|p| chunks[p].0) {
            Some(prev) if prev == *table => rank[i - 1] + 1,
            _ => 0usize,
        };
        rank.push(r);
    }
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    order.sort_by_key(|&i| (rank[i], std::cmp::Reverse(chunks[i].1)));
    order
}

/// How often a chunk the replica rolled back for a lock conflict is loaded again.
const LOCK_CONFLICT_RETRIES: u32 = 5;

/// True when the replica refused a chunk's transaction for a lock conflict — a deadlock
/// (1213) or a lock wait timeout (1205) — which rolls the transaction back and leaves
/// nothing of it: loading the chunk again is safe.
fn is_lock_conflict(e: &BackupError) -> bool {
    matches!(amsu_core::server_errno(e), Some(1213 | 1205))
}

/// Streams one chunk from the master into the replica in one transaction; rolls it back
/// on any error, so a chunk is loaded whole or not at all.
async fn copy_chunk(
    master: &mut Session,
    replica: &mut Session,
    job: &ChunkJob,
    piece_bytes: usize,
    character_set: &str,
    record: Option<&Coordinates>,
) -> Result<(u64, u64), BackupError> {
    let chunk = &job.chunk;
    let t = &chunk.table;
    let select = job.select();
    let load = load::load_sql(t, character_set);
    let what_load = format!("loading {} {}", t.qualified(), chunk.filter);
    let what_dump = format!("reading {} {}", t.qualified(), chunk.filter);

    replica
        .exec("START TRANSACTION", "START TRANSACTION")
        .await?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let dump = async move {
        let result: Result<(u64, u64), BackupError> = async {
            let mut res = master.stream_rows(&select, &what_dump).await?;
            let mut buf = Vec::with_capacity(piece_bytes + (64 << 10));
            let (mut rows, mut bytes) = (0u64, 0u64);
            while let Some(row) = res.next().await? {
                push_values(&mut buf, &row);
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
        if let Err(e) = &result {
            // The load reports this text: it names the server read from (the master, or
            // the donor) and why.
            let _ = tx
                .send(Err(io::Error::other(format!("the read failed: {e}"))))
                .await;
        }
        result
    };
    let load = replica.load_local(&load, &what_load, rx);
    let (loaded, dumped) = tokio::join!(load, dump);
    let ok = loaded.is_ok() && dumped.is_ok();
    if ok {
        if let Err(e) = restore::check_load_warnings(replica, t, &what_load).await {
            let _ = replica.exec("ROLLBACK", "ROLLBACK").await;
            return Err(e.into());
        }
    }
    if !ok {
        let _ = replica.exec("ROLLBACK", "ROLLBACK").await;
        if let Err(e) = loaded {
            return Err(e.into());
        }
        return Err(dumped.expect_err("one side failed"));
    }
    let (rows, bytes) = dumped.expect("checked above");
    if let Some(at) = record {
        // The record commits with the rows: see crate::stream_resume.
        let sql = stream_resume::record_sql(&t.db, &t.name, &chunk.filter, rows, at);
        if let Err(e) = replica.exec(&sql, "recording the chunk as loaded").await {
            let _ = replica.exec("ROLLBACK", "ROLLBACK").await;
            return Err(e.into());
        }
    }
    replica.exec("COMMIT", "COMMIT").await?;
    Ok((rows, bytes))
}

/// Streams the chunks it is given into its own replica session.
struct ReplicaSink {
    replica: Session,
    piece_bytes: usize,
    character_set: String,
    state: Arc<StreamState>,
}

#[async_trait]
impl ChunkSink for ReplicaSink {
    async fn write(
        &mut self,
        master: &mut Session,
        job: &ChunkJob,
    ) -> Result<(u64, u64), ImageError> {
        let t = &job.chunk.table;
        if !t.transactional() {
            // No record can commit with its rows: emptied and copied whole again.
            if self.state.resuming() {
                self.state.warn(format!(
                    "{} is not transactional: its rows cannot be recorded atomically with them, so it is copied again",
                    t.qualified()
                ));
                self.replica
                    .exec(
                        &format!("DELETE FROM {}", t.qualified()),
                        &format!(
                            "emptying {} (non-transactional: copied again)",
                            t.qualified()
                        ),
                    )
                    .await?;
            }
            return Ok(copy_chunk(
                master,
                &mut self.replica,
                job,
                self.piece_bytes,
                &self.character_set,
                None,
            )
            .await?);
        }
        let plan = self
            .state
            .plan()
            .ok_or_else(|| BackupError::Internal("a chunk before the snapshot's plan".into()))?;
        let Some(job) = plan.remaining(job) else {
            return Ok((0, 0));
        };
        // The chunk's rows and its record are one transaction: one the replica rolled
        // back for a lock conflict with another loader (seen on a resumed 2 GB copy:
        // a changed table emptied and reloaded while other chunks of it load) is loaded
        // again, whole.
        let mut attempt = 0u32;
        loop {
            match copy_chunk(
                master,
                &mut self.replica,
                &job,
                self.piece_bytes,
                &self.character_set,
                Some(&plan.coordinates),
            )
            .await
            {
                Err(e) if attempt < LOCK_CONFLICT_RETRIES && is_lock_conflict(&e) => {
                    attempt += 1;
                    tracing::warn!(
                        table = %job.chunk.table.qualified(),
                        attempt,
                        error = %e,
                        "the replica rolled the chunk back for a lock conflict; loading it again"
                    );
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                r => return Ok(r?),
            }
        }
    }

    async fn snapshot_taken(&mut self, coordinates: &Coordinates) -> Result<(), ImageError> {
        self.state.on_snapshot(coordinates).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::load_order;

    #[test]
    fn deadlocks_and_lock_wait_timeouts_are_lock_conflicts() {
        use amsu_core::{AdapterError, ErrorKind};
        use amsu_mysql::MysqlError;
        let refused = |errno: u16| {
            super::BackupError::Mysql(MysqlError::Query {
                server: "mysql://r".into(),
                what: "loading t".into(),
                source: AdapterError::new(ErrorKind::Server { errno }, "refused")
                    .with_errno(Some(errno)),
            })
        };
        assert!(super::is_lock_conflict(&refused(1213)));
        assert!(super::is_lock_conflict(&refused(1205)));
        assert!(!super::is_lock_conflict(&refused(1062)));
        assert!(!super::is_lock_conflict(&super::BackupError::LoadStopped));
    }

    #[test]
    fn first_chunks_of_every_table_load_before_any_second_one() {
        // Table 1: three chunks of 30; table 2: one of 50; table 3: two of 40.
        let chunks = [(1, 30), (1, 30), (1, 30), (2, 50), (3, 40), (3, 40)];
        assert_eq!(load_order(&chunks), vec![3, 4, 0, 5, 1, 2]);
    }

    #[test]
    fn whole_tables_stay_largest_first() {
        let chunks = [(1, 10), (2, 30), (3, 20)];
        assert_eq!(load_order(&chunks), vec![1, 2, 0]);
        assert!(load_order(&[]).is_empty());
    }
}
