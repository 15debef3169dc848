//! `toolkit bench`: load-test any MQTT 3.1.1 broker and check delivery while
//! doing it.
//!
//! This module is the command line: flags, defaults per scenario, the
//! runtime, and printing. The engine lives in the submodules: a lean client on
//! `mqtt_codec` ([`wire`], [`transport`]), publishers and subscribers,
//! the scenarios, and the report. It never touches broker internals.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use mqtt_codec::QoS;

mod compare;
mod connect;
mod connections;
mod cpu;
mod kernel;
mod limits;
mod memory;
mod payload;
mod procfs;
mod progress;
mod publisher;
mod report;
mod scenario;
mod sequence;
mod shared;
mod subscriber;
mod topics;
pub(crate) mod transport;
mod wire;

use connections::ConnectionsRun;
use progress::ProgressMode;
use report::Report;
use scenario::{Common, MessageRun, Shape};
use topics::TopicPattern;

use crate::connection::{ConnectionFlags, Trust, refuse};
use crate::exit::{self, Failure, Status};
use transport::{Target, TlsOptions};

/// `toolkit bench`: a scenario to run, or `compare` to put saved reports side
/// by side.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Many publishers (--clients, default 8) to one subscriber matching all their topics.
    FanIn(LoadArgs),
    /// One publisher to many subscribers (--clients, default 8) of its topic.
    FanOut(LoadArgs),
    /// Independent publisher/subscriber pairs (--clients pairs, default 8).
    Pairs(LoadArgs),
    /// End-to-end latency at a fixed rate (--rate, default 5000 msg/s) from --clients publishers (default 1) to one subscriber.
    Latency(LoadArgs),
    /// Open --clients idle connections (default 1000) at --rate per second and hold them for --duration.
    Connections(LoadArgs),
    /// Print saved JSON reports side by side, with ratios against one broker.
    Compare(compare::CompareArgs),
}

/// Flags shared by every scenario.
#[derive(Debug, Clone, Args)]
struct LoadArgs {
    /// Where the broker is and how to connect (shared with probe and
    /// conformance); -i is the prefix of every client id [default: bench].
    #[command(flatten)]
    connection: ConnectionFlags,
    /// With --tls: the name to check the broker's certificate against [default: --host].
    #[arg(long, requires = "tls", value_name = "NAME")]
    server_name: Option<String>,
    /// QoS of every publish and subscription: 0, 1 or 2.
    #[arg(short, long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Payload size in bytes; at least 24 (the header carrying sequence number and timestamp).
    #[arg(short = 's', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(24..))]
    payload: u32,
    /// Number of clients; what they are depends on the scenario (see each scenario's help).
    #[arg(short, long, value_parser = clap::value_parser!(u32).range(1..))]
    clients: Option<u32>,
    /// Messages per publisher; the run ends when all are sent.
    #[arg(short = 'n', long, conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// How long to publish (or, in `connections`, to hold the clients), like 10s or 1m [default: 10s; connections: 5s].
    #[arg(short, long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Target rate: messages per second over all publishers (connections per second in `connections`) [default: as fast as possible; latency: 5000].
    #[arg(short, long, value_parser = positive_rate)]
    rate: Option<f64>,
    /// Keep-alive in seconds sent in CONNECT; clients ping at half of it when idle. 0 turns it off.
    #[arg(short, long, default_value_t = 60)]
    keep_alive: u16,
    /// Publishers' topic; {run} becomes the run's id, {i} the publisher's index.
    #[arg(short, long, default_value = "bench/{run}/{i}")]
    topic: String,
    /// Subscribe to this filter instead of the publishers' topics ({run} and {i}, the subscriber's index, are expanded).
    #[arg(long, value_name = "FILTER")]
    sub_topic: Option<String>,
    /// Messages a publisher may be ahead of its slowest subscriber; bounds the broker's queues. 0: no limit.
    #[arg(long, default_value_t = 1000)]
    window: u64,
    /// QoS 1/2 messages a publisher may have unacknowledged. MQTT 3.1.1 has no way for a broker to announce its limit, so match the broker's: mosquitto (max_inflight_messages, default 20) acknowledges but silently drops QoS 2 messages beyond it.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    inflight: u16,
    /// How long deliveries may pause after publishing ends before the rest count as lost.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// How long a publisher may make no progress (no acks, nothing delivered) before it gives up.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    stall_timeout: Duration,
    /// Time allowed for each TCP connect, TLS handshake and CONNACK.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Local addresses to connect from, in turn, comma-separated (like 127.0.0.1,127.0.0.2): each has its own ephemeral ports (net.ipv4.ip_local_port_range, about 28,000), so more clients can reach one broker address. On Linux all of 127.0.0.0/8 is loopback. [default: the kernel picks]
    #[arg(long, value_delimiter = ',', value_name = "IP,...")]
    source_addrs: Vec<IpAddr>,
    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    connect_concurrency: u32,
    /// The broker's process id: report its memory (RSS from /proc) before and after, per connection, and the CPU it used (how busy it was, CPU per message or per connection).
    #[arg(long, value_name = "PID")]
    broker_pid: Option<u32>,
    /// A name for the broker in the report, used by `compare`.
    #[arg(long)]
    label: Option<String>,
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Write the latency histogram (nanoseconds) to FILE as an HdrHistogram interval log.
    #[arg(long, value_name = "FILE")]
    hdr_out: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Subscribers connect with a persistent session (clean session 0), so
    /// a broker with a store writes what is queued for them; with clean
    /// sessions it writes nothing. Their sessions stay on the broker after
    /// the run.
    #[arg(long)]
    persistent_subscribers: bool,
    /// Runtime threads for the load; 1 keeps the whole load on one core.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
}

/// The host a load scenario of `args` connects to (`None` for `compare`).
#[cfg(test)]
pub fn host_of(args: &BenchArgs) -> Option<String> {
    match &args.command {
        BenchCommand::Compare(_) => None,
        BenchCommand::FanIn(a)
        | BenchCommand::FanOut(a)
        | BenchCommand::Pairs(a)
        | BenchCommand::Latency(a)
        | BenchCommand::Connections(a) => Some(a.connection.host.clone()),
    }
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!(
            "'{s}' is not a positive number of events per second"
        )),
    }
}

/// Runs `toolkit bench`. A run that completes prints its report; if the
/// broker broke a guarantee the error carries exit status 7 (a message lost,
/// duplicated at QoS 2 or never acknowledged), 3 (connections failed) or 9
/// (connections dropped while held); other faults during the run give 1.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (shape, load) = match args.command {
        BenchCommand::Compare(c) => return compare::run(&c),
        BenchCommand::FanIn(a) => (Some(Shape::FanIn), a),
        BenchCommand::FanOut(a) => (Some(Shape::FanOut), a),
        BenchCommand::Pairs(a) => (Some(Shape::Pairs), a),
        BenchCommand::Latency(a) => (Some(Shape::Latency), a),
        BenchCommand::Connections(a) => (None, a),
    };
    load.connection.refuse_websocket("bench")?;
    let clients = u64::from(load.clients.unwrap_or(1000));
    limits::ensure_descriptors(clients)?;
    limits::ensure_ports(clients, load.source_addrs.len().max(1))?;
    if let Some(pid) = load.broker_pid {
        limits::warn_broker_descriptors(pid, clients);
    }
    let runtime = if load.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(load.threads))
            .enable_all()
            .build()
    }
    .context("starting the async runtime")?;
    runtime.block_on(run_load(shape, load))
}

async fn run_load(shape: Option<Shape>, load: LoadArgs) -> anyhow::Result<()> {
    let common = common(&load)?;
    let (report, histogram) = match shape {
        Some(shape) => {
            let run = message_run(shape, &load)?;
            let (report, h) = scenario::run(&run, &common).await?;
            (report, Some(h))
        }
        None => {
            let run = ConnectionsRun {
                clients: load.clients.unwrap_or(1000) as usize,
                rate: load.rate,
                hold: load.duration.unwrap_or(Duration::from_secs(5)),
            };
            (connections::run(&run, &common).await?, None)
        }
    };
    if let (Some(path), Some(h)) = (&load.hdr_out, &histogram) {
        let seconds = report
            .throughput
            .as_ref()
            .map_or(0.0, |t| t.delivered.seconds);
        write_hdr(path, h, Duration::from_secs_f64(seconds))?;
    }
    if load.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    verdict(&report)
}

/// The exit status of a finished run, from its report.
fn verdict(report: &Report) -> anyhow::Result<()> {
    if report.passed {
        return Ok(());
    }
    let status = if report.delivery.as_ref().is_some_and(|d| {
        d.totals.lost + d.totals.duplicated + d.unacknowledged > 0 && !report.violations.is_empty()
    }) {
        Status::Lost
    } else if report.connections.failed > 0 {
        Status::Connect
    } else if report.connections.closed_during_hold > 0 {
        Status::Closed
    } else {
        Status::Failure
    };
    let mut why: Vec<&str> = report.violations.iter().map(String::as_str).collect();
    why.extend(report.errors.iter().map(String::as_str).take(3));
    Err(Failure::new(status, format!("the run failed: {}", why.join("; "))).into())
}

fn common(load: &LoadArgs) -> anyhow::Result<Common> {
    let flags = &load.connection;
    refuse(
        flags.tls_port.is_some(),
        "--tls-port",
        "bench loads one listener; for a TLS one use --tls -p PORT",
    )?;
    let port = flags.port_or_default();
    let addr: SocketAddr = (flags.host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("--host {}: cannot resolve it", flags.host))?
        .next()
        .with_context(|| format!("--host {}: no address found", flags.host))?;
    let tls = match flags.tls_settings(flags.tls, "--tls")? {
        Some(settings) => {
            if matches!(settings.trust, Trust::System) {
                return Err(exit::usage(
                    "--tls needs --cafile FILE to verify the broker's certificate, or --insecure to skip verification",
                ));
            }
            Some(TlsOptions {
                settings,
                server_name: load
                    .server_name
                    .clone()
                    .unwrap_or_else(|| flags.host.clone()),
            })
        }
        None => None,
    };
    let target = Target::new(addr, tls.as_ref())
        .and_then(|t| t.with_sources(load.source_addrs.clone()))
        .map_err(|e| Failure::new(Status::Usage, format!("{e:#}")))?;
    Ok(Common {
        target,
        label: load.label.clone(),
        client_id_prefix: flags
            .client_id
            .clone()
            .unwrap_or_else(|| "bench".to_owned()),
        username: flags.username.clone(),
        password: flags.password(),
        keep_alive: load.keep_alive,
        connect_timeout: load.connect_timeout,
        connect_concurrency: load.connect_concurrency as usize,
        broker_pid: load.broker_pid,
        progress: ProgressMode::detect(load.quiet || load.json),
        persistent_subscribers: load.persistent_subscribers,
    })
}

fn message_run(shape: Shape, load: &LoadArgs) -> anyhow::Result<MessageRun> {
    let qos = QoS::from_bits(load.qos).context("--qos must be 0, 1 or 2")?;
    let clients = load
        .clients
        .unwrap_or(if shape == Shape::Latency { 1 } else { 8 }) as usize;
    let rate = load.rate.or((shape == Shape::Latency).then_some(5000.0));
    let duration = match (load.count, load.duration) {
        (None, None) => Some(Duration::from_secs(10)),
        (_, d) => d,
    };
    Ok(MessageRun {
        shape,
        qos,
        payload: load.payload as usize,
        clients,
        count: load.count,
        duration,
        rate,
        window: load.window,
        inflight: load.inflight,
        topic: TopicPattern::new(&load.topic)
            .map_err(|e| Failure::new(Status::Usage, format!("{e:#}")))?,
        sub_topic: load.sub_topic.clone(),
        drain_timeout: load.drain_timeout,
        stall_timeout: load.stall_timeout,
    })
}

/// Writes `h` as a one-interval HdrHistogram log, readable by the
/// HdrHistogram tools (HistogramLogAnalyzer, hdr-plot).
fn write_hdr(
    path: &std::path::Path,
    h: &hdrhistogram::Histogram<u64>,
    span: Duration,
) -> anyhow::Result<()> {
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    let mut file = std::fs::File::create(path)
        .with_context(|| format!("--hdr-out {}: cannot create it", path.display()))?;
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder.add_comment("toolkit bench latency histogram; values in nanoseconds");
    let mut log = builder.begin_log_with(&mut file, &mut serializer)?;
    log.write_histogram(h, Duration::ZERO, span, Tag::new("latency_ns"))
        .map_err(|e| anyhow::anyhow!("writing --hdr-out {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        let bench: BenchArgs = crate::flag_parse::parse_flags("bench", args)?;
        match bench.command {
            BenchCommand::FanIn(a)
            | BenchCommand::FanOut(a)
            | BenchCommand::Pairs(a)
            | BenchCommand::Latency(a)
            | BenchCommand::Connections(a) => Ok(a),
            BenchCommand::Compare(_) => panic!("not a load command"),
        }
    }

    #[test]
    fn defaults_parse() {
        let a = parse(&["fan-in"]).unwrap();
        assert_eq!(a.qos, 0);
        assert_eq!(a.payload, 64);
        assert_eq!(a.window, 1000);
        let run = message_run(Shape::FanIn, &a).unwrap();
        assert_eq!(run.clients, 8);
        assert_eq!(run.duration, Some(Duration::from_secs(10)));
        let lat = message_run(Shape::Latency, &parse(&["latency"]).unwrap()).unwrap();
        assert_eq!((lat.clients, lat.rate), (1, Some(5000.0)));
    }

    #[test]
    fn each_flag_parses() {
        let a = parse(&[
            "pairs",
            "-H",
            "localhost",
            "-p",
            "1884",
            "-q",
            "2",
            "-s",
            "128",
            "-c",
            "3",
            "-n",
            "10",
            "-r",
            "100.5",
            "-k",
            "0",
            "-t",
            "x/{i}",
            "--sub-topic",
            "x/#",
            "--window",
            "0",
            "--inflight",
            "20",
            "--drain-timeout",
            "500ms",
            "--stall-timeout",
            "3s",
            "--connect-timeout",
            "1s",
            "--connect-concurrency",
            "4",
            "--broker-pid",
            "1",
            "--label",
            "m",
            "--json",
            "--hdr-out",
            "h.hlog",
            "--quiet",
            "--threads",
            "2",
            "-u",
            "user",
            "-P",
            "pw",
        ])
        .unwrap();
        assert_eq!(a.connection.host, "localhost");
        assert_eq!(
            (a.connection.port, a.qos, a.payload, a.clients, a.count),
            (Some(1884), 2, 128, Some(3), Some(10))
        );
        assert_eq!(a.rate, Some(100.5));
        assert_eq!(a.drain_timeout, Duration::from_millis(500));
        assert_eq!(
            (
                a.connection.username.as_deref(),
                a.connection.password.as_deref()
            ),
            (Some("user"), Some("pw"))
        );
        let d = parse(&["connections", "-d", "1m"]).unwrap();
        assert_eq!(d.duration, Some(Duration::from_secs(60)));
        let t = parse(&["fan-out", "--tls", "--insecure", "--server-name", "b"]).unwrap();
        assert!(t.connection.tls && t.connection.insecure);
        let h = parse(&["fan-out", "-h", "broker.example", "-i", "mine"]).unwrap();
        assert_eq!(h.connection.host, "broker.example");
        assert_eq!(
            common(&parse(&["pairs", "-i", "mine"]).unwrap())
                .unwrap()
                .client_id_prefix,
            "mine"
        );
        let p = parse(&["fan-in", "--persistent-subscribers"]).unwrap();
        assert!(common(&p).unwrap().persistent_subscribers);
        assert!(
            !common(&parse(&["fan-in"]).unwrap())
                .unwrap()
                .persistent_subscribers
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        for bad in [
            &["fan-in", "-q", "3"][..],
            &["fan-in", "-s", "8"],
            &["fan-in", "-n", "5", "-d", "1s"],
            &["fan-in", "-r", "0"],
            &["fan-in", "--server-name", "b"],
            &["fan-in", "--tls", "--insecure", "--cafile", "x"],
            &["fan-in", "-c", "0"],
            &["fan-in", "-d", "soon"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn tls_flags_without_tls_and_a_tls_port_are_refused() {
        for flags in [
            &["fan-in", "--insecure"][..],
            &["fan-in", "--cafile", "ca.pem"],
            &["fan-in", "--tls-port", "8883"],
        ] {
            let err = common(&parse(flags).unwrap()).unwrap_err();
            assert_eq!(exit::status_of(&err), Status::Usage, "{flags:?}");
        }
    }

    #[test]
    fn tls_without_verification_choice_is_explained() {
        let a = parse(&["fan-in", "--tls"]).unwrap();
        let e = common(&a).unwrap_err().to_string();
        assert!(e.contains("--cafile") && e.contains("--insecure"), "{e}");
    }
}
