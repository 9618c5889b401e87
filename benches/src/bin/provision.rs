//! `provision`: amsu against the established tools, side by side in one run.
//!
//! One master sandbox is loaded with a sysbench dataset. For every method an empty
//! replica sandbox is deployed, a fixed-rate `oltp_write_only` load is started on the
//! master, and after a baseline window the method provisions the replica, which is then
//! started and waited on until it has caught up. The load is stopped, the replica is
//! compared with the master (`amsu_mysql::verify`), and the figures are printed as a
//! Markdown report (also written to `DIR/report.md`).
//!
//! Run by hand (it takes minutes to hours, depending on `--size`):
//!
//! ```sh
//! cargo build --release -p amsu-cli -p amsu-benches
//! target/release/provision --size quick
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amsu_benches::{
    parse_mydumper_metadata, parse_sysbench_line, parse_vm_hwm_kib, parse_xtrabackup_binlog_info,
    summarize, verdict, BinlogPos, LoadSummary, TimedSecond,
};
use amsu_core::ServerAddr;
use amsu_mysql::conn::{field, Session};
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, ValueEnum};

/// The database sysbench uses.
const DB: &str = "sbtest";
/// The password amsu gives its replication user on the master (benchmark sandboxes only).
const REPL_PASSWORD: &str = "bench-repl-password-0123456789";
/// A replica counts as caught up when it applied a master position sampled at most this
/// long before.
const CAUGHT_UP_WITHIN: Duration = Duration::from_secs(1);
/// How long any one wait (catch-up, verification) may take.
const WAIT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Dataset presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Size {
    /// 4 tables × 50 000 rows (about 50 MB of InnoDB data): validates the harness.
    Quick,
    /// 8 tables × 250 000 rows (about 0.5 GB).
    Small,
    /// 8 tables × 1 000 000 rows (about 2 GB).
    Large,
}

impl Size {
    fn shape(self) -> (u32, u64) {
        match self {
            Size::Quick => (4, 50_000),
            Size::Small => (8, 250_000),
            Size::Large => (8, 1_000_000),
        }
    }
}

/// The ways to provision a replica that the harness knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Method {
    /// `amsu setup --method logical`.
    AmsuLogical,
    /// `amsu setup --method logical --no-fast-load`: the replica's durability kept while
    /// loading (measures the fast-load profile).
    AmsuLogicalDurable,
    /// `amsu setup --method logical --no-governor`: reads from the master not adapted to
    /// its latency (measures the governor).
    AmsuLogicalUngoverned,
    /// `amsu setup --method logical --bulk-load`: each empty table's first chunk through
    /// InnoDB's bulk-insert path (measures it against the ordinary path).
    AmsuLogicalBulk,
    /// `amsu setup --method logical` without `--threads`: workers sized from the
    /// replica's idle CPU (measures the sizing against the fixed `--threads`).
    AmsuLogicalAutoThreads,
    /// `amsu setup --method logical` killed (`kill -9`) once its progress reaches
    /// `--kill-at` percent, then run again: the rerun resumes the interrupted copy
    /// (issue 17). Compare with `amsu-logical` in the same run.
    AmsuLogicalKillRerun,
    /// `amsu setup --method outfile` (when the binary has it).
    AmsuOutfile,
    /// `amsu setup --method physical` (when the binary has it).
    AmsuPhysical,
    /// `mariadb-dump --single-transaction --master-data=1 | mariadb`.
    MariadbDump,
    /// `mydumper` then `myloader` (the Debian package, 0.10).
    Mydumper,
    /// `mydumper` then `myloader` 1.0.x (built from source; `--mydumper10-dir`): its
    /// defaults (secondary keys added per table after its data) plus what its shipped
    /// `mydumper.cnf` recommends to speed up imports into a fresh server
    /// (`sync_binlog = 0`, `innodb_flush_log_at_trx_commit = 0` while loading).
    #[value(name = "mydumper-1.0")]
    Mydumper10,
    /// `mariadb-backup` backup, prepare and copy-back by hand.
    MariadbBackup,
    /// Cold copy of the stopped master's data directory: the physical floor, not a
    /// valid method (the master stops).
    ColdCopy,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::AmsuLogical => "amsu logical",
            Method::AmsuLogicalDurable => "amsu logical --no-fast-load",
            Method::AmsuLogicalUngoverned => "amsu logical --no-governor",
            Method::AmsuLogicalBulk => "amsu logical --bulk-load",
            Method::AmsuLogicalAutoThreads => "amsu logical, threads sized from idle CPU",
            Method::AmsuLogicalKillRerun => "amsu logical, kill -9 mid-copy then rerun",
            Method::AmsuOutfile => "amsu outfile",
            Method::AmsuPhysical => "amsu physical",
            Method::MariadbDump => "mariadb-dump | mariadb",
            Method::Mydumper => "mydumper + myloader 0.10",
            Method::Mydumper10 => "mydumper + myloader 1.0.1",
            Method::MariadbBackup => "mariadb-backup (manual)",
            Method::ColdCopy => "cold datadir copy (floor, master stopped; not a valid method)",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Method::AmsuLogical => "amsu-logical",
            Method::AmsuLogicalDurable => "amsu-logical-durable",
            Method::AmsuLogicalUngoverned => "amsu-logical-ungoverned",
            Method::AmsuLogicalBulk => "amsu-logical-bulk",
            Method::AmsuLogicalAutoThreads => "amsu-logical-auto-threads",
            Method::AmsuLogicalKillRerun => "amsu-logical-kill-rerun",
            Method::AmsuOutfile => "amsu-outfile",
            Method::AmsuPhysical => "amsu-physical",
            Method::MariadbDump => "mariadb-dump",
            Method::Mydumper => "mydumper",
            Method::Mydumper10 => "mydumper-1.0",
            Method::MariadbBackup => "mariadb-backup",
            Method::ColdCopy => "cold-copy",
        }
    }

    fn amsu_method(self) -> Option<&'static str> {
        match self {
            Method::AmsuLogical
            | Method::AmsuLogicalDurable
            | Method::AmsuLogicalUngoverned
            | Method::AmsuLogicalBulk
            | Method::AmsuLogicalAutoThreads
            | Method::AmsuLogicalKillRerun => Some("logical"),
            Method::AmsuOutfile => Some("outfile"),
            Method::AmsuPhysical => Some("physical"),
            _ => None,
        }
    }

    /// The programs the method needs.
    fn programs(self) -> &'static [&'static str] {
        match self {
            Method::AmsuLogical
            | Method::AmsuLogicalDurable
            | Method::AmsuLogicalUngoverned
            | Method::AmsuLogicalBulk
            | Method::AmsuLogicalAutoThreads
            | Method::AmsuLogicalKillRerun
            | Method::AmsuPhysical
            | Method::Mydumper10 => &[],
            Method::AmsuOutfile => &["pure-ftpd"],
            Method::MariadbDump => &["mariadb-dump", "mariadb"],
            Method::Mydumper => &["mydumper", "myloader"],
            Method::MariadbBackup => &["mariadb-backup"],
            Method::ColdCopy => &["cp"],
        }
    }
}

/// amsu against mariadb-dump, mydumper and mariadb-backup on sandboxes under a live
/// write load. Prints a Markdown report.
#[derive(Debug, Parser)]
#[command(name = "provision")]
struct Args {
    /// Dataset preset.
    #[arg(long, value_enum, default_value_t = Size::Quick)]
    size: Size,
    /// Number of sysbench tables (overrides the preset).
    #[arg(long)]
    tables: Option<u32>,
    /// Rows per sysbench table (overrides the preset).
    #[arg(long)]
    table_size: Option<u64>,
    /// Write load on the master: sysbench `oltp_write_only` transactions per second.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// sysbench client threads of the write load.
    #[arg(long, default_value_t = 2)]
    load_threads: u32,
    /// Tables the write load writes to (the first N sysbench tables; default: all). The
    /// others stay unchanged while the replica is provisioned: a resumed copy keeps
    /// their chunks (`amsu-logical-kill-rerun`).
    #[arg(long)]
    load_tables: Option<u32>,
    /// `amsu-logical-kill-rerun`: the copy's progress (percent) at which the first run is
    /// killed.
    #[arg(long, default_value_t = 50.0)]
    kill_at: f64,
    /// Seconds of write load measured before each provisioning starts (the baseline).
    #[arg(long, default_value_t = 10)]
    baseline: u64,
    /// Worker threads for amsu, mydumper, myloader and mariadb-backup.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// InnoDB buffer pool of every sandbox.
    #[arg(long, default_value = "512M")]
    buffer_pool: String,
    /// Methods to run (default: all whose programs are installed).
    #[arg(long, value_enum, value_delimiter = ',')]
    methods: Vec<Method>,
    /// Working directory (sandboxes, backups, logs, report.md); wiped at the start.
    #[arg(long, default_value = "/tmp/amsu-bench")]
    dir: PathBuf,
    /// The amsu binary (default: target/release/amsu of this workspace).
    #[arg(long)]
    amsu: Option<PathBuf>,
    /// The directory holding mydumper and myloader 1.0.x (`bash
    /// ../shared/peers/build-mydumper.sh` prints it; default: /tmp/mydumper-1.0.1/build
    /// when the binaries are there).
    #[arg(long)]
    mydumper10_dir: Option<PathBuf>,
}

impl Args {
    /// The directory of mydumper/myloader 1.0.x, if they are there.
    fn mydumper10(&self) -> Option<PathBuf> {
        let dir = self
            .mydumper10_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/tmp/mydumper-1.0.1/build"));
        (dir.join("mydumper").is_file() && dir.join("myloader").is_file()).then_some(dir)
    }
}

/// Figures of one method.
#[derive(Debug, Default)]
struct Outcome {
    /// Named phases in order, in seconds.
    phases: Vec<(String, f64)>,
    /// From the start of the provisioning until the replica had caught up.
    total: Option<f64>,
    before: LoadSummary,
    during: LoadSummary,
    commit_blocked_ms: Option<f64>,
    peak_rss_kib: Option<u64>,
    /// User + system CPU seconds of the tools' processes (children included).
    cpu_secs: Option<f64>,
    /// User + system CPU seconds the master's server spent from the start of the
    /// provisioning until the replica caught up (the write load's share included).
    master_cpu_secs: Option<f64>,
    /// Likewise for the replica's server (`None` when it was restarted on the way, as
    /// the physical method does).
    replica_cpu_secs: Option<f64>,
    /// `Some(true)` equal, `Some(false)` differs, `None` not compared.
    equal: Option<bool>,
    /// What the master sent (`Bytes_sent`) and read (`Innodb_rows_read`) while amsu ran
    /// (both runs of `amsu-logical-kill-rerun`).
    master_read: Option<MasterCounters>,
    /// `amsu-logical-kill-rerun`: the same during the rerun only.
    rerun_read: Option<MasterCounters>,
    note: String,
    error: Option<String>,
}

impl Outcome {
    /// Adds a tool run's peak RSS (the maximum) and CPU time (the sum).
    fn account(&mut self, run: &ToolRun) {
        self.peak_rss_kib = self.peak_rss_kib.max(run.peak_rss_kib);
        if let Some(c) = run.cpu_secs {
            self.cpu_secs = Some(self.cpu_secs.unwrap_or(0.0) + c);
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(a: Args) -> Result<()> {
    let (preset_tables, preset_rows) = a.size.shape();
    let tables = a.tables.unwrap_or(preset_tables);
    let rows = a.table_size.unwrap_or(preset_rows);
    let amsu = a
        .amsu
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/amsu"));
    if !amsu.exists() {
        bail!(
            "{} not found; build it with `cargo build --release -p amsu-cli`",
            amsu.display()
        );
    }
    require("sysbench")?;
    let mut skipped = Vec::new();
    let amsu_methods = amsu_methods(&amsu)?;
    let wanted: Vec<Method> = if a.methods.is_empty() {
        vec![
            Method::AmsuLogical,
            Method::AmsuOutfile,
            Method::AmsuPhysical,
            Method::MariadbDump,
            Method::Mydumper,
            Method::Mydumper10,
            Method::MariadbBackup,
            Method::ColdCopy,
        ]
    } else {
        let mut m = a.methods.clone();
        m.sort();
        m.dedup();
        m
    };
    let mut methods = Vec::new();
    for m in wanted {
        if let Some(am) = m.amsu_method() {
            if !amsu_methods.iter().any(|x| x == am) {
                skipped.push(format!(
                    "{}: this amsu binary has no `--method {am}`",
                    m.label()
                ));
                continue;
            }
        }
        if let Some(p) = m.programs().iter().find(|p| which(p).is_none()) {
            skipped.push(format!("{}: `{p}` is not installed", m.label()));
            continue;
        }
        if m == Method::Mydumper10 && a.mydumper10().is_none() {
            skipped.push(format!(
                "{}: no mydumper/myloader 1.0 (run `bash ../shared/peers/build-mydumper.sh`, pass --mydumper10-dir)",
                m.label()
            ));
            continue;
        }
        methods.push(m);
    }

    if a.dir.exists() {
        std::fs::remove_dir_all(&a.dir)
            .with_context(|| format!("cannot clear {}", a.dir.display()))?;
    }
    std::fs::create_dir_all(a.dir.join("logs"))?;
    let machine = machine_facts(&amsu, a.mydumper10().as_deref());
    eprintln!("{machine}");

    let server_opts = |name: &str, id: u32| {
        SandboxOptions::new(name)
            .base_dir(&a.dir)
            .server_id(id)
            .extra_option(format!("--innodb-buffer-pool-size={}", a.buffer_pool))
            .extra_option("--innodb-log-file-size=256M")
            .extra_option("--max-connections=500")
    };
    // The outfile method: a real pure-ftpd serves the master's secure_file_priv.
    let ftp = if methods.contains(&Method::AmsuOutfile) {
        let server = amsu_tests::ftpd::FtpServer::plain();
        let password_file = a.dir.join("ftp-password");
        std::fs::write(&password_file, server.password.expose())?;
        Some(OutfileFtp {
            url: server.url(),
            password_file,
            server,
        })
    } else {
        None
    };
    let mut master_opts = server_opts("master", 1);
    if let Some(f) = &ftp {
        master_opts =
            master_opts.extra_option(format!("--secure-file-priv={}", f.server.served.display()));
    }
    let mut master = Sandbox::deploy(master_opts).await?;
    eprintln!("master {} ({})", master.url(), master.version());

    let t = Instant::now();
    {
        let mut s = Session::open(&master.addr()).await?;
        s.exec(
            &format!("CREATE DATABASE {DB}"),
            "create the sysbench database",
        )
        .await?;
        s.exec(
            "SET GLOBAL innodb_flush_log_at_trx_commit = 2",
            "speed up the load",
        )
        .await?;
        let out = sysbench(&master, tables, rows)
            .args(["--threads=2", "prepare"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("cannot run sysbench prepare")?;
        if !out.status.success() {
            bail!(
                "sysbench prepare failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        s.exec("SET GLOBAL innodb_flush_log_at_trx_commit = 1", "restore")
            .await?;
        settle(&mut s).await?;
    }
    let data_mb = innodb_mb(&master.addr()).await?;
    let dataset = format!(
        "sysbench: {tables} tables × {rows} rows = {:.0} MB of InnoDB data and indexes (loaded in {:.0} s)",
        data_mb,
        t.elapsed().as_secs_f64()
    );
    eprintln!("{dataset}");

    let mut results: BTreeMap<Method, Outcome> = BTreeMap::new();
    for (i, &m) in methods.iter().enumerate() {
        eprintln!("== {} ==", m.label());
        let run = run_method(
            &a,
            &amsu,
            &mut master,
            m,
            10 + i as u32,
            (tables, rows),
            ftp.as_ref(),
        );
        let out = match run.await {
            Ok(o) => o,
            Err(e) if format!("{e:#}").contains("is not available") => {
                eprintln!("   not available: {e:#}");
                skipped.push(format!("{}: {e:#}", m.label()));
                continue;
            }
            Err(e) => Outcome {
                error: Some(format!("{e:#}")),
                ..Outcome::default()
            },
        };
        if let Some(e) = &out.error {
            eprintln!("   FAILED: {e}");
        } else {
            eprintln!(
                "   caught up after {:.1} s; {}",
                out.total.unwrap_or(f64::NAN),
                phases_text(&out.phases)
            );
        }
        results.insert(m, out);
    }
    if master.is_started() {
        master.shutdown().await?;
    }

    let params = format!(
        "write load: sysbench oltp_write_only --rate={} --threads={} --report-interval=1 --percentile=100 \
         (baseline {} s before each provisioning); tool threads: {}; buffer pool {}",
        a.rate, a.load_threads, a.baseline, a.threads, a.buffer_pool
    );
    let report = render(&machine, &dataset, &params, &results, &skipped);
    println!("{report}");
    std::fs::write(a.dir.join("report.md"), &report)?;
    eprintln!("report written to {}", a.dir.join("report.md").display());
    Ok(())
}

/// Provisions one replica with `m` under the write load and measures it.
async fn run_method(
    a: &Args,
    amsu: &Path,
    master: &mut Sandbox,
    m: Method,
    server_id: u32,
    (tables, rows): (u32, u64),
    ftp: Option<&OutfileFtp>,
) -> Result<Outcome> {
    let work = a.dir.join(format!("work-{}", m.slug()));
    std::fs::create_dir_all(&work)?;
    let logs = a.dir.join("logs");
    let mut replica = Sandbox::deploy(
        SandboxOptions::new(format!("replica-{}", m.slug()))
            .base_dir(&a.dir)
            .server_id(server_id)
            .extra_option(format!("--innodb-buffer-pool-size={}", a.buffer_pool))
            .extra_option("--innodb-log-file-size=256M"),
    )
    .await?;
    // The pid file of the replica: `amsu setup --method physical` restarts it.
    let pid_file = server_args(&replica)
        .ok()
        .and_then(|args| pid_file_of(&args).map(PathBuf::from));
    let mut out = Outcome::default();
    let load_log = logs.join(format!("load-{}.log", m.slug()));
    let load_tables = a.load_tables.unwrap_or(tables).clamp(1, tables);

    // The load keeps running through the comparison: `verify` stops the replica's SQL
    // thread with START SLAVE UNTIL the master's snapshot position, and MariaDB only
    // notices that it is there when a further event arrives.
    let load = if m == Method::ColdCopy {
        cold_copy(master, &mut replica, &logs, &mut out).await?;
        Load::start(master, load_tables, rows, a, &load_log)?
    } else {
        let load = Load::start(master, load_tables, rows, a, &load_log)?;
        tokio::time::sleep(Duration::from_secs(a.baseline)).await;
        let t0 = Instant::now();
        let (master_pid, replica_pid) = (master.pid(), replica.pid());
        let cpu0 = (server_cpu_secs(master_pid), server_cpu_secs(replica_pid));
        let provisioned = async {
            match m {
                Method::AmsuLogical
                | Method::AmsuLogicalDurable
                | Method::AmsuLogicalUngoverned
                | Method::AmsuLogicalBulk
                | Method::AmsuLogicalAutoThreads
                | Method::AmsuLogicalKillRerun
                | Method::AmsuOutfile
                | Method::AmsuPhysical => {
                    run_amsu(a, amsu, master, &replica, m, ftp, &work, &logs, &mut out).await
                }
                Method::MariadbDump => mariadb_dump(master, &replica, &logs, &mut out).await,
                Method::Mydumper => {
                    let peer = Peer::debian();
                    mydumper(a, &peer, master, &replica, &work, &logs, &mut out).await
                }
                Method::Mydumper10 => {
                    let dir = a.mydumper10().context("mydumper 1.0 is not available")?;
                    let peer = Peer::current(&dir, &work)?;
                    mydumper(a, &peer, master, &replica, &work, &logs, &mut out).await
                }
                Method::MariadbBackup => {
                    mariadb_backup(a, master, &mut replica, &work, &logs, &mut out).await
                }
                Method::ColdCopy => unreachable!("handled above"),
            }
        }
        .await;
        let caught_up = match provisioned {
            Ok(()) => {
                let t = Instant::now();
                let r = wait_caught_up(&master.addr(), &replica.addr()).await;
                out.phases
                    .push(("catch-up".into(), t.elapsed().as_secs_f64()));
                r
            }
            Err(e) => Err(e),
        };
        let t1 = Instant::now();
        let spent = |before: Option<f64>, pid: u32| Some(server_cpu_secs(pid)? - before?);
        out.master_cpu_secs = spent(cpu0.0, master_pid);
        // A restarted replica is another process: its CPU time is not comparable.
        if replica.pid() == replica_pid && pid_alive(replica_pid) {
            out.replica_cpu_secs = spent(cpu0.1, replica_pid);
        }
        if let Err(e) = caught_up {
            load.stop()?;
            if let (Method::AmsuPhysical, Some(f)) = (m, &pid_file) {
                let _ = replica.shutdown().await;
                stop_restarted(f).await?;
            }
            return Err(e);
        }
        let seconds = load.seconds();
        out.before = summarize(&seconds, t0 - Duration::from_secs(a.baseline), t0);
        out.during = summarize(&seconds, t0, t1);
        out.total = Some((t1 - t0).as_secs_f64());
        load
    };

    let v = amsu_mysql::verify::verify(&master.addr(), &replica.addr(), WAIT_TIMEOUT).await;
    load.stop()?;
    let v = v.context("verify")?;
    out.equal = Some(v.differences.is_empty() && v.tables > 0);
    if !v.differences.is_empty() {
        out.note
            .push_str(&format!("{} tables differ. ", v.tables_differing()));
    }
    replica.stop().await?;
    if m == Method::AmsuPhysical {
        if let Some(f) = pid_file {
            stop_restarted(&f).await?;
        }
    }
    let _ = std::fs::remove_dir_all(a.dir.join(format!("replica-{}", m.slug())));
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

/// `amsu setup` as a child process, its JSON events parsed for phases and the
/// commit-blocked window, its peak RSS measured.
#[allow(clippy::too_many_arguments)]
async fn run_amsu(
    a: &Args,
    amsu: &Path,
    master: &Sandbox,
    replica: &Sandbox,
    m: Method,
    ftp: Option<&OutfileFtp>,
    work: &Path,
    logs: &Path,
    out: &mut Outcome,
) -> Result<()> {
    let method = m.amsu_method().expect("an amsu method");
    let before = MasterCounters::read(&master.addr()).await?;
    let stdout = logs.join(format!("{}.json", m.slug()));
    let mut cmd = Command::new(amsu);
    cmd.args([
        "setup",
        "--master",
        &master.url(),
        "--replica",
        &replica.url(),
        "--method",
        method,
        "--yes",
        "--wait-caught-up",
        "--json",
    ])
    .env("AMSU_REPL_PASSWORD", REPL_PASSWORD)
    .env_remove("AMSU_MASTER_PASSWORD")
    .env_remove("AMSU_REPLICA_PASSWORD");
    if m != Method::AmsuLogicalAutoThreads {
        cmd.args(["--threads", &a.threads.to_string()]);
    }
    match m {
        Method::AmsuLogicalDurable => {
            cmd.arg("--no-fast-load");
        }
        Method::AmsuLogicalUngoverned => {
            cmd.arg("--no-governor");
        }
        Method::AmsuLogicalBulk => {
            cmd.arg("--bulk-load");
        }
        _ => {}
    }
    if m == Method::AmsuOutfile {
        let f = ftp.context("the outfile method needs the harness's FTP server")?;
        cmd.arg("--ftp")
            .arg(&f.url)
            .arg("--ftp-password-file")
            .arg(&f.password_file);
    }
    if m == Method::AmsuPhysical {
        let (stop, start) = replica_commands(replica)?;
        cmd.args([
            "--replica-stop-command",
            &stop,
            "--replica-start-command",
            &start,
        ]);
    }
    let mut killed = None;
    if m == Method::AmsuLogicalKillRerun {
        // Both runs share one journal: the second one resumes the first one's copy.
        cmd.arg("--journal").arg(work.join("journal.json"));
        let t = Instant::now();
        let reached = run_killed(
            &cmd,
            a.kill_at,
            &logs.join(format!("{}-killed.json", m.slug())),
            &logs.join(format!("{}-killed.err", m.slug())),
        )
        .await?;
        killed = Some((
            format!("killed run (at {reached:.0} %)"),
            t.elapsed().as_secs_f64(),
        ));
    }
    let mid = MasterCounters::read(&master.addr()).await?;
    let run = run_tool(cmd, &stdout, &logs.join(format!("{}.err", m.slug()))).await?;
    out.account(&run);
    let after = MasterCounters::read(&master.addr()).await?;
    out.master_read = Some(after.since(&before));
    if killed.is_some() {
        out.rerun_read = Some(after.since(&mid));
    }
    let text = std::fs::read_to_string(&stdout)?;
    let mut step_ms: BTreeMap<String, u64> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match v.get("event").and_then(|e| e.as_str()) {
            Some("commit_blocked") => {
                out.commit_blocked_ms = v.get("millis").and_then(|m| m.as_f64());
            }
            Some("step_finished") => {
                if let (Some(s), Some(ms)) = (
                    v.get("step").and_then(|s| s.as_str()),
                    v.get("millis").and_then(|m| m.as_u64()),
                ) {
                    step_ms.insert(s.to_string(), ms);
                }
            }
            _ => {}
        }
    }
    if !run.success {
        let err = logs.join(format!("{}.err", m.slug()));
        // With --json a setup error is a JSON line on stdout; usage errors go to stderr.
        let json_error = text.lines().find_map(|l| {
            let v = serde_json::from_str::<serde_json::Value>(l).ok()?;
            let e = v.get("error")?;
            e.get("message").unwrap_or(e).as_str().map(str::to_string)
        });
        let first = json_error.unwrap_or_else(|| {
            std::fs::read_to_string(&err)
                .unwrap_or_default()
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default()
                .to_string()
        });
        bail!(
            "amsu setup failed ({}): {first} (see {})",
            run.status,
            err.display()
        );
    }
    let sum = |names: &[&str]| -> f64 {
        names.iter().filter_map(|n| step_ms.get(*n)).sum::<u64>() as f64 / 1000.0
    };
    let checks = sum(&[
        "probe_master",
        "replication_user",
        "master_config",
        "replica_checks",
        "configure_replica",
    ]);
    let copy = sum(&["copy_data"]);
    let start = sum(&["change_master", "start_replica"]);
    let catch = sum(&["catch_up"]);
    let accounted = checks + copy + start + catch;
    out.phases = vec![
        ("checks".into(), checks),
        ("backup+transfer+restore (pipelined)".into(), copy),
        ("change master+start".into(), start),
        ("amsu's catch-up wait".into(), catch),
        (
            "process overhead".into(),
            (run.elapsed.as_secs_f64() - accounted).max(0.0),
        ),
    ];
    if let Some(k) = killed {
        out.phases.insert(0, k);
    }
    Ok(())
}

/// Counters of the master that measure what a copy reads from it.
#[derive(Debug, Clone, Copy, Default)]
struct MasterCounters {
    /// `Bytes_sent`: every byte the master sent (to every client).
    bytes_sent: u64,
    /// `Innodb_rows_read`.
    rows_read: u64,
}

impl MasterCounters {
    async fn read(master: &ServerAddr) -> Result<MasterCounters> {
        let mut s = Session::open(master).await?;
        let rows = s
            .rows(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('Bytes_sent', 'Innodb_rows_read')",
                "reading the master's counters",
            )
            .await?;
        let mut c = MasterCounters::default();
        for r in &rows {
            let f = |i: usize| r.text(i);
            let (Some(name), Some(v)) = (f(0), f(1)) else {
                continue;
            };
            let v = v.parse().unwrap_or(0);
            match name.as_str() {
                "Bytes_sent" => c.bytes_sent = v,
                "Innodb_rows_read" => c.rows_read = v,
                _ => {}
            }
        }
        Ok(c)
    }

    fn since(&self, earlier: &MasterCounters) -> MasterCounters {
        MasterCounters {
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            rows_read: self.rows_read.saturating_sub(earlier.rows_read),
        }
    }
}

/// Runs `cmd` (`amsu setup --json`) and kills it (SIGKILL) once a progress event reports
/// at least `percent`; returns the percent reached. Fails when it ends on its own first.
async fn run_killed(cmd: &Command, percent: f64, stdout: &Path, stderr: &Path) -> Result<f64> {
    use std::io::Write;
    let mut c = Command::new(cmd.get_program());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr)?)
        .spawn()
        .context("cannot start amsu")?;
    let mut log = std::fs::File::create(stdout)?;
    let lines = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut reached = None;
    for line in lines.lines().map_while(Result::ok) {
        let _ = writeln!(log, "{line}");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v.get("event").and_then(|e| e.as_str()) != Some("progress") {
            continue;
        }
        let p = v.get("percent").and_then(|p| p.as_f64()).unwrap_or(0.0);
        if p >= percent {
            child.kill().context("cannot kill amsu")?;
            reached = Some(p);
            break;
        }
    }
    let status = child.wait()?;
    reached.ok_or_else(|| {
        anyhow!(
            "amsu ended ({status}) before its progress reached {percent} % (see {})",
            stdout.display()
        )
    })
}

/// The FTP server of the outfile method: pure-ftpd serving the master's
/// `secure_file_priv` directory (stopped when dropped).
struct OutfileFtp {
    server: amsu_tests::ftpd::FtpServer,
    url: String,
    password_file: PathBuf,
}

/// Shell commands that stop and start the replica sandbox for `amsu setup --method
/// physical`: stop by the PID in its pid file (whichever server runs now), start with the
/// same command line, detached.
fn replica_commands(replica: &Sandbox) -> Result<(String, String)> {
    let args = server_args(replica)?;
    let pid_file = pid_file_of(&args).context("the replica runs without --pid-file")?;
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let stop = format!(
        // The first server is the harness's child: once it exits it stays a zombie until
        // the harness reaps it, so a zombie counts as stopped.
        "p=$(cat {f}) && kill -TERM \"$p\" && while kill -0 \"$p\" 2>/dev/null \
         && [ \"$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)\" != Z ]; do sleep 0.1; done",
        f = q(pid_file)
    );
    let start = format!(
        "setsid {} </dev/null >/dev/null 2>&1 &",
        args.iter().map(|a| q(a)).collect::<Vec<_>>().join(" ")
    );
    Ok((stop, start))
}

/// The command line of a sandbox's running server.
fn server_args(sandbox: &Sandbox) -> Result<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{}/cmdline", sandbox.pid()))
        .context("reading the server's command line")?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect())
}

/// The phase running `at` seconds after the start, from the phases' durations in order
/// (a second that spans two phases is named by where it ended).
fn phase_at(phases: &[(String, f64)], at: f64) -> String {
    let mut end = 0.0;
    for (name, secs) in phases {
        end += secs;
        if at <= end {
            return format!("in {name}");
        }
    }
    "after the last phase".into()
}

/// User + system CPU seconds of a running process, from `/proc/PID/stat` (fields 14
/// and 15, in clock ticks of 1/100 s — Linux's fixed `USER_HZ`).
fn server_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// True while a process with this PID exists and is not a zombie.
fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with(|c| c != 'Z')))
        .unwrap_or(false)
}

/// The `--pid-file` of a server command line.
fn pid_file_of(args: &[String]) -> Option<&str> {
    args.iter().find_map(|a| a.strip_prefix("--pid-file="))
}

/// Stops a replica server that `amsu setup --method physical` started again (not the
/// harness's child any more), by the PID in its pid file.
async fn stop_restarted(replica_pid_file: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(replica_pid_file) else {
        return Ok(());
    };
    let pid: i32 = text.trim().parse().context("the replica's pid file")?;
    let alive = |pid: i32| Path::new(&format!("/proc/{pid}")).exists();
    if alive(pid) {
        // A server this run started (through amsu), by its PID.
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let t = Instant::now();
        while alive(pid) && t.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// `mariadb-dump --single-transaction --master-data=1 | mariadb`, the replica's master
/// host set beforehand so that the dump's `CHANGE MASTER TO MASTER_LOG_FILE=…` keeps it.
async fn mariadb_dump(
    master: &Sandbox,
    replica: &Sandbox,
    logs: &Path,
    out: &mut Outcome,
) -> Result<()> {
    let t = Instant::now();
    let mut r = Session::open(&replica.addr()).await?;
    r.exec(
        &change_master(master, None),
        "point the replica at the master",
    )
    .await?;
    out.phases
        .push(("change master host".into(), t.elapsed().as_secs_f64()));
    let pipeline = format!(
        "set -o pipefail; mariadb-dump --no-defaults -h127.0.0.1 -P{} -uroot --single-transaction \
         --master-data=1 --databases {DB} | mariadb --no-defaults -h127.0.0.1 -P{} -uroot",
        master.port(),
        replica.port()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &pipeline]);
    let run = run_tool(
        cmd,
        &logs.join("mariadb-dump.out"),
        &logs.join("mariadb-dump.err"),
    )
    .await?;
    out.account(&run);
    if !run.success {
        bail!(
            "mariadb-dump | mariadb failed ({}); see logs/mariadb-dump.err",
            run.status
        );
    }
    out.phases
        .push(("dump | load (piped)".into(), run.elapsed.as_secs_f64()));
    let t = Instant::now();
    r.exec("START SLAVE", "start replication").await?;
    out.phases.push(("start".into(), t.elapsed().as_secs_f64()));
    Ok(())
}

/// A mydumper/myloader pair: the programs, the log names and myloader's extra options.
struct Peer {
    mydumper: PathBuf,
    myloader: PathBuf,
    /// Prefix of the log files (`mydumper`, `mydumper-1.0`).
    log: &'static str,
    /// Extra arguments of myloader.
    loader_args: Vec<String>,
}

impl Peer {
    /// Debian 12's mydumper 0.10 on the PATH, with its defaults.
    fn debian() -> Peer {
        Peer {
            mydumper: "mydumper".into(),
            myloader: "myloader".into(),
            log: "mydumper",
            loader_args: Vec::new(),
        }
    }

    /// mydumper 1.0.x from `dir`: its defaults (`--optimize-keys
    /// AFTER_IMPORT_PER_TABLE`, INSERT statement files, binary log off in the load
    /// sessions), plus the global variables its shipped `mydumper.cnf` names as the ones
    /// "that will speed up the imports" (`[myloader_global_variables]`: `sync_binlog =
    /// 0`, `innodb_flush_log_at_trx_commit = 0`; myloader sets them for the load and sets
    /// them back after), written to a `--defaults-extra-file` in `work`.
    fn current(dir: &Path, work: &Path) -> Result<Peer> {
        let cnf = work.join("myloader-fresh-target.cnf");
        std::fs::write(
            &cnf,
            "[myloader_global_variables]\nsync_binlog = 0\ninnodb_flush_log_at_trx_commit = 0\n",
        )?;
        Ok(Peer {
            mydumper: dir.join("mydumper"),
            myloader: dir.join("myloader"),
            log: "mydumper-1.0",
            loader_args: vec![format!("--defaults-extra-file={}", cnf.display())],
        })
    }
}

/// `mydumper` into a directory, `myloader` from it, then `CHANGE MASTER` to the
/// coordinates of its `metadata` file.
async fn mydumper(
    a: &Args,
    peer: &Peer,
    master: &Sandbox,
    replica: &Sandbox,
    work: &Path,
    logs: &Path,
    out: &mut Outcome,
) -> Result<()> {
    let dump = work.join("dump");
    let log = |what: &str, ext: &str| logs.join(format!("{}-{what}.{ext}", peer.log));
    let mut cmd = Command::new(&peer.mydumper);
    cmd.args(["-h", "127.0.0.1", "-u", "root", "-P"])
        .arg(master.port().to_string())
        .args(["-B", DB, "-t"])
        .arg(a.threads.to_string())
        .arg("-o")
        .arg(&dump);
    let run = run_tool(cmd, &log("dump", "out"), &log("dump", "err")).await?;
    if !run.success {
        bail!(
            "mydumper failed ({}); see {}",
            run.status,
            log("dump", "err").display()
        );
    }
    out.phases
        .push(("backup (mydumper)".into(), run.elapsed.as_secs_f64()));
    out.account(&run);
    let meta = std::fs::read_to_string(dump.join("metadata")).context("mydumper metadata")?;
    let pos = parse_mydumper_metadata(&meta)
        .ok_or_else(|| anyhow!("no master coordinates in mydumper's metadata:\n{meta}"))?;
    let mut cmd = Command::new(&peer.myloader);
    cmd.args(&peer.loader_args)
        .args(["-h", "127.0.0.1", "-u", "root", "-P"])
        .arg(replica.port().to_string())
        .arg("-t")
        .arg(a.threads.to_string())
        .arg("-d")
        .arg(&dump);
    let run = run_tool(cmd, &log("load", "out"), &log("load", "err")).await?;
    if !run.success {
        bail!(
            "myloader failed ({}); see {}",
            run.status,
            log("load", "err").display()
        );
    }
    out.phases
        .push(("restore (myloader)".into(), run.elapsed.as_secs_f64()));
    out.account(&run);
    start_replication(master, replica, &pos, out).await
}

/// `mariadb-backup --backup`, `--prepare`, then replica stopped, `--copy-back` into its
/// empty data directory, replica started, `CHANGE MASTER` to `xtrabackup_binlog_info`.
async fn mariadb_backup(
    a: &Args,
    master: &Sandbox,
    replica: &mut Sandbox,
    work: &Path,
    logs: &Path,
    out: &mut Outcome,
) -> Result<()> {
    let target = work.join("backup");
    let mut cmd = Command::new("mariadb-backup");
    cmd.args([
        "--no-defaults",
        "--backup",
        "--host=127.0.0.1",
        "--user=root",
    ])
    .arg(format!("--port={}", master.port()))
    .arg(format!("--datadir={}", master.datadir().display()))
    .arg(format!("--target-dir={}", target.display()))
    .arg(format!("--parallel={}", a.threads));
    let run = run_tool(
        cmd,
        &logs.join("mariadb-backup.out"),
        &logs.join("mariadb-backup.err"),
    )
    .await?;
    if !run.success {
        bail!(
            "mariadb-backup --backup failed ({}); see logs/mariadb-backup.err",
            run.status
        );
    }
    out.phases
        .push(("backup".into(), run.elapsed.as_secs_f64()));
    out.account(&run);
    let mut cmd = Command::new("mariadb-backup");
    cmd.args(["--no-defaults", "--prepare"])
        .arg(format!("--target-dir={}", target.display()));
    let run = run_tool(
        cmd,
        &logs.join("mariadb-backup-prepare.out"),
        &logs.join("mariadb-backup-prepare.err"),
    )
    .await?;
    if !run.success {
        bail!(
            "mariadb-backup --prepare failed ({}); see logs/mariadb-backup-prepare.err",
            run.status
        );
    }
    out.phases
        .push(("prepare".into(), run.elapsed.as_secs_f64()));
    out.account(&run);

    let t = Instant::now();
    replica.shutdown().await?;
    empty_dir(replica.datadir())?;
    let mut cmd = Command::new("mariadb-backup");
    cmd.args(["--no-defaults", "--copy-back"])
        .arg(format!("--target-dir={}", target.display()))
        .arg(format!("--datadir={}", replica.datadir().display()))
        .arg(format!("--parallel={}", a.threads));
    let run = run_tool(
        cmd,
        &logs.join("mariadb-backup-copyback.out"),
        &logs.join("mariadb-backup-copyback.err"),
    )
    .await?;
    if !run.success {
        bail!(
            "mariadb-backup --copy-back failed ({}); see logs/mariadb-backup-copyback.err",
            run.status
        );
    }
    out.account(&run);
    replica.start().await?;
    out.phases
        .push(("copy-back + restart".into(), t.elapsed().as_secs_f64()));
    let info = std::fs::read_to_string(target.join("xtrabackup_binlog_info"))
        .context("xtrabackup_binlog_info")?;
    let pos = parse_xtrabackup_binlog_info(&info)
        .ok_or_else(|| anyhow!("cannot parse xtrabackup_binlog_info: {info:?}"))?;
    start_replication(master, replica, &pos, out).await
}

/// Stops the master, copies its data directory over the replica's, starts both and
/// points the replica at the master's new binary log. No write load (the master is down).
async fn cold_copy(
    master: &mut Sandbox,
    replica: &mut Sandbox,
    logs: &Path,
    out: &mut Outcome,
) -> Result<()> {
    let t0 = Instant::now();
    replica.shutdown().await?;
    master.shutdown().await?;
    out.phases
        .push(("stop master".into(), t0.elapsed().as_secs_f64()));
    let t = Instant::now();
    std::fs::remove_dir_all(replica.datadir())?;
    let mut cmd = Command::new("cp");
    cmd.arg("-a").arg(master.datadir()).arg(replica.datadir());
    let run = run_tool(
        cmd,
        &logs.join("cold-copy.out"),
        &logs.join("cold-copy.err"),
    )
    .await?;
    if !run.success {
        bail!("cp -a failed ({}); see logs/cold-copy.err", run.status);
    }
    out.account(&run);
    out.phases.push(("copy".into(), t.elapsed().as_secs_f64()));
    let t = Instant::now();
    tokio::try_join!(master.start(), replica.start())?;
    out.phases
        .push(("start both".into(), t.elapsed().as_secs_f64()));
    let mut s = Session::open(&master.addr()).await?;
    let pos = master_status(&mut s).await?;
    start_replication(master, replica, &pos, out).await?;
    let t = Instant::now();
    wait_caught_up(&master.addr(), &replica.addr()).await?;
    out.phases
        .push(("catch-up".into(), t.elapsed().as_secs_f64()));
    out.total = Some(t0.elapsed().as_secs_f64());
    out.note
        .push_str("no write load (the master was stopped). ");
    Ok(())
}

/// Lets the master flush the pages dirtied by the data load before any baseline is
/// measured (at most two minutes), so that the first method's baseline is not the
/// load's aftermath.
async fn settle(s: &mut Session) -> Result<()> {
    let pct = s
        .column(
            "SELECT @@GLOBAL.innodb_max_dirty_pages_pct",
            "dirty pages limit",
        )
        .await?
        .first()
        .cloned()
        .unwrap_or_else(|| "90".into());
    s.exec(
        "SET GLOBAL innodb_max_dirty_pages_pct = 0",
        "flush dirty pages",
    )
    .await?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let dirty = s
            .column(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'",
                "dirty pages",
            )
            .await?;
        if dirty
            .first()
            .and_then(|d| d.parse::<u64>().ok())
            .unwrap_or(0)
            < 100
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    s.exec(
        &format!("SET GLOBAL innodb_max_dirty_pages_pct = {pct}"),
        "restore the dirty pages limit",
    )
    .await?;
    eprintln!(
        "master settled (dirty pages flushed) in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn change_master(master: &Sandbox, pos: Option<&BinlogPos>) -> String {
    let mut sql = format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD=''",
        master.port()
    );
    if let Some(p) = pos {
        let _ = write!(
            sql,
            ", MASTER_LOG_FILE='{}', MASTER_LOG_POS={}",
            p.file.replace('\'', "''"),
            p.pos
        );
    }
    sql
}

async fn start_replication(
    master: &Sandbox,
    replica: &Sandbox,
    pos: &BinlogPos,
    out: &mut Outcome,
) -> Result<()> {
    let t = Instant::now();
    let mut r = Session::open(&replica.addr()).await?;
    r.exec(&change_master(master, Some(pos)), "change master")
        .await?;
    r.exec("START SLAVE", "start replication").await?;
    out.phases.push((
        format!("change master ({pos}) + start"),
        t.elapsed().as_secs_f64(),
    ));
    Ok(())
}

async fn master_status(s: &mut Session) -> Result<BinlogPos> {
    let row = s
        .first_row("SHOW MASTER STATUS", "master status")
        .await?
        .ok_or_else(|| anyhow!("SHOW MASTER STATUS is empty: binary log off?"))?;
    Ok(BinlogPos {
        file: field(&row, "File").unwrap_or_default().to_string(),
        pos: field(&row, "Position")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("no Position in SHOW MASTER STATUS"))?,
    })
}

/// Waits until the replica has applied a master position sampled at most
/// [`CAUGHT_UP_WITHIN`] before: the same "caught up" for every method.
async fn wait_caught_up(master: &ServerAddr, replica: &ServerAddr) -> Result<()> {
    let mut m = Session::open(master).await?;
    let mut r = Session::open(replica).await?;
    let start = Instant::now();
    loop {
        let pos = master_status(&mut m).await?;
        let sampled = Instant::now();
        let left = WAIT_TIMEOUT
            .saturating_sub(start.elapsed())
            .as_secs()
            .max(1);
        let got = r
            .column(
                &format!(
                    "SELECT MASTER_POS_WAIT('{}', {}, {left})",
                    pos.file.replace('\'', "''"),
                    pos.pos
                ),
                "wait for the replica",
            )
            .await?;
        match got.first().map(String::as_str) {
            Some("") | None => {
                let st = r
                    .first_row("SHOW SLAVE STATUS", "replica status")
                    .await?
                    .unwrap_or_default();
                bail!(
                    "replication is not running: IO {:?} SQL {:?}: {} {}",
                    field(&st, "Slave_IO_Running"),
                    field(&st, "Slave_SQL_Running"),
                    field(&st, "Last_IO_Error").unwrap_or_default(),
                    field(&st, "Last_SQL_Error").unwrap_or_default()
                );
            }
            Some("-1") => bail!("the replica did not catch up within {WAIT_TIMEOUT:?}"),
            Some(_) => {}
        }
        if sampled.elapsed() <= CAUGHT_UP_WITHIN {
            return Ok(());
        }
    }
}

/// The sysbench write load, its per-second reports collected with their arrival time.
struct Load {
    child: Child,
    seconds: Arc<Mutex<Vec<TimedSecond>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Load {
    fn start(master: &Sandbox, tables: u32, rows: u64, a: &Args, log: &Path) -> Result<Load> {
        let mut child = sysbench(master, tables, rows)
            .arg(format!("--threads={}", a.load_threads))
            .arg(format!("--rate={}", a.rate))
            .args(["--time=0", "--report-interval=1", "--percentile=100", "run"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start sysbench")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let seconds = Arc::new(Mutex::new(Vec::new()));
        let sink = seconds.clone();
        let mut logfile = std::fs::File::create(log)?;
        let reader = std::thread::spawn(move || {
            use std::io::Write;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let at = Instant::now();
                let _ = writeln!(logfile, "{line}");
                if let Some(second) = parse_sysbench_line(&line) {
                    sink.lock()
                        .expect("load lock")
                        .push(TimedSecond { at, second });
                }
            }
        });
        Ok(Load {
            child,
            seconds,
            reader,
        })
    }

    /// The seconds reported so far.
    fn seconds(&self) -> Vec<TimedSecond> {
        self.seconds.lock().expect("load lock").clone()
    }

    fn stop(mut self) -> Result<Vec<TimedSecond>> {
        // Our own child, by its handle (SIGKILL): its reports are already read.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.reader.join();
        let v = self.seconds.lock().expect("load lock").clone();
        Ok(v)
    }
}

fn sysbench(master: &Sandbox, tables: u32, rows: u64) -> Command {
    let mut c = Command::new("sysbench");
    c.arg("oltp_write_only")
        .arg("--db-driver=mysql")
        .arg("--mysql-host=127.0.0.1")
        .arg(format!("--mysql-port={}", master.port()))
        .arg("--mysql-user=root")
        .arg("--mysql-password=")
        .arg(format!("--mysql-db={DB}"))
        .arg(format!("--tables={tables}"))
        .arg(format!("--table-size={rows}"));
    c
}

/// A finished child process.
struct ToolRun {
    success: bool,
    status: String,
    elapsed: Duration,
    peak_rss_kib: Option<u64>,
    cpu_secs: Option<f64>,
}

/// Runs `cmd` with stdout and stderr to files and measures its wall time and peak RSS:
/// with `/usr/bin/time -f %M` when installed (covers the child's descendants), else by
/// polling `VmHWM` of the child itself.
async fn run_tool(cmd: Command, stdout: &Path, stderr: &Path) -> Result<ToolRun> {
    let gnu_time = Path::new("/usr/bin/time");
    let rss_file = stdout.with_extension("rss");
    let mut cmd = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.args(["-f", "%M %U %S", "-o"])
            .arg(&rss_file)
            .arg(cmd.get_program());
        c.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    } else {
        cmd
    };
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(stdout)?)
        .stderr(std::fs::File::create(stderr)?);
    let t = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let pid = child.id();
    let mut hwm = None;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            hwm = parse_vm_hwm_kib(&st).or(hwm);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = t.elapsed();
    // GNU time's last line: "MAXRSS_KIB USER_SECS SYS_SECS".
    let timed: Option<(u64, f64)> = if gnu_time.exists() {
        std::fs::read_to_string(&rss_file).ok().and_then(|s| {
            let last = s.lines().last()?.to_string();
            let f: Vec<&str> = last.split_whitespace().collect();
            let rss = f.first()?.parse().ok()?;
            let cpu = f.get(1)?.parse::<f64>().ok()? + f.get(2)?.parse::<f64>().ok()?;
            Some((rss, cpu))
        })
    } else {
        None
    };
    let (peak_rss_kib, cpu_secs) = match timed {
        Some((r, c)) => (Some(r), Some(c)),
        None => (hwm, None),
    };
    Ok(ToolRun {
        success: status.success(),
        status: status.to_string(),
        elapsed,
        peak_rss_kib,
        cpu_secs,
    })
}

async fn innodb_mb(addr: &ServerAddr) -> Result<f64> {
    let mut s = Session::open(addr).await?;
    let v = s
        .column(
            &format!(
                "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{DB}'"
            ),
            "dataset size",
        )
        .await?;
    Ok(v.first().and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) / 1e6)
}

fn empty_dir(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// `program` in `$PATH` or where packages install it ([`amsu_mysql::programs`]).
fn which(program: &str) -> Option<PathBuf> {
    amsu_mysql::programs::find(&[program])
}

fn require(program: &str) -> Result<()> {
    which(program)
        .map(|_| ())
        .ok_or_else(|| anyhow!("`{program}` is not installed (apt-get install {program})"))
}

/// The `--method` values the amsu binary accepts, from its `setup --help` (clap's short
/// `[possible values: a, b]` or long `Possible values:` / `- a: …` form).
fn amsu_methods(amsu: &Path) -> Result<Vec<String>> {
    let out = Command::new(amsu).args(["setup", "--help"]).output()?;
    let help = String::from_utf8_lossy(&out.stdout);
    if let Some(list) = help
        .split("[possible values:")
        .nth(1)
        .and_then(|s| s.split(']').next())
    {
        return Ok(list.split(',').map(|m| m.trim().to_string()).collect());
    }
    let Some(after) = help.split("--method").nth(1) else {
        return Ok(vec!["logical".into()]);
    };
    let methods: Vec<String> = after
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("--") && !l.starts_with("[default"))
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split(':').next())
        .map(|m| m.trim().to_string())
        .collect();
    Ok(if methods.is_empty() {
        vec!["logical".into()]
    } else {
        methods
    })
}

fn capture(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if s.is_empty() {
                s = String::from_utf8_lossy(&o.stderr).trim().to_string();
            }
            s.lines().next().unwrap_or_default().to_string()
        })
        .unwrap_or_else(|_| "not installed".into())
}

/// The machine and the tools' versions, for the report.
fn machine_facts(amsu: &Path, mydumper10: Option<&Path>) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        })
        .and_then(|k| k.parse::<f64>().ok())
        .map(|k| format!("{:.1} GiB", k / 1048576.0))
        .unwrap_or_default();
    let mut s = String::new();
    let _ = writeln!(s, "- CPU: {} × {cpu}", capture("nproc", &[]));
    let _ = writeln!(s, "- memory: {mem}");
    let _ = writeln!(
        s,
        "- disk: {}",
        capture(
            "sh",
            &[
                "-c",
                "df -h --output=source,fstype,size,avail /tmp | tail -1"
            ]
        )
    );
    let _ = writeln!(s, "- kernel: {}", capture("uname", &["-r"]));
    let _ = writeln!(s, "- load before the run: {}", capture("uptime", &[]));
    let _ = writeln!(s, "- server: {}", capture("mariadbd", &["--version"]));
    let amsu_v = capture(&amsu.display().to_string(), &["--version"]);
    let _ = writeln!(s, "- amsu: {amsu_v}");
    for (p, arg) in [
        ("sysbench", "--version"),
        ("mariadb-dump", "--version"),
        ("mydumper", "--version"),
        ("mariadb-backup", "--version"),
    ] {
        let _ = writeln!(s, "- {p}: {}", capture(p, &[arg]));
    }
    if let Some(d) = mydumper10 {
        let _ = writeln!(
            s,
            "- mydumper 1.0: {}",
            capture(&d.join("mydumper").display().to_string(), &["--version"])
        );
    }
    s
}

fn phases_text(p: &[(String, f64)]) -> String {
    p.iter()
        .map(|(n, s)| format!("{n} {s:.1}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Text fit for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".into())
}

/// The Markdown report: machine, dataset, one row per method, ratios, targets.
fn render(
    machine: &str,
    dataset: &str,
    params: &str,
    r: &BTreeMap<Method, Outcome>,
    skipped: &[String],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Machine\n\n{machine}");
    let _ = writeln!(
        s,
        "- {dataset}\n- {params}\n- load after the run: {}\n",
        capture("uptime", &[])
    );
    let _ = writeln!(
        s,
        "| method | to caught-up (s) | phases (s) | tps before | tps during (mean / worst s) | worst s lat before → during (ms) | p95 s lat before → during (ms) | commit blocked (ms) | tool peak RSS (MB) | tool CPU (s) | master / replica server CPU (s) | data equal |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for (m, o) in r {
        if let Some(e) = &o.error {
            let _ = writeln!(
                s,
                "| {} | FAILED | {} | | | | | | | | | {} |",
                cell(m.label()),
                cell(e),
                cell(&o.note)
            );
            continue;
        }
        let load = |l: &LoadSummary| l.seconds > 0;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {}{} |",
            cell(m.label()),
            opt(o.total, |t| format!("{t:.1}")),
            cell(&phases_text(&o.phases)),
            if load(&o.before) {
                format!("{:.0}", o.before.mean_tps)
            } else {
                "–".into()
            },
            if load(&o.during) {
                format!("{:.0} / {:.0}", o.during.mean_tps, o.during.worst_tps)
            } else {
                "–".into()
            },
            if load(&o.during) {
                format!(
                    "{:.1} → {:.1}",
                    o.before.worst_lat_ms, o.during.worst_lat_ms
                )
            } else {
                "–".into()
            },
            if load(&o.during) {
                format!("{:.1} → {:.1}", o.before.p95_lat_ms, o.during.p95_lat_ms)
            } else {
                "–".into()
            },
            opt(o.commit_blocked_ms, |v| format!("{v:.1}")),
            opt(o.peak_rss_kib, |k| format!("{:.0}", k as f64 / 1024.0)),
            opt(o.cpu_secs, |c| format!("{c:.1}")),
            opt(o.master_cpu_secs, |c| format!("{c:.1}")),
            opt(o.replica_cpu_secs, |c| format!("{c:.1}")),
            match o.equal {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "–",
            },
            if o.note.is_empty() {
                String::new()
            } else {
                format!("; {}", cell(o.note.trim()))
            }
        );
    }
    let _ = writeln!(
        s,
        "\nWhere each method's worst second of write latency fell:\n"
    );
    for (m, o) in r {
        if o.error.is_none() && o.during.seconds > 0 {
            let _ = writeln!(
                s,
                "- {}: {:.1} ms, the second ending {:.1} s after the start ({})",
                m.label(),
                o.during.worst_lat_ms,
                o.during.worst_at_s,
                phase_at(&o.phases, o.during.worst_at_s)
            );
        }
    }
    if !skipped.is_empty() {
        let _ = writeln!(s, "\nNot run: {}.", skipped.join("; "));
    }

    let total = |m: Method| {
        r.get(&m)
            .filter(|o| o.error.is_none())
            .and_then(|o| o.total)
    };
    let amsu_methods: Vec<Method> = r
        .keys()
        .copied()
        .filter(|m| m.amsu_method().is_some())
        .collect();
    let _ = writeln!(s, "\n### Ratios (time to caught-up, amsu ÷ peer)\n");
    for &am in &amsu_methods {
        let Some(at) = total(am) else { continue };
        for peer in [
            Method::MariadbDump,
            Method::Mydumper,
            Method::Mydumper10,
            Method::MariadbBackup,
            Method::ColdCopy,
        ] {
            if let Some(pt) = total(peer) {
                let _ = writeln!(s, "- {} ÷ {}: {:.2}×", am.label(), peer.label(), at / pt);
            }
        }
    }
    // Each knob against the default run.
    if let Some(base) = total(Method::AmsuLogical) {
        for knob in [
            Method::AmsuLogicalDurable,
            Method::AmsuLogicalUngoverned,
            Method::AmsuLogicalBulk,
            Method::AmsuLogicalAutoThreads,
        ] {
            if let Some(k) = total(knob) {
                let _ = writeln!(
                    s,
                    "- knob: {} ÷ amsu logical: {:.2}× ({k:.1} s vs {base:.1} s)",
                    knob.label(),
                    k / base
                );
            }
        }
    }
    // Issue 17: the master's reads and the kill-and-rerun against the uninterrupted run.
    let reads: Vec<(Method, MasterCounters)> = r
        .iter()
        .filter(|(_, o)| o.error.is_none())
        .filter_map(|(m, o)| o.master_read.map(|c| (*m, c)))
        .collect();
    if !reads.is_empty() {
        let _ = writeln!(s, "\n### Master reads while amsu ran (Bytes_sent, Innodb_rows_read; the write load's share included)\n");
        for (m, c) in &reads {
            let _ = writeln!(
                s,
                "- {}: {:.1} MB sent, {} rows read",
                m.label(),
                c.bytes_sent as f64 / 1e6,
                c.rows_read
            );
        }
    }
    let full = r.get(&Method::AmsuLogical).filter(|o| o.error.is_none());
    let killed = r
        .get(&Method::AmsuLogicalKillRerun)
        .filter(|o| o.error.is_none());
    if let (Some(full), Some(killed)) = (full, killed) {
        let _ = writeln!(s, "\n### Kill -9 mid-copy, then rerun (issue 17)\n");
        if let (Some(ft), Some(kt)) = (full.total, killed.total) {
            let _ = writeln!(
                s,
                "- total time (killed run + rerun, to caught-up) ÷ uninterrupted: {kt:.1} s ÷ {ft:.1} s = {:.2}× (target ≤ 1.15×) — {}",
                kt / ft,
                verdict(kt <= 1.15 * ft)
            );
        }
        if let (Some(f), Some(rr)) = (full.master_read, killed.rerun_read) {
            let share = |a: u64, b: u64| 100.0 * a as f64 / (b.max(1)) as f64;
            let bytes = share(rr.bytes_sent, f.bytes_sent);
            let _ = writeln!(
                s,
                "- master bytes sent during the rerun ÷ during the uninterrupted run: {:.1} MB ÷ {:.1} MB = {bytes:.0} % (target ≤ 60 %) — {}; Innodb rows read: {:.0} %",
                rr.bytes_sent as f64 / 1e6,
                f.bytes_sent as f64 / 1e6,
                verdict(bytes <= 60.0),
                share(rr.rows_read, f.rows_read)
            );
        }
    }

    let _ = writeln!(s, "\n### Targets\n");
    let fastest_logical_peer = [Method::MariadbDump, Method::Mydumper, Method::Mydumper10]
        .into_iter()
        .filter_map(|m| total(m).map(|t| (m, t)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    for am in [Method::AmsuLogical, Method::AmsuOutfile] {
        if !r.contains_key(&am) {
            continue;
        }
        match (total(am), fastest_logical_peer) {
            (Some(at), Some((pm, pt))) => {
                let _ = writeln!(
                    s,
                    "- time to caught-up ≤ 0.5 × the fastest logical peer ({}: {pt:.1} s → limit {:.1} s): {} {at:.1} s = {:.2}× — {}",
                    pm.label(),
                    0.5 * pt,
                    am.label(),
                    at / pt,
                    verdict(at <= 0.5 * pt)
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "- time to caught-up ≤ 0.5 × the fastest logical peer: {} not measured (it or every logical peer failed or did not run)",
                    am.label()
                );
            }
        }
    }
    for &am in &amsu_methods {
        let Some(o) = r.get(&am).filter(|o| o.error.is_none()) else {
            continue;
        };
        if o.during.seconds > 0 && o.before.seconds > 0 {
            let limit = o.before.worst_lat_ms + 50.0;
            let _ = writeln!(
                s,
                "- worst per-second write latency during setup ≤ baseline + 50 ms ({:.1} + 50 = {limit:.1} ms): {} {:.1} ms — {}",
                o.before.worst_lat_ms,
                am.label(),
                o.during.worst_lat_ms,
                verdict(o.during.worst_lat_ms <= limit)
            );
        } else {
            let _ = writeln!(
                s,
                "- write latency during setup ≤ baseline + 50 ms: {} not measured",
                am.label()
            );
        }
    }
    match (
        total(Method::AmsuLogical),
        total(Method::AmsuLogicalUngoverned),
    ) {
        (Some(g), Some(u)) => {
            let _ = writeln!(
                s,
                "- governed at most 25 % slower than ungoverned ({u:.1} s → limit {:.1} s): amsu logical {g:.1} s — {}",
                1.25 * u,
                verdict(g <= 1.25 * u)
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "- governed at most 25 % slower than ungoverned: not measured (run amsu-logical and amsu-logical-ungoverned)"
            );
        }
    }
    for am in [Method::AmsuLogical, Method::AmsuOutfile] {
        let Some(o) = r.get(&am).filter(|o| o.error.is_none()) else {
            continue;
        };
        match o.commit_blocked_ms {
            Some(ms) => {
                let _ = writeln!(
                    s,
                    "- commit-blocked window ≤ 20 ms (from the lock request): {} {ms:.1} ms — {}",
                    am.label(),
                    verdict(ms <= 20.0)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "- commit-blocked window ≤ 20 ms: {} did not report it",
                    am.label()
                );
            }
        }
    }
    for &am in &amsu_methods {
        let Some(o) = r.get(&am).filter(|o| o.error.is_none()) else {
            continue;
        };
        match o.peak_rss_kib {
            Some(k) => {
                let mb = k as f64 / 1024.0;
                let _ = writeln!(
                    s,
                    "- amsu peak RSS ≤ 256 MB: {} {mb:.0} MB — {}",
                    am.label(),
                    verdict(mb <= 256.0)
                );
            }
            None => {
                let _ = writeln!(s, "- amsu peak RSS ≤ 256 MB: {} not measured", am.label());
            }
        }
    }
    match (total(Method::AmsuPhysical), total(Method::MariadbBackup)) {
        (Some(p), Some(b)) => {
            let _ = writeln!(
                s,
                "- amsu physical ≤ 1.1 × manual mariadb-backup ({b:.1} s → limit {:.1} s): {p:.1} s — {}",
                1.1 * b,
                verdict(p <= 1.1 * b)
            );
        }
        _ => {
            let _ = writeln!(s, "- amsu physical ≤ 1.1 × manual mariadb-backup: not measured (amsu physical or manual mariadb-backup not in this run, or a run failed)");
        }
    }
    let _ = writeln!(
        s,
        "- data equal on every replica: {}",
        verdict(r.values().all(|o| o.equal == Some(true)))
    );
    s
}
