//! An MQTT-aware TCP proxy that misbehaves on purpose: the engine of
//! `toolkit proxy`, and of the harness's tests that put a faulty network or
//! a faulty broker between a client and a real broker.
//!
//! Each accepted client gets its own connection to the broker (plain or
//! TLS); the client side may be TLS too, terminated here. Both directions
//! are framed into whole packets by their fixed header, so faults can match
//! packet types; bytes that cannot be framed (a Remaining Length longer than
//! four bytes, or one over [`MAX_FRAMED`]) are forwarded raw for the rest of
//! that direction, so garbage still goes through. Faults ([`Faults`]) are
//! applied as packets are read; the writer of each direction keeps their
//! order, holds each packet until it is due (delay, jitter), and writes it
//! as shaped (one byte per write, a bandwidth cap). Every discrete fault a
//! rule injects, each reordering and each cut is reported to the
//! [`ProxyConfig::on_fault`] sink as one [`FaultEvent`] line; the
//! connection-wide shaping once per connection.
//!
//! - `faults`: the faults as values.
//! - `spec`: the faults as users write them (flags, the TOML fault file).
//! - `pump`: one direction of one connection: framing, rules, shaping.

pub mod faults;
mod pump;
pub mod spec;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::Instrument as _;

pub use faults::{
    Action, CutAfter, Direction, Faults, Occurrence, PacketMatch, Reorder, Rule, Scope,
};
pub use spec::FaultSpecError;

/// The largest packet the proxy frames (16 MiB); a longer declared length
/// turns its direction to raw forwarding rather than holding that much.
pub const MAX_FRAMED: usize = 16 << 20;

/// Rewrites one framed packet (or raw chunk) going `direction` into what is
/// forwarded instead: nothing, itself, a changed packet, or several. For
/// tests that play a broker breaking a rule; [`Faults`] apply afterwards.
pub type Rewrite = Arc<dyn Fn(Direction, Vec<u8>) -> Vec<Vec<u8>> + Send + Sync>;

/// How the reads of what the client sends are taken: as a broker must (a
/// byte stream), or as a broken broker that takes one read for one packet.
/// For the harness's tests of its framing scenarios; `toolkit proxy` always
/// streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Segments {
    /// Packets are framed from the stream, whatever the reads were.
    #[default]
    Stream,
    /// Only the first packet of each read goes on; the rest of the read is
    /// lost (a broker that handles one packet per segment).
    FirstPacketPerRead,
    /// A packet not complete at the end of a read is thrown away (a broker
    /// that expects each packet to arrive in one segment).
    DropPartial,
}

/// Receives every [`FaultEvent`] as it happens.
pub type FaultSink = Arc<dyn Fn(&FaultEvent) + Send + Sync>;

/// One injected fault, for the fault log.
#[derive(Debug, Clone)]
pub struct FaultEvent {
    /// When (UTC).
    pub at: OffsetDateTime,
    /// The connection, numbered from 1 in accept order.
    pub connection: u64,
    /// Which way; `None` for faults on the whole connection.
    pub direction: Option<Direction>,
    /// The packet it hit, in one line; `None` for faults on the connection.
    pub packet: Option<String>,
    /// What was done ("drop (rule 1, match 10)").
    pub fault: String,
}

impl fmt::Display for FaultEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self
            .at
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.at.unix_timestamp().to_string());
        let direction = self.direction.map_or("both", Direction::name);
        write!(
            f,
            "{at} conn={} {direction} {}",
            self.connection, self.fault
        )?;
        if let Some(p) = &self.packet {
            write!(f, ": {p}")?;
        }
        Ok(())
    }
}

/// Where the proxy forwards to.
#[derive(Clone)]
pub struct Upstream {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS towards the broker: the configuration and the name its
    /// certificate must carry.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Everything a proxy needs.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The broker.
    pub upstream: Upstream,
    /// TLS towards clients (terminated here); `None`: plain TCP.
    pub accept_tls: Option<Arc<ServerConfig>>,
    /// What to do wrong.
    pub faults: Faults,
    /// A test's packet rewriter, applied before the faults.
    pub rewrite: Option<Rewrite>,
    /// How the client's reads are taken.
    pub segments: Segments,
    /// The fault log.
    pub on_fault: FaultSink,
}

impl ProxyConfig {
    /// A plain proxy to `host:port` with `faults`, logging faults to
    /// `tracing` at info level.
    pub fn plain(host: &str, port: u16, faults: Faults) -> Self {
        Self {
            upstream: Upstream {
                host: host.to_owned(),
                port,
                tls: None,
            },
            accept_tls: None,
            faults,
            rewrite: None,
            segments: Segments::Stream,
            on_fault: Arc::new(|e: &FaultEvent| tracing::info!(fault = %e, "injected")),
        }
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("upstream", &self.upstream)
            .field("accept_tls", &self.accept_tls.is_some())
            .field("faults", &self.faults)
            .field("rewrite", &self.rewrite.is_some())
            .field("segments", &self.segments)
            .finish_non_exhaustive()
    }
}

/// A running proxy; it stops, closing every connection, when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on `listen` and serves clients in the background of the
    /// current tokio runtime.
    pub async fn start(listen: SocketAddr, config: ProxyConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            global: (0..config.faults.rules.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            config,
            paused_until: std::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
        });
        let task = tokio::spawn(accept_loop(listener, shared));
        Ok(Self { addr, task })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What all connections of one proxy share.
struct Shared {
    config: ProxyConfig,
    /// One count per rule, for rules with global scope.
    global: Vec<AtomicU64>,
    /// Until when every connection's broker side is paused (a global
    /// `pause-broker`).
    paused_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    next_id: AtomicU64,
}

/// A stream either side may be: TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Dropping the set (the proxy stopped) aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                    let span = tracing::info_span!("proxy_connection", connection = id, %peer);
                    connections.spawn(serve(Arc::clone(&shared), id, tcp).instrument(span));
                }
                // Out of descriptors or a client gone before accept: the
                // listener itself is fine, keep serving the others.
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(shared: Arc<Shared>, id: u64, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let client: Box<dyn Io> = match &shared.config.accept_tls {
        None => Box::new(tcp),
        Some(tls) => match tokio_rustls::TlsAcceptor::from(Arc::clone(tls))
            .accept(tcp)
            .await
        {
            Ok(s) => Box::new(s),
            Err(e) => {
                tracing::warn!(error = %e, "client TLS handshake failed");
                return;
            }
        },
    };
    let broker = match connect_upstream(&shared.config.upstream).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach the broker; closing the client");
            return;
        }
    };
    tracing::info!("connected through");
    pump::run(pump::Conn::new(shared, id), client, broker).await;
    tracing::info!("closed");
}

async fn connect_upstream(upstream: &Upstream) -> std::io::Result<Box<dyn Io>> {
    let tcp = TcpStream::connect((upstream.host.as_str(), upstream.port)).await?;
    let _ = tcp.set_nodelay(true);
    Ok(match &upstream.tls {
        None => Box::new(tcp),
        Some((config, name)) => Box::new(
            tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name.clone(), tcp)
                .await?,
        ),
    })
}
