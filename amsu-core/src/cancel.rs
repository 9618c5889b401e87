//! Stopping a setup on request: a signal, a closed output, a caller's deadline.
//!
//! [`Setup::with_cancellation`](crate::Setup::with_cancellation) takes a
//! [`CancellationToken`]. Cancelling it makes the step that runs (or the next one to start)
//! fail with [`Interrupted`], through the same path as any other failure: the journal
//! records where the run stopped, a replication user created by this run is dropped again
//! (unless replication already runs as it), and the error says what state was left behind
//! and that a rerun resumes. Dropping the future of [`Setup::run`](crate::Setup::run)
//! instead leaves the same resumable journal (the action in flight is journaled before it
//! starts), but nobody is told what was left behind.

pub use tokio_util::sync::CancellationToken;

/// The error of a step stopped by a cancelled [`CancellationToken`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted: the run was asked to stop (a signal, or its output was closed)")]
#[non_exhaustive]
pub struct Interrupted;
