//! MQTT over WebSocket (RFC 6455): the HTTP upgrade, and the framing the
//! connection loop reads and writes through.
//!
//! [`upgrade`] reads the client's HTTP request (by the connect deadline), checks it with tungstenite ([`create_response`]), picks the
//! subprotocol (`mqtt`, or the older `mqttv3.1`) and answers `101`; a bad
//! request gets `400` (a path other than the listener's `ws-path`, `404`)
//! and a logged reason. [`WebSocket`] then holds tungstenite's framing state
//! over the same non-blocking [`Stream`] the plain and TLS clients use: a
//! read hands the loop the payloads of the binary frames that arrived, in
//! order, so an MQTT packet may span frames and a frame may hold several
//! packets (the decoder sees one byte stream); pings are answered (and
//! count toward a read's limit as data does; while a pong cannot be
//! written the client is not read), a Close is answered and ends the
//! stream. A write sends the loop's whole output as
//! one binary frame.

use std::io::{self, Read, Write};
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use tungstenite::handshake::server::{Request, create_response, write_response};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, Error, Message};

use super::buffers::LINGER;
use super::transport::Stream;

/// The largest HTTP upgrade request read: browsers send well under 2 KiB.
const MAX_REQUEST: usize = 16 * 1024;
/// Room tungstenite reads frames into; it grows for a larger frame.
const READ_BUFFER: usize = 4 * 1024;
/// The subprotocols accepted, in order of preference: MQTT 3.1.1's name,
/// then the one MQTT 3.1 clients offer.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Bytes counted toward a read's limit for each frame besides its payload
/// (the smallest frame header): a flood of empty pings uses up the limit
/// as surely as a flood of data.
const FRAME_COST: usize = 2;
/// Room in the write buffer for the frames the client's own frames make us
/// send besides our output: one pong and one close, each at most a 2-byte
/// header and a 125-byte payload. A further pong replaces the one waiting
/// (tungstenite keeps only the latest), so pings never grow the buffer.
const CONTROL_ROOM: usize = 2 * (2 + 125);
/// The largest header of a frame we send (unmasked, 64-bit length).
const MAX_HEADER: usize = 10;

/// A WebSocket client's framing state.
#[derive(Debug)]
pub struct WebSocket {
    ctx: WebSocketContext,
    /// A frame (a pong, a close, our output) waits for the socket.
    pending: bool,
    /// A read stopped at its limit: complete frames may wait inside the
    /// framing where the socket's readiness does not show them.
    buffered: bool,
    /// A pong waits for a socket that takes nothing: nothing more is read
    /// until it goes out, as a client that does not read its PUBLISHes is
    /// not read either (the loop's high-water mark). A client must read
    /// its pongs; one that does not is left to the connect timeout, the
    /// keep-alive and the slow-client rules.
    stalled: bool,
}

impl WebSocket {
    fn new(tail: Vec<u8>, max_message: usize) -> Self {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            // Our output is already one batch per turn: write it at once.
            .write_buffer_size(0)
            // Raised to fit each frame of our output (see `fit`), never by
            // what the client sends.
            .max_write_buffer_size(CONTROL_ROOM)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        Self {
            ctx: WebSocketContext::from_partially_read(tail, Role::Server, Some(config)),
            pending: false,
            buffered: false,
            stalled: false,
        }
    }

    /// Raises (or lowers) the largest message accepted: before CONNECT it
    /// is the largest CONNECT, after it `--max-packet-size`.
    pub(super) fn set_max_message(&mut self, max_message: usize) {
        self.ctx.set_config(|c| {
            c.max_message_size = Some(max_message);
            c.max_frame_size = Some(max_message);
        });
    }

    /// Lets the write buffer hold a frame of `payload` bytes beside the
    /// control frames. Our output is bounded by the connection loop (a
    /// frame is only added once the last one went out), so the buffer's
    /// cap follows it; what the client's frames add stays within
    /// [`CONTROL_ROOM`].
    fn fit(&mut self, payload: usize) {
        let need = payload + MAX_HEADER + CONTROL_ROOM;
        if self.ctx.get_config().max_write_buffer_size < need {
            self.ctx.set_config(|c| c.max_write_buffer_size = need);
        }
    }

    /// Whether frames may wait unread inside the framing.
    pub(super) fn buffered(&self) -> bool {
        self.buffered
    }

    /// Whether a frame waits for the socket.
    pub(super) fn wants_write(&self) -> bool {
        self.pending
    }

    /// Whether reading waits for a pong to go out (see `stalled`).
    pub(super) fn stalled(&self) -> bool {
        self.stalled
    }

    /// Appends the payloads of the binary frames available now to `buf`,
    /// stopping once frames of `limit` bytes came (every frame counts, its
    /// header too: pings as much as data), or a pong could not be written.
    /// 0 at the end of the stream (a Close, answered, or the socket closed),
    /// `WouldBlock` when no data came.
    pub(super) fn try_read(
        &mut self,
        stream: &mut Stream,
        buf: &mut BytesMut,
        limit: usize,
    ) -> io::Result<usize> {
        let data_or_block = |total: usize| {
            if total > 0 {
                Ok(total)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        };
        let mut total = 0;
        let mut seen = 0;
        self.buffered = false;
        if self.stalled && !self.flush(stream)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        loop {
            if seen >= limit {
                self.buffered = true;
                return data_or_block(total);
            }
            match self.ctx.read(stream) {
                Ok(Message::Binary(payload)) => {
                    buf.extend_from_slice(&payload);
                    total += payload.len();
                    seen += FRAME_COST + payload.len();
                }
                Ok(Message::Ping(payload)) => {
                    seen += FRAME_COST + payload.len();
                    // Answer now; a socket that takes nothing stops the
                    // reading until it does.
                    if !self.flush(stream)? {
                        self.stalled = true;
                        return data_or_block(total);
                    }
                }
                Ok(Message::Pong(payload)) => seen += FRAME_COST + payload.len(),
                Ok(Message::Frame(_)) => seen += FRAME_COST,
                Ok(Message::Close(_)) => {
                    // tungstenite queued the answering Close; the next read
                    // writes it and reports the end.
                    self.pending = true;
                    seen += FRAME_COST;
                }
                Ok(Message::Text(_)) => {
                    return Err(invalid("a text frame: MQTT travels in binary frames only"));
                }
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return if total > 0 { Ok(total) } else { Err(e) };
                }
                Err(e) => return end_of_read(e, total),
            }
        }
    }

    /// Sends `wbuf` as one binary frame (emptying it), then writes what the
    /// socket takes now. While an earlier frame still waits for the socket,
    /// `wbuf` stays where it is: the loop sees its output as pending and
    /// stops pulling messages, so a slow WebSocket client is held to the
    /// same bound as any other (one frame inside the framing, `wbuf` up to
    /// the loop's high-water mark).
    pub(super) fn try_write(&mut self, stream: &mut Stream, wbuf: &mut BytesMut) -> io::Result<()> {
        if self.pending && !self.flush(stream)? {
            return Ok(());
        }
        if !wbuf.is_empty() {
            self.fit(wbuf.len());
            let frame = Bytes::copy_from_slice(wbuf);
            wbuf.clear();
            match self.ctx.write(stream, Message::Binary(frame)) {
                Ok(()) => {}
                // The frame waits inside the framing; the flush says so.
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(write_error(e)),
            }
        }
        self.flush(stream)?;
        Ok(())
    }

    /// Writes the frames waiting inside the framing; `true` once all are
    /// out.
    fn flush(&mut self, stream: &mut Stream) -> io::Result<bool> {
        match self.ctx.flush(stream) {
            Ok(()) => {
                self.pending = false;
                self.stalled = false;
            }
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => self.pending = true,
            Err(e) => return Err(write_error(e)),
        }
        Ok(!self.pending)
    }

    /// Queues a Close frame (normal closure); [`try_write`](Self::try_write)
    /// sends it.
    pub(super) fn close(&mut self, stream: &mut Stream) {
        match self.ctx.close(stream, None) {
            Ok(()) => self.pending = false,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => self.pending = true,
            // Already closed by the client, or the socket failed: nothing to
            // send.
            Err(_) => self.pending = false,
        }
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// A read's failure: the end of the stream (Ok(0), or the bytes read before
/// it), or an error naming what the client did wrong.
fn end_of_read(e: Error, total: usize) -> io::Result<usize> {
    match e {
        Error::ConnectionClosed | Error::AlreadyClosed => Ok(total),
        Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            Ok(total)
        }
        Error::Io(e) => Err(e),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket: {other}"),
        )),
    }
}

fn write_error(e: Error) -> io::Error {
    match e {
        Error::Io(e) => e,
        Error::ConnectionClosed | Error::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::other(format!("WebSocket: {other}")),
    }
}

/// Why an upgrade request was refused: the HTTP status and the reason,
/// which is logged and sent as the response's body.
#[derive(Debug)]
struct Refusal {
    status: &'static str,
    reason: String,
}

impl Refusal {
    fn bad_request(reason: impl Into<String>) -> Self {
        Self {
            status: "400 Bad Request",
            reason: reason.into(),
        }
    }
}

/// The HTTP upgrade to WebSocket over `stream`, by `deadline` (the
/// connect timeout, `timeout`, after the accept): the
/// framing to use for the connection, or `None` (refused with a logged
/// reason, timed out, closed). `path`, when set, is the only path accepted.
/// `max_message` bounds one WebSocket message (the largest MQTT packet the
/// connection may receive).
pub(super) async fn upgrade(
    mut stream: Stream,
    path: Option<&str>,
    max_message: usize,
    deadline: Instant,
    timeout: Duration,
    shutdown: &CancellationToken,
) -> Option<(Stream, WebSocket)> {
    let exchange = async {
        let (request, tail) = match read_request(&mut stream).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                debug!("closed before the WebSocket upgrade request");
                return None;
            }
            Err(refusal) => {
                refuse(&mut stream, &refusal).await;
                return None;
            }
        };
        match answer(&request, path) {
            Ok(response) => {
                if let Err(e) = write_all(&mut stream, &response).await {
                    debug!(error = %e, "WebSocket upgrade response not sent");
                    return None;
                }
                debug!(path = request.uri().path(), "WebSocket upgrade done");
                Some(WebSocket::new(tail, max_message))
            }
            Err(refusal) => {
                refuse(&mut stream, &refusal).await;
                None
            }
        }
    };
    let ws = tokio::select! {
        r = tokio::time::timeout_at(deadline, exchange) => r,
        () = shutdown.cancelled() => return None,
    };
    match ws {
        Ok(Some(ws)) => Some((stream, ws)),
        Ok(None) => {
            // Refused: the response goes out before the socket closes.
            stream.close(&mut BytesMut::new(), LINGER).await;
            None
        }
        Err(_) => {
            warn!(
                timeout_secs = timeout.as_secs(),
                "WebSocket upgrade did not finish in time, closing"
            );
            None
        }
    }
}

/// Reads the upgrade request: the request and the bytes after it, `None`
/// when the client closed first.
async fn read_request(stream: &mut Stream) -> Result<Option<(Request, Vec<u8>)>, Refusal> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stream
                    .readable()
                    .await
                    .map_err(|e| Refusal::bad_request(e.to_string()))?;
                continue;
            }
            Err(e) => {
                debug!(error = %e, "reading the WebSocket upgrade request failed");
                return Ok(None);
            }
        }
        if let Some(parsed) = parse_request(&buf)? {
            return Ok(Some(parsed));
        }
        if buf.len() > MAX_REQUEST {
            return Err(Refusal::bad_request(format!(
                "the upgrade request is over {MAX_REQUEST} bytes"
            )));
        }
    }
}

/// Parses an HTTP request, `None` while incomplete.
fn parse_request(buf: &[u8]) -> Result<Option<(Request, Vec<u8>)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut raw = httparse::Request::new(&mut headers);
    let size = match raw.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(size)) => size,
        Err(e) => {
            return Err(Refusal::bad_request(format!(
                "not an HTTP request ({e}): this port speaks MQTT over WebSocket"
            )));
        }
    };
    let mut request = tungstenite::http::Request::builder()
        .method(raw.method.unwrap_or_default())
        .uri(raw.path.unwrap_or_default())
        .version(match raw.version {
            Some(1) => tungstenite::http::Version::HTTP_11,
            _ => tungstenite::http::Version::HTTP_10,
        });
    for h in raw.headers.iter() {
        request = request.header(h.name, h.value);
    }
    let request = request
        .body(())
        .map_err(|e| Refusal::bad_request(format!("bad HTTP request: {e}")))?;
    Ok(Some((request, buf[size..].to_vec())))
}

/// The `101 Switching Protocols` answer to a valid upgrade request, with
/// the subprotocol echoed.
fn answer(request: &Request, path: Option<&str>) -> Result<Vec<u8>, Refusal> {
    if let Some(want) = path
        && request.uri().path() != want
    {
        return Err(Refusal {
            status: "404 Not Found",
            reason: format!(
                "path {} is not this listener's ws-path {want}",
                request.uri().path()
            ),
        });
    }
    let mut response = create_response(request)
        .map_err(|e| Refusal::bad_request(format!("not a WebSocket upgrade: {e}")))?;
    let offered: Vec<&str> = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim))
        .collect();
    if !offered.is_empty() {
        let Some(chosen) = SUBPROTOCOLS.iter().find(|p| offered.contains(p)) else {
            return Err(Refusal::bad_request(format!(
                "subprotocols offered ({}) do not include mqtt",
                offered.join(", ")
            )));
        };
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static(chosen),
        );
    }
    let mut out = Vec::new();
    write_response(&mut out, &response)
        .map_err(|e| Refusal::bad_request(format!("cannot answer the upgrade: {e}")))?;
    Ok(out)
}

/// Logs the refusal and sends it as an HTTP error response.
async fn refuse(stream: &mut Stream, refusal: &Refusal) {
    warn!(status = refusal.status, reason = %refusal.reason, "WebSocket upgrade refused");
    let body = format!("{}\n", refusal.reason);
    let response = format!(
        "HTTP/1.1 {}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        refusal.status,
        body.len()
    );
    if let Err(e) = write_all(stream, response.as_bytes()).await {
        debug!(error = %e, "WebSocket refusal not sent");
    }
}

/// Writes all of `bytes`, waiting for the socket as needed.
async fn write_all(stream: &mut Stream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    loop {
        match Write::flush(stream) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
}
