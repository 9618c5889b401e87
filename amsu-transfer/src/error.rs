//! The typed error of every transport and transfer function.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::LazyLock;

use amsu_core::manifest::ManifestError;
use amsu_core::{kind_of, AdapterError, BoxError, ErrorKind};

/// FTP reply codes this crate branches on.
pub(crate) mod ftp_code {
    /// Service not available, closing control connection.
    pub(crate) const NOT_AVAILABLE: u32 = 421;
    /// Not logged in (bad user or password).
    pub(crate) const NOT_LOGGED_IN: u32 = 530;
    /// Requested action not taken: file unavailable (not found, no access).
    pub(crate) const FILE_UNAVAILABLE: u32 = 550;
}

/// Why a transfer failed. Messages name the file or server concerned and never contain a
/// password.
///
/// Every error says what kind of failure it is ([`TransferError::kind`]): the kind is also
/// in its source chain as an [`AdapterError`], so [`amsu_core::Error::kind`] and
/// [`amsu_core::kind_of`] find it in any error that carries a transfer error (a failed
/// restore from an FTP or S3 image, a failed upload) without downcasting to this type.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransferError {
    /// The server refused the login (FTP 530).
    AuthFailed {
        /// `host:port`.
        server: String,
        /// The user name.
        user: String,
        /// The server's reply.
        message: String,
    },
    /// The file or directory does not exist (FTP 550, or a missing local file).
    NotFound {
        /// The path, relative to the transport's root.
        path: String,
        /// The server's reply or the local error.
        message: String,
    },
    /// The connection failed, was cut or timed out, or the server answered with a transient
    /// (4xx) reply. Retrying may help.
    Connection {
        /// `host:port`.
        server: String,
        /// What happened.
        message: String,
    },
    /// The TLS handshake or configuration failed (certificate not trusted, bad CA file, …).
    Tls {
        /// `host:port`, or the CA file for a configuration error.
        server: String,
        /// What happened.
        message: String,
    },
    /// The server refused a command with a permanent (5xx) reply other than 530 and 550.
    Server {
        /// The path concerned.
        path: String,
        /// The FTP reply code.
        code: u32,
        /// The reply text.
        message: String,
    },
    /// A fetched file's SHA-256 differs from the manifest's. The local file was deleted.
    ChecksumMismatch {
        /// The image path of the file.
        path: String,
        /// SHA-256 in the manifest.
        expected: String,
        /// SHA-256 of the fetched bytes.
        actual: String,
    },
    /// A file's size differs from the manifest's (after a complete transfer). The local file
    /// was deleted.
    SizeMismatch {
        /// The image path of the file.
        path: String,
        /// Size in the manifest.
        expected: u64,
        /// Size found.
        actual: u64,
    },
    /// A path from a caller, a listing or a manifest is absolute, has `..` or escapes the
    /// root. Nothing was transferred for it.
    UnsafePath {
        /// The path.
        path: String,
    },
    /// The image manifest is missing a field, of an unknown version or names an unsafe path.
    Manifest {
        /// Where the manifest was read from.
        location: String,
        /// Why it was rejected.
        source: ManifestError,
    },
    /// Reading or writing a local file failed (unwritable or full directory, …).
    LocalIo {
        /// The local path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// An FTP or S3 URL or configuration is not valid.
    Config(String),
    /// An error of another [`Transport`](amsu_core::Transport) implementation.
    Other(BoxError),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TransferError::*;
        match self {
            AuthFailed {
                server,
                user,
                message,
            } => write!(f, "login to {server} as {user:?} was refused: {message}"),
            NotFound { path, message } => write!(f, "{path:?} was not found: {message}"),
            Connection { server, message } => write!(f, "connection to {server} failed: {message}"),
            Tls { server, message } => write!(f, "TLS with {server} failed: {message}"),
            Server {
                path,
                code,
                message,
            } => write!(
                f,
                "the server refused the command for {path:?}: [{code}] {message}"
            ),
            ChecksumMismatch {
                path,
                expected,
                actual,
            } => write!(
                f,
                "checksum mismatch for {path:?}: the manifest says sha256 {expected}, the \
                 fetched file has {actual}; the local file was deleted"
            ),
            SizeMismatch {
                path,
                expected,
                actual,
            } => write!(
                f,
                "size mismatch for {path:?}: the manifest says {expected} bytes, got \
                 {actual}; the local file was deleted"
            ),
            UnsafePath { path } => write!(
                f,
                "refusing the unsafe path {path:?} (absolute, `..`, empty parts or outside \
                 the root)"
            ),
            Manifest { location, source } => {
                write!(
                    f,
                    "the image manifest at {location} is not usable: {source}"
                )
            }
            LocalIo { path, source } => write!(f, "local file {}: {source}", path.display()),
            Config(message) => write!(f, "invalid FTP or S3 configuration: {message}"),
            Other(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for TransferError {
    /// The cause: the I/O error of [`TransferError::LocalIo`], the wrapped error of
    /// [`TransferError::Other`] when its chain has a kind, else a link that shows nothing and carries the
    /// [`kind`](TransferError::kind) (an [`AdapterError`]; the message already says
    /// everything, the manifest's own error included).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransferError::LocalIo { source, .. } => Some(source),
            TransferError::Other(e) if kind_of(&**e).is_some() => Some(&**e),
            TransferError::Other(_) => Some(kind_link(ErrorKind::Transfer)),
            other => Some(kind_link(other.kind())),
        }
    }
}

/// A cause that shows nothing: it only carries a kind into a source chain.
#[derive(Debug)]
struct KindLink;

impl fmt::Display for KindLink {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

impl std::error::Error for KindLink {}

/// The shared [`AdapterError`] of `kind` (connection, authentication or transfer).
fn kind_link(kind: ErrorKind) -> &'static AdapterError {
    static CONNECTION: LazyLock<AdapterError> =
        LazyLock::new(|| AdapterError::new(ErrorKind::Connection, KindLink));
    static AUTHENTICATION: LazyLock<AdapterError> =
        LazyLock::new(|| AdapterError::new(ErrorKind::Authentication, KindLink));
    static TRANSFER: LazyLock<AdapterError> =
        LazyLock::new(|| AdapterError::new(ErrorKind::Transfer, KindLink));
    match kind {
        ErrorKind::Connection => &CONNECTION,
        ErrorKind::Authentication => &AUTHENTICATION,
        _ => &TRANSFER,
    }
}

impl TransferError {
    /// What kind of failure this is, for a program to branch on (the same kind
    /// [`amsu_core::kind_of`] finds in any error carrying this one):
    ///
    /// - [`ErrorKind::Connection`]: the server or store could not be reached, the
    ///   connection was cut or timed out, or TLS failed ([`Connection`](Self::Connection),
    ///   [`Tls`](Self::Tls));
    /// - [`ErrorKind::Authentication`]: the login or the S3 credentials were refused
    ///   ([`AuthFailed`](Self::AuthFailed));
    /// - [`ErrorKind::Io`]: a local file could not be read or written
    ///   ([`LocalIo`](Self::LocalIo));
    /// - [`ErrorKind::Transfer`]: everything else about moving the image — a file not
    ///   found, a command refused, a damaged file (checksum or size mismatch), an unusable
    ///   manifest, an unsafe path, a bad URL or configuration;
    /// - [`Other`](Self::Other): the kind its own chain gives, else
    ///   [`ErrorKind::Transfer`].
    pub fn kind(&self) -> ErrorKind {
        use TransferError::*;
        match self {
            Connection { .. } | Tls { .. } => ErrorKind::Connection,
            AuthFailed { .. } => ErrorKind::Authentication,
            LocalIo { .. } => ErrorKind::Io,
            Other(e) => kind_of(&**e).unwrap_or(ErrorKind::Transfer),
            NotFound { .. }
            | Server { .. }
            | ChecksumMismatch { .. }
            | SizeMismatch { .. }
            | UnsafePath { .. }
            | Manifest { .. }
            | Config(_) => ErrorKind::Transfer,
        }
    }

    /// True when retrying the same operation may succeed: connection errors, timeouts and
    /// transient server replies.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TransferError::Connection { .. })
    }

    /// Recovers the typed error from a [`BoxError`] returned through the
    /// [`Transport`](amsu_core::Transport) trait. Network-like `std::io::Error`s become
    /// [`TransferError::Connection`]; anything else is [`TransferError::Other`].
    pub fn from_boxed(err: BoxError) -> TransferError {
        match err.downcast::<TransferError>() {
            Ok(e) => *e,
            Err(err) => match err.downcast::<io::Error>() {
                Ok(e) if is_network_io(&e) => TransferError::Connection {
                    server: "?".into(),
                    message: e.to_string(),
                },
                Ok(e) => TransferError::Other(e),
                Err(err) => TransferError::Other(err),
            },
        }
    }

    pub(crate) fn local(path: impl Into<PathBuf>, source: io::Error) -> TransferError {
        TransferError::LocalIo {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsafe_path(path: &str) -> TransferError {
        TransferError::UnsafePath { path: path.into() }
    }
}

impl From<BoxError> for TransferError {
    /// Same as [`TransferError::from_boxed`].
    fn from(err: BoxError) -> Self {
        TransferError::from_boxed(err)
    }
}

/// True for I/O errors that come from the network rather than a local file.
pub(crate) fn is_network_io(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | TimedOut
            | UnexpectedEof
            | AddrNotAvailable
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_errors_keep_their_kind() {
        let e: BoxError = Box::new(TransferError::Connection {
            server: "h:21".into(),
            message: "reset".into(),
        });
        assert!(TransferError::from_boxed(e).is_retryable());
        let e: BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(TransferError::from_boxed(e).is_retryable());
        let e: BoxError = Box::new(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!TransferError::from_boxed(e).is_retryable());
        let e: BoxError = "something else".into();
        assert!(matches!(
            TransferError::from_boxed(e),
            TransferError::Other(_)
        ));
    }

    /// One error of each variant, with the kind it must report.
    fn one_of_each() -> Vec<(TransferError, ErrorKind)> {
        use TransferError::*;
        let s = || "x".to_string();
        vec![
            (
                AuthFailed {
                    server: s(),
                    user: s(),
                    message: s(),
                },
                ErrorKind::Authentication,
            ),
            (
                NotFound {
                    path: s(),
                    message: s(),
                },
                ErrorKind::Transfer,
            ),
            (
                Connection {
                    server: s(),
                    message: s(),
                },
                ErrorKind::Connection,
            ),
            (
                Tls {
                    server: s(),
                    message: s(),
                },
                ErrorKind::Connection,
            ),
            (
                Server {
                    path: s(),
                    code: 553,
                    message: s(),
                },
                ErrorKind::Transfer,
            ),
            (
                ChecksumMismatch {
                    path: s(),
                    expected: s(),
                    actual: s(),
                },
                ErrorKind::Transfer,
            ),
            (
                SizeMismatch {
                    path: s(),
                    expected: 1,
                    actual: 2,
                },
                ErrorKind::Transfer,
            ),
            (UnsafePath { path: s() }, ErrorKind::Transfer),
            (
                Manifest {
                    location: s(),
                    source: ManifestError::Malformed("no files".into()),
                },
                ErrorKind::Transfer,
            ),
            (
                TransferError::local("/x", io::Error::other("disk full")),
                ErrorKind::Io,
            ),
            (Config(s()), ErrorKind::Transfer),
            (Other("a transport's own error".into()), ErrorKind::Transfer),
            (
                Other(Box::new(AdapterError::new(ErrorKind::Authentication, "no"))),
                ErrorKind::Authentication,
            ),
        ]
    }

    #[test]
    fn every_error_carries_its_kind_in_its_chain() {
        use amsu_core::{Error, Role, Step};
        for (e, kind) in one_of_each() {
            let shown = e.to_string();
            assert_eq!(e.kind(), kind, "{shown}");
            assert_eq!(kind_of(&e), Some(kind), "{shown}");
            // Through the core error of a failed setup step, without downcasting.
            let failed = Error::Failed {
                step: Step::CopyData,
                server: Role::Replica,
                source: Box::new(e),
                state: String::new(),
            };
            assert_eq!(failed.kind(), kind, "{shown}");
            // The link adds nothing to the message.
            let chain: Vec<String> =
                std::iter::successors(Some(&failed as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .map(|e| e.to_string())
                .filter(|m| !m.is_empty())
                .collect();
            assert!(chain.iter().any(|m| m == &shown), "{chain:?}");
        }
        // Through the trait boundary and back.
        let boxed: BoxError = Box::new(TransferError::Connection {
            server: "h:21".into(),
            message: "reset".into(),
        });
        assert_eq!(kind_of(&*boxed), Some(ErrorKind::Connection));
        assert_eq!(
            TransferError::from_boxed(boxed).kind(),
            ErrorKind::Connection
        );
    }

    #[test]
    fn checksum_error_names_file_and_both_sums() {
        let e = TransferError::ChecksumMismatch {
            path: "db/t.tsv".into(),
            expected: "aa".into(),
            actual: "bb".into(),
        };
        let s = e.to_string();
        assert!(
            s.contains("db/t.tsv") && s.contains("aa") && s.contains("bb"),
            "{s}"
        );
    }
}
