//! Golden packets: one well-formed example of each of the fourteen control
//! packets, kept as annotated hex in `fixtures/golden/` (one field per line,
//! commented). Each file must be exactly what the encoder writes for the typed
//! packet below, must decode back to it, and its bytes are pinned by an insta
//! snapshot so any change to the wire format shows up in review.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, Message, Packet, PacketId, ProtocolLevel, Publish, QoS,
    SubAck, SubAckReturnCode, Subscribe, SubscribeFilter, Unsubscribe, decode_packet, decode_slice,
};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden")
}

/// Parses annotated hex: two-digit hex bytes separated by whitespace, `#`
/// comments to the end of the line.
fn parse_annotated_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        for token in code.split_whitespace() {
            if token.len() != 2 {
                return Err(format!(
                    "line {}: {token:?} is not a two-digit hex byte",
                    n + 1
                ));
            }
            let byte = u8::from_str_radix(token, 16)
                .map_err(|e| format!("line {}: {token:?}: {e}", n + 1))?;
            bytes.push(byte);
        }
    }
    Ok(bytes)
}

fn read_golden(name: &str) -> Vec<u8> {
    let path = golden_dir().join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    parse_annotated_hex(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn id(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

/// The typed packet each golden file holds.
fn golden_packets() -> Vec<(&'static str, Packet)> {
    vec![
        (
            "connect",
            Packet::Connect(Connect {
                protocol: ProtocolLevel::V3_1_1,
                clean_session: true,
                keep_alive: 60,
                client_id: "golden-client".into(),
                will: Some(Message {
                    topic: TopicName::new("clients/golden/status").unwrap(),
                    payload: Bytes::from_static(b"offline"),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                }),
                username: Some("alice".into()),
                password: Some(Bytes::from_static(b"s3cret")),
            }),
        ),
        (
            "connack",
            Packet::ConnAck(ConnAck {
                session_present: true,
                code: ConnectReturnCode::Accepted,
            }),
        ),
        (
            "publish",
            Packet::Publish(
                Publish::at_qos(
                    TopicName::new("home/kitchen/température").unwrap(),
                    QoS::AtLeastOnce,
                    id(10),
                    Bytes::from_static(b"21.5"),
                )
                .with_retain(true)
                .with_dup(true),
            ),
        ),
        ("puback", Packet::PubAck(id(10))),
        ("pubrec", Packet::PubRec(id(11))),
        ("pubrel", Packet::PubRel(id(11))),
        ("pubcomp", Packet::PubComp(id(11))),
        (
            "subscribe",
            Packet::Subscribe(Subscribe {
                packet_id: id(12),
                filters: vec![
                    SubscribeFilter {
                        filter: filter("home/+/temperature"),
                        qos: QoS::AtLeastOnce,
                    },
                    SubscribeFilter {
                        filter: filter("$SYS/#"),
                        qos: QoS::AtMostOnce,
                    },
                    SubscribeFilter {
                        filter: filter("a//#"),
                        qos: QoS::ExactlyOnce,
                    },
                ],
            }),
        ),
        (
            "suback",
            Packet::SubAck(SubAck {
                packet_id: id(12),
                return_codes: vec![
                    SubAckReturnCode::Granted(QoS::AtLeastOnce),
                    SubAckReturnCode::Granted(QoS::AtMostOnce),
                    SubAckReturnCode::Failure,
                ],
            }),
        ),
        (
            "unsubscribe",
            Packet::Unsubscribe(Unsubscribe {
                packet_id: id(13),
                filters: vec![filter("home/+/temperature"), filter("$SYS/#")],
            }),
        ),
        ("unsuback", Packet::UnsubAck(id(13))),
        ("pingreq", Packet::PingReq),
        ("pingresp", Packet::PingResp),
        ("disconnect", Packet::Disconnect),
    ]
}

/// Sixteen bytes a row, offset first: the form the snapshots pin.
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&format!("{:04x}  {}\n", row * 16, hex.join(" ")));
    }
    out
}

#[test]
fn golden_files_cover_all_fourteen_packet_types_and_nothing_else() {
    let packets = golden_packets();
    let types: BTreeSet<u8> = packets.iter().map(|(_, p)| p.packet_type() as u8).collect();
    assert_eq!(types, (1..=14).collect::<BTreeSet<u8>>());

    let expected: BTreeSet<String> = packets
        .iter()
        .map(|(name, _)| format!("{name}.hex"))
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".hex"))
        .collect();
    assert_eq!(on_disk, expected);
}

#[test]
fn golden_files_are_what_the_encoder_writes() {
    for (name, packet) in golden_packets() {
        let golden = read_golden(name);
        let encoded = packet.to_bytes().unwrap();
        assert_eq!(
            hex_dump(&encoded),
            hex_dump(&golden),
            "{name}.hex differs from the encoder's output"
        );
        assert_eq!(packet.encoded_len().unwrap(), golden.len(), "{name}");
    }
}

#[test]
fn golden_files_decode_to_their_packets() {
    for (name, packet) in golden_packets() {
        let golden = read_golden(name);
        assert_eq!(
            decode_slice(&golden),
            Ok(Some((packet.clone(), golden.len()))),
            "{name}"
        );
        let mut buf = BytesMut::from(&golden[..]);
        assert_eq!(
            decode_packet(&mut buf, golden.len()),
            Ok(Some(packet)),
            "{name}"
        );
        assert!(buf.is_empty(), "{name}: bytes left after decoding");
    }
}

#[test]
fn golden_packet_bytes_snapshots() {
    for (name, packet) in golden_packets() {
        let encoded = packet.to_bytes().unwrap();
        insta::assert_snapshot!(
            format!("golden_{name}"),
            format!("{packet:?}\n\n{}", hex_dump(&encoded))
        );
    }
}

#[test]
fn annotated_hex_parser_refuses_malformed_tokens() {
    assert_eq!(
        parse_annotated_hex("10 # type\n00 0\n"),
        Err("line 2: \"0\" is not a two-digit hex byte".to_owned())
    );
    assert!(parse_annotated_hex("zz").is_err());
    assert_eq!(
        parse_annotated_hex("# only a comment\n\n c0 00 # ping\n"),
        Ok(vec![0xc0, 0x00])
    );
}
