//! The snapshot's lock does not queue behind another session's lock: each attempt waits
//! at most `lock_wait_timeout` (1 s), gives up its place and tries again, with a warning.

use std::sync::Arc;

use amsu_backup::{LogicalCopy, LogicalOptions};
use amsu_core::{DataCopier, Event, EventSink};
use amsu_mysql::conn::Session;
use amsu_tests::servers::{checksums, create_bank, pair};
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_lock_is_retried_while_another_backup_holds_the_stage() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 200).await;

    // Another backup (as mariadb-backup would) holds the backup stage.
    let mut blocker = Session::open(&m).await.expect("connect");
    blocker
        .exec("BACKUP STAGE START", "BACKUP STAGE START")
        .await
        .expect("the blocker's backup stage");
    let retried = Arc::new(Notify::new());
    let warnings = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let events: Arc<dyn EventSink> = {
        let (retried, warnings) = (retried.clone(), warnings.clone());
        Arc::new(move |e: &Event| {
            if let Event::Warning { message, .. } = e {
                warnings.lock().unwrap().push(message.clone());
                if message.contains("trying again") {
                    retried.notify_one();
                }
            }
        })
    };
    // The blocker ends its backup once amsu has given up the queue once.
    let release = tokio::spawn(async move {
        retried.notified().await;
        blocker
            .exec("BACKUP STAGE END", "BACKUP STAGE END")
            .await
            .expect("the blocker ends its backup");
    });
    let copy = LogicalCopy::new(m.clone(), r.clone(), LogicalOptions::default().threads(2));
    let report = copy
        .copy(events)
        .await
        .expect("the copy succeeds after a retry");
    release.await.unwrap();
    assert!(report.coordinates.is_some());
    let w = warnings.lock().unwrap().clone();
    assert!(
        w.iter().any(|m| m.contains("not granted within 1 s")),
        "{w:#?}"
    );
    assert_eq!(checksums(&m).await, checksums(&r).await);
}
