//! The workspace's one raw MQTT client for tests: whole packets in, whole
//! packets out, over plain TCP or TLS, every wait bounded by [`WAIT`].
//!
//! It speaks through `mqtt_codec` only (packets, or deliberately wrong
//! [`RawPacket`]s and bytes) and decides nothing for the test: no automatic
//! acknowledgements, no keep-alive, no retries. It is async (tokio) because
//! most of its users are: the broker's integration tests run on
//! `#[tokio::test]` next to async TLS handshakes, and a blocking client would
//! need a thread per connection there, while a blocking test pays only a
//! runtime to use this one. (The conformance harness has its own client,
//! which is product code; `toolkit bench` has its own tuned one.)

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_codec::raw::RawPacket;
use mqtt_codec::topic::TopicFilter;
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, Packet, PacketId, Publish, QoS, SubAck, SubAckReturnCode,
    Subscribe, SubscribeFilter, decode_slice, parse_fixed_header,
};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Every wait of a [`RawClient`] (connect, handshake, next packet) is
/// bounded by this; a peer that takes longer fails the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// A byte stream the client can speak over: plain TCP or TLS on TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection speaking MQTT in whole packets. Every method panics with
/// the client's name on what a test cannot go on from (a timeout, a packet
/// the codec refuses, a write error), since a failed expectation is a
/// failed test.
pub struct RawClient {
    name: String,
    stream: Box<dyn Io>,
    buf: BytesMut,
}

impl std::fmt::Debug for RawClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawClient")
            .field("name", &self.name)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// CONNECT for MQTT 3.1.1 with `client_id`, keep-alive 60 s, no will and no
/// credentials.
pub fn connect_packet(client_id: &str, clean_session: bool) -> Connect {
    Connect {
        client_id: client_id.into(),
        clean_session,
        keep_alive: 60,
        ..Connect::default()
    }
}

/// A packet id from a test's literal; panics on 0, which no packet may
/// carry [MQTT-2.3.1-1].
pub fn packet_id(value: u16) -> PacketId {
    PacketId::new(value).expect("test packet ids are non-zero")
}

impl RawClient {
    /// Opens a TCP connection to `addr` (nothing sent yet).
    pub async fn open(addr: SocketAddr) -> Self {
        let tcp = Self::tcp(addr)
            .await
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        Self::over(tcp, addr.to_string())
    }

    /// Opens a TLS connection to `addr`, checking the server certificate
    /// against `server_name` with `config`; panics if the handshake fails.
    pub async fn open_tls(addr: SocketAddr, config: Arc<ClientConfig>, server_name: &str) -> Self {
        Self::try_open_tls(addr, config, server_name)
            .await
            .unwrap_or_else(|e| panic!("TLS to {addr} as {server_name}: {e}"))
    }

    /// Opens a TLS connection, or says why the TCP connect or the handshake
    /// failed (for tests where the server is meant to refuse). With TLS 1.3
    /// a server refusing the client's certificate may only say so after the
    /// client's side of the handshake is done: then this succeeds and the
    /// first read finds the connection closed.
    pub async fn try_open_tls(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<Self> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tcp = Self::tcp(addr).await?;
        let tls = tokio::time::timeout(WAIT, TlsConnector::from(config).connect(name, tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        Ok(Self::over(tls, format!("tls {addr}")))
    }

    async fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
        let tcp = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP connect timed out"))??;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    fn over(stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static, name: String) -> Self {
        Self {
            name,
            stream: Box::new(stream),
            buf: BytesMut::new(),
        }
    }

    /// The name failure messages give the client.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Names the client in failure messages (the address by default).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Opens a connection and sends `connect`; returns the CONNACK, whatever
    /// its code.
    pub async fn connect(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let mut c = Self::open(addr).await;
        let ack = c.handshake(connect).await;
        (c, ack)
    }

    /// Opens a connection with a clean session as `client_id` and asserts
    /// that it is accepted.
    pub async fn connected(addr: SocketAddr, client_id: &str) -> Self {
        let (c, ack) = Self::connect(addr, connect_packet(client_id, true)).await;
        assert_eq!(ack.code, ConnectReturnCode::Accepted, "{}", c.name);
        c.named(client_id)
    }

    /// Sends `connect` on an open connection and returns the CONNACK.
    pub async fn handshake(&mut self, connect: Connect) -> ConnAck {
        self.send(&Packet::Connect(connect)).await;
        match self.recv().await {
            Packet::ConnAck(ack) => ack,
            other => panic!("{}: expected CONNACK, got {other:?}", self.name),
        }
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &Packet) {
        let bytes = packet
            .to_bytes()
            .unwrap_or_else(|e| panic!("{}: cannot encode {packet:?}: {e}", self.name));
        self.send_bytes(&bytes).await;
    }

    /// Sends a deliberately wrong packet as the raw writer builds it.
    pub async fn send_raw(&mut self, packet: &RawPacket) {
        self.send_bytes(&packet.to_bytes()).await;
    }

    /// Sends bytes as they are, in one write.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let Self { name, stream, .. } = self;
        tokio::time::timeout(WAIT, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: write timed out"))
        .unwrap_or_else(|e| panic!("{name}: write failed: {e}"));
    }

    /// The next packet with the exact bytes it came in, or `None` once the
    /// peer has closed the connection (a reset counts as a close). Panics if
    /// neither happens within [`WAIT`] or the bytes do not decode.
    pub async fn try_recv_frame(&mut self) -> Option<(Packet, Bytes)> {
        let name = self.name.clone();
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(frame) = self.take_frame() {
                    return Some(frame);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: neither a packet nor a close within {WAIT:?}"))
    }

    /// Takes one whole packet off the buffer, if one is there.
    fn take_frame(&mut self) -> Option<(Packet, Bytes)> {
        let header = parse_fixed_header(&self.buf).unwrap_or_else(|e| {
            panic!("{}: the peer sent a malformed fixed header: {e}", self.name)
        })?;
        if self.buf.len() < header.packet_len() {
            return None;
        }
        let wire = self.buf.split_to(header.packet_len()).freeze();
        match decode_slice(&wire) {
            Ok(Some((packet, _))) => Some((packet, wire)),
            Ok(None) => panic!("{}: a whole packet did not decode: {wire:?}", self.name),
            Err(e) => panic!(
                "{}: the peer sent {wire:?}, which is malformed: {e}",
                self.name
            ),
        }
    }

    /// The next packet, or `None` once the peer has closed the connection.
    pub async fn try_recv(&mut self) -> Option<Packet> {
        self.try_recv_frame().await.map(|(packet, _)| packet)
    }

    /// The next packet; panics if the peer closes first.
    pub async fn recv(&mut self) -> Packet {
        match self.try_recv().await {
            Some(p) => p,
            None => panic!("{}: closed while a packet was expected", self.name),
        }
    }

    /// The next packet with its wire bytes; panics if the peer closes first.
    pub async fn recv_frame(&mut self) -> (Packet, Bytes) {
        match self.try_recv_frame().await {
            Some(f) => f,
            None => panic!("{}: closed while a packet was expected", self.name),
        }
    }

    /// The next packet, which must be a PUBLISH.
    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(p) => p,
            other => panic!("{}: expected PUBLISH, got {other:?}", self.name),
        }
    }

    /// Asserts that nothing arrives for `duration` and the connection stays
    /// open.
    pub async fn expect_silence(&mut self, duration: Duration) {
        if let Ok(got) = tokio::time::timeout(duration, self.try_recv()).await {
            panic!(
                "{}: expected silence for {duration:?}, got {got:?}",
                self.name
            );
        }
    }

    /// Asserts that the peer closes the connection without sending anything
    /// more.
    pub async fn expect_closed(&mut self) {
        if let Some(p) = self.try_recv().await {
            panic!("{}: expected a close, got {p:?}", self.name);
        }
        assert!(
            self.buf.is_empty(),
            "{}: closed in the middle of a packet: {:?}",
            self.name,
            &self.buf[..]
        );
    }

    /// Subscribes to `filters` with packet id `id` and returns the SUBACK,
    /// asserting that it answers this SUBSCRIBE and refuses no filter.
    pub async fn subscribe(&mut self, filters: &[(&str, QoS)], id: u16) -> SubAck {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: packet_id(id),
            filters: filters
                .iter()
                .map(|(f, q)| SubscribeFilter {
                    filter: TopicFilter::new(f)
                        .unwrap_or_else(|e| panic!("test filter {f:?}: {e}")),
                    qos: *q,
                })
                .collect(),
        }))
        .await;
        match self.recv().await {
            Packet::SubAck(s) => {
                assert_eq!(s.packet_id, packet_id(id), "{}", self.name);
                assert!(
                    s.return_codes
                        .iter()
                        .all(|c| *c != SubAckReturnCode::Failure),
                    "{}: a filter was refused: {s:?}",
                    self.name
                );
                s
            }
            other => panic!("{}: expected SUBACK, got {other:?}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-connection peer that writes `script` and then closes.
    async fn peer_writing(script: Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            // Byte by byte: the client must reassemble packets split over
            // reads.
            for b in script {
                s.write_all(&[b]).await.expect("write");
                s.flush().await.expect("flush");
            }
        });
        addr
    }

    #[tokio::test]
    async fn packets_split_over_reads_come_whole_with_their_bytes() {
        let connack = [0x20, 0x02, 0x01, 0x00];
        let pingresp = [0xd0, 0x00];
        let addr = peer_writing([&connack[..], &pingresp[..]].concat()).await;
        let mut c = RawClient::open(addr).await;
        let (p, wire) = c.recv_frame().await;
        assert_eq!(
            p,
            Packet::ConnAck(ConnAck {
                session_present: true,
                code: ConnectReturnCode::Accepted
            })
        );
        assert_eq!(&wire[..], &connack[..]);
        assert_eq!(c.recv().await, Packet::PingResp);
        c.expect_closed().await;
    }

    #[tokio::test]
    async fn a_close_is_none_not_a_panic() {
        let addr = peer_writing(Vec::new()).await;
        let mut c = RawClient::open(addr).await.named("closing");
        assert_eq!(c.try_recv().await, None);
    }

    #[tokio::test]
    #[should_panic(expected = "malformed")]
    async fn a_malformed_packet_fails_the_test() {
        // PINGRESP with flags 0001 [MQTT-2.2.2-2].
        let addr = peer_writing(vec![0xd1, 0x00]).await;
        RawClient::open(addr).await.recv().await;
    }

    #[tokio::test]
    #[should_panic(expected = "expected silence")]
    async fn expect_silence_fails_on_a_close() {
        let addr = peer_writing(Vec::new()).await;
        RawClient::open(addr)
            .await
            .expect_silence(Duration::from_millis(500))
            .await;
    }
}
