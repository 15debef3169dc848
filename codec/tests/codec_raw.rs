//! `codec::raw`, the writer of deliberately wrong packets the conformance
//! harness sends: built from a valid packet and left alone it writes that
//! packet byte for byte; bent in one place it writes a packet our decoder
//! refuses with the typed error for exactly that rule.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod codec_common;

use bytes::{Bytes, BytesMut};
use codec_common::*;
use mqtt_codec::raw::{
    BodyWriter, RawConnect, RawPacket, RawPublish, RawSubscribe, RawUnsubscribe, RawWill,
    RemainingLength,
};
use mqtt_codec::topic::TopicError;
use mqtt_codec::{DecodeError, Packet, PacketType, QoS, decode_packet, decode_slice};
use proptest::prelude::*;

fn decode(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
    decode_slice(bytes).map(|r| r.map(|(p, _)| p))
}

fn decode_one(raw: &RawPacket) -> Result<Option<Packet>, DecodeError> {
    decode(&raw.to_bytes())
}

/// The packet types whose fixed-header flags are fixed, with those flags.
fn fixed_flag_type() -> impl Strategy<Value = (u8, u8)> {
    prop::sample::select(vec![
        (1u8, 0u8),
        (2, 0),
        (4, 0),
        (5, 0),
        (6, 2),
        (7, 0),
        (8, 2),
        (9, 0),
        (10, 2),
        (11, 0),
        (12, 0),
        (13, 0),
        (14, 0),
    ])
}

fn non_publish_packet() -> impl Strategy<Value = Packet> {
    packet().prop_filter("not PUBLISH", |p| p.packet_type() != PacketType::Publish)
}

/// Bytes that are not UTF-8: a lone continuation byte, a truncated
/// sequence, an encoded surrogate, an over-long form.
fn ill_formed_utf8() -> impl Strategy<Value = Vec<u8>> {
    (
        mqtt_string(4).prop_filter("no NUL", |s| !s.contains('\0')),
        prop::sample::select(vec![
            vec![0x80u8],
            vec![0xc3],
            vec![0xed, 0xa0, 0x80],
            vec![0xc0, 0xaf],
            vec![0xff],
            vec![0xf4, 0x90, 0x80, 0x80],
        ]),
    )
        .prop_map(|(s, bad)| {
            let mut v = s.into_bytes();
            v.extend_from_slice(&bad);
            v
        })
}

proptest! {
    #![proptest_config(config())]

    /// Unbent, a raw packet is the packet.
    #[test]
    fn raw_from_a_valid_packet_writes_it_exactly(p in packet()) {
        let bytes = p.to_bytes().unwrap();
        let raw = RawPacket::from_packet(&p).unwrap();
        prop_assert_eq!(raw.to_bytes(), bytes.clone());
        prop_assert_eq!(decode_one(&raw), Ok(Some(p.clone())));
        // Correct, Value(true length) and Encoded(minimal bytes) agree.
        let same = raw
            .clone()
            .with_remaining_length(RemainingLength::Value(raw.body.len()));
        prop_assert_eq!(same.to_bytes(), bytes.clone());
        // verbatim: first byte and everything after it, as given.
        let verbatim = RawPacket::verbatim(bytes[0], bytes.slice(1..));
        prop_assert_eq!(verbatim.to_bytes(), bytes.clone());
        // Appended to a buffer that already holds bytes, it adds exactly its own.
        let mut dst = BytesMut::from(&bytes[..]);
        raw.encode(&mut dst);
        prop_assert_eq!(&dst[..bytes.len()], &bytes[..]);
        prop_assert_eq!(&dst[bytes.len()..], &bytes[..]);
    }

    #[test]
    fn raw_builders_from_valid_packets_write_them_exactly(
        c in connect(),
        p in publish(),
        s in subscribe(),
        u in unsubscribe(),
    ) {
        let raw = RawConnect::from_connect(&c);
        let expected = Packet::Connect(c).to_bytes().unwrap();
        prop_assert_eq!(raw.to_packet().to_bytes(), expected.clone());
        // The flags the fields imply are the flags the typed encoder writes.
        let implied = RawConnect { flags: None, ..raw };
        prop_assert_eq!(implied.to_packet().to_bytes(), expected);

        let raw = RawPublish::from_publish(&p);
        prop_assert_eq!(raw.to_packet().to_bytes(), Packet::Publish(p).to_bytes().unwrap());
        let raw = RawSubscribe::from_subscribe(&s);
        prop_assert_eq!(raw.to_packet().to_bytes(), Packet::Subscribe(s).to_bytes().unwrap());
        let raw = RawUnsubscribe::from_unsubscribe(&u);
        prop_assert_eq!(
            raw.to_packet().to_bytes(),
            Packet::Unsubscribe(u).to_bytes().unwrap()
        );
    }

    #[test]
    fn wrong_fixed_header_flags_are_refused_naming_the_statement(
        (nibble, expected) in fixed_flag_type(),
        flags in 0u8..16,
        body in bytes(8),
    ) {
        prop_assume!(flags != expected);
        let packet = PacketType::from_nibble(nibble).unwrap();
        let raw = RawPacket::new(0, body).with_type_nibble(nibble).with_flags(flags);
        prop_assert_eq!(
            decode_one(&raw),
            Err(DecodeError::InvalidFlags {
                packet,
                flags,
                expected,
                statement: packet.flags_statement(),
            })
        );
    }

    #[test]
    fn valid_packets_with_bent_flags_are_refused(p in non_publish_packet(), flags in 0u8..16) {
        let expected = p.flags();
        prop_assume!(flags != expected);
        let raw = RawPacket::from_packet(&p).unwrap().with_flags(flags);
        let err = decode_one(&raw).unwrap_err();
        prop_assert!(matches!(err, DecodeError::InvalidFlags { .. }), "{}", err);
        prop_assert!(err.statement().is_some());
    }

    #[test]
    fn publish_qos_3_is_refused(p in publish(), dup in any::<bool>(), retain in any::<bool>()) {
        let mut raw = RawPublish::from_publish(&p);
        raw.flags = (u8::from(dup) << 3) | 0b0110 | u8::from(retain);
        prop_assert_eq!(decode_one(&raw.to_packet()), Err(DecodeError::PublishQoS3));
    }

    #[test]
    fn publish_dup_at_qos_0_is_refused(p in publish(), retain in any::<bool>()) {
        let mut raw = RawPublish::from_publish(&p);
        raw.flags = 0b1000 | u8::from(retain);
        raw.packet_id = None;
        prop_assert_eq!(decode_one(&raw.to_packet()), Err(DecodeError::PublishDupAtQoS0));
    }

    #[test]
    fn reserved_packet_types_are_refused(
        nibble in prop::sample::select(vec![0u8, 15]),
        flags in 0u8..16,
        body in bytes(8),
    ) {
        let raw = RawPacket::new(0, body).with_type_nibble(nibble).with_flags(flags);
        prop_assert_eq!(decode_one(&raw), Err(DecodeError::ReservedPacketType { nibble }));
    }

    /// Padding a Remaining Length with continuation bytes (up to the four
    /// bytes allowed) is refused as non-minimal; a fifth byte as too long.
    #[test]
    fn padded_remaining_lengths_are_refused(p in packet_with(100), pad in 1usize..4) {
        let raw = RawPacket::from_packet(&p).unwrap();
        let len = raw.body.len();
        let mut encoded = BytesMut::new();
        mqtt_codec::write_remaining_length(&mut encoded, len);
        let mut encoded = encoded.to_vec();
        if let Some(last) = encoded.last_mut() {
            *last |= 0x80;
        }
        encoded.extend(std::iter::repeat_n(0x80, pad - 1));
        encoded.push(0x00);
        let bytes = encoded.len();
        let bent = raw.clone().with_remaining_length(RemainingLength::Encoded(encoded));
        if bytes <= 4 {
            prop_assert_eq!(
                decode_one(&bent),
                Err(DecodeError::RemainingLengthNotMinimal { value: len, bytes })
            );
        } else {
            prop_assert_eq!(decode_one(&bent), Err(DecodeError::RemainingLengthTooLong));
        }
        let five = raw.with_remaining_length(RemainingLength::Encoded(vec![0x80, 0x80, 0x80, 0x80, 0x01]));
        prop_assert_eq!(decode_one(&five), Err(DecodeError::RemainingLengthTooLong));
    }

    /// A length announcing more than the body: the decoder waits for the rest
    /// and consumes nothing (for fixed-size types it refuses at once).
    #[test]
    fn a_length_longer_than_the_body_waits_for_more(p in packet_with(100), extra in 1usize..1000) {
        let raw = RawPacket::from_packet(&p).unwrap();
        let announced = raw.body.len() + extra;
        let bent = raw.with_remaining_length(RemainingLength::Value(announced));
        let bytes = bent.to_bytes();
        let mut buf = BytesMut::from(&bytes[..]);
        let result = decode_packet(&mut buf, usize::MAX);
        match p.packet_type().fixed_remaining_length() {
            Some(expected) => prop_assert_eq!(
                result,
                Err(DecodeError::UnexpectedRemainingLength {
                    packet: p.packet_type(),
                    length: announced,
                    expected,
                })
            ),
            None => {
                prop_assert_eq!(result, Ok(None));
                prop_assert_eq!(&buf[..], &bytes[..]);
            }
        }
    }

    /// Announcing more than the limit is refused from the header alone.
    #[test]
    fn announcing_more_than_the_limit_is_refused(p in packet_with(100), max in 0usize..64) {
        let raw = RawPacket::from_packet(&p).unwrap();
        let bent = raw.with_remaining_length(RemainingLength::Value(200_000_000));
        let bytes = bent.to_bytes();
        let mut buf = BytesMut::from(&bytes[..]);
        let result = decode_packet(&mut buf, max);
        match p.packet_type().fixed_remaining_length() {
            Some(_) => prop_assert!(
                matches!(result, Err(DecodeError::UnexpectedRemainingLength { .. })),
                "{:?}",
                result
            ),
            None => prop_assert_eq!(result, Err(DecodeError::PacketTooLarge { size: 200_000_005, max })),
        }
    }

    #[test]
    fn publish_topic_with_a_wildcard_is_refused(
        p in publish(),
        at in any::<prop::sample::Index>(),
        wildcard in prop::sample::select(vec!['+', '#']),
    ) {
        let mut topic: Vec<char> = p.topic().as_str().chars().collect();
        let i = at.index(topic.len() + 1);
        topic.insert(i, wildcard);
        let topic: String = topic.into_iter().collect();
        let mut raw = RawPublish::from_publish(&p);
        raw.topic = topic.clone().into_bytes();
        let err = decode_one(&raw.to_packet()).unwrap_err();
        let DecodeError::InvalidTopicName { packet, topic: got, source } = &err else {
            return Err(TestCaseError::fail(format!("unexpected {err:?}")));
        };
        prop_assert_eq!(*packet, PacketType::Publish);
        prop_assert_eq!(got, &topic);
        prop_assert!(
            matches!(source, TopicError::WildcardInName { wildcard: w, .. } if *w == wildcard),
            "{:?}",
            source
        );
        prop_assert_eq!(err.statement(), Some("MQTT-3.3.2-2"));
    }

    #[test]
    fn publish_topic_that_is_not_utf8_is_refused(p in publish(), topic in ill_formed_utf8()) {
        let mut raw = RawPublish::from_publish(&p);
        raw.topic = topic;
        prop_assert_eq!(
            decode_one(&raw.to_packet()),
            Err(DecodeError::InvalidUtf8 { packet: PacketType::Publish, field: "topic name" })
        );
    }

    #[test]
    fn publish_topic_with_nul_is_refused(p in publish(), at in any::<prop::sample::Index>()) {
        let mut topic: Vec<char> = p.topic().as_str().chars().collect();
        let i = at.index(topic.len() + 1);
        topic.insert(i, '\0');
        let mut raw = RawPublish::from_publish(&p);
        raw.topic = topic.into_iter().collect::<String>().into_bytes();
        prop_assert_eq!(
            decode_one(&raw.to_packet()),
            Err(DecodeError::NullCharacter { packet: PacketType::Publish, field: "topic name" })
        );
    }

    #[test]
    fn publish_with_packet_id_0_is_refused(p in publish()) {
        prop_assume!(p.qos() != QoS::AtMostOnce);
        let mut raw = RawPublish::from_publish(&p);
        raw.packet_id = Some(0);
        prop_assert_eq!(
            decode_one(&raw.to_packet()),
            Err(DecodeError::PacketIdZero { packet: PacketType::Publish })
        );
    }

    #[test]
    fn acknowledgements_with_packet_id_0_are_refused(
        first in prop::sample::select(vec![0x40u8, 0x50, 0x62, 0x70, 0xb0]),
    ) {
        let packet = PacketType::from_nibble(first >> 4).unwrap();
        let raw = RawPacket::new(first, BodyWriter::new().u16(0).finish());
        prop_assert_eq!(decode_one(&raw), Err(DecodeError::PacketIdZero { packet }));
    }

    #[test]
    fn subscribe_with_a_bad_requested_qos_is_refused(
        s in subscribe(),
        at in any::<prop::sample::Index>(),
        byte in 3u8..=255,
    ) {
        let mut raw = RawSubscribe::from_subscribe(&s);
        let i = at.index(raw.filters.len());
        raw.filters[i].1 = byte;
        prop_assert_eq!(
            decode_one(&raw.to_packet()),
            Err(DecodeError::InvalidRequestedQoS { byte })
        );
    }

    #[test]
    fn subscribe_and_unsubscribe_with_no_filters_are_refused(
        s in subscribe(),
        u in unsubscribe(),
    ) {
        let raw = RawSubscribe { filters: vec![], ..RawSubscribe::from_subscribe(&s) };
        prop_assert_eq!(decode_one(&raw.to_packet()), Err(DecodeError::EmptySubscribe));
        let raw = RawUnsubscribe { filters: vec![], ..RawUnsubscribe::from_unsubscribe(&u) };
        prop_assert_eq!(decode_one(&raw.to_packet()), Err(DecodeError::EmptyUnsubscribe));
        let raw = RawSubscribe { packet_id: 0, ..RawSubscribe::from_subscribe(&s) };
        prop_assert_eq!(
            decode_one(&raw.to_packet()),
            Err(DecodeError::PacketIdZero { packet: PacketType::Subscribe })
        );
        let raw = RawUnsubscribe { packet_id: 0, ..RawUnsubscribe::from_unsubscribe(&u) };
        prop_assert_eq!(
            decode_one(&raw.to_packet()),
            Err(DecodeError::PacketIdZero { packet: PacketType::Unsubscribe })
        );
    }

    #[test]
    fn misplaced_wildcards_in_filters_are_refused(
        s in subscribe(),
        u in unsubscribe(),
        bad in prop::sample::select(vec!["a#", "#/a", "a+", "+a/b", "a/b#/c", "##", ""]),
    ) {
        let mut raw = RawSubscribe::from_subscribe(&s);
        raw.filters.push((bad.as_bytes().to_vec(), 0));
        let err = decode_one(&raw.to_packet()).unwrap_err();
        prop_assert!(
            matches!(&err, DecodeError::InvalidTopicFilter { packet: PacketType::Subscribe, filter, .. } if filter == bad),
            "{:?}", err
        );
        let mut raw = RawUnsubscribe::from_unsubscribe(&u);
        raw.filters.insert(0, bad.as_bytes().to_vec());
        let err = decode_one(&raw.to_packet()).unwrap_err();
        prop_assert!(
            matches!(&err, DecodeError::InvalidTopicFilter { packet: PacketType::Unsubscribe, filter, .. } if filter == bad),
            "{:?}", err
        );
    }

    #[test]
    fn connect_with_another_protocol_is_unacceptable(
        c in connect(),
        name in prop::sample::select(vec![&b"MQTT"[..], b"MQIsdp", b"MQTTT", b"mqtt", b"", b"\xff\xfe"]),
        level in any::<u8>(),
    ) {
        prop_assume!(!matches!((name, level), (b"MQTT", 4 | 0x84) | (b"MQIsdp", 3 | 0x83)));
        let mut raw = RawConnect::from_connect(&c);
        raw.protocol_name = name.to_vec();
        raw.protocol_level = level;
        let err = decode_one(&raw.to_packet()).unwrap_err();
        prop_assert_eq!(
            &err,
            &DecodeError::UnacceptableProtocol {
                name: String::from_utf8_lossy(name).into_owned(),
                level
            }
        );
        prop_assert!(err.is_unacceptable_protocol());
        let statement = if name == b"MQTT" || name == b"MQIsdp" { "MQTT-3.1.2-2" } else { "MQTT-3.1.2-1" };
        prop_assert_eq!(err.statement(), Some(statement));
    }

    #[test]
    fn connect_reserved_flag_is_refused(c in connect()) {
        let mut raw = RawConnect::from_connect(&c);
        raw.flags = raw.flags.map(|f| f | 0x01);
        prop_assert_eq!(decode_one(&raw.to_packet()), Err(DecodeError::ConnectReservedFlag));
    }

    #[test]
    fn connect_will_flags_without_a_will_are_refused(
        c in connect(),
        qos_bits in 0u8..4,
        retain in any::<bool>(),
    ) {
        prop_assume!(qos_bits != 0 || retain);
        let mut raw = RawConnect::from_connect(&c);
        raw.will = None;
        let flags = (raw.implied_flags() & !0b0011_1100) | (qos_bits << 3) | (u8::from(retain) << 5);
        raw.flags = Some(flags);
        let expected = if qos_bits != 0 {
            DecodeError::WillQoSWithoutWill { qos: qos_bits }
        } else {
            DecodeError::WillRetainWithoutWill
        };
        prop_assert_eq!(decode_one(&raw.to_packet()), Err(expected));
    }

    #[test]
    fn connect_will_qos_3_is_refused(c in connect(), retain in any::<bool>()) {
        let mut raw = RawConnect::from_connect(&c);
        raw.flags = None;
        raw.will = Some(RawWill { topic: b"w".to_vec(), message: vec![], qos: 3, retain });
        prop_assert_eq!(decode_one(&raw.to_packet()), Err(DecodeError::WillQoS3));
    }

    #[test]
    fn connect_password_without_user_name_is_refused(c in connect(), password in bytes(8)) {
        let mut raw = RawConnect::from_connect(&c);
        raw.flags = None;
        raw.username = None;
        raw.password = Some(password.to_vec());
        prop_assert_eq!(decode_one(&raw.to_packet()), Err(DecodeError::PasswordWithoutUsername));
    }

    #[test]
    fn connect_fields_whose_flag_is_clear_are_refused(c in connect(), extra in mqtt_string(8)) {
        // A user name written with its flag clear is trailing bytes [MQTT-3.1.2-18].
        let mut raw = RawConnect::from_connect(&c);
        raw.username = None;
        raw.password = None;
        raw.flags = Some(RawConnect { username: None, password: None, ..raw.clone() }.implied_flags());
        let mut bytes = raw.to_packet().body.to_vec();
        bytes.extend_from_slice(&BodyWriter::new().string(extra.as_bytes()).finish());
        let err = decode_one(&RawPacket::new(0x10, bytes)).unwrap_err();
        prop_assert!(
            matches!(err, DecodeError::TrailingBytes { packet: PacketType::Connect, .. }),
            "{}",
            err
        );
        prop_assert_eq!(err.statement(), Some("MQTT-3.1.2-18"));
    }

    #[test]
    fn connect_missing_announced_fields_is_truncated(c in connect()) {
        // Each field its flag announces, left out, is named in the error.
        let mut raw = RawConnect::from_connect(&c);
        let (field, statement) = if raw.password.is_some() {
            raw.password = None;
            ("password", "MQTT-3.1.2-21")
        } else if raw.username.is_some() {
            raw.username = None;
            ("user name", "MQTT-3.1.2-19")
        } else if raw.will.is_some() {
            raw.will = None;
            ("will topic", "MQTT-3.1.2-9")
        } else {
            raw.client_id = None;
            ("client identifier", "MQTT-3.1.3-3")
        };
        let err = decode_one(&raw.to_packet()).unwrap_err();
        prop_assert_eq!(&err, &DecodeError::Truncated { packet: PacketType::Connect, field });
        prop_assert_eq!(err.statement(), Some(statement));
    }

    #[test]
    fn connect_strings_that_are_not_utf8_are_refused(
        c in connect(),
        bad in ill_formed_utf8(),
        which in 0usize..3,
    ) {
        let mut raw = RawConnect::from_connect(&c);
        raw.flags = None;
        let field = match which {
            0 => {
                raw.client_id = Some(bad);
                "client identifier"
            }
            1 => {
                raw.will = Some(RawWill { topic: bad, message: vec![], qos: 0, retain: false });
                "will topic"
            }
            _ => {
                raw.username = Some(bad);
                "user name"
            }
        };
        prop_assert_eq!(
            decode_one(&raw.to_packet()),
            Err(DecodeError::InvalidUtf8 { packet: PacketType::Connect, field })
        );
    }

    #[test]
    fn connack_and_suback_reserved_values_are_refused(
        flags in 2u8..=255,
        code in 6u8..=255,
        sub_code in (3u8..=255).prop_filter("0x80 is failure", |c| *c != 0x80),
    ) {
        let raw = RawPacket::new(0x20, Bytes::from(vec![flags, 0]));
        prop_assert_eq!(decode_one(&raw), Err(DecodeError::ConnAckReservedFlags { flags }));
        let raw = RawPacket::new(0x20, Bytes::from(vec![0, code]));
        prop_assert_eq!(decode_one(&raw), Err(DecodeError::InvalidConnectReturnCode { code }));
        let raw = RawPacket::new(0x90, Bytes::from(vec![0, 1, 0, sub_code]));
        prop_assert_eq!(decode_one(&raw), Err(DecodeError::InvalidSubAckReturnCode { code: sub_code }));
    }
}

#[test]
fn verbatim_writes_any_bytes_including_a_lone_first_byte() {
    assert_eq!(
        &RawPacket::verbatim(0x30, Bytes::new()).to_bytes()[..],
        &[0x30]
    );
    assert_eq!(
        &RawPacket::verbatim(0xff, &b"\x00\x01"[..]).to_bytes()[..],
        &[0xff, 0x00, 0x01]
    );
    // A lone first byte is half a fixed header: the decoder waits.
    assert_eq!(decode(&[0x30]), Ok(None));
}

#[test]
fn body_writer_writes_a_lying_length_for_an_oversized_field() {
    let long = vec![b'a'; 65_537];
    let body = BodyWriter::new().string(&long).finish();
    assert_eq!(&body[..2], &[0x00, 0x01], "65537 truncated to 16 bits");
    assert_eq!(body.len(), 2 + 65_537);
}
