//! The ACL (`--acl-file`) where the router applies it: SUBSCRIBE grants,
//! a client's PUBLISH and will, and each delivery, retained ones included.
//!
//! Without an ACL none of this runs: [`Router::acl_now`] is `None` and
//! routing checks nothing per message. With one, a subscription whose
//! whole filter the ACL lets its client read is marked [`Granted::readable`]
//! when it is made, and deliveries through it are not checked again; the
//! others are checked per message with the client's id and user name.
//!
//! A reload ([`Router::replace_acl`]) swaps the rules under the index's
//! write lock and clears every mark at once, so from then on each delivery
//! is checked against the new rules; a SUBSCRIBE decides under the same
//! lock, so it never marks a subscription by rules already replaced.
//!
//! Lock order: the index, then the ACL's lock; the ACL's lock is never
//! held while another is taken (the rules are copied out as an `Arc`).

use std::sync::Arc;

use crossbeam_utils::sync::ShardedLock;
use mqtt_codec::QoS;
use mqtt_codec::topic::TopicName;

use super::slot::lock;
use super::{ClientSlot, Router, read_index, write_index};
use crate::acl::{Acl, Identity, Need};

/// What the subscription index holds for one (filter, client): the QoS
/// granted, and whether the ACL lets the client read every topic the filter
/// matches (always true without an ACL, where nothing is checked).
///
/// Ordered by QoS first, so that of several matching subscriptions the
/// highest QoS is chosen [MQTT-3.3.5-1]; of equal QoS, a readable one. A
/// message reaching a client through a subscription that is not marked is
/// checked, so losing a mark to a higher QoS costs a check, never a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Granted {
    /// The QoS granted.
    pub qos: QoS,
    /// Every topic of the filter is readable: deliveries need no check.
    pub readable: bool,
}

impl Granted {
    /// A subscription whose deliveries are checked if an ACL is in force
    /// (one restored from the store, decided before a reload).
    pub fn checked(qos: QoS) -> Self {
        Self {
            qos,
            readable: false,
        }
    }
}

/// The ACL in force, replaced whole by a reload.
pub(super) type AclCell = ShardedLock<Arc<Acl>>;

impl Router {
    /// This router with `acl` in force: from now on every SUBSCRIBE,
    /// PUBLISH, will and delivery is checked against it.
    pub fn with_acl(mut self, acl: Acl) -> Self {
        self.acl = Some(ShardedLock::new(Arc::new(acl)));
        self
    }

    /// Puts reloaded rules in force: new checks and the deliveries of
    /// existing subscriptions follow them. Returns false, changing nothing,
    /// when the router started without an ACL.
    pub fn replace_acl(&self, acl: Acl) -> bool {
        let Some(cell) = &self.acl else {
            return false;
        };
        let mut index = write_index(&self.subscriptions);
        *cell.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(acl);
        index.for_each_value_mut(|g| g.readable = false);
        true
    }

    /// The rules in force, or `None` without an ACL.
    pub(super) fn acl_now(&self) -> Option<Arc<Acl>> {
        let cell = self.acl.as_ref()?;
        Some(Arc::clone(&read_index(cell)))
    }

    /// Whether the client holding `slot` may `need` `topic` under `acl`.
    pub(super) fn slot_allows(acl: &Acl, slot: &ClientSlot, topic: &TopicName, need: Need) -> bool {
        let own = lock(&slot.ownership);
        let who = Identity {
            username: own.username.as_deref(),
            client_id: slot.client_id(),
        };
        acl.allows(who, topic, need)
    }

    /// Whether the client holding `slot` may publish to `topic` (always,
    /// without an ACL).
    pub fn may_write(&self, slot: &ClientSlot, topic: &TopicName) -> bool {
        match self.acl_now() {
            Some(acl) => Self::slot_allows(&acl, slot, topic, Need::Write),
            None => true,
        }
    }
}
