//! Getting bytes to the broker: plain TCP or TLS (rustls with the ring
//! provider), split into a read half and a write half so that one task can
//! read while another writes.

use std::net::SocketAddr;

use anyhow::Context;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
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
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
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
        Ok(Self { addr, tls })
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Opens a connection and, for TLS, completes the handshake.
    pub async fn connect(&self) -> std::io::Result<(Reader, Writer)> {
        let tcp = TcpStream::connect(self.addr).await?;
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
