//! The one integration-test binary: every module runs against real servers.

mod sandbox;
mod setup;
mod transfer;
