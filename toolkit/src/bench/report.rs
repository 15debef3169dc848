//! The result of a run: one serialisable [`Report`], printed as a table for
//! people or as JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::cpu::{self, BrokerCpu};
use super::kernel::KernelSockets;
use super::sequence::DeliveryCounts;

/// Everything a run measured and checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The tool and its version.
    pub tool: String,
    /// A name for the broker under test (`--label`), for comparisons.
    pub label: Option<String>,
    /// `fan-in`, `fan-out`, `pairs`, `latency` or `connections`.
    pub scenario: String,
    /// The broker's address.
    pub broker: String,
    /// Whether the connections used TLS.
    pub tls: bool,
    /// What was asked for.
    pub settings: Settings,
    /// Messages sent and delivered per second (message scenarios).
    pub throughput: Option<Throughput>,
    /// End-to-end latency of delivered messages (message scenarios).
    pub latency: Option<Percentiles>,
    /// Loss, duplicates and reordering (message scenarios).
    pub delivery: Option<Delivery>,
    /// Connections opened by the run.
    pub connections: Connections,
    /// The broker's memory, when its PID was given.
    pub memory: Option<Memory>,
    /// The broker's CPU time over the measured part of the run (publishing
    /// through the drain in message scenarios, the first attempt to the last
    /// answer in `connections`), when its PID was given and it spent enough
    /// to measure (see `cpu::MIN_TICKS`).
    #[serde(default)]
    pub broker_cpu: Option<BrokerCpu>,
    /// What the connections cost the kernel (`connections` on Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelSockets>,
    /// Faults seen while running (broken connections, bad packets).
    pub errors: Vec<String>,
    /// Broken guarantees: loss at QoS 1/2, duplicates at QoS 2, failed
    /// connections.
    pub violations: Vec<String>,
    /// No errors and no violations.
    pub passed: bool,
}

/// The run's settings, as resolved from flags and defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// QoS of publishes and subscriptions.
    pub qos: u8,
    /// Payload size in bytes.
    pub payload_bytes: usize,
    /// Publishing clients.
    pub publishers: usize,
    /// Subscribing clients (or idle clients in `connections`).
    pub subscribers: usize,
    /// Messages per publisher, when the run was bounded by count.
    pub count: Option<u64>,
    /// Seconds of publishing (or of holding, in `connections`).
    pub duration_s: Option<f64>,
    /// Target rate: messages per second over all publishers (connections
    /// per second in `connections`); none means as fast as possible.
    pub rate: Option<f64>,
    /// End-to-end window per publisher (0: none).
    pub window: u64,
    /// QoS 1/2 in-flight messages per publisher.
    pub inflight: u16,
    /// Keep-alive in seconds.
    pub keep_alive: u16,
    /// The topic pattern.
    pub topic: String,
}

/// Sent and delivered rates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    /// Written by publishers, over the publishing time.
    pub sent: Rate,
    /// Distinct messages received by subscribers, from the start to the last
    /// delivery.
    pub delivered: Rate,
}

/// A count over a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rate {
    /// Messages.
    pub messages: u64,
    /// Seconds they took.
    pub seconds: f64,
    /// Messages per second.
    pub msgs_per_sec: f64,
    /// Payload megabytes (10^6 bytes) per second.
    pub mb_per_sec: f64,
}

impl Rate {
    /// `messages` of `payload` bytes over `seconds`.
    pub fn new(messages: u64, seconds: f64, payload: usize) -> Self {
        let per_sec = if seconds > 0.0 {
            messages as f64 / seconds
        } else {
            0.0
        };
        Self {
            messages,
            seconds,
            msgs_per_sec: per_sec,
            mb_per_sec: per_sec * payload as f64 / 1e6,
        }
    }
}

/// Percentiles of a histogram recorded in nanoseconds, reported in
/// microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many values were recorded.
    pub samples: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest value.
    pub max_us: f64,
}

impl Percentiles {
    /// The percentiles of `h`, or `None` if it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Self {
            samples: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        })
    }
}

/// Delivery accounting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Over all publishers and subscribers.
    pub totals: DeliveryCounts,
    /// Messages that were not from this run's publishers.
    pub foreign: u64,
    /// QoS 1/2 messages whose acknowledgement never completed.
    pub unacknowledged: u64,
    /// Per publisher, summed over its subscribers.
    pub per_publisher: Vec<PublisherDelivery>,
    /// How evenly the deliveries were shared among the publishers (with
    /// more than one publisher and anything delivered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<Shares>,
}

/// Each publisher's part of everything delivered, against an equal part.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Shares {
    /// The equal part: 1 / publishers.
    pub fair: f64,
    /// The smallest publisher's part of the deliveries.
    pub min: f64,
    /// The largest publisher's part of the deliveries.
    pub max: f64,
}

impl Shares {
    /// The shares of `per_publisher`'s deliveries, or `None` with fewer
    /// than two publishers or nothing delivered.
    pub fn of(per_publisher: &[PublisherDelivery]) -> Option<Self> {
        let total: u64 = per_publisher.iter().map(|p| p.counts.delivered).sum();
        if per_publisher.len() < 2 || total == 0 {
            return None;
        }
        let part = |p: &PublisherDelivery| p.counts.delivered as f64 / total as f64;
        let parts = per_publisher.iter().map(part);
        Some(Self {
            fair: 1.0 / per_publisher.len() as f64,
            min: parts.clone().fold(f64::INFINITY, f64::min),
            max: parts.fold(0.0, f64::max),
        })
    }
}

/// One publisher's messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublisherDelivery {
    /// The publisher's index.
    pub publisher: u32,
    /// Messages it wrote.
    pub sent: u64,
    /// What became of them at its subscribers.
    pub counts: DeliveryCounts,
}

/// Connection figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Connections {
    /// Connections tried.
    pub attempted: u64,
    /// Accepted with CONNACK 0.
    pub established: u64,
    /// Failed, for whatever reason.
    pub failed: u64,
    /// Seconds from the first attempt to the last answer.
    pub seconds: f64,
    /// Established connections per second over that time.
    pub per_sec: f64,
    /// Time from TCP connect to CONNACK.
    pub latency: Option<Percentiles>,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// Connections the broker closed while they were held (`connections`).
    pub closed_during_hold: u64,
}

/// The broker's resident memory, from /proc.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Memory {
    /// The broker's process id.
    pub broker_pid: u32,
    /// Resident set before the run opened its connections, in KiB.
    pub rss_before_kb: u64,
    /// Resident set at the end, with the connections still open, in KiB.
    pub rss_after_kb: u64,
    /// Growth per established connection, in bytes.
    pub per_connection_bytes: Option<f64>,
}

fn count(n: f64) -> String {
    if n >= 10_000_000.0 {
        format!("{:.1}M", n / 1e6)
    } else if n >= 10_000.0 {
        format!("{:.1}k", n / 1e3)
    } else if n >= 100.0 || n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

fn micros(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 100.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

impl Report {
    /// The table printed at the end of a run.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let s_ = &self.settings;
        let who = self.label.as_deref().unwrap_or(&self.broker);
        let tls = if self.tls { " (TLS)" } else { "" };
        if self.scenario == "connections" {
            let _ = writeln!(
                s,
                "connections against {who}{tls}: {} idle clients, keep-alive {} s",
                s_.subscribers, s_.keep_alive
            );
        } else {
            let _ = writeln!(
                s,
                "{} against {who}{tls}: QoS {}, {}-byte payloads, {} publisher(s), {} subscriber(s)",
                self.scenario, s_.qos, s_.payload_bytes, s_.publishers, s_.subscribers
            );
        }
        if let Some(t) = &self.throughput {
            let _ = writeln!(
                s,
                "  {:<11} {:>12} {:>10} {:>10} {:>9}",
                "", "messages", "seconds", "msgs/s", "MB/s"
            );
            for (name, r) in [("sent", &t.sent), ("delivered", &t.delivered)] {
                let _ = writeln!(
                    s,
                    "  {name:<11} {:>12} {:>10.3} {:>10} {:>9.2}",
                    r.messages,
                    r.seconds,
                    count(r.msgs_per_sec),
                    r.mb_per_sec
                );
            }
        }
        if let Some(d) = &self.delivery {
            let t = &d.totals;
            let _ = writeln!(
                s,
                "  delivery    expected {}  delivered {}  lost {}  duplicated {}  out of order {}{}{}",
                t.expected,
                t.delivered,
                t.lost,
                t.duplicated,
                t.out_of_order,
                if d.foreign > 0 {
                    format!("  foreign {}", d.foreign)
                } else {
                    String::new()
                },
                if d.unacknowledged > 0 {
                    format!("  unacknowledged {}", d.unacknowledged)
                } else {
                    String::new()
                },
            );
            if let Some(sh) = &d.shares {
                let _ = writeln!(
                    s,
                    "  shares      min {:.4}  max {:.4}  fair {:.4}  ({:.2}× to {:.2}× fair)",
                    sh.min,
                    sh.max,
                    sh.fair,
                    sh.min / sh.fair,
                    sh.max / sh.fair
                );
            }
            let odd: Vec<_> = d
                .per_publisher
                .iter()
                .filter(|p| p.counts.lost + p.counts.duplicated + p.counts.out_of_order > 0)
                .collect();
            for p in odd.iter().take(10) {
                let _ = writeln!(
                    s,
                    "    publisher {}: sent {}, lost {}, duplicated {}, out of order {}",
                    p.publisher, p.sent, p.counts.lost, p.counts.duplicated, p.counts.out_of_order
                );
            }
            if odd.len() > 10 {
                let _ = writeln!(
                    s,
                    "    ... and {} more publishers (see --json)",
                    odd.len() - 10
                );
            }
        }
        if let Some(l) = &self.latency {
            let _ = writeln!(
                s,
                "  latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
                micros(l.p50_us),
                micros(l.p90_us),
                micros(l.p99_us),
                micros(l.p999_us),
                micros(l.max_us),
                l.samples
            );
        }
        let c = &self.connections;
        let _ = writeln!(
            s,
            "  connections {} of {} opened in {:.3} s ({}/s), {} failed{}",
            c.established,
            c.attempted,
            c.seconds,
            count(c.per_sec),
            c.failed,
            if c.closed_during_hold > 0 {
                format!(", {} closed by the broker while held", c.closed_during_hold)
            } else {
                String::new()
            }
        );
        for (kind, n) in &c.failures {
            let _ = writeln!(s, "    {n} x {kind}");
        }
        if let Some(l) = &c.latency {
            let _ = writeln!(
                s,
                "  connect     p50 {}  p99 {}  max {}",
                micros(l.p50_us),
                micros(l.p99_us),
                micros(l.max_us)
            );
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                s,
                "  broker RSS  {} KiB before, {} KiB after{}",
                m.rss_before_kb,
                m.rss_after_kb,
                m.per_connection_bytes
                    .map(|b| format!(", {:.2} KiB per connection", b / 1024.0))
                    .unwrap_or_default()
            );
        }
        if let Some(k) = &self.kernel {
            let _ = writeln!(
                s,
                "  kernel      TCP sockets {} -> {}, slab {} -> {} KiB, TCP buffers {} -> {} KiB{}",
                k.tcp_sockets_before,
                k.tcp_sockets_after,
                k.slab_before_kb,
                k.slab_after_kb,
                k.tcp_buffers_before_kb,
                k.tcp_buffers_after_kb,
                k.per_connection_bytes
                    .map(|b| format!(
                        ", {:.2} KiB per connection (both ends on loopback)",
                        b / 1024.0
                    ))
                    .unwrap_or_default()
            );
        }
        if self.memory.is_some() && self.broker_cpu.is_none() {
            let _ = writeln!(
                s,
                "  broker CPU  not measured: the broker used under {} s, too little to count in the kernel's 10 ms ticks",
                cpu::min_seconds()
            );
        }
        if let Some(c) = &self.broker_cpu {
            let per = if self.scenario == "connections" {
                "connection"
            } else {
                "delivered message"
            };
            let _ = writeln!(
                s,
                "  broker CPU  {:.2} s over {:.2} s ({:.0} % of a core){}",
                c.cpu_seconds,
                c.wall_seconds,
                c.busy_percent,
                c.us_per_item
                    .map(|us| format!(", {} per {per}", micros(us)))
                    .unwrap_or_default()
            );
        }
        for e in &self.errors {
            let _ = writeln!(s, "  error: {e}");
        }
        for v in &self.violations {
            let _ = writeln!(s, "  FAILED: {v}");
        }
        let _ = writeln!(
            s,
            "  result: {}",
            if self.passed { "passed" } else { "FAILED" }
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(n: &[u64]) -> Vec<PublisherDelivery> {
        n.iter()
            .enumerate()
            .map(|(i, &d)| PublisherDelivery {
                publisher: u32::try_from(i).unwrap_or(u32::MAX),
                sent: d,
                counts: DeliveryCounts {
                    delivered: d,
                    ..DeliveryCounts::default()
                },
            })
            .collect()
    }

    #[test]
    fn shares_compare_each_publisher_with_an_equal_part() {
        let s = Shares::of(&delivered(&[100, 300, 0, 400])).expect("shares");
        assert_eq!((s.fair, s.min, s.max), (0.25, 0.0, 0.5));
        assert!(Shares::of(&delivered(&[5])).is_none(), "one publisher");
        assert!(
            Shares::of(&delivered(&[0, 0])).is_none(),
            "nothing delivered"
        );
    }
}
