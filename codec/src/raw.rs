//! Deliberately wrong packets, for the conformance harness.
//!
//! A conformant codec cannot produce a PUBLISH with a wildcard topic, a
//! SUBSCRIBE with no filters or a Remaining Length that lies; a harness that
//! checks how a broker reacts to them must. Everything here writes exactly the
//! bytes it is given and checks nothing.
//!
//! Each raw builder can start from a valid typed packet (`from_packet`,
//! `from_connect`, ...) and then have one field bent, so a test changes exactly
//! the rule it means to break. Any byte string at all can be sent as a
//! [`RawPacket`] with [`RawPacket::verbatim`].

use bytes::{BufMut, Bytes, BytesMut};

use super::encode::{
    EncodeError, connect_flags, connect_flags_byte, publish_flags, write_remaining_length,
};
use super::packet::{Connect, Packet, Publish, Subscribe, Unsubscribe};

/// How a [`RawPacket`] states its Remaining Length.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RemainingLength {
    /// The true length of the body, minimally encoded.
    #[default]
    Correct,
    /// This value, minimally encoded, whatever the body's real length.
    Value(usize),
    /// Exactly these bytes (for non-minimal or over-long encodings, or
    /// none at all).
    Encoded(Vec<u8>),
}

/// A packet whose every byte the caller decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPacket {
    /// The first byte: packet type in the high nibble, flags in the low one.
    pub first_byte: u8,
    /// How the Remaining Length is written.
    pub remaining_length: RemainingLength,
    /// Variable header and payload.
    pub body: Bytes,
}

impl RawPacket {
    /// A packet with a correct length around `body`.
    pub fn new(first_byte: u8, body: impl Into<Bytes>) -> Self {
        Self {
            first_byte,
            remaining_length: RemainingLength::Correct,
            body: body.into(),
        }
    }

    /// Exactly `first_byte` then `rest`, with no Remaining Length of its own:
    /// `rest` may hold any length bytes, true or not, or none. With these two
    /// any byte string can be written.
    pub fn verbatim(first_byte: u8, rest: impl Into<Bytes>) -> Self {
        Self {
            first_byte,
            remaining_length: RemainingLength::Encoded(Vec::new()),
            body: rest.into(),
        }
    }

    /// Starts from a well-formed packet, to be bent with the `with_` methods.
    pub fn from_packet(packet: &Packet) -> Result<Self, EncodeError> {
        let len = packet.body_len()?;
        let mut body = BytesMut::with_capacity(len);
        packet.encode_body(&mut body);
        Ok(Self::new(
            ((packet.packet_type() as u8) << 4) | packet.flags(),
            body.freeze(),
        ))
    }

    /// Replaces the fixed-header flags (low nibble).
    pub fn with_flags(mut self, flags: u8) -> Self {
        self.first_byte = (self.first_byte & 0xf0) | (flags & 0x0f);
        self
    }

    /// Replaces the packet type (high nibble), reserved values included.
    pub fn with_type_nibble(mut self, nibble: u8) -> Self {
        self.first_byte = ((nibble & 0x0f) << 4) | (self.first_byte & 0x0f);
        self
    }

    /// States a Remaining Length other than the body's.
    pub fn with_remaining_length(mut self, remaining_length: RemainingLength) -> Self {
        self.remaining_length = remaining_length;
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Appends the packet's bytes to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(self.first_byte);
        match &self.remaining_length {
            RemainingLength::Correct => write_remaining_length(dst, self.body.len()),
            RemainingLength::Value(v) => write_remaining_length(dst, *v),
            RemainingLength::Encoded(bytes) => dst.put_slice(bytes),
        }
        dst.put_slice(&self.body);
    }

    /// The packet as bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut dst = BytesMut::with_capacity(self.body.len() + 5);
        self.encode(&mut dst);
        dst.freeze()
    }
}

/// Builds a packet body field by field, with no validation.
#[derive(Debug, Clone, Default)]
pub struct BodyWriter(BytesMut);

impl BodyWriter {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// One byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.0.put_u8(v);
        self
    }

    /// A big-endian 16-bit integer.
    pub fn u16(mut self, v: u16) -> Self {
        self.0.put_u16(v);
        self
    }

    /// A length-prefixed field holding exactly `bytes`, valid UTF-8 or not.
    /// The prefix is the length truncated to 16 bits, so an over-long field
    /// lies about its size, as a broken peer's would.
    pub fn string(mut self, bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        self.0.put_u16(bytes.len() as u16);
        self.0.put_slice(bytes);
        self
    }

    /// Bytes with no length prefix.
    pub fn bytes(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.0.put_slice(bytes.as_ref());
        self
    }

    /// The body built so far.
    pub fn finish(self) -> Bytes {
        self.0.freeze()
    }
}

/// A CONNECT whose fields are bytes and whose flags may be forced, to write
/// the CONNECTs a codec would refuse: wrong protocol name or level, reserved
/// flag set, will flags without a will, password without user name, invalid
/// UTF-8 in any string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawConnect {
    /// Protocol name bytes ("MQTT").
    pub protocol_name: Vec<u8>,
    /// Protocol level (4).
    pub protocol_level: u8,
    /// Forced flags byte; when `None` the flags follow the fields below.
    pub flags: Option<u8>,
    /// Clean Session flag (used when `flags` is `None`).
    pub clean_session: bool,
    /// Keep-alive in seconds.
    pub keep_alive: u16,
    /// Client identifier bytes; `None` leaves the field out entirely.
    pub client_id: Option<Vec<u8>>,
    /// Will topic, message, QoS bits and retain (used for flags when `flags` is `None`).
    pub will: Option<RawWill>,
    /// User name bytes.
    pub username: Option<Vec<u8>>,
    /// Password bytes.
    pub password: Option<Vec<u8>>,
}

/// The will part of a [`RawConnect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawWill {
    /// Will topic bytes.
    pub topic: Vec<u8>,
    /// Will message bytes.
    pub message: Vec<u8>,
    /// Will QoS bits, 0 to 3.
    pub qos: u8,
    /// Will retain flag.
    pub retain: bool,
}

impl Default for RawConnect {
    fn default() -> Self {
        Self {
            protocol_name: b"MQTT".to_vec(),
            protocol_level: 4,
            flags: None,
            clean_session: true,
            keep_alive: 60,
            client_id: Some(Vec::new()),
            will: None,
            username: None,
            password: None,
        }
    }
}

impl RawConnect {
    /// The raw form of a valid CONNECT: written unchanged it is byte for byte
    /// what [`Packet::encode`] writes.
    pub fn from_connect(connect: &Connect) -> Self {
        Self {
            protocol_name: connect.protocol.name().as_bytes().to_vec(),
            protocol_level: connect.protocol.level(),
            flags: Some(connect_flags(connect)),
            clean_session: connect.clean_session,
            keep_alive: connect.keep_alive,
            client_id: Some(connect.client_id.as_bytes().to_vec()),
            will: connect.will.as_ref().map(|w| RawWill {
                topic: w.topic.as_str().as_bytes().to_vec(),
                message: w.payload.to_vec(),
                qos: w.qos.as_u8(),
                retain: w.retain,
            }),
            username: connect.username.as_ref().map(|u| u.as_bytes().to_vec()),
            password: connect.password.as_ref().map(|p| p.to_vec()),
        }
    }

    /// The flags byte the fields imply.
    pub fn implied_flags(&self) -> u8 {
        connect_flags_byte(
            self.clean_session,
            self.will.as_ref().map(|w| (w.qos, w.retain)),
            self.username.is_some(),
            self.password.is_some(),
        )
    }

    /// The CONNECT as a raw packet.
    pub fn to_packet(&self) -> RawPacket {
        let mut w = BodyWriter::new()
            .string(&self.protocol_name)
            .u8(self.protocol_level)
            .u8(self.flags.unwrap_or_else(|| self.implied_flags()))
            .u16(self.keep_alive);
        if let Some(id) = &self.client_id {
            w = w.string(id);
        }
        if let Some(will) = &self.will {
            w = w.string(&will.topic).string(&will.message);
        }
        if let Some(u) = &self.username {
            w = w.string(u);
        }
        if let Some(p) = &self.password {
            w = w.string(p);
        }
        RawPacket::new(0x10, w.finish())
    }
}

/// A PUBLISH with any flags, any topic bytes and any packet id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPublish {
    /// DUP, QoS (2 bits, 3 allowed) and RETAIN as the low nibble.
    pub flags: u8,
    /// Topic bytes (wildcards or invalid UTF-8 allowed).
    pub topic: Vec<u8>,
    /// Packet id, written when present whatever the QoS (0 allowed).
    pub packet_id: Option<u16>,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

impl RawPublish {
    /// The raw form of a valid PUBLISH.
    pub fn from_publish(publish: &Publish) -> Self {
        Self {
            flags: publish_flags(publish),
            topic: publish.topic().as_str().as_bytes().to_vec(),
            packet_id: publish.packet_id().map(|id| id.get()),
            payload: publish.payload().to_vec(),
        }
    }

    /// The PUBLISH as a raw packet.
    pub fn to_packet(&self) -> RawPacket {
        let mut w = BodyWriter::new().string(&self.topic);
        if let Some(id) = self.packet_id {
            w = w.u16(id);
        }
        RawPacket::new(0x30 | (self.flags & 0x0f), w.bytes(&self.payload).finish())
    }
}

/// A SUBSCRIBE with any packet id and any (filter bytes, requested-QoS byte)
/// pairs, including none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSubscribe {
    /// Packet id (0 allowed).
    pub packet_id: u16,
    /// Filters and requested-QoS bytes, written in order.
    pub filters: Vec<(Vec<u8>, u8)>,
}

impl RawSubscribe {
    /// The raw form of a valid SUBSCRIBE.
    pub fn from_subscribe(subscribe: &Subscribe) -> Self {
        Self {
            packet_id: subscribe.packet_id.get(),
            filters: subscribe
                .filters
                .iter()
                .map(|f| (f.filter.as_str().as_bytes().to_vec(), f.qos.as_u8()))
                .collect(),
        }
    }

    /// The SUBSCRIBE as a raw packet with the required flags 0b0010.
    pub fn to_packet(&self) -> RawPacket {
        let mut w = BodyWriter::new().u16(self.packet_id);
        for (filter, qos) in &self.filters {
            w = w.string(filter).u8(*qos);
        }
        RawPacket::new(0x82, w.finish())
    }
}

/// An UNSUBSCRIBE with any packet id and any filter bytes, including none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawUnsubscribe {
    /// Packet id (0 allowed).
    pub packet_id: u16,
    /// Filters, written in order.
    pub filters: Vec<Vec<u8>>,
}

impl RawUnsubscribe {
    /// The raw form of a valid UNSUBSCRIBE.
    pub fn from_unsubscribe(unsubscribe: &Unsubscribe) -> Self {
        Self {
            packet_id: unsubscribe.packet_id.get(),
            filters: unsubscribe
                .filters
                .iter()
                .map(|f| f.as_str().as_bytes().to_vec())
                .collect(),
        }
    }

    /// The UNSUBSCRIBE as a raw packet with the required flags 0b0010.
    pub fn to_packet(&self) -> RawPacket {
        let mut w = BodyWriter::new().u16(self.packet_id);
        for filter in &self.filters {
            w = w.string(filter);
        }
        RawPacket::new(0xa2, w.finish())
    }
}
