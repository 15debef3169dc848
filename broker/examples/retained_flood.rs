//! Retained messages as a denial-of-service lever, measured beside
//! mosquitto (issue 14).
//!
//! Starts each broker in turn on a free loopback port, loads it with
//! retained messages, then has one client send a single SUBSCRIBE with many
//! wildcard filters while another client measures its PINGREQ round trips.
//! Reports the round trips (max and p99), when the subscriber got its SUBACK
//! and its messages, and the broker's CPU time and memory (VmRSS, VmHWM)
//! from /proc. A load tool, not a test: the figures go in
//! docs/performance.md.
//!
//! ```sh
//! cargo build --release -p broker --bin broker --example retained_flood
//! target/release/examples/retained_flood       # both scenarios, ours and mosquitto
//! target/release/examples/retained_flood --only wildcard --mosquitto /usr/sbin/mosquitto
//! ```
//!
//! - `wildcard`: 100,000 retained messages (`flood/GGGG/DD`: 4,000 groups of
//!   25) and one SUBSCRIBE of 4,000 filters `flood/GGGG/+`; the subscriber
//!   reads until it has all 100,000.
//! - `overlapping`: 10,000 retained messages and one SUBSCRIBE of 2,048
//!   filters, each matching all of them (20,480,000 copies owed); the
//!   subscriber reads for `--read-for` seconds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use clap::Parser;
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{
    Connect, Delivery, Message, Packet, PacketId, PacketType, Publish, QoS, Subscribe,
    SubscribeFilter, parse_fixed_header,
};

/// Measure a big retained delivery on our broker and mosquitto.
#[derive(Debug, Parser)]
struct Args {
    /// Our broker's binary.
    #[arg(long, default_value = "target/release/broker")]
    broker: PathBuf,
    /// mosquitto's binary; `none` to skip it.
    #[arg(long, default_value = "/usr/sbin/mosquitto")]
    mosquitto: String,
    /// Run one scenario only: `wildcard` or `overlapping`.
    #[arg(long)]
    only: Option<String>,
    /// Seconds the `overlapping` subscriber reads before it stops.
    #[arg(long, default_value_t = 10)]
    read_for: u64,
    /// Seconds the `wildcard` subscriber waits for all its messages (a
    /// broker that drops some never sends them all).
    #[arg(long, default_value_t = 120)]
    give_up: u64,
    /// QoS of the retained messages and of the subscriptions: 0 or 1 (the
    /// subscriber acknowledges each QoS 1 delivery).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    qos: u8,
}

/// One scenario: what is retained and what the subscriber asks for.
struct Scenario {
    name: &'static str,
    topics: Vec<String>,
    filters: Vec<String>,
    /// Deliveries the subscriber waits for; `None`: it reads for a while.
    expected: Option<u64>,
}

fn wildcard() -> Scenario {
    Scenario {
        name: "wildcard",
        topics: (0..100_000)
            .map(|i| format!("flood/{:04}/{:02}", i / 25, i % 25))
            .collect(),
        filters: (0..4_000).map(|g| format!("flood/{g:04}/+")).collect(),
        expected: Some(100_000),
    }
}

fn overlapping() -> Scenario {
    const EACH_MATCHES_ALL: [&str; 8] = [
        "#",
        "load/#",
        "load/+/#",
        "load/+/+",
        "+/+/+",
        "+/#",
        "+/+/#",
        "load/+/+/#",
    ];
    Scenario {
        name: "overlapping",
        topics: (0..10_000)
            .map(|i| format!("load/{:02}/{:02}", i / 100, i % 100))
            .collect(),
        filters: (0..2_048)
            .map(|i| EACH_MATCHES_ALL[i % 8].to_owned())
            .collect(),
        expected: None,
    }
}

/// A broker process under test, killed when dropped.
struct Running {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start(name: &'static str, mut command: Command, port: u16) -> anyhow::Result<Running> {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let running = Running {
        name,
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(running.addr).is_err() {
        if Instant::now() > deadline {
            bail!("{name} did not listen on {} within 10 s", running.addr);
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(running)
}

/// A blocking MQTT client on `mqtt_codec`, lean enough that the broker is
/// the slower side: PUBLISH packets it receives are counted, not decoded.
struct Client {
    stream: TcpStream,
    buf: BytesMut,
    /// PUBACKs not written yet.
    acks: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr, client_id: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut client = Self {
            stream,
            buf: BytesMut::with_capacity(256 * 1024),
            acks: Vec::new(),
        };
        client.send(&Packet::Connect(Connect {
            client_id: client_id.into(),
            clean_session: true,
            keep_alive: 0,
            ..Connect::default()
        }))?;
        match client.next()? {
            PacketType::ConnAck => Ok(client),
            other => bail!("{client_id}: expected CONNACK, got {other:?}"),
        }
    }

    fn send(&mut self, packet: &Packet) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        packet.encode(&mut out)?;
        self.stream.write_all(&out)?;
        Ok(())
    }

    /// The type of the next packet, its bytes skipped; a QoS 1 PUBLISH is
    /// acknowledged (PUBACKs are written before the next read blocks).
    fn next(&mut self) -> anyhow::Result<PacketType> {
        loop {
            if let Some(header) = parse_fixed_header(&self.buf)?
                && self.buf.len() >= header.packet_len()
            {
                let packet = self.buf.split_to(header.packet_len());
                if header.packet_type == PacketType::Publish && (header.flags >> 1) & 0b11 == 1 {
                    // Topic length, topic, then the packet id.
                    let body = &packet[header.header_len..];
                    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                    let id = &body[2 + topic_len..4 + topic_len];
                    self.acks.extend_from_slice(&[0x40, 0x02, id[0], id[1]]);
                }
                return Ok(header.packet_type);
            }
            if !self.acks.is_empty() {
                self.stream.write_all(&self.acks)?;
                self.acks.clear();
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("the broker closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The broker's CPU seconds (user + system) from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').context("no ) in stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15; 3 is the first after the name.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

/// A `VmRSS`/`VmHWM`-style line of /proc/PID/status, in MiB.
fn memory_mib(pid: u32, key: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .with_context(|| format!("no {key} in /proc/{pid}/status"))?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("no value")?
        .parse()?;
    Ok(kib / 1024.0)
}

/// What one run measured.
struct Figures {
    rtt_max_ms: f64,
    rtt_p99_ms: f64,
    pings: usize,
    suback_s: f64,
    delivered: u64,
    deliver_s: f64,
    cpu_s: f64,
    rss_before_mib: f64,
    rss_after_mib: f64,
    hwm_mib: f64,
}

fn measure(
    broker: &Running,
    scenario: &Scenario,
    read_for: Duration,
    give_up: Duration,
    qos: QoS,
) -> anyhow::Result<Figures> {
    let pid = broker.child.id();
    let mut loader = Client::connect(broker.addr, "flood-loader")?;
    for (i, topic) in scenario.topics.iter().enumerate() {
        let message = Message {
            topic: TopicName::new(topic)?,
            payload: Bytes::from(format!("retained {i}")),
            qos,
            retain: true,
        };
        let delivery = match qos {
            QoS::AtMostOnce => Delivery::AtMostOnce,
            _ => Delivery::new(qos, PacketId::new((i % 65_535) as u16 + 1).context("id")?),
        };
        loader.send(&Packet::Publish(Publish::new(delivery, message)))?;
        // At QoS 1, read the PUBACKs every thousand messages, so neither
        // side's socket fills with them.
        if qos != QoS::AtMostOnce && i % 1_000 == 999 {
            let mut acked = 0;
            while acked < 1_000 {
                if loader.next()? == PacketType::PubAck {
                    acked += 1;
                }
            }
        }
    }
    // Packets of one connection are handled in order: all retained now.
    loader.send(&Packet::PingReq)?;
    while loader.next()? != PacketType::PingResp {}
    drop(loader);

    let rss_before_mib = memory_mib(pid, "VmRSS:")?;
    let cpu_before = cpu_seconds(pid)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut prober = Client::connect(broker.addr, "flood-prober")?;
    let probing = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
            let mut rtts = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                prober.send(&Packet::PingReq)?;
                while prober.next()? != PacketType::PingResp {}
                rtts.push(sent.elapsed());
                thread::sleep(Duration::from_millis(1));
            }
            Ok(rtts)
        })
    };
    let mut subscriber = Client::connect(broker.addr, "flood-subscriber")?;
    let filters = scenario
        .filters
        .iter()
        .map(|f| {
            Ok(SubscribeFilter {
                filter: TopicFilter::new(f)?,
                qos,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    subscriber.send(&Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(1).context("packet id")?,
        filters,
    }))?;
    while subscriber.next()? != PacketType::SubAck {}
    let suback_s = started.elapsed().as_secs_f64();
    let mut delivered = 0u64;
    let deadline = started + read_for;
    subscriber
        .stream
        .set_read_timeout(Some(Duration::from_millis(500)))?;
    loop {
        if scenario.expected.is_some_and(|n| delivered >= n) {
            break;
        }
        if scenario.expected.is_none() && Instant::now() >= deadline {
            break;
        }
        match subscriber.next() {
            Ok(PacketType::Publish) => delivered += 1,
            Ok(_) => {}
            // Nothing for 500 ms with all expected not in: go on waiting
            // until `give_up`; without an expected count, the deadline.
            Err(e) if is_timeout(&e) => {
                if started.elapsed() > give_up {
                    break;
                }
            }
            Err(e) => return Err(e),
        }
    }
    let deliver_s = started.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds(pid)? - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let mut rtts = probing
        .join()
        .map_err(|_| anyhow::anyhow!("the prober panicked"))??;
    rtts.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = rtts
        .get((rtts.len() * 99 / 100).min(rtts.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    Ok(Figures {
        rtt_max_ms: ms(rtts.last().copied().unwrap_or_default()),
        rtt_p99_ms: ms(p99),
        pings: rtts.len(),
        suback_s,
        delivered,
        deliver_s,
        cpu_s,
        rss_before_mib,
        rss_after_mib: memory_mib(pid, "VmRSS:")?,
        hwm_mib: memory_mib(pid, "VmHWM:")?,
    })
}

fn is_timeout(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scenarios: Vec<Scenario> = [wildcard(), overlapping()]
        .into_iter()
        .filter(|s| args.only.as_deref().is_none_or(|o| o == s.name))
        .collect();
    if scenarios.is_empty() {
        bail!("--only: no scenario by that name (wildcard, overlapping)");
    }
    println!(
        "{:<12} {:<10} {:>8} {:>8} {:>6} {:>9} {:>10} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "scenario",
        "broker",
        "rtt max",
        "rtt p99",
        "pings",
        "suback s",
        "delivered",
        "deliver s",
        "cpu s",
        "rss0 MiB",
        "rss MiB",
        "hwm MiB"
    );
    for scenario in &scenarios {
        let mut brokers: Vec<(&'static str, Command, u16)> = Vec::new();
        let port = free_port()?;
        let mut ours = Command::new(&args.broker);
        ours.args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--no-ssl",
        ])
        .env("RUST_LOG", "warn");
        brokers.push(("ours", ours, port));
        if args.mosquitto != "none" {
            let port = free_port()?;
            let mut mosquitto = Command::new(&args.mosquitto);
            mosquitto.args(["-p", &port.to_string()]);
            brokers.push(("mosquitto", mosquitto, port));
        }
        for (name, command, port) in brokers {
            let running = start(name, command, port)?;
            let qos = QoS::from_bits(args.qos).context("--qos")?;
            let f = measure(
                &running,
                scenario,
                Duration::from_secs(args.read_for),
                Duration::from_secs(args.give_up),
                qos,
            )
            .with_context(|| format!("{} on {}", scenario.name, running.name))?;
            println!(
                "{:<12} {:<10} {:>8.1} {:>8.1} {:>6} {:>9.3} {:>10} {:>9.2} {:>7.2} {:>9.1} {:>9.1} {:>9.1}",
                scenario.name,
                name,
                f.rtt_max_ms,
                f.rtt_p99_ms,
                f.pings,
                f.suback_s,
                f.delivered,
                f.deliver_s,
                f.cpu_s,
                f.rss_before_mib,
                f.rss_after_mib,
                f.hwm_mib
            );
        }
    }
    Ok(())
}
