//! The data directory swap: stop the replica, move its data directory aside, move the
//! prepared copy in, start it (or roll back), and apply again what the restart forgot.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amsu_core::{Coordinates, Event, EventSink, Role};
use amsu_mysql::conn::Session;
use amsu_mysql::dialect::Dialect;
use amsu_mysql::{quote, MysqlError};

use super::{
    io_err, parse, PhysicalCopy, PhysicalError, ReplicaLeft, ReplicaVars, Resolved, STAGING_MARKER,
};

impl PhysicalCopy {
    /// Stops the replica, swaps the data directory, starts it and reconfigures it. Every
    /// failure leaves a startable replica and says which data it runs on.
    pub(super) async fn install(
        &self,
        r: &Resolved,
        staged: &Path,
        coordinates: &Coordinates,
        events: &dyn EventSink,
    ) -> Result<(), PhysicalError> {
        let datadir = &r.datadir;
        let service = self.service.describe();
        let install_err = |failure: String, left| PhysicalError::Install { failure, left };
        let vars = self.replica_vars().await?;

        // Clean the staged copy before the replica stops: nothing of it is needed.
        remove_stale(staged)?;
        let _ = std::fs::remove_file(staged.join(STAGING_MARKER));
        copy_ownership(datadir, staged)?;

        let restart_old = |failure: String| async move {
            match self.start_and_wait().await {
                Ok(()) => install_err(failure, ReplicaLeft::OldDataRunning),
                Err(e) => install_err(failure, ReplicaLeft::OldDataStopped { error: e }),
            }
        };
        if let Err(e) = self.service.stop().await {
            return Err(restart_old(format!("cannot stop the replica ({service}): {e}")).await);
        }
        let stamp = unix_now();
        let old = sibling(datadir, &format!("amsu-old-{stamp}"));
        if let Err(e) = std::fs::rename(datadir, &old) {
            return Err(restart_old(format!(
                "cannot move the data directory {} aside to {}: {e}",
                datadir.display(),
                old.display()
            ))
            .await);
        }
        if let Err(e) = move_tree(staged, datadir) {
            let failure = format!(
                "cannot move the prepared backup {} to {}: {e}",
                staged.display(),
                datadir.display()
            );
            if std::fs::rename(&old, datadir).is_err() {
                return Err(install_err(
                    failure,
                    ReplicaLeft::NeedsManualRestore {
                        old_dir: old,
                        datadir: datadir.clone(),
                    },
                ));
            }
            return Err(restart_old(failure).await);
        }
        events.emit(&Event::Changed {
            server: Role::Replica,
            what: format!(
                "installed the master's physical backup as the data directory {} (the old one is at {} until the new one runs)",
                datadir.display(),
                old.display()
            ),
        });

        if let Err(e) = self.start_and_wait().await {
            let failure =
                format!("the replica did not start on the new data directory ({service}): {e}");
            // It may be half-started: stop it before touching its files.
            let _ = self.service.stop().await;
            let failed = sibling(datadir, &format!("amsu-failed-{stamp}"));
            if std::fs::rename(datadir, &failed).is_err() || std::fs::rename(&old, datadir).is_err()
            {
                return Err(install_err(
                    failure,
                    ReplicaLeft::NeedsManualRestore {
                        old_dir: old,
                        datadir: datadir.clone(),
                    },
                ));
            }
            return Err(match self.start_and_wait().await {
                Ok(()) => install_err(failure, ReplicaLeft::RolledBack { failed_dir: failed }),
                Err(error) => install_err(
                    failure,
                    ReplicaLeft::RolledBackStopped {
                        failed_dir: failed,
                        error,
                    },
                ),
            });
        }

        // The new one runs: the old one may go.
        if self.opts.keep_old_datadir {
            events.emit(&Event::Changed {
                server: Role::Replica,
                what: format!("kept the old data directory at {}", old.display()),
            });
        } else if let Err(e) = std::fs::remove_dir_all(&old) {
            events.emit(&Event::Warning {
                server: Some(Role::Replica),
                message: format!(
                    "cannot remove the old data directory {}: {e}",
                    old.display()
                ),
            });
        }
        self.reconfigure(&vars, coordinates, events)
            .await
            .map_err(|e| {
                install_err(
                    format!("the replica started on the new data but cannot be reconfigured: {e}"),
                    ReplicaLeft::NewDataRunning,
                )
            })
    }

    /// Starts the replica and waits until it accepts connections; the error as text.
    pub(super) async fn start_and_wait(&self) -> Result<(), String> {
        self.service.start().await.map_err(|e| e.to_string())?;
        let deadline = Instant::now() + self.opts.start_timeout;
        loop {
            match Session::open(&self.replica).await {
                Ok(s) => {
                    let _ = s.disconnect().await;
                    return Ok(());
                }
                Err(e) if e.is_access_denied() => {
                    return Err(format!(
                        "it runs, but the replica user '{}' cannot log in to it any more: {e}",
                        self.replica.user
                    ))
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "it did not accept connections within {:?}: {e}",
                        self.opts.start_timeout
                    ))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Applies again what the restart forgot, and the snapshot's GTID position.
    pub(super) async fn reconfigure(
        &self,
        vars: &ReplicaVars,
        coordinates: &Coordinates,
        events: &dyn EventSink,
    ) -> Result<(), MysqlError> {
        let mut s = Session::open(&self.replica).await?;
        if vars.server_id != 0 {
            let sql = format!("SET GLOBAL server_id = {}", vars.server_id);
            s.exec(&sql, &sql).await?;
        }
        let sql = format!("SET GLOBAL read_only = {}", quote::string(&vars.read_only));
        s.exec(&sql, &sql).await?;
        if let Some(gtid) = coordinates.gtid.as_deref().filter(|g| !g.is_empty()) {
            let version = s
                .column("SELECT @@version", "reading the replica's version")
                .await?
                .join("");
            if let Ok(d) = Dialect::from_version_string(&version) {
                let sql = d.set_gtid_position(gtid);
                if let Err(e) = s.exec(&sql, &sql).await {
                    events.emit(&Event::Warning {
                        server: Some(Role::Replica),
                        message: format!(
                            "could not set the GTID position to the snapshot's {gtid}: {e}; replication uses file and position"
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// `DIR.suffix` next to `dir`.
pub(super) fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "datadir".into());
    dir.with_file_name(format!("{name}.{suffix}"))
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Removes the master's replication metadata and identity from a copied data directory.
pub(super) fn remove_stale(dir: &Path) -> Result<(), PhysicalError> {
    for e in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let e = e.map_err(io_err("list", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().map(|t| t.is_file()).unwrap_or(false)
            && parse::is_stale_top_level_file(&name)
        {
            std::fs::remove_file(e.path()).map_err(io_err("remove", &e.path()))?;
        }
    }
    Ok(())
}

/// Gives `dst` and everything in it the owner of `src` (when running as root).
pub(super) fn copy_ownership(src: &Path, dst: &Path) -> Result<(), PhysicalError> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let m = std::fs::metadata(src).map_err(io_err("read", src))?;
    let (uid, gid) = (m.uid(), m.gid());
    let mut stack = vec![dst.to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).map_err(io_err("chown", &p))?;
        if p.is_dir() && !p.is_symlink() {
            for e in std::fs::read_dir(&p).map_err(io_err("list", &p))? {
                stack.push(e.map_err(io_err("list", &p))?.path());
            }
        }
    }
    Ok(())
}

/// Renames `src` to `dst`; across file systems, copies and then removes `src`.
pub(super) fn move_tree(src: &Path, dst: &Path) -> io::Result<()> {
    match std::fs::rename(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            copy_tree(src, dst)?;
            std::fs::remove_dir_all(src)
        }
        Err(e) => Err(e),
    }
}

fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    std::fs::create_dir(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else {
            std::fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings() {
        assert_eq!(
            sibling(Path::new("/var/lib/mysql"), "amsu-work"),
            PathBuf::from("/var/lib/mysql.amsu-work")
        );
    }

    #[test]
    fn stale_replication_files_are_removed_top_level_only() {
        let base = tempfile::tempdir().unwrap();
        let d = base.path();
        std::fs::create_dir(d.join("mysql")).unwrap();
        for f in [
            "master.info",
            "relay-log.info",
            "auto.cnf",
            "ibdata1",
            "mysql/master.info",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        remove_stale(d).unwrap();
        assert!(!d.join("master.info").exists());
        assert!(!d.join("relay-log.info").exists());
        assert!(!d.join("auto.cnf").exists());
        assert!(d.join("ibdata1").exists());
        assert!(d.join("mysql/master.info").exists(), "only the top level");
    }

    #[test]
    fn move_and_copy_tree_keep_every_file() {
        let base = tempfile::tempdir().unwrap();
        let src = base.path().join("src");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::write(src.join("a/b/f"), b"data").unwrap();
        std::fs::write(src.join("top"), b"t").unwrap();
        let copy = base.path().join("copy");
        copy_tree(&src, &copy).unwrap();
        assert_eq!(std::fs::read(copy.join("a/b/f")).unwrap(), b"data");
        assert!(
            copy_tree(&src, &copy).is_err(),
            "never into an existing directory"
        );
        let moved = base.path().join("moved");
        move_tree(&src, &moved).unwrap();
        assert!(!src.exists());
        assert_eq!(std::fs::read(moved.join("top")).unwrap(), b"t");
        // Not running as root: ownership is left alone.
        if !nix::unistd::geteuid().is_root() {
            copy_ownership(&moved, &copy).unwrap();
        }
    }
}
