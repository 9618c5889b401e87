//! Resuming an interrupted streamed (`logical` or `outfile`) copy instead of starting it
//! again.
//!
//! Both methods record chunks the same way: `logical` in the transaction that streams the
//! chunk from the master, `outfile` in the transaction that loads the file the master
//! wrote for it inside the snapshot (the file holds exactly the chunk's rows at that
//! snapshot, so the claim below holds for it unchanged).
//!
//! # Records
//! Every chunk of a transactional table is loaded on the replica in one transaction, and
//! the same transaction inserts a row into `mysql.amsu_stream_progress` naming the table,
//! the chunk's row predicate (its `WHERE` on the integer chunk key, empty for a whole
//! table) and the binary log coordinates of the snapshot it was read in. So at any
//! instant, also after `kill -9`, the rows of a transactional table on the replica are
//! exactly the rows that satisfy one of its recorded predicates in the snapshot it was
//! read from. Non-transactional tables get no record (their rows cannot commit with it)
//! and are always copied again.
//!
//! # Resuming, and why it is exact
//! A rerun takes a new snapshot S2 and reads the master's binary log from the oldest
//! recorded snapshot S1 up to S2 ([`scan`]: `COM_BINLOG_DUMP` through
//! `amsu_mysql::binlog::BinlogReader`). With `binlog_format = ROW` every change
//! of a row in a transactional table is logged as a rows event, and every rows event
//! follows a table-map event naming its table; DDL is logged as a statement.
//!
//! *Claim:* a table with no table-map event and no DDL in the interval (S1, S2] has the
//! same content at S2 as at S1 (nothing changed it: every change would have been logged
//! in the interval). Hence every row on the replica that a recorded predicate selected at
//! S1 is the row the same predicate selects at S2, and the rows still missing are exactly
//! those that satisfy the new chunk's predicate *and none* of the recorded ones: the
//! rerun reads only `WHERE (chunk) AND NOT (recorded₁ OR recorded₂ …)` and records that
//! predicate in turn. Chunk keys are integer key columns (never NULL), so the predicates
//! are two-valued and the union is exact whatever chunk boundaries S2 plans. Records of
//! several runs carry different snapshots; scanning from the oldest one covers every
//! younger interval, so the claim holds for all of them.
//!
//! Tables touched in the interval have their rows and their records deleted in one
//! transaction on the replica and are copied whole at S2. The replica then holds every
//! table exactly as at S2, and replication starts from S2's coordinates as after a
//! fresh copy.
//!
//! # Where the proof does not hold (refusals, each with its reason and fallback)
//! - statement-based events in the interval (`binlog_format` STATEMENT or MIXED): they
//!   cannot name the rows they change → every table is copied again at S2;
//! - DDL in the interval (or an event amsu cannot classify): a table's definition may
//!   differ → amsu's own databases (`mysql.amsu_owned`, nothing else) are dropped and the
//!   copy starts over;
//! - binary logs of the interval purged (or an incident event): the interval is unknown
//!   → the same full fallback;
//! - non-transactional tables: always copied again (emptied first).
//!
//! # Objects created after the data
//! Views, routines, triggers and events are created after the data in every run (each
//! one dropped first when it exists). A run killed while creating them leaves some on
//! the replica; a rerun drops the triggers among them before it loads or deletes any row
//! ([`drop_triggers`]), so that no trigger fires on the replica during the copy.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use amsu_core::{Coordinates, Event, EventSink, Role, ServerAddr};
use amsu_mysql::conn::Session;
use amsu_mysql::{quote, MysqlError};

use crate::image::ImageError;
use crate::snapshot::ChunkJob;
use crate::BackupError;

/// The table of records (InnoDB, in the `mysql` schema: not a user database).
pub(crate) const TABLE: &str = "`mysql`.`amsu_stream_progress`";

/// `ER_NO_SUCH_TABLE`.
const NO_SUCH_TABLE: u16 = 1146;

/// A chunk recorded as loaded on the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// Database of its table.
    pub(crate) db: String,
    /// Its table.
    pub(crate) table: String,
    /// Its rows: a `WHERE …` clause, empty for the whole table.
    pub(crate) filter: String,
    /// The snapshot it was read in.
    pub(crate) at: Position,
}

/// A binary log position (file, byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    /// The file name.
    pub(crate) file: String,
    /// The offset in it.
    pub(crate) pos: u64,
}

impl Position {
    /// The sequence number of the file (`name.000042` → 42), for ordering.
    fn seq(&self) -> u64 {
        self.file
            .rsplit_once('.')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0)
    }

    /// `(file sequence, offset)`: positions of one server's binary log in order.
    fn key(&self) -> (u64, u64) {
        (self.seq(), self.pos)
    }
}

impl From<&Coordinates> for Position {
    fn from(c: &Coordinates) -> Self {
        Position {
            file: c.file.clone(),
            pos: c.position,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// Creates the record table when missing and deletes every record (a fresh copy).
pub(crate) async fn start_fresh(s: &mut Session) -> Result<(), MysqlError> {
    s.exec(
        &format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (\
             id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
             db VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL, filter TEXT NOT NULL, \
             rows_loaded BIGINT UNSIGNED NOT NULL, \
             binlog_file VARCHAR(512) NOT NULL, binlog_pos BIGINT UNSIGNED NOT NULL, \
             gtid TEXT NULL, \
             done_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
             KEY (db, tbl)) ENGINE=InnoDB"
        ),
        "creating the copy's progress records (mysql.amsu_stream_progress)",
    )
    .await?;
    s.exec(
        &format!("DELETE FROM {TABLE}"),
        "clearing old copy progress records",
    )
    .await
}

/// The statement that records a loaded chunk (run inside the chunk's transaction).
pub(crate) fn record_sql(
    db: &str,
    table: &str,
    filter: &str,
    rows: u64,
    at: &Coordinates,
) -> String {
    format!(
        "INSERT INTO {TABLE} (db, tbl, filter, rows_loaded, binlog_file, binlog_pos, gtid) \
         VALUES ({}, {}, {}, {rows}, {}, {}, {})",
        quote::string(db),
        quote::string(table),
        quote::string(filter),
        quote::string(&at.file),
        at.position,
        at.gtid
            .as_deref()
            .map_or_else(|| "NULL".to_string(), quote::string),
    )
}

/// Every recorded chunk; none when the table does not exist.
pub(crate) async fn recorded(s: &mut Session) -> Result<Vec<Recorded>, MysqlError> {
    let rows = match s
        .rows(
            &format!("SELECT db, tbl, filter, binlog_file, binlog_pos FROM {TABLE} ORDER BY id"),
            "reading the copy's progress records",
        )
        .await
    {
        Err(e) if e.server_code() == Some(NO_SUCH_TABLE) => return Ok(vec![]),
        r => r?,
    };
    Ok(rows
        .iter()
        .filter_map(|r| {
            let f = |i: usize| r.text(i);
            Some(Recorded {
                db: f(0)?,
                table: f(1)?,
                filter: f(2)?,
                at: Position {
                    file: f(3)?,
                    pos: f(4)?.parse().ok()?,
                },
            })
        })
        .collect())
}

/// Drops the record table (the copy is finished and journaled).
pub(crate) async fn forget(s: &mut Session) -> Result<(), MysqlError> {
    s.exec("SET SESSION sql_log_bin = 0", "disabling the binary log")
        .await?;
    s.exec(
        &format!("DROP TABLE IF EXISTS {TABLE}"),
        "dropping the copy's progress records",
    )
    .await
}

/// How a statement in the binary log bears on the proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementKind {
    /// Transaction control, accounts, comments, statistics: no table's rows or
    /// definition change (accounts are copied at the end of every run anyway).
    Harmless,
    /// Statement-based row changes: the rows cannot be named.
    RowChange,
    /// Anything else: a definition may have changed.
    Ddl,
}

/// Classifies the text of a query event.
pub(crate) fn classify(sql: &str) -> StatementKind {
    let words = leading_words(sql, 4);
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match w(0) {
        "" | "BEGIN" | "COMMIT" | "ROLLBACK" | "XA" | "SAVEPOINT" | "RELEASE" | "GRANT"
        | "REVOKE" | "FLUSH" | "ANALYZE" | "OPTIMIZE" => StatementKind::Harmless,
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "LOAD" | "CALL" | "DO" | "SELECT" | "WITH" => {
            StatementKind::RowChange
        }
        "SET" if w(1) == "PASSWORD" || w(1) == "DEFAULT" => StatementKind::Harmless,
        "CREATE" | "DROP" | "ALTER" | "RENAME" => {
            let object = if w(1) == "OR" { w(3) } else { w(1) };
            match object {
                "USER" | "ROLE" | "TEMPORARY" => StatementKind::Harmless,
                _ => StatementKind::Ddl,
            }
        }
        _ => StatementKind::Ddl,
    }
}

/// The first `n` words of `sql` in upper case, after comments (`/* */`, `#`, `-- `).
fn leading_words(sql: &str, n: usize) -> Vec<String> {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else if rest.starts_with('#') || rest.starts_with("-- ") {
            rest = rest.split_once('\n').map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .take(n)
        .map(|w| w.to_ascii_uppercase())
        .collect()
}

/// What the binary log holds between two snapshots.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interval {
    /// Tables named by a table-map event (their rows may have changed).
    pub(crate) touched: HashSet<(String, String)>,
    /// The first statement-based row change, when there was one.
    pub(crate) statement: Option<String>,
    /// The first DDL (or unclassifiable event), when there was one.
    pub(crate) ddl: Option<String>,
    /// Events read.
    pub(crate) events: u64,
}

impl Interval {
    fn merge(&mut self, other: Interval) {
        self.touched.extend(other.touched);
        self.statement = self.statement.take().or(other.statement);
        self.ddl = self.ddl.take().or(other.ddl);
        self.events += other.events;
    }
}

/// A short, single-line excerpt of a statement for a message.
fn excerpt(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one,
    }
}

/// A server id for the binary log reader that no real replica uses (high, varied).
fn reader_server_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    0xF000_0000 | ((nanos ^ std::process::id()) & 0x0FFF_FFFF)
}

/// Checks that the binary log still holds `from` (not purged); returns why not.
pub(crate) async fn purged(
    ctl: &mut Session,
    from: &Position,
) -> Result<Option<String>, MysqlError> {
    let logs = ctl
        .column("SHOW BINARY LOGS", "listing the master's binary logs")
        .await?;
    if logs.contains(&from.file) {
        Ok(None)
    } else {
        Ok(Some(format!(
            "the master's binary log {} (where the interrupted copy's snapshot was taken) \
             was purged, so the changes since then cannot be read",
            from.file
        )))
    }
}

/// Reads the master's binary log from `from` up to `to` and reports what it holds.
pub(crate) async fn scan(
    master: &ServerAddr,
    from: &Position,
    to: &Position,
) -> Result<Interval, BackupError> {
    let mut out = Interval::default();
    if from.key() >= to.key() {
        return Ok(out);
    }
    let what = format!("reading the master's binary log from {from} to {to}");
    let mut stream = amsu_mysql::binlog::BinlogReader::open(
        master,
        reader_server_id(),
        &from.file,
        from.pos,
        &what,
    )
    .await?;
    let mut file = from.file.clone();
    let to_seq = to.seq();
    let mut reached = false;
    let mut seen_format = false;
    while let Some(event) = stream.next().await? {
        out.events += 1;
        let kind = event.kind();
        let log_pos = event.log_pos();
        tracing::trace!(kind, log_pos, file = %file, "binlog event");
        match kind {
            // FORMAT_DESCRIPTION: checksums are known from here on.
            15 => seen_format = true,
            // ROTATE: the next file. The fake one that starts the stream names `from`'s
            // file, and comes before the format description that says whether events
            // end in a checksum (its name would keep the checksum's bytes): skipped.
            4 if seen_format => {
                if let Some(name) = event.rotate_name() {
                    file = name;
                }
            }
            // QUERY
            2 => {
                if let Some(sql) = event.query() {
                    match classify(&sql) {
                        StatementKind::Harmless => {}
                        StatementKind::RowChange => {
                            out.statement.get_or_insert_with(|| excerpt(&sql));
                        }
                        StatementKind::Ddl => {
                            out.ddl.get_or_insert_with(|| excerpt(&sql));
                        }
                    }
                } else {
                    out.ddl
                        .get_or_insert_with(|| "an unreadable query event".into());
                }
            }
            // TABLE_MAP
            19 => match event.table_map() {
                Some(table) => {
                    out.touched.insert(table);
                }
                None => {
                    out.ddl
                        .get_or_insert_with(|| "an unreadable table-map event".into());
                }
            },
            // Statement-based LOAD DATA.
            17 | 18 => {
                out.statement
                    .get_or_insert_with(|| "a statement-based LOAD DATA".into());
            }
            // INCIDENT: events may be missing.
            26 => {
                out.ddl
                    .get_or_insert_with(|| "an incident event (events may be lost)".into());
            }
            // MariaDB QUERY_COMPRESSED: a statement amsu does not decompress.
            165 => {
                out.ddl
                    .get_or_insert_with(|| "a compressed query event".into());
            }
            _ => {}
        }
        let seq = Position {
            file: file.clone(),
            pos: 0,
        }
        .seq();
        if seq > to_seq || (seq == to_seq && log_pos >= to.pos && log_pos != 0) {
            reached = true;
            break;
        }
    }
    let _ = stream.close().await;
    tracing::debug!(events = out.events, reached, "binlog read");
    if !reached {
        return Err(BackupError::Internal(format!(
            "the master's binary log ended before {to} while reading from {from}"
        )));
    }
    Ok(out)
}

/// Drops the triggers of `objects` on the replica before a resumed copy loads anything:
/// the interrupted run may have created them after its data, and a trigger would fire on
/// the rows loaded (or deleted) now, changing other tables. They are created again after
/// the data, as in every run. Only triggers the copy itself creates are dropped.
pub(crate) async fn drop_triggers(
    s: &mut Session,
    objects: &[crate::catalog::SchemaObject],
) -> Result<(), MysqlError> {
    for o in objects
        .iter()
        .filter(|o| o.kind == crate::catalog::ObjectKind::Trigger)
    {
        let q = quote::qualified(&o.db, &o.name);
        s.exec(
            &format!("DROP TRIGGER IF EXISTS {q}"),
            &format!("dropping trigger {q} until the resumed copy's data is loaded"),
        )
        .await?;
    }
    Ok(())
}

/// The state a rerun of an interrupted streamed copy (`logical` or `outfile`) starts
/// with: the interrupted run's records and what the binary log holds since the oldest of
/// them; or, where keeping them cannot be proven right (no record, the binary log purged
/// or unreadable, DDL since the snapshot), a warning saying why, amsu's own databases
/// (`mysql.amsu_owned`, nothing else) dropped, and a fresh state.
pub(crate) async fn resume_state(
    master: &ServerAddr,
    replica: &ServerAddr,
    events: Arc<dyn EventSink>,
) -> Result<StreamState, ImageError> {
    let mut rs = Session::open(replica).await?;
    crate::restore::prepare_session(&mut rs).await?;
    let recorded = recorded(&mut rs).await?;
    let reason = match StreamState::oldest(&recorded) {
        None => "no chunk of it was recorded as loaded".to_string(),
        Some(oldest) => {
            let mut ctl = Session::open(master).await?;
            match purged(&mut ctl, &oldest).await? {
                Some(why) => why,
                None => {
                    let now = amsu_mysql::binlog_position(&mut ctl).await?;
                    let now = Position::from(&now);
                    match scan(master, &oldest, &now).await {
                        // E.g. no REPLICATION SLAVE privilege for the admin user.
                        Err(e) => format!(
                            "the master's binary log since its snapshot could not be read ({e})"
                        ),
                        Ok(before) if before.ddl.is_some() => format!(
                            "DDL ran on the master since its snapshot ({}), so table definitions may differ",
                            before.ddl.unwrap_or_default()
                        ),
                        Ok(before) => {
                            return Ok(StreamState::resumed(
                                master.clone(),
                                replica.clone(),
                                events,
                                recorded,
                                before,
                                now,
                            ));
                        }
                    }
                }
            }
        }
    };
    let message = format!(
        "cannot keep the interrupted copy: {reason}; dropping the databases amsu created \
         (mysql.amsu_owned) and copying from the start"
    );
    tracing::warn!("{message}");
    events.emit(&Event::Warning {
        server: Some(Role::Replica),
        message,
    });
    for db in amsu_mysql::owned::databases(&mut rs).await? {
        let q = quote::ident(&db);
        rs.exec(
            &format!("DROP DATABASE IF EXISTS {q}"),
            &format!("dropping amsu's own database {q}"),
        )
        .await?;
    }
    Ok(StreamState::fresh(master.clone(), replica.clone(), events))
}

/// The state of one logical copy: the records of an interrupted run (none for a fresh
/// copy), and once the snapshot is taken, which of them are kept.
pub(crate) struct StreamState {
    master: ServerAddr,
    replica: ServerAddr,
    /// True when this run resumes an interrupted copy.
    resuming: bool,
    /// The records the run started with.
    recorded: Vec<Recorded>,
    /// What the binary log held from the oldest record up to `scanned_to` (read before
    /// the catalog).
    before: Interval,
    /// Where `before` ends.
    scanned_to: Option<Position>,
    events: Arc<dyn EventSink>,
    plan: tokio::sync::OnceCell<Plan>,
}

impl std::fmt::Debug for StreamState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamState")
            .field("resuming", &self.resuming)
            .field("recorded", &self.recorded.len())
            .finish_non_exhaustive()
    }
}

/// What a run keeps once its snapshot is taken.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The snapshot's coordinates (every chunk of this run is recorded with them).
    pub(crate) coordinates: Coordinates,
    /// The recorded predicates kept, per table.
    kept: HashMap<(String, String), Vec<String>>,
}

impl StreamState {
    /// A fresh copy: nothing kept.
    pub(crate) fn fresh(
        master: ServerAddr,
        replica: ServerAddr,
        events: Arc<dyn EventSink>,
    ) -> Self {
        StreamState {
            master,
            replica,
            resuming: false,
            recorded: vec![],
            before: Interval::default(),
            scanned_to: None,
            events,
            plan: tokio::sync::OnceCell::new(),
        }
    }

    /// A resumed copy with the interrupted run's `recorded` chunks and what the binary
    /// log held from the oldest of them up to `scanned_to`.
    pub(crate) fn resumed(
        master: ServerAddr,
        replica: ServerAddr,
        events: Arc<dyn EventSink>,
        recorded: Vec<Recorded>,
        before: Interval,
        scanned_to: Position,
    ) -> Self {
        StreamState {
            resuming: true,
            recorded,
            before,
            scanned_to: Some(scanned_to),
            ..StreamState::fresh(master, replica, events)
        }
    }

    /// True when this run resumes an interrupted copy.
    pub(crate) fn resuming(&self) -> bool {
        self.resuming
    }

    /// The oldest recorded snapshot.
    pub(crate) fn oldest(recorded: &[Recorded]) -> Option<Position> {
        recorded
            .iter()
            .map(|r| r.at.clone())
            .min_by_key(Position::key)
    }

    /// Called by every worker once the snapshot is taken; the first call decides (reads
    /// the rest of the interval, empties the tables that must be copied again).
    pub(crate) async fn on_snapshot(&self, coordinates: &Coordinates) -> Result<&Plan, ImageError> {
        self.plan.get_or_try_init(|| self.decide(coordinates)).await
    }

    /// The plan, once decided.
    pub(crate) fn plan(&self) -> Option<&Plan> {
        self.plan.get()
    }

    async fn decide(&self, coordinates: &Coordinates) -> Result<Plan, ImageError> {
        let mut plan = Plan {
            coordinates: coordinates.clone(),
            kept: HashMap::new(),
        };
        if !self.resuming || self.recorded.is_empty() {
            return Ok(plan);
        }
        let mut interval = self.before.clone();
        if let Some(from) = &self.scanned_to {
            interval.merge(scan(&self.master, from, &coordinates.into()).await?);
        }
        if let Some(ddl) = &interval.ddl {
            // The catalog may already be newer than the replica's tables.
            return Err(BackupError::Unsupported(format!(
                "a resume while the master's schema changes (DDL after the interrupted copy: {ddl}); run amsu again"
            ))
            .into());
        }
        let mut by_table: HashMap<(String, String), Vec<String>> = HashMap::new();
        for r in &self.recorded {
            by_table
                .entry((r.db.clone(), r.table.clone()))
                .or_default()
                .push(r.filter.clone());
        }
        let mut discard: Vec<(String, String)> = Vec::new();
        if let Some(stmt) = &interval.statement {
            self.warn(format!(
                "cannot keep the interrupted copy's chunks: the binary log since its snapshot holds \
                 statement-based changes (binlog_format STATEMENT or MIXED; e.g. {stmt}), which \
                 cannot name the rows they change; copying every table again"
            ));
            discard.extend(by_table.keys().cloned());
        } else {
            for key in by_table.keys() {
                if interval.touched.contains(key) {
                    discard.push(key.clone());
                }
            }
            if !discard.is_empty() {
                let mut names: Vec<String> = discard
                    .iter()
                    .map(|(d, t)| quote::qualified(d, t))
                    .collect();
                names.sort();
                self.warn(format!(
                    "tables changed on the master since the interrupted copy are copied again: {}",
                    names.join(", ")
                ));
            }
        }
        let mut rs = Session::open(&self.replica).await?;
        crate::restore::prepare_session(&mut rs).await?;
        for (db, table) in &discard {
            let q = quote::qualified(db, table);
            rs.exec("START TRANSACTION", "START TRANSACTION").await?;
            let r = async {
                rs.exec(
                    &format!("DELETE FROM {q}"),
                    &format!("emptying {q} (changed since the interrupted copy)"),
                )
                .await?;
                rs.exec(
                    &format!(
                        "DELETE FROM {TABLE} WHERE db = {} AND tbl = {}",
                        quote::string(db),
                        quote::string(table)
                    ),
                    "deleting the progress records of a table copied again",
                )
                .await
            }
            .await;
            match r {
                Ok(()) => rs.exec("COMMIT", "COMMIT").await?,
                Err(e) => {
                    let _ = rs.exec("ROLLBACK", "ROLLBACK").await;
                    return Err(e.into());
                }
            }
            by_table.remove(&(db.clone(), table.clone()));
        }
        let chunks: usize = by_table.values().map(Vec::len).sum();
        tracing::info!(
            kept_chunks = chunks,
            kept_tables = by_table.len(),
            discarded_tables = discard.len(),
            binlog_events = interval.events,
            "resuming the interrupted copy at the new snapshot"
        );
        self.events.emit(&Event::Warning {
            server: Some(Role::Replica),
            message: format!(
                "resuming the interrupted copy: {chunks} chunks of {} tables kept (unchanged on the master since their snapshot), {} tables copied again",
                by_table.len(),
                discard.len()
            ),
        });
        plan.kept = by_table;
        Ok(plan)
    }

    /// Reports `message` as a warning (events and log).
    pub(crate) fn warn(&self, message: String) {
        tracing::warn!("{message}");
        self.events.emit(&Event::Warning {
            server: Some(Role::Master),
            message,
        });
    }
}

impl Plan {
    /// The part of `job` still to copy: `None` when the replica holds all of its rows,
    /// else the job with its predicate narrowed to the rows no kept record covers.
    pub(crate) fn remaining(&self, job: &ChunkJob) -> Option<ChunkJob> {
        let t = &job.chunk.table;
        let Some(kept) = self.kept.get(&(t.db.clone(), t.name.clone())) else {
            return Some(job.clone());
        };
        let filter = narrow(&job.chunk.filter, kept)?;
        let mut out = job.clone();
        out.chunk.filter = filter;
        Some(out)
    }
}

/// `chunk AND NOT (kept₁ OR kept₂ …)` as a `WHERE` clause; `None` when a kept predicate
/// is the whole table.
pub(crate) fn narrow(chunk: &str, kept: &[String]) -> Option<String> {
    let cond = |f: &str| {
        f.trim()
            .strip_prefix("WHERE ")
            .map(|c| c.trim().to_string())
    };
    let mut covered = Vec::new();
    for k in kept {
        match cond(k) {
            None => return None,
            Some(c) => covered.push(format!("({c})")),
        }
    }
    if covered.is_empty() {
        return Some(chunk.to_string());
    }
    let not = format!("NOT ({})", covered.join(" OR "));
    Some(match cond(chunk) {
        Some(c) => format!("WHERE ({c}) AND {not}"),
        None => format!("WHERE {not}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_classified_for_the_proof() {
        use StatementKind::*;
        for (sql, kind) in [
            ("BEGIN", Harmless),
            ("COMMIT", Harmless),
            ("# Dummy event replacing event type 160", Harmless),
            ("CREATE USER 'r'@'%' IDENTIFIED BY 'x'", Harmless),
            (
                "/* comment */ GRANT REPLICATION SLAVE ON *.* TO 'r'@'%'",
                Harmless,
            ),
            ("DROP USER IF EXISTS 'r'@'%'", Harmless),
            ("CREATE OR REPLACE USER 'r'", Harmless),
            ("DROP TEMPORARY TABLE IF EXISTS `t`", Harmless),
            ("insert into t values (1)", RowChange),
            ("UPDATE t SET a = 1", RowChange),
            ("ALTER TABLE t ADD c INT", Ddl),
            ("CREATE TABLE t (a INT)", Ddl),
            ("CREATE OR REPLACE TABLE t (a INT)", Ddl),
            ("TRUNCATE TABLE t", Ddl),
            ("DROP TABLE `t` /* generated by server */", Ddl),
            ("RENAME TABLE a TO b", Ddl),
        ] {
            assert_eq!(classify(sql), kind, "{sql}");
        }
    }

    #[test]
    fn narrowing_excludes_every_recorded_range() {
        let kept = vec![
            "WHERE `id` < 10".to_string(),
            "WHERE `id` >= 20 AND `id` < 30".to_string(),
        ];
        assert_eq!(
            narrow("WHERE `id` >= 5 AND `id` < 25", &kept).as_deref(),
            Some("WHERE (`id` >= 5 AND `id` < 25) AND NOT ((`id` < 10) OR (`id` >= 20 AND `id` < 30))")
        );
        assert_eq!(
            narrow("", &kept).as_deref(),
            Some("WHERE NOT ((`id` < 10) OR (`id` >= 20 AND `id` < 30))")
        );
        assert_eq!(narrow("WHERE `id` < 3", &[String::new()]), None);
        assert_eq!(
            narrow("WHERE `id` < 3", &[]).as_deref(),
            Some("WHERE `id` < 3")
        );
    }

    #[test]
    fn positions_order_by_file_sequence_then_offset() {
        let p = |f: &str, pos| Position {
            file: f.into(),
            pos,
        };
        assert!(p("bin.000010", 4).key() > p("bin.000009", 900).key());
        assert_eq!(
            StreamState::oldest(&[
                Recorded {
                    db: "d".into(),
                    table: "t".into(),
                    filter: String::new(),
                    at: p("bin.000003", 50)
                },
                Recorded {
                    db: "d".into(),
                    table: "t".into(),
                    filter: String::new(),
                    at: p("bin.000002", 999)
                },
            ]),
            Some(p("bin.000002", 999))
        );
    }

    #[test]
    fn records_quote_their_values() {
        let at = Coordinates::new("bin.000001", 42).with_gtid(Some("0-1-5".into()));
        assert_eq!(
            record_sql("d", "t'x", "WHERE `id` < 10", 7, &at),
            "INSERT INTO `mysql`.`amsu_stream_progress` (db, tbl, filter, rows_loaded, binlog_file, binlog_pos, gtid) VALUES ('d', 't''x', 'WHERE `id` < 10', 7, 'bin.000001', 42, '0-1-5')"
        );
    }
}
