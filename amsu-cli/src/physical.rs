//! `--method physical`: the flags of `amsu setup` for it, and the copy method they build
//! (`amsu_backup::CopyMethod::Physical`). `amsu backup --method physical` is
//! `amsu_backup::backup` with `BackupMethod::Physical`.

use std::path::PathBuf;
use std::sync::Arc;

use amsu_backup::{
    CommandService, CopyMethod, PhysicalOptions, PhysicalSource, ReplicaService, SystemdService,
};
use amsu_core::Transport;
use amsu_transfer::LocalTransport;
use anyhow::anyhow;
use clap::Args;

use crate::args::SetupArgs;
use crate::{usage, Exit};

/// Flags of `amsu setup --method physical`.
#[derive(Debug, Args, Clone, Default)]
pub struct PhysicalArgs {
    /// physical: a shell command whose stdout is `mariadb-backup --backup --stream=mbstream`
    /// of the master, e.g. `ssh db1 mariadb-backup --backup --stream=mbstream
    /// --target-dir=/tmp` (credentials from the master host's option file). Default: run
    /// mariadb-backup here, when the master is on this host.
    #[arg(long, value_name = "COMMAND")]
    pub master_backup_command: Option<String>,
    /// physical: the replica's data directory (default: its @@datadir).
    #[arg(long, value_name = "DIR")]
    pub replica_datadir: Option<PathBuf>,
    /// physical: the systemd unit of the replica server (stopped and started around the
    /// data directory swap).
    #[arg(long, value_name = "UNIT")]
    pub replica_service: Option<String>,
    /// physical: a command that stops the replica server and returns once it has stopped.
    #[arg(long, value_name = "COMMAND", requires = "replica_start_command")]
    pub replica_stop_command: Option<String>,
    /// physical: a command that starts the replica server.
    #[arg(long, value_name = "COMMAND", requires = "replica_stop_command")]
    pub replica_start_command: Option<String>,
    /// physical: where the backup is staged and prepared (default DATADIR.amsu-work, next
    /// to the data directory).
    #[arg(long, value_name = "DIR")]
    pub physical_work_dir: Option<PathBuf>,
    /// physical: keep the replica's old data directory (DATADIR.amsu-old-TIME).
    #[arg(long)]
    pub keep_old_datadir: bool,
}

fn is_ftp(s: &str) -> bool {
    s.starts_with("ftp://") || s.starts_with("ftps://")
}

/// The physical method of `amsu setup`.
pub(crate) fn method(a: &SetupArgs) -> Result<CopyMethod, Exit> {
    let p = &a.physical;
    if a.ftp.is_some() {
        return Err(usage(anyhow!(
            "--method physical reads an image with --image DIR|ftp://…, not --ftp"
        )));
    }
    let source = match (&a.image, &p.master_backup_command) {
        (Some(_), Some(_)) => {
            return Err(usage(anyhow!(
                "--image and --master-backup-command exclude each other"
            )))
        }
        (Some(image), None) if amsu_transfer::is_s3_url(image) => PhysicalSource::Image {
            transport: crate::image_cmd::s3(image, &a.s3_options)? as Arc<dyn Transport>,
            dir: String::new(),
        },
        (Some(image), None) if is_ftp(image) => PhysicalSource::Image {
            transport: crate::image_cmd::ftp(image, &a.ftp_options)? as Arc<dyn Transport>,
            dir: String::new(),
        },
        (Some(image), None) => PhysicalSource::Image {
            transport: Arc::new(LocalTransport::new(image)) as Arc<dyn Transport>,
            dir: String::new(),
        },
        (None, Some(cmd)) => PhysicalSource::Command(cmd.clone()),
        (None, None) => PhysicalSource::Local,
    };
    let service: Arc<dyn ReplicaService> = match (
        &p.replica_service,
        &p.replica_stop_command,
        &p.replica_start_command,
    ) {
        (Some(unit), None, None) => Arc::new(SystemdService::new(unit.clone())),
        (None, Some(stop), Some(start)) => Arc::new(CommandService::new(stop, start)),
        _ => {
            return Err(usage(anyhow!(
                "--method physical restarts the replica server: pass --replica-service UNIT, or --replica-stop-command and --replica-start-command"
            )))
        }
    };
    let mut opts = PhysicalOptions::default()
        .keep_old_datadir(p.keep_old_datadir)
        .max_rate(a.max_rate)
        .ionice(!a.no_governor);
    if let Some(d) = &p.replica_datadir {
        opts = opts.datadir(d);
    }
    if let Some(w) = &p.physical_work_dir {
        opts = opts.work_dir(w);
    }
    if let Some(n) = a.threads {
        opts = opts.parallel(n);
    }
    Ok(CopyMethod::Physical {
        source,
        service,
        options: opts,
    })
}
