//! Shared helpers of the integration tests: real servers started for the tests.

pub mod ftpd;
pub mod garage;
pub mod proxy;
pub mod servers;
pub mod torture;
