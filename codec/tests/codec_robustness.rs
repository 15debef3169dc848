//! The decoder against hostile and fragmented input: no bytes make it panic,
//! whatever it accepts it accepts only in canonical form, and a valid stream
//! cut at any point (or fed a byte at a time) yields the same packets as the
//! stream fed whole, each as soon as its last byte is in.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod codec_common;

use bytes::BytesMut;
use codec_common::*;
use mqtt_codec::{DecodeError, Packet, decode_packet, decode_slice, parse_fixed_header};
use proptest::prelude::*;

/// Decodes `bytes` with every entry point and checks they agree. Every packet
/// accepted must re-encode to exactly the bytes it was decoded from: the
/// decoder accepts one encoding per packet and no other. Returns the packets
/// and the error, if any.
fn decode_everything(
    bytes: &[u8],
    max: usize,
) -> Result<(Vec<Packet>, Option<DecodeError>), TestCaseError> {
    let _ = parse_fixed_header(bytes);

    let mut buf = BytesMut::from(bytes);
    let mut packets = Vec::new();
    let error = loop {
        let before = buf.clone();
        match decode_packet(&mut buf, max) {
            Ok(Some(packet)) => {
                let consumed = before.len() - buf.len();
                prop_assert!(consumed >= 2, "a packet takes at least two bytes");
                prop_assert!(consumed <= max, "a packet over the limit was accepted");
                let encoded = packet.to_bytes().map_err(|e| {
                    TestCaseError::fail(format!("decoded {packet:?} does not encode: {e}"))
                })?;
                prop_assert_eq!(&encoded[..], &before[..consumed]);
                packets.push(packet);
            }
            Ok(None) => {
                prop_assert_eq!(&buf, &before, "waiting for more must not consume");
                break None;
            }
            Err(e) => break Some(e),
        }
    };

    // decode_slice (no limit) must agree with decode_packet without a limit.
    if max == usize::MAX {
        let mut rest = bytes;
        let mut slice_packets = Vec::new();
        let slice_error = loop {
            match decode_slice(rest) {
                Ok(Some((packet, used))) => {
                    slice_packets.push(packet);
                    rest = &rest[used..];
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        prop_assert_eq!(&slice_packets, &packets);
        prop_assert_eq!(&slice_error, &error);
    }

    // Every error names its rule in a non-empty message.
    if let Some(e) = &error {
        prop_assert!(!e.to_string().is_empty());
    }
    Ok((packets, error))
}

/// A first byte with a valid type and valid flags for it.
fn valid_first_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0x10u8),
        Just(0x20),
        // PUBLISH: every flag combination except QoS 3 and DUP at QoS 0.
        prop::sample::select(vec![
            0x30u8, 0x31, 0x32, 0x33, 0x34, 0x35, 0x3a, 0x3b, 0x3c, 0x3d
        ]),
        Just(0x40),
        Just(0x50),
        Just(0x62),
        Just(0x70),
        Just(0x82),
        Just(0x90),
        Just(0xa2),
        Just(0xb0),
        Just(0xc0),
        Just(0xd0),
        Just(0xe0),
    ]
}

fn max_packet_size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(usize::MAX), 0usize..700]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        max in max_packet_size(),
    ) {
        decode_everything(&bytes, max)?;
    }

    /// Bodies behind a valid header reach the per-type parsers, which random
    /// first bytes rarely do.
    #[test]
    fn arbitrary_body_after_a_valid_fixed_header_never_panics(
        first in valid_first_byte(),
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = vec![first];
        let mut len = body.len();
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            bytes.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        bytes.extend_from_slice(&body);
        decode_everything(&bytes, usize::MAX)?;
    }

    /// A valid first byte followed by anything at all, so the Remaining
    /// Length itself is arbitrary (too long, non-minimal, lying).
    #[test]
    fn arbitrary_bytes_after_a_valid_first_byte_never_panic(
        first in valid_first_byte(),
        rest in prop::collection::vec(any::<u8>(), 0..400),
        max in max_packet_size(),
    ) {
        let mut bytes = vec![first];
        bytes.extend_from_slice(&rest);
        decode_everything(&bytes, max)?;
    }

    /// Valid packets with a few bytes overwritten or cut off: close to valid,
    /// so the deepest checks of every parser are reached.
    #[test]
    fn mutated_valid_packets_never_panic(
        packet in packet(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = packet.to_bytes().unwrap().to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        decode_everything(&bytes, usize::MAX)?;
    }

    /// A stream of packets split in two at every offset decodes to the same
    /// packets as the whole stream, through `decode_packet`; after the first part
    /// exactly the packets it completes have come out.
    #[test]
    fn stream_split_at_every_point_decodes_the_same(
        packets in prop::collection::vec(packet_with(48), 1..6),
    ) {
        let stream = encode_all(&packets);
        let ends: Vec<usize> = packets
            .iter()
            .scan(0, |end, p| {
                *end += p.encoded_len().unwrap();
                Some(*end)
            })
            .collect();

        let (whole, error) = decode_everything(&stream, usize::MAX)?;
        prop_assert_eq!(&whole, &packets);
        prop_assert_eq!(error, None);

        for split in 0..=stream.len() {
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            buf.extend_from_slice(&stream[..split]);
            while let Some(p) = decode_packet(&mut buf, usize::MAX).unwrap() {
                out.push(p);
            }
            let complete = ends.iter().filter(|&&end| end <= split).count();
            prop_assert_eq!(out.len(), complete, "after {} of {} bytes", split, stream.len());
            buf.extend_from_slice(&stream[split..]);
            while let Some(p) = decode_packet(&mut buf, usize::MAX).unwrap() {
                out.push(p);
            }
            prop_assert_eq!(&out, &packets, "split at {}", split);
            prop_assert!(buf.is_empty());
        }
    }

    /// The same stream fed one byte at a time through `decode_packet`: each
    /// packet comes out on its last byte, not before, not after.
    #[test]
    fn stream_fed_byte_by_byte_decodes_the_same(
        packets in prop::collection::vec(packet_with(200), 1..6),
        max_slack in 0usize..3,
    ) {
        let stream = encode_all(&packets);
        let largest = packets.iter().map(|p| p.encoded_len().unwrap()).max().unwrap();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for (i, byte) in stream.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            while let Some(p) = decode_packet(&mut buf, largest + max_slack).unwrap() {
                out.push(p);
                ends.push(i + 1);
            }
        }
        let expected_ends: Vec<usize> = packets
            .iter()
            .scan(0, |end, p| {
                *end += p.encoded_len().unwrap();
                Some(*end)
            })
            .collect();
        prop_assert_eq!(&out, &packets);
        prop_assert_eq!(ends, expected_ends);
        prop_assert!(buf.is_empty());
    }

    /// Random chunk sizes, as a socket delivers them.
    #[test]
    fn stream_in_random_chunks_decodes_the_same(
        packets in prop::collection::vec(packet_with(300), 1..8),
        chunks in prop::collection::vec(1usize..64, 1..200),
    ) {
        let stream = encode_all(&packets);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut at = 0;
        let mut sizes = chunks.iter().cycle();
        while at < stream.len() {
            let n = (*sizes.next().unwrap()).min(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + n]);
            at += n;
            while let Some(p) = decode_packet(&mut buf, 1 << 16).unwrap() {
                out.push(p);
            }
        }
        prop_assert_eq!(&out, &packets);
        prop_assert!(buf.is_empty());
    }
}

#[test]
fn oversized_packet_is_refused_with_only_its_header_buffered() {
    // PUBLISH announcing 256 MB − 1 with five body bytes present: refused,
    // and the buffer was not grown to hold the announced body.
    let mut buf = BytesMut::with_capacity(16);
    buf.extend_from_slice(&[0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, b't', 1, 2]);
    assert_eq!(
        decode_packet(&mut buf, 1 << 20),
        Err(DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: 1 << 20
        })
    );
    assert!(buf.capacity() < 1 << 16, "capacity {}", buf.capacity());
}

#[test]
fn a_large_announced_body_under_the_limit_is_not_reserved_up_front() {
    // 2 MB announced and allowed: we wait for it, but reserve nothing beyond
    // what arrives, so a lying length costs no memory.
    let mut buf = BytesMut::with_capacity(16);
    buf.extend_from_slice(&[0x30, 0x80, 0x80, 0x80, 0x01, 0, 1, b't']);
    assert_eq!(decode_packet(&mut buf, usize::MAX), Ok(None));
    assert!(buf.capacity() < 1 << 16, "capacity {}", buf.capacity());
}

#[test]
fn fixed_size_packets_announcing_more_are_refused_from_the_header() {
    // A PINGREQ announcing 200 MB is refused on its header, not awaited.
    let mut buf = BytesMut::from(&[0xc0, 0x80, 0x80, 0x80, 0x64][..]);
    assert_eq!(
        decode_packet(&mut buf, usize::MAX),
        Err(DecodeError::UnexpectedRemainingLength {
            packet: mqtt_codec::PacketType::PingReq,
            length: 209_715_200,
            expected: 0
        })
    );
}
