//! The CONNECT rules with packets and instants as values: no socket, no
//! runtime, no real clock.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use credentials::password::PasswordFile;
use mqtt_codec::topic::TopicName;
use mqtt_codec::{Delivery, Message, PacketId, Publish, QoS, decode_packet};

/// Made by `mosquitto_passwd -c -b pw alice secret` (mosquitto 2.0.11).
const MOSQUITTO_ALICE: &str = "alice:$7$101$bU4GpvqrtTom9o+e$Z7z0sy27bnpqRg8T8VuUMUBkXfQdxTvqXADHhWI8NxftQen5l8Hx3trZaf1IhgDxpmqBheSsq61sI13qdXQD2g==";

fn open_policy(auth: &Authenticator) -> Policy<'_> {
    Policy {
        auth,
        identity_as_username: false,
        certificate_name: None,
        use_username_as_clientid: false,
    }
}

/// [`check`] with no password file, anonymous clients allowed and no
/// client certificate.
fn check_anyone(first: Result<Packet, DecodeError>) -> Result<Accepted, ConnectError> {
    let auth = Authenticator::new(None, true);
    check(first, &open_policy(&auth))
}

fn connect(client_id: &str, clean_session: bool) -> Connect {
    Connect {
        protocol: ProtocolLevel::V3_1_1,
        clean_session,
        keep_alive: 10,
        client_id: client_id.to_owned(),
        ..Connect::default()
    }
}

/// Decodes `bytes` as the first packet, as the listener would.
fn decoded(bytes: &[u8]) -> Result<Packet, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    decode_packet(&mut buf, 1024).map(|p| p.expect("a whole packet"))
}

#[test]
fn a_connect_is_accepted_with_its_fields() {
    let accepted = check_anyone(Ok(Packet::Connect(connect("c1", false)))).expect("accepted");
    assert_eq!(
        accepted,
        Accepted {
            client_id: "c1".into(),
            clean_session: false,
            keep_alive: 10,
            will: None,
            user: None,
            bridge: false,
            username: None,
        }
    );
}

/// mosquitto's bridges connect with level 0x84 (`try_private`, on by
/// default): accepted as MQTT 3.1.1 from a bridge, as mosquitto does,
/// rather than refused with 0x01 (issue 16).
#[test]
fn a_bridge_connect_with_level_0x84_is_accepted_as_a_bridge() {
    let bytes = [
        0x10, 0x0e, // CONNECT, remaining length 14
        0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
        0x84, // level 4 with the bridge bit
        0x00, // flags: none (persistent session)
        0x00, 0x3c, // keep alive 60
        0x00, 0x02, b'b', b'r', // client id "br"
    ];
    let accepted = check_anyone(decoded(&bytes)).expect("a bridge is let in");
    assert!(accepted.bridge);
    assert_eq!(accepted.client_id, "br");
    let plain = check_anyone(Ok(Packet::Connect(connect("c1", false)))).expect("accepted");
    assert!(!plain.bridge);
    let mut v31 = bytes;
    // "MQTT" 0x84 is a bridge; 0x85 is no level anyone speaks.
    v31[8] = 0x85;
    let err = check_anyone(decoded(&v31)).expect_err("refused");
    assert_eq!(
        err.refusal(),
        Some(ConnectReturnCode::UnacceptableProtocolVersion)
    );
}

#[test]
fn first_packet_other_than_connect_closes_without_connack() {
    let err = check_anyone(Ok(Packet::PingReq)).expect_err("refused");
    assert_eq!(
        err,
        ConnectError::NotConnect {
            packet: PacketType::PingReq
        }
    );
    assert_eq!(err.refusal(), None, "no CONNACK [MQTT-3.1.0-1]");
}

#[test]
fn unknown_protocol_level_is_refused_with_0x01() {
    // CONNECT, remaining length 13: "MQTT", level 5, clean session,
    // keep-alive 60, client id "c".
    let level_5 = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 1, b'c',
    ];
    let err = check_anyone(decoded(&level_5)).expect_err("refused");
    assert!(
        matches!(err, ConnectError::UnacceptableProtocol(_)),
        "{err:?}"
    );
    assert_eq!(
        err.refusal(),
        Some(ConnectReturnCode::UnacceptableProtocolVersion)
    );
}

#[test]
fn malformed_first_packet_closes_without_connack() {
    // CONNECT with the reserved flag bit set [MQTT-3.1.2-3].
    let reserved = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 60, 0, 1, b'c',
    ];
    let err = check_anyone(decoded(&reserved)).expect_err("refused");
    assert!(matches!(err, ConnectError::Malformed(_)), "{err:?}");
    assert_eq!(err.refusal(), None);
}

#[test]
fn empty_client_id_needs_clean_session() {
    let err = check_anyone(Ok(Packet::Connect(connect("", false)))).expect_err("refused");
    assert_eq!(err.refusal(), Some(ConnectReturnCode::IdentifierRejected));
    let assigned = check_anyone(Ok(Packet::Connect(connect("", true))))
        .expect("an id is assigned [MQTT-3.1.3-6]");
    assert!(assigned.client_id.starts_with("auto-"));
}

#[test]
fn empty_client_id_is_refused_in_mqtt_3_1() {
    let v31 = Connect {
        protocol: ProtocolLevel::V3_1,
        ..connect("", true)
    };
    let err = check_anyone(Ok(Packet::Connect(v31))).expect_err("refused");
    assert_eq!(
        err,
        ConnectError::ClientId {
            code: ConnectReturnCode::IdentifierRejected,
            protocol: ProtocolLevel::V3_1,
        }
    );
}

#[test]
fn credentials_are_checked_against_the_password_file() {
    let file = PasswordFile::parse(MOSQUITTO_ALICE).expect("parses");
    let auth = Authenticator::new(Some(file), false);
    let with = |user: Option<&str>, password: Option<&'static [u8]>| Connect {
        username: user.map(str::to_owned),
        password: password.map(Bytes::from_static),
        ..connect("c1", true)
    };
    let policy = open_policy(&auth);
    assert!(
        check(
            Ok(Packet::Connect(with(Some("alice"), Some(b"secret")))),
            &policy
        )
        .is_ok()
    );
    let wrong = check(
        Ok(Packet::Connect(with(Some("alice"), Some(b"nope")))),
        &policy,
    )
    .expect_err("refused");
    assert_eq!(
        wrong,
        ConnectError::Credentials {
            code: ConnectReturnCode::BadUserNameOrPassword,
            username: Some("alice".into()),
        }
    );
    let anonymous = check(Ok(Packet::Connect(with(None, None))), &policy).expect_err("refused");
    assert_eq!(anonymous.refusal(), Some(ConnectReturnCode::NotAuthorized));
}

#[test]
fn identity_as_username_takes_the_certificate_name_and_no_password() {
    let file = PasswordFile::parse(MOSQUITTO_ALICE).expect("parses");
    let auth = Authenticator::new(Some(file), false);
    let with_cert = Policy {
        auth: &auth,
        identity_as_username: true,
        certificate_name: Some("device-1"),
        use_username_as_clientid: false,
    };
    let bogus = Connect {
        username: Some("mallory".into()),
        password: Some(Bytes::from_static(b"wrong")),
        ..connect("c1", true)
    };
    let accepted = check(Ok(Packet::Connect(bogus.clone())), &with_cert).expect("accepted");
    assert_eq!(
        accepted.user.as_deref(),
        Some("device-1"),
        "the verified name"
    );
    let without_cert = Policy {
        certificate_name: None,
        ..with_cert
    };
    let err = check(Ok(Packet::Connect(bogus)), &without_cert).expect_err("refused");
    assert_eq!(err.refusal(), Some(ConnectReturnCode::NotAuthorized));
}

fn alice(client_id: &str) -> Connect {
    Connect {
        username: Some("alice".into()),
        password: Some(Bytes::from_static(b"secret")),
        ..connect(client_id, true)
    }
}

#[test]
fn only_a_checked_user_name_names_the_user() {
    // No password file: anyone may send any name, so it names nobody.
    let accepted = check_anyone(Ok(Packet::Connect(alice("c1")))).expect("accepted");
    assert_eq!(accepted.user, None);
    let file = PasswordFile::parse(MOSQUITTO_ALICE).expect("parses");
    let auth = Authenticator::new(Some(file), true);
    let policy = open_policy(&auth);
    let accepted = check(Ok(Packet::Connect(alice("c1"))), &policy).expect("accepted");
    assert_eq!(accepted.user.as_deref(), Some("alice"));
    let anonymous = check(Ok(Packet::Connect(connect("c1", true))), &policy).expect("accepted");
    assert_eq!(anonymous.user, None);
}

/// mosquitto's use_username_as_clientid: the user name replaces the id.
#[test]
fn use_username_as_clientid_replaces_the_client_id() {
    let file = PasswordFile::parse(MOSQUITTO_ALICE).expect("parses");
    let auth = Authenticator::new(Some(file), true);
    let policy = Policy {
        use_username_as_clientid: true,
        ..open_policy(&auth)
    };
    let accepted = check(Ok(Packet::Connect(alice("bob-device"))), &policy).expect("accepted");
    assert_eq!(accepted.client_id, "alice");
    // An empty id is fine too: the user name fills it.
    let accepted = check(Ok(Packet::Connect(alice(""))), &policy).expect("accepted");
    assert_eq!(accepted.client_id, "alice");
}

/// mosquitto 2.0 (handle_connect.c) refuses an MQTT 3.1.1 client without a
/// user name under use_username_as_clientid with 0x05.
#[test]
fn use_username_as_clientid_refuses_a_client_without_a_user_name() {
    let auth = Authenticator::new(None, true);
    let policy = Policy {
        use_username_as_clientid: true,
        ..open_policy(&auth)
    };
    let err = check(Ok(Packet::Connect(connect("c1", true))), &policy).expect_err("refused");
    assert_eq!(
        err,
        ConnectError::NoUserName {
            code: ConnectReturnCode::NotAuthorized
        }
    );
    assert_eq!(err.refusal(), Some(ConnectReturnCode::NotAuthorized));
}

#[test]
fn use_username_as_clientid_takes_the_certificate_name() {
    let auth = Authenticator::new(None, false);
    let policy = Policy {
        auth: &auth,
        identity_as_username: true,
        certificate_name: Some("device-1"),
        use_username_as_clientid: true,
    };
    let sent = Connect {
        username: Some("mallory".into()),
        ..connect("c1", true)
    };
    let accepted = check(Ok(Packet::Connect(sent)), &policy).expect("accepted");
    assert_eq!(accepted.client_id, "device-1");
}

#[test]
fn only_the_same_user_may_take_over_a_session() {
    assert!(may_take_over(Some("alice"), Some("alice")));
    assert!(!may_take_over(Some("alice"), Some("bob")));
    assert!(!may_take_over(Some("alice"), None), "an anonymous client");
    assert!(may_take_over(None, Some("bob")), "an anonymous session");
    assert!(
        may_take_over(None, None),
        "nobody verified: the spec's takeover"
    );
}

#[test]
fn the_will_is_kept_with_its_own_copy_of_the_payload() {
    let read_buffer = Bytes::from_static(b"....gone");
    let with_will = Connect {
        will: Some(Message {
            topic: TopicName::new("w").expect("valid"),
            payload: read_buffer.slice(4..),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        ..connect("c1", true)
    };
    let accepted = check_anyone(Ok(Packet::Connect(with_will))).expect("accepted");
    let will = accepted.will.expect("a will");
    assert_eq!(will.payload, Bytes::from_static(b"gone"));
    assert_ne!(
        will.payload.as_ptr(),
        read_buffer.slice(4..).as_ptr(),
        "copied, not a view into the read buffer"
    );
    assert_eq!((will.qos, will.retain), (QoS::AtLeastOnce, true));
}

#[test]
fn start_writes_connack_then_resumes_the_flows_in_flight() {
    let accepted = check_anyone(Ok(Packet::Connect(connect("c1", false)))).expect("accepted");
    // A parked session with one QoS 1 message sent and not acknowledged.
    let mut session = Session::new("c1", false, 10);
    let message = Message {
        topic: TopicName::new("t").expect("valid"),
        payload: Bytes::from_static(b"m"),
        qos: QoS::AtLeastOnce,
        retain: false,
    };
    let sent = session.deliver(message.clone()).expect("window open");
    let t0 = Instant::now();
    let packets = accepted.start(&mut session, true, t0);
    let id = PacketId::new(1).expect("non-zero");
    assert_eq!(sent.packet_id(), Some(id));
    assert_eq!(
        packets,
        vec![
            Packet::ConnAck(ConnAck {
                session_present: true,
                code: ConnectReturnCode::Accepted,
            }),
            // Resent with DUP [MQTT-3.3.1-1].
            Packet::Publish(
                Publish::new(Delivery::new(message.qos, id), message.clone()).with_dup(true)
            ),
        ]
    );
    // Keep Alive 10 s: silent for 15 s ends it [MQTT-3.1.2-24].
    assert_eq!(
        session.keep_alive_deadline(),
        Some(t0 + Duration::from_secs(15))
    );
    assert!(!session.is_clean());
}

#[test]
fn refusals_never_claim_a_session() {
    assert_eq!(
        refusal(ConnectReturnCode::NotAuthorized),
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::NotAuthorized,
        })
    );
}
