//! Opening a probed connection step by step, reporting each: TCP, then (for
//! TLS) our own handshake with what it negotiated and the server's
//! certificate, then the MQTT connection and its CONNACK.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;

use super::session::{ConnAckInfo, Endpoint, Session};
use super::{Target, ms, sniff, tls};
use crate::exit::{Failure, Status};

/// Connects to `target`, printing one line per step prefixed with `label`,
/// or nothing when `label` is `None` (a preflight check).
pub(super) async fn open(target: &Target, label: Option<&str>) -> anyhow::Result<Session> {
    // Each step's line goes to standard output, after the label.
    let say = |line: String| {
        if let Some(label) = label {
            println!("{label}{line}");
        }
    };
    let addr = target.addr();
    // Read the certificate files before touching the network, so a missing
    // --cafile is reported as such whatever the broker's state.
    let tls_config = match &target.tls {
        Some(settings) => Some(tls::client_config(settings, None)?),
        None => None,
    };
    let started = Instant::now();
    let tcp = tcp_connect(target).await?;
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| addr.clone(), |a| a.to_string());
    say(format!(
        "tcp      connected to {peer} in {}",
        ms(started.elapsed())
    ));

    match &target.tls {
        None => drop(tcp),
        Some(settings) => {
            let report = tls::handshake_report(tcp, target, settings).await?;
            say(format!(
                "tls      {}, {}, handshake in {}",
                report.protocol,
                report.cipher_suite,
                ms(report.handshake)
            ));
            if let Some(cert) = &report.server_cert {
                say(format!("cert     subject {}", cert.subject));
                say(format!("         issuer  {}", cert.issuer));
                say(format!("         SANs    {}", cert.sans.join(", ")));
                say(format!(
                    "         expires {} ({})",
                    cert.not_after,
                    crate::certs::status_text(cert)
                ));
            }
            say(format!("         {}", settings.trust.describe()));
        }
    }

    let (session, connack) = mqtt(target, tls_config).await?;
    say(format!(
        "connack  0 connection accepted (session present: {}, client id {}) in {}",
        if connack.session_present { "yes" } else { "no" },
        target.client_id,
        ms(connack.elapsed)
    ));
    Ok(session)
}

/// The MQTT connection to `target` up to its CONNACK, over TLS with
/// `tls_config` when given, a failure explained as `probe` explains it:
/// `open` after its TCP and TLS reports, and `pub` and `sub` directly.
pub(crate) async fn mqtt(
    target: &Target,
    tls_config: Option<Arc<rustls::ClientConfig>>,
) -> anyhow::Result<(Session, ConnAckInfo)> {
    let endpoint = Endpoint {
        host: target.host.clone(),
        port: target.port,
        tls: tls_config,
        client_id: target.client_id.clone(),
        credentials: target.credentials.clone(),
        timeout: target.timeout,
        switch: target.switch,
        options: target.options.clone(),
    };
    match Session::connect(endpoint).await {
        Ok(connected) => Ok(connected),
        // The MQTT client cannot tell a web server or a TLS listener from a
        // broker that closed the connection; a raw CONNECT can.
        Err(failure)
            if target.tls.is_none()
                && matches!(failure.status, Status::Connect | Status::Closed) =>
        {
            Err(sniff::not_mqtt(target).await.unwrap_or(failure).into())
        }
        Err(failure) => Err(failure.into()),
    }
}

/// A TCP connection to the first address of `target.host` that answers,
/// within the timeout.
async fn tcp_connect(target: &Target) -> Result<TcpStream, Failure> {
    let addr = target.addr();
    let attempt = async {
        let addrs: Vec<_> = tokio::net::lookup_host(&addr)
            .await
            .map_err(|e| {
                Failure::new(
                    Status::Connect,
                    format!("cannot resolve '{}' ({e}): check --host", target.host),
                )
            })?
            .collect();
        let mut last = None;
        for a in &addrs {
            match TcpStream::connect(a).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Failure::new(
                Status::Connect,
                format!(
                    "connection to {addr} refused: nothing listens there; check --host and --port (MQTT is usually 1883, TLS 8883)"
                ),
            ),
            Some(e) => Failure::new(
                Status::Connect,
                format!("cannot connect to {addr}: {e}; check --host, --port and the network"),
            ),
            None => Failure::new(
                Status::Connect,
                format!("'{}' resolved to no address: check --host", target.host),
            ),
        })
    };
    match tokio::time::timeout(target.timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Failure::new(
            Status::Connect,
            format!(
                "no answer from {addr} within {}: the host is down or a firewall drops the packets",
                humantime::format_duration(target.timeout)
            ),
        )),
    }
}
