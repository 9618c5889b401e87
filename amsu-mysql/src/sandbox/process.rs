//! The server processes of a sandbox: `mariadb-install-db`, the `mariadbd` command
//! line, signals, and reading their logs.

use super::*;

pub(super) async fn install_db(
    install_db: &Path,
    info: &SandboxInfo,
    timeout: Duration,
) -> Result<(), SandboxError> {
    let log_path = info.dir.join(INSTALL_LOG);
    let log = fs::File::create(&log_path).map_err(io_err("create", &log_path))?;
    let log2 = log.try_clone().map_err(io_err("open", &log_path))?;
    let mut cmd = tokio::process::Command::new(install_db);
    cmd.arg("--no-defaults")
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .arg(format!("--datadir={}", info.datadir.display()))
        // Passed on to the bootstrap server.
        .arg(format!("--tmpdir={}", info.dir.join(TMP_DIR).display()));
    if nix::unistd::geteuid().is_root() {
        cmd.arg("--user=root");
    }
    cmd.current_dir(&info.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true);
    tracing::debug!(datadir = %info.datadir.display(), "running mariadb-install-db");
    let mut child = cmd.spawn().map_err(io_err("run", install_db))?;
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.map_err(io_err("wait for", install_db))?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(SandboxError::Timeout {
                what: "mariadb-install-db",
                timeout,
                last_error: "still running".into(),
                log_tail: read_tail_from(&log_path, 0),
                log: log_path,
            });
        }
    };
    if !status.success() {
        return Err(SandboxError::InstallDb {
            datadir: info.datadir.clone(),
            status: status.to_string(),
            output_tail: install_output_summary(&fs::read_to_string(&log_path).unwrap_or_default()),
        });
    }
    Ok(())
}

pub(super) struct ServerArgs<'a> {
    pub(super) dir: &'a Path,
    pub(super) datadir: &'a Path,
    pub(super) socket: &'a Path,
    pub(super) error_log: &'a Path,
    pub(super) port: u16,
    pub(super) server_id: u32,
    pub(super) log_bin: bool,
    pub(super) binlog_format: &'a str,
    pub(super) as_root: bool,
    pub(super) extra: &'a [String],
}

/// The `mariadbd` command line: `--no-defaults` first, our defaults, then the extra options
/// (the server takes the last value of an option, so those win).
pub(super) fn server_args(a: &ServerArgs<'_>) -> Vec<String> {
    let mut args = vec![
        "--no-defaults".to_string(),
        format!("--datadir={}", a.datadir.display()),
        format!("--port={}", a.port),
        "--bind-address=127.0.0.1".to_string(),
        format!("--socket={}", a.socket.display()),
        format!("--tmpdir={}", a.dir.join(TMP_DIR).display()),
        format!("--pid-file={}", a.dir.join(PID_FILE).display()),
        format!("--log-error={}", a.error_log.display()),
        format!("--server-id={}", a.server_id),
        format!("--binlog-format={}", a.binlog_format),
        // Relay logs named after the sandbox, not the host name.
        "--relay-log=relay-bin".to_string(),
        "--innodb-buffer-pool-size=128M".to_string(),
        "--innodb-log-file-size=32M".to_string(),
    ];
    if a.log_bin {
        args.push(format!(
            "--log-bin={}",
            a.dir.join(BINLOG_DIR).join(BINLOG_BASENAME).display()
        ));
    }
    if a.as_root {
        args.push("--user=root".to_string());
    }
    args.extend(a.extra.iter().cloned());
    args
}

pub(super) fn validate_name(name: &str) -> Result<(), SandboxError> {
    let bad = |reason| {
        Err(SandboxError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if name.starts_with('.') {
        return bad("it starts with a dot");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

/// The first of `names` found in `dirs` (all of `dirs` for the first name, then the next).
pub(super) fn find_binary(names: &[&str], dirs: &[PathBuf]) -> Result<PathBuf, SandboxError> {
    programs::find_in(names, dirs).ok_or_else(|| SandboxError::BinaryNotFound {
        binary: names[0].to_string(),
        searched: programs::display_dirs(dirs),
    })
}

pub(super) fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

pub(super) fn is_addr_in_use(log_tail: &str) -> bool {
    log_tail.contains("Address already in use")
}

pub(super) fn send_signal(pid: u32, signal: Signal) -> Result<(), SandboxError> {
    let raw = i32::try_from(pid).unwrap_or(0);
    if raw <= 0 {
        // Never signal 0 or a negative PID: that would reach a whole process group.
        return Err(SandboxError::Signal {
            signal,
            pid,
            source: nix::Error::EINVAL,
        });
    }
    match kill(Pid::from_raw(raw), signal) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(source) => Err(SandboxError::Signal {
            signal,
            pid,
            source,
        }),
    }
}

/// Whether our child has exited (and is now reaped).
pub(super) fn reaped(child: &mut Child, log: &Path) -> Result<bool, SandboxError> {
    child
        .try_wait()
        .map(|s| s.is_some())
        .map_err(io_err("wait for the server of", log))
}

/// Whether `pid` is alive and its command line is a `mariadbd` (or `mysqld`) with
/// `--datadir=DATADIR`. A zombie has an empty command line, so it does not count.
pub(super) fn pid_serves_datadir(pid: u32, datadir: &Path) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 || kill(Pid::from_raw(raw), None).is_err() {
        return false;
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline_serves_datadir(&cmdline, datadir),
        Err(_) => false,
    }
}

pub(super) fn cmdline_serves_datadir(cmdline: &[u8], datadir: &Path) -> bool {
    let mut args = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let Some(argv0) = args.next() else {
        return false;
    };
    let program = Path::new(&argv0)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if program != "mariadbd" && program != "mysqld" {
        return false;
    }
    let wanted = format!("--datadir={}", datadir.display());
    args.any(|a| a == wanted)
}

/// The last [`LOG_TAIL_LINES`] lines of `path` from byte `offset` on (what one attempt
/// wrote), or a note saying why there are none.
pub(super) fn read_tail_from(path: &Path, offset: u64) -> String {
    let mut text = Vec::new();
    let read = fs::File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(offset))?;
        f.read_to_end(&mut text)
    });
    match read {
        Ok(_) => last_lines(&String::from_utf8_lossy(&text), LOG_TAIL_LINES),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// install-db ends with a long generic advice text: put its `ERROR` lines first.
pub(super) fn install_output_summary(text: &str) -> String {
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    let tail = last_lines(text, LOG_TAIL_LINES);
    if errors.is_empty() {
        tail
    } else {
        format!(
            "{}\n...\n{tail}",
            last_lines(&errors.join("\n"), LOG_TAIL_LINES)
        )
    }
}

pub(super) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
