//! Command-line arguments (the CLI contract of DESIGN.md; stable).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// amsu — auto-magic slave setup: turn an empty MySQL/MariaDB server into a verified,
/// running replica of a live master with one command.
#[derive(Debug, Parser)]
#[command(
    name = "amsu",
    version,
    about,
    long_about = None,
    after_help = TOP_HELP,
)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

const TOP_HELP: &str = "\
Examples:
  amsu demo                                   # the whole job on two local sandboxes
  amsu check --master mysql://root@db1 --replica mysql://root@127.0.0.1
  amsu setup --master mysql://root@db1 --replica mysql://root@127.0.0.1 --dry-run
  amsu status --replica mysql://root@127.0.0.1 --max-lag 60

Servers are URLs: mysql://USER[:PASSWORD]@HOST[:PORT], or a unix socket:
mysql://USER@localhost/?socket=/run/mysqld/mysqld.sock. Passwords (never in argv): the
--…-password-file flags, the exported variables AMSU_MASTER_PASSWORD,
AMSU_REPLICA_PASSWORD, AMSU_ADMIN_PASSWORD, AMSU_REPL_PASSWORD, AMSU_FTP_PASSWORD, an
option file (--defaults-file, else ~/.my.cnf: [amsu-master] / [amsu-replica] over
[client]), or --ask-pass on a terminal.

Exit codes: 0 done; 1 failed while changing things; 2 usage; 3 a precondition failed
(nothing was changed); amsu status also 4, 5, 6 (see amsu status --help).
--json: one JSON object per line, each with \"v\": 1 and an \"event\"; the last one is a
\"result\" or an \"error\" (schema: docs/amsu-json.schema.json).
Colour on a terminal; NO_COLOR=1 turns it off.";

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Turn the replica into a running replica of the master.
    #[command(after_help = "Examples:
  # see the checks, the plan and every statement; nothing is changed
  amsu setup --master mysql://root@db1 --replica mysql://root@127.0.0.1 --dry-run
  # do it, waiting until the replica has caught up, then prove the data equal
  export AMSU_MASTER_PASSWORD AMSU_REPLICA_PASSWORD
  amsu setup --master mysql://root@db1 --replica mysql://root@127.0.0.1 --yes --verify
  # a replica holding old data: drop it (the plan lists what)
  amsu setup --master mysql://root@db1 --replica mysql://root@127.0.0.1 --yes --force

Exit codes: 0 done; 1 failed (or was interrupted) while changing \
things: the message says what was left behind, the journal records it, and rerunning the same \
command resumes; 2 usage; 3 a precondition failed, or the run was interrupted before it changed \
anything. SIGINT, SIGTERM, SIGHUP and a closed stdout stop the run at a safe point; a second \
signal exits at once (1). A replication password amsu generates is kept in \
~/.amsu/repl/MASTERHOST_PORT.cnf ($AMSU_HOME/repl/…) for the next replica of the same master.")]
    Setup(SetupArgs),
    /// Preflight report: every problem and its fix; changes nothing.
    #[command(
        after_help = "Examples:
  amsu check --master mysql://root@db1
  amsu check --master mysql://root@db1 --replica mysql://root@127.0.0.1 --json

Exit codes: 0 nothing blocking; 2 usage; 3 a blocking finding, or a server cannot be \
reached or read.",
        mut_arg("repl_password_file", |a| a.hide(true)),
    )]
    Check(CheckArgs),
    /// Replication status of a replica; the exit code says whether it replicates.
    #[command(
        after_help = "Examples:
  amsu status --replica mysql://root@127.0.0.1
  amsu status --replica mysql://monitor@127.0.0.1 --max-lag 60 --json   # for monitoring

Exit codes: 0 replicating (both threads run, no error, lag within \
--max-lag); 1 the replica cannot be reached or read; 2 usage; 4 not configured as a replica; \
5 a replication thread is stopped or an error is set; 6 the lag exceeds --max-lag (or is \
unknown while --max-lag is given).",
        mut_arg("master_password_file", |a| a.hide(true)),
        mut_arg("admin_password_file", |a| a.hide(true)),
        mut_arg("repl_password_file", |a| a.hide(true)),
    )]
    Status(StatusArgs),
    /// Compare master and replica data (every table's checksum at one position).
    #[command(after_help = "Examples:
  amsu verify --master mysql://root@db1 --replica mysql://root@127.0.0.1
  amsu verify --master mysql://root@db1 --replica mysql://root@127.0.0.1 --json --timeout 60

Exit codes: 0 equal; 1 different, or the comparison failed; 2 usage.",
        mut_arg("admin_password_file", |a| a.hide(true)),
        mut_arg("repl_password_file", |a| a.hide(true)),
    )]
    Verify(VerifyArgs),
    /// Write one consistent image of the master (reusable by many replicas).
    #[command(after_help = "Examples:
  amsu backup --master mysql://root@db1 --out /var/backups/db1-image --zstd
  amsu backup --master mysql://root@db1 --out /var/backups/db1-image --overwrite
  AMSU_FTP_PASSWORD=… amsu backup --master mysql://root@db1 --out ftp://amsu@files/db1

Exit codes: 0 done; 1 failed; 2 usage (e.g. --method outfile, which only `amsu setup` \
does); 3 the image already exists (give --overwrite).",
        mut_arg("replica_password_file", |a| a.hide(true)),
        mut_arg("admin_password_file", |a| a.hide(true)),
        mut_arg("repl_password_file", |a| a.hide(true)),
    )]
    Backup(BackupArgs),
    /// Load an image into a replica (and optionally start replicating).
    #[command(after_help = "Examples:
  amsu restore --image /var/backups/db1-image --replica mysql://root@127.0.0.1
  amsu restore --image /var/backups/db1-image --replica mysql://root@127.0.0.1 \\
      --start-replication --master mysql://root@db1

Exit codes: 0 done; 1 failed while changing things (the message says what was left \
behind); 2 usage; 3 a precondition failed (nothing was changed).",
        mut_arg("admin_password_file", |a| a.hide(true)),
    )]
    Restore(RestoreArgs),
    /// Throwaway local MariaDB servers.
    #[command(after_help = "Examples:
  amsu sandbox deploy m1 --server-id 1
  amsu sandbox list
  amsu sandbox stop m1 --remove")]
    Sandbox(SandboxArgs),
    /// The whole job on two local sandboxes, under a write load.
    #[command(after_help = "Examples:
  amsu demo
  amsu demo --rows 1000000 --keep")]
    Demo(DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:
  amsu completions bash > /etc/bash_completion.d/amsu
  amsu completions zsh > \"${fpath[1]}/_amsu\"
  amsu completions fish > ~/.config/fish/completions/amsu.fish")]
    Completions(CompletionsArgs),
    /// Print the man page (roff) of amsu or of one of its commands.
    #[command(after_help = "Examples:
  amsu man | man -l -
  amsu man setup > amsu-setup.1")]
    Man(ManArgs),
}

impl Command {
    /// The command, when it prints JSON lines (`--json`).
    pub fn json(&self) -> Option<crate::json::CommandName> {
        use crate::json::CommandName as N;
        match self {
            Command::Setup(a) if a.json => Some(N::Setup),
            Command::Check(a) if a.json => Some(N::Check),
            Command::Status(a) if a.json => Some(N::Status),
            Command::Verify(a) if a.json => Some(N::Verify),
            Command::Backup(a) if a.json => Some(N::Backup),
            Command::Restore(a) if a.json => Some(N::Restore),
            _ => None,
        }
    }
}

/// `amsu completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `amsu man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (default: amsu itself).
    pub command: Option<String>,
}

/// `amsu completions SHELL`: the script on stdout.
pub(crate) fn completions(a: CompletionsArgs) -> Result<i32, crate::Exit> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "amsu", &mut buf);
    outln!("{}", String::from_utf8_lossy(&buf).trim_end());
    Ok(crate::exit::OK)
}

/// `amsu man [COMMAND]`: the roff page on stdout.
pub(crate) fn man(a: ManArgs) -> Result<i32, crate::Exit> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    cmd.build();
    let page = match &a.command {
        None => clap_mangen::Man::new(cmd),
        Some(name) => {
            let sub = cmd
                .find_subcommand(name)
                .cloned()
                .ok_or_else(|| crate::usage(anyhow::anyhow!("amsu has no command {name:?}")))?;
            clap_mangen::Man::new(sub).title(format!("amsu-{name}"))
        }
    };
    let mut buf = Vec::new();
    page.render(&mut buf)
        .map_err(|e| crate::Exit(crate::exit::FAILED, e.into()))?;
    outln!("{}", String::from_utf8_lossy(&buf).trim_end());
    Ok(crate::exit::OK)
}

/// Whether `amsu backup` compresses the image's chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compress {
    /// zstd when the image goes to a remote store, else none.
    Auto,
    /// Always zstd (multi-threaded).
    Zstd,
    /// Never.
    None,
}

impl BackupArgs {
    /// The zstd level the chunks are compressed with (`None`: plain), and why.
    pub fn zstd_level(&self) -> (Option<i32>, &'static str) {
        let remote = self.out.contains("://");
        let asked = |level: i32| Some(self.zstd_level.unwrap_or(level));
        match (self.zstd, self.compress) {
            (true, _) | (false, Compress::Zstd) => (
                asked(amsu_backup::BackupConfig::AUTO_ZSTD_LEVEL),
                "asked for",
            ),
            (false, Compress::None) => (None, "asked for"),
            (false, Compress::Auto) => match amsu_backup::BackupConfig::auto_zstd(remote) {
                Some(level) => (
                    asked(level),
                    "automatic: the image goes to a remote store, slower than the dump",
                ),
                None => (None, "automatic: a local directory"),
            },
        }
    }
}

/// How the data is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Choose (the default of `setup`): physical when its flags are given (the replica's
    /// service or stop/start commands, or a master backup command), outfile when --ftp
    /// is given, else logical; an --image is restored. The choice and why are printed.
    Auto,
    /// Parallel consistent snapshot over the MySQL protocol, loaded with LOAD DATA.
    Logical,
    /// The master writes the image with SELECT … INTO OUTFILE; fetched over FTP.
    Outfile,
    /// mariadb-backup on the master host.
    Physical,
}

/// Password sources shared by commands.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Passwords")]
pub struct PasswordFiles {
    /// File holding the master user's password (else AMSU_MASTER_PASSWORD, else the URL).
    #[arg(long, value_name = "FILE")]
    pub master_password_file: Option<PathBuf>,
    /// File holding the replica user's password (else AMSU_REPLICA_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub replica_password_file: Option<PathBuf>,
    /// File holding the admin user's password (else AMSU_ADMIN_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// File holding the replication user's password (else AMSU_REPL_PASSWORD, else the
    /// one amsu saved for this master in ~/.amsu/repl/). When FILE does not exist, amsu
    /// writes the password it uses there (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub repl_password_file: Option<PathBuf>,
    /// A MySQL option file read instead of ~/.my.cnf: `password`, `user`, `port` and
    /// `socket` (for host localhost) from its `[amsu-master]` / `[amsu-replica]` section,
    /// else from `[client]`, where the URL does not give them.
    #[arg(long, value_name = "FILE")]
    pub defaults_file: Option<PathBuf>,
    /// Ask on the terminal for passwords not given otherwise (fails without a terminal).
    #[arg(long)]
    pub ask_pass: bool,
}

/// `amsu setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The master: mysql://USER[:PASSWORD]@HOST[:PORT].
    #[arg(long, value_name = "URL", help_heading = "Servers")]
    pub master: String,
    /// The replica: mysql://USER[:PASSWORD]@HOST[:PORT]. Give it several times to seed
    /// many replicas from one read of the master (fan-out): the master is dumped once
    /// into a spool image (--spool) and every replica is loaded from it in parallel, each
    /// with its own journal, progress and verify; one failing replica does not stop the
    /// others.
    #[arg(long, value_name = "URL", help_heading = "Servers", required = true)]
    pub replica: Vec<String>,
    /// Fan-out options (several --replica).
    #[command(flatten)]
    pub fanout: Box<FanoutArgs>,
    /// Seeding from a donor replica (--donor).
    #[command(flatten)]
    pub donor: Box<DonorArgs>,
    /// A master user with CREATE USER (and SUPER for server_id), when the master URL's
    /// user lacks them. Password from AMSU_ADMIN_PASSWORD or --admin-password-file.
    #[arg(long, value_name = "USER", help_heading = "Servers")]
    pub admin_user: Option<String>,
    /// The replication user (created if missing).
    #[arg(
        long,
        value_name = "USER",
        default_value = "amsu_repl",
        help_heading = "Servers"
    )]
    pub repl_user: String,
    /// The host the replica uses to reach the master [default: the master URL's host].
    #[arg(long, value_name = "HOST", help_heading = "Servers")]
    pub master_host_for_replica: Option<String>,
    /// How the data is copied.
    #[arg(long, value_enum, default_value_t = Method::Auto, help_heading = "Copy")]
    pub method: Method,
    /// Replication TLS options.
    #[command(flatten)]
    pub repl_tls: Box<ReplTlsArgs>,
    /// Replicate with GTID positioning (MariaDB MASTER_USE_GTID=slave_pos, starting at the
    /// snapshot's GTID position) and wait for catch-up by GTID; default: binary log file
    /// and position.
    #[arg(long, help_heading = "Copy")]
    pub gtid: bool,
    /// Parallel connections for the copy [default: idle cores]: for the logical method the
    /// replica's cores minus its load average (read when it runs on this host), at least
    /// 2; for the other methods 2.
    #[arg(long, value_name = "N", help_heading = "Copy")]
    pub threads: Option<usize>,
    /// Read at most this many bytes per second from the master (`K`, `M`, `G` suffixes,
    /// powers of 1024; e.g. `50M`): logical, after the snapshot's lock; physical, as
    /// `mariadb-backup --throttle` in 10 MiB chunks (local backups only).
    #[arg(long, value_name = "BYTES", value_parser = parse_rate)]
    pub max_rate: Option<u64>,
    /// Do not govern the copy's reads from the master. By default the logical copy halves
    /// its read rate whenever the master answers slower than 2 × its idle latency + 5 ms
    /// (raising it again when calm), and a local physical backup runs at the lowest
    /// best-effort I/O priority (ionice -c2 -n7). A --max-rate still applies.
    #[arg(long)]
    pub no_governor: bool,
    /// Target size of a chunk of the logical or outfile copy, or of the spool image with several
    /// --replica (`K`, `M`, `G` suffixes) [default: 32M]. A chunk is the unit a resumed
    /// copy keeps or copies again.
    #[arg(long, value_name = "BYTES", value_parser = parse_rate, help_heading = "Copy")]
    pub chunk_size: Option<u64>,
    /// FTP/FTPS endpoint of the master's image directory (outfile, physical).
    #[arg(long, value_name = "URL", help_heading = "Copy")]
    pub ftp: Option<String>,
    /// Seed the replica from an existing image (DIR, ftp://… or s3://…) instead of the master.
    #[arg(long, value_name = "DIR|URL", help_heading = "Copy")]
    pub image: Option<String>,
    /// With --image: accept only an image signed with the secret key in FILE (amsu
    /// backup --image-key); an unsigned image or a wrong signature is refused, exit 3.
    #[arg(long, value_name = "FILE", requires = "image")]
    pub image_key: Option<std::path::PathBuf>,
    /// outfile: keep the run directory on the master as a reusable image.
    #[arg(long, help_heading = "Copy")]
    pub keep_image: bool,
    /// FTP options.
    #[command(flatten)]
    pub ftp_options: FtpOptions,
    /// S3 options (for s3:// images).
    #[command(flatten)]
    pub s3_options: S3Options,
    /// Options of --method physical.
    #[command(flatten)]
    pub physical: Box<crate::physical::PhysicalArgs>,
    /// Print the plan and run the read-only checks; change nothing.
    #[arg(long, help_heading = "Safety")]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y', help_heading = "Safety")]
    pub yes: bool,
    /// Newline-delimited JSON events and a JSON report on stdout.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Wait until the replica has caught up with the master.
    #[arg(long, help_heading = "Replication")]
    pub wait_caught_up: bool,
    /// Allow a replica holding user databases or a replication configuration: they are
    /// dropped / reset.
    #[arg(long, help_heading = "Safety")]
    pub force: bool,
    /// Keep the replica's durability settings while loading (default: relax
    /// innodb_flush_log_at_trx_commit, sync_binlog and the redo log size for the copy and
    /// restore them before replication starts; shown in the plan).
    #[arg(long)]
    pub no_fast_load: bool,
    /// Logical method: load each empty table's first chunk through InnoDB's bulk-insert
    /// path (`unique_checks = 0`, its indexes built by sorting at commit; MariaDB ≥
    /// 10.6). Off by default: with the rows in key order and the secondary keys added
    /// after the data it measured no faster.
    #[arg(long)]
    pub bulk_load: bool,
    /// With the fast-load profile, also grow the replica's redo log to its buffer pool's
    /// size (at most 4 GiB) for the load where the server resizes it online (MariaDB
    /// 10.11+, MySQL 8.0.30+); it takes seconds each way, worth it for large copies only.
    #[arg(long)]
    pub resize_redo_log: bool,
    /// After the setup, prove the data equal (`amsu verify`); implies --wait-caught-up.
    #[arg(long, help_heading = "Replication")]
    pub verify: bool,
    /// The journal file that lets a rerun resume [default:
    /// ~/.amsu/journal/REPLICAHOST_PORT.json].
    #[arg(long, value_name = "FILE", help_heading = "Safety")]
    pub journal: Option<PathBuf>,
    /// Seconds to wait for catch-up.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        help_heading = "Replication"
    )]
    pub catch_up_timeout: u64,
    /// When the master's binary log retention is shorter than the setup needs, raise it
    /// for the setup's duration and restore it afterwards (instead of refusing).
    #[arg(long, help_heading = "Safety")]
    pub protect_binlogs: bool,
    /// After the setup, write the replica's settings (server_id, read_only,
    /// skip_slave_start, relay_log, report_host) to this option file, to be included in
    /// the replica's configuration so that they survive a restart.
    #[arg(long, value_name = "PATH", help_heading = "Replication")]
    pub replica_config_file: Option<PathBuf>,
    /// `report_host` for --replica-config-file.
    #[arg(long, value_name = "HOST", help_heading = "Replication")]
    pub report_host: Option<String>,
    /// Password files.
    #[command(flatten)]
    pub passwords: PasswordFiles,
}

/// Seeding from a donor replica (`amsu setup --donor`).
#[derive(Debug, Args, Clone, Default)]
pub struct DonorArgs {
    /// Seed from a donor: a running, healthy replica of the master
    /// (mysql://USER[:PASSWORD]@HOST[:PORT]; password from AMSU_DONOR_PASSWORD or
    /// --donor-password-file). The logical copy reads every table from it instead of the
    /// master (its SQL thread is stopped for the snapshot, well under a second usually,
    /// and started again) and the new replica replicates from the master at the donor's
    /// executed master position (file and position, or GTID with --gtid).
    #[arg(
        long,
        visible_alias = "source",
        value_name = "URL",
        help_heading = "Servers"
    )]
    pub donor: Option<String>,
    /// With --donor: the most the donor may lag behind the master (Seconds_Behind_Master)
    /// for the setup to start.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        help_heading = "Servers"
    )]
    pub donor_max_lag: u64,
    /// File holding the donor user's password (else AMSU_DONOR_PASSWORD, else the URL).
    #[arg(long, value_name = "FILE", help_heading = "Passwords")]
    pub donor_password_file: Option<PathBuf>,
}

/// Fan-out options of `amsu setup` (several `--replica`, or `--spool`).
#[derive(Debug, Args, Clone, Default)]
pub struct FanoutArgs {
    /// Fan-out: the local directory the master is dumped into once [default:
    /// JOURNAL_DIR/spool/MASTERHOST_PORT]. A complete image there is reused (a rerun for
    /// a replica that failed resumes from it); it is removed when every replica is done.
    /// Given with one --replica, that replica is seeded through the spool too.
    #[arg(long, value_name = "DIR", help_heading = "Copy")]
    pub spool: Option<PathBuf>,
    /// Fan-out: keep the spool image when every replica is done.
    #[arg(long, help_heading = "Copy")]
    pub keep_spool: bool,
}

/// TLS of the replica's connection to the master (`CHANGE MASTER TO MASTER_SSL…`). The
/// paths are on the replica's host: the replica server reads them.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Replication TLS")]
pub struct ReplTlsArgs {
    /// Replicate over TLS (MASTER_SSL=1).
    #[arg(long)]
    pub repl_ssl: bool,
    /// CA file to verify the master's certificate (MASTER_SSL_CA); implies --repl-ssl.
    #[arg(long, value_name = "PATH")]
    pub repl_ssl_ca: Option<String>,
    /// Client certificate for the replication connection (MASTER_SSL_CERT); implies
    /// --repl-ssl.
    #[arg(long, value_name = "PATH", requires = "repl_ssl_key")]
    pub repl_ssl_cert: Option<String>,
    /// Client key for the replication connection (MASTER_SSL_KEY).
    #[arg(long, value_name = "PATH", requires = "repl_ssl_cert")]
    pub repl_ssl_key: Option<String>,
    /// Check that the master's certificate names the host the replica connects to
    /// (MASTER_SSL_VERIFY_SERVER_CERT=1); implies --repl-ssl.
    #[arg(long)]
    pub repl_ssl_verify_server_cert: bool,
}

impl ReplTlsArgs {
    /// The library's TLS settings.
    pub fn tls(&self) -> amsu_core::ReplicationTls {
        amsu_core::ReplicationTls::new(
            self.repl_ssl,
            self.repl_ssl_ca.clone(),
            self.repl_ssl_cert.clone(),
            self.repl_ssl_key.clone(),
            self.repl_ssl_verify_server_cert,
        )
    }
}

/// FTP/FTPS client options shared by commands.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "FTP")]
pub struct FtpOptions {
    /// File holding the FTP password (else AMSU_FTP_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub ftp_password_file: Option<PathBuf>,
    /// PEM file of the CA (or self-signed certificate) to trust for FTPS (also `--ftp-ca`).
    #[arg(long, value_name = "FILE", alias = "ftp-ca")]
    pub ftp_ca_file: Option<PathBuf>,
    /// Do not verify the FTPS server's certificate (tests only).
    #[arg(long)]
    pub ftp_insecure: bool,
}

/// Options of images in S3-compatible object storage (`s3://BUCKET/PREFIX`). Credentials
/// come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the shared credentials file
/// (~/.aws/credentials, AWS_SHARED_CREDENTIALS_FILE, profile AWS_PROFILE) or
/// --s3-credentials-file; never from the command line.
#[derive(Debug, Args, Clone, Default)]
pub struct S3Options {
    /// S3 endpoint URL, e.g. http://127.0.0.1:3900 (default AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default AWS_REGION, AWS_DEFAULT_REGION, else us-east-1; Garage: garage).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Path-style requests (ENDPOINT/BUCKET/KEY), as most self-hosted stores need.
    #[arg(long)]
    pub s3_path_style: bool,
    /// An AWS shared-credentials file (INI, profile AWS_PROFILE or default) holding
    /// aws_access_key_id and aws_secret_access_key.
    #[arg(long, value_name = "FILE")]
    pub s3_credentials_file: Option<PathBuf>,
}

/// `amsu backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The master URL.
    #[arg(long, value_name = "URL")]
    pub master: String,
    /// Where to write the image: a local directory, ftp://… / ftps://… or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "DIR|URL")]
    pub out: String,
    /// logical, or physical: mariadb-backup here, on the master's host (outfile is a
    /// method of `amsu setup` only).
    #[arg(long, value_enum, default_value_t = Method::Logical)]
    pub method: Method,
    /// Parallel connections.
    #[arg(long, value_name = "N", default_value = "2")]
    pub threads: Option<usize>,
    /// Compress the chunks with zstd (the same as `--compress zstd`).
    #[arg(long)]
    pub zstd: bool,
    /// Chunk compression: `auto` (the default) compresses with zstd, multi-threaded, when
    /// the image goes to a remote store (ftp://, ftps://, s3://: the transport is slower
    /// than the dump) and not for a local directory; `zstd` always; `none` never.
    #[arg(
        long,
        value_enum,
        value_name = "auto|zstd|none",
        default_value = "auto",
        conflicts_with = "zstd"
    )]
    pub compress: Compress,
    /// The zstd level when the chunks are compressed (1–19) [default: 1, which keeps up
    /// with the dump on two cores; higher levels compress slower, often for little gain
    /// on row data].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: Option<i32>,
    /// The size of the image's data chunks (`K`, `M`, `G` suffixes) [default: 32M].
    /// Smaller chunks upload on more parallel streams and resume in smaller steps.
    #[arg(long, value_name = "BYTES", value_parser = parse_rate)]
    pub chunk_size: Option<u64>,
    /// Sign the image: an HMAC-SHA-256 of its manifest with the secret key in FILE
    /// (at least 16 bytes; trailing line breaks ignored), written to manifest.sig.
    #[arg(long, value_name = "FILE")]
    pub image_key: Option<std::path::PathBuf>,
    /// Replace an image that already exists at --out (without it, amsu refuses: exit 3).
    #[arg(long)]
    pub overwrite: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// FTP options.
    #[command(flatten)]
    pub ftp_options: FtpOptions,
    /// S3 options (for s3:// images).
    #[command(flatten)]
    pub s3_options: S3Options,
    /// Password files.
    #[command(flatten)]
    pub passwords: PasswordFiles,
}

/// `amsu restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The image: a local directory, ftp://… / ftps://… or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "DIR|URL")]
    pub image: String,
    /// The replica URL; give it several times to load the image into many replicas in
    /// parallel (each on its own: one failing replica does not stop the others).
    #[arg(long, value_name = "URL", required = true)]
    pub replica: Vec<String>,
    /// After loading, point the replica at the master (the image's coordinates) and start
    /// replicating as the replication user (--repl-user; created with REPLICATION SLAVE
    /// only by the master URL's user when missing, its generated password kept like
    /// `amsu setup` does). The restore then runs as `amsu setup --image` does: the same
    /// checks, plan and journal (a rerun resumes).
    #[arg(long, requires = "master")]
    pub start_replication: bool,
    /// The replication user (with --start-replication).
    #[arg(long, value_name = "USER", default_value = "amsu_repl")]
    pub repl_user: String,
    /// The master URL (with --start-replication).
    #[arg(long, value_name = "URL")]
    pub master: Option<String>,
    /// The host the replica uses to reach the master (default: the master URL's host).
    #[arg(long, value_name = "HOST")]
    pub master_host_for_replica: Option<String>,
    /// With --start-replication: replicate with GTID positioning (MariaDB
    /// MASTER_USE_GTID=slave_pos, starting at the image's GTID position); default: binary
    /// log file and position.
    #[arg(long, requires = "start_replication")]
    pub gtid: bool,
    /// With --start-replication: replication TLS options (refused without it).
    #[command(flatten)]
    pub repl_tls: Box<ReplTlsArgs>,
    /// With --start-replication: the journal file that lets a rerun resume [default:
    /// ~/.amsu/journal/REPLICAHOST_PORT.json].
    #[arg(long, value_name = "FILE", requires = "start_replication")]
    pub journal: Option<PathBuf>,
    /// Parallel loading connections.
    #[arg(long, value_name = "N", default_value = "2")]
    pub threads: Option<usize>,
    /// Restore even though the replica already holds databases (the image's tables must
    /// not exist there). Without it, an interrupted restore of the same image is resumed,
    /// and a replica holding anything else is refused (exit 3). Not used with
    /// --start-replication, which runs the checks and plan of `amsu setup --image` (an
    /// empty replica, or an interrupted run resumed from its journal).
    #[arg(long)]
    pub force: bool,
    /// Accept only an image signed with the secret key in FILE (amsu backup
    /// --image-key): an unsigned image or a wrong signature is refused, exit 3.
    #[arg(long, value_name = "FILE")]
    pub image_key: Option<std::path::PathBuf>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// FTP options.
    #[command(flatten)]
    pub ftp_options: FtpOptions,
    /// S3 options (for s3:// images).
    #[command(flatten)]
    pub s3_options: S3Options,
    /// Password files.
    #[command(flatten)]
    pub passwords: PasswordFiles,
}

/// `amsu check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The master URL.
    #[arg(long, value_name = "URL")]
    pub master: String,
    /// The replica URL.
    #[arg(long, value_name = "URL")]
    pub replica: Option<String>,
    /// The replication user to check.
    #[arg(long, value_name = "USER", default_value = "amsu_repl")]
    pub repl_user: String,
    /// The master admin user amsu setup would use (see `amsu setup --admin-user`).
    #[arg(long, value_name = "USER")]
    pub admin_user: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Password files.
    #[command(flatten)]
    pub passwords: PasswordFiles,
}

/// `amsu status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The replica URL.
    #[arg(long, value_name = "URL")]
    pub replica: String,
    /// Exit 6 when the replica is more than this many seconds behind (or the lag is
    /// unknown).
    #[arg(long, value_name = "SECONDS")]
    pub max_lag: Option<u64>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Password files.
    #[command(flatten)]
    pub passwords: PasswordFiles,
}

/// `amsu verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The master URL.
    #[arg(long, value_name = "URL")]
    pub master: String,
    /// The replica URL.
    #[arg(long, value_name = "URL")]
    pub replica: String,
    /// Seconds to wait for the replica to reach the master's position.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Password files.
    #[command(flatten)]
    pub passwords: PasswordFiles,
}

/// `amsu sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SandboxAction,
    /// Where sandboxes live [default: ~/.amsu/sandboxes].
    #[arg(long, global = true, value_name = "DIR", env = "AMSU_SANDBOX_HOME")]
    pub home: Option<PathBuf>,
}

/// Sandbox actions.
#[derive(Debug, Subcommand)]
pub enum SandboxAction {
    /// Start a new sandbox server and leave it running.
    Deploy {
        /// Its name.
        name: String,
        /// server_id.
        #[arg(long, default_value_t = 1)]
        server_id: u32,
        /// Run without a binary log.
        #[arg(long)]
        no_log_bin: bool,
        /// binlog_format.
        #[arg(long, default_value = "ROW")]
        binlog_format: String,
        /// Extra server options (--opt=value), repeatable.
        #[arg(
            long = "server-option",
            value_name = "OPTION",
            allow_hyphen_values = true
        )]
        server_options: Vec<String>,
    },
    /// Stop a sandbox (and remove its files with --remove).
    Stop {
        /// Its name.
        name: String,
        /// Also delete its directory.
        #[arg(long)]
        remove: bool,
    },
    /// List sandboxes.
    List,
}

/// `amsu demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the sandboxes running afterwards and print how to connect.
    #[arg(long)]
    pub keep: bool,
    /// Rows in the sample dataset's largest table.
    #[arg(long, default_value_t = 200_000)]
    pub rows: u64,
    /// Parallel connections for the copy.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where to put the sandboxes (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    fn backup(extra: &[&str]) -> Result<super::BackupArgs, clap::Error> {
        let base = ["amsu", "backup", "--master", "mysql://m"];
        match Cli::try_parse_from(base.iter().chain(extra))?.command {
            Command::Backup(a) => Ok(a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn compression_is_automatic_for_remote_stores_and_can_be_forced() {
        let level = |args: &[&str]| backup(args).unwrap().zstd_level().0;
        assert_eq!(level(&["--out", "/var/img"]), None);
        assert_eq!(level(&["--out", "s3://b/p"]), Some(1));
        assert_eq!(level(&["--out", "ftp://u@h/d"]), Some(1));
        assert_eq!(level(&["--out", "s3://b/p", "--compress", "none"]), None);
        assert_eq!(level(&["--out", "/var/img", "--compress", "zstd"]), Some(1));
        assert_eq!(level(&["--out", "/var/img", "--zstd"]), Some(1));
        let l3 = ["--out", "s3://b/p", "--zstd-level", "3"];
        assert_eq!(level(&l3), Some(3));
        assert!(backup(&["--out", "s3://b/p", "--zstd-level", "0"]).is_err());
        assert!(backup(&["--out", "/i", "--zstd", "--compress", "none"]).is_err());
    }

    fn setup(extra: &[&str]) -> Result<super::SetupArgs, clap::Error> {
        let base = [
            "amsu",
            "setup",
            "--master",
            "mysql://m",
            "--replica",
            "mysql://r",
        ];
        match Cli::try_parse_from(base.iter().chain(extra))?.command {
            Command::Setup(a) => Ok(a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn method_auto_is_the_default_and_resolves_from_the_flags() {
        use super::Method;
        let m = |extra: &[&str]| setup(extra).unwrap().resolved_method().0;
        assert_eq!(setup(&[]).unwrap().method, Method::Auto);
        assert_eq!(m(&[]), Method::Logical);
        assert_eq!(m(&["--ftp", "ftp://u@h/p"]), Method::Outfile);
        assert_eq!(m(&["--image", "/img"]), Method::Logical);
        let physical = [
            "--replica-stop-command",
            "stop",
            "--replica-start-command",
            "start",
        ];
        assert_eq!(m(&physical), Method::Physical);
        assert_eq!(m(&["--replica-service", "mariadb"]), Method::Physical);
        // An explicit method is kept.
        let mut explicit = physical.to_vec();
        explicit.extend(["--method", "logical"]);
        assert_eq!(m(&explicit), Method::Logical);
    }

    #[test]
    fn restore_replication_flags_need_start_replication() {
        let restore = |extra: &[&str]| {
            let mut argv = vec![
                "amsu",
                "restore",
                "--image",
                "/img",
                "--replica",
                "mysql://r",
            ];
            argv.extend(extra);
            Cli::try_parse_from(argv).map(|c| match c.command {
                Command::Restore(a) => a,
                _ => unreachable!(),
            })
        };
        assert!(restore(&["--gtid"]).is_err());
        assert!(restore(&["--journal", "/j.json"]).is_err());
        let start = ["--start-replication", "--master", "mysql://m"];
        let a = restore(&[&start[..], &["--gtid", "--repl-ssl-ca", "/ca.pem"]].concat()).unwrap();
        assert!(a.gtid && a.repl_tls.tls().ssl);
        let plain = restore(&[]).unwrap();
        assert!(!plain.gtid && plain.repl_tls.tls() == amsu_core::ReplicationTls::off());
    }

    #[test]
    fn replication_tls_and_gtid_flags() {
        let a = setup(&[]).unwrap();
        assert_eq!(a.repl_tls.tls(), amsu_core::ReplicationTls::off());
        assert!(!a.gtid);
        let t = setup(&["--repl-ssl-ca", "/ca.pem", "--gtid"]).unwrap();
        assert!(t.gtid);
        let tls = t.repl_tls.tls();
        assert!(tls.ssl, "a CA file implies --repl-ssl");
        assert_eq!(tls.ca.as_deref(), Some("/ca.pem"));
        assert!(
            setup(&["--repl-ssl-verify-server-cert"])
                .unwrap()
                .repl_tls
                .tls()
                .ssl
        );
        let c = setup(&["--repl-ssl-cert", "c.pem", "--repl-ssl-key", "c.key"]).unwrap();
        assert_eq!(
            (c.repl_tls.tls().cert, c.repl_tls.tls().key),
            (Some("c.pem".into()), Some("c.key".into()))
        );
        // A certificate needs its key.
        assert!(setup(&["--repl-ssl-cert", "c.pem"]).is_err());
    }
}

/// A byte rate: a number with an optional `K`, `M` or `G` suffix (powers of 1024).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown suffix in {s:?} (use K, M or G)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a byte rate: {s:?} (e.g. 50M)"))?;
    match n.checked_mul(mult) {
        Some(0) => Err("the rate must be more than 0".into()),
        Some(v) => Ok(v),
        None => Err(format!("{s:?} is too large")),
    }
}

#[cfg(test)]
mod rate_tests {
    use super::parse_rate;

    #[test]
    fn rates_take_binary_suffixes() {
        assert_eq!(parse_rate("50M"), Ok(50 << 20));
        assert_eq!(parse_rate("1g"), Ok(1 << 30));
        assert_eq!(parse_rate("4096"), Ok(4096));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("5X").is_err());
        assert!(parse_rate("fast").is_err());
    }
}

impl SetupArgs {
    /// `--method`, with `auto` resolved from the other flags, and why (pure).
    pub fn resolved_method(&self) -> (Method, &'static str) {
        if self.method != Method::Auto {
            return (self.method, "given with --method");
        }
        let p = &self.physical;
        if self.image.is_some() {
            (Method::Logical, "--image: the image is restored")
        } else if self.donor.donor.is_some() {
            (Method::Logical, "--donor: the logical copy reads the donor")
        } else if p.replica_service.is_some()
            || p.replica_stop_command.is_some()
            || p.master_backup_command.is_some()
        {
            (
                Method::Physical,
                "the physical flags are given: a physical copy is the fastest exact copy",
            )
        } else if self.ftp.is_some() {
            (
                Method::Outfile,
                "--ftp is given: the master writes the image itself, the faster logical method",
            )
        } else {
            (
                Method::Logical,
                "no physical flags and no --ftp: the logical method needs nothing on the master's host",
            )
        }
    }
}
