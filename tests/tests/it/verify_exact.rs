//! `amsu verify` cannot be fooled: a table with a column of every type is copied to a
//! replica, then each column's value in one row is changed on the replica by the smallest
//! step its type allows (a DECIMAL's last digit, one ULP of a FLOAT or DOUBLE, one
//! microsecond, one byte, NULL for '' or 0, an invalid ENUM value for a legal '' …).
//! Verify must report exactly that table and the key range of that row, and nothing once
//! the value is put back. Also: duplicate rows of a table without a key, definitions that
//! differ, tables on one side only, and the CLI's readable and JSON output.

use amsu_core::ServerAddr;
use amsu_mysql::conn::Session;
use amsu_mysql::verify::{verify, DifferenceKind, VerifyOutcome};
use amsu_tests::servers::{amsu, amsu_bin, exec, pair, wait_caught_up, Pair};

/// Rows of the table; the changed row.
const ROWS: u32 = 200;
const ROW: i128 = 137;

const CREATE: &str = "CREATE TABLE exact.every_type (
    id INT PRIMARY KEY,
    ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
    mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
    bi BIGINT, biu BIGINT UNSIGNED,
    dec_s DECIMAL(10,2), dec_l DECIMAL(65,30),
    f FLOAT, d DOUBLE, d_big DOUBLE,
    b1 BIT(1), b64 BIT(64),
    c_u CHAR(10) CHARACTER SET utf8mb4, v_u VARCHAR(100) CHARACTER SET utf8mb4,
    t_u TEXT CHARACTER SET utf8mb4,
    v_l VARCHAR(20) CHARACTER SET latin1, t_l TEXT CHARACTER SET latin1,
    bn BINARY(8), vb VARBINARY(16), bl BLOB, lb LONGBLOB,
    dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), yr YEAR,
    en ENUM('', 'a', 'b'), st SET('a', 'b', 'c'),
    js JSON, g GEOMETRY, pt POINT,
    ip INET6, uu UUID,
    vn VARCHAR(10) NULL, n0 INT NULL,
    ga VARCHAR(10), gb VARCHAR(10),
    gen BIGINT AS (i + 1) STORED,
    gv VARCHAR(20) AS (CONCAT(v_u, '!')) VIRTUAL
)";

/// The value of every column but `id` (and the generated ones) in every row.
const VALUES: &[(&str, &str)] = &[
    ("ti", "-128"),
    ("tiu", "255"),
    ("si", "-32768"),
    ("siu", "65535"),
    ("mi", "-8388608"),
    ("miu", "16777215"),
    ("i", "-2147483648"),
    ("iu", "4294967295"),
    ("bi", "-9223372036854775808"),
    ("biu", "18446744073709551615"),
    ("dec_s", "1763.57"),
    (
        "dec_l",
        "12345678901234567890123456789012345.123456789012345678901234567890",
    ),
    ("f", "1e-1"),
    ("d", "1e-1"),
    ("d_big", "1.2345678901234567e300"),
    ("b1", "b'0'"),
    ("b64", "0xFFFFFFFFFFFFFFFE"),
    ("c_u", "'héllo'"),
    ("v_u", "'grüße'"),
    ("t_u", "'日本語テキスト'"),
    ("v_l", "_latin1 X'636166E9'"),
    ("t_l", "_latin1 X'E9E8'"),
    ("bn", "X'0000000000000000'"),
    ("vb", "X'00FF00'"),
    ("bl", "X'00000000'"),
    ("lb", "X'0001'"),
    ("dt", "'2024-02-29'"),
    ("dtm", "'2024-02-29 23:59:59.999999'"),
    ("ts", "'2024-01-01 00:00:00.000001'"),
    ("tm", "'-838:59:58.999999'"),
    ("yr", "2024"),
    ("en", "''"),
    ("st", "'a,b'"),
    ("js", "'{\"a\": 1}'"),
    ("g", "ST_GeomFromText('POINT(1 2)', 4326)"),
    ("pt", "ST_GeomFromText('POINT(1 2)')"),
    ("ip", "'::1'"),
    ("uu", "'123e4567-e89b-12d3-a456-426614174000'"),
    ("vn", "''"),
    ("n0", "0"),
    ("ga", "'ab'"),
    ("gb", "'c'"),
];

/// One smallest change: what it is, the `SET` clause that makes it and the one that puts
/// the value back.
struct Change {
    what: String,
    set: String,
    back: String,
}

fn change(what: &str, set: impl Into<String>, back: impl Into<String>) -> Change {
    Change {
        what: what.into(),
        set: set.into(),
        back: back.into(),
    }
}

/// `column = value` for the original value of `column`.
fn original(column: &str) -> String {
    let v = VALUES
        .iter()
        .find(|(c, _)| *c == column)
        .unwrap_or_else(|| panic!("no value for {column}"))
        .1;
    format!("{column} = {v}")
}

/// The smallest change for each column.
fn changes() -> Vec<Change> {
    let f32_next = f32::from_bits(0.1f32.to_bits() + 1);
    let f64_next = f64::from_bits(0.1f64.to_bits() + 1);
    let big_next = f64::from_bits(1.2345678901234567e300f64.to_bits() + 1);
    let simple: &[(&str, String)] = &[
        ("ti", "-127".into()),
        ("tiu", "254".into()),
        ("si", "-32767".into()),
        ("siu", "65534".into()),
        ("mi", "-8388607".into()),
        ("miu", "16777214".into()),
        ("i", "-2147483647".into()),
        ("iu", "4294967294".into()),
        ("bi", "-9223372036854775807".into()),
        ("biu", "18446744073709551614".into()),
        ("dec_s", "1763.58".into()),
        (
            "dec_l",
            "12345678901234567890123456789012345.123456789012345678901234567891".into(),
        ),
        // One ULP, written in exponent notation so that it is read as a double.
        ("f", format!("{:e}", f64::from(f32_next))),
        ("d", format!("{f64_next:e}")),
        ("d_big", format!("{big_next:e}")),
        ("b1", "b'1'".into()),
        ("b64", "0xFFFFFFFFFFFFFFFF".into()),
        ("c_u", "'héllp'".into()),
        ("v_u", "'grüßf'".into()),
        // ト is E3 83 88, ド is E3 83 89: one byte.
        ("t_u", "'日本語テキスド'".into()),
        ("v_l", "_latin1 X'636166E8'".into()),
        ("t_l", "_latin1 X'E9E9'".into()),
        ("bn", "X'0000000000000001'".into()),
        ("vb", "X'00FF01'".into()),
        ("bl", "X'00000001'".into()),
        ("lb", "X'0002'".into()),
        ("dt", "'2024-03-01'".into()),
        // One microsecond later, in the next day.
        ("dtm", "'2024-03-01 00:00:00.000000'".into()),
        ("ts", "'2024-01-01 00:00:00.000002'".into()),
        ("tm", "'-838:59:58.999998'".into()),
        ("yr", "2025".into()),
        // Not a member: stored as the invalid value '' (index 0), not the legal '' (1).
        ("en", "'not a member'".into()),
        ("st", "'a,c'".into()),
        ("js", "'{\"a\": 2}'".into()),
        // The same point in another spatial reference system.
        ("g", "ST_GeomFromText('POINT(1 2)', 0)".into()),
        (
            "pt",
            format!(
                "ST_GeomFromText('POINT(1 {:?})')",
                f64::from_bits(2f64.to_bits() + 1)
            ),
        ),
        ("ip", "'::2'".into()),
        ("uu", "'123e4567-e89b-12d3-a456-426614174001'".into()),
        ("vn", "NULL".into()),
        ("n0", "NULL".into()),
    ];
    let mut out: Vec<Change> = simple
        .iter()
        .map(|(c, v)| change(c, format!("{c} = {v}"), original(c)))
        .collect();
    out.extend([
        // Lengths: a trailing 0x00 byte, an empty string for NULL.
        change("vb + 0x00", "vb = X'00FF0000'", original("vb")),
        change("lb + 0x00", "lb = X'000100'", original("lb")),
        change("vn '' -> ' '", "vn = ' '", original("vn")),
        change("t_u NULL", "t_u = NULL", original("t_u")),
        change("t_u ''", "t_u = ''", original("t_u")),
        // JSON whitespace is bytes too.
        change("js spacing", "js = '{\"a\":1}'", original("js")),
        // A value moving between adjacent columns.
        change(
            "ga|gb boundary",
            "ga = 'a', gb = 'bc'",
            format!("{}, {}", original("ga"), original("gb")),
        ),
        // The generated columns follow their base columns.
        change("gen via i", "i = -2147483646", original("i")),
        change("gv via v_u", "v_u = 'grüßd'", original("v_u")),
    ]);
    out
}

async fn every_type_pair() -> Pair {
    let p = pair(|o| o, |o| o).await;
    let m = p.master.addr();
    let columns = VALUES
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ");
    let values = VALUES
        .iter()
        .map(|(_, v)| *v)
        .collect::<Vec<_>>()
        .join(", ");
    exec(
        &m,
        &[
            "CREATE DATABASE exact",
            CREATE,
            &format!(
                "INSERT INTO exact.every_type (id, {columns}) SELECT seq, {values} FROM exact.seq_1_to_{ROWS}"
            ),
            "CREATE TABLE exact.nokey (v INT)",
            "INSERT INTO exact.nokey VALUES (1), (1), (2)",
            "CREATE TABLE exact.other (id INT PRIMARY KEY, v VARCHAR(10))",
            "INSERT INTO exact.other VALUES (1, 'x')",
        ],
    )
    .await;
    let code = amsu(&[
        "setup",
        "--master",
        &p.master.url(),
        "--replica",
        &p.replica.url(),
        "--yes",
        "--wait-caught-up",
        // Exit 0 only when the copy is proved equal.
        "--verify",
    ])
    .await;
    assert_eq!(code, 0, "setup --verify");
    p
}

/// Runs statements on the replica without binary logging; returns the rows the last one
/// changed.
async fn on_replica(r: &ServerAddr, sqls: &[&str]) -> u64 {
    let mut s = Session::open(r).await.expect("connect");
    s.exec("SET SESSION sql_log_bin = 0", "sql_log_bin")
        .await
        .expect("sql_log_bin");
    let mut changed = 0;
    for sql in sqls {
        s.exec(sql, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        changed = s.affected_rows();
    }
    changed
}

async fn run_verify(p: &Pair) -> VerifyOutcome {
    verify(
        &p.master.addr(),
        &p.replica.addr(),
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("verify runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_the_smallest_change_of_every_type() {
    let p = every_type_pair().await;
    let r = p.replica.addr();
    let first = run_verify(&p).await;
    assert!(first.equal(), "the copy is equal: {:?}", first.differences);
    assert_eq!(first.tables, 3);

    let mut failures = vec![];
    for c in changes() {
        let update = format!("UPDATE exact.every_type SET {} WHERE id = {ROW}", c.set);
        let changed = on_replica(&r, &[&update]).await;
        assert_eq!(changed, 1, "{}: `{update}` changed the stored row", c.what);
        let o = run_verify(&p).await;
        let found = match o.differences.as_slice() {
            [d] => {
                d.table == "exact.every_type"
                    && d.kind == DifferenceKind::Rows
                    && d.master_rows == d.replica_rows
                    && d.key_range.as_ref().is_some_and(|k| {
                        k.column == "id" && k.from <= ROW && ROW < k.to && k.to - k.from < 10
                    })
            }
            _ => false,
        };
        if !found {
            failures.push(format!("{}: {:?}", c.what, o.differences));
        }
        let back = format!("UPDATE exact.every_type SET {} WHERE id = {ROW}", c.back);
        on_replica(&r, &[&back]).await;
        let o = run_verify(&p).await;
        if !o.equal() {
            failures.push(format!("{} put back: {:?}", c.what, o.differences));
        }
    }
    assert!(failures.is_empty(), "missed:\n{}", failures.join("\n"));

    // Duplicate rows of a table without a key: {1, 1, 2} and {2, 3, 3} have the same
    // count and the same XOR of row hashes.
    on_replica(
        &r,
        &[
            "DELETE FROM exact.nokey WHERE v = 1",
            "INSERT INTO exact.nokey VALUES (3), (3)",
        ],
    )
    .await;
    let o = run_verify(&p).await;
    assert_eq!(o.differences.len(), 1, "{:?}", o.differences);
    let d = &o.differences[0];
    assert_eq!(
        (d.table.as_str(), d.kind),
        ("exact.nokey", DifferenceKind::Rows)
    );
    assert_eq!((d.master_rows, d.replica_rows), (Some(3), Some(3)));
    assert_eq!(d.key_range, None);
    on_replica(
        &r,
        &[
            "DELETE FROM exact.nokey",
            "INSERT INTO exact.nokey VALUES (1), (1), (2)",
        ],
    )
    .await;
    assert!(run_verify(&p).await.equal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_definitions_and_tables_that_differ() {
    let p = every_type_pair().await;
    let r = p.replica.addr();

    // A generated column defined differently (its values differ in every row too).
    on_replica(
        &r,
        &["ALTER TABLE exact.every_type MODIFY gen BIGINT AS (i + 2) STORED"],
    )
    .await;
    let o = run_verify(&p).await;
    assert!(
        o.differences.iter().all(|d| d.table == "exact.every_type"),
        "{:?}",
        o.differences
    );
    let schema = o
        .differences
        .iter()
        .find(|d| d.kind == DifferenceKind::Schema)
        .unwrap_or_else(|| panic!("a schema difference: {:?}", o.differences));
    let detail = schema.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("i` + 2"), "{detail}");
    assert_eq!(o.tables_differing(), 1);
    on_replica(
        &r,
        &["ALTER TABLE exact.every_type MODIFY gen BIGINT AS (i + 1) STORED"],
    )
    .await;
    assert!(run_verify(&p).await.equal());

    // A missing column; a table on the master only; a table on the replica only.
    on_replica(
        &r,
        &[
            "ALTER TABLE exact.other DROP COLUMN v",
            "DROP TABLE exact.nokey",
            "CREATE TABLE exact.extra (a INT)",
        ],
    )
    .await;
    let o = run_verify(&p).await;
    let got: Vec<(&str, DifferenceKind)> = o
        .differences
        .iter()
        .map(|d| (d.table.as_str(), d.kind))
        .collect();
    assert_eq!(
        got,
        [
            ("exact.extra", DifferenceKind::OnlyOnReplica),
            ("exact.nokey", DifferenceKind::OnlyOnMaster),
            ("exact.other", DifferenceKind::Schema),
        ],
        "{:?}",
        o.differences
    );
    assert_eq!(
        o.differences[2].detail.as_deref(),
        Some("columns only on the master: `v`")
    );
    assert_eq!((o.tables, o.tables_differing()), (4, 3));

    // A column whose type differs: reported, and the other columns are still compared.
    on_replica(
        &r,
        &[
            "ALTER TABLE exact.every_type MODIFY d VARCHAR(30)",
            "UPDATE exact.every_type SET d = 'not a number', dec_s = 1763.58 WHERE id = 137",
        ],
    )
    .await;
    let o = run_verify(&p).await;
    let mine: Vec<_> = o
        .differences
        .iter()
        .filter(|d| d.table == "exact.every_type")
        .collect();
    assert_eq!(mine.len(), 2, "{:?}", o.differences);
    assert_eq!(mine[0].kind, DifferenceKind::Schema);
    assert!(
        mine[1].kind == DifferenceKind::Rows
            && mine[1]
                .key_range
                .as_ref()
                .is_some_and(|k| k.from <= ROW && ROW < k.to),
        "{:?}",
        o.differences
    );

    // A value the server cannot encode within max_allowed_packet (it warns and returns
    // NULL) fails the comparison instead of counting as NULL.
    let m = p.master.addr();
    exec(
        &m,
        &[
            "CREATE TABLE exact.wide (id INT PRIMARY KEY, v VARCHAR(3000) CHARACTER SET latin1)",
            "INSERT INTO exact.wide VALUES (1, REPEAT('x', 2000))",
        ],
    )
    .await;
    wait_caught_up(&m, &r).await;
    for s in [&m, &r] {
        exec(s, &["SET GLOBAL max_allowed_packet = 2048"]).await;
    }
    let e = verify(&m, &r, std::time::Duration::from_secs(60))
        .await
        .expect_err("a digest the server warned about is an error");
    let e = e.to_string();
    assert!(
        e.contains("digesting `exact`.`wide`")
            && e.contains("the server warned")
            && e.contains("max_allowed_packet"),
        "{e}"
    );
}

/// Runs the `amsu` binary; returns its exit code and standard output.
async fn amsu_output(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(amsu_bin())
        .args(args)
        .output()
        .await
        .expect("amsu runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_output_is_readable_and_json_lines() {
    let p = every_type_pair().await;
    let r = p.replica.addr();
    let (m_url, r_url) = (p.master.url(), p.replica.url());
    let args = ["verify", "--master", &m_url, "--replica", &r_url];

    let (code, out) = amsu_output(&args).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("master and replica are equal\n"), "{out}");
    assert!(out.starts_with("verified 3 tables at "), "{out}");

    // Cents in two rows of different key ranges, and a table missing on the replica.
    on_replica(
        &r,
        &[
            "UPDATE exact.every_type SET dec_s = 1763.58 WHERE id IN (5, 150)",
            "DROP TABLE exact.nokey",
        ],
    )
    .await;
    let (code, out) = amsu_output(&args).await;
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("  DIFFERENT exact.every_type where ")
            && lines[0].contains(" <= `id` < ")
            && lines[0].ends_with(": 4 rows on both sides, with different values"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("  DIFFERENT exact.every_type where "),
        "{out}"
    );
    assert_eq!(
        lines[2],
        "  MISSING   exact.nokey exists on the master only"
    );
    assert!(
        lines[3].starts_with("verified 3 tables at ")
            && lines[3].ends_with(": 2 of 3 tables DIFFER (rows differ in 2 key ranges)"),
        "{out}"
    );
    assert!(!out.contains("Some(") && !out.contains("Digest"), "{out}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, out) = amsu_output(&json_args).await;
    assert_eq!(code, 1, "{out}");
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    // Three differences, the verify result, and the command's closing result line.
    assert_eq!(events.len(), 5, "{out}");
    assert_eq!(events[4]["event"], "result", "{out}");
    for e in &events[..3] {
        assert_eq!(e["v"], 1, "{e}");
        assert_eq!(e["event"], "verify_difference", "{e}");
    }
    assert_eq!(events[0]["table"], "exact.every_type");
    assert_eq!(events[0]["kind"], "rows");
    assert_eq!(events[0]["key_range"]["column"], "id");
    let (from, to) = (
        events[0]["key_range"]["from"].as_i64().expect("from"),
        events[0]["key_range"]["to"].as_i64().expect("to"),
    );
    assert!(from <= 5 && 5 < to, "{}", events[0]);
    assert_eq!(events[0]["master_rows"], events[0]["replica_rows"]);
    assert_eq!(events[2]["kind"], "only_on_master");
    let result = &events[3];
    assert_eq!(result["v"], 1);
    assert_eq!(result["event"], "verify_result");
    assert_eq!(result["equal"], false);
    assert_eq!(result["tables"], 3);
    assert_eq!(result["tables_differing"], 2);
    assert_eq!(result["differences"], 3);

    // Equal again: exit 0 and one result line.
    on_replica(
        &r,
        &["UPDATE exact.every_type SET dec_s = 1763.57 WHERE id IN (5, 150)"],
    )
    .await;
    on_replica(
        &r,
        &[
            "CREATE TABLE exact.nokey (v INT)",
            "INSERT INTO exact.nokey VALUES (1), (1), (2)",
        ],
    )
    .await;
    let (code, out) = amsu_output(&json_args).await;
    assert_eq!(code, 0, "{out}");
    // The verify result, then the command's closing result line.
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[1]["event"], "result", "{out}");
    let result = &lines[0];
    assert_eq!(result["event"], "verify_result");
    assert_eq!(result["equal"], true);
    assert_eq!(result["tables"], 3);
}
