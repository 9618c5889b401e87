//! The image format: a directory with
//!
//! ```text
//! manifest.json          core Manifest: version, method, source, coordinates, every file
//!                        with size and SHA-256; written LAST (its presence = complete)
//! schema.json            ImageSchema: session settings, databases, tables, objects,
//!                        accounts, and the chunk list (file → table by index)
//! data/000001.tsv        chunks in the encode.rs text format (`.tsv.zst`: zstd)
//! data/000002.tsv …
//! ```
//!
//! Chunk files are named by a running number only, never from identifiers; `schema.json`
//! maps each one to its table by index. [`ImageWriter`] writes an image, [`ImageReader`]
//! opens one and verifies every file against the manifest before it is used.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use amsu_core::manifest::{
    check_relative_path, FileEntry, Manifest, ManifestError, SourceServer, MANIFEST_FILE,
    SIGNATURE_FILE,
};
use amsu_core::Coordinates;
use amsu_mysql::statement::{self, Expected, ObjectKeyword, StatementError};
use amsu_mysql::MysqlError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::{
    Account, Database, ObjectKind, SchemaObject, SequenceState, Table, TableKind,
};
use crate::{BackupError, ImageKey};

/// The schema file of an image.
pub(crate) const SCHEMA_FILE: &str = "schema.json";

/// The directory of the data chunks inside an image.
pub(crate) const DATA_DIR: &str = "data";

/// Why an image could not be written, read or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The directory has no `manifest.json`: not an image, or an incomplete one.
    #[error("{location} has no {MANIFEST_FILE}: not an amsu image, or an incomplete one (the manifest is written last)")]
    NoManifest {
        /// Where the image was looked for.
        location: String,
    },
    /// The manifest was rejected (malformed, unknown version, unsafe path).
    #[error("the manifest of {location} is rejected: {source}")]
    Manifest {
        /// Where the image is.
        location: String,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// `schema.json` is not valid, or refers to files or tables that do not exist.
    #[error("the image's {SCHEMA_FILE} is not valid: {0}")]
    Schema(String),
    /// A file's size or SHA-256 does not match the manifest; nothing was loaded from it.
    #[error("{path}: does not match the manifest (expected {expected}, found {actual}); nothing was loaded from it")]
    Checksum {
        /// The image path of the file.
        path: String,
        /// Expected size/checksum.
        expected: String,
        /// Found size/checksum.
        actual: String,
    },
    /// A file the manifest lists is not in the image.
    #[error("{path}: listed in the manifest but missing from the image")]
    Missing {
        /// The image path of the file.
        path: String,
    },
    /// A statement in `schema.json` is not exactly one statement creating what it says.
    #[error("{SCHEMA_FILE}: {object} is refused: {source}")]
    Statement {
        /// Which statement (`the definition of table `d`.`t``).
        object: String,
        /// Why.
        #[source]
        source: StatementError,
    },
    /// An image key was given and the image has no signature.
    #[error("{location} has no {SIGNATURE_FILE}: the image is not signed, and an image key was given, which requires a signed image")]
    Unsigned {
        /// Where the image is.
        location: String,
    },
    /// The signature does not match the manifest and the key.
    #[error("{location}: {SIGNATURE_FILE} does not match {MANIFEST_FILE} with this key (a wrong key, or the manifest was changed after signing)")]
    BadSignature {
        /// Where the image is.
        location: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The local path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A transfer from or to the image's location failed.
    #[error(transparent)]
    Transfer(#[from] amsu_transfer::TransferError),
    /// The backup or the load failed on a server.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// A precondition of the `outfile` method does not hold (privilege, directory, FTP).
    #[error("outfile method: {0}")]
    Outfile(String),
    /// An interrupted restore cannot be resumed.
    #[error("cannot resume the restore: {0}; restore again from the start, forced to drop the partly restored data")]
    Resume(String),
    /// The dump an image is read from while it is written (a fan-out's spool) failed or
    /// stopped before it was complete.
    #[error("the master's dump stopped before the image was complete: {0}")]
    DumpStopped(String),
}

impl From<MysqlError> for ImageError {
    fn from(e: MysqlError) -> Self {
        ImageError::Backup(BackupError::Mysql(e))
    }
}

impl ImageError {
    /// True when the image itself is refused (missing or invalid manifest, schema or
    /// signature, a file missing or not matching the manifest, a statement that is not
    /// what it should be), as opposed to a failure of a server or of the network.
    pub fn is_refusal(&self) -> bool {
        use amsu_transfer::TransferError as T;
        match self {
            ImageError::NoManifest { .. }
            | ImageError::Manifest { .. }
            | ImageError::Schema(_)
            | ImageError::Checksum { .. }
            | ImageError::Missing { .. }
            | ImageError::Statement { .. }
            | ImageError::Unsigned { .. }
            | ImageError::BadSignature { .. } => true,
            ImageError::Transfer(t) => matches!(
                t,
                T::SizeMismatch { .. }
                    | T::ChecksumMismatch { .. }
                    | T::UnsafePath { .. }
                    | T::Manifest { .. }
            ),
            _ => false,
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> ImageError {
        ImageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The session settings the data was dumped with; every loading session uses the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionSettings {
    /// `time_zone` of the dump (TIMESTAMP values are written in it).
    pub time_zone: String,
    /// `sql_mode` to load with.
    pub sql_mode: String,
    /// Character set of the chunk bytes (`binary`: the bytes as stored).
    pub character_set: String,
}

impl Default for SessionSettings {
    /// The settings amsu dumps with: UTC, `NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION`,
    /// binary.
    fn default() -> Self {
        SessionSettings {
            time_zone: "+00:00".into(),
            sql_mode: "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION".into(),
            character_set: "binary".into(),
        }
    }
}

/// One data chunk: its file and the index of its table in [`ImageSchema::tables`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChunkRef {
    /// Image path of the file (`data/NNNNNN.tsv` or `.tsv.zst`).
    pub path: String,
    /// Index into [`ImageSchema::tables`].
    pub table: usize,
    /// Rows in the chunk.
    pub rows: u64,
    /// True when the file is zstd-compressed.
    pub zstd: bool,
}

/// The contents of `schema.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImageSchema {
    /// Session settings of the dump, applied to every loading session.
    pub session: SessionSettings,
    /// Databases.
    pub databases: Vec<Database>,
    /// Tables (chunks refer to them by index).
    pub tables: Vec<Table>,
    /// Views, routines, triggers, events (created after the data).
    pub objects: Vec<SchemaObject>,
    /// Accounts and roles (created after the data).
    pub accounts: Vec<Account>,
    /// The state of every sequence at the snapshot (the sequences themselves are among
    /// the tables).
    #[serde(default)]
    pub sequences: Vec<SequenceState>,
    /// The data chunks.
    pub chunks: Vec<ChunkRef>,
    /// The id the chunks were recorded under on replicas that loaded the image while it
    /// was written (a fan-out's spool, see [`crate::fanout`]): a resume from the
    /// complete image finds their records under it. `None`: an image written otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

impl ImageSchema {
    /// Checks that every chunk names a table that exists and a file of the manifest.
    pub(crate) fn validate(&self, manifest: &Manifest) -> Result<(), ImageError> {
        for c in &self.chunks {
            check_relative_path(&c.path)
                .map_err(|_| ImageError::Schema(format!("unsafe chunk path {:?}", c.path)))?;
            if c.table >= self.tables.len() {
                return Err(ImageError::Schema(format!(
                    "chunk {} refers to table #{} of {}",
                    c.path,
                    c.table,
                    self.tables.len()
                )));
            }
            if !manifest.files.iter().any(|f| f.path == c.path) {
                return Err(ImageError::Schema(format!(
                    "chunk {} is not listed in the manifest",
                    c.path
                )));
            }
        }
        Ok(())
    }
}

impl ImageSchema {
    /// Checks every piece of SQL text of the schema before any of it is sent: each
    /// definition is exactly one statement creating the object it is listed as (see
    /// [`amsu_mysql::statement`]), each grant names its own account, sequence states are
    /// integers. A trailing `;` is dropped from the text that is kept.
    pub(crate) fn check_statements(&mut self) -> Result<(), ImageError> {
        fn checked(
            sql: &mut String,
            e: Expected<'_>,
            object: impl FnOnce() -> String,
        ) -> Result<(), ImageError> {
            let kept = statement::check(sql, &e)
                .map_err(|source| ImageError::Statement {
                    object: object(),
                    source,
                })?
                .to_string();
            *sql = kept;
            Ok(())
        }
        for d in &mut self.databases {
            let name = d.name.clone();
            checked(&mut d.create_sql, Expected::Database(&name), || {
                format!("the definition of database `{name}`")
            })?;
        }
        for t in &mut self.tables {
            let (db, name) = (t.db.clone(), t.name.clone());
            let e = match t.kind {
                TableKind::Sequence => Expected::Sequence {
                    db: &db,
                    name: &name,
                },
                _ => Expected::Table {
                    db: &db,
                    name: &name,
                },
            };
            checked(&mut t.create_sql, e, || {
                format!("the definition of table `{db}`.`{name}`")
            })?;
        }
        for o in &mut self.objects {
            let (db, name) = (o.db.clone(), o.name.clone());
            let kind = match o.kind {
                ObjectKind::View => ObjectKeyword::View,
                ObjectKind::Procedure => ObjectKeyword::Procedure,
                ObjectKind::Function => ObjectKeyword::Function,
                ObjectKind::Trigger => ObjectKeyword::Trigger,
                ObjectKind::Event => ObjectKeyword::Event,
                ObjectKind::Package => ObjectKeyword::Package,
                ObjectKind::PackageBody => ObjectKeyword::PackageBody,
            };
            let e = Expected::Object {
                kind,
                db: &db,
                name: &name,
            };
            checked(&mut o.create_sql, e, || {
                format!(
                    "the definition of {} `{db}`.`{name}`",
                    format!("{:?}", o.kind).to_lowercase()
                )
            })?;
        }
        for a in &mut self.accounts {
            let (user, host) = (a.user.clone(), a.host.clone());
            let shown = || {
                if a.is_role {
                    format!("role '{user}'")
                } else {
                    format!("account '{user}'@'{host}'")
                }
            };
            let e = if a.is_role {
                Expected::Role(&user)
            } else {
                Expected::User {
                    user: &user,
                    host: &host,
                }
            };
            checked(&mut a.create_sql, e, || {
                format!("the definition of {}", shown())
            })?;
            for g in &mut a.grants {
                let e = Expected::Grant {
                    user: &user,
                    host: (!a.is_role).then_some(host.as_str()),
                };
                checked(g, e, || format!("a grant of {}", shown()))?;
            }
        }
        let integer = |v: &str| {
            !v.is_empty()
                && v.trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_digit())
        };
        for st in &self.sequences {
            if !integer(&st.next_value) || !integer(&st.cycle_count) {
                return Err(ImageError::Schema(format!(
                    "the state of sequence `{}`.`{}` is not a pair of integers",
                    st.db, st.name
                )));
            }
        }
        Ok(())
    }
}

/// The image path of chunk number `n` (1-based).
pub(crate) fn chunk_path(n: usize, zstd: bool) -> String {
    format!("{DATA_DIR}/{n:06}.tsv{}", if zstd { ".zst" } else { "" })
}

/// A chunk file being written: hashes and counts the bytes as they go to disk.
pub struct ChunkFile {
    path: String,
    local: PathBuf,
    out: ChunkOut,
    hasher: Sha256,
    size: u64,
}

enum ChunkOut {
    Plain(io::BufWriter<std::fs::File>),
    Zstd(zstd::Encoder<'static, HashingWriter>),
}

/// The compressed stream's sink: hashes and counts what reaches the file.
struct HashingWriter {
    file: io::BufWriter<std::fs::File>,
    hasher: Sha256,
    size: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl ChunkFile {
    /// Appends encoded bytes.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        let r = match &mut self.out {
            ChunkOut::Plain(w) => {
                self.hasher.update(bytes);
                self.size += bytes.len() as u64;
                w.write_all(bytes)
            }
            ChunkOut::Zstd(z) => z.write_all(bytes),
        };
        r.map_err(|e| ImageError::io(&self.local, e))
    }

    /// Flushes and syncs the file and returns its manifest entry.
    pub(crate) fn finish(self) -> Result<FileEntry, ImageError> {
        let local = self.local;
        let (file, hasher, size) = match self.out {
            ChunkOut::Plain(w) => (w, self.hasher, self.size),
            ChunkOut::Zstd(z) => {
                let h = z.finish().map_err(|e| ImageError::io(&local, e))?;
                (h.file, h.hasher, h.size)
            }
        };
        let file = file
            .into_inner()
            .map_err(|e| ImageError::io(&local, e.into_error()))?;
        file.sync_all().map_err(|e| ImageError::io(&local, e))?;
        Ok(FileEntry::new(
            self.path,
            size,
            hex::encode(hasher.finalize()),
        ))
    }
}

/// Writes an image into a local directory: chunks, then [`ImageWriter::finish`] writes
/// `schema.json` and, last, `manifest.json`.
#[derive(Debug)]
pub struct ImageWriter {
    dir: PathBuf,
    zstd: Option<i32>,
    zstd_workers: u32,
    key: Option<ImageKey>,
}

impl ImageWriter {
    /// An image in `dir` (created if missing). An existing `manifest.json` there is
    /// removed first, so the directory is never taken for a complete image while written.
    pub fn create(dir: impl Into<PathBuf>) -> Result<ImageWriter, ImageError> {
        let dir = dir.into();
        let data = dir.join(DATA_DIR);
        std::fs::create_dir_all(&data).map_err(|e| ImageError::io(&data, e))?;
        for f in [MANIFEST_FILE, SIGNATURE_FILE] {
            let m = dir.join(f);
            match std::fs::remove_file(&m) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(ImageError::io(&m, e)),
            }
        }
        Ok(ImageWriter {
            dir,
            zstd: None,
            zstd_workers: 0,
            key: None,
        })
    }

    /// Signs the image with `key` (`manifest.sig`, written just before the manifest);
    /// `None`: unsigned, the default.
    pub fn key(mut self, key: Option<ImageKey>) -> Self {
        self.key = key;
        self
    }

    /// Compresses chunks with zstd at `level` (`None`: plain `.tsv`, the default).
    pub fn zstd(mut self, level: Option<i32>) -> Self {
        self.zstd = level;
        self
    }

    /// Background threads compressing each chunk (zstd's multi-threaded mode); 0, the
    /// default, compresses in the writing thread. The format is the same either way.
    pub fn zstd_workers(mut self, n: u32) -> Self {
        self.zstd_workers = n;
        self
    }

    /// The zstd workers per chunk that fill the machine's cores when `writers` chunks
    /// are written at once: cores ÷ writers, at least 1 (compression then overlaps the
    /// reading of rows).
    pub fn auto_zstd_workers(writers: usize) -> u32 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.div_ceil(writers.max(1)).max(1) as u32
    }

    /// The image directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when chunks are compressed.
    pub fn compressed(&self) -> bool {
        self.zstd.is_some()
    }

    /// Starts chunk number `n` (1-based).
    pub fn chunk(&self, n: usize) -> Result<ChunkFile, ImageError> {
        let path = chunk_path(n, self.zstd.is_some());
        let local = self.dir.join(&path);
        let f = std::fs::File::create(&local).map_err(|e| ImageError::io(&local, e))?;
        let file = io::BufWriter::with_capacity(256 << 10, f);
        let out = match self.zstd {
            None => ChunkOut::Plain(file),
            Some(level) => {
                let mut z = zstd::Encoder::new(
                    HashingWriter {
                        file,
                        hasher: Sha256::new(),
                        size: 0,
                    },
                    level,
                )
                .map_err(|e| ImageError::io(&local, e))?;
                if self.zstd_workers > 0 {
                    z.multithread(self.zstd_workers)
                        .map_err(|e| ImageError::io(&local, e))?;
                }
                ChunkOut::Zstd(z)
            }
        };
        Ok(ChunkFile {
            path,
            local,
            out,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Writes `schema.json`, then the manifest listing `chunks` and the schema file.
    /// Returns the manifest.
    pub fn finish(
        self,
        method: &str,
        source: SourceServer,
        coordinates: Coordinates,
        schema: &ImageSchema,
        mut chunks: Vec<FileEntry>,
    ) -> Result<Manifest, ImageError> {
        let text = serde_json::to_vec_pretty(schema).expect("a schema always serializes");
        let sp = self.dir.join(SCHEMA_FILE);
        write_synced(&sp, &text)?;
        chunks.sort_by(|a, b| a.path.cmp(&b.path));
        let mut files = vec![FileEntry::new(
            SCHEMA_FILE,
            text.len() as u64,
            hex::encode(Sha256::digest(&text)),
        )];
        files.extend(chunks);
        let manifest = Manifest::new(method, source, coordinates, files);
        schema.validate(&manifest)?;
        let text = manifest.to_json();
        if let Some(key) = &self.key {
            write_synced(
                &self.dir.join(SIGNATURE_FILE),
                key.sign(text.as_bytes()).as_bytes(),
            )?;
        }
        write_synced(&self.dir.join(MANIFEST_FILE), text.as_bytes())?;
        Ok(manifest)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".amsu-tmp");
    let tmp = path.with_file_name(name);
    let mut f = std::fs::File::create(&tmp).map_err(|e| ImageError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| ImageError::io(&tmp, e))?;
    f.sync_all().map_err(|e| ImageError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ImageError::io(path, e))
}

/// Parses a manifest's text, naming `location` in errors.
pub(crate) fn parse_manifest(text: &str, location: &str) -> Result<Manifest, ImageError> {
    let m = Manifest::from_json(text).map_err(|source| ImageError::Manifest {
        location: location.into(),
        source,
    })?;
    let mut seen = std::collections::BTreeSet::new();
    for f in &m.files {
        if f.path == MANIFEST_FILE || !seen.insert(f.path.as_str()) {
            return Err(ImageError::Manifest {
                location: location.into(),
                source: ManifestError::UnsafePath {
                    path: f.path.clone(),
                },
            });
        }
    }
    if !m.files.iter().any(|f| f.path == SCHEMA_FILE) {
        return Err(ImageError::Schema(format!(
            "the manifest of {location} lists no {SCHEMA_FILE}"
        )));
    }
    Ok(m)
}

/// Parses `schema.json` and checks it against the manifest and every statement in it
/// ([`ImageSchema::check_statements`]).
pub(crate) fn parse_schema(bytes: &[u8], manifest: &Manifest) -> Result<ImageSchema, ImageError> {
    let mut s: ImageSchema =
        serde_json::from_slice(bytes).map_err(|e| ImageError::Schema(e.to_string()))?;
    s.validate(manifest)?;
    s.check_statements()?;
    Ok(s)
}

/// Checks a local file's size and SHA-256 against its manifest entry.
pub(crate) async fn verify_file(local: &Path, entry: &FileEntry) -> Result<(), ImageError> {
    let size = match tokio::fs::metadata(local).await {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ImageError::Missing {
                path: entry.path.clone(),
            })
        }
        Err(e) => return Err(ImageError::io(local, e)),
    };
    if size != entry.size {
        return Err(ImageError::Checksum {
            path: entry.path.clone(),
            expected: format!("{} bytes", entry.size),
            actual: format!("{size} bytes"),
        });
    }
    let sum = amsu_transfer::sha256_file(local).await?;
    if !sum.eq_ignore_ascii_case(&entry.sha256) {
        return Err(ImageError::Checksum {
            path: entry.path.clone(),
            expected: format!("sha256 {}", entry.sha256),
            actual: format!("sha256 {sum}"),
        });
    }
    Ok(())
}

/// An image in a local directory, opened and checked: manifest present, known version,
/// safe paths, `schema.json` matching its checksum and consistent.
#[derive(Debug, Clone)]
pub struct ImageReader {
    dir: PathBuf,
    manifest: Manifest,
    schema: ImageSchema,
}

impl ImageReader {
    /// Opens the image in `dir` (a signature, if any, is not checked).
    pub async fn open(dir: impl Into<PathBuf>) -> Result<ImageReader, ImageError> {
        Self::open_with(dir, None).await
    }

    /// Opens the image in `dir`; with a `key`, the image must carry a signature made
    /// with it ([`ImageError::Unsigned`], [`ImageError::BadSignature`]), checked before
    /// anything else of the image is read.
    pub async fn open_with(
        dir: impl Into<PathBuf>,
        key: Option<&ImageKey>,
    ) -> Result<ImageReader, ImageError> {
        let dir = dir.into();
        let location = dir.display().to_string();
        let mp = dir.join(MANIFEST_FILE);
        let text = match tokio::fs::read_to_string(&mp).await {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::NoManifest { location })
            }
            Err(e) => return Err(ImageError::io(&mp, e)),
        };
        if let Some(key) = key {
            let sp = dir.join(SIGNATURE_FILE);
            let sig = match tokio::fs::read_to_string(&sp).await {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ImageError::Unsigned { location })
                }
                Err(e) => return Err(ImageError::io(&sp, e)),
            };
            if !key.verify(text.as_bytes(), &sig) {
                return Err(ImageError::BadSignature { location });
            }
        }
        let manifest = parse_manifest(&text, &location)?;
        let entry = manifest
            .files
            .iter()
            .find(|f| f.path == SCHEMA_FILE)
            .expect("checked");
        let sp = dir.join(SCHEMA_FILE);
        verify_file(&sp, entry).await?;
        let bytes = tokio::fs::read(&sp)
            .await
            .map_err(|e| ImageError::io(&sp, e))?;
        let schema = parse_schema(&bytes, &manifest)?;
        Ok(ImageReader {
            dir,
            manifest,
            schema,
        })
    }

    /// Verifies every file the manifest lists (size and SHA-256), the first failure
    /// returned: a missing file ([`ImageError::Missing`]), a wrong size or checksum
    /// ([`ImageError::Checksum`]).
    pub async fn verify_files(&self) -> Result<(), ImageError> {
        for f in &self.manifest.files {
            verify_file(&self.dir.join(&f.path), f).await?;
        }
        Ok(())
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The schema.
    pub fn schema(&self) -> &ImageSchema {
        &self.schema
    }

    /// The image directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest entry of an image path.
    pub fn entry(&self, path: &str) -> Option<&FileEntry> {
        self.manifest.files.iter().find(|f| f.path == path)
    }

    /// Verifies chunk `i` against the manifest and returns its local path.
    pub async fn verified_chunk(&self, i: usize) -> Result<PathBuf, ImageError> {
        let c = self
            .schema
            .chunks
            .get(i)
            .ok_or_else(|| ImageError::Schema(format!("no chunk #{i}")))?;
        let entry = self.entry(&c.path).expect("validated");
        let local = self.dir.join(&c.path);
        verify_file(&local, entry).await?;
        Ok(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amsu_core::Flavor;

    fn source() -> SourceServer {
        SourceServer::new(Flavor::MariaDb, "10.11", 1)
    }

    fn table() -> Table {
        Table {
            db: "d".into(),
            name: "t".into(),
            kind: crate::catalog::TableKind::Base,
            engine: "InnoDB".into(),
            rows_estimate: 0,
            data_length: 0,
            columns: vec![],
            chunk_key: None,
            create_sql: "CREATE TABLE `t` (a int)".into(),
        }
    }

    async fn write(dir: &Path, zstd: Option<i32>) -> Manifest {
        write_keyed(dir, zstd, None).await
    }

    async fn write_keyed(dir: &Path, zstd: Option<i32>, key: Option<ImageKey>) -> Manifest {
        let w = ImageWriter::create(dir).unwrap().zstd(zstd).key(key);
        let mut c = w.chunk(1).unwrap();
        c.write(b"1\ta\\tb\n2\t\\N\n").unwrap();
        let e = c.finish().unwrap();
        let schema = ImageSchema {
            session: SessionSettings::default(),
            databases: vec![],
            tables: vec![table()],
            objects: vec![],
            accounts: vec![],
            sequences: vec![],
            chunks: vec![ChunkRef {
                path: e.path.clone(),
                table: 0,
                rows: 2,
                zstd: zstd.is_some(),
            }],
            stream_id: None,
        };
        w.finish(
            "logical",
            source(),
            Coordinates::new("b.000001", 4),
            &schema,
            vec![e],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn writes_and_reads_back() {
        for z in [None, Some(3)] {
            let d = tempfile::tempdir().unwrap();
            let m = write(d.path(), z).await;
            let r = ImageReader::open(d.path()).await.unwrap();
            assert_eq!(r.manifest(), &m);
            assert_eq!(r.schema().chunks.len(), 1);
            let p = r.verified_chunk(0).await.unwrap();
            let bytes = std::fs::read(&p).unwrap();
            let plain = if z.is_some() {
                zstd::decode_all(&bytes[..]).unwrap()
            } else {
                bytes
            };
            assert_eq!(plain, b"1\ta\\tb\n2\t\\N\n");
        }
    }

    /// Multi-threaded compression writes the same format: a plain zstd stream that
    /// decodes to exactly what was written, with the manifest's size and checksum.
    #[test]
    fn multithreaded_zstd_chunks_decode_to_what_was_written() {
        let d = tempfile::tempdir().unwrap();
        let w = ImageWriter::create(d.path())
            .unwrap()
            .zstd(Some(3))
            .zstd_workers(2);
        let mut c = w.chunk(1).unwrap();
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{i}\tvalue {}\n", i % 977).into_bytes())
            .collect();
        for piece in text.chunks(1 << 20) {
            c.write(piece).unwrap();
        }
        let e = c.finish().unwrap();
        let bytes = std::fs::read(d.path().join(&e.path)).unwrap();
        assert_eq!(e.size, bytes.len() as u64);
        assert_eq!(e.sha256, hex::encode(Sha256::digest(&bytes)));
        assert!(bytes.len() < text.len() / 2);
        assert_eq!(zstd::decode_all(&bytes[..]).unwrap(), text);
        assert!(ImageWriter::auto_zstd_workers(2) >= 1);
    }

    fn key(b: u8) -> ImageKey {
        ImageKey::new(vec![b; 32]).unwrap()
    }

    #[tokio::test]
    async fn signed_images_need_the_right_key() {
        let d = tempfile::tempdir().unwrap();
        write_keyed(d.path(), None, Some(key(1))).await;
        ImageReader::open_with(d.path(), Some(&key(1)))
            .await
            .unwrap();
        ImageReader::open(d.path()).await.unwrap();
        assert!(matches!(
            ImageReader::open_with(d.path(), Some(&key(2))).await,
            Err(ImageError::BadSignature { .. })
        ));
        // A manifest changed after signing.
        let mp = d.path().join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&mp).unwrap();
        std::fs::write(&mp, text.replace("\"b.000001\"", "\"b.000002\"")).unwrap();
        assert!(matches!(
            ImageReader::open_with(d.path(), Some(&key(1))).await,
            Err(ImageError::BadSignature { .. })
        ));
        let e = tempfile::tempdir().unwrap();
        write(e.path(), None).await;
        let err = ImageReader::open_with(e.path(), Some(&key(1)))
            .await
            .unwrap_err();
        assert!(matches!(err, ImageError::Unsigned { .. }), "{err}");
        assert!(err.is_refusal());
    }

    #[tokio::test]
    async fn every_file_is_verified_and_a_missing_one_named() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), None).await;
        let r = ImageReader::open(d.path()).await.unwrap();
        r.verify_files().await.unwrap();
        std::fs::remove_file(d.path().join(chunk_path(1, false))).unwrap();
        let err = r.verify_files().await.unwrap_err();
        assert!(
            matches!(&err, ImageError::Missing { path } if path == "data/000001.tsv"),
            "{err}"
        );
    }

    #[test]
    fn statements_are_checked_and_trailing_semicolons_dropped() {
        let mut s = ImageSchema {
            session: SessionSettings::default(),
            databases: vec![Database {
                name: "d".into(),
                create_sql: "CREATE DATABASE `d`;".into(),
            }],
            tables: vec![table()],
            objects: vec![],
            accounts: vec![],
            sequences: vec![],
            chunks: vec![],
            stream_id: None,
        };
        s.check_statements().unwrap();
        assert_eq!(s.databases[0].create_sql, "CREATE DATABASE `d`");
        let mut bad = s.clone();
        bad.tables[0].create_sql = "CREATE TABLE `t` (a int); DROP DATABASE mysql".into();
        let err = bad.check_statements().unwrap_err();
        assert!(err.to_string().contains("table `d`.`t`"), "{err}");
        let mut bad = s.clone();
        bad.sequences.push(SequenceState {
            db: "d".into(),
            name: "s".into(),
            next_value: "1); DROP DATABASE d; --".into(),
            cycle_count: "0".into(),
        });
        assert!(matches!(bad.check_statements(), Err(ImageError::Schema(_))));
    }

    #[tokio::test]
    async fn rejects_missing_manifest_and_bad_chunk() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            ImageReader::open(d.path()).await,
            Err(ImageError::NoManifest { .. })
        ));
        write(d.path(), None).await;
        let r = ImageReader::open(d.path()).await.unwrap();
        std::fs::write(d.path().join(chunk_path(1, false)), b"1\tb\\tb\n2\t\\N\n").unwrap();
        assert!(matches!(
            r.verified_chunk(0).await,
            Err(ImageError::Checksum { .. })
        ));
    }

    #[test]
    fn schema_must_match_manifest() {
        let m = Manifest::new("logical", source(), Coordinates::new("b", 4), vec![]);
        let mut s = ImageSchema {
            session: SessionSettings::default(),
            databases: vec![],
            tables: vec![],
            objects: vec![],
            accounts: vec![],
            sequences: vec![],
            chunks: vec![ChunkRef {
                path: "data/000001.tsv".into(),
                table: 0,
                rows: 0,
                zstd: false,
            }],
            stream_id: None,
        };
        assert!(s.validate(&m).is_err(), "unknown table");
        s.tables.push(table());
        assert!(s.validate(&m).is_err(), "file not in the manifest");
        s.chunks[0].path = "../x".into();
        assert!(s.validate(&m).is_err(), "unsafe path");
    }
}
