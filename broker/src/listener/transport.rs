//! [`Transport`]: a client's byte stream, plain TCP or TLS, driven by
//! readiness rather than by buffered reads.
//!
//! The connection waits for the socket to become readable or writable and
//! only then reserves buffer space and moves bytes with non-blocking calls.
//! An idle connection therefore holds no read buffer at all, and all the
//! packets produced in one turn of the connection loop go out in one write.
//!
//! TLS: tokio-rustls performs the handshake; afterwards the
//! `rustls::ServerConnection` is driven directly over the same socket, so
//! TLS clients get the same readiness-driven loop.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use rustls::ServerConnection;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use crate::stats::Transport as Kind;

/// The socket of one client.
#[derive(Debug)]
pub enum Transport {
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

impl Transport {
    /// Which listener this came from.
    pub fn kind(&self) -> Kind {
        match self {
            Transport::Plain(_) => Kind::Plain,
            Transport::Tls { .. } => Kind::Tls,
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) | Transport::Tls { tcp, .. } => tcp,
        }
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
            Transport::Plain(_) => !wbuf.is_empty(),
            Transport::Tls { tls, .. } => !wbuf.is_empty() || tls.wants_write(),
        }
    }

    /// Appends the bytes available now to `buf`, reserving `chunk` bytes of
    /// room first. Returns the count, 0 at end of stream, or `WouldBlock`
    /// when nothing is available.
    pub fn try_read(&mut self, buf: &mut BytesMut, chunk: usize) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => {
                buf.reserve(chunk);
                now(|cx| tokio_util::io::poll_read_buf(Pin::new(tcp), cx, buf))
            }
            Transport::Tls { tcp, tls } => loop {
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
            Transport::Plain(tcp) => {
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
            Transport::Tls { tcp, tls } => loop {
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
            if let Transport::Tls { tls, .. } = &mut self {
                tls.send_close_notify();
            }
            if self.flush(wbuf).await.is_err() {
                return;
            }
            let tcp = match &mut self {
                Transport::Plain(tcp) | Transport::Tls { tcp, .. } => tcp,
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
            Transport::Plain(_) => None,
            Transport::Tls { tls, .. } => tls.peer_certificates(),
        }
    }
}
