//! The logical copy's loader: `--bulk-load` (InnoDB's bulk-insert path for each empty
//! table's first chunk) copies exactly, and without `--threads` the workers are sized
//! from the replica's idle CPU (between 2 and the host's cores).

use amsu_tests::servers::{checksums, create_bank, exec, journal_dir_for_tests, pair};

use crate::resume::setup;

/// The `threads=N` of the copy's "copy workers" log line (colour codes removed).
fn copy_workers(stderr: &str) -> Option<usize> {
    let mut plain = String::with_capacity(stderr.len());
    let mut chars = stderr.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // An SGR sequence: ESC [ … m.
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .lines()
        .find(|l| l.contains("copy workers"))?
        .split("threads=")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_load_copies_keys_and_constraints_exactly_with_sized_workers() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 1000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            // Large enough (> 1 MiB) for its secondary keys to be added after the data.
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, sku VARCHAR(20) NOT NULL, \
             name VARCHAR(50), note TEXT, UNIQUE KEY sku (sku), KEY name (name))",
            "INSERT INTO shop.items SELECT seq, CONCAT('sku-', seq), CONCAT('item ', seq % 977), \
             REPEAT('n', seq % 200) FROM shop.seq_1_to_60000",
            // Keys kept in CREATE TABLE: a parent and a child with a foreign key.
            "CREATE TABLE shop.makers (id INT PRIMARY KEY, name VARCHAR(20) UNIQUE)",
            "INSERT INTO shop.makers SELECT seq, CONCAT('maker ', seq) FROM shop.seq_1_to_500",
            "CREATE TABLE shop.parts (id INT PRIMARY KEY, maker INT NOT NULL, \
             KEY maker (maker), FOREIGN KEY (maker) REFERENCES shop.makers (id))",
            "INSERT INTO shop.parts SELECT seq, 1 + seq % 500 FROM shop.seq_1_to_20000",
            // No primary key, and empty.
            "CREATE TABLE shop.log (at INT, what VARCHAR(10))",
            "INSERT INTO shop.log SELECT seq, 'x' FROM shop.seq_1_to_3000",
            "CREATE TABLE shop.empty (id INT PRIMARY KEY)",
        ],
    )
    .await;
    let journal = p.dir.path().join("journal.json");
    let env = [("AMSU_REPL_PASSWORD", "Repl-Secret-Pw-77")];
    let run = setup(
        &p,
        &journal,
        &env,
        "root",
        None,
        &["--method", "logical", "--bulk-load"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = copy_workers(&run.stderr)
        .unwrap_or_else(|| panic!("no copy workers line:\n{}", run.stderr));
    assert!(
        (2..=cores.max(2)).contains(&workers),
        "{workers} workers on {cores} cores"
    );
    assert_eq!(checksums(&m).await, checksums(&r).await);
    let keys = "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME \
                FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'shop' \
                ORDER BY 1, 2, 4";
    assert_eq!(
        amsu_tests::servers::query(&m, keys).await,
        amsu_tests::servers::query(&r, keys).await,
        "every key is there, unique where it was"
    );
}

#[test]
fn reads_the_copy_workers_line() {
    assert_eq!(
        copy_workers("2026 INFO amsu_backup::logical: copy workers threads=3\n"),
        Some(3)
    );
    assert_eq!(
        copy_workers("\x1b[32m INFO\x1b[0m copy workers \x1b[3mthreads\x1b[0m\x1b[2m=\x1b[0m2\n"),
        Some(2)
    );
    assert_eq!(copy_workers("nothing"), None);
}
