//! An image read while it is written: the fan-out's spool, loaded into every replica
//! chunk by chunk as the dump finishes writing each one.
//!
//! The dump ([`crate::ImageBackup::stream`]) tells every reader, in this order: the
//! *head* once the snapshot is taken (the catalog, the coordinates, the source server
//! and the id the readers record their chunks under), each chunk once its file is
//! written and synced (its [`ChunkRef`] and its manifest entry, SHA-256 included), and
//! at the end the manifest and the complete schema (accounts, sequences), written last
//! as in every image. A failed dump says so; a dump that is dropped (cancelled) closes
//! the streams.
//!
//! The dump never waits for a reader: every reader has its own unbounded queue of these
//! small messages (a path, a size and a digest per chunk; the data stay in the spool's
//! files), so a slow or failed replica neither blocks the dump nor the other replicas.
//! The spool is an ordinary image once the dump is done: a replica that failed resumes
//! from it with the complete-image path ([`crate::ImageSource::Local`]), its chunks
//! recorded under the stream's id, which the image's schema carries
//! ([`ImageSchema::stream_id`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use amsu_core::manifest::{FileEntry, Manifest, SourceServer};
use amsu_core::Coordinates;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::image::{ChunkRef, ImageError, ImageSchema};

/// What the readers learn once the snapshot is taken.
#[derive(Debug, Clone)]
pub(crate) struct StreamHead {
    /// The id the readers record loaded chunks under (32 hex digits).
    pub(crate) id: String,
    /// The master.
    pub(crate) source: SourceServer,
    /// The snapshot's coordinates.
    pub(crate) coordinates: Coordinates,
    /// Session settings, databases, tables and objects (no chunks, accounts or
    /// sequences yet: those come with the end of the dump), statements checked.
    pub(crate) schema: ImageSchema,
}

/// One message of the dump to a reader.
#[derive(Debug, Clone)]
pub(crate) enum StreamMsg {
    /// The snapshot is taken.
    Head(Arc<StreamHead>),
    /// A chunk's file is complete.
    Chunk(ChunkRef, FileEntry),
    /// The dump is done: its manifest (written last) and its complete schema.
    Done(Arc<Manifest>, Arc<ImageSchema>),
    /// The dump failed.
    Failed(Arc<str>),
}

/// The dump's side: sends every message to every reader, never waiting for one.
#[derive(Debug, Clone)]
pub(crate) struct StreamWriter {
    inner: Arc<WriterInner>,
}

#[derive(Debug)]
struct WriterInner {
    readers: Vec<UnboundedSender<StreamMsg>>,
    /// Chunks written before the head (non-transactional tables are dumped while commits
    /// are blocked, before the snapshot's coordinates are announced).
    early: Mutex<Option<Vec<StreamMsg>>>,
    ended: AtomicBool,
}

impl StreamWriter {
    /// Sends `msg` to every reader still there.
    fn broadcast(&self, msg: StreamMsg) {
        for r in &self.inner.readers {
            // A reader that is gone only means that replica stopped.
            let _ = r.send(msg.clone());
        }
    }

    /// The snapshot is taken (sent once; the chunks written before follow it).
    pub(crate) fn head(&self, head: StreamHead) {
        let mut early = self.inner.early.lock().expect("stream lock");
        let Some(held) = early.take() else {
            return;
        };
        self.broadcast(StreamMsg::Head(Arc::new(head)));
        for m in held {
            self.broadcast(m);
        }
    }

    /// A chunk's file is complete.
    pub(crate) fn chunk(&self, chunk: ChunkRef, entry: FileEntry) {
        let mut early = self.inner.early.lock().expect("stream lock");
        match early.as_mut() {
            Some(held) => held.push(StreamMsg::Chunk(chunk, entry)),
            None => self.broadcast(StreamMsg::Chunk(chunk, entry)),
        }
    }

    /// The dump is done (the manifest is written).
    pub(crate) fn done(&self, manifest: Manifest, schema: ImageSchema) {
        if !self.inner.ended.swap(true, Ordering::SeqCst) {
            self.broadcast(StreamMsg::Done(Arc::new(manifest), Arc::new(schema)));
        }
    }

    /// The dump failed.
    pub(crate) fn failed(&self, why: &str) {
        if !self.inner.ended.swap(true, Ordering::SeqCst) {
            self.broadcast(StreamMsg::Failed(why.into()));
        }
    }
}

/// A new id for the chunks loaded from one dump (unique per dump: the master, the
/// coordinates, the time and the process).
pub(crate) fn new_stream_id(source: &SourceServer, coordinates: &Coordinates) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "amsu-stream:{}:{coordinates}:{now}:{}",
        source.server_id,
        std::process::id()
    );
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

/// An image being written into a local directory by a dump in this process, read chunk
/// by chunk as the dump writes it: one reader per replica, made by the fan-out
/// ([`crate::fanout::fan_out`]) for the spool it dumps the master into. Clones share the
/// reader (one restore reads it).
#[derive(Clone)]
pub struct ImageStream {
    dir: PathBuf,
    rx: Arc<tokio::sync::Mutex<UnboundedReceiver<StreamMsg>>>,
    head: Arc<tokio::sync::OnceCell<Result<Arc<StreamHead>, HeadError>>>,
}

/// Why a stream has no head.
#[derive(Debug, Clone)]
enum HeadError {
    /// The dump failed or stopped first.
    Stopped(String),
    /// A statement of the catalog is refused ([`ImageSchema::check_statements`]).
    Refused(String),
}

impl std::fmt::Debug for ImageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStream")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The writer of a dump into `dir` and `readers` readers of it.
pub(crate) fn channel(dir: &Path, readers: usize) -> (StreamWriter, Vec<ImageStream>) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..readers).map(|_| unbounded_channel()).unzip();
    let writer = StreamWriter {
        inner: Arc::new(WriterInner {
            readers: txs,
            early: Mutex::new(Some(Vec::new())),
            ended: AtomicBool::new(false),
        }),
    };
    let streams = rxs
        .into_iter()
        .map(|rx| ImageStream {
            dir: dir.to_path_buf(),
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            head: Arc::new(tokio::sync::OnceCell::new()),
        })
        .collect();
    (writer, streams)
}

impl ImageStream {
    /// The image directory the dump writes.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits until the snapshot is taken: its head (the first message), its statements
    /// checked. An error when the dump failed or stopped before.
    pub(crate) async fn head(&self) -> Result<Arc<StreamHead>, ImageError> {
        self.head
            .get_or_init(|| async {
                let mut rx = self.rx.lock().await;
                match rx.recv().await {
                    Some(StreamMsg::Head(h)) => {
                        // The same checks as of an image's schema.json.
                        let mut h = StreamHead::clone(&h);
                        match h.schema.check_statements() {
                            Ok(()) => Ok(Arc::new(h)),
                            Err(e) => Err(HeadError::Refused(e.to_string())),
                        }
                    }
                    Some(StreamMsg::Failed(why)) => Err(HeadError::Stopped(why.to_string())),
                    Some(_) => Err(HeadError::Stopped(
                        "the dump sent data before its snapshot".into(),
                    )),
                    None => Err(HeadError::Stopped(
                        "the dump stopped before its snapshot was taken".into(),
                    )),
                }
            })
            .await
            .clone()
            .map_err(|e| match e {
                HeadError::Stopped(why) => ImageError::DumpStopped(why),
                HeadError::Refused(why) => ImageError::Schema(why),
            })
    }

    /// The next message after the head; an error when the dump failed or stopped.
    pub(crate) async fn next(&self) -> Result<StreamMsg, ImageError> {
        self.head().await?;
        match self.rx.lock().await.recv().await {
            Some(StreamMsg::Failed(why)) => Err(ImageError::DumpStopped(why.to_string())),
            Some(m) => Ok(m),
            None => Err(ImageError::DumpStopped(
                "the dump stopped before it was complete".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> StreamHead {
        let source = SourceServer::new(amsu_core::Flavor::MariaDb, "10.11", 1);
        let coordinates = Coordinates::new("bin.000001", 4);
        StreamHead {
            id: new_stream_id(&source, &coordinates),
            source,
            coordinates,
            schema: ImageSchema {
                session: Default::default(),
                databases: vec![],
                tables: vec![],
                objects: vec![],
                accounts: vec![],
                sequences: vec![],
                chunks: vec![],
                stream_id: None,
            },
        }
    }

    fn chunk(n: usize) -> (ChunkRef, FileEntry) {
        let path = format!("data/{n:06}.tsv");
        (
            ChunkRef {
                path: path.clone(),
                table: 0,
                rows: 1,
                zstd: false,
            },
            FileEntry::new(path, 1, "00"),
        )
    }

    #[tokio::test]
    async fn chunks_written_before_the_head_follow_it_and_a_gone_reader_blocks_nothing() {
        let (w, mut readers) = channel(Path::new("/spool"), 2);
        let gone = readers.pop().unwrap();
        drop(gone);
        let r = readers.pop().unwrap();
        let (c, e) = chunk(1);
        w.chunk(c, e);
        w.head(head());
        w.head(head()); // once only
        let (c, e) = chunk(2);
        w.chunk(c, e);
        let h = r.head().await.unwrap();
        assert_eq!(h.id.len(), 32);
        for n in [1, 2] {
            match r.next().await.unwrap() {
                StreamMsg::Chunk(c, _) => assert_eq!(c.path, format!("data/{n:06}.tsv")),
                m => panic!("{m:?}"),
            }
        }
        w.failed("boom");
        w.failed("twice");
        assert!(matches!(r.next().await, Err(ImageError::DumpStopped(s)) if s == "boom"));
    }

    #[tokio::test]
    async fn a_dropped_dump_ends_the_stream() {
        let (w, readers) = channel(Path::new("/spool"), 1);
        drop(w);
        assert!(matches!(
            readers[0].head().await,
            Err(ImageError::DumpStopped(_))
        ));
        assert!(readers[0].next().await.is_err());
    }
}
