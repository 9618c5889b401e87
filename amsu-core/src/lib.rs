//! # amsu-core
//!
//! The contracts and the orchestrator of amsu ("auto-magic slave setup"), which turns an
//! empty MySQL-family server into a verified, running replica of a live master.
//!
//! This crate does no I/O. It owns:
//! - the steps of a setup ([`Step`]) and the orchestrator ([`Setup`]) that runs them, all
//!   checks first and then the changes;
//! - the traits the orchestrator drives ([`MasterServer`], [`ReplicaServer`],
//!   [`DataCopier`], [`Transport`]), implemented by `amsu-mysql`, `amsu-backup` and
//!   `amsu-transfer`;
//! - configuration and state types ([`ServerAddr`], [`ServerInfo`], [`Coordinates`]),
//!   [`Secret`], preflight [`Finding`]s, [`Event`]s and [`Error`]s;
//! - the image [`manifest`].
//!
//! ## Embedding a setup
//!
//! A program drives [`Setup`] with its own implementations of the traits (`amsu-mysql`
//! and `amsu-backup` provide the real ones) and its own [`EventSink`]:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use amsu_core::*;
//!
//! # fn info(id: u32) -> ServerInfo {
//! #   ServerInfo::new(Flavor::MariaDb, Version::new(10, 11, 19), "10.11.19-MariaDB")
//! #       .with_server_id(id).with_log_bin(true).with_binlog_format("ROW") }
//! struct Master;
//! #[async_trait::async_trait]
//! impl MasterServer for Master {
//!     async fn probe(&self) -> Result<ServerInfo, BoxError> { Ok(info(1)) }
//!     async fn check_login(&self, _: &str, _: &Secret) -> Result<LoginCheck, BoxError> { Ok(LoginCheck::Ok) }
//!     async fn user_exists(&self, _: &str) -> Result<bool, BoxError> { Ok(false) }
//!     async fn create_replication_user(&self, _: &str, _: &str, _: &Secret) -> Result<(), BoxError> { Ok(()) }
//!     async fn set_replication_password(&self, _: &str, _: &str, _: &Secret) -> Result<(), BoxError> { Ok(()) }
//!     async fn drop_replication_user(&self, _: &str, _: &str) -> Result<(), BoxError> { Ok(()) }
//!     async fn set_server_id(&self, _: u32) -> Result<(), BoxError> { Ok(()) }
//!     async fn binlog_position(&self) -> Result<Coordinates, BoxError> {
//!         Ok(Coordinates::new("bin.000001", 4))
//!     }
//!     async fn identity(&self) -> Result<ServerIdentity, BoxError> { Ok(ServerIdentity::new("db1", 3306, "/var/lib/mysql/")) }
//!     async fn lock_in_use(&self, _: &str) -> Result<bool, BoxError> { Ok(false) }
//! }
//! struct Replica;
//! #[async_trait::async_trait]
//! impl ReplicaServer for Replica {
//!     async fn probe(&self) -> Result<ServerInfo, BoxError> { Ok(info(2)) }
//!     async fn replication_status(&self) -> Result<Option<ReplicationStatus>, BoxError> { Ok(None) }
//!     async fn user_databases(&self) -> Result<Vec<String>, BoxError> { Ok(vec![]) }
//!     async fn reset_replication(&self) -> Result<(), BoxError> { Ok(()) }
//!     async fn drop_databases(&self, _: &[String]) -> Result<(), BoxError> { Ok(()) }
//!     async fn configure(&self, _: Option<u32>, _: bool) -> Result<(), BoxError> { Ok(()) }
//!     async fn change_master(&self, _: &ReplicationSource) -> Result<(), BoxError> { Ok(()) }
//!     async fn set_replication_credentials(&self, _: &str, _: &Secret, _: &ReplicationTls) -> Result<(), BoxError> { Ok(()) }
//!     async fn start_replication(&self, _: Duration) -> Result<ReplicationStatus, BoxError> {
//!         Ok(ReplicationStatus::new("db1", 3306).with_threads(true, true))
//!     }
//!     async fn wait_until_applied(&self, _: &Coordinates, _: Duration) -> Result<(), BoxError> { Ok(()) }
//!     async fn wait_until_gtid_applied(&self, _: &str, _: Duration) -> Result<(), BoxError> { Ok(()) }
//!     async fn identity(&self) -> Result<ServerIdentity, BoxError> { Ok(ServerIdentity::new("db2", 3306, "/var/lib/mysql/")) }
//!     async fn hold_lock(&self, _: &str) -> Result<LockOutcome, BoxError> { Ok(LockOutcome::Acquired) }
//!     async fn release_lock(&self, _: &str) -> Result<(), BoxError> { Ok(()) }
//!     async fn owned_databases(&self) -> Result<Vec<String>, BoxError> { Ok(vec![]) }
//!     async fn forget_owned(&self) -> Result<(), BoxError> { Ok(()) }
//!     async fn read_globals(&self, names: &[String]) -> Result<Vec<(String, Option<String>)>, BoxError> {
//!         Ok(names.iter().map(|n| (n.clone(), None)).collect())
//!     }
//!     async fn set_globals(&self, _: &[(String, String)]) -> Result<(), BoxError> { Ok(()) }
//! }
//! struct Copier;
//! #[async_trait::async_trait]
//! impl DataCopier for Copier {
//!     async fn copy(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
//!         events.emit(&Event::CommitBlocked { millis: 1.5 });
//!         Ok(CopyReport::new(Coordinates::new("bin.000001", 4)))
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // The program's own event handling: here, collect the names of finished steps.
//! let finished = Arc::new(Mutex::new(Vec::new()));
//! let log = finished.clone();
//! let events: Arc<dyn EventSink> = Arc::new(move |e: &Event| {
//!     if let Event::StepFinished { step, .. } = e {
//!         log.lock().unwrap().push(step.name());
//!     }
//! });
//! let (m, r, c) = (Master, Replica, Copier);
//! let report = Setup::new(&m, &r, &c, SetupOptions::new("db1", 3306).wait_caught_up(true))
//!     .run(events)
//!     .await
//!     .expect("setup");
//! assert_eq!(report.master_changes, ["created user 'amsu_repl'@'%' with REPLICATION SLAVE"]);
//! assert!(finished.lock().unwrap().contains(&"change_master"));
//! # });
//! ```
//!
//! With the `mocks` feature, mockall mocks of the traits (`MockMasterServer`, …) are
//! exported for other crates' tests.
//!
//! ```
//! use amsu_core::{preflight, Flavor, ServerInfo, Version};
//!
//! let server = |id, log_bin| {
//!     ServerInfo::new(Flavor::MariaDb, Version::new(10, 11, 19), "10.11.19-MariaDB")
//!         .with_server_id(id)
//!         .with_log_bin(log_bin)
//!         .with_binlog_format("ROW")
//! };
//! // A master without a binary log cannot have replicas: a blocking finding.
//! let findings = preflight(&server(1, false), &server(2, false), None, &[], false);
//! assert_eq!(findings[0].code, "log_bin_off");
//! ```

#![deny(missing_docs)]

mod cancel;
mod error;
mod event;
mod finding_code;
pub mod human;
mod identity;
mod journal;
pub mod manifest;
mod plan;
mod profile;
mod secret;
mod server;
mod setup;
mod step;
mod traits;

pub use cancel::{CancellationToken, Interrupted};
pub use error::{
    kind_of, server_errno, AdapterError, BoxError, Error, ErrorKind, Finding, Remedy, Severity,
};
pub use event::{ChannelSink, Event, EventReceiver, EventSink, NoEvents};
pub use finding_code::{FindingCode, UnknownFindingCode};
pub use identity::{distinct_servers, same_server};
#[cfg(any(test, feature = "mocks"))]
pub use journal::MockJournalStore;
pub use journal::{Journal, JournalStore};
pub use plan::Action;
pub use profile::{restore_pairs, GlobalChange};
pub use secret::Secret;
pub use server::{
    is_local_host, AddrParseError, Coordinates, Flavor, ReplicationStatus, Role, ServerAddr,
    ServerInfo, Version,
};
pub use setup::{
    preflight, preflight_master, server_id_fix, Checked, ServerIdFix, Setup, SetupOptions,
    SetupReport,
};
pub use step::Step;
pub use traits::{
    CopyReport, DataCopier, Finishing, LockOutcome, LoginCheck, MasterServer, Positioning,
    Preflight, PreflightContext, Prepared, RemoteEntry, ReplicaServer, ReplicationSource,
    ReplicationTls, ServerIdentity, Transport,
};
#[cfg(any(test, feature = "mocks"))]
pub use traits::{
    MockDataCopier, MockFinishing, MockMasterServer, MockPreflight, MockReplicaServer,
    MockTransport,
};
