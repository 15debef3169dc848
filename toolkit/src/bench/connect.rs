//! Opening many connections with bounded concurrency, timing each handshake.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::report::{Connections, Percentiles};
use super::subscriber::new_histogram;
use super::transport::Target;
use super::wire::{ClientError, Connection, Identity, open};

/// Connection attempts and how they went.
#[derive(Debug)]
pub struct ConnectStats {
    /// Attempts made.
    pub attempted: u64,
    /// CONNACK 0 received.
    pub established: u64,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// TCP connect to CONNACK, nanoseconds.
    pub latency: Histogram<u64>,
    /// When the first attempt started.
    pub first: Option<Instant>,
    /// When the last answer came.
    pub last: Option<Instant>,
}

impl Default for ConnectStats {
    fn default() -> Self {
        Self {
            attempted: 0,
            established: 0,
            failures: BTreeMap::new(),
            latency: new_histogram(),
            first: None,
            last: None,
        }
    }
}

impl ConnectStats {
    /// Notes one attempt that ran from `started` to `now`; a failure is
    /// given by its kind.
    pub fn record(&mut self, started: Instant, now: Instant, result: Result<(), String>) {
        self.attempted += 1;
        self.first = Some(self.first.map_or(started, |f| f.min(started)));
        self.last = Some(self.last.map_or(now, |l| l.max(now)));
        match result {
            Ok(()) => {
                self.established += 1;
                self.latency.saturating_record(
                    u64::try_from((now - started).as_nanos()).unwrap_or(u64::MAX),
                );
            }
            Err(kind) => *self.failures.entry(kind).or_default() += 1,
        }
    }

    /// The figures for a report.
    pub fn summary(&self, closed_during_hold: u64) -> Connections {
        let seconds = match (self.first, self.last) {
            (Some(f), Some(l)) => (l - f).as_secs_f64(),
            _ => 0.0,
        };
        Connections {
            attempted: self.attempted,
            established: self.established,
            failed: self.attempted - self.established,
            seconds,
            per_sec: if seconds > 0.0 {
                self.established as f64 / seconds
            } else {
                0.0
            },
            latency: Percentiles::of(&self.latency),
            failures: self.failures.clone(),
            closed_during_hold,
        }
    }
}

/// Opens one connection per identity, at most `concurrency` handshakes at a
/// time, and returns them in the identities' order.
pub async fn open_all(
    target: &Target,
    identities: Vec<Identity>,
    concurrency: usize,
    timeout: Duration,
    stats: &mut ConnectStats,
) -> Vec<Result<Connection, ClientError>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    let n = identities.len();
    for (i, id) in identities.into_iter().enumerate() {
        let target = target.clone();
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let started = Instant::now();
            let r = open(&target, &id, timeout).await;
            (i, started, Instant::now(), r)
        });
    }
    let mut out: Vec<Option<Result<Connection, ClientError>>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, started, ended, r)) = joined {
            stats.record(
                started,
                ended,
                r.as_ref().map(|_| ()).map_err(ClientError::kind),
            );
            out[i] = Some(r);
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or(Err(ClientError::Closed)))
        .collect()
}
