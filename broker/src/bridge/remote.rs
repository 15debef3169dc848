//! [`Remote`]: the bridge's connection to the remote broker, plain or TLS,
//! as packets in and out.
//!
//! The bridge speaks MQTT 3.1.1 as a client here with the workspace's codec
//! (`mqtt_codec`) and, for TLS, the one client configuration builder of
//! `credentials`. This module opens the connection and moves packets; what
//! they mean is the bridge loop's ([`super::run`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::{Address, BridgeConfig};
use crate::listener::buffers::HIGH_WATER;
use credentials::tls::{ClientIdentity, ServerVerification};
use mqtt_codec::{ConnAck, Connect, DecodeError, Packet};

/// Why the remote connection failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// TCP connect, TLS handshake, read or write failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The remote sent bytes that are no MQTT packet.
    #[error("malformed packet from the remote: {0}")]
    Malformed(#[from] DecodeError),
    /// The remote closed the connection.
    #[error("the remote closed the connection")]
    Closed,
    /// No CONNACK in time.
    #[error("no CONNACK within {} s", .0.as_secs())]
    NoConnAck(Duration),
    /// The first packet was not CONNACK.
    #[error("the remote answered CONNECT with {0}, not CONNACK")]
    NotConnAck(mqtt_codec::PacketType),
    /// The address is no valid TLS server name.
    #[error("\"{0}\" is not a valid TLS server name")]
    ServerName(String),
}

/// Why the TLS settings of a bridge cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BridgeTlsError {
    /// A PEM file is unusable.
    #[error("bridge {bridge}: {source}")]
    Pem {
        /// The bridge.
        bridge: String,
        /// What is wrong with the file.
        source: credentials::tls::PemError,
    },
    /// The certificate and key do not go together.
    #[error("bridge {bridge}: {source}")]
    Config {
        /// The bridge.
        bridge: String,
        /// What rustls said, in words.
        source: credentials::tls::ClientConfigError,
    },
}

/// The TLS connector of a bridge with `bridge_cafile`, `None` without:
/// built once, when the broker starts, so a bad file stops it there.
pub fn tls_connector(config: &BridgeConfig) -> Result<Option<TlsConnector>, BridgeTlsError> {
    let Some(cafile) = &config.cafile else {
        return Ok(None);
    };
    let pem = |source| BridgeTlsError::Pem {
        bridge: config.name.clone(),
        source,
    };
    let verify = if config.insecure {
        ServerVerification::Insecure
    } else {
        ServerVerification::Roots(
            credentials::tls::load_roots(cafile, "bridge_cafile").map_err(pem)?,
        )
    };
    let identity = match (&config.certfile, &config.keyfile) {
        (Some(cert), Some(key)) => Some(
            ClientIdentity::load_named(cert, key, ("bridge_certfile", "bridge_keyfile"))
                .map_err(pem)?,
        ),
        _ => None,
    };
    let tls = credentials::tls::client_config(verify, identity.as_ref()).map_err(|source| {
        BridgeTlsError::Config {
            bridge: config.name.clone(),
            source,
        }
    })?;
    Ok(Some(TlsConnector::from(Arc::new(tls))))
}

/// Bytes both ways, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open connection to the remote broker.
pub struct Remote {
    /// Read and written at once ([`Remote::step`]): a remote that stops
    /// reading does not stop the bridge hearing it.
    reader: ReadHalf<Box<dyn Io>>,
    writer: WriteHalf<Box<dyn Io>>,
    /// The largest packet taken from the remote (`--max-packet-size`, as
    /// for any client).
    max_packet: usize,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Bytes were written since the stream was last flushed (TLS may hold
    /// a record back until then).
    unflushed: bool,
}

/// What one [`Remote::step`] did.
#[derive(Debug)]
pub enum Step {
    /// A packet came from the remote.
    Packet(Packet),
    /// Some of the queued bytes were written.
    Wrote,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("read", &self.rbuf.len())
            .field("write", &self.wbuf.len())
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Connects to `address` (TLS with `tls`), sends `connect` and waits
    /// for the CONNACK, all within `timeout`; packets from the remote larger
    /// than `max_packet` end the connection.
    pub async fn open(
        address: &Address,
        tls: Option<&TlsConnector>,
        connect: &Connect,
        timeout: Duration,
        max_packet: usize,
    ) -> Result<(Self, ConnAck), RemoteError> {
        let open = async {
            let tcp = TcpStream::connect((address.host.as_str(), address.port)).await?;
            tcp.set_nodelay(true)?;
            let stream: Box<dyn Io> = match tls {
                None => Box::new(tcp),
                Some(connector) => {
                    let name = ServerName::try_from(address.host.clone())
                        .map_err(|_| RemoteError::ServerName(address.host.clone()))?;
                    Box::new(connector.connect(name, tcp).await?)
                }
            };
            let (reader, writer) = tokio::io::split(stream);
            let mut remote = Self {
                reader,
                writer,
                max_packet,
                rbuf: BytesMut::with_capacity(4096),
                wbuf: BytesMut::with_capacity(4096),
                unflushed: false,
            };
            remote.put(&Packet::Connect(connect.clone()));
            remote.flush().await?;
            match remote.recv().await? {
                Packet::ConnAck(ack) => Ok((remote, ack)),
                other => Err(RemoteError::NotConnAck(other.packet_type())),
            }
        };
        tokio::time::timeout(timeout, open)
            .await
            .map_err(|_| RemoteError::NoConnAck(timeout))?
    }

    /// Queues a packet for writing ([`Remote::step`], [`Remote::flush`]).
    pub fn put(&mut self, packet: &Packet) {
        if let Err(e) = packet.encode(&mut self.wbuf) {
            // Our own packets: a topic or payload past the protocol's
            // limits cannot come from the router, which decoded them.
            tracing::error!(error = %e, "a packet for the remote could not be encoded, skipped");
        }
    }

    /// Whether bytes wait to be written (or flushed).
    pub fn pending(&self) -> bool {
        !self.wbuf.is_empty() || self.unflushed
    }

    /// Whether the bytes waiting reach the high-water mark: the bridge
    /// then stops pulling from its outbox, as a connection does for a
    /// client that does not read, and the queue's limits apply.
    pub fn full(&self) -> bool {
        self.wbuf.len() >= HIGH_WATER
    }

    /// Writes all that is queued. Cancel-safe: what a cancelled call did
    /// not write stays queued, and nothing is written twice.
    pub async fn flush(&mut self) -> Result<(), RemoteError> {
        while self.pending() {
            write_some(&mut self.writer, &mut self.wbuf, &mut self.unflushed).await?;
        }
        Ok(())
    }

    /// Reads the next packet and, with `write`, writes some of what is
    /// queued, whichever comes first. Cancel-safe.
    pub async fn step(&mut self, write: bool) -> Result<Step, RemoteError> {
        let write = write && self.pending();
        let Self {
            reader,
            writer,
            max_packet,
            rbuf,
            wbuf,
            unflushed,
        } = self;
        tokio::select! {
            r = recv(reader, rbuf, *max_packet) => r.map(Step::Packet),
            r = write_some(writer, wbuf, unflushed), if write => r.map(|()| Step::Wrote),
        }
    }

    /// The next packet from the remote. Cancel-safe: bytes read before a
    /// cancellation stay in the buffer for the next call.
    pub async fn recv(&mut self) -> Result<Packet, RemoteError> {
        recv(&mut self.reader, &mut self.rbuf, self.max_packet).await
    }
}

/// The next packet from `reader`, decoded from `rbuf` as bytes come.
/// Cancel-safe.
async fn recv(
    reader: &mut ReadHalf<Box<dyn Io>>,
    rbuf: &mut BytesMut,
    max_packet: usize,
) -> Result<Packet, RemoteError> {
    loop {
        if let Some(packet) = mqtt_codec::decode_packet(rbuf, max_packet)? {
            return Ok(packet);
        }
        if reader.read_buf(rbuf).await? == 0 {
            return Err(RemoteError::Closed);
        }
    }
}

/// One write of `wbuf` to `writer` (or, with nothing left, the flush
/// that pushes out what TLS holds). Cancel-safe: a write either
/// completes, and its bytes leave `wbuf`, or writes nothing.
async fn write_some(
    writer: &mut WriteHalf<Box<dyn Io>>,
    wbuf: &mut BytesMut,
    unflushed: &mut bool,
) -> Result<(), RemoteError> {
    if wbuf.is_empty() {
        writer.flush().await?;
        *unflushed = false;
        return Ok(());
    }
    let n = writer.write(wbuf).await?;
    if n == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
    }
    wbuf.advance(n);
    *unflushed = true;
    Ok(())
}
