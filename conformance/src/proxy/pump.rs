//! One proxied connection: a reader per direction that frames packets and
//! applies the rules, cut-after and reordering, and a writer per direction
//! that keeps order, waits until each packet is due (delay, jitter, a
//! paused broker side) and writes it shaped (single bytes, a bandwidth cap).
//! The connection ends when either writer ends: its peer closed and
//! everything before was written, a write failed, or a cut came due.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_codec::{Packet, PacketType, decode_slice};
use rand::Rng as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::faults::{Action, CutAfter, Direction, Scope};
use super::{FaultEvent, Io, MAX_FRAMED, Segments, Shared};

/// How long a partly filled reorder window waits for its next packet before
/// it goes out as it stands (so a lone CONNECT is never held for ever).
const REORDER_WAIT: Duration = Duration::from_millis(50);

/// What a reader hands its writer.
#[derive(Debug)]
enum Item {
    /// Bytes to write once `due`.
    Data { bytes: Bytes, due: Instant },
    /// Close the connection once everything before is written.
    Cut,
}

/// One connection's state, shared by its four tasks.
pub(super) struct Conn {
    shared: Arc<Shared>,
    id: u64,
    /// One count per rule, for rules counted per connection.
    counts: Vec<AtomicU64>,
    /// Packets and bytes forwarded, both directions, for `cut_after`.
    packets: AtomicU64,
    bytes: AtomicU64,
    /// Until when the broker side is paused.
    paused_until: Mutex<Option<Instant>>,
}

impl Conn {
    pub(super) fn new(shared: Arc<Shared>, id: u64) -> Arc<Self> {
        let counts = (0..shared.config.faults.rules.len())
            .map(|_| AtomicU64::new(0))
            .collect();
        Arc::new(Self {
            shared,
            id,
            counts,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            paused_until: Mutex::new(None),
        })
    }

    fn log(&self, direction: Option<Direction>, packet: Option<String>, fault: String) {
        let event = FaultEvent {
            at: time::OffsetDateTime::now_utc(),
            connection: self.id,
            direction,
            packet,
            fault,
        };
        (self.shared.config.on_fault)(&event);
    }

    /// Returns once the broker side is not paused, by this connection's
    /// rules or by a global one.
    async fn unpaused(&self) {
        loop {
            let until = [&self.paused_until, &self.shared.paused_until]
                .iter()
                .filter_map(|p| *p.lock().unwrap_or_else(PoisonError::into_inner))
                .max();
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }
}

/// Moves `paused` to `until`, unless it already lasts longer.
fn pause_until(paused: &Mutex<Option<Instant>>, until: Instant) {
    let mut paused = paused.lock().unwrap_or_else(PoisonError::into_inner);
    *paused = Some(paused.map_or(until, |p| p.max(until)));
}

/// Runs the connection between `client` and `broker` until it ends.
pub(super) async fn run(conn: Arc<Conn>, client: Box<dyn Io>, broker: Box<dyn Io>) {
    let shaping = conn.shared.config.faults.describe_shaping();
    if !shaping.is_empty() {
        conn.log(None, None, shaping.join("; "));
    }
    let (client_read, client_write) = tokio::io::split(client);
    let (broker_read, broker_write) = tokio::io::split(broker);
    let (to_broker, to_broker_rx) = mpsc::unbounded_channel();
    let (to_client, to_client_rx) = mpsc::unbounded_channel();
    let readers = [
        tokio::spawn(read(
            Arc::clone(&conn),
            Direction::ToBroker,
            client_read,
            to_broker,
        )),
        tokio::spawn(read(
            Arc::clone(&conn),
            Direction::ToClient,
            broker_read,
            to_client,
        )),
    ];
    let mut up = tokio::spawn(write(
        Arc::clone(&conn),
        Direction::ToBroker,
        broker_write,
        to_broker_rx,
    ));
    let mut down = tokio::spawn(write(conn, Direction::ToClient, client_write, to_client_rx));
    // When either side ends, end both, so a closed client looks closed to
    // the broker and a cut closes both sockets at once.
    tokio::select! {
        _ = &mut up => down.abort(),
        _ = &mut down => up.abort(),
    }
    for r in readers {
        r.abort();
    }
}

/// The length of the packet at the front of `buf` from its Remaining Length
/// alone (type and flags unchecked, so malformed packets are framed too):
/// `None` until complete, `Some(Err(()))` when it cannot be framed (a
/// length longer than four bytes, or over [`MAX_FRAMED`]).
fn frame_len(buf: &[u8]) -> Option<Result<usize, ()>> {
    let mut value = 0usize;
    for i in 0..4 {
        let byte = *buf.get(1 + i)?;
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let len = 2 + i + value;
            if len > MAX_FRAMED {
                return Some(Err(()));
            }
            return (buf.len() >= len).then_some(Ok(len));
        }
    }
    Some(Err(()))
}

/// One packet in one line for the fault log.
fn describe(bytes: &[u8], framed: bool) -> String {
    if !framed {
        return format!("{} raw bytes", bytes.len());
    }
    match decode_slice(bytes) {
        Ok(Some((packet, _))) => crate::describe::packet(&packet),
        _ => {
            let kind = bytes
                .first()
                .and_then(|b| PacketType::from_nibble(b >> 4))
                .map_or("reserved type", PacketType::name);
            format!("{kind} ({} bytes, malformed)", bytes.len())
        }
    }
}

/// What one reader has in hand.
struct Reader {
    conn: Arc<Conn>,
    direction: Direction,
    to: mpsc::UnboundedSender<Item>,
    /// The reorder window: packets held with their extra delay.
    held: Vec<(Bytes, Duration)>,
}

async fn read(
    conn: Arc<Conn>,
    direction: Direction,
    mut from: ReadHalf<Box<dyn Io>>,
    to: mpsc::UnboundedSender<Item>,
) {
    let mut r = Reader {
        conn,
        direction,
        to,
        held: Vec::new(),
    };
    let mut buf = BytesMut::with_capacity(8192);
    let mut raw = false;
    let segments = match direction {
        Direction::ToBroker => r.conn.shared.config.segments,
        Direction::ToClient => Segments::Stream,
    };
    loop {
        if direction == Direction::ToClient {
            // A paused broker side: nothing is read from the broker.
            r.conn.unpaused().await;
        }
        let read = if r.held.is_empty() {
            from.read_buf(&mut buf).await
        } else {
            match tokio::time::timeout(REORDER_WAIT, from.read_buf(&mut buf)).await {
                Ok(read) => read,
                Err(_) => {
                    if !r.flush_reversed() {
                        return;
                    }
                    continue;
                }
            }
        };
        match read {
            Ok(0) | Err(_) => {
                r.flush_reversed();
                return;
            }
            Ok(_) => {}
        }
        loop {
            let (bytes, framed) = if raw {
                if buf.is_empty() {
                    break;
                }
                (buf.split().freeze(), false)
            } else {
                match frame_len(&buf) {
                    None => {
                        if segments == Segments::DropPartial {
                            buf.clear();
                        }
                        break;
                    }
                    Some(Ok(len)) => (buf.split_to(len).freeze(), true),
                    Some(Err(())) => {
                        tracing::warn!(
                            direction = direction.name(),
                            "bytes that cannot be framed; forwarding the rest raw"
                        );
                        raw = true;
                        continue;
                    }
                }
            };
            if !r.forward(bytes, framed) {
                return;
            }
            if segments == Segments::FirstPacketPerRead {
                buf.clear();
                break;
            }
        }
    }
}

impl Reader {
    /// Passes one framed packet (or raw chunk) through the rewrite and the
    /// rules; `false` once the connection is cut.
    fn forward(&mut self, bytes: Bytes, framed: bool) -> bool {
        let rewritten = match &self.conn.shared.config.rewrite {
            None => vec![bytes],
            Some(rewrite) => rewrite(self.direction, bytes.to_vec())
                .into_iter()
                .map(Bytes::from)
                .collect(),
        };
        rewritten.into_iter().all(|b| self.apply_rules(b, framed))
    }

    fn apply_rules(&mut self, bytes: Bytes, framed: bool) -> bool {
        let conn = Arc::clone(&self.conn);
        let packet_type = framed
            .then(|| bytes.first().and_then(|b| PacketType::from_nibble(b >> 4)))
            .flatten();
        let rules = &conn.shared.config.faults.rules;
        // Decoded only when a rule looks at topics.
        let topic = match packet_type {
            Some(PacketType::Publish) if rules.iter().any(|r| r.topic.is_some()) => {
                match decode_slice(&bytes) {
                    Ok(Some((Packet::Publish(p), _))) => Some(p.topic().clone()),
                    _ => None,
                }
            }
            _ => None,
        };
        let (mut copies, mut extra, mut cut) = (1usize, Duration::ZERO, false);
        for (i, rule) in rules.iter().enumerate() {
            if !rule.matches(self.direction, packet_type, topic.as_ref()) {
                continue;
            }
            let counter = match rule.scope {
                Scope::Connection => &conn.counts[i],
                Scope::Global => &conn.shared.global[i],
            };
            let count = counter.fetch_add(1, Ordering::SeqCst) + 1;
            if !rule.occurrence.fires(count) {
                continue;
            }
            conn.log(
                Some(self.direction),
                Some(describe(&bytes, framed)),
                format!("{} (rule {}, match {count})", rule.action, i + 1),
            );
            match rule.action {
                Action::Drop => copies = 0,
                Action::Duplicate if copies > 0 => copies += 1,
                Action::Duplicate => {}
                Action::Cut => cut = true,
                Action::Delay(d) => extra += d,
                Action::PauseBroker(d) => {
                    let until = Instant::now() + d;
                    match rule.scope {
                        Scope::Connection => pause_until(&conn.paused_until, until),
                        Scope::Global => pause_until(&conn.shared.paused_until, until),
                    }
                }
            }
        }
        if cut {
            // Everything queued before goes out; this packet does not.
            let _ = self.flush_reversed();
            let _ = self.to.send(Item::Cut);
            return false;
        }
        for _ in 0..copies {
            if !self.reorder(bytes.clone(), extra) {
                return false;
            }
        }
        true
    }

    /// Holds the packet in the reorder window, or sends it on.
    fn reorder(&mut self, bytes: Bytes, extra: Duration) -> bool {
        match self.conn.shared.config.faults.reorder {
            Some(r) if r.direction.is_none_or(|d| d == self.direction) => {
                self.held.push((bytes, extra));
                self.held.len() < r.window || self.flush_reversed()
            }
            _ => self.send(bytes, extra),
        }
    }

    /// Sends the held packets last first.
    fn flush_reversed(&mut self) -> bool {
        if self.held.is_empty() {
            return true;
        }
        let held = std::mem::take(&mut self.held);
        if held.len() > 1 {
            let names: Vec<String> = held.iter().map(|(b, _)| describe(b, true)).collect();
            self.conn.log(
                Some(self.direction),
                Some(names.join(" | ")),
                format!("reorder {} packets, last first", held.len()),
            );
        }
        held.into_iter().rev().all(|(b, extra)| self.send(b, extra))
    }

    /// Queues the bytes for the writer, applying the connection's cut after
    /// so many packets or bytes; `false` once cut.
    fn send(&mut self, mut bytes: Bytes, extra: Duration) -> bool {
        let conn = &self.conn;
        let faults = &conn.shared.config.faults;
        let mut cut_now = None;
        match faults.cut_after {
            None => {}
            Some(CutAfter::Packets(n)) => {
                let count = conn.packets.fetch_add(1, Ordering::SeqCst) + 1;
                if count > n.get() {
                    return false;
                }
                if count == n.get() {
                    cut_now = Some(format!("cut after {n} packets"));
                }
            }
            Some(CutAfter::Bytes(n)) => {
                let len = bytes.len() as u64;
                let before = conn.bytes.fetch_add(len, Ordering::SeqCst);
                if before >= n.get() {
                    return false;
                }
                if before + len >= n.get() {
                    let keep = usize::try_from(n.get() - before).unwrap_or(bytes.len());
                    bytes.truncate(keep);
                    cut_now = Some(format!("cut after {n} bytes"));
                }
            }
        }
        let jitter = if faults.jitter.is_zero() {
            0i128
        } else {
            let j = faults.jitter.as_nanos() as i128;
            rand::rng().random_range(-j..=j)
        };
        let delay = (faults.delay.as_nanos() as i128 + jitter).max(0);
        let delay = Duration::from_nanos(u64::try_from(delay).unwrap_or(u64::MAX));
        let due = Instant::now() + delay + extra;
        if let Some(fault) = cut_now {
            conn.log(Some(self.direction), Some(describe(&bytes, true)), fault);
            let _ = self.to.send(Item::Data { bytes, due });
            let _ = self.to.send(Item::Cut);
            return false;
        }
        self.to.send(Item::Data { bytes, due }).is_ok()
    }
}

async fn write(
    conn: Arc<Conn>,
    direction: Direction,
    mut to: WriteHalf<Box<dyn Io>>,
    mut from: mpsc::UnboundedReceiver<Item>,
) {
    let faults = &conn.shared.config.faults;
    // Order is kept: nothing goes before the packet queued ahead of it.
    let mut last_due = Instant::now();
    // The bandwidth cap: when the next byte may go.
    let mut next_send = Instant::now();
    while let Some(item) = from.recv().await {
        let (bytes, due) = match item {
            Item::Cut => return,
            Item::Data { bytes, due } => (bytes, due),
        };
        last_due = last_due.max(due);
        tokio::time::sleep_until(last_due).await;
        conn.unpaused().await;
        let chunk = match (faults.split_bytes, faults.throttle) {
            (true, _) => 1,
            // Twenty writes a second at the capped rate.
            (false, Some(rate)) => usize::try_from(rate.get() / 20)
                .unwrap_or(usize::MAX)
                .max(1),
            (false, None) => bytes.len().max(1),
        };
        for piece in bytes.chunks(chunk) {
            if let Some(rate) = faults.throttle {
                next_send = next_send.max(Instant::now());
                tokio::time::sleep_until(next_send).await;
                next_send += Duration::from_secs_f64(piece.len() as f64 / rate.get() as f64);
            }
            if to.write_all(piece).await.is_err() || to.flush().await.is_err() {
                tracing::debug!(direction = direction.name(), "write failed; closing");
                return;
            }
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_by_remaining_length_only() {
        // PUBACK id 7: complete.
        assert_eq!(frame_len(&[0x40, 0x02, 0x00, 0x07]), Some(Ok(4)));
        // Incomplete body, incomplete length.
        assert_eq!(frame_len(&[0x40, 0x02, 0x00]), None);
        assert_eq!(frame_len(&[0x30, 0x80]), None);
        // Reserved type 0 and bad flags are framed all the same.
        assert_eq!(frame_len(&[0x0f, 0x00]), Some(Ok(2)));
        // A fifth length byte cannot be framed.
        assert_eq!(
            frame_len(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Some(Err(()))
        );
        // 127 MiB declared: over the cap.
        assert_eq!(frame_len(&[0x30, 0xff, 0xff, 0xff, 0x3f]), Some(Err(())));
    }

    #[test]
    fn describes_packets_malformed_ones_and_raw_bytes() {
        assert_eq!(describe(&[0x40, 0x02, 0x00, 0x07], true), "PUBACK(id=7)");
        assert_eq!(
            describe(&[0x41, 0x02, 0x00, 0x07], true),
            "PUBACK (4 bytes, malformed)"
        );
        assert_eq!(describe(&[1, 2, 3], false), "3 raw bytes");
    }
}
