//! A WebSocket front for a broker that has none (Debian's mosquitto is
//! built without websockets): it accepts MQTT over WebSocket, `ws://` or
//! `wss://`, on an ephemeral loopback port, and forwards the bytes of each
//! connection to the broker's plain TCP port, and back, as mosquitto's own
//! WebSocket listener would. Built on tokio-tungstenite, the library the
//! harness's client uses, so a test of the harness's WebSocket transport
//! runs against a real server and a real broker.
//!
//! Each binary frame's payload is written upstream as it comes (frames
//! need not align with packets [MQTT-6.0.0-2]); what the broker sends goes
//! back in binary frames. A text frame closes the connection
//! [MQTT-6.0.0-1]. When either side ends, the other is closed. For tests
//! of the client's handshake errors, the gateway can be told to select no
//! subprotocol, and it answers 404 on any path but its own.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// How the gateway behaves.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// The path it upgrades; any other gets 404.
    pub path: String,
    /// Serve `wss://` with this server configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Select the `mqtt` subprotocol when the client offers it (a real
    /// MQTT server does); `false` makes a server that selects none.
    pub select_mqtt: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            path: "/mqtt".to_owned(),
            tls: None,
            select_mqtt: true,
        }
    }
}

/// The gateway, serving until dropped.
#[derive(Debug)]
pub struct WebSocketGateway {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl WebSocketGateway {
    /// Serves on 127.0.0.1 (an ephemeral port), forwarding to `upstream`.
    pub fn start(upstream: SocketAddr, options: GatewayOptions) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the WebSocket gateway");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let options = Arc::new(options);
        runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let options = Arc::clone(&options);
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    match &options.tls {
                        None => serve(client, upstream, &options).await,
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(config));
                            if let Ok(tls) = acceptor.accept(client).await {
                                serve(tls, upstream, &options).await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            addr,
            runtime: Some(runtime),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for WebSocketGateway {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// One connection: the upgrade, then bytes both ways until either ends.
#[allow(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback returns its own ErrorResponse"
)]
async fn serve<S>(client: S, upstream: SocketAddr, options: &GatewayOptions)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let check = |request: &Request, mut response: Response| {
        if request.uri().path() != options.path {
            let mut refused = ErrorResponse::new(Some("no WebSocket here".to_owned()));
            *refused.status_mut() = StatusCode::NOT_FOUND;
            return Err(refused);
        }
        let offered = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == "mqtt");
        if offered && options.select_mqtt {
            response
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
        }
        Ok(response)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(client, check).await else {
        return;
    };
    let Ok(broker) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = broker.set_nodelay(true);
    let (mut from_broker, mut to_broker) = broker.into_split();
    let (mut to_client, mut from_client) = ws.split();
    {
        let inbound = async {
            while let Some(Ok(message)) = from_client.next().await {
                match message {
                    Message::Binary(bytes) => {
                        if to_broker.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    Message::Text(_) | Message::Close(_) => break,
                }
            }
        };
        let outbound = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match from_broker.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let frame = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                        if to_client.send(frame).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        // Whichever side ends first ends the connection: the broker closing
        // is a close frame and FIN to the client; the client leaving is a FIN
        // to the broker.
        tokio::select! {
            () = inbound => {}
            () = outbound => {}
        }
    }
    let _ = to_broker.shutdown().await;
    let _ = to_client.close().await;
}
