//! Why a sandbox operation failed.

use super::*;

/// Why a sandbox could not be deployed, started, stopped or listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A MariaDB program is not installed.
    #[error(
        "{binary} not found (looked in {searched}); install MariaDB with \
         `apt-get install mariadb-server`"
    )]
    BinaryNotFound {
        /// The program (e.g. `mariadbd`).
        binary: String,
        /// The directories searched, separated by `:`.
        searched: String,
    },
    /// The sandbox name cannot be used as a directory name.
    #[error("invalid sandbox name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The sandbox directory exists already.
    #[error(
        "sandbox directory {} already exists; stop and remove that sandbox or choose another name",
        dir.display()
    )]
    AlreadyExists {
        /// The existing directory.
        dir: PathBuf,
    },
    /// There is no sandbox of that name.
    #[error("no sandbox named {name:?} in {}", base_dir.display())]
    NotFound {
        /// Where it was looked for.
        base_dir: PathBuf,
        /// The name asked for.
        name: String,
    },
    /// The sandbox path contains whitespace, which `mariadb-install-db` cannot pass on.
    #[error(
        "sandbox directory {} contains whitespace, which mariadb-install-db does not support; \
         use another base directory",
        path.display()
    )]
    WhitespaceInPath {
        /// The sandbox directory.
        path: PathBuf,
    },
    /// The socket path does not fit in a Unix socket address.
    #[error(
        "socket path {} is {len} bytes long, more than the {MAX_SOCKET_PATH} a Unix socket allows; \
         use a shorter base directory",
        path.display()
    )]
    SocketPathTooLong {
        /// The socket path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// A file system or process operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `mariadb-install-db` failed.
    #[error(
        "mariadb-install-db failed ({status}) for {}; its output:\n{output_tail}",
        datadir.display()
    )]
    InstallDb {
        /// The data directory it was creating.
        datadir: PathBuf,
        /// Its exit status.
        status: String,
        /// Its error lines, then the last lines of its output.
        output_tail: String,
    },
    /// `mariadbd` exited before it accepted connections.
    #[error(
        "mariadbd exited ({status}) before accepting connections; last lines of {}:\n{log_tail}",
        error_log.display()
    )]
    ServerExited {
        /// Its exit status.
        status: String,
        /// The server's error log.
        error_log: PathBuf,
        /// The last lines of the error log.
        log_tail: String,
    },
    /// A program did not become ready in time (it has been stopped).
    #[error(
        "{what} was not ready after {timeout:?} (last error: {last_error}); last lines of {}:\n{log_tail}",
        log.display()
    )]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// How long.
        timeout: Duration,
        /// The last error seen while waiting.
        last_error: String,
        /// The log consulted.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },
    /// Every port tried was taken by someone else by the time the server bound it.
    #[error(
        "mariadbd could not bind a free port in {attempts} attempts; last lines of {}:\n{log_tail}",
        error_log.display()
    )]
    PortInUse {
        /// How many ports were tried.
        attempts: usize,
        /// The server's error log.
        error_log: PathBuf,
        /// The last lines of the error log.
        log_tail: String,
    },
    /// A statement on the sandbox failed.
    #[error("cannot {action} on sandbox {name:?} (port {port}): {source}")]
    Sql {
        /// What was being done.
        action: &'static str,
        /// The sandbox.
        name: String,
        /// Its TCP port.
        port: u16,
        /// The cause (the driver's error, classified).
        #[source]
        source: amsu_core::AdapterError,
    },
    /// A signal could not be sent.
    #[error("cannot send {signal} to mariadbd (pid {pid}): {source}")]
    Signal {
        /// The signal.
        signal: Signal,
        /// The target.
        pid: u32,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// The server was still running after SIGTERM and SIGKILL.
    #[error("mariadbd (pid {pid}) is still running {waited:?} after SIGTERM and SIGKILL")]
    StopTimeout {
        /// The process.
        pid: u32,
        /// How long it was waited for.
        waited: Duration,
    },
    /// `sandbox.json` could not be read or written.
    #[error("invalid sandbox manifest {}: {source}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

pub(super) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SandboxError {
    let path = path.to_path_buf();
    move |source| SandboxError::Io {
        action,
        path,
        source,
    }
}
