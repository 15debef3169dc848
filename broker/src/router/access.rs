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
//! lock, so it never marks a subscription by rules already replaced, and
//! routing reads the rules under the read lock it looks up the marks with,
//! so a message follows old marks and old rules or new and new. Messages
//! already queued are not checked again on delivery: a reload changes what
//! is routed from then on (docs/broker.md, "Access control").
//!
//! Lock order: the index, then the ACL's lock; the ACL's lock is never
//! held while another is taken (the rules are copied out as an `Arc`).

use std::sync::Arc;

use crossbeam_utils::sync::ShardedLock;
use mqtt_codec::QoS;
use mqtt_codec::topic::TopicName;

use super::slot::lock;
use super::{ClientRef, ClientSlot, Router, read_index, write_index};
use crate::acl::{Acl, Identity, Need};
use crate::session::Session;

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

    /// Marks every subscription of `session` (held by `slot`) to be
    /// checked per message: a session resumed under another user name may
    /// not read through marks made for the old one. Nothing without an ACL.
    pub(super) fn recheck_subscriptions(&self, slot: &Arc<ClientSlot>, session: &Session) {
        if self.acl.is_none() || session.subscriptions().is_empty() {
            return;
        }
        let key = ClientRef(Arc::clone(slot));
        let mut index = write_index(&self.subscriptions);
        for (filter, qos) in session.subscriptions() {
            index.insert(filter, key.clone(), Granted::checked(*qos));
        }
    }

    /// The rules in force, or `None` without an ACL: one branch on the
    /// path of every PUBLISH, the rest out of line.
    #[inline]
    pub(super) fn acl_now(&self) -> Option<Arc<Acl>> {
        self.acl.as_ref().map(Self::current)
    }

    #[inline(never)]
    fn current(cell: &AclCell) -> Arc<Acl> {
        Arc::clone(&read_index(cell))
    }

    /// Whether the client holding `slot` may `need` `topic` under `acl`.
    /// Out of line: routing without an ACL never calls it, and its code
    /// should not crowd the routing loop.
    #[inline(never)]
    pub(super) fn slot_allows(acl: &Acl, slot: &ClientSlot, topic: &TopicName, need: Need) -> bool {
        let own = lock(&slot.ownership);
        if own.acl_exempt {
            return true;
        }
        let who = Identity {
            username: own.username.as_deref(),
            client_id: slot.client_id(),
        };
        acl.allows(who, topic, need)
    }

    /// Whether the client holding `slot` may publish to `topic` (always,
    /// without an ACL).
    #[inline]
    pub fn may_write(&self, slot: &ClientSlot, topic: &TopicName) -> bool {
        match self.acl_now() {
            Some(acl) => Self::slot_allows(&acl, slot, topic, Need::Write),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use mqtt_codec::{Message, SubAckReturnCode};

    use super::super::test_support::{msg, router, subscribe, subscribe_session};
    use super::super::{Attachment, Router};
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    const RULES: &str = "\
topic read public/#
topic deny public/secret
topic write public/in
user alice
topic readwrite alice/#
pattern read devices/%c/#
";

    fn acl(text: &str) -> Acl {
        Acl::parse(text, Path::new("acl")).expect("valid")
    }

    fn with_rules(text: &str) -> Router {
        router(0).with_acl(acl(text))
    }

    async fn client(r: &Router, id: &str, username: Option<&str>) -> Attachment {
        r.connect_as(id, None, username, true, 10, WAIT)
            .await
            .expect("attached")
    }

    fn topics(a: &Attachment) -> Vec<String> {
        let mut got: Vec<Message> = Vec::new();
        a.slot.take(&mut got, usize::MAX, usize::MAX);
        got.iter().map(|m| m.topic.as_str().to_owned()).collect()
    }

    #[tokio::test]
    async fn a_filter_with_nothing_readable_gets_0x80_and_the_others_are_granted() {
        let r = with_rules(RULES);
        let mut anon = client(&r, "anon", None).await;
        let (suback, _) = subscribe_session(
            &r,
            &mut anon,
            subscribe(&[
                ("public/news", QoS::AtLeastOnce),
                ("public/secret", QoS::AtLeastOnce),
                ("alice/#", QoS::AtMostOnce),
                ("#", QoS::ExactlyOnce),
            ]),
        );
        assert_eq!(
            suback.return_codes,
            vec![
                SubAckReturnCode::Granted(QoS::AtLeastOnce),
                SubAckReturnCode::Failure,
                SubAckReturnCode::Failure,
                SubAckReturnCode::Granted(QoS::ExactlyOnce),
            ]
        );
        // Refused filters are not subscriptions.
        assert_eq!(r.subscription_count(), 2);
    }

    /// The broker's own bridge is exempt from the ACL; a client that takes
    /// its session over (same client id, same missing user name) is not,
    /// and reads nothing through the subscriptions the bridge made.
    #[tokio::test]
    async fn a_client_taking_over_an_exempt_bridge_session_is_checked_again() {
        let r = with_rules(RULES);
        let persistent = |id| r.connect_as(id, None, None, false, 10, WAIT);
        let mut bridge = persistent("b").await.expect("attached");
        bridge.slot.set_acl_exempt();
        subscribe_session(&r, &mut bridge, subscribe(&[("#", QoS::AtMostOnce)]));
        r.publish(&msg("alice/x", QoS::AtMostOnce, false, "m"));
        assert_eq!(topics(&bridge), ["alice/x"]);
        r.disconnect(&bridge.slot, bridge.session);
        let taker = persistent("b").await.expect("attached");
        assert!(taker.session_present);
        for t in ["alice/x", "public/news"] {
            r.publish(&msg(t, QoS::AtMostOnce, false, "m"));
        }
        assert_eq!(topics(&taker), ["public/news"]);
    }

    #[tokio::test]
    async fn a_hash_subscriber_receives_only_what_it_may_read() {
        let r = with_rules(RULES);
        let mut anon = client(&r, "anon", None).await;
        let mut alice = client(&r, "dev1", Some("alice")).await;
        subscribe_session(&r, &mut anon, subscribe(&[("#", QoS::AtMostOnce)]));
        subscribe_session(&r, &mut alice, subscribe(&[("#", QoS::AtMostOnce)]));
        for t in [
            "public/news",
            "public/secret",
            "public/in",
            "alice/x",
            "devices/dev1/t",
            "devices/dev2/t",
            "other",
        ] {
            r.publish(&msg(t, QoS::AtMostOnce, false, "m"));
        }
        assert_eq!(topics(&anon), ["public/news", "public/in"]);
        assert_eq!(topics(&alice), ["alice/x", "devices/dev1/t"]);
    }

    #[tokio::test]
    async fn a_denied_publish_is_neither_delivered_nor_retained() {
        let r = router(0).with_acl(acl("topic readwrite public/#\ntopic read ro/#\n"));
        let mut sub = client(&r, "sub", None).await;
        subscribe_session(&r, &mut sub, subscribe(&[("#", QoS::AtLeastOnce)]));
        let publisher = client(&r, "pub", None).await;
        let denied = r.publish_paced(&msg("ro/x", QoS::AtLeastOnce, true, "m"), &publisher.slot);
        assert_eq!(denied.queued, 0);
        assert_eq!(r.retained_count(), 0);
        let allowed = r.publish_paced(
            &msg("public/x", QoS::AtLeastOnce, true, "m"),
            &publisher.slot,
        );
        assert_eq!(allowed.queued, 1);
        assert_eq!(topics(&sub), ["public/x"]);
        // `$SYS` is the broker's, whatever the ACL says.
        let r = router(0).with_acl(acl("topic readwrite $SYS/#\n"));
        let publisher = client(&r, "pub", None).await;
        let sys = msg("$SYS/x", QoS::AtMostOnce, true, "m");
        assert_eq!(r.publish_paced(&sys, &publisher.slot).queued, 0);
        assert_eq!(r.retained_count(), 0);
    }

    #[tokio::test]
    async fn a_retained_message_the_client_may_not_read_is_not_sent() {
        let r = with_rules(RULES);
        for t in ["public/news", "public/secret"] {
            r.publish(&msg(t, QoS::AtMostOnce, true, "kept"));
        }
        let mut anon = client(&r, "anon", None).await;
        let (_, retained) =
            subscribe_session(&r, &mut anon, subscribe(&[("public/#", QoS::AtMostOnce)]));
        let got: Vec<&str> = retained.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(got, ["public/news"]);
    }

    #[tokio::test]
    async fn a_will_is_published_only_where_its_client_may_write() {
        let r = router(0).with_acl(acl("topic readwrite public/#\ntopic read ro/#\n"));
        let mut sub = client(&r, "sub", None).await;
        subscribe_session(&r, &mut sub, subscribe(&[("#", QoS::AtMostOnce)]));
        let dying = client(&r, "dying", None).await;
        assert_eq!(
            r.publish_will(&msg("ro/will", QoS::AtMostOnce, false, "w"), &dying.slot),
            0
        );
        assert_eq!(
            r.publish_will(
                &msg("public/will", QoS::AtMostOnce, false, "w"),
                &dying.slot
            ),
            1
        );
        assert_eq!(topics(&sub), ["public/will"]);
    }

    /// A persistent session resumed under another user name reads by that
    /// name's rules, through subscriptions the old name was found to read
    /// whole.
    #[tokio::test]
    async fn a_session_resumed_under_another_name_reads_by_its_rules() {
        let r = router(0).with_acl(acl(
            "user alice\ntopic read a/#\nuser bob\ntopic read b/#\n",
        ));
        let mut a = r
            .connect_as("shared", None, Some("alice"), false, 10, WAIT)
            .await
            .expect("attached");
        subscribe_session(&r, &mut a, subscribe(&[("a/#", QoS::AtMostOnce)]));
        r.disconnect(&a.slot, a.session);
        let b = r
            .connect_as("shared", None, Some("bob"), false, 10, WAIT)
            .await
            .expect("attached");
        assert!(b.session_present);
        r.publish(&msg("a/x", QoS::AtMostOnce, false, "m"));
        assert!(topics(&b).is_empty(), "bob may not read a/x");
    }

    /// A reload applies to subscriptions made before it, even those its
    /// old rules marked readable whole.
    /// A session restored from the store is checked by the user name its
    /// client last gave, verified or not. Before, only a verified name was
    /// restored, and alice's session was checked as anonymous: it got
    /// `public/x` and lost `a/x`.
    #[tokio::test]
    async fn a_restored_session_is_checked_by_its_unverified_user_name() {
        let r = with_rules("topic readwrite public/#\nuser alice\ntopic readwrite a/#\n");
        let mut session = Session::new("alice1", false, 10);
        let all = mqtt_codec::topic::TopicFilter::new("#").expect("valid");
        session.subscribed(all, QoS::AtLeastOnce);
        r.restore_session(super::super::ParkedSession {
            session,
            queued: Vec::new(),
            queue_start: crate::session::Seq(super::super::outbox::fresh_head()),
            offline_since: std::time::SystemTime::now(),
            user: None,
            username: Some("alice".into()),
            retained_owed: Vec::new(),
        });
        r.publish(&msg("public/x", QoS::AtLeastOnce, false, "m"));
        r.publish(&msg("a/x", QoS::AtLeastOnce, false, "m"));
        let alice = r
            .connect_as("alice1", None, Some("alice"), false, 10, WAIT)
            .await
            .expect("attached");
        assert_eq!(topics(&alice), ["a/x"]);
    }

    #[tokio::test]
    async fn reloaded_rules_apply_to_existing_subscriptions() {
        let r = router(0).with_acl(acl("topic read a/#\n"));
        let mut sub = client(&r, "sub", None).await;
        subscribe_session(&r, &mut sub, subscribe(&[("a/#", QoS::AtMostOnce)]));
        r.publish(&msg("a/secret", QoS::AtMostOnce, false, "m"));
        assert_eq!(topics(&sub), ["a/secret"]);
        assert!(r.replace_acl(acl("topic read a/#\ntopic deny a/secret\n")));
        r.publish(&msg("a/secret", QoS::AtMostOnce, false, "m"));
        r.publish(&msg("a/open", QoS::AtMostOnce, false, "m"));
        assert_eq!(topics(&sub), ["a/open"]);
        // Without an ACL to start with there is nothing to replace.
        assert!(!router(0).replace_acl(acl("topic read a/#\n")));
    }
}
