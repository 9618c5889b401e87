//! Tables: the pure decisions of this part of the preflight (see the parent module).

use super::*;

/// Engines whose tables are copied inside the consistent snapshot (lower case).
pub(crate) const TRANSACTIONAL_ENGINES: &[&str] =
    &["innodb", "rocksdb", "tokudb", "ndbcluster", "ndb"];

fn list_tables(tables: &[&TableFacts], with_engine: bool) -> String {
    const SHOWN: usize = 10;
    let mut parts: Vec<String> = tables
        .iter()
        .take(SHOWN)
        .map(|t| {
            if with_engine {
                format!("{} ({}, {})", t.qualified(), t.engine, human_bytes(t.bytes))
            } else {
                t.qualified()
            }
        })
        .collect();
    if tables.len() > SHOWN {
        parts.push(format!("and {} more", tables.len() - SHOWN));
    }
    parts.join(", ")
}

/// Non-transactional tables and tables without a primary key; pure.
pub(crate) fn table_findings(tables: &[TableFacts]) -> Vec<Finding> {
    let mut out = Vec::new();
    let non_tx: Vec<&TableFacts> = tables
        .iter()
        .filter(|t| !TRANSACTIONAL_ENGINES.contains(&t.engine.to_ascii_lowercase().as_str()))
        .collect();
    if !non_tx.is_empty() {
        let bytes: u64 = non_tx.iter().map(|t| t.bytes).sum();
        let engines: BTreeSet<&str> = non_tx.iter().map(|t| t.engine.as_str()).collect();
        out.push(Finding::warning(
            Role::Master,
            FindingCode::NonTransactionalTables,
            format!(
                "{} non-transactional table(s) ({}): {}. A consistent copy of them needs the master's commits blocked while they are read (BACKUP STAGE BLOCK_COMMIT also blocks writes to them), so the master stalls about {} longer ({} at an assumed {} MiB/s)",
                non_tx.len(),
                engines.into_iter().collect::<Vec<_>>().join(", "),
                list_tables(&non_tx, true),
                human_secs(bytes / ASSUMED_BYTES_PER_SEC),
                human_bytes(bytes),
                ASSUMED_BYTES_PER_SEC / MIB,
            ),
            format!(
                "convert them where the application allows, on the master: {}",
                non_tx
                    .iter()
                    .take(10)
                    .map(|t| format!("ALTER TABLE {} ENGINE=InnoDB;", t.qualified()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ));
    }
    let no_pk: Vec<&TableFacts> = tables.iter().filter(|t| !t.has_primary_key).collect();
    if !no_pk.is_empty() {
        out.push(Finding::warning(
            Role::Master,
            FindingCode::NoPrimaryKey,
            format!(
                "{} table(s) without a primary key: {}. They cannot be copied in parallel chunks, and with row-based replication every UPDATE or DELETE on them makes the replica scan the table per row",
                no_pk.len(),
                list_tables(&no_pk, false)
            ),
            format!(
                "add a primary key on the master, e.g. {}",
                no_pk
                    .iter()
                    .take(3)
                    .map(|t| format!(
                        "ALTER TABLE {} ADD COLUMN amsu_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY INVISIBLE;",
                        t.qualified()
                    ))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ));
    }
    out
}
