//! Every [`DecodeError`] variant, produced from concrete malformed bytes,
//! with its message pinned by one insta snapshot (input → message).
//!
//! This lives inside the crate so that [`variant_slot`] can match the
//! `#[non_exhaustive]` enum exhaustively: adding a variant breaks the build
//! here until it gets a slot, and the slot count fails the test until the
//! table holds an input producing it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use bytes::BytesMut;

use super::raw::{
    BodyWriter, RawConnect, RawPacket, RawPublish, RawSubscribe, RawUnsubscribe, RawWill,
};
use super::{DecodeError, PacketType, decode_packet};

/// How many variants [`DecodeError`] has.
const VARIANTS: usize = 27;

/// A distinct number per variant. Exhaustive on purpose: no wildcard arm.
fn variant_slot(e: &DecodeError) -> usize {
    use DecodeError::*;
    match e {
        ReservedPacketType { .. } => 0,
        InvalidFlags { .. } => 1,
        PublishQoS3 => 2,
        PublishDupAtQoS0 => 3,
        RemainingLengthTooLong => 4,
        RemainingLengthNotMinimal { .. } => 5,
        UnexpectedRemainingLength { .. } => 6,
        PacketTooLarge { .. } => 7,
        Truncated { .. } => 8,
        TrailingBytes { .. } => 9,
        InvalidUtf8 { .. } => 10,
        NullCharacter { .. } => 11,
        UnacceptableProtocol { .. } => 12,
        ConnectReservedFlag => 13,
        WillQoS3 => 14,
        WillQoSWithoutWill { .. } => 15,
        WillRetainWithoutWill => 16,
        PasswordWithoutUsername => 17,
        PacketIdZero { .. } => 18,
        EmptySubscribe => 19,
        EmptyUnsubscribe => 20,
        InvalidRequestedQoS { .. } => 21,
        InvalidTopicName { .. } => 22,
        InvalidTopicFilter { .. } => 23,
        ConnAckReservedFlags { .. } => 24,
        InvalidConnectReturnCode { .. } => 25,
        InvalidSubAckReturnCode { .. } => 26,
    }
}

fn connect(edit: impl FnOnce(&mut RawConnect)) -> Vec<u8> {
    let mut c = RawConnect {
        client_id: Some(b"c".to_vec()),
        ..RawConnect::default()
    };
    edit(&mut c);
    c.to_packet().to_bytes().to_vec()
}

fn publish(flags: u8, topic: &[u8], packet_id: Option<u16>) -> Vec<u8> {
    RawPublish {
        flags,
        topic: topic.to_vec(),
        packet_id,
        payload: b"p".to_vec(),
    }
    .to_packet()
    .to_bytes()
    .to_vec()
}

/// (what is wrong, bytes, maximum packet size)
fn table() -> Vec<(&'static str, Vec<u8>, usize)> {
    let any = usize::MAX;
    vec![
        ("packet type 0", vec![0x00, 0x00], any),
        ("packet type 15", vec![0xf0, 0x00], any),
        ("SUBSCRIBE flags 0000", vec![0x80, 0x00], any),
        ("PUBREL flags 0000", vec![0x60, 0x02, 0x00, 0x01], any),
        ("UNSUBSCRIBE flags 0011", vec![0xa3, 0x00], any),
        ("DISCONNECT flags 0001", vec![0xe1, 0x00], any),
        ("PINGREQ flags 0100", vec![0xc4, 0x00], any),
        ("PUBLISH QoS 3", publish(0b0110, b"t", Some(1)), any),
        ("PUBLISH DUP at QoS 0", publish(0b1000, b"t", None), any),
        (
            "remaining length of five bytes",
            vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
            any,
        ),
        (
            "remaining length 0 in two bytes",
            vec![0x30, 0x80, 0x00],
            any,
        ),
        (
            "remaining length 127 in three bytes",
            vec![0x30, 0xff, 0x80, 0x00],
            any,
        ),
        ("PUBACK remaining length 3", vec![0x40, 0x03, 0, 1, 0], any),
        ("PINGREQ remaining length 1", vec![0xc0, 0x01, 0x00], any),
        (
            "PUBLISH of 256 MB over a 1 MB limit",
            vec![0x30, 0xff, 0xff, 0xff, 0x7f],
            1 << 20,
        ),
        (
            "PUBLISH topic longer than the body",
            vec![0x30, 0x03, 0x00, 0x05, b'a'],
            any,
        ),
        (
            "QoS 1 PUBLISH without a packet id",
            vec![0x32, 0x03, 0x00, 0x01, b'a'],
            any,
        ),
        (
            "CONNECT without a client id",
            connect(|c| c.client_id = None),
            any,
        ),
        (
            "CONNECT with the will flag but no will",
            connect(|c| c.flags = Some(0x06)),
            any,
        ),
        (
            "CONNECT with the password flag but no password",
            connect(|c| {
                c.flags = Some(0xc2);
                c.username = Some(b"u".to_vec());
            }),
            any,
        ),
        (
            "CONNECT with a user name but a clear flag",
            connect(|c| {
                c.flags = Some(0x02);
                c.username = Some(b"u".to_vec());
            }),
            any,
        ),
        (
            "CONNECT with a password but a clear flag",
            connect(|c| {
                c.flags = Some(0x82);
                c.username = Some(b"u".to_vec());
                c.password = Some(b"p".to_vec());
            }),
            any,
        ),
        (
            "CONNECT with bytes after every announced field",
            {
                let mut c = connect(|c| {
                    c.username = Some(b"u".to_vec());
                    c.password = Some(b"p".to_vec());
                });
                c[1] += 1;
                c.push(0);
                c
            },
            any,
        ),
        (
            "SUBACK with no return codes",
            vec![0x90, 0x02, 0x00, 0x01],
            any,
        ),
        (
            "PUBLISH topic with a lone continuation byte",
            publish(0, b"a/\x80", None),
            any,
        ),
        (
            "PUBLISH topic with an encoded surrogate",
            publish(0, b"\xed\xa0\x80", None),
            any,
        ),
        (
            "CONNECT user name with an over-long encoding",
            connect(|c| c.username = Some(b"\xc0\xaf".to_vec())),
            any,
        ),
        (
            "CONNECT client id with U+0000",
            connect(|c| c.client_id = Some(b"a\0".to_vec())),
            any,
        ),
        (
            "SUBSCRIBE filter with U+0000",
            RawSubscribe {
                packet_id: 1,
                filters: vec![(b"a/\0".to_vec(), 0)],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        (
            "CONNECT MQTT level 5",
            connect(|c| c.protocol_level = 5),
            any,
        ),
        (
            "CONNECT MQIsdp level 4",
            connect(|c| {
                c.protocol_name = b"MQIsdp".to_vec();
            }),
            any,
        ),
        (
            "CONNECT protocol name HTTP",
            connect(|c| c.protocol_name = b"HTTP".to_vec()),
            any,
        ),
        (
            "CONNECT reserved flag",
            connect(|c| c.flags = Some(0x03)),
            any,
        ),
        (
            "CONNECT will QoS 3",
            connect(|c| {
                c.will = Some(RawWill {
                    topic: b"w".to_vec(),
                    message: b"m".to_vec(),
                    qos: 3,
                    retain: false,
                })
            }),
            any,
        ),
        (
            "CONNECT will QoS 2 without the will flag",
            connect(|c| c.flags = Some(0x12)),
            any,
        ),
        (
            "CONNECT will retain without the will flag",
            connect(|c| c.flags = Some(0x22)),
            any,
        ),
        (
            "CONNECT password without user name",
            connect(|c| c.password = Some(b"p".to_vec())),
            any,
        ),
        (
            "CONNECT will topic with a wildcard",
            connect(|c| {
                c.will = Some(RawWill {
                    topic: b"w/#".to_vec(),
                    message: vec![],
                    qos: 0,
                    retain: false,
                })
            }),
            any,
        ),
        ("PUBACK packet id 0", vec![0x40, 0x02, 0x00, 0x00], any),
        ("UNSUBACK packet id 0", vec![0xb0, 0x02, 0x00, 0x00], any),
        (
            "QoS 2 PUBLISH packet id 0",
            publish(0b0100, b"t", Some(0)),
            any,
        ),
        (
            "SUBSCRIBE packet id 0",
            RawSubscribe {
                packet_id: 0,
                filters: vec![(b"a".to_vec(), 0)],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        (
            "SUBSCRIBE with no filters",
            RawSubscribe {
                packet_id: 1,
                filters: vec![],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        (
            "UNSUBSCRIBE with no filters",
            RawUnsubscribe {
                packet_id: 1,
                filters: vec![],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        (
            "SUBSCRIBE requested QoS 3",
            RawSubscribe {
                packet_id: 1,
                filters: vec![(b"a".to_vec(), 3)],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        (
            "SUBSCRIBE requested QoS byte with reserved bits",
            RawSubscribe {
                packet_id: 1,
                filters: vec![(b"a".to_vec(), 0x41)],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        ("PUBLISH topic with '+'", publish(0, b"a/+/b", None), any),
        ("PUBLISH topic with '#'", publish(0, b"a/#", None), any),
        ("PUBLISH empty topic", publish(0, b"", None), any),
        (
            "SUBSCRIBE filter a/b#",
            RawSubscribe {
                packet_id: 1,
                filters: vec![(b"a/b#".to_vec(), 1)],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        (
            "SUBSCRIBE filter #/a",
            RawSubscribe {
                packet_id: 1,
                filters: vec![(b"#/a".to_vec(), 1)],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        (
            "UNSUBSCRIBE filter a+",
            RawUnsubscribe {
                packet_id: 1,
                filters: vec![b"a+".to_vec()],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        (
            "UNSUBSCRIBE empty filter",
            RawUnsubscribe {
                packet_id: 1,
                filters: vec![vec![]],
            }
            .to_packet()
            .to_bytes()
            .to_vec(),
            any,
        ),
        ("CONNACK flags 0x02", vec![0x20, 0x02, 0x02, 0x00], any),
        ("CONNACK return code 6", vec![0x20, 0x02, 0x00, 0x06], any),
        (
            "SUBACK return code 3",
            RawPacket::new(0x90, BodyWriter::new().u16(1).u8(3).finish())
                .to_bytes()
                .to_vec(),
            any,
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(24).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 24 { " …" } else { "" };
    format!("{}{more}", shown.join(" "))
}

/// Statement ids of the specification, from the fixture.
fn known_statements() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/spec/mqtt-3.1.1-statements.tsv"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    text.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_decode_error_from_malformed_bytes() {
    let known = known_statements();
    let mut seen = BTreeSet::new();
    let mut report = String::new();
    for (what, bytes, max) in table() {
        let mut buf = BytesMut::from(&bytes[..]);
        let err = match decode_packet(&mut buf, max) {
            Err(e) => e,
            other => panic!("{what}: expected an error, got {other:?}"),
        };
        let slot = variant_slot(&err);
        assert!(slot < VARIANTS, "slot {slot} is past VARIANTS; raise it");
        seen.insert(slot);

        let message = err.to_string();
        if let Some(id) = err.statement() {
            assert!(known.contains(id), "{what}: unknown statement id {id}");
            assert!(
                message.contains(&format!("[{id}]")),
                "{what}: message {message:?} does not cite {id}"
            );
        }
        assert!(
            !message.ends_with('.'),
            "{what}: {message:?} ends with a period"
        );
        writeln!(
            report,
            "{what}\n  bytes: {}\n  error: {message}",
            hex(&bytes)
        )
        .ok();
    }
    let missing: Vec<usize> = (0..VARIANTS).filter(|s| !seen.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "no input produces variant slots {missing:?}"
    );
    insta::assert_snapshot!("decode_error_messages", report);
}

#[test]
fn every_flags_statement_is_a_known_statement() {
    let known = known_statements();
    for nibble in 1..=14 {
        let t = PacketType::from_nibble(nibble).unwrap_or_else(|| panic!("type {nibble}"));
        assert!(known.contains(t.flags_statement()), "{t}");
    }
}
