//! A subscribing client: reads deliveries in bulk, checks each message's
//! header against the publishers it expects, records latency, acknowledges
//! QoS 1 and 2 deliveries, and reports how far it has got to the publishers'
//! flow control.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mqtt_codec::{Packet, PacketId, QoS};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::payload::Header;
use super::sequence::{Arrival, SequenceTracker};
use super::shared::{PublisherFlow, RunShared, stopped};
use super::wire::{Connection, append_ack};

/// Latencies are recorded in nanoseconds, up to an hour, to 3 significant
/// digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("fixed, valid histogram bounds")
}

/// One publisher this subscriber expects, and where to report its progress.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// The publisher's index.
    pub publisher: u32,
    /// Its flow-control state.
    pub flow: Arc<PublisherFlow>,
    /// This subscriber's slot in that state.
    pub slot: usize,
}

/// What a subscriber saw.
#[derive(Debug)]
pub struct SubscriberOutcome {
    /// Per expected publisher (in the order given), what arrived.
    pub trackers: Vec<(u32, SequenceTracker)>,
    /// End-to-end latency of each first delivery, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Messages without this run's header, or from publishers not expected
    /// here.
    pub foreign: u64,
    /// Nanoseconds since the epoch of the last delivery.
    pub last_delivery_ns: u64,
}

/// Runs a subscriber on an open, subscribed connection until `stop` turns
/// true.
pub async fn run(
    index: usize,
    conn: Connection,
    expects: Vec<Expectation>,
    shared: Arc<RunShared>,
    keep_alive: u16,
    mut stop: watch::Receiver<bool>,
) -> SubscriberOutcome {
    let Connection {
        mut reader,
        mut writer,
    } = conn;
    // Publisher index to slot in `expects`, as a dense table: the hot path
    // does one bounds-checked load per message.
    let max_pub = expects.iter().map(|e| e.publisher).max().unwrap_or(0) as usize;
    let mut slot_of = vec![u32::MAX; max_pub + 1];
    for (i, e) in expects.iter().enumerate() {
        slot_of[e.publisher as usize] = i as u32;
    }
    let mut trackers: Vec<SequenceTracker> = vec![SequenceTracker::default(); expects.len()];
    let mut touched = vec![false; expects.len()];
    let mut touched_list: Vec<usize> = Vec::new();
    let mut outcome = SubscriberOutcome {
        trackers: Vec::new(),
        latency: new_histogram(),
        foreign: 0,
        last_delivery_ns: 0,
    };
    // QoS 2 packet ids delivered and awaiting PUBREL [MQTT-4.3.3-2].
    let mut awaiting_release: HashSet<PacketId> = HashSet::new();
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let ping_every = Duration::from_secs(u64::from(keep_alive)) / 2;
    let mut last_write = Instant::now();
    let run_id = shared.run_id;

    'run: loop {
        let read = tokio::select! {
            r = reader.fill() => r,
            _ = stopped(&mut stop) => break 'run,
            _ = tokio::time::sleep_until((last_write + ping_every).into()), if !ping_every.is_zero() => {
                out.clear();
                append_ack(&mut out, &Packet::PingReq);
                if let Err(e) = writer.write_all(&out).await {
                    shared.error(format!("subscriber {index}: writing PINGREQ: {e}"));
                    break 'run;
                }
                last_write = Instant::now();
                continue;
            }
        };
        match read {
            Ok(0) => {
                shared.error(format!("subscriber {index}: broker closed the connection"));
                break;
            }
            Err(e) => {
                shared.error(format!("subscriber {index}: reading from the broker: {e}"));
                break;
            }
            Ok(_) => {}
        }
        let now_ns = shared.now_ns();
        let mut delivered = 0u64;
        out.clear();
        loop {
            let packet = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    shared.error(format!(
                        "subscriber {index}: broker sent a malformed packet: {e}"
                    ));
                    break 'run;
                }
            };
            let publish = match packet {
                Packet::Publish(p) => p,
                Packet::PubRel(id) => {
                    awaiting_release.remove(&id);
                    append_ack(&mut out, &Packet::PubComp(id));
                    continue;
                }
                Packet::PingResp => continue,
                other => {
                    shared.error(format!(
                        "subscriber {index}: unexpected {} from the broker",
                        other.packet_type()
                    ));
                    break 'run;
                }
            };
            // Acknowledge first; whether we count it is our business.
            let first_time = match (publish.qos(), publish.packet_id()) {
                (QoS::AtMostOnce, _) => true,
                (QoS::AtLeastOnce, Some(id)) => {
                    append_ack(&mut out, &Packet::PubAck(id));
                    true
                }
                (QoS::ExactlyOnce, Some(id)) => {
                    append_ack(&mut out, &Packet::PubRec(id));
                    // The same packet id before its PUBREL is a resend of a
                    // message already delivered [MQTT-4.3.3-2].
                    awaiting_release.insert(id)
                }
                // The codec never yields QoS 1/2 without an id.
                _ => true,
            };
            if !first_time {
                continue;
            }
            let Some(h) = Header::read(publish.payload()).filter(|h| h.run_id == run_id) else {
                outcome.foreign += 1;
                continue;
            };
            let slot = match slot_of.get(h.publisher as usize) {
                Some(&s) if s != u32::MAX => s as usize,
                _ => {
                    outcome.foreign += 1;
                    continue;
                }
            };
            match trackers[slot].record(h.seq) {
                Arrival::New => {
                    delivered += 1;
                    outcome
                        .latency
                        .saturating_record(now_ns.saturating_sub(h.sent_at_ns).max(1));
                    if !touched[slot] {
                        touched[slot] = true;
                        touched_list.push(slot);
                    }
                }
                Arrival::Duplicate => {}
                Arrival::OutOfRange => outcome.foreign += 1,
            }
        }
        if delivered > 0 {
            outcome.last_delivery_ns = now_ns;
            shared.delivered.fetch_add(delivered, Ordering::Relaxed);
        }
        for slot in touched_list.drain(..) {
            touched[slot] = false;
            let e = &expects[slot];
            e.flow.advance(e.slot, trackers[slot].progress());
        }
        if !out.is_empty() {
            if let Err(e) = writer.write_all(&out).await {
                shared.error(format!("subscriber {index}: writing acks: {e}"));
                break;
            }
            last_write = Instant::now();
        }
    }

    out.clear();
    append_ack(&mut out, &Packet::Disconnect);
    let _ = writer.write_all(&out).await;
    let _ = writer.shutdown().await;
    outcome.trackers = expects.iter().map(|e| e.publisher).zip(trackers).collect();
    outcome
}
