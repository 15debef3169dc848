//! `toolkit probe`: does this broker answer, over plain TCP or TLS, and do
//! messages make the round trip at each QoS?
//!
//! - [`check`]: the default probe of one listener;
//! - [`cross`]: `--cross`, a plain and a TLS client exchanging messages;
//! - [`shell`]: `--interactive`, a small command shell;
//! - [`connect`]: TCP, the TLS report and CONNACK, shared by all three;
//! - [`session`]: a rumqttc connection with bounded waits;
//! - [`sniff`]: what answers when the MQTT connection failed (a web server?);
//! - [`tls`]: rustls configuration, the TLS report, and TLS failure reasons.

mod check;
pub(crate) mod connect;
mod cross;
pub(crate) mod session;
mod shell;
mod sniff;
mod tls;

use std::time::Duration;

use clap::Args;
use rumqttc::QoS;

use crate::connection::{ConnectionFlags, TlsSettings, Trust};
use crate::exit::usage;
use crate::unique::nonce;
use session::ClientOptions;

const EXIT_HELP: &str = "Exit status:
  0  every step worked
  1  unexpected failure
  2  bad usage: a wrong flag, or a --cafile/--cert/--key file missing or unreadable
  3  cannot connect: refused, unreachable, no answer, name not resolved, not MQTT
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
    /// Where the broker is and how to connect (shared with conformance and
    /// bench). With --cross, --port is the plain port.
    #[command(flatten)]
    pub connection: ConnectionFlags,

    /// Test only this QoS [default: 0, 1 and 2].
    #[arg(short = 'q', long, value_name = "0|1|2", value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: Option<u8>,

    /// Seconds to wait for each answer (connect, CONNACK, SUBACK, each message).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_timeout)]
    timeout: Duration,

    /// Check that a plain client and a TLS client on the same broker receive
    /// each other's messages (needs --tls-port).
    #[arg(long, requires = "tls_port", conflicts_with = "interactive")]
    cross: bool,

    /// Open a small shell (connect, sub, unsub, pub, wait, status, quit);
    /// messages are printed as they arrive.
    #[arg(long)]
    interactive: bool,
}

pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(format!("{text} is not between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Which flag turns TLS on, so that hints name the right one: `probe`'s
/// `--tls`, or `conformance`'s `--tls-port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsSwitch {
    /// `--tls`: the port given is a TLS port (`probe`).
    Tls,
    /// `--tls-port PORT`: a TLS port next to the plain `-p` (`conformance`).
    TlsPort,
}

impl TlsSwitch {
    /// The fix when a plain connection reached a TLS listener.
    fn add(self) -> &'static str {
        match self {
            TlsSwitch::Tls => "add --tls",
            TlsSwitch::TlsPort => "give it as --tls-port PORT (and the plain port as -p)",
        }
    }

    /// The fix when a TLS connection reached a plain listener.
    fn drop(self) -> &'static str {
        match self {
            TlsSwitch::Tls => "drop --tls for a plain port",
            TlsSwitch::TlsPort => "--tls-port must be the TLS listener, not a plain one",
        }
    }
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
    switch: TlsSwitch,
    options: ClientOptions,
}

impl Target {
    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl Target {
    /// The one listener of a preflight check: `host:port`, plain or with
    /// `tls`, connecting as `client_id` [default: a random one] with
    /// `credentials`, each wait bounded by `timeout`; hints name `switch`.
    pub(crate) fn new(
        host: &str,
        port: u16,
        tls: Option<TlsSettings>,
        client_id: Option<String>,
        credentials: Option<(String, String)>,
        timeout: Duration,
        switch: TlsSwitch,
    ) -> Self {
        Self {
            host: host.to_owned(),
            port,
            tls,
            client_id: client_id.unwrap_or_else(random_client_id),
            credentials,
            timeout,
            switch,
            options: ClientOptions::default(),
        }
    }

    /// This target connecting with `options` (keep-alive, clean session,
    /// will) rather than the probe's defaults.
    pub(crate) fn with_options(self, options: ClientOptions) -> Self {
        Self { options, ..self }
    }
}

/// Connects once to `target` (TCP, the TLS handshake, CONNECT and CONNACK)
/// without printing, and disconnects: a failure is explained and classified
/// exactly as `toolkit probe` does, with its exit status. `conformance`
/// runs this on each listener before its suite.
pub(crate) fn preflight(runtime: &tokio::runtime::Runtime, target: &Target) -> anyhow::Result<()> {
    runtime.block_on(async {
        let session = connect::open(target, None).await?;
        session.disconnect().await;
        Ok(())
    })
}

/// Runs `toolkit probe`.
pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let flags = &args.connection;
    flags.refuse_websocket("probe")?;
    let tls_settings = tls_settings(&args)?;
    let client_id = flags.client_id.clone().unwrap_or_else(random_client_id);
    let credentials = flags.credentials();
    let qos_list: Vec<QoS> = match args.qos {
        Some(q) => vec![qos_of(q)],
        None => vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce],
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if args.cross {
        let tls_port = flags
            .tls_port
            .ok_or_else(|| usage("--cross needs --tls-port"))?;
        let plain = Target {
            host: flags.host.clone(),
            port: flags.port.unwrap_or(1883),
            tls: None,
            client_id: format!("{client_id}-p"),
            credentials: credentials.clone(),
            timeout: args.timeout,
            switch: TlsSwitch::Tls,
            options: ClientOptions::default(),
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
        port: flags.port_or_default(),
        host: flags.host.clone(),
        tls: tls_settings,
        client_id,
        credentials,
        timeout: args.timeout,
        switch: TlsSwitch::Tls,
        options: ClientOptions::default(),
    };
    if args.interactive {
        runtime.block_on(shell::run(&target))
    } else {
        runtime.block_on(check::run(&target, &qos_list))
    }
}

/// The TLS settings the flags ask for; `None` for plain TCP. TLS-only flags
/// without --tls (or --cross) are a usage error rather than silently
/// ignored, and so is --tls-port without --cross.
fn tls_settings(args: &ProbeArgs) -> anyhow::Result<Option<TlsSettings>> {
    let flags = &args.connection;
    if flags.tls_port.is_some() && !args.cross {
        return Err(usage(
            "--tls-port is the TLS port of --cross; to probe one TLS port use --tls -p PORT",
        ));
    }
    flags.tls_settings(flags.tls || args.cross, "--tls")
}

pub(crate) fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The QoS as the digit people write.
pub(crate) fn qos_digit(q: QoS) -> u8 {
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
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ProbeArgs, clap::Error> {
        crate::flag_parse::parse_flags("probe", args)
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.connection.host, crate::connection::DEFAULT_HOST);
        assert_eq!(a.connection.port, None);
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert!(!a.connection.tls && !a.connection.insecure && !a.cross && !a.interactive);
        assert!(tls_settings(&a).unwrap().is_none());
    }

    #[test]
    fn qos_is_zero_to_two() {
        assert_eq!(parse(&["--qos", "2"]).unwrap().qos, Some(2));
        assert_eq!(parse(&["-q", "1"]).unwrap().qos, Some(1));
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
        assert!(parse(&["-P", "p"]).is_err());
        assert!(parse(&["--username", "u", "--password", "p"]).is_ok());
        assert!(parse(&["-u", "u", "-P", "p"]).is_ok());
        assert!(parse(&["--username", "u"]).is_ok());
    }

    #[test]
    fn cross_needs_tls_port_and_tls_port_needs_cross() {
        assert!(parse(&["--cross"]).is_err());
        let alone = parse(&["--tls-port", "8883"]).unwrap();
        let err = tls_settings(&alone).unwrap_err();
        assert_eq!(crate::exit::status_of(&err), crate::exit::Status::Usage);
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
