//! The one integration-test binary: every module runs against real servers.

mod check;
mod fast_load;
mod fidelity;
mod hostile_ops;
mod image;
mod lock_retry;
mod physical;
mod resume;
mod sandbox;
mod setup;
mod snapshot;
mod torture;
mod transfer;
mod verify;
mod verify_exact;
