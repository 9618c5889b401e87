//! Process control: the `mariadb-backup` (and `mbstream`, backup command) child processes,
//! their logs, and the option file that carries the master password.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use amsu_core::ServerAddr;
use amsu_mysql::{option_file, programs};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{io_err, BackupThrottle, LogLine, PhysicalError, LOG_COPY_INTERVAL_MS, LOG_TAIL_LINES};

impl BackupThrottle {
    /// The command that runs `tool` with these limits: `ionice` first when asked and found.
    pub(super) fn command(&self, tool: &Path) -> tokio::process::Command {
        let ionice = self
            .ionice
            .then(|| find_program(&["ionice"]).ok())
            .flatten();
        match ionice {
            Some(ionice) => {
                let mut c = tokio::process::Command::new(ionice);
                c.args(["-c2", "-n7"]).arg(tool);
                c
            }
            None => tokio::process::Command::new(tool),
        }
    }
}

/// An option file only the current user can read, deleted when dropped.
pub(super) struct SecretFile(PathBuf);

impl SecretFile {
    fn create(path: PathBuf, text: &str) -> Result<SecretFile, PhysicalError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("create", &path))?;
        let guard = SecretFile(path.clone());
        f.write_all(text.as_bytes())
            .map_err(io_err("write", &path))?;
        Ok(guard)
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `mariadb-backup --backup` against `master` into `target`; the password in an option
/// file, never on the command line.
pub(super) async fn backup_local(
    tool: &Path,
    master: &ServerAddr,
    target: &Path,
    work_dir: &Path,
    parallel: usize,
    throttle: BackupThrottle,
) -> Result<Vec<LogLine>, PhysicalError> {
    let mut cnf = String::from("[xtrabackup]\n");
    if let Some(pw) = master.password.as_ref().filter(|p| !p.is_empty()) {
        if !option_file::can_hold(pw.expose()) {
            return Err(PhysicalError::Precondition(
                "the master password contains a NUL character, which an option file cannot hold"
                    .into(),
            ));
        }
        cnf.push_str(&format!("password={}\n", option_file::value(pw.expose())));
    }
    let secret = SecretFile::create(work_dir.join("backup.cnf"), &cnf)?;
    let mut cmd = throttle.command(tool);
    // --defaults-file must come first.
    cmd.arg(format!("--defaults-file={}", secret.0.display()))
        .arg("--backup")
        // The redo log copier checks every second by default, and stopping it is part of
        // the commit-blocked time.
        .arg(format!("--log-copy-interval={LOG_COPY_INTERVAL_MS}"))
        .arg(format!("--target-dir={}", target.display()))
        .arg(format!("--parallel={}", parallel.max(1)))
        .arg(format!("--host={}", master.host))
        .arg(format!("--port={}", master.port))
        .arg(format!("--user={}", master.user))
        .args(throttle.args());
    let log = work_dir.join("backup.log");
    let r = run_logged(cmd, None, &log, "mariadb-backup --backup").await;
    drop(secret);
    r
}

/// Runs `command` with `sh -c`, its stdout unpacked by `mbstream -x` into `target`.
pub(super) async fn backup_command(
    command: &str,
    target: &Path,
    work_dir: &Path,
) -> Result<Vec<LogLine>, PhysicalError> {
    let mbstream = find_program(&["mbstream"])?;
    let log = work_dir.join("backup.log");
    let mb_log = work_dir.join("mbstream.log");
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(command);
    let mut mb = tokio::process::Command::new(&mbstream);
    mb.arg("-x")
        .arg("-C")
        .arg(target)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&mb_log).map_err(io_err("create", &mb_log))?)
        .kill_on_drop(true);
    run_logged(cmd, Some((mb, mb_log)), &log, "the master backup command").await
}

pub(super) async fn prepare(
    tool: &Path,
    target: &Path,
    work_dir: &Path,
) -> Result<(), PhysicalError> {
    let mut cmd = tokio::process::Command::new(tool);
    cmd.arg("--prepare")
        .arg(format!("--target-dir={}", target.display()));
    run_logged(
        cmd,
        None,
        &work_dir.join("prepare.log"),
        "mariadb-backup --prepare",
    )
    .await
    .map(|_| ())
}

/// Runs `cmd`, writing its stderr to `log` line by line with arrival times. With `sink`,
/// its stdout feeds the sink command's stdin (both must succeed); else it goes to the log.
pub(super) async fn run_logged(
    mut cmd: tokio::process::Command,
    sink: Option<(tokio::process::Command, PathBuf)>,
    log: &Path,
    what: &'static str,
) -> Result<Vec<LogLine>, PhysicalError> {
    let fail = |status: String| PhysicalError::Tool {
        what,
        status,
        log: log.to_path_buf(),
        log_tail: tail(log),
    };
    let mut file = tokio::fs::File::create(log)
        .await
        .map_err(io_err("create", log))?;
    cmd.stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if sink.is_some() {
        cmd.stdout(Stdio::piped());
    } else {
        let out = std::fs::OpenOptions::new()
            .append(true)
            .open(log)
            .map_err(io_err("open", log))?;
        cmd.stdout(out);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    let mut sink_child = match sink {
        Some((mut s, s_log)) => {
            let out: Stdio = child
                .stdout
                .take()
                .expect("piped")
                .try_into()
                .map_err(|e: io::Error| fail(e.to_string()))?;
            s.stdin(out);
            Some((
                s.spawn()
                    .map_err(|e| fail(format!("cannot run mbstream: {e}")))?,
                s_log,
            ))
        }
        None => None,
    };
    let stderr = child.stderr.take().expect("piped");
    let mut reader = BufReader::new(stderr);
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .await
            .map_err(io_err("read the output of", log))?;
        if n == 0 {
            break;
        }
        let arrived = start.elapsed();
        let _ = file.write_all(&buf).await;
        lines.push(LogLine {
            arrived: Some(arrived),
            text: String::from_utf8_lossy(&buf).trim_end().to_string(),
        });
    }
    let _ = file.flush().await;
    let status = child.wait().await.map_err(|e| fail(e.to_string()))?;
    if let Some((mut s, s_log)) = sink_child.take() {
        let st = s.wait().await.map_err(|e| fail(e.to_string()))?;
        if !st.success() {
            return Err(PhysicalError::Tool {
                what: "mbstream -x",
                status: st.to_string(),
                log_tail: tail(&s_log),
                log: s_log,
            });
        }
    }
    if !status.success() {
        return Err(fail(status.to_string()));
    }
    Ok(lines)
}

pub(super) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

pub(super) fn find_program(names: &[&str]) -> Result<PathBuf, PhysicalError> {
    let dirs = programs::search_dirs();
    programs::find_in(names, &dirs).ok_or_else(|| PhysicalError::ToolMissing {
        tool: names[0].to_string(),
        searched: programs::display_dirs(&dirs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("x.cnf");
        {
            let _f = SecretFile::create(path.clone(), "[xtrabackup]\npassword=\"s\"\n").unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!path.exists());
    }

    #[test]
    fn an_error_carries_the_last_lines_of_the_log() {
        let base = tempfile::tempdir().unwrap();
        let log = base.path().join("backup.log");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, text).unwrap();
        let t = tail(&log);
        assert_eq!(t.lines().count(), LOG_TAIL_LINES);
        assert!(t.starts_with("line 11\n") && t.ends_with("line 30"), "{t}");
        assert_eq!(tail(&base.path().join("missing")), "");
    }

    #[test]
    fn a_missing_program_names_the_places_searched() {
        match find_program(&["amsu-no-such-program-xyz"]) {
            Err(PhysicalError::ToolMissing { tool, searched }) => {
                assert_eq!(tool, "amsu-no-such-program-xyz");
                assert!(!searched.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert!(find_program(&["amsu-no-such-program-xyz", "sh"]).is_ok());
    }
}
