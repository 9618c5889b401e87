//! Pure findings: the physical method's decisions from the facts read by
//! [`check_all`](super::PhysicalCopy) — no server, no process, no file system, so each is
//! unit-tested here.

use std::path::{Path, PathBuf};

use amsu_core::{Finding, FindingCode, Remedy, Role, Severity, Version};

use super::{Resolved, ESTIMATE_SLACK};

/// No `mariadb-backup` on this host.
pub(super) fn tool_missing() -> Finding {
    Finding::blocking(
        Role::Replica,
        FindingCode::BackupToolMissing,
        "mariadb-backup is not installed on the replica host (it prepares the backup)",
        "apt-get install mariadb-backup (the master's major.minor version)",
    )
}

/// An image made by another method than `physical`.
pub(super) fn image_method(method: &str) -> Option<Finding> {
    (method != "physical").then(|| {
        Finding::blocking(
            Role::Replica,
            FindingCode::ImageMethod,
            format!("the image was made by the {method} method, not by a physical backup"),
            "use an image made by the physical method",
        )
        .with_remedy(Remedy::setting_to("method", "physical"))
    })
}

/// `(major, minor)` of a server version string.
fn major_minor(v: &str) -> Option<(u16, u16)> {
    amsu_mysql::dialect::parse_version(v)
        .ok()
        .map(|(_, v)| (v.major, v.minor))
}

/// The tool and the replica must have the major.minor version of the data's source.
pub(super) fn versions(
    tool: &Path,
    tool_version: Option<Version>,
    source_version: &str,
    replica_version: &str,
) -> Vec<Finding> {
    let mm = major_minor;
    let mut f = Vec::new();
    match tool_version {
        Some(tv) if Some((tv.major, tv.minor)) == mm(source_version) => {}
        other => f.push(Finding::blocking(
            Role::Replica,
            FindingCode::BackupToolVersion,
            format!(
                "{} is {} but the backup is of a {source_version} server; it must have the same major.minor version",
                tool.display(),
                other.map(|v| v.to_string()).unwrap_or_else(|| "of an unknown version".into())
            ),
            "install the mariadb-backup of the master's major.minor version on the replica host",
        )),
    }
    if mm(replica_version) != mm(source_version) {
        f.push(Finding::blocking(
            Role::Replica,
            FindingCode::PhysicalVersionMismatch,
            format!(
                "the replica runs {replica_version} but the data comes from {source_version}; a physical copy needs the same major.minor version"
            ),
            "install the master's major.minor version on the replica, or use the logical method",
        ).with_remedy(Remedy::setting_to("method", "logical")));
    }
    f
}

/// Databases and tables whose names hold a backtick: mariadb-backup (10.11) names them
/// unescaped in its `BACKUP LOCK` statements and aborts mid-backup, so the physical method
/// is refused for such a master before anything changes (the logical methods copy them).
pub(super) fn backticks(names: &[String]) -> Option<Finding> {
    if names.is_empty() {
        return None;
    }
    Some(Finding::blocking(
        Role::Master,
        FindingCode::PhysicalIdentifier,
        format!(
            "names with a backtick ({}): mariadb-backup does not escape them in its BACKUP LOCK statements and aborts the backup",
            names.join(", ")
        ),
        "use the logical method, which copies them exactly, or rename them on the master",
    ).with_remedy(Remedy::setting_to("method", "logical")))
}

/// The data directory to replace does not exist here.
pub(super) fn datadir_missing(datadir: &Path) -> Finding {
    Finding::blocking(
        Role::Replica,
        FindingCode::DatadirMissing,
        format!(
            "the replica's data directory {} does not exist on this host",
            datadir.display()
        ),
        "run amsu on the replica host, or give the replica's data directory",
    )
    .with_remedy(Remedy::setting("method.replica_datadir"))
}

/// The given data directory (canonical) is not the replica server's own (canonical, when
/// it exists here).
pub(super) fn datadir_mismatch(
    replica_datadir: &Path,
    replica_datadir_canon: Option<&Path>,
    datadir: &Path,
) -> Option<Finding> {
    (replica_datadir_canon != Some(datadir)).then(|| {
        Finding::blocking(
            Role::Replica,
            FindingCode::DatadirMismatch,
            format!(
                "the replica server uses {} as its datadir, not {}",
                replica_datadir.display(),
                datadir.display()
            ),
            "give the replica's own data directory",
        )
        .with_remedy(Remedy::setting("method.replica_datadir"))
    })
}

/// A local backup (`PhysicalSource::Local`) needs the master on this host, with a data
/// directory of its own (`master_datadir_canon`: the master's, canonical, when it exists).
pub(super) fn local_master(
    master_host: &str,
    master_is_local: bool,
    master_datadir_canon: Option<&Path>,
    datadir: &Path,
) -> Option<Finding> {
    if !master_is_local {
        Some(Finding::blocking(
            Role::Master,
            FindingCode::MasterNotLocal,
            format!(
                "the master {master_host} is not on this host; mariadb-backup must run where the master's files are"
            ),
            "give a command that streams the master's backup (e.g. `ssh HOST mariadb-backup --backup --stream=mbstream --target-dir=/tmp`), or an image",
        ).with_remedy(Remedy::setting("method.master_backup_command")))
    } else if master_datadir_canon == Some(datadir) {
        Some(Finding::blocking(
            Role::Replica,
            FindingCode::SameDatadir,
            "the master and the replica use the same data directory",
            "check the master's and the replica's addresses",
        ))
    } else {
        None
    }
}

/// The bytes the backup and its prepared copy need for `estimate` bytes of data.
pub(super) fn space_needed(estimate: u64) -> u64 {
    estimate.saturating_add(ESTIMATE_SLACK).saturating_mul(2)
}

/// Room in `work_dir` for the backup and its prepared copy (`available`: its free bytes,
/// or why they cannot be read).
pub(super) fn free_space(
    work_dir: &Path,
    available: Result<u64, std::io::Error>,
    estimate: u64,
) -> Option<Finding> {
    let needed = space_needed(estimate);
    match available {
        Ok(available) if available < needed => Some(Finding::blocking(
            Role::Replica,
            FindingCode::NoSpace,
            format!(
                "{} has {} MiB free; the backup and its prepared copy need about {} MiB",
                work_dir.display(),
                available >> 20,
                needed >> 20
            ),
            "free space there, or choose another staging directory on the data directory's file system",
        )),
        Ok(_) => None,
        Err(e) => Some(Finding::warning(
            Role::Replica,
            FindingCode::FreeSpaceUnknown,
            format!("cannot read the free space of {}: {e}", work_dir.display()),
            "check by hand that there is room for about twice the master's data",
        )),
    }
}

/// The replica user is refused by the master: after the copy the replica has the master's
/// accounts, so amsu could not log in to finish.
pub(super) fn replica_login_after_copy(replica_user: &str) -> Finding {
    Finding::warning(
        Role::Replica,
        FindingCode::ReplicaLoginAfterCopy,
        format!(
            "the replica user '{replica_user}' cannot log in to the master with the given password; after a physical copy the replica has the master's accounts, so amsu could not log in to it to finish",
        ),
        "connect to the replica as a user that exists on the master with the same password",
    )
}

/// What the checks resolved, unless a finding blocks.
pub(super) fn resolve(
    findings: &[Finding],
    tool: PathBuf,
    datadir: PathBuf,
    work_dir: PathBuf,
) -> Option<Resolved> {
    let blocked = findings.iter().any(|x| x.severity == Severity::Blocking);
    (!blocked).then_some(Resolved {
        tool,
        datadir,
        work_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u16, minor: u16, patch: u16) -> Version {
        Version::new(major, minor, patch)
    }

    fn codes(f: &[Finding]) -> Vec<FindingCode> {
        f.iter().map(|x| x.code).collect()
    }

    #[test]
    fn the_tool_and_the_replica_must_match_the_source_major_minor() {
        let tool = Path::new("/usr/bin/mariadb-backup");
        let same = versions(
            tool,
            Some(v(10, 11, 6)),
            "10.11.8-MariaDB",
            "10.11.2-MariaDB-log",
        );
        assert!(same.is_empty(), "{same:?}");
        let old_tool = versions(
            tool,
            Some(v(10, 6, 1)),
            "10.11.8-MariaDB",
            "10.11.8-MariaDB",
        );
        assert_eq!(codes(&old_tool), vec![FindingCode::BackupToolVersion]);
        assert!(
            old_tool[0].problem.contains("10.6.1"),
            "{}",
            old_tool[0].problem
        );
        let unknown = versions(tool, None, "10.11.8-MariaDB", "10.11.8-MariaDB");
        assert!(unknown[0].problem.contains("of an unknown version"));
        let replica = versions(
            tool,
            Some(v(10, 11, 6)),
            "10.11.8-MariaDB",
            "11.4.2-MariaDB",
        );
        assert_eq!(codes(&replica), vec![FindingCode::PhysicalVersionMismatch]);
        assert!(replica.iter().all(|x| x.severity == Severity::Blocking));
    }

    #[test]
    fn only_physical_images_and_backtick_free_names_pass() {
        assert!(image_method("physical").is_none());
        let f = image_method("logical").unwrap();
        assert_eq!(f.code, FindingCode::ImageMethod);
        assert!(f.problem.contains("logical"));
        assert!(backticks(&[]).is_none());
        let f = backticks(&["a`b.t".into(), "c".into()]).unwrap();
        assert_eq!(f.code, FindingCode::PhysicalIdentifier);
        assert!(f.problem.contains("a`b.t, c"), "{}", f.problem);
    }

    #[test]
    fn the_datadir_must_be_the_replica_servers_own() {
        let d = Path::new("/var/lib/mysql");
        assert!(datadir_mismatch(d, Some(d), d).is_none());
        let f = datadir_mismatch(Path::new("/srv/db"), Some(Path::new("/srv/db")), d).unwrap();
        assert_eq!(f.code, FindingCode::DatadirMismatch);
        assert!(f.problem.contains("/srv/db") && f.problem.contains("/var/lib/mysql"));
        // The server's datadir does not exist here: not the same.
        assert!(datadir_mismatch(d, None, d).is_some());
        assert_eq!(datadir_missing(d).code, FindingCode::DatadirMissing);
    }

    #[test]
    fn a_local_backup_needs_a_local_master_with_its_own_datadir() {
        let d = Path::new("/var/lib/mysql");
        let far = local_master("db1.example", false, None, d).unwrap();
        assert_eq!(far.code, FindingCode::MasterNotLocal);
        assert_eq!(far.server, Role::Master);
        assert!(far.problem.contains("db1.example"));
        let same = local_master("127.0.0.1", true, Some(d), d).unwrap();
        assert_eq!(same.code, FindingCode::SameDatadir);
        assert!(local_master("127.0.0.1", true, Some(Path::new("/srv/m")), d).is_none());
        assert!(local_master("127.0.0.1", true, None, d).is_none());
    }

    #[test]
    fn free_space_needs_twice_the_data_and_slack() {
        let w = Path::new("/var/lib/mysql.amsu-work");
        let data = 1 << 30;
        let needed = space_needed(data);
        assert_eq!(needed, 2 * ((1 << 30) + ESTIMATE_SLACK));
        assert!(free_space(w, Ok(needed), data).is_none());
        let f = free_space(w, Ok(needed - 1), data).unwrap();
        assert_eq!(f.code, FindingCode::NoSpace);
        assert_eq!(f.severity, Severity::Blocking);
        assert!(
            f.problem.contains(&format!("{} MiB", needed >> 20)),
            "{}",
            f.problem
        );
        let unknown = free_space(w, Err(std::io::Error::other("EIO")), data).unwrap();
        assert_eq!(unknown.code, FindingCode::FreeSpaceUnknown);
        assert_eq!(unknown.severity, Severity::Warning);
        assert_eq!(space_needed(u64::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn blocking_findings_resolve_nothing_warnings_do() {
        let (t, d, w) = ("/t".into(), "/d".into(), "/w".into());
        let warn = replica_login_after_copy("repl");
        assert_eq!(warn.severity, Severity::Warning);
        assert!(warn.problem.contains("'repl'"));
        let r = resolve(&[warn], t, d, w).unwrap();
        assert_eq!(r.work_dir, PathBuf::from("/w"));
        assert!(resolve(&[tool_missing()], "/t".into(), "/d".into(), "/w".into()).is_none());
    }
}
