//! `amsu status`: the replica's replication state, with exit codes for monitoring.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | replicating: both threads run, no error, lag within `--max-lag` |
//! | 1 | the replica cannot be reached or read |
//! | 2 | usage error |
//! | 4 | the server is not configured as a replica |
//! | 5 | a replication thread is stopped, or an error is set |
//! | 6 | the lag exceeds `--max-lag` (or is unknown while `--max-lag` is given) |

use crate::args::StatusArgs;
use crate::json;
use crate::{exit, replica_addr, Exit};
use amsu_backup::{Health, StatusConfig};

/// Exit code: not configured as a replica.
pub(crate) const NOT_A_REPLICA: i32 = 4;
/// Exit code: a thread stopped or an error set.
pub(crate) const NOT_REPLICATING: i32 = 5;
/// Exit code: lag above `--max-lag`.
pub(crate) const LAGGING: i32 = 6;

/// The exit code and the verdict in words of `health`.
pub(crate) fn verdict(health: &Health) -> (i32, String) {
    match health {
        Health::NotAReplica => (NOT_A_REPLICA, "not configured as a replica".into()),
        Health::NotReplicating { reasons } => (NOT_REPLICATING, reasons.join("; ")),
        Health::Lagging {
            seconds_behind: Some(lag),
            max_lag,
        } => (
            LAGGING,
            format!("{lag} s behind, more than --max-lag {max_lag}"),
        ),
        Health::Lagging {
            seconds_behind: None,
            max_lag,
        } => (
            LAGGING,
            format!("the lag is unknown (Seconds_Behind_Master is NULL); --max-lag {max_lag}"),
        ),
        _ => (exit::OK, "replicating".into()),
    }
}

/// `amsu status`.
pub(crate) async fn status(a: StatusArgs) -> Result<i32, Exit> {
    let replica = replica_addr(&a.replica, &a.passwords)?;
    let report = amsu_backup::status(&StatusConfig::new(replica).max_lag(a.max_lag))
        .await
        .map_err(|e| Exit(exit::FAILED, e.into()))?;
    let (replica, st) = (&report.replica, &report.replication);
    let (code, verdict) = verdict(&report.health);
    if a.json {
        json::emit(json::Body::Status {
            replica: replica.to_string(),
            replication: st.as_ref().map(json::value),
            healthy: code == exit::OK,
            verdict,
        });
        return Ok(crate::finish(json::CommandName::Status, true, code));
    }
    match st {
        None => outln!("{replica} is not configured as a replica."),
        Some(s) => {
            outln!(
                "{replica} replicates from {}:{}",
                s.master_host,
                s.master_port
            );
            outln!(
                "  IO thread: {}, SQL thread: {}",
                if s.io_running { "running" } else { "stopped" },
                if s.sql_running { "running" } else { "stopped" }
            );
            outln!(
                "  executed up to {}:{}, {} s behind",
                s.exec_file,
                s.exec_position,
                s.seconds_behind.map_or("?".into(), |v| v.to_string())
            );
            if !s.last_io_error.is_empty() {
                outln!("  Last_IO_Error: {}", s.last_io_error);
            }
            if !s.last_sql_error.is_empty() {
                outln!("  Last_SQL_Error: {}", s.last_sql_error);
            }
            outln!(
                "  {}: {verdict}",
                if code == exit::OK { "OK" } else { "NOT OK" }
            );
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amsu_core::ReplicationStatus;

    /// The verdict on a replication state: exit code and words.
    fn health(st: Option<&ReplicationStatus>, max_lag: Option<u64>) -> (i32, String) {
        verdict(&amsu_backup::facade::health(st, max_lag))
    }

    fn running() -> ReplicationStatus {
        ReplicationStatus::new("", 0)
            .with_threads(true, true)
            .with_seconds_behind(Some(3))
    }

    #[test]
    fn verdicts() {
        assert_eq!(health(None, None).0, NOT_A_REPLICA);
        assert_eq!(health(Some(&running()), None).0, exit::OK);
        assert_eq!(health(Some(&running()), Some(3)).0, exit::OK);
        assert_eq!(health(Some(&running()), Some(2)).0, LAGGING);
        let unknown = running().with_seconds_behind(None);
        assert_eq!(health(Some(&unknown), None).0, exit::OK);
        assert_eq!(health(Some(&unknown), Some(10)).0, LAGGING);
        let io_stopped = running()
            .with_threads(false, true)
            .with_errors("equal server ids", "");
        let (code, why) = health(Some(&io_stopped), Some(100));
        assert_eq!(code, NOT_REPLICATING);
        assert!(why.contains("IO thread is stopped") && why.contains("equal server ids"));
        let sql_error = running().with_errors("", "duplicate key");
        assert_eq!(health(Some(&sql_error), None).0, NOT_REPLICATING);
    }
}
