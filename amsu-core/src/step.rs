//! The steps of a setup, in the order they run.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One step of `amsu setup`, in the order of the design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Connect to the master, detect flavor and version.
    ProbeMaster,
    /// Log in as (or create) the replication user.
    ReplicationUser,
    /// Check (and fix where possible) `server_id` and the binary log on the master.
    MasterConfig,
    /// Check the replica: reachable, distinct server_id, not replicating, empty.
    ReplicaChecks,
    /// Configure the replica (server_id, read_only) before the data arrives.
    ConfigureReplica,
    /// Copy a consistent snapshot of the master into the replica (backup, transfer, restore).
    CopyData,
    /// Point the replica at the master's coordinates.
    ChangeMaster,
    /// Start replication and wait until both threads run.
    StartReplica,
    /// Wait until the replica has applied what the master had written.
    CatchUp,
    /// Write the replica's settings as an option file on the replica host.
    ReplicaConfigFile,
    /// Compare the data of both servers.
    Verify,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 11] = [
        Step::ProbeMaster,
        Step::ReplicationUser,
        Step::MasterConfig,
        Step::ReplicaChecks,
        Step::ConfigureReplica,
        Step::CopyData,
        Step::ChangeMaster,
        Step::StartReplica,
        Step::CatchUp,
        Step::ReplicaConfigFile,
        Step::Verify,
    ];

    /// Short stable name, as used in events and the journal.
    pub fn name(self) -> &'static str {
        match self {
            Step::ProbeMaster => "probe_master",
            Step::ReplicationUser => "replication_user",
            Step::MasterConfig => "master_config",
            Step::ReplicaChecks => "replica_checks",
            Step::ConfigureReplica => "configure_replica",
            Step::CopyData => "copy_data",
            Step::ChangeMaster => "change_master",
            Step::StartReplica => "start_replica",
            Step::CatchUp => "catch_up",
            Step::ReplicaConfigFile => "replica_config_file",
            Step::Verify => "verify",
        }
    }

    /// What the step does, in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Step::ProbeMaster => "connect to the master and detect its flavor and version",
            Step::ReplicationUser => {
                "log in as the replication user, or create it with REPLICATION SLAVE only"
            }
            Step::MasterConfig => "check server_id and the binary log on the master",
            Step::ReplicaChecks => {
                "check the replica: distinct server_id, not replicating, no user data"
            }
            Step::ConfigureReplica => "configure the replica's server_id and read_only",
            Step::CopyData => "copy a consistent snapshot of the master into the replica",
            Step::ChangeMaster => "point the replica at the snapshot's binlog coordinates",
            Step::StartReplica => "start replication and wait until both threads run",
            Step::CatchUp => "wait until the replica has caught up with the master",
            Step::ReplicaConfigFile => {
                "write the replica's settings as an option file, so that they survive a restart"
            }
            Step::Verify => "compare the data of the replica with the master's",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
