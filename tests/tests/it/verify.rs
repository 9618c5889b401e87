//! `amsu verify` on a live master: passes on a correct replica while the master is being
//! written to, and finds one deliberately changed row, located to its key range.

use amsu_tests::servers::{amsu, create_bank, exec, pair, Writer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_equal_data_and_finds_a_changed_row() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 5000).await;
    exec(
        &m,
        &[
            "CREATE TABLE bank.nokey (a INT, b TEXT)",
            "INSERT INTO bank.nokey VALUES (1, 'x'), (2, NULL)",
            "CREATE TABLE bank.items (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO bank.items SELECT seq, CONCAT('v', seq) FROM bank.seq_1_to_5000",
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
    ])
    .await;
    assert_eq!(code, 0);

    let writer = Writer::start(m.clone(), "bank", 5000);
    writer.wait_commits(20).await;
    // Equal while the master keeps committing.
    let outcome = amsu_mysql::verify::verify(&m, &r, std::time::Duration::from_secs(60))
        .await
        .expect("verify runs");
    assert!(outcome.differences.is_empty(), "{:?}", outcome.differences);
    assert_eq!(outcome.tables, 4, "{outcome:?}");
    let code = amsu(&[
        "verify",
        "--master",
        &p.master.url(),
        "--replica",
        &p.replica.url(),
    ])
    .await;
    assert_eq!(code, 0);

    // One row changed behind replication's back.
    exec(
        &r,
        &[
            "SET SESSION sql_log_bin = 0",
            "UPDATE bank.items SET v = 'changed' WHERE id = 4321",
        ],
    )
    .await;
    let outcome = amsu_mysql::verify::verify(&m, &r, std::time::Duration::from_secs(60))
        .await
        .expect("verify runs");
    writer.stop().await;
    assert_eq!(outcome.differences.len(), 1, "{outcome:?}");
    let d = &outcome.differences[0];
    assert_eq!(d.table, "bank.items");
    let k = d.key_range.clone().expect("located to a key range");
    let (from, to) = (k.from, k.to);
    assert_eq!(k.column, "id");
    assert!(from <= 4321 && 4321 < to, "{from}..{to}");
    assert!(to - from < 5000, "the range is narrower than the table");
    let code = amsu(&[
        "verify",
        "--master",
        &p.master.url(),
        "--replica",
        &p.replica.url(),
    ])
    .await;
    assert_eq!(code, 1);
}
