//! The MQTT 3.1.1 wire format: the fourteen control packets as typed values,
//! an incremental decoder and an encoder.
//!
//! This layer knows bytes and nothing else: no sockets, no clocks, no session
//! state. Decoding a buffer yields a [`Packet`], "need more bytes" (`Ok(None)`),
//! or a [`DecodeError`] naming the rule the bytes broke, with the normative
//! statement id where the specification gives one. The decoder never panics,
//! whatever it is fed, and refuses a packet larger than its limit before
//! buffering the body.
//!
//! [`topic`] holds the rules of §4.7 for topic names and filters and the
//! definition of matching; a decoded packet can only hold topics that obey
//! them. [`raw`] writes deliberately wrong packets for the conformance harness.
//! [`check`] holds the decoder's consistency checks that the fuzz targets call.
//!
//! The broker and the conformance harness both stand on this crate and on
//! nothing of each other: the judge never stands on the judged.

pub mod check;
mod decode;
mod encode;
mod error;
#[cfg(test)]
mod error_tests;
mod packet;
pub mod raw;
mod reader;
pub mod topic;

pub use decode::{FixedHeader, decode_packet, decode_slice, parse_fixed_header};
pub use encode::{EncodeError, write_remaining_length};
pub use error::DecodeError;
pub use packet::{
    ConnAck, Connect, ConnectReturnCode, Delivery, Message, Packet, PacketId, PacketType,
    ProtocolLevel, Publish, QoS, SubAck, SubAckReturnCode, Subscribe, SubscribeFilter, Unsubscribe,
};

/// The largest Remaining Length four bytes can encode (256 MB − 1, §2.2.3).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The largest packet a decoder accepts unless told otherwise: fixed header
/// plus the largest remaining length.
pub const DEFAULT_MAX_PACKET_SIZE: usize = MAX_REMAINING_LENGTH + 5;
