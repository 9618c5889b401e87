//! Events: what a running setup tells its caller. The CLI renders them; a library user
//! can consume them with any [`EventSink`], or asynchronously through a [`ChannelSink`].

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::{Coordinates, Role, Step};

/// Something that happened during a setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A step began.
    StepStarted {
        /// The step.
        step: Step,
    },
    /// A step finished successfully.
    StepFinished {
        /// The step.
        step: Step,
        /// How long it took, in milliseconds.
        millis: u64,
    },
    /// A step had nothing to do.
    StepSkipped {
        /// The step.
        step: Step,
        /// Why.
        reason: String,
    },
    /// amsu changed something on a server (reported again in the summary).
    Changed {
        /// Where.
        server: Role,
        /// What, in words (never a secret).
        what: String,
    },
    /// Something the operator should know that does not stop the setup.
    Warning {
        /// Where, if it concerns one server.
        server: Option<Role>,
        /// The message.
        message: String,
    },
    /// Progress of the data copy.
    Progress {
        /// Tables fully copied.
        tables_done: u64,
        /// Tables to copy.
        tables_total: u64,
        /// Rows copied so far.
        rows: u64,
        /// Bytes copied so far (encoded row data).
        bytes: u64,
        /// Seconds since the copy of rows began.
        elapsed_secs: f64,
        /// Mean rate since then, in bytes per second.
        bytes_per_sec: f64,
        /// Share of the data done, 0–100, when the total is known (estimated from table
        /// sizes, so a guide rather than a promise).
        percent: Option<f64>,
        /// Estimated seconds left, from `percent` and the time so far.
        eta_secs: Option<u64>,
    },
    /// The master's commits were blocked for this long while the snapshot was taken.
    CommitBlocked {
        /// Milliseconds.
        millis: f64,
    },
    /// The snapshot's binary log coordinates.
    Snapshot {
        /// The coordinates.
        coordinates: Coordinates,
    },
    /// amsu began reading a server's catalog (its databases and tables): sent before the
    /// first catalog query, so that a large server shows progress from the start.
    CatalogReading {
        /// Which server.
        server: Role,
        /// What the catalog is read for (`the checks`, `the copy`).
        purpose: String,
    },
    /// amsu read a server's catalog.
    CatalogRead {
        /// Which server.
        server: Role,
        /// User databases found.
        databases: u64,
        /// Tables found (base tables and sequences).
        tables: u64,
        /// How long the read took, in milliseconds.
        millis: u64,
    },
    /// Replication state after start or while catching up.
    Replication {
        /// Seconds behind the master, when known.
        seconds_behind: Option<u64>,
    },
}

/// Receives events. Implemented for every `Fn(&Event) + Send + Sync`.
pub trait EventSink: Send + Sync {
    /// Handles one event. Must not block for long: it runs on the setup's task.
    fn emit(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: &Event) {
        self(event)
    }
}

/// An [`EventSink`] that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &Event) {}
}

/// An [`EventSink`] that sends every event into an unbounded channel, for an async program
/// to consume at its own pace: with [`EventReceiver::recv`], or as a
/// [`Stream`](futures_core::Stream). Sending never blocks the setup; events sent after the
/// receiver is dropped are discarded.
///
/// ```
/// use std::sync::Arc;
/// use amsu_core::{ChannelSink, Event, EventSink, Step};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (sink, mut events) = ChannelSink::new();
/// // Give `sink` to the setup (e.g. `Setup::run(Arc::new(sink))`) and read the events
/// // in another task while it runs; here two events are sent by hand.
/// let sink: Arc<dyn EventSink> = Arc::new(sink);
/// let consumer = tokio::spawn(async move {
///     let mut steps = Vec::new();
///     while let Some(event) = events.recv().await {
///         if let Event::StepFinished { step, .. } = event {
///             steps.push(step);
///         }
///     }
///     steps // the channel ends when every sender (the setup's sink) is dropped
/// });
/// sink.emit(&Event::StepStarted { step: Step::ProbeMaster });
/// sink.emit(&Event::StepFinished { step: Step::ProbeMaster, millis: 3 });
/// drop(sink);
/// assert_eq!(consumer.await.unwrap(), [Step::ProbeMaster]);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct ChannelSink {
    tx: mpsc::UnboundedSender<Event>,
}

impl ChannelSink {
    /// A sink and the receiver of what it is sent.
    pub fn new() -> (ChannelSink, EventReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ChannelSink { tx }, EventReceiver { rx })
    }
}

impl EventSink for ChannelSink {
    fn emit(&self, event: &Event) {
        // A dropped receiver means nobody listens any more: not the setup's concern.
        let _ = self.tx.send(event.clone());
    }
}

/// The receiving end of a [`ChannelSink`]: [`recv`](Self::recv) or a
/// [`Stream`](futures_core::Stream) of events, ending when every sink is dropped.
#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl EventReceiver {
    /// The next event; `None` once every sink is dropped and all events were received.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// The underlying tokio receiver (e.g. for `tokio_stream::wrappers`).
    pub fn into_inner(self) -> mpsc::UnboundedReceiver<Event> {
        self.rx
    }
}

impl futures_core::Stream for EventReceiver {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Step;
    use futures_core::Stream;

    #[tokio::test]
    async fn a_channel_sink_streams_events_in_order_and_ends_with_its_senders() {
        let (sink, mut rx) = ChannelSink::new();
        let second = sink.clone();
        sink.emit(&Event::StepStarted {
            step: Step::CopyData,
        });
        second.emit(&Event::CommitBlocked { millis: 2.0 });
        drop((sink, second));
        async fn next(rx: &mut EventReceiver) -> Option<Event> {
            std::future::poll_fn(|cx| Pin::new(&mut *rx).poll_next(cx)).await
        }
        assert_eq!(
            next(&mut rx).await,
            Some(Event::StepStarted {
                step: Step::CopyData
            })
        );
        assert_eq!(
            next(&mut rx).await,
            Some(Event::CommitBlocked { millis: 2.0 })
        );
        assert_eq!(next(&mut rx).await, None);
    }

    #[test]
    fn a_dropped_receiver_does_not_fail_the_sender() {
        let (sink, rx) = ChannelSink::new();
        drop(rx);
        sink.emit(&Event::CommitBlocked { millis: 1.0 });
    }
}
