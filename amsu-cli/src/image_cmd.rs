//! `amsu backup`, `amsu restore`, and the copiers of `amsu setup` other than `logical`
//! (`--method outfile`, `--image`).

use std::path::PathBuf;
use std::sync::Arc;

use amsu_backup::facade::UploadReport;
use amsu_backup::{
    BackupConfig, BackupFailure, BackupMethod, BackupTarget, CopyMethod, GovernorOptions,
    ImageInfo, ImageKey, ImageSource, ImageWriter, LogicalOptions, RestoreConfig, RestoreFailure,
    SetupError, StartReplication,
};
use amsu_core::EventSink;
use amsu_transfer::{is_s3_url, FtpConfig, FtpTransport, S3Config, S3Credentials, S3Transport};
use anyhow::anyhow;

use crate::args::{BackupArgs, FtpOptions, Method, RestoreArgs, S3Options, SetupArgs};
use crate::render::Renderer;
use crate::{exit, master_addr, replica_addr, secrets, usage, Exit};

/// A location as shown in messages: a password in a URL is left out.
pub(crate) use amsu_core::human::without_password as shown;

fn is_ftp(s: &str) -> bool {
    s.starts_with("ftp://") || s.starts_with("ftps://")
}

/// An FTP transport for `url` with the password and TLS options.
pub(crate) fn ftp(url: &str, o: &FtpOptions) -> Result<Arc<FtpTransport>, Exit> {
    Ok(Arc::new(
        FtpTransport::new(ftp_config(url, o)?).map_err(usage)?,
    ))
}

/// For uploads: a transport rooted at the login directory and the URL's (relative) path
/// as the image directory, created if missing.
fn ftp_upload(url: &str, o: &FtpOptions) -> Result<(Arc<FtpTransport>, String), Exit> {
    let c = ftp_config(url, o)?;
    let root = c.root_dir().to_string();
    if root.starts_with('/') || root.is_empty() {
        return Ok((
            Arc::new(FtpTransport::new(c).map_err(usage)?),
            String::new(),
        ));
    }
    let c = c.root("").map_err(usage)?;
    Ok((Arc::new(FtpTransport::new(c).map_err(usage)?), root))
}

fn ftp_config(url: &str, o: &FtpOptions) -> Result<FtpConfig, Exit> {
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
    Ok(c)
}

/// An S3 transport rooted at `s3://BUCKET/PREFIX`, with the endpoint, region and
/// credentials of the options (never from the command line).
pub(crate) fn s3(url: &str, o: &S3Options) -> Result<Arc<S3Transport>, Exit> {
    let creds = S3Credentials::resolve(o.s3_credentials_file.as_deref()).map_err(usage)?;
    let c = S3Config::from_url(url)
        .map_err(usage)?
        .endpoint(o.s3_endpoint.clone())
        .region(o.s3_region.clone())
        .path_style(o.s3_path_style)
        .credentials(creds);
    Ok(Arc::new(S3Transport::new(c).map_err(usage)?))
}

/// A unique path for `what` in the temporary directory.
fn scratch(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("amsu-{what}-{}-{nanos:x}", std::process::id()))
}

/// The image key in `file` (never shown: a refusal names the file only).
fn image_key(file: Option<&std::path::Path>) -> Result<Option<ImageKey>, Exit> {
    file.map(|f| ImageKey::from_file(f).map_err(usage))
        .transpose()
}

fn image_source(image: &str, o: &FtpOptions, s3o: &S3Options) -> Result<ImageSource, Exit> {
    if is_s3_url(image) {
        Ok(ImageSource::Remote {
            transport: s3(image, s3o)?,
            dir: String::new(),
            work_dir: scratch("restore"),
        })
    } else if is_ftp(image) {
        let t = ftp(image, o)?;
        Ok(ImageSource::Remote {
            transport: t,
            dir: String::new(),
            work_dir: scratch("restore"),
        })
    } else {
        Ok(ImageSource::Local(PathBuf::from(image)))
    }
}

/// The copy method of `amsu setup` from `--method`, `--image` and `--ftp` (its secrets
/// read here).
pub(crate) fn copy_method(a: &SetupArgs) -> Result<CopyMethod, Exit> {
    let threads = a.threads.unwrap_or(2).max(1);
    let method = a.resolved_method().0;
    if method == Method::Physical {
        if a.image_key.is_some() {
            return Err(usage(anyhow!(
                "--image-key checks logical images; a physical image is not signed"
            )));
        }
        return crate::physical::method(a);
    }
    if let Some(image) = &a.image {
        if method != Method::Logical {
            return Err(usage(anyhow!("--image and --method exclude each other")));
        }
        return Ok(CopyMethod::Image {
            source: image_source(image, &a.ftp_options, &a.s3_options)?,
            threads,
            key: image_key(a.image_key.as_deref())?,
        });
    }
    match method {
        Method::Logical | Method::Auto => {
            if a.ftp.is_some() {
                return Err(usage(anyhow!(
                    "--ftp is only used by --method outfile (or --image ftp://…)"
                )));
            }
            let mut options = LogicalOptions::default()
                .governor(
                    GovernorOptions::default()
                        .adaptive(!a.no_governor)
                        .max_rate(a.max_rate),
                )
                .bulk_load(a.bulk_load);
            if let Some(n) = a.threads {
                options = options.threads(n);
            }
            if let Some(bytes) = a.chunk_size {
                options = options.chunk_bytes(bytes);
            }
            Ok(CopyMethod::Logical { options })
        }
        Method::Outfile => {
            let url = a.ftp.as_deref().ok_or_else(|| {
                usage(anyhow!(
                    "--method outfile needs --ftp ftp://USER@HOST[:PORT]/PATH serving the master's secure_file_priv directory"
                ))
            })?;
            Ok(CopyMethod::Outfile {
                ftp: ftp(url, &a.ftp_options)?,
                threads,
                keep_image: a.keep_image,
                chunk_bytes: a.chunk_size,
            })
        }
        Method::Physical => unreachable!("handled above"),
    }
}

/// `amsu backup`.
pub(crate) async fn backup(a: BackupArgs) -> Result<i32, Exit> {
    if a.method == Method::Physical && a.image_key.is_some() {
        return Err(usage(anyhow!(
            "--image-key signs logical images; a physical image is not signed"
        )));
    }
    if a.method == Method::Outfile {
        return Err(usage(anyhow!(
            "amsu backup does not make outfile images: --method outfile is a method of \
             `amsu setup` (the master writes the image into its secure_file_priv directory \
             for one replica). Use --method logical (the default) for a reusable image, or \
             --method physical"
        )));
    }
    if !is_ftp(&a.out) && !is_s3_url(&a.out) {
        amsu_backup::facade::clear_local_target(std::path::Path::new(&a.out), a.overwrite)
            .map_err(|e| backup_error(&a, e))?;
    }
    let physical = a.method == Method::Physical;
    let master = master_addr(&a.master, &a.passwords)?;
    let key = image_key(a.image_key.as_deref())?;
    let threads = a.threads.unwrap_or(2);
    let target = if physical && (is_s3_url(&a.out) || is_ftp(&a.out)) {
        // A physical image is staged, then uploaded into the URL's directory.
        let transport: Arc<dyn amsu_core::Transport> = if is_s3_url(&a.out) {
            s3(&a.out, &a.s3_options)?
        } else {
            ftp(&a.out, &a.ftp_options)?
        };
        BackupTarget::Staged {
            transport,
            dir: String::new(),
            streams: threads,
        }
    } else if is_s3_url(&a.out) {
        let t = s3(&a.out, &a.s3_options)?;
        // Files in flight: the store's parallel streams, at least --threads.
        let streams = t.config().stream_count().max(threads);
        BackupTarget::Streamed {
            transport: t,
            streams,
        }
    } else if is_ftp(&a.out) {
        let (t, dir) = ftp_upload(&a.out, &a.ftp_options)?;
        BackupTarget::Staged {
            transport: t,
            dir,
            streams: threads,
        }
    } else {
        // Checked above.
        BackupTarget::Local(PathBuf::from(&a.out))
    };
    let config = BackupConfig::new(master, target)
        .method(if physical {
            BackupMethod::Physical
        } else {
            BackupMethod::Logical
        })
        .threads(threads)
        .zstd(a.zstd_level().0)
        .key(key)
        .chunk_bytes(a.chunk_size)
        .overwrite(a.overwrite);
    let renderer = Arc::new(Renderer::new(a.json));
    let sink: Arc<dyn EventSink> = renderer.clone();
    let result = amsu_backup::backup(&config, sink).await;
    renderer.finish();
    let done = result.map_err(|e| backup_error(&a, e))?;
    if let Some(info) = &done.physical {
        say_physical(&a, &done.manifest, info);
        return Ok(exit::OK);
    }
    say_backup(
        &a,
        &done.manifest,
        &done.report,
        done.upload.as_ref().map(|u| upload_json(u, &a)),
    );
    Ok(exit::OK)
}

/// The exit code and message of a failed backup.
fn backup_error(a: &BackupArgs, e: BackupFailure) -> Exit {
    match e {
        BackupFailure::ImageExists { dir } => Exit(
            exit::PRECONDITION,
            anyhow!(
                "{} already holds an image ({} exists); nothing was changed. Pass \
                 --overwrite to replace it, or choose another --out",
                a.out,
                dir.join(amsu_core::manifest::MANIFEST_FILE).display()
            ),
        ),
        BackupFailure::Overwrite { source, .. } => Exit(
            exit::FAILED,
            anyhow::Error::new(source).context(format!(
                "--overwrite: cannot remove the old image {}",
                a.out
            )),
        ),
        BackupFailure::Prepare(source) => Exit(
            exit::FAILED,
            anyhow::Error::new(source)
                .context(format!("preparing the upload to {}", shown(&a.out))),
        ),
        e => Exit(exit::FAILED, e.into()),
    }
}

/// The `upload` object of the `manifest` JSON line.
fn upload_json(u: &UploadReport, a: &BackupArgs) -> serde_json::Value {
    let mut v = serde_json::json!({
        "bytes": u.bytes,
        "seconds": u.seconds,
        "compression": compression_json(a),
        "streams": u.streams,
        "mb_per_s": u.mb_per_s,
        "mb_per_s_per_stream": u.mb_per_s_per_stream,
    });
    if let Some(after) = u.seconds_after_dump {
        v["seconds_after_dump"] = after.into();
        v["streamed"] = true.into();
        v["files"] = u.files.unwrap_or(0).into();
        v["files_skipped"] = u.files_skipped.unwrap_or(0).into();
        v["bytes_skipped"] = u.bytes_skipped.unwrap_or(0).into();
    }
    v
}

/// How the chunks were compressed, and why (`zstd` multi-threaded, or `none`).
fn compression_json(a: &BackupArgs) -> serde_json::Value {
    let (level, why) = a.zstd_level();
    serde_json::json!({
        "codec": if level.is_some() { "zstd" } else { "none" },
        "level": level,
        "workers_per_chunk": level.map(|_| ImageWriter::auto_zstd_workers(a.threads.unwrap_or(2))),
        "why": why,
    })
}

/// The closing lines of `amsu backup --method physical`.
fn say_physical(a: &BackupArgs, manifest: &amsu_core::manifest::Manifest, info: &ImageInfo) {
    if a.json {
        crate::json::emit(crate::json::Body::Manifest {
            location: shown(&a.out),
            manifest: crate::json::value(manifest),
            report: crate::json::value(info),
            upload: None,
        });
        crate::finish(crate::json::CommandName::Backup, true, exit::OK);
    } else {
        let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
        outln!(
            "Physical image written to {}: {} files, {}, snapshot at {}",
            shown(&a.out),
            manifest.files.len(),
            amsu_core::human::bytes(bytes),
            manifest.coordinates
        );
        if let Some(ms) = info.commit_blocked_ms {
            outln!("  master commits blocked for {ms:.1} ms");
        }
    }
}

/// The closing lines of `amsu backup`.
fn say_backup(
    a: &BackupArgs,
    manifest: &amsu_core::manifest::Manifest,
    report: &amsu_core::CopyReport,
    upload: Option<serde_json::Value>,
) {
    if a.json {
        crate::json::emit(crate::json::Body::Manifest {
            location: shown(&a.out),
            manifest: crate::json::value(&manifest),
            report: crate::json::value(&report),
            upload: upload.clone(),
        });
        crate::finish(crate::json::CommandName::Backup, true, exit::OK);
    } else {
        outln!(
            "Image written to {}: {} tables, {} rows in {} files, snapshot at {}",
            shown(&a.out),
            report.tables,
            report.rows,
            manifest.files.len(),
            manifest.coordinates
        );
        outln!(
            "  master commits blocked for {:.1} ms",
            report.commit_blocked_ms
        );
        if let Some(u) = &upload {
            outln!(
                "  uploaded {:.1} MB in {:.1} s: {:.1} MB/s in total, {:.1} MB/s per stream ({} streams)",
                u["bytes"].as_f64().unwrap_or(0.0) / 1e6,
                u["seconds"].as_f64().unwrap_or(0.0),
                u["mb_per_s"].as_f64().unwrap_or(0.0),
                u["mb_per_s_per_stream"].as_f64().unwrap_or(0.0),
                u["streams"]
            );
            if let Some(c) = u.get("compression") {
                outln!(
                    "  compression: {} ({})",
                    c["codec"].as_str().unwrap_or("none"),
                    c["why"].as_str().unwrap_or("")
                );
            }
            if u["files_skipped"].as_u64().unwrap_or(0) > 0 {
                outln!(
                    "  {} files ({:.1} MB) were already in the store with the right checksum and were not sent again",
                    u["files_skipped"],
                    u["bytes_skipped"].as_f64().unwrap_or(0.0) / 1e6
                );
            }
        }
    }
}

/// The replication start of `amsu restore --start-replication` from `master`, with the
/// replication password `pw` found.
pub(crate) fn start_replication(
    a: &RestoreArgs,
    master: &amsu_core::ServerAddr,
    pw: &crate::repl_creds::ReplPassword,
) -> StartReplication {
    StartReplication::new(master.clone()).replication(crate::with_repl_password(
        crate::replication_settings(
            &a.repl_user,
            a.master_host_for_replica.clone(),
            &a.repl_tls,
            a.gtid,
            a.journal.clone(),
        ),
        pw,
    ))
}

/// The restore of `amsu restore` into `replica`, with the replication start `start`.
pub(crate) fn restore_config(
    a: &RestoreArgs,
    replica: amsu_core::ServerAddr,
    start: Option<StartReplication>,
) -> Result<RestoreConfig, Exit> {
    if start.is_none() && a.repl_tls.tls() != amsu_core::ReplicationTls::off() {
        return Err(usage(anyhow!(
            "the --repl-ssl options are used with --start-replication only"
        )));
    }
    Ok(RestoreConfig::new(
        image_source(&a.image, &a.ftp_options, &a.s3_options)?,
        replica,
    )
    .threads(a.threads.unwrap_or(2))
    .key(image_key(a.image_key.as_deref())?)
    .force(a.force)
    .start_replication(start))
}

/// `amsu restore`.
pub(crate) async fn restore(a: RestoreArgs) -> Result<i32, Exit> {
    let replica = replica_addr(&a.replica[0], &a.passwords)?;
    let master = match (&a.master, a.start_replication) {
        (Some(m), true) => Some(master_addr(m, &a.passwords)?),
        (None, true) => {
            return Err(usage(anyhow!(
                "--start-replication needs --master URL (the replication credentials)"
            )))
        }
        (_, false) => None,
    };
    // The replication password: given, saved by an earlier run, or generated (kept once
    // the master accepts it), as `amsu setup` finds it.
    let repl_pw = match &master {
        Some(m) => Some(
            crate::repl_creds::resolve(a.passwords.repl_password_file.as_deref(), m, &a.repl_user)
                .map_err(usage)?,
        ),
        None => None,
    };
    let start = match (&master, &repl_pw) {
        (Some(m), Some(pw)) => Some(start_replication(&a, m, pw)),
        _ => None,
    };
    let config = restore_config(&a, replica.clone(), start)?;
    if config.replication().is_some() {
        // The replication start runs the setup plan: Ctrl-C stops it like a failure
        // (resumable from the journal).
        crate::interrupt::install();
    }
    if let Some(path) = repl_pw.as_ref().and_then(|p| p.from_saved.as_ref()) {
        if !a.json {
            errln!(
                "Using the replication password of '{}' saved in {}.",
                a.repl_user,
                path.display()
            );
        }
    }
    let renderer = Arc::new(Renderer::new(a.json));
    let sink: Arc<dyn EventSink> = renderer.clone();
    let result = amsu_backup::restore(&config, sink, crate::interrupt::token()).await;
    renderer.finish();
    if let (Some(m), Some(pw)) = (&master, &repl_pw) {
        // Past the checks, the password may be the replication user's now: keep it.
        let keep = match &result {
            Ok(_) => true,
            Err(e) => !e.changed_nothing(),
        };
        if keep {
            crate::repl_creds::save_and_say(
                pw,
                m,
                &amsu_mysql::MysqlMaster::new(m.clone()),
                a.json,
            )
            .await;
        }
    }
    let done = match result {
        Ok(done) => done,
        Err(RestoreFailure::Setup(SetupError::Setup(e))) => {
            // The setup plan failed: reported as `amsu setup` reports it.
            let code = crate::report_error_of(crate::json::CommandName::Restore, &e, a.json);
            crate::interrupt::explain(&e, &amsu_backup::default_journal_path(&replica), a.json);
            return Ok(code);
        }
        Err(e) => return Err(restore_error(&a, &replica, e)),
    };
    let lines = restored_lines(&a.image, a.json, &replica, &done);
    if a.json {
        outln!("{lines}");
        crate::finish(crate::json::CommandName::Restore, true, exit::OK);
    } else {
        if let Some(n) = done.resumed_chunks {
            errln!(
                "Resumed the interrupted restore of {} into {replica}: {n} chunks already loaded before this run",
                shown(&a.image)
            );
        }
        outln!("{lines}");
    }
    Ok(exit::OK)
}

/// What a finished restore into `replica` says (JSON: its `restored` line).
pub(crate) fn restored_lines(
    image: &str,
    json: bool,
    replica: &amsu_core::ServerAddr,
    done: &amsu_backup::RestoreReport,
) -> String {
    let status = done.setup.as_ref().map(|s| &s.replication);
    if json {
        return crate::json::line(&crate::json::Body::Restored {
            image: shown(image),
            report: crate::json::value(&done.report),
            replication: status.map(crate::json::value),
        });
    }
    let mut text = format!(
        "Image {} restored into {replica}: {} tables, {} rows; snapshot at {}",
        shown(image),
        done.report.tables,
        done.report.rows,
        done.manifest.coordinates
    );
    if status.is_some() {
        text.push_str(&format!(
            "\n  replication started from {}",
            done.manifest.coordinates
        ));
    }
    text
}

/// The exit code and message of a failed restore.
fn restore_error(a: &RestoreArgs, replica: &amsu_core::ServerAddr, e: RestoreFailure) -> Exit {
    let context = failure_context(&a.image, replica, &e);
    match e {
        RestoreFailure::SameServer(f) => Exit(
            exit::PRECONDITION,
            anyhow!("{}; nothing was changed. Fix: {}", f.problem, f.fix),
        ),
        RestoreFailure::Identity(e) => Exit(exit::PRECONDITION, anyhow!("{e}")),
        RestoreFailure::Image(e) => Exit(
            exit::PRECONDITION,
            anyhow::Error::new(e).context(context.unwrap_or_default()),
        ),
        RestoreFailure::ReplicaNotEmpty { .. } => {
            Exit(exit::PRECONDITION, anyhow!(context.unwrap_or_default()))
        }
        RestoreFailure::Load(e) => Exit(
            exit::FAILED,
            anyhow!("{e}").context(context.unwrap_or_default()),
        ),
        RestoreFailure::Setup(SetupError::Setup(e)) => {
            let code = exit::of(&e);
            Exit(
                code,
                anyhow::Error::new(e).context(context.unwrap_or_default()),
            )
        }
        e => Exit(exit::FAILED, e.into()),
    }
}

/// What the command line says about a failed restore of `image` into `replica`: the
/// context put before the library's message (the whole message for a replica holding
/// databases); `None` when the library's message says it all.
pub(crate) fn failure_context(
    image: &str,
    replica: &amsu_core::ServerAddr,
    e: &RestoreFailure,
) -> Option<String> {
    match e {
        RestoreFailure::Image(e) => Some(format!(
            "the image {} {}; nothing was changed on {replica}",
            shown(image),
            if e.is_refusal() {
                "is refused"
            } else {
                "cannot be read"
            }
        )),
        RestoreFailure::ReplicaNotEmpty { databases } => Some(format!(
            "the replica {replica} already holds databases ({}); nothing was changed. \
             Restore into an empty server, or pass --force to restore next to them \
             (the image's tables must not exist there)",
            databases.join(", ")
        )),
        RestoreFailure::Load(_) | RestoreFailure::Setup(_) => {
            Some(format!("restore of {} into {replica} failed", shown(image)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::restore_error;
    use crate::args::{Cli, Command, RestoreArgs};
    use crate::exit;
    use amsu_backup::RestoreFailure;
    use amsu_core::{Finding, FindingCode, Role};
    use clap::Parser;

    fn restore_args() -> RestoreArgs {
        let cli = Cli::try_parse_from([
            "amsu",
            "restore",
            "--image",
            "/var/tmp/img",
            "--replica",
            "mysql://root@db2",
        ])
        .unwrap();
        match cli.command {
            Command::Restore(a) => a,
            _ => unreachable!(),
        }
    }

    /// Each failure of the library's restore keeps the exit code and words the command
    /// line had: refusals before any change exit 3 and name the flag that overrides.
    #[test]
    fn restore_failures_keep_their_exit_codes() {
        let a = restore_args();
        let replica: amsu_core::ServerAddr = "mysql://root@db2".parse().unwrap();
        let e = restore_error(
            &a,
            &replica,
            RestoreFailure::ReplicaNotEmpty {
                databases: vec!["shop".into(), "crm".into()],
            },
        );
        assert_eq!(e.0, exit::PRECONDITION);
        let msg = format!("{:#}", e.1);
        assert!(msg.contains("already holds databases (shop, crm)"), "{msg}");
        assert!(msg.contains("--force"), "{msg}");

        let same = Finding::blocking(
            Role::Replica,
            FindingCode::SameServer,
            "the master and the replica are the same server",
            "name two servers",
        );
        let e = restore_error(&a, &replica, RestoreFailure::SameServer(same));
        assert_eq!(e.0, exit::PRECONDITION);
        assert!(format!("{:#}", e.1).contains("same server"));

        let e = restore_error(&a, &replica, RestoreFailure::Load("cut".into()));
        assert_eq!(e.0, exit::FAILED);
        let msg = format!("{:#}", e.1);
        assert!(
            msg.contains("restore of /var/tmp/img into") && msg.contains("cut"),
            "{msg}"
        );
    }
}
