//! Router behaviour without sockets: outboxes are read directly.

use std::task::Poll;
use std::time::Duration;

use super::test_support::{msg, router, subscribe, subscribe_session, unsubscribe_session};
use super::*;
use mqtt_codec::topic::TopicFilter;
use mqtt_codec::{PacketId, QoS, Unsubscribe};

const WAIT: Duration = Duration::from_secs(5);

/// Client "a", clean session, attached and subscribed to `filters`.
async fn subscribed(r: &Router, filters: &[(&str, QoS)]) -> Attachment {
    let mut a = r.connect("a", true, 10, WAIT).await.expect("attached");
    subscribe_session(r, &mut a, subscribe(filters));
    a
}

/// A second connection with `old`'s client id (persistent session): the old
/// one is told to go and hands its session back, as its connection task
/// would; returns the newcomer's attachment.
async fn take_over(r: &Arc<Router>, old: Attachment) -> Attachment {
    let id = old.slot.client_id().to_owned();
    let r2 = Arc::clone(r);
    let newcomer = tokio::spawn(async move { r2.connect(&id, false, 10, WAIT).await });
    let event = std::future::poll_fn(|cx| old.slot.poll_event(cx, false)).await;
    assert_eq!(event, SlotEvent::Kicked(Kick::TakenOver));
    r.disconnect(&old.slot, old.session);
    newcomer.await.expect("task").expect("attached")
}

fn drain(slot: &ClientSlot) -> Vec<Message> {
    let mut batch = Vec::new();
    slot.take(&mut batch, usize::MAX, usize::MAX);
    batch
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_at_the_highest_qos() {
    let r = router(0);
    let mut a = r.connect("a", true, 10, WAIT).await.expect("attached");
    let (suback, _) = subscribe_session(
        &r,
        &mut a,
        subscribe(&[("x/#", QoS::AtMostOnce), ("x/+", QoS::ExactlyOnce)]),
    );
    assert_eq!(suback.return_codes.len(), 2);
    assert_eq!(r.publish(&msg("x/y", QoS::AtLeastOnce, false, "m")), 1);
    let got = drain(&a.slot);
    assert_eq!(got, vec![msg("x/y", QoS::AtLeastOnce, false, "m")]);
}

#[tokio::test]
async fn retained_messages_are_sent_on_subscribe_with_retain_set() {
    let r = router(0);
    r.publish(&msg("r/1", QoS::ExactlyOnce, true, "kept"));
    r.publish(&msg("r/2", QoS::AtMostOnce, true, "kept too"));
    r.publish(&msg("r/2", QoS::AtMostOnce, true, ""));
    assert_eq!(r.retained_count(), 1);
    let mut a = r.connect("a", true, 10, WAIT).await.expect("attached");
    let (_, retained) = subscribe_session(&r, &mut a, subscribe(&[("r/#", QoS::AtLeastOnce)]));
    assert_eq!(retained, vec![msg("r/1", QoS::AtLeastOnce, true, "kept")]);
    // Live forwards carry RETAIN=0 [MQTT-3.3.1-9].
    r.publish(&msg("r/1", QoS::AtLeastOnce, true, "new"));
    assert_eq!(
        drain(&a.slot),
        vec![msg("r/1", QoS::AtLeastOnce, false, "new")]
    );
}

#[tokio::test]
async fn clients_cannot_publish_into_sys() {
    let r = router(0);
    let a = subscribed(&r, &[("$SYS/#", QoS::AtMostOnce)]).await;
    assert_eq!(
        r.publish_from_client(&msg("$SYS/broker/uptime", QoS::AtMostOnce, true, "1")),
        0
    );
    assert!(drain(&a.slot).is_empty());
    assert_eq!(r.retained_count(), 0);
    assert_eq!(
        r.publish(&msg("$SYS/broker/uptime", QoS::AtMostOnce, false, "1")),
        1
    );
}

#[tokio::test]
async fn full_outbox_drops_and_counts() {
    let r = router(2);
    let a = subscribed(&r, &[("t", QoS::AtMostOnce)]).await;
    for _ in 0..5 {
        r.publish(&msg("t", QoS::AtMostOnce, false, "m"));
    }
    assert_eq!(Stats::get(&r.stats().publish_dropped), 3);
    let mut batch = Vec::new();
    let taken = a.slot.take(&mut batch, 10, 10);
    assert!(!taken.more);
    assert_eq!((batch.len(), taken.dropped), (2, 3));
}

#[tokio::test]
async fn persistent_session_is_parked_and_resumed_with_its_queue() {
    let r = router(0);
    let mut a = r.connect("p", false, 10, WAIT).await.expect("attached");
    assert!(!a.session_present);
    subscribe_session(&r, &mut a, subscribe(&[("t", QoS::AtLeastOnce)]));
    r.disconnect(&a.slot, a.session);
    r.publish(&msg("t", QoS::AtLeastOnce, false, "while away"));
    r.publish(&msg("t", QoS::AtMostOnce, false, "qos0 not kept"));
    let b = r.connect("p", false, 10, WAIT).await.expect("attached");
    assert!(b.session_present);
    assert_eq!(
        drain(&b.slot),
        vec![msg("t", QoS::AtLeastOnce, false, "while away")]
    );
    r.disconnect(&b.slot, b.session);
    // A clean connection discards the stored session.
    let c = r.connect("p", true, 10, WAIT).await.expect("attached");
    assert!(!c.session_present);
    assert_eq!(r.publish(&msg("t", QoS::AtLeastOnce, false, "gone")), 0);
    r.disconnect(&c.slot, c.session);
    assert_eq!(r.session_count(), 0);
}

#[tokio::test]
async fn takeover_kicks_the_old_connection_and_waits_for_it() {
    let r = Arc::new(router(0));
    let mut a = r.connect("same", false, 10, WAIT).await.expect("attached");
    subscribe_session(&r, &mut a, subscribe(&[("t", QoS::AtLeastOnce)]));
    let b = take_over(&r, a).await;
    assert!(b.session_present);
    assert_eq!(b.session.subscriptions().len(), 1);
}

/// Issue 14: bob may not take over alice's session, connected or parked,
/// nor is she kicked; alice herself still may.
#[tokio::test]
async fn another_user_may_not_take_over_a_session() {
    let r = router(0);
    let mut a = r
        .connect_as("shared", Some("alice"), Some("alice"), false, 10, WAIT)
        .await
        .expect("attached");
    subscribe_session(&r, &mut a, subscribe(&[("t", QoS::AtLeastOnce)]));
    for intruder in [Some("bob"), None] {
        let err = r
            .connect_as("shared", intruder, intruder, false, 10, WAIT)
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, AttachError::HeldByAnotherUser { client_id } if client_id == "shared"),
            "{err:?}"
        );
    }
    // Alice was not told to go.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(a.slot.poll_event(&mut cx, false).is_pending());
    // Parked, her session and its queue stay hers.
    r.disconnect(&a.slot, a.session);
    r.publish(&msg("t", QoS::AtLeastOnce, false, "for alice"));
    let err = r
        .connect_as("shared", Some("bob"), Some("bob"), true, 10, WAIT)
        .await
        .expect_err("refused");
    assert!(matches!(err, AttachError::HeldByAnotherUser { .. }));
    let back = r
        .connect_as("shared", Some("alice"), Some("alice"), false, 10, WAIT)
        .await
        .expect("her own session");
    assert!(back.session_present);
    assert_eq!(
        drain(&back.slot),
        vec![msg("t", QoS::AtLeastOnce, false, "for alice")]
    );
}

/// On a paused clock: the new connection waits the whole limit, and no
/// longer, for a connection that does not let go.
#[tokio::test(start_paused = true)]
async fn takeover_gives_up_when_the_old_connection_hangs() {
    let r = router(0);
    let _a = r.connect("same", true, 10, WAIT).await.expect("attached");
    // The listener's limit (TAKEOVER_WAIT).
    let limit = Duration::from_secs(10);
    let t0 = tokio::time::Instant::now();
    let err = r
        .connect("same", true, 10, limit)
        .await
        .expect_err("times out");
    assert_eq!(t0.elapsed(), limit);
    let AttachError::Timeout(err) = err else {
        panic!("a timeout, not {err:?}");
    };
    assert_eq!(err.client_id, "same");
    assert_eq!(err.waited, limit);
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let r = router(0);
    let mut a = subscribed(&r, &[("t", QoS::AtMostOnce)]).await;
    assert_eq!(r.subscription_count(), 1);
    unsubscribe_session(
        &r,
        &mut a,
        Unsubscribe {
            packet_id: PacketId::new(2).expect("non-zero"),
            filters: vec![
                TopicFilter::new("t").expect("valid"),
                TopicFilter::new("nope").expect("valid"),
            ],
        },
    );
    assert_eq!(r.subscription_count(), 0);
    assert_eq!(r.publish(&msg("t", QoS::AtMostOnce, false, "m")), 0);
}

#[tokio::test]
async fn a_message_into_the_empty_outbox_wakes_the_waiting_connection() {
    let r = router(0);
    let a = subscribed(&r, &[("t", QoS::AtMostOnce)]).await;
    let slot = Arc::clone(&a.slot);
    let waiter =
        tokio::spawn(async move { std::future::poll_fn(|cx| slot.poll_event(cx, true)).await });
    // Let the waiter find the outbox empty and leave its waker.
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    r.publish(&msg("t", QoS::AtMostOnce, false, "m"));
    let event = tokio::time::timeout(WAIT, waiter)
        .await
        .expect("woken")
        .expect("task");
    assert_eq!(event, SlotEvent::Messages);
}

#[tokio::test]
async fn kick_all_tells_every_attached_connection_to_end() {
    let r = router(0);
    let a = r.connect("a", true, 10, WAIT).await.expect("attached");
    let b = r.connect("b", false, 10, WAIT).await.expect("attached");
    r.kick_all(Kick::Shutdown);
    for slot in [&a.slot, &b.slot] {
        // Messages are not asked for, but a kick is always reported.
        let event = std::future::poll_fn(|cx| slot.poll_event(cx, false)).await;
        assert_eq!(event, SlotEvent::Kicked(Kick::Shutdown));
    }
}

#[tokio::test]
async fn a_new_connection_does_not_inherit_the_kick_meant_for_the_old_one() {
    let r = Arc::new(router(0));
    let a = r.connect("same", false, 10, WAIT).await.expect("attached");
    let b = take_over(&r, a).await;
    let pending = std::future::poll_fn(|cx| Poll::Ready(b.slot.poll_event(cx, true))).await;
    assert_eq!(pending, Poll::Pending);
}

/// Issue 14: the store saves the sessions of connected persistent clients
/// too, with the subscriptions the router granted and removed since they
/// connected; a clean session is not saved.
#[tokio::test]
async fn sessions_for_store_include_connected_persistent_sessions() {
    let r = router(0);
    let mut p = r.connect("p", false, 10, WAIT).await.expect("attached");
    subscribe_session(
        &r,
        &mut p,
        subscribe(&[("keep", QoS::ExactlyOnce), ("drop", QoS::AtMostOnce)]),
    );
    unsubscribe_session(
        &r,
        &mut p,
        Unsubscribe {
            packet_id: PacketId::new(2).expect("non-zero"),
            filters: vec![TopicFilter::new("drop").expect("valid")],
        },
    );
    let c = subscribed(&r, &[("clean", QoS::AtLeastOnce)]).await;
    let stored = r.sessions_for_store();
    assert_eq!(stored.len(), 1, "only the persistent session");
    let subs = stored[0].session.subscriptions();
    assert_eq!(&**stored[0].session.client_id(), "p");
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs.get(&TopicFilter::new("keep").expect("valid")),
        Some(&QoS::ExactlyOnce)
    );
    r.disconnect(&c.slot, c.session);
    r.disconnect(&p.slot, p.session);
}

/// Retains `n` messages `r/0000`, `r/0001`, ... (QoS 0).
fn retain_many(r: &Router, n: usize) {
    for i in 0..n {
        let topic = format!("r/{i:04}");
        r.publish(&Message {
            topic: mqtt_codec::topic::TopicName::new(&topic).expect("valid"),
            ..msg("x", QoS::AtMostOnce, true, "m")
        });
    }
}

/// The topics waiting in `a`'s outbox, taken out.
fn drained_topics(slot: &ClientSlot) -> Vec<String> {
    drain(slot).iter().map(|m| m.topic.to_string()).collect()
}

/// Issue 14: a SUBSCRIBE queues at most a chunk of its retained messages;
/// the rest follow, in order and one copy per filter, as the outbox is
/// drained and fed, never past `--max-queued`.
#[tokio::test]
async fn a_big_retained_delivery_is_fed_as_the_outbox_drains() {
    for (max_queued, ahead) in [(0, RETAINED_AHEAD), (10, 10)] {
        let r = router(max_queued);
        retain_many(&r, 1_000);
        let a = r.connect("a", true, 10, WAIT).await.expect("attached");
        let request = subscribe(&[("r/+", QoS::AtMostOnce), ("#", QoS::AtLeastOnce)]);
        r.subscribe(&a.slot, &request.filters);
        assert_eq!(lock(&a.slot.outbox).len(), ahead, "one chunk at SUBSCRIBE");
        let mut got = drained_topics(&a.slot);
        while r.feed_retained(&a.slot) {
            assert!(lock(&a.slot.outbox).len() <= ahead);
            got.extend(drained_topics(&a.slot));
        }
        got.extend(drained_topics(&a.slot));
        let once: Vec<String> = (0..1_000).map(|i| format!("r/{i:04}")).collect();
        assert_eq!(
            got,
            [once.clone(), once].concat(),
            "max_queued {max_queued}"
        );
        assert!(lock(&a.slot.retained).is_none(), "nothing owed any more");
    }
}

/// Issue 14: an UNSUBSCRIBE stops what its filter still owes
/// [MQTT-3.10.4-2]; a clean session starts owing nothing.
#[tokio::test]
async fn unsubscribing_or_a_new_session_forgets_owed_retained_messages() {
    let r = router(0);
    retain_many(&r, 1_000);
    let mut a = r.connect("a", false, 10, WAIT).await.expect("attached");
    // Subscribed as the connection does, but the outbox left unfed.
    let request = subscribe(&[("r/#", QoS::AtMostOnce)]);
    let grants = r.subscribe(&a.slot, &request.filters);
    a.session.granted(request, grants.return_codes);
    assert_eq!(drain(&a.slot).len(), RETAINED_AHEAD);
    unsubscribe_session(
        &r,
        &mut a,
        Unsubscribe {
            packet_id: PacketId::new(2).expect("non-zero"),
            filters: vec![TopicFilter::new("r/#").expect("valid")],
        },
    );
    assert!(!r.feed_retained(&a.slot));
    assert!(drain(&a.slot).is_empty());
    // Still owed when the persistent session comes back; forgotten by a
    // clean one.
    r.subscribe(&a.slot, &subscribe(&[("r/#", QoS::AtMostOnce)]).filters);
    r.disconnect(&a.slot, a.session);
    let b = r.connect("a", false, 10, WAIT).await.expect("attached");
    assert!(b.session_present);
    assert_eq!(drain(&b.slot).len(), RETAINED_AHEAD);
    assert!(r.feed_retained(&b.slot));
    r.disconnect(&b.slot, b.session);
    let c = r.connect("a", true, 10, WAIT).await.expect("attached");
    assert!(!r.feed_retained(&c.slot));
    assert!(drain(&c.slot).is_empty());
}

/// A client marked a bridge (issue 16) gets none of its own messages back
/// (they would cross the bridge again) and RETAIN as published; any other
/// client gets its own messages and RETAIN cleared [MQTT-3.3.1-9].
#[tokio::test]
async fn a_bridge_gets_none_of_its_own_messages_and_retain_as_published() {
    let r = router(0);
    let bridge = subscribed(&r, &[("t/#", QoS::AtLeastOnce)]).await;
    bridge.slot.set_bridge(true);
    let mut other = r.connect("b", true, 10, WAIT).await.expect("attached");
    subscribe_session(&r, &mut other, subscribe(&[("t/#", QoS::AtLeastOnce)]));

    let from_bridge = msg("t/1", QoS::AtLeastOnce, true, "in");
    assert_eq!(r.publish_paced(&from_bridge, &bridge.slot).queued, 1);
    assert_eq!(drain(&bridge.slot), vec![]);
    assert_eq!(
        drain(&other.slot),
        vec![msg("t/1", QoS::AtLeastOnce, false, "in")]
    );

    let from_other = msg("t/2", QoS::AtLeastOnce, true, "out");
    assert_eq!(r.publish_paced(&from_other, &other.slot).queued, 2);
    assert_eq!(drain(&bridge.slot), vec![from_other.clone()]);
    assert_eq!(
        drain(&other.slot),
        vec![msg("t/2", QoS::AtLeastOnce, false, "out")]
    );
}

/// A waker that counts its wakes.
struct Counting(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Counting>, std::task::Waker) {
    let c = Arc::new(Counting(std::sync::atomic::AtomicUsize::new(0)));
    (Arc::clone(&c), std::task::Waker::from(c))
}

/// A router keeping live flows (`--durability batched`), a persistent
/// subscriber "s" to `t` at QoS 1, and a publisher "p".
async fn watched() -> (Router, Attachment, Attachment) {
    let r = router(0);
    r.track_changes(true);
    let mut s = r.connect("s", false, 10, WAIT).await.expect("attached");
    subscribe_session(&r, &mut s, subscribe(&[("t", QoS::AtLeastOnce)]));
    let p = r.connect("p", true, 10, WAIT).await.expect("attached");
    (r, s, p)
}

/// Issue 14 (`--durability batched`): a QoS 1 message's copy in a
/// persistent session is gone, so its publisher's PUBACK need not wait
/// for the disk, only once its subscriber acknowledged it: not while
/// queued, not while in flight. The publisher watching is woken then.
#[tokio::test]
async fn a_copy_is_gone_once_its_subscriber_acknowledged_it() {
    let (r, mut s, p) = watched().await;
    let mut copies = r
        .publish_paced(&msg("t", QoS::AtLeastOnce, false, "m"), &p.slot)
        .copies;
    assert_eq!(copies.len(), 1);
    // Neither a retained message nor a QoS 2 one is watched.
    for m in [
        msg("t", QoS::AtLeastOnce, true, "r"),
        msg("t", QoS::ExactlyOnce, false, "2"),
    ] {
        assert!(r.publish_paced(&m, &p.slot).copies.is_empty());
    }
    let (count, waker) = counting();
    assert!(!r.copies_gone(&mut copies, &waker), "queued");
    let mut batch = Vec::new();
    let first = s.slot.take(&mut batch, 1, 10).first;
    let publish = s.session.deliver(batch.remove(0), first).expect("sent");
    r.flows_changed(&s.slot, &s.session);
    assert!(!r.copies_gone(&mut copies, &waker), "in flight");
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    let id = publish.packet_id().expect("QoS 1");
    s.session
        .handle(
            mqtt_codec::Packet::PubAck(id),
            tokio::time::Instant::now().into_std(),
        )
        .expect("acknowledged");
    r.flows_changed(&s.slot, &s.session);
    assert_eq!(
        count.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "woken"
    );
    assert!(r.copies_gone(&mut copies, &waker));
    assert!(copies.is_empty(), "taken off the watch");
}

/// A subscriber that never acknowledges gathers at most a bounded number
/// of watching publishers, however many come; the others wait for their
/// commit.
#[tokio::test]
async fn watchers_of_a_subscriber_that_never_acknowledges_are_bounded() {
    let (r, s, p) = watched().await;
    r.flows_changed(&s.slot, &s.session);
    for _ in 0..3_000 {
        let mut copies = r
            .publish_paced(&msg("t", QoS::AtLeastOnce, false, "m"), &p.slot)
            .copies;
        let (_, waker) = counting();
        assert!(!r.copies_gone(&mut copies, &waker));
    }
    assert_eq!(r.watchers_of("s"), 1_024);
}
