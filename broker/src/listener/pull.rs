//! [`pull`]: messages from the client's outbox into the write buffer, as
//! many as the in-flight window and [`HIGH_WATER`] allow.
//!
//! The router queues messages in the client's outbox; the connection loop
//! calls this when the outbox has messages and output has room. The session
//! reserves a packet id for each QoS 1 or 2 message ([`Session::deliver`]).
//! Retained messages a SUBSCRIBE still owes are fed into the outbox here,
//! a chunk at a time, as it drains ([`Router::feed_retained`]).

use std::cell::RefCell;

use tracing::warn;

use super::buffers::{Conn, HIGH_WATER};
use crate::router::{ClientSlot, Router};
use crate::session::{Seq, Session};
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
    /// A chunk of the retained walk matched nothing: let other tasks run,
    /// then pull again.
    Paused,
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
/// in-flight window and up to [`HIGH_WATER`] bytes of output, feeding the
/// outbox from the retained messages still owed.
pub(super) fn pull(
    conn: &mut Conn,
    slot: &ClientSlot,
    session: &mut Session,
    router: &Router,
    moved: &mut Moved,
) -> Pulled {
    BATCH.with_borrow_mut(|batch| {
        loop {
            if conn.wbuf.len() >= HIGH_WATER {
                return Pulled::BufferFull;
            }
            let owed = router.feed_retained(slot);
            // No more than the buffer has room for: what a slow client
            // cannot take stays in the outbox, bounded there.
            let room = HIGH_WATER - conn.wbuf.len();
            let crate::router::Taken {
                more,
                dropped,
                first,
            } = slot.take_within(batch, PULL_BATCH, session.window_room(), room, router.limits());
            if dropped > 0 {
                warn!(
                    dropped,
                    "messages for this client were dropped: its queue was full (--max-queued, --max-queued-bytes)"
                );
            }
            let took = batch.len();
            moved.any |= took > 0;
            for (message, seq) in batch.drain(..).zip(first.0..) {
                moved.in_flight |= message.qos != mqtt_codec::QoS::AtMostOnce;
                moved.exactly_once |= message.qos == mqtt_codec::QoS::ExactlyOnce;
                if let Some(publish) = session.deliver(message, Seq(seq)) {
                    conn.put(&Packet::Publish(publish));
                }
            }
            if !more && !owed {
                return Pulled::Drained;
            }
            // A short batch stopped at the window or at the byte room; the
            // latter comes back to the check above.
            if more && took < PULL_BATCH && session.window_room() == 0 {
                return Pulled::WindowFull;
            }
            if took == 0 {
                return Pulled::Paused;
            }
        }
    })
}
