//! The header every benchmark message carries at the front of its payload:
//! which run and publisher sent it, its sequence number and when it was sent.
//!
//! Subscribers read it to count lost, duplicated and out-of-order messages per
//! publisher and to measure end-to-end latency. Publishers and subscribers
//! live in the same process, so the timestamp is nanoseconds since the run's
//! own monotonic epoch: no clock synchronisation is involved.

/// Bytes taken by the header; the payload may not be smaller.
pub const HEADER_LEN: usize = 24;

/// The fields of a message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Identifies this run, so messages left over from another run (a
    /// retained message, a queued session) are not counted as ours.
    pub run_id: u32,
    /// Index of the publisher among this run's publishers.
    pub publisher: u32,
    /// Per-publisher sequence number, from 0.
    pub seq: u64,
    /// Nanoseconds since the run's epoch when the message was written.
    pub sent_at_ns: u64,
}

impl Header {
    /// Writes the header over the first [`HEADER_LEN`] bytes of `payload`.
    /// The caller guarantees the room: payload sizes are checked once when
    /// the run is set up.
    pub fn write(&self, payload: &mut [u8]) {
        payload[0..4].copy_from_slice(&self.run_id.to_be_bytes());
        payload[4..8].copy_from_slice(&self.publisher.to_be_bytes());
        payload[8..16].copy_from_slice(&self.seq.to_be_bytes());
        payload[16..24].copy_from_slice(&self.sent_at_ns.to_be_bytes());
    }

    /// Reads a header from the front of a payload, or `None` if the payload
    /// is too short to hold one (a message that is not from a benchmark).
    pub fn read(payload: &[u8]) -> Option<Self> {
        let h = payload.get(..HEADER_LEN)?;
        let u32_at = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_be_bytes(b)
        };
        Some(Self {
            run_id: u32_at(0),
            publisher: u32_at(4),
            seq: u64_at(8),
            sent_at_ns: u64_at(16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            run_id: 0xdead_beef,
            publisher: 7,
            seq: 1 << 40,
            sent_at_ns: 123_456_789,
        };
        let mut payload = vec![0u8; 64];
        h.write(&mut payload);
        assert_eq!(Header::read(&payload), Some(h));
    }

    #[test]
    fn short_payload_has_no_header() {
        assert_eq!(Header::read(&[0u8; HEADER_LEN - 1]), None);
    }
}
