//! MQTT over WebSocket (section 6 of the spec): the client handshake on a
//! TCP or TLS stream, offering the subprotocol `mqtt` [MQTT-6.0.0-3] and
//! requiring the server to select it [MQTT-6.0.0-4], and the byte halves
//! the raw client reads and writes through.
//!
//! The halves keep the raw client's promise that each write puts exactly
//! its bytes on the wire: each write becomes one binary frame
//! [MQTT-6.0.0-1], so a scenario's split writes reach the broker as one
//! frame per write, and a malformed packet travels unchanged. Reading
//! joins the frames' payloads into one byte stream, since packets need not
//! align with frames [MQTT-6.0.0-2]. A text frame from the server is read
//! as an error (it breaks [MQTT-6.0.0-1]); a close frame, or the TCP
//! connection ending without one, is the end of the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::io::{CopyToBytes, SinkWriter, StreamReader};

/// The subprotocol MQTT 3.1.1 uses over WebSocket [MQTT-6.0.0-3].
pub const SUBPROTOCOL: &str = "mqtt";

/// The path most brokers and MQTT.js use when none is configured.
pub const DEFAULT_PATH: &str = "/mqtt";

/// Why the WebSocket handshake did not give an MQTT connection; each
/// message is one line naming what the server did.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The server answered the upgrade request with an HTTP status other
    /// than 101 (a wrong path, or not a WebSocket listener).
    #[error(
        "the WebSocket upgrade of {url} was answered with HTTP {status} instead of 101: check the path (--ws-path) and that the port is a WebSocket listener"
    )]
    Status {
        /// The URL asked for.
        url: String,
        /// The status line's code and reason.
        status: String,
    },
    /// The server accepted the upgrade but did not select `mqtt`
    /// [MQTT-6.0.0-4].
    #[error(
        "the WebSocket server at {url} {what}; an MQTT server must select the subprotocol \"mqtt\" [MQTT-6.0.0-4]"
    )]
    Subprotocol {
        /// The URL asked for.
        url: String,
        /// What it did instead.
        what: &'static str,
    },
    /// The URL built from the host, port and path is not valid.
    #[error("{url} is not a valid WebSocket URL: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Anything else: the server closed the connection, or answered
    /// something that is not HTTP.
    #[error("WebSocket handshake with {url}: {reason}")]
    Other {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// The URL of `path` on `host:port`, with `wss` when `tls`; an IPv6
/// address is put in brackets.
pub fn url(host: &str, port: u16, path: &str, tls: bool) -> String {
    let scheme = if tls { "wss" } else { "ws" };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    format!("{scheme}://{host}:{port}{path}")
}

/// The read half: the binary frames' payloads as one byte stream.
pub type ReadHalf<S> = StreamReader<Payloads<S>, Bytes>;

/// The write half: each write is one binary frame.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// Runs the client handshake for `url` on `stream` (TCP, or TLS for
/// `wss`), offering `mqtt`, and returns the two halves of the MQTT byte
/// stream.
pub async fn handshake<S>(stream: S, url: &str) -> Result<(ReadHalf<S>, WriteHalf), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut request = url.into_client_request().map_err(|e| HandshakeError::Url {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (ws, _response) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| refusal(url, e))?;
    Ok(halves(ws))
}

/// Splits an open WebSocket into the byte halves.
fn halves<S>(ws: WebSocketStream<S>) -> (ReadHalf<S>, WriteHalf)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sink, stream) = ws.split();
    let sink = sink
        .sink_map_err(io::Error::other)
        .with(|bytes: Bytes| std::future::ready(Ok::<_, io::Error>(Message::Binary(bytes))));
    let writer = SinkWriter::new(CopyToBytes::new(Box::pin(sink)));
    (
        StreamReader::new(Payloads {
            inner: stream,
            ended: false,
        }),
        Box::new(writer),
    )
}

fn refusal(url: &str, e: WsError) -> HandshakeError {
    let url = url.to_owned();
    match e {
        WsError::Http(response) => HandshakeError::Status {
            url,
            status: response.status().to_string(),
        },
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(sub)) => {
            HandshakeError::Subprotocol {
                url,
                what: match sub {
                    SubProtocolError::NoSubProtocol => "selected no subprotocol",
                    _ => "selected a subprotocol other than \"mqtt\"",
                },
            }
        }
        other => HandshakeError::Other {
            url,
            reason: other.to_string(),
        },
    }
}

/// The payloads of the binary frames the server sends, as a stream of
/// byte chunks ending at its close frame (or at the TCP connection's end).
#[derive(Debug)]
pub struct Payloads<S> {
    inner: futures_util::stream::SplitStream<WebSocketStream<S>>,
    ended: bool,
}

impl<S> Stream for Payloads<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let next = match self.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            };
            match next {
                Some(Ok(Message::Binary(bytes))) => return Poll::Ready(Some(Ok(bytes))),
                // tungstenite answers pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server sent a text frame; MQTT travels in binary frames [MQTT-6.0.0-1]",
                    ))));
                }
                Some(Ok(Message::Close(_)))
                | None
                | Some(Err(
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                )) => {
                    self.ended = true;
                }
                Some(Err(WsError::Io(e))) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Some(Err(other)) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("WebSocket: {other}"),
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_bracket_ipv6_and_start_paths_with_a_slash() {
        assert_eq!(
            url("127.0.0.1", 80, "/mqtt", false),
            "ws://127.0.0.1:80/mqtt"
        );
        assert_eq!(url("::1", 443, "mqtt", true), "wss://[::1]:443/mqtt");
        assert_eq!(url("[::1]", 1, "/", false), "ws://[::1]:1/");
    }
}
