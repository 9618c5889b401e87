//! Events: what a running setup tells its caller. The CLI renders them; a library user
//! can consume them with any [`EventSink`].

use serde::{Deserialize, Serialize};

use crate::{Coordinates, Role, Step};

/// Something that happened during a setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A step began.
    StepStarted {
        /// The step.
        step: Step,
    },
    /// A step finished successfully.
    StepFinished {
        /// The step.
        step: Step,
        /// How long it took, in milliseconds.
        millis: u64,
    },
    /// A step had nothing to do.
    StepSkipped {
        /// The step.
        step: Step,
        /// Why.
        reason: String,
    },
    /// amsu changed something on a server (reported again in the summary).
    Changed {
        /// Where.
        server: Role,
        /// What, in words (never a secret).
        what: String,
    },
    /// Something the operator should know that does not stop the setup.
    Warning {
        /// Where, if it concerns one server.
        server: Option<Role>,
        /// The message.
        message: String,
    },
    /// Progress of the data copy.
    Progress {
        /// Tables fully copied.
        tables_done: u64,
        /// Tables to copy.
        tables_total: u64,
        /// Rows copied so far.
        rows: u64,
        /// Bytes copied so far (encoded row data).
        bytes: u64,
        /// Seconds since the copy of rows began.
        elapsed_secs: f64,
        /// Mean rate since then, in bytes per second.
        bytes_per_sec: f64,
        /// Share of the data done, 0–100, when the total is known (estimated from table
        /// sizes, so a guide rather than a promise).
        percent: Option<f64>,
        /// Estimated seconds left, from `percent` and the time so far.
        eta_secs: Option<u64>,
    },
    /// The master's commits were blocked for this long while the snapshot was taken.
    CommitBlocked {
        /// Milliseconds.
        millis: f64,
    },
    /// The snapshot's binary log coordinates.
    Snapshot {
        /// The coordinates.
        coordinates: Coordinates,
    },
    /// amsu began reading a server's catalog (its databases and tables): sent before the
    /// first catalog query, so that a large server shows progress from the start.
    CatalogReading {
        /// Which server.
        server: Role,
        /// What the catalog is read for (`the checks`, `the copy`).
        purpose: String,
    },
    /// amsu read a server's catalog.
    CatalogRead {
        /// Which server.
        server: Role,
        /// User databases found.
        databases: u64,
        /// Tables found (base tables and sequences).
        tables: u64,
        /// How long the read took, in milliseconds.
        millis: u64,
    },
    /// Replication state after start or while catching up.
    Replication {
        /// Seconds behind the master, when known.
        seconds_behind: Option<u64>,
    },
}

/// Receives events. Implemented for every `Fn(&Event) + Send + Sync`.
pub trait EventSink: Send + Sync {
    /// Handles one event. Must not block for long: it runs on the setup's task.
    fn emit(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: &Event) {
        self(event)
    }
}

/// An [`EventSink`] that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &Event) {}
}
