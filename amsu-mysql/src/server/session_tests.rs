//! The replica's statements on scripted sessions ([`FakeSession`]).

use super::*;
use crate::testing::FakeSession;
use amsu_core::{Flavor, Version};

fn mysql84() -> Dialect {
    Dialect::new(Flavor::MySql, Version::new(8, 4, 3))
}

fn mariadb() -> Dialect {
    Dialect::new(Flavor::MariaDb, Version::new(10, 11, 6))
}

#[tokio::test]
async fn replication_status_speaks_the_flavors_words() {
    let mut s = FakeSession::new("r")
        .answer(
            "SHOW REPLICA STATUS",
            &[
                "Source_Host",
                "Source_Port",
                "Replica_IO_Running",
                "Replica_SQL_Running",
                "Seconds_Behind_Source",
            ],
            &[&[
                Some("db1"),
                Some("3307"),
                Some("Yes"),
                Some("Yes"),
                Some("4"),
            ]],
        )
        .answer("SHOW SLAVE STATUS", &["Master_Host"], &[]);
    let st = replication_status(&mut s, &mysql84())
        .await
        .unwrap()
        .expect("a replica");
    assert_eq!((st.master_host.as_str(), st.master_port), ("db1", 3307));
    assert!(st.io_running && st.sql_running);
    assert_eq!(st.seconds_behind, Some(4));
    // Not a replica: no row.
    assert_eq!(replication_status(&mut s, &mariadb()).await.unwrap(), None);
}

#[tokio::test]
async fn read_globals_answers_in_order_and_none_for_unknown_variables() {
    let mut s = FakeSession::new("r").answer(
        "SHOW GLOBAL VARIABLES",
        &["Variable_name", "Value"],
        &[
            &[Some("READ_ONLY"), Some("ON")],
            &[Some("max_allowed_packet"), Some("1073741824")],
        ],
    );
    let names = ["max_allowed_packet", "read_only", "no_such_thing"].map(String::from);
    let got = read_globals(&mut s, &names).await.unwrap();
    assert_eq!(
        got,
        [
            (
                "max_allowed_packet".to_string(),
                Some("1073741824".to_string())
            ),
            ("read_only".to_string(), Some("ON".to_string())),
            ("no_such_thing".to_string(), None),
        ]
    );
    assert_eq!(
        s.executed(),
        ["SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_allowed_packet','read_only','no_such_thing')"]
    );
}

#[tokio::test]
async fn set_globals_refuses_a_bad_name_before_sending_anything_after_it() {
    let mut s = FakeSession::new("r");
    let pairs = [
        ("binlog_expire_logs_seconds".to_string(), "7200".to_string()),
        ("x; DROP DATABASE app".to_string(), "1".to_string()),
        ("read_only".to_string(), "1".to_string()),
    ];
    let e = set_globals(&mut s, &pairs).await.unwrap_err();
    assert!(e.to_string().contains("refused the variable name"), "{e}");
    assert_eq!(s.executed().len(), 1, "{:?}", s.executed());
    assert!(s.executed()[0].contains("binlog_expire_logs_seconds"));
}

#[tokio::test]
async fn still_applying_fails_on_a_stopped_sql_thread_and_at_the_deadline() {
    let status = ["Slave_IO_Running", "Slave_SQL_Running", "Last_SQL_Error"];
    let mut s = FakeSession::new("r").answer(
        "SHOW SLAVE STATUS",
        &status,
        &[&[Some("Yes"), Some("Yes"), Some("")]],
    );
    s.answer_once(
        "SHOW SLAVE STATUS",
        &status,
        &[&[Some("Yes"), Some("No"), Some("Duplicate entry '7'")]],
    );
    let later = Instant::now() + Duration::from_secs(60);
    let what = || "the position".to_string();
    let e = still_applying(&mut s, &mariadb(), later, Duration::from_secs(60), what)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Duplicate entry '7'"), "{e}");
    // Running: fine until the deadline.
    still_applying(&mut s, &mariadb(), later, Duration::from_secs(60), what)
        .await
        .unwrap();
    let past = Instant::now();
    let e = still_applying(&mut s, &mariadb(), past, Duration::from_secs(9), what)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the position"), "{e}");
}
