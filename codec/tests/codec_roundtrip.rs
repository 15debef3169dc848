//! Encode → decode round trips for generated packets of every one of the
//! fourteen types, and the encoder's refusals: a typed packet either encodes
//! to bytes that decode back to exactly it, or the encoder says why not.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod codec_common;

use bytes::{Bytes, BytesMut};
use codec_common::*;
use mqtt_codec::raw::RawPacket;
use mqtt_codec::topic::TopicName;
use mqtt_codec::{
    Connect, DecodeError, Delivery, EncodeError, MAX_REMAINING_LENGTH, Message, Packet, PacketId,
    PacketType, ProtocolLevel, Publish, QoS, SubAck, Subscribe, Unsubscribe, decode_packet,
    decode_slice,
};
use proptest::prelude::*;

/// Every way of getting `packet` through the codec gives `packet` back.
fn check_round_trip(packet: &Packet) -> Result<(), TestCaseError> {
    let bytes = packet
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("valid packet {packet:?} did not encode: {e}")))?;
    prop_assert_eq!(packet.encoded_len(), Ok(bytes.len()));
    prop_assert_eq!(
        bytes[0],
        ((packet.packet_type() as u8) << 4) | packet.flags()
    );

    // From a slice.
    prop_assert_eq!(
        decode_slice(&bytes),
        Ok(Some((packet.clone(), bytes.len())))
    );

    // From a buffer whose limit is exactly the packet's size; one byte less
    // refuses it from the fixed header alone.
    let mut buf = BytesMut::from(&bytes[..]);
    prop_assert_eq!(
        decode_packet(&mut buf, bytes.len()),
        Ok(Some(packet.clone()))
    );
    prop_assert!(buf.is_empty());
    let mut buf = BytesMut::from(&bytes[..]);
    prop_assert_eq!(
        decode_packet(&mut buf, bytes.len() - 1),
        Err(DecodeError::PacketTooLarge {
            size: bytes.len(),
            max: bytes.len() - 1
        })
    );

    // Encoded into a buffer that already holds a packet, then decoded from it.
    let mut buf = BytesMut::from(&bytes[..]);
    packet.encode(&mut buf).unwrap();
    prop_assert_eq!(&buf[bytes.len()..], &bytes[..]);
    prop_assert_eq!(
        decode_packet(&mut buf, usize::MAX).unwrap(),
        Some(packet.clone())
    );
    prop_assert_eq!(
        decode_packet(&mut buf, usize::MAX).unwrap(),
        Some(packet.clone())
    );
    prop_assert!(buf.is_empty());

    // A raw packet made from it writes the same bytes.
    prop_assert_eq!(RawPacket::from_packet(packet).unwrap().to_bytes(), bytes);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connect_round_trips(c in connect()) {
        check_round_trip(&Packet::Connect(c))?;
    }

    #[test]
    fn connack_round_trips(c in connack()) {
        check_round_trip(&Packet::ConnAck(c))?;
    }

    #[test]
    fn publish_round_trips(p in publish()) {
        check_round_trip(&Packet::Publish(p))?;
    }

    #[test]
    fn puback_round_trips(id in packet_id()) {
        check_round_trip(&Packet::PubAck(id))?;
    }

    #[test]
    fn pubrec_round_trips(id in packet_id()) {
        check_round_trip(&Packet::PubRec(id))?;
    }

    #[test]
    fn pubrel_round_trips(id in packet_id()) {
        check_round_trip(&Packet::PubRel(id))?;
    }

    #[test]
    fn pubcomp_round_trips(id in packet_id()) {
        check_round_trip(&Packet::PubComp(id))?;
    }

    #[test]
    fn subscribe_round_trips(s in subscribe()) {
        check_round_trip(&Packet::Subscribe(s))?;
    }

    #[test]
    fn suback_round_trips(s in suback()) {
        check_round_trip(&Packet::SubAck(s))?;
    }

    #[test]
    fn unsubscribe_round_trips(u in unsubscribe()) {
        check_round_trip(&Packet::Unsubscribe(u))?;
    }

    #[test]
    fn unsuback_round_trips(id in packet_id()) {
        check_round_trip(&Packet::UnsubAck(id))?;
    }

    // The three empty packets have one value each, but every case still goes
    // through the same checks, so a regression in their path cannot hide.
    #[test]
    fn pingreq_round_trips(p in Just(Packet::PingReq)) {
        check_round_trip(&p)?;
    }

    #[test]
    fn pingresp_round_trips(p in Just(Packet::PingResp)) {
        check_round_trip(&p)?;
    }

    #[test]
    fn disconnect_round_trips(p in Just(Packet::Disconnect)) {
        check_round_trip(&p)?;
    }

    /// A PUBLISH built with any DUP flag either round-trips or is refused for
    /// the rule it breaks; the encoder never writes what the decoder refuses.
    /// (A packet id at the wrong QoS cannot be built: `Delivery` holds one
    /// exactly when the QoS needs it.)
    #[test]
    fn any_typed_publish_round_trips_or_is_refused(
        p in publish(),
        dup in any::<bool>(),
    ) {
        let p = p.with_dup(dup);
        let expected = match p.delivery() {
            Delivery::AtMostOnce if p.dup => Some(EncodeError::DupAtQoS0),
            _ => None,
        };
        let packet = Packet::Publish(p);
        match expected {
            Some(err) => {
                prop_assert_eq!(packet.to_bytes(), Err(err.clone()));
                let mut dst = BytesMut::from(&b"kept"[..]);
                prop_assert_eq!(packet.encode(&mut dst), Err(err));
                prop_assert_eq!(&dst[..], b"kept", "nothing written on error");
            }
            None => check_round_trip(&packet)?,
        }
    }

    /// A CONNECT with any credentials and any client id (U+0000 included)
    /// either round-trips or is refused for the rule it breaks.
    #[test]
    fn any_typed_connect_round_trips_or_is_refused(
        c in connect(),
        client_id in prop_oneof![mqtt_string(10), mqtt_string(10).prop_map(|s| s + "\0")],
        username in prop::option::of(prop_oneof![mqtt_string(10), Just("a\0b".to_owned())]),
        password in prop::option::of(bytes(8)),
    ) {
        let c = Connect { client_id, username, password, ..c };
        let expected = if c.password.is_some() && c.username.is_none() {
            Some(EncodeError::PasswordWithoutUsername)
        } else if c.client_id.contains('\0') {
            Some(EncodeError::NullCharacter { field: "client identifier" })
        } else if c.username.as_deref().is_some_and(|u| u.contains('\0')) {
            Some(EncodeError::NullCharacter { field: "user name" })
        } else {
            None
        };
        let packet = Packet::Connect(c);
        match expected {
            Some(err) => prop_assert_eq!(packet.to_bytes(), Err(err)),
            None => check_round_trip(&packet)?,
        }
    }
}

#[test]
fn mqisdp_level_3_connect_round_trips_with_its_own_name() {
    let packet = Packet::Connect(Connect {
        protocol: ProtocolLevel::V3_1,
        client_id: "legacy".into(),
        ..Connect::default()
    });
    let bytes = packet.to_bytes().unwrap();
    assert_eq!(&bytes[2..11], b"\x00\x06MQIsdp\x03");
    assert_eq!(decode_slice(&bytes), Ok(Some((packet, bytes.len()))));
}

/// mosquitto's bridges (`try_private`) set the level's high bit: 0x84 for
/// MQTT 3.1.1, 0x83 for 3.1, under the protocol's own name (issue 16).
#[test]
fn bridge_levels_round_trip_with_the_high_bit_set() {
    for (protocol, name) in [
        (ProtocolLevel::V3_1_1Bridge, &b"\x00\x04MQTT\x84"[..]),
        (ProtocolLevel::V3_1Bridge, &b"\x00\x06MQIsdp\x83"[..]),
    ] {
        let packet = Packet::Connect(Connect {
            protocol,
            client_id: "bridge".into(),
            ..Connect::default()
        });
        let bytes = packet.to_bytes().unwrap();
        assert_eq!(&bytes[2..2 + name.len()], name);
        assert_eq!(decode_slice(&bytes), Ok(Some((packet, bytes.len()))));
        assert!(protocol.is_bridge());
        assert!(!protocol.base().is_bridge());
        assert_eq!(protocol.base().bridged(true), protocol);
    }
}

#[test]
fn byte_order_mark_in_a_topic_survives_the_round_trip() {
    // [MQTT-1.5.3-3]: EF BB BF is U+FEFF and must be neither stripped nor skipped.
    let topic = TopicName::new("\u{FEFF}a/\u{FEFF}").unwrap();
    let packet = Packet::Publish(Publish::at_most_once(topic, &b"x"[..]));
    let bytes = packet.to_bytes().unwrap();
    assert_eq!(&bytes[2..4], &[0x00, 0x08]);
    assert_eq!(&bytes[4..12], b"\xef\xbb\xbfa/\xef\xbb\xbf");
    assert_eq!(decode_slice(&bytes), Ok(Some((packet, bytes.len()))));
}

#[test]
fn empty_lists_are_refused_by_the_encoder() {
    let id = PacketId::new(1).unwrap();
    for (packet, ty) in [
        (
            Packet::Subscribe(Subscribe {
                packet_id: id,
                filters: vec![],
            }),
            PacketType::Subscribe,
        ),
        (
            Packet::SubAck(SubAck {
                packet_id: id,
                return_codes: vec![],
            }),
            PacketType::SubAck,
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                packet_id: id,
                filters: vec![],
            }),
            PacketType::Unsubscribe,
        ),
    ] {
        assert_eq!(
            packet.to_bytes(),
            Err(EncodeError::EmptyList { packet: ty })
        );
    }
}

#[test]
fn fields_longer_than_their_length_prefix_are_refused() {
    let packet = Packet::Connect(Connect {
        client_id: "c".repeat(65_536),
        ..Connect::default()
    });
    assert_eq!(
        packet.to_bytes(),
        Err(EncodeError::FieldTooLong {
            field: "client identifier",
            len: 65_536
        })
    );
    let packet = Packet::Connect(Connect {
        will: Some(Message {
            topic: TopicName::new("w").unwrap(),
            payload: Bytes::from(vec![0u8; 65_536]),
            qos: QoS::AtMostOnce,
            retain: false,
        }),
        ..Connect::default()
    });
    assert_eq!(
        packet.to_bytes(),
        Err(EncodeError::FieldTooLong {
            field: "will message",
            len: 65_536
        })
    );
    // The longest field that fits is written and read back.
    let packet = Packet::Connect(Connect {
        client_id: "c".repeat(65_535),
        ..Connect::default()
    });
    let bytes = packet.to_bytes().unwrap();
    assert_eq!(decode_slice(&bytes), Ok(Some((packet, bytes.len()))));
}

#[test]
fn a_body_beyond_the_largest_remaining_length_is_refused() {
    // Zeroed allocations are lazy, so this costs no real memory; the length
    // is computed and refused before anything is written.
    let topic = TopicName::new("t").unwrap();
    let payload = Bytes::from(vec![0u8; MAX_REMAINING_LENGTH - 2]);
    let packet = Packet::Publish(Publish::at_most_once(topic, payload));
    assert_eq!(
        packet.encoded_len(),
        Err(EncodeError::PacketTooLarge {
            packet: PacketType::Publish,
            len: MAX_REMAINING_LENGTH + 1
        })
    );
}

#[test]
fn remaining_length_boundaries_use_one_to_four_bytes() {
    // Each boundary of §2.2.3's table: the header grows by one byte exactly
    // when the body crosses it, and the packet still decodes.
    let topic = TopicName::new("t").unwrap();
    for (body, header) in [
        (127, 2),
        (128, 3),
        (16_383, 3),
        (16_384, 4),
        (2_097_151, 4),
        (2_097_152, 5),
    ] {
        let payload = Bytes::from(vec![0xa5u8; body - 3]);
        let packet = Packet::Publish(Publish::at_most_once(topic.clone(), payload));
        let bytes = packet.to_bytes().unwrap();
        assert_eq!(bytes.len(), body + header, "body {body}");
        assert_eq!(decode_slice(&bytes), Ok(Some((packet, bytes.len()))));
    }
}
