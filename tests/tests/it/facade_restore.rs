//! `amsu restore` through the library façade (`amsu_backup::restore`): an image loaded
//! into a replica equals the master; with a replication start the restore runs the setup
//! plan (the image as the copy method): the replication user, `CHANGE MASTER` with GTID
//! positioning and the start are journaled plan steps, the replica replicates, and a
//! rerun of the finished restore changes nothing.

use std::sync::Arc;

use amsu_backup::{
    restore, ImageBackup, ImageSource, ReplicationSettings, RestoreConfig, StartReplication,
};
use amsu_core::{Action, CancellationToken, NoEvents, Positioning};
use amsu_tests::servers::{
    amsu_output, checksums, create_bank, exec, journal_dir_for_tests, pair, query, wait_caught_up,
};
use serde_json::Value;

/// A logical image of the master in `dir`.
async fn image_of(m: &amsu_core::ServerAddr, dir: &std::path::Path) {
    ImageBackup::new(m.clone(), dir)
        .run(Arc::new(NoEvents))
        .await
        .expect("backup");
}

/// Without a replication start: the image is loaded, the replica equals the master, no
/// replication is configured and nothing was resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facade_restore_loads_an_image_equal_to_the_master() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 500).await;
    let img = p.dir.path().join("image");
    image_of(&m, &img).await;

    let config = RestoreConfig::new(ImageSource::Local(img.clone()), r.clone()).threads(2);
    let done = restore(&config, Arc::new(NoEvents), CancellationToken::new())
        .await
        .expect("restore");
    assert!(done.setup.is_none());
    assert_eq!(done.resumed_chunks, None);
    assert!(done.report.rows >= 500, "{:?}", done.report);
    assert_eq!(checksums(&m).await, checksums(&r).await);
    assert!(query(&r, "SHOW SLAVE STATUS").await.is_empty());

    // A second restore into the now filled replica is refused, nothing changed.
    let again = restore(&config, Arc::new(NoEvents), CancellationToken::new()).await;
    assert!(
        matches!(
            &again,
            Err(amsu_backup::RestoreFailure::ReplicaNotEmpty { databases }) if databases == &["bank".to_string()]
        ),
        "{again:?}"
    );
}

/// With a replication start (GTID): the plan creates the replication user, loads the
/// image, points the replica at the master with GTID positioning and starts it; the
/// journal records the finished setup; the replica follows new writes; a rerun of the
/// same restore is already done and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facade_restore_with_replication_start_runs_the_setup_plan() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 500).await;
    let img = p.dir.path().join("image");
    image_of(&m, &img).await;
    // Written after the image: the replica gets it by replication.
    exec(
        &m,
        &["INSERT INTO bank.transfers (src, dst, amount) VALUES (1, 2, 3)"],
    )
    .await;

    let journal = p.dir.path().join("journal.json");
    let config = RestoreConfig::new(ImageSource::Local(img), r.clone()).start_replication(Some(
        StartReplication::new(m.clone()).replication(
            ReplicationSettings::new()
                .positioning(Positioning::Gtid)
                .journal(Some(journal.clone())),
        ),
    ));
    let done = restore(&config, Arc::new(NoEvents), CancellationToken::new())
        .await
        .expect("restore with replication start");
    let setup = done.setup.as_ref().expect("the setup plan ran");
    assert!(!setup.already_done);
    assert!(
        setup
            .plan
            .iter()
            .any(|a| matches!(a, Action::CreateReplicationUser { .. })),
        "{:?}",
        setup.plan
    );
    assert!(
        setup
            .plan
            .iter()
            .any(|a| matches!(a, Action::ChangeMaster { .. })),
        "{:?}",
        setup.plan
    );
    assert_eq!(done.report.rows, setup.copy.rows);

    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(&journal).expect("journal")).unwrap();
    assert_eq!(j["complete"], true, "{j}");
    let journaled: Vec<&str> = j["done"]
        .as_array()
        .expect("done steps")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for step in ["copy_data", "change_master"] {
        assert!(journaled.contains(&step), "{step} not in {journaled:?}");
    }

    let st = query(&r, "SHOW SLAVE STATUS").await;
    // Master_User is the third column of SHOW SLAVE STATUS.
    assert_eq!(st[0][2].as_deref(), Some("amsu_repl"), "{st:?}");
    let gtid = query(&r, "SELECT @@gtid_slave_pos").await;
    assert!(
        gtid[0][0].as_deref().is_some_and(|g| !g.is_empty()),
        "GTID positioning sets gtid_slave_pos: {gtid:?}"
    );
    let mut s = amsu_mysql::conn::Session::open(&r).await.unwrap();
    let row = s
        .first_row("SHOW SLAVE STATUS", "status")
        .await
        .unwrap()
        .expect("the replica replicates");
    assert_eq!(
        amsu_mysql::conn::field(&row, "Using_Gtid"),
        Some("Slave_Pos")
    );
    assert_eq!(
        amsu_mysql::conn::field(&row, "Slave_SQL_Running"),
        Some("Yes")
    );
    follows_a_new_write(&m, &r, (2, 3, 4)).await;

    let again = restore(&config, Arc::new(NoEvents), CancellationToken::new())
        .await
        .expect("rerun");
    let again = again.setup.expect("the setup plan ran");
    assert!(again.already_done, "{again:?}");
    assert!(again.master_changes.is_empty() && again.replica_changes.is_empty());
    assert_eq!(checksums(&m).await, checksums(&r).await);
}

/// The command line: `amsu restore --start-replication --gtid --journal FILE --json` runs
/// the same plan: GTID replication, the journal written, one `restored` line with the
/// replication state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_restore_start_replication_with_gtid_writes_the_journal() {
    journal_dir_for_tests();
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 200).await;
    let img = p.dir.path().join("image");
    image_of(&m, &img).await;
    let journal = p.dir.path().join("restore-journal.json");
    let out = amsu_output(
        &[
            "restore",
            "--image",
            img.to_str().unwrap(),
            "--replica",
            &p.replica.url(),
            "--start-replication",
            "--master",
            &p.master.url(),
            "--gtid",
            "--journal",
            journal.to_str().unwrap(),
            "--json",
        ],
        &[],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    let restored: Vec<Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["event"] == "restored")
        .collect();
    assert_eq!(restored.len(), 1, "{}", out.stdout);
    assert!(restored[0]["replication"].is_object(), "{}", restored[0]);
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(&journal).expect("journal")).unwrap();
    assert_eq!(j["complete"], true, "{j}");
    let mut s = amsu_mysql::conn::Session::open(&r).await.unwrap();
    let row = s
        .first_row("SHOW SLAVE STATUS", "status")
        .await
        .unwrap()
        .expect("the replica replicates");
    assert_eq!(
        amsu_mysql::conn::field(&row, "Using_Gtid"),
        Some("Slave_Pos")
    );
    follows_a_new_write(&m, &r, (5, 6, 7)).await;
}

/// A new write on the master reaches the replica, and the two stay equal.
async fn follows_a_new_write(
    m: &amsu_core::ServerAddr,
    r: &amsu_core::ServerAddr,
    (src, dst, amount): (u32, u32, u32),
) {
    exec(
        m,
        &[&format!(
            "INSERT INTO bank.transfers (src, dst, amount) VALUES ({src}, {dst}, {amount})"
        )],
    )
    .await;
    wait_caught_up(m, r).await;
    assert_eq!(checksums(m).await, checksums(r).await);
}
