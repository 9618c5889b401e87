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
//! With the `mocks` feature, mockall mocks of the traits (`MockMasterServer`, …) are
//! exported for other crates' tests.
//!
//! ```
//! use amsu_core::{preflight, Flavor, ServerInfo, Version};
//!
//! let server = |id, log_bin| ServerInfo {
//!     flavor: Flavor::MariaDb,
//!     version: Version::new(10, 11, 19),
//!     version_string: "10.11.19-MariaDB".into(),
//!     server_id: id,
//!     log_bin,
//!     binlog_format: "ROW".into(),
//!     read_only: false,
//! };
//! // A master without a binary log cannot have replicas: a blocking finding.
//! let findings = preflight(&server(1, false), &server(2, false), None, &[], false);
//! assert_eq!(findings[0].code, "log_bin_off");
//! ```

#![deny(missing_docs)]

mod error;
mod event;
mod journal;
pub mod manifest;
mod plan;
mod secret;
mod server;
mod setup;
mod step;
mod traits;

pub use error::{BoxError, Error, Finding, Severity};
pub use event::{Event, EventSink, NoEvents};
#[cfg(any(test, feature = "mocks"))]
pub use journal::MockJournalStore;
pub use journal::{Journal, JournalStore};
pub use plan::Action;
pub use secret::Secret;
pub use server::{
    AddrParseError, Coordinates, Flavor, ReplicationStatus, Role, ServerAddr, ServerInfo, Version,
};
pub use setup::{
    preflight, preflight_master, server_id_fix, Checked, ReplUserPlan, ServerIdFix, Setup,
    SetupOptions, SetupReport,
};
pub use step::Step;
pub use traits::{
    CopyReport, DataCopier, LoginCheck, MasterServer, Preflight, RemoteEntry, ReplicaServer,
    ReplicationSource, Transport,
};
#[cfg(any(test, feature = "mocks"))]
pub use traits::{
    MockDataCopier, MockMasterServer, MockPreflight, MockReplicaServer, MockTransport,
};
