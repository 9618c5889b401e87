//! Pure parsing for the physical method: `xtrabackup_binlog_info`, the tool's version line,
//! the lock stages of its log, and which files of a copied data directory are stale.

use std::time::Duration;

use amsu_core::{Coordinates, Version};

/// Parses `xtrabackup_binlog_info`: `FILE<TAB>POSITION[<TAB>GTID]` (older writers use
/// spaces). The GTID set may itself contain commas and is kept as written.
pub(crate) fn binlog_info(text: &str) -> Result<Coordinates, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| "the file is empty (was the master's binary log on?)".to_string())?;
    let mut parts = line.split_whitespace();
    let file = parts.next().unwrap_or_default().to_string();
    let position = parts
        .next()
        .ok_or_else(|| format!("no position in {line:?}"))?
        .parse::<u64>()
        .map_err(|e| format!("bad position in {line:?}: {e}"))?;
    let gtid: Vec<&str> = parts.collect();
    let gtid = (!gtid.is_empty()).then(|| gtid.join(""));
    if file.is_empty() || file.contains('/') {
        return Err(format!("bad binary log file name in {line:?}"));
    }
    Ok(Coordinates::new(file, position).with_gtid(gtid))
}

/// The server version a `mariadb-backup --version` output names (`mariadb-backup based on
/// MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)`).
pub(crate) fn tool_version(output: &str) -> Option<Version> {
    let rest = output.split("server ").nth(1)?;
    let word = rest.split_whitespace().next()?;
    amsu_mysql::dialect::parse_version(word)
        .ok()
        .map(|(_, v)| v)
}

/// One line of the tool's log with the time it arrived (since the tool started), when
/// amsu watched it live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    /// When amsu read the line, if it did so live.
    pub arrived: Option<Duration>,
    /// The text.
    pub text: String,
}

/// How long the master's commits were blocked, in milliseconds: from the start of
/// `BACKUP STAGE BLOCK_COMMIT` (or `FLUSH TABLES WITH READ LOCK` on servers without
/// backup stages) to `BACKUP STAGE END` / the unlock. Uses the arrival times when every
/// line has one (millisecond resolution), else the log's own timestamps (whole seconds).
/// `None` when the log does not show both ends.
pub(crate) fn commit_blocked_ms(lines: &[LogLine]) -> Option<f64> {
    let start = lines.iter().position(|l| {
        l.text.contains("BACKUP STAGE BLOCK_COMMIT")
            || l.text.contains("FLUSH TABLES WITH READ LOCK")
    })?;
    let end = start
        + lines[start..].iter().position(|l| {
            l.text.contains("All tables unlocked")
                || l.text.contains("Executing BACKUP STAGE END")
                || l.text.contains("UNLOCK TABLES")
        })?;
    let (a, b) = (&lines[start], &lines[end]);
    if let (Some(x), Some(y)) = (a.arrived, b.arrived) {
        return Some(y.saturating_sub(x).as_secs_f64() * 1000.0);
    }
    let (x, y) = (log_timestamp(&a.text)?, log_timestamp(&b.text)?);
    Some((y.saturating_sub(x)) as f64 * 1000.0)
}

/// Seconds since the epoch (UTC, as written) of a `[00] 2024-06-01 12:00:00 …` line.
pub(crate) fn log_timestamp(line: &str) -> Option<u64> {
    let rest = line.trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once(']')?.1.trim_start(),
        None => rest,
    };
    let mut it = rest.split_whitespace();
    let (date, time) = (it.next()?, it.next()?);
    let d: Vec<u64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        return None;
    }
    Some(days_from_civil(d[0] as i64, d[1], d[2]) as u64 * 86_400 + t[0] * 3600 + t[1] * 60 + t[2])
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether a file at the top of a copied data directory is the master's replication
/// metadata or identity, which the replica must not inherit: `master.info`,
/// `relay-log.info` (and their per-connection `master-NAME.info` forms), relay logs and
/// their index, `auto.cnf` (MySQL's server UUID).
pub(crate) fn is_stale_top_level_file(name: &str) -> bool {
    name == "auto.cnf"
        || name == "master.info"
        || name == "multi-master.info"
        || name == "relay-log.info"
        || (name.starts_with("master-") && name.ends_with(".info"))
        || (name.starts_with("relay-log-") && name.ends_with(".info"))
        || name.starts_with("relay-bin.")
        || name.contains("-relay-bin.")
        || name.contains("-relay-bin-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_info_forms() {
        let c = binlog_info("mariadb-bin.000001\t6166\t0-1-5\n").unwrap();
        assert_eq!(
            c,
            Coordinates::new("mariadb-bin.000001", 6166).with_gtid(Some("0-1-5".into()))
        );
        let c = binlog_info("mysql-bin.000002 4 \n").unwrap();
        assert_eq!((c.position, c.gtid), (4, None));
        let c = binlog_info("b.000009\t77\t0-1-5,1-2-9\n").unwrap();
        assert_eq!(c.gtid.as_deref(), Some("0-1-5,1-2-9"));
        assert!(binlog_info("").is_err());
        assert!(binlog_info("b.000001\n").is_err());
        assert!(binlog_info("b.000001\tx\n").is_err());
        assert!(binlog_info("../b.000001\t4\n").is_err());
    }

    #[test]
    fn version_line() {
        let v = tool_version(
            "mariadb-backup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)\n",
        );
        assert_eq!(v, Some(Version::new(10, 11, 19)));
        assert_eq!(
            tool_version("mariabackup based on MariaDB server 10.5.8-MariaDB Linux (x86_64)"),
            Some(Version::new(10, 5, 8))
        );
        assert_eq!(tool_version("something else"), None);
    }

    fn lines(texts: &[(&str, Option<u64>)]) -> Vec<LogLine> {
        texts
            .iter()
            .map(|(t, ms)| LogLine {
                arrived: ms.map(Duration::from_millis),
                text: t.to_string(),
            })
            .collect()
    }

    #[test]
    fn commit_block_from_arrival_times() {
        let l = lines(&[
            (
                "[00] 2026-11-24 07:34:29 Finished BACKUP STAGE BLOCK_DDL",
                Some(900),
            ),
            (
                "[00] 2026-11-24 07:34:29 Starting BACKUP STAGE BLOCK_COMMIT",
                Some(1000),
            ),
            (
                "[00] 2026-11-24 07:34:29 Acquired locks for BACKUP STAGE BLOCK_COMMIT",
                Some(1001),
            ),
            (
                "[00] 2026-11-24 07:34:29 Writing xtrabackup_binlog_info",
                Some(1010),
            ),
            (
                "[00] 2026-11-24 07:34:29 Executing BACKUP STAGE END",
                Some(1042),
            ),
            ("[00] 2026-11-24 07:34:29 All tables unlocked", Some(1043)),
        ]);
        assert_eq!(commit_blocked_ms(&l), Some(42.0));
    }

    #[test]
    fn commit_block_from_log_timestamps() {
        let l = lines(&[
            (
                "[00] 2026-11-24 07:34:29 Starting BACKUP STAGE BLOCK_COMMIT",
                None,
            ),
            ("[00] 2026-11-24 07:34:31 Executing BACKUP STAGE END", None),
        ]);
        assert_eq!(commit_blocked_ms(&l), Some(2000.0));
        let l = lines(&[(
            "[00] 2026-11-24 07:34:29 Starting BACKUP STAGE BLOCK_COMMIT",
            None,
        )]);
        assert_eq!(commit_blocked_ms(&l), None);
        assert_eq!(commit_blocked_ms(&[]), None);
    }

    #[test]
    fn timestamps() {
        assert_eq!(log_timestamp("[00] 1970-01-01 00:00:10 x"), Some(10));
        assert_eq!(
            log_timestamp("[00] 2024-03-01 00:00:00 x").unwrap()
                - log_timestamp("[00] 2024-02-28 00:00:00 x").unwrap(),
            2 * 86_400
        );
        assert_eq!(log_timestamp("2000-01-01 00:00:00"), Some(946_684_800));
        assert_eq!(
            log_timestamp("mariabackup: Stopping log copying thread."),
            None
        );
    }

    #[test]
    fn stale_files() {
        for stale in [
            "master.info",
            "relay-log.info",
            "multi-master.info",
            "master-conn1.info",
            "relay-log-conn1.info",
            "relay-bin.000001",
            "relay-bin.index",
            "db1-relay-bin.000003",
            "db1-relay-bin-conn1.000001",
            "auto.cnf",
        ] {
            assert!(is_stale_top_level_file(stale), "{stale}");
        }
        for keep in [
            "ibdata1",
            "ib_logfile0",
            "mysql",
            "xtrabackup_info",
            "xtrabackup_binlog_info",
            "aria_log.00000001",
            "bank",
        ] {
            assert!(!is_stale_top_level_file(keep), "{keep}");
        }
    }
}
