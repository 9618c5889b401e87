//! The one integration-test binary: every module runs against real servers.

mod bulk_load;
mod check;
mod cli_contract;
mod fast_load;
mod fidelity;
mod hostile;
mod hostile_image;
mod hostile_ops;
mod image;
mod lock_retry;
mod physical;
mod resume;
mod s3;
mod sandbox;
mod scale;
mod setup;
mod snapshot;
mod torture;
mod transfer;
mod verify;
mod verify_exact;
