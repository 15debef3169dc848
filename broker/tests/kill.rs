//! Issue 14: with `--durability batched`, nothing acknowledged is lost when
//! the broker is killed with SIGKILL at any moment.
//!
//! Publishers at QoS 1 and QoS 2 (some messages retained) run while the test
//! kills the broker at random moments (seeded; the seed is printed, and
//! `KILL_TEST_SEED` replays one) and restarts it on the same data directory.
//! A persistent subscriber (clean session 0) reconnects after each restart,
//! acknowledging as MQTT's receiver does (QoS 2: delivered on PUBLISH, its
//! id kept until PUBREL, so a resent PUBLISH is not delivered twice). At the
//! end every message whose PUBACK/PUBCOMP the publisher got must have
//! reached it (QoS 1 at least once, QoS 2 exactly once) and every
//! acknowledged retained message must be there.
//!
//! `KILL_TEST_DURABILITY=none` runs the same against the default mode, to
//! see what it loses (it fails, listing the losses).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use mqtt_codec::{Packet, PacketId, QoS};
use rand::{Rng, SeedableRng};
use testsupport::ReferenceOptions;

const KILLS: usize = 20;

/// What the publishers got acknowledged and what the subscriber received.
#[derive(Default)]
struct Ledger {
    acked_qos1: HashSet<String>,
    acked_qos2: HashSet<String>,
    /// Retained topic → the payload last acknowledged on it.
    acked_retained: HashMap<String, String>,
    /// Payload → how many times the subscriber's application got it.
    received: HashMap<String, usize>,
}

fn options(dir: &std::path::Path, durability: &str) -> ReferenceOptions {
    // Batched: no autosave, so what survives a kill is what the durable
    // mode wrote. None: the shortest autosave, its best case.
    let autosave = if durability == "batched" { "0" } else { "1" };
    ReferenceOptions {
        extra_args: vec![
            "--durability".into(),
            durability.into(),
            "--autosave-interval".into(),
            autosave.into(),
        ],
        ..with_data_dir(dir)
    }
}

/// Publishes `prefix-N` messages one at a time on `topic/N` (every fifth
/// also retained on `r/<prefix>/N` ) until the connection dies, recording
/// each whose handshake completed.
async fn publisher(addr: std::net::SocketAddr, qos: QoS, round: usize, ledger: Arc<Mutex<Ledger>>) {
    let prefix = format!("q{}-{round}", qos.as_u8());
    let mut c = RawClient::connected(addr, &prefix).await;
    for n in 1u16.. {
        let retained = n % 5 == 0;
        let topic = if retained {
            format!("r/{prefix}/{n}")
        } else {
            format!("k/{prefix}")
        };
        let payload = format!("{prefix}-{n}");
        c.send(&publish(&topic, qos, Some(n), &payload, retained))
            .await;
        let done = match qos {
            QoS::AtLeastOnce => matches!(c.try_recv().await, Some(Packet::PubAck(_))),
            _ => {
                if !matches!(c.try_recv().await, Some(Packet::PubRec(_))) {
                    return;
                }
                c.send(&Packet::PubRel(PacketId::new(n).unwrap())).await;
                matches!(c.try_recv().await, Some(Packet::PubComp(_)))
            }
        };
        if !done {
            return;
        }
        let mut l = ledger.lock().unwrap();
        if retained {
            l.acked_retained.insert(topic, payload);
        } else if qos == QoS::AtLeastOnce {
            l.acked_qos1.insert(payload);
        } else {
            l.acked_qos2.insert(payload);
        }
    }
}

/// The persistent subscriber's receiving side; `held` is its QoS 2 ids
/// awaiting PUBREL, kept across connections as its session state. Returns
/// when the connection closes, or once `until` arrives.
async fn subscriber(
    mut c: RawClient,
    held: Arc<Mutex<HashSet<u16>>>,
    ledger: Arc<Mutex<Ledger>>,
    until: Option<&str>,
) {
    while let Some(p) = c.try_recv().await {
        match p {
            Packet::Publish(p) => {
                let payload = String::from_utf8(p.payload().to_vec()).unwrap();
                let id = p.packet_id();
                let fresh = match (p.qos(), id) {
                    (QoS::ExactlyOnce, Some(id)) => held.lock().unwrap().insert(id.get()),
                    _ => true,
                };
                if fresh {
                    *ledger
                        .lock()
                        .unwrap()
                        .received
                        .entry(payload.clone())
                        .or_default() += 1;
                }
                match (p.qos(), id) {
                    (QoS::AtLeastOnce, Some(id)) => c.send(&Packet::PubAck(id)).await,
                    (QoS::ExactlyOnce, Some(id)) => c.send(&Packet::PubRec(id)).await,
                    _ => {}
                }
                if until == Some(payload.as_str()) {
                    return;
                }
            }
            Packet::PubRel(id) => {
                held.lock().unwrap().remove(&id.get());
                c.send(&Packet::PubComp(id)).await;
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_kill_9_loses_nothing_acknowledged() {
    let durability = std::env::var("KILL_TEST_DURABILITY").unwrap_or_else(|_| "batched".into());
    let seed: u64 = std::env::var("KILL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!(
        "kill test: seed {seed} (KILL_TEST_SEED={seed} replays it), --durability {durability}"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let held = Arc::new(Mutex::new(HashSet::new()));

    for round in 0..KILLS {
        let b = start_with(options(dir.path(), &durability));
        let (mut sub, _) = RawClient::connect(b.addr(), connect_packet("sub", false)).await;
        if round == 0 {
            sub.subscribe(&[("k/#", QoS::ExactlyOnce)], 1).await;
        }
        let tasks = [
            tokio::spawn(subscriber(
                sub,
                Arc::clone(&held),
                Arc::clone(&ledger),
                None,
            )),
            tokio::spawn(publisher(
                b.addr(),
                QoS::AtLeastOnce,
                round,
                Arc::clone(&ledger),
            )),
            tokio::spawn(publisher(
                b.addr(),
                QoS::ExactlyOnce,
                round,
                Arc::clone(&ledger),
            )),
        ];
        // A random moment to die (how long the clients have run; the kill,
        // not the assertions, depends on it).
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..400))).await;
        drop(b); // SIGKILL
        for t in tasks {
            // A client whose write failed at the kill panicked; what it had
            // acknowledged is in the ledger already.
            let _ = tokio::time::timeout(WAIT, t).await;
        }
    }

    // A last start: the subscriber takes everything, up to a marker
    // published after the restart (its queue is delivered in order).
    let b = start_with(options(dir.path(), &durability));
    let (mut sub, ack) = RawClient::connect(b.addr(), connect_packet("sub", false)).await;
    let session_lost = !ack.session_present;
    if session_lost {
        // Counted below; subscribe again to see what else survived.
        sub.subscribe(&[("k/#", QoS::ExactlyOnce)], 1).await;
    }
    let mut marker = RawClient::connected(b.addr(), "marker").await;
    publish_acked(&mut marker, "k/marker", 1, "marker").await;
    tokio::time::timeout(
        WAIT * 3,
        subscriber(sub, Arc::clone(&held), Arc::clone(&ledger), Some("marker")),
    )
    .await
    .expect("the subscriber got its queue up to the marker");

    let (lost_qos1, lost_qos2, twice_qos2, expected_retained, acked1, acked2) = {
        let l = ledger.lock().unwrap();
        let lost_qos1: Vec<String> = l
            .acked_qos1
            .iter()
            .filter(|p| !l.received.contains_key(*p))
            .cloned()
            .collect();
        let lost_qos2: Vec<String> = l
            .acked_qos2
            .iter()
            .filter(|p| !l.received.contains_key(*p))
            .cloned()
            .collect();
        let twice_qos2: Vec<String> = l
            .acked_qos2
            .iter()
            .filter(|p| l.received.get(*p).copied().unwrap_or(0) > 1)
            .cloned()
            .collect();
        let expected_retained = l.acked_retained.clone();
        let (acked1, acked2) = (l.acked_qos1.len(), l.acked_qos2.len());
        (
            lost_qos1,
            lost_qos2,
            twice_qos2,
            expected_retained,
            acked1,
            acked2,
        )
    };

    // Every acknowledged retained message is there (the last one per topic).
    let mut r = subscribed(b.addr(), "retained", &[("r/#", QoS::AtMostOnce)]).await;
    let mut missing_retained: HashMap<String, String> = expected_retained.clone();
    let mut wrong_retained = Vec::new();
    // Within the raw client's own bound on a wait.
    let deadline = tokio::time::Instant::now() + WAIT / 2;
    while !missing_retained.is_empty() && tokio::time::Instant::now() < deadline {
        let Ok(Some(Packet::Publish(p))) = tokio::time::timeout_at(deadline, r.try_recv()).await
        else {
            break;
        };
        let topic = p.topic().as_str().to_owned();
        let payload = String::from_utf8(p.payload().to_vec()).unwrap();
        if let Some(want) = missing_retained.remove(&topic)
            && want != payload
        {
            wrong_retained.push((topic, want, payload));
        }
    }
    println!(
        "kill test: session lost: {session_lost}; {KILLS} kills; acknowledged {acked1} QoS 1, {acked2} QoS 2, {} retained; lost {} QoS 1, {} QoS 2, {} retained; QoS 2 twice: {}",
        expected_retained.len(),
        lost_qos1.len(),
        lost_qos2.len(),
        missing_retained.len() + wrong_retained.len(),
        twice_qos2.len()
    );
    assert!(!session_lost, "the subscriber's session was lost");
    assert!(
        acked1 > 0 && acked2 > 0,
        "the publishers got nothing acknowledged"
    );
    assert!(lost_qos1.is_empty(), "lost QoS 1: {lost_qos1:?}");
    assert!(lost_qos2.is_empty(), "lost QoS 2: {lost_qos2:?}");
    assert!(
        twice_qos2.is_empty(),
        "QoS 2 delivered twice: {twice_qos2:?}"
    );
    assert!(
        missing_retained.is_empty(),
        "retained missing: {missing_retained:?}"
    );
    assert!(
        wrong_retained.is_empty(),
        "retained older than acknowledged: {wrong_retained:?}"
    );
}
