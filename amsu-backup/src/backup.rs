//! `amsu backup`: a consistent snapshot of the master written as an image directory.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use amsu_core::manifest::{FileEntry, Manifest, SourceServer};
use amsu_core::{Coordinates, CopyReport, EventSink, ServerAddr};
use amsu_mysql::conn::Session;
use amsu_mysql::MysqlError;
use async_trait::async_trait;

use crate::encode::push_values;
use crate::image::{ChunkRef, ImageError, ImageSchema, ImageWriter};
use crate::image_stream::{StreamHead, StreamWriter};
use crate::snapshot::{self, Catalog, ChunkJob, ChunkSink};

/// Writes a consistent image of a master into a local directory.
#[derive(Debug, Clone)]
pub struct ImageBackup {
    master: ServerAddr,
    dir: PathBuf,
    threads: usize,
    chunk_bytes: u64,
    zstd: Option<i32>,
    key: Option<crate::ImageKey>,
    on_file: Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<FileEntry>>>>,
    stream: Option<StreamWriter>,
}

impl ImageBackup {
    /// A backup of `master` into `dir`: 2 worker connections, chunks of about 32 MiB,
    /// no compression.
    pub fn new(master: ServerAddr, dir: impl Into<PathBuf>) -> Self {
        ImageBackup {
            master,
            dir: dir.into(),
            threads: 2,
            chunk_bytes: 32 << 20,
            zstd: None,
            key: None,
            on_file: Arc::default(),
            stream: None,
        }
    }

    /// Streams the image to readers while it is written (see [`crate::image_stream`]):
    /// its head once the snapshot is taken, each chunk once its file is complete, the
    /// manifest and schema at the end (or the failure). The image carries the stream's id
    /// in its schema, for a resume of a replica that loaded from the stream.
    pub(crate) fn stream(mut self, writer: StreamWriter) -> Self {
        self.stream = Some(writer);
        self
    }

    /// Sends every data chunk's manifest entry to `tx` as soon as its file is complete
    /// (written and synced), while the dump goes on: an upload can stream the image as it
    /// is written. The sender is dropped when [`run`](Self::run) returns, so the receiver
    /// ends there.
    pub fn on_file(mut self, tx: tokio::sync::mpsc::UnboundedSender<FileEntry>) -> Self {
        self.on_file = Arc::new(Mutex::new(Some(tx)));
        self
    }

    /// Parallel worker connections on the master.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Target size of a chunk of table data.
    pub fn chunk_bytes(mut self, bytes: u64) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// Compresses chunks with zstd at `level` (`None`: plain), multi-threaded: each of
    /// the `threads` writers gets its share of the machine's cores.
    pub fn zstd(mut self, level: Option<i32>) -> Self {
        self.zstd = level;
        self
    }

    /// Signs the image with `key` (`manifest.sig`); `None`, the default: unsigned.
    pub fn key(mut self, key: Option<crate::ImageKey>) -> Self {
        self.key = key;
        self
    }

    /// Takes the snapshot and writes the image; returns its manifest (written last) and
    /// what was dumped.
    pub async fn run(
        &self,
        events: Arc<dyn EventSink>,
    ) -> Result<(Manifest, CopyReport), ImageError> {
        let r = self.write(events).await;
        if let (Err(e), Some(stream)) = (&r, &self.stream) {
            stream.failed(&e.to_string());
        }
        r
    }

    async fn write(
        &self,
        events: Arc<dyn EventSink>,
    ) -> Result<(Manifest, CopyReport), ImageError> {
        let on_file = self.on_file.lock().expect("lock").take();
        let writer = Arc::new(
            ImageWriter::create(&self.dir)?
                .zstd(self.zstd)
                .zstd_workers(ImageWriter::auto_zstd_workers(self.threads))
                .key(self.key.clone()),
        );
        let mut ctl = Session::open(&self.master).await?;
        let cat = Catalog::read(
            &self.master,
            &mut ctl,
            self.threads,
            snapshot::BUSY_WAIT,
            &events,
        )
        .await?;
        let source = source_of(&cat, &mut ctl).await?;
        let head = self.stream.as_ref().map(|w| {
            Arc::new(HeadParts {
                writer: w.clone(),
                source: source.clone(),
                schema: ImageSchema {
                    session: snapshot::dump_settings(),
                    databases: cat.databases.clone(),
                    tables: cat.tables.clone(),
                    objects: cat.objects.clone(),
                    accounts: vec![],
                    sequences: vec![],
                    chunks: vec![],
                    stream_id: None,
                },
                id: Mutex::new(None),
            })
        });
        let done = Arc::new(Mutex::new(Vec::new()));
        let sinks = (0..self.threads)
            .map(|_| FileSink {
                writer: writer.clone(),
                done: done.clone(),
                on_file: on_file.clone(),
                stream: head.clone(),
            })
            .collect();
        let (dumped, _) = snapshot::dump(
            &self.master,
            &mut ctl,
            &cat,
            sinks,
            self.chunk_bytes,
            &events,
        )
        .await?;
        drop(on_file);
        let mut done = std::mem::take(&mut *done.lock().expect("lock"));
        done.sort_by(|a: &(ChunkRef, FileEntry), b| a.0.path.cmp(&b.0.path));
        let schema = ImageSchema {
            session: snapshot::dump_settings(),
            databases: cat.databases.clone(),
            tables: cat.tables.clone(),
            objects: cat.objects.clone(),
            accounts: dumped.accounts,
            sequences: dumped.sequences,
            chunks: done.iter().map(|(c, _)| c.clone()).collect(),
            stream_id: head
                .as_ref()
                .and_then(|h| h.id.lock().expect("lock").clone()),
        };
        let writer = Arc::try_unwrap(writer).expect("the sinks are gone");
        let report = CopyReport::new(dumped.coordinates.clone())
            .with_catalog(
                schema.databases.len() as u64,
                schema.tables.len() as u64,
                schema.accounts.len() as u64,
                schema.objects.len() as u64,
            )
            .with_data(dumped.rows, dumped.bytes)
            .with_commit_blocked_ms(dumped.blocked_ms);
        let manifest = writer.finish(
            "logical",
            source,
            dumped.coordinates,
            &schema,
            done.into_iter().map(|(_, e)| e).collect(),
        )?;
        if let Some(stream) = &self.stream {
            stream.done(manifest.clone(), schema);
        }
        Ok((manifest, report))
    }
}

/// The manifest's source description.
pub(crate) async fn source_of(
    cat: &Catalog,
    ctl: &mut Session,
) -> Result<SourceServer, MysqlError> {
    let uuid = match cat.info.flavor {
        amsu_core::Flavor::MySql => ctl
            .column("SELECT @@server_uuid", "reading server_uuid")
            .await?
            .into_iter()
            .next(),
        amsu_core::Flavor::MariaDb => None,
    };
    Ok(SourceServer::new(
        cat.info.flavor,
        cat.info.version_string.clone(),
        cat.info.server_id,
    )
    .with_uuid(uuid))
}

struct FileSink {
    writer: Arc<ImageWriter>,
    done: Arc<Mutex<Vec<(ChunkRef, FileEntry)>>>,
    on_file: Option<tokio::sync::mpsc::UnboundedSender<FileEntry>>,
    stream: Option<Arc<HeadParts>>,
}

/// What a streamed image's head is made of, known before the snapshot.
struct HeadParts {
    writer: StreamWriter,
    source: SourceServer,
    schema: ImageSchema,
    /// The stream's id, once the snapshot is taken.
    id: Mutex<Option<String>>,
}

#[async_trait]
impl ChunkSink for FileSink {
    async fn write(
        &mut self,
        master: &mut Session,
        job: &ChunkJob,
    ) -> Result<(u64, u64), ImageError> {
        let sql = job.select();
        let what = format!(
            "reading {} {}",
            job.chunk.table.qualified(),
            job.chunk.filter
        );
        let mut file = self.writer.chunk(job.number)?;
        let mut res = master.stream_rows(&sql, &what).await?;
        let mut buf = Vec::with_capacity(1 << 20);
        let (mut rows, mut bytes) = (0u64, 0u64);
        while let Some(row) = res.next().await? {
            push_values(&mut buf, &row);
            rows += 1;
            if buf.len() >= 1 << 20 {
                bytes += buf.len() as u64;
                file.write(&buf)?;
                buf.clear();
            }
        }
        drop(res);
        bytes += buf.len() as u64;
        file.write(&buf)?;
        let entry = file.finish()?;
        let chunk = ChunkRef {
            path: entry.path.clone(),
            table: job.table,
            rows,
            zstd: self.writer.compressed(),
        };
        if let Some(tx) = &self.on_file {
            // A receiver that is gone only means nobody streams the image.
            let _ = tx.send(entry.clone());
        }
        if let Some(h) = &self.stream {
            h.writer.chunk(chunk.clone(), entry.clone());
        }
        self.done.lock().expect("lock").push((chunk, entry));
        Ok((rows, bytes))
    }

    async fn snapshot_taken(&mut self, coordinates: &Coordinates) -> Result<(), ImageError> {
        if let Some(h) = &self.stream {
            let mut id = h.id.lock().expect("lock");
            if id.is_none() {
                let new = crate::image_stream::new_stream_id(&h.source, coordinates);
                *id = Some(new.clone());
                h.writer.head(StreamHead {
                    id: new,
                    source: h.source.clone(),
                    coordinates: coordinates.clone(),
                    schema: h.schema.clone(),
                });
            }
        }
        Ok(())
    }
}
