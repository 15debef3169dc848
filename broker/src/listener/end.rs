//! [`End`]: why a connection ended, and the line it leaves in the log.

use std::io;

use tracing::{debug, info, warn};

use crate::session::SessionError;
use crate::session::connect::ConnectError;
use mqtt_codec::{DecodeError, PacketType};

/// Why a connection ended.
#[derive(Debug)]
pub(super) enum End {
    /// The client sent DISCONNECT: the will is discarded [MQTT-3.14.4-3].
    Disconnect,
    /// The client closed the socket.
    Closed,
    /// The socket failed.
    Io(io::Error),
    /// The client sent bytes that are not a valid packet.
    Malformed(DecodeError),
    /// The client broke a protocol rule.
    Violation(SessionError),
    /// The first packet's fixed header is not CONNECT's [MQTT-3.1.0-1]:
    /// closed before its body is read.
    NotConnect(PacketType),
    /// The client was silent past 1.5× its keep-alive [MQTT-3.1.2-24].
    KeepAlive,
    /// Another connection took the client id over [MQTT-3.1.4-2].
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
    /// The client's queue stayed full past `--slow-client-timeout` while
    /// publishers waited for it.
    SlowClient,
    /// Not an end: the client went idle and parks (see `park.rs`); its
    /// connection's task ends, the client does not.
    Park,
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> Self {
        End::Io(e)
    }
}

impl End {
    /// Logs why the connection ended, in the connection's span.
    pub(super) fn log(&self) {
        match self {
            End::Disconnect => info!("client disconnected"),
            End::Closed => info!("client closed the connection without DISCONNECT"),
            End::Io(e) => info!(error = %e, "connection failed"),
            End::Malformed(e) => warn!(
                error = %e,
                statement = e.statement().unwrap_or("-"),
                "malformed packet, closing [MQTT-4.8.0-1]"
            ),
            End::Violation(e) => warn!(error = %e, "protocol violation, closing"),
            End::NotConnect(packet) => ConnectError::NotConnect { packet: *packet }.log(),
            End::KeepAlive => info!("keep-alive expired, closing [MQTT-3.1.2-24]"),
            End::TakenOver => info!("session taken over by a new connection [MQTT-3.1.4-2]"),
            End::Shutdown => debug!("closing for shutdown"),
            End::Park => debug!("idle, parking"),
            End::SlowClient => warn!(
                "queue stayed full past --slow-client-timeout while publishers waited, disconnecting"
            ),
        }
    }
}
