//! [`ClientSlot`]: everything the router keeps for one client id, connected
//! or not.
//!
//! The slot stands on its [`Outbox`]: the queue and the wake-up of the
//! attached connection (a [`Kick`] included) live there, and nothing there
//! looks back here.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::Notify;

use super::outbox::{Kick, Limits, Outbox, PublisherId, SlotEvent};
use super::retained::RetainedCursor;
use crate::session::{Seq, Session};
use mqtt_codec::QoS;
use mqtt_codec::topic::TopicFilter;

/// Who holds the session right now.
#[derive(Debug, Default)]
pub(crate) struct Ownership {
    /// A connection is attached (it holds the [`Session`]).
    pub(crate) attached: bool,
    /// A persistent session waiting for its client. Boxed: most slots
    /// belong to a connected client and hold none.
    pub(crate) parked: Option<Box<Parked>>,
    /// The slot has left the registry; look it up again.
    pub(crate) removed: bool,
    /// The attached connection asked for a persistent session.
    pub(crate) persistent: bool,
    /// The user name the attached (or last) connection gave, verified or
    /// not: the ACL's rules for this client are chosen by it. One field
    /// with [`Self::verified`] rather than two names: a slot is allocated
    /// per connection, and a second name would cost each 16 bytes (see
    /// `tests/idle_memory.rs`).
    pub(crate) username: Option<Box<str>>,
    /// Whether [`Self::username`] was verified (a password file's user, a
    /// certificate's name): then the session belongs to that user, and
    /// another may not take it over
    /// ([`crate::session::connect::may_take_over`]).
    pub(crate) verified: bool,
    /// The slot is one of this broker's own bridges' local sessions, which
    /// the ACL does not apply to (as in mosquitto, whose ACL check lets its
    /// own bridges pass; a client that connects with the bridge bit is
    /// checked like any other).
    pub(crate) acl_exempt: bool,
    /// While a persistent session is attached: its subscriptions, as the
    /// router granted and removed them, so a periodic save can write the
    /// session of a connected client (the [`Session`] itself is with the
    /// connection) and a kill does not lose it. `None` otherwise, and
    /// boxed: most slots belong to clean sessions, and an empty map inline
    /// would cost every connection 48 bytes (issue 15).
    #[expect(
        clippy::box_collection,
        reason = "boxed so that slots without a persistent session hold 8 bytes, not an empty map's 48"
    )]
    pub(crate) subscriptions: Option<Box<HashMap<TopicFilter, QoS>>>,
}

impl Ownership {
    /// The verified user whose session this is (attached or parked), if
    /// any.
    pub(crate) fn user(&self) -> Option<&str> {
        self.username.as_deref().filter(|_| self.verified)
    }

    /// Records who holds the session: the name the client gave and the
    /// verified user (the same name, when someone verified it).
    pub(crate) fn set_names(&mut self, username: Option<&str>, user: Option<&str>) {
        self.username = user.or(username).map(Box::from);
        self.verified = user.is_some();
    }
}

/// A persistent session while its client is away.
#[derive(Debug)]
pub(crate) struct Parked {
    pub(crate) session: Session,
    /// When the client went away (wall-clock time, so it can be stored and
    /// survive a restart); read by the expiry sweep.
    pub(crate) offline_since: std::time::SystemTime,
}

/// The router's record of one client id: its outbox, whether a connection
/// holds it, and the parked session while none does.
#[derive(Debug)]
pub struct ClientSlot {
    client_id: Arc<str>,
    /// The queue, and how the attached connection is woken.
    pub(crate) outbox: Mutex<Outbox>,
    pub(crate) ownership: Mutex<Ownership>,
    /// The retained messages the client's SUBSCRIBEs still owe it, fed into
    /// the outbox as it drains (see [`RetainedCursor`]). Boxed: most slots
    /// owe none.
    pub(crate) retained: Mutex<Option<Box<RetainedCursor>>>,
    /// Signalled when a connection detaches, for a takeover waiting on it.
    pub(crate) detached: Notify,
    /// With `--durability batched`: the commit ticket the attached
    /// connection's output waits for (0: none). Here rather than in the
    /// connection's task: tokio rounds a task up to 128 bytes, and 8 more
    /// there cost 128 per idle connection.
    hold: AtomicU64,
}

/// Locks a mutex, carrying on if a thread panicked while holding it: every
/// critical section here leaves the data consistent at each step.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ClientSlot {
    pub(crate) fn new(client_id: Arc<str>) -> Self {
        Self {
            client_id,
            outbox: Mutex::new(Outbox::new()),
            ownership: Mutex::new(Ownership::default()),
            retained: Mutex::new(None),
            detached: Notify::new(),
            hold: AtomicU64::new(0),
        }
    }

    /// The commit ticket the attached connection's output waits for.
    pub fn hold(&self) -> u64 {
        self.hold.load(Ordering::Relaxed)
    }

    /// Sets the ticket the attached connection's output waits for.
    pub fn set_hold(&self, ticket: u64) {
        self.hold.store(ticket, Ordering::Relaxed);
    }

    /// Whether the session here is persistent, so the store keeps it.
    pub fn stored(&self) -> bool {
        lock(&self.outbox).stored()
    }

    pub(crate) fn set_stored(&self, stored: bool) {
        lock(&self.outbox).set_stored(stored);
    }

    /// Marks the attached client as a bridge (or not): see
    /// [`Router::publish_paced`](super::Router::publish_paced).
    pub fn set_bridge(&self, bridge: bool) {
        lock(&self.outbox).set_bridge(bridge);
    }

    /// Exempts the attached session from the ACL: for this broker's own
    /// bridges only, whose topics the operator configured, as mosquitto's
    /// ACL check lets its own bridges pass. The next attach clears it, so a
    /// client taking the session over is checked again.
    pub fn set_acl_exempt(&self) {
        lock(&self.ownership).acl_exempt = true;
    }

    /// The client id.
    pub fn client_id(&self) -> &Arc<str> {
        &self.client_id
    }

    /// For the attached connection: ready when the router kicks it, or
    /// (with `messages` set) when messages wait; otherwise it is woken when
    /// either happens. Polled in place, so a waiting connection holds no
    /// future for it.
    pub fn poll_event(&self, cx: &mut Context<'_>, messages: bool) -> Poll<SlotEvent> {
        lock(&self.outbox).poll_event(cx, messages)
    }

    /// For a publisher's connection paused on this client's full outbox:
    /// ready once the outbox has drained to half of its limits, or its
    /// client went away or was told to end; otherwise it is woken then. See
    /// [`Outbox`](super::outbox) for the policy.
    /// `publisher` is the paused connection's own slot.
    pub fn poll_room(&self, cx: &mut Context<'_>, publisher: &ClientSlot) -> Poll<()> {
        lock(&self.outbox).poll_room(cx, publisher.id())
    }

    /// For a publisher that was paused on this client's outbox, went on, and
    /// handled all it had read without filling it again: the next paused
    /// publisher's turn.
    pub fn pass_turn(&self, publisher: &ClientSlot) {
        lock(&self.outbox).pass_turn(publisher.id());
    }

    /// For a publisher's connection that ends while paused on this
    /// client's outbox, or while its turn to fill it: it leaves the line,
    /// passing a turn it held to the next paused publisher.
    pub fn leave_line(&self, publisher: &ClientSlot) {
        lock(&self.outbox).leave_line(publisher.id());
    }

    /// This client as a publisher, as outboxes tell them apart.
    pub(crate) fn id(&self) -> PublisherId {
        PublisherId(std::ptr::from_ref(self) as usize)
    }

    /// Tells the attached connection to end for slowness
    /// ([`Kick::SlowClient`]) if its queue has been past half of its bounds
    /// for `wait` (it is not draining it) and it was not told to end
    /// already. Returns whether this call told it (so that each paused
    /// publisher does not count it again).
    pub(crate) fn kick_slow(&self, wait: std::time::Duration) -> bool {
        let mut outbox = lock(&self.outbox);
        if outbox.kicked() || !outbox.above_half_for(wait) {
            return false;
        }
        let waker = outbox.kick(Kick::SlowClient);
        drop(outbox);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Tells the attached connection (if any) to end.
    pub(crate) fn kick(&self, kick: Kick) {
        let waker = lock(&self.outbox).kick(kick);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Moves up to `max` waiting messages into `batch`, no more than
    /// `window` of them at QoS 1 or 2, and wakes any paused publisher.
    /// Returns whether more wait, how many messages were dropped for this
    /// client since the last call, and the batch's first [`Seq`].
    pub fn take(&self, batch: &mut Vec<mqtt_codec::Message>, max: usize, window: usize) -> Taken {
        let unbounded = Limits {
            max_queued: 0,
            max_queued_bytes: 0,
            queue_qos0: false,
        };
        self.take_within(batch, max, window, usize::MAX, unbounded)
    }

    /// [`ClientSlot::take`], stopping once the batch holds `bytes` of topic
    /// and payload (at least one message is taken): what the write buffer
    /// has room for, so that messages a slow client cannot take yet stay
    /// in the outbox, where `--max-queued-bytes` counts them. Publishers
    /// paused on this outbox are woken once it is down to half of `limits`.
    pub fn take_within(
        &self,
        batch: &mut Vec<mqtt_codec::Message>,
        max: usize,
        window: usize,
        bytes: usize,
        limits: Limits,
    ) -> Taken {
        let mut outbox = lock(&self.outbox);
        let first = outbox.head();
        let more = outbox.take(batch, max, window, bytes, limits);
        Taken {
            more,
            dropped: outbox.take_dropped(),
            first,
        }
    }
}

/// What [`ClientSlot::take_within`] moved out of the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// More messages wait.
    pub more: bool,
    /// Messages dropped for this client since the last take.
    pub dropped: u64,
    /// The [`Seq`] of the batch's first message; the others follow in
    /// order, one apart: what [`Session::deliver`] records for the store.
    pub first: Seq,
}

/// Woken by the store's committer when a commit the attached connection
/// waits for is on disk: the connection learns it from its slot, as it
/// learns of messages, so its task holds nothing more for it.
impl std::task::Wake for ClientSlot {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waker = {
            let mut outbox = lock(&self.outbox);
            outbox.set_durable();
            outbox.take_waker()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A [`ClientSlot`] as the subscription index's key: compared and hashed by
/// identity, so a publish reaches the outbox with no second lookup.
#[derive(Debug, Clone)]
pub struct ClientRef(pub(crate) Arc<ClientSlot>);

impl PartialEq for ClientRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ClientRef {}

impl Hash for ClientRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

impl PartialOrd for ClientRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ClientRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (Arc::as_ptr(&self.0) as usize).cmp(&(Arc::as_ptr(&other.0) as usize))
    }
}
