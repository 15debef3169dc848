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

/// A WebSocket upgrade done by hand on a plain socket, for clients that
/// write frames the way no library would (floods that never read): the
/// socket past the `101` answer. Reads time out after [`super::WAIT`].
pub fn upgraded_socket(addr: SocketAddr) -> TcpStream {
    let mut tcp = tcp(addr);
    tcp.write_all(
        b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
    )
    .expect("upgrade request");
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).expect("upgrade response");
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "upgrade answered {}",
        String::from_utf8_lossy(&response)
    );
    tcp
}

/// One client frame: FIN, `opcode`, masked with the all-zero key (so the
/// payload goes as it is), `payload` under 126 bytes.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let len = u8::try_from(payload.len()).expect("a short payload");
    assert!(len < 126, "a payload under 126 bytes");
    let mut frame = vec![0x80 | opcode, 0x80 | len, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

/// How a flood of frames ended.
#[derive(Debug, PartialEq, Eq)]
pub enum FloodEnd {
    /// The broker closed the connection.
    Closed,
    /// A write waited longer than the time given: the broker stopped
    /// reading.
    Stalled,
    /// Everything was written.
    AllWritten,
}

/// Writes `frame` over and over, never reading, until `total` bytes went,
/// a write waits more than `stall`, or the connection fails. Returns how it
/// ended and the bytes written.
pub fn flood(
    tcp: &mut TcpStream,
    frame: &[u8],
    total: usize,
    stall: Duration,
) -> (FloodEnd, usize) {
    tcp.set_write_timeout(Some(stall)).expect("write timeout");
    let chunk: Vec<u8> = frame.repeat((64 * 1024) / frame.len());
    let mut written = 0;
    while written < total {
        // A short write leaves the next one mid-chunk, on the frames' grid.
        match tcp.write(&chunk[written % chunk.len()..]) {
            Ok(0) => return (FloodEnd::Closed, written),
            Ok(n) => written += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (FloodEnd::Stalled, written);
            }
            Err(_) => return (FloodEnd::Closed, written),
        }
    }
    (FloodEnd::AllWritten, written)
}
