//! The one option-file reader and writer (`amsu_mysql::option_file`) against the servers'
//! own: `my_print_defaults` (MariaDB's reader) reads the same values from the same text,
//! the `mariadb` client logs in with a file amsu wrote, and `amsu --defaults-file` logs
//! in with a password holding `\`, `"`, `'` and `#`.

use std::path::Path;
use std::process::Stdio;

use amsu_mysql::option_file::{self, OptionFile};
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use amsu_tests::servers::{amsu_bin, exec};

/// Values amsu writes with `option_file::value` (no line breaks: `my_print_defaults`
/// prints one option a line; those are covered by the unit tests).
const WRITTEN: &[&str] = &[
    r"back\slash",
    r#"quo"te"#,
    r#"\"both\\"#,
    "tab\there",
    "plain-Pw_1",
    "sp ace # not a comment",
    "'single'",
    "#start",
    " lead and trail ",
    "trailing\\",
    r#"all \ " ' # ; = [x]"#,
];

/// Lines as people write them by hand.
const HAND: &[&str] = &[
    r#"h1 = "a\\b\"c""#,
    "h2=ab#c",
    r"h3 = a\sb  # comment",
    r#"h4="q#" tail"#,
    r"h5='s\'q'",
    r"h6 = a\qd",
    "h7 = 'm#1'",
    "h8",
    "h9 = x = y",
];

/// `my_print_defaults --defaults-file=FILE GROUP`: (key, value) pairs in file order.
fn my_print_defaults(file: &Path, group: &str) -> Vec<(String, String)> {
    let out = std::process::Command::new("my_print_defaults")
        .arg(format!("--defaults-file={}", file.display()))
        .arg(group)
        .output()
        .expect("my_print_defaults runs (installed with MariaDB)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let l = l.strip_prefix("--").expect("--key[=value]");
            match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.to_string(), String::new()),
            }
        })
        .collect()
}

#[test]
fn reader_and_writer_agree_with_my_print_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("my.cnf");
    let mut text = String::from("# amsu's option-file reader vs MariaDB's\n[client]\n");
    for l in HAND {
        text.push_str(l);
        text.push('\n');
    }
    for (i, v) in WRITTEN.iter().enumerate() {
        text.push_str(&format!("w{i} = {}\n", option_file::value(v)));
    }
    text.push_str("[other]\nh1 = not this group\n");
    std::fs::write(&f, &text).unwrap();

    let theirs = my_print_defaults(&f, "client");
    let ours: Vec<(String, String)> = OptionFile::read(&f)
        .unwrap()
        .lines
        .into_iter()
        .filter(|l| l.group == "client")
        .map(|l| (l.key, l.value))
        .collect();
    assert_eq!(ours, theirs, "{text}");
    for (i, v) in WRITTEN.iter().enumerate() {
        assert!(
            theirs.contains(&(format!("w{i}"), v.to_string())),
            "MariaDB reads {v:?} back as written: {theirs:?}"
        );
    }
}

/// A password with a backslash, double and single quotes and a `#`, in a file written by
/// amsu's writer: the `mariadb` client and `amsu status --defaults-file` both log in with
/// it (user and password from `[client]`); so does the same password written by hand
/// with MySQL's escapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_with_escapes_logs_in_from_defaults_file() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::deploy(
        SandboxOptions::new("x")
            .base_dir(dir.path())
            .name("optfile")
            .server_id(2),
    )
    .await
    .expect("sandbox starts");
    let pw = r#"b\s"q' #1\"#;
    exec(
        &sb.addr(),
        &[
            r#"CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'b\\s"q\' #1\\'"#,
            "GRANT SELECT, SLAVE MONITOR ON *.* TO 'app'@'127.0.0.1'",
        ],
    )
    .await;

    let written = dir.path().join("written.cnf");
    std::fs::write(
        &written,
        format!(
            "[client]\nuser = {}\npassword = {}\n",
            option_file::value("app"),
            option_file::value(pw)
        ),
    )
    .unwrap();
    let by_hand = dir.path().join("by-hand.cnf");
    std::fs::write(
        &by_hand,
        "[client]\nuser=app\npassword = \"b\\\\s\\\"q' #1\\\\\"  # the app's password\n",
    )
    .unwrap();

    for f in [&written, &by_hand] {
        // MariaDB's own client reads the file.
        let out = tokio::process::Command::new("mariadb")
            .arg(format!("--defaults-file={}", f.display()))
            .args(["-h", "127.0.0.1", "-P", &sb.port().to_string()])
            .args(["-N", "-e", "SELECT CURRENT_USER()"])
            .stdin(Stdio::null())
            .output()
            .await
            .expect("mariadb client runs");
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app@127.0.0.1");

        // amsu reads the same file: it logs in and finds the server is no replica (4).
        let out = tokio::process::Command::new(amsu_bin())
            .args(["status", "--replica"])
            .arg(format!("mysql://127.0.0.1:{}", sb.port()))
            .arg("--defaults-file")
            .arg(f)
            .env("HOME", dir.path())
            .env("AMSU_HOME", dir.path().join("amsu-home"))
            .env("AMSU_JOURNAL_DIR", dir.path().join("journal"))
            .env_remove("AMSU_REPLICA_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("amsu runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(
            out.status.code(),
            Some(4),
            "{}: {stdout}{stderr}",
            f.display()
        );
        assert!(stdout.contains("mysql://app@"), "{stdout}");
        assert!(!stdout.contains(pw) && !stderr.contains(pw));
    }
    sb.stop().await.expect("sandbox stops");
}
