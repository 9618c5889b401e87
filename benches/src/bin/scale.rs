//! `scale`: amsu on a master with very many small tables (schemas-per-tenant servers).
//!
//! Deploys a master and a replica sandbox, creates `--tables` small tables (two rows, a
//! primary key, a secondary key and a TEXT column each) spread over databases of
//! `--per-db` tables, then times `amsu check`, `amsu setup --method logical` and, when
//! installed, `mydumper` + `myloader` into a second empty replica. Prints a Markdown
//! table. `--generate-only` just creates the tables and leaves the master running (for
//! 100,000 tables and more, by hand).
//!
//! ```sh
//! cargo build --release -p amsu-cli -p amsu-benches
//! target/release/scale --tables 10000
//! target/release/scale --tables 100000 --skip-setup
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use amsu_core::ServerAddr;
use amsu_mysql::conn::Session;
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "amsu check and setup on a master with very many tables")]
struct Args {
    /// Tables to create.
    #[arg(long, default_value_t = 10_000)]
    tables: usize,
    /// Tables per database.
    #[arg(long, default_value_t = 500)]
    per_db: usize,
    /// Where the sandboxes live (default: a new directory in /dev/shm when it exists,
    /// else in the system's temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The amsu binary (default: `amsu` next to this program).
    #[arg(long)]
    amsu: Option<PathBuf>,
    /// Worker threads for amsu setup and myloader/mydumper.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Do not run `amsu setup` (nor mydumper).
    #[arg(long)]
    skip_setup: bool,
    /// Only create the tables; keep the master running and print its URL.
    #[arg(long)]
    generate_only: bool,
}

fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().context("binary directory")?.join(name))
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Creates the tables, many statements per round trip, over two connections.
async fn generate(addr: &ServerAddr, tables: usize, per_db: usize) -> Result<()> {
    let dbs = tables.div_ceil(per_db);
    let mut jobs = Vec::new();
    for half in 0..2 {
        let addr = addr.clone();
        jobs.push(tokio::spawn(async move {
            let mut s = Session::open(&addr).await?;
            for d in (half..dbs).step_by(2) {
                s.exec(&format!("CREATE DATABASE tenant{d}"), "creating a database")
                    .await?;
                let n = per_db.min(tables - d * per_db);
                for batch in (0..n).collect::<Vec<_>>().chunks(100) {
                    let sql: String = batch
                        .iter()
                        .map(|t| {
                            format!(
                                "CREATE TABLE tenant{d}.t{t} (id INT PRIMARY KEY, v VARCHAR(20), \
                                 n TEXT, KEY (v)) ENGINE=InnoDB; \
                                 INSERT INTO tenant{d}.t{t} VALUES (1, 'a{t}', 'b'), (2, 'c', NULL);"
                            )
                        })
                        .collect();
                    s.exec(&sql, "creating tables").await?;
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for j in jobs {
        j.await??;
    }
    Ok(())
}

fn timed(what: &str, cmd: &mut Command) -> Result<Duration> {
    let started = Instant::now();
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("{what}: {:.1} s", took.as_secs_f64());
    Ok(took)
}

fn url(sb: &Sandbox) -> String {
    format!("mysql://root@127.0.0.1:{}", sb.port())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let amsu = match a.amsu.clone() {
        Some(p) => p,
        None => sibling("amsu")?,
    };
    let dir = match &a.dir {
        Some(d) => tempfile_in(d)?,
        None if std::path::Path::new("/dev/shm").is_dir() => tempfile_in("/dev/shm")?,
        None => tempfile_in(std::env::temp_dir())?,
    };
    let base = SandboxOptions::new("x").base_dir(&dir);
    let master = Sandbox::deploy(base.clone().name("master").server_id(1)).await?;
    let started = Instant::now();
    generate(&master.addr(), a.tables, a.per_db).await?;
    let generated = started.elapsed();
    eprintln!(
        "created {} tables in {:.1} s",
        a.tables,
        generated.as_secs_f64()
    );
    if a.generate_only {
        println!("master: {} (directory {})", url(&master), dir.display());
        master.keep();
        return Ok(());
    }
    let mut rows = vec![(format!("create {} tables (generator)", a.tables), generated)];
    rows.push((
        "amsu check".into(),
        timed(
            "amsu check",
            Command::new(&amsu).args(["check", "--master", &url(&master)]),
        )?,
    ));
    if !a.skip_setup {
        let replica = Sandbox::deploy(base.clone().name("replica").server_id(2)).await?;
        let took = timed(
            "amsu setup",
            Command::new(&amsu)
                .args(["setup", "--master", &url(&master)])
                .args(["--replica", &url(&replica), "--yes"])
                .args(["--threads", &a.threads.to_string()])
                .arg("--journal")
                .arg(dir.join("journal.json")),
        )?;
        rows.push(("amsu setup --method logical".into(), took));
        if have("mydumper") && have("myloader") {
            let peer = Sandbox::deploy(base.clone().name("peer").server_id(3)).await?;
            let out = dir.join("dump");
            let port = master.port().to_string();
            let threads = a.threads.to_string();
            let dump = timed(
                "mydumper",
                Command::new("mydumper")
                    .args(["-h", "127.0.0.1", "-P", &port, "-u", "root"])
                    .args(["-t", &threads, "--trx-consistency-only", "-o"])
                    .arg(&out)
                    .args(["--regex", "^tenant"]),
            )?;
            let load = timed(
                "myloader",
                Command::new("myloader")
                    .args(["-h", "127.0.0.1", "-P", &peer.port().to_string()])
                    .args(["-u", "root", "-t", &threads, "-d"])
                    .arg(&out),
            )?;
            rows.push(("mydumper".into(), dump));
            rows.push(("myloader".into(), load));
            rows.push(("mydumper + myloader".into(), dump + load));
        }
    }
    println!("| {} tables | seconds | ms per table |", a.tables);
    println!("|---|---:|---:|");
    for (what, took) in rows {
        println!(
            "| {what} | {:.1} | {:.2} |",
            took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / a.tables as f64
        );
    }
    drop(master);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A new directory under `parent`, left for the caller to remove.
fn tempfile_in(parent: impl AsRef<std::path::Path>) -> Result<PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix("amsu-scale-")
        .tempdir_in(parent)?
        .keep())
}
