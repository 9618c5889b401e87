//! A hostile user against the fan-out (`amsu setup --replica A --replica B …`, streamed:
//! the replicas load each chunk as the dump writes it) and the restore fan-out: a replica
//! holding the operator's data among others, the master's dump killed mid-stream, a
//! spool directory that is not amsu's (foreign files, another master's image), SIGINT
//! mid-stream, and an image with one tampered chunk.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amsu_backup::fanout::{fan_out, FanoutConfig, FanoutError, FanoutEvents, Spool};
use amsu_backup::SetupConfig;
use amsu_core::{CancellationToken, Event, Secret, ServerAddr};
use amsu_mysql::conn::Session;
use amsu_tests::servers::{
    amsu_bin, amsu_output, checksums, create_bank, events, exec, extra_replica,
    journal_dir_for_tests, json_lines as lines, pair, query, scalar, wait_caught_up,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

/// A master with a bank and a big table of many small chunks.
async fn fill_master(m: &ServerAddr, rows: u32) {
    create_bank(m, "bank", 500).await;
    let insert = format!(
        "INSERT INTO shop.big SELECT seq, seq * 7919 % 1000, REPEAT(CHAR(65 + seq % 26), 150) \
         FROM shop.seq_1_to_{rows}"
    );
    exec(
        m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.big (id INT PRIMARY KEY, k INT NOT NULL, pad VARCHAR(200), \
             KEY (k)) ENGINE=InnoDB",
            &insert,
        ],
    )
    .await;
}

/// The client sessions a server has, other than the asking one and the server's own
/// threads (replication threads included): what a finished amsu must not leave behind.
async fn client_sessions(addr: &ServerAddr) -> Vec<String> {
    query(
        addr,
        "SELECT CONCAT(ID, ' ', USER, ' ', COMMAND, ' ', IFNULL(INFO, '')) \
         FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
         AND USER NOT IN ('system user', 'event_scheduler', 'DELAYED') \
         AND COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Slave_IO', 'Slave_SQL', 'Slave_worker')",
    )
    .await
    .into_iter()
    .filter_map(|r| r.into_iter().next().flatten())
    .collect()
}

/// Waits (bounded) until no client session is left on `addr`; panics naming them.
async fn no_sessions_left(addr: &ServerAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = client_sessions(addr).await;
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{addr}: sessions left: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The master has no replication user: nothing was changed on it.
async fn no_repl_user(m: &ServerAddr) {
    assert_eq!(
        scalar(
            m,
            "SELECT COUNT(*) FROM mysql.user WHERE User = 'amsu_repl'"
        )
        .await
        .as_deref(),
        Some("0"),
        "the replication user was created on the master"
    );
}

/// Nothing amsu does shows on `r`: the operator's database as it was, no copy, no
/// replication, none of amsu's records.
async fn untouched(r: &ServerAddr, crm_rows: &str) {
    assert_eq!(
        scalar(r, "SELECT COUNT(*) FROM crm.customers")
            .await
            .as_deref(),
        Some(crm_rows),
        "{r}: the operator's data is kept"
    );
    assert_eq!(
        scalar(
            r,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA \
             WHERE SCHEMA_NAME IN ('bank', 'shop')"
        )
        .await
        .as_deref(),
        Some("0"),
        "{r}: nothing was copied"
    );
    assert_eq!(
        scalar(
            r,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' \
             AND TABLE_NAME LIKE 'amsu%'"
        )
        .await
        .as_deref(),
        Some("0"),
        "{r}: no amsu records"
    );
    assert!(
        query(r, "SHOW SLAVE STATUS").await.is_empty(),
        "{r}: not configured"
    );
    assert_eq!(
        scalar(r, "SELECT @@global.read_only").await.as_deref(),
        Some("0"),
        "{r}: not made read-only"
    );
}

/// Three replicas, the third holding the operator's database, no `--force`: the third is
/// refused before anything changes on it (its result says why and how to go on), the two
/// others are seeded from the one read and replicate (the fan-out's documented
/// behaviour: one failing replica does not stop the others); the command exits 3 (every
/// failure changed nothing) and keeps the spool; the rerun for the third with `--force`
/// resumes from the spool without reading the master again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_holding_operator_data_is_refused_untouched_and_the_others_seeded() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (r2, r3) = tokio::join!(
        extra_replica(p.dir.path(), "replica2", 3),
        extra_replica(p.dir.path(), "replica3", 4)
    );
    let m = p.master.addr();
    fill_master(&m, 20000).await;
    exec(
        &r3.addr(),
        &[
            "CREATE DATABASE crm",
            "CREATE TABLE crm.customers (id INT PRIMARY KEY, name VARCHAR(20))",
            "INSERT INTO crm.customers VALUES (1, 'ada'), (2, 'grace')",
        ],
    )
    .await;
    let spool = p.dir.path().join("spool");
    let spool_s = spool.to_str().unwrap().to_string();
    let master_url = p.master.url();
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &master_url,
            "--replica",
            &p.replica.url(),
            "--replica",
            &r2.url(),
            "--replica",
            &r3.url(),
            "--yes",
            "--json",
            "--chunk-size",
            "256K",
            "--spool",
            &spool_s,
        ],
        &[],
    )
    .await;
    let all = out.text();
    // Two replicas were seeded: the command changed things, so not 3 (that replica's own
    // result carries its 3).
    assert_eq!(out.code, Some(1), "{all}");
    let ls = lines(&out.stdout);
    let r3_tag = format!("127.0.0.1:{}", r3.port());
    let results = events(&ls, "replica_result");
    assert_eq!(results.len(), 3, "{all}");
    for res in &results {
        if res["replica"] == r3_tag.as_str() {
            assert_eq!(res["ok"], false, "{all}");
            assert_eq!(res["exit_code"], 3, "{all}");
            let error = res["error"].to_string();
            assert!(
                error.contains("crm") && error.contains("force"),
                "names the database and the way on: {error}"
            );
            let rerun = res["rerun"].as_str().expect("a rerun command");
            assert!(
                rerun.contains(&r3.url()) && rerun.contains("--spool"),
                "{rerun}"
            );
        } else {
            assert_eq!(res["ok"], true, "{all}");
        }
    }
    untouched(&r3.addr(), "2").await;
    assert!(spool.join("manifest.json").is_file(), "the spool is kept");
    let want = checksums(&m).await;
    for r in [p.replica.addr(), r2.addr()] {
        wait_caught_up(&m, &r).await;
        assert_eq!(checksums(&r).await, want, "{r} equals the master");
    }
    for r in [m.clone(), p.replica.addr(), r2.addr(), r3.addr()] {
        no_sessions_left(&r).await;
    }

    // The operator says the data may go: the rerun for the third alone uses the spool.
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &master_url,
            "--replica",
            &r3.url(),
            "--yes",
            "--json",
            "--force",
            "--spool",
            &spool_s,
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let ls = lines(&out.stdout);
    assert!(events(&ls, "commit_blocked").is_empty(), "not read again");
    wait_caught_up(&m, &r3.addr()).await;
    assert_eq!(checksums(&r3.addr()).await, want);
}
/// Locks the table `shop.zzz` on the master (`LOCK TABLES … WRITE`, on a session it
/// keeps) once the dump has written its first chunk after the snapshot: the dump, reading
/// its tables in turn, stops at that one while the replicas load the chunks written.
struct LockTable {
    master: ServerAddr,
    snapshot: AtomicBool,
    locked: AtomicBool,
    lock: std::sync::Mutex<Option<Session>>,
    loaded: AtomicUsize,
}

impl FanoutEvents for LockTable {
    fn master(&self, event: &Event) {
        match event {
            Event::Snapshot { .. } => self.snapshot.store(true, Ordering::SeqCst),
            Event::Progress { .. }
                if self.snapshot.load(Ordering::SeqCst)
                    && !self.locked.swap(true, Ordering::SeqCst) =>
            {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(async {
                        let mut s = Session::open(&self.master).await.expect("connect");
                        s.exec("SET SESSION lock_wait_timeout = 5", "timeout")
                            .await
                            .unwrap();
                        s.exec("LOCK TABLES shop.zzz WRITE", "lock")
                            .await
                            .expect("shop.zzz locked before the dump reads it");
                        *self.lock.lock().unwrap() = Some(s);
                    })
                });
            }
            _ => {}
        }
    }

    fn replica(&self, _replica: &ServerAddr, event: &Event) {
        if matches!(event, Event::Progress { .. }) {
            self.loaded.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct Quiet;

impl FanoutEvents for Quiet {
    fn master(&self, _: &Event) {}
    fn replica(&self, _: &ServerAddr, _: &Event) {}
}

/// The master's dump is stopped mid-stream: a table it has still to read is locked
/// (`LOCK TABLES … WRITE`) and, once the replicas load what it wrote, its session waiting
/// for that table is killed (`KILL` from another session). The fan-out fails with the
/// dump's error, naming the master and saying every replica stopped; no session is left
/// on any server; the same fan-out run again reads the master again and completes, every
/// replica equal to the master (what they loaded of the killed dump is amsu's own and is
/// started over).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dump_killed_mid_stream_stops_every_replica_and_a_rerun_completes() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    fill_master(&m, 40_000).await;
    exec(
        &m,
        &[
            "CREATE TABLE shop.zzz (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
            "INSERT INTO shop.zzz SELECT seq, seq FROM shop.seq_1_to_100",
        ],
    )
    .await;
    let spool = Spool::new(p.dir.path().join("spool"));
    let replicas = vec![p.replica.addr(), r2.addr()];
    let template = SetupConfig::new(m.clone(), replicas[0].clone()).options(|o| o.verify(true));
    let config = FanoutConfig::new(template, replicas.clone(), spool.clone())
        .dump_threads(1)
        .chunk_bytes(Some(64 * 1024))
        .repl_password(Secret::generate());
    let locker = Arc::new(LockTable {
        master: m.clone(),
        snapshot: AtomicBool::new(false),
        locked: AtomicBool::new(false),
        lock: Default::default(),
        loaded: AtomicUsize::new(0),
    });
    let run = tokio::spawn(fan_out(
        config.clone(),
        locker.clone(),
        CancellationToken::new(),
    ));
    // The dump waits for the table; a replica has loaded a chunk meanwhile. Then its
    // session is killed.
    let deadline = Instant::now() + Duration::from_secs(240);
    let waiting = loop {
        assert!(
            !run.is_finished(),
            "the fan-out ended before the dump waited"
        );
        let w = scalar(
            &m,
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%zzz%' \
             AND STATE LIKE 'Waiting for table metadata lock%' AND ID <> CONNECTION_ID()",
        )
        .await;
        if let (Some(id), true) = (w, locker.loaded.load(Ordering::SeqCst) > 0) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the dump never waited for shop.zzz"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    exec(&m, &[&format!("KILL {waiting}")]).await;
    let result = run.await.expect("the fan-out's task");
    let lock = locker.lock.lock().unwrap().take();
    if let Some(mut s) = lock {
        s.exec("UNLOCK TABLES", "unlock").await.unwrap();
    }
    let err = match result {
        Err(e) => e,
        Ok(o) => panic!("the dump was killed and went on: {:?}", o.dump),
    };
    assert!(matches!(err, FanoutError::Dump { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("reading the master")
            && message.contains(&m.port.to_string())
            && message.contains("every replica stopped"),
        "{message}"
    );
    assert_eq!(err.exit_code(), 1);
    for r in [&m, &replicas[0], &replicas[1]] {
        no_sessions_left(r).await;
    }
    for r in &replicas {
        assert!(query(r, "SHOW SLAVE STATUS").await.is_empty(), "{r}");
    }

    // The same fan-out again.
    let outcome = fan_out(config, Arc::new(Quiet), CancellationToken::new())
        .await
        .expect("the rerun runs");
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.runs);
    assert!(outcome.dump.is_some(), "the master was read again");
    let want = checksums(&m).await;
    for r in &replicas {
        wait_caught_up(&m, r).await;
        assert_eq!(checksums(r).await, want, "{r} equals the master");
    }
    assert!(
        !spool.dir().exists(),
        "the spool is removed once all are done"
    );
}

/// A `--spool` directory holding files that are not amsu's: refused with exit 3 naming
/// it and the fix, before anything changes; not one of its files is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_holding_foreign_files_is_refused_and_left_as_it_is() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 100).await;
    let spool = p.dir.path().join("spool");
    std::fs::create_dir_all(spool.join("photos")).unwrap();
    std::fs::write(spool.join("notes.txt"), b"the operator's notes").unwrap();
    std::fs::write(spool.join("photos/cat.jpg"), b"meow").unwrap();
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--replica",
            &r2.url(),
            "--yes",
            "--spool",
            spool.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let all = out.text();
    assert_eq!(out.code, Some(3), "{all}");
    assert!(
        all.contains(spool.to_str().unwrap()) && all.contains("not amsu's"),
        "{all}"
    );
    assert_eq!(
        std::fs::read(spool.join("notes.txt")).unwrap(),
        b"the operator's notes"
    );
    assert_eq!(
        std::fs::read(spool.join("photos/cat.jpg")).unwrap(),
        b"meow"
    );
    no_repl_user(&m).await;
    for r in [p.replica.addr(), r2.addr()] {
        assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty(), "{r}");
        assert_eq!(
            scalar(
                &r,
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'bank'"
            )
            .await
            .as_deref(),
            Some("0")
        );
    }
}

/// A `--spool` directory holding a complete image of another master (here: the image's
/// server_id is not the master's): refused with exit 3 before anything is loaded, naming
/// the spool and the fix; the image is kept as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_holding_another_masters_image_is_refused_and_kept() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 100).await;
    let spool = p.dir.path().join("spool");
    let out = amsu_output(
        &[
            "backup",
            "--master",
            &p.master.url(),
            "--out",
            spool.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    // The image is now of "another" server: the master is not the one it was taken from.
    exec(&m, &["SET GLOBAL server_id = 77"]).await;
    let manifest_before = std::fs::read(spool.join("manifest.json")).unwrap();
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--replica",
            &r2.url(),
            "--yes",
            "--spool",
            spool.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let all = out.text();
    assert_eq!(out.code, Some(3), "{all}");
    assert!(
        all.contains(spool.to_str().unwrap()) && all.contains("server_id"),
        "{all}"
    );
    assert_eq!(
        std::fs::read(spool.join("manifest.json")).unwrap(),
        manifest_before,
        "the image is kept"
    );
    no_repl_user(&m).await;
    for r in [p.replica.addr(), r2.addr()] {
        assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty(), "{r}");
        assert_eq!(
            scalar(
                &r,
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'bank'"
            )
            .await
            .as_deref(),
            Some("0")
        );
    }
}

/// SIGINT to the amsu process while its replicas load the stream: it exits 1 (stopped
/// after changing things), no session is left on any server; the same command run again
/// completes and every replica equals the master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_a_streamed_fan_out_stops_cleanly_and_a_rerun_completes() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    fill_master(&m, 80000).await;
    let spool = p.dir.path().join("spool");
    let spool_s = spool.to_str().unwrap().to_string();
    let (master_url, r1_url, r2_url) = (p.master.url(), p.replica.url(), r2.url());
    let args = [
        "setup",
        "--master",
        &master_url,
        "--replica",
        &r1_url,
        "--replica",
        &r2_url,
        "--yes",
        "--json",
        "--threads",
        "1",
        "--chunk-size",
        "64K",
        "--spool",
        &spool_s,
    ];
    let mut child = tokio::process::Command::new(amsu_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("amsu starts");
    let pid = child.id().expect("pid");
    // Interrupt at the first chunk a replica loaded from the stream.
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s)
            .await
            .ok();
        s
    });
    let mut seen = String::new();
    let mut sent = false;
    let reading = async {
        while let Some(line) = stdout.next_line().await.expect("stdout") {
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if !sent && v["event"] == "progress" && v.get("replica").is_some() {
                kill(Pid::from_raw(pid as i32), Signal::SIGINT).expect("SIGINT");
                sent = true;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
    };
    tokio::time::timeout(Duration::from_secs(300), reading)
        .await
        .expect("amsu stops after SIGINT");
    let status = child.wait().await.unwrap();
    let all = format!("{seen}\n{}", err_task.await.unwrap());
    assert!(sent, "no replica loaded a chunk: {all}");
    assert_eq!(status.code(), Some(1), "{all}");
    assert!(all.contains("SIGINT"), "{all}");
    for r in [m.clone(), p.replica.addr(), r2.addr()] {
        no_sessions_left(&r).await;
    }

    let out = amsu_output(&args, &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let want = checksums(&m).await;
    for r in [p.replica.addr(), r2.addr()] {
        wait_caught_up(&m, &r).await;
        assert_eq!(checksums(&r).await, want, "{r} equals the master");
    }
    assert!(!spool.exists(), "the spool is removed once all are done");
}

/// `amsu restore --image DIR --replica A --replica B` from an image with one chunk
/// tampered (same size, one byte changed): every replica is refused with exit 3 before
/// anything is loaded, the error naming the chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_fan_out_of_an_image_with_a_tampered_chunk_is_refused_on_every_replica() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 500).await;
    let img = p.dir.path().join("image");
    let out = amsu_output(
        &[
            "backup",
            "--master",
            &p.master.url(),
            "--out",
            img.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let mut chunks: Vec<_> = std::fs::read_dir(img.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false))
        .collect();
    chunks.sort();
    let victim = chunks.last().expect("a chunk").clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let name = victim.file_name().unwrap().to_str().unwrap().to_string();

    let out = amsu_output(
        &[
            "restore",
            "--image",
            img.to_str().unwrap(),
            "--replica",
            &p.replica.url(),
            "--replica",
            &r2.url(),
            "--start-replication",
            "--master",
            &p.master.url(),
            "--json",
        ],
        &[],
    )
    .await;
    let all = out.text();
    assert_eq!(out.code, Some(3), "{all}");
    let ls = lines(&out.stdout);
    let results = events(&ls, "replica_result");
    assert_eq!(results.len(), 2, "{all}");
    for res in results {
        assert_eq!(res["ok"], false, "{all}");
        assert_eq!(res["exit_code"], 3, "{all}");
        assert!(
            res["error"].to_string().contains(&name),
            "names {name}: {res}"
        );
    }
    for r in [p.replica.addr(), r2.addr()] {
        assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty(), "{r}");
        assert_eq!(
            scalar(
                &r,
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'bank'"
            )
            .await
            .as_deref(),
            Some("0"),
            "{r}: nothing loaded"
        );
        no_sessions_left(&r).await;
    }
}

/// `amsu setup --image s3://… --replica A --replica B` with a wrong bucket, a prefix
/// without a manifest, and a wrong secret key: each refused with exit 3 on every replica
/// before anything changes on it, with an error that says what is wrong; neither the
/// secret nor the wrong one is in any output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_from_an_s3_image_that_cannot_be_read_is_refused_before_any_change() {
    journal_dir_for_tests();
    let g = amsu_tests::garage::Garage::single();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 300).await;
    let endpoint = g.endpoint(0);
    let wrong_secret = "wrongSECRETwrongSECRETwrong0123456789abcd";
    let run = |args: Vec<String>, secret: String| {
        let mut cmd = tokio::process::Command::new(amsu_bin());
        cmd.args(&args)
            .args([
                "--s3-endpoint",
                &endpoint,
                "--s3-region",
                &g.region,
                "--s3-path-style",
            ])
            .env("AWS_ACCESS_KEY_ID", &g.key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("AWS_PROFILE")
            .kill_on_drop(true);
        async move {
            let out = cmd.output().await.unwrap();
            (
                out.status.code(),
                format!(
                    "{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        }
    };
    let good = g.url("images/good");
    let (code, text) = run(
        vec![
            "backup".into(),
            "--master".into(),
            p.master.url(),
            "--out".into(),
            good.clone(),
        ],
        g.secret.expose().to_string(),
    )
    .await;
    assert_eq!(code, Some(0), "backup: {text}");

    let cases = [
        (
            good.replace(&format!("s3://{}/", g.bucket), "s3://no-such-bucket-amsu/"),
            g.secret.expose().to_string(),
            "no-such-bucket-amsu",
        ),
        (
            g.url("images/none"),
            g.secret.expose().to_string(),
            "manifest",
        ),
        (good.clone(), wrong_secret.to_string(), ""),
    ];
    for (url, secret, named) in cases {
        let (code, text) = run(
            vec![
                "setup".into(),
                "--master".into(),
                p.master.url(),
                "--replica".into(),
                p.replica.url(),
                "--replica".into(),
                r2.url(),
                "--image".into(),
                url.clone(),
                "--yes".into(),
            ],
            secret,
        )
        .await;
        assert_eq!(code, Some(3), "{url}: {text}");
        assert!(text.contains(named), "{url}: names {named:?}: {text}");
        assert!(
            text.contains("cannot be read") || text.contains("is refused"),
            "{url}: {text}"
        );
        assert!(
            !text.contains(g.secret.expose()),
            "the secret leaked: {text}"
        );
        assert!(
            !text.contains(wrong_secret),
            "the wrong secret leaked: {text}"
        );
        for r in [p.replica.addr(), r2.addr()] {
            assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty(), "{r}");
            assert_eq!(
                scalar(
                    &r,
                    "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'bank'"
                )
                .await
                .as_deref(),
                Some("0"),
                "{url}: {r}: nothing loaded"
            );
        }
    }

    // The right image and key: both replicas are seeded from it at once (each fetches it
    // into a work directory of its own).
    let (code, text) = run(
        vec![
            "setup".into(),
            "--master".into(),
            p.master.url(),
            "--replica".into(),
            p.replica.url(),
            "--replica".into(),
            r2.url(),
            "--image".into(),
            good,
            "--yes".into(),
        ],
        g.secret.expose().to_string(),
    )
    .await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !text.contains(g.secret.expose()),
        "the secret leaked: {text}"
    );
    let want = checksums(&m).await;
    for r in [p.replica.addr(), r2.addr()] {
        wait_caught_up(&m, &r).await;
        assert_eq!(checksums(&r).await, want, "{r} equals the master");
    }
}

/// Another amsu run setting up one of the replicas now (it holds that replica's journal):
/// the fan-out is refused before the master is read (no spool written, no replication
/// user created), exit 3, naming the replica and the holder — not after a whole read of
/// the master, replica by replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_another_run_is_setting_up_refuses_the_fan_out_before_the_master_is_read() {
    use amsu_core::JournalStore;
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 100).await;
    // The other run: it holds replica2's journal as a running setup does.
    let other = amsu_backup::FileJournal::new(amsu_backup::default_journal_path(&r2.addr()));
    other.lock().expect("the other run takes the journal");
    let spool = p.dir.path().join("spool");
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--replica",
            &r2.url(),
            "--yes",
            "--spool",
            spool.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let all = out.text();
    assert_eq!(out.code, Some(3), "{all}");
    assert!(
        all.contains("another amsu run is setting up the replica")
            && all.contains(&format!("pid {}", std::process::id())),
        "{all}"
    );
    assert!(!spool.exists(), "the master was not read into a spool");
    no_repl_user(&m).await;
    drop(other);
}
