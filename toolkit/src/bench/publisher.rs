//! A publishing client: writes stamped PUBLISH packets in batches, as fast as
//! the limits allow (message count or deadline, target rate, the end-to-end
//! window, the QoS 1/2 in-flight window), and handles the broker's acks on a
//! second task.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mqtt_codec::{Packet, PacketId, QoS};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use super::payload::Header;
use super::shared::{PublisherFlow, RunShared};
use super::wire::{Connection, PacketReader, PublishTemplate, append_ack};

/// The most bytes of messages put into one write.
const BATCH_BYTES: usize = 64 * 1024;

/// What one publisher is to do.
#[derive(Debug, Clone)]
pub struct PublisherPlan {
    /// Index among the run's publishers (stamped in every payload).
    pub index: u32,
    /// The message, ready to stamp.
    pub template: PublishTemplate,
    /// QoS of every message.
    pub qos: QoS,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Messages per second for this publisher; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Pace each message to its due time rather than in millisecond bursts.
    pub precise: bool,
    /// End-to-end window (0: none).
    pub window: u64,
    /// QoS 1/2 messages awaiting their ack at most.
    pub inflight: u16,
    /// How long without any progress before giving up.
    pub stall_timeout: Duration,
    /// Keep-alive in seconds, to send PINGREQ when idle.
    pub keep_alive: u16,
}

/// What a publisher did.
#[derive(Debug, Clone, Default)]
pub struct PublisherOutcome {
    /// Index among the run's publishers.
    pub index: u32,
    /// Messages written.
    pub sent: u64,
    /// Nanoseconds since the epoch when the last message was written.
    pub finished_ns: u64,
    /// QoS 1/2 messages the broker never finished acknowledging.
    pub unacknowledged: u64,
}

/// Packet ids in flight and the PUBRELs owed, shared by the writer and the
/// ack reader.
#[derive(Debug)]
struct Inflight {
    /// Waiting for PUBACK (QoS 1) or PUBREC (QoS 2), bit per packet id.
    published: Vec<u64>,
    /// Waiting for PUBCOMP (QoS 2).
    released: Vec<u64>,
    count: usize,
    pubrel_owed: Vec<PacketId>,
    /// The broker did something a client cannot accept.
    fault: Option<String>,
    /// Acks processed; the writer uses it to tell a stall from slow progress.
    acks: u64,
}

impl Inflight {
    fn new() -> Self {
        Self {
            published: vec![0; 1024],
            released: vec![0; 1024],
            count: 0,
            pubrel_owed: Vec::new(),
            fault: None,
            acks: 0,
        }
    }

    fn bit(id: PacketId) -> (usize, u64) {
        let i = usize::from(id.get());
        (i / 64, 1 << (i % 64))
    }

    fn is_free(&self, id: PacketId) -> bool {
        let (w, b) = Self::bit(id);
        (self.published[w] | self.released[w]) & b == 0
    }

    fn send(&mut self, id: PacketId) {
        let (w, b) = Self::bit(id);
        self.published[w] |= b;
        self.count += 1;
    }

    fn on_ack(&mut self, packet: &Packet, qos: QoS) {
        self.acks += 1;
        match (packet, qos) {
            (Packet::PubAck(id), QoS::AtLeastOnce) => {
                let (w, b) = Self::bit(*id);
                if self.published[w] & b == 0 {
                    self.fault(format!("PUBACK for packet id {id}, which is not in flight"));
                    return;
                }
                self.published[w] &= !b;
                self.count -= 1;
            }
            (Packet::PubRec(id), QoS::ExactlyOnce) => {
                let (w, b) = Self::bit(*id);
                if self.published[w] & b != 0 {
                    self.published[w] &= !b;
                    self.released[w] |= b;
                } else if self.released[w] & b == 0 {
                    self.fault(format!("PUBREC for packet id {id}, which is not in flight"));
                    return;
                }
                // A repeated PUBREC gets the PUBREL again [MQTT-4.3.3-1].
                self.pubrel_owed.push(*id);
            }
            (Packet::PubComp(id), QoS::ExactlyOnce) => {
                let (w, b) = Self::bit(*id);
                if self.released[w] & b == 0 {
                    self.fault(format!(
                        "PUBCOMP for packet id {id}, which was not released"
                    ));
                    return;
                }
                self.released[w] &= !b;
                self.count -= 1;
            }
            (Packet::PingResp, _) => {}
            (other, _) => self.fault(format!(
                "unexpected {} sent to a QoS {qos} publisher",
                other.packet_type()
            )),
        }
    }

    fn fault(&mut self, message: String) {
        if self.fault.is_none() {
            self.fault = Some(message);
        }
    }
}

/// Reads the broker's acks until the connection ends.
fn spawn_ack_reader(
    mut reader: PacketReader,
    qos: QoS,
    inflight: Arc<Mutex<Inflight>>,
    flow: Arc<PublisherFlow>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let read = reader.fill().await;
            let mut state = match inflight.lock() {
                Ok(s) => s,
                Err(_) => return,
            };
            match read {
                Ok(0) => {
                    state.fault("broker closed the connection".into());
                    break;
                }
                Err(e) => {
                    state.fault(format!("reading from the broker: {e}"));
                    break;
                }
                Ok(_) => {}
            }
            loop {
                match reader.next_packet() {
                    Ok(Some(p)) => state.on_ack(&p, qos),
                    Ok(None) => break,
                    Err(e) => {
                        state.fault(format!("broker sent a malformed packet: {e}"));
                        break;
                    }
                }
            }
            let stop = state.fault.is_some();
            drop(state);
            flow.wake.notify_one();
            if stop {
                break;
            }
        }
        flow.wake.notify_one();
    })
}

/// Runs one publisher on an open connection until its count or deadline,
/// then waits for its last acks and disconnects.
pub async fn run(
    plan: PublisherPlan,
    conn: Connection,
    flow: Arc<PublisherFlow>,
    shared: Arc<RunShared>,
    start: Instant,
) -> PublisherOutcome {
    let Connection { reader, mut writer } = conn;
    let inflight = Arc::new(Mutex::new(Inflight::new()));
    let ack_reader = spawn_ack_reader(reader, plan.qos, Arc::clone(&inflight), Arc::clone(&flow));

    let per_batch = (BATCH_BYTES / plan.template.len()).max(1) as u64;
    let deadline = plan.duration.map(|d| start + d);
    let keep_alive = Duration::from_secs(u64::from(plan.keep_alive)) / 2;
    let mut out: Vec<u8> = Vec::with_capacity(BATCH_BYTES + plan.template.len());
    let mut seq: u64 = 0;
    let mut next_id = PacketId::new(1).expect("1 is a valid packet id");
    let mut last_write = Instant::now();
    let mut last_progress = (Instant::now(), 0u64, 0u64);
    let mut outcome = PublisherOutcome {
        index: plan.index,
        ..PublisherOutcome::default()
    };

    loop {
        let now = Instant::now();
        let publishing = plan.count.is_none_or(|c| seq < c) && deadline.is_none_or(|d| now < d);

        // Work out how many messages may go now.
        let mut allowed = if publishing { per_batch } else { 0 };
        if let Some(c) = plan.count {
            allowed = allowed.min(c - seq.min(c));
        }
        let mut rate_wait = None;
        if let (Some(rate), true) = (plan.rate, allowed > 0) {
            let due = (now.duration_since(start).as_secs_f64() * rate).floor() as u64 + 1;
            let tokens = due.saturating_sub(seq);
            if tokens == 0 {
                let next_at = start + Duration::from_secs_f64((seq as f64) / rate);
                rate_wait = Some(next_at);
            }
            allowed = allowed.min(tokens);
        }
        let slowest = if plan.window > 0 { flow.slowest() } else { 0 };
        if plan.window > 0 {
            let room = (slowest + plan.window).saturating_sub(seq);
            // Wait for a quarter of the window (or a full batch) to free up
            // rather than trickling out a few messages per delivery: each
            // write is a system call on both sides, and the broker's work per
            // message should dominate, not ours.
            let worth_it = (plan.window / 4).clamp(1, per_batch);
            let last_ones = plan.count.is_some_and(|c| c - seq.min(c) <= room);
            allowed = if room >= worth_it || last_ones {
                allowed.min(room)
            } else {
                0
            };
        }
        let (mut pubrels, fault, in_flight, acks) = {
            let Ok(mut state) = inflight.lock() else {
                break;
            };
            if plan.qos != QoS::AtMostOnce {
                allowed = allowed.min(u64::from(plan.inflight).saturating_sub(state.count as u64));
            }
            (
                std::mem::take(&mut state.pubrel_owed),
                state.fault.take(),
                state.count,
                state.acks,
            )
        };
        if let Some(f) = fault {
            shared.error(format!("publisher {}: {f}", plan.index));
            break;
        }
        if !publishing && in_flight == 0 {
            break;
        }

        // Stamp the batch.
        out.clear();
        for id in pubrels.drain(..) {
            append_ack(&mut out, &Packet::PubRel(id));
        }
        let mut batch = 0u64;
        if allowed > 0 {
            let sent_at_ns = shared.now_ns();
            let state = inflight.lock();
            let Ok(mut state) = state else { break };
            while batch < allowed {
                let id = if plan.qos == QoS::AtMostOnce {
                    None
                } else {
                    if !state.is_free(next_id) {
                        break;
                    }
                    state.send(next_id);
                    let id = next_id;
                    next_id = next_id.next();
                    Some(id)
                };
                let header = Header {
                    run_id: shared.run_id,
                    publisher: plan.index,
                    seq: seq + batch,
                    sent_at_ns,
                };
                plan.template.append(&mut out, id, &header);
                batch += 1;
            }
        }
        if !out.is_empty() {
            if let Err(e) = writer.write_all(&out).await {
                shared.error(format!(
                    "publisher {}: writing to the broker: {e}",
                    plan.index
                ));
                break;
            }
            last_write = Instant::now();
            if batch > 0 {
                seq += batch;
                outcome.finished_ns = shared.now_ns();
                shared
                    .sent
                    .fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
            }
            continue;
        }

        // Nothing could go: wait for whatever holds us back.
        let progress_mark = (slowest, acks);
        if (last_progress.1, last_progress.2) != progress_mark {
            last_progress = (Instant::now(), progress_mark.0, progress_mark.1);
        }
        if let Some(at) = rate_wait {
            pace_until(at, plan.precise).await;
        } else {
            if last_progress.0.elapsed() >= plan.stall_timeout {
                let what = if in_flight > 0 && plan.qos != QoS::AtMostOnce {
                    format!("{in_flight} messages unacknowledged by the broker")
                } else {
                    "its subscribers received nothing more".to_string()
                };
                shared.error(format!(
                    "publisher {}: stalled for {}: {what}",
                    plan.index,
                    humantime::format_duration(plan.stall_timeout)
                ));
                break;
            }
            let mut until = last_progress.0 + plan.stall_timeout;
            if let Some(d) = deadline.filter(|_| publishing) {
                until = until.min(d);
            }
            if !keep_alive.is_zero() {
                until = until.min(last_write + keep_alive);
            }
            flow.set_waiting(true);
            // Check again now that subscribers will wake us.
            let moved = plan.window > 0
                && flow.slowest() >= slowest + (plan.window / 4).clamp(1, per_batch);
            if !moved {
                let _ = tokio::time::timeout_at(until.into(), flow.wake.notified()).await;
            }
            flow.set_waiting(false);
        }
        if !keep_alive.is_zero() && last_write.elapsed() >= keep_alive {
            out.clear();
            append_ack(&mut out, &Packet::PingReq);
            if writer.write_all(&out).await.is_err() {
                shared.error(format!("publisher {}: writing PINGREQ failed", plan.index));
                break;
            }
            last_write = Instant::now();
        }
    }

    outcome.sent = seq;
    outcome.unacknowledged = inflight.lock().map(|s| s.count as u64).unwrap_or(0);
    out.clear();
    append_ack(&mut out, &Packet::Disconnect);
    let _ = writer.write_all(&out).await;
    let _ = writer.shutdown().await;
    ack_reader.abort();
    outcome
}

/// Waits until `at`. Tokio's timer has millisecond granularity, so for
/// precise pacing the last stretch is spent yielding to other tasks (the
/// subscribers) rather than sleeping.
async fn pace_until(at: Instant, precise: bool) {
    let now = Instant::now();
    if at <= now {
        return;
    }
    if !precise {
        tokio::time::sleep_until(at.into()).await;
        return;
    }
    let margin = Duration::from_micros(1500);
    if at - now > margin {
        tokio::time::sleep_until((at - margin).into()).await;
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}
