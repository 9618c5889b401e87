//! `amsu demo`: the whole job on two local sandboxes, under a live write load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amsu_backup::{LogicalCopy, LogicalOptions};
use amsu_core::{EventSink, MasterServer, ReplicaServer, Setup, SetupOptions};
use amsu_mysql::conn::Session;
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use amsu_mysql::{MysqlMaster, MysqlReplica};
use anyhow::{anyhow, Context, Result};

use crate::args::DemoArgs;
use crate::render::Renderer;
use crate::{exit, Exit};

/// The sample dataset: two databases, foreign keys, a table without a primary key, a
/// MyISAM table, a view, a procedure, a trigger, an event and an account.
fn dataset(rows: u64) -> Vec<String> {
    let customers = (rows / 10).max(10);
    vec![
        "CREATE DATABASE shop CHARACTER SET utf8mb4".into(),
        "USE shop".into(),
        "CREATE TABLE shop.customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, \
         email VARCHAR(200), balance DECIMAL(12,2) NOT NULL DEFAULT 0, created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB".into(),
        format!("INSERT INTO shop.customers (name, email, balance) SELECT CONCAT('customer ', seq), \
         IF(seq % 7 = 0, NULL, CONCAT('c', seq, '@example.com')), seq % 1000 FROM seq_1_to_{customers}"),
        "CREATE TABLE shop.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, \
         amount DECIMAL(12,2) NOT NULL, note TEXT, placed DATETIME(6) NOT NULL, \
         FOREIGN KEY (customer_id) REFERENCES shop.customers(id)) ENGINE=InnoDB".into(),
        format!("INSERT INTO shop.orders (customer_id, amount, note, placed) SELECT 1 + seq % {customers}, \
         (seq % 10000) / 100, IF(seq % 3 = 0, NULL, REPEAT(CHAR(65 + seq % 26), 1 + seq % 80)), \
         '2026-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}"),
        "CREATE TABLE shop.audit_log (at DATETIME NOT NULL, message VARCHAR(255)) ENGINE=InnoDB".into(),
        format!("INSERT INTO shop.audit_log SELECT '2026-01-01' + INTERVAL seq MINUTE, CONCAT('event\\t', seq) FROM seq_1_to_{}", (rows / 20).max(10)),
        "CREATE TABLE shop.settings (name VARCHAR(64) PRIMARY KEY, value VARCHAR(255)) ENGINE=MyISAM".into(),
        "INSERT INTO shop.settings VALUES ('currency', 'EUR'), ('tax', '0.19')".into(),
        "CREATE VIEW shop.big_orders AS SELECT id, customer_id, amount FROM shop.orders WHERE amount > 90".into(),
        "CREATE PROCEDURE shop.add_order(IN c INT, IN a DECIMAL(12,2)) BEGIN \
         INSERT INTO shop.orders (customer_id, amount, placed) VALUES (c, a, NOW(6)); END".into(),
        "CREATE TRIGGER shop.orders_balance AFTER INSERT ON shop.orders FOR EACH ROW \
         UPDATE shop.customers SET balance = balance + NEW.amount WHERE id = NEW.customer_id".into(),
        "CREATE DATABASE analytics CHARACTER SET latin1".into(),
        "CREATE TABLE analytics.daily (day DATE PRIMARY KEY, orders INT, revenue DECIMAL(14,2)) ENGINE=InnoDB".into(),
        "INSERT INTO analytics.daily SELECT DATE(placed), COUNT(*), SUM(amount) FROM shop.orders GROUP BY DATE(placed)".into(),
        "CREATE USER 'shop_app'@'%' IDENTIFIED BY 'demo-app-password'".into(),
        "GRANT SELECT, INSERT, UPDATE ON shop.* TO 'shop_app'@'%'".into(),
    ]
}

/// A writer committing small transactions on the master until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<Result<()>>,
}

impl Writer {
    fn start(master: amsu_core::ServerAddr) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), commits.clone());
        let handle = tokio::spawn(async move {
            let mut m = Session::open(&master).await?;
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                i += 1;
                m.exec("START TRANSACTION", "writer").await?;
                m.exec(
                    &format!(
                        "INSERT INTO shop.orders (customer_id, amount, note, placed) VALUES ({}, {}.{:02}, 'live write {i}', NOW(6))",
                        1 + i % 10,
                        i % 100,
                        i % 100
                    ),
                    "writer insert",
                )
                .await?;
                m.exec(
                    &format!("UPDATE shop.customers SET email = CONCAT('w', {i}, '@example.com') WHERE id = {}", 1 + i % 50),
                    "writer update",
                )
                .await?;
                m.exec("COMMIT", "writer commit").await?;
                c.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(())
        });
        Writer {
            stop,
            commits,
            handle,
        }
    }

    async fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .await
            .map_err(|e| anyhow!("writer panicked: {e}"))??;
        Ok(self.commits.load(Ordering::Relaxed))
    }
}

pub(crate) async fn run(a: DemoArgs) -> Result<i32, Exit> {
    demo(a).await.map_err(|e| Exit(exit::FAILED, e))
}

async fn demo(a: DemoArgs) -> Result<i32> {
    let started = Instant::now();
    let tmp;
    let base = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    outln!(
        "amsu demo: deploying a master and a replica sandbox under {}",
        base.display()
    );
    let opts = |name: &str, id: u32| {
        SandboxOptions::new(name)
            .base_dir(&base)
            .server_id(id)
            .detached(a.keep)
    };
    let (master_sb, replica_sb) = tokio::try_join!(
        Sandbox::deploy(opts("demo-master", 1)),
        Sandbox::deploy(opts("demo-replica", 2)),
    )?;
    outln!("  master  {} ({})", master_sb.url(), master_sb.version());
    outln!("  replica {}", replica_sb.url());

    let t = Instant::now();
    let mut m = Session::open(&master_sb.addr()).await?;
    for sql in dataset(a.rows) {
        m.exec(&sql, "loading the sample dataset").await?;
    }
    outln!(
        "loaded the sample dataset ({} orders) in {:.1} s",
        a.rows,
        t.elapsed().as_secs_f64()
    );

    let writer = Writer::start(master_sb.addr());
    tokio::time::sleep(Duration::from_millis(300)).await;
    outln!("a writer is committing transactions on the master; running amsu setup…");

    let master = MysqlMaster::new(master_sb.addr());
    let replica = MysqlReplica::new(replica_sb.addr());
    let mut lopts = LogicalOptions::default();
    if let Some(n) = a.threads {
        lopts = lopts.threads(n);
    }
    let copier = LogicalCopy::new(master_sb.addr(), replica_sb.addr(), lopts);
    let setup = Setup::new(
        &master,
        &replica,
        &copier,
        SetupOptions::new("127.0.0.1", master_sb.port()).wait_caught_up(true),
    );
    let renderer = Arc::new(Renderer::new(false));
    let t = Instant::now();
    let sink: Arc<dyn EventSink> = renderer.clone();
    let report = setup.run(sink).await;
    renderer.finish();
    let report = report.map_err(|e| anyhow!("setup failed: {e}"))?;
    let setup_secs = t.elapsed().as_secs_f64();

    let commits = writer.stop().await?;
    let final_pos = master.binlog_position().await.map_err(|e| anyhow!("{e}"))?;
    replica
        .wait_until_applied(&final_pos, Duration::from_secs(300))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let outcome = amsu_mysql::verify::verify(
        &master_sb.addr(),
        &replica_sb.addr(),
        Duration::from_secs(300),
    )
    .await?;

    outln!();
    outln!("Summary");
    outln!(
        "  setup took {setup_secs:.1} s; master commits blocked {:.1} ms",
        report.copy.commit_blocked_ms
    );
    outln!(
        "  copied {} databases, {} tables, {} rows, {}, {} objects, {} accounts",
        report.copy.databases,
        report.copy.tables,
        report.copy.rows,
        amsu_core::human::bytes(report.copy.bytes),
        report.copy.objects,
        report.copy.accounts
    );
    if let Some(c) = &report.copy.coordinates {
        outln!("  snapshot coordinates {c}");
    }
    outln!("  {commits} transactions committed on the master during and after the setup, all replicated");
    for d in &outcome.differences {
        outln!("    {}", crate::verify_cmd::difference_line(d));
    }
    outln!("  {}", crate::verify_cmd::summary_line(&outcome));
    outln!("  total {:.1} s", started.elapsed().as_secs_f64());
    if a.keep {
        let (mi, ri) = (master_sb.keep(), replica_sb.keep());
        outln!("Sandboxes kept running:");
        outln!(
            "  master:  mariadb -h127.0.0.1 -P{} -uroot   (pid {})",
            mi.port,
            mi.pid
        );
        outln!(
            "  replica: mariadb -h127.0.0.1 -P{} -uroot   (pid {})",
            ri.port,
            ri.pid
        );
        outln!(
            "Stop them with: amsu sandbox stop --home {} demo-master --remove (and demo-replica)",
            base.display()
        );
    } else {
        master_sb.stop().await?;
        replica_sb.stop().await?;
        if a.dir.is_none() {
            let _ = std::fs::remove_dir_all(&base);
        }
        outln!("Sandboxes stopped and removed.");
    }
    Ok(if outcome.differences.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// A new directory for the demo's sandboxes, kept (the demo says where it is).
fn tempfile_dir() -> Result<std::path::PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix("amsu-demo-")
        .tempdir()
        .context("cannot create a directory for the demo")?
        .keep())
}
