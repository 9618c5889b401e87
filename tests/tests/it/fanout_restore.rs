//! Fan-out restore through the library ([`amsu_backup::fanout_restore::fan_out_restore`]):
//! one image loaded into several replicas, each in its own task of this process, each
//! replicating from the master; a replica that cannot be reached fails alone.

use std::path::Path;
use std::sync::{Arc, Mutex};

use amsu_backup::fanout_restore::{
    fan_out_restore, RestoreFanoutConfig, RestoreFanoutEvents, RestoreRun,
};
use amsu_backup::{
    ImageBackup, ImageSource, ReplicationSettings, RestoreConfig, RestoreFailure, StartReplication,
};
use amsu_core::{CancellationToken, Event, NoEvents, Secret, ServerAddr};
use amsu_tests::servers::{
    checksums, create_bank, exec, extra_replica, journal_dir_for_tests, pair, query, wait_caught_up,
};

/// Every replica event heard (by port) and every run's end (port, exit code).
#[derive(Default)]
struct Heard {
    events: Mutex<Vec<(u16, Event)>>,
    done: Mutex<Vec<(u16, i32)>>,
}

impl RestoreFanoutEvents for Heard {
    fn replica(&self, replica: &ServerAddr, event: &Event) {
        self.events
            .lock()
            .unwrap()
            .push((replica.port, event.clone()));
    }
    fn replica_done(&self, run: &RestoreRun) {
        self.done
            .lock()
            .unwrap()
            .push((run.replica.port, run.exit_code()));
    }
}

/// An embedder loads one image into two replicas and a third replica URL that reaches
/// no server, starting replication, without running the amsu binary: the two replicas
/// are loaded, replicate and equal the master (also a write made after the image); the
/// unreachable one fails alone (nothing changed: exit 3), the others are not stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_restore_fan_out_loads_every_replica_and_a_bad_one_fails_alone() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let r2 = extra_replica(p.dir.path(), "replica2", 3).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 800).await;
    let img = p.dir.path().join("image");
    ImageBackup::new(m.clone(), &img)
        .run(Arc::new(NoEvents))
        .await
        .expect("backup");
    exec(
        &m,
        &["UPDATE bank.accounts SET touched = touched + 1 WHERE id < 10"],
    )
    .await;

    // Nothing listens on port 1.
    let bad: ServerAddr = "mysql://root@127.0.0.1:1".parse().unwrap();
    let replicas = vec![p.replica.addr(), bad.clone(), r2.addr()];
    let template = RestoreConfig::new(ImageSource::Local(img), replicas[0].clone())
        .threads(2)
        .start_replication(Some(
            StartReplication::new(m.clone())
                .replication(ReplicationSettings::new().repl_user("repl_fan")),
        ));
    let config =
        RestoreFanoutConfig::new(template, replicas.clone()).repl_password(Secret::generate());
    let heard = Arc::new(Heard::default());
    let outcome = fan_out_restore(config, heard.clone(), CancellationToken::new())
        .await
        .expect("the fan-out restore runs");

    assert_eq!(outcome.runs.len(), 3);
    for (run, r) in outcome.runs.iter().zip(&replicas) {
        assert_eq!(run.replica.port, r.port, "the runs in the order given");
    }
    let failed = &outcome.runs[1];
    assert!(
        matches!(&failed.result, Err(RestoreFailure::Identity(_))),
        "{:?}",
        failed.result
    );
    assert_eq!(failed.exit_code(), 3, "nothing was changed on it");
    assert_eq!(
        outcome.exit_code(),
        1,
        "the failure changed nothing, but the other replicas were restored: not 3"
    );
    let mut done = heard.done.lock().unwrap().clone();
    done.sort();
    let mut want: Vec<_> = vec![(p.replica.port(), 0), (1, 3), (r2.port(), 0)];
    want.sort();
    assert_eq!(done, want);

    let events = heard.events.lock().unwrap().clone();
    let want_sums = checksums(&m).await;
    for run in [&outcome.runs[0], &outcome.runs[2]] {
        let r = &run.replica;
        let done = run.result.as_ref().expect("restored");
        let setup = done.setup.as_ref().expect("replication started");
        assert!(!setup.already_done);
        assert!(
            events
                .iter()
                .any(|(port, e)| *port == r.port && matches!(e, Event::StepStarted { .. })),
            "{r}'s own steps are tagged with it"
        );
        wait_caught_up(&m, r).await;
        assert_eq!(checksums(r).await, want_sums, "{r} equals the master");
        let status = query(r, "SHOW SLAVE STATUS").await;
        assert_eq!(status.len(), 1, "{r} replicates");
    }
}

/// `amsu restore --replica A --replica BAD --json` (no replication start): one process
/// loads A; BAD, which reaches no server, fails alone with its structured error in its
/// own `replica_result`; every line follows the JSON schema; exit 1 (BAD's load could not
/// start, which the restore does not count as "nothing changed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_restore_fan_out_json_reports_the_bad_replica_alone() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let m = p.master.addr();
    create_bank(&m, "bank", 300).await;
    let img = p.dir.path().join("image");
    ImageBackup::new(m.clone(), &img)
        .run(Arc::new(NoEvents))
        .await
        .expect("backup");
    let bad = "mysql://root@127.0.0.1:1";
    let out = amsu_tests::servers::amsu_output(
        &[
            "restore",
            "--image",
            img.to_str().unwrap(),
            "--replica",
            &p.replica.url(),
            "--replica",
            bad,
            "--json",
        ],
        &[],
    )
    .await;
    let schema_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/amsu-json.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_file).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        assert!(validator.is_valid(l), "not in the schema: {l}");
    }
    let good = format!("127.0.0.1:{}", p.replica.port());
    let result_of = |tag: &str| {
        lines
            .iter()
            .find(|l| l["event"] == "replica_result" && l["replica"] == tag)
            .unwrap_or_else(|| panic!("no replica_result for {tag}:\n{}", out.text()))
            .clone()
    };
    let ok = result_of(&good);
    assert_eq!(ok["ok"], true, "{}", out.text());
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "restored" && l["replica"] == good.as_str()),
        "{}",
        out.text()
    );
    let failed = result_of("127.0.0.1:1");
    assert_eq!(failed["ok"], false, "{}", out.text());
    assert!(failed["error"]["message"].is_string(), "{failed}");
    assert!(
        failed["rerun"]
            .as_str()
            .is_some_and(|r| r.contains("127.0.0.1:1")),
        "{failed}"
    );
    let last = lines.last().expect("lines");
    assert_eq!(last["event"], "result");
    assert_eq!(out.code, last["exit_code"].as_i64().map(|c| c as i32));
    assert_ne!(out.code, Some(0));
    assert_eq!(checksums(&m).await, checksums(&p.replica.addr()).await);
}
