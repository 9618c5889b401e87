//! `amsu verify` (and `amsu setup --verify`): runs the comparison and shows its outcome,
//! one line per difference and a summary that counts tables, or JSON lines
//! (`verify_difference` events and a final `verify_result`). Exit code 1 when anything
//! differs.

use std::time::Duration;

use amsu_backup::VerifyConfig;
use amsu_core::ServerAddr;
use amsu_mysql::verify::{Difference, DifferenceKind, VerifyOutcome};
use anyhow::anyhow;

use crate::args::VerifyArgs;
use crate::{exit, master_addr, replica_addr, Exit};

/// `amsu verify`.
pub(crate) async fn run(a: VerifyArgs) -> Result<i32, Exit> {
    let master = master_addr(&a.master, &a.passwords)?;
    let replica = replica_addr(&a.replica, &a.passwords)?;
    let code = compare(&master, &replica, a.timeout, a.json, "").await?;
    Ok(crate::finish(
        crate::json::CommandName::Verify,
        a.json,
        code,
    ))
}

/// Compares `replica` with `master`, prints the outcome and returns the exit code: 0
/// equal, 1 different or failed (`context` prefixes an error message).
pub(crate) async fn compare(
    master: &ServerAddr,
    replica: &ServerAddr,
    timeout_secs: u64,
    json: bool,
    context: &str,
) -> Result<i32, Exit> {
    let config = VerifyConfig::new(master.clone(), replica.clone())
        .timeout(Duration::from_secs(timeout_secs));
    let outcome = amsu_backup::verify(&config)
        .await
        .map_err(|e| Exit(exit::FAILED, anyhow!("{context}{e}")))?;
    out!("{}", render(&outcome, json));
    Ok(if outcome.equal() {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// The whole output for `outcome`: human lines, or JSON lines.
pub(crate) fn render(outcome: &VerifyOutcome, json: bool) -> String {
    let mut out = String::new();
    if json {
        for d in &outcome.differences {
            out.push_str(&crate::json::line(&difference_json(d)));
            out.push('\n');
        }
        out.push_str(&crate::json::line(&result_json(outcome)));
        out.push('\n');
        return out;
    }
    for d in &outcome.differences {
        out.push_str("  ");
        out.push_str(&difference_line(d));
        out.push('\n');
    }
    out.push_str(&summary_line(outcome));
    out.push('\n');
    out
}

/// One difference, for people: what, where, and the row counts of both sides.
pub(crate) fn difference_line(d: &Difference) -> String {
    let counts = || match (d.master_rows, d.replica_rows) {
        (Some(m), Some(r)) if m == r => {
            format!("{m} rows on both sides, with different values")
        }
        (Some(m), Some(r)) => format!("master {m} rows, replica {r} rows"),
        _ => String::new(),
    };
    match d.kind {
        DifferenceKind::Rows => match &d.key_range {
            Some(k) => format!("DIFFERENT {} where {k}: {}", d.table, counts()),
            None => format!("DIFFERENT {}: {}", d.table, counts()),
        },
        DifferenceKind::Schema => format!(
            "DIFFERENT {} definition: {}",
            d.table,
            d.detail.as_deref().unwrap_or("SHOW CREATE TABLE differs")
        ),
        DifferenceKind::OnlyOnMaster => {
            format!("MISSING   {} exists on the master only", d.table)
        }
        DifferenceKind::OnlyOnReplica => {
            format!("EXTRA     {} exists on the replica only", d.table)
        }
    }
}

/// The summary, counting tables (a table may differ in several key ranges).
pub(crate) fn summary_line(o: &VerifyOutcome) -> String {
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let head = format!(
        "verified {} at {}",
        n(o.tables, "table", "tables"),
        o.position
    );
    if o.equal() {
        return format!("{head}: master and replica are equal");
    }
    let ranges = o
        .differences
        .iter()
        .filter(|d| d.kind == DifferenceKind::Rows && d.key_range.is_some())
        .count();
    let detail = if ranges > 0 {
        format!(" (rows differ in {})", n(ranges, "key range", "key ranges"))
    } else {
        String::new()
    };
    format!(
        "{head}: {} of {} DIFFER{detail}",
        o.tables_differing(),
        n(o.tables, "table", "tables")
    )
}

fn difference_json(d: &Difference) -> crate::json::Body {
    use crate::json::value;
    crate::json::Body::VerifyDifference {
        table: d.table.clone(),
        kind: value(&d.kind),
        key_range: d.key_range.as_ref().map(value),
        master_rows: d.master_rows,
        replica_rows: d.replica_rows,
        detail: d.detail.clone(),
    }
}

fn result_json(o: &VerifyOutcome) -> crate::json::Body {
    crate::json::Body::VerifyResult {
        equal: o.equal(),
        tables: o.tables,
        tables_differing: o.tables_differing(),
        differences: o.differences.len(),
        ranges: o.ranges as u64,
        position: crate::json::value(&o.position),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amsu_core::Coordinates;
    use amsu_mysql::verify::KeyRange;

    fn outcome(differences: Vec<Difference>) -> VerifyOutcome {
        VerifyOutcome {
            tables: 3,
            ranges: 70,
            position: Coordinates::new("bin.000001", 42),
            differences,
        }
    }

    fn rows(table: &str, from: i128, m: u64, r: u64) -> Difference {
        Difference {
            table: table.into(),
            kind: DifferenceKind::Rows,
            key_range: Some(KeyRange {
                column: "id".into(),
                from,
                to: from + 10,
            }),
            master_rows: Some(m),
            replica_rows: Some(r),
            detail: None,
        }
    }

    #[test]
    fn summary_counts_tables_not_ranges() {
        let o = outcome(vec![rows("d.t", 0, 10, 10), rows("d.t", 10, 10, 9)]);
        let text = render(&o, false);
        assert_eq!(
            text,
            "  DIFFERENT d.t where 0 <= `id` < 10: 10 rows on both sides, with different values\n\
             \x20 DIFFERENT d.t where 10 <= `id` < 20: master 10 rows, replica 9 rows\n\
             verified 3 tables at bin.000001:42: 1 of 3 tables DIFFER (rows differ in 2 key ranges)\n"
        );
        assert!(!text.contains("Some("), "no debug output");
    }

    #[test]
    fn equal_outcome_says_so() {
        assert_eq!(
            render(&outcome(vec![]), false),
            "verified 3 tables at bin.000001:42: master and replica are equal\n"
        );
    }

    #[test]
    fn json_lines_are_versioned_events() {
        let mut missing = rows("d.u", 0, 0, 0);
        missing.kind = DifferenceKind::OnlyOnMaster;
        missing.key_range = None;
        let text = render(&outcome(vec![rows("d.t", 0, 10, 10), missing]), true);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["v"], 1);
        assert_eq!(lines[0]["event"], "verify_difference");
        assert_eq!(lines[0]["kind"], "rows");
        assert_eq!(lines[0]["key_range"]["from"], 0);
        assert_eq!(lines[0]["key_range"]["to"], 10);
        assert_eq!(lines[1]["kind"], "only_on_master");
        assert_eq!(lines[2]["event"], "verify_result");
        assert_eq!(lines[2]["equal"], false);
        assert_eq!(lines[2]["tables_differing"], 2);
        assert_eq!(lines[2]["tables"], 3);
    }
}
