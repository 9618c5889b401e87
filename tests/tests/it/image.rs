//! Images end to end: `amsu backup` / `amsu restore`, corrupted and incomplete images, the
//! `outfile` method over FTPS with the master's `secure_file_priv` served by a real
//! pure-ftpd, a further replica seeded from the kept image, and a cut FTP transfer.

use std::path::Path;
use std::time::{Duration, Instant};

use amsu_backup::{ImageError, ImageReader};
use amsu_core::manifest::MANIFEST_FILE;
use amsu_mysql::sandbox::{Sandbox, SandboxOptions};
use amsu_tests::ftpd::{FtpServer, FtpTls};
use amsu_tests::proxy::Proxy;
use amsu_tests::servers::{
    amsu, amsu_bin, checksums, create_bank, exec, pair, query, scalar, wait_caught_up, Writer,
    BANK_TOTAL,
};

/// Tables with hard values: NULL vs 'NULL', tabs, newlines, backslashes, binary bytes,
/// BIT, FLOAT, POINT, TIMESTAMP, a MyISAM table, odd identifiers; a view and an account.
async fn fill(m: &amsu_core::ServerAddr, rows: u32) {
    exec(
        m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(50), price DECIMAL(10,2), \
             note TEXT, b BIT(5), f FLOAT, raw VARBINARY(20), g POINT NULL, ts TIMESTAMP NULL) ENGINE=InnoDB",
            &format!(
                "INSERT INTO shop.items SELECT seq, CONCAT('item ', seq), seq / 7, \
                 IF(seq % 5 = 0, NULL, REPEAT('x\\ty\\n\\\\z', seq % 9)), seq % 32, seq / 3, \
                 UNHEX(SHA1(seq)), IF(seq % 3 = 0, NULL, POINT(seq, seq / 2)), \
                 FROM_UNIXTIME(1600000000 + seq) FROM shop.seq_1_to_{rows}"
            ),
            "CREATE TABLE shop.conf (k VARCHAR(20) PRIMARY KEY, v TEXT) ENGINE=MyISAM",
            "INSERT INTO shop.conf VALUES ('a', 'NULL'), ('b', ''), ('c', NULL), ('d', '\\\\N')",
            "CREATE DATABASE `odd db``name`",
            "CREATE TABLE `odd db``name`.`select` (`from` INT PRIMARY KEY, `the value` VARCHAR(10)) ENGINE=InnoDB",
            "INSERT INTO `odd db``name`.`select` VALUES (1, 'één'), (2, 'zwei')",
            "CREATE VIEW shop.cheap AS SELECT id, name FROM shop.items WHERE price < 10",
            "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'",
            "GRANT SELECT ON shop.* TO 'app'@'%'",
        ],
    )
    .await;
}

async fn assert_equal(m: &amsu_core::ServerAddr, r: &amsu_core::ServerAddr) {
    wait_caught_up(m, r).await;
    let (a, b) = (checksums(m).await, checksums(r).await);
    assert!(a.len() >= 5, "{a:?}");
    assert_eq!(a, b, "master and replica differ");
    assert_eq!(
        scalar(r, "SELECT SUM(balance) FROM bank.accounts")
            .await
            .as_deref(),
        Some(BANK_TOTAL.to_string().as_str())
    );
    assert_eq!(
        scalar(r, "SELECT COUNT(*) FROM shop.cheap").await,
        scalar(m, "SELECT COUNT(*) FROM shop.cheap").await
    );
    assert_eq!(
        scalar(r, "SELECT COUNT(*) FROM mysql.user WHERE User = 'app'")
            .await
            .as_deref(),
        Some("1")
    );
}

fn password_file(dir: &Path, ftp: &FtpServer) -> String {
    let f = dir.join("ftp-password");
    std::fs::write(&f, format!("{}\n", ftp.password.expose())).unwrap();
    f.display().to_string()
}

/// `amsu backup --out DIR` under a write load, then `amsu restore --start-replication`:
/// the replica catches up and is equal table for table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_backup_then_restore_yields_equal_replica() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 2000).await;
    fill(&m, 20_000).await;
    let writer = Writer::start(m.clone(), "bank", 2000);
    writer.wait_commits(20).await;

    let img = p.dir.path().join("image");
    let img_s = img.display().to_string();
    let code = amsu(&[
        "backup",
        "--master",
        &p.master.url(),
        "--out",
        &img_s,
        "--threads",
        "2",
    ])
    .await;
    assert_eq!(code, 0, "backup must succeed");
    let reader = ImageReader::open(&img).await.expect("a complete image");
    assert_eq!(reader.manifest().method, "logical");
    assert!(reader.schema().chunks.len() >= 5);
    for c in &reader.schema().chunks {
        assert!(
            c.path.starts_with("data/") && c.path.ends_with(".tsv"),
            "{c:?}"
        );
    }

    let code = amsu(&[
        "restore",
        "--image",
        &img_s,
        "--replica",
        &p.replica.url(),
        "--start-replication",
        "--master",
        &p.master.url(),
    ])
    .await;
    assert_eq!(code, 0, "restore must succeed");
    let during = writer.commits();
    writer.wait_commits(during + 30).await;
    writer.stop().await;
    assert_equal(&m, &r).await;
}

/// A chunk whose bytes changed (same size) is refused by its checksum before anything is
/// created or loaded (exit 3); an image without a manifest is refused with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_or_incomplete_image_is_refused() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "CREATE DATABASE d",
            "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB",
            "INSERT INTO d.t SELECT seq, CONCAT('v', seq) FROM d.seq_1_to_5000",
        ],
    )
    .await;
    let img = p.dir.path().join("image");
    let img_s = img.display().to_string();
    assert_eq!(
        amsu(&["backup", "--master", &p.master.url(), "--out", &img_s]).await,
        0
    );
    let reader = ImageReader::open(&img).await.unwrap();
    let schema = reader.schema();
    let t = schema
        .tables
        .iter()
        .position(|t| t.db == "d" && t.name == "t")
        .unwrap();
    let chunk = schema.chunks.iter().find(|c| c.table == t).unwrap().clone();
    let path = img.join(&chunk.path);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.iter().position(|&b| b == b'v').unwrap();
    bytes[at] = b'w';
    std::fs::write(&path, &bytes).unwrap();

    let code = amsu(&["restore", "--image", &img_s, "--replica", &p.replica.url()]).await;
    assert_eq!(
        code, 3,
        "a corrupted chunk is refused before anything changes"
    );
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'd'"
        )
        .await
        .as_deref(),
        Some("0"),
        "nothing may be created or loaded from a corrupted image"
    );
    let i = reader
        .schema()
        .chunks
        .iter()
        .position(|c| c.path == chunk.path)
        .unwrap();
    let err = reader.verified_chunk(i).await.unwrap_err();
    assert!(matches!(err, ImageError::Checksum { .. }), "{err}");

    // The outfile method's preflight: this master's secure_file_priv is not what the FTP
    // server serves, so the setup stops before changing anything (exit code 3).
    let ftp = FtpServer::plain();
    let pw = password_file(p.dir.path(), &ftp);
    let code = amsu(&[
        "setup",
        "--method",
        "outfile",
        "--ftp",
        &ftp.url(),
        "--ftp-password-file",
        &pw,
        "--master",
        &p.master.url(),
        "--replica",
        &p.replica.url(),
        "--force",
        "--yes",
    ])
    .await;
    assert_eq!(
        code, 3,
        "the outfile preflight must refuse a wrong endpoint"
    );
    assert_eq!(
        scalar(
            &m,
            "SELECT COUNT(*) FROM mysql.user WHERE User = 'amsu_repl'"
        )
        .await
        .as_deref(),
        Some("0"),
        "nothing may be changed on the master"
    );
    assert!(
        std::fs::read_dir(&ftp.served).unwrap().next().is_none(),
        "the probe leaves nothing behind"
    );

    std::fs::remove_file(img.join(MANIFEST_FILE)).unwrap();
    let err = ImageReader::open(&img).await.unwrap_err();
    assert!(matches!(err, ImageError::NoManifest { .. }), "{err}");
    assert!(err.to_string().contains("manifest.json"), "{err}");
    let code = amsu(&["restore", "--image", &img_s, "--replica", &p.replica.url()]).await;
    assert_ne!(code, 0, "an image without a manifest must be refused");
    let code = amsu(&[
        "setup",
        "--image",
        &img_s,
        "--master",
        &p.master.url(),
        "--replica",
        &p.replica.url(),
        "--force",
        "--yes",
    ])
    .await;
    assert_eq!(
        code, 3,
        "setup --image refuses an incomplete image before any change"
    );
    let code = amsu(&[
        "restore",
        "--image",
        &format!("{}zimg", ftp.url()),
        "--ftp-password-file",
        &pw,
        "--replica",
        &p.replica.url(),
    ])
    .await;
    assert_ne!(code, 0, "a missing remote image must be refused");
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'd'"
        )
        .await
        .as_deref(),
        Some("0"),
        "nothing may be created from an image without a manifest"
    );

    // A zstd-compressed image written to FTP and restored from there.
    let zimg = format!("{}zimg", ftp.url());
    let code = amsu(&[
        "backup",
        "--master",
        &p.master.url(),
        "--out",
        &zimg,
        "--zstd",
        "--ftp-password-file",
        &pw,
    ])
    .await;
    assert_eq!(code, 0, "backup to FTP must succeed");
    let reader = ImageReader::open(ftp.served.join("zimg")).await.unwrap();
    assert!(reader
        .schema()
        .chunks
        .iter()
        .all(|c| c.zstd && c.path.ends_with(".tsv.zst")));
    let code = amsu(&[
        "restore",
        "--image",
        &zimg,
        "--ftp-password-file",
        &pw,
        "--replica",
        &p.replica.url(),
    ])
    .await;
    assert_eq!(code, 0, "restore from FTP must succeed");
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

/// `amsu setup --method outfile` over FTPS, the master's secure_file_priv served by
/// pure-ftpd, under a write load → equal replica; the run directory kept as an image
/// (`--keep-image`) seeds a second replica with `amsu setup --image ftps://…` → equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outfile_over_ftps_then_second_replica_from_the_image() {
    let ftp = FtpServer::start(FtpTls::Required);
    let served = ftp.served.display().to_string();
    let p = pair(
        |o| o.extra_option(format!("--secure-file-priv={served}")),
        |o| o,
    )
    .await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 2000).await;
    fill(&m, 20_000).await;
    let pw = password_file(p.dir.path(), &ftp);
    let ca = ftp.cert.clone().unwrap().display().to_string();
    // Both setups share the replication user: give its password to both.
    let repl_pw = p.dir.path().join("repl-password");
    std::fs::write(&repl_pw, "Repl-pw-1234\n").unwrap();
    let repl_pw = repl_pw.display().to_string();
    let writer = Writer::start(m.clone(), "bank", 2000);
    writer.wait_commits(20).await;

    let code = amsu(&[
        "setup",
        "--method",
        "outfile",
        "--ftp",
        &ftp.url(),
        "--ftp-password-file",
        &pw,
        "--ftp-ca-file",
        &ca,
        "--keep-image",
        "--repl-password-file",
        &repl_pw,
        "--master",
        &p.master.url(),
        "--replica",
        &p.replica.url(),
        "--threads",
        "2",
        "--yes",
        "--wait-caught-up",
    ])
    .await;
    assert_eq!(code, 0, "outfile setup must succeed");
    let during = writer.commits();
    writer.wait_commits(during + 20).await;

    // The kept run directory is a complete image.
    let runs: Vec<_> = std::fs::read_dir(&ftp.served)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("amsu-"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    let reader = ImageReader::open(ftp.served.join(run)).await.unwrap();
    assert_eq!(reader.manifest().method, "outfile");

    // A second replica from the same image, over FTPS, while the writer goes on.
    let r2sb = Sandbox::deploy(
        SandboxOptions::new("replica2")
            .base_dir(p.dir.path())
            .server_id(3),
    )
    .await
    .expect("third sandbox");
    let r2 = r2sb.addr();
    let image_url = format!("{}{run}", ftp.url());
    let code = amsu(&[
        "setup",
        "--image",
        &image_url,
        "--ftp-password-file",
        &pw,
        "--ftp-ca-file",
        &ca,
        "--repl-password-file",
        &repl_pw,
        "--master",
        &p.master.url(),
        "--replica",
        &r2sb.url(),
        "--yes",
        "--wait-caught-up",
    ])
    .await;
    assert_eq!(code, 0, "setup from the image must succeed");
    let during = writer.commits();
    writer.wait_commits(during + 20).await;
    writer.stop().await;
    assert_equal(&m, &r).await;
    assert_equal(&m, &r2).await;
    assert!(query(&r2, "SHOW SLAVE STATUS").await.len() == 1);
}

/// The outfile method through a proxy that cuts the first chunk's FTP data connection
/// mid-transfer (plain FTP): the fetch resumes, the replica is equal, and the run
/// directory on the master is removed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outfile_fetch_resumes_after_a_cut() {
    let ftp = FtpServer::plain();
    let served = ftp.served.display().to_string();
    let p = pair(
        |o| o.extra_option(format!("--secure-file-priv={served}")),
        |o| o,
    )
    .await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "CREATE DATABASE big",
            "CREATE TABLE big.t (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB",
            "INSERT INTO big.t SELECT seq, REPEAT(CHAR(65 + seq % 26), 60 + seq % 40) FROM big.seq_1_to_40000",
        ],
    )
    .await;
    let proxy = Proxy::start_ftp(ftp.addr()).await;
    let pw = password_file(p.dir.path(), &ftp);
    // The first two data connections fetch the marker files (preflight, start of the
    // copy); cut the next one: the chunk.
    let armed = {
        let proxy_downloads = std::sync::Arc::new(proxy);
        let p2 = proxy_downloads.clone();
        let h = tokio::spawn(async move {
            let t = Instant::now();
            while p2.downloads().len() < 2 {
                assert!(t.elapsed() < Duration::from_secs(120), "no FTP download");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            p2.cut_next_after(300_000);
        });
        (proxy_downloads, h)
    };
    let url = format!("ftp://{}@127.0.0.1:{}/", ftp.user, armed.0.port);
    let code = amsu(&[
        "setup",
        "--method",
        "outfile",
        "--ftp",
        &url,
        "--ftp-password-file",
        &pw,
        "--master",
        &p.master.url(),
        "--replica",
        &p.replica.url(),
        "--threads",
        "1",
        "--yes",
        "--wait-caught-up",
    ])
    .await;
    assert_eq!(code, 0, "outfile setup must succeed despite the cut");
    armed.1.await.unwrap();
    assert_eq!(armed.0.cuts(), 1, "the chunk transfer was cut once");
    assert_eq!(checksums(&m).await, checksums(&r).await);
    assert_eq!(
        scalar(&r, "SELECT COUNT(*) FROM big.t").await.as_deref(),
        Some("40000")
    );
    let left: Vec<_> = std::fs::read_dir(&ftp.served)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the run directory must be removed: {left:?}"
    );
}

/// A restore killed with SIGKILL in the middle and run again goes on where it stopped:
/// the chunks recorded as loaded are not loaded again, and the replica ends equal to
/// the image (no duplicate, no missing row), with its deferred secondary keys, its
/// sequence state and no progress records left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_restore_resumes_where_it_stopped() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.big (id INT PRIMARY KEY, k INT NOT NULL, pad VARCHAR(200), \
             KEY k_1 (k), UNIQUE KEY u (pad, id)) ENGINE=InnoDB",
            "INSERT INTO shop.big SELECT seq, seq * 7919 % 1000, REPEAT(CHAR(65 + seq % 26), 150) \
             FROM shop.seq_1_to_200000",
            // No key at all: loaded as one chunk, with no duplicate on a rerun.
            "CREATE TABLE shop.nokey (a INT, b VARCHAR(10)) ENGINE=InnoDB",
            "INSERT INTO shop.nokey SELECT seq % 10, 'x' FROM shop.seq_1_to_5000",
            "CREATE TABLE shop.conf (k VARCHAR(20) PRIMARY KEY, v TEXT) ENGINE=MyISAM",
            "INSERT INTO shop.conf VALUES ('a', 'NULL'), ('b', ''), ('c', NULL)",
            // Split by the integer column leading a composite primary key, and by a
            // NOT NULL unique key of a table without a primary key.
            "CREATE TABLE shop.comp (a INT NOT NULL, b VARCHAR(10) NOT NULL, v VARCHAR(200), \
             PRIMARY KEY (a, b)) ENGINE=InnoDB",
            "INSERT INTO shop.comp SELECT seq DIV 3, CONCAT('b', seq % 3), REPEAT('c', 180) \
             FROM shop.seq_1_to_30000",
            "CREATE TABLE shop.uk (u BIGINT NOT NULL, v VARCHAR(200), UNIQUE KEY (u)) ENGINE=InnoDB",
            "INSERT INTO shop.uk SELECT seq * 11, REPEAT('u', 180) FROM shop.seq_1_to_20000",
            "CREATE SEQUENCE shop.s START WITH 10 INCREMENT BY 5",
            "SELECT NEXTVAL(shop.s)",
            "SELECT NEXTVAL(shop.s)",
            // Fresh statistics: chunks are planned from the table's data size.
            "ANALYZE TABLE shop.big, shop.comp, shop.uk",
        ],
    )
    .await;
    let img = p.dir.path().join("image");
    let (manifest, _) = amsu_backup::ImageBackup::new(m.clone(), &img)
        .threads(2)
        .chunk_bytes(256 << 10)
        .run(std::sync::Arc::new(amsu_core::NoEvents))
        .await
        .expect("backup");
    let reader = ImageReader::open(&img).await.unwrap();
    let chunks = reader.schema().chunks.len();
    assert!(chunks >= 20, "{chunks} chunks");
    assert_eq!(reader.schema().sequences.len(), 1);
    for name in ["comp", "uk"] {
        let schema = reader.schema();
        let t = schema.tables.iter().position(|t| t.name == name).unwrap();
        let n = schema.chunks.iter().filter(|c| c.table == t).count();
        assert!(n > 1, "shop.{name} is split into key ranges: {n} chunk(s)");
    }
    drop(manifest);

    let restore = |extra: &[&str]| {
        let mut cmd = tokio::process::Command::new(amsu_bin());
        cmd.args(["restore", "--image"])
            .arg(&img)
            .args(["--replica", &p.replica.url(), "--threads", "2"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    };
    // Kill once a few chunks are recorded, well before the end.
    let mut child = restore(&[]).spawn().expect("amsu starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let loaded_before_kill = loop {
        assert!(Instant::now() < deadline, "no progress records appeared");
        let n = query(
            &r,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' \
             AND TABLE_NAME = 'amsu_restore_progress'",
        )
        .await;
        if n[0][0].as_deref() == Some("1") {
            let rows = scalar(
                &r,
                "SELECT COUNT(*) FROM mysql.amsu_restore_progress WHERE chunk <> ''",
            )
            .await
            .unwrap()
            .parse::<usize>()
            .unwrap();
            if rows >= 3 {
                child.start_kill().expect("SIGKILL");
                break rows;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the restore ended ({status}) before it could be killed");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    child.wait().await.unwrap();
    let recorded: usize = scalar(
        &r,
        "SELECT COUNT(*) FROM mysql.amsu_restore_progress WHERE chunk <> ''",
    )
    .await
    .unwrap()
    .parse()
    .unwrap();
    assert!(
        recorded >= loaded_before_kill && recorded < chunks,
        "{recorded} of {chunks}"
    );
    // The rows on the replica are exactly the recorded chunks' rows.
    let rows_recorded = scalar(
        &r,
        "SELECT SUM(rows_loaded) FROM mysql.amsu_restore_progress",
    )
    .await
    .unwrap();
    let rows_there = scalar(
        &r,
        "SELECT (SELECT COUNT(*) FROM shop.big) + (SELECT COUNT(*) FROM shop.nokey) \
         + (SELECT COUNT(*) FROM shop.conf) + (SELECT COUNT(*) FROM shop.comp) \
         + (SELECT COUNT(*) FROM shop.uk)",
    )
    .await
    .unwrap();
    assert_eq!(rows_recorded, rows_there);

    // Without --force, a rerun resumes (and says so).
    let out = restore(&[]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{recorded} chunks already loaded")),
        "{stderr}"
    );
    assert_eq!(checksums(&m).await, checksums(&r).await);
    for t in [
        "shop.big",
        "shop.nokey",
        "shop.conf",
        "shop.comp",
        "shop.uk",
    ] {
        let show = format!("SHOW CREATE TABLE {t}");
        let strip = |rows: Vec<Vec<Option<String>>>| rows[0][1].clone().unwrap();
        assert_eq!(strip(query(&m, &show).await), strip(query(&r, &show).await));
    }
    assert_eq!(
        scalar(&r, "SELECT NEXTVAL(shop.s)").await,
        scalar(&m, "SELECT NEXTVAL(shop.s)").await
    );
    let left = query(
        &r,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mysql' \
         AND TABLE_NAME = 'amsu_restore_progress'",
    )
    .await;
    assert_eq!(left[0][0].as_deref(), Some("0"), "progress records left");

    // A third run finds a replica with data and no record: refused, nothing changed.
    let out = restore(&[]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("already holds databases (shop)"),
        "{stderr}"
    );
}
