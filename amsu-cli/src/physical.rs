//! `--method physical`: the flags of `amsu setup` and `amsu backup` for it, and the copier
//! they build (`amsu_backup::PhysicalCopy`).

use std::path::PathBuf;
use std::sync::Arc;

use amsu_backup::{
    backup_image, CommandService, CopyMethod, PhysicalOptions, PhysicalSource, ReplicaService,
    SystemdService,
};
use amsu_core::Transport;
use amsu_transfer::{put_image, FtpConfig, FtpTransport, LocalTransport, RetryPolicy};
use anyhow::{anyhow, Context};
use clap::Args;

use crate::args::{BackupArgs, FtpOptions, SetupArgs};
use crate::image_cmd::shown;
use crate::{exit, master_addr, secrets, usage, Exit};

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

fn ftp(url: &str, o: &FtpOptions) -> Result<FtpTransport, Exit> {
    let mut c = FtpConfig::from_url(url).map_err(usage)?;
    if let Some(p) =
        secrets::password(o.ftp_password_file.as_deref(), "AMSU_FTP_PASSWORD").map_err(usage)?
    {
        c = c.password(p);
    }
    if let Some(ca) = &o.ftp_ca_file {
        c = c.ca_file(ca);
    }
    if o.ftp_insecure {
        c = c.insecure(true);
    }
    FtpTransport::new(c).map_err(usage)
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
            transport: Arc::new(ftp(image, &a.ftp_options)?) as Arc<dyn Transport>,
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

/// `amsu backup --method physical`: mariadb-backup on this host (the master's), an image
/// with a manifest of checksums, uploaded when `--out` is ftp://….
pub(crate) async fn backup(a: BackupArgs) -> Result<i32, Exit> {
    let master = master_addr(&a.master, &a.passwords)?;
    // A staging directory (for FTP) is removed on every way out, failures included.
    let (staging, remote) = if amsu_transfer::is_s3_url(&a.out) {
        (
            Some(crate::image_cmd::Staging::new("physical")),
            Some(crate::image_cmd::s3(&a.out, &a.s3_options)? as Arc<dyn Transport>),
        )
    } else if is_ftp(&a.out) {
        (
            Some(crate::image_cmd::Staging::new("physical")),
            Some(Arc::new(ftp(&a.out, &a.ftp_options)?) as Arc<dyn Transport>),
        )
    } else {
        (None, None)
    };
    let dir = staging
        .as_ref()
        .map_or_else(|| PathBuf::from(&a.out), |s| s.0.clone());
    let image = backup_image(&master, &dir, None)
        .await
        .with_context(|| format!("physical backup of {master} failed"))
        .map_err(|e| Exit(exit::FAILED, e))?;
    if let Some(t) = &remote {
        let put = put_image(
            &dir,
            &**t,
            "",
            a.threads.unwrap_or(2),
            &RetryPolicy::default(),
            &|_, _| {},
        )
        .await;
        drop(staging);
        put.context("uploading the image")
            .map_err(|e| Exit(exit::FAILED, e))?;
    }
    let bytes: u64 = image.manifest.files.iter().map(|f| f.size).sum();
    if a.json {
        crate::json::emit(crate::json::Body::Manifest {
            location: shown(&a.out),
            manifest: crate::json::value(&image.manifest),
            report: crate::json::value(&image.info),
            upload: None,
        });
        crate::finish(crate::json::CommandName::Backup, true, exit::OK);
    } else {
        outln!(
            "Physical image written to {}: {} files, {:.1} MiB, snapshot at {}",
            shown(&a.out),
            image.manifest.files.len(),
            bytes as f64 / 1048576.0,
            image.manifest.coordinates
        );
        if let Some(ms) = image.info.commit_blocked_ms {
            outln!("  master commits blocked for {ms:.1} ms");
        }
    }
    Ok(exit::OK)
}
