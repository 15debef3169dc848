//! `toolkit probe` against a real mosquitto (Debian's package), with
//! certificates made by `toolkit certs`: plain and TLS, trust decisions,
//! mutual TLS, credentials, the cross probe, the shell, and every failure's
//! exit status and hint.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::Path;

use common::{
    broker_wanting_alice, make_client_cert, mosquitto_pub, new_certs, stderr_of, stdout_of,
    tls_broker, toolkit,
};
use testsupport::{Mosquitto, MosquittoOptions, free_port, write_acl_file};

/// Exit statuses documented in `toolkit probe --help`.
const CONNECT: i32 = 3;
const HANDSHAKE: i32 = 4;
const CERTIFICATE: i32 = 5;
const REFUSED: i32 = 6;
const LOST: i32 = 7;
const TIMEOUT: i32 = 8;
const CLOSED: i32 = 9;

/// `toolkit probe --host 127.0.0.1 --port PORT ARGS…`, its output, and its exit code.
fn probe(port: u16, args: &[&str]) -> (i32, String, String) {
    let out = toolkit()
        .args(["probe", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        stdout_of(&out),
        stderr_of(&out),
    )
}

/// `probe` over TLS trusting the CA in `ca`, more flags in `args`.
fn probe_tls(port: u16, ca: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["--tls", "--cafile", ca.to_str().unwrap()];
    all.extend_from_slice(args);
    probe(port, &all)
}

/// `probe_tls` presenting the client certificate `DIR/NAME.pem` with its
/// key `DIR/NAME.key`.
fn probe_tls_as(port: u16, ca: &Path, dir: &Path, name: &str) -> (i32, String, String) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    probe_tls(
        port,
        ca,
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    )
}

fn assert_ok(result: &(i32, String, String), broker: &Mosquitto) {
    let (code, out, err) = result;
    assert_eq!(
        *code,
        0,
        "stdout:\n{out}\nstderr:\n{err}\nbroker log:\n{}",
        broker.log()
    );
}

fn assert_fails(result: &(i32, String, String), code: i32, needles: &[&str]) {
    let (got, out, err) = result;
    assert_eq!(*got, code, "stdout:\n{out}\nstderr:\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    assert_eq!(err.lines().count(), 1, "one line of reason: {err}");
}

#[test]
fn plain_probe_round_trips_every_qos() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let result = probe(broker.port(), &[]);
    assert_ok(&result, &broker);
    let out = &result.1;
    assert!(out.contains("connack  0 connection accepted"), "{out}");
    for qos in [
        "qos 0    round trip",
        "qos 1    round trip",
        "qos 2    round trip",
    ] {
        assert!(out.contains(qos), "{qos}: {out}");
    }
    assert!(
        out.contains("PUBACK in") && out.contains("PUBCOMP in"),
        "{out}"
    );
    assert!(out.contains("passed"), "{out}");
}

#[test]
fn qos_and_client_id_flags_are_used() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let result = probe(
        broker.port(),
        &[
            "--qos",
            "1",
            "--client-id",
            "probe-fixed-id",
            "--timeout",
            "3",
        ],
    );
    assert_ok(&result, &broker);
    let out = &result.1;
    assert!(out.contains("qos 1    round trip"), "{out}");
    assert!(!out.contains("qos 0 ") && !out.contains("qos 2 "), "{out}");
    assert!(out.contains("client id probe-fixed-id"), "{out}");
    assert!(broker.log().contains("probe-fixed-id"), "{}", broker.log());
}

#[test]
fn tls_with_our_ca_works_for_mosquitto_pub_and_probe() {
    let certs = new_certs(&[]);
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", false);
    let tls_port = broker.tls_port().unwrap();

    let cafile = certs.path().join("ca.pem");
    let pub_out = mosquitto_pub(
        tls_port,
        &["-t", "t", "-m", "m", "--cafile", cafile.to_str().unwrap()],
    );
    assert!(
        pub_out.status.success(),
        "{}\n{}",
        stderr_of(&pub_out),
        broker.log()
    );

    let result = probe_tls(tls_port, &cafile, &[]);
    assert_ok(&result, &broker);
    let out = &result.1;
    assert!(out.contains("tls      TLS 1."), "{out}");
    assert!(out.contains("cert     subject CN=localhost"), "{out}");
    assert!(
        out.contains("SANs    DNS:localhost, IP:127.0.0.1, IP:::1"),
        "{out}"
    );
    assert!(out.contains("(valid, 364 days left)"), "{out}");
    assert!(out.contains("verified against"), "{out}");
    assert!(out.contains("qos 2    round trip"), "{out}");
}

#[test]
fn tls_without_a_ca_fails_with_the_unknown_ca_hint_and_insecure_passes() {
    let certs = new_certs(&[]);
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", false);
    let tls_port = broker.tls_port().unwrap();

    let result = probe(tls_port, &["--tls"]);
    assert_fails(
        &result,
        CERTIFICATE,
        &["unknown CA", "--cafile ca.pem", "--insecure"],
    );

    let result = probe(tls_port, &["--tls", "--insecure", "--qos", "1"]);
    assert_ok(&result, &broker);
    assert!(
        result.1.contains("NOT verified (--insecure)"),
        "{}",
        result.1
    );
}

#[test]
fn self_signed_server_gets_the_self_signed_hint_and_works_as_its_own_ca() {
    let certs = new_certs(&["--self-signed"]);
    let broker = tls_broker(certs.path(), "mqtt_server", "mqtt_server.pem", false);
    let tls_port = broker.tls_port().unwrap();

    let result = probe(tls_port, &["--tls", "--qos", "0"]);
    assert_fails(
        &result,
        CERTIFICATE,
        &["self-signed", "--cafile", "--insecure"],
    );

    let own = certs.path().join("mqtt_server.pem");
    let result = probe_tls(tls_port, &own, &["--qos", "0"]);
    assert_ok(&result, &broker);

    let pub_out = mosquitto_pub(
        tls_port,
        &["-t", "t", "-m", "m", "--cafile", own.to_str().unwrap()],
    );
    assert!(pub_out.status.success(), "{}", stderr_of(&pub_out));
}

#[test]
fn wrong_ca_wrong_host_and_expired_certificates_are_rejected_with_reasons() {
    let certs = new_certs(&[]);
    let other = new_certs(&[]);
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", false);
    let tls_port = broker.tls_port().unwrap();
    let other_ca = other.path().join("ca.pem");
    let result = probe_tls(tls_port, &other_ca, &[]);
    assert_fails(&result, CERTIFICATE, &["unknown CA", "--cafile"]);
    drop(broker);

    // A certificate for another host only.
    let named = new_certs(&["--hostname", "broker.example", "--no-default-names"]);
    let broker = tls_broker(named.path(), "mqtt_server", "ca.pem", false);
    let ca = named.path().join("ca.pem");
    let result = probe_tls(broker.tls_port().unwrap(), &ca, &[]);
    assert_fails(
        &result,
        CERTIFICATE,
        &[
            "not valid for host 127.0.0.1 ",
            "DNS:broker.example",
            // Issue 12: an address needs an IP SAN, which `--ip` names.
            "`toolkit certs --ip 127.0.0.1`",
        ],
    );
    drop(broker);

    // Expired ten days ago; and one made with --days 0.
    for args in [&["--days", "1", "--backdate", "10"][..], &["--days", "0"]] {
        let old = new_certs(args);
        let broker = tls_broker(old.path(), "mqtt_server", "ca.pem", false);
        let ca = old.path().join("ca.pem");
        let result = probe_tls(broker.tls_port().unwrap(), &ca, &[]);
        assert_fails(&result, CERTIFICATE, &["expired", "EXPIRED", "renew"]);
    }
}

#[test]
fn client_certificate_passes_require_certificate_and_its_absence_is_refused() {
    let certs = new_certs(&[]);
    make_client_cert(certs.path(), "sensor-1");
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", true);
    let tls_port = broker.tls_port().unwrap();
    let ca = certs.path().join("ca.pem");

    let result = probe_tls_as(tls_port, &ca, certs.path(), "sensor-1");
    assert_ok(&result, &broker);

    let result = probe_tls(tls_port, &ca, &["--qos", "0"]);
    assert_fails(&result, HANDSHAKE, &["--cert", "--key"]);

    // A client certificate from a CA the broker does not trust.
    let stranger = new_certs(&[]);
    make_client_cert(stranger.path(), "stranger");
    let result = probe_tls_as(tls_port, &ca, stranger.path(), "stranger");
    assert_fails(&result, HANDSHAKE, &["--cert"]);
}

#[test]
fn missing_or_wrong_files_are_usage_errors() {
    let certs = new_certs(&[]);
    let port = free_port();
    let missing = certs.path().join("nope.pem");
    let result = probe_tls(port, &missing, &[]);
    assert_fails(&result, 2, &["--cafile", "nope.pem"]);

    let key_as_ca = certs.path().join("ca.key");
    let result = probe_tls(port, &key_as_ca, &[]);
    assert_fails(&result, 2, &["holds no PEM certificate"]);

    let cert = certs.path().join("mqtt_server.pem");
    let result = probe(
        port,
        &[
            "--tls",
            "--insecure",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            missing.to_str().unwrap(),
        ],
    );
    assert_fails(&result, 2, &["--key"]);

    let result = probe(port, &["--cafile", cert.to_str().unwrap()]);
    assert_fails(&result, 2, &["add --tls"]);

    let out = toolkit().args(["probe", "--qos", "7"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = toolkit().args(["probe", "--cross"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn nothing_listening_is_a_connect_failure() {
    let port = free_port();
    let result = probe(port, &[]);
    assert_fails(&result, CONNECT, &["refused", "--port"]);
    let result = probe(port, &["--tls", "--insecure"]);
    assert_fails(&result, CONNECT, &["refused"]);
}

#[test]
fn wrong_protocol_on_a_port_is_named() {
    let certs = new_certs(&[]);
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", false);

    // TLS to the plain listener.
    let result = probe(broker.port(), &["--tls", "--insecure", "--timeout", "3"]);
    assert_fails(&result, HANDSHAKE, &["TLS listener", "drop --tls"]);

    // Plain MQTT to the TLS listener.
    let result = probe(broker.tls_port().unwrap(), &["--timeout", "3"]);
    assert_fails(&result, CLOSED, &["add --tls"]);
}

#[test]
fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold connections without answering, until the test ends.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let result = probe(port, &["--timeout", "0.5"]);
    assert_fails(&result, TIMEOUT, &["no CONNACK", "--timeout"]);
}

#[test]
fn credentials_are_sent_and_refusals_are_explained() {
    let (_passwords, broker) = broker_wanting_alice();
    let result = probe(
        broker.port(),
        &["--username", "alice", "--password", "s3cret", "--qos", "1"],
    );
    assert_ok(&result, &broker);

    let result = probe(
        broker.port(),
        &["--username", "alice", "--password", "wrong"],
    );
    assert_fails(&result, REFUSED, &["CONNACK", "--username"]);

    let result = probe(broker.port(), &[]);
    assert_fails(
        &result,
        REFUSED,
        &["CONNACK 5 (not authorized)", "--username"],
    );
}

#[test]
fn a_message_the_broker_drops_is_reported_lost() {
    let dir = tempfile::tempdir().unwrap();
    // Anonymous clients may subscribe to probe topics but not publish to
    // them: mosquitto acknowledges such a PUBLISH and drops it.
    let acl = write_acl_file(dir.path(), &["topic read toolkit/probe/#"]);
    let broker = Mosquitto::start(MosquittoOptions {
        acl_file: Some(acl),
        ..MosquittoOptions::default()
    });
    let result = probe(broker.port(), &["--qos", "1", "--timeout", "1"]);
    let (code, out, err) = &result;
    assert_eq!(*code, LOST, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("did not arrive within"), "{err}");
    assert!(out.contains("qos 1    FAILED"), "{out}");
}

#[test]
fn cross_probe_passes_both_ways_between_plain_and_tls() {
    let certs = new_certs(&[]);
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", false);
    let ca = certs.path().join("ca.pem");
    let tls_port = broker.tls_port().unwrap().to_string();
    let result = probe(
        broker.port(),
        &[
            "--cross",
            "--tls-port",
            &tls_port,
            "--cafile",
            ca.to_str().unwrap(),
        ],
    );
    assert_ok(&result, &broker);
    let out = &result.1;
    assert!(out.contains("tls -> plain  ok"), "{out}");
    assert!(out.contains("plain -> tls  ok"), "{out}");
    assert!(out.contains("tls -> plain  qos 2    round trip"), "{out}");
    assert!(out.contains("plain -> tls  qos 0    round trip"), "{out}");

    // Without a CA the TLS side fails with the usual reason.
    let result = probe(broker.port(), &["--cross", "--tls-port", &tls_port]);
    assert_fails(&result, CERTIFICATE, &["--cafile"]);
}

fn shell(port: u16, script: &str) -> (i32, String, String) {
    let out = toolkit()
        .args([
            "probe",
            "--interactive",
            "--timeout",
            "5",
            "--host",
            "127.0.0.1",
            "--port",
        ])
        .arg(port.to_string())
        .write_stdin(script)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        stdout_of(&out),
        stderr_of(&out),
    )
}

#[test]
fn shell_subscribes_publishes_and_prints_messages_as_they_arrive() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let script = "connect\n\
                  sub shell/+/x 2\n\
                  pub -q 1 shell/a/x hello world\n\
                  pub -q 2 shell/b/x second\n\
                  wait 2\n\
                  status\n\
                  unsub shell/+/x\n\
                  status\n\
                  quit\n";
    let (code, out, err) = shell(broker.port(), script);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("subscribed to shell/+/x (granted QoS 2)"),
        "{out}"
    );
    assert!(out.contains("< shell/a/x (qos 1) hello world"), "{out}");
    assert!(out.contains("< shell/b/x (qos 2) second"), "{out}");
    assert!(
        out.contains("published to shell/a/x at QoS 1 (PUBACK in"),
        "{out}"
    );
    assert!(out.contains("waited for 2 messages"), "{out}");
    assert!(out.contains("subscriptions: shell/+/x (QoS 2)"), "{out}");
    assert!(out.contains("messages received: 2"), "{out}");
    assert!(out.contains("subscriptions: none"), "{out}");
    assert!(out.trim_end().ends_with("disconnected"), "{out}");
}

#[test]
fn shell_receives_what_another_client_published() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let pub_out = mosquitto_pub(
        broker.port(),
        &[
            "-t",
            "from/mosquitto",
            "-m",
            "retained hello",
            "-r",
            "-q",
            "1",
        ],
    );
    assert!(pub_out.status.success(), "{}", stderr_of(&pub_out));
    let (code, out, err) = shell(broker.port(), "connect\nsub from/# 1\nwait\n");
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("< from/mosquitto (qos 1, retained) retained hello"),
        "{out}"
    );
}

#[test]
fn shell_reports_mistakes_and_exits_with_the_last_failure() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let (code, out, err) = shell(broker.port(), "pub t x\nbogus\nsub a/#/b\nhelp\n");
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("not connected: type connect first"), "{err}");
    assert!(err.contains("unknown command 'bogus'"), "{err}");
    assert!(err.contains("MQTT-4.7.1-2"), "{err}");
    assert!(out.contains("wait [N] [SECONDS]"), "{out}");

    let (code, out, err) = shell(broker.port(), "connect\nwait 1 0.3\n");
    assert_eq!(code, LOST, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("only 0 of 1 messages arrived"), "{err}");

    let (code, _, err) = shell(free_port(), "connect\n");
    assert_eq!(code, CONNECT, "{err}");
}
