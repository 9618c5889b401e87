//! The one integration-test binary: every module runs against real servers.

mod check;
mod fidelity;
mod image;
mod physical;
mod resume;
mod sandbox;
mod scale;
mod setup;
mod snapshot;
mod transfer;
mod verify;
