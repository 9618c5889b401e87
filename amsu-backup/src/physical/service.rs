//! How the replica server is stopped and started around the data directory swap.

use std::process::Stdio;

use amsu_core::BoxError;
use amsu_mysql::sandbox::Sandbox;
use async_trait::async_trait;

/// Stops and starts the replica's server process. The physical method swaps the data
/// directory between [`stop`](ReplicaService::stop) and [`start`](ReplicaService::start).
///
/// Failure contract: after `stop` returns `Ok` the server must not touch its data
/// directory any more. `start` returns once the service manager reports the server
/// started; amsu then waits on its own until it accepts connections. When `start` fails
/// the server may be half-started: amsu calls `stop` before it touches the data
/// directory again, so `stop` must succeed on a stopped or failed server.
#[async_trait]
pub trait ReplicaService: Send + Sync {
    /// What is managed, for messages (`systemd unit mariadb.service`).
    fn describe(&self) -> String;
    /// Stops the server and returns when it has exited.
    async fn stop(&self) -> Result<(), BoxError>;
    /// Starts the server.
    async fn start(&self) -> Result<(), BoxError>;
}

/// Why a service command failed.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed ({status}){}", if output.is_empty() { String::new() } else { format!(": {output}") })]
#[non_exhaustive]
pub struct ServiceCommandError {
    /// The command as run.
    pub command: String,
    /// Its exit status, or why it could not run.
    pub status: String,
    /// The last lines of its output.
    pub output: String,
}

async fn run_shell(command: &str) -> Result<(), BoxError> {
    run_program("sh", &["-c", command], command).await
}

async fn run_program(program: &str, args: &[&str], shown: &str) -> Result<(), BoxError> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| ServiceCommandError {
            command: shown.to_string(),
            status: e.to_string(),
            output: String::new(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    Err(ServiceCommandError {
        command: shown.to_string(),
        status: out.status.to_string(),
        output: lines[lines.len().saturating_sub(10)..].join("\n"),
    }
    .into())
}

/// A systemd unit: `systemctl stop UNIT` / `systemctl start UNIT`.
#[derive(Debug, Clone)]
pub struct SystemdService {
    unit: String,
}

impl SystemdService {
    /// The unit, e.g. `mariadb.service`.
    pub fn new(unit: impl Into<String>) -> Self {
        SystemdService { unit: unit.into() }
    }
}

#[async_trait]
impl ReplicaService for SystemdService {
    fn describe(&self) -> String {
        format!("systemd unit {}", self.unit)
    }

    async fn stop(&self) -> Result<(), BoxError> {
        let shown = format!("systemctl stop {}", self.unit);
        run_program("systemctl", &["stop", &self.unit], &shown).await
    }

    async fn start(&self) -> Result<(), BoxError> {
        let shown = format!("systemctl start {}", self.unit);
        run_program("systemctl", &["start", &self.unit], &shown).await
    }
}

/// A pair of shell commands (run with `sh -c`); each must return when the server has
/// stopped / started. Never put a password in them: they are visible in `ps`.
#[derive(Debug, Clone)]
pub struct CommandService {
    stop: String,
    start: String,
}

impl CommandService {
    /// The stop and the start command.
    pub fn new(stop: impl Into<String>, start: impl Into<String>) -> Self {
        CommandService {
            stop: stop.into(),
            start: start.into(),
        }
    }
}

#[async_trait]
impl ReplicaService for CommandService {
    fn describe(&self) -> String {
        format!("commands `{}` / `{}`", self.stop, self.start)
    }

    async fn stop(&self) -> Result<(), BoxError> {
        run_shell(&self.stop).await
    }

    async fn start(&self) -> Result<(), BoxError> {
        run_shell(&self.start).await
    }
}

/// A local [`Sandbox`] that amsu (or a test) runs. Adds `--skip-slave-start` to its
/// server options, so a swapped-in data directory never starts replicating on its own.
#[derive(Debug)]
pub struct SandboxService {
    sandbox: tokio::sync::Mutex<Sandbox>,
}

impl SandboxService {
    /// Manages `sandbox`.
    pub fn new(mut sandbox: Sandbox) -> Self {
        let opts = sandbox.extra_options_mut();
        if !opts.iter().any(|o| o == "--skip-slave-start") {
            opts.push("--skip-slave-start".into());
        }
        SandboxService {
            sandbox: tokio::sync::Mutex::new(sandbox),
        }
    }

    /// The sandbox (locked while a stop or start runs).
    pub async fn sandbox(&self) -> tokio::sync::MutexGuard<'_, Sandbox> {
        self.sandbox.lock().await
    }

    /// Gives the sandbox back.
    pub fn into_inner(self) -> Sandbox {
        self.sandbox.into_inner()
    }
}

#[async_trait]
impl ReplicaService for SandboxService {
    fn describe(&self) -> String {
        match self.sandbox.try_lock() {
            Ok(s) => format!("sandbox {}", s.name()),
            Err(_) => "sandbox".into(),
        }
    }

    async fn stop(&self) -> Result<(), BoxError> {
        Ok(self.sandbox.lock().await.shutdown().await?)
    }

    async fn start(&self) -> Result<(), BoxError> {
        Ok(self.sandbox.lock().await.start().await?)
    }
}
