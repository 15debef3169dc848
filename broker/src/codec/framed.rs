//! [`MqttCodec`]: the decoder and encoder as a `tokio_util::codec` pair, so a
//! socket becomes a stream of packets with `Framed`.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::DEFAULT_MAX_PACKET_SIZE;
use super::decode::decode_packet;
use super::encode::EncodeError;
use super::error::DecodeError;
use super::packet::Packet;
use super::raw::RawPacket;

/// An error from a framed MQTT stream: the bytes, or the socket under them.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer sent bytes that are not a valid packet.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A packet we tried to send cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// MQTT 3.1.1 framing for `tokio_util::codec::Framed`.
#[derive(Debug, Clone, Copy)]
pub struct MqttCodec {
    max_packet_size: usize,
}

impl MqttCodec {
    /// A codec accepting packets up to `max_packet_size` bytes, fixed header
    /// included.
    pub fn new(max_packet_size: usize) -> Self {
        Self { max_packet_size }
    }

    /// The largest packet this codec accepts.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }
}

impl Default for MqttCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PACKET_SIZE)
    }
}

impl Decoder for MqttCodec {
    type Item = Packet;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        Ok(decode_packet(src, self.max_packet_size)?)
    }
}

impl Encoder<Packet> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(item.encode(dst)?)
    }
}

impl Encoder<&Packet> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(item.encode(dst)?)
    }
}

impl Encoder<RawPacket> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, item: RawPacket, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode(dst);
        Ok(())
    }
}

/// Arbitrary bytes, written as they are: for a harness that must send half a
/// packet or bytes that are no packet at all.
impl Encoder<Bytes> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}
