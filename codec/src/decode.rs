//! The incremental decoder: fixed header first, then the body once it has
//! fully arrived.
//!
//! The fixed header is checked as soon as its bytes are in (reserved type,
//! flags, QoS 3, remaining-length encoding, maximum size), so a bad or
//! oversized packet is refused before any of its body is buffered.

use bytes::{Bytes, BytesMut};

use super::error::DecodeError;
use super::packet::{
    ConnAck, Connect, ConnectReturnCode, Delivery, Message, Packet, PacketType, ProtocolLevel,
    Publish, QoS, SubAck, SubAckReturnCode, Subscribe, SubscribeFilter, Unsubscribe,
};
use super::reader::Reader;
use crate::topic::{TopicFilter, TopicName};

/// The first bytes of every packet (§2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// Packet type from the high nibble.
    pub packet_type: PacketType,
    /// The low nibble of the first byte.
    pub flags: u8,
    /// Length of the variable header and payload.
    pub remaining_length: usize,
    /// Bytes taken by the fixed header itself (2 to 5).
    pub header_len: usize,
}

impl FixedHeader {
    /// Total size of the packet on the wire.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_length
    }
}

/// Parses and checks the fixed header at the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold the whole fixed header.
/// Errors are reported as early as the bytes allow: a reserved type, bad
/// flags [MQTT-2.2.2-2], QoS 3 [MQTT-3.3.1-4] or DUP at QoS 0 [MQTT-3.3.1-2]
/// fail on the first byte; a non-minimal or five-byte Remaining Length, or a
/// length a fixed-size packet cannot have, fail once the length is in.
pub fn parse_fixed_header(buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let nibble = first >> 4;
    let flags = first & 0x0f;
    let packet_type =
        PacketType::from_nibble(nibble).ok_or(DecodeError::ReservedPacketType { nibble })?;
    match packet_type.required_flags() {
        Some(expected) if flags != expected => {
            return Err(DecodeError::InvalidFlags {
                packet: packet_type,
                flags,
                expected,
                statement: packet_type.flags_statement(),
            });
        }
        // PUBLISH: the flags are DUP, QoS and RETAIN; only two combinations are wrong.
        None if (flags >> 1) & 0b11 == 0b11 => return Err(DecodeError::PublishQoS3),
        None if flags & 0b1110 == 0b1000 => return Err(DecodeError::PublishDupAtQoS0),
        _ => {}
    }

    let mut value = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let bytes = i + 1;
            // A final byte of zero after the first means a shorter encoding existed.
            if bytes > 1 && byte == 0 {
                return Err(DecodeError::RemainingLengthNotMinimal { value, bytes });
            }
            if let Some(expected) = packet_type.fixed_remaining_length()
                && value != expected
            {
                return Err(DecodeError::UnexpectedRemainingLength {
                    packet: packet_type,
                    length: value,
                    expected,
                });
            }
            return Ok(Some(FixedHeader {
                packet_type,
                flags,
                remaining_length: value,
                header_len: 1 + bytes,
            }));
        }
    }
    Err(DecodeError::RemainingLengthTooLong)
}

/// Bodies at most this large get their room reserved up front; larger ones
/// grow with what actually arrives, so a lying length cannot make us allocate.
const RESERVE_LIMIT: usize = 64 * 1024;

/// Decodes one packet from the front of `buf`, removing its bytes.
///
/// Returns `Ok(None)` when more bytes are needed; `buf` is then left as it
/// was (apart from spare capacity). A packet larger than `max_packet_size`
/// (fixed header included) is refused as soon as its fixed header is in.
/// After an error the stream cannot be resynchronised and the connection
/// should be closed [MQTT-4.8.0-1].
pub fn decode_packet(
    buf: &mut BytesMut,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = parse_fixed_header(buf)? else {
        return Ok(None);
    };
    let size = header.packet_len();
    if size > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    if buf.len() < size {
        let missing = size - buf.len();
        if missing <= RESERVE_LIMIT {
            buf.reserve(missing);
        }
        return Ok(None);
    }
    let mut frame = buf.split_to(size);
    let body = frame.split_off(header.header_len).freeze();
    decode_body(&header, body).map(Some)
}

/// Decodes one packet from the front of a byte slice, returning it with the
/// number of bytes it took, or `Ok(None)` if the slice holds only part of it.
/// Copies the packet's bytes; use [`decode_packet`] on a stream.
pub fn decode_slice(bytes: &[u8]) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(header) = parse_fixed_header(bytes)? else {
        return Ok(None);
    };
    let size = header.packet_len();
    let Some(body) = bytes.get(header.header_len..size) else {
        return Ok(None);
    };
    let packet = decode_body(&header, Bytes::copy_from_slice(body))?;
    Ok(Some((packet, size)))
}

fn decode_body(header: &FixedHeader, body: Bytes) -> Result<Packet, DecodeError> {
    let t = header.packet_type;
    let mut r = Reader::new(t, body);
    let packet = match t {
        PacketType::Connect => Packet::Connect(decode_connect(&mut r)?),
        PacketType::ConnAck => Packet::ConnAck(decode_connack(&mut r)?),
        PacketType::Publish => Packet::Publish(decode_publish(header.flags, &mut r)?),
        PacketType::PubAck => Packet::PubAck(r.packet_id()?),
        PacketType::PubRec => Packet::PubRec(r.packet_id()?),
        PacketType::PubRel => Packet::PubRel(r.packet_id()?),
        PacketType::PubComp => Packet::PubComp(r.packet_id()?),
        PacketType::Subscribe => Packet::Subscribe(decode_subscribe(&mut r)?),
        PacketType::SubAck => Packet::SubAck(decode_suback(&mut r)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(decode_unsubscribe(&mut r)?),
        PacketType::UnsubAck => Packet::UnsubAck(r.packet_id()?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect,
    };
    // CONNECT and the list packets consume their whole body themselves; for
    // the rest, anything left over is a malformed packet.
    r.finish(None)?;
    Ok(packet)
}

fn topic_name(packet: PacketType, s: &str) -> Result<TopicName, DecodeError> {
    TopicName::new(s).map_err(|source| DecodeError::InvalidTopicName {
        packet,
        topic: s.to_owned(),
        source,
    })
}

fn topic_filter(packet: PacketType, s: &str) -> Result<TopicFilter, DecodeError> {
    TopicFilter::new(s).map_err(|source| DecodeError::InvalidTopicFilter {
        packet,
        filter: s.to_owned(),
        source,
    })
}

mod connect_flags {
    pub const RESERVED: u8 = 0x01;
    pub const CLEAN_SESSION: u8 = 0x02;
    pub const WILL: u8 = 0x04;
    pub const WILL_RETAIN: u8 = 0x20;
    pub const PASSWORD: u8 = 0x40;
    pub const USERNAME: u8 = 0x80;
}

fn decode_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    use connect_flags::*;
    let name = r.binary("protocol name")?;
    let level = r.u8("protocol level")?;
    let Some(protocol) = ProtocolLevel::from_name_and_level(&name, level) else {
        return Err(DecodeError::UnacceptableProtocol {
            name: String::from_utf8_lossy(&name).into_owned(),
            level,
        });
    };
    let flags = r.u8("connect flags")?;
    if flags & RESERVED != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let has_will = flags & WILL != 0;
    let will_qos_bits = (flags >> 3) & 0b11;
    let will_retain = flags & WILL_RETAIN != 0;
    let has_username = flags & USERNAME != 0;
    let has_password = flags & PASSWORD != 0;
    let will_qos = if has_will {
        QoS::from_bits(will_qos_bits).ok_or(DecodeError::WillQoS3)?
    } else {
        if will_qos_bits != 0 {
            return Err(DecodeError::WillQoSWithoutWill { qos: will_qos_bits });
        }
        if will_retain {
            return Err(DecodeError::WillRetainWithoutWill);
        }
        QoS::AtMostOnce
    };
    if has_password && !has_username {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16("keep alive")?;
    // The client id is always the first payload field [MQTT-3.1.3-3].
    let client_id = r.string("client identifier")?;
    let will = if has_will {
        let topic = r.string_with("will topic", |s| topic_name(PacketType::Connect, s))?;
        let payload = r.binary("will message")?;
        Some(Message {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string("user name")?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary("password")?)
    } else {
        None
    };
    if r.remaining() > 0 {
        // Bytes past the last announced field: most likely a field whose flag
        // is clear [MQTT-3.1.2-18] [MQTT-3.1.2-20].
        let statement = if !has_username {
            Some("MQTT-3.1.2-18")
        } else if !has_password {
            Some("MQTT-3.1.2-20")
        } else {
            None
        };
        return Err(DecodeError::TrailingBytes {
            packet: PacketType::Connect,
            extra: r.remaining(),
            statement,
        });
    }
    Ok(Connect {
        protocol,
        clean_session: flags & CLEAN_SESSION != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
    })
}

fn decode_connack(r: &mut Reader) -> Result<ConnAck, DecodeError> {
    let flags = r.u8("acknowledge flags")?;
    if flags & 0xfe != 0 {
        return Err(DecodeError::ConnAckReservedFlags { flags });
    }
    let code = r.u8("return code")?;
    let code =
        ConnectReturnCode::from_u8(code).ok_or(DecodeError::InvalidConnectReturnCode { code })?;
    Ok(ConnAck {
        session_present: flags & 1 != 0,
        code,
    })
}

fn decode_publish(flags: u8, r: &mut Reader) -> Result<Publish, DecodeError> {
    // QoS 3 was refused with the fixed header.
    let qos = QoS::from_bits((flags >> 1) & 0b11).ok_or(DecodeError::PublishQoS3)?;
    let topic = r.string_with("topic name", |s| topic_name(PacketType::Publish, s))?;
    let delivery = match qos {
        QoS::AtMostOnce => Delivery::AtMostOnce,
        QoS::AtLeastOnce => Delivery::AtLeastOnce(r.packet_id()?),
        QoS::ExactlyOnce => Delivery::ExactlyOnce(r.packet_id()?),
    };
    let message = Message {
        topic,
        payload: r.rest(),
        qos,
        retain: flags & 0b0001 != 0,
    };
    Ok(Publish::new(delivery, message).with_dup(flags & 0b1000 != 0))
}

fn decode_subscribe(r: &mut Reader) -> Result<Subscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let mut filters = Vec::new();
    while r.remaining() > 0 {
        let filter = r.string_with("topic filter", |s| topic_filter(PacketType::Subscribe, s))?;
        let byte = r.u8("requested QoS")?;
        let qos = match QoS::from_bits(byte) {
            Some(qos) => qos,
            None => return Err(DecodeError::InvalidRequestedQoS { byte }),
        };
        filters.push(SubscribeFilter { filter, qos });
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptySubscribe);
    }
    Ok(Subscribe { packet_id, filters })
}

fn decode_suback(r: &mut Reader) -> Result<SubAck, DecodeError> {
    let packet_id = r.packet_id()?;
    let mut return_codes = Vec::with_capacity(r.remaining());
    while r.remaining() > 0 {
        let code = r.u8("return code")?;
        return_codes.push(
            SubAckReturnCode::from_u8(code).ok_or(DecodeError::InvalidSubAckReturnCode { code })?,
        );
    }
    if return_codes.is_empty() {
        return Err(DecodeError::Truncated {
            packet: PacketType::SubAck,
            field: "return codes",
        });
    }
    Ok(SubAck {
        packet_id,
        return_codes,
    })
}

fn decode_unsubscribe(r: &mut Reader) -> Result<Unsubscribe, DecodeError> {
    let packet_id = r.packet_id()?;
    let mut filters = Vec::new();
    while r.remaining() > 0 {
        filters.push(r.string_with("topic filter", |s| topic_filter(PacketType::Unsubscribe, s))?);
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptyUnsubscribe);
    }
    Ok(Unsubscribe { packet_id, filters })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PacketId;

    fn round_trip(p: Packet) {
        let bytes = p.to_bytes().expect("encodable");
        let mut buf = BytesMut::from(&bytes[..]);
        let decoded = decode_packet(&mut buf, usize::MAX)
            .expect("decodes")
            .expect("complete");
        assert_eq!(decoded, p);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_decoded_payload_shares_the_read_buffer_until_copied_out() {
        let publish = Packet::Publish(Publish::new(
            crate::Delivery::AtMostOnce,
            Message::new(
                TopicName::new("t").expect("valid"),
                &b"small"[..],
                QoS::AtMostOnce,
            ),
        ));
        let mut buf = BytesMut::from(&publish.to_bytes().expect("encodable")[..]);
        buf.extend_from_slice(&[0u8; 4096]); // the next packet, not yet whole
        let Some(Packet::Publish(p)) = decode_packet(&mut buf, usize::MAX).expect("decodes") else {
            panic!("a PUBLISH");
        };
        assert!(!p.message().payload.is_unique(), "a slice of the buffer");
        let owned = p.message().with_own_payload();
        assert_eq!(owned, *p.message());
        assert!(owned.payload.is_unique(), "its own bytes");
    }

    #[test]
    fn connect_publish_subscribe_round_trip() {
        let pid = PacketId::new(7).expect("non-zero");
        round_trip(Packet::Connect(Connect {
            client_id: "c1".into(),
            keep_alive: 30,
            clean_session: true,
            will: Some(Message {
                topic: TopicName::new("w/t").expect("valid"),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
            username: Some("u".into()),
            password: Some(Bytes::from_static(b"p")),
            ..Connect::default()
        }));
        round_trip(Packet::Publish(Publish::new(
            Delivery::ExactlyOnce(pid),
            Message::new(
                TopicName::new("a/b").expect("valid"),
                &b"hello"[..],
                QoS::ExactlyOnce,
            ),
        )));
        round_trip(Packet::Subscribe(Subscribe {
            packet_id: pid,
            filters: vec![SubscribeFilter {
                filter: TopicFilter::new("a/+/#").expect("valid"),
                qos: QoS::AtLeastOnce,
            }],
        }));
        round_trip(Packet::PubRel(pid));
        round_trip(Packet::Disconnect);
    }

    #[test]
    fn oversized_packet_is_refused_from_its_header() {
        // PUBLISH announcing 256 MB - 1: refused with only the header in hand.
        let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0x7f][..]);
        assert_eq!(
            decode_packet(&mut buf, 1024),
            Err(DecodeError::PacketTooLarge {
                size: 268_435_460,
                max: 1024
            })
        );
    }

    #[test]
    fn incomplete_packet_waits_for_more() {
        let mut buf = BytesMut::from(&[0x30, 0x05, 0x00][..]);
        assert_eq!(decode_packet(&mut buf, 1024), Ok(None));
        assert_eq!(buf.len(), 3);
    }
}
