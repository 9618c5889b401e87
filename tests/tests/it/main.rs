//! The one integration-test binary: every module runs against real servers.

mod resume;
mod sandbox;
mod setup;
mod transfer;
