//! A transport over S3-compatible object storage (AWS S3, Garage, MinIO, …) on the
//! `object_store` crate.
//!
//! Objects are keys under `bucket/prefix/`; an image directory is a key prefix. Uploads
//! larger than one part are multipart uploads whose parts go out on several parallel
//! streams, each part carrying its SHA-256 (`x-amz-checksum-sha256`, checked by the
//! server); a part that fails is retried alone, and a failed upload keeps its finished
//! parts so the next [`Transport::put`] of the same file resumes it. Downloads are ranged
//! `GET`s, so [`Transport::fetch`] resumes at any offset.
//!
//! Why `object_store` (Apache Arrow) rather than `opendal`: it is the smaller dependency
//! for one backend, is maintained by the Arrow project with a stable S3 client (signing,
//! retries with backoff, path-style requests, custom endpoints), and exposes the
//! low-level multipart calls ([`MultipartStore`]) that resuming an upload part by part
//! needs, with S3's per-part `x-amz-checksum-sha256`.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amsu_core::manifest::check_relative_path;
use amsu_core::{BoxError, RemoteEntry, Secret, Transport};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, Checksum};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::image::open_for_append;
use crate::TransferError;

/// The smallest part S3 accepts (except for the last one).
const MIN_PART: usize = 5 * 1024 * 1024;
/// S3's limit on the number of parts of one upload.
const MAX_PARTS: u64 = 10_000;

/// Access key and secret of an S3 account. `Debug` never shows the secret.
#[derive(Clone)]
pub struct S3Credentials {
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl S3Credentials {
    /// Credentials from their parts.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: Secret) -> Self {
        S3Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token: None,
        }
    }

    /// With a session token (temporary credentials).
    pub fn session_token(mut self, token: Option<Secret>) -> Self {
        self.session_token = token;
        self
    }

    /// The access key id (not secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Finds the credentials the way AWS tools do, first match wins:
    ///
    /// 1. `file`, when given: an AWS shared-credentials file (INI: `[profile]` sections with
    ///    `aws_access_key_id`, `aws_secret_access_key`, optional `aws_session_token`); the
    ///    profile is `AWS_PROFILE` or `default`;
    /// 2. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional
    ///    `AWS_SESSION_TOKEN`;
    /// 3. the shared credentials file `AWS_SHARED_CREDENTIALS_FILE`, else
    ///    `~/.aws/credentials`, when it exists.
    ///
    /// Errors never contain a secret.
    pub fn resolve(file: Option<&Path>) -> Result<Self, TransferError> {
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
        if let Some(file) = file {
            return Self::from_file(file, &profile);
        }
        if let (Ok(id), Ok(secret)) = (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            if !id.is_empty() {
                let token = std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty())
                    .map(Secret::new);
                return Ok(S3Credentials::new(id, Secret::new(secret)).session_token(token));
            }
        }
        let shared = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials"))
            });
        match shared {
            Some(p) if p.exists() => Self::from_file(&p, &profile),
            _ => Err(TransferError::Config(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, write them to ~/.aws/credentials, or pass --s3-credentials-file".into(),
            )),
        }
    }

    /// Reads `profile` from an AWS shared-credentials file.
    pub(crate) fn from_file(path: &Path, profile: &str) -> Result<Self, TransferError> {
        let text = std::fs::read_to_string(path).map_err(|e| TransferError::local(path, e))?;
        Self::parse(&text, profile).ok_or_else(|| {
            TransferError::Config(format!(
                "{}: no profile [{profile}] with aws_access_key_id and aws_secret_access_key",
                path.display()
            ))
        })
    }

    /// Parses the INI text of a shared-credentials file.
    fn parse(text: &str, profile: &str) -> Option<Self> {
        let mut section = String::new();
        let (mut id, mut secret, mut token) = (None, None, None);
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let s = s.trim();
                section = s.strip_prefix("profile ").unwrap_or(s).trim().to_string();
                continue;
            }
            if section != profile {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim().to_string();
                match k.trim().to_ascii_lowercase().as_str() {
                    "aws_access_key_id" => id = Some(v),
                    "aws_secret_access_key" => secret = Some(Secret::new(v)),
                    "aws_session_token" => token = Some(Secret::new(v)),
                    _ => {}
                }
            }
        }
        Some(S3Credentials::new(id?, secret?).session_token(token))
    }
}

/// Where and how to reach a bucket. Build it from a URL ([`S3Config::from_url`]) and the
/// by-value setters.
///
/// | setting | URL / source | default |
/// |---|---|---|
/// | bucket | `s3://BUCKET` | (required) |
/// | prefix | `/PREFIX` | the bucket's root |
/// | endpoint | [`S3Config::endpoint`], else `AWS_ENDPOINT_URL` | AWS |
/// | region | [`S3Config::region`], else `AWS_REGION`, `AWS_DEFAULT_REGION` | `us-east-1` |
/// | path-style requests | [`S3Config::path_style`] | virtual-hosted style |
/// | credentials | [`S3Config::credentials`] | (required) |
/// | parallel part streams per file | [`S3Config::streams`] | 2 × cores, 4 to 16 |
/// | part size | [`S3Config::part_size`] | 8 MiB (more when a file would need over 10 000 parts) |
/// | retries of one request by the HTTP client | [`S3Config::client_retries`] | 3 |
#[derive(Clone)]
pub struct S3Config {
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    region: String,
    path_style: bool,
    credentials: Option<S3Credentials>,
    streams: usize,
    part_size: usize,
    client_retries: usize,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("credentials", &self.credentials)
            .field("streams", &self.streams)
            .field("part_size", &self.part_size)
            .finish()
    }
}

/// True for `s3://…` locations.
pub fn is_s3_url(s: &str) -> bool {
    s.starts_with("s3://")
}

impl S3Config {
    /// Parses `s3://BUCKET[/PREFIX]`. `PREFIX` must not contain `..` or empty parts.
    /// Credentials in the URL are refused: they would be visible in process lists.
    pub fn from_url(url: &str) -> Result<Self, TransferError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| TransferError::Config("an S3 location starts with s3://".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains('@') || bucket.contains(':') {
            return Err(TransferError::Config(
                "s3:// URLs hold no credentials or port: use --s3-endpoint and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a credentials file".into(),
            ));
        }
        if bucket.is_empty() {
            return Err(TransferError::Config("the S3 URL has no bucket".into()));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            check_relative_path(prefix).map_err(|_| TransferError::unsafe_path(prefix))?;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint: std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|e| !e.is_empty()),
            region: std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "us-east-1".into()),
            path_style: false,
            credentials: None,
            streams: (cores * 2).clamp(4, 16),
            part_size: 8 * 1024 * 1024,
            client_retries: 3,
        })
    }

    /// The endpoint URL (`http://127.0.0.1:3900`); `None` for AWS.
    pub fn endpoint(mut self, endpoint: Option<String>) -> Self {
        if endpoint.is_some() {
            self.endpoint = endpoint;
        }
        self
    }

    /// The region (Garage's `s3_region`, `garage` by default there).
    pub fn region(mut self, region: Option<String>) -> Self {
        if let Some(r) = region {
            self.region = r;
        }
        self
    }

    /// Path-style requests (`ENDPOINT/BUCKET/KEY`) instead of virtual-hosted style
    /// (`BUCKET.ENDPOINT/KEY`); most self-hosted stores need it.
    pub fn path_style(mut self, on: bool) -> Self {
        self.path_style = on;
        self
    }

    /// The credentials.
    pub fn credentials(mut self, c: S3Credentials) -> Self {
        self.credentials = Some(c);
        self
    }

    /// Parallel part uploads per file (at least 1).
    pub fn streams(mut self, n: usize) -> Self {
        self.streams = n.max(1);
        self
    }

    /// Part size of multipart uploads (at least 5 MiB).
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(MIN_PART);
        self
    }

    /// How often one request (a part, a range) is retried at once by the HTTP client
    /// (default 3) before the error reaches the caller, whose retry resumes.
    pub fn client_retries(mut self, n: usize) -> Self {
        self.client_retries = n;
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix every transport path is relative to.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Parallel part uploads per file; also a good number of files in flight.
    pub fn stream_count(&self) -> usize {
        self.streams
    }

    /// `s3://bucket/prefix`, for messages.
    pub(crate) fn location(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// A multipart upload in progress: what a retried [`Transport::put`] resumes.
#[derive(Debug, Clone)]
struct Upload {
    id: String,
    len: u64,
    part_size: usize,
    parts: Vec<Option<PartId>>,
}

/// Where the bytes of an upload come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// A local file.
    File(&'a Path),
    /// Memory ([`Transport::put_bytes`]).
    Memory(&'a bytes::Bytes),
}

impl Source<'_> {
    /// `size` bytes from `start`.
    async fn range(self, start: u64, size: usize) -> Result<bytes::Bytes, TransferError> {
        match self {
            Source::File(p) => read_range(p, start, size).await,
            Source::Memory(b) => Ok(b.slice(start as usize..start as usize + size)),
        }
    }
}

/// A [`Transport`] over an S3 bucket (see the module documentation).
pub struct S3Transport {
    config: S3Config,
    store: Arc<AmazonS3>,
    uploads: Mutex<HashMap<String, Upload>>,
    /// Requests with a body in flight, over all files at once (each holds at most one
    /// part in memory): bounds the upload buffers to `2 × streams × part size` however
    /// many files are uploaded in parallel.
    in_flight: tokio::sync::Semaphore,
}

impl fmt::Debug for S3Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Transport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl S3Transport {
    /// A transport for `config`; connects lazily.
    pub fn new(config: S3Config) -> Result<Self, TransferError> {
        let creds = config
            .credentials
            .clone()
            .ok_or_else(|| TransferError::Config("S3 credentials are required".into()))?;
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&creds.access_key_id)
            .with_secret_access_key(creds.secret_access_key.expose())
            .with_virtual_hosted_style_request(!config.path_style)
            .with_checksum_algorithm(Checksum::SHA256)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(true)
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(120)),
            )
            .with_retry(RetryConfig {
                max_retries: config.client_retries,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            });
        if let Some(t) = &creds.session_token {
            b = b.with_token(t.expose());
        }
        if let Some(e) = &config.endpoint {
            b = b.with_endpoint(e);
        }
        let store = b
            .build()
            .map_err(|e| TransferError::Config(format!("S3 configuration: {e}")))?;
        Ok(S3Transport {
            in_flight: tokio::sync::Semaphore::new(config.streams * 2),
            config,
            store: Arc::new(store),
            uploads: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// The object key of a transport path, refusing unsafe paths.
    fn key(&self, path: &str) -> Result<ObjectPath, TransferError> {
        if !path.is_empty() {
            check_relative_path(path).map_err(|_| TransferError::unsafe_path(path))?;
        }
        let full = match (self.config.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.config.prefix.clone(),
            (false, false) => format!("{}/{path}", self.config.prefix),
        };
        ObjectPath::parse(&full).map_err(|_| TransferError::unsafe_path(path))
    }

    fn err(&self, path: &str, e: object_store::Error) -> TransferError {
        match e {
            object_store::Error::NotFound { .. } => TransferError::NotFound {
                path: path.into(),
                message: format!("no such object in {}", self.config.location()),
            },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => TransferError::AuthFailed {
                server: self.server(),
                user: self
                    .config
                    .credentials
                    .as_ref()
                    .map_or_else(String::new, |c| c.access_key_id.clone()),
                message: e.to_string(),
            },
            other => TransferError::Connection {
                server: self.server(),
                message: format!("{path}: {other}"),
            },
        }
    }

    fn server(&self) -> String {
        match &self.config.endpoint {
            Some(e) => format!("{e} ({})", self.config.location()),
            None => self.config.location(),
        }
    }

    /// Uploads `src` (`len` bytes) as a multipart upload, resuming the parts an earlier
    /// failed call finished.
    async fn put_multipart(
        &self,
        src: Source<'_>,
        path: &str,
        key: &ObjectPath,
        len: u64,
    ) -> Result<(), TransferError> {
        let part_size = self.config.part_size.max(len.div_ceil(MAX_PARTS) as usize);
        let n = len.div_ceil(part_size as u64) as usize;
        let resumed = self
            .uploads
            .lock()
            .expect("not poisoned")
            .get(path)
            .filter(|u| u.len == len && u.part_size == part_size)
            .cloned();
        let upload = match resumed {
            Some(u) => {
                let done = u.parts.iter().filter(|p| p.is_some()).count();
                tracing::info!(path, done, parts = n, "resuming the multipart upload");
                u
            }
            None => {
                let id = self
                    .store
                    .create_multipart(key)
                    .await
                    .map_err(|e| self.err(path, e))?;
                let u = Upload {
                    id,
                    len,
                    part_size,
                    parts: vec![None; n],
                };
                self.uploads
                    .lock()
                    .expect("not poisoned")
                    .insert(path.to_string(), u.clone());
                u
            }
        };
        let todo: Vec<usize> = (0..n).filter(|i| upload.parts[*i].is_none()).collect();
        let id = upload.id.clone();
        futures_util::stream::iter(todo)
            .map(|i| {
                let id = &id;
                async move {
                    let start = i as u64 * part_size as u64;
                    let size = (len - start).min(part_size as u64) as usize;
                    let _slot = self.in_flight.acquire().await.expect("never closed");
                    let data = src.range(start, size).await?;
                    let part = self
                        .store
                        .put_part(key, id, i, PutPayload::from(data))
                        .await
                        .map_err(|e| self.err(path, e))?;
                    if let Some(u) = self.uploads.lock().expect("not poisoned").get_mut(path) {
                        if u.id == *id {
                            u.parts[i] = Some(part);
                        }
                    }
                    Ok::<_, TransferError>(())
                }
            })
            .buffer_unordered(self.config.streams)
            .try_collect::<Vec<()>>()
            .await?;
        let parts: Vec<PartId> = {
            let map = self.uploads.lock().expect("not poisoned");
            let u = map.get(path).ok_or_else(|| TransferError::Connection {
                server: self.server(),
                message: format!("{path}: the multipart upload state was lost"),
            })?;
            u.parts.iter().flatten().cloned().collect()
        };
        let done = self.store.complete_multipart(key, &id, parts).await;
        match done {
            Ok(_) => {
                self.uploads.lock().expect("not poisoned").remove(path);
                Ok(())
            }
            Err(e) => {
                // The upload may be gone on the server (aborted, expired): start afresh
                // next time.
                self.uploads.lock().expect("not poisoned").remove(path);
                let _ = self.store.abort_multipart(key, &id).await;
                Err(self.err(path, e))
            }
        }
    }
}

impl S3Transport {
    /// One `PUT` of `src` when it fits in a part, else a multipart upload.
    async fn upload(
        &self,
        src: Source<'_>,
        path: &str,
        key: &ObjectPath,
        len: u64,
    ) -> Result<(), TransferError> {
        if len <= self.config.part_size as u64 {
            let _slot = self.in_flight.acquire().await.expect("never closed");
            let data = src.range(0, len as usize).await?;
            self.store
                .put(key, PutPayload::from(data))
                .await
                .map_err(|e| self.err(path, e))?;
            Ok(())
        } else {
            self.put_multipart(src, path, key, len).await
        }
    }
}

async fn read_range(local: &Path, start: u64, size: usize) -> Result<bytes::Bytes, TransferError> {
    let mut f = tokio::fs::File::open(local)
        .await
        .map_err(|e| TransferError::local(local, e))?;
    f.seek(io::SeekFrom::Start(start))
        .await
        .map_err(|e| TransferError::local(local, e))?;
    let mut buf = vec![0u8; size];
    f.read_exact(&mut buf)
        .await
        .map_err(|e| TransferError::local(local, e))?;
    Ok(buf.into())
}

#[async_trait]
impl Transport for S3Transport {
    async fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>, BoxError> {
        let key = self.key(dir)?;
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let l = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.err(dir, e))?;
        let mut out: Vec<RemoteEntry> = l
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .map(|name| RemoteEntry::new(name, None, true))
            .chain(l.objects.iter().filter_map(|o| {
                o.location
                    .filename()
                    .map(|name| RemoteEntry::new(name, Some(o.size), false))
            }))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn size(&self, path: &str) -> Result<Option<u64>, BoxError> {
        let key = self.key(path)?;
        match self.store.head(&key).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(path, e).into()),
        }
    }

    async fn fetch(&self, path: &str, offset: u64, local: &Path) -> Result<u64, BoxError> {
        let key = self.key(path)?;
        if offset > 0 {
            // A range starting at the end is not satisfiable: nothing more to fetch.
            match self.store.head(&key).await {
                Ok(m) if m.size <= offset => {
                    open_for_append(local, offset).await?;
                    return Ok(0);
                }
                Ok(_) => {}
                Err(e) => return Err(self.err(path, e).into()),
            }
        }
        let opts = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&key, opts)
            .await
            .map_err(|e| self.err(path, e))?;
        let mut dst = open_for_append(local, offset).await?;
        let mut stream = got.into_stream();
        let mut total = 0u64;
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => {
                    dst.write_all(&b)
                        .await
                        .map_err(|e| TransferError::local(local, e))?;
                    total += b.len() as u64;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        dst.flush()
            .await
            .map_err(|e| TransferError::local(local, e))?;
        match failure {
            None => Ok(total),
            Some(e) => Err(TransferError::Connection {
                server: self.server(),
                message: format!("{path}: reading failed after {total} bytes: {e}"),
            }
            .into()),
        }
    }

    async fn put(&self, local: &Path, path: &str) -> Result<u64, BoxError> {
        let key = self.key(path)?;
        let len = tokio::fs::metadata(local)
            .await
            .map_err(|e| TransferError::local(local, e))?
            .len();
        self.upload(Source::File(local), path, &key, len).await?;
        Ok(len)
    }

    async fn put_bytes(&self, data: bytes::Bytes, path: &str) -> Result<u64, BoxError> {
        let key = self.key(path)?;
        let len = data.len() as u64;
        self.upload(Source::Memory(&data), path, &key, len).await?;
        Ok(len)
    }

    async fn delete(&self, path: &str) -> Result<(), BoxError> {
        let key = self.key(path)?;
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(path, e).into()),
        }
    }

    async fn mkdir(&self, path: &str) -> Result<(), BoxError> {
        // Object stores have no directories: a key prefix exists once an object has it.
        self.key(path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_refuse_credentials_and_dot_dot() {
        let c = S3Config::from_url("s3://bkt/a/b/").unwrap();
        assert_eq!(c.bucket(), "bkt");
        assert_eq!(c.prefix(), "a/b");
        assert_eq!(S3Config::from_url("s3://bkt").unwrap().prefix(), "");
        assert!(S3Config::from_url("s3://key:secret@bkt/x").is_err());
        assert!(matches!(
            S3Config::from_url("s3://bkt/a/../b"),
            Err(TransferError::UnsafePath { .. })
        ));
        assert!(S3Config::from_url("s3:///x").is_err());
        assert!(S3Config::from_url("ftp://h/x").is_err());
    }

    #[test]
    fn credentials_file_profiles() {
        let text = "[default]\naws_access_key_id = AK1\naws_secret_access_key = s1\n\n[profile other]\naws_access_key_id=AK2\naws_secret_access_key=s2\naws_session_token=t\n";
        let c = S3Credentials::parse(text, "default").unwrap();
        assert_eq!(c.access_key_id(), "AK1");
        assert_eq!(c.secret_access_key.expose(), "s1");
        let c = S3Credentials::parse(text, "other").unwrap();
        assert_eq!(c.access_key_id(), "AK2");
        assert!(c.session_token.is_some());
        assert!(S3Credentials::parse(text, "missing").is_none());
        assert!(!format!("{c:?}").contains("s2"));
    }

    #[tokio::test]
    async fn refuses_unsafe_paths() {
        let c = S3Config::from_url("s3://bkt/img")
            .unwrap()
            .endpoint(Some("http://127.0.0.1:9".into()))
            .credentials(S3Credentials::new("AK", Secret::new("sk")));
        let t = S3Transport::new(c).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        for p in ["../x", "/etc/passwd", "a/../../b", "./a"] {
            let e = t.fetch(p, 0, &out).await.unwrap_err();
            assert!(
                matches!(
                    TransferError::from_boxed(e),
                    TransferError::UnsafePath { .. }
                ),
                "{p}"
            );
        }
        assert!(!out.exists());
    }
}
