//! The encoder: typed packets to bytes.
//!
//! The length of the body is computed first so the fixed header can be
//! written in one pass with no intermediate buffer.

use bytes::{BufMut, Bytes, BytesMut};

use super::MAX_REMAINING_LENGTH;
use super::packet::{Connect, Packet, PacketType, Publish};
use super::topic::TopicFilter;

/// Why a typed packet cannot be written.
///
/// The encoder refuses exactly what the decoder would refuse, so any packet
/// that encodes decodes back to itself. Deliberately wrong packets are written
/// with [`raw`](super::raw) instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string or binary field does not fit its 16-bit length prefix.
    #[error("{field} is {len} bytes, more than the 65535 a length-prefixed field can hold")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The body does not fit in a four-byte Remaining Length.
    #[error("{packet} body is {len} bytes, more than the largest remaining length 268435455")]
    PacketTooLarge {
        /// The packet type.
        packet: PacketType,
        /// The body length.
        len: usize,
    },
    /// A QoS 0 PUBLISH with DUP set.
    #[error("QoS 0 PUBLISH must not have DUP set [MQTT-3.3.1-2]")]
    DupAtQoS0,
    /// A SUBSCRIBE, SUBACK or UNSUBSCRIBE with an empty list.
    #[error("{packet} must hold at least one entry")]
    EmptyList {
        /// The packet type.
        packet: PacketType,
    },
    /// A string field (client identifier, user name) holds U+0000.
    #[error("{field} contains U+0000 [MQTT-1.5.3-2]")]
    NullCharacter {
        /// Which field.
        field: &'static str,
    },
    /// A CONNECT with a password but no user name.
    #[error("CONNECT has a password without a user name [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
}

/// Writes a Remaining Length in its minimal form (1 to 4 bytes for values up
/// to [`MAX_REMAINING_LENGTH`]; larger values simply take more bytes, which
/// only [`raw`](super::raw) packets ever ask for).
pub fn write_remaining_length(dst: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        dst.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

fn remaining_length_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The length of a string field, refusing U+0000 [MQTT-1.5.3-2].
fn string_len(field: &'static str, s: &str) -> Result<usize, EncodeError> {
    if s.contains('\0') {
        return Err(EncodeError::NullCharacter { field });
    }
    field_len(field, s.len())
}

fn field_len(field: &'static str, len: usize) -> Result<usize, EncodeError> {
    if len > usize::from(u16::MAX) {
        Err(EncodeError::FieldTooLong { field, len })
    } else {
        Ok(2 + len)
    }
}

/// The body length of a SUBSCRIBE or UNSUBSCRIBE: the packet id, then each
/// filter as a length-prefixed field followed by `per_filter` bytes (the
/// requested QoS of a SUBSCRIBE). An empty list is refused.
fn filter_list_len<'a>(
    packet: PacketType,
    filters: impl ExactSizeIterator<Item = &'a TopicFilter>,
    per_filter: usize,
) -> Result<usize, EncodeError> {
    if filters.len() == 0 {
        return Err(EncodeError::EmptyList { packet });
    }
    let mut len = 2;
    for f in filters {
        len += field_len("topic filter", f.as_str().len())? + per_filter;
    }
    Ok(len)
}

/// A length-prefixed field; its length was checked by [`field_len`].
fn put_field(dst: &mut BytesMut, bytes: &[u8]) {
    dst.put_u16(bytes.len() as u16);
    dst.put_slice(bytes);
}

impl Packet {
    /// The fixed-header flags this packet is written with.
    pub fn flags(&self) -> u8 {
        match self {
            Packet::Publish(p) => publish_flags(p),
            other => other.packet_type().required_flags().unwrap_or(0),
        }
    }

    /// The length of the body (variable header and payload).
    pub fn body_len(&self) -> Result<usize, EncodeError> {
        let len = match self {
            Packet::Connect(c) => connect_body_len(c)?,
            Packet::ConnAck(_) => 2,
            Packet::Publish(p) => {
                // The packet id is there exactly when the QoS needs it: the
                // Delivery type allows nothing else.
                let id = match p.packet_id() {
                    None if p.dup => return Err(EncodeError::DupAtQoS0),
                    None => 0,
                    Some(_) => 2,
                };
                field_len("topic name", p.topic().as_str().len())? + id + p.payload().len()
            }
            Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::UnsubAck(_) => 2,
            Packet::Subscribe(s) => filter_list_len(
                PacketType::Subscribe,
                s.filters.iter().map(|f| &f.filter),
                1,
            )?,
            Packet::SubAck(s) => {
                if s.return_codes.is_empty() {
                    return Err(EncodeError::EmptyList {
                        packet: PacketType::SubAck,
                    });
                }
                2 + s.return_codes.len()
            }
            Packet::Unsubscribe(u) => {
                filter_list_len(PacketType::Unsubscribe, u.filters.iter(), 0)?
            }
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => 0,
        };
        if len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge {
                packet: self.packet_type(),
                len,
            });
        }
        Ok(len)
    }

    /// The total size of the packet on the wire.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let body = self.body_len()?;
        Ok(1 + remaining_length_len(body) + body)
    }

    /// Appends the packet to `dst`. On error nothing is written.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let body_len = self.body_len()?;
        dst.reserve(1 + remaining_length_len(body_len) + body_len);
        dst.put_u8(((self.packet_type() as u8) << 4) | self.flags());
        write_remaining_length(dst, body_len);
        self.encode_body(dst);
        Ok(())
    }

    /// The packet as a standalone byte buffer.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut dst = BytesMut::new();
        self.encode(&mut dst)?;
        Ok(dst.freeze())
    }

    /// Writes the body; lengths and invariants were checked by `body_len`.
    pub(crate) fn encode_body(&self, dst: &mut BytesMut) {
        match self {
            Packet::Connect(c) => encode_connect_body(c, dst),
            Packet::ConnAck(c) => {
                dst.put_u8(u8::from(c.session_present));
                dst.put_u8(c.code.as_u8());
            }
            Packet::Publish(p) => {
                put_field(dst, p.topic().as_str().as_bytes());
                if let Some(id) = p.packet_id() {
                    dst.put_u16(id.get());
                }
                dst.put_slice(p.payload());
            }
            Packet::PubAck(id)
            | Packet::PubRec(id)
            | Packet::PubRel(id)
            | Packet::PubComp(id)
            | Packet::UnsubAck(id) => dst.put_u16(id.get()),
            Packet::Subscribe(s) => {
                dst.put_u16(s.packet_id.get());
                for f in &s.filters {
                    put_field(dst, f.filter.as_str().as_bytes());
                    dst.put_u8(f.qos.as_u8());
                }
            }
            Packet::SubAck(s) => {
                dst.put_u16(s.packet_id.get());
                for code in &s.return_codes {
                    dst.put_u8(code.as_u8());
                }
            }
            Packet::Unsubscribe(u) => {
                dst.put_u16(u.packet_id.get());
                for f in &u.filters {
                    put_field(dst, f.as_str().as_bytes());
                }
            }
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => {}
        }
    }
}

/// The PUBLISH fixed-header flags: DUP, QoS, RETAIN (§3.3.1).
pub(crate) fn publish_flags(p: &Publish) -> u8 {
    (u8::from(p.dup) << 3) | (p.qos().as_u8() << 1) | u8::from(p.retain())
}

/// The CONNECT flags byte implied by the fields (§3.1.2.3).
pub(crate) fn connect_flags(c: &Connect) -> u8 {
    connect_flags_byte(
        c.clean_session,
        c.will.as_ref().map(|w| (w.qos.as_u8(), w.retain)),
        c.username.is_some(),
        c.password.is_some(),
    )
}

/// The CONNECT flags byte (§3.1.2.3) for Clean Session, the will's QoS bits
/// (0 to 3) and RETAIN flag when there is a will, and whether a user name and
/// a password follow. The reserved bit 0 stays clear.
pub(crate) fn connect_flags_byte(
    clean_session: bool,
    will: Option<(u8, bool)>,
    username: bool,
    password: bool,
) -> u8 {
    let mut flags = 0u8;
    if clean_session {
        flags |= 0x02;
    }
    if let Some((qos, retain)) = will {
        flags |= 0x04 | ((qos & 0b11) << 3);
        if retain {
            flags |= 0x20;
        }
    }
    if password {
        flags |= 0x40;
    }
    if username {
        flags |= 0x80;
    }
    flags
}

fn connect_body_len(c: &Connect) -> Result<usize, EncodeError> {
    if c.password.is_some() && c.username.is_none() {
        return Err(EncodeError::PasswordWithoutUsername);
    }
    let mut len = 2 + c.protocol.name().len() + 1 + 1 + 2;
    len += string_len("client identifier", &c.client_id)?;
    if let Some(will) = &c.will {
        len += field_len("will topic", will.topic.as_str().len())?;
        len += field_len("will message", will.payload.len())?;
    }
    if let Some(u) = &c.username {
        len += string_len("user name", u)?;
    }
    if let Some(p) = &c.password {
        len += field_len("password", p.len())?;
    }
    Ok(len)
}

fn encode_connect_body(c: &Connect, dst: &mut BytesMut) {
    put_field(dst, c.protocol.name().as_bytes());
    dst.put_u8(c.protocol.level());
    dst.put_u8(connect_flags(c));
    dst.put_u16(c.keep_alive);
    put_field(dst, c.client_id.as_bytes());
    if let Some(will) = &c.will {
        put_field(dst, will.topic.as_str().as_bytes());
        put_field(dst, &will.payload);
    }
    if let Some(u) = &c.username {
        put_field(dst, u.as_bytes());
    }
    if let Some(p) = &c.password {
        put_field(dst, p);
    }
}
