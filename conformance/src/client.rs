//! The raw client: one network connection (TCP or TLS) whose writer sends
//! exactly the bytes it is given, and whose reader task timestamps every
//! packet that arrives — or the raw bytes of anything that fails to decode,
//! and the moment the connection closes — so a report can say what arrived
//! and when.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use broker::codec::{Packet, decode_slice};

use crate::target::Target;

/// Largest packet the reader accepts; brokers under test send small ones.
const READ_LIMIT: usize = 1024 * 1024;

/// What the reader saw.
#[derive(Debug, Clone)]
pub enum Event {
    /// A packet that decoded, with its bytes.
    Packet {
        /// The packet.
        packet: Packet,
        /// Its bytes on the wire.
        bytes: Bytes,
    },
    /// Bytes that are not a valid packet. After this the stream cannot be
    /// resynchronised; later bytes arrive as more `Garbage`.
    Garbage {
        /// The bytes.
        bytes: Bytes,
        /// Why they do not decode.
        error: String,
    },
    /// The connection ended.
    Closed {
        /// How: "closed by peer", "reset by peer", ...
        reason: String,
    },
}

/// An event with the time it arrived.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When, since the scenario started.
    pub at: Duration,
    /// What.
    pub event: Event,
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed.
    #[error("connecting to {addr}: {source}")]
    Tcp {
        /// The address.
        addr: String,
        /// What failed.
        source: std::io::Error,
    },
    /// TLS handshake failed.
    #[error("TLS handshake with {addr}: {source}")]
    Tls {
        /// The address.
        addr: String,
        /// What failed.
        source: std::io::Error,
    },
    /// No TLS listener was given for a scenario that needs one.
    #[error("the scenario connects with TLS but no --tls-port was given")]
    NoTls,
    /// Timed out.
    #[error("connecting to {addr}: no answer within {timeout:?}")]
    Timeout {
        /// The address.
        addr: String,
        /// The bound.
        timeout: Duration,
    },
}

/// One live connection.
pub struct Connection {
    writer: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    rx: mpsc::UnboundedReceiver<Arrival>,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("writing", &self.writer.is_some())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens a connection to the target's plain or TLS listener. `epoch` is the
    /// scenario's start, against which arrivals are timed.
    pub async fn open(
        target: &Target,
        tls: bool,
        epoch: Instant,
        span: tracing::Span,
    ) -> Result<Self, ConnectError> {
        let port = if tls {
            target.tls.as_ref().ok_or(ConnectError::NoTls)?.port
        } else {
            target.port
        };
        let addr = format!("{}:{}", target.host, port);
        let tcp = tokio::time::timeout(target.connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| ConnectError::Timeout {
                addr: addr.clone(),
                timeout: target.connect_timeout,
            })?
            .map_err(|source| ConnectError::Tcp {
                addr: addr.clone(),
                source,
            })?;
        // Scripts pipeline small packets on purpose; send each write at once.
        let _ = tcp.set_nodelay(true);
        match (tls, &target.tls) {
            (true, Some(t)) => {
                let connector = tokio_rustls::TlsConnector::from(t.config.clone());
                let stream = tokio::time::timeout(
                    target.connect_timeout,
                    connector.connect(t.server_name.clone(), tcp),
                )
                .await
                .map_err(|_| ConnectError::Timeout {
                    addr: addr.clone(),
                    timeout: target.connect_timeout,
                })?
                .map_err(|source| ConnectError::Tls { addr, source })?;
                Ok(Self::start(stream, epoch, span))
            }
            _ => Ok(Self::start(tcp, epoch, span)),
        }
    }

    fn start<S>(stream: S, epoch: Instant, span: tracing::Span) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(read, tx, epoch).instrument(span));
        Self {
            writer: Some(Box::new(write)),
            rx,
            reader,
        }
    }

    /// Writes `bytes`. An error means the peer has gone; the caller notes it
    /// and lets the next expectation see the close.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "writer already shut down",
            ));
        };
        w.write_all(bytes).await?;
        w.flush().await
    }

    /// Shuts the sending side down cleanly (TLS close_notify, then FIN). The
    /// reader keeps running until the peer closes.
    pub async fn shutdown(&mut self) {
        if let Some(mut w) = self.writer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
        }
    }

    /// The next arrival, waiting at most until `deadline`; `None` on timeout
    /// or once the reader has finished and everything was taken.
    pub async fn next(&mut self, deadline: Instant) -> Option<Arrival> {
        tokio::time::timeout_at(deadline, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// An arrival already received, without waiting.
    pub fn try_next(&mut self) -> Option<Arrival> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Dropping both halves closes the socket without a DISCONNECT.
        self.reader.abort();
    }
}

async fn read_loop<R>(mut read: R, tx: mpsc::UnboundedSender<Arrival>, epoch: Instant)
where
    R: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(4096);
    let mut broken = false;
    let send = |event: Event| {
        let _ = tx.send(Arrival {
            at: epoch.elapsed(),
            event,
        });
    };
    loop {
        let reason = match read.read_buf(&mut buf).await {
            Ok(0) => Some("closed by peer".to_owned()),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                Some("reset by peer".to_owned())
            }
            Err(e) => Some(format!("read error: {e}")),
        };
        // Decode whatever is complete before reporting a close, so packets
        // sent just before it are seen in order.
        while !buf.is_empty() {
            if broken {
                send(Event::Garbage {
                    bytes: buf.split().freeze(),
                    error: "after an undecodable packet".into(),
                });
                break;
            }
            match decode_slice(&buf) {
                Ok(Some((packet, len))) => {
                    let bytes = buf.split_to(len).freeze();
                    tracing::debug!(packet = ?packet.packet_type(), "received");
                    send(Event::Packet { packet, bytes });
                }
                Ok(None) if buf.len() > READ_LIMIT => {
                    broken = true;
                    send(Event::Garbage {
                        bytes: buf.split().freeze(),
                        error: format!("packet larger than {READ_LIMIT} bytes"),
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    broken = true;
                    send(Event::Garbage {
                        bytes: buf.split().freeze(),
                        error: e.to_string(),
                    });
                }
            }
        }
        if let Some(reason) = reason {
            if !buf.is_empty() {
                send(Event::Garbage {
                    bytes: buf.split().freeze(),
                    error: "incomplete packet at close".into(),
                });
            }
            send(Event::Closed { reason });
            return;
        }
    }
}
