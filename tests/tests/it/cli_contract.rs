//! The CLI contract on real servers: every `--json` line of `check`, `setup`, `backup`,
//! `restore`, `status` and `verify` validates against the checked-in JSON Schema and
//! carries `"v": 1` and an `"event"`; errors are structured; credentials come from option
//! files and sockets as the MySQL clients take them; completions and the man page are
//! generated; `backup` refuses outfile and overwriting.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use amsu_mysql::sandbox::Sandbox;
use amsu_tests::servers::{amsu_bin, exec, pair};
use serde_json::Value;

/// The output of one `amsu` process.
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `amsu ARGS` with `env`, its home, journals and saved passwords under `home`.
pub(crate) async fn run(args: &[&str], env: &[(&str, &str)], home: &Path) -> Out {
    let mut cmd = tokio::process::Command::new(amsu_bin());
    cmd.args(args)
        .env("AMSU_HOME", home.join("amsu-home"))
        .env("AMSU_JOURNAL_DIR", home.join("journal"))
        .env("HOME", home)
        .env_remove("AMSU_MASTER_PASSWORD")
        .env_remove("AMSU_REPLICA_PASSWORD")
        .env_remove("AMSU_REPL_PASSWORD")
        .env_remove("AMSU_ADMIN_PASSWORD")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("amsu runs");
    Out {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/amsu-json.schema.json")
}

/// Parses every stdout line, validates it against the schema, and returns the lines.
pub(crate) fn validated(out: &Out, what: &str) -> Vec<Value> {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path()).expect("schema file"))
            .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    // The schema rejects what the contract forbids.
    for bad in [
        r#"{"v":2,"event":"result","command":"check","ok":true,"exit_code":0}"#,
        r#"{"event":"result","command":"check","ok":true,"exit_code":0}"#,
        r#"{"v":1,"ok":false,"error":"prose"}"#,
        r#"{"v":1,"event":"error","command":"check","error":"prose"}"#,
        r#"{"v":1,"event":"no_such_event"}"#,
    ] {
        let bad: Value = serde_json::from_str(bad).unwrap();
        assert!(!validator.is_valid(&bad), "the schema accepts {bad}");
    }
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{what}: not one JSON object per line ({e}): {l}"))
        })
        .collect();
    assert!(
        !lines.is_empty(),
        "{what}: no output; stderr: {}",
        out.stderr
    );
    for l in &lines {
        if let Err(e) = validator.validate(l) {
            panic!("{what}: a line does not match the schema: {e}\n{l}");
        }
        assert_eq!(l["v"], 1, "{what}: {l}");
        assert!(l["event"].is_string(), "{what}: {l}");
    }
    let last = lines.last().unwrap();
    assert!(
        last["event"] == "result" || last["event"] == "error",
        "{what}: the last line is a result or an error: {last}"
    );
    assert_eq!(last["command"], what.split(' ').next().unwrap(), "{last}");
    lines
}

/// The first line of `lines` with this event.
pub(crate) fn event<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["event"] == name)
        .unwrap_or_else(|| panic!("no {name} line in {lines:#?}"))
}

/// Every command's JSON, on real servers: check, setup --dry-run, backup (and its
/// refusals), restore, setup, status, verify, and errors (a refused login with its server
/// error number, a replica that is not one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_of_every_command_match_the_schema() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.url(), p.replica.url());
    exec(
        &p.master.addr(),
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20))",
            "INSERT INTO shop.items SELECT seq, CONCAT('n', seq) FROM shop.seq_1_to_500",
        ],
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let repl = [("AMSU_REPL_PASSWORD", "Contract-Repl-1")];

    let out = run(
        &["check", "--master", &m, "--replica", &r, "--json"],
        &[],
        h,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = validated(&out, "check");
    let pre = event(&lines, "preflight");
    assert!(pre["master"]["server_id"].is_number(), "{pre}");
    for f in pre["findings"].as_array().unwrap() {
        for k in ["severity", "server", "code", "problem", "fix"] {
            assert!(f[k].is_string(), "a finding whole: {f}");
        }
    }

    let out = run(
        &[
            "setup",
            "--master",
            &m,
            "--replica",
            &r,
            "--dry-run",
            "--json",
        ],
        &repl,
        h,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = validated(&out, "setup --dry-run");
    let plan = event(&lines, "plan").to_string();
    assert!(
        plan.contains("MASTER_LOG_POS=<snapshot position>"),
        "placeholders look like placeholders: {plan}"
    );
    assert!(!plan.contains("MASTER_LOG_POS=0"), "{plan}");
    assert_eq!(lines.last().unwrap()["dry_run"], true);

    let image = h.join("image");
    let image_s = image.to_str().unwrap();
    let out = run(
        &["backup", "--master", &m, "--out", image_s, "--json"],
        &[],
        h,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = validated(&out, "backup");
    assert!(event(&lines, "manifest")["manifest"]["coordinates"].is_object());

    // Onto an existing image: refused (exit 3) naming --overwrite; with it, replaced.
    let before = std::fs::read(image.join("manifest.json")).unwrap();
    let out = run(
        &["backup", "--master", &m, "--out", image_s, "--json"],
        &[],
        h,
    )
    .await;
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    let lines = validated(&out, "backup");
    let err = &lines.last().unwrap()["error"];
    assert_eq!(err["kind"], "precondition");
    assert!(
        err["message"].as_str().unwrap().contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(image.join("manifest.json")).unwrap(), before);
    let out = run(
        &["backup", "--master", &m, "--out", image_s, "--overwrite"],
        &[],
        h,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    // outfile is not a backup method: refused as a usage error, nothing written.
    let elsewhere = h.join("outfile-image");
    let out = run(
        &[
            "backup",
            "--master",
            &m,
            "--out",
            elsewhere.to_str().unwrap(),
            "--method",
            "outfile",
        ],
        &[],
        h,
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("outfile"), "{}", out.stderr);
    assert!(!elsewhere.exists());

    let out = run(
        &["restore", "--image", image_s, "--replica", &r, "--json"],
        &[],
        h,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = validated(&out, "restore");
    assert!(event(&lines, "restored")["report"].is_object());

    // Not a replica yet: status says so (exit 4), in the same envelope.
    let out = run(&["status", "--replica", &r, "--json"], &[], h).await;
    assert_eq!(out.code, 4, "{}", out.stderr);
    let lines = validated(&out, "status");
    assert_eq!(event(&lines, "status")["healthy"], false);

    // The restored replica holds data: setup refuses with structured findings.
    let setup_args = [
        "setup",
        "--master",
        &m,
        "--replica",
        &r,
        "--yes",
        "--json",
        "--wait-caught-up",
    ];
    let out = run(&setup_args, &repl, h).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let lines = validated(&out, "setup");
    let err = &lines.last().unwrap()["error"];
    assert_eq!(err["kind"], "precondition", "{err}");
    let f = err["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "replica_not_empty")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(f["flag"], "--force", "{f}");
    // The same fix as data: the setup's `force` setting.
    assert_eq!(
        f["remedies"],
        serde_json::json!([{"setting": {"name": "force"}}]),
        "{f}"
    );
    assert!(
        !f["fix"].as_str().unwrap().contains("--"),
        "neutral fix: {f}"
    );

    let mut forced = setup_args.to_vec();
    forced.push("--force");
    let out = run(&forced, &repl, h).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = validated(&out, "setup");
    for name in ["step_started", "step_finished", "report", "result"] {
        event(&lines, name);
    }

    let out = run(&["status", "--replica", &r, "--json"], &[], h).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = validated(&out, "status");
    assert_eq!(event(&lines, "status")["healthy"], true);

    let out = run(
        &["verify", "--master", &m, "--replica", &r, "--json"],
        &[],
        h,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = validated(&out, "verify");
    assert_eq!(event(&lines, "verify_result")["equal"], true);

    // A refused login: a structured error with the server's error number and a remedy
    // saying which password sources were tried.
    exec(
        &p.master.addr(),
        &["CREATE USER 'pw'@'127.0.0.1' IDENTIFIED BY 'Contract-Pw-1'"],
    )
    .await;
    let pw_url = format!("mysql://pw@127.0.0.1:{}", p.master.port());
    let out = run(&["check", "--master", &pw_url, "--json"], &[], h).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let lines = validated(&out, "check");
    let err = &lines.last().unwrap()["error"];
    assert_eq!(err["server_error"], 1045, "{err}");
    let remedy = err["remedy"].as_str().unwrap_or_else(|| panic!("{err}"));
    assert!(
        remedy.contains("no password was given") && remedy.contains("AMSU_MASTER_PASSWORD"),
        "{remedy}"
    );
}

/// A role with a password, for the credential tests.
async fn app_user(sb: &Sandbox) {
    exec(
        &sb.addr(),
        &[
            "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'App pw #1'",
            "CREATE USER 'app'@'localhost' IDENTIFIED BY 'App pw #1'",
            "GRANT SELECT, SLAVE MONITOR ON *.* TO 'app'@'127.0.0.1', 'app'@'localhost'",
        ],
    )
    .await;
}

/// `user` and `password` from `--defaults-file`, from `~/.my.cnf` (`[client]` and the
/// `[amsu-replica]` group), a unix socket URL, a password that was never exported (the
/// message says what was tried), and `--ask-pass` without a terminal (fails loudly).
/// `amsu status` logs in and reports "not a replica" (exit 4) when the credentials work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_option_files_and_sockets() {
    let p = pair(|o| o, |o| o).await;
    let sb = &p.replica;
    app_user(sb).await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let no_user = format!("mysql://127.0.0.1:{}", sb.port());
    let app = format!("mysql://app@127.0.0.1:{}", sb.port());

    // --defaults-file: user and password from [client] (quoted, with a '#').
    let f = h.join("amsu.cnf");
    std::fs::write(&f, "[client]\nuser = app\npassword = \"App pw #1\"\n").unwrap();
    let out = run(
        &[
            "status",
            "--replica",
            &no_user,
            "--defaults-file",
            f.to_str().unwrap(),
        ],
        &[],
        h,
    )
    .await;
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("mysql://app@"), "{}", out.stdout);

    // ~/.my.cnf: [amsu-replica] over [client].
    std::fs::write(
        h.join(".my.cnf"),
        "[client]\nuser=app\npassword=wrong\n[amsu-replica]\npassword='App pw #1'\n",
    )
    .unwrap();
    let out = run(&["status", "--replica", &no_user], &[], h).await;
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    std::fs::remove_file(h.join(".my.cnf")).unwrap();

    // A unix socket: root@localhost over the sandbox's socket, no TCP.
    let sock = format!("mysql://root@localhost/?socket={}", sb.socket().display());
    let out = run(&["status", "--replica", &sock, "--json"], &[], h).await;
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    // The app user over the socket, its password from the environment.
    let app_sock = format!("mysql://app@localhost/?socket={}", sb.socket().display());
    let out = run(
        &["status", "--replica", &app_sock],
        &[("AMSU_REPLICA_PASSWORD", "App pw #1")],
        h,
    )
    .await;
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);

    // No password anywhere: the refused login says which sources were tried.
    let out = run(&["status", "--replica", &app], &[], h).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("using password: NO"), "{}", out.stderr);
    assert!(
        out.stderr.contains("no password was given")
            && out
                .stderr
                .contains("AMSU_REPLICA_PASSWORD (not in amsu's environment")
            && out.stderr.contains(".my.cnf (no such file)"),
        "{}",
        out.stderr
    );
    // A wrong password: the message says where it came from.
    let out = run(
        &["status", "--replica", &app],
        &[("AMSU_REPLICA_PASSWORD", "nope")],
        h,
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("the password came from AMSU_REPLICA_PASSWORD"),
        "{}",
        out.stderr
    );

    // --ask-pass with stdin not a terminal: a usage error, not a silent no-password login.
    let out = run(&["status", "--replica", &app, "--ask-pass"], &[], h).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("needs a terminal"), "{}", out.stderr);
}

/// `amsu completions SHELL` and `amsu man` generate; the help teaches (groups, examples,
/// defaults, exit codes) and shows only the flags a command uses; colour is off when
/// piped.
#[tokio::test]
async fn completions_man_page_and_help() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for (shell, needle, flag) in [
        ("bash", "_amsu()", "--master"),
        ("zsh", "#compdef amsu", "--master"),
        ("fish", "complete -c amsu", "-l master"),
    ] {
        let out = run(&["completions", shell], &[], h).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains(needle), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains(flag), "{shell}");
    }
    let out = run(&["man"], &[], h).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(".ie") || out.stdout.contains(".TH amsu"),
        "{}",
        out.stdout
    );
    let out = run(&["man", "setup"], &[], h).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("amsu\\-setup"),
        "{}",
        &out.stdout[..400.min(out.stdout.len())]
    );
    assert!(out.stdout.contains("wait\\-caught\\-up"));
    assert_eq!(run(&["man", "nosuch"], &[], h).await.code, 2);

    let setup = run(&["setup", "--help"], &[], h).await.stdout;
    for needle in [
        "Examples:",
        "Servers:",
        "Copy:",
        "Safety:",
        "Passwords:",
        "Exit codes:",
        "[default: amsu_repl]",
        "[default: 3600]",
        "[default: idle cores]",
    ] {
        assert!(
            setup.contains(needle),
            "setup --help lacks {needle:?}:\n{setup}"
        );
    }
    assert!(!setup.contains("\x1b["), "no colour when piped");
    let status = run(&["status", "--help"], &[], h).await.stdout;
    assert!(status.contains("--replica-password-file"), "{status}");
    for unused in [
        "--admin-password-file",
        "--master-password-file",
        "--repl-password-file",
    ] {
        assert!(
            !status.contains(unused),
            "status --help shows {unused}:\n{status}"
        );
    }
    let backup = run(&["backup", "--help"], &[], h).await.stdout;
    assert!(
        backup.contains("[default: 2]") && backup.contains("--overwrite"),
        "{backup}"
    );
    let sandbox = run(&["sandbox", "--help"], &[], h).await.stdout;
    assert!(sandbox.contains("[env: AMSU_SANDBOX_HOME"), "{sandbox}");
}
