//! GTID sets and errant transactions: the pure decisions of this part of the preflight (see the parent module).

use super::*;

/// A GTID set or position that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read GTID {text:?}: {reason}")]
pub(crate) struct GtidParseError {
    text: String,
    reason: &'static str,
}

/// A set of GTIDs: MariaDB's per (domain, server) highest sequence number, or MySQL's
/// intervals per source UUID (and tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GtidSet {
    /// `domain-server-seq,…` (`gtid_binlog_state`, `gtid_binlog_pos`, `gtid_slave_pos`):
    /// every sequence number up to the highest, per (domain, server).
    MariaDb(BTreeMap<(u32, u32), u64>),
    /// `uuid:1-5:7,…` (`gtid_executed`): intervals (inclusive) per `uuid` or `uuid:tag`.
    MySql(BTreeMap<String, Vec<(u64, u64)>>),
}

impl GtidSet {
    /// Parses a set in the flavor's notation; empty text is the empty set.
    pub fn parse(flavor: Flavor, text: &str) -> Result<GtidSet, GtidParseError> {
        let err = |reason| GtidParseError {
            text: text.chars().take(200).collect(),
            reason,
        };
        let items = text.split(',').map(str::trim).filter(|s| !s.is_empty());
        match flavor {
            Flavor::MariaDb => {
                let mut m = BTreeMap::new();
                for item in items {
                    let parts: Vec<&str> = item.split('-').collect();
                    let [d, s, n] = parts[..] else {
                        return Err(err("expected domain-server-sequence"));
                    };
                    let d: u32 = d.parse().map_err(|_| err("domain is not a number"))?;
                    let s: u32 = s.parse().map_err(|_| err("server_id is not a number"))?;
                    let n: u64 = n.parse().map_err(|_| err("sequence is not a number"))?;
                    let e = m.entry((d, s)).or_insert(0);
                    *e = (*e).max(n);
                }
                Ok(GtidSet::MariaDb(m))
            }
            Flavor::MySql => {
                let mut m: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
                for item in items {
                    let mut parts = item.split(':');
                    let uuid = parts
                        .next()
                        .filter(|u| u.len() == 36)
                        .ok_or_else(|| err("expected a source UUID"))?
                        .to_ascii_lowercase();
                    let mut key = uuid.clone();
                    for p in parts {
                        let p = p.trim();
                        if p.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                            let (a, b) = match p.split_once('-') {
                                Some((a, b)) => (a, b),
                                None => (p, p),
                            };
                            let a: u64 = a.parse().map_err(|_| err("bad interval"))?;
                            let b: u64 = b.parse().map_err(|_| err("bad interval"))?;
                            if a == 0 || b < a {
                                return Err(err("bad interval"));
                            }
                            m.entry(key.clone()).or_default().push((a, b));
                        } else {
                            key = format!("{uuid}:{}", p.to_ascii_lowercase());
                        }
                    }
                }
                for v in m.values_mut() {
                    *v = merge(std::mem::take(v));
                }
                Ok(GtidSet::MySql(m))
            }
        }
    }

    /// The union of two sets of the same flavor (`self` wins on a flavor mismatch).
    pub fn union(&self, other: &GtidSet) -> GtidSet {
        match (self, other) {
            (GtidSet::MariaDb(a), GtidSet::MariaDb(b)) => {
                let mut m = a.clone();
                for (k, v) in b {
                    let e = m.entry(*k).or_insert(0);
                    *e = (*e).max(*v);
                }
                GtidSet::MariaDb(m)
            }
            (GtidSet::MySql(a), GtidSet::MySql(b)) => {
                let mut m = a.clone();
                for (k, v) in b {
                    let e = m.entry(k.clone()).or_default();
                    e.extend(v.iter().copied());
                    *e = merge(std::mem::take(e));
                }
                GtidSet::MySql(m)
            }
            _ => self.clone(),
        }
    }

    /// The GTIDs of `self` that `other` does not hold, in the flavor's notation. For
    /// MariaDB, `d-s-n` stands for the transactions of server `s` in domain `d` after
    /// `other`'s highest sequence number for that pair, up to `n`.
    pub(crate) fn missing_from(&self, other: &GtidSet) -> Vec<String> {
        match (self, other) {
            (GtidSet::MariaDb(a), GtidSet::MariaDb(b)) => a
                .iter()
                .filter(|(k, n)| b.get(k).is_none_or(|m| m < n))
                .map(|((d, s), n)| format!("{d}-{s}-{n}"))
                .collect(),
            (GtidSet::MySql(a), GtidSet::MySql(b)) => {
                let mut out = Vec::new();
                for (k, ivs) in a {
                    let have = b.get(k).cloned().unwrap_or_default();
                    let rest = subtract(ivs, &have);
                    if !rest.is_empty() {
                        let r: Vec<String> = rest
                            .iter()
                            .map(|(x, y)| {
                                if x == y {
                                    x.to_string()
                                } else {
                                    format!("{x}-{y}")
                                }
                            })
                            .collect();
                        out.push(format!("{k}:{}", r.join(":")));
                    }
                }
                out
            }
            _ => vec![],
        }
    }
}

fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Intervals of `a` not covered by `b` (both merged and sorted).
fn subtract(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(mut lo, hi) in a {
        for &(blo, bhi) in b {
            if bhi < lo || blo > hi {
                continue;
            }
            if blo > lo {
                out.push((lo, blo - 1));
            }
            lo = bhi.saturating_add(1);
            if lo > hi {
                break;
            }
        }
        if lo <= hi {
            out.push((lo, hi));
        }
    }
    out
}

/// The GTID text of a server: MariaDB `gtid_binlog_state` (else `gtid_binlog_pos`) with
/// `gtid_slave_pos` for a replica; MySQL `gtid_executed`.
fn gtid_text(s: &ServerFacts, own: bool) -> Vec<String> {
    let pick = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| s.var(n).map(str::to_string))
            .unwrap_or_default()
    };
    match s.info.flavor {
        Flavor::MariaDb => {
            let mut v = vec![pick(&["gtid_binlog_state", "gtid_binlog_pos"])];
            if own {
                v.push(pick(&["gtid_slave_pos"]));
            }
            v
        }
        Flavor::MySql => vec![pick(&["gtid_executed"])],
    }
}

/// A replica that replicated before must not hold transactions the master does not have
/// (errant transactions): refused (blocking), or a warning with `force`, since `--force`
/// drops its data anyway; pure. A replica that never replicated (no replication
/// configuration, empty `gtid_slave_pos`) is not compared: its own writes are covered by
/// the empty-replica check.
pub(crate) fn errant_findings(
    master: &ServerFacts,
    replica: &ServerFacts,
    force: bool,
) -> Vec<Finding> {
    if master.info.flavor != replica.info.flavor {
        return vec![];
    }
    let flavor = master.info.flavor;
    let slave_pos = replica.var("gtid_slave_pos").unwrap_or("").trim();
    let replicated_before = replica.has_replication_config || !slave_pos.is_empty();
    if !replicated_before {
        return vec![];
    }
    let parse_all = |texts: Vec<String>| -> Option<GtidSet> {
        let mut acc = GtidSet::parse(flavor, "").ok()?;
        for t in texts {
            acc = acc.union(&GtidSet::parse(flavor, &t).ok()?);
        }
        Some(acc)
    };
    let (Some(m), Some(r)) = (
        parse_all(gtid_text(master, false)),
        parse_all(gtid_text(replica, true)),
    ) else {
        return vec![Finding::warning(
                Role::Replica,
                FindingCode::NotCheckable,
                "the GTID positions of master and replica could not be read; errant transactions were not checked",
                "none",
            ).with_severity(Severity::Info)];
    };
    let errant = r.missing_from(&m);
    if errant.is_empty() {
        return vec![];
    }
    let problem = format!(
        "the replica replicated before and holds transactions the master does not have (errant GTIDs): {}. Its data has diverged from the master's, and GTID-based replication or a failover would break on them",
        errant.join(", ")
    );
    let fix = match flavor {
        Flavor::MariaDb => "check what these transactions are (mariadb-binlog on the replica's binary logs); if they may be thrown away, on the replica: STOP SLAVE; RESET SLAVE ALL; RESET MASTER; SET GLOBAL gtid_slave_pos = ''; and drop its data (or allow amsu to: force)",
        Flavor::MySql => "check what these transactions are (mysqlbinlog on the replica's binary logs); if they may be thrown away, on the replica: STOP REPLICA; RESET REPLICA ALL; RESET MASTER (8.4: RESET BINARY LOGS AND GTIDS); and drop its data (or allow amsu to: force)",
    };
    if force {
        vec![Finding::warning(
            Role::Replica,
            FindingCode::ErrantGtids,
            format!("{problem}; forcing drops the replica's data, but its GTID state keeps them"),
            fix,
        )
        .with_remedy(Remedy::setting("force"))]
    } else {
        vec![
            Finding::blocking(Role::Replica, FindingCode::ErrantGtids, problem, fix)
                .with_remedy(Remedy::setting("force")),
        ]
    }
}
