//! `toolkit probe`: does this broker answer, over plain TCP or TLS, and do
//! messages make the round trip at each QoS?
//!
//! - [`check`]: the default probe of one listener;
//! - [`cross`]: `--cross`, a plain and a TLS client exchanging messages;
//! - [`shell`]: `--interactive`, a small command shell;
//! - [`connect`]: TCP, the TLS report and CONNACK, shared by all three;
//! - [`session`]: a rumqttc connection with bounded waits;
//! - [`tls`]: rustls configuration, the TLS report, and TLS failure reasons.

mod check;
mod connect;
mod cross;
mod session;
mod shell;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rumqttc::QoS;

use crate::exit::usage;
use crate::unique::nonce;
use tls::{TlsSettings, Trust};

const EXIT_HELP: &str = "Exit status:
  0  every step worked
  1  unexpected failure
  2  bad usage: a wrong flag, or a --cafile/--cert/--key file missing or unreadable
  3  cannot connect: refused, unreachable, no answer, name not resolved
  4  TLS handshake failed (not a TLS port, no common cipher, client certificate refused)
  5  server certificate rejected (self-signed, unknown CA, wrong host name, expired)
  6  broker refused the connection (CONNACK 1-5) or a subscription (SUBACK 0x80)
  7  a message was lost, late, or came back changed
  8  timed out waiting for the broker
  9  the broker closed the connection
Each failure prints one line saying what to try.";

/// Flags of `toolkit probe`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_HELP)]
pub struct ProbeArgs {
    /// Broker host name or IP address; with TLS, the name its certificate must carry.
    #[arg(long, value_name = "HOST", default_value = "localhost")]
    host: String,

    /// Broker port [default: 1883, or 8883 with --tls]. With --cross, the plain port.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,

    /// Connect with TLS.
    #[arg(long)]
    tls: bool,

    /// Accept any server certificate and host name (the connection is still
    /// encrypted, but not authenticated).
    #[arg(long, conflicts_with = "cafile")]
    insecure: bool,

    /// CA certificates (PEM) to verify the server with [default: the system's
    /// trusted CAs]. For a self-signed server certificate, the certificate itself.
    #[arg(long, value_name = "FILE")]
    cafile: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,

    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,

    /// User name for CONNECT.
    #[arg(long, value_name = "USER")]
    username: Option<String>,

    /// Password for CONNECT (MQTT 3.1.1 allows one only with a user name [MQTT-3.1.2-22]).
    #[arg(long, value_name = "PASSWORD", requires = "username")]
    password: Option<String>,

    /// Client identifier [default: probe- and 16 random hex digits].
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,

    /// Test only this QoS [default: 0, 1 and 2].
    #[arg(long, value_name = "0|1|2", value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: Option<u8>,

    /// Seconds to wait for each answer (connect, CONNACK, SUBACK, each message).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_timeout)]
    timeout: Duration,

    /// Check that a plain client and a TLS client on the same broker receive
    /// each other's messages (needs --tls-port).
    #[arg(long, requires = "tls_port", conflicts_with = "interactive")]
    cross: bool,

    /// With --cross: the broker's TLS port.
    #[arg(long, value_name = "PORT", requires = "cross")]
    tls_port: Option<u16>,

    /// Open a small shell (connect, sub, unsub, pub, wait, status, quit);
    /// messages are printed as they arrive.
    #[arg(long)]
    interactive: bool,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(format!("{text} is not between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One listener to probe and how to talk to it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    host: String,
    port: u16,
    tls: Option<TlsSettings>,
    client_id: String,
    credentials: Option<(String, String)>,
    timeout: Duration,
}

impl Target {
    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Runs `toolkit probe`.
pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let tls_settings = tls_settings(&args)?;
    let client_id = args.client_id.clone().unwrap_or_else(random_client_id);
    let credentials = args
        .username
        .clone()
        .map(|user| (user, args.password.clone().unwrap_or_default()));
    let qos_list: Vec<QoS> = match args.qos {
        Some(q) => vec![qos_of(q)],
        None => vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce],
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if args.cross {
        let tls_port = args
            .tls_port
            .ok_or_else(|| usage("--cross needs --tls-port"))?;
        let plain = Target {
            host: args.host.clone(),
            port: args.port.unwrap_or(1883),
            tls: None,
            client_id: format!("{client_id}-p"),
            credentials: credentials.clone(),
            timeout: args.timeout,
        };
        let tls = Target {
            port: tls_port,
            tls: Some(tls_settings.unwrap_or(TlsSettings {
                trust: Trust::System,
                client_auth: None,
            })),
            client_id: format!("{client_id}-t"),
            ..plain.clone()
        };
        return runtime.block_on(cross::run(&plain, &tls, &qos_list));
    }
    let target = Target {
        port: args.port.unwrap_or(if args.tls { 8883 } else { 1883 }),
        host: args.host,
        tls: tls_settings,
        client_id,
        credentials,
        timeout: args.timeout,
    };
    if args.interactive {
        runtime.block_on(shell::run(&target))
    } else {
        runtime.block_on(check::run(&target, &qos_list))
    }
}

/// The TLS settings the flags ask for; `None` for plain TCP. TLS-only flags
/// without --tls (or --cross) are a usage error rather than silently ignored.
fn tls_settings(args: &ProbeArgs) -> anyhow::Result<Option<TlsSettings>> {
    let wants_tls = args.tls || args.cross;
    if !wants_tls {
        let stray = [
            (args.insecure, "--insecure"),
            (args.cafile.is_some(), "--cafile"),
            (args.cert.is_some(), "--cert"),
        ];
        if let Some((_, flag)) = stray.iter().find(|(set, _)| *set) {
            return Err(usage(format!("{flag} only applies to TLS: add --tls")));
        }
        return Ok(None);
    }
    let trust = match (&args.cafile, args.insecure) {
        (Some(file), _) => Trust::CaFile(file.clone()),
        (None, true) => Trust::Insecure,
        (None, false) => Trust::System,
    };
    let client_auth = args.cert.clone().zip(args.key.clone());
    Ok(Some(TlsSettings { trust, client_auth }))
}

fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The QoS as the digit people write.
fn qos_digit(q: QoS) -> u8 {
    match q {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

/// `probe-` and 16 hex digits: 22 characters, within the 23 every broker
/// must accept [MQTT-3.1.3-5].
fn random_client_id() -> String {
    format!("probe-{}", nonce())
}

/// A duration as milliseconds with one decimal.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ProbeArgs, clap::Error> {
        crate::flag_parse::parse_flags("probe", args)
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.host, "localhost");
        assert_eq!(a.port, None);
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert!(!a.tls && !a.insecure && !a.cross && !a.interactive);
        assert!(tls_settings(&a).unwrap().is_none());
    }

    #[test]
    fn qos_is_zero_to_two() {
        assert_eq!(parse(&["--qos", "2"]).unwrap().qos, Some(2));
        assert!(parse(&["--qos", "3"]).is_err());
    }

    #[test]
    fn timeout_must_be_positive_seconds() {
        assert_eq!(
            parse(&["--timeout", "0.5"]).unwrap().timeout,
            Duration::from_millis(500)
        );
        for bad in ["0", "-1", "x", "NaN", "99999"] {
            assert!(parse(&["--timeout", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn insecure_and_cafile_exclude_each_other() {
        assert!(parse(&["--tls", "--insecure", "--cafile", "ca.pem"]).is_err());
    }

    #[test]
    fn cert_and_key_go_together() {
        assert!(parse(&["--tls", "--cert", "c.pem"]).is_err());
        assert!(parse(&["--tls", "--key", "c.key"]).is_err());
        let a = parse(&["--tls", "--cert", "c.pem", "--key", "c.key"]).unwrap();
        let s = tls_settings(&a).unwrap().unwrap();
        assert!(s.client_auth.is_some());
    }

    #[test]
    fn password_needs_username() {
        assert!(parse(&["--password", "p"]).is_err());
        assert!(parse(&["--username", "u", "--password", "p"]).is_ok());
        assert!(parse(&["--username", "u"]).is_ok());
    }

    #[test]
    fn cross_needs_tls_port_and_tls_port_needs_cross() {
        assert!(parse(&["--cross"]).is_err());
        assert!(parse(&["--tls-port", "8883"]).is_err());
        assert!(parse(&["--cross", "--tls-port", "8883", "--port", "1883"]).is_ok());
        assert!(parse(&["--cross", "--tls-port", "1", "--interactive"]).is_err());
    }

    #[test]
    fn tls_flags_without_tls_are_refused() {
        for flags in [
            &["--insecure"][..],
            &["--cafile", "ca.pem"],
            &["--cert", "c", "--key", "k"],
        ] {
            let a = parse(flags).unwrap();
            assert!(tls_settings(&a).is_err(), "{flags:?}");
        }
    }

    #[test]
    fn trust_follows_the_flags() {
        let a = parse(&["--tls"]).unwrap();
        assert!(matches!(
            tls_settings(&a).unwrap().unwrap().trust,
            Trust::System
        ));
        let a = parse(&["--tls", "--insecure"]).unwrap();
        assert!(matches!(
            tls_settings(&a).unwrap().unwrap().trust,
            Trust::Insecure
        ));
        let a = parse(&["--tls", "--cafile", "x.pem"]).unwrap();
        assert!(matches!(
            tls_settings(&a).unwrap().unwrap().trust,
            Trust::CaFile(_)
        ));
    }

    #[test]
    fn client_ids_fit_the_guaranteed_length_and_differ() {
        let a = random_client_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, random_client_id());
    }
}
