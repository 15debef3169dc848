//! The router: state shared by all connections.
//!
//! It holds the subscription index (filter → client → granted QoS), the
//! retained messages, and a [`ClientSlot`] per client id with a session:
//! its bounded [`Outbox`](outbox) and, while the client is away, its parked
//! [`Session`].
//!
//! Publishing takes the index's read lock (a sharded one: readers on
//! different cores write different lock words), finds each matching client once
//! at its highest granted QoS, copies the payload out of the publisher's
//! read buffer once (if anyone keeps the message), and pushes a copy of the
//! message (two reference counts, no allocation) into each client's outbox.
//! A client's PUBLISH that fills a connected subscriber's outbox
//! (`--max-queued` messages or `--max-queued-bytes`) is queued all the same,
//! and the publisher's connection is told to pause until that outbox drains
//! ([`Router::publish_paced`]): backpressure, not loss. A subscriber that
//! stays full past `--slow-client-timeout` is disconnected by the paused
//! publishers, so one stuck subscriber stalls the others only that long.
//! The broker's own messages (wills, `$SYS`) and messages for an offline
//! session are dropped and counted when the outbox is full.
//!
//! It returns what happened and lets the session build the replies:
//! [`Router::subscribe`] returns the [`Grants`], and the session records
//! them and builds the SUBACK; the router never writes into a session.
//!
//! Connecting takes ownership of the client id's slot; if another
//! connection holds it, that one is kicked and the new one waits for it to
//! detach (session takeover [MQTT-3.1.4-2]).

mod access;
mod changes;
mod children;
mod expiry;
pub mod index;
pub mod outbox;
mod retained;
mod slot;

use std::collections::HashMap;
#[cfg(feature = "mutants")]
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use access::Granted;
pub use changes::{Changed, GateGuard};
use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};

pub use expiry::Expired;
pub use outbox::{Kick, Limits, SlotEvent};
pub use retained::{Owed, Retained};
pub use slot::{ClientRef, ClientSlot, Taken};

use outbox::{Mode, Pushed};
use slot::{Parked, lock};

use crate::acl::{Identity, Need, SubscribeCheck};
use crate::mutant;
use crate::session::{Seq, Session};
use crate::stats::Stats;
use index::SubscriptionIndex;
use mqtt_codec::Message;
use mqtt_codec::topic::TopicFilter;
use mqtt_codec::{SubAckReturnCode, SubscribeFilter};

thread_local! {
    /// The subscribers of the message being routed, reused by every publish
    /// on this thread so routing allocates nothing once warm.
    static TARGETS: std::cell::RefCell<Vec<(ClientRef, Granted)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A takeover did not finish in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the connection holding client id '{client_id}' did not let go within {secs:.1} s",
    secs = waited.as_secs_f64()
)]
pub struct TakeoverTimeout {
    /// The contested client id.
    pub client_id: String,
    /// How long the new connection waited.
    pub waited: Duration,
}

/// Why [`Router::connect_as`] attached no session.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttachError {
    /// The connection holding the id did not let go in time.
    #[error(transparent)]
    Timeout(#[from] TakeoverTimeout),
    /// The id's session belongs to another verified user.
    #[error("client id '{client_id}' belongs to another user's session")]
    HeldByAnotherUser {
        /// The contested client id.
        client_id: String,
    },
}

/// A connection's hold on a client id, returned by [`Router::connect`].
#[derive(Debug)]
pub struct Attachment {
    /// The client's slot.
    pub slot: Arc<ClientSlot>,
    /// The session, resumed or new; the connection owns it until it hands
    /// it back with [`Router::disconnect`].
    pub session: Session,
    /// Whether a stored session was resumed (CONNACK Session Present).
    /// The router tells the connection to end through the slot (see
    /// [`ClientSlot::poll_event`]).
    pub session_present: bool,
}

/// What [`Router::subscribe`] did with a SUBSCRIBE's filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// One return code per filter, in the request's order [MQTT-3.8.4-5].
    pub return_codes: Vec<SubAckReturnCode>,
}

/// Most retained messages fed into a client's outbox ahead of its
/// connection (fewer under a smaller `--max-queued`): enough for a few
/// pulls, so a big SUBSCRIBE never makes more than this at once.
const RETAINED_AHEAD: usize = 256;

/// Most trie nodes one feed of retained messages visits under the retained
/// lock, so a walk over 100,000 topics lets publishes and other subscribes
/// in between its chunks.
const RETAINED_WALK_BUDGET: usize = 4_096;

/// What routing a client's PUBLISH did: see [`Router::publish_paced`].
#[derive(Debug, Default)]
pub struct Routed {
    /// How many subscribers it was queued for.
    pub queued: usize,
    /// A connected subscriber whose outbox this message filled: the
    /// publisher's connection reads nothing more until it drains
    /// ([`ClientSlot::poll_room`]).
    pub full: Option<Arc<ClientSlot>>,
    /// With `--durability batched`: the copies queued for persistent
    /// sessions, each its subscriber's slot and the copy's number, so the
    /// publisher's acknowledgement may go before the commit once all of
    /// them are acknowledged ([`Router::copies_gone`]).
    pub copies: Vec<(Arc<ClientSlot>, u64)>,
}

/// A persistent session without its client, as the store loads it.
#[derive(Debug, Clone)]
pub struct ParkedSession {
    /// The session.
    pub session: Session,
    /// The messages queued for the client's return, oldest first.
    pub queued: Vec<Message>,
    /// The [`Seq`] of the first of `queued`; the others follow one apart.
    pub queue_start: Seq,
    /// When the client went away (for `--persistent-client-expiration`).
    pub offline_since: std::time::SystemTime,
    /// The verified user whose session it is, if any: another user may not
    /// take it over, before a restart or after.
    pub user: Option<Box<str>>,
    /// The user name its client last connected with, verified or not (the
    /// same as `user` when verified): the ACL chooses the session's rules
    /// by it, before a restart and after, as mosquitto keeps it.
    pub username: Option<Box<str>>,
    /// The retained messages its SUBSCRIBEs still owe it (see
    /// the retained cursor), in order.
    pub retained_owed: Vec<Owed>,
}

/// A persistent session as the store writes it: see
/// [`Router::session_for_store`]. Its queue is told by number, with only the
/// messages the store has not written yet, so a commit costs what changed,
/// not the length of the queue (issue 14).
#[derive(Debug, Clone)]
pub struct StoredSession {
    /// The session: subscriptions and, when known, the in-flight flows.
    pub session: Session,
    /// The [`Seq`] numbers of the messages queued now.
    pub queue: std::ops::Range<u64>,
    /// The queued messages numbered at or after the `from` asked for.
    pub added: Vec<(Seq, Message)>,
    /// When the client went away (or, if connected, the time of the copy).
    pub offline_since: std::time::SystemTime,
    /// The verified user whose session it is, if any.
    pub user: Option<Box<str>>,
    /// The user name its client last connected with, verified or not.
    pub username: Option<Box<str>>,
    /// The retained messages its SUBSCRIBEs still owe it, in order.
    pub retained_owed: Vec<Owed>,
}

/// Read-locks, carrying on past a poisoned lock (see [`slot::lock`]).
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Read-locks the subscription index, carrying on past a poisoned lock.
///
/// The index is read once per PUBLISH by every runtime thread. A plain
/// `RwLock` read writes its one lock word, so that line bounced between
/// all cores on every message even for publishers with nothing in common;
/// a [`ShardedLock`] read writes only the lock word of the reading
/// thread's shard (8 shards, each on its own cache line), and a write
/// (SUBSCRIBE, UNSUBSCRIBE, a session ending) takes all eight.
fn read_index<T>(l: &ShardedLock<T>) -> ShardedLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// Write-locks the subscription index (see [`read_index`]).
fn write_index<T>(l: &ShardedLock<T>) -> ShardedLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// The shared state of the broker.
#[derive(Debug)]
pub struct Router {
    subscriptions: ShardedLock<SubscriptionIndex<ClientRef, Granted>>,
    /// The ACL in force (`--acl-file`), `None` without one: see
    /// [`access`].
    acl: Option<access::AclCell>,
    retained: RwLock<Retained>,
    clients: Mutex<HashMap<Arc<str>, Arc<ClientSlot>>>,
    limits: Limits,
    stats: Arc<Stats>,
    /// What changed since the store last wrote.
    changes: changes::Tracker,
    /// Planted bug `stall-after-topic`: set once a matching PUBLISH was
    /// routed; from then on the listener answers no new client.
    #[cfg(feature = "mutants")]
    stalled: std::sync::atomic::AtomicBool,
}

impl Router {
    /// An empty router with these outbox limits, counting into `stats`.
    pub fn new(limits: Limits, stats: Arc<Stats>) -> Self {
        Self {
            subscriptions: ShardedLock::new(SubscriptionIndex::new()),
            acl: None,
            retained: RwLock::new(Retained::default()),
            clients: Mutex::new(HashMap::new()),
            limits,
            stats,
            changes: changes::Tracker::default(),
            #[cfg(feature = "mutants")]
            stalled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the planted bug `stall-after-topic` has fired: the broker
    /// answers no new client (always false without the `mutants` feature).
    pub fn stalled(&self) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.stalled.load(Ordering::Relaxed)
        }
        #[cfg(not(feature = "mutants"))]
        {
            false
        }
    }

    /// The outbox limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Takes ownership of `client_id` for a new connection.
    ///
    /// With `clean` set, any stored session is discarded and a new one
    /// begins [MQTT-3.1.2-6]; otherwise a stored session is resumed
    /// [MQTT-3.1.2-4] and `session_present` says so [MQTT-3.2.2-2]. A
    /// connection already holding the id is told to end and awaited, for at
    /// most `wait` [MQTT-3.1.4-2].
    ///
    /// An anonymous connection: see [`Router::connect_as`].
    pub async fn connect(
        &self,
        client_id: &str,
        clean: bool,
        max_inflight: usize,
        wait: Duration,
    ) -> Result<Attachment, AttachError> {
        self.connect_as(client_id, None, None, clean, max_inflight, wait)
            .await
    }

    /// [`Router::connect`] for a connection of the verified `user` (`None`
    /// when nobody verified it) that gave `username` (verified or not; the
    /// ACL's rules are chosen by it). A session, connected or parked, of another
    /// user is neither taken over nor kicked: the connection is refused
    /// with [`AttachError::HeldByAnotherUser`] (see
    /// [`crate::session::connect::may_take_over`]).
    pub async fn connect_as(
        &self,
        client_id: &str,
        user: Option<&str>,
        username: Option<&str>,
        clean: bool,
        max_inflight: usize,
        wait: Duration,
    ) -> Result<Attachment, AttachError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let slot = {
                let mut clients = lock(&self.clients);
                match clients.get(client_id) {
                    Some(s) => Arc::clone(s),
                    None => {
                        let id: Arc<str> = Arc::from(client_id);
                        let s = Arc::new(ClientSlot::new(Arc::clone(&id)));
                        clients.insert(id, Arc::clone(&s));
                        s
                    }
                }
            };
            let watch = Arc::clone(&slot);
            let detached = watch.detached.notified();
            tokio::pin!(detached);
            detached.as_mut().enable();
            {
                let mut own = lock(&slot.ownership);
                if own.removed {
                    continue;
                }
                let held = own.attached || own.parked.is_some();
                if held && !crate::session::connect::may_take_over(own.user(), user) {
                    return Err(AttachError::HeldByAnotherUser {
                        client_id: client_id.to_owned(),
                    });
                }
                if !own.attached {
                    own.attached = true;
                    // An exemption is the bridge's, set after each attach:
                    // another client taking its session over is checked,
                    // subscriptions included.
                    let was_exempt = std::mem::take(&mut own.acl_exempt);
                    let renamed = own.username.as_deref() != user.or(username) || was_exempt;
                    own.set_names(username, user);
                    own.persistent = !clean;
                    let parked = own.parked.take();
                    if parked.is_some() || !clean {
                        // Created, resumed or cleared: the store writes or
                        // removes its record.
                        self.changes.session(&slot);
                    }
                    slot.set_stored(!clean);
                    // The session shares the slot's copy of the client id.
                    let fresh = || Session::new(Arc::clone(slot.client_id()), clean, max_inflight);
                    let (session, session_present) = match parked {
                        Some(p) if !clean || mutant::active("clean-session-keeps-state") => {
                            if mutant::active("subscriptions-dropped-on-resume") {
                                self.drop_subscriptions(&slot, &p.session);
                            }
                            if renamed {
                                // Resumed under another user name: what its
                                // subscriptions were found to read was
                                // decided for the old one.
                                self.recheck_subscriptions(&slot, &p.session);
                            }
                            (p.session, true)
                        }
                        Some(old) => {
                            self.drop_subscriptions(&slot, &old.session);
                            (fresh(), false)
                        }
                        None => (fresh(), false),
                    };
                    own.subscriptions = (!clean && !session.subscriptions().is_empty())
                        .then(|| Box::new(session.subscriptions().clone()));
                    // The in-flight copy is in place before the ownership
                    // lock goes: a commit in between would otherwise write
                    // an attached persistent session without its flows.
                    self.set_live_flows(
                        &slot,
                        (!clean).then(|| session.flows_copy().unwrap_or_default()),
                    );
                    drop(own);
                    if !session_present {
                        // A new session is owed nothing an old one was.
                        *lock(&slot.retained) = None;
                    }
                    {
                        let mut outbox = lock(&slot.outbox);
                        if !session_present {
                            outbox.set_mode(Mode::Closed);
                            if !clean {
                                outbox.renumber();
                            }
                        }
                        outbox.set_mode(Mode::Online);
                        outbox.attach();
                    }
                    return Ok(Attachment {
                        slot,
                        session,
                        session_present,
                    });
                }
                if mutant::active("takeover-refused") {
                    return Err(TakeoverTimeout {
                        client_id: client_id.to_owned(),
                        waited: Duration::ZERO,
                    }
                    .into());
                }
                // Under the ownership lock, so the kick reaches the
                // connection seen attached and no later one.
                slot.kick(Kick::TakenOver);
            }
            if tokio::time::timeout_at(deadline, detached).await.is_err() {
                return Err(TakeoverTimeout {
                    client_id: client_id.to_owned(),
                    waited: wait,
                }
                .into());
            }
        }
    }

    /// Hands a session back when its connection ends. A clean session is
    /// discarded with its subscriptions [MQTT-3.1.2-6]; a persistent one is
    /// parked, and its outbox keeps collecting messages for the client's
    /// return [MQTT-3.1.2-5].
    pub fn disconnect(&self, slot: &Arc<ClientSlot>, session: Session) {
        if session.is_clean() && !mutant::active("clean-session-parked") {
            // Messages still queued for a clean session are lost with it:
            // counted as dropped (a slow client kicked with a full queue).
            let discarded = lock(&slot.outbox).set_mode(Mode::Closed);
            if discarded > 0 {
                self.stats.publish_dropped.add(discarded as u64);
            }
            slot.set_stored(false);
            {
                let mut clients = lock(&self.clients);
                let mut own = lock(&slot.ownership);
                own.attached = false;
                own.removed = true;
                own.parked = None;
                if clients
                    .get(slot.client_id())
                    .is_some_and(|s| Arc::ptr_eq(s, slot))
                {
                    clients.remove(slot.client_id());
                }
            }
            self.drop_subscriptions(slot, &session);
            // A session coming back for this client id comes in a new
            // slot: only this slot's copy goes.
            self.set_live_flows(slot, None);
        } else {
            let mode = if mutant::active("offline-messages-dropped") {
                Mode::Closed
            } else {
                Mode::Offline
            };
            lock(&slot.outbox).set_mode(mode);
            let mut own = lock(&slot.ownership);
            own.attached = false;
            own.subscriptions = None;
            slot.set_stored(true);
            own.parked = Some(Box::new(Parked {
                session,
                offline_since: std::time::SystemTime::now(),
            }));
            // Parked first, then the in-flight copy goes, under the
            // ownership lock: a commit in between sees the session whole,
            // and a connection attaching at once puts its own copy after.
            self.set_live_flows(slot, None);
        }
        self.changes.session(slot);
        slot.detached.notify_waiters();
    }

    fn drop_subscriptions(&self, slot: &Arc<ClientSlot>, session: &Session) {
        if session.subscriptions().is_empty() {
            return;
        }
        let key = ClientRef(Arc::clone(slot));
        let mut index = write_index(&self.subscriptions);
        for filter in session.subscriptions().keys() {
            index.remove(filter, &key);
        }
    }

    /// Routes a message: stores or clears it if retained, then queues a copy
    /// for every matching subscriber at min(published, granted) QoS
    /// [MQTT-3.8.4-6] with RETAIN=0 [MQTT-3.3.1-9]. Returns how many
    /// subscribers it was queued for.
    ///
    /// What it keeps owns its bytes: a message that is retained or reaches
    /// a subscriber has its payload copied out of the publisher's read
    /// buffer once, shared by every copy (see
    /// [`Message::with_own_payload`]); one nobody keeps is not copied.
    ///
    /// For messages the broker makes (wills, `$SYS`): one finding an
    /// outbox full is dropped and counted. A client's PUBLISH goes through
    /// [`Router::publish_paced`].
    pub fn publish(&self, message: &Message) -> usize {
        self.route(message, None).queued
    }

    /// [`Router::publish`] for a PUBLISH from the client holding
    /// `publisher`: an outbox of a connected subscriber at its bound still
    /// takes it, and [`Routed::full`] names that subscriber so that the
    /// publisher's connection pauses (backpressure instead of loss). Its
    /// own messages looping back to a full outbox of its own are dropped
    /// and counted (a connection cannot wait for itself). A publisher
    /// marked a bridge ([`ClientSlot::set_bridge`]) gets none of its own
    /// messages back, and every bridge gets RETAIN as it was published.
    ///
    /// A topic the ACL does not let the publisher write is acknowledged
    /// all the same (the session has built the PUBACK or PUBREC) and goes
    /// nowhere: neither delivered nor retained, as in mosquitto.
    pub fn publish_paced(&self, message: &Message, publisher: &ClientSlot) -> Routed {
        if is_sys(message) {
            tracing::debug!(topic = %message.topic, "PUBLISH to $SYS dropped: only the broker writes there");
            return Routed::default();
        }
        if !self.may_write(publisher, &message.topic) {
            tracing::debug!(topic = %message.topic, "PUBLISH denied by the ACL: acknowledged, not delivered");
            return Routed::default();
        }
        #[cfg(feature = "mutants")]
        {
            self.stall_on(message);
            abort_on(message);
        }
        self.route(message, Some(publisher))
    }

    fn route(&self, message: &Message, publisher: Option<&ClientSlot>) -> Routed {
        let mut full = None;
        let mut targets = TARGETS.with_borrow_mut(std::mem::take);
        // Each client once, at its highest granted QoS [MQTT-3.3.5-1]; the
        // index lock is held only for the lookup. The rules are read under
        // it too: a reload swaps them and clears the marks under the write
        // lock, so the marks and the rules here are one snapshot, and a
        // message routed across a reload follows the old rules or the new,
        // never old marks with new rules (see `access.rs`).
        let acl = {
            let index = read_index(&self.subscriptions);
            index.matches_into(&message.topic, &mut targets);
            self.acl_now()
        };
        let kept;
        let message = if message.retain
            || !targets.is_empty()
            || mutant::active("non-retained-replaces-retained")
        {
            kept = message.with_own_payload();
            &kept
        } else {
            message
        };
        if message.retain {
            write(&self.retained).update(message);
            self.changes.retained(&message.topic);
        } else if mutant::active("non-retained-replaces-retained") {
            write(&self.retained).replace_existing(message);
        }
        let mut queued = 0;
        let mut dropped = 0;
        // Only a client's QoS 1 PUBLISH without RETAIN may be acknowledged
        // once its copies are (see `Routed::copies`).
        let watch = self.changes.live()
            && publisher.is_some()
            && message.qos == mqtt_codec::QoS::AtLeastOnce
            && !message.retain;
        let mut copies = Vec::new();
        for (client, granted) in targets.drain(..) {
            let slot = &client.0;
            // Read rights per message, unless the subscription's filter is
            // readable whole: a `#` subscriber sees only what it may read.
            if let Some(acl) = &acl
                && !granted.readable
                && !Self::slot_allows(acl, slot, &message.topic, Need::Read)
            {
                continue;
            }
            let granted = granted.qos;
            let qos = if mutant::active("qos-not-downgraded") {
                message.qos
            } else if mutant::active("qos-upgraded-to-granted") {
                granted
            } else {
                message.qos.min(granted)
            };
            let own = publisher.is_some_and(|p| std::ptr::eq(p, slot.as_ref()));
            // A client's own messages looping back are not paced: its
            // connection cannot wait for itself.
            let pace = publisher.filter(|_| !own).map(ClientSlot::id);
            let (pushed, waker, stored, seq) = {
                let mut outbox = lock(&slot.outbox);
                // A bridge gets none of its own messages back (they would
                // cross the bridge again, a loop) and RETAIN as published,
                // so the far broker retains what this one does.
                if outbox.bridge() && own {
                    continue;
                }
                let retain =
                    message.retain && (outbox.bridge() || mutant::active("retain-kept-on-forward"));
                let copy = message.for_delivery(qos, retain);
                let pushed = outbox.push(copy, self.limits, pace);
                let waker = if matches!(pushed, Pushed::Wake | Pushed::Full { wake: true }) {
                    outbox.take_waker()
                } else {
                    None
                };
                let seq = outbox.seqs().end.wrapping_sub(1);
                (pushed, waker, outbox.stored(), seq)
            };
            // Queued, past the bound or not: a persistent session's queue
            // changed, and the store keeps it.
            if stored && matches!(pushed, Pushed::Wake | Pushed::Queued | Pushed::Full { .. }) {
                self.changes.session(slot);
                if watch {
                    copies.push((Arc::clone(slot), seq));
                }
            }
            if let Some(w) = waker {
                w.wake();
            }
            match pushed {
                Pushed::Wake | Pushed::Queued => queued += 1,
                Pushed::Full { .. } => {
                    queued += 1;
                    if full.is_none() {
                        full = Some(Arc::clone(slot));
                    }
                }
                Pushed::Dropped { first } => {
                    dropped += 1;
                    if first {
                        tracing::warn!(
                            client_id = %slot.client_id(),
                            max_queued = self.limits.max_queued,
                            max_queued_bytes = self.limits.max_queued_bytes,
                            "queue full, dropping messages for this client (see --max-queued and --max-queued-bytes)"
                        );
                    }
                }
                Pushed::Ignored => {}
            }
        }
        TARGETS.with_borrow_mut(|slot| *slot = targets);
        if dropped > 0 {
            self.stats.publish_dropped.add(dropped);
        }
        Routed {
            queued,
            full,
            copies,
        }
    }

    /// Routes a message a client published. Topics under `$SYS` belong to
    /// the broker: a client's message there is acknowledged but neither
    /// routed nor retained [MQTT-3.3.5-2]. Returns how many subscribers it
    /// was queued for (0 for `$SYS`).
    pub fn publish_from_client(&self, message: &Message) -> usize {
        if is_sys(message) {
            return 0;
        }
        #[cfg(feature = "mutants")]
        {
            self.stall_on(message);
            abort_on(message);
        }
        self.publish(message)
    }

    /// Publishes the will of the client holding `slot`, if the ACL lets
    /// that client write its topic (as mosquitto checks a will when it is
    /// sent). Returns how many subscribers it was queued for.
    pub fn publish_will(&self, will: &Message, slot: &ClientSlot) -> usize {
        if !self.may_write(slot, &will.topic) {
            tracing::debug!(topic = %will.topic, "will denied by the ACL: not published");
            return 0;
        }
        self.publish_from_client(will)
    }

    /// The planted bug `stall-after-topic`: fires on a matching topic.
    #[cfg(feature = "mutants")]
    fn stall_on(&self, message: &Message) {
        if crate::mutant::active("stall-after-topic")
            && crate::mutant::text("stall-after-topic")
                .is_some_and(|t| message.topic.as_str().contains(t.as_str()))
        {
            self.stalled.store(true, Ordering::Relaxed);
        }
    }

    /// Adds a SUBSCRIBE's filters for the connection holding `slot`,
    /// replacing any with the same filter [MQTT-3.8.4-3]. Returns what was
    /// granted (one code per filter, in order [MQTT-3.8.4-5]); the session
    /// records the grants and builds the SUBACK ([`Session::granted`]).
    ///
    /// The retained messages each granted filter matches are owed to the
    /// client, one copy per filter, at min(retained, granted) QoS with
    /// RETAIN=1 [MQTT-3.3.1-8]: the first chunk goes into the outbox now
    /// (all of them, for up to 256 messages), the rest as the connection
    /// drains it ([`Router::feed_retained`]). The connection
    /// writes the SUBACK before it takes anything from the outbox, so they
    /// follow it [MQTT-3.3.1-6]. Messages published after the SUBSCRIBE may
    /// come between the chunks of a big delivery.
    ///
    /// With an ACL, a filter with no topic the client may read is refused
    /// with 0x80 [MQTT-3.9.3-2] and the others in the same SUBSCRIBE are
    /// granted (see [`crate::acl::Acl::subscription`]).
    pub fn subscribe(&self, slot: &Arc<ClientSlot>, filters: &[SubscribeFilter]) -> Grants {
        let mut return_codes = Vec::with_capacity(filters.len());
        // The user name is read before the index is locked: the ownership
        // lock is taken before the index's elsewhere (`connect_as`).
        let (username, exempt) = match &self.acl {
            Some(_) => {
                let own = lock(&slot.ownership);
                (own.username.clone(), own.acl_exempt)
            }
            None => (None, false),
        };
        {
            let key = ClientRef(Arc::clone(slot));
            let mut index = write_index(&self.subscriptions);
            // Decided under the index's lock, as a reload swaps the rules:
            // no mark is made by rules already replaced.
            let acl = self.acl_now().filter(|_| !exempt);
            let who = Identity {
                username: username.as_deref(),
                client_id: slot.client_id(),
            };
            for f in filters {
                // Every valid filter is granted at the QoS asked for: this
                // broker supports all three levels [MQTT-3.9.3-1].
                let qos = f.qos;
                let readable = match acl.as_ref().map(|acl| acl.subscription(who, &f.filter)) {
                    None | Some(SubscribeCheck::Readable) => true,
                    Some(SubscribeCheck::PerMessage) => false,
                    Some(SubscribeCheck::Denied) => {
                        tracing::debug!(filter = %f.filter, "SUBSCRIBE denied by the ACL: 0x80");
                        return_codes.push(SubAckReturnCode::Failure);
                        continue;
                    }
                };
                index.insert(&f.filter, key.clone(), Granted { qos, readable });
                return_codes.push(SubAckReturnCode::Granted(qos));
            }
        }
        {
            let mut own = lock(&slot.ownership);
            if own.persistent {
                for (f, _) in filters
                    .iter()
                    .zip(&return_codes)
                    .filter(|(_, code)| matches!(code, SubAckReturnCode::Granted(_)))
                {
                    own.subscriptions
                        .get_or_insert_default()
                        .insert(f.filter.clone(), f.qos);
                }
                self.changes.session(slot);
            }
        }
        {
            let mut cursor = lock(&slot.retained);
            let cursor = cursor.get_or_insert_with(Box::default);
            for (f, code) in filters.iter().zip(&return_codes) {
                if let SubAckReturnCode::Granted(qos) = code {
                    cursor.push(f.filter.clone(), *qos);
                }
            }
        }
        self.feed_retained(slot);
        #[cfg(feature = "mutants")]
        self.leak_retained(slot);
        Grants { return_codes }
    }

    /// Tops up the outbox of the client holding `slot` with the retained
    /// messages its SUBSCRIBEs still owe it, up to 256 waiting messages
    /// (and never past `--max-queued`), visiting at most 4,096 trie nodes
    /// under the retained lock. Returns whether messages are still owed:
    /// the connection calls again once the outbox drained, and lets other
    /// tasks run between calls that add nothing.
    pub fn feed_retained(&self, slot: &ClientSlot) -> bool {
        let mut cursor = lock(&slot.retained);
        let Some(owed) = cursor.as_deref_mut() else {
            return false;
        };
        let ahead = match self.limits.max_queued {
            0 => RETAINED_AHEAD,
            max => max.min(RETAINED_AHEAD),
        };
        let waiting = lock(&slot.outbox).len();
        if waiting >= ahead {
            return true;
        }
        let mut chunk = Vec::new();
        owed.next_chunk(
            &read(&self.retained),
            ahead - waiting,
            RETAINED_WALK_BUDGET,
            &mut chunk,
        );
        // A retained message the client may not read is not sent, even
        // through a filter it may subscribe to.
        if let Some(acl) = self.acl_now() {
            chunk.retain(|m| Self::slot_allows(&acl, slot, &m.topic, Need::Read));
        }
        let more = !owed.is_empty();
        if !more {
            *cursor = None;
        }
        // Still under the cursor's lock, so chunks queue in order.
        let queued = !chunk.is_empty();
        {
            let mut outbox = lock(&slot.outbox);
            for m in chunk {
                outbox.push_unbounded(m);
            }
        }
        if queued || !more {
            // A persistent session's queue, or what it is owed, changed:
            // the store keeps both.
            self.session_changed(slot);
        }
        more
    }

    /// The planted bug `retained-leak`: queues for the client holding `slot`
    /// (after a SUBSCRIBE) every retained message that some other client's
    /// subscription matches and none of this client's does, as QoS 0, so
    /// the suite's stray-delivery check must catch it.
    #[cfg(feature = "mutants")]
    fn leak_retained(&self, slot: &Arc<ClientSlot>) {
        if !crate::mutant::active("retained-leak") {
            return;
        }
        let mut retained = Vec::new();
        let key = ClientRef(Arc::clone(slot));
        let index = read_index(&self.subscriptions);
        for m in read(&self.retained).iter() {
            let (mut mine, mut others) = (false, false);
            index.for_each_match(&m.topic, |client, _| {
                if *client == key {
                    mine = true;
                } else {
                    others = true;
                }
            });
            if others && !mine {
                retained.push(m.for_delivery(mqtt_codec::QoS::AtMostOnce, true));
            }
        }
        drop(index);
        let mut outbox = lock(&slot.outbox);
        for m in retained {
            outbox.push_unbounded(m);
        }
    }

    /// Removes filters from the index for the client holding `slot`: those
    /// its session held, as [`Session::unsubscribe`] returns them.
    pub fn unsubscribe(&self, slot: &Arc<ClientSlot>, filters: &[TopicFilter]) {
        if filters.is_empty() || mutant::active("unsubscribe-not-removed") {
            return;
        }
        {
            let key = ClientRef(Arc::clone(slot));
            let mut index = write_index(&self.subscriptions);
            for filter in filters {
                index.remove(filter, &key);
            }
        }
        let persistent = {
            let mut own = lock(&slot.ownership);
            if let Some(saved) = own.subscriptions.as_deref_mut() {
                for filter in filters {
                    saved.remove(filter);
                }
                crate::sparse::shrink_if_sparse(saved);
            }
            if own.subscriptions.as_ref().is_some_and(|m| m.is_empty()) {
                own.subscriptions = None;
            }
            own.persistent
        };
        if persistent {
            self.changes.session(slot);
        }
        if let Some(owed) = lock(&slot.retained).as_deref_mut() {
            for filter in filters {
                owed.forget(filter);
            }
        }
    }

    /// Tells every attached connection to end, for the broker's shutdown.
    /// A connection attaching after this sees the shutdown token cancelled.
    pub fn kick_all(&self, kick: Kick) {
        let slots: Vec<Arc<ClientSlot>> = lock(&self.clients).values().cloned().collect();
        for slot in slots {
            slot.kick(kick);
        }
    }

    /// How many subscriptions exist, all clients together.
    pub fn subscription_count(&self) -> usize {
        read_index(&self.subscriptions).len()
    }

    /// How many topics hold a retained message.
    pub fn retained_count(&self) -> usize {
        read(&self.retained).len()
    }

    /// How many client ids have a session (connected or parked).
    pub fn session_count(&self) -> usize {
        lock(&self.clients).len()
    }

    /// A copy of every retained message, for the store.
    pub fn retained_messages(&self) -> Vec<Message> {
        read(&self.retained).iter().cloned().collect()
    }

    /// Restores a retained message from the store.
    pub fn restore_retained(&self, message: &Message) {
        write(&self.retained).update(message);
    }

    /// For the store: copies of every persistent session, parked or
    /// connected, with all their queued messages (see
    /// [`Router::session_for_store`]).
    pub fn sessions_for_store(&self) -> Vec<StoredSession> {
        let ids: Vec<Arc<str>> = lock(&self.clients).keys().cloned().collect();
        let now = std::time::SystemTime::now();
        ids.iter()
            .filter_map(|id| self.session_for_store(id, now, 0))
            .collect()
    }

    /// For the store: a copy of client `client_id`'s persistent session,
    /// or `None` when it has none (never had one, or it was clean, cleared
    /// or expired). A session a connection holds now is copied as far as
    /// the router knows it: subscriptions, queue and, with `--durability
    /// batched`, the in-flight flows as of the connection's last step
    /// (otherwise those are written when the connection ends and parks it).
    /// Of the queue it copies the numbers, and the messages numbered `from`
    /// or later: those the store has not written yet (reference counts,
    /// never payload bytes). `now` stands for when a connected client went
    /// away, should the broker die.
    pub fn session_for_store(
        &self,
        client_id: &str,
        now: std::time::SystemTime,
        from: u64,
    ) -> Option<StoredSession> {
        let slot = lock(&self.clients).get(client_id).cloned()?;
        let own = lock(&slot.ownership);
        let (session, offline_since) = if own.attached {
            if !own.persistent {
                return None;
            }
            let mut session = Session::new(Arc::clone(slot.client_id()), false, 0);
            for (filter, qos) in own.subscriptions.iter().flat_map(|m| m.iter()) {
                session.subscribed(filter.clone(), *qos);
            }
            session.set_flows(self.live_flows_of(client_id));
            (session, now)
        } else {
            let p = own.parked.as_deref()?;
            (p.session.clone(), p.offline_since)
        };
        let user = own.user().map(Box::from);
        let username = own.username.clone();
        drop(own);
        // Read after the session. With `--durability batched` the caller
        // holds the gate, so the two are one cut and every message is in
        // the queue or in flight; otherwise one taken in between is in
        // neither here, and is written with the session's flows later (when
        // it parks).
        // The cursor's lock first and held with the outbox's, as
        // `feed_retained` takes them: a chunk is in the queue or still
        // owed, never both or neither.
        let cursor = lock(&slot.retained);
        let retained_owed = cursor
            .as_deref()
            .map(|c| c.owed().cloned().collect())
            .unwrap_or_default();
        let outbox = lock(&slot.outbox);
        let queue = outbox.seqs();
        let added = outbox
            .queued_from(from)
            .map(|(seq, m)| (seq, m.clone()))
            .collect();
        drop(outbox);
        drop(cursor);
        Some(StoredSession {
            session,
            queue,
            added,
            offline_since,
            user,
            username,
            retained_owed,
        })
    }

    /// For the store: the retained message of `topic`, if any.
    pub fn retained_message(&self, topic: &mqtt_codec::topic::TopicName) -> Option<Message> {
        read(&self.retained).get(topic).cloned()
    }

    /// Restores a persistent session from the store as parked, with its
    /// subscriptions back in the index and its queued messages waiting.
    pub fn restore_session(&self, parked: ParkedSession) {
        let ParkedSession {
            session,
            queued,
            queue_start,
            offline_since,
            user,
            username,
            retained_owed,
        } = parked;
        let id = Arc::clone(session.client_id());
        let slot = Arc::new(ClientSlot::new(Arc::clone(&id)));
        if !retained_owed.is_empty() {
            // Fed into the outbox once the client is back and drains it.
            *lock(&slot.retained) =
                Some(Box::new(retained::RetainedCursor::from_owed(retained_owed)));
        }
        {
            let key = ClientRef(Arc::clone(&slot));
            let mut index = write_index(&self.subscriptions);
            for (filter, qos) in session.subscriptions() {
                index.insert(filter, key.clone(), Granted::checked(*qos));
            }
        }
        {
            let mut outbox = lock(&slot.outbox);
            outbox.set_mode(Mode::Offline);
            let in_flight = session.outgoing().iter().map(|e| e.seq).max();
            outbox.restore(queue_start, queued, in_flight);
        }
        {
            let mut own = lock(&slot.ownership);
            // The names the client last connected with stand for it until
            // it is back: the ACL checks its deliveries by them meanwhile.
            own.set_names(username.as_deref(), user.as_deref());
            own.parked = Some(Box::new(Parked {
                session,
                offline_since,
            }));
        }
        slot.set_stored(true);
        lock(&self.clients).insert(id, slot);
    }
}

/// Whether a message is addressed to the broker's own `$SYS` tree.
/// The planted bug `abort-on-topic=TEXT`: a PUBLISH whose topic holds TEXT
/// ends the whole process at once, as a crashing broker would, so that
/// `toolkit fuzz`'s tests have a crash to find, minimise and replay.
#[cfg(feature = "mutants")]
fn abort_on(message: &Message) {
    if crate::mutant::active("abort-on-topic")
        && crate::mutant::text("abort-on-topic")
            .is_some_and(|t| message.topic.as_str().contains(t.as_str()))
    {
        tracing::error!(topic = %message.topic, "planted bug abort-on-topic: aborting");
        std::process::abort();
    }
}

fn is_sys(message: &Message) -> bool {
    let t = message.topic.as_str();
    t == "$SYS" || t.starts_with("$SYS/")
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
