//! `amsu status` as a library: a replica's replication state and a verdict on it, for
//! monitoring.

use amsu_core::{BoxError, ReplicaServer, ReplicationStatus, ServerAddr};
use amsu_mysql::MysqlReplica;

/// Which replica, and the lag it may have. Build it with [`StatusConfig::new`] and the
/// by-value setters; each documents its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StatusConfig {
    replica: ServerAddr,
    max_lag: Option<u64>,
}

impl StatusConfig {
    /// The state of `replica`. Defaults: any lag is healthy.
    pub fn new(replica: ServerAddr) -> Self {
        StatusConfig {
            replica,
            max_lag: None,
        }
    }

    /// The most seconds behind the master that is still healthy (an unknown lag then is
    /// not). Default: none (any lag, also an unknown one, is healthy).
    pub fn max_lag(mut self, seconds: Option<u64>) -> Self {
        self.max_lag = seconds;
        self
    }

    /// The replica.
    pub fn replica_addr(&self) -> &ServerAddr {
        &self.replica
    }
}

/// The verdict on a replica's replication state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Both threads run, no error is set, the lag is within the maximum.
    Replicating,
    /// The server is not configured as a replica.
    NotAReplica,
    /// A replication thread is stopped, or an error is set.
    NotReplicating {
        /// Each reason, in words (`the IO thread is stopped`, `Last_SQL_Error: …`).
        reasons: Vec<String>,
    },
    /// The lag exceeds the maximum, or is unknown while a maximum is given.
    Lagging {
        /// Seconds behind the master (`None`: unknown, `Seconds_Behind_Master` is NULL).
        seconds_behind: Option<u64>,
        /// The maximum ([`StatusConfig::max_lag`]).
        max_lag: u64,
    },
}

impl Health {
    /// True for [`Health::Replicating`].
    pub fn is_healthy(&self) -> bool {
        *self == Health::Replicating
    }
}

/// The verdict on `status` (`None`: not a replica) with at most `max_lag` seconds of
/// lag; pure.
pub fn health(status: Option<&ReplicationStatus>, max_lag: Option<u64>) -> Health {
    let Some(s) = status else {
        return Health::NotAReplica;
    };
    let mut reasons = Vec::new();
    if !s.io_running {
        reasons.push("the IO thread is stopped".to_string());
    }
    if !s.sql_running {
        reasons.push("the SQL thread is stopped".to_string());
    }
    if !s.last_io_error.is_empty() {
        reasons.push(format!("Last_IO_Error: {}", s.last_io_error));
    }
    if !s.last_sql_error.is_empty() {
        reasons.push(format!("Last_SQL_Error: {}", s.last_sql_error));
    }
    if !reasons.is_empty() {
        return Health::NotReplicating { reasons };
    }
    match (max_lag, s.seconds_behind) {
        (Some(max), Some(lag)) if lag > max => Health::Lagging {
            seconds_behind: Some(lag),
            max_lag: max,
        },
        (Some(max), None) => Health::Lagging {
            seconds_behind: None,
            max_lag: max,
        },
        _ => Health::Replicating,
    }
}

/// What [`status`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StatusReport {
    /// The replica.
    pub replica: ServerAddr,
    /// Its replication state (`None`: not configured as a replica).
    pub replication: Option<ReplicationStatus>,
    /// The verdict.
    pub health: Health,
}

/// A failed [`status`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The replica could not be reached or read.
    #[error(transparent)]
    Replica(BoxError),
}

/// Reads the replication state of the replica of `config` and judges it; changes
/// nothing.
pub async fn status(config: &StatusConfig) -> Result<StatusReport, StatusError> {
    let replication = MysqlReplica::new(config.replica.clone())
        .replication_status()
        .await
        .map_err(StatusError::Replica)?;
    let health = health(replication.as_ref(), config.max_lag);
    Ok(StatusReport {
        replica: config.replica.clone(),
        replication,
        health,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> ReplicationStatus {
        ReplicationStatus::new("", 0)
            .with_threads(true, true)
            .with_seconds_behind(Some(3))
    }

    #[test]
    fn verdicts() {
        assert_eq!(health(None, None), Health::NotAReplica);
        assert!(health(Some(&running()), Some(3)).is_healthy());
        assert_eq!(
            health(Some(&running()), Some(2)),
            Health::Lagging {
                seconds_behind: Some(3),
                max_lag: 2
            }
        );
        let stopped = running()
            .with_threads(true, false)
            .with_errors("", "duplicate key");
        assert_eq!(
            health(Some(&stopped), None),
            Health::NotReplicating {
                reasons: vec![
                    "the SQL thread is stopped".into(),
                    "Last_SQL_Error: duplicate key".into()
                ]
            }
        );
    }
}
