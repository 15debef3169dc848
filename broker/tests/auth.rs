//! Password files made by mosquitto_passwd, checked by the real broker.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use bytes::Bytes;
use common::*;
use mqtt_codec::{ConnectReturnCode, Packet};

fn password_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("passwords");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&path)
        .args(["alice", "wonderland"])
        .status()
        .expect("mosquitto_passwd is installed (scripts/setup)");
    assert!(status.success());
    path
}

fn with_credentials(user: Option<&str>, password: Option<&'static str>) -> mqtt_codec::Connect {
    let mut c = connect_packet("auth-test", true);
    c.username = user.map(str::to_owned);
    c.password = password.map(|p| Bytes::from_static(p.as_bytes()));
    c
}

#[tokio::test]
async fn mosquitto_passwd_file_decides_who_connects() {
    let dir = tempfile::tempdir().unwrap();
    let file = password_file(dir.path());
    let b = start(&["--password-file", file.to_str().unwrap()]);

    let (_ok, ack) = RawClient::connect(
        b.addr(),
        with_credentials(Some("alice"), Some("wonderland")),
    )
    .await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);

    for (user, password) in [
        (Some("alice"), Some("looking-glass")),
        (Some("bob"), Some("wonderland")),
        (Some("alice"), None),
    ] {
        let (mut c, ack) = RawClient::connect(b.addr(), with_credentials(user, password)).await;
        assert_eq!(
            ack.code,
            ConnectReturnCode::BadUserNameOrPassword,
            "{user:?}/{password:?}"
        );
        assert!(!ack.session_present);
        assert_eq!(
            c.try_recv().await,
            None,
            "closed after a refusal [MQTT-3.2.2-5]"
        );
    }
    let (mut c, ack) = RawClient::connect(b.addr(), with_credentials(None, None)).await;
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);
    assert_eq!(c.try_recv().await, None);
}

#[tokio::test]
async fn allow_anonymous_lets_clients_without_a_name_in() {
    let dir = tempfile::tempdir().unwrap();
    let file = password_file(dir.path());
    let b = start(&[
        "--password-file",
        file.to_str().unwrap(),
        "--allow-anonymous",
    ]);
    let (mut c, ack) = RawClient::connect(b.addr(), with_credentials(None, None)).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    c.send(&Packet::PingReq).await;
    assert_eq!(c.recv().await, Packet::PingResp);
    // A name still has to be right.
    let (_c, ack) = RawClient::connect(b.addr(), with_credentials(Some("alice"), Some("x"))).await;
    assert_eq!(ack.code, ConnectReturnCode::BadUserNameOrPassword);
}

#[test]
fn unreadable_password_file_is_a_one_line_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args([
            "--no-ssl",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--password-file",
            "/nonexistent/pw",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broker: reading password file /nonexistent/pw"),
        "{stderr}"
    );
}
