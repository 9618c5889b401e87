//! Restore progress records on the replica, so an interrupted restore of an image resumes
//! exactly where it stopped.
//!
//! `mysql.amsu_restore_progress` holds one row per loaded chunk, written in the same
//! transaction as the chunk's rows, plus a row with an empty chunk name once the restore
//! of an image has started (its tables are amsu's own from then on). Every statement runs
//! in a session with `sql_log_bin = 0`: the records never reach a binary log. The rows of
//! an image are deleted once the restore is journaled as finished.

use std::collections::HashSet;

use amsu_core::manifest::Manifest;
use amsu_mysql::conn::Session;
use amsu_mysql::{quote, MysqlError};
use sha2::{Digest, Sha256};

/// The table of records (an InnoDB table in the `mysql` schema: not a user database).
pub(crate) const TABLE: &str = "`mysql`.`amsu_restore_progress`";

/// The record of an image whose restore has started.
const STARTED: &str = "";

/// An image's identity: a digest of its manifest (coordinates and every file's SHA-256).
pub(crate) fn image_id(manifest: &Manifest) -> String {
    let json = serde_json::to_vec(manifest).expect("a manifest serializes");
    hex::encode(&Sha256::digest(&json)[..16])
}

/// Creates the table when it is missing.
pub(crate) async fn ensure(s: &mut Session) -> Result<(), MysqlError> {
    s.exec(
        &format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (\
             image CHAR(32) NOT NULL, chunk VARCHAR(255) NOT NULL, \
             rows_loaded BIGINT UNSIGNED NOT NULL, \
             done_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
             PRIMARY KEY (image, chunk)) ENGINE=InnoDB"
        ),
        "creating the restore progress table",
    )
    .await
}

/// The chunks of `image` recorded as loaded, or `None` when its restore never started.
pub(crate) async fn recorded(
    s: &mut Session,
    image: &str,
) -> Result<Option<HashSet<String>>, MysqlError> {
    let exists = s
        .column(
            "SELECT COUNT(*) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'amsu_restore_progress'",
            "looking for restore progress records",
        )
        .await?;
    if exists.first().map(String::as_str) != Some("1") {
        return Ok(None);
    }
    let rows = s
        .rows(
            &format!(
                "SELECT chunk FROM {TABLE} WHERE image = {}",
                quote::string(image)
            ),
            "reading restore progress records",
        )
        .await?;
    let chunks: HashSet<String> = rows.iter().filter_map(|r| r.text(0)).collect();
    if !chunks.contains(STARTED) {
        return Ok(None);
    }
    Ok(Some(chunks.into_iter().filter(|c| c != STARTED).collect()))
}

/// Starts a fresh restore of `image`: forgets every earlier record, then records the
/// start.
pub(crate) async fn start(s: &mut Session, image: &str) -> Result<(), MysqlError> {
    ensure(s).await?;
    s.exec(
        &format!("DELETE FROM {TABLE}"),
        "clearing old restore progress records",
    )
    .await?;
    s.exec(
        &record_sql(image, STARTED, 0),
        "recording the start of the restore",
    )
    .await
}

/// The statement that records `chunk` of `image` as loaded (run inside the chunk's
/// transaction).
pub(crate) fn record_sql(image: &str, chunk: &str, rows: u64) -> String {
    format!(
        "INSERT INTO {TABLE} (image, chunk, rows_loaded) VALUES ({}, {}, {rows})",
        quote::string(image),
        quote::string(chunk)
    )
}

/// Deletes the records of `image`, and the table once it is empty.
pub(crate) async fn forget(s: &mut Session, image: &str) -> Result<(), MysqlError> {
    if recorded(s, image).await?.is_none() {
        return Ok(());
    }
    s.exec(
        &format!("DELETE FROM {TABLE} WHERE image = {}", quote::string(image)),
        "deleting restore progress records",
    )
    .await?;
    let left = s
        .column(
            &format!("SELECT COUNT(*) FROM {TABLE}"),
            "counting restore progress records",
        )
        .await?;
    if left.first().map(String::as_str) == Some("0") {
        s.exec(
            &format!("DROP TABLE IF EXISTS {TABLE}"),
            "dropping the restore progress table",
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_quote_their_values() {
        assert_eq!(
            record_sql("ab", "data/000001.tsv", 7),
            "INSERT INTO `mysql`.`amsu_restore_progress` (image, chunk, rows_loaded) VALUES ('ab', 'data/000001.tsv', 7)"
        );
    }
}
