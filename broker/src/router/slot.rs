//! [`ClientSlot`]: everything the router keeps for one client id, connected
//! or not.
//!
//! The slot stands on its [`Outbox`]: the queue and the wake-up of the
//! attached connection (a [`Kick`] included) live there, and nothing there
//! looks back here.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::Notify;

use super::outbox::{Kick, Outbox, SlotEvent};
use super::retained::RetainedCursor;
use crate::session::Session;
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
    /// The verified user whose session this is (attached or parked), if
    /// any: another user may not take it over
    /// ([`crate::session::connect::may_take_over`]).
    pub(crate) user: Option<Box<str>>,
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
        }
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

    /// Tells the attached connection (if any) to end.
    pub(crate) fn kick(&self, kick: Kick) {
        let waker = lock(&self.outbox).kick(kick);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Moves up to `max` waiting messages into `batch`, no more than
    /// `window` of them at QoS 1 or 2. Returns whether more wait, and how
    /// many messages were dropped for this client since the last call.
    pub fn take(
        &self,
        batch: &mut Vec<mqtt_codec::Message>,
        max: usize,
        window: usize,
    ) -> (bool, u64) {
        self.take_within(batch, max, window, usize::MAX)
    }

    /// [`ClientSlot::take`], stopping once the batch holds `bytes` of topic
    /// and payload (at least one message is taken): what the write buffer
    /// has room for, so that messages a slow client cannot take yet stay
    /// in the outbox, where `--max-queued-bytes` counts them.
    pub fn take_within(
        &self,
        batch: &mut Vec<mqtt_codec::Message>,
        max: usize,
        window: usize,
        bytes: usize,
    ) -> (bool, u64) {
        let mut outbox = lock(&self.outbox);
        let more = outbox.take(batch, max, window, bytes);
        (more, outbox.take_dropped())
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
