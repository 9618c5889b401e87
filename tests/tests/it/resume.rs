//! `kill -9` of `amsu setup` at several points and a rerun: the same end state as an
//! uninterrupted run. Also: passwords never appear in events, logs or the journal.

use std::path::PathBuf;
use std::process::Stdio;

use amsu_tests::servers::{
    amsu_bin, checksums, create_bank, exec, journal_dir_for_tests, pair, query, wait_caught_up,
    Pair,
};
use tokio::io::{AsyncBufReadExt, BufReader};

pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `amsu setup … --json -vv`; when `kill_on` matches a stdout line, sends SIGKILL.
pub(crate) async fn setup(
    p: &Pair,
    journal: &PathBuf,
    env: &[(&str, &str)],
    user: &str,
    kill_on: Option<&str>,
    extra: &[&str],
) -> Run {
    let master = format!("mysql://{user}@127.0.0.1:{}", p.master.port());
    let mut cmd = tokio::process::Command::new(amsu_bin());
    cmd.args([
        "-vv",
        "setup",
        "--master",
        &master,
        "--replica",
        &p.replica.url(),
        "--yes",
        "--json",
        "--wait-caught-up",
        "--journal",
    ])
    .arg(journal)
    .args(extra)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("amsu starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s)
            .await
            .ok();
        s
    });
    let mut stdout = String::new();
    let mut killed = false;
    while let Some(line) = lines.next_line().await.expect("read stdout") {
        stdout.push_str(&line);
        stdout.push('\n');
        if let Some(pat) = kill_on {
            if !killed && line.contains(pat) {
                child.start_kill().expect("SIGKILL");
                killed = true;
            }
        }
    }
    let status = child.wait().await.expect("wait");
    if let Some(pat) = kill_on {
        assert!(killed, "never saw {pat:?} in:\n{stdout}");
    }
    Run {
        code: status.code(),
        stdout,
        stderr: err_task.await.unwrap(),
    }
}

async fn scenario(kill_on: &str) {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 1000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(50), note TEXT)",
            "INSERT INTO shop.items SELECT seq, CONCAT('item ', seq), REPEAT('n', seq % 200) FROM shop.seq_1_to_150000",
            "CREATE TABLE shop.tags (id INT PRIMARY KEY, tag VARCHAR(20))",
            "INSERT INTO shop.tags SELECT seq, CONCAT('t', seq) FROM shop.seq_1_to_20000",
            "CREATE USER 'admin'@'%' IDENTIFIED BY 'Adm1n-Secret-Pw'",
            "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION",
        ],
    )
    .await;
    let journal = p.dir.path().join("journal.json");
    let env = [
        ("AMSU_MASTER_PASSWORD", "Adm1n-Secret-Pw"),
        ("AMSU_REPL_PASSWORD", "Repl-Secret-Pw-77"),
    ];
    let first = setup(&p, &journal, &env, "admin", Some(kill_on), &[]).await;
    assert_eq!(first.code, None, "killed by a signal");
    exec(&m, &["INSERT INTO shop.tags VALUES (99999, 'after kill')"]).await;

    let second = setup(&p, &journal, &env, "admin", None, &[]).await;
    assert_eq!(
        second.code,
        Some(0),
        "rerun resumes: {}\n{}",
        second.stdout,
        second.stderr
    );
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
    let users = query(
        &m,
        "SELECT COUNT(*) FROM mysql.user WHERE User = 'amsu_repl'",
    )
    .await;
    assert_eq!(users[0][0].as_deref(), Some("1"));

    let third = setup(&p, &journal, &env, "admin", None, &[]).await;
    assert_eq!(third.code, Some(0));
    assert!(
        third.stdout.contains("\"already_done\":true"),
        "{}",
        third.stdout
    );

    // No password anywhere amsu writes.
    let journal_text = std::fs::read_to_string(&journal).unwrap();
    for (_, secret) in env {
        for (what, text) in [
            ("journal", &journal_text),
            ("stdout", &first.stdout),
            ("stderr", &first.stderr),
            ("stdout", &second.stdout),
            ("stderr", &second.stderr),
        ] {
            assert!(!text.contains(secret), "a password leaked into the {what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_creating_the_user_then_rerun() {
    scenario("created user").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_copy_then_rerun() {
    scenario("\"event\":\"progress\"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_change_master_then_rerun() {
    scenario("CHANGE MASTER TO").await;
}

/// `amsu setup --image` killed in the middle of loading the image: the rerun keeps the
/// chunks already loaded (their progress records) and loads only the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_setup_killed_mid_restore_resumes_the_restore() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 1000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, k INT, name VARCHAR(50), note TEXT, KEY (k))",
            "INSERT INTO shop.items SELECT seq, seq % 97, CONCAT('item ', seq), REPEAT('n', seq % 200) \
             FROM shop.seq_1_to_150000",
            "ANALYZE TABLE shop.items",
            "CREATE USER 'admin'@'%' IDENTIFIED BY 'Adm1n-Secret-Pw'",
            "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION",
        ],
    )
    .await;
    let img = p.dir.path().join("image");
    amsu_backup::ImageBackup::new(m.clone(), &img)
        .threads(2)
        .chunk_bytes(256 << 10)
        .run(std::sync::Arc::new(amsu_core::NoEvents))
        .await
        .expect("backup");
    let img_s = img.display().to_string();
    let journal = p.dir.path().join("journal.json");
    let env = [
        ("AMSU_MASTER_PASSWORD", "Adm1n-Secret-Pw"),
        ("AMSU_REPL_PASSWORD", "Repl-Secret-Pw-77"),
    ];
    let extra = ["--image", img_s.as_str()];
    // Killed after the first chunk's progress event.
    let first = setup(&p, &journal, &env, "admin", Some("\"tables_done\""), &extra).await;
    assert_eq!(first.code, None, "killed by a signal");
    let recorded = query(
        &r,
        "SELECT COUNT(*) FROM mysql.amsu_restore_progress WHERE chunk <> ''",
    )
    .await;
    let recorded: usize = recorded[0][0].as_deref().unwrap().parse().unwrap();
    assert!(recorded >= 1, "chunks recorded before the kill");
    exec(
        &m,
        &["UPDATE bank.accounts SET balance = balance WHERE id = 1"],
    )
    .await;

    let second = setup(&p, &journal, &env, "admin", None, &extra).await;
    assert_eq!(
        second.code,
        Some(0),
        "rerun resumes: {}\n{}",
        second.stdout,
        second.stderr
    );
    assert!(
        second.stderr.contains("resuming the interrupted copy"),
        "{}",
        second.stderr
    );
    // Only the chunks that were not recorded were loaded again.
    let loaded_again = second.stdout.matches("\"event\":\"progress\"").count();
    let total = amsu_backup::ImageReader::open(&img)
        .await
        .unwrap()
        .schema()
        .chunks
        .len();
    assert_eq!(loaded_again, total - recorded, "{}", second.stdout);
    wait_caught_up(&m, &r).await;
    assert_eq!(checksums(&m).await, checksums(&r).await);
    let left = query(
        &r,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' \
         AND TABLE_NAME = 'amsu_restore_progress'",
    )
    .await;
    assert_eq!(left[0][0].as_deref(), Some("0"), "progress records left");
}

/// A dry run prints the plan and the statements, with no password, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &["CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)"],
    )
    .await;
    let before_m = query(&m, "SELECT User, Host FROM mysql.user ORDER BY 1, 2").await;
    let out = tokio::process::Command::new(amsu_bin())
        .args([
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--dry-run",
            "--json",
        ])
        .env("AMSU_REPL_PASSWORD", "Dry-Run-Pw-1")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("CREATE USER 'amsu_repl'@'%' IDENTIFIED BY '***'"),
        "{stdout}"
    );
    assert!(stdout.contains("MASTER_HOST"), "{stdout}");
    assert!(!stdout.contains("Dry-Run-Pw-1"));
    assert_eq!(
        query(&m, "SELECT User, Host FROM mysql.user ORDER BY 1, 2").await,
        before_m
    );
    assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty());
    assert!(query(&r, "SHOW DATABASES LIKE 'd'").await.is_empty());
}
