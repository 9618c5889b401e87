//! The snapshot and the master's schema changes: a DDL running on the master is waited
//! for (a bounded wait, with a warning naming it) rather than queueing the master's
//! writes behind the snapshot's lock; one that runs longer fails the copy, naming it,
//! with nothing locked.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amsu_backup::{BackupError, LogicalCopy, LogicalOptions};
use amsu_core::{DataCopier, Event, EventSink};
use amsu_tests::servers::{checksums, create_bank, exec, pair, scalar};

/// Starts `sql` (a slow DDL) on the master in the background; returns once it runs.
async fn start_slow_ddl(m: &amsu_core::ServerAddr, sql: &'static str, marker: &str) {
    let m2 = m.clone();
    tokio::spawn(async move { exec(&m2, &[sql]).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = scalar(
            m,
            &format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '{marker}%'"
            ),
        )
        .await;
        if n.as_deref() == Some("1") {
            return;
        }
        assert!(Instant::now() < deadline, "the DDL never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_ddl_is_waited_for_or_named() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 200).await;

    // Longer than the wait: refused, naming the statement; nothing locked on the master.
    start_slow_ddl(
        &m,
        "CREATE TABLE bank.slow ENGINE=InnoDB AS SELECT SLEEP(6) AS s",
        "CREATE TABLE bank.slow",
    )
    .await;
    let opts = LogicalOptions::default()
        .threads(2)
        .busy_wait(Duration::from_secs(1));
    let err = LogicalCopy::new(m.clone(), r.clone(), opts)
        .copy(Arc::new(amsu_core::NoEvents))
        .await
        .expect_err("the DDL outlasts the wait");
    let e = err
        .downcast_ref::<BackupError>()
        .unwrap_or_else(|| panic!("a BackupError: {err}"));
    assert!(matches!(e, BackupError::MasterBusy { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("CREATE TABLE bank.slow") && msg.contains("KILL"),
        "{msg}"
    );
    // The master's writes were never held: a commit goes through at once.
    let t = Instant::now();
    exec(
        &m,
        &["UPDATE bank.accounts SET balance = balance WHERE id = 1"],
    )
    .await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(
        scalar(
            &r,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'bank'"
        )
        .await
        .as_deref(),
        Some("0"),
        "nothing copied"
    );

    // Within the wait: the copy waits for it, says so, and copies the new table too.
    let deadline = Instant::now() + Duration::from_secs(20);
    while scalar(
        &m,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'slow'",
    )
    .await
    .as_deref()
        != Some("1")
    {
        assert!(Instant::now() < deadline, "the first DDL never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    exec(&r, &["DROP DATABASE IF EXISTS bank"]).await;
    start_slow_ddl(
        &m,
        "CREATE TABLE bank.slow2 ENGINE=InnoDB AS SELECT SLEEP(2) AS s",
        "CREATE TABLE bank.slow2",
    )
    .await;
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let w = warnings.clone();
    let events: Arc<dyn EventSink> = Arc::new(move |e: &Event| {
        if let Event::Warning { message, .. } = e {
            w.lock().unwrap().push(message.clone());
        }
    });
    let opts = LogicalOptions::default().threads(2);
    LogicalCopy::new(m.clone(), r.clone(), opts)
        .copy(events)
        .await
        .expect("the copy waits for the DDL, then copies");
    let warnings = warnings.lock().unwrap().join("\n");
    assert!(warnings.contains("CREATE TABLE bank.slow2"), "{warnings}");
    assert_eq!(checksums(&m).await, checksums(&r).await);
    assert_eq!(
        scalar(&r, "SELECT COUNT(*) FROM bank.slow2")
            .await
            .as_deref(),
        Some("1")
    );
}
