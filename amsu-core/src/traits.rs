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

use crate::{
    BoxError, Coordinates, EventSink, Finding, GlobalChange, ReplicationStatus, Secret, ServerInfo,
};

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
    /// What identifies this server (host name, port, data directory, …), to prove that
    /// master and replica are different servers. Reads only.
    async fn identity(&self) -> Result<ServerIdentity, BoxError>;
    /// True when some session on this server holds the user-level lock `name`
    /// (`IS_USED_LOCK`): the identity token a [`ReplicaServer::hold_lock`] took on the
    /// replica is visible here only when both are the same server. Reads only.
    async fn lock_in_use(&self, name: &str) -> Result<bool, BoxError>;
    /// `SET GLOBAL name = value` for each pair, in order (runtime only, not persisted), as
    /// the account that may change the master's settings. After an error, the pairs
    /// before the failing one are applied and the rest are not. Default: refuses (a
    /// master that cannot change its globals cannot protect its binary logs).
    async fn set_globals(&self, pairs: &[(String, String)]) -> Result<(), BoxError> {
        if pairs.is_empty() {
            return Ok(());
        }
        Err("this master cannot change its global variables".into())
    }
}

/// What identifies a server, read by [`MasterServer::identity`] and
/// [`ReplicaServer::identity`]; compared by [`crate::same_server`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ServerIdentity {
    /// `@@hostname`.
    pub hostname: String,
    /// `@@port`.
    pub port: u16,
    /// `@@datadir`.
    pub datadir: String,
    /// `@@server_uuid` (MySQL); `None` on MariaDB.
    pub server_uuid: Option<String>,
    /// `@@server_id`.
    pub server_id: u32,
    /// The binary log state (`gtid_binlog_state` or file and position), when logging.
    pub binlog: Option<String>,
    /// The `server_id`s of the replicas connected to this server (`SHOW SLAVE HOSTS`;
    /// empty when it cannot be read).
    pub replica_ids: Vec<u32>,
}

impl ServerIdentity {
    /// An identity from its parts.
    pub fn new(hostname: impl Into<String>, port: u16, datadir: impl Into<String>) -> Self {
        ServerIdentity {
            hostname: hostname.into(),
            port,
            datadir: datadir.into(),
            ..Default::default()
        }
    }

    /// With `@@server_uuid`.
    pub fn server_uuid(mut self, uuid: Option<String>) -> Self {
        self.server_uuid = uuid;
        self
    }

    /// With `@@server_id`.
    pub fn server_id(mut self, id: u32) -> Self {
        self.server_id = id;
        self
    }

    /// With the binary log state.
    pub fn binlog(mut self, binlog: Option<String>) -> Self {
        self.binlog = binlog;
        self
    }

    /// With the server ids of connected replicas.
    pub fn replica_ids(mut self, ids: Vec<u32>) -> Self {
        self.replica_ids = ids;
        self
    }
}

/// What [`ReplicaServer::hold_lock`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// The lock is now held by this process, until released.
    Acquired,
    /// Another session holds it; the text names it (connection, client host, for how
    /// long).
    HeldBy(String),
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
#[non_exhaustive]
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

/// How the replica reaches the master. Built with [`ReplicationSource::new`] and the
/// `with_*` setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

impl ReplicationSource {
    /// The master at `host:port`, as `user` with `password`, from `coordinates`.
    /// Defaults: file and position positioning, no TLS.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: Secret,
        coordinates: Coordinates,
    ) -> Self {
        ReplicationSource {
            host: host.into(),
            port,
            user: user.into(),
            password,
            coordinates,
            positioning: Positioning::FilePosition,
            tls: ReplicationTls::default(),
        }
    }

    /// File/position or GTID positioning. Default: file and position.
    pub fn with_positioning(mut self, positioning: Positioning) -> Self {
        self.positioning = positioning;
        self
    }

    /// TLS settings of the replication connection. Default: none.
    pub fn with_tls(mut self, tls: ReplicationTls) -> Self {
        self.tls = tls;
        self
    }
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
    /// What identifies this server (see [`MasterServer::identity`]). Reads only.
    async fn identity(&self) -> Result<ServerIdentity, BoxError>;
    /// Takes the user-level lock `name` (`GET_LOCK(name, 0)`) on a session the adapter
    /// keeps open until [`ReplicaServer::release_lock`] or until it is dropped (the
    /// server releases it when that session ends, also after `kill -9`). Changes no data.
    async fn hold_lock(&self, name: &str) -> Result<LockOutcome, BoxError>;
    /// Releases a lock taken by [`ReplicaServer::hold_lock`]; nothing when not held.
    async fn release_lock(&self, name: &str) -> Result<(), BoxError>;
    /// The user databases amsu's copy created on this replica and recorded as its own
    /// (a marker table on the replica); a rerun may drop exactly these.
    async fn owned_databases(&self) -> Result<Vec<String>, BoxError>;
    /// Removes the records of [`ReplicaServer::owned_databases`] (the copy is finished
    /// and journaled: from now on a rerun does not copy again).
    async fn forget_owned(&self) -> Result<(), BoxError>;
    /// The current values of the global variables `names` (`SELECT @@global.name`), in
    /// the same order; `None` for a variable this server does not have. Reads only.
    async fn read_globals(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, Option<String>)>, BoxError>;
    /// `SET GLOBAL name = value` for each pair, in order (runtime only, not persisted).
    /// After an error, the pairs before the failing one are applied and the rest are not.
    async fn set_globals(&self, pairs: &[(String, String)]) -> Result<(), BoxError>;
}

/// Further read-only checks run before any change (privileges, binlog retention, table
/// engines, DEFINER accounts, …). Implementations must not change either server.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Preflight: Send + Sync {
    /// Every finding; blocking ones stop the setup before it changes anything.
    async fn findings(&self) -> Result<Vec<crate::Finding>, BoxError>;

    /// The findings for a setup in the given situation. Default: [`Preflight::findings`].
    /// `Setup` calls this one, so a check can tell the replica's state left by amsu's own
    /// interrupted run (to resume) from a foreign one.
    async fn findings_in(
        &self,
        context: &PreflightContext,
    ) -> Result<Vec<crate::Finding>, BoxError> {
        let _ = context;
        self.findings().await
    }

    /// The findings and the changes the checks decided for the setup (see [`Prepared`]).
    /// `Setup` calls this one. Default: [`Preflight::findings_in`], no changes.
    async fn prepare(&self, context: &PreflightContext) -> Result<Prepared, BoxError> {
        Ok(Prepared::new(self.findings_in(context).await?))
    }
}

/// What a [`Preflight`] found and decided: its findings, and the settings of the master
/// the setup must change for its duration (the binary log retention, raised so that the
/// logs the replica starts from are not purged). `Setup` plans those changes as
/// [`Action::RaiseBinlogRetention`](crate::Action::RaiseBinlogRetention) before the copy
/// and [`Action::RestoreBinlogRetention`](crate::Action::RestoreBinlogRetention) at the
/// end, with the originals journaled before the change.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Prepared {
    /// Every finding; blocking ones stop the setup before it changes anything.
    pub findings: Vec<Finding>,
    /// Master globals to raise for the setup's duration, with their original values.
    pub master_globals: Vec<GlobalChange>,
}

impl Prepared {
    /// Findings, no changes.
    pub fn new(findings: Vec<Finding>) -> Self {
        Prepared {
            findings,
            master_globals: Vec::new(),
        }
    }

    /// Also raises these master globals for the setup's duration.
    pub fn master_globals(mut self, changes: Vec<GlobalChange>) -> Self {
        self.master_globals = changes;
        self
    }
}

/// What `Setup` knows when it runs the checks, from its journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreflightContext {
    /// The replica's replication configuration is amsu's own, from an interrupted earlier
    /// run of this same setup (not a sign that it replicated from elsewhere).
    pub own_replication_config: bool,
    /// An earlier run of this setup began the copy: the user data on the replica that
    /// amsu recorded as its own is not foreign.
    pub resuming_copy: bool,
    /// Master globals an interrupted earlier run of this setup raised and did not put
    /// back, with their original values: check the master as it was before that run.
    pub master_raised: Vec<GlobalChange>,
}

/// What a data copy reports (built with [`CopyReport::new`] and its `with_*` setters).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
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

impl CopyReport {
    /// A copy of the snapshot at `coordinates`; every count 0 (see the `with_*` setters).
    pub fn new(coordinates: Coordinates) -> Self {
        CopyReport {
            coordinates: Some(coordinates),
            ..CopyReport::default()
        }
    }

    /// The catalog copied: databases, tables, accounts, and views, routines, triggers
    /// and events. Default: none.
    pub fn with_catalog(
        mut self,
        databases: u64,
        tables: u64,
        accounts: u64,
        objects: u64,
    ) -> Self {
        self.databases = databases;
        self.tables = tables;
        self.accounts = accounts;
        self.objects = objects;
        self
    }

    /// The rows and bytes of encoded row data copied. Default: none.
    pub fn with_data(mut self, rows: u64, bytes: u64) -> Self {
        self.rows = rows;
        self.bytes = bytes;
        self
    }

    /// How long the master's commits were blocked, in milliseconds. Default: 0.
    pub fn with_commit_blocked_ms(mut self, millis: f64) -> Self {
        self.commit_blocked_ms = millis;
        self
    }
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
    /// What the copy runs on each server, for a dry-run plan (passwords never shown,
    /// placeholders in `<…>`). `None`: the logical copy's statements, which the renderer
    /// of the plan knows. Default: `None`.
    fn statements(&self) -> Option<Vec<String>> {
        None
    }
}

/// The work of a setup's plan that is not a server change: writing the replica's option
/// file ([`crate::Action::WriteReplicaConfig`]) and comparing the data
/// ([`crate::Action::VerifyData`]). Both only read the servers; they are plan actions so
/// that the dry run shows them and the journal records them (a rerun after a crash runs
/// what did not finish). The façade (`amsu-backup`) gives the implementation; it keeps
/// what it found for its caller.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Finishing: Send + Sync {
    /// Writes the replica's settings to the option file `path` (with `report_host`).
    async fn write_replica_config(
        &self,
        path: &Path,
        report_host: Option<String>,
    ) -> Result<(), BoxError>;
    /// Compares the data of both servers (after the replica caught up). Differences are
    /// not an error: the implementation keeps them for its caller; an error means the
    /// comparison could not be made.
    async fn verify(&self) -> Result<(), BoxError>;
}

/// One entry of a remote directory listing (built with [`RemoteEntry::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteEntry {
    /// File name (no directory part).
    pub name: String,
    /// Size in bytes, when the listing gives it.
    pub size: Option<u64>,
    /// True for a directory.
    pub is_dir: bool,
}

impl RemoteEntry {
    /// The entry `name` (no directory part) of `size` bytes when known; `is_dir` for a
    /// directory.
    pub fn new(name: impl Into<String>, size: Option<u64>, is_dir: bool) -> RemoteEntry {
        RemoteEntry {
            name: name.into(),
            size,
            is_dir,
        }
    }
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
    /// Uploads `data` to `path`, replacing it, and returns its length. The default writes
    /// `data` to a temporary file (blocking; meant for small files such as a manifest or an
    /// upload state) and [`put`](Self::put)s it; a store that can send from memory (S3, a
    /// local directory) overrides it, so no staging file is written.
    async fn put_bytes(&self, data: bytes::Bytes, path: &str) -> Result<u64, BoxError> {
        let mut tmp = tempfile::NamedTempFile::new()?;
        std::io::Write::write_all(&mut tmp, &data)?;
        self.put(tmp.path(), path).await
    }
    /// Deletes a file.
    async fn delete(&self, path: &str) -> Result<(), BoxError>;
    /// Creates a directory (and its parents); succeeds if it exists.
    async fn mkdir(&self, path: &str) -> Result<(), BoxError>;
}

#[cfg(test)]
mod transport_tests {
    use super::*;
    use std::sync::Mutex;

    /// Records what `put` read from the local file.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, Vec<u8>)>>);

    #[async_trait]
    impl Transport for Recorder {
        async fn list(&self, _: &str) -> Result<Vec<RemoteEntry>, BoxError> {
            Ok(vec![])
        }
        async fn size(&self, _: &str) -> Result<Option<u64>, BoxError> {
            Ok(None)
        }
        async fn fetch(&self, _: &str, _: u64, _: &Path) -> Result<u64, BoxError> {
            Ok(0)
        }
        async fn put(&self, local: &Path, path: &str) -> Result<u64, BoxError> {
            let data = std::fs::read(local)?;
            let n = data.len() as u64;
            self.0.lock().unwrap().push((path.to_string(), data));
            Ok(n)
        }
        async fn delete(&self, _: &str) -> Result<(), BoxError> {
            Ok(())
        }
        async fn mkdir(&self, _: &str) -> Result<(), BoxError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn put_bytes_defaults_to_a_temporary_file_and_put() {
        let t = Recorder::default();
        assert_eq!(t.put_bytes("state".into(), "d/s.json").await.unwrap(), 5);
        let got = t.0.lock().unwrap().clone();
        assert_eq!(got, vec![("d/s.json".to_string(), b"state".to_vec())]);
    }
}
