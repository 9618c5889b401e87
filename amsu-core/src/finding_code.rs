//! Stable identifiers of preflight findings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The stable identifier of a preflight [`Finding`](crate::Finding): scripts and programs
/// branch on it. It serializes as a snake_case string (`log_bin_off`), the same as
/// [`as_str`](Self::as_str) and [`Display`](fmt::Display); new codes may be added, so match
/// with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingCode {
    /// `account_kept`: An account exists on both servers and amsu logs in to the replica with it: the replica keeps its own.
    AccountKept,
    /// `accounts_replaced`: Accounts exist on both servers and the replica's are replaced by the master's.
    AccountsReplaced,
    /// `already_replica`: The replica already replicates from a master.
    AlreadyReplica,
    /// `anonymous_accounts`: Anonymous accounts (`''@host`) exist, which can shadow the replication user's login.
    AnonymousAccounts,
    /// `auth_plugin_missing`: An account uses an authentication plugin the replica does not have.
    AuthPluginMissing,
    /// `backup_tool_missing`: The physical backup tool (mariadb-backup / xtrabackup) is not installed.
    BackupToolMissing,
    /// `backup_tool_version`: The physical backup tool does not match the server's version.
    BackupToolVersion,
    /// `binlog_format`: The master's `binlog_format` is not the one replication needs.
    BinlogFormat,
    /// `binlog_retention`: The master may purge binary logs before the copy ends.
    BinlogRetention,
    /// `character_set_server`: The servers' default character sets differ.
    CharacterSetServer,
    /// `datadir_mismatch`: The replica's data directory is not the one given.
    DatadirMismatch,
    /// `datadir_missing`: The replica's data directory is not known or not reachable.
    DatadirMissing,
    /// `disk_space`: The replica's disk has too little free space for the data.
    DiskSpace,
    /// `disk_space_unknown`: The replica's free disk space could not be read.
    DiskSpaceUnknown,
    /// `donor_is_master`: The donor given is the master itself.
    DonorIsMaster,
    /// `donor_is_replica`: The donor given is the new replica itself.
    DonorIsReplica,
    /// `donor_lagging`: The donor lags behind the master more than allowed, or does not know its lag.
    DonorLagging,
    /// `donor_method`: Seeding from a donor was asked for with a method other than logical.
    DonorMethod,
    /// `donor_no_gtid`: GTID positioning was asked for but the donor has no GTID position.
    DonorNoGtid,
    /// `donor_not_replica`: The donor is not a replica (it has no replication configured).
    DonorNotReplica,
    /// `donor_not_replicating`: The donor's replication threads are not both running.
    DonorNotReplicating,
    /// `donor_other_master`: The donor replicates from another master.
    DonorOtherMaster,
    /// `donor_position_purged`: The master no longer has the binary log the donor has executed up to.
    DonorPositionPurged,
    /// `donor_replication_error`: The donor reports a replication error.
    DonorReplicationError,
    /// `donor_server_id_clash`: The donor and the new replica have the same server_id.
    DonorServerIdClash,
    /// `donor_stopped_by_amsu`: An interrupted earlier run stopped the donor's SQL thread; this run starts it again.
    DonorStoppedByAmsu,
    /// `donor_unreachable`: amsu cannot connect to the donor.
    DonorUnreachable,
    /// `errant_gtids`: The replica has GTIDs the master does not have.
    ErrantGtids,
    /// `flavor_mismatch`: The servers are of different flavors (MariaDB and MySQL).
    FlavorMismatch,
    /// `free_space_unknown`: The free space of the physical copy's work directory could not be read.
    FreeSpaceUnknown,
    /// `grants_unknown`: An account could not read its own privileges; they were not checked.
    GrantsUnknown,
    /// `gtid_mode`: GTID settings do not allow GTID replication between the servers.
    GtidMode,
    /// `gtid_positioning`: GTID positioning was asked for but cannot be used.
    GtidPositioning,
    /// `gtid_strict_mode`: MariaDB's `gtid_strict_mode` differs in a way that can stop replication.
    GtidStrictMode,
    /// `image_binlog_purged`: The master no longer has the binary log an image's replication must start from.
    ImageBinlogPurged,
    /// `image_invalid`: The image is not valid (unreadable, incomplete or wrongly keyed).
    ImageInvalid,
    /// `image_method`: The image was made by a method that cannot be used here.
    ImageMethod,
    /// `image_other_master`: The image was taken from another master.
    ImageOtherMaster,
    /// `log_bin_off`: The master has no binary log, so it cannot have replicas.
    LogBinOff,
    /// `lower_case_table_names`: The servers' `lower_case_table_names` differ.
    LowerCaseTableNames,
    /// `master_not_local`: A physical copy needs the master's data directory, which is not on this host.
    MasterNotLocal,
    /// `max_allowed_packet`: The replica's `max_allowed_packet` is smaller than the master's.
    MaxAllowedPacket,
    /// `missing_definer`: Objects name a DEFINER account that does not exist.
    MissingDefiner,
    /// `missing_privilege`: An account lacks a privilege amsu needs.
    MissingPrivilege,
    /// `no_primary_key`: Tables without a primary key (slow row-based replication).
    NoPrimaryKey,
    /// `no_space`: The physical copy's work directory has too little free space.
    NoSpace,
    /// `non_transactional_tables`: Non-transactional tables (e.g. MyISAM) cannot be copied consistently without blocking writes.
    NonTransactionalTables,
    /// `not_checkable`: Something could not be checked for lack of privileges.
    NotCheckable,
    /// `outfile_endpoint`: The outfile method's file endpoint is not usable.
    OutfileEndpoint,
    /// `outfile_ftp`: The outfile method needs an FTP endpoint (and its password).
    OutfileFtp,
    /// `outfile_master`: The master cannot write files for the outfile method (FILE, `secure_file_priv`).
    OutfileMaster,
    /// `physical_identifier`: Names that the physical backup tool cannot handle (a backtick).
    PhysicalIdentifier,
    /// `physical_version_mismatch`: A physical copy needs the same server version on both sides.
    PhysicalVersionMismatch,
    /// `repl_user_auth`: The replication user's authentication plugin does not suit replication.
    ReplUserAuth,
    /// `repl_user_password`: The replication user exists and no password for it was given.
    ReplUserPassword,
    /// `replica_login_after_copy`: After a physical copy amsu could not log in to the replica (it has the master's accounts).
    ReplicaLoginAfterCopy,
    /// `replica_not_empty`: The replica has user databases.
    ReplicaNotEmpty,
    /// `replica_older`: The replica's version is older than the master's.
    ReplicaOlder,
    /// `same_datadir`: The master and the replica share a data directory.
    SameDatadir,
    /// `same_server`: The master and the replica are the same server.
    SameServer,
    /// `semi_sync`: Semi-synchronous replication settings that can stall the master.
    SemiSync,
    /// `server_id_clash`: The servers have the same `server_id`.
    ServerIdClash,
    /// `server_id_zero`: A server has `server_id` 0.
    ServerIdZero,
    /// `sql_mode`: The servers' `sql_mode` differ.
    SqlMode,
    /// `time_zone`: The servers' time zones differ.
    TimeZone,
    /// `time_zone_tables`: The replica's time zone tables are missing or differ.
    TimeZoneTables,
    /// `unsupported_table`: Tables that the chosen method cannot copy.
    UnsupportedTable,
}

impl FindingCode {
    /// Every code, in alphabetical order.
    pub const ALL: &'static [FindingCode] = &[
        FindingCode::AccountKept,
        FindingCode::AccountsReplaced,
        FindingCode::AlreadyReplica,
        FindingCode::AnonymousAccounts,
        FindingCode::AuthPluginMissing,
        FindingCode::BackupToolMissing,
        FindingCode::BackupToolVersion,
        FindingCode::BinlogFormat,
        FindingCode::BinlogRetention,
        FindingCode::CharacterSetServer,
        FindingCode::DatadirMismatch,
        FindingCode::DatadirMissing,
        FindingCode::DiskSpace,
        FindingCode::DiskSpaceUnknown,
        FindingCode::DonorIsMaster,
        FindingCode::DonorIsReplica,
        FindingCode::DonorLagging,
        FindingCode::DonorMethod,
        FindingCode::DonorNoGtid,
        FindingCode::DonorNotReplica,
        FindingCode::DonorNotReplicating,
        FindingCode::DonorOtherMaster,
        FindingCode::DonorPositionPurged,
        FindingCode::DonorReplicationError,
        FindingCode::DonorServerIdClash,
        FindingCode::DonorStoppedByAmsu,
        FindingCode::DonorUnreachable,
        FindingCode::ErrantGtids,
        FindingCode::FlavorMismatch,
        FindingCode::FreeSpaceUnknown,
        FindingCode::GrantsUnknown,
        FindingCode::GtidMode,
        FindingCode::GtidPositioning,
        FindingCode::GtidStrictMode,
        FindingCode::ImageBinlogPurged,
        FindingCode::ImageInvalid,
        FindingCode::ImageMethod,
        FindingCode::ImageOtherMaster,
        FindingCode::LogBinOff,
        FindingCode::LowerCaseTableNames,
        FindingCode::MasterNotLocal,
        FindingCode::MaxAllowedPacket,
        FindingCode::MissingDefiner,
        FindingCode::MissingPrivilege,
        FindingCode::NoPrimaryKey,
        FindingCode::NoSpace,
        FindingCode::NonTransactionalTables,
        FindingCode::NotCheckable,
        FindingCode::OutfileEndpoint,
        FindingCode::OutfileFtp,
        FindingCode::OutfileMaster,
        FindingCode::PhysicalIdentifier,
        FindingCode::PhysicalVersionMismatch,
        FindingCode::ReplUserAuth,
        FindingCode::ReplUserPassword,
        FindingCode::ReplicaLoginAfterCopy,
        FindingCode::ReplicaNotEmpty,
        FindingCode::ReplicaOlder,
        FindingCode::SameDatadir,
        FindingCode::SameServer,
        FindingCode::SemiSync,
        FindingCode::ServerIdClash,
        FindingCode::ServerIdZero,
        FindingCode::SqlMode,
        FindingCode::TimeZone,
        FindingCode::TimeZoneTables,
        FindingCode::UnsupportedTable,
    ];

    /// The code as a string (`log_bin_off`).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::AccountKept => "account_kept",
            FindingCode::AccountsReplaced => "accounts_replaced",
            FindingCode::AlreadyReplica => "already_replica",
            FindingCode::AnonymousAccounts => "anonymous_accounts",
            FindingCode::AuthPluginMissing => "auth_plugin_missing",
            FindingCode::BackupToolMissing => "backup_tool_missing",
            FindingCode::BackupToolVersion => "backup_tool_version",
            FindingCode::BinlogFormat => "binlog_format",
            FindingCode::BinlogRetention => "binlog_retention",
            FindingCode::CharacterSetServer => "character_set_server",
            FindingCode::DatadirMismatch => "datadir_mismatch",
            FindingCode::DatadirMissing => "datadir_missing",
            FindingCode::DiskSpace => "disk_space",
            FindingCode::DiskSpaceUnknown => "disk_space_unknown",
            FindingCode::DonorIsMaster => "donor_is_master",
            FindingCode::DonorIsReplica => "donor_is_replica",
            FindingCode::DonorLagging => "donor_lagging",
            FindingCode::DonorMethod => "donor_method",
            FindingCode::DonorNoGtid => "donor_no_gtid",
            FindingCode::DonorNotReplica => "donor_not_replica",
            FindingCode::DonorNotReplicating => "donor_not_replicating",
            FindingCode::DonorOtherMaster => "donor_other_master",
            FindingCode::DonorPositionPurged => "donor_position_purged",
            FindingCode::DonorReplicationError => "donor_replication_error",
            FindingCode::DonorServerIdClash => "donor_server_id_clash",
            FindingCode::DonorStoppedByAmsu => "donor_stopped_by_amsu",
            FindingCode::DonorUnreachable => "donor_unreachable",
            FindingCode::ErrantGtids => "errant_gtids",
            FindingCode::FlavorMismatch => "flavor_mismatch",
            FindingCode::FreeSpaceUnknown => "free_space_unknown",
            FindingCode::GrantsUnknown => "grants_unknown",
            FindingCode::GtidMode => "gtid_mode",
            FindingCode::GtidPositioning => "gtid_positioning",
            FindingCode::GtidStrictMode => "gtid_strict_mode",
            FindingCode::ImageBinlogPurged => "image_binlog_purged",
            FindingCode::ImageInvalid => "image_invalid",
            FindingCode::ImageMethod => "image_method",
            FindingCode::ImageOtherMaster => "image_other_master",
            FindingCode::LogBinOff => "log_bin_off",
            FindingCode::LowerCaseTableNames => "lower_case_table_names",
            FindingCode::MasterNotLocal => "master_not_local",
            FindingCode::MaxAllowedPacket => "max_allowed_packet",
            FindingCode::MissingDefiner => "missing_definer",
            FindingCode::MissingPrivilege => "missing_privilege",
            FindingCode::NoPrimaryKey => "no_primary_key",
            FindingCode::NoSpace => "no_space",
            FindingCode::NonTransactionalTables => "non_transactional_tables",
            FindingCode::NotCheckable => "not_checkable",
            FindingCode::OutfileEndpoint => "outfile_endpoint",
            FindingCode::OutfileFtp => "outfile_ftp",
            FindingCode::OutfileMaster => "outfile_master",
            FindingCode::PhysicalIdentifier => "physical_identifier",
            FindingCode::PhysicalVersionMismatch => "physical_version_mismatch",
            FindingCode::ReplUserAuth => "repl_user_auth",
            FindingCode::ReplUserPassword => "repl_user_password",
            FindingCode::ReplicaLoginAfterCopy => "replica_login_after_copy",
            FindingCode::ReplicaNotEmpty => "replica_not_empty",
            FindingCode::ReplicaOlder => "replica_older",
            FindingCode::SameDatadir => "same_datadir",
            FindingCode::SameServer => "same_server",
            FindingCode::SemiSync => "semi_sync",
            FindingCode::ServerIdClash => "server_id_clash",
            FindingCode::ServerIdZero => "server_id_zero",
            FindingCode::SqlMode => "sql_mode",
            FindingCode::TimeZone => "time_zone",
            FindingCode::TimeZoneTables => "time_zone_tables",
            FindingCode::UnsupportedTable => "unsupported_table",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`FindingCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown finding code `{0}`")]
pub struct UnknownFindingCode(pub String);

impl FromStr for FindingCode {
    type Err = UnknownFindingCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FindingCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownFindingCode(s.to_string()))
    }
}

impl PartialEq<str> for FindingCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for FindingCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl AsRef<str> for FindingCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code serializes as its string and back, and parses from it.
    #[test]
    fn every_code_round_trips_through_its_string() {
        let mut seen = std::collections::HashSet::new();
        for &code in FindingCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert_eq!(serde_json::to_value(code).unwrap(), s);
            let back: FindingCode = serde_json::from_value(s.into()).unwrap();
            assert_eq!(back, code);
            assert_eq!(s.parse::<FindingCode>().unwrap(), code);
            assert_eq!(code.to_string(), s);
            assert!(code == s);
        }
        assert!("no_such_code".parse::<FindingCode>().is_err());
    }

    #[test]
    fn all_is_sorted_and_complete() {
        let mut sorted = FindingCode::ALL.to_vec();
        sorted.sort_by_key(|c| c.as_str());
        assert_eq!(sorted, FindingCode::ALL);
        // A new variant must be added to ALL (as_str's match names every variant).
        assert_eq!(FindingCode::ALL.len(), 67);
    }
}
