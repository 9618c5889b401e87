//! Restoring an image into a replica: the whole image is checked first, then the schema
//! is created, the chunks loaded in parallel, then objects and accounts.
//!
//! An image is data, never code, and a damaged image loads nothing: before the first
//! statement runs on the replica, the signature (with a key), the manifest, every file's
//! size and SHA-256, and every statement of `schema.json` ([`ImageSchema::check_statements`])
//! are checked. A remote image is fetched whole into the local work directory for that
//! (and its chunks deleted as they are loaded). The statements from the image are then
//! sent with [`Session::exec_one`] on sessions that never run two statements of one text.

use amsu_core::{FindingCode, Remedy};
use std::path::PathBuf;
use std::sync::Arc;

use amsu_core::manifest::{Manifest, MANIFEST_FILE};
use amsu_core::{
    BoxError, CopyReport, DataCopier, EventSink, Finding, Preflight, Role, ServerAddr, Transport,
};
use amsu_mysql::conn::Session;
use amsu_transfer::fetch_image;
use amsu_transfer::RetryPolicy;
use async_trait::async_trait;
use tokio::sync::mpsc;

use std::collections::HashSet;

use crate::image::{ChunkRef, ImageError, ImageReader, ImageSchema};
use crate::image_stream::{ImageStream, StreamMsg};
use crate::load::{self, ReadyChunk};
use crate::meter::Meter;
use crate::progress;
use crate::restore;
use crate::ImageKey;

/// An image that passed every check, in a local directory.
#[derive(Debug, Clone)]
struct Opened {
    manifest: Manifest,
    schema: ImageSchema,
    /// The local image directory (the work directory for a remote image).
    dir: PathBuf,
}

/// Where an image is read from.
#[derive(Clone)]
pub enum ImageSource {
    /// A complete image in a local directory.
    Local(PathBuf),
    /// An image in `dir` (relative to the transport's root, `""` for the root) of a
    /// transport; files are fetched into `work_dir` and deleted once loaded.
    Remote {
        /// The transport (FTP/FTPS, local).
        transport: Arc<dyn Transport>,
        /// The image directory on it.
        dir: String,
        /// A local directory for the fetched files.
        work_dir: PathBuf,
    },
    /// An image being written into a local directory by a dump in this process (a
    /// fan-out's spool): loaded chunk by chunk as the dump completes each one.
    Stream(ImageStream),
}

impl ImageSource {
    /// This source for `replica`, one of several loading it at once: a remote image is
    /// fetched into a work directory of its own (each replica's load deletes the chunks
    /// it loaded, and removes its work directory at the end); any other source as it is.
    pub(crate) fn for_replica(&self, replica: &ServerAddr) -> ImageSource {
        match self {
            ImageSource::Remote {
                transport,
                dir,
                work_dir,
            } => {
                let tag: String = format!("{}_{}", replica.host, replica.port)
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '.' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let mut own = work_dir.clone().into_os_string();
                own.push(format!("-{tag}"));
                ImageSource::Remote {
                    transport: transport.clone(),
                    dir: dir.clone(),
                    work_dir: own.into(),
                }
            }
            other => other.clone(),
        }
    }
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageSource::Local(p) => f.debug_tuple("Local").field(p).finish(),
            ImageSource::Remote { dir, work_dir, .. } => f
                .debug_struct("Remote")
                .field("dir", dir)
                .field("work_dir", work_dir)
                .finish_non_exhaustive(),
            ImageSource::Stream(s) => f.debug_tuple("Stream").field(&s.dir()).finish(),
        }
    }
}

/// Loads an image into a replica. Implements [`DataCopier`], so `amsu setup --image`
/// seeds replicas from one image.
#[derive(Debug, Clone)]
pub struct ImageRestore {
    source: ImageSource,
    replica: ServerAddr,
    threads: usize,
    fetch_parallel: usize,
    retry: RetryPolicy,
    master: Option<ServerAddr>,
    resume: bool,
    key: Option<ImageKey>,
    /// The image once checked (shared by clones: a remote image is fetched and checked
    /// once for the preflight, the progress check, the restore and the cleanup).
    opened: Arc<tokio::sync::OnceCell<Opened>>,
}

impl ImageRestore {
    /// A restore of `source` into `replica` with 2 loading sessions, 2 parallel fetches
    /// and the default retry policy.
    pub fn new(source: ImageSource, replica: ServerAddr) -> Self {
        ImageRestore {
            source,
            replica,
            threads: 2,
            fetch_parallel: 2,
            retry: RetryPolicy::default(),
            master: None,
            resume: false,
            key: None,
            opened: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Requires the image to be signed with `key` (`amsu backup --image-key`): an image
    /// without a signature, or with one that does not match, is refused before anything
    /// changes. `None` (the default): a signature is not checked.
    pub fn key(mut self, key: Option<ImageKey>) -> Self {
        self.key = key;
        self
    }

    /// Checks the whole image without changing anything: signature (with a key),
    /// manifest, schema and every statement in it, every file's size and SHA-256 (a
    /// remote image is fetched into the work directory for that). Done once; [`run`]
    /// and the preflight call it too. An error for which [`ImageError::is_refusal`] holds
    /// means the image is damaged or not trusted.
    ///
    /// [`run`]: ImageRestore::run
    pub async fn check(&self) -> Result<(), ImageError> {
        match &self.source {
            // Each chunk is checked as the dump completes it.
            ImageSource::Stream(s) => s.head().await.map(|_| ()),
            _ => self.open().await.map(|_| ()),
        }
    }

    /// The master replication will start from: its preflight ([`Preflight`]) checks
    /// that the image was taken from it and that its binary log still holds the image's
    /// coordinates.
    pub fn master(mut self, master: ServerAddr) -> Self {
        self.master = Some(master);
        self
    }

    /// Loading sessions on the replica.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Files fetched at the same time (remote images).
    pub fn fetch_parallel(mut self, n: usize) -> Self {
        self.fetch_parallel = n.max(1);
        self
    }

    /// Retries of a cut transfer (remote images).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Resume an interrupted restore of the same image: chunks recorded as loaded on the
    /// replica are skipped, tables that exist are kept (default: off, a fresh restore).
    /// A resumed run fails when the replica holds no record of this image's restore.
    pub fn resume(mut self, on: bool) -> Self {
        self.resume = on;
        self
    }

    /// The number of chunks of this image recorded as loaded on the replica, or `None`
    /// when no restore of this image was started there.
    pub async fn recorded_chunks(&self) -> Result<Option<usize>, ImageError> {
        let ids = self.ids().await?;
        let mut rs = Session::open(&self.replica).await?;
        for id in &ids {
            if let Some(d) = progress::recorded(&mut rs, id).await? {
                return Ok(Some(d.len()));
            }
        }
        Ok(None)
    }

    /// The image's manifest (the image is checked first, once, as by [`check`](Self::check)).
    pub(crate) async fn manifest(&self) -> Result<Manifest, ImageError> {
        Ok(self.open().await?.manifest)
    }

    /// Deletes this image's progress records from the replica (call once the restore is
    /// complete and recorded elsewhere; a later run starts fresh).
    pub async fn forget_progress(&self) -> Result<(), ImageError> {
        let ids = self.ids().await?;
        let mut rs = Session::open(&self.replica).await?;
        restore::prepare_session(&mut rs).await?;
        for id in &ids {
            progress::forget(&mut rs, id).await?;
        }
        Ok(())
    }

    /// The ids this image's loaded chunks may be recorded under on a replica, the one a
    /// fresh restore records under first: the stream's id for an image read while it is
    /// written; the manifest's digest for a complete image, then the id of the stream it
    /// was read from by replicas while it was written, when it was.
    async fn ids(&self) -> Result<Vec<String>, ImageError> {
        if let ImageSource::Stream(s) = &self.source {
            return Ok(vec![s.head().await?.id.clone()]);
        }
        let Opened {
            manifest, schema, ..
        } = self.open().await?;
        let mut ids = vec![progress::image_id(&manifest)];
        ids.extend(schema.stream_id);
        Ok(ids)
    }

    /// Restores the image; returns the report and the image's manifest (its coordinates
    /// are where replication starts). An image read while it is written
    /// ([`ImageSource::Stream`]) is loaded chunk by chunk as the dump completes each one,
    /// and finished (keys, sequences, objects, accounts) once the dump is done.
    pub async fn run(
        &self,
        events: Arc<dyn EventSink>,
    ) -> Result<(CopyReport, Manifest), ImageError> {
        // Every check before the first statement on the replica: the whole image, or
        // the stream's head (each chunk is checked as it comes).
        let (schema, listed) = match &self.source {
            ImageSource::Stream(s) => (s.head().await?.schema.clone(), None),
            _ => {
                let Opened {
                    manifest,
                    schema,
                    dir,
                } = self.open().await?;
                (schema, Some((manifest, dir)))
            }
        };
        let ids = self.ids().await?;
        let schema = Arc::new(schema);
        let mut rs = Session::open(&self.replica).await?;
        rs.single_statements();
        load::apply_settings(&mut rs, &schema.session).await?;
        let (image, done, existing) = if self.resume {
            let mut found = None;
            for id in &ids {
                if let Some(done) = progress::recorded(&mut rs, id).await? {
                    found = Some((id.clone(), done));
                    break;
                }
            }
            let Some((image, done)) = found else {
                return Err(ImageError::Resume(format!(
                    "the replica {} holds no record of a restore of this image to resume",
                    self.replica
                )));
            };
            let existing = restore::existing_tables(&mut rs, &schema.tables).await?;
            (image, done, existing)
        } else {
            progress::start(&mut rs, &ids[0]).await?;
            (ids[0].clone(), HashSet::new(), HashSet::new())
        };
        let image: Arc<str> = image.into();
        if !done.is_empty() {
            tracing::info!(
                loaded = done.len(),
                of = schema.chunks.len(),
                "resuming the restore"
            );
        }
        restore::create_databases(&mut rs, &schema.databases).await?;
        let deferred = restore::create_tables(&mut rs, &schema.tables, &existing).await?;

        let mut sessions =
            load::open_sessions(&self.replica, self.threads, &schema.session).await?;
        for s in &mut sessions {
            s.single_statements();
        }
        let (tx, rx) = mpsc::channel::<ReadyChunk>(self.threads);
        let (progress, producer) = match &listed {
            Some((manifest, dir)) => {
                let todo = self.todo(&schema, manifest, &image, &done, &existing);
                let mut expected = std::collections::HashMap::new();
                for p in &todo {
                    *expected.entry(p.chunk.table).or_insert(0u64) += 1;
                }
                let meter = Arc::new(Meter::new(expected.len() as u64));
                meter.plan(todo.iter().map(|p| p.weight).sum());
                let producer = self.produce(manifest, dir, todo, tx);
                let producer = Box::pin(async move { producer.await.map(|()| None) })
                    as futures_util::future::BoxFuture<'_, _>;
                ((meter, expected), producer)
            }
            None => {
                let ImageSource::Stream(stream) = &self.source else {
                    unreachable!("a listed image is opened")
                };
                // How many chunks a table has is known only at the end of the dump: a
                // table is not counted as finished while it streams.
                let loaded: Vec<usize> = (0..schema.tables.len()).collect();
                let meter = Arc::new(Meter::new(schema.tables.len() as u64));
                meter.plan(schema.tables.iter().map(|t| t.data_length).sum());
                let expected = loaded.into_iter().map(|t| (t, u64::MAX)).collect();
                let producer = Box::pin(self.produce_stream(
                    stream,
                    &schema,
                    image.clone(),
                    done,
                    existing,
                    tx,
                )) as futures_util::future::BoxFuture<'_, _>;
                ((meter, expected), producer)
            }
        };
        let loaders = load::load_all(
            sessions,
            Arc::new(schema.tables.clone()),
            Arc::new(schema.session.clone()),
            rx,
            events,
            Some(progress),
        );
        let (produced, loaded) = tokio::join!(producer, loaders);
        // A verification or fetch error is the cause; a loader error otherwise.
        let streamed = produced?;
        let (sessions, rows, bytes) = loaded?;
        let (manifest, schema) = match (listed, streamed) {
            (Some((manifest, _)), _) => (manifest, schema),
            (None, Some((manifest, schema))) => (manifest, Arc::new(schema)),
            (None, None) => unreachable!("a stream ends with its manifest or an error"),
        };
        restore::add_deferred_keys(sessions, deferred).await?;

        restore::restore_sequences(&mut rs, &schema.sequences).await?;
        restore::create_objects_and_accounts(
            &mut rs,
            &schema.objects,
            &schema.accounts,
            manifest.source.flavor,
        )
        .await?;
        if let ImageSource::Remote { work_dir, .. } = &self.source {
            let _ = tokio::fs::remove_dir_all(work_dir).await;
        }
        let report = CopyReport::new(manifest.coordinates.clone())
            .with_catalog(
                schema.databases.len() as u64,
                schema.tables.len() as u64,
                schema.accounts.len() as u64,
                schema.objects.len() as u64,
            )
            .with_data(rows, bytes);
        Ok((report, manifest))
    }

    /// The chunks of a complete image still to load.
    fn todo(
        &self,
        schema: &ImageSchema,
        manifest: &Manifest,
        image: &Arc<str>,
        done: &HashSet<String>,
        existing: &HashSet<(String, String)>,
    ) -> Vec<Pending> {
        let mut per_table = std::collections::HashMap::new();
        for c in &schema.chunks {
            *per_table.entry(c.table).or_insert(0u64) += 1;
        }
        schema
            .chunks
            .iter()
            .filter(|c| !done.contains(&c.path))
            .map(|c| {
                let t = &schema.tables[c.table];
                Pending {
                    weight: manifest
                        .files
                        .iter()
                        .find(|f| f.path == c.path)
                        .map_or(0, |f| f.size),
                    chunk: c.clone(),
                    record: Some((image.clone(), c.path.clone())),
                    // A non-transactional table has one chunk and no rollback.
                    clear_first: self.resume
                        && !t.transactional()
                        && per_table[&c.table] == 1
                        && existing.contains(&(t.db.clone(), t.name.clone())),
                }
            })
            .collect()
    }

    /// Sends every chunk of an image being written to the loaders as soon as the dump
    /// has written it, each verified against its entry just before (the stream is the
    /// manifest's entries, sent as each file is complete). Returns the manifest and the
    /// complete schema, its statements checked, once the dump is done; `None` when the
    /// loaders stopped (they report why).
    async fn produce_stream(
        &self,
        stream: &ImageStream,
        head: &ImageSchema,
        image: Arc<str>,
        done: HashSet<String>,
        existing: HashSet<(String, String)>,
        tx: mpsc::Sender<ReadyChunk>,
    ) -> Result<Option<(Manifest, ImageSchema)>, ImageError> {
        loop {
            let (c, entry) = match stream.next().await? {
                StreamMsg::Chunk(c, entry) => (c, entry),
                StreamMsg::Done(manifest, schema) => {
                    let (manifest, mut schema) =
                        (Manifest::clone(&manifest), ImageSchema::clone(&schema));
                    schema.validate(&manifest)?;
                    schema.check_statements()?;
                    return Ok(Some((manifest, schema)));
                }
                StreamMsg::Head(_) | StreamMsg::Failed(_) => continue,
            };
            if done.contains(&c.path) {
                continue;
            }
            amsu_core::manifest::check_relative_path(&c.path)
                .map_err(|_| ImageError::Schema(format!("unsafe chunk path {:?}", c.path)))?;
            let Some(t) = head.tables.get(c.table) else {
                return Err(ImageError::Schema(format!(
                    "chunk {} refers to table #{} of {}",
                    c.path,
                    c.table,
                    head.tables.len()
                )));
            };
            let local = stream.dir().join(&c.path);
            crate::image::verify_file(&local, &entry).await?;
            let ready = ReadyChunk {
                local,
                table: c.table,
                zstd: c.zstd,
                remove_after: false,
                record: Some(crate::load::ChunkRecord::Image(
                    image.clone(),
                    c.path.clone(),
                )),
                // A non-transactional table has one chunk and no rollback.
                clear_first: self.resume
                    && !t.transactional()
                    && existing.contains(&(t.db.clone(), t.name.clone())),
                weight: entry.size,
            };
            if tx.send(ready).await.is_err() {
                return Ok(None); // the loaders stopped; they report why
            }
        }
    }

    /// The image, checked ([`ImageRestore::check`]).
    async fn open(&self) -> Result<Opened, ImageError> {
        self.opened
            .get_or_try_init(|| self.read_image())
            .await
            .cloned()
    }

    /// Reads and checks the whole image (a remote one fetched first; its fetched files
    /// are deleted when it is refused).
    async fn read_image(&self) -> Result<Opened, ImageError> {
        let r = self.read_image_inner().await;
        if let (Err(_), ImageSource::Remote { work_dir, .. }) = (&r, &self.source) {
            let _ = tokio::fs::remove_dir_all(work_dir).await;
        }
        r
    }

    async fn read_image_inner(&self) -> Result<Opened, ImageError> {
        let dir = match &self.source {
            ImageSource::Local(dir) => dir.clone(),
            // Complete once its dump is done.
            ImageSource::Stream(s) => s.dir().to_path_buf(),
            ImageSource::Remote {
                transport,
                dir,
                work_dir,
            } => {
                self.stage(&**transport, dir, work_dir).await?;
                work_dir.clone()
            }
        };
        let r = ImageReader::open_with(&dir, self.key.as_ref()).await?;
        r.verify_files().await?;
        Ok(Opened {
            manifest: r.manifest().clone(),
            schema: r.schema().clone(),
            dir,
        })
    }

    /// Fetches a whole remote image into `work_dir`, each file verified against the
    /// remote manifest.
    async fn stage(
        &self,
        transport: &dyn Transport,
        dir: &str,
        work_dir: &std::path::Path,
    ) -> Result<(), ImageError> {
        let remote = join(dir, MANIFEST_FILE);
        let location = if dir.is_empty() { "/" } else { dir }.to_string();
        let exists = transport
            .size(&remote)
            .await
            .map_err(amsu_transfer::TransferError::from_boxed)?;
        if exists.is_none() {
            return Err(ImageError::NoManifest { location });
        }
        fetch_image(
            transport,
            dir,
            work_dir,
            self.fetch_parallel,
            &self.retry,
            &|_, _| {},
        )
        .await
        .map_err(|err| match err {
            amsu_transfer::TransferError::ChecksumMismatch {
                path,
                expected,
                actual,
            } => ImageError::Checksum {
                path,
                expected: format!("sha256 {expected}"),
                actual: format!("sha256 {actual}"),
            },
            amsu_transfer::TransferError::SizeMismatch {
                path,
                expected,
                actual,
            } => ImageError::Checksum {
                path,
                expected: format!("{expected} bytes"),
                actual: format!("{actual} bytes"),
            },
            amsu_transfer::TransferError::NotFound { path, .. } => ImageError::Missing { path },
            other => other.into(),
        })?;
        Ok(())
    }

    /// Sends every chunk, in order, to the loaders. Each chunk was verified before the
    /// restore began and is verified again just before it is loaded (a local image
    /// directory may change meanwhile); a remote image's fetched chunks are deleted once
    /// loaded.
    async fn produce(
        &self,
        manifest: &Manifest,
        dir: &std::path::Path,
        todo: Vec<Pending>,
        tx: mpsc::Sender<ReadyChunk>,
    ) -> Result<(), ImageError> {
        let remote = matches!(self.source, ImageSource::Remote { .. });
        for p in todo {
            let c = &p.chunk;
            let entry = manifest
                .files
                .iter()
                .find(|f| f.path == c.path)
                .expect("validated");
            let local = dir.join(&c.path);
            crate::image::verify_file(&local, entry).await?;
            let ready = ReadyChunk {
                local,
                table: c.table,
                zstd: c.zstd,
                remove_after: remote,
                record: p.record.map(|(i, c)| crate::load::ChunkRecord::Image(i, c)),
                clear_first: p.clear_first,
                weight: p.weight,
            };
            if tx.send(ready).await.is_err() {
                return Ok(()); // the loaders stopped; they report why
            }
        }
        Ok(())
    }
}

/// Before any change: the image passes every check ([`ImageRestore::check`]: signature,
/// manifest, schema and its statements, every file's checksum), was taken from the given
/// master (same `server_id`), and the master still
/// has the binary log file the image's coordinates name.
#[async_trait]
impl Preflight for ImageRestore {
    async fn findings(&self) -> Result<Vec<Finding>, BoxError> {
        let opened = match &self.source {
            // The dump's first phase tells the source and the coordinates.
            ImageSource::Stream(s) => s
                .head()
                .await
                .map(|h| (h.source.server_id, h.coordinates.file.clone())),
            _ => self
                .open()
                .await
                .map(|o| (o.manifest.source.server_id, o.manifest.coordinates.file)),
        };
        let (server_id, binlog) = match opened {
            Ok(o) => o,
            Err(e) => {
                let what = if e.is_refusal() {
                    "is refused"
                } else {
                    "cannot be read"
                };
                return Ok(vec![Finding::blocking(
                    Role::Replica,
                    FindingCode::ImageInvalid,
                    format!("the image {what}, nothing was loaded: {e}"),
                    "use a complete, undamaged amsu image (signed with the image key, when one is given), or take a new one",
                ).with_remedy(Remedy::setting("method.image"))]);
            }
        };
        let Some(master) = &self.master else {
            return Ok(vec![]);
        };
        let mut s = Session::open(master).await?;
        let id = s
            .column("SELECT @@global.server_id", "reading server_id")
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut out = Vec::new();
        if id != server_id.to_string() {
            out.push(Finding::blocking(
                Role::Master,
                FindingCode::ImageOtherMaster,
                format!(
                    "the image was taken from a server with server_id {}, the master has server_id {id}",
                    server_id
                ),
                "use an image of this master, or take a new one from it",
            ));
        }
        let logs = s.column("SHOW BINARY LOGS", "listing binary logs").await?;
        if !logs.contains(&binlog) {
            out.push(Finding::blocking(
                Role::Master,
                FindingCode::ImageBinlogPurged,
                format!(
                    "the master no longer has {binlog}, where replication from this image must start",
                ),
                "take a new image (amsu backup), or keep binary logs longer (binlog_expire_logs_seconds)",
            ));
        }
        Ok(out)
    }
}

#[async_trait]
impl DataCopier for ImageRestore {
    async fn copy(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        Ok(self.run(events).await?.0)
    }

    fn statements(&self) -> Option<Vec<String>> {
        Some(vec![
            "-- the image's manifest and schema read, each chunk fetched and its checksum verified".into(),
            "-- on the replica (sql_log_bin = 0, foreign_key_checks = 0):".into(),
            "CREATE DATABASE … / CREATE TABLE …  -- from the image's schema".into(),
            "START TRANSACTION; LOAD DATA LOCAL INFILE … INTO TABLE <table> CHARACTER SET binary …; COMMIT  -- each chunk, its progress recorded".into(),
            "CREATE VIEW / PROCEDURE / FUNCTION / TRIGGER / EVENT …; ALTER EVENT … DISABLE ON SLAVE".into(),
            "DROP USER IF EXISTS …; CREATE USER …; GRANT …  -- each account of the image".into(),
            "-- coordinates from the image's manifest".into(),
        ])
    }

    /// A complete image resumes from the chunks recorded on the replica. An image read
    /// while it is written is a new dump each run (a new stream id, a new snapshot): what
    /// an interrupted run loaded of an earlier dump is amsu's own (recorded as such) and
    /// is started over, dropped by the plan, never resumed against another snapshot.
    fn resumable(&self) -> bool {
        !matches!(self.source, ImageSource::Stream(_))
    }

    async fn resume(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        Ok(self.clone().resume(true).run(events).await?.0)
    }

    async fn finished(&self) -> Result<(), BoxError> {
        Ok(self.forget_progress().await?)
    }
}

/// A chunk still to load.
struct Pending {
    chunk: ChunkRef,
    weight: u64,
    record: Option<(Arc<str>, String)>,
    clear_first: bool,
}

fn join(dir: &str, path: &str) -> String {
    if dir.is_empty() {
        path.to_string()
    } else {
        format!("{}/{path}", dir.trim_end_matches('/'))
    }
}
