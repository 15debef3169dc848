//! Password files made by mosquitto_passwd, checked by the real broker.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use bytes::Bytes;
use common::*;
use mqtt_codec::{ConnectReturnCode, Packet, QoS};

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

/// A password file with alice (password wonderland) and bob (password
/// builder), made by mosquitto_passwd.
fn two_users(dir: &std::path::Path) -> std::path::PathBuf {
    let path = password_file(dir);
    let status = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg(&path)
        .args(["bob", "builder"])
        .status()
        .expect("mosquitto_passwd is installed (scripts/setup)");
    assert!(status.success());
    path
}

/// CONNECT as `user` (with the password [`two_users`] gave them, or none
/// for `None`) under `client_id`, persistent session.
fn as_user(user: Option<&str>, client_id: &str) -> mqtt_codec::Connect {
    let mut c = connect_packet(client_id, false);
    c.username = user.map(str::to_owned);
    c.password = match user {
        Some("alice") => Some(Bytes::from_static(b"wonderland")),
        Some("bob") => Some(Bytes::from_static(b"builder")),
        _ => None,
    };
    c
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

/// Issue 14: with a password file, bob cannot take over alice's client id,
/// neither while she is connected (she is not kicked) nor while her session
/// is parked with queued messages; alice still can.
#[tokio::test]
async fn another_user_cannot_take_over_a_client_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_users(dir.path());
    let b = start(&[
        "--password-file",
        file.to_str().unwrap(),
        "--allow-anonymous",
    ]);
    let (mut alice, ack) = RawClient::connect(b.addr(), as_user(Some("alice"), "sensor")).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    alice
        .subscribe(&[("inbox/alice", QoS::AtLeastOnce)], 1)
        .await;

    for intruder in [Some("bob"), None] {
        let (mut c, ack) = RawClient::connect(b.addr(), as_user(intruder, "sensor")).await;
        assert_eq!(ack.code, ConnectReturnCode::NotAuthorized, "{intruder:?}");
        assert!(!ack.session_present);
        assert_eq!(c.try_recv().await, None, "closed after the refusal");
    }
    // Alice is still connected.
    alice.send(&Packet::PingReq).await;
    assert_eq!(alice.recv().await, Packet::PingResp);
    alice.send(&Packet::Disconnect).await;
    alice.expect_closed().await;

    // Her parked session and its queue are not bob's either.
    let mut sender = RawClient::connected(b.addr(), "sender").await;
    publish_acked(&mut sender, "inbox/alice", 1, "for alice").await;
    let (_c, ack) = RawClient::connect(b.addr(), as_user(Some("bob"), "sensor")).await;
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);
    assert!(
        b.wait_for_log("client id belongs to another user", WAIT),
        "{}",
        b.log()
    );
    let (mut alice, ack) = RawClient::connect(b.addr(), as_user(Some("alice"), "sensor")).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    assert!(ack.session_present);
    assert_eq!(alice.recv_publish().await.message().payload, "for alice");
}

/// The same user reconnecting takes over as [MQTT-3.1.4-2] says.
#[tokio::test]
async fn the_same_user_still_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_users(dir.path());
    let b = start(&["--password-file", file.to_str().unwrap()]);
    let (mut first, _) = RawClient::connect(b.addr(), as_user(Some("bob"), "phone")).await;
    let (_second, ack) = RawClient::connect(b.addr(), as_user(Some("bob"), "phone")).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    first.expect_closed().await;
}

/// mosquitto's use_username_as_clientid: the id sent is ignored, so bob's
/// connection claiming "alice" gets his own session, and a client without
/// a user name is refused with 0x05 as mosquitto refuses it.
#[tokio::test]
async fn use_username_as_clientid_gives_each_user_their_own_session() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_users(dir.path());
    let b = start(&[
        "--password-file",
        file.to_str().unwrap(),
        "--allow-anonymous",
        "--use-username-as-clientid",
    ]);
    let (mut alice, ack) = RawClient::connect(b.addr(), as_user(Some("alice"), "any")).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    alice
        .subscribe(&[("inbox/alice", QoS::AtLeastOnce)], 1)
        .await;
    alice.send(&Packet::Disconnect).await;
    alice.expect_closed().await;

    // Bob sends alice's name as his client id: he gets a fresh session of
    // his own, named bob.
    let (mut bob, ack) = RawClient::connect(b.addr(), as_user(Some("bob"), "alice")).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    assert!(!ack.session_present, "not alice's session");
    publish_acked(&mut bob, "inbox/alice", 1, "hello").await;

    // Alice, under yet another id sent, is back in her session.
    let (mut alice, ack) = RawClient::connect(b.addr(), as_user(Some("alice"), "other")).await;
    assert!(ack.session_present);
    assert_eq!(alice.recv_publish().await.message().payload, "hello");

    let (mut anon, ack) = RawClient::connect(b.addr(), as_user(None, "anon")).await;
    assert_eq!(ack.code, ConnectReturnCode::NotAuthorized);
    assert_eq!(anon.try_recv().await, None);
}
