//! Fan-out: `amsu setup --replica A --replica B --replica C` reads the master once and
//! seeds every replica from that one read; one replica that dies mid-load does not stop
//! the others and resumes on its own. Also `restore` into several replicas, and two
//! `--replica` naming one server refused before any change.

use std::process::Stdio;
use std::time::{Duration, Instant};

use amsu_tests::servers::{
    amsu_bin, amsu_output, checksums, create_bank, events, exec, extra_replica,
    journal_dir_for_tests, json_lines as lines, pair, query, scalar, wait_caught_up, Writer,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Rows loaded into `r` so far by an image restore (its progress records).
async fn recorded_chunks(r: &amsu_core::ServerAddr) -> usize {
    let has = scalar(
        r,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' \
         AND TABLE_NAME = 'amsu_restore_progress'",
    )
    .await;
    if has.as_deref() != Some("1") {
        return 0;
    }
    scalar(
        r,
        "SELECT COUNT(*) FROM mysql.amsu_restore_progress WHERE chunk <> ''",
    )
    .await
    .and_then(|n| n.parse().ok())
    .unwrap_or(0)
}

/// Three replicas from one read under a write load; the third replica's server is killed
/// (SIGKILL) in the middle of its load. The other two finish, the command exits 1 naming
/// the third and how to resume it, the spool is kept; a rerun for the third alone resumes
/// from the spool (the master is not read again) and all three end equal to the master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_from_one_read_one_killed_mid_load_and_resumed() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (r2, r3) = tokio::join!(
        extra_replica(p.dir.path(), "replica2", 3),
        extra_replica(p.dir.path(), "replica3", 4)
    );
    let mut r3 = r3;
    let m = p.master.addr();
    create_bank(&m, "bank", 1000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.big (id INT PRIMARY KEY, k INT NOT NULL, pad VARCHAR(200), KEY (k)) \
             ENGINE=InnoDB",
            "INSERT INTO shop.big SELECT seq, seq * 7919 % 1000, REPEAT(CHAR(65 + seq % 26), 150) \
             FROM shop.seq_1_to_120000",
            "ANALYZE TABLE shop.big",
        ],
    )
    .await;
    let writer = Writer::start(m.clone(), "bank", 1000);
    writer.wait_commits(20).await;

    let spool = p.dir.path().join("spool");
    let master_url = p.master.url();
    let r3_tag = format!("127.0.0.1:{}", r3.port());
    let mut cmd = tokio::process::Command::new(amsu_bin());
    cmd.args(["setup", "--master", &master_url])
        .args(["--replica", &p.replica.url()])
        .args(["--replica", &r2.url()])
        .args(["--replica", &r3.url()])
        .args(["--yes", "--json", "--threads", "1", "--chunk-size", "256K"])
        .arg("--spool")
        .arg(&spool)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("amsu starts");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s)
            .await
            .ok();
        s
    });
    // Kill the third replica's server once it has loaded a few chunks (and not all).
    let r3_addr = r3.addr();
    let r3_pid = r3.pid();
    let killer = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            assert!(Instant::now() < deadline, "replica3 never loaded 3 chunks");
            if recorded_chunks(&r3_addr).await >= 3 {
                kill(Pid::from_raw(r3_pid as i32), Signal::SIGKILL).expect("kill -9 mariadbd");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut stdout = String::new();
    while let Some(line) = out.next_line().await.expect("stdout") {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let status = child.wait().await.unwrap();
    let stderr = err_task.await.unwrap();
    killer.await.expect("replica3 killed mid-load");
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(status.code(), Some(1), "some replica failed:\n{all}");

    let ls = lines(&stdout);
    // The master was read once: one snapshot, one commit-blocked window.
    assert_eq!(events(&ls, "commit_blocked").len(), 1, "{all}");
    assert!(events(&ls, "commit_blocked")[0].get("replica").is_none());
    let spooled = events(&ls, "spool");
    assert_eq!(spooled.len(), 1, "{all}");
    assert_eq!(spooled[0]["reused"], false);
    // Every replica's own lines are tagged with it.
    for r in [&p.replica, &r2, &r3] {
        let tag = format!("127.0.0.1:{}", r.port());
        assert!(
            ls.iter()
                .any(|l| l["event"] == "step_started" && l["replica"] == tag.as_str()),
            "no step of {tag}:\n{all}"
        );
    }
    let results = events(&ls, "replica_result");
    assert_eq!(results.len(), 3, "{all}");
    for res in &results {
        if res["replica"] == r3_tag.as_str() {
            assert_eq!(res["ok"], false, "{all}");
            let rerun = res["rerun"].as_str().expect("a rerun command");
            assert!(
                rerun.contains(&r3.url())
                    && rerun.contains("--spool")
                    && !rerun.contains(&p.replica.url())
                    && !rerun.contains(&r2.url()),
                "{rerun}"
            );
        } else {
            assert_eq!(res["ok"], true, "{all}");
        }
    }
    let last = ls.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["exit_code"].as_i64()),
        (Some("result"), Some(1))
    );
    assert!(
        spool.join("manifest.json").is_file(),
        "the spool is kept while a replica is not done"
    );
    // The two others replicate.
    for r in [p.replica.addr(), r2.addr()] {
        let st = query(&r, "SHOW SLAVE STATUS").await;
        assert!(!st.is_empty(), "{r} replicates");
    }

    // The killed replica comes back; the rerun for it alone resumes from the spool.
    r3.restart().await.expect("replica3 restarts");
    let rerun = amsu_output(
        &[
            "setup",
            "--master",
            &master_url,
            "--replica",
            &r3.url(),
            "--yes",
            "--json",
            "--spool",
            spool.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(rerun.code, Some(0), "{}", rerun.text());
    let ls = lines(&rerun.stdout);
    assert!(
        events(&ls, "commit_blocked").is_empty(),
        "the master is not read again"
    );
    assert_eq!(events(&ls, "spool")[0]["reused"], true);
    assert!(
        !spool.exists(),
        "the spool is removed once every replica is done"
    );

    let commits = writer.stop().await;
    assert!(commits > 20);
    let want = checksums(&m).await;
    for r in [p.replica.addr(), r2.addr(), r3.addr()] {
        wait_caught_up(&m, &r).await;
        assert_eq!(checksums(&r).await, want, "{r} equals the master");
        assert_eq!(
            scalar(&r, "SELECT SUM(balance) FROM bank.accounts")
                .await
                .as_deref(),
            Some("1000000")
        );
    }
}

/// Two `--replica` naming one server (TCP and its unix socket) are refused with exit 3
/// before anything changes: no replication user on the master, no spool, no replica
/// configured. So is a `--replica` naming the master among others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replica_urls_naming_one_server_are_refused_before_any_change() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 100).await;
    let spool = p.dir.path().join("spool");
    let socket_url = format!(
        "mysql://root@localhost/?socket={}",
        p.replica.socket().display()
    );
    let master_socket = format!(
        "mysql://root@localhost/?socket={}",
        p.master.socket().display()
    );
    let (master_url, replica_url) = (p.master.url(), p.replica.url());
    for other in [socket_url.as_str(), master_socket.as_str()] {
        for force in [false, true] {
            let mut args = vec![
                "setup",
                "--master",
                &master_url,
                "--replica",
                &replica_url,
                "--replica",
                other,
                "--yes",
                "--spool",
                spool.to_str().unwrap(),
            ];
            if force {
                args.push("--force");
            }
            let out = amsu_output(&args, &[]).await;
            assert_eq!(out.code, Some(3), "{}", out.text());
            assert!(out.text().contains("same server"), "{}", out.text());
        }
    }
    assert!(!spool.exists());
    assert_eq!(
        scalar(
            &m,
            "SELECT COUNT(*) FROM mysql.user WHERE User = 'amsu_repl'"
        )
        .await
        .as_deref(),
        Some("0")
    );
    assert!(query(&p.replica.addr(), "SHOW SLAVE STATUS")
        .await
        .is_empty());
    assert!(query(&m, "SHOW SLAVE STATUS").await.is_empty());
}

/// `amsu restore --image DIR --replica A --replica B --start-replication`: the image is
/// loaded into both, each one replicating from the image's coordinates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_loads_one_image_into_two_replicas() {
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
    exec(
        &m,
        &["UPDATE bank.accounts SET touched = touched + 1 WHERE id < 10"],
    )
    .await;
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
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    for r in [&p.replica, &r2] {
        assert!(
            out.stdout.contains(&format!("[127.0.0.1:{}]", r.port())),
            "{}",
            out.text()
        );
    }
    let want = checksums(&m).await;
    for r in [p.replica.addr(), r2.addr()] {
        wait_caught_up(&m, &r).await;
        assert_eq!(checksums(&r).await, want, "{r} equals the master");
    }
}
