//! Disk space: the pure decisions of this part of the preflight (see the parent module).

use super::*;

/// The replica's free space against the master's data size; pure.
/// Space a restore takes on the replica beyond the tables' own size, per table: an
/// InnoDB file-per-table starts at about 96 KiB whatever its rows (other engines: a few
/// files of a few KiB).
pub(crate) const PER_TABLE_BYTES: u64 = 128 * 1024;
/// Fixed space a restore takes beyond the tables: undo and system tablespace growth,
/// temporary files, the replica's relay log at the start: 128 MiB.
pub(crate) const FIXED_RESTORE_BYTES: u64 = 128 * MIB;

/// What the copy needs on the replica's disk, from the master's tables: their data and
/// indexes plus 30 % (pages filled less tightly by a load than on a long-lived table, and
/// `DATA_LENGTH` is an estimate), a minimum per table (`PER_TABLE_BYTES`), room to
/// sort the largest table's keys when they are built after its data, and
/// `FIXED_RESTORE_BYTES`. Pure.
pub fn replica_disk_need(tables: &[TableFacts]) -> u64 {
    let per_table: u64 = tables
        .iter()
        .map(|t| (t.bytes + t.bytes * 3 / 10).max(PER_TABLE_BYTES))
        .sum();
    let largest = tables.iter().map(|t| t.bytes).max().unwrap_or(0);
    per_table + largest + FIXED_RESTORE_BYTES
}

/// Whether the replica's disk holds `bytes`, the space the copy needs (see
/// [`replica_disk_need`]); pure.
pub(crate) fn disk_findings(disk: &DiskSpace, bytes: u64) -> Vec<Finding> {
    let info = |problem: String| {
        Finding::warning(
            Role::Replica,
            FindingCode::DiskSpaceUnknown,
            problem,
            format!(
                "check by hand that the replica's data directory has well over {} free",
                human_bytes(bytes)
            ),
        )
        .with_severity(Severity::Info)
    };
    match disk {
        DiskSpace::NoReplica => vec![],
        DiskSpace::NotLocal { host } => vec![info(format!(
            "the replica's free disk space was not checked: it runs on {host}, not on this host"
        ))],
        DiskSpace::Unreadable { datadir, reason } => vec![info(format!(
            "the replica's free disk space was not checked: its data directory {datadir} cannot be examined ({reason})"
        ))],
        DiskSpace::Free { datadir, bytes: free } => {
            let problem = format!(
                "the replica's data directory {datadir} has {} free; the copy needs about {} (the master's data and indexes with load overhead, per-table files, index builds and InnoDB logs)",
                human_bytes(*free),
                human_bytes(bytes)
            );
            if *free < bytes {
                vec![Finding::blocking(
                    Role::Replica,
                    FindingCode::DiskSpace,
                    format!("{problem}: the copy would fill the disk"),
                    format!("free at least {} in {datadir}, or use a larger disk", human_bytes(bytes - free + bytes / 2)),
                )]
            } else if *free < bytes + bytes / 2 {
                vec![Finding::warning(
                    Role::Replica,
                    FindingCode::DiskSpace,
                    format!("{problem}: less than 50% headroom for relay logs, binary logs and table growth"),
                    format!("free more space in {datadir}"),
                )]
            } else {
                vec![]
            }
        }
    }
}
