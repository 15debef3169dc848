//! Save and load through a real redb file.

use std::time::Duration;

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
    let tx = store.db.begin_write().expect("tx");
    {
        let mut t = tx.open_table(SESSIONS).expect("table");
        t.insert("broken", &[1u8, 0, 0][..]).expect("insert");
    }
    tx.commit().expect("commit");
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
fn version_1_record_counts_offline_time_from_loading() {
    // A version 1 record is the version 2 layout without the offline time.
    let now = std::time::SystemTime::now();
    let v2 = record::encode_session(&parked(std::time::UNIX_EPOCH));
    let mut v1 = vec![1u8];
    v1.extend_from_slice(&v2[9..]);
    let back = record::decode_session("c", &v1, 10, now).expect("valid v1");
    assert_eq!(back.offline_since, now);
    assert_eq!(back.queued.len(), 1);
    let mut v3 = v2.clone();
    v3[0] = 3;
    let e = record::decode_session("c", &v3, 10, now).expect_err("unknown version");
    assert!(e.contains("version 3"), "{e}");
}
