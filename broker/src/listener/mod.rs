//! Accept loops for plain TCP and TLS, one task per connection.
//!
//! Each accepted socket gets its own task and a tracing span holding the
//! peer address, the listener and (once CONNECT is in) the client id. A TLS
//! handshake must finish within the connect timeout. Past
//! `--max-connections` new sockets are closed at once. On shutdown the
//! loops stop accepting and every connection task ends (see
//! [`crate::server`]).
//!
//! A connection task only moves bytes: `open` (the TLS handshake and the
//! I/O around [`crate::session::connect`], up to CONNACK), `buffers` (the
//! socket and its buffers), `pull` (outbox to write buffer), `end` (why it
//! ended) and `connection` (the loop).

mod buffers;
mod connection;
mod end;
mod open;
mod pull;
mod tls;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error, info_span, warn};

pub use tls::{TlsError, server_config};
pub use transport::Transport;

use crate::auth::Authenticator;
use crate::router::Router;
use crate::stats::{Stats, Transport as Kind};

/// Per-connection limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Largest packet accepted.
    pub max_packet_size: usize,
    /// In-flight window per client.
    pub max_inflight: usize,
    /// How long a publisher waits for a full subscriber before that one is
    /// disconnected (`--slow-client-timeout`); `None` waits for ever.
    pub slow_client_timeout: Option<Duration>,
    /// Time for the TLS handshake and for CONNECT.
    pub connect_timeout: Duration,
    /// Most connections at once, 0 for no limit.
    pub max_connections: usize,
}

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// The router.
    pub router: Arc<Router>,
    /// Who may connect.
    pub auth: Authenticator,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Limits.
    pub limits: ConnLimits,
    /// TLS clients' certificate names serve as user names.
    pub identity_as_username: bool,
    /// User names serve as client ids (`--use-username-as-clientid`).
    pub use_username_as_clientid: bool,
    /// One permit per connection task alive, `--max-connections` of them;
    /// `None` when there is no limit. See [`connection_limit`].
    pub connections: Option<Arc<Semaphore>>,
}

/// The semaphore behind `--max-connections` (0: no limit, no semaphore).
pub fn connection_limit(max_connections: usize) -> Option<Arc<Semaphore>> {
    (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections)))
}

/// A connection task's place under `--max-connections`, given back when
/// the task ends.
type LiveGuard = Option<OwnedSemaphorePermit>;

/// Lets a new socket in, or refuses it past the limit.
fn admit(shared: &Shared, peer: SocketAddr) -> Option<LiveGuard> {
    let Some(connections) = &shared.connections else {
        return Some(None);
    };
    match Arc::clone(connections).try_acquire_owned() {
        Ok(permit) => Some(Some(permit)),
        Err(_) => {
            let max = shared.limits.max_connections;
            warn!(%peer, max_connections = max, "connection limit reached, closing new connection");
            None
        }
    }
}

/// Accepts sockets until shutdown; `tls` makes it the TLS listener.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let kind = if tls.is_some() {
        Kind::Tls
    } else {
        Kind::Plain
    };
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                error!(error = %e, listener = kind.name(), "accept failed");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
        };
        let Some(guard) = admit(&shared, peer) else {
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let span = info_span!(
            "conn",
            %peer,
            transport = kind.name(),
            client_id = tracing::field::Empty
        );
        tracker.spawn(
            connection::serve(
                tcp,
                tls.clone(),
                Arc::clone(&shared),
                shutdown.clone(),
                guard,
            )
            .instrument(span),
        );
    }
}

#[cfg(test)]
mod tests;
