//! Expiry of persistent sessions whose client stays away
//! (`--persistent-client-expiration`, mosquitto's
//! `persistent_client_expiration`).
//!
//! MQTT 3.1.1 keeps a Clean Session 0 session until the client comes back
//! [MQTT-3.1.2-4], but §4.1 lets storage be bounded by an administrative
//! policy such as "the maximum time that Session state is stored between
//! Network Connections". Without one, every client id that ever connected
//! with Clean Session 0 and never returned keeps its subscriptions and a
//! queue of up to `--max-queued` messages forever. The sweep here drops a
//! parked session once its client has been offline longer than the limit:
//! its subscriptions leave the index, its queue is emptied and its slot is
//! removed, so a returning client starts afresh (Session Present 0).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::outbox::Mode;
use super::slot::{ClientSlot, lock};
use super::{Router, write_index};
use crate::router::ClientRef;

/// One session the sweep dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Its client id.
    pub client_id: Arc<str>,
    /// How long its client had been away.
    pub offline: Duration,
    /// Messages that were queued for it and are now discarded.
    pub queued: usize,
}

impl Router {
    /// Drops every parked session whose client went away more than
    /// `max_offline` before `now`, and returns what was dropped. A session a
    /// client is reconnecting to is either taken by that connection first
    /// (and kept) or removed first (and the connection starts a new one):
    /// the registry and ownership locks decide, as for a clean disconnect.
    pub fn expire_parked(&self, max_offline: Duration, now: SystemTime) -> Vec<Expired> {
        let slots: Vec<Arc<ClientSlot>> = lock(&self.clients).values().cloned().collect();
        let mut expired = Vec::new();
        for slot in slots {
            // A cheap look first, without the registry lock.
            if !is_due(&lock(&slot.ownership), max_offline, now) {
                continue;
            }
            let (session, offline) = {
                let mut clients = lock(&self.clients);
                let mut own = lock(&slot.ownership);
                // Checked again under both locks: the client may have come
                // back since the first look.
                if !is_due(&own, max_offline, now) {
                    continue;
                }
                let Some(parked) = own.parked.take() else {
                    continue;
                };
                own.removed = true;
                slot.set_stored(false);
                self.changes.session(&slot);
                let offline = now.duration_since(parked.offline_since).unwrap_or_default();
                let session = parked.session;
                if clients
                    .get(slot.client_id())
                    .is_some_and(|s| Arc::ptr_eq(s, &slot))
                {
                    clients.remove(slot.client_id());
                }
                (session, offline)
            };
            let queued = {
                let mut outbox = lock(&slot.outbox);
                let n = outbox.queued().count();
                outbox.set_mode(Mode::Closed);
                n
            };
            if !session.subscriptions().is_empty() {
                let key = ClientRef(Arc::clone(&slot));
                let mut index = write_index(&self.subscriptions);
                for filter in session.subscriptions().keys() {
                    index.remove(filter, &key);
                }
            }
            // A takeover waiting on this slot looks the id up again.
            slot.detached.notify_waiters();
            expired.push(Expired {
                client_id: Arc::clone(slot.client_id()),
                offline,
                queued,
            });
        }
        if !expired.is_empty() {
            self.stats
                .sessions_expired
                .fetch_add(expired.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        expired
    }
}

/// Whether a slot holds a parked session whose client left more than
/// `max_offline` before `now`.
fn is_due(own: &super::slot::Ownership, max_offline: Duration, now: SystemTime) -> bool {
    !own.attached
        && !own.removed
        && own.parked.as_deref().is_some_and(|p| {
            now.duration_since(p.offline_since)
                .is_ok_and(|away| away > max_offline)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::test_support::{self, router, subscribe, subscribe_session};
    use mqtt_codec::Message;
    use mqtt_codec::QoS;

    const WAIT: Duration = Duration::from_secs(5);
    const LIMIT: Duration = Duration::from_secs(3600);

    fn msg(payload: &'static str) -> Message {
        test_support::msg("t", QoS::AtLeastOnce, false, payload)
    }

    /// A persistent session subscribed to `t` at QoS 1, parked (offline).
    async fn parked(r: &Router, id: &str) {
        let mut a = r.connect(id, false, 10, WAIT).await.expect("attached");
        let request = subscribe(&[("t", QoS::AtLeastOnce)]);
        subscribe_session(r, &mut a, request);
        r.disconnect(&a.slot, a.session);
    }

    #[tokio::test]
    async fn session_offline_past_the_limit_is_dropped_with_its_queue() {
        let r = router(0);
        parked(&r, "gone").await;
        assert_eq!(r.publish(&msg("queued while away")), 1);
        let later = SystemTime::now() + LIMIT + Duration::from_secs(1);
        let expired = r.expire_parked(LIMIT, later);
        assert_eq!(expired.len(), 1);
        assert_eq!(&*expired[0].client_id, "gone");
        assert_eq!(expired[0].queued, 1);
        assert!(expired[0].offline >= LIMIT);
        assert_eq!(r.session_count(), 0);
        assert_eq!(r.subscription_count(), 0);
        assert_eq!(r.publish(&msg("nobody listens")), 0);
        assert_eq!(
            r.stats()
                .sessions_expired
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // The client comes back to nothing.
        let back = r.connect("gone", false, 10, WAIT).await.expect("attached");
        assert!(!back.session_present);
        assert!(back.session.subscriptions().is_empty());
        let mut batch = Vec::new();
        back.slot.take(&mut batch, 10, 10);
        assert!(batch.is_empty(), "{batch:?}");
        // Nothing left to expire twice.
        assert!(r.expire_parked(LIMIT, later).is_empty());
    }

    #[tokio::test]
    async fn session_within_the_limit_or_attached_is_kept() {
        let r = router(0);
        parked(&r, "recent").await;
        let soon = SystemTime::now() + LIMIT / 2;
        assert!(r.expire_parked(LIMIT, soon).is_empty());
        assert_eq!(r.session_count(), 1);
        // Back online: however old its last disconnect, an attached
        // session is never expired.
        let a = r
            .connect("recent", false, 10, WAIT)
            .await
            .expect("attached");
        assert!(a.session_present);
        let much_later = SystemTime::now() + LIMIT * 10;
        assert!(r.expire_parked(LIMIT, much_later).is_empty());
        assert_eq!(r.subscription_count(), 1);
        // Parked again, its clock starts over.
        r.disconnect(&a.slot, a.session);
        assert!(r.expire_parked(LIMIT, soon).is_empty());
        assert_eq!(r.expire_parked(LIMIT, much_later).len(), 1);
    }
}
