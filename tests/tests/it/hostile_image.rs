//! Hostile and damaged images (issue 12 item 3): an image is data, never code, and a
//! damaged image loads nothing. Each image is made from a real master, damaged in one
//! way, and given to `amsu restore` (local and FTP) or `amsu setup --image`: the command
//! fails with exit 3 and an error naming the problem, the replica holds no user database
//! afterwards, and the database an injected statement would create does not exist.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use amsu_backup::{ImageBackup, ImageKey};
use amsu_core::manifest::{MANIFEST_FILE, SIGNATURE_FILE};
use amsu_core::ServerAddr;
use amsu_mysql::conn::Session;
use amsu_tests::ftpd::FtpServer;
use amsu_tests::servers::{
    amsu_bin, checksums, exec, journal_dir_for_tests, pair, query, scalar, Pair,
};
use serde_json::Value;

/// What a run of the `amsu` binary printed and returned.
struct Outcome {
    code: i32,
    /// Standard output and error, in that order.
    stderr: String,
}

async fn run(args: &[&str]) -> Outcome {
    let out = tokio::process::Command::new(amsu_bin())
        .args(args)
        .env("AMSU_JOURNAL_DIR", journal_dir_for_tests())
        .output()
        .await
        .expect("amsu runs");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A master with two databases, several tables, a view, a procedure and an account, and
/// an image of it written with small chunks (many of them), signed with `key` if given.
async fn master_and_image(p: &Pair, key: Option<ImageKey>) -> PathBuf {
    let m = p.master.addr();
    exec(
        &m,
        &[
            "CREATE DATABASE d",
            "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(40), KEY kv (v)) ENGINE=InnoDB",
            "INSERT INTO d.t SELECT seq, CONCAT('value ', seq) FROM d.seq_1_to_6000",
            "CREATE TABLE d.u (id INT PRIMARY KEY, w TEXT COMMENT 'a; b') ENGINE=InnoDB",
            "INSERT INTO d.u SELECT seq, REPEAT('w', seq % 50) FROM d.seq_1_to_3000",
            "CREATE DATABASE e",
            "CREATE TABLE e.z (id INT PRIMARY KEY) ENGINE=InnoDB",
            "INSERT INTO e.z SELECT seq FROM e.seq_1_to_100",
            "CREATE VIEW d.small AS SELECT id FROM d.t WHERE id < 10",
            "CREATE PROCEDURE d.p(IN a INT) BEGIN DECLARE x INT; SET x = a; SELECT x; END",
            "CREATE FUNCTION d.f(a INT) RETURNS INT DETERMINISTIC RETURN a + 1",
            "CREATE TRIGGER d.tr BEFORE INSERT ON d.u FOR EACH ROW \
             BEGIN SET NEW.w = CONCAT(NEW.w, ';'); SET NEW.w = CONCAT(NEW.w, '--'); END",
            "CREATE EVENT d.ev ON SCHEDULE EVERY 1 HOUR DO DELETE FROM d.u WHERE id < 0",
            "CREATE SEQUENCE d.s START WITH 5",
            "CREATE DATABASE `we``ird \"db' ü`",
            "CREATE TABLE `we``ird \"db' ü`.`t;1` (`a``b` INT PRIMARY KEY) ENGINE=InnoDB",
            "INSERT INTO `we``ird \"db' ü`.`t;1` VALUES (1), (2)",
            "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'",
            "GRANT SELECT ON d.* TO 'app'@'%'",
            "CREATE ROLE r1",
            "GRANT SELECT ON e.* TO r1",
            "GRANT r1 TO 'app'@'%'",
            "SET DEFAULT ROLE r1 FOR 'app'@'%'",
        ],
    )
    .await;
    let img = p.dir.path().join("image");
    let (manifest, _) = ImageBackup::new(m, &img)
        .chunk_bytes(16 << 10)
        .key(key)
        .run(Arc::new(amsu_core::NoEvents))
        .await
        .expect("backup");
    assert!(
        manifest.files.len() > 6,
        "the test needs several chunks: {:?}",
        manifest.files.len()
    );
    img
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// The chunk that would be loaded last (the highest path).
fn last_chunk(img: &Path) -> PathBuf {
    let schema = read_json(&img.join("schema.json"));
    let last = schema["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .max()
        .unwrap();
    img.join(last)
}

/// Changes `schema.json` and then updates its size and checksum in the manifest, so that
/// only the statement check can find what changed.
async fn edit_schema(img: &Path, f: impl FnOnce(&mut Value)) {
    let sp = img.join("schema.json");
    let mut schema = read_json(&sp);
    f(&mut schema);
    write_json(&sp, &schema);
    let size = std::fs::metadata(&sp).unwrap().len();
    let sum = amsu_transfer::sha256_file(&sp).await.unwrap();
    edit_manifest(img, |m| {
        let e = m["files"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e["path"] == "schema.json")
            .unwrap();
        e["size"] = size.into();
        e["sha256"] = sum.into();
    });
}

fn edit_manifest(img: &Path, f: impl FnOnce(&mut Value)) {
    let mp = img.join(MANIFEST_FILE);
    let mut m = read_json(&mp);
    f(&mut m);
    write_json(&mp, &m);
}

/// The definition of table `name` in `schema.json`.
fn table_sql<'v>(schema: &'v mut Value, name: &str) -> &'v mut Value {
    &mut schema["tables"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"] == name)
        .unwrap()["create_sql"]
}

async fn user_databases(r: &ServerAddr) -> Vec<String> {
    query(
        r,
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN \
         ('mysql', 'information_schema', 'performance_schema', 'sys', 'test')",
    )
    .await
    .into_iter()
    .filter_map(|r| r.into_iter().next().flatten())
    .collect()
}

/// `amsu restore` of `image` is refused with exit 3, the error names every one of
/// `expect`, and nothing at all reached the replica.
async fn assert_refused(case: &str, r: &ServerAddr, args: &[&str], expect: &[&str]) {
    let out = run(args).await;
    assert_eq!(out.code, 3, "{case}: exit code; stderr: {}", out.stderr);
    for e in expect {
        assert!(
            out.stderr.contains(e),
            "{case}: the error must name {e:?}: {}",
            out.stderr
        );
    }
    assert_eq!(
        user_databases(r).await,
        Vec::<String>::new(),
        "{case}: nothing may be loaded from a refused image"
    );
    assert_eq!(
        scalar(r, "SELECT COUNT(*) FROM mysql.user WHERE User = 'app'")
            .await
            .as_deref(),
        Some("0"),
        "{case}: no account may be created from a refused image"
    );
}

/// Views, routines, triggers, events, sequences and grants, as the server lists them.
async fn objects(a: &ServerAddr) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA IN ('d', 'e') ORDER BY 1, 2",
        "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_DEFINITION FROM information_schema.ROUTINES \
         WHERE ROUTINE_SCHEMA = 'd' ORDER BY 1, 2",
        "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS \
         WHERE TRIGGER_SCHEMA = 'd' ORDER BY 1",
        "SELECT EVENT_NAME, EVENT_DEFINITION FROM information_schema.EVENTS \
         WHERE EVENT_SCHEMA = 'd' ORDER BY 1",
        "SELECT NEXTVAL(d.s)",
        "SELECT GRANTEE, TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES \
         ORDER BY 1, 2, 3",
        "SELECT User, Host, default_role FROM mysql.user WHERE User IN ('app', 'r1') ORDER BY 1",
    ] {
        out.extend(query(a, sql).await);
    }
    out
}

fn key_file(dir: &Path, name: &str, key: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, format!("{key}\n")).unwrap();
    f.display().to_string()
}

/// Every kind of damage, on a local image: refused before the first statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_hostile_images_load_nothing() {
    let p = pair(|o| o, |o| o).await;
    let r = p.replica.addr();
    let img = master_and_image(&p, None).await;
    let url = p.replica.url();
    let case_dir = |name: &str| {
        let d = p.dir.path().join(name);
        copy_dir(&img, &d);
        d
    };

    // A chunk with a changed byte (same size), the last one to load.
    let d = case_dir("checksum");
    let chunk = last_chunk(&d);
    let mut bytes = std::fs::read(&chunk).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&chunk, &bytes).unwrap();
    let name = chunk.strip_prefix(&d).unwrap().display().to_string();
    let ds = d.display().to_string();
    assert_refused(
        "checksum",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &[&name, "does not match the manifest", "sha256"],
    )
    .await;

    // A truncated chunk.
    let d = case_dir("truncated");
    let chunk = last_chunk(&d);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&chunk)
        .unwrap();
    f.set_len(f.metadata().unwrap().len() / 2).unwrap();
    let ds = d.display().to_string();
    assert_refused(
        "truncated",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &[&name, "bytes"],
    )
    .await;

    // A missing chunk.
    let d = case_dir("missing");
    std::fs::remove_file(last_chunk(&d)).unwrap();
    let ds = d.display().to_string();
    assert_refused(
        "missing",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &[&name, "missing"],
    )
    .await;

    // A second statement after a table definition (schema.json's checksum made right).
    let d = case_dir("injected");
    edit_schema(&d, |s| {
        let sql = table_sql(s, "u");
        *sql = format!("{}; CREATE DATABASE x", sql.as_str().unwrap()).into();
    })
    .await;
    let ds = d.display().to_string();
    assert_refused(
        "injected",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &["schema.json", "`d`.`u`", "more than one statement"],
    )
    .await;
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'x'"
        )
        .await
        .as_deref(),
        Some("0"),
        "the injected statement must not run"
    );

    // The same through an executable comment and a grant for another account.
    let d = case_dir("exec-comment");
    edit_schema(&d, |s| {
        let sql = table_sql(s, "u");
        *sql = format!("{} /*!50000 ; CREATE DATABASE x */", sql.as_str().unwrap()).into();
    })
    .await;
    let ds = d.display().to_string();
    assert_refused(
        "exec-comment",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &["schema.json", "more than one statement"],
    )
    .await;
    let d = case_dir("grant");
    edit_schema(&d, |s| {
        let a = s["accounts"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|a| a["user"] == "app")
            .unwrap();
        a["grants"]
            .as_array_mut()
            .unwrap()
            .push("GRANT ALL PRIVILEGES ON *.* TO `root`@`%`".into());
    })
    .await;
    let ds = d.display().to_string();
    assert_refused(
        "grant",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &["schema.json", "a grant of account 'app'@'%'", "'root'@'%'"],
    )
    .await;

    // A definition naming another table than the schema says.
    let d = case_dir("renamed");
    edit_schema(&d, |s| {
        let sql = table_sql(s, "u");
        *sql = sql
            .as_str()
            .unwrap()
            .replacen("CREATE TABLE `u`", "CREATE TABLE `other`", 1)
            .into();
    })
    .await;
    let ds = d.display().to_string();
    assert_refused(
        "renamed",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &["schema.json", "`d`.`u`", "`other`"],
    )
    .await;

    // A manifest path outside the image.
    let d = case_dir("dotdot");
    edit_manifest(&d, |m| {
        let files = m["files"].as_array_mut().unwrap();
        let last = files.len() - 1;
        files[last]["path"] = "../image/data/000001.tsv".into();
    });
    let ds = d.display().to_string();
    assert_refused(
        "dotdot",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &["unsafe path", "../image/data/000001.tsv"],
    )
    .await;

    // A duplicate path, and an unknown format version.
    let d = case_dir("duplicate");
    edit_manifest(&d, |m| {
        let files = m["files"].as_array_mut().unwrap();
        let again = files[1].clone();
        files.push(again);
    });
    let ds = d.display().to_string();
    assert_refused(
        "duplicate",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &["manifest", "unsafe path"],
    )
    .await;
    let d = case_dir("version");
    edit_manifest(&d, |m| m["format_version"] = 99.into());
    let ds = d.display().to_string();
    assert_refused(
        "version",
        &r,
        &["restore", "--image", &ds, "--replica", &url],
        &["format version 99"],
    )
    .await;

    // An unsigned image where a key is required.
    let key = key_file(p.dir.path(), "key", "0123456789abcdef0123456789abcdef");
    let ds = img.display().to_string();
    assert_refused(
        "unsigned",
        &r,
        &[
            "restore",
            "--image",
            &ds,
            "--replica",
            &url,
            "--image-key",
            &key,
        ],
        &[SIGNATURE_FILE, "not signed"],
    )
    .await;

    // `amsu setup --image` refuses the injected image in its preflight, before the
    // replica is configured.
    let read_only = scalar(&r, "SELECT @@global.read_only").await;
    let ds = p.dir.path().join("injected").display().to_string();
    let out = run(&[
        "setup",
        "--master",
        &p.master.url(),
        "--replica",
        &url,
        "--image",
        &ds,
        "--yes",
    ])
    .await;
    assert_eq!(out.code, 3, "setup --image: {}", out.stderr);
    assert!(
        out.stderr.contains("more than one statement"),
        "{}",
        out.stderr
    );
    assert_eq!(user_databases(&r).await, Vec::<String>::new());
    assert_eq!(scalar(&r, "SELECT @@global.read_only").await, read_only);

    // The undamaged image restores (the same servers, so the checks above could fail).
    let out = run(&["restore", "--image", &ds_of(&img), "--replica", &url]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(checksums(&p.master.addr()).await, checksums(&r).await);
    assert_eq!(objects(&p.master.addr()).await, objects(&r).await);
}

fn ds_of(p: &Path) -> String {
    p.display().to_string()
}

fn password_file(dir: &Path, ftp: &FtpServer) -> String {
    let f = dir.join("ftp-password");
    std::fs::write(&f, format!("{}\n", ftp.password.expose())).unwrap();
    f.display().to_string()
}

/// A signed image over FTP: `amsu backup --image-key` uploads it with its signature;
/// `amsu restore --image-key` refuses a wrong key, a forged manifest and a damaged chunk
/// (fetched whole and checked before anything loads), then restores the good image,
/// equal to the master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_image_over_ftp_restores_and_forgeries_are_refused() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    let ftp = FtpServer::plain();
    let pw = password_file(p.dir.path(), &ftp);
    let key = key_file(p.dir.path(), "key", "0123456789abcdef0123456789abcdef");
    let other = key_file(p.dir.path(), "other", "fedcba9876543210fedcba9876543210");
    let url = p.replica.url();
    // The data, and a signed image of it written through the command line.
    let local = master_and_image(&p, None).await;
    let signed = format!("{}signed", ftp.url());
    let out = run(&[
        "backup",
        "--master",
        &p.master.url(),
        "--out",
        &signed,
        "--ftp-password-file",
        &pw,
        "--image-key",
        &key,
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("0123456789abcdef"),
        "the key is never printed"
    );
    let served = ftp.served.join("signed");
    assert!(
        served.join(SIGNATURE_FILE).exists(),
        "the signature was uploaded"
    );

    let restore = |image: String, key: String| {
        let (url, pw) = (url.clone(), pw.clone());
        async move {
            run(&[
                "restore",
                "--image",
                &image,
                "--replica",
                &url,
                "--ftp-password-file",
                &pw,
                "--image-key",
                &key,
            ])
            .await
        }
    };

    // A wrong key.
    let out = restore(signed.clone(), other.clone()).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("does not match"), "{}", out.stderr);
    assert!(!out.stderr.contains("fedcba9876543210"), "{}", out.stderr);
    assert_eq!(user_databases(&r).await, Vec::<String>::new());

    // A forged manifest (a chunk's checksum changed to match a damaged chunk) under the
    // old signature.
    let forged = ftp.served.join("forged");
    copy_dir(&served, &forged);
    let chunk = last_chunk(&forged);
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[0] ^= 0x01;
    std::fs::write(&chunk, &bytes).unwrap();
    let rel = chunk.strip_prefix(&forged).unwrap().display().to_string();
    let sum = amsu_transfer::sha256_file(&chunk).await.unwrap();
    edit_manifest(&forged, |m| {
        let e = m["files"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e["path"] == rel.as_str())
            .unwrap();
        e["sha256"] = sum.into();
    });
    let out = restore(format!("{}forged", ftp.url()), key.clone()).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("does not match"), "{}", out.stderr);
    assert_eq!(user_databases(&r).await, Vec::<String>::new());

    // An unsigned image over FTP with a damaged last chunk: fetched and checked whole,
    // nothing loaded.
    let damaged = ftp.served.join("damaged");
    copy_dir(&local, &damaged);
    let chunk = last_chunk(&damaged);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&chunk)
        .unwrap();
    f.set_len(1).unwrap();
    let rel = chunk.strip_prefix(&damaged).unwrap().display().to_string();
    let out = run(&[
        "restore",
        "--image",
        &format!("{}damaged", ftp.url()),
        "--replica",
        &p.replica.url(),
        "--ftp-password-file",
        &pw,
    ])
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains(&rel), "{}", out.stderr);
    assert_eq!(user_databases(&r).await, Vec::<String>::new());

    // The signed image with its key: restored, equal to the master.
    let out = restore(signed, key).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(checksums(&m).await, checksums(&r).await);
    assert_eq!(
        scalar(&r, "SELECT COUNT(*) FROM d.small").await.as_deref(),
        Some("9")
    );
    assert_eq!(objects(&m).await, objects(&r).await);
}

/// mysql_async always asks for multi-statements: a text query runs every statement in
/// it. A session in single-statement mode runs SQL from outside as one prepared
/// statement, which the server refuses to split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_statement_sessions_refuse_a_second_statement() {
    let p = pair(|o| o, |o| o).await;
    let r = p.replica.addr();
    let exists = |db: &'static str| {
        let r = r.clone();
        async move {
            scalar(
                &r,
                &format!(
                    "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
                ),
            )
            .await
            .as_deref()
                == Some("1")
        }
    };
    let mut s = Session::open(&r).await.unwrap();
    // What the issue found: a text query runs both statements.
    s.exec("SELECT 1; CREATE DATABASE x1", "two statements")
        .await
        .unwrap();
    assert!(exists("x1").await, "the plain text protocol runs both");

    s.single_statements();
    let e = s
        .exec_one("SELECT 1; CREATE DATABASE x2", "two statements")
        .await
        .unwrap_err();
    assert!(!exists("x2").await, "{e}");
    // One statement, compound bodies included, runs.
    s.exec_one("CREATE DATABASE x3", "one statement")
        .await
        .unwrap();
    s.exec_one(
        "CREATE PROCEDURE x3.p() BEGIN DECLARE a INT; SET a = 1; SELECT a; END",
        "a procedure",
    )
    .await
    .unwrap();
    assert!(exists("x3").await);
    let e = s
        .exec_one(
            "CREATE PROCEDURE x3.q() BEGIN SELECT 1; END; CREATE DATABASE x4",
            "a procedure and more",
        )
        .await
        .unwrap_err();
    assert!(!exists("x4").await, "{e}");
    // mysql_async reads `:begin` (a label without a space) as a named parameter and would
    // prepare another text: refused when the text holds `;`, sent as text when it is one
    // statement anyway.
    let e = s
        .exec_one(
            "CREATE PROCEDURE x3.r() l1:begin select 1; end",
            "a label without a space",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains(":name"), "{e}");
    s.exec_one(
        "CREATE PROCEDURE x3.s() l1:begin end",
        "a label, one statement",
    )
    .await
    .unwrap();
    assert_eq!(
        scalar(
            &r,
            "SELECT ROUTINE_DEFINITION FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = 'x3' AND ROUTINE_NAME = 's'"
        )
        .await
        .as_deref(),
        Some("l1:begin end"),
        "sent as it is"
    );
}
