//! Fan-out loads while the master is dumped: each replica loads a chunk as soon as the
//! dump has written it, instead of after the whole dump.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use amsu_backup::fanout::{fan_out, FanoutConfig, FanoutEvents, Spool};
use amsu_backup::SetupConfig;
use amsu_core::{CancellationToken, Event, Secret, ServerAddr};
use amsu_tests::servers::{
    checksums, create_bank, exec, extra_replica, journal_dir_for_tests, pair, scalar,
    wait_caught_up, Writer,
};

/// Who told what, in the order heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// The master's dump wrote a chunk after the snapshot (its progress event).
    ChunkWritten,
    /// A replica loaded a chunk (its progress event).
    ChunkLoaded(u16),
}

/// The events of the fan-out, in order. The dump is held at its third chunk after the
/// snapshot until some replica has loaded a chunk (a gate, not a clock: a fan-out that
/// loads only after the whole dump never opens it, and the gate gives up after a
/// deadline so that such a fan-out fails the test instead of hanging it).
#[derive(Default)]
struct Order {
    heard: Mutex<Vec<Heard>>,
    snapshot: Mutex<bool>,
    loaded: Condvar,
    gate_gave_up: Mutex<bool>,
}

const GATE_AT: usize = 3;
const GATE_DEADLINE: Duration = Duration::from_secs(240);

impl FanoutEvents for Order {
    fn master(&self, event: &Event) {
        match event {
            Event::Snapshot { .. } => *self.snapshot.lock().unwrap() = true,
            // Progress before the snapshot is the window's (commits blocked): never held.
            Event::Progress { .. } if *self.snapshot.lock().unwrap() => {
                let written = {
                    let mut h = self.heard.lock().unwrap();
                    h.push(Heard::ChunkWritten);
                    h.iter().filter(|e| **e == Heard::ChunkWritten).count()
                };
                if written == GATE_AT {
                    // This runs on the dump's task: hand its runtime thread's other work
                    // over while it waits.
                    tokio::task::block_in_place(|| {
                        let deadline = Instant::now() + GATE_DEADLINE;
                        let mut h = self.heard.lock().unwrap();
                        while !h.iter().any(|e| matches!(e, Heard::ChunkLoaded(_))) {
                            let left = deadline.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                *self.gate_gave_up.lock().unwrap() = true;
                                return;
                            }
                            h = self.loaded.wait_timeout(h, left).unwrap().0;
                        }
                    });
                }
            }
            _ => {}
        }
    }

    fn replica(&self, replica: &ServerAddr, event: &Event) {
        if matches!(event, Event::Progress { .. }) {
            self.heard
                .lock()
                .unwrap()
                .push(Heard::ChunkLoaded(replica.port));
            self.loaded.notify_all();
        }
    }
}

/// Two replicas from one read of a master holding many chunks, under a write load: a
/// replica loads chunks while the master's dump is still writing them (its first load is
/// heard before the dump's last chunk), each replica loads every chunk, is verified equal
/// and replicates; one commit-blocked window; the spool is removed at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_load_chunks_while_the_master_is_dumped() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 1000).await;
    exec(
        &m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.big (id INT PRIMARY KEY, k INT NOT NULL, pad VARCHAR(200), KEY (k)) \
             ENGINE=InnoDB",
            "INSERT INTO shop.big SELECT seq, seq * 7919 % 1000, REPEAT(CHAR(65 + seq % 26), 150) \
             FROM shop.seq_1_to_40000",
            "CREATE VIEW shop.big_k AS SELECT k, COUNT(*) AS n FROM shop.big GROUP BY k",
            "CREATE TABLE shop.log (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=MyISAM",
            "INSERT INTO shop.log VALUES (1, 'myisam'), (2, 'rows')",
            "ANALYZE TABLE shop.big",
        ],
    )
    .await;
    let writer = Writer::start(m.clone(), "bank", 1000);
    writer.wait_commits(20).await;

    let spool = Spool::new(p.dir.path().join("spool"));
    let replicas = vec![p.replica.addr(), r2.addr()];
    let template = SetupConfig::new(m.clone(), replicas[0].clone()).options(|o| o.verify(true));
    let config = FanoutConfig::new(template, replicas.clone(), spool.clone())
        .dump_threads(1)
        .chunk_bytes(Some(64 * 1024))
        .repl_password(Secret::generate());
    let order = Arc::new(Order::default());
    let outcome = fan_out(config, order.clone(), CancellationToken::new())
        .await
        .expect("the fan-out runs");
    writer.stop().await;

    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.runs);
    assert!(outcome.dump.is_some(), "the master was read");
    assert!(
        !spool.dir().exists(),
        "the spool is removed once all are done"
    );
    assert!(
        !*order.gate_gave_up.lock().unwrap(),
        "no replica loaded a chunk while the dump was held at its chunk {GATE_AT}"
    );
    let heard = order.heard.lock().unwrap().clone();
    let written = heard.iter().filter(|e| **e == Heard::ChunkWritten).count();
    assert!(written > 20, "many chunks: {written}");
    let last_written = heard
        .iter()
        .rposition(|e| *e == Heard::ChunkWritten)
        .unwrap();
    let first_loaded = heard
        .iter()
        .position(|e| matches!(e, Heard::ChunkLoaded(_)))
        .expect("a chunk loaded");
    assert!(
        first_loaded < last_written,
        "a replica loaded a chunk before the dump wrote its last one: {heard:?}"
    );
    for (run, r) in outcome.runs.iter().zip(&replicas) {
        let o = run.result.as_ref().expect("set up");
        let v = o.verify.as_ref().expect("verified");
        assert!(v.equal(), "{r}: {:?}", v.differences);
        let loads = heard
            .iter()
            .filter(|e| **e == Heard::ChunkLoaded(r.port))
            .count();
        assert!(loads >= written, "{r} loaded {loads} of {written}+ chunks");
    }
    let want = checksums(&m).await;
    for r in &replicas {
        wait_caught_up(&m, r).await;
        assert_eq!(checksums(r).await, want, "{r} equals the master");
        assert_eq!(
            scalar(r, "SELECT SUM(balance) FROM bank.accounts")
                .await
                .as_deref(),
            Some("1000000")
        );
        assert_eq!(
            scalar(r, "SELECT SUM(n) FROM shop.big_k").await.as_deref(),
            Some("40000")
        );
        assert!(
            scalar(
                r,
                "SELECT COUNT(*) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'amsu_restore_progress'"
            )
            .await
            .as_deref()
                == Some("0"),
            "{r}: the progress records are forgotten once done"
        );
    }
}
