//! The setup journal as a JSON file on the replica host, replaced atomically.

use std::path::{Path, PathBuf};

use amsu_core::{BoxError, Journal, JournalStore, ServerAddr};

/// A journal kept in one file.
pub struct FileJournal {
    path: PathBuf,
}

impl FileJournal {
    /// A journal at `path` (its directory is created on the first save).
    pub fn new(path: PathBuf) -> Self {
        FileJournal { path }
    }
}

/// `$AMSU_JOURNAL_DIR` or `~/.amsu/journal`, one file per replica.
pub fn default_path(replica: &ServerAddr) -> PathBuf {
    let dir = std::env::var_os("AMSU_JOURNAL_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".amsu/journal")))
        .unwrap_or_else(|| std::env::temp_dir().join("amsu-journal"));
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
