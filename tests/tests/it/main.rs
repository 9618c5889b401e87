//! The one integration-test binary: every module runs against real servers.

mod bulk_load;
mod check;
mod cli_contract;
mod fanout;
mod fast_load;
mod fidelity;
mod hostile;
mod hostile_image;
mod hostile_ops;
mod image;
mod lock_retry;
mod option_files;
mod physical;
mod plan_path;
mod resume;
mod resume_stream;
mod s3;
mod s3_stream;
mod sandbox;
mod scale;
mod setup;
mod snapshot;
mod torture;
mod transfer;
mod verify;
mod verify_exact;
