//! The sandboxes of a base directory: their `sandbox.json` manifests, listing them, and
//! stopping one by name.

use super::*;

/// Reads every `sandbox.json` directly under `base_dir` and checks whether each server is
/// running. A missing base directory is an empty list; an unreadable manifest is skipped
/// with a warning. Sorted by name.
pub fn list(base_dir: impl AsRef<Path>) -> Result<Vec<SandboxInfo>, SandboxError> {
    let base_dir = base_dir.as_ref();
    let entries = match fs::read_dir(base_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", base_dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("read", base_dir))?;
        let manifest = entry.path().join(MANIFEST_FILE);
        if !manifest.is_file() {
            continue;
        }
        match read_manifest(&manifest) {
            Ok(info) => out.push(info),
            Err(e) => tracing::warn!(error = %e, "skipping a sandbox"),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Stops the sandbox `name` under `base_dir` by the PID its `sandbox.json` records, after
/// checking that this PID is a `mariadbd` serving the sandbox's data directory (SIGTERM,
/// at most 60 s, then SIGKILL), and removes its directory when `remove` is set. Returns
/// whether the server was running.
pub async fn stop_by_name(
    base_dir: impl AsRef<Path>,
    name: &str,
    remove: bool,
) -> Result<bool, SandboxError> {
    validate_name(name)?;
    let base_dir = base_dir.as_ref();
    let dir = base_dir.join(name);
    let manifest = dir.join(MANIFEST_FILE);
    if !manifest.is_file() {
        return Err(SandboxError::NotFound {
            base_dir: base_dir.to_path_buf(),
            name: name.to_string(),
        });
    }
    let info = read_manifest(&manifest)?;
    let was_running = info.running;
    if was_running {
        let start = Instant::now();
        send_signal(info.pid, Signal::SIGTERM)?;
        let mut signal = Signal::SIGTERM;
        while info.is_running() {
            if signal == Signal::SIGTERM && start.elapsed() >= STOP_TIMEOUT {
                // Checked again right before: still the same mariadbd.
                send_signal(info.pid, Signal::SIGKILL)?;
                signal = Signal::SIGKILL;
            } else if start.elapsed() >= STOP_TIMEOUT + KILL_TIMEOUT {
                return Err(SandboxError::StopTimeout {
                    pid: info.pid,
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        tracing::info!(name, pid = info.pid, "sandbox stopped");
    }
    if remove {
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
    }
    Ok(was_running)
}

fn read_manifest(path: &Path) -> Result<SandboxInfo, SandboxError> {
    let text = fs::read_to_string(path).map_err(io_err("read", path))?;
    let mut info: SandboxInfo =
        serde_json::from_str(&text).map_err(|source| SandboxError::Manifest {
            path: path.to_path_buf(),
            source,
        })?;
    if let Some(dir) = path.parent() {
        info.dir = dir.to_path_buf();
    }
    info.running = info.is_running();
    Ok(info)
}

pub(super) fn write_manifest(info: &SandboxInfo) -> Result<(), SandboxError> {
    let path = info.dir.join(MANIFEST_FILE);
    let tmp = info.dir.join(format!("{MANIFEST_FILE}.tmp"));
    let text = serde_json::to_string_pretty(info).map_err(|source| SandboxError::Manifest {
        path: path.clone(),
        source,
    })?;
    fs::write(&tmp, text + "\n").map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_err("write", &path))
}
