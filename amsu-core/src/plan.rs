//! The plan: every change a setup will make, decided before the first one. `--dry-run`
//! prints it; `Setup::run` executes it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Coordinates, GlobalChange, Positioning, ReplicationTls, Role, Step};

/// One change on one server. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// `CREATE USER` + `GRANT REPLICATION SLAVE` on the master.
    CreateReplicationUser {
        /// User.
        user: String,
        /// Host pattern.
        host: String,
    },
    /// New password for the replication user amsu created in an interrupted earlier run.
    ResetReplicationPassword {
        /// User.
        user: String,
        /// Host pattern.
        host: String,
    },
    /// `SET GLOBAL server_id` on the master (its own is 0).
    SetMasterServerId {
        /// The new id.
        id: u32,
    },
    /// `STOP SLAVE; RESET SLAVE ALL` on the replica.
    ResetReplica,
    /// Drop user databases on the replica (`--force`, or amsu's own partial copy).
    DropReplicaDatabases {
        /// The databases.
        names: Vec<String>,
    },
    /// server_id and read_only on the replica.
    ConfigureReplica {
        /// New server_id, when it must change.
        server_id: Option<u32>,
        /// read_only.
        read_only: bool,
    },
    /// The replica's fast-load profile ([`GlobalChange`](crate::GlobalChange)): `SET GLOBAL` each global to
    /// its relaxed value for the copy. The originals are journaled first.
    RelaxReplicaDurability {
        /// Every global changed, with its original and relaxed value.
        settings: Vec<GlobalChange>,
    },
    /// `SET GLOBAL` each relaxed global back to its original value, before replication
    /// starts (also first thing in a rerun after an interrupted run relaxed them).
    RestoreReplicaSettings {
        /// The globals to restore, with their original values.
        settings: Vec<GlobalChange>,
    },
    /// Binary log protection: `SET GLOBAL` each master global (the binary log
    /// retention) to its raised value for the setup's duration, so that the logs the
    /// replica starts from are not purged before it reads them. The originals are
    /// journaled first.
    RaiseBinlogRetention {
        /// Every global changed, with its original and raised value (in `relaxed`).
        settings: Vec<GlobalChange>,
    },
    /// `SET GLOBAL` each raised master global back to its original value, at the end of
    /// the setup (also first thing in a rerun after an interrupted run raised them, when
    /// the rerun does not keep them raised).
    RestoreBinlogRetention {
        /// The globals to restore, with their original values.
        settings: Vec<GlobalChange>,
    },
    /// Copy the data (method-specific statements).
    CopyData,
    /// `CHANGE MASTER TO` host, port, user, password and coordinates.
    ChangeMaster {
        /// Master host as the replica reaches it.
        host: String,
        /// Master port.
        port: u16,
        /// Replication user.
        user: String,
        /// Coordinates, known once the copy finished.
        coordinates: Option<Coordinates>,
        /// File/position or GTID positioning.
        #[serde(default)]
        positioning: Positioning,
        /// TLS settings of the replication connection.
        #[serde(default)]
        tls: ReplicationTls,
    },
    /// New credentials (and TLS settings) for a replica an earlier run of this setup
    /// already pointed at the master, keeping its position: `STOP SLAVE; CHANGE MASTER TO
    /// MASTER_USER, MASTER_PASSWORD[, MASTER_SSL…]` (the replication user's password was
    /// set anew).
    UpdateReplicaCredentials {
        /// Replication user.
        user: String,
        /// TLS settings of the replication connection.
        #[serde(default)]
        tls: ReplicationTls,
    },
    /// `START SLAVE` and wait until both threads run.
    StartReplica,
    /// Wait until the replica applied everything the master had written (by GTID with
    /// [`Positioning::Gtid`], else by file and position).
    WaitCaughtUp {
        /// How replication was positioned, which decides how to wait.
        #[serde(default)]
        positioning: Positioning,
    },
    /// Write the replica's settings (server_id, read_only, relay log, replication
    /// start) as an option file on the replica host, so that they survive a restart.
    /// Read-only on the servers; done by the setup's [`crate::Finishing`] work.
    WriteReplicaConfig {
        /// The option file.
        path: PathBuf,
        /// `report_host` written with them, if any.
        report_host: Option<String>,
    },
    /// Compare the data of the replica with the master's, once the replica caught up.
    /// Read-only; done by the setup's [`crate::Finishing`] work.
    VerifyData,
}

impl Action {
    /// The step this action belongs to.
    pub fn step(&self) -> Step {
        match self {
            Action::CreateReplicationUser { .. } | Action::ResetReplicationPassword { .. } => {
                Step::ReplicationUser
            }
            Action::SetMasterServerId { .. }
            | Action::RaiseBinlogRetention { .. }
            | Action::RestoreBinlogRetention { .. } => Step::MasterConfig,
            Action::ResetReplica
            | Action::DropReplicaDatabases { .. }
            | Action::ConfigureReplica { .. }
            | Action::RelaxReplicaDurability { .. }
            | Action::RestoreReplicaSettings { .. } => Step::ConfigureReplica,
            Action::CopyData => Step::CopyData,
            Action::ChangeMaster { .. } | Action::UpdateReplicaCredentials { .. } => {
                Step::ChangeMaster
            }
            Action::StartReplica => Step::StartReplica,
            Action::WaitCaughtUp { .. } => Step::CatchUp,
            Action::WriteReplicaConfig { .. } => Step::ReplicaConfigFile,
            Action::VerifyData => Step::Verify,
        }
    }

    /// The server it changes (the copy reads the master and writes the replica).
    pub fn server(&self) -> Role {
        match self {
            Action::CreateReplicationUser { .. }
            | Action::ResetReplicationPassword { .. }
            | Action::SetMasterServerId { .. }
            | Action::RaiseBinlogRetention { .. }
            | Action::RestoreBinlogRetention { .. } => Role::Master,
            _ => Role::Replica,
        }
    }
}
