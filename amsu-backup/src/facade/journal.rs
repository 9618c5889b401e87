//! The setup journal as a JSON file on the replica host, replaced atomically, with an
//! exclusive lock held while the store lives (one run per setup).

use std::path::{Path, PathBuf};

use amsu_core::{BoxError, Journal, JournalStore, ServerAddr};

/// A journal kept in one file.
pub struct FileJournal {
    path: PathBuf,
    /// The lock file, held (an exclusive `flock`) while this store lives.
    lock: std::sync::Mutex<Option<std::fs::File>>,
}

impl FileJournal {
    /// A journal at `path` (its directory is created on the first save).
    pub fn new(path: PathBuf) -> Self {
        FileJournal {
            path,
            lock: std::sync::Mutex::new(None),
        }
    }

    fn lock_path(&self) -> PathBuf {
        self.path.with_extension("json.lock")
    }

    /// The path of the journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds this journal's lock when another run does (a setup of the same replica
    /// running now), in words; `None` when it is free. Takes no lock and creates nothing:
    /// a run that wants the journal still takes it with [`JournalStore::lock`].
    pub fn held_by(&self) -> Option<String> {
        let path = self.lock_path();
        let file = std::fs::OpenOptions::new().read(true).open(&path).ok()?;
        match file.try_lock() {
            Ok(()) => None,
            Err(std::fs::TryLockError::WouldBlock) => {
                let who = std::fs::read_to_string(&path).unwrap_or_default();
                Some(if who.trim().is_empty() {
                    "holder unknown".to_string()
                } else {
                    who.trim().to_string()
                })
            }
            Err(std::fs::TryLockError::Error(_)) => None,
        }
    }
}

/// Who holds a journal's lock: this process, in words (written into the lock file).
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "pid {} on host {host}, started at unix time {since}",
        std::process::id()
    )
}

/// The directory of the default journals: `$AMSU_JOURNAL_DIR` or `~/.amsu/journal`.
pub fn default_journal_dir() -> PathBuf {
    std::env::var_os("AMSU_JOURNAL_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".amsu/journal")))
        .unwrap_or_else(|| std::env::temp_dir().join("amsu-journal"))
}

/// `$AMSU_JOURNAL_DIR` or `~/.amsu/journal` ([`default_journal_dir`]), one file per
/// replica.
pub fn default_journal_path(replica: &ServerAddr) -> PathBuf {
    let dir = default_journal_dir();
    let name: String = format!("{}_{}", replica.host, replica.port)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}.json"))
}

impl JournalStore for FileJournal {
    fn load(&self) -> Result<Option<Journal>, BoxError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).map_err(|e| {
                format!(
                    "the journal {} is damaged ({e}); move it away to start over",
                    self.path.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read the journal {}: {e}", self.path.display()).into()),
        }
    }

    fn lock(&self) -> Result<(), BoxError> {
        use std::io::Write;
        let mut held = self.lock.lock().expect("journal lock");
        if held.is_some() {
            return Ok(());
        }
        let path = self.lock_path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let who = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(format!(
                    "another amsu run is using the journal {} ({}); wait for it to end, or stop it, then rerun",
                    self.path.display(),
                    if who.trim().is_empty() { "holder unknown" } else { who.trim() }
                )
                .into());
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()).into())
            }
        }
        file.set_len(0)
            .and_then(|()| file.write_all(holder().as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        *held = Some(file);
        Ok(())
    }

    fn save(&self, journal: &Journal) -> Result<(), BoxError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(journal)?;
        std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| format!("cannot replace {}: {e}", self.path.display()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_held_by_another_run_says_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let free = FileJournal::new(path.clone());
        assert_eq!(free.held_by(), None, "no lock file yet");
        let run = FileJournal::new(path.clone());
        run.lock().unwrap();
        let holder = free.held_by().expect("held by the other run");
        assert!(
            holder.contains(&format!("pid {}", std::process::id())),
            "{holder}"
        );
        drop(run);
        assert_eq!(free.held_by(), None, "free once the run ended");
        // Asking took no lock: a run can still take it.
        free.lock().unwrap();
    }
}
