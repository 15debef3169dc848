//! `toolkit proxy`: an MQTT-aware TCP proxy between clients and a broker
//! that injects faults — delay and jitter, dropped, duplicated or reordered
//! packets, byte-by-byte writes, a bandwidth cap, cuts, a paused broker —
//! for testing how clients and brokers cope with a bad network. The engine
//! is `conformance::proxy` (the harness's tests use it too); this module
//! turns flags and a fault file into its configuration, builds the TLS
//! sides (the broker side with the shared connection flags' one client
//! builder) and prints the fault log, one line per injected fault.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use conformance::proxy::spec::{self, RuleFlag};
use conformance::proxy::{FaultEvent, Faults, Proxy, ProxyConfig, Segments, Upstream};

use crate::connection::{self, ConnectionFlags, refuse};
use crate::exit::usage;

/// Flags of `toolkit proxy`.
#[derive(Debug, Args)]
#[command(after_help = "\
PACKET is a packet type (connect, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe, \
suback, unsubscribe, unsuback, pingreq, pingresp, disconnect) or any. OPTIONS, comma-separated: \
every=N (every N-th match), nth=N (the N-th only), topic=FILTER (PUBLISH packets on matching \
topics only), to-broker or to-client (one direction; both by default), global (count across connections, not per connection), and for --pause-broker \
for=DURATION.

Examples:
  toolkit proxy --listen 1884 -p 1883 --drop puback:every=10
  toolkit proxy --listen 1884 -p 1883 --delay 20ms --jitter 5ms --split-bytes
  toolkit proxy --listen 1884 -p 1883 --cut-at publish:nth=3,to-client --faults faults.toml

Each injected fault prints one line: time, connection, direction, fault, packet. The fault file \
format (rules with direction, packet, occurrence, action and scope) is in docs/proxy.md.")]
pub struct ProxyArgs {
    /// Where clients connect: PORT (on 127.0.0.1) or HOST:PORT. Port 0
    /// picks a free port; the address is printed at start.
    #[arg(long, value_name = "[HOST:]PORT", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// The broker the proxy forwards to (-h, -p; --tls and its flags for TLS
    /// towards the broker).
    #[command(flatten)]
    pub connection: ConnectionFlags,

    /// Accept TLS from clients with this server certificate (PEM), ending
    /// TLS in the proxy; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Hold every packet this long, both ways (order is kept).
    #[arg(long, value_name = "DURATION", value_parser = spec::duration)]
    pub delay: Option<Duration>,

    /// Vary each packet's delay by up to this much either way.
    #[arg(long, value_name = "DURATION", value_parser = spec::duration)]
    pub jitter: Option<Duration>,

    /// Drop matching packets (repeatable), e.g. puback:every=10.
    #[arg(long, value_name = "PACKET[:OPTIONS]")]
    pub drop: Vec<String>,

    /// Forward matching packets twice (repeatable).
    #[arg(long, value_name = "PACKET[:OPTIONS]")]
    pub duplicate: Vec<String>,

    /// Cut the connection (both sides) at a matching packet, before it is
    /// forwarded (repeatable), e.g. publish:nth=3,to-client.
    #[arg(long, value_name = "PACKET[:OPTIONS]")]
    pub cut_at: Vec<String>,

    /// Cut each connection after this many packets or bytes, both
    /// directions together: packets=N or bytes=N.
    #[arg(long, value_name = "packets=N|bytes=N", value_parser = spec::cut_after)]
    pub cut_after: Option<conformance::proxy::CutAfter>,

    /// Stop the broker side (nothing read from or written to it) for a
    /// while at a matching packet (repeatable), e.g. publish:nth=2,for=3s.
    #[arg(long, value_name = "PACKET[:OPTIONS],for=DURATION")]
    pub pause_broker: Vec<String>,

    /// Write every byte on its own (each in its own TCP segment).
    #[arg(long)]
    pub split_bytes: bool,

    /// Cap each direction's bandwidth, e.g. 10kB/s (B, kB, KiB, MB, MiB).
    #[arg(long, value_name = "RATE", value_parser = spec::rate)]
    pub throttle: Option<std::num::NonZeroU64>,

    /// Send each run of N packets last first, in each direction or only
    /// the one given: N, N:to-broker or N:to-client.
    #[arg(long, value_name = "N[:DIRECTION]", value_parser = spec::reorder)]
    pub reorder: Option<conformance::proxy::Reorder>,

    /// Scripted faults from a TOML file (see docs/proxy.md); the flags
    /// above add to it.
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("'{text}' is not an address to listen on (give PORT or HOST:PORT)"))
}

impl ProxyArgs {
    /// The faults the flags and the fault file ask for.
    fn faults(&self) -> anyhow::Result<Faults> {
        let mut faults = match &self.faults {
            Some(path) => spec::read_file(path).map_err(|e| usage(e.to_string()))?,
            None => Faults::default(),
        };
        let mut flags = Faults {
            delay: self.delay.unwrap_or_default(),
            jitter: self.jitter.unwrap_or_default(),
            split_bytes: self.split_bytes,
            throttle: self.throttle,
            reorder: self.reorder,
            cut_after: self.cut_after,
            rules: Vec::new(),
        };
        for (kind, values) in [
            (RuleFlag::Drop, &self.drop),
            (RuleFlag::Duplicate, &self.duplicate),
            (RuleFlag::CutAt, &self.cut_at),
            (RuleFlag::PauseBroker, &self.pause_broker),
        ] {
            for value in values {
                let rule = spec::rule_flag(kind, value).map_err(|e| usage(e.to_string()))?;
                flags.rules.push(rule);
            }
        }
        faults.overlay(flags);
        Ok(faults)
    }

    /// The engine's configuration, TLS sides built and checked.
    fn config(&self) -> anyhow::Result<ProxyConfig> {
        let c = &self.connection;
        let instead = "the proxy forwards the client's own CONNECT";
        refuse(c.username.is_some(), "-u/--username", instead)?;
        refuse(c.password.is_some(), "-P/--password", instead)?;
        refuse(c.client_id.is_some(), "-i/--client-id", instead)?;
        refuse(
            c.tls_port.is_some(),
            "--tls-port",
            "give the broker's TLS port as -p with --tls",
        )?;
        let tls = match c.tls_settings(c.tls, "--tls")? {
            None => None,
            Some(settings) => Some((
                connection::client_config(&settings)?,
                connection::server_name(&c.host)?,
            )),
        };
        let accept_tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(
                credentials::server_tls::server_config(cert, key, None, false)
                    .map_err(|e| usage(format!("--tls-cert/--tls-key: {e}")))?,
            ),
            _ => None,
        };
        Ok(ProxyConfig {
            upstream: Upstream {
                host: c.host.clone(),
                port: c.port_or_default(),
                tls,
            },
            accept_tls,
            faults: self.faults()?,
            rewrite: None,
            segments: Segments::Stream,
            on_fault: Arc::new(|e: &FaultEvent| println!("{e}")),
        })
    }
}

/// Runs the proxy until interrupted.
pub fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let side = |tls: bool| if tls { "TLS" } else { "plain" };
    let (client_side, broker_side) = (
        side(config.accept_tls.is_some()),
        side(config.upstream.tls.is_some()),
    );
    let upstream = format!("{}:{}", config.upstream.host, config.upstream.port);
    let faults = config.faults.describe();
    runtime.block_on(async {
        let proxy = Proxy::start(args.listen, config)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        println!(
            "proxy listening on {} ({client_side}), forwarding to {upstream} ({broker_side})",
            proxy.local_addr()
        );
        if faults.is_empty() {
            println!("faults: none");
        }
        for f in faults {
            println!("fault: {f}");
        }
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        drop(proxy);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, FromArgMatches as _, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProxyArgs,
    }

    fn parse(args: &[&str]) -> Result<ProxyArgs, clap::Error> {
        let mut all = vec!["proxy"];
        all.extend_from_slice(args);
        let matches = crate::help::long_only(Cli::command()).try_get_matches_from(all)?;
        Cli::from_arg_matches(&matches).map(|c| c.args)
    }

    #[test]
    fn listen_takes_a_port_or_host_and_port() {
        let a = parse(&["--listen", "1884"]).expect("valid");
        assert_eq!(a.listen, SocketAddr::from(([127, 0, 0, 1], 1884)));
        let a = parse(&["--listen", "0.0.0.0:1884"]).expect("valid");
        assert_eq!(a.listen, SocketAddr::from(([0, 0, 0, 0], 1884)));
        assert!(parse(&["--listen", "nowhere:x"]).is_err());
        assert!(parse(&[]).is_err(), "--listen is required");
    }

    #[test]
    fn fault_flags_make_faults() {
        let a = parse(&[
            "--listen",
            "0",
            "--drop",
            "puback:every=10",
            "--cut-after",
            "packets=50",
            "--delay",
            "20ms",
            "--jitter",
            "5ms",
            "--split-bytes",
            "--throttle",
            "10kB/s",
            "--reorder",
            "3:to-client",
            "--pause-broker",
            "publish:nth=2,for=1s",
        ])
        .expect("valid");
        let f = a.faults().expect("valid faults");
        assert_eq!(f.delay, Duration::from_millis(20));
        assert_eq!(f.jitter, Duration::from_millis(5));
        assert!(f.split_bytes);
        assert_eq!(f.throttle.map(|t| t.get()), Some(10_000));
        assert_eq!(
            f.reorder.map(|r| r.to_string()).as_deref(),
            Some("reorder each 3 packets last first, to-client")
        );
        assert_eq!(f.rules.len(), 2);
        assert_eq!(f.rules[0].to_string(), "drop puback, every 10");
    }

    #[test]
    fn bad_fault_flags_are_usage_errors() {
        let a = parse(&["--listen", "0", "--drop", "pubak"]).expect("parsed later");
        let err = a.faults().expect_err("unknown packet type");
        assert_eq!(crate::exit::status_of(&err), crate::exit::Status::Usage);
        assert!(
            err.to_string()
                .starts_with("--drop 'pubak': unknown packet type")
        );
        assert!(parse(&["--listen", "0", "--throttle", "fast"]).is_err());
        assert!(parse(&["--listen", "0", "--reorder", "1"]).is_err());
        assert!(parse(&["--listen", "0", "--cut-after", "packets=0"]).is_err());
    }

    #[test]
    fn connect_only_flags_are_refused() {
        let a = parse(&["--listen", "0", "-u", "alice"]).expect("parsed");
        assert!(a.config().is_err());
    }
}
