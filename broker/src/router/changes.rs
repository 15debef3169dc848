//! What changed since the store last wrote: the client ids whose persistent
//! session and the topics whose retained message must be written again, so
//! a save writes only those (issue 14: every autosave rewrote the whole
//! store, 71 MB with 100,000 retained messages, and an idle broker burnt
//! 40% of a core on it).
//!
//! Off until the broker opens a store ([`Router::track_changes`]): without
//! one nothing is recorded. With `--durability batched` the tracker also
//! holds the *gate*: a connection changing durable state (routing a
//! message, moving one in flight, recording an acknowledgement) holds it
//! shared for that whole step, and the store takes it exclusively while it
//! copies what changed, so every save is a consistent cut — never a message
//! already gone from a queue but not yet in the in-flight window, nor a
//! routed QoS 2 message without its publisher's awaiting-PUBREL id.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::Waker;

use mqtt_codec::topic::TopicName;

use super::Router;
use super::slot::{ClientSlot, lock};
use crate::session::{Flows, Session};

thread_local! {
    /// Whether this thread marked anything since [`Router::take_marked`]:
    /// a connection's step runs on one thread, so this tells it whether
    /// what it just did touched stored state (a message to a client with a
    /// clean session only, say, does not, and needs no commit).
    static MARKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The keys to write at the next save.
#[derive(Debug, Default)]
pub struct Changed {
    /// Client ids whose session record is to be written again (or removed,
    /// when the session is gone or no longer persistent).
    pub sessions: HashSet<Arc<str>>,
    /// Topics whose retained message is to be written again (or removed).
    pub retained: HashSet<TopicName>,
}

impl Changed {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.retained.is_empty()
    }
}

/// The change tracker the router carries.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    on: AtomicBool,
    /// Connections keep a copy of their persistent session's in-flight
    /// flows in the slot (`--durability batched`), and hold the gate.
    live: AtomicBool,
    changed: Mutex<Changed>,
    gate: RwLock<()>,
    /// With `live`, for each attached persistent session: a copy of its
    /// in-flight flows as of its connection's last step, so the store
    /// writes them before any PUBLISH or PUBREL they imply is sent. Here
    /// rather than in the slot, so that other clients pay nothing for it.
    flows: Mutex<HashMap<Arc<str>, Live>>,
}

/// What the tracker keeps of an attached persistent session.
#[derive(Debug)]
struct Live {
    /// The slot it is attached in (its address: a copy's slot is kept
    /// alive by the copy, so no other slot can have it meanwhile). A copy
    /// counts only against the slot it was queued in, not a later session
    /// under the same client id.
    slot: usize,
    flows: Box<Flows>,
    /// Every message numbered below this has left the session: taken from
    /// its queue and, unless QoS 0, acknowledged by its client. Set by its
    /// connection after each step that moved its in-flight window; 0 until
    /// the first (nothing known to be gone).
    low_water: u64,
    /// Publishers' connections holding acknowledgements until the copy
    /// numbered here is gone: woken once `low_water` passes it.
    watchers: Vec<(u64, Waker)>,
}

/// At most this many publishers watch one session; others wait for their
/// commit, as without the watch. A watcher stays until the copy it waits
/// for is gone (or the session detaches), so the bound keeps a subscriber
/// that never acknowledges from gathering one per publisher that ever
/// came.
const MAX_WATCHERS: usize = 1_024;

/// A slot's address, for [`Live::slot`].
fn address(slot: &ClientSlot) -> usize {
    std::ptr::from_ref(slot) as usize
}

impl Tracker {
    pub(crate) fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    pub(crate) fn live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    pub(crate) fn session(&self, slot: &ClientSlot) {
        if self.on() {
            MARKED.set(true);
            lock(&self.changed)
                .sessions
                .insert(Arc::clone(slot.client_id()));
        }
    }

    pub(crate) fn retained(&self, topic: &TopicName) {
        if self.on() {
            MARKED.set(true);
            lock(&self.changed).retained.insert(topic.clone());
        }
    }
}

/// Shared hold on the gate (see the module doc); `None` when the store does
/// not need consistent cuts.
pub type GateGuard<'a> = Option<RwLockReadGuard<'a, ()>>;

impl Router {
    /// Starts recording what changes, for a store that saves only that.
    /// With `live_flows` (`--durability batched`), connections also keep
    /// a copy of their in-flight window in the slot and hold the gate while
    /// they change durable state.
    pub fn track_changes(&self, live_flows: bool) {
        self.changes.live.store(live_flows, Ordering::Relaxed);
        self.changes.on.store(true, Ordering::Relaxed);
    }

    /// Whether connections keep their in-flight window in the slot.
    pub fn live_flows(&self) -> bool {
        self.changes.live()
    }

    /// Holds the gate shared while a connection changes durable state.
    /// Never taken twice by one thread: the router's own methods do not
    /// take it.
    pub fn gate(&self) -> GateGuard<'_> {
        if self.changes.live() {
            Some(self.changes.gate.read().unwrap_or_else(|p| p.into_inner()))
        } else {
            None
        }
    }

    /// Holds the gate exclusively: no connection is midway through a change.
    pub(crate) fn gate_exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.changes.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the session in `slot` as changed (if it is persistent).
    pub fn session_changed(&self, slot: &ClientSlot) {
        // The cheap look first: without a store, no lock is taken.
        if self.changes.on() && slot.stored() {
            self.changes.session(slot);
        }
    }

    /// Whether this thread marked a change for the store since the last
    /// call (see `MARKED`); resets it.
    pub fn take_marked() -> bool {
        MARKED.replace(false)
    }

    /// Keeps (or, with `None`, forgets) the copy of an attached session's
    /// in-flight flows.
    pub(crate) fn set_live_flows(&self, slot: &ClientSlot, flows: Option<Box<Flows>>) {
        self.update_live(slot, flows, 0);
    }

    /// Keeps (or forgets) the flows and low water of the session attached
    /// in `slot`, waking the publishers whose copies are now gone. Only
    /// that slot's own entry is forgotten: one a newer session under the
    /// same client id put there stays.
    fn update_live(&self, slot: &ClientSlot, flows: Option<Box<Flows>>, low_water: u64) {
        if !self.changes.live() {
            return;
        }
        let at = address(slot);
        let woken: Vec<(u64, Waker)> = {
            let mut map = lock(&self.changes.flows);
            match flows {
                Some(flows) => match map.get_mut(slot.client_id()) {
                    Some(live) if live.slot == at => {
                        live.flows = flows;
                        let before = live.low_water;
                        live.low_water = low_water;
                        if low_water == before {
                            Vec::new()
                        } else if low_water < before {
                            std::mem::take(&mut live.watchers)
                        } else {
                            let (gone, waiting) = std::mem::take(&mut live.watchers)
                                .into_iter()
                                .partition(|(seq, _)| *seq < low_water);
                            live.watchers = waiting;
                            gone
                        }
                    }
                    other => {
                        let old = other.map(|l| std::mem::take(&mut l.watchers));
                        let live = Live {
                            slot: at,
                            flows,
                            low_water,
                            watchers: Vec::new(),
                        };
                        map.insert(Arc::clone(slot.client_id()), live);
                        old.unwrap_or_default()
                    }
                },
                None if map.get(slot.client_id()).is_some_and(|l| l.slot == at) => map
                    .remove(slot.client_id())
                    .map(|l| l.watchers)
                    .unwrap_or_default(),
                None => Vec::new(),
            }
        };
        for (_, w) in woken {
            w.wake();
        }
    }

    /// The copy of an attached session's in-flight flows, if kept.
    pub(crate) fn live_flows_of(&self, client_id: &str) -> Option<Box<Flows>> {
        if !self.changes.live() {
            return None;
        }
        lock(&self.changes.flows)
            .get(client_id)
            .map(|l| l.flows.clone())
    }

    /// For a connection of a persistent session with `--durability
    /// batched`: copies its in-flight flows for the store and marks the
    /// session changed, so the next commit writes them; and records which
    /// of its messages are gone (see [`Router::copies_gone`]).
    pub fn flows_changed(&self, slot: &ClientSlot, session: &Session) {
        if !self.changes.live() || session.is_clean() {
            return;
        }
        // Taken from the queue in order, acknowledged in any: what is
        // below both the queue's head and every message in flight is gone.
        let head = lock(&slot.outbox).head().0;
        let low_water = session
            .outgoing()
            .iter()
            .map(|e| e.seq.0)
            .min()
            .map_or(head, |m| m.min(head));
        self.update_live(
            slot,
            Some(session.flows_copy().unwrap_or_default()),
            low_water,
        );
        self.changes.session(slot);
    }

    /// How many publishers watch the session attached as `client_id`.
    #[cfg(test)]
    pub(crate) fn watchers_of(&self, client_id: &str) -> usize {
        lock(&self.changes.flows)
            .get(client_id)
            .map_or(0, |l| l.watchers.len())
    }

    /// Whether every one of `copies` (a subscriber's slot and a message's
    /// number there, from [`super::Routed::copies`]) has left its
    /// persistent session: delivered and, unless QoS 0, acknowledged by
    /// the subscriber. Then a QoS 1 PUBLISH that made only these copies
    /// needs no disk before its PUBACK: what the disk would keep is
    /// already where it was going, and a crash can lose nothing of it
    /// (issue 14). If not, `waiter` is woken when the first copy not gone
    /// may be. The copies found gone are taken out of `copies` (a copy
    /// delivered stays delivered), so each is looked at until it is gone,
    /// not at every look.
    pub fn copies_gone(&self, copies: &mut Vec<(Arc<ClientSlot>, u64)>, waiter: &Waker) -> bool {
        let mut map = lock(&self.changes.flows);
        let mut gone = 0;
        for (slot, seq) in copies.iter() {
            let live = match map.get_mut(slot.client_id()) {
                Some(live) if live.slot == address(slot) => live,
                // Not attached (or no longer, or another session now):
                // the commit decides.
                _ => break,
            };
            if *seq >= live.low_water {
                let room = live.watchers.len() < MAX_WATCHERS;
                match live.watchers.iter_mut().find(|(_, w)| w.will_wake(waiter)) {
                    Some(entry) => entry.0 = *seq,
                    // Past the bound the publisher waits for its commit.
                    None if room => live.watchers.push((*seq, waiter.clone())),
                    None => {}
                }
                break;
            }
            gone += 1;
        }
        drop(map);
        copies.drain(..gone);
        copies.is_empty()
    }

    /// Takes what changed since the last call.
    pub fn take_changes(&self) -> Changed {
        std::mem::take(&mut *lock(&self.changes.changed))
    }

    /// Puts back what a failed save did not write, to be written next time.
    pub fn restore_changes(&self, back: Changed) {
        let mut changed = lock(&self.changes.changed);
        changed.sessions.extend(back.sessions);
        changed.retained.extend(back.retained);
    }
}
