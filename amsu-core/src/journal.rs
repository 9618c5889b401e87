//! The journal: what a setup has finished and changed, so that a rerun after a crash
//! resumes instead of starting over, and a rerun after success changes nothing. It never
//! holds a secret.

use serde::{Deserialize, Serialize};

use crate::{BoxError, Coordinates, CopyReport, GlobalChange, Step};

/// The journal of one setup of one replica from one master.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Journal {
    /// The master, `host:port`.
    pub master: String,
    /// The replica, `host:port`.
    pub replica: String,
    /// Changing steps that finished.
    pub done: Vec<Step>,
    /// The replication account amsu created, `(user, host)` — it may reset its password on
    /// a rerun, since the generated one is not kept anywhere.
    pub created_user: Option<(String, String)>,
    /// The replication account amsu created and dropped again when the setup failed: a
    /// rerun creates it anew.
    #[serde(default)]
    pub reverted_user: Option<(String, String)>,
    /// The step being executed when the journal was last saved (its change may or may
    /// not have happened).
    pub in_flight: Option<Step>,
    /// True once the copy began: user databases on the replica are amsu's own.
    pub copy_started: bool,
    /// The finished copy (with its coordinates).
    pub copy: Option<CopyReport>,
    /// Changes made on the master, in words.
    pub master_changes: Vec<String>,
    /// Changes made on the replica, in words.
    pub replica_changes: Vec<String>,
    /// Replica globals the fast-load profile relaxed and not yet restored, with their
    /// original values: journaled before they are changed, so that a rerun after a crash
    /// restores them first.
    #[serde(default)]
    pub relaxed: Vec<GlobalChange>,
    /// Master globals binary log protection raised and not yet restored, with their
    /// original values: journaled before they are changed, so that a rerun after a crash
    /// restores them (or keeps them raised for its own run and restores them at its end).
    #[serde(default)]
    pub raised_master: Vec<GlobalChange>,
    /// The whole setup finished.
    pub complete: bool,
    /// Why the last run stopped before finishing (`interrupted: …` when it was asked to
    /// stop); `None` once a run finishes.
    #[serde(default)]
    pub stopped: Option<String>,
}

impl Journal {
    /// A fresh journal for this pair.
    pub fn new(master: String, replica: String) -> Self {
        Journal {
            master,
            replica,
            ..Default::default()
        }
    }

    /// True when `step` finished in an earlier run.
    pub(crate) fn is_done(&self, step: Step) -> bool {
        self.done.contains(&step)
    }

    /// The copy's coordinates, when the copy finished.
    pub fn coordinates(&self) -> Option<&Coordinates> {
        self.copy.as_ref().and_then(|c| c.coordinates.as_ref())
    }
}

/// Where the journal is kept (a file on the replica host, in the CLI). `save` is called
/// after every change; it must replace the journal atomically.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait JournalStore: Send + Sync {
    /// The saved journal, if any.
    fn load(&self) -> Result<Option<Journal>, BoxError>;
    /// Saves the journal.
    fn save(&self, journal: &Journal) -> Result<(), BoxError>;
    /// Takes an exclusive lock on this journal for the life of the store, so that two
    /// runs of one setup cannot both act on it; an error names the holder. Default: no
    /// lock (a store that cannot be shared).
    fn lock(&self) -> Result<(), BoxError> {
        Ok(())
    }
}
