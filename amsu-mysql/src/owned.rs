//! What amsu's copy created on a replica, recorded on the replica itself
//! (`mysql.amsu_owned`, never binary-logged), so that a rerun after an interruption drops
//! exactly what amsu created and nothing the operator made.
//!
//! A database is recorded right after amsu created it, and only when it did not exist
//! before (an existing empty database is adopted: it held nothing to lose). A crash
//! between the `CREATE DATABASE` and its record leaves an unrecorded database, which a
//! rerun treats as the operator's (it asks for `--force`): the safe direction.

use crate::{quote, MysqlError, SqlSession};

/// The marker table.
pub const TABLE: &str = "mysql.amsu_owned";

/// `ER_NO_SUCH_TABLE`.
const NO_SUCH_TABLE: u16 = 1146;

/// Turns the binary log off for this session: the records are the replica's own.
async fn unlogged<S: SqlSession + ?Sized>(s: &mut S) -> Result<(), MysqlError> {
    s.exec(
        "SET SESSION sql_log_bin = 0",
        "disabling the binary log for this session",
    )
    .await
}

/// Records `db` as created by amsu (turns the session's binary log off).
pub async fn record_database<S: SqlSession + ?Sized>(
    s: &mut S,
    db: &str,
) -> Result<(), MysqlError> {
    unlogged(s).await?;
    s.exec(
        &format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (\
             kind VARCHAR(16) NOT NULL, name VARCHAR(192) NOT NULL, \
             created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
             PRIMARY KEY (kind, name)) ENGINE=InnoDB"
        ),
        "creating the ownership records (mysql.amsu_owned)",
    )
    .await?;
    s.exec(
        &format!(
            "REPLACE INTO {TABLE} (kind, name) VALUES ('database', {})",
            quote::string(db)
        ),
        &format!("recording database {} as amsu's own", quote::ident(db)),
    )
    .await
}

/// The databases recorded as amsu's own; none when there are no records.
pub async fn databases<S: SqlSession + ?Sized>(s: &mut S) -> Result<Vec<String>, MysqlError> {
    match s
        .column(
            &format!("SELECT name FROM {TABLE} WHERE kind = 'database' ORDER BY name"),
            "reading the ownership records (mysql.amsu_owned)",
        )
        .await
    {
        Err(e) if e.server_code() == Some(NO_SUCH_TABLE) => Ok(vec![]),
        r => r,
    }
}

/// Removes every record (turns the session's binary log off).
pub async fn forget<S: SqlSession + ?Sized>(s: &mut S) -> Result<(), MysqlError> {
    unlogged(s).await?;
    let sql = format!("DROP TABLE IF EXISTS {TABLE}");
    s.exec(&sql, "removing the ownership records (mysql.amsu_owned)")
        .await
}

/// The names of the databases that exist on the server.
pub async fn existing_databases<S: SqlSession + ?Sized>(
    s: &mut S,
) -> Result<std::collections::HashSet<String>, MysqlError> {
    Ok(s.column(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
        "listing databases",
    )
    .await?
    .into_iter()
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeSession;

    #[tokio::test]
    async fn records_are_written_and_dropped_with_the_binary_log_off() {
        let mut s = FakeSession::new("r");
        record_database(&mut s, "a'b").await.unwrap();
        forget(&mut s).await.unwrap();
        let log = s.executed();
        assert_eq!(log.len(), 5, "{log:?}");
        assert_eq!(log[0], "SET SESSION sql_log_bin = 0");
        assert!(log[1].starts_with("CREATE TABLE IF NOT EXISTS mysql.amsu_owned"));
        assert_eq!(
            log[2],
            "REPLACE INTO mysql.amsu_owned (kind, name) VALUES ('database', 'a''b')"
        );
        assert_eq!(log[3], "SET SESSION sql_log_bin = 0");
        assert_eq!(log[4], "DROP TABLE IF EXISTS mysql.amsu_owned");
    }

    #[tokio::test]
    async fn no_records_table_means_nothing_is_owned_but_other_errors_fail() {
        let mut s = FakeSession::new("r").fail("amsu_owned", NO_SUCH_TABLE, "doesn't exist");
        assert!(databases(&mut s).await.unwrap().is_empty());
        let mut s = FakeSession::new("r").fail("amsu_owned", 1142, "SELECT command denied");
        assert_eq!(
            databases(&mut s).await.unwrap_err().server_code(),
            Some(1142)
        );
        let mut s = FakeSession::new("r").answer(
            "amsu_owned",
            &["name"],
            &[&[Some("app")], &[Some("shop")]],
        );
        assert_eq!(databases(&mut s).await.unwrap(), ["app", "shop"]);
    }
}
