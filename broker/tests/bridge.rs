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
use testsupport::{Mosquitto, MosquittoOptions, MosquittoTls, ReferenceBroker, ReferenceOptions};

/// The bridge's topics in every test, as mosquitto.conf lines: out at QoS 1
/// (`lo/` here, `ro/` there), in at QoS 2 (`ri/` there, `li/` here), both at
/// QoS 2 (`lb/`, `rb/`).
const TOPICS: [&str; 3] = ["# out 1 lo/ ro/", "# in 2 li/ ri/", "# both 2 lb/ rb/"];

/// The longest a test waits for a bridge to carry its first message.
const BRIDGE_UP: Duration = Duration::from_secs(30);

/// Our broker's config file with one bridge to `remote` (`HOST:PORT`) and
/// `extra` TOML lines for it.
fn our_bridge_config(dir: &Path, remote: &str, topics: &[&str], extra: &str) -> ReferenceOptions {
    let topics: Vec<String> = topics.iter().map(|t| format!("{t:?}")).collect();
    // 10 s unless `extra` sets it.
    let keepalive = if extra.contains("keepalive_interval") {
        ""
    } else {
        "keepalive_interval = 10\n"
    };
    let toml = format!(
        "[[bridge]]\nconnection = \"b1\"\naddress = \"{remote}\"\ntopic = [{}]\nremote_clientid = \"ours-bridge\"\nrestart_timeout = 1\n{keepalive}{extra}",
        topics.join(", ")
    );
    let path = dir.join("bridge.toml");
    std::fs::write(&path, toml).expect("config written");
    ReferenceOptions {
        extra_args: vec!["--config".into(), path.display().to_string()],
        ..ReferenceOptions::default()
    }
}

/// Our broker bridged to a remote the test plays: the listener the bridge
/// connects to, the broker's data dir (kept while the test runs) and the
/// broker.
async fn bridged_to_a_script(
    topics: &[&str],
    extra: &str,
) -> (tokio::net::TcpListener, tempfile::TempDir, ReferenceBroker) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let remote = listener.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = start_with(our_bridge_config(dir.path(), &remote, topics, extra));
    (listener, dir, ours)
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
    let ours = start_with(our_bridge_config(
        dir.path(),
        &mosquitto.addr().to_string(),
        &TOPICS,
        "",
    ));
    bridged_pair_carries_messages(ours.addr(), mosquitto.addr()).await;
    // notifications (on by default, as in mosquitto): the state, retained
    // on both sides; at QoS 1 here, at QoS 0 on the remote (sent anew on
    // every connect, outside the bridge's stored session).
    let state = "$SYS/broker/connection/ours-bridge/state";
    for (side, qos) in [
        (ours.addr(), QoS::AtLeastOnce),
        (mosquitto.addr(), QoS::AtMostOnce),
    ] {
        let mut watcher = common::subscribed(side, "watcher", &[(state, QoS::AtLeastOnce)]).await;
        assert_eq!(
            next(&mut watcher).await,
            (state.into(), "1".into(), qos, true),
            "{side}"
        );
    }
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
        ours.wait_for_log("bridge=true", common::WAIT),
        "mosquitto's bridge was not seen as one:\n{}",
        ours.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_bridged_to_ours_carries_messages_both_ways() {
    let remote = common::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = start_with(our_bridge_config(
        dir.path(),
        &remote.addr().to_string(),
        &TOPICS,
        "",
    ));
    bridged_pair_carries_messages(ours.addr(), remote.addr()).await;
}

/// With `--durability batched` on both sides, a bridge's acknowledgements
/// and QoS 2 flows wait for the disk as a connection's do, and still flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_bridged_to_ours_with_batched_durability_carries_messages_both_ways() {
    let (remote_data, data) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let batched = || vec!["--durability".to_owned(), "batched".to_owned()];
    let remote = start_with(ReferenceOptions {
        extra_args: batched(),
        ..common::with_data_dir(remote_data.path())
    });
    let mut options = our_bridge_config(data.path(), &remote.addr().to_string(), &TOPICS, "");
    options.extra_args.extend(batched());
    options.data_dir = Some(data.path().to_owned());
    let ours = start_with(options);
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
    let ours = start_with(our_bridge_config(dir.path(), &far.to_string(), &TOPICS, ""));
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

/// TLS to the remote with `bridge_cafile`, and a client certificate
/// (`bridge_certfile`, `bridge_keyfile`) mosquitto requires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_bridged_to_mosquitto_over_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, server, client) = common::pki::pki(dir.path(), "bridge");
    let mosquitto = Mosquitto::start(MosquittoOptions {
        tls: Some(MosquittoTls {
            cert: server.cert,
            key: server.key,
            cafile: ca.cert.clone(),
            require_certificate: true,
        }),
        ..MosquittoOptions::default()
    });
    let tls = format!(
        "bridge_cafile = {:?}\nbridge_certfile = {:?}\nbridge_keyfile = {:?}\n",
        ca.cert.display().to_string(),
        client.cert.display().to_string(),
        client.key.display().to_string()
    );
    let address = format!("localhost:{}", mosquitto.require_tls_port());
    let ours = start_with(our_bridge_config(dir.path(), &address, &TOPICS, &tls));
    // The probes go over mosquitto's plain listener; the bridge over TLS.
    bridge_up(ours.addr(), mosquitto.addr()).await;
    assert!(
        ours.wait_for_log("bridge connected", common::WAIT),
        "{}",
        ours.log()
    );
}

/// A remote broker played by the test: it reads what the bridge sends and
/// answers as the test says.
struct ScriptedRemote {
    stream: tokio::net::TcpStream,
    buf: bytes::BytesMut,
}

impl ScriptedRemote {
    async fn accept(listener: &tokio::net::TcpListener) -> Self {
        let (stream, _) = tokio::time::timeout(common::WAIT, listener.accept())
            .await
            .expect("the bridge connects in time")
            .expect("accepted");
        Self {
            stream,
            buf: bytes::BytesMut::new(),
        }
    }

    async fn recv(&mut self) -> Packet {
        use tokio::io::AsyncReadExt as _;
        loop {
            if let Some(p) = mqtt_codec::decode_packet(&mut self.buf, 1 << 20).expect("valid") {
                return p;
            }
            let n = tokio::time::timeout(common::WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("a packet in time")
                .expect("read");
            assert!(n > 0, "the bridge closed the connection");
        }
    }

    async fn send(&mut self, packet: &Packet) {
        use tokio::io::AsyncWriteExt as _;
        let bytes = packet.to_bytes().expect("encodes");
        self.stream.write_all(&bytes).await.expect("written");
    }

    /// Waits (within [`common::WAIT`]) for the bridge to close the
    /// connection, skipping what it sends meanwhile; false if it does not.
    async fn closed(&mut self) -> bool {
        use tokio::io::AsyncReadExt as _;
        let until = tokio::time::Instant::now() + common::WAIT;
        loop {
            self.buf.clear();
            match tokio::time::timeout_at(until, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }

    /// Reads the bridge's SUBSCRIBE and grants it; returns its filters.
    async fn subscribed(&mut self) -> Vec<String> {
        let Packet::Subscribe(sub) = self.recv().await else {
            panic!("expected the bridge's SUBSCRIBE");
        };
        self.send(&Packet::SubAck(mqtt_codec::SubAck {
            packet_id: sub.packet_id,
            return_codes: sub
                .filters
                .iter()
                .map(|f| mqtt_codec::SubAckReturnCode::Granted(f.qos))
                .collect(),
        }))
        .await;
        sub.filters
            .iter()
            .map(|f| f.filter.as_str().to_owned())
            .collect()
    }

    /// Reads the bridge's CONNECT and accepts it.
    async fn connected(&mut self, session_present: bool) -> mqtt_codec::Connect {
        let Packet::Connect(connect) = self.recv().await else {
            panic!("the bridge's first packet is not CONNECT");
        };
        self.send(&Packet::ConnAck(mqtt_codec::ConnAck {
            session_present,
            code: mqtt_codec::ConnectReturnCode::Accepted,
        }))
        .await;
        connect
    }
}

/// A QoS 1 message the remote did not acknowledge before the connection
/// dropped is sent again, with DUP and the same packet id, on the next
/// connection [MQTT-4.4.0-1]; once acknowledged it is not sent again. The
/// bridge connects with the bridge bit (level 0x84) and its settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_flight_is_sent_again_with_dup_after_the_remote_drops() {
    let (listener, _dir, ours) =
        bridged_to_a_script(&["# out 1 lo/ ro/"], "notifications = false\n").await;
    let mut first = ScriptedRemote::accept(&listener).await;
    let connect = first.connected(false).await;
    assert_eq!(connect.protocol, mqtt_codec::ProtocolLevel::V3_1_1Bridge);
    assert_eq!(
        (
            connect.client_id.as_str(),
            connect.clean_session,
            connect.keep_alive
        ),
        ("ours-bridge", false, 10)
    );
    let mut near = RawClient::connected(ours.addr(), "near").await;
    send(&mut near, "lo/x", QoS::AtLeastOnce, "once", false, 1).await;
    let Packet::Publish(sent) = first.recv().await else {
        panic!("expected the PUBLISH");
    };
    assert_eq!((sent.topic().as_str(), sent.dup), ("ro/x", false));
    drop(first);

    let mut second = ScriptedRemote::accept(&listener).await;
    second.connected(true).await;
    let Packet::Publish(again) = second.recv().await else {
        panic!("expected the PUBLISH again");
    };
    assert!(again.dup, "sent again without DUP");
    assert_eq!(again.packet_id(), sent.packet_id());
    assert_eq!(again.payload(), sent.payload());
    let id = again.packet_id().expect("QoS 1");
    second.send(&Packet::PubAck(id)).await;
    send(&mut near, "lo/y", QoS::AtLeastOnce, "next", false, 2).await;
    let Packet::Publish(next) = second.recv().await else {
        panic!("expected the next PUBLISH");
    };
    assert_eq!((next.topic().as_str(), next.dup), ("ro/y", false));
}

/// A remote that refuses the bridge bit (CONNACK 0x01 to level 0x84) is
/// asked again as a plain MQTT 3.1.1 client, as mosquitto's `try_private`
/// does, and the bridge then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_refusing_the_bridge_level_is_asked_again_as_a_plain_client() {
    let (listener, _dir, ours) =
        bridged_to_a_script(&["# out 1 lo/ ro/"], "notifications = false\n").await;
    let mut first = ScriptedRemote::accept(&listener).await;
    let Packet::Connect(connect) = first.recv().await else {
        panic!("the bridge's first packet is not CONNECT");
    };
    assert_eq!(connect.protocol, mqtt_codec::ProtocolLevel::V3_1_1Bridge);
    first
        .send(&Packet::ConnAck(mqtt_codec::ConnAck {
            session_present: false,
            code: mqtt_codec::ConnectReturnCode::UnacceptableProtocolVersion,
        }))
        .await;
    drop(first);
    let mut second = ScriptedRemote::accept(&listener).await;
    let connect = second.connected(false).await;
    assert_eq!(connect.protocol, mqtt_codec::ProtocolLevel::V3_1_1);
    let mut near = RawClient::connected(ours.addr(), "near").await;
    // QoS 1: queued by the bridge's session even before it attaches.
    send(&mut near, "lo/x", QoS::AtLeastOnce, "plain", false, 1).await;
    let Packet::Publish(p) = second.recv().await else {
        panic!("expected the PUBLISH");
    };
    assert_eq!(p.topic().as_str(), "ro/x");
    assert!(
        ours.wait_for_log("refused the bridge protocol level", common::WAIT),
        "{}",
        ours.log()
    );
}

/// The bridge's keep-alive counts what it sends, not what it hears
/// [MQTT-3.1.2-23]: with only `in` topics at QoS 0 and the remote sending
/// steadily, the bridge still sends PINGREQ within a keep-alive (mosquitto
/// dropped it before, "has exceeded timeout"); and when nothing answers a
/// PINGREQ within a keep-alive, the bridge drops the connection and
/// connects again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_pings_while_the_remote_keeps_sending() {
    let (listener, _dir, _ours) = bridged_to_a_script(
        &["# in 0 li/ ri/"],
        "notifications = false\nkeepalive_interval = 5\n",
    )
    .await;
    let mut first = ScriptedRemote::accept(&listener).await;
    first.connected(false).await;
    assert_eq!(first.subscribed().await, ["ri/#"]);
    // A message every 250 ms (20 per keep-alive) until the PINGREQ, for at
    // most three keep-alives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut sent = 0u32;
    loop {
        first
            .send(&publish("ri/t", QoS::AtMostOnce, None, "tick", false))
            .await;
        sent += 1;
        match tokio::time::timeout(Duration::from_millis(250), first.recv()).await {
            Ok(Packet::PingReq) => break,
            Ok(other) => panic!("expected PINGREQ, got {other:?}"),
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "no PINGREQ from the bridge while the remote sent {sent} messages over 15 s"
            ),
        }
    }
    // No answer, nothing else: the bridge gives up on this connection...
    assert!(first.closed().await, "the bridge kept a silent remote");
    // ...and connects again.
    let mut second = ScriptedRemote::accept(&listener).await;
    second.connected(false).await;
}

/// A remote that stops reading does not hold the broker's shutdown: the
/// bridge's writes are raced with it, its DISCONNECT bounded, and what it
/// buffers for the remote bounded (the rest is the outbox's, within its
/// limits). Before, SIGTERM left the broker running with its state unsaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_stops_while_the_remote_does_not_read() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let remote = listener.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    let mut options = our_bridge_config(
        dir.path(),
        &remote,
        &["# out 0 lo/ ro/"],
        "notifications = false\n",
    );
    options.data_dir = Some(data.path().to_owned());
    let mut ours = start_with(options);
    let mut stalled = ScriptedRemote::accept(&listener).await;
    stalled.connected(false).await;
    // Nothing is read from here on. 40 x 1 MB is well past what the
    // loopback's socket buffers hold.
    let mut near = RawClient::connected(ours.addr(), "near").await;
    let payload = "x".repeat(1 << 20);
    for _ in 0..40 {
        near.send(&publish("lo/big", QoS::AtMostOnce, None, &payload, false))
            .await;
    }
    // A round trip: the broker has taken all of them.
    near.send(&Packet::PingReq).await;
    assert_eq!(near.recv().await, Packet::PingResp);
    // Generous for a loaded machine: before the fix it never stopped.
    let bound = Duration::from_secs(30);
    let status = ours.terminate(bound);
    assert!(
        status.is_some_and(|s| s.success()),
        "the broker did not stop within {} s: {}",
        bound.as_secs(),
        ours.log()
    );
    assert!(ours.log().contains("state saved"), "{}", ours.log());
    drop(stalled);
}

/// A remote that comes back without its session (CONNACK session present
/// 0) numbers its QoS 2 messages from 1 again: an id remembered from the
/// old session waiting for PUBREL must not swallow the new message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_without_its_session_gets_its_new_qos2_ids_delivered() {
    let (listener, _dir, ours) =
        bridged_to_a_script(&["# in 2 li/ ri/"], "notifications = false\n").await;
    let mut near = common::subscribed(ours.addr(), "near", &[("li/#", QoS::ExactlyOnce)]).await;
    let mut first = ScriptedRemote::accept(&listener).await;
    first.connected(false).await;
    first.subscribed().await;
    first
        .send(&publish("ri/x", QoS::ExactlyOnce, Some(1), "old", false))
        .await;
    assert_eq!(first.recv().await, Packet::PubRec(common::pid(1)));
    assert_eq!(next(&mut near).await.1, "old");
    // The remote loses its state before the PUBREL.
    drop(first);
    let mut second = ScriptedRemote::accept(&listener).await;
    second.connected(false).await;
    second.subscribed().await;
    second
        .send(&publish("ri/x", QoS::ExactlyOnce, Some(1), "new", false))
        .await;
    assert_eq!(second.recv().await, Packet::PubRec(common::pid(1)));
    second.send(&Packet::PubRel(common::pid(1))).await;
    assert_eq!(second.recv().await, Packet::PubComp(common::pid(1)));
    assert_eq!(next(&mut near).await.1, "new");
}

/// The broker's own bridges are exempt from the ACL, as mosquitto 2.0's
/// are (its check returns success for them): with an ACL that grants only
/// user `x`, the bridge still moves messages out and in. A client that
/// connects with the bridge bit is checked like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brokers_own_bridge_passes_the_acl_and_a_bridging_client_does_not() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let remote = listener.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "user x\ntopic readwrite #\n").expect("acl written");
    let mut options = our_bridge_config(
        dir.path(),
        &remote,
        &["o/# out 1", "i/# in 1"],
        "notifications = false\nlocal_username = \"nobody\"\n",
    );
    options
        .extra_args
        .extend(["--acl-file".into(), acl.display().to_string()]);
    let ours = start_with(options);
    let as_x = |id: &str| {
        let mut c = common::connect_packet(id, true);
        c.username = Some("x".into());
        c
    };
    let (mut near, ack) = RawClient::connect(ours.addr(), as_x("near")).await;
    assert_eq!(ack.code, mqtt_codec::ConnectReturnCode::Accepted);
    near.subscribe(&[("i/#", QoS::AtLeastOnce)], 1).await;
    let mut far = ScriptedRemote::accept(&listener).await;
    far.connected(false).await;
    assert_eq!(far.subscribed().await, ["i/#"]);
    send(&mut near, "o/x", QoS::AtLeastOnce, "out", false, 2).await;
    let Packet::Publish(out) = far.recv().await else {
        panic!("expected the PUBLISH out");
    };
    assert_eq!(
        (out.topic().as_str(), out.payload().as_ref()),
        ("o/x", &b"out"[..])
    );
    far.send(&Packet::PubAck(out.packet_id().expect("QoS 1")))
        .await;
    far.send(&publish("i/x", QoS::AtLeastOnce, Some(7), "in", false))
        .await;
    assert_eq!(far.recv().await, Packet::PubAck(common::pid(7)));
    assert_eq!(
        next(&mut near).await,
        ("i/x".into(), "in".into(), QoS::AtLeastOnce, false)
    );

    // A client bridging in (level 0x84), anonymous: the ACL applies.
    let mut c = common::connect_packet("other-bridge", true);
    c.protocol = mqtt_codec::ProtocolLevel::V3_1_1Bridge;
    let (mut bridging, ack) = RawClient::connect(ours.addr(), c).await;
    assert_eq!(ack.code, mqtt_codec::ConnectReturnCode::Accepted);
    bridging
        .send(&Packet::Subscribe(mqtt_codec::Subscribe {
            packet_id: common::pid(1),
            filters: vec![mqtt_codec::SubscribeFilter {
                filter: mqtt_codec::topic::TopicFilter::new("i/#").expect("valid"),
                qos: QoS::AtLeastOnce,
            }],
        }))
        .await;
    let Packet::SubAck(suback) = bridging.recv().await else {
        panic!("expected SUBACK");
    };
    assert_eq!(
        suback.return_codes,
        [mqtt_codec::SubAckReturnCode::Failure],
        "a client with the bridge bit was exempt from the ACL"
    );
}
