//! What amsu's copy created on a replica, recorded on the replica itself
//! (`mysql.amsu_owned`, never binary-logged), so that a rerun after an interruption drops
//! exactly what amsu created and nothing the operator made.
//!
//! A database is recorded right after amsu created it, and only when it did not exist
//! before (an existing empty database is adopted: it held nothing to lose). A crash
//! between the `CREATE DATABASE` and its record leaves an unrecorded database, which a
//! rerun treats as the operator's (it asks for `--force`): the safe direction.

use crate::conn::Session;
use crate::{quote, MysqlError};

/// The marker table.
pub const TABLE: &str = "mysql.amsu_owned";

/// `ER_NO_SUCH_TABLE`.
const NO_SUCH_TABLE: u16 = 1146;

/// Turns the binary log off for this session: the records are the replica's own.
async fn unlogged(s: &mut Session) -> Result<(), MysqlError> {
    s.exec(
        "SET SESSION sql_log_bin = 0",
        "disabling the binary log for this session",
    )
    .await
}

/// Records `db` as created by amsu (turns the session's binary log off).
pub async fn record_database(s: &mut Session, db: &str) -> Result<(), MysqlError> {
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
pub async fn databases(s: &mut Session) -> Result<Vec<String>, MysqlError> {
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
pub async fn forget(s: &mut Session) -> Result<(), MysqlError> {
    unlogged(s).await?;
    let sql = format!("DROP TABLE IF EXISTS {TABLE}");
    s.exec(&sql, "removing the ownership records (mysql.amsu_owned)")
        .await
}

/// The names of the databases that exist on the server.
pub async fn existing_databases(
    s: &mut Session,
) -> Result<std::collections::HashSet<String>, MysqlError> {
    Ok(s.column(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
        "listing databases",
    )
    .await?
    .into_iter()
    .collect())
}
