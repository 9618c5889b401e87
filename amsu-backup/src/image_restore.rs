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
        self.open().await.map(|_| ())
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
        let manifest = self.open().await?.manifest;
        let mut rs = Session::open(&self.replica).await?;
        let done = progress::recorded(&mut rs, &progress::image_id(&manifest)).await?;
        Ok(done.map(|d| d.len()))
    }

    /// The image's manifest (the image is checked first, once, as by [`check`](Self::check)).
    pub(crate) async fn manifest(&self) -> Result<Manifest, ImageError> {
        Ok(self.open().await?.manifest)
    }

    /// Deletes this image's progress records from the replica (call once the restore is
    /// complete and recorded elsewhere; a later run starts fresh).
    pub async fn forget_progress(&self) -> Result<(), ImageError> {
        let manifest = self.open().await?.manifest;
        let mut rs = Session::open(&self.replica).await?;
        restore::prepare_session(&mut rs).await?;
        progress::forget(&mut rs, &progress::image_id(&manifest)).await?;
        Ok(())
    }

    /// Restores the image; returns the report and the image's manifest (its coordinates
    /// are where replication starts).
    pub async fn run(
        &self,
        events: Arc<dyn EventSink>,
    ) -> Result<(CopyReport, Manifest), ImageError> {
        // Every check before the first statement on the replica.
        let Opened {
            manifest,
            schema,
            dir,
        } = self.open().await?;
        let image: Arc<str> = progress::image_id(&manifest).into();
        let schema = Arc::new(schema);
        let mut rs = Session::open(&self.replica).await?;
        rs.single_statements();
        load::apply_settings(&mut rs, &schema.session).await?;
        let (done, existing) = if self.resume {
            let Some(done) = progress::recorded(&mut rs, &image).await? else {
                return Err(ImageError::Resume(format!(
                    "the replica {} holds no record of a restore of this image to resume",
                    self.replica
                )));
            };
            let existing = restore::existing_tables(&mut rs, &schema.tables).await?;
            (done, existing)
        } else {
            progress::start(&mut rs, &image).await?;
            (HashSet::new(), HashSet::new())
        };
        if !done.is_empty() {
            tracing::info!(
                loaded = done.len(),
                of = schema.chunks.len(),
                "resuming the restore"
            );
        }
        restore::create_databases(&mut rs, &schema.databases).await?;
        let deferred = restore::create_tables(&mut rs, &schema.tables, &existing).await?;

        let mut per_table = std::collections::HashMap::new();
        for c in &schema.chunks {
            *per_table.entry(c.table).or_insert(0u64) += 1;
        }
        let todo: Vec<Pending> = schema
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
            .collect();
        let mut expected = std::collections::HashMap::new();
        for p in &todo {
            *expected.entry(p.chunk.table).or_insert(0u64) += 1;
        }
        let meter = Arc::new(Meter::new(expected.len() as u64));
        meter.plan(todo.iter().map(|p| p.weight).sum());

        let mut sessions =
            load::open_sessions(&self.replica, self.threads, &schema.session).await?;
        for s in &mut sessions {
            s.single_statements();
        }
        let (tx, rx) = mpsc::channel::<ReadyChunk>(self.threads);
        let producer = self.produce(&manifest, &dir, todo, tx);
        let loaders = load::load_all(
            sessions,
            Arc::new(schema.tables.clone()),
            Arc::new(schema.session.clone()),
            rx,
            events,
            Some((meter, expected)),
        );
        let (produced, loaded) = tokio::join!(producer, loaders);
        // A verification or fetch error is the cause; a loader error otherwise.
        produced?;
        let (sessions, rows, bytes) = loaded?;
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
        let report = CopyReport {
            coordinates: Some(manifest.coordinates.clone()),
            databases: schema.databases.len() as u64,
            tables: schema.tables.len() as u64,
            rows,
            bytes,
            accounts: schema.accounts.len() as u64,
            objects: schema.objects.len() as u64,
            commit_blocked_ms: 0.0,
        };
        Ok((report, manifest))
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
        let manifest = match self.open().await {
            Ok(o) => o.manifest,
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
        if id != manifest.source.server_id.to_string() {
            out.push(Finding::blocking(
                Role::Master,
                FindingCode::ImageOtherMaster,
                format!(
                    "the image was taken from a server with server_id {}, the master has server_id {id}",
                    manifest.source.server_id
                ),
                "use an image of this master, or take a new one from it",
            ));
        }
        let logs = s.column("SHOW BINARY LOGS", "listing binary logs").await?;
        if !logs.contains(&manifest.coordinates.file) {
            out.push(Finding::blocking(
                Role::Master,
                FindingCode::ImageBinlogPurged,
                format!(
                    "the master no longer has {}, where replication from this image must start",
                    manifest.coordinates.file
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

    fn resumable(&self) -> bool {
        true
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
