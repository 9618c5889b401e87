//! The typed error of every transport and transfer function.

use std::io;
use std::path::PathBuf;

use amsu_core::manifest::ManifestError;
use amsu_core::BoxError;

/// FTP reply codes this crate branches on.
pub(crate) mod ftp_code {
    /// Service not available, closing control connection.
    pub const NOT_AVAILABLE: u32 = 421;
    /// Not logged in (bad user or password).
    pub const NOT_LOGGED_IN: u32 = 530;
    /// Requested action not taken: file unavailable (not found, no access).
    pub const FILE_UNAVAILABLE: u32 = 550;
}

/// Why a transfer failed. Messages name the file or server concerned and never contain a
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The server refused the login (FTP 530).
    #[error("login to {server} as {user:?} was refused: {message}")]
    AuthFailed {
        /// `host:port`.
        server: String,
        /// The user name.
        user: String,
        /// The server's reply.
        message: String,
    },
    /// The file or directory does not exist (FTP 550, or a missing local file).
    #[error("{path:?} was not found: {message}")]
    NotFound {
        /// The path, relative to the transport's root.
        path: String,
        /// The server's reply or the local error.
        message: String,
    },
    /// The connection failed, was cut or timed out, or the server answered with a transient
    /// (4xx) reply. Retrying may help.
    #[error("connection to {server} failed: {message}")]
    Connection {
        /// `host:port`.
        server: String,
        /// What happened.
        message: String,
    },
    /// The TLS handshake or configuration failed (certificate not trusted, bad CA file, …).
    #[error("TLS with {server} failed: {message}")]
    Tls {
        /// `host:port`, or the CA file for a configuration error.
        server: String,
        /// What happened.
        message: String,
    },
    /// The server refused a command with a permanent (5xx) reply other than 530 and 550.
    #[error("the server refused the command for {path:?}: [{code}] {message}")]
    Server {
        /// The path concerned.
        path: String,
        /// The FTP reply code.
        code: u32,
        /// The reply text.
        message: String,
    },
    /// A fetched file's SHA-256 differs from the manifest's. The local file was deleted.
    #[error("checksum mismatch for {path:?}: the manifest says sha256 {expected}, the fetched file has {actual}; the local file was deleted")]
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
    #[error("size mismatch for {path:?}: the manifest says {expected} bytes, got {actual}; the local file was deleted")]
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
    #[error("refusing the unsafe path {path:?} (absolute, `..`, empty parts or outside the root)")]
    UnsafePath {
        /// The path.
        path: String,
    },
    /// The image manifest is missing a field, of an unknown version or names an unsafe path.
    #[error("the image manifest at {location} is not usable: {source}")]
    Manifest {
        /// Where the manifest was read from.
        location: String,
        /// Why it was rejected.
        #[source]
        source: ManifestError,
    },
    /// Reading or writing a local file failed (unwritable or full directory, …).
    #[error("local file {}: {source}", path.display())]
    LocalIo {
        /// The local path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An FTP URL or configuration is not valid.
    #[error("invalid FTP configuration: {0}")]
    Config(String),
    /// An error of another [`Transport`](amsu_core::Transport) implementation.
    #[error(transparent)]
    Other(BoxError),
}

impl TransferError {
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
