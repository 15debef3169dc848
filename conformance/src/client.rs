//! The raw client: one network connection (TCP or TLS, or WebSocket over
//! either for a target whose main listener is one) whose writer sends
//! exactly the bytes it is given (over WebSocket, one binary frame per
//! write), and whose reader task timestamps every
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

use mqtt_codec::{Packet, decode_slice};

use crate::target::{Carrier, Target, WebSocketTarget};
use crate::websocket::{self, HandshakeError};

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
        /// The TLS layer ended it: the server refused the handshake or sent
        /// a fatal alert, so no MQTT packet got through.
        by_tls: bool,
    },
}

/// How to reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The plain listener.
    Plain,
    /// The TLS listener.
    Tls {
        /// Present the run's client certificate, if it has one.
        client_cert: bool,
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
    /// The WebSocket handshake failed (an HTTP status other than 101, no
    /// `mqtt` subprotocol); the message says which.
    #[error(transparent)]
    WebSocket(#[from] HandshakeError),
    /// No TLS listener was given for a scenario that needs one.
    #[error("the scenario connects with TLS but no --tls-port was given")]
    NoTls,
    /// Timed out.
    #[error("connecting to {addr}: no answer within {}", humantime::format_duration(*timeout))]
    Timeout {
        /// The address.
        addr: String,
        /// The bound.
        timeout: Duration,
    },
}

/// The read half of a connection, whatever carries it.
type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// One live connection.
pub struct Connection {
    writer: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    rx: mpsc::UnboundedReceiver<Arrival>,
    /// `None` for a connection the server refused during the TLS handshake.
    reader: Option<JoinHandle<()>>,
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
    ///
    /// A TLS handshake the server refuses (a fatal alert, or the server
    /// hanging up mid-handshake) is not an error: the connection is returned
    /// already closed, with a close event saying so, because refusing is
    /// what some scenarios expect. A handshake that fails on this side (the
    /// server's certificate does not verify) is an error of the run's set-up.
    pub async fn open(
        target: &Target,
        transport: Transport,
        epoch: Instant,
        span: tracing::Span,
    ) -> Result<Self, ConnectError> {
        let port = match transport {
            Transport::Plain => target.port,
            Transport::Tls { .. } => target.tls.as_ref().ok_or(ConnectError::NoTls)?.port,
        };
        let addr = format!("{}:{}", target.host, port);
        let connect_timeout = target.scaled(target.connect_timeout);
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| ConnectError::Timeout {
                addr: addr.clone(),
                timeout: connect_timeout,
            })?
            .map_err(|source| ConnectError::Tcp {
                addr: addr.clone(),
                source,
            })?;
        // Scripts pipeline small packets on purpose; send each write at once.
        let _ = tcp.set_nodelay(true);
        if let (Transport::Plain, Carrier::WebSocket(ws)) = (transport, &target.carrier) {
            return Self::open_websocket(target, ws, tcp, epoch, span).await;
        }
        match (transport, &target.tls) {
            (Transport::Tls { client_cert }, Some(t)) => {
                let config = if client_cert {
                    t.config.clone()
                } else {
                    t.config_without_cert.clone()
                };
                let connector = tokio_rustls::TlsConnector::from(config);
                let handshake = tokio::time::timeout(
                    connect_timeout,
                    connector.connect(t.server_name.clone(), tcp),
                )
                .await
                .map_err(|_| ConnectError::Timeout {
                    addr: addr.clone(),
                    timeout: connect_timeout,
                })?;
                match handshake {
                    Ok(stream) => Ok(Self::start(stream, epoch, span)),
                    Err(e) if refused_by_server(&e) => Ok(Self::refused(
                        epoch,
                        format!("refused during the TLS handshake: {e}"),
                    )),
                    Err(source) => Err(ConnectError::Tls { addr, source }),
                }
            }
            _ => Ok(Self::start(tcp, epoch, span)),
        }
    }

    /// The WebSocket half of [`Connection::open`]: TLS first for `wss`, then
    /// the upgrade, both within the connect timeout. A refusal at either
    /// layer is an error of the run's set-up (a wrong path or port), not a
    /// scenario's observation.
    async fn open_websocket(
        target: &Target,
        ws: &WebSocketTarget,
        tcp: TcpStream,
        epoch: Instant,
        span: tracing::Span,
    ) -> Result<Self, ConnectError> {
        let url = ws.url(&target.host, target.port);
        let timeout = target.scaled(target.connect_timeout);
        let opening = async {
            match &ws.tls {
                None => {
                    let (read, write) = websocket::handshake(tcp, &url).await?;
                    Ok::<_, ConnectError>((Box::new(read) as Reader, write))
                }
                Some((config, name)) => {
                    let tls = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|source| ConnectError::Tls {
                            addr: url.clone(),
                            source,
                        })?;
                    let (read, write) = websocket::handshake(tls, &url).await?;
                    Ok((Box::new(read) as Reader, write))
                }
            }
        };
        match tokio::time::timeout(timeout, opening).await {
            Err(_) => Err(ConnectError::Timeout { addr: url, timeout }),
            Ok(Err(e)) => Err(e),
            Ok(Ok((read, write))) => Ok(Self::from_halves(read, write, epoch, span)),
        }
    }

    /// A connection the server refused during the TLS handshake: nothing can
    /// be written, and its only arrival is the close.
    fn refused(epoch: Instant, reason: String) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(Arrival {
            at: epoch.elapsed(),
            event: Event::Closed {
                reason,
                by_tls: true,
            },
        });
        Self {
            writer: None,
            rx,
            reader: None,
        }
    }

    fn start<S>(stream: S, epoch: Instant, span: tracing::Span) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Self::from_halves(read, Box::new(write), epoch, span)
    }

    fn from_halves<R>(
        read: R,
        write: Box<dyn AsyncWrite + Send + Unpin>,
        epoch: Instant,
        span: tracing::Span,
    ) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(read, tx, epoch).instrument(span));
        Self {
            writer: Some(write),
            rx,
            reader: Some(reader),
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
        if let Some(r) = &self.reader {
            r.abort();
        }
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
            Ok(0) => Some(("closed by peer".to_owned(), false)),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                Some(("reset by peer".to_owned(), false))
            }
            Err(e) => match tls_alert(&e) {
                Some(alert) => Some((
                    format!("closed by a TLS alert from the server: {alert}"),
                    true,
                )),
                None => Some((format!("read error: {e}"), false)),
            },
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
        if let Some((reason, by_tls)) = reason {
            if !buf.is_empty() {
                send(Event::Garbage {
                    bytes: buf.split().freeze(),
                    error: "incomplete packet at close".into(),
                });
            }
            send(Event::Closed { reason, by_tls });
            return;
        }
    }
}

/// The fatal alert the server sent, when `e` is one.
fn tls_alert(e: &std::io::Error) -> Option<String> {
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(credentials::describe::alert_name(*alert)),
        _ => None,
    }
}

/// Whether a failed TLS handshake was the server's doing: a fatal alert, or
/// the server hanging up before the handshake finished. Anything else (this
/// side not trusting the server's certificate) is the run's set-up.
fn refused_by_server(e: &std::io::Error) -> bool {
    tls_alert(e).is_some()
        || matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        )
}
