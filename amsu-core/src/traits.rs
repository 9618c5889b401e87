//! The contracts the orchestrator drives. `amsu-mysql`, `amsu-backup` and
//! `amsu-transfer` implement them; unit tests mock them (feature `mocks`).
//!
//! Failure contract, for every method: an `Err` means the operation did not complete. A
//! method that only reads (`probe`, `replication_status`, …) changed nothing. A method that
//! changes a server either completed or left the server as it was, except where its
//! documentation says otherwise.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{BoxError, Coordinates, EventSink, ReplicationStatus, Secret, ServerInfo};

/// Whether a login succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCheck {
    /// The credentials work.
    Ok,
    /// The server refused them (access denied).
    Denied,
}

/// The master, as the orchestrator sees it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MasterServer: Send + Sync {
    /// Connects and reads flavor, version, server_id, binary log settings.
    async fn probe(&self) -> Result<ServerInfo, BoxError>;
    /// Tries to log in to the master as `user` with `password`.
    async fn check_login(&self, user: &str, password: &Secret) -> Result<LoginCheck, BoxError>;
    /// True when an account named `user` (any host) exists.
    async fn user_exists(&self, user: &str) -> Result<bool, BoxError>;
    /// Creates `'user'@'host'` with `password` and grants it `REPLICATION SLAVE` only.
    async fn create_replication_user(
        &self,
        user: &str,
        host: &str,
        password: &Secret,
    ) -> Result<(), BoxError>;
    /// Gives an existing replication user a new password (`ALTER USER`).
    async fn set_replication_password(
        &self,
        user: &str,
        host: &str,
        password: &Secret,
    ) -> Result<(), BoxError>;
    /// Drops `'user'@'host'` if it exists (`DROP USER IF EXISTS`, binary-logged as any
    /// account change): reverts [`MasterServer::create_replication_user`] when the setup
    /// that created the user fails.
    async fn drop_replication_user(&self, user: &str, host: &str) -> Result<(), BoxError>;
    /// `SET GLOBAL server_id = id`.
    async fn set_server_id(&self, id: u32) -> Result<(), BoxError>;
    /// The master's current binary log position.
    async fn binlog_position(&self) -> Result<Coordinates, BoxError>;
}

/// How the replica finds its starting point in the master's binary log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Positioning {
    /// Binary log file and byte position (`MASTER_LOG_FILE`, `MASTER_LOG_POS`). The default.
    #[default]
    FilePosition,
    /// GTIDs: MariaDB `MASTER_USE_GTID=slave_pos` (with `gtid_slave_pos` set to the
    /// snapshot's GTID position), MySQL `SOURCE_AUTO_POSITION=1`.
    Gtid,
}

/// TLS settings of the replica's connection to the master (`MASTER_SSL…`). Paths are on
/// the replica's host: the replica server reads them. Never holds a secret.
///
/// | field | default |
/// |---|---|
/// | `ssl` | off |
/// | `ca`, `cert`, `key` | none |
/// | `verify_server_cert` | off |
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicationTls {
    /// Connect over TLS (`MASTER_SSL=1`).
    pub ssl: bool,
    /// CA file to verify the master's certificate (`MASTER_SSL_CA`).
    pub ca: Option<String>,
    /// Client certificate file (`MASTER_SSL_CERT`).
    pub cert: Option<String>,
    /// Client key file (`MASTER_SSL_KEY`).
    pub key: Option<String>,
    /// Check that the master's certificate names the host connected to
    /// (`MASTER_SSL_VERIFY_SERVER_CERT=1`).
    pub verify_server_cert: bool,
}

impl ReplicationTls {
    /// No TLS (the default).
    pub fn off() -> Self {
        Self::default()
    }

    /// TLS, with every other setting from the given ones: a CA file, a client
    /// certificate or server-certificate verification each turn TLS on.
    pub fn new(
        ssl: bool,
        ca: Option<String>,
        cert: Option<String>,
        key: Option<String>,
        verify_server_cert: bool,
    ) -> Self {
        let ssl = ssl || ca.is_some() || cert.is_some() || key.is_some() || verify_server_cert;
        ReplicationTls {
            ssl,
            ca,
            cert,
            key,
            verify_server_cert,
        }
    }
}

/// How the replica reaches the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSource {
    /// Master host, as the replica resolves it.
    pub host: String,
    /// Master port.
    pub port: u16,
    /// Replication user.
    pub user: String,
    /// Its password.
    pub password: Secret,
    /// Where to start.
    pub coordinates: Coordinates,
    /// File/position or GTID positioning.
    pub positioning: Positioning,
    /// TLS settings of the replication connection.
    pub tls: ReplicationTls,
}

/// The replica, as the orchestrator sees it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReplicaServer: Send + Sync {
    /// Connects and reads flavor, version, server_id.
    async fn probe(&self) -> Result<ServerInfo, BoxError>;
    /// Its replication configuration, `None` when it was never configured as a replica.
    async fn replication_status(&self) -> Result<Option<ReplicationStatus>, BoxError>;
    /// Databases other than the system ones.
    async fn user_databases(&self) -> Result<Vec<String>, BoxError>;
    /// Stops replication and forgets its configuration (`STOP SLAVE; RESET SLAVE ALL`).
    async fn reset_replication(&self) -> Result<(), BoxError>;
    /// Drops the given databases.
    async fn drop_databases(&self, names: &[String]) -> Result<(), BoxError>;
    /// Sets `server_id` (when given) and `read_only`.
    async fn configure(&self, server_id: Option<u32>, read_only: bool) -> Result<(), BoxError>;
    /// Points the replica at the master (host and coordinates in one statement), with the
    /// source's positioning and TLS settings.
    async fn change_master(&self, source: &ReplicationSource) -> Result<(), BoxError>;
    /// Gives a replica that is already configured (by [`ReplicaServer::change_master`])
    /// a new replication user, password and, when `tls.ssl`, TLS settings, keeping its
    /// position: stops the replica threads first (they stay stopped).
    async fn set_replication_credentials(
        &self,
        user: &str,
        password: &Secret,
        tls: &ReplicationTls,
    ) -> Result<(), BoxError>;
    /// Starts replication and waits up to `timeout` until both threads run. On failure the
    /// error carries `Last_IO_Error` / `Last_SQL_Error` verbatim.
    async fn start_replication(&self, timeout: Duration) -> Result<ReplicationStatus, BoxError>;
    /// Waits up to `timeout` until the replica has applied everything up to `target`.
    async fn wait_until_applied(
        &self,
        target: &Coordinates,
        timeout: Duration,
    ) -> Result<(), BoxError>;
    /// Waits up to `timeout` until the replica has applied the master's GTID position
    /// `gtid` (for replication with [`Positioning::Gtid`]).
    async fn wait_until_gtid_applied(&self, gtid: &str, timeout: Duration) -> Result<(), BoxError>;
}

/// Further read-only checks run before any change (privileges, binlog retention, table
/// engines, DEFINER accounts, …). Implementations must not change either server.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Preflight: Send + Sync {
    /// Every finding; blocking ones stop the setup before it changes anything.
    async fn findings(&self) -> Result<Vec<crate::Finding>, BoxError>;
}

/// What a data copy reports.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CopyReport {
    /// The snapshot's coordinates on the master.
    pub coordinates: Option<Coordinates>,
    /// Databases copied.
    pub databases: u64,
    /// Tables copied.
    pub tables: u64,
    /// Rows copied.
    pub rows: u64,
    /// Bytes of encoded row data copied.
    pub bytes: u64,
    /// Accounts copied.
    pub accounts: u64,
    /// Views, routines, triggers and events copied.
    pub objects: u64,
    /// How long the master's commits were blocked, in milliseconds.
    pub commit_blocked_ms: f64,
}

/// Copies a consistent snapshot of the master into the replica: backup, transfer and
/// restore of one method. On error the replica may hold part of the data; the master is
/// unchanged.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DataCopier: Send + Sync {
    /// Runs the copy from the start, reporting progress to `events`.
    async fn copy(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError>;

    /// True when an interrupted copy can go on where it stopped ([`DataCopier::resume`])
    /// instead of being dropped and started again. Default: false.
    fn resumable(&self) -> bool {
        false
    }

    /// Goes on with an interrupted copy: the replica holds what an earlier
    /// [`DataCopier::copy`] of the same data loaded. Default: [`DataCopier::copy`].
    async fn resume(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        self.copy(events).await
    }

    /// Called once the finished copy is journaled: drop whatever the copy kept on the
    /// replica to resume with. Default: nothing.
    async fn finished(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// One entry of a remote directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// File name (no directory part).
    pub name: String,
    /// Size in bytes, when the listing gives it.
    pub size: Option<u64>,
    /// True for a directory.
    pub is_dir: bool,
}

/// Moves image files between the replica host and wherever the image is kept (a local
/// directory, an FTP/FTPS server). Paths are relative to the transport's root, `/`
/// separated; implementations refuse absolute paths and `..`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Transport: Send + Sync {
    /// Lists a directory.
    async fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>, BoxError>;
    /// Size of a file, `None` when it does not exist.
    async fn size(&self, path: &str) -> Result<Option<u64>, BoxError>;
    /// Appends the remote file's bytes from `offset` on to the local file `local`
    /// (created if missing) and returns how many bytes were written. After an error the
    /// local file holds a prefix of the remote one; call again with its length to resume.
    async fn fetch(&self, path: &str, offset: u64, local: &Path) -> Result<u64, BoxError>;
    /// Uploads the local file to `path`, replacing it.
    async fn put(&self, local: &Path, path: &str) -> Result<u64, BoxError>;
    /// Deletes a file.
    async fn delete(&self, path: &str) -> Result<(), BoxError>;
    /// Creates a directory (and its parents); succeeds if it exists.
    async fn mkdir(&self, path: &str) -> Result<(), BoxError>;
}
