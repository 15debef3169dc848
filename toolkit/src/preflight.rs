//! `toolkit conformance` before its suite: the broker under test from the
//! shared connection flags, and one connection on each listener the suite
//! will use, so that a wrong port, a server that is not MQTT, a TLS mix-up,
//! a certificate not trusted or refused credentials give one line with the
//! fix and `probe`'s exit status, instead of a hundred failed scenarios.
//!
//! The check itself is `probe`'s connection code ([`crate::probe::preflight`])
//! run silently: one definition of how a failure is classified. A main
//! listener reached over WebSocket (`--transport ws|wss`), which `probe`
//! does not speak, is checked instead with the harness's own liveness probe
//! (connect, subscribe, one QoS 1 message back) over the same connection
//! code the scenarios use, its failure classified with the same statuses.

use std::time::Duration;

use conformance::client::ConnectError;
use conformance::engine::SessionError;
use conformance::target::{Carrier, Credentials, Target, TlsTarget, WebSocketTarget};

use crate::connection::{self, ConnectionFlags, TlsSettings, Trust, refuse};
use crate::exit::{Failure, Status, usage};
use crate::probe;

/// Bound on each step of the preflight (TCP, TLS handshake, CONNACK).
const TIMEOUT: Duration = Duration::from_secs(5);

/// The broker under test as the flags describe it: the main listener on
/// `-p` (default 1883; MQTT on TCP, or over WebSocket with `--transport
/// ws|wss`, which needs `-p`), the TLS one on `--tls-port` when given, and
/// the credentials of `-u`/`-P`. Also returns the TLS settings, for
/// [`check`]; `wss` uses the same ones as `--tls-port`.
pub fn target(flags: &ConnectionFlags) -> anyhow::Result<(Target, Option<TlsSettings>)> {
    refuse(
        flags.tls,
        "--tls",
        "conformance tests the plain listener on -p; give the TLS listener with --tls-port PORT",
    )?;
    let transport = flags.transport;
    let ws_path = flags.ws_path()?;
    let port = match (flags.port, transport) {
        (Some(port), _) => port,
        (None, connection::Carrier::Tcp) => 1883,
        (None, _) => {
            return Err(usage(
                "--transport ws|wss needs -p PORT: the port of the broker's WebSocket listener (often 8080, 8083 or 9001)",
            ));
        }
    };
    let wss = transport == connection::Carrier::Wss;
    let mut target = Target::plain(flags.host.clone(), port);
    target.connect_timeout = TIMEOUT;
    let settings = flags.tls_settings(
        flags.tls_port.is_some() || wss,
        "--tls-port PORT (or --transport wss)",
    )?;
    if let Some(settings) = &settings
        && matches!(settings.trust, Trust::System)
    {
        let flag = if wss { "--transport wss" } else { "--tls-port" };
        return Err(usage(format!(
            "{flag} needs --cafile FILE (the CA of the broker's certificate) or --insecure"
        )));
    }
    if let (Some(tls_port), Some(settings)) = (flags.tls_port, &settings) {
        target.tls = Some(tls_target(&flags.host, tls_port, settings)?);
    }
    target.carrier = match (transport, &settings) {
        (connection::Carrier::Tcp, _) => Carrier::Tcp,
        (connection::Carrier::Wss, Some(settings)) => Carrier::WebSocket(WebSocketTarget::secure(
            ws_path,
            &tls_target(&flags.host, port, settings)?,
        )),
        (_, _) => Carrier::WebSocket(WebSocketTarget::plain(ws_path)),
    };
    if let Some(username) = &flags.username {
        let password = flags.password().ok_or_else(|| {
            usage(format!(
                "-u {username} needs its password (-P PASSWORD, or {} in the environment): the auth scenarios check that wrong ones are refused",
                connection::PASSWORD_ENV
            ))
        })?;
        target.credentials = Some(Credentials {
            username: username.clone(),
            password,
        });
    }
    Ok((target, settings))
}

/// The TLS listener: the one client configuration from the flags, and the
/// same without the client certificate (for the scenarios checking that a
/// listener requiring one refuses a client without).
fn tls_target(host: &str, port: u16, settings: &TlsSettings) -> anyhow::Result<TlsTarget> {
    let verifier = connection::server_verifier(&settings.trust)?;
    let without = connection::client_config_with(verifier.clone(), None)?;
    let with = match &settings.client_auth {
        Some(auth) => Some(connection::client_config_with(verifier, Some(auth))?),
        None => None,
    };
    Ok(TlsTarget {
        port,
        client_cert: with.is_some(),
        config: with.unwrap_or_else(|| without.clone()),
        config_without_cert: without,
        server_name: connection::server_name(host)?,
    })
}

/// Connects once on each listener of `target` (the main one, then TLS) as
/// `probe` does, with `-i` as the client id when given; the first failure
/// is returned with `probe`'s message and exit status. A WebSocket main
/// listener gets [`websocket`]'s check instead.
pub fn check(
    runtime: &tokio::runtime::Runtime,
    flags: &ConnectionFlags,
    target: &Target,
    tls: Option<&TlsSettings>,
) -> anyhow::Result<()> {
    let credentials = target
        .credentials
        .as_ref()
        .map(|c| (c.username.clone(), c.password.clone()));
    let listener = |port, tls: Option<&TlsSettings>| {
        probe::Target::new(
            &target.host,
            port,
            tls.cloned(),
            flags.client_id.clone(),
            credentials.clone(),
            TIMEOUT,
            probe::TlsSwitch::TlsPort,
        )
    };
    if matches!(target.carrier, Carrier::WebSocket(_)) {
        websocket(runtime, target)?;
    } else {
        probe::preflight(runtime, &listener(target.port, None))?;
    }
    if let (Some(tls_target), Some(settings)) = (&target.tls, tls) {
        probe::preflight(runtime, &listener(tls_target.port, Some(settings)))?;
    }
    Ok(())
}

/// The check of a WebSocket main listener: the harness's liveness probe
/// (the WebSocket handshake, CONNECT, a QoS 1 message back), its failure
/// given `probe`'s exit status for the same kind of fault.
fn websocket(runtime: &tokio::runtime::Runtime, target: &Target) -> anyhow::Result<()> {
    let run_id = crate::unique::nonce();
    let probed = runtime.block_on(conformance::liveness::probe(target, &run_id, 0, TIMEOUT));
    let Err(e) = probed else { return Ok(()) };
    let url = target.main_listener();
    let status = match &e {
        SessionError::Connect(ConnectError::Tls { .. }) => Status::Handshake,
        SessionError::Connect(ConnectError::Timeout { .. }) | SessionError::NoAnswer { .. } => {
            Status::Timeout
        }
        SessionError::Connect(_) => Status::Connect,
        SessionError::Closed { .. } => Status::Closed,
        SessionError::Unexpected { waiting_for, .. } if *waiting_for == "CONNACK" => {
            Status::Refused
        }
        SessionError::Unexpected { .. } => Status::Failure,
    };
    Err(Failure::new(status, format!("{url}: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{Status, status_of};

    fn flags(args: &[&str]) -> ConnectionFlags {
        crate::flag_parse::parse_flags("conformance", args).unwrap()
    }

    fn refused(args: &[&str], says: &str) {
        let err = target(&flags(args)).unwrap_err();
        assert_eq!(status_of(&err), Status::Usage, "{args:?}");
        assert!(err.to_string().contains(says), "{args:?}: {err}");
    }

    #[test]
    fn plain_target_from_the_flags() {
        let (t, tls) = target(&flags(&["-h", "b.example", "-p", "11883"])).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("b.example", 11883));
        assert!(t.tls.is_none() && t.credentials.is_none() && tls.is_none());
        assert_eq!(target(&flags(&[])).unwrap().0.port, 1883);
        let (t, _) = target(&flags(&["-u", "alice", "-P", "s3cret"])).unwrap();
        let c = t.credentials.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cret")
        );
    }

    #[test]
    fn inconsistent_flags_are_refused() {
        refused(&["--tls"], "--tls-port PORT");
        refused(&["--tls-port", "8883"], "--cafile FILE");
        refused(&["--cafile", "ca.pem"], "add --tls-port PORT");
        refused(&["--insecure"], "add --tls-port PORT");
        refused(
            &["--cert", "c.pem", "--key", "c.key"],
            "add --tls-port PORT",
        );
        refused(
            &["--tls-port", "1", "--cafile", "/nonexistent/ca.pem"],
            "--cafile",
        );
    }

    #[test]
    fn websocket_targets_from_the_flags() {
        let (t, tls) = target(&flags(&["--transport", "ws", "-p", "8080"])).unwrap();
        assert!(tls.is_none());
        assert_eq!(t.main_listener(), "ws://127.0.0.1:8080/mqtt");
        let (t, tls) = target(&flags(&[
            "--transport",
            "wss",
            "-p",
            "8081",
            "--ws-path",
            "/ws",
            "--insecure",
        ]))
        .unwrap();
        assert_eq!(t.main_listener(), "wss://127.0.0.1:8081/ws");
        assert!(t.tls.is_none() && matches!(tls.unwrap().trust, Trust::Insecure));
    }

    #[test]
    fn inconsistent_websocket_flags_are_refused() {
        refused(&["--transport", "ws"], "needs -p PORT");
        refused(
            &["--transport", "wss", "-p", "1"],
            "--transport wss needs --cafile FILE",
        );
        refused(
            &["--ws-path", "/mqtt"],
            "--ws-path needs --transport ws or wss",
        );
        refused(
            &["--transport", "ws", "-p", "1", "--insecure"],
            "add --tls-port PORT (or --transport wss)",
        );
    }

    #[test]
    fn insecure_tls_target() {
        let (t, tls) = target(&flags(&["--tls-port", "18883", "--insecure"])).unwrap();
        let tls_target = t.tls.unwrap();
        assert_eq!(tls_target.port, 18883);
        assert!(!tls_target.client_cert);
        assert!(matches!(tls.unwrap().trust, Trust::Insecure));
    }
}
