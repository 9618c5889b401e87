//! The fast-load profile of the replica: which server globals a setup relaxes while the
//! copy loads, to what, and how they are put back. Pure logic; `Setup` plans it as
//! [`Action::RelaxReplicaDurability`](crate::Action::RelaxReplicaDurability) before the
//! copy and [`Action::RestoreReplicaSettings`](crate::Action::RestoreReplicaSettings)
//! after it, with the original values journaled before the first change.
//!
//! A replica being provisioned holds nothing to lose until it is set up: if it crashes
//! during the load, the copy is dropped and started again anyway. So durability can be
//! relaxed while loading, and is restored before replication starts:
//!
//! | global | while loading | why |
//! |---|---|---|
//! | `innodb_flush_log_at_trx_commit` | `0` | no redo log flush per loaded chunk |
//! | `sync_binlog` | `0` | no binary log fsync per commit (the load sessions do not log, `sql_log_bin = 0`, but other sessions may) |
//! | `innodb_log_file_size` (MariaDB ≥ 10.11, resized online; only with `resize_redo`) | the buffer pool's size, at most 4 GiB | fewer checkpoints under a write-heavy load (a redo log larger than the buffer pool gains little) |
//! | `innodb_redo_log_capacity` (MySQL ≥ 8.0.30; only with `resize_redo`) | the same | the same |
//!
//! A global already at (or above) its relaxed value is not touched. Resizing the redo log
//! is off by default: measured with `benches/` (`provision --size quick`), growing a
//! 256 MiB redo log to 512 MiB and back took about 2 s each way, more than it saved on a
//! 55 MB copy; it can pay off only for large copies.

use serde::{Deserialize, Serialize};

use crate::{Flavor, ServerInfo, Version};

/// One global the profile changes: its name, the value it had and the value it gets
/// while the copy loads. Never holds a secret. Built with [`GlobalChange::new`].
///
/// # The fast-load profile
///
/// A replica being provisioned holds nothing to lose until it is set up: if it crashes
/// during the load, the copy is dropped and started again anyway. So durability can be
/// relaxed while loading, and is restored before replication starts:
///
/// | global | while loading | why |
/// |---|---|---|
/// | `innodb_flush_log_at_trx_commit` | `0` | no redo log flush per loaded chunk |
/// | `sync_binlog` | `0` | no binary log fsync per commit (the load sessions do not log, `sql_log_bin = 0`, but other sessions may) |
/// | `innodb_log_file_size` (MariaDB ≥ 10.11, resized online; only with `resize_redo`) | the buffer pool's size, at most 4 GiB | fewer checkpoints under a write-heavy load (a redo log larger than the buffer pool gains little) |
/// | `innodb_redo_log_capacity` (MySQL ≥ 8.0.30; only with `resize_redo`) | the same | the same |
///
/// A global already at (or above) its relaxed value is not touched. Resizing the redo log
/// is off by default: measured with `benches/` (`provision --size quick`), growing a
/// 256 MiB redo log to 512 MiB and back took about 2 s each way, more than it saved on a
/// 55 MB copy; it can pay off only for large copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GlobalChange {
    /// The global variable's name (lower case, `[a-z0-9_]`).
    pub name: String,
    /// Its value before the setup changed it (`SELECT @@global.name`).
    pub original: String,
    /// Its value while the copy loads.
    pub relaxed: String,
}

impl GlobalChange {
    /// The global `name`, changed from `original` to `relaxed`.
    pub fn new(
        name: impl Into<String>,
        original: impl Into<String>,
        relaxed: impl Into<String>,
    ) -> Self {
        GlobalChange {
            name: name.into(),
            original: original.into(),
            relaxed: relaxed.into(),
        }
    }
}

/// What a knob is set to while loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relaxed {
    /// Exactly this value.
    Value(&'static str),
    /// As large as `innodb_buffer_pool_size`, at most this many bytes; a larger current
    /// value is kept.
    BufferPoolSized(u64),
}

/// Read with the knobs: sizes the redo log ([`Relaxed::BufferPoolSized`]).
pub(crate) const BUFFER_POOL: &str = "innodb_buffer_pool_size";

/// One global the profile may relax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct Knob {
    /// The global variable's name.
    pub name: &'static str,
    /// Its value while loading.
    pub relaxed: Relaxed,
}

/// The largest redo log the profile sets while loading (4 GiB).
pub(crate) const MAX_REDO_LOG_BYTES: u64 = 4 << 30;

/// The knobs of the profile for a replica of this flavor and version; the redo log's size
/// only with `resize_redo`.
pub(crate) fn knobs(replica: &ServerInfo, resize_redo: bool) -> Vec<Knob> {
    let mut k = vec![
        Knob {
            name: "innodb_flush_log_at_trx_commit",
            relaxed: Relaxed::Value("0"),
        },
        Knob {
            name: "sync_binlog",
            relaxed: Relaxed::Value("0"),
        },
    ];
    if !resize_redo {
        return k;
    }
    match replica.flavor {
        Flavor::MariaDb if replica.version >= Version::new(10, 11, 0) => k.push(Knob {
            name: "innodb_log_file_size",
            relaxed: Relaxed::BufferPoolSized(MAX_REDO_LOG_BYTES),
        }),
        Flavor::MySql if replica.version >= Version::new(8, 0, 30) => k.push(Knob {
            name: "innodb_redo_log_capacity",
            relaxed: Relaxed::BufferPoolSized(MAX_REDO_LOG_BYTES),
        }),
        _ => {}
    }
    k
}

/// The names of `knobs` (and of [`BUFFER_POOL`] when a knob is sized from it), to read
/// their current values.
pub(crate) fn knob_names(knobs: &[Knob]) -> Vec<String> {
    let mut names: Vec<String> = knobs.iter().map(|k| k.name.to_string()).collect();
    if knobs
        .iter()
        .any(|k| matches!(k.relaxed, Relaxed::BufferPoolSized(_)))
    {
        names.push(BUFFER_POOL.to_string());
    }
    names
}

/// The originals to plan from: the values read on the replica now, except where a journal
/// of an interrupted earlier run still holds a relaxed global (`pending`): the server
/// shows amsu's own relaxed value then, and the journaled original is the true one.
pub(crate) fn originals(
    current: &[(String, Option<String>)],
    pending: &[GlobalChange],
) -> Vec<(String, Option<String>)> {
    current
        .iter()
        .map(|(name, value)| {
            let journaled = pending.iter().find(|g| g.name.eq_ignore_ascii_case(name));
            match journaled {
                Some(g) => (name.clone(), Some(g.original.clone())),
                None => (name.clone(), value.clone()),
            }
        })
        .collect()
}

/// The changes to make, in order: one per knob whose original value (from
/// [`originals`]) differs from its relaxed value. A knob the server does not know
/// (`None`, or missing from `current`) or whose value is not a number where one is needed
/// is left alone.
pub(crate) fn relax(knobs: &[Knob], current: &[(String, Option<String>)]) -> Vec<GlobalChange> {
    let value = |name: &str| {
        current
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
            .map(str::trim)
    };
    knobs
        .iter()
        .filter_map(|k| {
            let original = value(k.name)?;
            let relaxed = match k.relaxed {
                Relaxed::Value(v) => v.to_string(),
                Relaxed::BufferPoolSized(max) => {
                    let now: u64 = original.parse().ok()?;
                    let pool: u64 = value(BUFFER_POOL)?.parse().ok()?;
                    let want = pool.min(max);
                    if now >= want {
                        return None;
                    }
                    want.to_string()
                }
            };
            (original != relaxed).then(|| GlobalChange {
                name: k.name.to_string(),
                original: original.to_string(),
                relaxed,
            })
        })
        .collect()
}

/// `(name, value)` pairs that apply `changes`, in order.
pub(crate) fn relaxed_pairs(changes: &[GlobalChange]) -> Vec<(String, String)> {
    changes
        .iter()
        .map(|g| (g.name.clone(), g.relaxed.clone()))
        .collect()
}

/// `(name, value)` pairs that undo `changes`: the originals, in reverse order.
pub fn restore_pairs(changes: &[GlobalChange]) -> Vec<(String, String)> {
    changes
        .iter()
        .rev()
        .map(|g| (g.name.clone(), g.original.clone()))
        .collect()
}

/// Adds `changes` to the journaled `pending` list, keeping the original already journaled
/// for a name (a global relaxed twice was restored in between or never, and the first
/// original is the true one either way).
pub(crate) fn journal_pending(pending: &mut Vec<GlobalChange>, changes: &[GlobalChange]) {
    for g in changes {
        if !pending.iter().any(|p| p.name == g.name) {
            pending.push(g.clone());
        }
    }
}

/// Removes the restored `changes` from the journaled `pending` list.
pub(crate) fn forget_restored(pending: &mut Vec<GlobalChange>, changes: &[GlobalChange]) {
    pending.retain(|p| !changes.iter().any(|g| g.name == p.name));
}

/// `name = value` pairs in words, for the plan and the list of changes.
pub(crate) fn describe(changes: &[GlobalChange], restore: bool) -> String {
    changes
        .iter()
        .map(|g| {
            if restore {
                format!("{} = {} (was {})", g.name, g.original, g.relaxed)
            } else {
                format!("{} = {} (was {})", g.name, g.relaxed, g.original)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mariadb(major: u16, minor: u16) -> ServerInfo {
        ServerInfo {
            flavor: Flavor::MariaDb,
            version: Version::new(major, minor, 5),
            version_string: String::new(),
            server_id: 2,
            log_bin: false,
            binlog_format: "ROW".into(),
            read_only: false,
        }
    }

    fn cur(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn the_redo_log_is_resized_only_where_the_server_does_it_online() {
        let names = |i: &ServerInfo| knob_names(&knobs(i, true));
        assert!(names(&mariadb(10, 11)).contains(&"innodb_log_file_size".to_string()));
        assert!(names(&mariadb(10, 11)).contains(&BUFFER_POOL.to_string()));
        assert!(!names(&mariadb(10, 6)).contains(&"innodb_log_file_size".to_string()));
        let mut mysql = mariadb(8, 0);
        mysql.flavor = Flavor::MySql;
        mysql.version = Version::new(8, 0, 30);
        assert!(names(&mysql).contains(&"innodb_redo_log_capacity".to_string()));
        assert_eq!(
            knob_names(&knobs(&mysql, false)),
            vec!["innodb_flush_log_at_trx_commit", "sync_binlog"]
        );
        mysql.version = Version::new(8, 0, 29);
        assert_eq!(
            names(&mysql),
            vec!["innodb_flush_log_at_trx_commit", "sync_binlog"]
        );
    }

    #[test]
    fn relaxes_only_what_differs_and_keeps_a_larger_redo_log() {
        let k = knobs(&mariadb(10, 11), true);
        let changes = relax(
            &k,
            &cur(&[
                ("innodb_flush_log_at_trx_commit", Some("1")),
                ("sync_binlog", Some("0")),
                ("innodb_log_file_size", Some("100663296")),
                (BUFFER_POOL, Some("17179869184")),
            ]),
        );
        assert_eq!(
            changes,
            vec![
                GlobalChange {
                    name: "innodb_flush_log_at_trx_commit".into(),
                    original: "1".into(),
                    relaxed: "0".into()
                },
                GlobalChange {
                    name: "innodb_log_file_size".into(),
                    original: "100663296".into(),
                    relaxed: MAX_REDO_LOG_BYTES.to_string()
                },
            ]
        );
        let big = relax(
            &k,
            &cur(&[
                ("innodb_log_file_size", Some("4294967296")),
                (BUFFER_POOL, Some("17179869184")),
                ("sync_binlog", None),
            ]),
        );
        assert!(big.is_empty(), "{big:?}");
        // A small server gets a redo log as large as its buffer pool.
        let small = relax(
            &k,
            &cur(&[
                ("innodb_log_file_size", Some("33554432")),
                (BUFFER_POOL, Some("134217728")),
            ]),
        );
        assert_eq!(
            relaxed_pairs(&small),
            vec![("innodb_log_file_size".into(), "134217728".into())]
        );
        // Without the buffer pool's size the redo log is left alone.
        assert!(relax(&k, &cur(&[("innodb_log_file_size", Some("33554432"))])).is_empty());
    }

    #[test]
    fn an_unknown_or_garbled_value_is_left_alone() {
        let k = knobs(&mariadb(10, 11), true);
        assert!(relax(
            &k,
            &cur(&[
                ("innodb_log_file_size", Some("lots")),
                (BUFFER_POOL, Some("134217728"))
            ])
        )
        .is_empty());
        assert!(relax(&k, &[]).is_empty());
    }

    #[test]
    fn a_journaled_original_wins_over_the_relaxed_value_the_server_shows() {
        let pending = vec![GlobalChange {
            name: "sync_binlog".into(),
            original: "1".into(),
            relaxed: "0".into(),
        }];
        let now = cur(&[
            ("sync_binlog", Some("0")),
            ("innodb_flush_log_at_trx_commit", Some("0")),
        ]);
        let o = originals(&now, &pending);
        assert_eq!(
            o,
            cur(&[
                ("sync_binlog", Some("1")),
                ("innodb_flush_log_at_trx_commit", Some("0"))
            ])
        );
        let changes = relax(&knobs(&mariadb(10, 6), true), &o);
        assert_eq!(
            relaxed_pairs(&changes),
            vec![("sync_binlog".into(), "0".into())]
        );
    }

    #[test]
    fn restores_originals_in_reverse_order() {
        let changes = vec![
            GlobalChange {
                name: "a".into(),
                original: "1".into(),
                relaxed: "0".into(),
            },
            GlobalChange {
                name: "b".into(),
                original: "10".into(),
                relaxed: "20".into(),
            },
        ];
        assert_eq!(
            restore_pairs(&changes),
            vec![("b".into(), "10".into()), ("a".into(), "1".into())]
        );
        assert_eq!(describe(&changes[..1], true), "a = 1 (was 0)");
    }

    #[test]
    fn the_journal_keeps_the_first_original_and_forgets_restored_ones() {
        let g = |n: &str, o: &str, r: &str| GlobalChange {
            name: n.into(),
            original: o.into(),
            relaxed: r.into(),
        };
        let mut pending = vec![g("sync_binlog", "1", "0")];
        journal_pending(
            &mut pending,
            &[g("sync_binlog", "0", "0"), g("x", "5", "6")],
        );
        assert_eq!(pending, vec![g("sync_binlog", "1", "0"), g("x", "5", "6")]);
        forget_restored(&mut pending, &[g("sync_binlog", "1", "0")]);
        assert_eq!(pending, vec![g("x", "5", "6")]);
    }
}
