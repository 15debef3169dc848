//! `toolkit conformance` checks each listener it will use before running
//! any scenario (issue 12): pointed at the wrong port, a web server, a TLS
//! port without TLS (or TLS at a plain port), an untrusted certificate or a
//! broker that wants credentials, it prints one line saying what is wrong
//! and how to fix it, with `toolkit probe`'s exit status, instead of a
//! hundred failed scenarios.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener};

use common::{broker_wanting_alice, new_certs, stderr_of, stdout_of, tls_broker, toolkit};
use testsupport::free_port;

/// Exit statuses of `toolkit probe`, which the preflight shares.
const CONNECT: i32 = 3;
const HANDSHAKE: i32 = 4;
const CERTIFICATE: i32 = 5;
const REFUSED: i32 = 6;
const CLOSED: i32 = 9;

/// Runs `toolkit conformance -h 127.0.0.1 ARGS…`, which must exit with
/// `code`, print nothing on standard output (no scenario ran, no report) and
/// exactly one line on standard error holding each of `needles`.
fn preflight_fails(args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = toolkit()
        .args(["conformance", "-h", "127.0.0.1"])
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stdout, "", "nothing else runs");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    stderr
}

#[test]
fn a_port_nobody_listens_on() {
    let port = free_port().to_string();
    preflight_fails(&["-p", &port], CONNECT, &["refused", "--port"]);
}

#[test]
fn an_http_server_is_not_mqtt() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Answers whatever it is sent as a web server does, then closes its
    // side and reads until the client has closed too (so no reset loses
    // the answer).
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.shutdown(Shutdown::Write);
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        }
    });
    preflight_fails(
        &["-p", &port.to_string()],
        CONNECT,
        &["not an MQTT broker", "web server", "HTTP/1.1 400", "--port"],
    );
}

#[test]
fn a_tls_port_given_as_the_plain_one() {
    let certs = new_certs(&[]);
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", false);
    let tls_port = broker.tls_port().unwrap().to_string();
    preflight_fails(&["-p", &tls_port], CLOSED, &["TLS port", "--tls-port"]);
}

#[test]
fn a_plain_port_given_as_the_tls_one() {
    let certs = new_certs(&[]);
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", false);
    let plain = broker.port().to_string();
    preflight_fails(
        &["-p", &plain, "--tls-port", &plain, "--insecure"],
        HANDSHAKE,
        &["TLS", "--tls-port must be the TLS listener"],
    );
}

#[test]
fn a_certificate_the_cafile_does_not_trust() {
    let certs = new_certs(&[]);
    let other = new_certs(&[]);
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", false);
    let wrong_ca = other.path().join("ca.pem");
    preflight_fails(
        &[
            "-p",
            &broker.port().to_string(),
            "--tls-port",
            &broker.tls_port().unwrap().to_string(),
            "--cafile",
            wrong_ca.to_str().unwrap(),
        ],
        CERTIFICATE,
        &["unknown CA", "--cafile"],
    );
}

#[test]
fn a_broker_that_wants_credentials() {
    let (_passwords, broker) = broker_wanting_alice();
    let port = broker.port().to_string();
    preflight_fails(
        &["-p", &port],
        REFUSED,
        &["CONNACK 5 (not authorized)", "--username"],
    );
    preflight_fails(
        &["-p", &port, "-u", "alice", "-P", "wrong"],
        REFUSED,
        &["CONNACK", "--password"],
    );
}

#[test]
fn a_websocket_listener_at_another_path_names_the_http_status() {
    let m = testsupport::Mosquitto::start(testsupport::MosquittoOptions::default());
    let gateway =
        testsupport::WebSocketGateway::start(m.addr(), testsupport::GatewayOptions::default());
    let port = gateway.port().to_string();
    preflight_fails(
        &["-p", &port, "--transport", "ws", "--ws-path", "/nope"],
        CONNECT,
        &["HTTP 404", "--ws-path", "ws://127.0.0.1"],
    );
}

#[test]
fn transport_ws_at_a_plain_mqtt_port_fails_the_handshake() {
    let m = testsupport::Mosquitto::start(testsupport::MosquittoOptions::default());
    let port = m.port().to_string();
    preflight_fails(
        &["-p", &port, "--transport", "ws"],
        CONNECT,
        &["WebSocket handshake with ws://127.0.0.1"],
    );
}
