//! TLS listener: the generated certificate, identity as user name, the
//! handshake timeout and old protocol versions refused. (Mutual TLS itself
//! and delivery between the plain and TLS listeners are conformance
//! scenarios, run against this broker by `conformance/tests/reference_broker.rs`.)

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;

use common::pki::pki;
use common::*;
use credentials::certs::PairPaths;
use credentials::tls;
use mqtt_codec::{ConnectReturnCode, Packet};
use testsupport::{ReferenceBroker, ReferenceOptions};

fn client_config(ca: &std::path::Path, client: Option<&PairPaths>) -> Arc<rustls::ClientConfig> {
    let roots = tls::load_roots(ca, "--cafile").unwrap();
    let identity = client.map(|p| tls::ClientIdentity::load(&p.cert, &p.key).unwrap());
    Arc::new(tls::client_config(tls::ServerVerification::Roots(roots), identity.as_ref()).unwrap())
}

/// CONNECT over TLS; returns the CONNACK code, or `None` if the handshake
/// or the connection failed first.
async fn tls_connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    connect: mqtt_codec::Connect,
) -> Option<ConnectReturnCode> {
    let mut c = RawClient::try_open_tls(addr, config, "localhost")
        .await
        .ok()?;
    c.send(&Packet::Connect(connect)).await;
    match c.try_recv().await? {
        Packet::ConnAck(a) => Some(a.code),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn first_run_generates_a_ca_signed_certificate_and_logs_it() {
    let data = tempfile::tempdir().unwrap();
    let b = start_with(ReferenceOptions {
        tls: true,
        data_dir: Some(data.path().to_owned()),
        ..ReferenceOptions::default()
    });
    let ca = b.ca_file();
    assert!(ca.exists());
    let log = b.log();
    assert!(
        log.contains("sha256=") && log.contains("sans=localhost"),
        "{log}"
    );
    let code = tls_connect(
        b.tls_addr().unwrap(),
        client_config(&ca, None),
        connect_packet("t", true),
    )
    .await;
    assert_eq!(code, Some(ConnectReturnCode::Accepted));
    drop(b);
    // The second run reuses the same files.
    let before = std::fs::read(&ca).unwrap();
    let b = start_with(ReferenceOptions {
        tls: true,
        data_dir: Some(data.path().to_owned()),
        ..ReferenceOptions::default()
    });
    assert_eq!(std::fs::read(b.ca_file()).unwrap(), before);
    assert!(b.log().contains("using the TLS certificate"), "{}", b.log());
}

fn mutual_tls_broker(
    dir: &std::path::Path,
    extra: &[&str],
) -> (ReferenceBroker, PairPaths, PairPaths) {
    let (ca, server, client) = pki(dir, "device-7");
    let mut args: Vec<String> = vec![
        "--cert".into(),
        server.cert.display().to_string(),
        "--key".into(),
        server.key.display().to_string(),
        "--cafile".into(),
        ca.cert.display().to_string(),
        "--require-certificate".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let b = start_with(ReferenceOptions {
        tls: true,
        extra_args: args,
        ..ReferenceOptions::default()
    });
    (b, ca, client)
}

#[tokio::test]
async fn identity_as_username_accepts_the_certificate_name() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "someone:$7$101$AAAAAAAAAAAAAAAA$AAAA\n").unwrap();
    let (b, ca, client) = mutual_tls_broker(
        dir.path(),
        &[
            "--identity-as-username",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    let code = tls_connect(
        b.tls_addr().unwrap(),
        client_config(&ca.cert, Some(&client)),
        connect_packet("c", true),
    )
    .await;
    assert_eq!(code, Some(ConnectReturnCode::Accepted));
    // The plain listener still checks the password file.
    let (_c, ack) = RawClient::connect(b.addr(), connect_packet("plain", true)).await;
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);
}

/// Issue 14: `--require-certificate` no longer has to leave an anonymous
/// plain port beside it. With `--no-plain` nothing listens on the plain
/// port, and a TLS client with its certificate connects.
#[tokio::test]
async fn no_plain_serves_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, server, client) = pki(dir.path(), "device-7");
    // The plain listener would have taken this port.
    let plain_port = testsupport::free_port();
    let b = start_with(ReferenceOptions {
        tls_files: Some(testsupport::ReferenceTls {
            cert: server.cert.clone(),
            key: server.key.clone(),
            cafile: Some(ca.cert.clone()),
            require_certificate: true,
        }),
        port: Some(plain_port),
        extra_args: vec!["--no-plain".into()],
        ..ReferenceOptions::default()
    });
    assert_eq!(b.plain_addr(), None, "{}", b.log());
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", plain_port))
        .await
        .expect_err("nothing listens on the plain port");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let code = tls_connect(
        b.tls_addr().unwrap(),
        client_config(&ca.cert, Some(&client)),
        connect_packet("c", true),
    )
    .await;
    assert_eq!(code, Some(ConnectReturnCode::Accepted));
    assert!(b.log().contains("plain=off"), "{}", b.log());
}

#[test]
fn no_plain_without_tls_is_a_one_line_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["--no-plain", "--no-ssl", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "broker: --no-plain and --no-ssl together leave no listener: drop one of them (or add --ws-port)\n"
    );
}

#[tokio::test]
async fn stalled_handshake_is_cut_after_the_timeout() {
    let b = start_tls(&["--connect-timeout", "1"]);
    // TCP only, no ClientHello: the broker closes within the wait.
    let mut tcp = RawClient::open(b.tls_addr().unwrap()).await;
    tcp.expect_closed().await;
    assert!(
        b.wait_for_log("TLS handshake did not finish in time", WAIT),
        "{}",
        b.log()
    );
}

#[test]
fn tls_1_1_is_refused() {
    let b = start_tls(&[]);
    let port = b.tls_addr().unwrap().port().to_string();
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_1",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed (scripts/setup)");
    assert!(!out.status.success(), "TLS 1.1 handshake must fail");
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_2",
            "-CAfile",
        ])
        .arg(b.ca_file())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
}
