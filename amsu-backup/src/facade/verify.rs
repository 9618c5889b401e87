//! `amsu verify` as a library: compare a replica's data with its master's at one
//! binary log position, without stopping the master.

use std::time::Duration;

use amsu_core::ServerAddr;
use amsu_mysql::verify::VerifyOutcome;
use amsu_mysql::MysqlError;

/// Which servers to compare, and how long to wait for the replica. Build it with
/// [`VerifyConfig::new`] and the by-value setters; each documents its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyConfig {
    master: ServerAddr,
    replica: ServerAddr,
    timeout: Duration,
}

impl VerifyConfig {
    /// A comparison of `replica` with `master`. Defaults: the replica is waited for up to
    /// 600 s.
    pub fn new(master: ServerAddr, replica: ServerAddr) -> Self {
        VerifyConfig {
            master,
            replica,
            timeout: Duration::from_secs(600),
        }
    }

    /// How long to wait for the replica to reach the master's position. Default: 600 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The master.
    pub fn master_addr(&self) -> &ServerAddr {
        &self.master
    }

    /// The replica.
    pub fn replica_addr(&self) -> &ServerAddr {
        &self.replica
    }
}

/// Compares the data of the two servers of `config` (see [`amsu_mysql::verify::verify`]:
/// the replica's SQL thread is stopped at the master's snapshot position for the
/// comparison and started again, also after an error). Differences are in the outcome
/// ([`VerifyOutcome::equal`]); an error means the comparison could not be made.
pub async fn verify(config: &VerifyConfig) -> Result<VerifyOutcome, MysqlError> {
    amsu_mysql::verify::verify(&config.master, &config.replica, config.timeout).await
}
