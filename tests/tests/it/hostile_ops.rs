//! Unlucky conditions (issue 12, items 8–10): signals and a closed stdout during a setup,
//! a replica restart after it, a second replica of the same master, and
//! `restore --start-replication`'s replication user.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use amsu_tests::servers::{
    amsu, amsu_bin, checksums, create_bank, exec, pair, query, scalar, wait_caught_up, Pair,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// What to do to a running `amsu setup`.
enum Hit {
    None,
    /// Send this signal when a stdout line contains the text.
    Signal(Signal, &'static str),
    /// Close stdout after its first line (`| head -1`).
    CloseStdout,
}

/// Runs `amsu setup --yes --json` of `replica` from `master` as root, with `AMSU_HOME` in
/// the test's directory and no password given.
async fn setup(master: &Sandbox, replica: &Sandbox, home: &Path, hit: Hit, extra: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(amsu_bin());
    cmd.args([
        "setup",
        "--master",
        &master.url(),
        "--replica",
        &replica.url(),
        "--yes",
        "--json",
        "--wait-caught-up",
        "--journal",
    ])
    .arg(home.join(format!("journal-{}.json", replica.port())))
    .args(extra)
    .env("AMSU_HOME", home)
    .env_remove("AMSU_REPL_PASSWORD")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("amsu starts");
    let mut stderr = child.stderr.take().unwrap();
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        stderr.read_to_string(&mut s).await.ok();
        s
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    match hit {
        Hit::CloseStdout => {
            let first = lines.next_line().await.expect("read stdout");
            stdout.push_str(&first.unwrap_or_default());
            drop(lines);
        }
        Hit::Signal(sig, pat) => {
            let mut sent = false;
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if !sent && line.contains(pat) {
                    kill(Pid::from_raw(child.id().unwrap() as i32), sig).expect("signal");
                    sent = true;
                }
                stdout.push_str(&line);
                stdout.push('\n');
            }
            assert!(sent, "never saw {pat:?} in:\n{stdout}");
        }
        Hit::None => {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                stdout.push_str(&line);
                stdout.push('\n');
            }
        }
    }
    let status = child.wait().await.expect("wait");
    Run {
        code: status.code(),
        stdout,
        stderr: err_task.await.unwrap(),
    }
}

/// A master with enough data for the copy to take a few seconds.
async fn master_with_data(p: &Pair) {
    let m = p.master.addr();
    create_bank(&m, "bank", 1000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(50), note TEXT)",
            "INSERT INTO shop.items SELECT seq, CONCAT('item ', seq), REPEAT('n', seq % 200) FROM shop.seq_1_to_150000",
        ],
    )
    .await;
}

fn home(p: &Pair) -> PathBuf {
    let h = p.dir.path().join("amsu-home");
    std::fs::create_dir_all(&h).unwrap();
    h
}

async fn interrupted_mid_copy_then_rerun(sig: Signal) {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    master_with_data(&p).await;
    let home = home(&p);
    let first = setup(
        &p.master,
        &p.replica,
        &home,
        Hit::Signal(sig, "\"event\":\"progress\""),
        &[],
    )
    .await;
    assert_eq!(first.code, Some(1), "{}\n{}", first.stdout, first.stderr);
    for want in [
        "interrupted",
        "State left behind:",
        "rerun the same command",
    ] {
        assert!(
            first.stderr.contains(want),
            "{want:?} in:\n{}",
            first.stderr
        );
    }
    assert!(
        first.stderr.contains(&format!("{sig} received")),
        "{}",
        first.stderr
    );
    let journal = home.join(format!("journal-{}.json", p.replica.port()));
    let j = std::fs::read_to_string(&journal).expect("journal written");
    assert!(j.contains("\"stopped\": \"step copy_data"), "{j}");
    assert!(j.contains("interrupted"), "{j}");

    exec(
        &m,
        &["INSERT INTO bank.transfers (src, dst, amount) VALUES (1, 2, 3)"],
    )
    .await;
    let second = setup(&p.master, &p.replica, &home, Hit::None, &[]).await;
    assert_eq!(second.code, Some(0), "{}\n{}", second.stdout, second.stderr);
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_copy_stops_resumably() {
    interrupted_mid_copy_then_rerun(Signal::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_copy_stops_resumably() {
    interrupted_mid_copy_then_rerun(Signal::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_after_change_master_stops_resumably() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    master_with_data(&p).await;
    let home = home(&p);
    let first = setup(
        &p.master,
        &p.replica,
        &home,
        Hit::Signal(Signal::SIGINT, "CHANGE MASTER TO"),
        &[],
    )
    .await;
    // Stopped before replication started (1), or the signal came after the last step (0).
    assert!(matches!(first.code, Some(0 | 1)), "{}", first.stderr);
    assert_ne!(first.code, Some(101));
    let second = setup(&p.master, &p.replica, &home, Hit::None, &[]).await;
    assert_eq!(second.code, Some(0), "{}\n{}", second.stdout, second.stderr);
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

/// `amsu setup … | head -1`: no panic (exit 101); the rerun completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_stdout_stops_without_a_panic() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    master_with_data(&p).await;
    let home = home(&p);
    let first = setup(&p.master, &p.replica, &home, Hit::CloseStdout, &[]).await;
    assert!(
        matches!(first.code, Some(1 | 3)),
        "exit {:?}:\n{}",
        first.code,
        first.stderr
    );
    assert!(!first.stderr.contains("panicked"), "{}", first.stderr);
    assert!(
        first.stderr.contains("stdout was closed"),
        "{}",
        first.stderr
    );
    let second = setup(&p.master, &p.replica, &home, Hit::None, &[]).await;
    assert_eq!(second.code, Some(0), "{}\n{}", second.stdout, second.stderr);
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

/// `amsu status` until `want(code)`, at most 60 s; returns the last code.
async fn status_until(replica: &Sandbox, want: impl Fn(i32) -> bool) -> i32 {
    let t = Instant::now();
    loop {
        let code = amsu(&["status", "--replica", &replica.url()]).await;
        if want(code) || t.elapsed() > Duration::from_secs(60) {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `[mysqld]` lines of an option file as server options, read by the server's own
/// option-file reader (`my_print_defaults`); the sandbox runs with `--no-defaults`, so they
/// go on its command line, after its own defaults.
fn option_file_as_server_options(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("my_print_defaults")
        .arg(format!("--defaults-file={}", path.display()))
        .arg("mysqld")
        .output()
        .expect("my_print_defaults (installed with MariaDB)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A replica whose server_id equalled the master's: after a restart, the runtime-only
/// settings are gone and `status` says so; with `--replica-config-file` included, it
/// replicates on after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_restart_after_setup() {
    let mut p = pair(|o| o, |o| o.server_id(1)).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 100).await;
    let home = home(&p);
    let run = setup(&p.master, &p.replica, &home, Hit::None, &[]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("\"runtime_only\""), "{}", run.stdout);
    assert!(run.stdout.contains("server_id"), "{}", run.stdout);
    let j =
        std::fs::read_to_string(home.join(format!("journal-{}.json", p.replica.port()))).unwrap();
    assert!(j.contains("runtime only"), "{j}");
    assert_eq!(status_until(&p.replica, |c| c == 0).await, 0);

    p.replica.restart().await.expect("replica restarts");
    let code = status_until(&p.replica, |c| c == 5).await;
    assert_eq!(code, 5, "{:?}", query(&r, "SHOW SLAVE STATUS").await);
    assert_eq!(
        scalar(&r, "SELECT @@global.server_id").await.as_deref(),
        Some("1")
    );

    // The same setup again, now writing the option file, and a restart that reads it.
    exec(&r, &["STOP SLAVE", "RESET SLAVE ALL"]).await;
    let conf = p.dir.path().join("replica-amsu.cnf");
    let conf_s = conf.display().to_string();
    let run = setup(
        &p.master,
        &p.replica,
        &home,
        Hit::None,
        &["--force", "--replica-config-file", &conf_s],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    p.replica.shutdown().await.unwrap();
    let opts = option_file_as_server_options(&conf);
    p.replica.extra_options_mut().extend(opts);
    p.replica
        .start()
        .await
        .expect("replica starts with its option file");
    let code = status_until(&p.replica, |c| c == 0).await;
    assert_eq!(code, 0, "{:?}", query(&r, "SHOW SLAVE STATUS").await);
    exec(
        &m,
        &["INSERT INTO bank.transfers (src, dst, amount) VALUES (1, 2, 3)"],
    )
    .await;
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

/// A second replica of the same master with default options finds the password the first
/// setup generated and kept; the first replica keeps replicating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_replica_reuses_the_saved_password() {
    let p = pair(|o| o, |o| o).await;
    let (m, r1) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 100).await;
    let home = home(&p);
    let first = setup(&p.master, &p.replica, &home, Hit::None, &[]).await;
    assert_eq!(first.code, Some(0), "{}\n{}", first.stdout, first.stderr);
    let saved = home.join(format!("repl/127.0.0.1_{}.cnf", p.master.port()));
    let meta = std::fs::metadata(&saved).expect("password kept");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );

    let replica2 = Sandbox::deploy(
        SandboxOptions::new("replica2")
            .base_dir(p.dir.path())
            .server_id(3),
    )
    .await
    .expect("second replica");
    let r2 = replica2.addr();
    let second = setup(&p.master, &replica2, &home, Hit::None, &[]).await;
    assert_eq!(second.code, Some(0), "{}\n{}", second.stdout, second.stderr);
    assert!(second.stderr.contains("saved in"), "{}", second.stderr);

    exec(
        &m,
        &["INSERT INTO bank.transfers (src, dst, amount) VALUES (1, 2, 3)"],
    )
    .await;
    for r in [&r1, &r2] {
        wait_caught_up(&m, r).await;
        assert_eq!(checksums(&m).await, checksums(r).await);
    }
    assert_eq!(status_until(&p.replica, |c| c == 0).await, 0);
    assert_eq!(status_until(&replica2, |c| c == 0).await, 0);
}

/// `restore --start-replication` replicates as a replication-only user, not as the
/// master URL's root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_start_replication_uses_a_replication_user() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 100).await;
    let img = p.dir.path().join("image");
    amsu_backup::ImageBackup::new(m.clone(), &img)
        .run(std::sync::Arc::new(amsu_core::NoEvents))
        .await
        .expect("backup");
    let home = home(&p);
    let out = tokio::process::Command::new(amsu_bin())
        .args([
            "restore",
            "--image",
            img.to_str().unwrap(),
            "--replica",
            &p.replica.url(),
            "--start-replication",
            "--master",
            &p.master.url(),
        ])
        .env("AMSU_HOME", &home)
        .env_remove("AMSU_REPL_PASSWORD")
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let st = query(&r, "SHOW SLAVE STATUS").await;
    // Master_User is the third column of SHOW SLAVE STATUS.
    assert_eq!(st[0][2].as_deref(), Some("amsu_repl"), "{st:?}");
    let grants = query(&m, "SHOW GRANTS FOR 'amsu_repl'@'%'").await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    let g = grants[0][0].clone().unwrap();
    assert!(g.starts_with("GRANT REPLICATION SLAVE ON *.*"), "{g}");
    assert!(home
        .join(format!("repl/127.0.0.1_{}.cnf", p.master.port()))
        .exists());
    exec(
        &m,
        &["INSERT INTO bank.transfers (src, dst, amount) VALUES (1, 2, 3)"],
    )
    .await;
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
}
