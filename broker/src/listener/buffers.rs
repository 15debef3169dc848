//! [`Conn`]: a connection's socket with its read and write buffers and its
//! counters.
//!
//! Reads take what the socket has now, in chunks that grow while reads fill
//! them; everything a turn of the connection loop produces is encoded into
//! one write buffer and goes out in one write. An idle connection holds
//! neither buffer: [`Conn::shrink`] lets go of them, handing the write
//! buffer's memory to the next connection on the thread that writes.

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tracing::error;

use super::end::End;
use super::transport::Transport;
use crate::session::connect;
use crate::stats::Counts;
use mqtt_codec::{ConnectReturnCode, Packet, PacketType, decode_packet};

thread_local! {
    /// An empty write buffer with room, handed from a connection that went
    /// idle to the next one that writes (see [`Conn::shrink`]).
    static SPARE_WBUF: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Stop reading and pulling from the outbox while this much output waits:
/// a client that does not read cannot make the broker buffer without end.
pub(crate) const HIGH_WATER: usize = 64 * 1024;
/// Read at most this much in one turn before handling it, for fairness.
const READ_BATCH: usize = 64 * 1024;
/// The read buffer's first reservation; it doubles while reads fill it.
const MIN_READ_CHUNK: u32 = 512;
const MAX_READ_CHUNK: usize = 64 * 1024;
/// How long a closing connection waits for the client to close its side.
pub(crate) const LINGER: Duration = Duration::from_secs(1);

/// The connection's buffers and counters.
pub(super) struct Conn {
    /// The socket.
    pub(super) transport: Transport,
    /// Bytes read and not yet decoded.
    pub(super) rbuf: BytesMut,
    /// Bytes encoded and not yet written.
    pub(super) wbuf: BytesMut,
    /// Counted here, added to the broker's totals once a turn.
    pub(super) counts: Counts,
    read_chunk: u32,
}

impl Conn {
    pub(super) fn new(transport: Transport) -> Self {
        Self {
            transport,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            read_chunk: MIN_READ_CHUNK,
            counts: Counts::default(),
        }
    }

    fn count_bytes_in(&mut self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.counts.bytes_in = self.counts.bytes_in.saturating_add(n);
    }

    /// Encodes a packet into the write buffer.
    pub(super) fn put(&mut self, packet: &Packet) {
        if self.wbuf.capacity() == 0 {
            self.wbuf = SPARE_WBUF.with_borrow_mut(std::mem::take);
        }
        let before = self.wbuf.len();
        match packet.encode(&mut self.wbuf) {
            Ok(()) => {
                let c = &mut self.counts;
                let n = u32::try_from(self.wbuf.len() - before).unwrap_or(u32::MAX);
                c.packets_out = c.packets_out.saturating_add(1);
                c.bytes_out = c.bytes_out.saturating_add(n);
                if matches!(packet, Packet::Publish(_)) {
                    c.publish_out = c.publish_out.saturating_add(1);
                }
            }
            // Only a packet we built wrongly fails to encode.
            Err(e) => error!(error = %e, packet = %packet.packet_type(), "cannot encode packet"),
        }
    }

    /// Reads what the socket has now, up to [`READ_BATCH`]. Returns the
    /// byte count (0 when nothing was there), or `None` at end of stream.
    pub(super) fn read_available(&mut self) -> io::Result<Option<usize>> {
        let mut total = 0;
        while total < READ_BATCH {
            let spare = self.rbuf.capacity() - self.rbuf.len();
            let chunk = self.read_chunk as usize;
            match self.transport.try_read(&mut self.rbuf, chunk) {
                Ok(0) => {
                    self.count_bytes_in(total);
                    return Ok(None);
                }
                Ok(n) => {
                    total += n;
                    if n >= spare.max(chunk) && chunk < MAX_READ_CHUNK {
                        self.read_chunk *= 2;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.count_bytes_in(total);
        Ok(Some(total))
    }

    /// Lets go of the buffers when they are empty, so an idle connection
    /// holds none. The read buffer's memory may be shared with payloads
    /// still on their way to subscribers, so it is only dropped; the write
    /// buffer's is ours alone and goes back to the thread's spare for the
    /// next connection that writes (unless it grew past [`HIGH_WATER`]).
    pub(super) fn shrink(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > 0 {
            let wbuf = std::mem::take(&mut self.wbuf);
            if wbuf.capacity() <= HIGH_WATER {
                SPARE_WBUF.with_borrow_mut(|spare| {
                    if spare.capacity() < wbuf.capacity() {
                        *spare = wbuf;
                    }
                });
            }
        }
    }

    /// Waits for the first complete packet. One that is not CONNECT is
    /// refused from its first byte ([`End::NotConnect`]), before its body is
    /// read [MQTT-3.1.0-1].
    pub(super) async fn first_packet(&mut self, max_packet_size: usize) -> Result<Packet, End> {
        loop {
            if let Some(packet) = self
                .rbuf
                .first()
                .and_then(|b| PacketType::from_nibble(b >> 4))
                .filter(|t| *t != PacketType::Connect)
            {
                return Err(End::NotConnect(packet));
            }
            if let Some(p) =
                decode_packet(&mut self.rbuf, max_packet_size).map_err(End::Malformed)?
            {
                self.counts.packets_in = self.counts.packets_in.saturating_add(1);
                return Ok(p);
            }
            // TLS may hold bytes that arrived with the handshake, so try
            // before waiting for the socket.
            match self.read_available()? {
                None => return Err(End::Closed),
                Some(0) => {
                    // Nothing came: give back the chunk the read reserved,
                    // so that a socket that never sends holds no buffer
                    // while it waits (issue 14: thousands of them).
                    if self.rbuf.is_empty() {
                        self.rbuf = BytesMut::new();
                    }
                    if self.transport.read_stalled() {
                        // A pong waits for the client to read: it is read
                        // again once it has (or the connect timeout ends it).
                        self.transport.flush(&mut self.wbuf).await?;
                    } else {
                        self.transport.readable().await?;
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Writes a CONNACK refusing the connection, then closes it
    /// [MQTT-3.2.2-5]. Session Present is 0 with any refusal [MQTT-3.2.2-4].
    pub(super) async fn refuse(mut self, code: ConnectReturnCode) {
        self.put(&connect::refusal(code));
        self.close(LINGER).await;
    }

    /// Ends the connection (see [`Transport::close`]).
    pub(super) async fn close(self, linger: Duration) {
        let Conn {
            transport,
            mut wbuf,
            ..
        } = self;
        transport.close(&mut wbuf, linger).await;
    }
}
