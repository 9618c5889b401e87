//! Loading chunk files into the replica: N sessions take verified chunk files from a
//! queue as they become ready (fetched, checked) and load each with `LOAD DATA LOCAL
//! INFILE` in its own transaction, rolled back on any error.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use amsu_core::{EventSink, ServerAddr};
use amsu_mysql::conn::Session;
use amsu_mysql::{quote, MysqlError};
use bytes::Bytes;
use tokio::sync::{mpsc, Mutex};

use crate::catalog::{Table, TableKind};
use crate::image::{ImageError, SessionSettings};
use crate::meter::Meter;
use crate::{restore, BackupError};

/// Bytes per packet sent to the replica.
const PIECE: usize = 1 << 20;

/// A chunk file ready to load (already verified).
#[derive(Debug, Clone)]
pub(crate) struct ReadyChunk {
    pub(crate) local: PathBuf,
    pub(crate) table: usize,
    pub(crate) zstd: bool,
    /// Delete the local file once it is loaded (a fetched copy).
    pub(crate) remove_after: bool,
    /// Record the chunk as loaded, in its transaction.
    pub(crate) record: Option<ChunkRecord>,
    /// Empty the table first: a non-transactional table whose load was interrupted.
    pub(crate) clear_first: bool,
    /// Its weight for the progress estimate (the file's size).
    pub(crate) weight: u64,
}

/// How a loaded chunk is recorded on the replica, in the transaction that loads it.
#[derive(Debug, Clone)]
pub(crate) enum ChunkRecord {
    /// A chunk of an image: (image id, chunk path), see [`crate::progress`].
    Image(Arc<str>, String),
    /// A chunk of a streamed copy: its row predicate and its snapshot, see
    /// [`crate::stream_resume`].
    Stream {
        /// The chunk's `WHERE` clause (empty for the whole table).
        filter: String,
        /// The snapshot it was read in.
        at: amsu_core::Coordinates,
    },
}

/// Opens `n` loading sessions on the replica with the image's session settings.
pub(crate) async fn open_sessions(
    replica: &ServerAddr,
    n: usize,
    settings: &SessionSettings,
) -> Result<Vec<Session>, ImageError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let mut s = Session::open(replica).await?;
        apply_settings(&mut s, settings).await?;
        for sql in [
            "SET SESSION net_read_timeout = 3600",
            // Every warning of a chunk is checked (see restore::check_load_warnings).
            "SET SESSION max_error_count = 65535",
        ] {
            s.exec(sql, sql).await?;
        }
        out.push(s);
    }
    Ok(out)
}

/// Lets a loading session take InnoDB's bulk-insert path (MariaDB ≥ 10.6, MDEV-515 and
/// MDEV-24818): with `unique_checks = 0` and `foreign_key_checks = 0` (already off in
/// every loading session), the first insert into an empty InnoDB table in a transaction
/// writes one undo record for the table and builds its indexes by sorting when the
/// transaction commits; the server uses the ordinary path for anything else (a table
/// that is not empty, system-versioned, with a spatial index). The rows come from unique
/// keys of one consistent snapshot, so skipping uniqueness checks cannot let a duplicate
/// in that the master does not hold; on the bulk path a duplicate still fails the whole
/// chunk at commit, and deferred unique keys are checked when they are added. Such an
/// insert locks its table until it commits, so other sessions loading the same table
/// wait for it: they are allowed to wait as long as a chunk may take.
pub(crate) async fn enable_bulk_load(s: &mut Session) -> Result<(), MysqlError> {
    for sql in [
        "SET SESSION unique_checks = 0",
        "SET SESSION innodb_lock_wait_timeout = 3600",
    ] {
        s.exec(sql, sql).await?;
    }
    Ok(())
}

/// Prepares a loading session and applies the image's time zone and sql_mode (as quoted
/// values: an image never supplies SQL text to run here).
pub(crate) async fn apply_settings(
    s: &mut Session,
    settings: &SessionSettings,
) -> Result<(), MysqlError> {
    restore::prepare_session(s).await?;
    s.exec(
        &format!(
            "SET SESSION time_zone = {}",
            quote::string(&settings.time_zone)
        ),
        "setting the image's time_zone",
    )
    .await?;
    s.exec(
        &format!(
            "SET SESSION sql_mode = {}",
            quote::string(&settings.sql_mode)
        ),
        "setting the image's sql_mode",
    )
    .await
}

/// The `LOAD DATA` statement for one chunk of `t` in the encode.rs format.
pub(crate) fn load_sql(t: &Table, character_set: &str) -> String {
    let mut targets = Vec::new();
    let mut sets = Vec::new();
    for (i, c) in t.copied_columns().enumerate() {
        let (target, set) = c.load_target(i);
        targets.push(target);
        sets.extend(set);
    }
    // History rows keep the row start and end the master gave them.
    let history = if t.kind == TableKind::SystemVersioned {
        "SET STATEMENT system_versioning_insert_history = 1 FOR "
    } else {
        ""
    };
    format!(
        "{history}LOAD DATA LOCAL INFILE 'amsu-chunk' INTO TABLE {} CHARACTER SET {} \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({}){}",
        t.qualified(),
        quote::ident(character_set),
        targets.join(", "),
        if sets.is_empty() {
            String::new()
        } else {
            format!(" SET {}", sets.join(", "))
        }
    )
}

/// Loads one chunk file in one transaction. Returns rows and (uncompressed) bytes.
pub(crate) async fn load_file(
    s: &mut Session,
    t: &Table,
    chunk: &ReadyChunk,
    settings: &SessionSettings,
) -> Result<(u64, u64), ImageError> {
    let sql = load_sql(t, &settings.character_set);
    let what = format!("loading {} from {}", t.qualified(), chunk.local.display());
    if chunk.clear_first {
        s.exec(
            &format!("DELETE FROM {}", t.qualified()),
            &format!("emptying {} (its load was interrupted)", t.qualified()),
        )
        .await?;
    }
    s.exec("START TRANSACTION", "START TRANSACTION").await?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let path = chunk.local.clone();
    let zstd = chunk.zstd;
    let reader = tokio::task::spawn_blocking(move || -> Result<u64, ImageError> {
        let file = std::fs::File::open(&path).map_err(|e| ImageError::io(&path, e))?;
        let mut input: Box<dyn Read> = if zstd {
            Box::new(zstd::Decoder::new(file).map_err(|e| ImageError::io(&path, e))?)
        } else {
            Box::new(file)
        };
        let mut total = 0u64;
        loop {
            let mut buf = vec![0u8; PIECE];
            let mut filled = 0;
            while filled < PIECE {
                match input.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx
                            .blocking_send(Err(std::io::Error::other("reading the chunk failed")));
                        return Err(ImageError::io(&path, e));
                    }
                }
            }
            if filled == 0 {
                return Ok(total);
            }
            buf.truncate(filled);
            total += filled as u64;
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return Err(BackupError::LoadStopped.into());
            }
        }
    });
    let loaded = s.load_local(&sql, &what, rx).await;
    let rows = s.affected_rows();
    let read = reader
        .await
        .map_err(|e| BackupError::Internal(e.to_string()))?;
    match (loaded, read) {
        (Ok(()), Ok(bytes)) => {
            // A warning means a value was changed on the way in: never keep that.
            if let Err(e) = crate::restore::check_load_warnings(s, t, &what).await {
                let _ = s.exec("ROLLBACK", "ROLLBACK").await;
                return Err(e.into());
            }
            if let Some(record) = &chunk.record {
                let sql = match record {
                    ChunkRecord::Image(image, path) => {
                        crate::progress::record_sql(image, path, rows)
                    }
                    ChunkRecord::Stream { filter, at } => {
                        crate::stream_resume::record_sql(&t.db, &t.name, filter, rows, at)
                    }
                };
                if let Err(e) = s.exec(&sql, "recording the chunk as loaded").await {
                    let _ = s.exec("ROLLBACK", "ROLLBACK").await;
                    return Err(e.into());
                }
            }
            s.exec("COMMIT", "COMMIT").await?;
            Ok((rows, bytes))
        }
        (loaded, read) => {
            let _ = s.exec("ROLLBACK", "ROLLBACK").await;
            if let Err(e) = loaded {
                return Err(e.into());
            }
            Err(read.expect_err("one side failed"))
        }
    }
}

/// Loads every chunk that arrives on `ready` with the given sessions in parallel, until
/// the channel closes. Returns the sessions and the rows and bytes loaded, or the first
/// error (the other loaders stop after their current chunk). With `progress` (a meter, and
/// the chunks to load per table index) a progress event follows every chunk.
pub(crate) async fn load_all(
    sessions: Vec<Session>,
    tables: Arc<Vec<Table>>,
    settings: Arc<SessionSettings>,
    ready: mpsc::Receiver<ReadyChunk>,
    events: Arc<dyn EventSink>,
    progress: Option<(Arc<Meter>, HashMap<usize, u64>)>,
) -> Result<(Vec<Session>, u64, u64), ImageError> {
    let progress = progress.map(|(m, e)| (m, Arc::new(std::sync::Mutex::new(e))));
    let ready = Arc::new(Mutex::new(ready));
    let rows = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for mut s in sessions {
        let progress = progress.clone();
        let (ready, rows, bytes, failed, tables, settings, events) = (
            ready.clone(),
            rows.clone(),
            bytes.clone(),
            failed.clone(),
            tables.clone(),
            settings.clone(),
            events.clone(),
        );
        handles.push(tokio::spawn(async move {
            loop {
                if failed.load(Ordering::Relaxed) {
                    return (s, Ok(()));
                }
                let Some(c) = ready.lock().await.recv().await else {
                    return (s, Ok(()));
                };
                let t = &tables[c.table];
                match load_file(&mut s, t, &c, &settings).await {
                    Ok((r, b)) => {
                        if c.remove_after {
                            let _ = tokio::fs::remove_file(&c.local).await;
                        }
                        rows.fetch_add(r, Ordering::Relaxed);
                        bytes.fetch_add(b, Ordering::Relaxed);
                        if let Some((meter, expected)) = &progress {
                            let finished = {
                                let mut left = expected.lock().expect("lock");
                                let l = left.entry(c.table).or_insert(1);
                                *l = l.saturating_sub(1);
                                *l == 0
                            };
                            events.emit(&meter.chunk_done(r, b, c.weight, finished));
                        }
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        // Unblock a producer waiting on a full queue.
                        ready.lock().await.close();
                        return (s, Err(e));
                    }
                }
            }
        }));
    }
    let mut out = Vec::new();
    let mut first_err = None;
    for h in handles {
        let (s, r) = h.await.map_err(|e| BackupError::Internal(e.to_string()))?;
        out.push(s);
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok((
            out,
            rows.load(Ordering::Relaxed),
            bytes.load(Ordering::Relaxed),
        )),
    }
}
