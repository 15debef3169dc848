//! Real clients through the real broker: mosquitto_pub/mosquitto_sub (plain
//! and TLS), paho-mqtt (Python) and MQTT.js (Node), both also over
//! WebSocket (ws and wss), and rumqttc.
//!
//! The external clients are installed by `scripts/setup`; a missing one is
//! a failed test, not a skipped one.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::mosquitto_clients::{Sub, mosquitto_pub};
use common::*;
use testsupport::ReferenceBroker;

fn target(addr: std::net::SocketAddr, ca: Option<&Path>) -> Vec<String> {
    let mut v = vec![
        "-h".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        addr.port().to_string(),
    ];
    if let Some(ca) = ca {
        // The generated certificate names localhost and 127.0.0.1.
        v.extend(["--cafile".to_owned(), ca.display().to_string()]);
    }
    v
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn mosquitto_round_trip(b: &ReferenceBroker, tls: bool) {
    let ca = b.ca_file();
    let (addr, ca) = if tls {
        (b.tls_addr().expect("TLS on"), Some(ca.as_path()))
    } else {
        (b.addr(), None)
    };
    for qos in ["0", "1", "2"] {
        let topic = format!("interop/mosquitto/{tls}/{qos}");
        let sub = Sub::start(&[target(addr, ca), strings(&["-t", &topic, "-q", qos])].concat());
        for i in 0..3 {
            mosquitto_pub(
                &[
                    target(addr, ca),
                    strings(&["-t", &topic, "-q", qos, "-m", &format!("m{i}")]),
                ]
                .concat(),
            );
            let line = sub.message(&topic);
            assert_eq!(line, format!("{topic} m{i}"));
        }
    }
}

#[test]
fn mosquitto_clients_plain_qos_0_1_2() {
    let b = start_tls(&[]);
    mosquitto_round_trip(&b, false);
}

#[test]
fn mosquitto_clients_tls_with_cafile_qos_0_1_2() {
    let b = start_tls(&[]);
    mosquitto_round_trip(&b, true);
}

#[test]
fn mosquitto_clients_retained_and_will() {
    let b = start_tls(&[]);
    let t = target(b.addr(), None);
    mosquitto_pub(
        &[
            t.clone(),
            strings(&["-t", "interop/retained", "-r", "-q", "1", "-m", "kept"]),
        ]
        .concat(),
    );
    let sub = Sub::start(&[t.clone(), strings(&["-t", "interop/retained"])].concat());
    assert_eq!(sub.message("interop/retained"), "interop/retained kept");

    let watcher = Sub::start(&[t.clone(), strings(&["-t", "interop/will"])].concat());
    let mut dying = Sub::start(
        &[
            t,
            strings(&[
                "-t",
                "nothing",
                "--will-topic",
                "interop/will",
                "--will-payload",
                "bye",
                "--will-qos",
                "1",
            ]),
        ]
        .concat(),
    );
    // Killed, not disconnected: the broker must publish the will.
    dying.kill();
    assert_eq!(watcher.message("interop/will"), "interop/will bye");
}

#[test]
fn plain_and_tls_clients_reach_each_other() {
    let b = start_tls(&[]);
    let ca = b.ca_file();
    let plain = target(b.addr(), None);
    let tls = target(b.tls_addr().expect("TLS on"), Some(&ca));
    let tls_sub = Sub::start(&[tls.clone(), strings(&["-t", "cross/to-tls"])].concat());
    let plain_sub = Sub::start(&[plain.clone(), strings(&["-t", "cross/to-plain"])].concat());
    mosquitto_pub(&[plain, strings(&["-t", "cross/to-tls", "-m", "from plain"])].concat());
    mosquitto_pub(&[tls, strings(&["-t", "cross/to-plain", "-m", "from tls"])].concat());
    assert_eq!(tls_sub.message("cross/to-tls"), "cross/to-tls from plain");
    assert_eq!(
        plain_sub.message("cross/to-plain"),
        "cross/to-plain from tls"
    );
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok "),
        "{cmd:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn paho_python_client_plain_and_tls() {
    let b = start_tls(&[]);
    let script = repo_root().join("interop/python/pubsub.py");
    for qos in ["0", "1", "2"] {
        run_ok(Command::new("python3").arg(&script).args([
            "127.0.0.1",
            &b.addr().port().to_string(),
            &format!("interop/paho/{qos}"),
            qos,
            "20",
        ]));
    }
    run_ok(
        Command::new("python3")
            .arg(&script)
            .args([
                "localhost",
                &b.tls_addr().expect("TLS").port().to_string(),
                "interop/paho/tls",
                "1",
                "20",
            ])
            .arg(b.ca_file()),
    );
}

#[test]
fn mqtt_js_client_plain_and_tls() {
    let b = start_tls(&[]);
    let dir = repo_root().join("interop/js");
    assert!(
        dir.join("node_modules/mqtt").exists(),
        "MQTT.js is missing: run scripts/setup (npm ci in interop/js)"
    );
    for qos in ["0", "1", "2"] {
        run_ok(Command::new("node").current_dir(&dir).args([
            "pubsub.js",
            &format!("mqtt://127.0.0.1:{}", b.addr().port()),
            &format!("interop/js/{qos}"),
            qos,
            "20",
        ]));
    }
    run_ok(
        Command::new("node")
            .current_dir(&dir)
            .args([
                "pubsub.js",
                &format!("mqtts://localhost:{}", b.tls_addr().expect("TLS").port()),
                "interop/js/tls",
                "2",
                "20",
            ])
            .arg(b.ca_file()),
    );
}

/// Issue 16: paho-mqtt's websockets transport, over ws:// and wss://.
#[test]
fn paho_python_client_over_websocket() {
    let b = start_tls(&["--ws-port", "0", "--wss-port", "0"]);
    let script = repo_root().join("interop/python/pubsub.py");
    let ws = b.ws_addr().expect("--ws-port listener");
    for qos in ["0", "1", "2"] {
        run_ok(Command::new("python3").arg(&script).args([
            "--websockets",
            "/mqtt",
            "127.0.0.1",
            &ws.port().to_string(),
            &format!("interop/paho-ws/{qos}"),
            qos,
            "20",
        ]));
    }
    let wss = b.wss_addr().expect("--wss-port listener");
    run_ok(
        Command::new("python3")
            .arg(&script)
            .args([
                "--websockets",
                "/mqtt",
                "localhost",
                &wss.port().to_string(),
                "interop/paho-wss",
                "2",
                "20",
            ])
            .arg(b.ca_file()),
    );
}

/// Issue 16: MQTT.js, the browser's client, over ws:// and wss://.
#[test]
fn mqtt_js_client_over_websocket() {
    let b = start_tls(&["--ws-port", "0", "--wss-port", "0"]);
    let dir = repo_root().join("interop/js");
    assert!(
        dir.join("node_modules/mqtt").exists(),
        "MQTT.js is missing: run scripts/setup (npm ci in interop/js)"
    );
    let ws = b.ws_addr().expect("--ws-port listener");
    for qos in ["0", "1", "2"] {
        run_ok(Command::new("node").current_dir(&dir).args([
            "pubsub.js",
            &format!("ws://127.0.0.1:{}/mqtt", ws.port()),
            &format!("interop/js-ws/{qos}"),
            qos,
            "20",
        ]));
    }
    let wss = b.wss_addr().expect("--wss-port listener");
    run_ok(
        Command::new("node")
            .current_dir(&dir)
            .args([
                "pubsub.js",
                &format!("wss://localhost:{}/mqtt", wss.port()),
                "interop/js-wss",
                "1",
                "20",
            ])
            .arg(b.ca_file()),
    );
}

#[tokio::test]
async fn rumqttc_client_plain_and_tls() {
    let b = start_tls(&[]);
    rumqttc_round_trip(b.addr().port(), None).await;
    let ca = std::fs::read(b.ca_file()).expect("CA written by the broker");
    rumqttc_round_trip(b.tls_addr().expect("TLS").port(), Some(ca)).await;
}

async fn rumqttc_round_trip(port: u16, ca: Option<Vec<u8>>) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet as RPacket, QoS as RQoS, Transport};
    let options = |id: &str| {
        let mut o = MqttOptions::new(id, "localhost", port);
        o.set_keep_alive(Duration::from_secs(30));
        if let Some(ca) = &ca {
            o.set_transport(Transport::tls_with_config(rustls_client(ca)));
        }
        o
    };
    // Client ids differ per listener: the plain and TLS round trips share one
    // broker, and a late reconnect of the first pair must not take over the
    // second [MQTT-3.1.4-2].
    let (sub, sub_loop) = AsyncClient::new(options(&format!("rumqttc-sub-{port}")), 100);
    let (publisher, pub_loop) = AsyncClient::new(options(&format!("rumqttc-pub-{port}")), 100);
    // Each event loop is polled by a task of its own and never dropped
    // mid-poll: a `poll()` future cancelled by a `select!` while it connects
    // starts the connection over.
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let sub_events = tx.clone();
    let sub_task = tokio::spawn(async move {
        let mut sub_loop = sub_loop;
        loop {
            let ev = sub_loop
                .poll()
                .await
                .map_err(|e| format!("subscriber: {e}"));
            let failed = ev.is_err();
            if sub_events.send(ev).is_err() || failed {
                break;
            }
        }
    });
    let pub_task = tokio::spawn(async move {
        let mut pub_loop = pub_loop;
        loop {
            if let Err(e) = pub_loop.poll().await {
                let _ = tx.send(Err(format!("publisher: {e}")));
                break;
            }
        }
    });
    sub.subscribe("interop/rumqttc", RQoS::ExactlyOnce)
        .await
        .expect("queued");
    let received = tokio::time::timeout(WAIT, async {
        let mut got = Vec::new();
        let mut published = false;
        while let Some(ev) = events.recv().await {
            match ev.expect("event loop") {
                Event::Incoming(RPacket::SubAck(_)) if !published => {
                    published = true;
                    for (i, qos) in [RQoS::AtMostOnce, RQoS::AtLeastOnce, RQoS::ExactlyOnce]
                        .into_iter()
                        .enumerate()
                    {
                        publisher
                            .publish("interop/rumqttc", qos, false, format!("m{i}"))
                            .await
                            .expect("queued");
                    }
                }
                Event::Incoming(RPacket::Publish(p)) => {
                    got.push(String::from_utf8_lossy(&p.payload).into_owned());
                    if got.len() == 3 {
                        break;
                    }
                }
                _ => {}
            }
        }
        got
    })
    .await
    .expect("rumqttc round trip in time");
    sub_task.abort();
    pub_task.abort();
    assert_eq!(received, vec!["m0", "m1", "m2"]);
}

fn rustls_client(ca_pem: &[u8]) -> rumqttc::TlsConfiguration {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(cert.expect("PEM certificate"))
            .expect("CA accepted");
    }
    let verify = credentials::tls::ServerVerification::Roots(roots);
    let config = credentials::tls::client_config(verify, None).expect("client configuration");
    rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(config))
}
