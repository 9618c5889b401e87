//! The governor: how fast a copy reads the master, so that the copy does not hurt the
//! master's own work.
//!
//! Two parts, both on by default through [`GovernorOptions`]:
//! - a **rate limit** on the bytes read from the master ([`RateLimiter`], a token bucket
//!   shared by every worker, charged after each chunk), fixed by
//!   [`GovernorOptions::max_rate`];
//! - an **adaptive controller** ([`Controller`], pure logic) fed by a latency probe on the
//!   master (a dedicated connection timing a trivial statement every second): when the
//!   master answers slower than its **target** twice in a row (one late answer is noise),
//!   the controller halves the read rate; after three calm samples in a row it raises it
//!   by a quarter, and lifts the limit again once it no longer binds.
//!
//! The target: the probe's latency stays within `2 ×` the master's idle latency
//! (the lowest of the samples taken before the copy) `+ 5 ms`. The rate never falls below
//! 1 MiB/s, so the copy always progresses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amsu_core::ServerAddr;
use amsu_mysql::conn::Session;
use async_trait::async_trait;
use tokio::time::Instant;

use crate::image::ImageError;

/// The latency the master must keep: `factor × baseline + slack`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyTarget {
    /// Multiple of the idle latency.
    pub factor: f64,
    /// Added to it.
    pub slack: Duration,
}

impl Default for LatencyTarget {
    /// `2 × baseline + 5 ms`.
    fn default() -> Self {
        LatencyTarget {
            factor: 2.0,
            slack: Duration::from_millis(5),
        }
    }
}

impl LatencyTarget {
    /// The highest acceptable latency for an idle latency of `baseline`.
    pub(crate) fn limit(&self, baseline: Duration) -> Duration {
        baseline.mul_f64(self.factor) + self.slack
    }
}

/// How the copy's reads from the master are governed.
///
/// | setting | default |
/// |---|---|
/// | `max_rate` | none (no fixed limit) |
/// | `adaptive` | on |
/// | `target` | `LatencyTarget::default`: `2 × idle latency + 5 ms` |
/// | `min_rate` | 1 MiB/s |
/// | `interval` | 1 s between probes |
#[derive(Debug, Clone, PartialEq)]
pub struct GovernorOptions {
    max_rate: Option<u64>,
    adaptive: bool,
    target: LatencyTarget,
    min_rate: u64,
    interval: Duration,
}

impl Default for GovernorOptions {
    fn default() -> Self {
        GovernorOptions {
            max_rate: None,
            adaptive: true,
            target: LatencyTarget::default(),
            min_rate: 1 << 20,
            interval: Duration::from_secs(1),
        }
    }
}

impl GovernorOptions {
    /// No limit and no adaptation (`--no-governor` without `--max-rate`).
    pub fn off() -> Self {
        GovernorOptions {
            adaptive: false,
            ..Default::default()
        }
    }

    /// At most this many bytes per second read from the master. Default: none.
    pub fn max_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.max_rate = bytes_per_second.filter(|r| *r > 0);
        self
    }

    /// Watch the master's latency and back off. Default on.
    pub fn adaptive(mut self, on: bool) -> Self {
        self.adaptive = on;
        self
    }

    /// The latency target of the adaptive mode. Default `2 × idle + 5 ms`.
    pub fn target(mut self, target: LatencyTarget) -> Self {
        self.target = target;
        self
    }

    /// Time between probes. Default 1 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// True when the governor does something.
    pub(crate) fn is_active(&self) -> bool {
        self.adaptive || self.max_rate.is_some()
    }

    /// True when the adaptive mode needs a latency probe.
    pub(crate) fn adaptive_probe(&self) -> bool {
        self.adaptive
    }
}

/// A token bucket shared by the copy's workers, charged with the bytes each chunk read.
/// A worker that overdraws it waits until the debt is paid. Up to one second of unused
/// rate is kept as credit.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: Mutex<Option<u64>>,
    next_free: Mutex<Instant>,
    total: AtomicU64,
}

impl RateLimiter {
    /// A limiter at `rate` bytes per second (`None`: unlimited).
    pub(crate) fn new(rate: Option<u64>) -> Self {
        RateLimiter {
            rate: Mutex::new(rate.filter(|r| *r > 0)),
            next_free: Mutex::new(Instant::now()),
            total: AtomicU64::new(0),
        }
    }

    /// The current rate.
    pub(crate) fn rate(&self) -> Option<u64> {
        *self.rate.lock().expect("rate lock")
    }

    /// Sets the rate (`None`: unlimited).
    pub(crate) fn set_rate(&self, rate: Option<u64>) {
        *self.rate.lock().expect("rate lock") = rate.filter(|r| *r > 0);
    }

    /// Bytes charged so far.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Charges `bytes` just read and waits as long as the rate asks.
    pub(crate) async fn charge(&self, bytes: u64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
        let Some(rate) = self.rate() else {
            return;
        };
        let until = {
            let mut next = self.next_free.lock().expect("bucket lock");
            let now = Instant::now();
            let credit_floor = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
            let base = (*next).max(credit_floor);
            *next = base + Duration::from_secs_f64(bytes as f64 / rate as f64);
            *next
        };
        tokio::time::sleep_until(until).await;
    }
}

/// The adaptive controller: latency samples and throughput in, the read rate out. Pure
/// (no clock, no I/O).
#[derive(Debug, Clone)]
pub(crate) struct Controller {
    target: LatencyTarget,
    baseline: Option<Duration>,
    max_rate: Option<u64>,
    min_rate: u64,
    rate: Option<u64>,
    calm: u32,
    slow: u32,
}

/// Calm samples in a row before the rate is raised.
const CALM_TO_RAISE: u32 = 3;

/// Slow samples in a row before the rate is halved.
const SLOW_TO_BACK_OFF: u32 = 2;

impl Controller {
    /// A controller for `options`, starting at its `max_rate`.
    pub(crate) fn new(options: &GovernorOptions) -> Self {
        Controller {
            target: options.target,
            baseline: None,
            max_rate: options.max_rate,
            min_rate: options.min_rate.max(1),
            rate: options.max_rate,
            calm: 0,
            slow: 0,
        }
    }

    /// A latency sample taken before the copy: the baseline is the lowest one.
    pub(crate) fn calibrate(&mut self, idle: Duration) {
        self.baseline = Some(self.baseline.map_or(idle, |b| b.min(idle)));
    }

    /// The baseline (idle latency), once calibrated.
    pub(crate) fn baseline(&self) -> Option<Duration> {
        self.baseline
    }

    /// The rate it asks for (`None`: unlimited).
    #[cfg(test)]
    pub(crate) fn rate(&self) -> Option<u64> {
        self.rate
    }

    /// One sample taken during the copy, with the bytes per second read since the last
    /// one. Returns the new rate when it changes.
    pub(crate) fn observe(&mut self, latency: Duration, throughput: u64) -> Option<Option<u64>> {
        let baseline = self.baseline?;
        let before = self.rate;
        if latency > self.target.limit(baseline) {
            self.calm = 0;
            self.slow += 1;
            if self.slow < SLOW_TO_BACK_OFF {
                return None;
            }
            self.slow = 0;
            // Halve what is actually read (the limit may not bind yet).
            let current = match self.rate {
                Some(r) => r.min(throughput.max(self.min_rate)),
                None => throughput,
            };
            self.rate = Some((current / 2).max(self.min_rate));
        } else {
            self.slow = 0;
            self.calm += 1;
            if let Some(r) = self.rate {
                if self.calm >= CALM_TO_RAISE {
                    self.calm = 0;
                    let raised = r.saturating_add(r / 4).max(r + 1);
                    self.rate = match self.max_rate {
                        Some(max) => Some(raised.min(max)),
                        // The limit no longer binds: lift it.
                        None if throughput.saturating_mul(2) < raised => None,
                        None => Some(raised),
                    };
                }
            }
        }
        (self.rate != before).then_some(self.rate)
    }
}

/// Measures how fast the master answers.
#[async_trait]
pub(crate) trait LatencyProbe: Send {
    /// One sample.
    async fn sample(&mut self) -> Result<Duration, ImageError>;
}

/// The master's round trip for a trivial statement (`DO 0`) on a connection of its own.
pub(crate) struct RoundTripProbe(Session);

impl RoundTripProbe {
    /// Opens the probe's connection.
    pub(crate) async fn open(master: &ServerAddr) -> Result<Self, ImageError> {
        Ok(RoundTripProbe(Session::open(master).await?))
    }
}

#[async_trait]
impl LatencyProbe for RoundTripProbe {
    async fn sample(&mut self) -> Result<Duration, ImageError> {
        let t = Instant::now();
        self.0.exec("DO 0", "probing the master's latency").await?;
        Ok(t.elapsed())
    }
}

/// A running governor: the limiter the workers charge, and the task that adapts it
/// (stopped when this is dropped).
#[derive(Debug)]
pub(crate) struct Governor {
    limiter: Arc<RateLimiter>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Governor {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Samples taken before the copy to find the master's idle latency.
const CALIBRATION_SAMPLES: u32 = 3;

impl Governor {
    /// No limit.
    pub(crate) fn unlimited() -> Self {
        Governor {
            limiter: Arc::new(RateLimiter::new(None)),
            task: None,
        }
    }

    /// Starts governing with `options`; `probe` is used when the adaptive mode is on. A
    /// probe that fails stops the adaptation (the fixed limit stays).
    pub(crate) async fn start(
        options: &GovernorOptions,
        probe: Option<Box<dyn LatencyProbe>>,
    ) -> Self {
        let limiter = Arc::new(RateLimiter::new(options.max_rate));
        let mut task = None;
        if let (true, Some(mut probe)) = (options.adaptive, probe) {
            let mut c = Controller::new(options);
            for _ in 0..CALIBRATION_SAMPLES {
                match probe.sample().await {
                    Ok(d) => c.calibrate(d),
                    Err(e) => tracing::warn!(error = %e, "the governor's probe failed"),
                }
            }
            if c.baseline().is_some() {
                let (l, interval) = (limiter.clone(), options.interval);
                task = Some(tokio::spawn(adapt(c, probe, l, interval)));
            }
        }
        Governor { limiter, task }
    }

    /// The limiter the workers charge.
    pub(crate) fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }
}

async fn adapt(
    mut c: Controller,
    mut probe: Box<dyn LatencyProbe>,
    limiter: Arc<RateLimiter>,
    interval: Duration,
) {
    let mut last = (Instant::now(), limiter.total());
    loop {
        tokio::time::sleep(interval).await;
        let latency = match probe.sample().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "the governor's probe failed; the rate stays");
                return;
            }
        };
        let (now, total) = (Instant::now(), limiter.total());
        let secs = now.duration_since(last.0).as_secs_f64().max(1e-3);
        let throughput = ((total - last.1) as f64 / secs) as u64;
        last = (now, total);
        if let Some(rate) = c.observe(latency, throughput) {
            tracing::info!(
                latency_ms = latency.as_secs_f64() * 1000.0,
                rate = ?rate,
                "the governor changed the master read rate"
            );
            limiter.set_rate(rate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn controller() -> Controller {
        let mut c = Controller::new(&GovernorOptions::default());
        c.calibrate(Duration::from_millis(2));
        c.calibrate(Duration::from_millis(1));
        c
    }

    #[test]
    fn the_target_is_twice_the_idle_latency_plus_5_ms() {
        let c = controller();
        assert_eq!(c.baseline(), Some(Duration::from_millis(1)));
        assert_eq!(
            LatencyTarget::default().limit(Duration::from_millis(1)),
            Duration::from_millis(7)
        );
    }

    #[test]
    fn backs_off_by_half_when_slow_and_recovers_after_calm_samples() {
        let mut c = controller();
        assert_eq!(c.observe(Duration::from_millis(6), 100 * MIB), None);
        // One late answer is noise.
        assert_eq!(c.observe(Duration::from_millis(50), 100 * MIB), None);
        assert_eq!(c.observe(Duration::from_millis(1), 100 * MIB), None);
        assert_eq!(c.observe(Duration::from_millis(50), 100 * MIB), None);
        assert_eq!(
            c.observe(Duration::from_millis(50), 100 * MIB),
            Some(Some(50 * MIB))
        );
        assert_eq!(c.observe(Duration::from_millis(50), 50 * MIB), None);
        assert_eq!(
            c.observe(Duration::from_millis(50), 50 * MIB),
            Some(Some(25 * MIB))
        );
        // Calm: raised by a quarter every third sample.
        assert_eq!(c.observe(Duration::from_millis(1), 25 * MIB), None);
        assert_eq!(c.observe(Duration::from_millis(1), 25 * MIB), None);
        let raised = c.observe(Duration::from_millis(1), 25 * MIB);
        assert_eq!(raised, Some(Some(25 * MIB + 25 * MIB / 4)));
    }

    #[test]
    fn never_below_the_floor_and_lifted_once_it_no_longer_binds() {
        let mut c = controller();
        for _ in 0..20 {
            c.observe(Duration::from_secs(1), 3 * MIB);
        }
        assert_eq!(c.rate(), Some(MIB));
        // The copy reads far less than the limit: after calm samples the limit goes.
        let mut lifted = false;
        for _ in 0..3 {
            lifted |= c.observe(Duration::from_millis(1), 0) == Some(None);
        }
        assert!(lifted);
        assert_eq!(c.rate(), None);
    }

    #[test]
    fn a_fixed_maximum_caps_the_recovery() {
        let opts = GovernorOptions::default().max_rate(Some(10 * MIB));
        let mut c = Controller::new(&opts);
        c.calibrate(Duration::from_millis(1));
        assert_eq!(c.rate(), Some(10 * MIB));
        c.observe(Duration::from_secs(1), 10 * MIB);
        c.observe(Duration::from_secs(1), 10 * MIB);
        assert_eq!(c.rate(), Some(5 * MIB));
        for _ in 0..30 {
            c.observe(Duration::from_millis(1), 5 * MIB);
        }
        assert_eq!(c.rate(), Some(10 * MIB));
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_holds_the_workers_to_the_rate() {
        let l = Arc::new(RateLimiter::new(Some(MIB)));
        let t = Instant::now();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move {
                    for _ in 0..5 {
                        l.charge(MIB).await;
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        // 10 MiB at 1 MiB/s, one second of credit at the start.
        let took = t.elapsed();
        assert!(took >= Duration::from_secs(9), "{took:?}");
        assert!(took <= Duration::from_secs(10), "{took:?}");
        assert_eq!(l.total(), 10 * MIB);
        l.set_rate(None);
        let t = Instant::now();
        l.charge(100 * MIB).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    /// A probe that answers from a script of latencies (the last one repeats).
    struct Scripted(Vec<Duration>);

    #[async_trait]
    impl LatencyProbe for Scripted {
        async fn sample(&mut self) -> Result<Duration, ImageError> {
            Ok(if self.0.len() > 1 {
                self.0.remove(0)
            } else {
                self.0[0]
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_governor_backs_off_when_the_injected_latency_rises() {
        let ms = Duration::from_millis;
        // Three idle samples, four slow ones, then calm.
        let script = vec![ms(1), ms(1), ms(1), ms(40), ms(40), ms(40), ms(40), ms(1)];
        let opts = GovernorOptions::default().max_rate(Some(64 * MIB));
        let g = Governor::start(&opts, Some(Box::new(Scripted(script)))).await;
        let l = g.limiter().clone();
        assert_eq!(l.rate(), Some(64 * MIB));
        // A worker reading steadily at the limit.
        let reader = {
            let l = l.clone();
            tokio::spawn(async move {
                loop {
                    l.charge(MIB).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(l.rate(), Some(64 * MIB), "one slow sample is noise");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let first = l.rate().unwrap();
        assert!(first < 64 * MIB, "backed off after the second slow sample");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let second = l.rate().unwrap();
        assert!(second < first, "backed off again: {second} < {first}");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            l.rate(),
            Some(64 * MIB),
            "recovered to the maximum when calm"
        );
        reader.abort();
        drop(g);
    }

    #[tokio::test(start_paused = true)]
    async fn without_adaptation_only_the_fixed_limit_applies() {
        let g = Governor::start(
            &GovernorOptions::off().max_rate(Some(MIB)),
            Some(Box::new(Scripted(vec![Duration::from_secs(5)]))),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(g.limiter().rate(), Some(MIB));
        assert!(!GovernorOptions::off().is_active());
    }
}
