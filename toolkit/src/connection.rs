//! The connection flags `probe`, `conformance` and `bench` share, spelled as
//! mosquitto_pub and mosquitto_sub spell them (`-h`, `-p`, `-u`, `-P`,
//! `--cafile`, `--cert`, `--key`, `--insecure`, `--tls`, `--tls-port`,
//! `-i`, and `--transport`/`--ws-path` for MQTT over WebSocket), and the
//! one TLS client configuration built from them (`mqtts` and `wss` alike).
//!
//! Each subcommand flattens [`ConnectionFlags`] into its own flags and then
//! decides which listeners it uses: `probe` and `bench` talk to one port
//! (plain, or TLS with `--tls`), `conformance` to the plain port and, with
//! `--tls-port`, the TLS one as well. A flag that does not apply to a
//! subcommand is a usage error there, never silently ignored.
//!
//! The default host is `127.0.0.1`, not mosquitto's `localhost`: `localhost`
//! often resolves to `::1` first, and a broker listening on IPv4 only (as
//! mosquitto does with `listener 1883 127.0.0.1`) then refuses a client that
//! tries only the first address; `127.0.0.1` means the same on every machine,
//! and the server certificates `toolkit certs` makes carry it as an IP name.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use credentials::tls::{self, AcceptAnyServerCert, ClientIdentity, ServerVerification};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

use crate::exit::usage;

/// The host every subcommand connects to when `-h` is not given.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// The environment variable a password is read from when `-u` is given
/// without `-P` (keeps it out of the process list and shell history).
pub const PASSWORD_ENV: &str = "MQTT_PASSWORD";

/// How to reach the broker: one definition for `probe`, `conformance` and
/// `bench`.
#[derive(Debug, Clone, Args)]
pub struct ConnectionFlags {
    /// Broker host name or IP address; with TLS, the name its certificate
    /// must carry.
    #[arg(
        short = 'h',
        long,
        value_name = "HOST",
        default_value = DEFAULT_HOST,
        short_alias = 'H'
    )]
    pub host: String,

    /// Broker port [default: 1883, or 8883 with --tls].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,

    /// User name for CONNECT.
    #[arg(short = 'u', long, value_name = "USER")]
    pub username: Option<String>,

    /// Password for CONNECT; needs -u (MQTT 3.1.1 allows a password only with
    /// a user name [MQTT-3.1.2-22]). Without -P, the MQTT_PASSWORD
    /// environment variable is used when set.
    #[arg(short = 'P', long, value_name = "PASSWORD", requires = "username")]
    pub password: Option<String>,

    /// Connect with TLS on --port.
    #[arg(long)]
    pub tls: bool,

    /// The broker's TLS port next to its plain one (conformance: runs the
    /// TLS scenarios there; probe: with --cross).
    #[arg(long, value_name = "PORT")]
    pub tls_port: Option<u16>,

    /// CA certificates (PEM) to verify the broker's certificate with. For a
    /// self-signed server certificate, the certificate itself.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cafile: Option<PathBuf>,

    /// Client certificate (PEM) for a listener that requires one (mutual
    /// TLS); make one with `toolkit certs client`.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Accept any server certificate and host name (the connection is still
    /// encrypted, but not authenticated).
    #[arg(long)]
    pub insecure: bool,

    /// Client identifier [default: chosen per subcommand, unique per run].
    #[arg(short = 'i', long, value_name = "ID")]
    pub client_id: Option<String>,

    /// How --port carries MQTT: tcp (MQTT on TCP), ws (MQTT over WebSocket,
    /// ws://) or wss (over WebSocket with TLS, wss://, verified with
    /// --cafile or --insecure and presenting --cert/--key as TLS does).
    /// conformance only; probe and bench speak tcp.
    #[arg(long, value_enum, default_value_t = Carrier::Tcp, value_name = "tcp|ws|wss")]
    pub transport: Carrier,

    /// HTTP path of the WebSocket upgrade with --transport ws|wss
    /// [default: /mqtt, as MQTT.js and most brokers use; mosquitto
    /// accepts any].
    #[arg(long, value_name = "PATH")]
    pub ws_path: Option<String>,
}

/// `--transport`: what carries MQTT on `--port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Carrier {
    /// MQTT on TCP (or TLS with --tls).
    Tcp,
    /// MQTT over WebSocket.
    Ws,
    /// MQTT over WebSocket over TLS.
    Wss,
}

impl Carrier {
    /// Whether it is one of the WebSocket carriers.
    pub fn is_websocket(self) -> bool {
        matches!(self, Carrier::Ws | Carrier::Wss)
    }
}

/// How the server's certificate is judged.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Against the CA certificates in this PEM file (`--cafile`).
    CaFile(PathBuf),
    /// Against the operating system's trust store.
    System,
    /// Not at all (`--insecure`); the handshake signature is still checked.
    Insecure,
}

impl Trust {
    /// How reports name it.
    pub fn describe(&self) -> String {
        match self {
            Trust::CaFile(p) => format!("verified against {}", p.display()),
            Trust::System => "verified against the system's trusted CAs".to_owned(),
            Trust::Insecure => "NOT verified (--insecure)".to_owned(),
        }
    }
}

/// The TLS half of the flags.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// How to judge the server.
    pub trust: Trust,
    /// Client certificate chain and key files for mutual TLS.
    pub client_auth: Option<(PathBuf, PathBuf)>,
}

impl ConnectionFlags {
    /// Refuses `--transport ws|wss` and `--ws-path` in a subcommand that
    /// speaks MQTT on TCP only (`probe`, `bench`), naming `subcommand`.
    pub fn refuse_websocket(&self, subcommand: &str) -> anyhow::Result<()> {
        refuse(
            self.transport.is_websocket(),
            "--transport ws|wss",
            &format!(
                "{subcommand} speaks MQTT on TCP or TLS; run the suite over WebSocket with `toolkit conformance --transport ws|wss`"
            ),
        )?;
        refuse(
            self.ws_path.is_some(),
            "--ws-path",
            "it goes with --transport ws|wss",
        )
    }

    /// The WebSocket path: `--ws-path`, or `/mqtt`. An error when
    /// `--ws-path` is given without a WebSocket `--transport`, or does not
    /// start with `/`.
    pub fn ws_path(&self) -> anyhow::Result<String> {
        match (&self.ws_path, self.transport.is_websocket()) {
            (Some(_), false) => Err(usage("--ws-path needs --transport ws or wss")),
            (Some(p), true) if !p.starts_with('/') => Err(usage(format!(
                "--ws-path {p:?} must start with / (e.g. /mqtt)"
            ))),
            (Some(p), true) => Ok(p.clone()),
            (None, _) => Ok(conformance::websocket::DEFAULT_PATH.to_owned()),
        }
    }

    /// The port of the one listener `probe` and `bench` talk to: `-p`, or
    /// the standard port for plain MQTT (1883) or MQTT over TLS (8883).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.tls { 8883 } else { 1883 })
    }

    /// User name and password for CONNECT: `-u` with `-P`, or with
    /// `MQTT_PASSWORD` from the environment, or with an empty password.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.credentials_with(std::env::var(PASSWORD_ENV).ok())
    }

    /// [`Self::credentials`] with the environment's password given.
    fn credentials_with(&self, env_password: Option<String>) -> Option<(String, String)> {
        let user = self.username.clone()?;
        Some((user, self.password_with(env_password).unwrap_or_default()))
    }

    /// The password for CONNECT, if any: `-P`, or `MQTT_PASSWORD` from the
    /// environment; only with a user name [MQTT-3.1.2-22].
    pub fn password(&self) -> Option<String> {
        self.password_with(std::env::var(PASSWORD_ENV).ok())
    }

    fn password_with(&self, env_password: Option<String>) -> Option<String> {
        self.username.as_ref()?;
        self.password.clone().or(env_password)
    }

    /// The TLS settings the flags ask for, when the subcommand uses TLS
    /// (`enabled`); `None` for plain TCP. TLS-only flags without TLS are a
    /// usage error naming `enable` (the flag that would turn TLS on) rather
    /// than silently ignored. Without --cafile or --insecure the server is
    /// judged against the system's trusted CAs.
    pub fn tls_settings(&self, enabled: bool, enable: &str) -> anyhow::Result<Option<TlsSettings>> {
        if !enabled {
            let stray = [
                (self.insecure, "--insecure"),
                (self.cafile.is_some(), "--cafile"),
                (self.cert.is_some(), "--cert"),
            ];
            if let Some((_, flag)) = stray.iter().find(|(set, _)| *set) {
                return Err(usage(format!("{flag} only applies to TLS: add {enable}")));
            }
            return Ok(None);
        }
        let trust = match (&self.cafile, self.insecure) {
            (Some(file), _) => Trust::CaFile(file.clone()),
            (None, true) => Trust::Insecure,
            (None, false) => Trust::System,
        };
        let client_auth = self.cert.clone().zip(self.key.clone());
        Ok(Some(TlsSettings { trust, client_auth }))
    }
}

/// Refuses `flag` (when `set`) in a subcommand it does not apply to, saying
/// what to use instead: a usage error, never a flag silently ignored.
pub fn refuse(set: bool, flag: &str, instead: &str) -> anyhow::Result<()> {
    if set {
        return Err(usage(format!("{flag} does not apply here: {instead}")));
    }
    Ok(())
}

/// The name the server's certificate must match: a DNS name or an IP address.
pub fn server_name(host: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).map_err(|_| {
        usage(format!(
            "--host {host:?} is neither a DNS name nor an IP address"
        ))
    })
}

/// The verifier `trust` asks for.
pub fn server_verifier(trust: &Trust) -> anyhow::Result<Arc<dyn ServerCertVerifier>> {
    let provider = tls::provider();
    let roots = match trust {
        Trust::Insecure => return Ok(Arc::new(AcceptAnyServerCert::new(&provider))),
        Trust::CaFile(path) => {
            tls::load_roots(path, "--cafile").map_err(|e| usage(e.to_string()))?
        }
        Trust::System => system_roots(),
    };
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| {
                usage(format!(
                    "no usable CA certificate to verify the server with: {e}"
                ))
            })?;
    Ok(verifier)
}

/// The client configuration for `settings`: the one every subcommand uses.
pub fn client_config(settings: &TlsSettings) -> anyhow::Result<Arc<ClientConfig>> {
    client_config_with(
        server_verifier(&settings.trust)?,
        settings.client_auth.as_ref(),
    )
}

/// A client configuration judging the server with `verifier` (`probe` wraps
/// [`server_verifier`] to record the chain it saw), presenting the client
/// certificate and key files in `client_auth` when given.
pub fn client_config_with(
    verifier: Arc<dyn ServerCertVerifier>,
    client_auth: Option<&(PathBuf, PathBuf)>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let identity = match client_auth {
        None => None,
        Some((cert, key)) => {
            Some(ClientIdentity::load(cert, key).map_err(|e| usage(e.to_string()))?)
        }
    };
    let config = tls::client_config(ServerVerification::Custom(verifier), identity.as_ref())
        .map_err(|e| usage(e.to_string()))?;
    Ok(Arc::new(config))
}

fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::debug!(error = %err, "skipping part of the system trust store");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "system trust store loaded");
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ConnectionFlags, clap::Error> {
        crate::flag_parse::parse_flags("connect", args)
    }

    #[test]
    fn defaults() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.host, DEFAULT_HOST);
        assert_eq!((f.port, f.port_or_default()), (None, 1883));
        assert!(f.username.is_none() && f.password.is_none() && f.client_id.is_none());
        assert!(!f.tls && !f.insecure && f.tls_port.is_none());
        assert!(f.cafile.is_none() && f.cert.is_none() && f.key.is_none());
        assert!(f.tls_settings(false, "--tls").unwrap().is_none());
        assert_eq!(parse(&["--tls"]).unwrap().port_or_default(), 8883);
    }

    #[test]
    fn every_flag_parses_in_mosquitto_spelling() {
        let f = parse(&[
            "-h",
            "broker.example",
            "-p",
            "11883",
            "-u",
            "alice",
            "-P",
            "s3cret",
            "--tls",
            "--tls-port",
            "18883",
            "--cafile",
            "ca.pem",
            "--cert",
            "client.pem",
            "--key",
            "client.key",
            "-i",
            "sensor-1",
        ])
        .unwrap();
        assert_eq!(f.host, "broker.example");
        assert_eq!((f.port, f.tls_port), (Some(11883), Some(18883)));
        assert_eq!(
            f.credentials_with(None),
            Some(("alice".to_owned(), "s3cret".to_owned()))
        );
        assert!(f.tls);
        assert_eq!(f.client_id.as_deref(), Some("sensor-1"));
        let tls = f.tls_settings(true, "--tls").unwrap().unwrap();
        assert!(matches!(&tls.trust, Trust::CaFile(p) if p == &PathBuf::from("ca.pem")));
        assert_eq!(
            tls.client_auth,
            Some((PathBuf::from("client.pem"), PathBuf::from("client.key")))
        );
        let f = parse(&["--insecure"]).unwrap();
        assert!(f.insecure);
    }

    #[test]
    fn long_and_old_spellings_parse() {
        let f = parse(&[
            "--host",
            "b",
            "--port",
            "1",
            "--username",
            "u",
            "--password",
            "p",
            "--client-id",
            "c",
        ])
        .unwrap();
        assert_eq!((f.host.as_str(), f.port), ("b", Some(1)));
        assert_eq!(f.client_id.as_deref(), Some("c"));
        // bench's old -H stays, hidden.
        assert_eq!(parse(&["-H", "old"]).unwrap().host, "old");
    }

    #[test]
    fn password_comes_from_the_flag_then_the_environment() {
        let f = parse(&["-u", "alice"]).unwrap();
        assert_eq!(
            f.credentials_with(Some("env".into())),
            Some(("alice".to_owned(), "env".to_owned()))
        );
        assert_eq!(
            f.credentials_with(None),
            Some(("alice".to_owned(), String::new()))
        );
        let f = parse(&["-u", "alice", "-P", "flag"]).unwrap();
        assert_eq!(
            f.credentials_with(Some("env".into())),
            Some(("alice".to_owned(), "flag".to_owned()))
        );
        assert_eq!(f.password_with(None), Some("flag".to_owned()));
        // Without a user name there are no credentials [MQTT-3.1.2-22].
        let f = parse(&[]).unwrap();
        assert_eq!(f.credentials_with(Some("env".into())), None);
        assert_eq!(f.password_with(Some("env".into())), None);
        assert_eq!(parse(&["-u", "a"]).unwrap().password_with(None), None);
    }

    #[test]
    fn inconsistent_flags_are_refused() {
        assert!(parse(&["-P", "p"]).is_err(), "-P needs -u");
        assert!(parse(&["--cafile", "c", "--insecure"]).is_err());
        assert!(parse(&["--cert", "c.pem"]).is_err(), "--cert needs --key");
        assert!(parse(&["--key", "c.key"]).is_err(), "--key needs --cert");
        assert!(parse(&["-p", "70000"]).is_err());
    }

    #[test]
    fn tls_flags_without_tls_are_refused_naming_the_switch() {
        for flags in [
            &["--insecure"][..],
            &["--cafile", "ca.pem"],
            &["--cert", "c", "--key", "k"],
        ] {
            let f = parse(flags).unwrap();
            let err = f.tls_settings(false, "--tls-port PORT").unwrap_err();
            assert!(err.to_string().contains("add --tls-port PORT"), "{err}");
        }
    }

    #[test]
    fn trust_follows_the_flags() {
        let trust = |args: &[&str]| {
            parse(args)
                .unwrap()
                .tls_settings(true, "--tls")
                .unwrap()
                .unwrap()
                .trust
        };
        assert!(matches!(trust(&[]), Trust::System));
        assert!(matches!(trust(&["--insecure"]), Trust::Insecure));
        assert!(matches!(trust(&["--cafile", "x.pem"]), Trust::CaFile(_)));
    }

    #[test]
    fn websocket_flags_parse_and_default_to_mqtt_on_tcp() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.transport, Carrier::Tcp);
        assert_eq!(f.ws_path().unwrap(), "/mqtt");
        assert!(f.refuse_websocket("probe").is_ok());
        let f = parse(&["--transport", "ws"]).unwrap();
        assert_eq!(
            (f.transport, f.ws_path().unwrap().as_str()),
            (Carrier::Ws, "/mqtt")
        );
        let f = parse(&["--transport", "wss", "--ws-path", "/ws"]).unwrap();
        assert_eq!(
            (f.transport, f.ws_path().unwrap().as_str()),
            (Carrier::Wss, "/ws")
        );
        assert!(parse(&["--transport", "quic"]).is_err());
    }

    #[test]
    fn websocket_flags_where_they_do_not_apply_are_refused() {
        let err = parse(&["--ws-path", "/mqtt"])
            .unwrap()
            .ws_path()
            .unwrap_err();
        assert_eq!(err.to_string(), "--ws-path needs --transport ws or wss");
        let err = parse(&["--transport", "ws", "--ws-path", "mqtt"])
            .unwrap()
            .ws_path()
            .unwrap_err();
        assert!(err.to_string().contains("must start with /"), "{err}");
        let err = parse(&["--transport", "wss"])
            .unwrap()
            .refuse_websocket("bench")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--transport ws|wss does not apply here: bench"),
            "{err}"
        );
    }

    #[test]
    fn a_flag_that_does_not_apply_is_refused() {
        assert!(refuse(false, "--tls", "x").is_ok());
        let err = refuse(true, "--tls", "use --tls-port").unwrap_err();
        assert_eq!(err.to_string(), "--tls does not apply here: use --tls-port");
    }
}
