//! `Outbox`: the bounded queue of messages waiting for one client.
//!
//! Publishers push into it under a short lock; the client's connection takes
//! messages out in batches, as many as its in-flight window and write buffer
//! allow. It is bounded twice: in messages (`--max-queued`) and in bytes of
//! topic and payload (`--max-queued-bytes`), so that a few large messages
//! cannot hold what a count allows.
//!
//! What a full bound means depends on who pushes. A client's PUBLISH to a
//! connected subscriber is never dropped: it is queued, and the outbox says
//! it is full (`Pushed::Full`), so that the publisher's connection stops
//! reading its socket (TCP then pushes back on the publishing client) and
//! leaves its waker here
//! ([`ClientSlot::poll_room`](super::ClientSlot::poll_room)). Once the
//! subscriber's connection has taken the queue down to half of its bounds,
//! the paused publishers are woken in the order they paused, one per take,
//! and each refills the queue in its turn; while some wait, any other
//! publisher pushing joins the line too. So they share the room, a turn each,
//! and none is starved by one that happens to be reading. Each paused
//! publisher adds at most the one message that found the outbox full, so the
//! queue holds at most its bound plus one message per publisher. Messages the
//! broker makes itself (wills, `$SYS`), a client's own messages looping back
//! to it (it cannot wait for itself), and messages for a persistent session
//! while its client is away (nobody drains that queue) are dropped and
//! counted instead (`Pushed::Dropped`). While a persistent session's client
//! is away the outbox keeps its QoS 1 and 2 messages (and QoS 0 if
//! configured) for the next connection.
//!
//! The same lock guards how the attached connection is woken: it leaves its
//! waker here when it waits, and a push into the empty outbox, a takeover
//! or the broker's shutdown ([`Kick`]) takes and wakes it. Checking for work
//! and leaving the waker happen under one lock, so no wake-up is lost, and
//! the connection holds no future of its own for this (see
//! [`ClientSlot::poll_event`](super::ClientSlot::poll_event)).

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

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

/// Who publishes, as the outbox tells paused publishers apart: the
/// address of the publisher's client slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PublisherId(pub(crate) usize);

/// What happened to a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued into an empty outbox of an online client: wake its connection.
    Wake,
    /// Queued behind others (the connection is already awake) or offline.
    Queued,
    /// Queued, and now the outbox is at its bound (or past half while
    /// other publishers wait their turn): the publisher pauses until it
    /// drains ([`Outbox::poll_room`]). `wake` as for [`Pushed::Wake`].
    Full {
        /// The connection must be woken (it was an empty outbox).
        wake: bool,
    },
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
    /// The publishers paused on this outbox, once one has paused. Boxed:
    /// most outboxes never see one, and every client has an outbox.
    line: Option<Box<Line>>,
    /// Past half of a bound, as of the last push or take: paused
    /// publishers wait while it is set.
    above_half: bool,
    mode: Mode,
    /// The session is persistent (attached or parked), so the store keeps
    /// what is queued here. Kept here, where every publish looks anyway.
    pub(crate) stored: bool,
    /// A commit the attached connection waits for may be on disk now
    /// (`--durability batched`): tell it once.
    pub(crate) durable: bool,
    /// The attached client is a bridge (its CONNECT's level carried the
    /// bridge bit, or it is one of ours): its own messages do not come back
    /// to it, and RETAIN reaches it as published, as mosquitto does.
    pub(crate) bridge: bool,
    /// Why the attached connection must end, once the router says so.
    kick: Option<Kick>,
}

/// The publishers waiting for room in one outbox, in the order they paused.
/// Kept once made, with its capacity: pausing and waking allocate nothing
/// once warm.
#[derive(Debug, Default)]
struct Line {
    paused: VecDeque<(PublisherId, Waker)>,
    /// The publisher whose turn it is to fill the queue: the last one woken
    /// in turn. While others wait, only it may push without pausing.
    turn: Option<PublisherId>,
    /// Since when the queue has been past half of a bound, while it is.
    since: Option<Instant>,
}

/// Why the router asks a connection to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Another connection connected with the same client id [MQTT-3.1.4-2].
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
    /// The client's queue stayed full past `--slow-client-timeout` while
    /// publishers waited for it.
    SlowClient,
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
            line: None,
            above_half: false,
            mode: Mode::Closed,
            stored: false,
            durable: false,
            bridge: false,
            kick: None,
        }
    }

    /// At or past either bound.
    fn full(&self, limits: Limits) -> bool {
        (limits.max_queued > 0 && self.queue.len() >= limits.max_queued)
            || (limits.max_queued_bytes > 0 && self.bytes >= limits.max_queued_bytes)
    }

    /// Past half of either bound: paused publishers keep waiting.
    fn above_low_water(&self, limits: Limits) -> bool {
        (limits.max_queued > 0 && self.queue.len() > limits.max_queued / 2)
            || (limits.max_queued_bytes > 0 && self.bytes > limits.max_queued_bytes / 2)
    }

    /// For a publisher paused on this outbox: ready once it is this
    /// publisher's turn to fill it again (it was woken, and the outbox is
    /// still at most half full), or no connection drains it any more (the
    /// client went away or was kicked); otherwise leaves `cx`'s waker, at
    /// the back of the line, to be woken then.
    pub(crate) fn poll_room(&mut self, cx: &mut Context<'_>, publisher: PublisherId) -> Poll<()> {
        if self.mode != Mode::Online || self.kick.is_some() {
            return Poll::Ready(());
        }
        let above_half = self.above_half;
        let line = self.line.get_or_insert_with(Box::default);
        if let Some((_, waker)) = line.paused.iter_mut().find(|(id, _)| *id == publisher) {
            // Not its turn yet: others paused before it. The waker is the
            // latest poll's (a new connection of the same slot polls too).
            waker.clone_from(cx.waker());
            return Poll::Pending;
        }
        if !above_half && (line.paused.is_empty() || line.turn == Some(publisher)) {
            return Poll::Ready(());
        }
        if above_half && line.since.is_none() {
            line.since = Some(Instant::now());
        }
        line.paused.push_back((publisher, cx.waker().clone()));
        Poll::Pending
    }

    /// Whether the queue has been past half of a bound for at least `wait`
    /// while publishers waited (as of its last push or take): its client is
    /// not draining it.
    pub(crate) fn above_half_for(&self, wait: Duration) -> bool {
        self.line
            .as_ref()
            .and_then(|l| l.since)
            .is_some_and(|since| since.elapsed() >= wait)
    }

    /// Wakes every paused publisher (the client went away: they go on).
    fn wake_paused(&mut self) {
        if let Some(line) = self.line.as_deref_mut() {
            line.turn = None;
            for (_, w) in line.paused.drain(..) {
                w.wake();
            }
        }
    }

    /// After a take: while the queue is at most half full, wakes the
    /// publisher that paused first, one per take, and makes it the one
    /// whose turn it is, so that they fill the queue in turn (a publisher
    /// woken refills it and pauses again at the back of the line). All woken
    /// at once, the first to run would take all the room every time.
    fn wake_in_turn(&mut self) {
        if self.above_half {
            return;
        }
        if let Some(line) = self.line.as_deref_mut()
            && let Some((id, first)) = line.paused.pop_front()
        {
            line.turn = Some(id);
            first.wake();
        }
    }

    /// The publisher whose turn it was handled all it had without filling
    /// the queue: the next one in line goes (if the queue is at most half
    /// full; otherwise the next take wakes it).
    pub(crate) fn pass_turn(&mut self, publisher: PublisherId) {
        if let Some(line) = self.line.as_deref_mut()
            && line.turn == Some(publisher)
        {
            line.turn = None;
            self.wake_in_turn();
        }
    }

    /// A publisher's connection ended while it waited in line or held the
    /// turn: it leaves the line, and a turn it held goes to the next one,
    /// or nobody would wake the others until the next take.
    pub(crate) fn leave_line(&mut self, publisher: PublisherId) {
        if let Some(line) = self.line.as_deref_mut() {
            line.paused.retain(|(id, _)| *id != publisher);
            if line.turn == Some(publisher) {
                line.turn = None;
                self.wake_in_turn();
            }
        }
    }

    /// Whether publishers wait their turn and it is not `publisher`'s.
    fn contended(&self, publisher: PublisherId) -> bool {
        self.line
            .as_deref()
            .is_some_and(|l| !l.paused.is_empty() && l.turn != Some(publisher))
    }

    /// Records whether the queue is past half of `limits`, and since when
    /// (while publishers wait).
    fn note_level(&mut self, limits: Limits) {
        let above_half = self.above_low_water(limits);
        if above_half != self.above_half {
            self.above_half = above_half;
            if let Some(line) = self.line.as_deref_mut() {
                line.since = above_half.then(Instant::now);
            }
        }
    }

    /// How many publishers wait for this outbox to drain.
    #[cfg(test)]
    pub(crate) fn paused_publishers(&self) -> usize {
        self.line.as_ref().map_or(0, |l| l.paused.len())
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
        // Nobody will drain this queue now: the paused publishers go on.
        self.wake_paused();
        self.waker.take()
    }

    /// Whether the attached connection was told to end.
    pub(crate) fn kicked(&self) -> bool {
        self.kick.is_some()
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

    /// Sets what is accepted. Returns how many waiting messages were
    /// discarded (when the session closes).
    pub(crate) fn set_mode(&mut self, mode: Mode) -> usize {
        self.mode = mode;
        // Only an online client drains the queue: whoever waits on it goes
        // on (and meets the offline rules).
        if mode != Mode::Online {
            self.wake_paused();
        }
        if mode == Mode::Closed {
            let discarded = self.queue.len();
            self.queue = VecDeque::new();
            self.bytes = 0;
            self.above_half = false;
            self.line = None;
            return discarded;
        }
        0
    }

    /// Queues `message` if the mode and bound allow. With `pace` (a
    /// client's PUBLISH, from a connection that can pause: the publisher's
    /// id), a connected
    /// client's outbox at its bound still takes the message and answers
    /// [`Pushed::Full`]; without it, or while the client is away, a message
    /// finding the outbox full is dropped and counted.
    pub(crate) fn push(
        &mut self,
        message: Message,
        limits: Limits,
        pace: Option<PublisherId>,
    ) -> Pushed {
        match self.mode {
            Mode::Closed => return Pushed::Ignored,
            Mode::Offline if message.qos == QoS::AtMostOnce && !limits.queue_qos0 => {
                return Pushed::Ignored;
            }
            Mode::Online | Mode::Offline => {}
        }
        // A client told to end drains nothing more: treated as offline.
        let pace = pace.filter(|_| self.mode == Mode::Online && self.kick.is_none());
        if pace.is_none() && self.full(limits) {
            self.dropped += 1;
            return Pushed::Dropped {
                first: self.dropped == 1,
            };
        }
        let was_empty = self.queue.is_empty();
        self.bytes += message.size();
        self.queue.push_back(message);
        let wake = was_empty && self.mode == Mode::Online;
        self.note_level(limits);
        // Others wait their turn and this is not its turn: it joins the
        // line rather than taking the room they wait for.
        let contended = pace.is_some_and(|id| self.contended(id));
        if pace.is_some() && (contended || self.full(limits)) {
            Pushed::Full { wake }
        } else if wake {
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
    /// Wakes paused publishers in turn once the queue is down to half of
    /// `limits` ([`Outbox::wake_in_turn`]). Returns whether messages remain.
    pub(crate) fn take(
        &mut self,
        batch: &mut Vec<Message>,
        max: usize,
        window: usize,
        bytes: usize,
        limits: Limits,
    ) -> bool {
        let more = self.take_batch(batch, max, window, bytes);
        self.note_level(limits);
        self.wake_in_turn();
        more
    }

    fn take_batch(
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

    /// Publishers: whoever pushes, and the two that pause.
    const P: PublisherId = PublisherId(1);
    const A: PublisherId = PublisherId(2);
    const B: PublisherId = PublisherId(3);

    const LIMITS: Limits = Limits {
        max_queued: 2,
        max_queued_bytes: 0,
        queue_qos0: false,
    };

    #[test]
    fn first_message_wakes_then_bound_drops() {
        let mut o = outbox(Mode::Online);
        assert_eq!(o.push(msg(QoS::AtMostOnce), LIMITS, None), Pushed::Wake);
        assert_eq!(o.push(msg(QoS::AtLeastOnce), LIMITS, None), Pushed::Queued);
        assert_eq!(
            o.push(msg(QoS::AtLeastOnce), LIMITS, None),
            Pushed::Dropped { first: true }
        );
        assert_eq!(o.take_dropped(), 1);
        assert_eq!(o.take_dropped(), 0);
    }

    #[test]
    fn offline_sessions_keep_qos1_and_2_only() {
        let mut o = outbox(Mode::Offline);
        assert_eq!(o.push(msg(QoS::AtMostOnce), LIMITS, None), Pushed::Ignored);
        assert_eq!(o.push(msg(QoS::ExactlyOnce), LIMITS, None), Pushed::Queued);
        let with_qos0 = Limits {
            queue_qos0: true,
            ..LIMITS
        };
        assert_eq!(
            o.push(msg(QoS::AtMostOnce), with_qos0, None),
            Pushed::Queued
        );
        o.set_mode(Mode::Closed);
        assert_eq!(o.len(), 0);
        assert_eq!(o.push(msg(QoS::AtLeastOnce), LIMITS, None), Pushed::Ignored);
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
            o.push(msg(qos), unbounded, None);
        }
        let mut batch = Vec::new();
        assert!(
            o.take(&mut batch, 100, 1, usize::MAX, LIMITS),
            "second QoS 1 waits for the window"
        );
        assert_eq!(batch.len(), 2);
        batch.clear();
        assert!(!o.take(&mut batch, 100, 5, usize::MAX, LIMITS));
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
        assert_eq!(
            o.push(sized(QoS::AtLeastOnce, 99), limits, None),
            Pushed::Wake
        );
        assert_eq!(
            o.push(sized(QoS::AtMostOnce, 99), limits, None),
            Pushed::Queued
        );
        // 200 < 250: one more fits, and may overshoot (as in mosquitto).
        assert_eq!(
            o.push(sized(QoS::ExactlyOnce, 99), limits, None),
            Pushed::Queued
        );
        assert_eq!(o.bytes(), 300);
        assert_eq!(
            o.push(sized(QoS::AtMostOnce, 0), limits, None),
            Pushed::Dropped { first: true }
        );
        assert_eq!(o.len(), 3);
        // Taking frees room, in bytes.
        let mut batch = Vec::new();
        o.take(&mut batch, 1, 10, usize::MAX, LIMITS);
        assert_eq!(o.bytes(), 200);
        assert_eq!(
            o.push(sized(QoS::AtMostOnce, 9), limits, None),
            Pushed::Queued
        );
        assert_eq!(o.bytes(), 210);
        o.take(&mut batch, 100, 10, usize::MAX, LIMITS);
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
            o.push(sized(QoS::AtMostOnce, 99), unbounded, None);
        }
        let mut batch = Vec::new();
        assert!(o.take(&mut batch, 100, 10, 250, LIMITS));
        assert_eq!(batch.len(), 2, "two 100-byte messages fit in 250");
        batch.clear();
        assert!(o.take(&mut batch, 100, 10, 1, LIMITS));
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
            o.push(sized(QoS::AtMostOnce, 0), limits, None),
            Pushed::Dropped { first: true }
        );
        o.set_mode(Mode::Closed);
        assert_eq!(o.bytes(), 0);
    }

    #[test]
    fn a_paced_push_queues_past_the_bound_and_says_full() {
        let mut o = outbox(Mode::Online);
        assert_eq!(o.push(msg(QoS::AtLeastOnce), LIMITS, Some(P)), Pushed::Wake);
        assert_eq!(
            o.push(msg(QoS::AtLeastOnce), LIMITS, Some(P)),
            Pushed::Full { wake: false }
        );
        // Another paused publisher's message: queued too, never dropped.
        assert_eq!(
            o.push(msg(QoS::AtMostOnce), LIMITS, Some(P)),
            Pushed::Full { wake: false }
        );
        assert_eq!((o.len(), o.take_dropped()), (3, 0));
        // Unpaced (the broker's own messages) past the bound: dropped.
        assert_eq!(
            o.push(msg(QoS::AtLeastOnce), LIMITS, None),
            Pushed::Dropped { first: true }
        );
        // Offline, nobody drains: a paced push is dropped as well.
        o.set_mode(Mode::Offline);
        assert_eq!(
            o.push(msg(QoS::AtLeastOnce), LIMITS, Some(P)),
            Pushed::Dropped { first: false }
        );
    }

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn counting_waker() -> (std::sync::Arc<Count>, Waker) {
        let count = std::sync::Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        (std::sync::Arc::clone(&count), Waker::from(count))
    }

    fn wakes(c: &Count) -> usize {
        c.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn paused_publishers_take_turns_once_the_queue_is_down_to_half() {
        let limits = Limits {
            max_queued: 6,
            ..LIMITS
        };
        let mut o = outbox(Mode::Online);
        for _ in 0..5 {
            assert!(!matches!(
                o.push(msg(QoS::AtLeastOnce), limits, Some(A)),
                Pushed::Full { .. }
            ));
        }
        assert_eq!(
            o.push(msg(QoS::AtLeastOnce), limits, Some(A)),
            Pushed::Full { wake: false },
            "6 of 6"
        );
        let (a, wa) = counting_waker();
        let (b, wb) = counting_waker();
        for (w, id) in [(&wa, A), (&wb, B), (&wa, A)] {
            assert!(o.poll_room(&mut Context::from_waker(w), id).is_pending());
        }
        assert_eq!(o.paused_publishers(), 2, "each publisher once");
        let mut batch = Vec::new();
        let mut take = |o: &mut Outbox, n| {
            batch.clear();
            o.take(&mut batch, n, 10, usize::MAX, limits);
        };
        take(&mut o, 1);
        assert_eq!((wakes(&a), wakes(&b)), (0, 0), "5 of 6: both still wait");
        take(&mut o, 2);
        assert_eq!(
            (wakes(&a), wakes(&b)),
            (1, 0),
            "3 of 6: the first one's turn"
        );
        assert!(
            o.poll_room(&mut Context::from_waker(&wb), B).is_pending(),
            "b waits"
        );
        assert!(o.poll_room(&mut Context::from_waker(&wa), A).is_ready());
        // Another publisher, while b waits and it is a's turn: it joins the
        // line, even below half; a pushes on.
        assert_eq!(
            o.push(msg(QoS::AtLeastOnce), limits, Some(P)),
            Pushed::Full { wake: false }
        );
        assert_eq!(
            o.push(msg(QoS::AtLeastOnce), limits, Some(A)),
            Pushed::Queued
        );
        take(&mut o, 2);
        assert_eq!(wakes(&b), 1, "3 of 6: b's turn");
        assert!(
            o.poll_room(&mut Context::from_waker(&wa), A).is_ready(),
            "nobody waits"
        );
        // Past half again: a waits, the queue has been past half since now.
        o.push(msg(QoS::AtLeastOnce), limits, Some(A));
        assert!(o.poll_room(&mut Context::from_waker(&wa), A).is_pending());
        assert!(o.above_half_for(Duration::ZERO));
        assert!(!o.above_half_for(Duration::from_secs(3600)));
        // Drained: the next in line (a) goes; b, then, had all its turn.
        assert!(o.poll_room(&mut Context::from_waker(&wb), B).is_pending());
        take(&mut o, 100);
        assert_eq!((wakes(&a), wakes(&b)), (2, 1));
        assert!(!o.above_half_for(Duration::ZERO));
        // a handled all it had without filling the queue: b's turn.
        o.pass_turn(B);
        assert_eq!(wakes(&b), 1, "not b's turn to pass");
        o.pass_turn(A);
        assert_eq!(wakes(&b), 2);
        assert_eq!(o.paused_publishers(), 0);
    }

    #[test]
    fn paused_publishers_go_on_when_the_client_leaves_or_is_kicked() {
        let mut o = outbox(Mode::Online);
        for _ in 0..2 {
            o.push(msg(QoS::AtLeastOnce), LIMITS, Some(P));
        }
        let (a, wa) = counting_waker();
        assert!(o.poll_room(&mut Context::from_waker(&wa), A).is_pending());
        o.kick(Kick::SlowClient);
        assert_eq!(wakes(&a), 1);
        assert!(o.poll_room(&mut Context::from_waker(&wa), A).is_ready());
        o.attach();
        assert!(o.poll_room(&mut Context::from_waker(&wa), A).is_pending());
        assert_eq!(o.set_mode(Mode::Offline), 0);
        assert_eq!(wakes(&a), 2);
        assert_eq!(o.set_mode(Mode::Closed), 2, "the queue is discarded");
    }

    #[test]
    fn a_publisher_that_ends_leaves_the_line_and_passes_its_turn() {
        let limits = Limits {
            max_queued: 4,
            ..LIMITS
        };
        let mut o = outbox(Mode::Online);
        for _ in 0..4 {
            o.push(msg(QoS::AtLeastOnce), limits, Some(P));
        }
        let (a, wa) = counting_waker();
        let (b, wb) = counting_waker();
        let (b2, wb2) = counting_waker();
        assert!(o.poll_room(&mut Context::from_waker(&wa), A).is_pending());
        assert!(o.poll_room(&mut Context::from_waker(&wb), B).is_pending());
        // B polls again from another task (its client reconnected on the
        // same slot): the newest waker is the one woken.
        assert!(o.poll_room(&mut Context::from_waker(&wb2), B).is_pending());
        assert_eq!(o.paused_publishers(), 2);
        // The whole queue taken at once: one take, a's turn.
        let mut batch = Vec::new();
        o.take(&mut batch, 10, 10, usize::MAX, limits);
        assert_eq!((wakes(&a), wakes(&b), wakes(&b2)), (1, 0, 0));
        // a's connection ends during its turn: b goes, though no take
        // will come (the queue is empty).
        o.leave_line(A);
        assert_eq!((wakes(&b), wakes(&b2)), (0, 1), "b's newest waker");
        assert!(o.poll_room(&mut Context::from_waker(&wb2), B).is_ready());
        // One that ends while waiting in line is simply gone from it.
        for _ in 0..4 {
            o.push(msg(QoS::AtLeastOnce), limits, Some(B));
        }
        assert!(o.poll_room(&mut Context::from_waker(&wa), A).is_pending());
        o.leave_line(A);
        assert_eq!(o.paused_publishers(), 0);
    }
}
