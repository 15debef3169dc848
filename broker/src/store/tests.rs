//! Save and load through a real redb file.

use std::time::Duration;

use std::sync::Arc;

use super::*;
use crate::router::test_support::{msg, park_with_message_in_flight, router};
use crate::session::Session;
use mqtt_codec::QoS;
use mqtt_codec::topic::TopicFilter;

#[tokio::test]
async fn sessions_and_retained_survive_a_save_and_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let r = router(0);
        // One message in flight, then the client goes away.
        park_with_message_in_flight(&r, "keeper").await;
        r.publish(&msg("q/2", QoS::ExactlyOnce, false, "queued"));
        r.publish(&msg("r", QoS::AtLeastOnce, true, "retained"));
        let store = Store::open(dir.path()).expect("opens");
        store.save(&r).expect("saves");
    }
    let r = router(0);
    let store = Store::open(dir.path()).expect("reopens");
    assert_eq!(store.load(&r, 10).expect("loads"), (1, 1));
    let b = r
        .connect("keeper", false, 10, Duration::from_secs(1))
        .await
        .expect("attached");
    assert!(b.session_present);
    let resent: Vec<_> = b.session.resume().collect();
    assert_eq!(resent.len(), 1, "the in-flight message is resent");
    let mut queued = Vec::new();
    b.slot.take(&mut queued, 10, 10);
    assert_eq!(queued, vec![msg("q/2", QoS::ExactlyOnce, false, "queued")]);
    assert_eq!(r.retained_count(), 1);
    assert_eq!(r.publish(&msg("q/3", QoS::AtMostOnce, false, "live")), 1);
}

#[test]
fn corrupt_records_are_refused_with_their_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("opens");
    let guard = store.db.lock().expect("unpoisoned");
    let tx = guard.as_ref().expect("open").begin_write().expect("tx");
    {
        let mut t = tx.open_table(SESSIONS).expect("table");
        t.insert("broken", &[1u8, 0, 0][..]).expect("insert");
    }
    tx.commit().expect("commit");
    drop(guard);
    let err = store.load(&router(0), 10).expect_err("corrupt");
    let text = err.to_string();
    assert!(
        text.contains("\"broken\"") && text.contains("ends inside"),
        "{text}"
    );
}

fn parked(offline_since: std::time::SystemTime) -> crate::router::ParkedSession {
    let mut session = Session::new("c", false, 10);
    session.subscribed(TopicFilter::new("a/+").expect("valid"), QoS::AtLeastOnce);
    crate::router::ParkedSession {
        session,
        queued: vec![msg("t", QoS::AtLeastOnce, false, "p")],
        offline_since,
        user: None,
    }
}

#[test]
fn record_decoding_never_panics_on_truncation() {
    let now = std::time::SystemTime::now();
    let full = record::encode_session(&parked(now));
    assert!(record::decode_session("c", &full, 10, now).is_ok());
    for cut in 0..full.len() {
        assert!(record::decode_session("c", &full[..cut], 10, now).is_err());
    }
}

#[test]
fn record_keeps_when_the_client_went_offline() {
    // Milliseconds survive; a restart does not reset the expiry clock.
    let then = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let now = std::time::SystemTime::now();
    let bytes = record::encode_session(&parked(then));
    let back = record::decode_session("c", &bytes, 10, now).expect("valid");
    assert_eq!(back.offline_since, then);
    assert_eq!(back.queued.len(), 1);
    assert_eq!(back.session.subscriptions().len(), 1);
}

#[test]
fn older_records_are_still_read() {
    // Version 2 is version 3 without the user; version 1 is version 2
    // without the offline time.
    let now = std::time::SystemTime::now();
    let v3 = record::encode_session(&parked(std::time::UNIX_EPOCH));
    assert_eq!(v3[9], 0, "no user");
    let mut v2 = vec![2u8];
    v2.extend_from_slice(&v3[1..9]);
    v2.extend_from_slice(&v3[10..]);
    let back = record::decode_session("c", &v2, 10, now).expect("valid v2");
    assert_eq!(back.offline_since, std::time::UNIX_EPOCH);
    assert_eq!(back.queued.len(), 1);
    let mut v1 = vec![1u8];
    v1.extend_from_slice(&v3[10..]);
    let back = record::decode_session("c", &v1, 10, now).expect("valid v1");
    assert_eq!(back.offline_since, now);
    assert_eq!(back.queued.len(), 1);
    let mut v4 = v3.clone();
    v4[0] = 4;
    let e = record::decode_session("c", &v4, 10, now).expect_err("unknown version");
    assert!(e.contains("version 4"), "{e}");
}

#[test]
fn record_keeps_the_owning_user() {
    let now = std::time::SystemTime::now();
    let mut p = parked(now);
    p.user = Some("alice".into());
    let bytes = record::encode_session(&p);
    let back = record::decode_session("c", &bytes, 10, now).expect("valid");
    assert_eq!(back.user.as_deref(), Some("alice"));
    for cut in 0..bytes.len() {
        assert!(record::decode_session("c", &bytes[..cut], 10, now).is_err());
    }
}

/// Issue 14 ("saving costs too much"): a save writes only what changed
/// since the last one, and nothing at all when nothing changed.
#[tokio::test]
async fn a_save_writes_only_what_changed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let r = router(0);
    park_with_message_in_flight(&r, "keeper").await;
    for n in 0..1000 {
        r.publish(&msg(&format!("r/{n}"), QoS::AtLeastOnce, true, "retained"));
    }
    let store = Store::open(dir.path()).expect("opens");
    let first = store.save(&r).expect("saves");
    assert_eq!((first.sessions, first.retained), (1, 1000));
    assert_eq!(store.save(&r).expect("saves").keys(), 0, "idle: nothing");
    r.publish(&msg("r/7", QoS::AtLeastOnce, true, "changed"));
    r.publish(&msg("r/8", QoS::AtLeastOnce, true, ""));
    let saved = store.save(&r).expect("saves");
    assert_eq!(
        saved,
        Saved {
            sessions: 0,
            retained: 1,
            removed: 1
        }
    );
    r.publish(&msg("q/1", QoS::AtLeastOnce, false, "queued"));
    assert_eq!(store.save(&r).expect("saves").sessions, 1);
    drop(store);
    let back = router(0);
    let store = Store::open(dir.path()).expect("reopens");
    assert_eq!(store.load(&back, 10).expect("loads"), (1, 999));
    assert_eq!(
        back.retained_message(&mqtt_codec::topic::TopicName::new("r/7").expect("valid"))
            .map(|m| m.payload),
        Some(bytes::Bytes::from_static(b"changed"))
    );
}

/// Issue 14: a session's owning user survives a restart, so another user
/// still may not take it over.
#[tokio::test]
async fn the_owning_user_survives_a_save_and_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let r = router(0);
        let a = r
            .connect_as(
                "owned",
                Some("alice"),
                Some("alice"),
                false,
                10,
                Duration::from_secs(1),
            )
            .await
            .expect("attached");
        r.disconnect(&a.slot, a.session);
        Store::open(dir.path())
            .expect("opens")
            .save(&r)
            .expect("saves");
    }
    let r = router(0);
    Store::open(dir.path())
        .expect("reopens")
        .load(&r, 10)
        .expect("loads");
    let refused = r
        .connect_as(
            "owned",
            Some("bob"),
            Some("bob"),
            false,
            10,
            Duration::from_secs(1),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(crate::router::AttachError::HeldByAnotherUser { .. })
        ),
        "{refused:?}"
    );
    let a = r
        .connect_as(
            "owned",
            Some("alice"),
            Some("alice"),
            false,
            10,
            Duration::from_secs(1),
        )
        .await
        .expect("the owner resumes");
    assert!(a.session_present);
}

/// Issue 14: after a failed write (a full disk), the store used to stay
/// broken until restart while the broker went on acknowledging. Now the
/// committer counts the failure, holds the tickets (the acknowledgements
/// of `--durability batched`), reopens and retries, and once the disk
/// takes writes again everything changed meanwhile is there.
#[tokio::test]
async fn a_full_disk_holds_acks_and_loses_nothing_once_space_is_back() {
    use crate::store::commit::{Commits, Committer};
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().expect("temp dir");
    let full = Arc::new(AtomicBool::new(false));
    let r = Arc::new(router(0));
    r.track_changes(true);
    park_with_message_in_flight(&r, "keeper").await;
    let store = Arc::new(Store::open_failing_when(dir.path(), Arc::clone(&full)).expect("opens"));
    let commits = Arc::new(Commits::default());
    let committer = Committer::start(
        Arc::clone(&store),
        Arc::clone(&r),
        Arc::clone(&commits),
        None,
    )
    .expect("starts");
    let commits_poll = {
        let c = Arc::clone(&commits);
        move |cx: &mut std::task::Context<'_>, t: u64| c.poll_durable(cx, t)
    };
    r.publish(&msg("r/before", QoS::AtLeastOnce, true, "before"));
    let t = commits.request();
    tokio::time::timeout(
        Duration::from_secs(10),
        std::future::poll_fn(|cx| commits_poll(cx, t)),
    )
    .await
    .expect("durable while the disk takes writes");

    full.store(true, Ordering::SeqCst);
    for n in 0..100 {
        r.publish(&msg(
            &format!("r/{n}"),
            QoS::AtLeastOnce,
            true,
            "while full",
        ));
    }
    r.publish(&msg("q/1", QoS::AtLeastOnce, false, "queued while full"));
    let t = commits.request();
    // Wait (boundedly) until the committer has failed a few times.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while r.stats().store_write_errors.load(Ordering::Relaxed) < 2 {
        assert!(std::time::Instant::now() < deadline, "no failed write seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !commits.is_durable(t),
        "acks stay held while it cannot write"
    );

    full.store(false, Ordering::SeqCst);
    r.publish(&msg("r/after", QoS::AtLeastOnce, true, "after"));
    let t2 = commits.request();
    tokio::time::timeout(
        Duration::from_secs(10),
        std::future::poll_fn(|cx| commits_poll(cx, t2)),
    )
    .await
    .expect("durable once space is back");
    assert!(commits.is_durable(t));
    tokio::task::spawn_blocking(move || committer.stop())
        .await
        .expect("stops");
    drop(store);

    let back = router(0);
    let store = Store::open(dir.path()).expect("reopens");
    assert_eq!(store.load(&back, 10).expect("loads"), (1, 102));
    let b = back
        .connect("keeper", false, 10, Duration::from_secs(1))
        .await
        .expect("attached");
    let mut queued = Vec::new();
    b.slot.take(&mut queued, 10, 10);
    assert_eq!(
        queued,
        vec![msg("q/1", QoS::AtLeastOnce, false, "queued while full")]
    );
}
