//! `toolkit proxy` as users run it: the binary between real clients and
//! mosquitto. rumqttc and paho-mqtt (Python) reconnect and redeliver every
//! QoS 1 message when the proxy cuts their connections mid-flight (each
//! published message counted at the subscriber, both clients seen to
//! reconnect, the cuts seen in the fault log); bad fault specs are one-line
//! usage errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{ProxyProcess, toolkit};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use testsupport::{Mosquitto, MosquittoOptions};

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// How many QoS 1 messages each client test publishes.
const COUNT: usize = 20;

/// Four cuts, counted across connections so each happens once: the
/// publisher's 4th and 11th PUBACK and the subscriber's 5th and 13th
/// PUBLISH never arrive, their connections closed instead. (Cutting every
/// n-th would livelock: a cut also loses the acknowledgements in flight
/// towards the broker, so the broker resends the same n on each reconnect.)
const CUTS: &[&str] = &[
    "--cut-at",
    "puback:nth=4,to-client,global",
    "--cut-at",
    "puback:nth=11,to-client,global",
    "--cut-at",
    "publish:nth=5,to-client,global",
    "--cut-at",
    "publish:nth=13,to-client,global",
];

/// What a rumqttc event loop saw.
#[derive(Debug)]
enum Seen {
    ConnAck,
    SubAck,
    Message(String),
}

/// A rumqttc client with a persistent session (so the broker keeps its
/// messages across cuts, and rumqttc resends its own unacknowledged ones),
/// its event loop polled on a task that reports to the returned channel.
fn rumqttc_client(
    id: &str,
    addr: SocketAddr,
) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_clean_session(false);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 2 * COUNT);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let seen = match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => Seen::ConnAck,
                Ok(Event::Incoming(Packet::SubAck(_))) => Seen::SubAck,
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    Seen::Message(String::from_utf8_lossy(&p.payload).into_owned())
                }
                Ok(_) => continue,
                Err(_) => {
                    // A cut: polling again reconnects. A short pause keeps
                    // a refused reconnect from spinning; it orders nothing.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    (client, rx)
}

/// Waits for `seen` to report something `pick` accepts, counting the
/// CONNACKs that go by in `connacks`.
async fn next_matching<T>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>,
    connacks: &mut usize,
    mut pick: impl FnMut(Seen) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let seen = rx.recv().await.expect("event loop running");
            if matches!(seen, Seen::ConnAck) {
                *connacks += 1;
            }
            if let Some(t) = pick(seen) {
                return t;
            }
        }
    })
    .await
    .expect("bounded wait for a client event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_reconnects_and_redelivers_every_qos1_message_through_cuts() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let port = m.port().to_string();
    let mut args = vec!["-p", port.as_str()];
    args.extend_from_slice(CUTS);
    let mut proxy = ProxyProcess::start(&args);
    let topic = "proxy/rumqttc";

    let (sub, mut sub_seen) = rumqttc_client("px-rumqttc-sub", proxy.addr);
    let mut sub_connacks = 0;
    sub.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    next_matching(&mut sub_seen, &mut sub_connacks, |s| {
        matches!(s, Seen::SubAck).then_some(())
    })
    .await;

    let (publisher, mut pub_seen) = rumqttc_client("px-rumqttc-pub", proxy.addr);
    let mut pub_connacks = 0;
    for i in 0..COUNT {
        publisher
            .publish(topic, QoS::AtLeastOnce, false, format!("msg-{i}"))
            .await
            .unwrap();
    }
    let mut received = BTreeSet::new();
    let mut deliveries = 0;
    while received.len() < COUNT {
        let m = next_matching(&mut sub_seen, &mut sub_connacks, |s| match s {
            Seen::Message(m) => Some(m),
            _ => None,
        })
        .await;
        deliveries += 1;
        received.insert(m);
    }
    let expected: BTreeSet<String> = (0..COUNT).map(|i| format!("msg-{i}")).collect();
    assert_eq!(received, expected, "every QoS 1 message arrives");
    assert!(deliveries >= COUNT);
    // Both clients were cut and came back: the publisher's reconnects show
    // as CONNACKs once it resends what the cut left unacknowledged.
    assert!(
        proxy.wait_for("(rule 4, match 13)").is_some(),
        "{:?}",
        proxy.log()
    );
    while pub_connacks < 3 {
        next_matching(&mut pub_seen, &mut pub_connacks, |s| {
            matches!(s, Seen::ConnAck).then_some(())
        })
        .await;
    }
    assert!(
        sub_connacks >= 3,
        "subscriber reconnected twice: {sub_connacks}"
    );
    let cuts = proxy
        .log()
        .iter()
        .filter(|l| l.contains(" cut (rule "))
        .count();
    assert_eq!(cuts, 4, "{:?}", proxy.log());
}

#[test]
fn paho_reconnects_and_redelivers_every_qos1_message_through_cuts() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let port = m.port().to_string();
    let mut args = vec!["-p", port.as_str()];
    args.extend_from_slice(CUTS);
    let mut proxy = ProxyProcess::start(&args);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../interop/python/reconnect.py"
    );
    let out = Command::new("python3")
        .args([script, "127.0.0.1", &proxy.addr.port().to_string()])
        .args(["proxy/paho", &COUNT.to_string()])
        .output()
        .expect("python3 with paho-mqtt is installed (scripts/setup)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}\nproxy: {:?}",
        String::from_utf8_lossy(&out.stderr),
        proxy.log()
    );
    assert!(
        stdout.starts_with(&format!("ok {COUNT} received={COUNT} ")),
        "{stdout}"
    );
    // Two cuts each: three connections per client.
    assert!(stdout.contains("sub_connects=3 "), "{stdout}");
    assert!(stdout.trim_end().ends_with("pub_connects=3"), "{stdout}");
    let cuts = proxy
        .log()
        .iter()
        .filter(|l| l.contains(" cut (rule "))
        .count();
    assert_eq!(cuts, 4, "{:?}", proxy.log());
}

#[test]
fn a_fault_file_and_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faults.toml");
    std::fs::write(
        &file,
        "delay = \"5ms\"\n\n[[rule]]\naction = \"drop\"\npacket = \"pubak\"\n",
    )
    .unwrap();
    let run = toolkit()
        .args(["proxy", "--listen", "0", "--faults"])
        .arg(&file)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: {}:3: unknown packet type 'pubak' (use connect",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_bad_fault_flag_is_one_line_naming_it() {
    let run = toolkit()
        .args(["proxy", "--listen", "0", "--drop", "puback:every=ten"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert_eq!(
        stderr,
        "error: --drop 'puback:every=ten': 'ten' is not a count (a whole number, at least 1)\n"
    );
}

#[test]
fn tls_on_both_sides_carries_a_probe() {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::write_server_certs(dir.path());
    let m = Mosquitto::start(MosquittoOptions {
        tls: Some(tls.clone()),
        ..MosquittoOptions::default()
    });
    let broker_tls_port = m.require_tls_port().to_string();
    let (cert, key, ca) = (
        tls.cert.to_str().unwrap(),
        tls.key.to_str().unwrap(),
        tls.cafile.to_str().unwrap(),
    );
    // TLS ends in the proxy (its own certificate) and starts again towards
    // mosquitto's TLS listener, verified against the CA.
    let mut proxy = ProxyProcess::start(&[
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--tls",
        "--cafile",
        ca,
        "-p",
        &broker_tls_port,
        "--delay",
        "1ms",
    ]);
    let out = toolkit()
        .args(["probe", "--tls", "--cafile", ca])
        .args(["-p", &proxy.addr.port().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}\nproxy: {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        proxy.log()
    );
    assert!(
        proxy.log()[0].contains("(TLS), forwarding to 127.0.0.1:"),
        "{:?}",
        proxy.log()
    );
    assert!(proxy.log()[0].ends_with("(TLS)"), "{:?}", proxy.log());
    assert!(proxy.wait_for(" conn=1 both delay 1ms jitter 0s").is_some());
}
