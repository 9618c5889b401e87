//! The `outfile` method: inside the consistent snapshot the master itself writes every
//! chunk with `SELECT … INTO OUTFILE` into a run directory under its `secure_file_priv`;
//! the replica side fetches each chunk over FTP/FTPS as soon as it is written (the next
//! one is fetched while the previous one loads) and loads it with `LOAD DATA LOCAL
//! INFILE`. The run directory is laid out as an image (`data/NNNNNN.tsv`), and with
//! `keep_image` amsu uploads `schema.json` and `manifest.json` so other replicas can be
//! seeded from it; otherwise it is deleted over FTP afterwards.
//!
//! An interrupted copy resumes like a `logical` one (reading the binary log since the interrupted snapshot): each
//! chunk's file is loaded in one transaction with its record (predicate and snapshot), and
//! a rerun keeps the recorded chunks of tables the binary log shows unchanged since their
//! snapshot, writing only the rows no record covers. With `keep_image` the copy does not
//! resume (the kept image must hold every chunk).

use amsu_core::{FindingCode, Remedy};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amsu_core::manifest::FileEntry;
use amsu_core::{
    BoxError, Coordinates, CopyReport, DataCopier, EventSink, Finding, Preflight, Role, ServerAddr,
    Transport,
};
use amsu_mysql::conn::Session;
use amsu_mysql::quote;
use amsu_transfer::{sha256_file, FtpTransport, RetryPolicy, TransferError};
use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::image::{chunk_path, ChunkRef, ImageError, ImageSchema, ImageWriter, DATA_DIR};
use crate::load::{self, ChunkRecord, ReadyChunk};
use crate::restore;
use crate::snapshot::{self, Catalog, ChunkJob, ChunkSink};
use crate::stream_resume::{self, StreamState};

/// The `outfile` copy from one master into one replica over an FTP endpoint that serves
/// the master's `secure_file_priv` directory.
pub struct OutfileCopy {
    master: ServerAddr,
    replica: ServerAddr,
    ftp: Arc<FtpTransport>,
    threads: usize,
    chunk_bytes: u64,
    keep_image: bool,
    work_dir: Option<PathBuf>,
    retry: RetryPolicy,
    run_dir: Mutex<Option<String>>,
}

impl std::fmt::Debug for OutfileCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutfileCopy")
            .field("master", &self.master)
            .field("replica", &self.replica)
            .field("ftp", &self.ftp)
            .field("threads", &self.threads)
            .field("keep_image", &self.keep_image)
            .finish_non_exhaustive()
    }
}

/// What the preflight found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutfileTarget {
    /// The master's `secure_file_priv` directory (no trailing `/`).
    pub secure_file_priv: String,
}

impl OutfileCopy {
    /// A copy from `master` into `replica` (admin users) through `ftp`, whose root is the
    /// master's `secure_file_priv` directory. Defaults: 2 threads, chunks of about 32 MiB,
    /// the image removed afterwards, fetched files under the system temp directory.
    pub fn new(master: ServerAddr, replica: ServerAddr, ftp: Arc<FtpTransport>) -> Self {
        OutfileCopy {
            master,
            replica,
            ftp,
            threads: 2,
            chunk_bytes: 32 << 20,
            keep_image: false,
            work_dir: None,
            retry: RetryPolicy::default(),
            run_dir: Mutex::new(None),
        }
    }

    /// Parallel connections on each server.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Target size of a chunk.
    pub fn chunk_bytes(mut self, bytes: u64) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// Keep the run directory on the master as a complete image (schema and manifest
    /// uploaded) instead of deleting it.
    pub fn keep_image(mut self, keep: bool) -> Self {
        self.keep_image = keep;
        self
    }

    /// Local directory for fetched chunks (default: a new directory under the system
    /// temp directory).
    pub fn work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// Retries of a cut transfer.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The run directory (relative to the FTP root) of the last run, once it started.
    pub fn run_dir(&self) -> Option<String> {
        self.run_dir.lock().expect("lock").clone()
    }

    /// Checks the master side: FILE privilege and `secure_file_priv`. Read-only.
    pub async fn check_master(&self, ctl: &mut Session) -> Result<OutfileTarget, ImageError> {
        let has_file = ctl
            .column(
                "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'FILE' \
                 AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
                 SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')",
                "checking the FILE privilege",
            )
            .await?;
        if has_file.first().map(String::as_str) != Some("1") {
            return Err(ImageError::Outfile(format!(
                "the master user {} lacks the FILE privilege that SELECT … INTO OUTFILE needs \
                 (GRANT FILE ON *.* TO it)",
                self.master.user
            )));
        }
        let row = ctl
            .rows(
                "SELECT @@global.secure_file_priv",
                "reading secure_file_priv",
            )
            .await?;
        let sfp = row.first().and_then(|r| r.text(0));
        match sfp {
            None => Err(ImageError::Outfile(
                "secure_file_priv is NULL on the master: INTO OUTFILE is disabled; set \
                 secure_file_priv = <dir served by FTP> under [mysqld] and restart"
                    .into(),
            )),
            Some(d) if d.trim_end_matches('/').is_empty() => Err(ImageError::Outfile(
                "secure_file_priv is empty (any directory): amsu needs it to name the \
                 directory the FTP endpoint serves; set secure_file_priv = <that dir>"
                    .into(),
            )),
            Some(d) => Ok(OutfileTarget {
                secure_file_priv: d.trim_end_matches('/').to_string(),
            }),
        }
    }

    /// Checks that what the master writes under `run_dir` appears on the FTP endpoint: a
    /// marker written with `INTO OUTFILE` is fetched and compared, then deleted.
    async fn check_endpoint(
        &self,
        ctl: &mut Session,
        target: &OutfileTarget,
        run_dir: &str,
        work: &Path,
    ) -> Result<(), ImageError> {
        let token = format!("amsu-marker-{}", unique());
        let remote = format!("{run_dir}/marker.txt");
        let server_path = format!("{}/{remote}", target.secure_file_priv);
        ctl.exec(
            &format!(
                "SELECT {} INTO OUTFILE {}",
                quote::string(&token),
                quote::string(&server_path)
            ),
            "writing the marker file with INTO OUTFILE",
        )
        .await
        .map_err(|e| {
            ImageError::Outfile(format!(
                "the master cannot write {server_path} (is the directory writable by mysqld?): {e}"
            ))
        })?;
        let local = work.join("marker.txt");
        let _ = tokio::fs::remove_file(&local).await;
        let fetched = self.ftp.fetch(&remote, 0, &local).await;
        let _ = self.ftp.delete(&remote).await;
        fetched.map_err(|e| {
            ImageError::Outfile(format!(
                "the FTP endpoint does not serve the master's secure_file_priv ({}): the marker \
                 {remote} written by the master cannot be fetched: {}",
                target.secure_file_priv,
                TransferError::from_boxed(e)
            ))
        })?;
        let got = tokio::fs::read_to_string(&local)
            .await
            .map_err(|e| ImageError::io(&local, e))?;
        let _ = tokio::fs::remove_file(&local).await;
        if got.trim_end() != token {
            return Err(ImageError::Outfile(format!(
                "the FTP endpoint serves another directory than the master's secure_file_priv ({}): \
                 the marker's contents differ",
                target.secure_file_priv
            )));
        }
        Ok(())
    }

    /// Runs the copy from the start.
    pub async fn run(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, ImageError> {
        let state = StreamState::fresh(self.master.clone(), self.replica.clone(), events.clone());
        self.run_with(events, Arc::new(state)).await
    }

    /// Resumes an interrupted copy (reading the binary log since the interrupted snapshot), or starts over (dropping
    /// only amsu's own databases) where keeping its chunks cannot be proven right.
    pub async fn resume(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, ImageError> {
        let state =
            stream_resume::resume_state(&self.master, &self.replica, events.clone()).await?;
        self.run_with(events, Arc::new(state)).await
    }

    async fn run_with(
        &self,
        events: Arc<dyn EventSink>,
        state: Arc<StreamState>,
    ) -> Result<CopyReport, ImageError> {
        let mut ctl = Session::open(&self.master).await?;
        let target = self.check_master(&mut ctl).await?;
        let run_dir = format!("amsu-{}", unique());
        *self.run_dir.lock().expect("lock") = Some(run_dir.clone());
        let work = match &self.work_dir {
            Some(d) => d.join(&run_dir),
            None => std::env::temp_dir().join(&run_dir),
        };
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| ImageError::io(&work, e))?;
        let data_dir = format!("{run_dir}/{DATA_DIR}");
        self.ftp
            .mkdir(&data_dir)
            .await
            .map_err(TransferError::from_boxed)?;
        let result = self
            .copy_into(&mut ctl, &target, &run_dir, &work, events, state)
            .await;
        if !self.keep_image || result.is_err() {
            self.remove_run_dir(&run_dir).await;
        }
        let _ = tokio::fs::remove_dir_all(&work).await;
        result
    }

    async fn copy_into(
        &self,
        ctl: &mut Session,
        target: &OutfileTarget,
        run_dir: &str,
        work: &Path,
        events: Arc<dyn EventSink>,
        state: Arc<StreamState>,
    ) -> Result<CopyReport, ImageError> {
        self.check_endpoint(ctl, target, run_dir, work).await?;
        let cat = Catalog::read(
            &self.master,
            ctl,
            self.threads,
            snapshot::BUSY_WAIT,
            &events,
        )
        .await?;
        let settings = snapshot::dump_settings();
        let mut rs = Session::open(&self.replica).await?;
        load::apply_settings(&mut rs, &settings).await?;
        let existing = if state.resuming() {
            stream_resume::drop_triggers(&mut rs, &cat.objects).await?;
            restore::existing_tables(&mut rs, &cat.tables).await?
        } else {
            stream_resume::start_fresh(&mut rs).await?;
            std::collections::HashSet::new()
        };
        restore::create_databases(&mut rs, &cat.databases).await?;
        let deferred = restore::create_tables(&mut rs, &cat.tables, &existing).await?;
        let sessions = load::open_sessions(&self.replica, self.threads, &settings).await?;

        // Written chunks → fetcher → loaders. The master never waits for the replica.
        let (written_tx, written_rx) = mpsc::unbounded_channel::<Written>();
        let (ready_tx, ready_rx) = mpsc::channel::<ReadyChunk>(1);
        let sinks = (0..self.threads)
            .map(|_| OutfileSink {
                dir: format!("{}/{run_dir}", target.secure_file_priv),
                written: written_tx.clone(),
                state: state.clone(),
                record: !self.keep_image,
            })
            .collect();
        drop(written_tx);
        let fetched = Arc::new(Mutex::new(Vec::<(ChunkRef, FileEntry)>::new()));
        let fetcher = self.fetch_chunks(run_dir, work, written_rx, ready_tx, fetched.clone());
        let loaders = load::load_all(
            sessions,
            Arc::new(cat.tables.clone()),
            Arc::new(settings.clone()),
            ready_rx,
            events.clone(),
            None, // the dump reports progress
        );
        // The sinks hold the fetcher's channel: drop them as soon as the dump ends.
        let dump = async {
            snapshot::dump(&self.master, ctl, &cat, sinks, self.chunk_bytes, &events)
                .await
                .map(|(dumped, _sinks)| dumped)
        };
        let (dumped, fetched_r, loaded) = tokio::join!(dump, fetcher, loaders);
        // The first cause: a load error makes the fetcher and the dump stop, a fetch error
        // the dump.
        let (sessions, rows, bytes) = loaded?;
        fetched_r?;
        let dumped = dumped?;
        restore::add_deferred_keys(sessions, deferred).await?;
        restore::restore_sequences(&mut rs, &dumped.sequences).await?;

        restore::create_objects_and_accounts(
            &mut rs,
            &cat.objects,
            &dumped.accounts,
            cat.info.flavor,
        )
        .await?;

        if self.keep_image {
            let mut done = std::mem::take(&mut *fetched.lock().expect("lock"));
            done.sort_by(|a, b| a.0.path.cmp(&b.0.path));
            let schema = ImageSchema {
                session: settings,
                databases: cat.databases.clone(),
                tables: cat.tables.clone(),
                objects: cat.objects.clone(),
                accounts: dumped.accounts.clone(),
                sequences: dumped.sequences.clone(),
                chunks: done.iter().map(|(c, _)| c.clone()).collect(),
                stream_id: None,
            };
            let meta = work.join("image");
            let writer = ImageWriter::create(&meta)?;
            writer.finish(
                "outfile",
                crate::backup::source_of(&cat, ctl).await?,
                dumped.coordinates.clone(),
                &schema,
                done.into_iter().map(|(_, e)| e).collect(),
            )?;
            for f in [
                crate::image::SCHEMA_FILE,
                amsu_core::manifest::MANIFEST_FILE,
            ] {
                self.ftp
                    .put(&meta.join(f), &format!("{run_dir}/{f}"))
                    .await
                    .map_err(TransferError::from_boxed)?;
            }
        }
        Ok(CopyReport::new(dumped.coordinates)
            .with_catalog(
                cat.databases.len() as u64,
                cat.tables.len() as u64,
                dumped.accounts.len() as u64,
                cat.objects.len() as u64,
            )
            .with_data(rows, bytes)
            .with_commit_blocked_ms(dumped.blocked_ms))
    }

    /// Fetches each chunk as the master finishes it, hashes it, hands it to the loaders.
    async fn fetch_chunks(
        &self,
        run_dir: &str,
        work: &Path,
        mut written: mpsc::UnboundedReceiver<Written>,
        ready: mpsc::Sender<ReadyChunk>,
        done: Arc<Mutex<Vec<(ChunkRef, FileEntry)>>>,
    ) -> Result<(), ImageError> {
        let data = work.join(DATA_DIR);
        tokio::fs::create_dir_all(&data)
            .await
            .map_err(|e| ImageError::io(&data, e))?;
        while let Some(Written {
            number,
            table,
            rows,
            record,
            clear_first,
        }) = written.recv().await
        {
            let path = chunk_path(number, false);
            let remote = format!("{run_dir}/{path}");
            let local = work.join(&path);
            let size = self.fetch_whole(&remote, &local).await?;
            let entry = FileEntry::new(path.clone(), size, sha256_file(&local).await?);
            if !self.keep_image {
                let _ = self.ftp.delete(&remote).await;
            }
            done.lock().expect("lock").push((
                ChunkRef {
                    path,
                    table,
                    rows,
                    zstd: false,
                },
                entry,
            ));
            let chunk = ReadyChunk {
                local,
                table,
                zstd: false,
                remove_after: true,
                record,
                clear_first,
                weight: 0,
            };
            if ready.send(chunk).await.is_err() {
                return Ok(()); // the loaders stopped; they report why
            }
        }
        Ok(())
    }

    /// Fetches a complete remote file, resuming after a cut; returns its size.
    async fn fetch_whole(&self, remote: &str, local: &Path) -> Result<u64, ImageError> {
        // Created empty: an empty chunk (no rows in its range) is complete as it is.
        tokio::fs::File::create(local)
            .await
            .map_err(|e| ImageError::io(local, e))?;
        let mut failures = 0u32;
        loop {
            let size = match self.ftp.size(remote).await {
                Ok(Some(s)) => Some(s),
                Ok(None) => {
                    return Err(ImageError::Outfile(format!(
                        "{remote} written by the master is missing on the FTP endpoint"
                    )))
                }
                Err(e) => {
                    let e = TransferError::from_boxed(e);
                    if !e.is_retryable() {
                        return Err(e.into());
                    }
                    None
                }
            };
            let have = match tokio::fs::metadata(local).await {
                Ok(m) => m.len(),
                Err(_) => 0,
            };
            if let Some(s) = size {
                if have == s {
                    return Ok(s);
                }
                let r = self.ftp.fetch(remote, have, local).await;
                let now = tokio::fs::metadata(local)
                    .await
                    .map(|m| m.len())
                    .unwrap_or(0);
                if let Err(e) = r {
                    let e = TransferError::from_boxed(e);
                    if !e.is_retryable() {
                        return Err(e.into());
                    }
                    tracing::warn!(%remote, offset = now, error = %e, "fetch cut; resuming");
                }
                if now > have {
                    failures = 0;
                    continue;
                }
            }
            failures += 1;
            if failures >= self.retry.max_attempts.max(1) {
                return Err(ImageError::Outfile(format!(
                    "{remote}: the transfer kept failing after {failures} attempts"
                )));
            }
            tokio::time::sleep(self.retry.delay_after(failures)).await;
        }
    }

    /// Deletes the run directory over FTP (errors are logged: the copy's outcome stands).
    async fn remove_run_dir(&self, run_dir: &str) {
        for dir in [format!("{run_dir}/{DATA_DIR}"), run_dir.to_string()] {
            if let Ok(entries) = self.ftp.list(&dir).await {
                for e in entries.iter().filter(|e| !e.is_dir) {
                    let _ = self.ftp.delete(&format!("{dir}/{}", e.name)).await;
                }
            }
        }
        for dir in [format!("{run_dir}/{DATA_DIR}"), run_dir.to_string()] {
            if let Err(e) = self.ftp.remove_dir(&dir).await {
                tracing::warn!(%dir, error = %e, "cannot remove the run directory on the master");
            }
        }
    }
}

#[async_trait]
impl DataCopier for OutfileCopy {
    async fn copy(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        Ok(self.run(events).await?)
    }

    /// A streamed copy resumes (reading the binary log since the interrupted snapshot), unless the run directory is
    /// kept as an image (which must hold every chunk).
    fn resumable(&self) -> bool {
        !self.keep_image
    }

    /// Keeps the chunks the interrupted copy loaded that are provably still those of a
    /// new snapshot and writes the rest; where the proof does not hold, says why and
    /// copies again what it must.
    async fn resume(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        Ok(OutfileCopy::resume(self, events).await?)
    }

    /// Drops the copy's progress records.
    async fn finished(&self) -> Result<(), BoxError> {
        let mut rs = Session::open(&self.replica).await?;
        stream_resume::forget(&mut rs).await?;
        Ok(())
    }

    fn statements(&self) -> Option<Vec<String>> {
        Some(vec![
            "-- on the master, after opening every worker connection:".into(),
            "BACKUP STAGE START".into(),
            "BACKUP STAGE BLOCK_COMMIT".into(),
            "START TRANSACTION WITH CONSISTENT SNAPSHOT  -- on each worker".into(),
            "SHOW MASTER STATUS; SELECT @@global.gtid_binlog_pos".into(),
            "SHOW CREATE USER … / SHOW GRANTS FOR …  -- each non-system account".into(),
            "BACKUP STAGE END".into(),
            "SELECT <columns> FROM <table> WHERE <key range> INTO OUTFILE '<secure_file_priv>/amsu-<run>/data/<NNNNNN>.tsv' CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'  -- each chunk, in the snapshot".into(),
            "-- on the replica host: each chunk file fetched over FTP from the master's secure_file_priv directory".into(),
            "-- on the replica (sql_log_bin = 0, foreign_key_checks = 0):".into(),
            "CREATE DATABASE … / CREATE TABLE …  -- from SHOW CREATE on the master".into(),
            "START TRANSACTION; LOAD DATA LOCAL INFILE … INTO TABLE <table> CHARACTER SET binary …; COMMIT  -- each fetched chunk".into(),
            "CREATE VIEW / PROCEDURE / FUNCTION / TRIGGER / EVENT …; ALTER EVENT … DISABLE ON SLAVE".into(),
            "DROP USER IF EXISTS …; CREATE USER …; GRANT …  -- each copied account".into(),
            if self.keep_image {
                "-- afterwards: schema.json and manifest.json uploaded; the run directory is kept as an image".into()
            } else {
                "-- afterwards: the run directory is deleted over FTP".into()
            },
        ])
    }
}

/// The preflight of the method, before any change: the FILE privilege, `secure_file_priv`,
/// a login to the FTP endpoint, and that the endpoint serves that directory (a marker
/// written by the master with `INTO OUTFILE` into a probe directory is fetched over FTP;
/// probe directory and marker are deleted again).
#[async_trait]
impl Preflight for OutfileCopy {
    async fn findings(&self) -> Result<Vec<Finding>, BoxError> {
        let refused = snapshot::copy_findings(&self.master, &self.replica).await?;
        if !refused.is_empty() {
            return Ok(refused);
        }
        let mut ctl = Session::open(&self.master).await?;
        let target = match self.check_master(&mut ctl).await {
            Ok(t) => t,
            Err(e) => {
                return Ok(vec![Finding::blocking(
                    Role::Master,
                    FindingCode::OutfileMaster,
                    e.to_string(),
                    "grant FILE to the master user and set secure_file_priv to the directory the FTP endpoint serves",
                )])
            }
        };
        if let Err(e) = self.ftp.check().await {
            return Ok(vec![Finding::blocking(
                Role::Master,
                FindingCode::OutfileFtp,
                format!("the FTP endpoint is not usable: {e}"),
                "check the FTP endpoint's URL, its password and the TLS settings",
            )
            .with_remedy(Remedy::setting("method.ftp"))]);
        }
        let probe = format!("amsu-probe-{}", unique());
        let work = std::env::temp_dir().join(&probe);
        let checked = async {
            self.ftp
                .mkdir(&probe)
                .await
                .map_err(|e| ImageError::from(TransferError::from_boxed(e)))?;
            tokio::fs::create_dir_all(&work)
                .await
                .map_err(|e| ImageError::io(&work, e))?;
            self.check_endpoint(&mut ctl, &target, &probe, &work).await
        }
        .await;
        let _ = self.ftp.remove_dir(&probe).await;
        let _ = tokio::fs::remove_dir_all(&work).await;
        Ok(match checked {
            Ok(()) => vec![],
            Err(e) => vec![Finding::blocking(
                Role::Master,
                FindingCode::OutfileEndpoint,
                e.to_string(),
                format!(
                    "serve the master's secure_file_priv directory ({}) over FTP, writable by mysqld, and give that endpoint",
                    target.secure_file_priv
                ),
            ).with_remedy(Remedy::setting("method.ftp"))],
        })
    }
}

/// A chunk file the master wrote, for the fetcher.
struct Written {
    /// The chunk's number (its file name).
    number: usize,
    /// Its table's index in the catalog.
    table: usize,
    /// Rows written.
    rows: u64,
    /// How its load is recorded (a transactional table's chunk).
    record: Option<ChunkRecord>,
    /// Empty the table before loading (a non-transactional table copied again).
    clear_first: bool,
}

/// Writes each chunk on the master with `SELECT … INTO OUTFILE`: of a transactional
/// table, only the rows no kept record covers ([`crate::stream_resume::Plan::remaining`]).
struct OutfileSink {
    /// `<secure_file_priv>/<run dir>` on the master host.
    dir: String,
    written: mpsc::UnboundedSender<Written>,
    state: Arc<StreamState>,
    /// Record each loaded chunk (off when the run directory is kept as an image).
    record: bool,
}

#[async_trait]
impl ChunkSink for OutfileSink {
    async fn write(
        &mut self,
        master: &mut Session,
        job: &ChunkJob,
    ) -> Result<(u64, u64), ImageError> {
        let t = &job.chunk.table;
        let (job, record, clear_first) = if t.transactional() {
            let plan = self.state.plan().ok_or_else(|| {
                crate::BackupError::Internal("a chunk before the snapshot's plan".into())
            })?;
            let Some(job) = plan.remaining(job) else {
                return Ok((0, 0));
            };
            let record = self.record.then(|| ChunkRecord::Stream {
                filter: job.chunk.filter.clone(),
                at: plan.coordinates.clone(),
            });
            (job, record, false)
        } else {
            // No record can commit with its rows: emptied and copied whole again.
            let again = self.state.resuming();
            if again {
                self.state.warn(format!(
                    "{} is not transactional: its rows cannot be recorded atomically with them, so it is copied again",
                    t.qualified()
                ));
            }
            (job.clone(), None, again)
        };
        let job = &job;
        let file = format!("{}/{}", self.dir, chunk_path(job.number, false));
        let sql = format!(
            "{} INTO OUTFILE {} CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' \
             LINES TERMINATED BY '\\n'",
            job.select(),
            quote::string(&file)
        );
        master
            .exec(
                &sql,
                &format!(
                    "writing {} {} with INTO OUTFILE",
                    job.chunk.table.qualified(),
                    job.chunk.filter
                ),
            )
            .await?;
        let rows = master.affected_rows();
        let written = Written {
            number: job.number,
            table: job.table,
            rows,
            record,
            clear_first,
        };
        if self.written.send(written).is_err() {
            return Err(crate::BackupError::LoadStopped.into());
        }
        Ok((rows, 0))
    }

    async fn snapshot_taken(&mut self, coordinates: &Coordinates) -> Result<(), ImageError> {
        self.state.on_snapshot(coordinates).await.map(|_| ())
    }
}

/// A name unique enough for a run directory or a marker.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    format!("{:x}-{:x}", nanos, std::process::id())
}
