//! [`pull`]: messages from the client's outbox into the write buffer, as
//! many as the in-flight window and [`HIGH_WATER`] allow.
//!
//! The router queues messages in the client's outbox; the connection loop
//! calls this when the outbox has messages and output has room. The session
//! reserves a packet id for each QoS 1 or 2 message ([`Session::deliver`]).

use std::cell::RefCell;

use tracing::warn;

use super::buffers::{Conn, HIGH_WATER};
use crate::router::ClientSlot;
use crate::session::Session;
use mqtt_codec::Message;
use mqtt_codec::Packet;

thread_local! {
    /// Messages moved out of an outbox in one [`pull`], reused by every
    /// connection on this thread rather than held by each.
    static BATCH: RefCell<Vec<Message>> = const { RefCell::new(Vec::new()) };
}

/// Messages moved from the outbox per lock.
const PULL_BATCH: usize = 256;

/// Why [`pull`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pulled {
    /// The outbox is empty: wait to be woken.
    Drained,
    /// The in-flight window is full: wait for an acknowledgement.
    WindowFull,
    /// The write buffer is full: write, then pull again.
    BufferFull,
}

/// What one [`pull`] moved, for the store.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Moved {
    /// Messages left the outbox: the queue changed.
    pub(super) any: bool,
    /// QoS 1 or 2 messages went in flight: the in-flight window changed.
    pub(super) in_flight: bool,
    /// QoS 2 messages went in flight: with `--durability batched` their
    /// packet ids must be on disk before the PUBLISH goes out, or a
    /// restart would send them again as new messages.
    pub(super) exactly_once: bool,
}

/// Moves messages from the outbox into the write buffer, within the
/// in-flight window and up to [`HIGH_WATER`] bytes of output.
pub(super) fn pull(
    conn: &mut Conn,
    slot: &ClientSlot,
    session: &mut Session,
    moved: &mut Moved,
) -> Pulled {
    BATCH.with_borrow_mut(|batch| {
        loop {
            if conn.wbuf.len() >= HIGH_WATER {
                return Pulled::BufferFull;
            }
            let (more, dropped) = slot.take(batch, PULL_BATCH, session.window_room());
            if dropped > 0 {
                warn!(
                    dropped,
                    "messages for this client were dropped: its queue was full (--max-queued)"
                );
            }
            let took = batch.len();
            moved.any |= took > 0;
            for message in batch.drain(..) {
                moved.in_flight |= message.qos != mqtt_codec::QoS::AtMostOnce;
                moved.exactly_once |= message.qos == mqtt_codec::QoS::ExactlyOnce;
                if let Some(publish) = session.deliver(message) {
                    conn.put(&Packet::Publish(publish));
                }
            }
            if !more {
                return Pulled::Drained;
            }
            if took < PULL_BATCH {
                return Pulled::WindowFull;
            }
        }
    })
}
