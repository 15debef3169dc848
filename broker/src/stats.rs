//! Broker-wide counters behind `$SYS/broker/...` and the periodic stats line.
//!
//! Plain atomics, updated with relaxed ordering: the numbers are reports,
//! not synchronisation. Connections add their message and byte counts in
//! batches (once per read or write), not once per packet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain TCP.
    Plain,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// `"plain"` or `"tls"`, as logs and `$SYS` topics name them.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls => "tls",
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
    /// The most connections open at once since start.
    pub connected_maximum: AtomicU64,
    /// Connections accepted with CONNACK 0 since start.
    pub connections_total: AtomicU64,
    /// Control packets received.
    pub messages_received: AtomicU64,
    /// Control packets sent.
    pub messages_sent: AtomicU64,
    /// PUBLISH packets received.
    pub publish_received: AtomicU64,
    /// PUBLISH packets sent.
    pub publish_sent: AtomicU64,
    /// Messages dropped because a client's queue was full (offline
    /// sessions, the broker's own messages) or discarded with the session
    /// of a client disconnected for slowness.
    pub publish_dropped: AtomicU64,
    /// Times a publisher's connection paused because a subscriber's queue
    /// was full (backpressure).
    pub publish_paused: AtomicU64,
    /// Clients disconnected because their queue stayed full past
    /// `--slow-client-timeout`.
    pub clients_slow: AtomicU64,
    /// Bytes received on all connections.
    pub bytes_received: AtomicU64,
    /// Bytes sent on all connections.
    pub bytes_sent: AtomicU64,
    /// Persistent sessions dropped by `--persistent-client-expiration`.
    pub sessions_expired: AtomicU64,
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
            connected_maximum: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            publish_received: AtomicU64::new(0),
            publish_sent: AtomicU64::new(0),
            publish_dropped: AtomicU64::new(0),
            publish_paused: AtomicU64::new(0),
            clients_slow: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            sessions_expired: AtomicU64::new(0),
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

    /// Clients connected now, both listeners.
    pub fn connected(&self) -> u64 {
        self.connected_plain.load(Ordering::Relaxed) + self.connected_tls.load(Ordering::Relaxed)
    }

    /// Adds one connection's batch of counts.
    pub fn add(&self, batch: &mut Counts) {
        let add = |c: &AtomicU64, v: &mut u32| {
            if *v > 0 {
                c.fetch_add(u64::from(*v), Ordering::Relaxed);
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

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
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
