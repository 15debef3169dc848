//! Getting bytes to the broker: plain TCP or TLS (rustls with the ring
//! provider), split into a read half and a write half so that one task can
//! read while another writes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

use crate::connection::{self, TlsSettings};

/// The read half of a connection.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// TLS settings from the command line.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// How to check the broker's certificate, and the client certificate.
    pub settings: TlsSettings,
    /// The name to send (SNI) and to check the certificate against.
    pub server_name: String,
}

/// Where the broker is and how to reach it; cheap to clone per connection.
#[derive(Clone)]
pub struct Target {
    /// The broker's address.
    pub addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Local addresses connections are bound to in turn (`--source-addrs`);
    /// empty: the kernel picks. Each source address has its own ephemeral
    /// ports, so N of them reach N times as many connections to one broker.
    sources: Arc<[IpAddr]>,
    next_source: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .field("sources", &self.sources)
            .finish()
    }
}

impl Target {
    /// A target reached over plain TCP, or TLS when `tls` is given. Reads
    /// certificate files now, so a bad path fails before any load starts.
    pub fn new(addr: SocketAddr, tls: Option<&TlsOptions>) -> anyhow::Result<Self> {
        let tls = match tls {
            None => None,
            Some(opts) => {
                let config = connection::client_config(&opts.settings)?;
                let name = ServerName::try_from(opts.server_name.clone()).with_context(|| {
                    format!(
                        "--server-name {:?} is not a DNS name or IP address",
                        opts.server_name
                    )
                })?;
                Some((TlsConnector::from(config), name))
            }
        };
        Ok(Self {
            addr,
            tls,
            sources: Arc::from([]),
            next_source: Arc::default(),
        })
    }

    /// Binds connections to these local addresses in turn (see
    /// [`Target::connect`]); each must be of the broker address's family.
    pub fn with_sources(mut self, sources: Vec<IpAddr>) -> anyhow::Result<Self> {
        if let Some(wrong) = sources
            .iter()
            .find(|ip| ip.is_ipv4() != self.addr.is_ipv4())
        {
            anyhow::bail!(
                "--source-addrs {wrong}: the broker's address {} is of the other IP family; give addresses of its family",
                self.addr.ip()
            );
        }
        self.sources = sources.into();
        Ok(self)
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A TCP connection to the broker, from the next source address when
    /// some were given.
    async fn tcp(&self) -> std::io::Result<TcpStream> {
        if self.sources.is_empty() {
            return TcpStream::connect(self.addr).await;
        }
        let i = self.next_source.fetch_add(1, Ordering::Relaxed) % self.sources.len();
        let source = self.sources[i];
        let socket = if source.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(source, 0)).map_err(|e| {
            std::io::Error::new(e.kind(), format!("binding to source address {source}: {e}"))
        })?;
        socket.connect(self.addr).await
    }

    /// Opens a connection and, for TLS, completes the handshake.
    pub async fn connect(&self) -> std::io::Result<(Reader, Writer)> {
        let tcp = self.tcp().await?;
        // We batch our own writes; Nagle would only add delay to acks.
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => {
                let (r, w) = tcp.into_split();
                Ok((Box::new(r), Box::new(w)))
            }
            Some((connector, name)) => {
                let stream = connector.connect(name.clone(), tcp).await?;
                let (r, w) = tokio::io::split(stream);
                Ok((Box::new(r), Box::new(w)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections take the source addresses in turn: the listener sees
    /// each peer address once per round.
    #[tokio::test]
    async fn connections_take_the_source_addresses_in_turn() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sources: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
        let target = Target::new(listener.local_addr().unwrap(), None)
            .unwrap()
            .with_sources(sources.clone())
            .unwrap();
        let mut seen = Vec::new();
        let mut held = Vec::new();
        for _ in 0..4 {
            let wait = std::time::Duration::from_secs(10);
            let (connected, accepted) = tokio::join!(
                tokio::time::timeout(wait, target.connect()),
                listener.accept()
            );
            held.push(connected.unwrap().unwrap());
            seen.push(accepted.unwrap().1.ip());
        }
        assert_eq!(seen, [sources[0], sources[1], sources[0], sources[1]]);
    }

    #[test]
    fn a_source_of_the_other_family_is_refused() {
        let target = Target::new("127.0.0.1:1883".parse().unwrap(), None).unwrap();
        let e = target
            .with_sources(vec!["::1".parse().unwrap()])
            .unwrap_err();
        assert!(format!("{e}").contains("--source-addrs ::1"), "{e}");
    }
}
