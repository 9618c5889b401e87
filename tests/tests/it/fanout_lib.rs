//! Fan-out through the library ([`amsu_backup::fanout::fan_out`]): one read of the master,
//! every replica set up in its own task of this process, each verified; and the same
//! with `amsu setup --replica A --replica B --verify`.

use std::sync::{Arc, Mutex};

use amsu_backup::fanout::{fan_out, FanoutConfig, FanoutEvents, ReplicaRun, Spool};
use amsu_backup::SetupConfig;
use amsu_core::{CancellationToken, Event, Secret, ServerAddr};
use amsu_tests::servers::{
    amsu_output, checksums, create_bank, extra_replica, journal_dir_for_tests, pair, scalar,
    wait_caught_up, Writer,
};
use serde_json::Value;

/// Every event heard, with the replica it was tagged with (`None`: the master read).
#[derive(Default)]
struct Heard {
    events: Mutex<Vec<(Option<u16>, Event)>>,
    spool: Mutex<Vec<bool>>,
    done: Mutex<Vec<(u16, i32)>>,
}

impl FanoutEvents for Heard {
    fn master(&self, event: &Event) {
        self.events.lock().unwrap().push((None, event.clone()));
    }
    fn replica(&self, replica: &ServerAddr, event: &Event) {
        self.events
            .lock()
            .unwrap()
            .push((Some(replica.port), event.clone()));
    }
    fn spool_ready(&self, _path: &str, reused: bool) {
        self.spool.lock().unwrap().push(reused);
    }
    fn replica_done(&self, run: &ReplicaRun) {
        self.done
            .lock()
            .unwrap()
            .push((run.replica.port, run.exit_code()));
    }
}

/// An embedder seeds two replicas from one read of a master under a write load, each
/// verified equal to the master, without running the amsu binary: one commit-blocked
/// window (on the master read, not on a replica), each replica's events tagged with it,
/// the spool removed at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_fan_out_reads_the_master_once_and_verifies_every_replica() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 2000).await;
    let writer = Writer::start(m.clone(), "bank", 2000);
    writer.wait_commits(20).await;

    let spool = Spool::new(p.dir.path().join("spool"));
    let replicas = vec![p.replica.addr(), r2.addr()];
    let template = SetupConfig::new(m.clone(), replicas[0].clone()).options(|o| o.verify(true));
    let config = FanoutConfig::new(template, replicas.clone(), spool.clone())
        .chunk_bytes(Some(64 * 1024))
        .repl_password(Secret::generate());
    let heard = Arc::new(Heard::default());
    let outcome = fan_out(config, heard.clone(), CancellationToken::new())
        .await
        .expect("the fan-out runs");
    writer.stop().await;

    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.runs);
    assert!(outcome.dump.is_some(), "the master was read");
    assert_eq!(*heard.spool.lock().unwrap(), vec![false]);
    assert!(
        !spool.dir().exists(),
        "the spool is removed once all are done"
    );
    let events = heard.events.lock().unwrap().clone();
    let blocked: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::CommitBlocked { .. }))
        .collect();
    assert_eq!(blocked.len(), 1, "one commit-blocked window");
    assert_eq!(blocked[0].0, None, "on the master read");
    let mut done = heard.done.lock().unwrap().clone();
    done.sort();
    let mut want_done: Vec<_> = replicas.iter().map(|r| (r.port, 0)).collect();
    want_done.sort();
    assert_eq!(done, want_done);
    for (run, r) in outcome.runs.iter().zip(&replicas) {
        assert_eq!(run.replica.port, r.port);
        let o = run.result.as_ref().expect("set up");
        let v = o.verify.as_ref().expect("verified");
        assert!(v.equal(), "{r}: {:?}", v.differences);
        assert!(
            events
                .iter()
                .any(|(tag, e)| *tag == Some(r.port) && matches!(e, Event::StepStarted { .. })),
            "{r}'s own steps are tagged with it"
        );
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
    }
}

/// `amsu setup --replica A --replica B --verify --json`: each replica's verification is
/// its own `verify_result` line, tagged with it, equal; exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_fan_out_with_verify_reports_each_replica_equal() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 1000).await;
    let writer = Writer::start(m.clone(), "bank", 1000);
    writer.wait_commits(10).await;
    let spool = p.dir.path().join("spool");
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--replica",
            &r2.url(),
            "--yes",
            "--json",
            "--verify",
            "--spool",
            spool.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    writer.stop().await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let ls: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for r in [&p.replica, &r2] {
        let tag = format!("127.0.0.1:{}", r.port());
        let verified: Vec<_> = ls
            .iter()
            .filter(|l| l["event"] == "verify_result" && l["replica"] == tag.as_str())
            .collect();
        assert_eq!(verified.len(), 1, "{tag}:\n{}", out.text());
        assert_eq!(verified[0]["equal"], true, "{}", out.text());
        assert!(
            ls.iter().any(|l| l["event"] == "replica_result"
                && l["replica"] == tag.as_str()
                && l["ok"] == true),
            "{}",
            out.text()
        );
    }
    assert!(!spool.exists());
}
