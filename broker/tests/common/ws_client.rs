//! A WebSocket MQTT client on `std` sockets (tungstenite's own client), for
//! the broker's WebSocket listeners: it sends packets in binary frames cut
//! where a test says, and reads packets back from whatever frames arrive.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt_codec::{Packet, decode_packet};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Bytes, Message, WebSocket};

/// A byte stream a WebSocket can ride on: TCP or TLS over TCP.
pub trait Socket: Read + Write + Send {}
impl<T: Read + Write + Send> Socket for T {}

/// One WebSocket MQTT client.
pub struct WsClient {
    ws: WebSocket<Box<dyn Socket>>,
    rbuf: BytesMut,
    /// The subprotocol the broker chose.
    pub protocol: Option<String>,
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(super::WAIT)).expect("timeout");
    tcp
}

impl WsClient {
    /// `ws://addr/path`, offering `protocols` (comma-separated).
    pub fn open(addr: SocketAddr, path: &str, protocols: &str) -> Self {
        Self::handshake(Box::new(tcp(addr)), "ws", addr, path, protocols)
    }

    /// `wss://localhost:port/path`, trusting `config`'s roots.
    pub fn open_tls(addr: SocketAddr, path: &str, config: Arc<rustls::ClientConfig>) -> Self {
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(config, name).expect("TLS client");
        let stream = rustls::StreamOwned::new(conn, tcp(addr));
        Self::handshake(Box::new(stream), "wss", addr, path, "mqtt")
    }

    fn handshake(
        stream: Box<dyn Socket>,
        scheme: &str,
        addr: SocketAddr,
        path: &str,
        protocols: &str,
    ) -> Self {
        let url = format!("{scheme}://localhost:{}{path}", addr.port());
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocols.parse().expect("header value"),
        );
        let (ws, response) = tungstenite::client::client(request, stream).expect("upgrade");
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.to_str().expect("ascii").to_owned());
        Self {
            ws,
            rbuf: BytesMut::new(),
            protocol,
        }
    }

    /// Sends `packets` encoded back to back, cut into frames at `cuts`
    /// (byte offsets into the whole).
    pub fn send_cut(&mut self, packets: &[Packet], cuts: &[usize]) {
        let mut bytes = BytesMut::new();
        for p in packets {
            p.encode(&mut bytes).expect("encode");
        }
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let frame = Bytes::copy_from_slice(&bytes[start..cut]);
            self.ws.send(Message::Binary(frame)).expect("send frame");
            start = cut;
        }
    }

    /// Sends each packet in a frame of its own.
    pub fn send(&mut self, packet: &Packet) {
        self.send_cut(std::slice::from_ref(packet), &[]);
    }

    /// Sends any WebSocket message (a ping, a text frame, a close).
    pub fn send_message(&mut self, message: Message) {
        self.ws.send(message).expect("send message");
    }

    /// The next packet, however the broker framed it.
    pub fn recv(&mut self) -> Packet {
        loop {
            if let Some(p) = decode_packet(&mut self.rbuf, usize::MAX).expect("valid packet") {
                return p;
            }
            match self.ws.read().expect("a message in time") {
                Message::Binary(b) => self.rbuf.extend_from_slice(&b),
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }

    /// The next WebSocket message itself (pongs, closes).
    pub fn recv_message(&mut self) -> tungstenite::Result<Message> {
        self.ws.read()
    }

    /// Waits for the broker to end the WebSocket: its Close frame, or the
    /// socket's end.
    pub fn expect_closed(&mut self) {
        let deadline = std::time::Instant::now() + super::WAIT;
        while std::time::Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Close(_)) => {}
                Ok(_) => {}
                Err(_) => return,
            }
        }
        panic!("the broker did not close the WebSocket");
    }
}

/// Sends raw bytes to `addr` and returns what comes back until the broker
/// closes (at most `WAIT`): an HTTP response, say.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = tcp(addr);
    s.write_all(request).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// How long a closed upgrade may take to be seen, for the timeout test.
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(1);
