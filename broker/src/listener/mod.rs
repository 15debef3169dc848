//! Accept loops for plain TCP and TLS, one task per connection.
//!
//! Each accepted socket gets its own task and a tracing span holding the
//! peer address, the listener and (once CONNECT is in) the client id. A TLS
//! handshake must finish within the connect timeout. Past
//! `--max-connections` new sockets are closed at once. On shutdown the
//! loops stop accepting and every connection task ends (see
//! [`crate::server`]).

mod connection;
mod tls;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
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
    /// Connection tasks alive now (for `--max-connections`).
    pub live: AtomicUsize,
}

/// Decrements the live-connection count when a connection task ends.
struct LiveGuard(Arc<Shared>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a new socket in, or refuses it past the limit.
fn admit(shared: &Arc<Shared>, peer: SocketAddr) -> Option<LiveGuard> {
    let live = shared.live.fetch_add(1, Ordering::Relaxed);
    let guard = LiveGuard(Arc::clone(shared));
    let max = shared.limits.max_connections;
    if max > 0 && live >= max {
        warn!(%peer, max_connections = max, "connection limit reached, closing new connection");
        return None;
    }
    Some(guard)
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
mod tests {
    use super::*;

    /// Every connection is a task holding this future; its size is most of
    /// what an idle connection costs, so it is watched here. 488 bytes now
    /// (480 in release, which with tokio's task header makes a 640-byte
    /// task); it was 1.9 KB before the loop stopped holding a future per
    /// `select!` branch and its state twice. See also
    /// `tests/idle_memory.rs`.
    #[tokio::test]
    async fn connection_task_stays_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let stats = Arc::new(Stats::new());
        let shared = Arc::new(Shared {
            router: Arc::new(Router::new(
                crate::router::Limits {
                    max_queued: 0,
                    queue_qos0: false,
                },
                Arc::clone(&stats),
            )),
            auth: Authenticator::default(),
            stats,
            limits: ConnLimits {
                max_packet_size: 1024,
                max_inflight: 10,
                connect_timeout: Duration::from_secs(1),
                max_connections: 0,
            },
            identity_as_username: false,
            live: AtomicUsize::new(0),
        });
        let guard = LiveGuard(Arc::clone(&shared));
        let fut = connection::serve(server, None, shared, CancellationToken::new(), guard);
        let size = std::mem::size_of_val(&fut);
        eprintln!("connection future: {size} bytes");
        assert!(size <= 512, "connection future grew to {size} bytes");
        drop(client);
    }
}
