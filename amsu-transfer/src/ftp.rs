//! FTP and FTPS (explicit TLS) transport on suppaftp.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amsu_core::manifest::check_relative_path;
use amsu_core::{BoxError, RemoteEntry, Secret, Transport};
use async_trait::async_trait;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::tokio_rustls::rustls;
use suppaftp::types::FileType;
use suppaftp::{FtpError, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ftp_code;
use crate::image::{copy_to_local, join, open_for_append};
use crate::TransferError;

/// Whether and how the control and data connections are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FtpSecurity {
    /// Plain FTP (`ftp://`): everything, the password included, travels in clear text.
    #[default]
    Plain,
    /// Explicit FTPS (`ftps://`): `AUTH TLS` on the control connection before the login,
    /// then `PROT P` so every data connection is encrypted too.
    ExplicitTls,
}

/// Which server certificates an FTPS connection trusts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsTrust {
    /// The public Web PKI roots (Mozilla's list, from `webpki-roots`).
    #[default]
    PublicRoots,
    /// Only certificates issued by the CA certificates (PEM) in this file; the file may
    /// also hold the server's own self-signed certificate.
    CaFile(PathBuf),
    /// Any certificate, unverified. Only for tests and trusted networks: anyone on the path
    /// can read and change the transfer. A warning is logged on every connection.
    Insecure,
}

/// Where and how to reach an FTP/FTPS server. Build it with [`FtpConfig::new`] or from a URL
/// ([`FtpConfig::from_url`], also [`FromStr`]) and the by-value setters.
///
/// | setting | URL | default |
/// |---|---|---|
/// | host | `ftp://HOST` | (required) |
/// | port | `:PORT` | 21 |
/// | user | `USER@` | `anonymous` |
/// | password | — (use [`FtpConfig::password`]) | empty |
/// | root | `/PATH` (relative to the login directory; `/%2F…` is absolute) | the login directory |
/// | security | `ftp://` or `ftps://` | plain |
/// | trust | — | public roots ([`TlsTrust::PublicRoots`]) |
/// | connect timeout | — | 10 s |
/// | I/O timeout (per reply or data read) | — | 60 s |
/// | max connections (parallel transfers) | — | 8 |
/// | passive NAT workaround | — | off |
///
/// A password in the URL (`ftp://user:pw@host`) is accepted but discouraged: it is visible
/// in process lists and shell history. `Debug` never shows the password.
#[derive(Clone)]
pub struct FtpConfig {
    host: String,
    port: u16,
    user: String,
    password: Secret,
    root: String,
    security: FtpSecurity,
    trust: TlsTrust,
    connect_timeout: Duration,
    io_timeout: Duration,
    max_connections: usize,
    nat_workaround: bool,
}

impl fmt::Debug for FtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"***")
            .field("root", &self.root)
            .field("security", &self.security)
            .field("trust", &self.trust)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("max_connections", &self.max_connections)
            .field("nat_workaround", &self.nat_workaround)
            .finish()
    }
}

impl FtpConfig {
    /// A plain FTP configuration for `host` with the defaults of the table above.
    pub fn new(host: impl Into<String>) -> Self {
        FtpConfig {
            host: host.into(),
            port: 21,
            user: "anonymous".into(),
            password: Secret::default(),
            root: String::new(),
            security: FtpSecurity::Plain,
            trust: TlsTrust::PublicRoots,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
            max_connections: 8,
            nat_workaround: false,
        }
    }

    /// Parses `ftp://[USER[:PASSWORD]@]HOST[:PORT][/PATH]` or `ftps://…` (explicit TLS).
    /// Percent-escapes are decoded; `PATH` is relative to the login directory unless it
    /// starts with `%2F` (RFC 1738), and must not contain `..`.
    pub fn from_url(url: &str) -> Result<Self, TransferError> {
        // Never echo the URL itself: it may hold a password.
        let u = url::Url::parse(url)
            .map_err(|e| TransferError::Config(format!("not a valid FTP URL: {e}")))?;
        let security = match u.scheme() {
            "ftp" => FtpSecurity::Plain,
            "ftps" => FtpSecurity::ExplicitTls,
            s => {
                return Err(TransferError::Config(format!(
                    "unsupported URL scheme {s:?}; use ftp:// or ftps://"
                )))
            }
        };
        let host = match u.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(TransferError::Config("the FTP URL has no host".into())),
        };
        let mut c = FtpConfig::new(host)
            .port(u.port().unwrap_or(21))
            .security(security);
        if !u.username().is_empty() {
            c.user = percent_decode(u.username())?;
        }
        if let Some(p) = u.password() {
            tracing::warn!(
                "the FTP URL contains a password, which shows in process lists; prefer giving it from the environment or a password file"
            );
            c.password = Secret::new(percent_decode(p)?);
        }
        let segments: Vec<String> = u
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).map(percent_decode).collect())
            .transpose()?
            .unwrap_or_default();
        let joined = segments.join("/");
        c = c.root(joined)?;
        Ok(c)
    }

    /// Sets the port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the user name.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Sets the password.
    pub fn password(mut self, password: Secret) -> Self {
        self.password = password;
        self
    }

    /// Sets the root directory every transport path is relative to: relative to the login
    /// directory, or absolute when it starts with `/`. Refuses `..` and empty parts.
    pub fn root(mut self, root: impl Into<String>) -> Result<Self, TransferError> {
        let root: String = root.into();
        let rel = root.strip_prefix('/').unwrap_or(&root);
        let rel = rel.strip_suffix('/').unwrap_or(rel);
        if !rel.is_empty() {
            check_relative_path(rel).map_err(|_| TransferError::unsafe_path(&root))?;
        }
        self.root = if root.starts_with('/') {
            format!("/{rel}")
        } else {
            rel.to_string()
        };
        Ok(self)
    }

    /// Sets plain FTP or explicit FTPS.
    pub fn security(mut self, security: FtpSecurity) -> Self {
        self.security = security;
        self
    }

    /// Trust only the CA certificates (PEM) in `path`.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.trust = TlsTrust::CaFile(path.into());
        self
    }

    /// Sets which certificates are trusted.
    pub fn trust(mut self, trust: TlsTrust) -> Self {
        self.trust = trust;
        self
    }

    /// Accept any server certificate (`true`), or go back to the public roots (`false`).
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.trust = if insecure {
            TlsTrust::Insecure
        } else {
            TlsTrust::PublicRoots
        };
        self
    }

    /// Sets the TCP connect timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets how long to wait for any reply or any data before giving up.
    pub fn io_timeout(mut self, d: Duration) -> Self {
        self.io_timeout = d;
        self
    }

    /// Sets how many connections may be open at once (at least 1); more parallel
    /// operations wait for one to be free.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Connect data connections to the control connection's address instead of the address
    /// of the `PASV` reply (for servers behind NAT that announce a private address).
    pub fn passive_nat_workaround(mut self, on: bool) -> Self {
        self.nat_workaround = on;
        self
    }

    /// `host:port`.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The user name.
    pub fn user_name(&self) -> &str {
        &self.user
    }

    /// The root directory.
    pub fn root_dir(&self) -> &str {
        &self.root
    }

    /// Plain or TLS.
    pub fn security_mode(&self) -> FtpSecurity {
        self.security
    }
}

impl FromStr for FtpConfig {
    type Err = TransferError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FtpConfig::from_url(s)
    }
}

fn percent_decode(s: &str) -> Result<String, TransferError> {
    amsu_core::human::percent_decode(s)
        .map_err(|_| TransferError::Config("the FTP URL is not valid UTF-8".into()))
}

type Stream = AsyncRustlsFtpStream;

/// A logged-in control connection, with the login directory.
struct Conn {
    stream: Stream,
    home: String,
    _permit: OwnedSemaphorePermit,
}

/// A [`Transport`] over FTP or explicit FTPS, passive mode, binary type.
///
/// Connections are pooled: every operation takes an idle logged-in connection (checked with
/// `NOOP`) or opens a new one, up to [`FtpConfig::max_connections`] at once, so that many
/// files can be fetched in parallel. A connection that saw an error is closed, not reused.
/// [`Transport::fetch`] resumes with `REST`. Errors are [`TransferError`]s (boxed); they never
/// contain the password.
pub struct FtpTransport {
    config: FtpConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    idle: Mutex<Vec<(Stream, String)>>,
    slots: Arc<Semaphore>,
}

impl fmt::Debug for FtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FtpTransport {
    /// A transport for `config`. Loads the TLS trust (e.g. reads the CA file) now; connects
    /// only when used.
    pub fn new(config: FtpConfig) -> Result<Self, TransferError> {
        let tls = match config.security {
            FtpSecurity::Plain => None,
            FtpSecurity::ExplicitTls => Some(Arc::new(tls_config(&config)?)),
        };
        Ok(FtpTransport {
            slots: Arc::new(Semaphore::new(config.max_connections)),
            config,
            tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FtpConfig {
        &self.config
    }

    /// Connects and logs in once: checks address, TLS and credentials.
    pub async fn check(&self) -> Result<(), TransferError> {
        let c = self.checkout().await?;
        self.checkin(c);
        Ok(())
    }

    /// Removes an empty directory (`RMD`); a missing one is not an error.
    pub async fn remove_dir(&self, path: &str) -> Result<(), TransferError> {
        check_relative_path(path).map_err(|_| TransferError::unsafe_path(path))?;
        let mut c = self.checkout().await?;
        let full = self.full_unchecked(&c.home, path);
        let r = match self.timed(path, c.stream.rmdir(&full)).await {
            Err(TransferError::NotFound { .. }) => Ok(()),
            other => other,
        };
        self.finish(c, r).map_err(TransferError::from_boxed)
    }

    /// Closes the idle connections (with `QUIT`).
    pub async fn close(&self) {
        let idle: Vec<_> = std::mem::take(&mut *self.idle.lock().expect("pool lock"));
        for (mut s, _) in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), s.quit()).await;
        }
    }

    async fn checkout(&self) -> Result<Conn, TransferError> {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            let idle = self.idle.lock().expect("pool lock").pop();
            let Some((mut stream, home)) = idle else {
                break;
            };
            if let Ok(Ok(())) = tokio::time::timeout(self.config.io_timeout, stream.noop()).await {
                return Ok(Conn {
                    stream,
                    home,
                    _permit: permit,
                });
            }
        }
        let (stream, home) = self.connect().await?;
        Ok(Conn {
            stream,
            home,
            _permit: permit,
        })
    }

    fn checkin(&self, c: Conn) {
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < self.config.max_connections {
            idle.push((c.stream, c.home));
        }
    }

    async fn connect(&self) -> Result<(Stream, String), TransferError> {
        let cfg = &self.config;
        let server = cfg.server();
        let conn_err = |message: String| TransferError::Connection {
            server: server.clone(),
            message,
        };
        let addr = tokio::time::timeout(
            cfg.connect_timeout,
            tokio::net::lookup_host((cfg.host.as_str(), cfg.port)),
        )
        .await
        .map_err(|_| conn_err("name resolution timed out".into()))?
        .map_err(|e| conn_err(format!("cannot resolve the host: {e}")))?
        .next()
        .ok_or_else(|| conn_err("the host name has no address".into()))?;
        let mut stream = Stream::connect_timeout(addr, cfg.connect_timeout)
            .await
            .map_err(|e| self.map_err(e, ""))?;
        if let Some(tls) = &self.tls {
            if cfg.trust == TlsTrust::Insecure {
                tracing::warn!(%server, "FTPS certificate verification is off (insecure): the connection can be intercepted");
            }
            let connector =
                AsyncRustlsConnector::from(suppaftp::tokio_rustls::TlsConnector::from(tls.clone()));
            stream = self
                .timed("", stream.into_secure(connector, &cfg.host))
                .await?;
        }
        match self
            .timed("", stream.login(cfg.user.as_str(), cfg.password.expose()))
            .await
        {
            Ok(()) => {}
            Err(TransferError::NotFound { message, .. })
            | Err(TransferError::Server { message, .. }) => {
                return Err(TransferError::AuthFailed {
                    server,
                    user: cfg.user.clone(),
                    message,
                })
            }
            Err(e) => return Err(e),
        }
        stream.set_mode(Mode::Passive);
        stream.set_passive_nat_workaround(cfg.nat_workaround);
        self.timed("", stream.transfer_type(FileType::Binary))
            .await?;
        let home = if cfg.root.starts_with('/') {
            String::new()
        } else {
            self.timed("", stream.pwd()).await?
        };
        Ok((stream, home))
    }

    /// Runs one FTP command under the I/O timeout and maps its error.
    async fn timed<T>(
        &self,
        path: &str,
        fut: impl Future<Output = Result<T, FtpError>>,
    ) -> Result<T, TransferError> {
        match tokio::time::timeout(self.config.io_timeout, fut).await {
            Ok(r) => r.map_err(|e| self.map_err(e, path)),
            Err(_) => Err(TransferError::Connection {
                server: self.config.server(),
                message: format!("no reply within {:?}", self.config.io_timeout),
            }),
        }
    }

    /// Maps a suppaftp error; the password is scrubbed from every message.
    fn map_err(&self, e: FtpError, path: &str) -> TransferError {
        let server = self.config.server();
        let scrub = |s: String| {
            let pw = self.config.password.expose();
            if pw.len() >= 3 {
                s.replace(pw, "***")
            } else {
                s
            }
        };
        match e {
            FtpError::ConnectionError(io) => TransferError::Connection {
                server,
                message: scrub(io.to_string()),
            },
            FtpError::SecureError(m) => TransferError::Tls {
                server,
                message: scrub(m),
            },
            FtpError::UnexpectedResponse(r) => {
                let code = r.status.code();
                let message = scrub(
                    r.as_string()
                        .unwrap_or_else(|_| String::from_utf8_lossy(&r.body).into_owned()),
                );
                match code {
                    ftp_code::NOT_LOGGED_IN => TransferError::AuthFailed {
                        server,
                        user: self.config.user.clone(),
                        message,
                    },
                    ftp_code::FILE_UNAVAILABLE => TransferError::NotFound {
                        path: path.into(),
                        message,
                    },
                    // 4xx: transient. 1xx where a completion was expected: pure-ftpd ends a
                    // transfer whose data connection broke with a stale `150` reply.
                    ftp_code::NOT_AVAILABLE | 100..=199 | 400..=499 => TransferError::Connection {
                        server,
                        message: format!("[{code}] {message}"),
                    },
                    _ => TransferError::Server {
                        path: path.into(),
                        code,
                        message,
                    },
                }
            }
            FtpError::BadResponse => TransferError::Connection {
                server,
                message: "the server sent a malformed reply".into(),
            },
            FtpError::InvalidAddress(a) => TransferError::Connection {
                server,
                message: format!("the server announced an invalid data address: {a}"),
            },
            other => TransferError::Connection {
                server,
                message: scrub(other.to_string()),
            },
        }
    }

    /// The server path of a transport path (checked).
    fn full(&self, home: &str, path: &str) -> Result<String, TransferError> {
        if !path.is_empty() {
            check_relative_path(path).map_err(|_| TransferError::unsafe_path(path))?;
        }
        Ok(self.full_unchecked(home, path))
    }

    fn full_unchecked(&self, home: &str, path: &str) -> String {
        let root = &self.config.root;
        let base = if root.starts_with('/') {
            root.clone()
        } else {
            join(home.trim_end_matches('/'), root)
        };
        let p = join(&base, path);
        if p.is_empty() {
            "/".into()
        } else if p.starts_with('/') {
            p
        } else {
            format!("/{p}")
        }
    }

    async fn do_list(&self, c: &mut Conn, dir: &str) -> Result<Vec<RemoteEntry>, TransferError> {
        let full = self.full(&c.home, dir)?;
        let lines = self.timed(dir, c.stream.list(Some(&full))).await?;
        let mut out = Vec::new();
        for line in lines {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with("total ") {
                continue;
            }
            let Ok(f) = suppaftp::list::File::from_str(line) else {
                tracing::debug!(line, "unparsable LIST line skipped");
                continue;
            };
            let name = f.name().to_string();
            if name == "." || name == ".." {
                continue;
            }
            if name.contains('/') || check_relative_path(&name).is_err() {
                return Err(TransferError::unsafe_path(&name));
            }
            out.push(RemoteEntry::new(
                name,
                f.is_file().then(|| f.size() as u64),
                f.is_directory(),
            ));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn do_fetch(
        &self,
        c: &mut Conn,
        path: &str,
        offset: u64,
        local: &Path,
    ) -> Result<u64, TransferError> {
        let full = self.full(&c.home, path)?;
        let offset_usize = usize::try_from(offset)
            .map_err(|_| TransferError::Config(format!("offset {offset} is too large")))?;
        self.timed(path, c.stream.resume_transfer(offset_usize))
            .await?;
        let mut data = self.timed(path, c.stream.retr_as_stream(&full)).await?;
        // Open the local file only once the server accepted the RETR (no empty file when it
        // does not exist).
        let mut file = open_for_append(local, offset).await?;
        let n = copy_to_local(
            &mut data,
            &mut file,
            local,
            &self.config.server(),
            Some(self.config.io_timeout),
        )
        .await?;
        self.timed(path, data.finish()).await?;
        Ok(n)
    }

    async fn do_put(&self, c: &mut Conn, local: &Path, path: &str) -> Result<u64, TransferError> {
        let full = self.full(&c.home, path)?;
        let mut src = tokio::fs::File::open(local)
            .await
            .map_err(|e| TransferError::local(local, e))?;
        let mut data = self.timed(path, c.stream.put_with_stream(&full)).await?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = src
                .read(&mut buf)
                .await
                .map_err(|e| TransferError::local(local, e))?;
            if n == 0 {
                break;
            }
            self.timed(path, async {
                data.write_all(&buf[..n])
                    .await
                    .map_err(FtpError::ConnectionError)
            })
            .await?;
            total += n as u64;
        }
        self.timed(path, async {
            data.flush().await.map_err(FtpError::ConnectionError)
        })
        .await?;
        self.timed(path, data.finish()).await?;
        Ok(total)
    }

    async fn do_mkdir(&self, c: &mut Conn, path: &str) -> Result<(), TransferError> {
        let target = self.full(&c.home, path)?;
        let mut prefix = String::new();
        for part in target.split('/').filter(|p| !p.is_empty()) {
            prefix.push('/');
            prefix.push_str(part);
            match self.timed(path, c.stream.mkdir(&prefix)).await {
                Ok(()) => {}
                Err(e @ (TransferError::NotFound { .. } | TransferError::Server { .. })) => {
                    // Exists already (or cannot be created): CWD tells which.
                    let exists = self.timed(path, c.stream.cwd(&prefix)).await.is_ok();
                    if !exists {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let home = if c.home.is_empty() { "/" } else { &c.home };
        self.timed(path, c.stream.cwd(home)).await?;
        Ok(())
    }
}

#[async_trait]
impl Transport for FtpTransport {
    async fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>, BoxError> {
        if !dir.is_empty() {
            check_relative_path(dir).map_err(|_| TransferError::unsafe_path(dir))?;
        }
        let mut c = self.checkout().await?;
        let r = self.do_list(&mut c, dir).await;
        self.finish(c, r)
    }

    async fn size(&self, path: &str) -> Result<Option<u64>, BoxError> {
        check_relative_path(path).map_err(|_| TransferError::unsafe_path(path))?;
        let mut c = self.checkout().await?;
        let full = self.full_unchecked(&c.home, path);
        let r = match self.timed(path, c.stream.size(&full)).await {
            Ok(n) => Ok(Some(n as u64)),
            Err(TransferError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        };
        self.finish(c, r)
    }

    async fn fetch(&self, path: &str, offset: u64, local: &Path) -> Result<u64, BoxError> {
        check_relative_path(path).map_err(|_| TransferError::unsafe_path(path))?;
        let mut c = self.checkout().await?;
        let r = self.do_fetch(&mut c, path, offset, local).await;
        self.finish(c, r)
    }

    async fn put(&self, local: &Path, path: &str) -> Result<u64, BoxError> {
        check_relative_path(path).map_err(|_| TransferError::unsafe_path(path))?;
        let mut c = self.checkout().await?;
        let r = self.do_put(&mut c, local, path).await;
        self.finish(c, r)
    }

    async fn delete(&self, path: &str) -> Result<(), BoxError> {
        check_relative_path(path).map_err(|_| TransferError::unsafe_path(path))?;
        let mut c = self.checkout().await?;
        let full = self.full_unchecked(&c.home, path);
        let r = self.timed(path, c.stream.rm(&full)).await;
        self.finish(c, r)
    }

    async fn mkdir(&self, path: &str) -> Result<(), BoxError> {
        if !path.is_empty() {
            check_relative_path(path).map_err(|_| TransferError::unsafe_path(path))?;
        }
        let mut c = self.checkout().await?;
        let r = self.do_mkdir(&mut c, path).await;
        self.finish(c, r)
    }
}

impl FtpTransport {
    /// Returns the connection to the pool when it is still usable, and boxes the error.
    fn finish<T>(&self, c: Conn, r: Result<T, TransferError>) -> Result<T, BoxError> {
        match &r {
            Ok(_) | Err(TransferError::NotFound { .. }) => self.checkin(c),
            Err(_) => drop(c),
        }
        r.map_err(Into::into)
    }
}

/// The rustls client configuration for `config`'s trust setting.
fn tls_config(config: &FtpConfig) -> Result<rustls::ClientConfig, TransferError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TransferError::Tls {
            server: config.server(),
            message: e.to_string(),
        })?;
    let mut roots = rustls::RootCertStore::empty();
    let cfg = match &config.trust {
        TlsTrust::PublicRoots => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsTrust::CaFile(path) => {
            let bad = |message: String| TransferError::Tls {
                server: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| TransferError::local(path, e))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("unusable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(bad("the CA file holds no certificate".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth(),
    };
    Ok(cfg)
}

/// Accepts any certificate, but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn transport_is_send_and_sync() {
        fn f<T: Send + Sync>() {}
        f::<FtpTransport>();
    }

    #[test]
    fn parses_urls() {
        let c = FtpConfig::from_url("ftps://repl@db1.example:2121/images/today").unwrap();
        assert_eq!(c.server(), "db1.example:2121");
        assert_eq!(c.user_name(), "repl");
        assert_eq!(c.root_dir(), "images/today");
        assert_eq!(c.security_mode(), FtpSecurity::ExplicitTls);
        let c: FtpConfig = "ftp://127.0.0.1".parse().unwrap();
        assert_eq!(c.server(), "127.0.0.1:21");
        assert_eq!(c.user_name(), "anonymous");
        assert_eq!(c.root_dir(), "");
        let c = FtpConfig::from_url("ftp://u@h/%2Fvar/lib/mysql-files/").unwrap();
        assert_eq!(c.root_dir(), "/var/lib/mysql-files");
        let c = FtpConfig::from_url("ftp://u%40x@[::1]:21/a%20b").unwrap();
        assert_eq!(c.user_name(), "u@x");
        assert_eq!(c.server(), "[::1]:21");
        assert_eq!(c.root_dir(), "a b");
    }

    #[test]
    fn url_parts_are_percent_decoded() {
        let c = FtpConfig::from_url("ftp://u%40x:p%2Fw%zz%C3%A4@h/d%2Fe").unwrap();
        assert_eq!(c.user_name(), "u@x");
        assert_eq!(c.password.expose(), "p/w%zzä");
        assert_eq!(c.root_dir(), "d/e");
        match FtpConfig::from_url("ftp://u:pw%FF@h/") {
            Err(TransferError::Config(m)) => assert!(m.contains("UTF-8"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_urls() {
        for u in ["http://h/", "ftp://", "ftp://h/a/%2E%2E%2Fb", "not a url"] {
            assert!(FtpConfig::from_url(u).is_err(), "{u}");
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_password() {
        let c = FtpConfig::from_url("ftp://u:hunter22@h/").unwrap();
        assert!(!format!("{c:?}").contains("hunter22"));
        let c = c.password(Secret::new("s3cret-pw"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret-pw"), "{dbg}");
        let t = FtpTransport::new(c).unwrap();
        assert!(!format!("{t:?}").contains("s3cret-pw"));
        let e = t.map_err(
            FtpError::UnexpectedResponse(suppaftp::types::Response::new(
                suppaftp::Status::NotLoggedIn,
                b"530 bad password s3cret-pw".to_vec(),
            )),
            "",
        );
        assert!(matches!(e, TransferError::AuthFailed { .. }));
        assert!(!e.to_string().contains("s3cret-pw"), "{e}");
    }

    #[test]
    fn maps_reply_codes() {
        let t = FtpTransport::new(FtpConfig::new("h")).unwrap();
        let resp = |code: u32| {
            FtpError::UnexpectedResponse(suppaftp::types::Response::new(
                suppaftp::Status::from(code),
                format!("{code} text").into_bytes(),
            ))
        };
        assert!(
            matches!(t.map_err(resp(550), "f"), TransferError::NotFound { path, .. } if path == "f")
        );
        assert!(t.map_err(resp(426), "f").is_retryable());
        assert!(t.map_err(resp(421), "f").is_retryable());
        assert!(t.map_err(resp(150), "f").is_retryable());
        assert!(matches!(
            t.map_err(resp(553), "f"),
            TransferError::Server { code: 553, .. }
        ));
        assert!(t
            .map_err(
                FtpError::ConnectionError(io::ErrorKind::ConnectionReset.into()),
                "f"
            )
            .is_retryable());
    }

    #[test]
    fn refuses_unsafe_paths_before_connecting() {
        let t = FtpTransport::new(
            FtpConfig::new("192.0.2.1").connect_timeout(Duration::from_millis(1)),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for p in ["../x", "/etc/passwd", "a/../b"] {
            let e = rt
                .block_on(t.fetch(p, 0, Path::new("/nonexistent/x")))
                .unwrap_err();
            assert!(
                matches!(
                    TransferError::from_boxed(e),
                    TransferError::UnsafePath { .. }
                ),
                "{p}"
            );
        }
    }

    #[test]
    fn bad_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not pem").unwrap();
        let c = FtpConfig::new("h")
            .security(FtpSecurity::ExplicitTls)
            .ca_file(&p);
        let e = FtpTransport::new(c).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        let c = FtpConfig::new("h")
            .security(FtpSecurity::ExplicitTls)
            .ca_file(dir.path().join("missing.pem"));
        assert!(matches!(
            FtpTransport::new(c).unwrap_err(),
            TransferError::LocalIo { .. }
        ));
    }
}
