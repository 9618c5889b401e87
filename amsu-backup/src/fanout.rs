//! Many replicas from one read of the master ("fan-out").
//!
//! The master is read once, into a *spool*: an ordinary image directory on the host that
//! runs amsu (one snapshot, one commit-blocked window). Every replica is then seeded from
//! that image independently — its own journal, progress, verify and failure — and starts
//! replicating at the image's coordinates. The spool is kept until every replica is done,
//! so a replica that failed resumes from it on its own.
//!
//! This module owns the parts that do not depend on how a replica's run is driven: the
//! spool directory, the identity checks between the replicas, and how the outcomes of the
//! replicas combine into one exit code.

use std::path::{Path, PathBuf};

use amsu_core::{manifest::MANIFEST_FILE, BoxError, Finding, ServerAddr};
use amsu_mysql::{MysqlMaster, MysqlReplica};

/// The local image directory a fan-out dumps the master into once.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// The state a spool directory was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolState {
    /// Nothing there yet.
    Empty,
    /// A complete image (its manifest, written last, is there): reused as it is.
    Complete,
    /// Files of an interrupted dump, without a manifest: they are removed and the master
    /// is read again.
    Partial,
}

impl Spool {
    /// A spool at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Spool { dir: dir.into() }
    }

    /// The default spool of `master`: `JOURNAL_DIR/spool/HOST_PORT`, beside the
    /// replicas' journals.
    pub fn default_dir(journal_dir: &Path, master: &ServerAddr) -> PathBuf {
        let name: String = format!("{}_{}", master.host, master.port)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        journal_dir.join("spool").join(name)
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the directory holds now.
    pub fn state(&self) -> SpoolState {
        if self.dir.join(MANIFEST_FILE).is_file() {
            SpoolState::Complete
        } else if std::fs::read_dir(&self.dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
        {
            SpoolState::Partial
        } else {
            SpoolState::Empty
        }
    }

    /// Makes the directory ready for a new dump: the files of an interrupted one are
    /// removed. A complete image is never touched (returns its state unchanged).
    pub fn prepare(&self) -> std::io::Result<SpoolState> {
        let state = self.state();
        if state == SpoolState::Partial {
            std::fs::remove_dir_all(&self.dir)?;
        }
        if state != SpoolState::Complete {
            std::fs::create_dir_all(&self.dir)?;
        }
        Ok(state)
    }

    /// Removes the spool (once every replica is done).
    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Two of the replicas are one server (under two names): the indexes of the pair and the
/// finding that says so.
#[derive(Debug, Clone)]
pub struct SameReplica {
    /// The first replica of the pair (index into the list given).
    pub first: usize,
    /// The second one.
    pub second: usize,
    /// The finding, with its fix.
    pub finding: Finding,
}

/// Checks that no two `replicas` are the same server, under any spelling (host names,
/// ports, sockets): the same decisive check as master against replica
/// ([`amsu_core::distinct_servers`]), run for every pair. Changes nothing.
pub async fn distinct_replicas(replicas: &[ServerAddr]) -> Result<Option<SameReplica>, BoxError> {
    for i in 0..replicas.len() {
        for j in i + 1..replicas.len() {
            let a = MysqlMaster::new(replicas[i].clone());
            let b = MysqlReplica::new(replicas[j].clone());
            if let Some(mut finding) = amsu_core::distinct_servers(&a, &b).await? {
                finding.problem = format!(
                    "the replicas {} and {} are the same server ({})",
                    replicas[i], replicas[j], finding.problem
                );
                finding.fix = "name each replica server once".into();
                return Ok(Some(SameReplica {
                    first: i,
                    second: j,
                    finding,
                }));
            }
        }
    }
    Ok(None)
}

/// How one replica's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaOutcome {
    /// The replica, as shown (no password).
    pub replica: String,
    /// The exit code of its run (0 done, 3 a precondition failed and nothing was changed
    /// on it, 1 failed while changing things; `None`: ended by a signal).
    pub exit_code: Option<i32>,
}

impl ReplicaOutcome {
    /// True when the replica is done.
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// The exit code of a fan-out: 0 when every replica is done; 3 when every failed one
/// failed a precondition (nothing was changed on it); else 1.
pub fn combined_exit_code(outcomes: &[ReplicaOutcome]) -> i32 {
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok()).collect();
    if failed.is_empty() {
        0
    } else if failed.iter().all(|o| o.exit_code == Some(3)) {
        3
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: Option<i32>) -> ReplicaOutcome {
        ReplicaOutcome {
            replica: "r".into(),
            exit_code: code,
        }
    }

    #[test]
    fn exit_code_says_whether_some_failed() {
        assert_eq!(combined_exit_code(&[outcome(Some(0)), outcome(Some(0))]), 0);
        assert_eq!(combined_exit_code(&[outcome(Some(0)), outcome(Some(3))]), 3);
        assert_eq!(combined_exit_code(&[outcome(Some(1)), outcome(Some(3))]), 1);
        assert_eq!(combined_exit_code(&[outcome(None), outcome(Some(0))]), 1);
    }

    #[test]
    fn a_partial_spool_is_cleared_and_a_complete_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::new(dir.path().join("s"));
        assert_eq!(s.prepare().unwrap(), SpoolState::Empty);
        std::fs::write(s.dir().join("chunk"), b"x").unwrap();
        assert_eq!(s.state(), SpoolState::Partial);
        assert_eq!(s.prepare().unwrap(), SpoolState::Partial);
        assert!(!s.dir().join("chunk").exists() && s.dir().is_dir());
        std::fs::write(s.dir().join("chunk"), b"x").unwrap();
        std::fs::write(s.dir().join(MANIFEST_FILE), b"{}").unwrap();
        assert_eq!(s.prepare().unwrap(), SpoolState::Complete);
        assert!(s.dir().join("chunk").exists());
        s.remove().unwrap();
        assert_eq!(s.state(), SpoolState::Empty);
        s.remove().unwrap();
    }

    #[test]
    fn default_spool_names_the_master() {
        let m: ServerAddr = "mysql://root@db1.example:3307".parse().unwrap();
        assert_eq!(
            Spool::default_dir(Path::new("/j"), &m),
            PathBuf::from("/j/spool/db1.example_3307")
        );
    }
}
