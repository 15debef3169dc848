//! State shared by every client of one run: the run's identity and clock,
//! live counters for the progress line, the end-to-end flow-control slots
//! between publishers and subscribers, and the list of errors.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

/// The most error messages kept word for word; the rest are only counted.
const MAX_ERRORS_KEPT: usize = 50;

/// One run's shared state.
#[derive(Debug)]
pub struct RunShared {
    /// Random id stamped in every payload of this run.
    pub run_id: u32,
    /// The run's clock: payload timestamps are nanoseconds since this.
    pub epoch: Instant,
    /// Messages written by publishers.
    pub sent: AtomicU64,
    /// Distinct messages that reached a subscriber.
    pub delivered: AtomicU64,
    /// Connections currently open.
    pub connections: AtomicU64,
    /// Errors so far.
    pub error_count: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl RunShared {
    /// A new run starting its clock now.
    pub fn new(run_id: u32) -> Self {
        Self {
            run_id,
            epoch: Instant::now(),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            error_count: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    /// Records an error; the first few are kept for the report.
    pub fn error(&self, message: String) {
        tracing::warn!(%message, "bench client error");
        self.error_count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.errors.lock()
            && e.len() < MAX_ERRORS_KEPT
        {
            e.push(message);
        }
    }

    /// The errors kept, with a line saying how many more there were.
    pub fn errors(&self) -> Vec<String> {
        let mut kept = self.errors.lock().map(|e| e.clone()).unwrap_or_default();
        let total = self.error_count.load(Ordering::Relaxed);
        if total > kept.len() as u64 {
            kept.push(format!("... and {} more errors", total - kept.len() as u64));
        }
        kept
    }
}

/// A duration in nanoseconds, saturating.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// End-to-end flow control for one publisher: how far each of its
/// subscribers has got in its stream. The publisher keeps at most `window`
/// messages beyond the slowest of them, so a broker's queues stay bounded and
/// a throughput figure measures what the broker sustains, not how much it can
/// buffer.
#[derive(Debug)]
pub struct PublisherFlow {
    progress: Vec<AtomicU64>,
    waiting: AtomicBool,
    /// Wakes the publisher's writer: subscribers' progress, the broker's acks.
    pub wake: Notify,
}

impl PublisherFlow {
    /// Flow state for a publisher with `subscribers` subscribers.
    pub fn new(subscribers: usize) -> Self {
        Self {
            progress: (0..subscribers).map(|_| AtomicU64::new(0)).collect(),
            waiting: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// The stream position the slowest subscriber has reached (one past the
    /// highest sequence number it saw; lost messages do not hold it back).
    pub fn slowest(&self) -> u64 {
        self.progress
            .iter()
            .map(|p| p.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Subscriber `slot` has seen the stream up to `position`.
    pub fn advance(&self, slot: usize, position: u64) {
        if let Some(p) = self.progress.get(slot) {
            p.fetch_max(position, Ordering::SeqCst);
        }
        if self.waiting.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// The writer is about to wait for progress (`true`) or has stopped
    /// waiting (`false`). Between setting this and waiting, the writer checks
    /// again, so a wake-up cannot be missed.
    pub fn set_waiting(&self, waiting: bool) {
        self.waiting.store(waiting, Ordering::SeqCst);
    }
}

/// Resolves once `stop` turns true (or its sender is gone). Holds no borrow
/// of the channel across an await, so the future stays `Send`.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}
