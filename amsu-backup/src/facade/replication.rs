//! How a replica replicates from its master: one value shared by a setup
//! ([`SetupConfig::replication`](super::SetupConfig::replication)) and the replication
//! start of a restore ([`StartReplication`](super::StartReplication)).

use std::fmt;
use std::path::PathBuf;

use amsu_core::{Positioning, ReplicationTls, Secret, ServerAddr, SetupOptions};

/// The replication settings of a setup or of a restore's replication start: the
/// replication user and its passwords, the master's host as the replica reaches it, TLS,
/// GTID or file-and-position positioning, and the journal. Build it with
/// [`ReplicationSettings::new`] and the by-value setters; each documents its default.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicationSettings {
    repl_user: String,
    repl_password: Option<Secret>,
    new_repl_password: Option<Secret>,
    master_host_for_replica: Option<String>,
    tls: ReplicationTls,
    positioning: Positioning,
    journal: Option<PathBuf>,
}

impl fmt::Debug for ReplicationSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The replication passwords are not shown.
        f.debug_struct("ReplicationSettings")
            .field("repl_user", &self.repl_user)
            .field("master_host_for_replica", &self.master_host_for_replica)
            .field("positioning", &self.positioning)
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplicationSettings {
    /// The defaults: replication user `amsu_repl` with a generated password, the master
    /// URL's host, file and position replication without TLS, the journal at
    /// [`default_journal_path`](super::default_journal_path) of the replica.
    pub fn new() -> Self {
        ReplicationSettings {
            repl_user: "amsu_repl".into(),
            repl_password: None,
            new_repl_password: None,
            master_host_for_replica: None,
            tls: ReplicationTls::default(),
            positioning: Positioning::FilePosition,
            journal: None,
        }
    }

    /// The replication user (created when missing). Default: `amsu_repl`.
    pub fn repl_user(mut self, user: impl Into<String>) -> Self {
        self.repl_user = user.into();
        self
    }

    /// The replication user's password, when it exists already (or to create it with).
    /// Default: none.
    pub fn repl_password(mut self, password: Option<Secret>) -> Self {
        self.repl_password = password;
        self
    }

    /// The password to create a missing replication user with. Default: generated.
    pub fn new_repl_password(mut self, password: Option<Secret>) -> Self {
        self.new_repl_password = password;
        self
    }

    /// The master's host name as the replica reaches it. Default: the master URL's host.
    pub fn master_host_for_replica(mut self, host: Option<String>) -> Self {
        self.master_host_for_replica = host;
        self
    }

    /// TLS of the replication connection. Default: none.
    pub fn tls(mut self, tls: ReplicationTls) -> Self {
        self.tls = tls;
        self
    }

    /// File and position, or GTID, replication. Default: file and position.
    pub fn positioning(mut self, positioning: Positioning) -> Self {
        self.positioning = positioning;
        self
    }

    /// Where the journal is kept. Default: [`default_journal_path`](super::default_journal_path)
    /// of the replica.
    pub fn journal(mut self, path: Option<PathBuf>) -> Self {
        self.journal = path;
        self
    }

    /// The replication user.
    pub fn user(&self) -> &str {
        &self.repl_user
    }

    /// The replication positioning.
    pub(crate) fn positioning_of(&self) -> Positioning {
        self.positioning
    }

    /// The journal given, if any.
    pub(crate) fn journal_given(&self) -> Option<&PathBuf> {
        self.journal.as_ref()
    }

    /// `options` with these settings, for a replica of `master`.
    pub(crate) fn apply(&self, master: &ServerAddr, options: SetupOptions) -> SetupOptions {
        options
            .master_host(
                self.master_host_for_replica
                    .clone()
                    .unwrap_or_else(|| master.host.clone()),
            )
            .repl_user(self.repl_user.clone())
            .repl_password(self.repl_password.clone())
            .new_repl_password(self.new_repl_password.clone())
            .tls(self.tls.clone())
            .positioning(self.positioning)
    }
}
