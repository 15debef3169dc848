//! proptest strategies for the codec tests: valid topics, filters and packets
//! of all fourteen types, shared by the `codec_*` test files.
//!
//! Topics and filters lean on the awkward cases: empty levels, `$` prefixes,
//! multi-byte characters, U+FEFF, control characters, and any other `char`.

#![allow(dead_code)] // each test file uses its own subset

use bytes::Bytes;
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, Message, Packet, PacketId, ProtocolLevel, Publish, QoS,
    SubAck, SubAckReturnCode, Subscribe, SubscribeFilter, Unsubscribe,
};
use proptest::prelude::*;

/// Cases for every property test, set in code so an environment variable
/// cannot lower it.
pub const CASES: u32 = 1_000;

pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Shrinking a failing stream can take long; cap it so CI still ends.
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// A character of a topic level: mostly from a list of interesting ones,
/// sometimes any `char` that may appear in a level.
pub fn level_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::sample::select(vec![
            'a', 'b', 'z', 'A', 'Z', '0', '9', ' ', '-', '_', '.', '$', 'é', 'ß', '日', '本',
            '\u{FEFF}', '😀', '\u{1}', '\u{7f}', '\u{9f}', '\u{FFFF}', '\u{10FFFF}',
        ]),
        1 => any::<char>().prop_filter("not NUL, a wildcard or the separator", |c| {
            !matches!(c, '\0' | '+' | '#' | '/')
        }),
    ]
}

/// One topic level, possibly empty.
pub fn level() -> impl Strategy<Value = String> {
    prop::collection::vec(level_char(), 0..6).prop_map(|cs| cs.into_iter().collect())
}

/// A valid topic name: 1 to 6 levels (empty ones included), sometimes
/// starting with `$`.
pub fn topic_name() -> impl Strategy<Value = TopicName> {
    (any::<bool>(), prop::collection::vec(level(), 1..6)).prop_map(|(dollar, levels)| {
        let mut s = levels.join("/");
        if dollar {
            s.insert(0, '$');
        }
        if s.is_empty() {
            // A single empty level is the empty string, which no topic may be.
            s.push('/');
        }
        TopicName::new(&s).unwrap_or_else(|e| panic!("generated topic {s:?}: {e}"))
    })
}

/// A valid topic filter: levels that are text (possibly empty) or `+`,
/// optionally ending in `#`, sometimes starting with `$`.
pub fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    (
        any::<bool>(),
        prop::collection::vec(prop::option::weighted(0.75, level()), 0..6),
        any::<bool>(),
    )
        .prop_map(|(dollar, levels, multi)| {
            let mut parts: Vec<String> = levels
                .into_iter()
                .map(|l| l.unwrap_or_else(|| "+".to_owned()))
                .collect();
            if dollar && parts.first().is_some_and(|p| p != "+") {
                parts[0].insert(0, '$');
            }
            if multi || parts.is_empty() {
                parts.push("#".to_owned());
            }
            let mut s = parts.join("/");
            if s.is_empty() {
                s.push('/');
            }
            TopicFilter::new(&s).unwrap_or_else(|e| panic!("generated filter {s:?}: {e}"))
        })
}

pub fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

pub fn packet_id() -> impl Strategy<Value = PacketId> {
    prop_oneof![Just(1u16), Just(u16::MAX), 1u16..=u16::MAX]
        .prop_map(|v| PacketId::new(v).unwrap_or_else(|| panic!("{v} is non-zero")))
}

/// Any string an MQTT UTF-8 field may hold: no U+0000, up to `max` chars.
pub fn mqtt_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => level_char(),
            1 => Just('/'),
            1 => Just('+'),
            1 => Just('#'),
        ],
        0..max,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

pub fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

pub fn protocol() -> impl Strategy<Value = ProtocolLevel> {
    prop_oneof![
        Just(ProtocolLevel::V3_1),
        Just(ProtocolLevel::V3_1_1),
        Just(ProtocolLevel::V3_1Bridge),
        Just(ProtocolLevel::V3_1_1Bridge),
    ]
}

pub fn last_will() -> impl Strategy<Value = Message> {
    (topic_name(), bytes(64), qos(), any::<bool>()).prop_map(|(topic, payload, qos, retain)| {
        Message {
            topic,
            payload,
            qos,
            retain,
        }
    })
}

/// A valid CONNECT: both protocol levels, every will / user name / password
/// combination the rules allow (a password only with a user name).
pub fn connect() -> impl Strategy<Value = Connect> {
    (
        protocol(),
        any::<bool>(),
        any::<u16>(),
        mqtt_string(30),
        prop::option::of(last_will()),
        prop::option::of((mqtt_string(20), prop::option::of(bytes(32)))),
    )
        .prop_map(
            |(protocol, clean_session, keep_alive, client_id, will, credentials)| {
                let (username, password) = match credentials {
                    Some((u, p)) => (Some(u), p),
                    None => (None, None),
                };
                Connect {
                    protocol,
                    clean_session,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                }
            },
        )
}

pub fn connect_return_code() -> impl Strategy<Value = ConnectReturnCode> {
    (0u8..=5).prop_map(|c| ConnectReturnCode::from_u8(c).unwrap_or_else(|| panic!("code {c}")))
}

pub fn connack() -> impl Strategy<Value = ConnAck> {
    (any::<bool>(), connect_return_code()).prop_map(|(session_present, code)| ConnAck {
        session_present,
        code,
    })
}

/// A valid PUBLISH with a payload of up to `max_payload` bytes: a packet id
/// exactly when QoS > 0, DUP only then.
pub fn publish_with(max_payload: usize) -> impl Strategy<Value = Publish> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        packet_id(),
        bytes(max_payload),
    )
        .prop_map(|(dup, qos, retain, topic, id, payload)| {
            Publish::at_qos(topic, qos, id, payload)
                .with_retain(retain)
                .with_dup(dup && qos != QoS::AtMostOnce)
        })
}

pub fn publish() -> impl Strategy<Value = Publish> {
    publish_with(300)
}

pub fn subscribe() -> impl Strategy<Value = Subscribe> {
    (
        packet_id(),
        prop::collection::vec(
            (topic_filter(), qos()).prop_map(|(filter, qos)| SubscribeFilter { filter, qos }),
            1..6,
        ),
    )
        .prop_map(|(packet_id, filters)| Subscribe { packet_id, filters })
}

pub fn suback_code() -> impl Strategy<Value = SubAckReturnCode> {
    prop_oneof![
        qos().prop_map(SubAckReturnCode::Granted),
        Just(SubAckReturnCode::Failure)
    ]
}

pub fn suback() -> impl Strategy<Value = SubAck> {
    (packet_id(), prop::collection::vec(suback_code(), 1..8)).prop_map(
        |(packet_id, return_codes)| SubAck {
            packet_id,
            return_codes,
        },
    )
}

pub fn unsubscribe() -> impl Strategy<Value = Unsubscribe> {
    (packet_id(), prop::collection::vec(topic_filter(), 1..6))
        .prop_map(|(packet_id, filters)| Unsubscribe { packet_id, filters })
}

/// Any valid packet, every type equally likely.
pub fn packet() -> impl Strategy<Value = Packet> {
    packet_with(300)
}

/// Any valid packet, PUBLISH payloads capped at `max_payload` bytes.
pub fn packet_with(max_payload: usize) -> impl Strategy<Value = Packet> {
    prop_oneof![
        connect().prop_map(Packet::Connect),
        connack().prop_map(Packet::ConnAck),
        publish_with(max_payload).prop_map(Packet::Publish),
        packet_id().prop_map(Packet::PubAck),
        packet_id().prop_map(Packet::PubRec),
        packet_id().prop_map(Packet::PubRel),
        packet_id().prop_map(Packet::PubComp),
        subscribe().prop_map(Packet::Subscribe),
        suback().prop_map(Packet::SubAck),
        unsubscribe().prop_map(Packet::Unsubscribe),
        packet_id().prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect),
    ]
}

/// Encodes packets back to back.
pub fn encode_all(packets: &[Packet]) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    for p in packets {
        p.encode(&mut out)
            .unwrap_or_else(|e| panic!("valid packet {p:?} failed to encode: {e}"));
    }
    out.to_vec()
}
