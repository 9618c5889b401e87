//! The replica's option file (`--replica-config-file`) and the data verification
//! (`--verify`) are journaled actions of the setup's plan: the dry run shows them, a
//! `kill -9` during the verification leaves the setup unfinished and the rerun runs the
//! verification (without copying again); through the library façade, a rerun of a
//! finished setup verifies again and reports the option file.

use std::sync::Arc;

use amsu_backup::{setup, ReplicationSettings, SetupConfig};
use amsu_core::{Action, CancellationToken, NoEvents, Step};
use amsu_tests::servers::{amsu_output, checksums, exec, journal_dir_for_tests, pair};
use serde_json::Value;

/// The JSON lines of `stdout`.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The lines with `"event": event`.
fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

async fn shop(m: &amsu_core::ServerAddr, rows: u32) {
    exec(
        m,
        &[
            "CREATE DATABASE shop",
            "CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(50), note TEXT)",
            &format!(
                "INSERT INTO shop.items SELECT seq, CONCAT('item ', seq), REPEAT('n', seq % 200) FROM shop.seq_1_to_{rows}"
            ),
        ],
    )
    .await;
}

/// `setup --dry-run --verify --replica-config-file F`: the plan ends with the catch-up,
/// the option file and the verification, each with what it runs; nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plan_shows_the_option_file_and_the_verification() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    shop(&p.master.addr(), 100).await;
    let conf = p.dir.path().join("replica-amsu.cnf");
    let out = amsu_output(
        &[
            "setup",
            "--master",
            &p.master.url(),
            "--replica",
            &p.replica.url(),
            "--dry-run",
            "--json",
            "--verify",
            "--replica-config-file",
            conf.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let lines = lines(&out.stdout);
    let plan = events(&lines, "plan");
    assert_eq!(plan.len(), 1, "{}", out.stdout);
    let steps: Vec<&str> = plan[0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps[steps.len() - 3..],
        ["catch_up", "replica_config_file", "verify"],
        "{steps:?}"
    );
    let config_step = &plan[0]["steps"][steps.len() - 2];
    assert_eq!(config_step["action"]["path"], conf.to_str().unwrap());
    let statements = config_step["statements"].to_string();
    assert!(statements.contains("replica-amsu.cnf"), "{statements}");
    let verify_step = &plan[0]["steps"][steps.len() - 1];
    assert!(
        verify_step["statements"].to_string().contains("SQL_THREAD"),
        "{verify_step}"
    );
    assert!(!conf.exists(), "a dry run writes no option file");
}

/// `kill -9` while the verification runs (after replication started): the journal says
/// the setup is not finished; the rerun copies nothing again, starts replication (the
/// verification had stopped its SQL thread), writes the option file, verifies — equal —
/// and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_the_verification_the_rerun_verifies() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    shop(&m, 150_000).await;
    let journal = p.dir.path().join("journal.json");
    let conf = p.dir.path().join("replica-amsu.cnf");
    let extra = ["--verify", "--replica-config-file", conf.to_str().unwrap()];
    let first = crate::resume::setup(
        &p,
        &journal,
        &[],
        "root",
        Some("\"step\":\"verify\""),
        &extra,
    )
    .await;
    assert_eq!(first.code, None, "killed by a signal: {}", first.stdout);
    let first_lines = lines(&first.stdout);
    assert!(
        events(&first_lines, "verify_result").is_empty(),
        "killed before the verification ended: {}",
        first.stdout
    );
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(&journal).expect("journal")).unwrap();
    assert_eq!(j["complete"], false, "{j}");
    assert_eq!(j["in_flight"], "verify", "{j}");
    assert!(
        j["done"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "replica_config_file"),
        "the option file was written and journaled before the verification: {j}"
    );

    let second = crate::resume::setup(&p, &journal, &[], "root", None, &extra).await;
    assert_eq!(second.code, Some(0), "{}\n{}", second.stdout, second.stderr);
    let second_lines = lines(&second.stdout);
    let started: Vec<&str> = events(&second_lines, "step_started")
        .iter()
        .map(|l| l["step"].as_str().unwrap())
        .collect();
    assert!(
        !started.contains(&"copy_data"),
        "no second copy: {started:?}"
    );
    assert!(started.contains(&"verify"), "{started:?}");
    let result = events(&second_lines, "verify_result");
    assert_eq!(result.len(), 1, "{}", second.stdout);
    assert_eq!(result[0]["equal"], true, "{}", result[0]);
    assert_eq!(
        events(&second_lines, "replica_config_file").len(),
        1,
        "{}",
        second.stdout
    );
    assert!(conf.exists());
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(&journal).expect("journal")).unwrap();
    assert_eq!(j["complete"], true, "{j}");
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

/// Through the façade: a setup with the option file and the verification reports both;
/// the plan holds them as actions; a rerun of the finished setup changes nothing but
/// verifies again and writes the option file again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facade_setup_reports_the_option_file_and_the_verification() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    shop(&m, 2_000).await;
    let conf = p.dir.path().join("replica-amsu.cnf");
    let config = SetupConfig::new(m.clone(), r.clone())
        .replication(ReplicationSettings::new().journal(Some(p.dir.path().join("journal.json"))))
        .options(|o| {
            o.replica_config_file(Some((conf.clone(), Some("replica.test".into()))))
                .verify(true)
        });
    let outcome = setup(config.clone(), Arc::new(NoEvents), CancellationToken::new())
        .await
        .expect("setup");
    let plan = &outcome.report.plan;
    assert!(matches!(plan.last(), Some(Action::VerifyData)), "{plan:?}");
    assert!(plan.iter().any(|a| a.step() == Step::ReplicaConfigFile));
    let v = outcome.verify.expect("verified");
    assert!(v.equal(), "{v:?}");
    let (path, c) = outcome.replica_config.expect("option file");
    assert_eq!(path, conf);
    assert_eq!(c.report_host.as_deref(), Some("replica.test"));
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("report_host = replica.test"), "{text}");

    std::fs::remove_file(&conf).unwrap();
    let again = setup(config, Arc::new(NoEvents), CancellationToken::new())
        .await
        .expect("rerun");
    assert!(again.report.already_done);
    assert!(again.report.master_changes.is_empty());
    assert!(again.verify.expect("verified again").equal());
    assert!(again.replica_config.is_some() && conf.exists());
}
