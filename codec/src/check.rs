//! The decoder and the topic rules checked against themselves, for fuzz
//! targets (`fuzz/`) and property tests: whatever bytes arrive and however
//! the stream is cut into reads, decoding must come to the same packets and
//! the same error, and every packet it yields must encode back to the bytes
//! it came from; topic names and filters must keep their text and match as
//! §4.7 says.
//!
//! A broker sees a TCP stream cut wherever the network cut it, so a decoder
//! whose answer depends on where the reads ended would accept on one
//! connection what it refuses on another. These functions never panic; they
//! return a [`Disagreement`] describing the first inconsistency found, and the
//! caller (a fuzz target, a test) decides to fail.

use bytes::BytesMut;

use crate::topic::{TopicFilter, TopicName, matches};
use crate::{DecodeError, EncodeError, Packet, decode_packet, decode_slice};

/// What decoding one byte stream came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDecode {
    /// The packets decoded, in order.
    pub packets: Vec<Packet>,
    /// The error that ended decoding, if any; no packet is decoded after one
    /// [MQTT-4.8.0-1].
    pub error: Option<DecodeError>,
    /// Bytes left undecoded at the end of the stream (0 after an error):
    /// the start of a packet still waiting for the rest of it.
    pub leftover: usize,
}

/// Decodes `reads`, the successive reads of one stream, through
/// [`decode_packet`], taking every packet out after each read as a
/// connection does.
pub fn decode_reads<'a>(
    reads: impl IntoIterator<Item = &'a [u8]>,
    max_packet_size: usize,
) -> StreamDecode {
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            match decode_packet(&mut buf, max_packet_size) {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => break,
                Err(error) => {
                    return StreamDecode {
                        packets,
                        error: Some(error),
                        leftover: 0,
                    };
                }
            }
        }
    }
    StreamDecode {
        packets,
        error: None,
        leftover: buf.len(),
    }
}

/// Decodes `bytes` packet after packet through [`decode_slice`], which
/// takes no packet-size limit.
pub fn decode_slices(bytes: &[u8]) -> StreamDecode {
    let mut packets = Vec::new();
    let mut rest = bytes;
    loop {
        match decode_slice(rest) {
            Ok(Some((packet, used))) => {
                packets.push(packet);
                // decode_slice reports at most the slice's length; `get`
                // keeps a broken count from panicking here.
                rest = rest.get(used..).unwrap_or_default();
            }
            Ok(None) => {
                return StreamDecode {
                    packets,
                    error: None,
                    leftover: rest.len(),
                };
            }
            Err(error) => {
                return StreamDecode {
                    packets,
                    error: Some(error),
                    leftover: 0,
                };
            }
        }
    }
}

/// A way the decoder disagreed with itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Disagreement {
    /// The stream decoded differently when its bytes arrived in other reads.
    #[error("the stream decodes as {whole:?} in one read but as {cut:?} when {how}")]
    Reads {
        /// How the stream was cut ("split at byte 7", "fed byte by byte").
        how: String,
        /// The result from one read of the whole stream.
        whole: StreamDecode,
        /// The result from the cut stream.
        cut: StreamDecode,
    },
    /// [`decode_slice`] and [`decode_packet`] disagreed on the same bytes.
    #[error("decode_packet yields {stream:?} but decode_slice yields {slices:?}")]
    Slice {
        /// The result of [`decode_packet`].
        stream: StreamDecode,
        /// The result of [`decode_slice`].
        slices: StreamDecode,
    },
    /// A decoded packet could not be encoded again.
    #[error("decoded packet {packet:?} does not encode: {error}")]
    Encode {
        /// The packet.
        packet: Packet,
        /// Why the encoder refused it.
        error: EncodeError,
    },
    /// A decoded packet, encoded again, is not the bytes it came from: two
    /// encodings of one packet were accepted, or a field was lost.
    #[error("packet {packet:?} came from {original:02x?} but encodes as {again:02x?}")]
    Reencode {
        /// The packet.
        packet: Packet,
        /// The bytes it was decoded from.
        original: Vec<u8>,
        /// What the encoder wrote for it.
        again: Vec<u8>,
    },
    /// A topic name or filter broke one of the rules [`check_topics`] checks.
    #[error("filter {filter:?} and topic name {name:?}: {rule}")]
    Topic {
        /// The filter text.
        filter: String,
        /// The topic name text.
        name: String,
        /// The rule broken.
        rule: &'static str,
    },
}

/// Decodes `bytes` in one read, split in two reads at `split` (clamped to
/// the length), fed one byte at a time and through [`decode_slice`], and
/// checks that all four agree and that every packet decoded encodes back to
/// exactly the bytes it came from.
pub fn check_stream(bytes: &[u8], split: usize) -> Result<StreamDecode, Box<Disagreement>> {
    let max = crate::DEFAULT_MAX_PACKET_SIZE;
    let whole = decode_reads([bytes], max);

    let (head, tail) = bytes.split_at(split.min(bytes.len()));
    let cut = decode_reads([head, tail], max);
    if cut != whole {
        return Err(Box::new(Disagreement::Reads {
            how: format!("split at byte {}", head.len()),
            whole,
            cut,
        }));
    }
    let one_by_one = decode_reads(bytes.chunks(1), max);
    if one_by_one != whole {
        return Err(Box::new(Disagreement::Reads {
            how: "fed byte by byte".to_owned(),
            whole,
            cut: one_by_one,
        }));
    }
    let slices = decode_slices(bytes);
    if slices != whole {
        return Err(Box::new(Disagreement::Slice {
            stream: whole,
            slices,
        }));
    }

    let mut rest = bytes;
    for packet in &whole.packets {
        let again = packet.to_bytes().map_err(|error| Disagreement::Encode {
            packet: packet.clone(),
            error,
        })?;
        let original = rest.get(..again.len()).unwrap_or(rest);
        if original != again.as_ref() {
            return Err(Box::new(Disagreement::Reencode {
                packet: packet.clone(),
                original: original.to_vec(),
                again: again.to_vec(),
            }));
        }
        rest = rest.get(again.len()..).unwrap_or_default();
    }
    Ok(whole)
}

/// Validates `filter` and `name` and, where both are valid, matches them,
/// checking what must hold whatever the text: a valid name or filter keeps
/// its text; a valid topic name is also a valid filter that matches itself
/// (names hold no wildcards, [MQTT-4.7.1-1]); `#` matches every name not
/// starting with `$` [MQTT-4.7.2-1]. Returns whether the filter matches the
/// name, `None` when either is invalid.
pub fn check_topics(filter: &str, name: &str) -> Result<Option<bool>, Box<Disagreement>> {
    let broken = |rule| {
        Box::new(Disagreement::Topic {
            filter: filter.to_owned(),
            name: name.to_owned(),
            rule,
        })
    };
    let topic_filter = TopicFilter::new(filter).ok();
    let topic_name = TopicName::new(name).ok();
    if topic_filter.as_ref().is_some_and(|f| f.as_str() != filter) {
        return Err(broken("the filter's text changed"));
    }
    if let Some(n) = &topic_name {
        if n.as_str() != name {
            return Err(broken("the name's text changed"));
        }
        match TopicFilter::new(name) {
            Ok(itself) if matches(&itself, n) => {}
            Ok(_) => return Err(broken("the name as a filter does not match itself")),
            Err(_) => return Err(broken("a valid name is not a valid filter")),
        }
        let all = TopicFilter::new("#").map_err(|_| broken("\"#\" is refused"))?;
        if matches(&all, n) == n.is_dollar() {
            return Err(broken(
                "\"#\" matches exactly the names not starting with '$'",
            ));
        }
    }
    Ok(match (topic_filter, topic_name) {
        (Some(f), Some(n)) => Some(matches(&f, &n)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PINGREQ, then PUBLISH QoS 1 topic "a/b" id 7 payload "hi", then
    /// PUBACK 7.
    const STREAM: &[u8] = &[
        0xc0, 0x00, // PINGREQ
        0x32, 0x09, // PUBLISH, QoS 1; remaining length 9
        0x00, 0x03, b'a', b'/', b'b', // topic name "a/b"
        0x00, 0x07, // packet id 7
        b'h', b'i', // payload
        0x40, 0x02, 0x00, 0x07, // PUBACK 7
    ];

    #[test]
    fn a_stream_split_anywhere_decodes_the_same() {
        for split in 0..=STREAM.len() + 1 {
            let got = check_stream(STREAM, split).unwrap();
            assert_eq!(got.packets.len(), 3);
            assert_eq!(got.error, None);
            assert_eq!(got.leftover, 0);
        }
    }

    #[test]
    fn a_partial_packet_is_left_over() {
        let got = check_stream(&STREAM[..5], 3).unwrap();
        assert_eq!(got.packets, vec![Packet::PingReq]);
        assert_eq!(got.leftover, 3);
    }

    #[test]
    fn an_error_ends_the_stream_whatever_the_reads() {
        // PINGREQ, then a reserved packet type 0, then a valid PINGREQ that
        // must never come out.
        let bytes = [0xc0, 0x00, 0x00, 0x00, 0xc0, 0x00];
        for split in 0..=bytes.len() {
            let got = check_stream(&bytes, split).unwrap();
            assert_eq!(got.packets, vec![Packet::PingReq]);
            assert_eq!(
                got.error,
                Some(DecodeError::ReservedPacketType { nibble: 0 })
            );
        }
    }

    #[test]
    fn topics_that_keep_the_rules_pass() {
        assert_eq!(check_topics("a/+/c", "a/b/c").unwrap(), Some(true));
        assert_eq!(check_topics("#", "$SYS/x").unwrap(), Some(false));
        assert_eq!(check_topics("a/#", "b").unwrap(), Some(false));
        assert_eq!(check_topics("a/#/b", "a").unwrap(), None);
        assert_eq!(check_topics("a", "a/+").unwrap(), None);
        assert_eq!(check_topics("", "").unwrap(), None);
    }

    #[test]
    fn an_empty_stream_agrees() {
        let got = check_stream(&[], 0).unwrap();
        assert_eq!(got, decode_slices(&[]));
        assert!(got.packets.is_empty());
    }
}
