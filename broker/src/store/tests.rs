//! Save and load through a real redb file.

use std::time::Duration;

use std::sync::Arc;

use super::*;
use crate::router::test_support::{msg, park_with_message_in_flight, router};
use crate::router::{ParkedSession, StoredSession};
use crate::session::{Seq, Session};
use mqtt_codec::topic::TopicFilter;
use mqtt_codec::{Message, QoS};

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
        text.contains("'broken'") && text.contains("ends inside"),
        "{text}"
    );
}

/// A session subscribed to `a/+`, with message 7 in flight and 8 queued,
/// as the store writes it (version 5) and the message records beside it.
fn stored(offline_since: std::time::SystemTime) -> (StoredSession, Vec<(Seq, Message)>) {
    let mut session = Session::new("c", false, 10);
    session.subscribed(TopicFilter::new("a/+").expect("valid"), QoS::AtLeastOnce);
    let in_flight = msg("a/1", QoS::AtLeastOnce, false, "in flight");
    let queued = msg("a/2", QoS::AtLeastOnce, false, "queued");
    assert!(session.deliver(in_flight.clone(), Seq(7)).is_some());
    let stored = StoredSession {
        session,
        queue: 8..9,
        added: vec![(Seq(8), queued.clone())],
        offline_since,
        user: None,
        username: None,
        retained_owed: owed(),
    };
    (stored, vec![(Seq(7), in_flight), (Seq(8), queued)])
}

/// Retained messages two SUBSCRIBEs still owe: one walk under way, one
/// not begun.
fn owed() -> Vec<crate::router::Owed> {
    vec![
        crate::router::Owed {
            filter: TopicFilter::new("r/#").expect("valid"),
            granted: QoS::AtLeastOnce,
            after: Some("r/5".into()),
        },
        crate::router::Owed {
            filter: TopicFilter::new("s/+").expect("valid"),
            granted: QoS::ExactlyOnce,
            after: None,
        },
    ]
}

/// Reads a session record back, joining `messages` to a version 4 or 5 one.
fn read_back(
    bytes: &[u8],
    messages: Vec<(Seq, Message)>,
    now: std::time::SystemTime,
) -> Result<ParkedSession, String> {
    match record::decode_session("c", bytes, 10, now)? {
        record::SessionRecord::Whole(parked) => Ok(parked),
        record::SessionRecord::Split(split) => split.assemble(vec![messages]).map(|(p, _)| p),
    }
}

/// The same session as an older broker kept it: everything inline.
fn parked_v3(offline_since: std::time::SystemTime) -> ParkedSession {
    let (stored, _) = stored(offline_since);
    ParkedSession {
        session: stored.session,
        queued: stored.added.into_iter().map(|(_, m)| m).collect(),
        queue_start: Seq(8),
        offline_since,
        user: None,
        username: None,
        retained_owed: Vec::new(),
    }
}

#[test]
fn record_decoding_never_panics_on_truncation() {
    let now = std::time::SystemTime::now();
    let (s, messages) = stored(now);
    let v4 = record::encode_session(&s);
    let v3 = record::encode_session_v3(&parked_v3(now));
    for full in [v4, v3] {
        assert!(read_back(&full, messages.clone(), now).is_ok());
        for cut in 0..full.len() {
            assert!(record::decode_session("c", &full[..cut], 10, now).is_err());
        }
    }
    let refs: Vec<(Seq, &Message)> = messages.iter().map(|(seq, m)| (*seq, m)).collect();
    let chunk = record::encode_chunk(&refs);
    assert_eq!(record::decode_chunk(&chunk).expect("valid"), messages);
    for cut in 0..chunk.len() {
        assert!(record::decode_chunk(&chunk[..cut]).is_err());
    }
}

#[test]
fn a_record_and_its_messages_come_back_together() {
    // Milliseconds survive; a restart does not reset the expiry clock.
    let then = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let now = std::time::SystemTime::now();
    let (s, messages) = stored(then);
    let bytes = record::encode_session(&s);
    let back = read_back(&bytes, messages.clone(), now).expect("valid");
    assert_eq!(back.offline_since, then);
    assert_eq!(back.queued, vec![messages[1].1.clone()]);
    assert_eq!(back.queue_start, Seq(8));
    let in_flight: Vec<_> = back.session.outgoing().iter().collect();
    assert_eq!(in_flight.len(), 1);
    assert_eq!(
        (in_flight[0].seq, &in_flight[0].message),
        (Seq(7), &messages[0].1)
    );
    assert_eq!(back.session.subscriptions().len(), 1);
    assert_eq!(back.retained_owed, owed(), "what SUBSCRIBEs still owe");
    // An in-flight message without its record is refused, by number.
    let e = read_back(&bytes, vec![messages[1].clone()], now).expect_err("missing");
    assert!(e.contains("in-flight message 7 has no record"), "{e}");
}

#[test]
fn older_records_are_still_read() {
    // Version 2 is version 3 without the user; version 1 is version 2
    // without the offline time. All hold their messages inline.
    let now = std::time::SystemTime::now();
    let v3 = record::encode_session_v3(&parked_v3(std::time::UNIX_EPOCH));
    let back = read_back(&v3, Vec::new(), now).expect("valid v3");
    assert_eq!((back.queued.len(), back.session.outgoing().len()), (1, 1));
    assert_eq!(v3[9], 0, "no user");
    let mut v2 = vec![2u8];
    v2.extend_from_slice(&v3[1..9]);
    v2.extend_from_slice(&v3[10..]);
    let back = read_back(&v2, Vec::new(), now).expect("valid v2");
    assert_eq!(back.offline_since, std::time::UNIX_EPOCH);
    assert_eq!(back.queued.len(), 1);
    let mut v1 = vec![1u8];
    v1.extend_from_slice(&v3[10..]);
    let back = read_back(&v1, Vec::new(), now).expect("valid v1");
    assert_eq!(back.offline_since, now);
    assert_eq!(back.queued.len(), 1);
    // Version 4 is version 5 without the retained messages owed, and is
    // what a session owing nothing is written as.
    let (mut s, messages) = stored(now);
    s.retained_owed.clear();
    let v4 = record::encode_session(&s);
    assert_eq!(v4[0], 4, "nothing owed: version 4");
    let back = read_back(&v4, messages, now).expect("valid v4");
    assert_eq!((back.queued.len(), back.session.outgoing().len()), (1, 1));
    assert!(back.retained_owed.is_empty());
    let mut v6 = v3.clone();
    v6[0] = 6;
    let e = record::decode_session("c", &v6, 10, now).expect_err("unknown version");
    assert!(e.contains("version 6"), "{e}");
}

/// A user name nobody verified (no password file) is kept too, so the ACL
/// checks the session's deliveries by it after a restart; it owns nothing.
/// Before, it was lost, and the session was checked as anonymous.
#[test]
fn record_keeps_an_unverified_user_name() {
    let now = std::time::SystemTime::now();
    let (mut s, messages) = stored(now);
    s.username = Some("alice".into());
    let bytes = record::encode_session(&s);
    let back = read_back(&bytes, messages, now).expect("valid");
    assert_eq!(back.username.as_deref(), Some("alice"));
    assert_eq!(back.user, None, "nobody verified alice");
    for cut in 0..bytes.len() {
        assert!(record::decode_session("c", &bytes[..cut], 10, now).is_err());
    }
    // Version 3 knew only verified users: flag 2 there is damage.
    let mut v3 = record::encode_session_v3(&parked_v3(now));
    v3[9] = 2;
    let e = record::decode_session("c", &v3, 10, now).expect_err("flag 2 in version 3");
    assert_eq!(e, "user flag 2 is not 0 to 1");
}

#[test]
fn record_keeps_the_owning_user() {
    let now = std::time::SystemTime::now();
    let (mut s, messages) = stored(now);
    s.user = Some("alice".into());
    s.username = Some("alice".into());
    let bytes = record::encode_session(&s);
    let back = read_back(&bytes, messages, now).expect("valid");
    assert_eq!(back.user.as_deref(), Some("alice"));
    assert_eq!(back.username.as_deref(), Some("alice"));
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
            retained: 1,
            removed: 1,
            ..Saved::default()
        }
    );
    r.publish(&msg("q/1", QoS::AtLeastOnce, false, "queued"));
    assert_eq!(
        store.save(&r).expect("saves"),
        Saved {
            chunks: 1,
            messages: 1,
            ..Saved::default()
        },
        "a message queued for a parked session: that message, not the session"
    );
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

/// Issue 14 (durability throughput): a commit writes each message queued
/// for a persistent session once, and removes it once acknowledged; a
/// long queue costs nothing more at each commit. The store used to write
/// the session whole (queue and in-flight window) at every commit, so a
/// subscriber with 2,000 messages waiting cost 2,000 messages per commit.
#[tokio::test]
async fn a_commit_writes_the_messages_added_and_removes_those_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let r = router(0);
    park_with_message_in_flight(&r, "keeper").await;
    let store = Store::open(dir.path()).expect("opens");
    for n in 0..2000 {
        r.publish(&msg(&format!("q/{n}"), QoS::AtLeastOnce, false, "queued"));
    }
    let first = store.save(&r).expect("saves");
    assert_eq!(
        (first.sessions, first.messages, first.keys()),
        (1, 2001, 2),
        "all, once, in one chunk"
    );
    r.publish(&msg("q/more", QoS::AtLeastOnce, false, "one more"));
    assert_eq!(
        store.save(&r).expect("saves"),
        Saved {
            chunks: 1,
            messages: 1,
            ..Saved::default()
        },
        "2,000 already written: only the new one"
    );
    // The client comes back, takes 10 into flight and acknowledges 9 of
    // them and the one in flight before: the session record (its queue's
    // start, its in-flight window) is written again, no message is.
    let mut a = r
        .connect("keeper", false, 10, Duration::from_secs(1))
        .await
        .expect("attached");
    let mut batch = Vec::new();
    let first_seq = a.slot.take(&mut batch, 10, 10).first;
    let mut ids = Vec::new();
    for (m, seq) in batch.drain(..).zip(first_seq.0..) {
        let publish = a.session.deliver(m, Seq(seq)).expect("window open");
        ids.push(publish.packet_id().expect("QoS 1"));
    }
    let resent: Vec<_> = a.session.outgoing().iter().map(|e| e.packet_id).collect();
    for id in resent.iter().filter(|id| **id != ids[9]) {
        a.session.outgoing_mut().puback(*id);
    }
    r.disconnect(&a.slot, a.session);
    assert_eq!(
        store.save(&r).expect("saves"),
        Saved {
            sessions: 1,
            ..Saved::default()
        },
        "the session record moves on; both chunks still hold messages"
    );
    drop(store);
    let back = router(0);
    let store = Store::open(dir.path()).expect("reopens");
    assert_eq!(store.load(&back, 10).expect("loads"), (1, 0));
    let b = back
        .connect("keeper", false, 10, Duration::from_secs(1))
        .await
        .expect("attached");
    let resent: Vec<_> = b.session.resume().collect();
    assert_eq!(resent.len(), 1, "the unacknowledged one is resent");
    let mut queued = Vec::new();
    b.slot.take(&mut queued, usize::MAX, usize::MAX);
    assert_eq!(queued.len(), 1991);
    assert_eq!(queued[0].topic.as_str(), "q/10");
    assert_eq!(queued[1990].payload, bytes::Bytes::from_static(b"one more"));
    // Loaded as written: the next commit writes only what changes. All
    // queued messages were taken (in flight to a connected client are not
    // saved without --durability batched): both chunks go.
    back.publish(&msg("q/after", QoS::AtLeastOnce, false, "after"));
    assert_eq!(
        store.save(&back).expect("saves"),
        Saved {
            sessions: 1,
            chunks: 1,
            messages: 1,
            removed: 2,
            retained: 0
        }
    );
}

/// Issue 14: a store file of version 3 (each session record holding its
/// queue and in-flight messages inline) loads, and the first commit
/// writes its sessions in the current layout, which loads again.
#[tokio::test]
async fn a_version_3_store_file_loads_and_is_written_anew() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut session = Session::new("old", false, 10);
    session.subscribed(TopicFilter::new("q/#").expect("valid"), QoS::AtLeastOnce);
    assert!(
        session
            .deliver(msg("q/0", QoS::AtLeastOnce, false, "in flight"), Seq(0))
            .is_some()
    );
    let v3 = record::encode_session_v3(&ParkedSession {
        session,
        queued: vec![
            msg("q/1", QoS::AtLeastOnce, false, "one"),
            msg("q/2", QoS::AtLeastOnce, false, "two"),
        ],
        queue_start: Seq(1),
        offline_since: std::time::SystemTime::now(),
        user: None,
        username: None,
        retained_owed: Vec::new(),
    });
    {
        // The file as a version 3 broker left it: two tables, no messages.
        let db = Database::create(dir.path().join(STORE_FILE)).expect("creates");
        let tx = db.begin_write().expect("tx");
        tx.open_table(SESSIONS)
            .expect("table")
            .insert("old", v3.as_slice())
            .expect("insert");
        tx.open_table(RETAINED)
            .expect("table")
            .insert(
                "r",
                record::encode_message_record(&msg("r", QoS::AtMostOnce, true, "kept")).as_slice(),
            )
            .expect("insert");
        tx.commit().expect("commit");
    }
    let check = |r: &Router| {
        let stored = r.sessions_for_store();
        assert_eq!(stored.len(), 1);
        let s = &stored[0];
        let in_flight: Vec<_> = s.session.outgoing().iter().map(|e| &e.message).collect();
        assert_eq!(
            in_flight,
            vec![&msg("q/0", QoS::AtLeastOnce, false, "in flight")]
        );
        let queued: Vec<_> = s.added.iter().map(|(_, m)| m.payload.clone()).collect();
        assert_eq!(queued, vec!["one", "two"]);
    };
    let r = router(0);
    let (store, counts) = Store::open_and_load(dir.path(), &r, 10).expect("v3 loads");
    assert_eq!(counts, (1, 1));
    check(&r);
    // Nothing changed since the load, yet the first commit rewrites it.
    let saved = store.save(&r).expect("saves");
    assert_eq!((saved.sessions, saved.messages), (1, 3));
    assert_eq!(store.save(&r).expect("saves").keys(), 0);
    drop(store);
    {
        let db = Database::create(dir.path().join(STORE_FILE)).expect("reopens");
        let tx = db.begin_read().expect("tx");
        let t = tx.open_table(SESSIONS).expect("table");
        let record = t.get("old").expect("get").expect("there");
        assert_eq!(
            record.value()[0],
            4,
            "written in the current version, owing nothing"
        );
        let messages = tx.open_table(MESSAGES).expect("table");
        assert_eq!(
            redb::ReadableTableMetadata::len(&messages).expect("len"),
            1,
            "one chunk"
        );
    }
    let r = router(0);
    let (_store, counts) = Store::open_and_load(dir.path(), &r, 10).expect("loads again");
    assert_eq!(counts, (1, 1));
    check(&r);
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
    full_disk_holds_acks(false).await;
}

/// The same through the write-ahead log of `--durability batched`: its
/// appends fail, then work again, and nothing is lost.
#[tokio::test]
async fn a_full_disk_under_the_write_ahead_log_holds_acks_and_loses_nothing() {
    full_disk_holds_acks(true).await;
}

async fn full_disk_holds_acks(write_ahead: bool) {
    use crate::store::commit::{Commits, Committer};
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().expect("temp dir");
    let full = Arc::new(AtomicBool::new(false));
    let r = Arc::new(router(0));
    r.track_changes(true);
    park_with_message_in_flight(&r, "keeper").await;
    let store = Arc::new(Store::open_failing_when(dir.path(), Arc::clone(&full)).expect("opens"));
    if write_ahead {
        store.write_ahead().expect("starts the log");
    }
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

/// Issue 14 (durability throughput): with the write-ahead log a commit is
/// one record in the log, and redb gets it at the checkpoint. A broker
/// killed before the checkpoint loses nothing: the next start replays the
/// log into redb, removes it, and loads everything.
#[tokio::test]
async fn the_write_ahead_log_is_replayed_after_a_crash_and_emptied_by_a_checkpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = dir.path().join(wal::WAL_FILE);
    {
        let r = router(0);
        park_with_message_in_flight(&r, "keeper").await;
        r.publish(&msg("q/2", QoS::ExactlyOnce, false, "queued"));
        r.publish(&msg("r/1", QoS::AtLeastOnce, true, "retained"));
        r.publish(&msg("r/2", QoS::AtLeastOnce, true, "cleared next"));
        let store = Store::open(dir.path()).expect("opens");
        store.write_ahead().expect("starts the log");
        let saved = store.save(&r).expect("saves");
        assert_eq!((saved.sessions, saved.retained), (1, 2));
        r.publish(&msg("r/2", QoS::AtLeastOnce, true, ""));
        r.publish(&msg("q/3", QoS::AtLeastOnce, false, "queued later"));
        store.save(&r).expect("saves");
        assert!(
            std::fs::metadata(&wal).expect("the log exists").len() > 0,
            "the commits are in the log"
        );
        // Dropped without a checkpoint: a kill.
    }
    let r = router(0);
    let store = Store::open(dir.path()).expect("reopens, replaying the log");
    assert!(!wal.exists(), "the replayed log is removed");
    assert_eq!(store.load(&r, 10).expect("loads"), (1, 1));
    let b = r
        .connect("keeper", false, 10, Duration::from_secs(1))
        .await
        .expect("attached");
    assert!(b.session_present);
    assert_eq!(b.session.resume().count(), 1, "the in-flight message");
    let mut queued = Vec::new();
    b.slot.take(&mut queued, 10, 10);
    assert_eq!(
        queued,
        vec![
            msg("q/2", QoS::ExactlyOnce, false, "queued"),
            msg("q/3", QoS::AtLeastOnce, false, "queued later"),
        ]
    );
    drop(b);

    // A checkpoint writes the log into redb and empties it: a store opened
    // from redb alone (the log moved away) has everything.
    let r = router(0);
    park_with_message_in_flight(&r, "other").await;
    r.publish(&msg("r/3", QoS::AtLeastOnce, true, "checkpointed"));
    store.write_ahead().expect("starts the log");
    store.save(&r).expect("saves");
    store.checkpoint().expect("checkpoints");
    drop(store);
    std::fs::rename(&wal, dir.path().join("moved.wal")).expect("moves the log away");
    let back = router(0);
    let store = Store::open(dir.path()).expect("reopens");
    assert_eq!(store.load(&back, 10).expect("loads"), (2, 2));
}

/// A log that is not one refuses the start with the damaged-file error
/// naming it (and how to move it aside); it never panics.
#[test]
fn a_damaged_write_ahead_log_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(Store::open(dir.path()).expect("creates"));
    let wal = dir.path().join(wal::WAL_FILE);
    std::fs::write(&wal, vec![b'x'; 5000]).expect("writes");
    let r = router(0);
    let err = Store::open_and_load(dir.path(), &r, 10).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains(&wal.display().to_string()) && text.contains("move it aside"),
        "{text}"
    );
}
