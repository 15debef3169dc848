//! [`Transport`]: a client's byte stream, plain TCP or TLS, optionally
//! framed as WebSocket messages, driven by readiness rather than by
//! buffered reads.
//!
//! The connection waits for the socket to become readable or writable and
//! only then reserves buffer space and moves bytes with non-blocking calls.
//! An idle connection therefore holds no read buffer at all, and all the
//! packets produced in one turn of the connection loop go out in one write.
//!
//! TLS: tokio-rustls performs the handshake; afterwards the
//! `rustls::ServerConnection` is driven directly over the same socket, so
//! TLS clients get the same readiness-driven loop.
//!
//! WebSocket: the frames ride on that same [`Stream`]; `websocket.rs`
//! turns them into the MQTT bytes the loop reads and wraps what it writes,
//! so all transports share one connection loop.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use rustls::ServerConnection;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use super::websocket::WebSocket;
use crate::stats::Transport as Kind;

/// A client's bytes: plain TCP or TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, handshake complete.
    Tls {
        /// The socket.
        tcp: TcpStream,
        /// The TLS state.
        tls: Box<ServerConnection>,
    },
}

/// The socket of one client: its `Stream`, and for a WebSocket client
/// the framing state with it, boxed: every connection's task holds a
/// `Transport`, and a WebSocket's state inline (or even a pointer to it
/// beside the stream) would size them all.
#[derive(Debug)]
pub enum Transport {
    /// MQTT straight over the stream.
    Direct(Stream),
    /// MQTT in WebSocket frames.
    WebSocket(Box<Framed>),
}

/// A WebSocket client's stream and framing.
#[derive(Debug)]
pub struct Framed {
    stream: Stream,
    ws: WebSocket,
}

/// One non-blocking attempt at a poll-style read: `WouldBlock` when it is
/// not ready.
///
/// Reads go through tokio's `AsyncRead` rather than `try_read`: after a read
/// that did not fill the space it was given, tokio marks the socket not
/// readable (the kernel's queue was emptied), so the next attempt returns
/// `WouldBlock` at once instead of making a `recvfrom` that can only fail
/// with EAGAIN. That is one system call less per wake-up, on the path every
/// delivered message takes. The no-op waker is never relied on: the
/// connection polls readiness with its own waker before it sleeps.
fn now<T>(poll: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>) -> io::Result<T> {
    match poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// `std::io` over a tokio socket's non-blocking calls, for rustls.
struct SyncIo<'a>(&'a mut TcpStream);

impl Read for SyncIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        now(|cx| Pin::new(&mut *self.0).poll_read(cx, &mut buf))?;
        Ok(buf.filled().len())
    }
}

impl Write for SyncIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) | Stream::Tls { tcp, .. } => tcp,
        }
    }

    /// Whether TLS is on.
    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls { .. })
    }

    /// Resolves when the socket may have bytes to read.
    pub async fn readable(&self) -> io::Result<()> {
        self.tcp().readable().await
    }

    /// Resolves when the socket may accept bytes.
    pub async fn writable(&self) -> io::Result<()> {
        self.tcp().writable().await
    }

    /// Ready when the socket may have bytes to read; otherwise `cx` is woken
    /// when it does. Needs no future to be kept (one task per connection
    /// polls it).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_read_ready(cx)
    }

    /// Ready when the socket may accept bytes; otherwise `cx` is woken when
    /// it does.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_write_ready(cx)
    }

    /// Whether bytes wait to go out: in `wbuf`, or encrypted inside TLS.
    pub fn wants_write(&self, wbuf: &BytesMut) -> bool {
        match self {
            Stream::Plain(_) => !wbuf.is_empty(),
            Stream::Tls { tls, .. } => !wbuf.is_empty() || tls.wants_write(),
        }
    }

    /// Appends the bytes available now to `buf`, reserving `chunk` bytes of
    /// room first. Returns the count, 0 at end of stream, or `WouldBlock`
    /// when nothing is available.
    pub fn try_read(&mut self, buf: &mut BytesMut, chunk: usize) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => {
                buf.reserve(chunk);
                now(|cx| tokio_util::io::poll_read_buf(Pin::new(tcp), cx, buf))
            }
            Stream::Tls { tcp, tls } => loop {
                let state = tls
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let available = state.plaintext_bytes_to_read();
                if available > 0 {
                    let start = buf.len();
                    buf.resize(start + available, 0);
                    let n = tls.reader().read(&mut buf[start..])?;
                    buf.truncate(start + n);
                    return Ok(n);
                }
                if state.peer_has_closed() {
                    return Ok(0);
                }
                if tls.read_tls(&mut SyncIo(tcp))? == 0 {
                    return Ok(0);
                }
            },
        }
    }

    /// Writes as much of `wbuf` as the socket takes now, removing what was
    /// written. Returns `Ok` when it stopped because the socket is full or
    /// everything is out; the caller checks [`wants_write`](Self::wants_write).
    pub fn try_write(&mut self, wbuf: &mut BytesMut) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => {
                while !wbuf.is_empty() {
                    match tcp.try_write(wbuf) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => wbuf.advance(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Stream::Tls { tcp, tls } => loop {
                if !wbuf.is_empty() {
                    let n = tls.writer().write(wbuf)?;
                    wbuf.advance(n);
                }
                if !tls.wants_write() {
                    return Ok(());
                }
                match tls.write_tls(&mut SyncIo(tcp)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                }
            },
        }
    }

    /// Writes everything pending, waiting for the socket as needed.
    pub async fn flush(&mut self, wbuf: &mut BytesMut) -> io::Result<()> {
        loop {
            self.try_write(wbuf)?;
            if !self.wants_write(wbuf) {
                return Ok(());
            }
            self.writable().await?;
        }
    }

    /// Closes politely: writes what is pending (TLS: and a close_notify),
    /// shuts down our direction, then reads and discards until the client
    /// closes too or `linger` passes. Closing with unread bytes would make
    /// the kernel send a reset, which can destroy a CONNACK or the last
    /// packets before the client reads them.
    pub async fn close(mut self, wbuf: &mut BytesMut, linger: std::time::Duration) {
        let _ = tokio::time::timeout(linger, async {
            if let Stream::Tls { tls, .. } = &mut self {
                tls.send_close_notify();
            }
            if self.flush(wbuf).await.is_err() {
                return;
            }
            let tcp = match &mut self {
                Stream::Plain(tcp) | Stream::Tls { tcp, .. } => tcp,
            };
            let _ = tokio::io::AsyncWriteExt::shutdown(tcp).await;
            let mut sink = [0u8; 1024];
            loop {
                if tcp.readable().await.is_err() {
                    return;
                }
                match tcp.try_read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        })
        .await;
    }

    /// The TLS client's certificate chain, leaf first, if it sent one.
    pub fn peer_certificates(&self) -> Option<&[rustls_pki_types::CertificateDer<'static>]> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls { tls, .. } => tls.peer_certificates(),
        }
    }
}

/// Non-blocking `std::io` over the stream, for the WebSocket framing:
/// `WouldBlock` when the socket has nothing (or takes nothing) now. Bytes a
/// TLS write could not send yet stay inside rustls, and
/// [`Stream::wants_write`] reports them.
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => SyncIo(tcp).read(buf),
            Stream::Tls { tcp, tls } => loop {
                let state = tls
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if state.plaintext_bytes_to_read() > 0 {
                    return tls.reader().read(buf);
                }
                if state.peer_has_closed() {
                    return Ok(0);
                }
                if tls.read_tls(&mut SyncIo(tcp))? == 0 {
                    return Ok(0);
                }
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.try_write(buf),
            // rustls takes plaintext while its buffer of records has room
            // (and answers 0 when it has none, which a caller would take
            // for a closed stream): send records first, and report a full
            // buffer as `WouldBlock`.
            // Two tries: the second after records went out.
            Stream::Tls { tcp, tls } => {
                for _ in 0..2 {
                    let n = tls.writer().write(buf)?;
                    while tls.wants_write() {
                        match tls.write_tls(&mut SyncIo(tcp)) {
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                    if n > 0 || buf.is_empty() {
                        return Ok(n);
                    }
                }
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Stream::Tls { tcp, tls } = self {
            while tls.wants_write() {
                tls.write_tls(&mut SyncIo(tcp))?;
            }
        }
        Ok(())
    }
}

impl Transport {
    /// A client speaking MQTT straight over `stream`.
    pub(super) fn new(stream: Stream) -> Self {
        Transport::Direct(stream)
    }

    /// A client speaking MQTT in WebSocket frames over `stream`.
    pub(super) fn websocket(stream: Stream, ws: WebSocket) -> Self {
        Transport::WebSocket(Box::new(Framed { stream, ws }))
    }

    /// The plain TCP socket, for a client that parks (see `park.rs`);
    /// the transport itself back when it is TLS or WebSocket, whose state
    /// cannot be parked.
    pub(super) fn into_plain(self) -> Result<TcpStream, Self> {
        match self {
            Transport::Direct(Stream::Plain(tcp)) => Ok(tcp),
            other => Err(other),
        }
    }

    /// Whether this is plain TCP, the only transport that parks.
    pub(super) fn is_plain(&self) -> bool {
        matches!(self, Transport::Direct(Stream::Plain(_)))
    }

    fn stream(&self) -> &Stream {
        match self {
            Transport::Direct(stream) => stream,
            Transport::WebSocket(f) => &f.stream,
        }
    }

    /// Sets the largest WebSocket message accepted (no effect on the
    /// other transports, whose packets the decoder bounds).
    pub(super) fn set_max_message(&mut self, max_message: usize) {
        if let Transport::WebSocket(f) = self {
            f.ws.set_max_message(max_message);
        }
    }

    /// Which kind of listener this came from.
    pub fn kind(&self) -> Kind {
        match self {
            Transport::Direct(s) if s.is_tls() => Kind::Tls,
            Transport::Direct(_) => Kind::Plain,
            Transport::WebSocket(f) if f.stream.is_tls() => Kind::WebSocketsTls,
            Transport::WebSocket(_) => Kind::WebSockets,
        }
    }

    /// Whether the WebSocket framing holds bytes the socket's readiness
    /// does not show (a read stopped at its limit with frames left).
    fn buffered(&self) -> bool {
        matches!(self, Transport::WebSocket(f) if f.ws.buffered())
    }

    /// Whether reading waits for the client to take a pong: the socket's
    /// readiness to read does not count until [`try_write`](Self::try_write)
    /// got it out.
    pub fn read_stalled(&self) -> bool {
        matches!(self, Transport::WebSocket(f) if f.ws.stalled())
    }

    /// Resolves when the socket may have bytes to read. With frames
    /// waiting inside the framing, after one yield: a client sending only
    /// pings gives the reads nothing to hand back, and other tasks (the
    /// connect timeout's among them) must still run.
    pub async fn readable(&self) -> io::Result<()> {
        if self.buffered() {
            tokio::task::yield_now().await;
            return Ok(());
        }
        self.stream().readable().await
    }

    /// Resolves when the socket may accept bytes.
    pub async fn writable(&self) -> io::Result<()> {
        self.stream().writable().await
    }

    /// Ready when the socket may have bytes to read; otherwise `cx` is woken
    /// when it does.
    /// While [`read_stalled`](Self::read_stalled), never: the write
    /// readiness the loop waits on meanwhile ends the stall.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.read_stalled() {
            return Poll::Pending;
        }
        if self.buffered() {
            return Poll::Ready(Ok(()));
        }
        self.stream().poll_read_ready(cx)
    }

    /// Ready when the socket may accept bytes; otherwise `cx` is woken when
    /// it does.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_write_ready(cx)
    }

    /// Whether bytes wait to go out: in `wbuf`, in a WebSocket frame not
    /// yet written, or encrypted inside TLS.
    pub fn wants_write(&self, wbuf: &BytesMut) -> bool {
        match self {
            Transport::Direct(s) => s.wants_write(wbuf),
            Transport::WebSocket(f) => f.stream.wants_write(wbuf) || f.ws.wants_write(),
        }
    }

    /// Appends the MQTT bytes available now to `buf`, reserving `chunk`
    /// bytes of room first. Returns the count, 0 at end of stream, or
    /// `WouldBlock` when nothing is available.
    pub fn try_read(&mut self, buf: &mut BytesMut, chunk: usize) -> io::Result<usize> {
        match self {
            Transport::Direct(s) => s.try_read(buf, chunk),
            Transport::WebSocket(f) => f.ws.try_read(&mut f.stream, buf, chunk),
        }
    }

    /// Writes as much of `wbuf` as the socket takes now, removing what was
    /// written (a WebSocket client's bytes go into one binary frame).
    pub fn try_write(&mut self, wbuf: &mut BytesMut) -> io::Result<()> {
        match self {
            Transport::Direct(s) => s.try_write(wbuf),
            Transport::WebSocket(f) => f.ws.try_write(&mut f.stream, wbuf),
        }
    }

    /// Writes everything pending, waiting for the socket as needed.
    pub async fn flush(&mut self, wbuf: &mut BytesMut) -> io::Result<()> {
        loop {
            self.try_write(wbuf)?;
            if !self.wants_write(wbuf) {
                return Ok(());
            }
            self.writable().await?;
        }
    }

    /// Closes politely (see `Stream::close`); a WebSocket client first
    /// gets what is pending and a Close frame.
    pub async fn close(self, wbuf: &mut BytesMut, linger: std::time::Duration) {
        let stream = match self {
            Transport::Direct(stream) => stream,
            Transport::WebSocket(f) => {
                let Framed { mut stream, mut ws } = *f;
                let _ = tokio::time::timeout(linger, async {
                    ws.try_write(&mut stream, wbuf)?;
                    ws.close(&mut stream);
                    while ws.wants_write() || stream.wants_write(wbuf) {
                        stream.writable().await?;
                        ws.try_write(&mut stream, wbuf)?;
                    }
                    io::Result::Ok(())
                })
                .await;
                stream
            }
        };
        stream.close(wbuf, linger).await;
    }

    /// The TLS client's certificate chain, leaf first, if it sent one.
    pub fn peer_certificates(&self) -> Option<&[rustls_pki_types::CertificateDer<'static>]> {
        self.stream().peer_certificates()
    }
}
