//! Benchmarks of amsu against mariadb-dump, mydumper and mariadb-backup (see BENCHMARKS.md).
//!
//! The heavy benchmark is the `provision` binary (`cargo run --release -p amsu-benches
//! --bin provision -- --help`): it deploys sandboxes, loads a sysbench dataset, runs a
//! fixed-rate write load and provisions one empty replica per method. It is run by hand,
//! never by `cargo test`. This library holds the pure parts it relies on — parsing the
//! tools' output and summarising the per-second write load — so that they are unit-tested
//! on fixture text. The criterion micro-benchmarks live in `benches/hot_paths.rs`.

use std::time::{Duration, Instant};

/// One per-second line of sysbench's `--report-interval=1` output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSecond {
    /// Transactions per second in that interval.
    pub tps: f64,
    /// The reported latency percentile in milliseconds (with `--percentile=100`, the
    /// slowest transaction that finished in that interval).
    pub lat_ms: f64,
}

/// Parses a sysbench 1.0 interim report line such as
/// `[ 3s ] thds: 2 tps: 99.98 qps: 599.9 (r/w/o: 0.00/399.9/199.9) lat (ms,100%): 7.43 err/s: 0.00 reconn/s: 0.00`.
/// Lines of any other shape (the rate limiter's `queue length` lines, the header, the
/// final summary) give `None`.
pub fn parse_sysbench_line(line: &str) -> Option<LoadSecond> {
    let line = line.trim();
    if !line.starts_with('[') || !line.contains(" tps: ") {
        return None;
    }
    let tps = number_after(line, "tps: ")?;
    let lat_start = line.find("lat (ms,")?;
    let rest = &line[lat_start..];
    let lat_ms = number_after(rest, "): ")?;
    Some(LoadSecond { tps, lat_ms })
}

fn number_after(s: &str, key: &str) -> Option<f64> {
    let i = s.find(key)? + key.len();
    let tail = &s[i..];
    let end = tail
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(tail.len());
    tail[..end].parse().ok()
}

/// A report line together with the moment the harness read it (the end of its second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimedSecond {
    /// When the line arrived.
    pub at: Instant,
    /// What it said.
    pub second: LoadSecond,
}

/// Mean and worst second of a window of the write load.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadSummary {
    /// Seconds in the window.
    pub seconds: usize,
    /// Mean transactions per second.
    pub mean_tps: f64,
    /// The lowest per-second transaction rate.
    pub worst_tps: f64,
    /// The highest per-second latency figure, in milliseconds.
    pub worst_lat_ms: f64,
    /// The 95th percentile of the per-second latency figures (nearest rank), in
    /// milliseconds: how bad a typical bad second is, less sensitive to one outlier.
    pub p95_lat_ms: f64,
    /// When the worst-latency second ended, in seconds after the window's start: which
    /// phase of a provisioning the worst second falls in.
    pub worst_at_s: f64,
}

/// Summarises the seconds whose interval `[at - 1 s, at]` overlaps `[from, to]`.
/// A window without any report gives the default (all zero, `seconds == 0`).
pub fn summarize(seconds: &[TimedSecond], from: Instant, to: Instant) -> LoadSummary {
    let window: Vec<&TimedSecond> = seconds
        .iter()
        .filter(|s| s.at > from && s.at.checked_sub(Duration::from_secs(1)).unwrap_or(s.at) < to)
        .collect();
    let worst_at_s = window
        .iter()
        .max_by(|a, b| a.second.lat_ms.total_cmp(&b.second.lat_ms))
        .map(|s| (s.at - from).as_secs_f64())
        .unwrap_or_default();
    let picked: Vec<LoadSecond> = window.iter().map(|s| s.second).collect();
    if picked.is_empty() {
        return LoadSummary::default();
    }
    let n = picked.len();
    let mut lats: Vec<f64> = picked.iter().map(|s| s.lat_ms).collect();
    lats.sort_by(f64::total_cmp);
    let rank = ((0.95 * n as f64).ceil() as usize).clamp(1, n);
    LoadSummary {
        p95_lat_ms: lats[rank - 1],
        seconds: n,
        mean_tps: picked.iter().map(|s| s.tps).sum::<f64>() / n as f64,
        worst_tps: picked.iter().map(|s| s.tps).fold(f64::INFINITY, f64::min),
        worst_lat_ms: picked.iter().map(|s| s.lat_ms).fold(0.0, f64::max),
        worst_at_s,
    }
}

/// Binary log coordinates as the tools print them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogPos {
    /// Binary log file name.
    pub file: String,
    /// Position in it.
    pub pos: u64,
}

impl std::fmt::Display for BinlogPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// Parses mydumper's `metadata` file (0.10 format):
/// ```text
/// Started dump at: 2026-01-01 10:00:00
/// SHOW MASTER STATUS:
///         Log: mariadb-bin.000001
///         Pos: 1234
///         GTID:0-1-7
/// ```
/// or the INI format of mydumper ≥ 0.12 (1.0.x), where the coordinates may be commented
/// out:
/// ```text
/// [source]
/// # SOURCE_LOG_FILE = "mariadb-bin.000001"
/// # SOURCE_LOG_POS = 1234
/// ```
/// Only the `SHOW MASTER STATUS` block or `[source]` section counts (a `SHOW SLAVE
/// STATUS` block or `[replication]` section, written when the source is itself a replica,
/// is skipped).
pub fn parse_mydumper_metadata(text: &str) -> Option<BinlogPos> {
    let mut in_master = false;
    let (mut file, mut pos) = (None, None);
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_master = t == "[source]";
            continue;
        }
        if in_master {
            let kv = t.trim_start_matches('#').trim();
            if let Some((k, v)) = kv.split_once('=') {
                let v = v.trim().trim_matches('"');
                match k.trim() {
                    "SOURCE_LOG_FILE" => file = Some(v.to_string()),
                    "SOURCE_LOG_POS" => pos = v.parse().ok(),
                    _ => {}
                }
                continue;
            }
        }
        if t.starts_with("SHOW MASTER STATUS") {
            in_master = true;
            continue;
        }
        if t.starts_with("SHOW SLAVE STATUS") || t.starts_with("Finished dump") {
            in_master = false;
            continue;
        }
        if !in_master {
            continue;
        }
        if let Some(v) = t.strip_prefix("Log:") {
            file = Some(v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("Pos:") {
            pos = v.trim().parse().ok();
        }
    }
    Some(BinlogPos {
        file: file.filter(|f| !f.is_empty())?,
        pos: pos?,
    })
}

/// Parses mariadb-backup's `xtrabackup_binlog_info` (`FILE<TAB>POS[<TAB>GTID]`).
pub fn parse_xtrabackup_binlog_info(text: &str) -> Option<BinlogPos> {
    let mut it = text.split_whitespace();
    let file = it.next()?.to_string();
    let pos = it.next()?.parse().ok()?;
    Some(BinlogPos { file, pos })
}

/// Reads `VmHWM` (peak resident set size) in KiB from a `/proc/PID/status` text.
pub fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Whether a measured value holds a "not more than" target, rendered for the report.
pub fn verdict(holds: bool) -> &'static str {
    if holds {
        "HOLDS"
    } else {
        "MISSED"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_interim_report_lines() {
        let l = "[ 3s ] thds: 2 tps: 99.98 qps: 599.90 (r/w/o: 0.00/399.93/199.97) lat (ms,100%): 7.43 err/s: 0.00 reconn/s: 0.00";
        assert_eq!(
            parse_sysbench_line(l),
            Some(LoadSecond {
                tps: 99.98,
                lat_ms: 7.43
            })
        );
        let p95 = "[ 10s ] thds: 2 tps: 0.00 qps: 0.00 (r/w/o: 0.00/0.00/0.00) lat (ms,95%): 0.00 err/s: 0.00 reconn/s: 0.00";
        assert_eq!(parse_sysbench_line(p95).map(|s| s.tps), Some(0.0));
        assert_eq!(
            parse_sysbench_line("[ 3s ] queue length: 0, concurrency: 1"),
            None
        );
        assert_eq!(
            parse_sysbench_line("    transactions: 1234 (99.9 per sec.)"),
            None
        );
    }

    #[test]
    fn windows_pick_overlapping_seconds() {
        let t0 = Instant::now();
        let s = |secs: u64, tps: f64, lat_ms: f64| TimedSecond {
            at: t0 + Duration::from_secs(secs),
            second: LoadSecond { tps, lat_ms },
        };
        let all = [
            s(1, 100.0, 5.0),
            s(2, 100.0, 6.0),
            s(3, 40.0, 300.0),
            s(4, 100.0, 5.0),
        ];
        let before = summarize(&all, t0, t0 + Duration::from_millis(2000));
        assert_eq!(before.seconds, 2);
        assert_eq!(before.worst_lat_ms, 6.0);
        let during = summarize(
            &all,
            t0 + Duration::from_millis(2500),
            t0 + Duration::from_millis(3200),
        );
        assert_eq!(during.seconds, 2);
        assert_eq!(during.worst_tps, 40.0);
        assert_eq!(during.worst_lat_ms, 300.0);
        assert_eq!(during.mean_tps, 70.0);
        assert_eq!(during.p95_lat_ms, 300.0);
        // The 300 ms second ended 3 s after t0: 0.5 s after the window's start.
        assert!((during.worst_at_s - 0.5).abs() < 1e-9);
        assert_eq!(
            summarize(
                &all,
                t0 + Duration::from_secs(9),
                t0 + Duration::from_secs(10)
            )
            .seconds,
            0
        );
    }

    #[test]
    fn parses_mydumper_metadata() {
        let text = "Started dump at: 2026-01-01 10:00:00\nSHOW SLAVE STATUS:\n\tHost: x\n\tLog: other.000009\n\tPos: 9\n\nSHOW MASTER STATUS:\n\tLog: mariadb-bin.000002\n\tPos: 4711\n\tGTID:0-1-7\n\nFinished dump at: 2026-01-01 10:00:05\n";
        assert_eq!(
            parse_mydumper_metadata(text),
            Some(BinlogPos {
                file: "mariadb-bin.000002".into(),
                pos: 4711
            })
        );
        assert_eq!(parse_mydumper_metadata("Started dump at: x\n"), None);
        // mydumper 1.0.x
        let text = "# Started dump at: 2026-01-01 10:00:00\n[config]\nquote-character = BACKTICK\n\n[replication]\nSOURCE_LOG_FILE = \"other.000009\"\nSOURCE_LOG_POS = 9\n\n[source]\n# Channel_Name = '' # It can be use to setup replication FOR CHANNEL\n# executed_gtid_set = \"0-1-7\"\n# SOURCE_LOG_FILE = \"mariadb-bin.000002\"\n# SOURCE_LOG_POS = 4711\n\n[`sbtest`.`sbtest1`]\nreal_table_name=sbtest1\nrows = 50000\n";
        assert_eq!(
            parse_mydumper_metadata(text),
            Some(BinlogPos {
                file: "mariadb-bin.000002".into(),
                pos: 4711
            })
        );
    }

    #[test]
    fn parses_xtrabackup_binlog_info() {
        assert_eq!(
            parse_xtrabackup_binlog_info("mariadb-bin.000003\t385\t0-1-12\n"),
            Some(BinlogPos {
                file: "mariadb-bin.000003".into(),
                pos: 385
            })
        );
        assert_eq!(parse_xtrabackup_binlog_info(""), None);
    }

    #[test]
    fn reads_vm_hwm() {
        let status =
            "Name:\tamsu\nVmPeak:\t  300000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_vm_hwm_kib(status), Some(51234));
        assert_eq!(parse_vm_hwm_kib("Name: x\n"), None);
    }
}
