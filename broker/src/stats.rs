//! Broker-wide counters behind `$SYS/broker/...` and the periodic stats line.
//!
//! Atomics updated with relaxed ordering: the numbers are reports, not
//! synchronisation. Connections add their message and byte counts in
//! batches (once per read or write), not once per packet.
//!
//! The counters every message moves ([`Counter`]) are sharded per thread:
//! with one shared atomic, every runtime thread's flush wrote the same
//! cache line, which then bounced between the cores on every read and write
//! turn of every connection: the one line written by all cores on the path
//! of otherwise independent publisher/subscriber pairs. Each thread now adds
//! into its own cache-line-padded shard, and a reader (`$SYS`, the stats
//! line, tests) sums the shards. Counters that move once per connection
//! (the connected gauges) stay plain atomics.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_utils::CachePadded;

/// Shards per [`Counter`]: one per runtime worker up to 16 cores; beyond,
/// threads share shards (still correct, only contended again).
const SHARDS: usize = 16;

/// Hands out shard numbers, one per thread on its first count.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard: the threads that count (the runtime workers)
    /// take consecutive numbers, so up to 16 of them never share a line.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// This thread's shard number.
fn shard() -> usize {
    SHARD.with(|s| *s)
}

/// A counter that many threads add to and few read: one cache-line-padded
/// atomic per thread shard, summed on read. Adding never writes a line
/// another core's adds write (up to 16 counting threads).
#[derive(Debug, Default)]
pub struct Counter {
    shards: [CachePadded<AtomicU64>; SHARDS],
}

impl Counter {
    /// Adds `n` in the calling thread's shard.
    pub fn add(&self, n: u64) {
        self.add_in(shard(), n);
    }

    fn add_in(&self, shard: usize, n: u64) {
        self.shards[shard % SHARDS].fetch_add(n, Ordering::Relaxed);
    }

    /// The total over all shards. Adds racing with the read may or may not
    /// be in it; each is counted exactly once over successive reads.
    pub fn get(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// Something [`Stats::get`] can read: a plain atomic or a [`Counter`].
pub trait Reading {
    /// The current value.
    fn reading(&self) -> u64;
}

impl Reading for AtomicU64 {
    fn reading(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
}

impl Reading for Counter {
    fn reading(&self) -> u64 {
        self.get()
    }
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain TCP.
    Plain,
    /// TLS over TCP.
    Tls,
    /// WebSocket over TCP.
    WebSockets,
    /// WebSocket over TLS.
    WebSocketsTls,
}

impl Transport {
    /// `"plain"`, `"tls"`, `"ws"` or `"wss"`, as logs and `$SYS` topics
    /// name them.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls => "tls",
            Transport::WebSockets => "ws",
            Transport::WebSocketsTls => "wss",
        }
    }
}

/// The counters. One instance per broker, shared by reference.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// Connections open now on the plain listener (after CONNACK).
    pub connected_plain: AtomicU64,
    /// Connections open now on the TLS listener (after CONNACK).
    pub connected_tls: AtomicU64,
    /// Connections open now on the WebSocket listeners (after CONNACK).
    pub connected_ws: AtomicU64,
    /// Connections open now on the WebSocket-over-TLS listeners.
    pub connected_wss: AtomicU64,
    /// The most connections open at once since start.
    pub connected_maximum: AtomicU64,
    /// Connections accepted with CONNACK 0 since start.
    pub connections_total: AtomicU64,
    /// Control packets received.
    pub messages_received: Counter,
    /// Control packets sent.
    pub messages_sent: Counter,
    /// PUBLISH packets received.
    pub publish_received: Counter,
    /// PUBLISH packets sent.
    pub publish_sent: Counter,
    /// Messages dropped because a client's queue was full (offline
    /// sessions, the broker's own messages) or discarded with the session
    /// of a client disconnected for slowness.
    pub publish_dropped: Counter,
    /// Times a publisher's connection paused because a subscriber's queue
    /// was full (backpressure).
    pub publish_paused: AtomicU64,
    /// Clients disconnected because their queue stayed full past
    /// `--slow-client-timeout`.
    pub clients_slow: AtomicU64,
    /// Bytes received on all connections.
    pub bytes_received: Counter,
    /// Bytes sent on all connections.
    pub bytes_sent: Counter,
    /// Persistent sessions dropped by `--persistent-client-expiration`.
    pub sessions_expired: AtomicU64,
    /// New sockets closed at once, before CONNECT: out of file descriptors
    /// or past `--max-connections`.
    pub connections_refused: AtomicU64,
    /// Failed writes of the store (each retry counts).
    pub store_write_errors: AtomicU64,
    /// Idle plain-TCP clients parked now: connected, without a task of
    /// their own (see `listener/park.rs`). Counted in `connected_plain`
    /// too.
    pub clients_parked: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Zeroed counters; uptime counts from now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            connected_plain: AtomicU64::new(0),
            connected_tls: AtomicU64::new(0),
            connected_ws: AtomicU64::new(0),
            connected_wss: AtomicU64::new(0),
            connected_maximum: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            messages_received: Counter::default(),
            messages_sent: Counter::default(),
            publish_received: Counter::default(),
            publish_sent: Counter::default(),
            publish_dropped: Counter::default(),
            publish_paused: AtomicU64::new(0),
            clients_slow: AtomicU64::new(0),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            sessions_expired: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            store_write_errors: AtomicU64::new(0),
            clients_parked: AtomicU64::new(0),
        }
    }

    /// Seconds since the broker started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    fn gauge(&self, transport: Transport) -> &AtomicU64 {
        match transport {
            Transport::Plain => &self.connected_plain,
            Transport::Tls => &self.connected_tls,
            Transport::WebSockets => &self.connected_ws,
            Transport::WebSocketsTls => &self.connected_wss,
        }
    }

    /// A client was accepted on `transport`.
    pub fn client_connected(&self, transport: Transport) {
        self.gauge(transport).fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connected_maximum
            .fetch_max(self.connected(), Ordering::Relaxed);
    }

    /// An accepted client went away.
    pub fn client_disconnected(&self, transport: Transport) {
        self.gauge(transport).fetch_sub(1, Ordering::Relaxed);
    }

    /// Clients connected now, all listeners.
    pub fn connected(&self) -> u64 {
        [
            &self.connected_plain,
            &self.connected_tls,
            &self.connected_ws,
            &self.connected_wss,
        ]
        .iter()
        .map(|g| g.load(Ordering::Relaxed))
        .sum()
    }

    /// Adds one connection's batch of counts.
    pub fn add(&self, batch: &mut Counts) {
        let shard = shard();
        let add = |c: &Counter, v: &mut u32| {
            if *v > 0 {
                c.add_in(shard, u64::from(*v));
                *v = 0;
            }
        };
        add(&self.messages_received, &mut batch.packets_in);
        add(&self.messages_sent, &mut batch.packets_out);
        add(&self.publish_received, &mut batch.publish_in);
        add(&self.publish_sent, &mut batch.publish_out);
        add(&self.bytes_received, &mut batch.bytes_in);
        add(&self.bytes_sent, &mut batch.bytes_out);
    }

    /// Reads a counter or gauge.
    pub fn get(counter: &impl Reading) -> u64 {
        counter.reading()
    }
}

/// Counts one connection gathers between flushes into [`Stats`].
///
/// 32 bits each: a connection flushes after every turn of its loop, which
/// reads at most 64 KiB and writes little more, so they cannot overflow;
/// and every idle connection carries this, so it is kept small.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Packets received.
    pub packets_in: u32,
    /// Packets sent.
    pub packets_out: u32,
    /// PUBLISH packets received.
    pub publish_in: u32,
    /// PUBLISH packets sent.
    pub publish_out: u32,
    /// Bytes received.
    pub bytes_in: u32,
    /// Bytes sent.
    pub bytes_out: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds from many threads (each in its own shard, some sharing one
    /// past 16) are each counted exactly once in the sum.
    #[test]
    fn a_counter_sums_the_adds_of_every_thread() {
        let stats = std::sync::Arc::new(Stats::new());
        let threads: Vec<_> = (0..20u64)
            .map(|t| {
                let stats = std::sync::Arc::clone(&stats);
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        let mut batch = Counts {
                            publish_in: 1,
                            bytes_in: 3,
                            ..Counts::default()
                        };
                        stats.add(&mut batch);
                        assert_eq!(batch.publish_in, 0, "a flushed batch is zeroed");
                    }
                    stats.publish_dropped.add(t);
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a counting thread panicked");
        }
        assert_eq!(Stats::get(&stats.publish_received), 20_000);
        assert_eq!(Stats::get(&stats.bytes_received), 60_000);
        assert_eq!(stats.messages_received.get(), 0);
        assert_eq!(stats.publish_dropped.get(), (0..20).sum::<u64>());
    }
}
