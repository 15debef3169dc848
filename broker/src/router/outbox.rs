//! `Outbox`: the bounded queue of messages waiting for one client.
//!
//! Publishers push into it under a short lock; the client's connection takes
//! messages out in batches, as many as its in-flight window and write buffer
//! allow. The bound is the point: a client that stops reading fills its own
//! outbox, further messages for it are dropped and counted, and nobody else
//! waits [MQTT-4.4 non-normative]. It is bounded twice: in messages
//! (`--max-queued`) and in bytes of topic and payload (`--max-queued-bytes`),
//! so that a few large messages cannot hold what a count allows. While a
//! persistent session's client is away the outbox keeps its QoS 1 and 2
//! messages (and QoS 0 if configured) for the next connection.
//!
//! The same lock guards how the attached connection is woken: it leaves its
//! waker here when it waits, and a push into the empty outbox, a takeover
//! or the broker's shutdown ([`Kick`]) takes and wakes it. Checking for work
//! and leaving the waker happen under one lock, so no wake-up is lost, and
//! the connection holds no future of its own for this (see
//! [`ClientSlot::poll_event`](super::ClientSlot::poll_event)).

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use mqtt_codec::Message;
use mqtt_codec::QoS;

/// Whether messages are accepted, and which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A connection is attached: every message is queued.
    Online,
    /// A persistent session without a connection: QoS 1 and 2 are queued,
    /// QoS 0 only when configured.
    Offline,
    /// The session is gone: nothing is queued.
    Closed,
}

/// What happened to a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued into an empty outbox of an online client: wake its connection.
    Wake,
    /// Queued behind others (the connection is already awake) or offline.
    Queued,
    /// The outbox is full: dropped and counted. `first` when it is the
    /// first drop since the connection last took messages (worth a log line).
    Dropped {
        /// First of a run of drops.
        first: bool,
    },
    /// Not for this session in its current mode (QoS 0 while offline, or
    /// the session is closing).
    Ignored,
}

/// The queue itself; the caller holds its lock.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: VecDeque<Message>,
    /// The [`Message::size`] of everything in `queue`.
    bytes: usize,
    /// Messages dropped since the last time the connection reported it.
    dropped: u64,
    /// The attached connection's waker while it waits.
    waker: Option<Waker>,
    mode: Mode,
    /// The session is persistent (attached or parked), so the store keeps
    /// what is queued here. Kept here, where every publish looks anyway.
    pub(crate) stored: bool,
    /// A commit the attached connection waits for may be on disk now
    /// (`--durability batched`): tell it once.
    pub(crate) durable: bool,
    /// Why the attached connection must end, once the router says so.
    kick: Option<Kick>,
}

/// Why the router asks a connection to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Another connection connected with the same client id [MQTT-3.1.4-2].
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
}

/// What an attached connection waiting on its outbox is woken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotEvent {
    /// The router wants the connection to end.
    Kicked(Kick),
    /// Messages wait in the outbox.
    Messages,
    /// A commit the connection's output waited for may be on disk.
    Durable,
}

/// The limits every outbox obeys.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most messages waiting per client; 0 for no limit.
    pub max_queued: usize,
    /// Most bytes (topic and payload, [`Message::size`]) waiting per client;
    /// 0 for no limit. As in mosquitto, a message is queued while the queue
    /// holds less than this, so the queue holds at most this plus one
    /// message.
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for offline persistent sessions.
    pub queue_qos0: bool,
}

impl Outbox {
    pub(crate) fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            bytes: 0,
            dropped: 0,
            waker: None,
            mode: Mode::Closed,
            stored: false,
            durable: false,
            kick: None,
        }
    }

    /// Ready with a kick, or (when `messages` is set) with waiting messages;
    /// otherwise leaves `cx`'s waker to be woken by either.
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>, messages: bool) -> Poll<SlotEvent> {
        if let Some(kick) = self.kick {
            return Poll::Ready(SlotEvent::Kicked(kick));
        }
        if std::mem::take(&mut self.durable) {
            return Poll::Ready(SlotEvent::Durable);
        }
        if messages && !self.queue.is_empty() {
            return Poll::Ready(SlotEvent::Messages);
        }
        match &mut self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Asks the attached connection to end; returns the waker to wake once
    /// the lock is released.
    pub(crate) fn kick(&mut self, kick: Kick) -> Option<Waker> {
        self.kick = Some(kick);
        self.waker.take()
    }

    /// A new connection attaches: forget the previous one's kick and waker.
    pub(crate) fn attach(&mut self) {
        self.kick = None;
        self.waker = None;
    }

    /// The waiting connection's waker, taken to be woken after a push
    /// returned [`Pushed::Wake`] (outside the lock).
    pub(crate) fn take_waker(&mut self) -> Option<Waker> {
        self.waker.take()
    }

    pub(crate) fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        if mode == Mode::Closed {
            self.queue = VecDeque::new();
            self.bytes = 0;
        }
    }

    /// Queues `message` if the mode and bound allow.
    pub(crate) fn push(&mut self, message: Message, limits: Limits) -> Pushed {
        match self.mode {
            Mode::Closed => return Pushed::Ignored,
            Mode::Offline if message.qos == QoS::AtMostOnce && !limits.queue_qos0 => {
                return Pushed::Ignored;
            }
            Mode::Online | Mode::Offline => {}
        }
        let full = (limits.max_queued > 0 && self.queue.len() >= limits.max_queued)
            || (limits.max_queued_bytes > 0 && self.bytes >= limits.max_queued_bytes);
        if full {
            self.dropped += 1;
            return Pushed::Dropped {
                first: self.dropped == 1,
            };
        }
        let was_empty = self.queue.is_empty();
        self.bytes += message.size();
        self.queue.push_back(message);
        if was_empty && self.mode == Mode::Online {
            Pushed::Wake
        } else {
            Pushed::Queued
        }
    }

    /// Queues a message regardless of the bound (retained messages a client
    /// subscribed for, which the router feeds only up to the bound, and
    /// messages restored from the store).
    pub(crate) fn push_unbounded(&mut self, message: Message) {
        self.bytes += message.size();
        self.queue.push_back(message);
    }

    /// Moves waiting messages into `batch`, oldest first: at most `max`
    /// messages, at most `window` of them at QoS 1 or 2, and no more once
    /// they hold `bytes` ([`Message::size`]; the first is always taken).
    /// Returns whether messages remain.
    pub(crate) fn take(
        &mut self,
        batch: &mut Vec<Message>,
        max: usize,
        mut window: usize,
        bytes: usize,
    ) -> bool {
        let mut taken = 0usize;
        while batch.len() < max {
            let Some(front) = self.queue.front() else {
                return false;
            };
            if taken > 0 && taken.saturating_add(front.size()) > bytes {
                return true;
            }
            taken = taken.saturating_add(front.size());
            if front.qos != QoS::AtMostOnce {
                if window == 0 {
                    return true;
                }
                window -= 1;
            }
            if let Some(m) = self.queue.pop_front() {
                self.bytes = self.bytes.saturating_sub(m.size());
                batch.push(m);
            }
        }
        !self.queue.is_empty()
    }

    /// The waiting messages, for the store.
    pub(crate) fn queued(&self) -> impl Iterator<Item = &Message> {
        self.queue.iter()
    }

    /// How many messages wait.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// How many bytes ([`Message::size`]) wait.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Returns and resets the count of dropped messages.
    pub(crate) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use mqtt_codec::topic::TopicName;

    fn msg(qos: QoS) -> Message {
        Message {
            topic: TopicName::new("t").expect("valid"),
            payload: Bytes::from_static(b"p"),
            qos,
            retain: false,
        }
    }

    fn outbox(mode: Mode) -> Outbox {
        let mut o = Outbox::new();
        o.set_mode(mode);
        o
    }

    const LIMITS: Limits = Limits {
        max_queued: 2,
        max_queued_bytes: 0,
        queue_qos0: false,
    };

    #[test]
    fn first_message_wakes_then_bound_drops() {
        let mut o = outbox(Mode::Online);
        assert_eq!(o.push(msg(QoS::AtMostOnce), LIMITS), Pushed::Wake);
        assert_eq!(o.push(msg(QoS::AtLeastOnce), LIMITS), Pushed::Queued);
        assert_eq!(
            o.push(msg(QoS::AtLeastOnce), LIMITS),
            Pushed::Dropped { first: true }
        );
        assert_eq!(o.take_dropped(), 1);
        assert_eq!(o.take_dropped(), 0);
    }

    #[test]
    fn offline_sessions_keep_qos1_and_2_only() {
        let mut o = outbox(Mode::Offline);
        assert_eq!(o.push(msg(QoS::AtMostOnce), LIMITS), Pushed::Ignored);
        assert_eq!(o.push(msg(QoS::ExactlyOnce), LIMITS), Pushed::Queued);
        let with_qos0 = Limits {
            queue_qos0: true,
            ..LIMITS
        };
        assert_eq!(o.push(msg(QoS::AtMostOnce), with_qos0), Pushed::Queued);
        o.set_mode(Mode::Closed);
        assert_eq!(o.len(), 0);
        assert_eq!(o.push(msg(QoS::AtLeastOnce), LIMITS), Pushed::Ignored);
    }

    #[test]
    fn take_stops_at_the_window_but_lets_qos0_through_before_it() {
        let mut o = outbox(Mode::Online);
        let unbounded = Limits {
            max_queued: 0,
            max_queued_bytes: 0,
            queue_qos0: false,
        };
        for qos in [
            QoS::AtMostOnce,
            QoS::AtLeastOnce,
            QoS::AtLeastOnce,
            QoS::AtMostOnce,
        ] {
            o.push(msg(qos), unbounded);
        }
        let mut batch = Vec::new();
        assert!(
            o.take(&mut batch, 100, 1, usize::MAX),
            "second QoS 1 waits for the window"
        );
        assert_eq!(batch.len(), 2);
        batch.clear();
        assert!(!o.take(&mut batch, 100, 5, usize::MAX));
        assert_eq!(batch.len(), 2);
    }

    fn sized(qos: QoS, payload_len: usize) -> Message {
        Message {
            payload: Bytes::from(vec![0; payload_len]),
            ..msg(qos)
        }
    }

    #[test]
    fn byte_bound_drops_once_the_queue_holds_the_limit() {
        let mut o = outbox(Mode::Online);
        // Topic "t" is 1 byte: each message is 100 bytes.
        let limits = Limits {
            max_queued: 0,
            max_queued_bytes: 250,
            queue_qos0: false,
        };
        assert_eq!(o.push(sized(QoS::AtLeastOnce, 99), limits), Pushed::Wake);
        assert_eq!(o.push(sized(QoS::AtMostOnce, 99), limits), Pushed::Queued);
        // 200 < 250: one more fits, and may overshoot (as in mosquitto).
        assert_eq!(o.push(sized(QoS::ExactlyOnce, 99), limits), Pushed::Queued);
        assert_eq!(o.bytes(), 300);
        assert_eq!(
            o.push(sized(QoS::AtMostOnce, 0), limits),
            Pushed::Dropped { first: true }
        );
        assert_eq!(o.len(), 3);
        // Taking frees room, in bytes.
        let mut batch = Vec::new();
        o.take(&mut batch, 1, 10, usize::MAX);
        assert_eq!(o.bytes(), 200);
        assert_eq!(o.push(sized(QoS::AtMostOnce, 9), limits), Pushed::Queued);
        assert_eq!(o.bytes(), 210);
        o.take(&mut batch, 100, 10, usize::MAX);
        assert_eq!((o.len(), o.bytes()), (0, 0));
    }

    #[test]
    fn take_stops_at_the_byte_room_but_always_takes_one() {
        let mut o = outbox(Mode::Online);
        let unbounded = Limits {
            max_queued: 0,
            max_queued_bytes: 0,
            queue_qos0: false,
        };
        for _ in 0..4 {
            o.push(sized(QoS::AtMostOnce, 99), unbounded);
        }
        let mut batch = Vec::new();
        assert!(o.take(&mut batch, 100, 10, 250));
        assert_eq!(batch.len(), 2, "two 100-byte messages fit in 250");
        batch.clear();
        assert!(o.take(&mut batch, 100, 10, 1));
        assert_eq!(batch.len(), 1, "one message even when it does not fit");
        assert_eq!(o.bytes(), 100);
    }

    #[test]
    fn unbounded_pushes_and_closing_keep_the_byte_count_right() {
        let mut o = outbox(Mode::Online);
        o.push_unbounded(sized(QoS::AtLeastOnce, 499));
        assert_eq!(o.bytes(), 500);
        let limits = Limits {
            max_queued: 0,
            max_queued_bytes: 500,
            queue_qos0: false,
        };
        assert_eq!(
            o.push(sized(QoS::AtMostOnce, 0), limits),
            Pushed::Dropped { first: true }
        );
        o.set_mode(Mode::Closed);
        assert_eq!(o.bytes(), 0);
    }
}
