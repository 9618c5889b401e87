//! Secondary indexes added after the data.
//!
//! Loading into an InnoDB table maintains every secondary index row by row, in random
//! order; adding the index once the data is there builds it by sorting. Measured on this
//! project's machine (MariaDB 10.11, a sysbench table of 1 M rows with one secondary
//! index, eight chunks loaded by two sessions): 7.8 s with the index in place, 6.3 s with
//! the index added afterwards (`unique_checks = 0` instead: 7.5 s, so it stays on).
//!
//! Only plain and unique B-tree keys of InnoDB tables that have a primary key are
//! deferred. Tables with foreign keys, tables that foreign keys refer to, partitioned
//! tables and FULLTEXT/SPATIAL keys keep their `CREATE TABLE` as it is.

use amsu_mysql::quote;

use crate::catalog::Table;

/// A table's `CREATE TABLE` without its deferrable keys, and the keys to add later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deferred {
    /// `CREATE TABLE` without the deferred keys.
    pub(crate) create_sql: String,
    /// The deferred keys: (name, definition as in `SHOW CREATE TABLE`, without a comma).
    pub(crate) keys: Vec<(String, String)>,
}

impl Deferred {
    /// `ALTER TABLE … ADD KEY …, ADD UNIQUE KEY …` for the keys not in `existing`
    /// (index names already on the replica); `None` when none is left to add.
    pub(crate) fn alter_sql(&self, t: &Table, existing: &[String]) -> Option<String> {
        let adds: Vec<String> = self
            .keys
            .iter()
            .filter(|(name, _)| !existing.iter().any(|e| e.eq_ignore_ascii_case(name)))
            .map(|(_, def)| format!("ADD {def}"))
            .collect();
        if adds.is_empty() {
            return None;
        }
        Some(format!("ALTER TABLE {} {}", t.qualified(), adds.join(", ")))
    }
}

/// Tables with less data than this (`DATA_LENGTH`) are created with all their keys.
pub(crate) const DEFER_FROM_BYTES: u64 = 1 << 20;

/// The tables among `all` that have foreign keys (the only ones that can refer to
/// another table): pass them to [`defer`].
pub(crate) fn with_foreign_keys(all: &[Table]) -> Vec<&Table> {
    all.iter()
        .filter(|t| t.create_sql.contains(" FOREIGN KEY ("))
        .collect()
}

/// The keys of `t` that are added after its data, when deferring is safe for it;
/// `with_fks` are the tables of the copy that have foreign keys
/// ([`with_foreign_keys`]), to find the tables they refer to.
pub(crate) fn defer(t: &Table, with_fks: &[&Table]) -> Option<Deferred> {
    // A small table gains nothing from building its keys after its data, and each
    // deferred key is one more statement per table (thousands, on a server with many
    // small tables).
    if !t.transactional()
        || t.kind != crate::catalog::TableKind::Base
        || t.data_length < DEFER_FROM_BYTES
    {
        return None;
    }
    let referenced = with_fks.iter().any(|o| references(&o.create_sql, &o.db, t));
    if referenced {
        return None;
    }
    split(&t.create_sql)
}

/// True when `create_sql` (of a table in database `db`) has a foreign key to `t`.
fn references(create_sql: &str, db: &str, t: &Table) -> bool {
    let short = format!("REFERENCES {} (", quote::ident(&t.name));
    let long = format!("REFERENCES {} (", t.qualified());
    (db == t.db && create_sql.contains(&short)) || create_sql.contains(&long)
}

/// Splits a `SHOW CREATE TABLE` text: `None` when it has no deferrable key, or anything
/// that makes deferring unsafe (no primary key, a foreign key, partitions, a line that
/// is not understood).
fn split(create_sql: &str) -> Option<Deferred> {
    let lines: Vec<&str> = create_sql.split('\n').collect();
    if lines.len() < 3 || !lines[0].starts_with("CREATE TABLE ") || !lines[0].ends_with(" (") {
        return None;
    }
    let close = lines.iter().rposition(|l| l.starts_with(") "))?;
    if lines[close..].iter().any(|l| l.contains("PARTITION BY")) {
        return None;
    }
    let body = &lines[1..close];
    if !body.iter().any(|l| l.starts_with("  PRIMARY KEY (")) {
        return None;
    }
    if body.iter().any(|l| l.contains(" FOREIGN KEY (")) {
        return None;
    }
    let mut kept = Vec::new();
    let mut keys = Vec::new();
    for l in body {
        let def = l.strip_suffix(',').unwrap_or(l);
        let rest = def
            .strip_prefix("  KEY ")
            .or_else(|| def.strip_prefix("  UNIQUE KEY "));
        match rest.and_then(key_name) {
            Some((name, tail)) if balanced(tail) => {
                keys.push((name, def.trim_start().to_string()));
            }
            Some(_) => return None,
            None => kept.push(def),
        }
    }
    if keys.is_empty() {
        return None;
    }
    let mut out = String::new();
    out.push_str(lines[0]);
    out.push('\n');
    out.push_str(&kept.join(",\n"));
    out.push('\n');
    out.push_str(&lines[close..].join("\n"));
    Some(Deferred {
        create_sql: out,
        keys,
    })
}

/// Reads a backquoted name at the start of `s`; returns it and the rest.
fn key_name(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('`')?;
    let mut name = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if matches!(chars.peek(), Some((_, '`'))) {
                chars.next();
                name.push('`');
                continue;
            }
            return Some((name, &s[i + 1..]));
        }
        name.push(c);
    }
    None
}

/// True when `s` is a whole key definition tail: parentheses balanced outside quotes and
/// every quote closed (a key line is never split over lines).
fn balanced(s: &str) -> bool {
    if !s.starts_with(" (") {
        return false;
    }
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    if chars.peek() == Some(&q) {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
            }
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                _ => {}
            },
        }
    }
    depth == 0 && quote.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SBTEST: &str = "CREATE TABLE `sbtest1` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `k` int(11) NOT NULL DEFAULT 0,\n  `c` char(120) NOT NULL DEFAULT '',\n  PRIMARY KEY (`id`),\n  KEY `k_1` (`k`)\n) ENGINE=InnoDB AUTO_INCREMENT=1000001 DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci";

    #[test]
    fn plain_and_unique_keys_are_deferred_in_order() {
        let sql = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` varchar(10) DEFAULT NULL,\n  `b` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u``x` (`a`,`b`),\n  KEY `a` (`a`(3)) COMMENT 'it''s (odd'\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
        let d = split(sql).expect("deferrable");
        assert_eq!(
            d.create_sql,
            "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` varchar(10) DEFAULT NULL,\n  `b` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        assert_eq!(
            d.keys,
            vec![
                ("u`x".to_string(), "UNIQUE KEY `u``x` (`a`,`b`)".to_string()),
                (
                    "a".to_string(),
                    "KEY `a` (`a`(3)) COMMENT 'it''s (odd'".to_string()
                ),
            ]
        );
    }

    #[test]
    fn sysbench_table_keeps_its_primary_key_and_defers_k_1() {
        let d = split(SBTEST).expect("deferrable");
        assert!(d
            .create_sql
            .contains("  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"));
        assert!(!d.create_sql.contains("k_1"));
        assert_eq!(d.keys.len(), 1);
    }

    #[test]
    fn unsafe_tables_are_left_alone() {
        // No primary key: a unique key may be InnoDB's clustered index.
        assert_eq!(
            split("CREATE TABLE `t` (\n  `a` int(11) NOT NULL,\n  UNIQUE KEY `a` (`a`)\n) ENGINE=InnoDB"),
            None
        );
        // Foreign keys need their indexes.
        assert_eq!(
            split("CREATE TABLE `c` (\n  `id` int(11) NOT NULL,\n  `p` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `p` (`p`),\n  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `p` (`id`)\n) ENGINE=InnoDB"),
            None
        );
        // Partitioned.
        assert_eq!(
            split("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `k` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `k` (`k`)\n) ENGINE=InnoDB\n PARTITION BY HASH (`id`)\nPARTITIONS 2"),
            None
        );
        // FULLTEXT and SPATIAL stay; nothing else to defer.
        assert_eq!(
            split("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `x` text DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  FULLTEXT KEY `x` (`x`)\n) ENGINE=InnoDB"),
            None
        );
        // A key line that does not parse as a whole definition.
        assert_eq!(
            split("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`),\n  KEY `k` (`x` COMMENT 'open\n) ENGINE=InnoDB"),
            None
        );
    }

    #[test]
    fn alter_adds_only_missing_keys() {
        let d = split(SBTEST).expect("deferrable");
        let t = Table {
            db: "sb".into(),
            name: "sbtest1".into(),
            kind: crate::catalog::TableKind::Base,
            engine: "InnoDB".into(),
            rows_estimate: 0,
            data_length: DEFER_FROM_BYTES,
            columns: vec![],
            chunk_key: None,
            create_sql: SBTEST.into(),
        };
        let small = Table {
            data_length: DEFER_FROM_BYTES - 1,
            ..t.clone()
        };
        assert_eq!(defer(&small, &[]), None);
        assert_eq!(
            d.alter_sql(&t, &[]).as_deref(),
            Some("ALTER TABLE `sb`.`sbtest1` ADD KEY `k_1` (`k`)")
        );
        assert_eq!(d.alter_sql(&t, &["K_1".into()]), None);
        let child = Table {
            name: "child".into(),
            create_sql: "CREATE TABLE `child` (\n  `id` int NOT NULL,\n  CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES `sbtest1` (`id`)\n) ENGINE=InnoDB".into(),
            ..t.clone()
        };
        let all = [t.clone(), child];
        assert_eq!(defer(&t, &with_foreign_keys(&all)), None);
        assert!(defer(&t, &with_foreign_keys(std::slice::from_ref(&t))).is_some());
    }
}
