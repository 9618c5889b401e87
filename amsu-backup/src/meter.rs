//! Progress of a copy: counts, rate and an estimate of the time left, as
//! [`Event::Progress`] events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use amsu_core::Event;

/// Shared by every worker of a copy. Work is weighed in estimated bytes (a chunk's share
/// of its table's size, or a chunk file's size); the share of weight done gives the
/// percentage and, with the time so far, the time left.
#[derive(Debug)]
pub(crate) struct Meter {
    started: Mutex<Option<Instant>>,
    tables_total: u64,
    weight_total: AtomicU64,
    weight_done: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
    tables_done: AtomicU64,
}

impl Meter {
    /// A meter for `tables_total` tables; weights are added as chunks are planned.
    pub(crate) fn new(tables_total: u64) -> Self {
        Meter {
            started: Mutex::new(None),
            tables_total,
            weight_total: AtomicU64::new(0),
            weight_done: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            tables_done: AtomicU64::new(0),
        }
    }

    /// Adds planned work (and starts the clock on the first call).
    pub(crate) fn plan(&self, weight: u64) {
        self.started
            .lock()
            .expect("meter lock")
            .get_or_insert_with(Instant::now);
        self.weight_total.fetch_add(weight, Ordering::Relaxed);
    }

    /// Rows so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Bytes so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Records a finished chunk; returns the progress event to emit.
    pub(crate) fn chunk_done(
        &self,
        rows: u64,
        bytes: u64,
        weight: u64,
        table_finished: bool,
    ) -> Event {
        let rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let done = self.weight_done.fetch_add(weight, Ordering::Relaxed) + weight;
        let tables_done = if table_finished {
            self.tables_done.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.tables_done.load(Ordering::Relaxed)
        };
        let elapsed = self
            .started
            .lock()
            .expect("meter lock")
            .get_or_insert_with(Instant::now)
            .elapsed()
            .as_secs_f64();
        let (percent, eta_secs) =
            estimate(done, self.weight_total.load(Ordering::Relaxed), elapsed);
        Event::Progress {
            tables_done,
            tables_total: self.tables_total,
            rows,
            bytes,
            elapsed_secs: elapsed,
            bytes_per_sec: if elapsed > 0.0 {
                bytes as f64 / elapsed
            } else {
                0.0
            },
            percent,
            eta_secs,
        }
    }
}

/// Percentage done and seconds left, from the weight done of `total` after `elapsed`.
fn estimate(done: u64, total: u64, elapsed: f64) -> (Option<f64>, Option<u64>) {
    if total == 0 {
        return (None, None);
    }
    let f = (done as f64 / total as f64).min(1.0);
    let eta = (f > 0.0).then(|| (elapsed * (1.0 - f) / f).round() as u64);
    (Some(f * 100.0), eta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_from_the_share_done() {
        assert_eq!(estimate(0, 0, 5.0), (None, None));
        assert_eq!(estimate(0, 100, 5.0), (Some(0.0), None));
        assert_eq!(estimate(25, 100, 10.0), (Some(25.0), Some(30)));
        // Estimates from table sizes can overshoot: never past 100 %.
        assert_eq!(estimate(120, 100, 10.0), (Some(100.0), Some(0)));
    }

    #[test]
    fn counts_rows_bytes_and_tables() {
        let m = Meter::new(2);
        m.plan(300);
        m.chunk_done(10, 100, 100, false);
        let e = m.chunk_done(5, 50, 200, true);
        let Event::Progress {
            tables_done,
            tables_total,
            rows,
            bytes,
            percent,
            eta_secs,
            ..
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!((tables_done, tables_total, rows, bytes), (1, 2, 15, 150));
        assert_eq!(percent, Some(100.0));
        assert_eq!(eta_secs, Some(0));
        assert_eq!((m.rows(), m.bytes()), (15, 150));
    }
}
