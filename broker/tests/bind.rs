//! Where the broker listens with no configuration (issue 14): on this
//! machine only, as mosquitto 2.0 does, saying so and how to open it.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use testsupport::ReferenceOptions;

const LOCAL_ONLY: &str = "no --bind given: listening on this machine only";

#[tokio::test]
async fn with_no_bind_it_listens_on_localhost_and_says_so() {
    let b = start_with(ReferenceOptions {
        default_bind: true,
        tls: true,
        ..ReferenceOptions::default()
    });
    assert_eq!(b.addr().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(b.tls_addr().unwrap().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    let log = b.log();
    assert!(log.contains(LOCAL_ONLY), "{log}");
    assert!(log.contains("--bind 0.0.0.0"), "how to open it: {log}");
    let (_c, ack) = RawClient::connect(b.addr(), connect_packet("local", true)).await;
    assert_eq!(ack.code, mqtt_codec::ConnectReturnCode::Accepted);
}

#[tokio::test]
async fn bind_opens_it_and_the_notice_goes() {
    let b = start_with(ReferenceOptions {
        default_bind: true,
        extra_args: vec!["--bind".into(), "0.0.0.0".into()],
        ..ReferenceOptions::default()
    });
    assert_eq!(b.addr().ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert!(!b.log().contains(LOCAL_ONLY), "{}", b.log());
    let port = b.addr().port();
    let local = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (_c, ack) = RawClient::connect(local, connect_packet("open", true)).await;
    assert_eq!(ack.code, mqtt_codec::ConnectReturnCode::Accepted);
}

#[tokio::test]
async fn a_config_file_bind_opens_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broker.toml");
    std::fs::write(&file, "bind = \"0.0.0.0\"\n").unwrap();
    let b = start_with(ReferenceOptions {
        default_bind: true,
        extra_args: vec!["--config".into(), file.display().to_string()],
        ..ReferenceOptions::default()
    });
    assert_eq!(b.addr().ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert!(!b.log().contains(LOCAL_ONLY), "{}", b.log());
}
