//! Bridges (issue 16, item 5): our broker bridged to mosquitto, mosquitto
//! bridged to ours, and ours to ours; messages in, out and both ways at
//! each QoS with the prefixes swapped, retained messages crossing, no
//! message going back over the bridge it came by, and every QoS 1 message
//! delivered across a restart of the remote broker.
//!
//! Every broker is a real process on ephemeral loopback ports. A bridge
//! connects in its own time, so each test first waits for a probe message
//! to cross each way (published again until one arrives, within a bound).

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{RawClient, publish, start_with};
use mqtt_codec::{Packet, PacketId, Publish, QoS};
use testsupport::{Mosquitto, MosquittoOptions, ReferenceOptions};

/// The bridge's topics in every test, as mosquitto.conf lines: out at QoS 1
/// (`lo/` here, `ro/` there), in at QoS 2 (`ri/` there, `li/` here), both at
/// QoS 2 (`lb/`, `rb/`).
const TOPICS: [&str; 3] = ["# out 1 lo/ ro/", "# in 2 li/ ri/", "# both 2 lb/ rb/"];

/// The longest a test waits for a bridge to carry its first message.
const BRIDGE_UP: Duration = Duration::from_secs(30);

/// Our broker's config file with one bridge to `remote`.
fn our_bridge_config(dir: &Path, remote: SocketAddr, topics: &[&str]) -> ReferenceOptions {
    let topics: Vec<String> = topics.iter().map(|t| format!("{t:?}")).collect();
    let toml = format!(
        "[[bridge]]\nconnection = \"b1\"\naddress = \"{remote}\"\ntopic = [{}]\nremote_clientid = \"ours-bridge\"\nrestart_timeout = 1\nkeepalive_interval = 10\n",
        topics.join(", ")
    );
    let path = dir.join("bridge.toml");
    std::fs::write(&path, toml).expect("config written");
    ReferenceOptions {
        extra_args: vec!["--config".into(), path.display().to_string()],
        ..ReferenceOptions::default()
    }
}

/// mosquitto.conf lines for one bridge to `remote`, with mosquitto's
/// defaults otherwise (`try_private true`: it connects with level 0x84).
fn mosquitto_bridge_config(remote: SocketAddr, topics: &[&str]) -> String {
    let mut conf = format!(
        "connection m1\naddress {remote}\nremote_clientid mosquitto-bridge\nrestart_timeout 1\ncleansession false\n"
    );
    for t in topics {
        conf.push_str(&format!("topic {t}\n"));
    }
    conf
}

/// Publishes QoS 0 probes on `topic` at `from` until `to` (subscribed to
/// where the bridge carries it) gets one: the bridge is up that way.
async fn until_crossing(from: SocketAddr, topic: &str, to: &mut RawClient) {
    let mut publisher = RawClient::connected(from, &format!("probe-{topic}")).await;
    let deadline = tokio::time::Instant::now() + BRIDGE_UP;
    loop {
        publisher
            .send(&publish(topic, QoS::AtMostOnce, None, "probe", false))
            .await;
        if let Ok(p) = tokio::time::timeout(Duration::from_millis(250), to.recv()).await {
            assert!(matches!(p, Packet::Publish(_)), "{p:?}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no probe on {topic} crossed the bridge within {BRIDGE_UP:?}"
        );
    }
}

/// Waits until the bridge between `bridge_side` and `other` carries
/// messages both ways.
async fn bridge_up(bridge_side: SocketAddr, other: SocketAddr) {
    let mut far = common::subscribed(other, "probe-far", &[("ro/probe", QoS::AtMostOnce)]).await;
    until_crossing(bridge_side, "lo/probe", &mut far).await;
    let mut near =
        common::subscribed(bridge_side, "probe-near", &[("li/probe", QoS::AtMostOnce)]).await;
    until_crossing(other, "ri/probe", &mut near).await;
}

/// Acknowledges a QoS 1/2 delivery as a subscriber must.
async fn ack(client: &mut RawClient, p: &Publish) {
    match (p.qos(), p.packet_id()) {
        (QoS::AtLeastOnce, Some(id)) => client.send(&Packet::PubAck(id)).await,
        (QoS::ExactlyOnce, Some(id)) => {
            client.send(&Packet::PubRec(id)).await;
            assert_eq!(client.recv().await, Packet::PubRel(id), "{}", client.name());
            client.send(&Packet::PubComp(id)).await;
        }
        _ => {}
    }
}

/// The next PUBLISH at `client`, acknowledged: (topic, payload, QoS, retain).
async fn next(client: &mut RawClient) -> (String, String, QoS, bool) {
    let p = client.recv_publish().await;
    ack(client, &p).await;
    (
        p.topic().as_str().to_owned(),
        String::from_utf8_lossy(p.payload()).into_owned(),
        p.qos(),
        p.retain(),
    )
}

/// Publishes `payload` on `topic` at `qos`, completing the flow.
async fn send(client: &mut RawClient, topic: &str, qos: QoS, payload: &str, retain: bool, id: u16) {
    let id_opt = (qos != QoS::AtMostOnce).then_some(id);
    client
        .send(&publish(topic, qos, id_opt, payload, retain))
        .await;
    let pid = PacketId::new(id).expect("non-zero");
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => assert_eq!(client.recv().await, Packet::PubAck(pid)),
        QoS::ExactlyOnce => {
            assert_eq!(client.recv().await, Packet::PubRec(pid));
            client.send(&Packet::PubRel(pid)).await;
            assert_eq!(client.recv().await, Packet::PubComp(pid));
        }
    }
}

const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// The checks every bridged pair passes: `bridge_side` has the bridge
/// (with [`TOPICS`]), `other` is its remote.
async fn bridged_pair_carries_messages(bridge_side: SocketAddr, other: SocketAddr) {
    bridge_up(bridge_side, other).await;
    let mut near = RawClient::connected(bridge_side, "near").await;
    let mut far = RawClient::connected(other, "far").await;
    // Narrow filters: a late probe (on lo/probe, ri/probe) reaches no one.
    let mut near_sub = common::subscribed(
        bridge_side,
        "near-sub",
        &[
            ("li/b", QoS::ExactlyOnce),
            ("li/r", QoS::ExactlyOnce),
            ("lb/#", QoS::ExactlyOnce),
        ],
    )
    .await;
    let mut far_sub = common::subscribed(
        other,
        "far-sub",
        &[
            ("ro/a", QoS::ExactlyOnce),
            ("ro/r", QoS::ExactlyOnce),
            ("rb/#", QoS::ExactlyOnce),
        ],
    )
    .await;

    // Out, at QoS 1: lo/ here is ro/ there, QoS 2 downgraded to the
    // topic's 1.
    for (i, qos) in QOS.into_iter().enumerate() {
        send(&mut near, "lo/a", qos, &format!("out{i}"), false, 1).await;
        let got = next(&mut far_sub).await;
        assert_eq!(
            got,
            (
                "ro/a".into(),
                format!("out{i}"),
                qos.min(QoS::AtLeastOnce),
                false
            )
        );
    }
    // In, at QoS 2: ri/ there is li/ here, each QoS kept.
    for (i, qos) in QOS.into_iter().enumerate() {
        send(&mut far, "ri/b", qos, &format!("in{i}"), false, 1).await;
        let got = next(&mut near_sub).await;
        assert_eq!(got, ("li/b".into(), format!("in{i}"), qos, false));
    }
    // Both: a message crosses once and does not come back. Each side's own
    // subscriber sees its message, then the marker published on the other
    // side (which crosses after any echo would have).
    send(&mut near, "lb/c", QoS::ExactlyOnce, "from-near", false, 1).await;
    assert_eq!(
        next(&mut far_sub).await,
        ("rb/c".into(), "from-near".into(), QoS::ExactlyOnce, false)
    );
    assert_eq!(next(&mut near_sub).await.1, "from-near");
    send(&mut far, "rb/m", QoS::AtLeastOnce, "marker-far", false, 2).await;
    assert_eq!(next(&mut far_sub).await.1, "marker-far");
    assert_eq!(
        next(&mut near_sub).await,
        ("lb/m".into(), "marker-far".into(), QoS::AtLeastOnce, false),
        "the message from this side came back over the bridge"
    );
    send(&mut far, "rb/d", QoS::AtLeastOnce, "from-far", false, 3).await;
    assert_eq!(next(&mut far_sub).await.1, "from-far");
    assert_eq!(next(&mut near_sub).await.1, "from-far");
    send(&mut near, "lb/m", QoS::AtLeastOnce, "marker-near", false, 2).await;
    assert_eq!(next(&mut near_sub).await.1, "marker-near");
    assert_eq!(
        next(&mut far_sub).await,
        ("rb/m".into(), "marker-near".into(), QoS::AtLeastOnce, false),
        "the message from the far side came back over the bridge"
    );

    // Retained, out: seen live, then retained by the far broker for a
    // new subscriber.
    send(&mut near, "lo/r", QoS::AtLeastOnce, "kept-out", true, 3).await;
    assert_eq!(next(&mut far_sub).await.1, "kept-out");
    let mut late = common::subscribed(other, "late-far", &[("ro/r", QoS::AtLeastOnce)]).await;
    assert_eq!(
        next(&mut late).await,
        ("ro/r".into(), "kept-out".into(), QoS::AtLeastOnce, true)
    );
    // Retained, in.
    send(&mut far, "ri/r", QoS::AtLeastOnce, "kept-in", true, 4).await;
    assert_eq!(next(&mut near_sub).await.1, "kept-in");
    let mut late =
        common::subscribed(bridge_side, "late-near", &[("li/r", QoS::AtLeastOnce)]).await;
    assert_eq!(
        next(&mut late).await,
        ("li/r".into(), "kept-in".into(), QoS::AtLeastOnce, true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_bridged_to_mosquitto_carries_messages_both_ways() {
    let mosquitto = Mosquitto::start(MosquittoOptions::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = start_with(our_bridge_config(dir.path(), mosquitto.addr(), &TOPICS));
    bridged_pair_carries_messages(ours.addr(), mosquitto.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_bridged_to_ours_carries_messages_both_ways() {
    let ours = common::start(&[]);
    let mosquitto = Mosquitto::start(MosquittoOptions {
        extra_config: mosquitto_bridge_config(ours.addr(), &TOPICS),
        ..MosquittoOptions::default()
    });
    bridged_pair_carries_messages(mosquitto.addr(), ours.addr()).await;
    assert!(
        ours.log().contains("bridge=true"),
        "mosquitto's bridge was not seen as one:\n{}",
        ours.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_bridged_to_ours_carries_messages_both_ways() {
    let remote = common::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = start_with(our_bridge_config(dir.path(), remote.addr(), &TOPICS));
    bridged_pair_carries_messages(ours.addr(), remote.addr()).await;
}

/// How many QoS 1 messages the restart tests count: a third before the
/// restart, a third while the remote is down, a third after.
const COUNTED: usize = 60;

/// Publishes messages `range` at QoS 1 on `lo/count/N` through `client`.
async fn publish_counted(client: &mut RawClient, range: std::ops::Range<usize>) {
    for n in range {
        let id = u16::try_from(n % 60_000 + 1).expect("small");
        send(
            client,
            &format!("lo/count/{n}"),
            QoS::AtLeastOnce,
            &n.to_string(),
            false,
            id,
        )
        .await;
    }
}

/// Connects the far side's persistent subscriber and collects messages
/// until every one of [`COUNTED`] has come (duplicates allowed at QoS 1).
async fn collect_all(far: SocketAddr) -> BTreeSet<usize> {
    let mut connect = common::connect_packet("counter", false);
    connect.keep_alive = 60;
    let (mut sub, ack) = RawClient::connect(far, connect).await;
    assert!(
        ack.session_present,
        "the far side lost the counter's session"
    );
    let mut seen = BTreeSet::new();
    while seen.len() < COUNTED {
        let (topic, payload, qos, _) = next(&mut sub).await;
        assert_eq!(qos, QoS::AtLeastOnce);
        let n: usize = payload.parse().expect("a number");
        assert_eq!(topic, format!("ro/count/{n}"));
        seen.insert(n);
    }
    seen
}

/// Subscribes the far side's persistent counter to `ro/count/#` and leaves.
async fn park_counter(far: SocketAddr) {
    let (mut sub, _) = RawClient::connect(far, common::connect_packet("counter", false)).await;
    sub.subscribe(&[("ro/count/#", QoS::AtLeastOnce)], 1).await;
    sub.send(&Packet::Disconnect).await;
}

/// Issue 16's Done-when: ours bridged to mosquitto delivers every QoS 1
/// message across a restart of mosquitto (with its persistence, so its
/// queue for the subscriber and its session for the bridge survive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_bridged_to_mosquitto_delivers_every_qos1_message_across_a_remote_restart() {
    let persistence = tempfile::tempdir().expect("temp dir");
    let options = MosquittoOptions {
        persistence: Some(persistence.path().to_owned()),
        ..MosquittoOptions::default()
    };
    let mosquitto = Mosquitto::start(options.clone());
    let port = mosquitto.port();
    let far = mosquitto.addr();
    park_counter(far).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = start_with(our_bridge_config(dir.path(), far, &TOPICS));
    bridge_up(ours.addr(), far).await;

    let mut near = RawClient::connected(ours.addr(), "near").await;
    publish_counted(&mut near, 0..COUNTED / 3).await;
    mosquitto.terminate();
    publish_counted(&mut near, COUNTED / 3..2 * COUNTED / 3).await;
    let mosquitto = Mosquitto::start(MosquittoOptions {
        port: Some(port),
        ..options
    });
    publish_counted(&mut near, 2 * COUNTED / 3..COUNTED).await;
    let seen = collect_all(mosquitto.addr()).await;
    assert_eq!(seen, (0..COUNTED).collect(), "{}", ours.log());
}

/// The same the other way round: mosquitto bridged to ours, ours restarted
/// on its data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_bridged_to_ours_delivers_every_qos1_message_across_a_remote_restart() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut ours = start_with(common::with_data_dir(data.path()));
    let port = ours.addr().port();
    park_counter(ours.addr()).await;
    let mosquitto = Mosquitto::start(MosquittoOptions {
        extra_config: mosquitto_bridge_config(ours.addr(), &TOPICS),
        ..MosquittoOptions::default()
    });
    bridge_up(mosquitto.addr(), ours.addr()).await;

    let mut near = RawClient::connected(mosquitto.addr(), "near").await;
    publish_counted(&mut near, 0..COUNTED / 3).await;
    assert!(
        ours.terminate(Duration::from_secs(15)).is_some(),
        "ours did not stop"
    );
    publish_counted(&mut near, COUNTED / 3..2 * COUNTED / 3).await;
    let ours = start_with(ReferenceOptions {
        port: Some(port),
        ..common::with_data_dir(data.path())
    });
    publish_counted(&mut near, 2 * COUNTED / 3..COUNTED).await;
    let seen = collect_all(ours.addr()).await;
    assert_eq!(seen, (0..COUNTED).collect(), "{}", mosquitto.log());
}

/// A bridge whose remote is refused by the config file is an error naming
/// the directive, before the broker starts.
#[test]
fn a_bad_bridge_directive_stops_the_broker_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bridge.toml");
    std::fs::write(
        &path,
        "[[bridge]]\nconnection = \"b1\"\naddress = \"127.0.0.1:1884\"\ntopic = [\"# sideways 1\"]\n",
    )
    .expect("written");
    let out = common::run_until_exit(&ReferenceOptions {
        extra_args: vec!["--config".into(), path.display().to_string()],
        ..ReferenceOptions::default()
    });
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[[bridge]] number 1 in --config: topic \"# sideways 1\": direction \"sideways\" is not out, in or both"),
        "{stderr}"
    );
}
