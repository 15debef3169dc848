//! The message scenarios: who publishes to whom, and the phases of a run.
//!
//! - `fan-in`: P publishers, one subscriber matching all their topics.
//! - `fan-out`: one publisher, S subscribers to its topic.
//! - `pairs`: N publishers each with its own subscriber.
//! - `latency`: like fan-in at a fixed rate, paced message by message.
//!
//! A run connects and subscribes every subscriber, connects the publishers,
//! starts them together, waits for them to finish, lets deliveries drain,
//! then adds up what arrived against what was sent.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use mqtt_codec::QoS;
use mqtt_codec::topic::TopicFilter;
use tokio::sync::watch;

use super::connect::{ConnectStats, open_all};
use super::cpu::{self, CpuClock};
use super::memory::Rss;
use super::progress::{self, ProgressMode};
use super::publisher::{self, PublisherPlan};
use super::report::{
    Delivery, Percentiles, PublisherDelivery, Rate, Report, Settings, Shares, Throughput,
};
use super::sequence::DeliveryCounts;
use super::shared::{PublisherFlow, RunShared, nanos};
use super::subscriber::{self, Expectation, new_histogram};
use super::topics::TopicPattern;
use super::transport::Target;
use super::wire::{ClientError, Identity, PublishTemplate, subscribe};
use crate::exit::Failure;

/// Which message scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Many publishers, one subscriber.
    FanIn,
    /// One publisher, many subscribers.
    FanOut,
    /// Independent publisher/subscriber pairs.
    Pairs,
    /// Fan-in at a fixed, precisely paced rate.
    Latency,
}

impl Shape {
    /// The scenario's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Shape::FanIn => "fan-in",
            Shape::FanOut => "fan-out",
            Shape::Pairs => "pairs",
            Shape::Latency => "latency",
        }
    }
}

/// Settings shared by every scenario.
#[derive(Debug, Clone)]
pub struct Common {
    /// The broker.
    pub target: Target,
    /// A name for the broker in the report.
    pub label: Option<String>,
    /// What every client id starts with (`-i`, default `bench`).
    pub client_id_prefix: String,
    /// CONNECT user name.
    pub username: Option<String>,
    /// CONNECT password.
    pub password: Option<String>,
    /// Keep-alive in seconds.
    pub keep_alive: u16,
    /// Time allowed for TCP, TLS and CONNACK.
    pub connect_timeout: Duration,
    /// Handshakes in progress at once.
    pub connect_concurrency: usize,
    /// The broker's process, to read its memory.
    pub broker_pid: Option<u32>,
    /// How to show progress.
    pub progress: ProgressMode,
    /// Subscribers ask for a persistent session.
    pub persistent_subscribers: bool,
}

impl Common {
    /// The CONNECT identity of a client.
    pub fn identity(&self, client_id: String) -> Identity {
        Identity {
            client_id,
            keep_alive: self.keep_alive,
            username: self.username.clone(),
            password: self.password.clone(),
            clean_session: true,
        }
    }
}

/// A message scenario's settings.
#[derive(Debug, Clone)]
pub struct MessageRun {
    /// The topology.
    pub shape: Shape,
    /// QoS of publishes and subscriptions.
    pub qos: QoS,
    /// Payload size in bytes.
    pub payload: usize,
    /// Publishers (fan-in, latency), subscribers (fan-out) or pairs.
    pub clients: usize,
    /// Messages per publisher.
    pub count: Option<u64>,
    /// How long to publish.
    pub duration: Option<Duration>,
    /// Messages per second over all publishers.
    pub rate: Option<f64>,
    /// End-to-end window per publisher (0: none).
    pub window: u64,
    /// QoS 1/2 in-flight limit per publisher.
    pub inflight: u16,
    /// Publishers' topics.
    pub topic: TopicPattern,
    /// What subscribers subscribe to instead of the publishers' topics
    /// (`{run}` and `{i}`, the subscriber's index, are expanded).
    pub sub_topic: Option<String>,
    /// How long deliveries may pause before the run stops waiting for them.
    pub drain_timeout: Duration,
    /// How long a publisher may make no progress before giving up.
    pub stall_timeout: Duration,
}

struct Topology {
    publishers: Vec<mqtt_codec::topic::TopicName>,
    /// Per subscriber: filters, and the publishers it should hear.
    subscribers: Vec<(Vec<TopicFilter>, Vec<u32>)>,
}

fn topology(run: &MessageRun, run_id: u32) -> anyhow::Result<Topology> {
    let n = run.clients as u32;
    let t = &run.topic;
    let (publishers, subscribers) = match run.shape {
        Shape::FanIn | Shape::Latency => (
            (0..n)
                .map(|i| t.name(run_id, i))
                .collect::<Result<Vec<_>, _>>()?,
            vec![(vec![t.filter_all(run_id)?], (0..n).collect())],
        ),
        Shape::FanOut => (
            vec![t.name(run_id, 0)?],
            (0..n)
                .map(|_| Ok((vec![t.filter_for(run_id, 0)?], vec![0])))
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
        Shape::Pairs => (
            (0..n)
                .map(|i| t.name(run_id, i))
                .collect::<Result<Vec<_>, _>>()?,
            (0..n)
                .map(|i| Ok((vec![t.filter_for(run_id, i)?], vec![i])))
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
    };
    let subscribers = match &run.sub_topic {
        None => subscribers,
        Some(pattern) => subscribers
            .into_iter()
            .enumerate()
            .map(|(i, (_, expects))| {
                let s = pattern
                    .replace("{run}", &format!("{run_id:08x}"))
                    .replace("{i}", &i.to_string());
                let f = TopicFilter::new(&s).with_context(|| {
                    format!("--sub-topic {pattern:?} gives the invalid filter {s:?}")
                })?;
                Ok((vec![f], expects))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    Ok(Topology {
        publishers,
        subscribers,
    })
}

/// A client failure as an error carrying the matching exit status.
fn failure(e: &ClientError, what: String) -> anyhow::Error {
    Failure::new(e.status(), format!("{what}: {e}")).into()
}

/// Runs a message scenario; returns the report and the latency histogram.
pub async fn run(run: &MessageRun, common: &Common) -> anyhow::Result<(Report, Histogram<u64>)> {
    let run_id: u32 = rand::random();
    let shared = Arc::new(RunShared::new(run_id));
    let topo = topology(run, run_id)?;
    let rss = Rss::open(common.broker_pid)?;
    let rss_before = rss.read()?;
    let cpu_clock = CpuClock::open(common.broker_pid)?;

    // Flow slots: each subscriber takes the next slot of each publisher it hears.
    let mut subs_per_pub = vec![0usize; topo.publishers.len()];
    for (_, expects) in &topo.subscribers {
        for &p in expects {
            subs_per_pub[p as usize] += 1;
        }
    }
    let flows: Vec<Arc<PublisherFlow>> = subs_per_pub
        .iter()
        .map(|&n| Arc::new(PublisherFlow::new(n)))
        .collect();
    let mut next_slot = vec![0usize; topo.publishers.len()];
    let expectations: Vec<Vec<Expectation>> = topo
        .subscribers
        .iter()
        .map(|(_, expects)| {
            expects
                .iter()
                .map(|&p| {
                    let slot = next_slot[p as usize];
                    next_slot[p as usize] += 1;
                    Expectation {
                        publisher: p,
                        flow: Arc::clone(&flows[p as usize]),
                        slot,
                    }
                })
                .collect()
        })
        .collect();

    // Connect and subscribe the subscribers, then connect the publishers.
    let mut stats = ConnectStats::default();
    let sub_ids = (0..topo.subscribers.len())
        .map(|i| Identity {
            clean_session: !common.persistent_subscribers,
            ..common.identity(format!("{}-{run_id:08x}-s{i}", common.client_id_prefix))
        })
        .collect();
    let addr = common.target.addr;
    let mut subs = Vec::new();
    for (i, r) in open_all(
        &common.target,
        sub_ids,
        common.connect_concurrency,
        common.connect_timeout,
        &mut stats,
    )
    .await
    .into_iter()
    .enumerate()
    {
        let mut conn =
            r.map_err(|e| failure(&e, format!("subscriber {i} could not connect to {addr}")))?;
        subscribe(
            &mut conn,
            &topo.subscribers[i].0,
            run.qos,
            common.connect_timeout,
        )
        .await
        .map_err(|e| failure(&e, format!("subscriber {i} could not subscribe")))?;
        subs.push(conn);
    }
    let pub_ids = (0..topo.publishers.len())
        .map(|i| common.identity(format!("{}-{run_id:08x}-p{i}", common.client_id_prefix)))
        .collect();
    let mut pubs = Vec::new();
    for (i, r) in open_all(
        &common.target,
        pub_ids,
        common.connect_concurrency,
        common.connect_timeout,
        &mut stats,
    )
    .await
    .into_iter()
    .enumerate()
    {
        pubs.push(
            r.map_err(|e| failure(&e, format!("publisher {i} could not connect to {addr}")))?,
        );
    }
    shared
        .connections
        .store((subs.len() + pubs.len()) as u64, Ordering::Relaxed);

    let (stop_tx, stop_rx) = watch::channel(false);
    let progress = progress::spawn(Arc::clone(&shared), common.progress, stop_rx.clone());
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .zip(expectations)
        .enumerate()
        .map(|(i, (conn, expects))| {
            tokio::spawn(subscriber::run(
                i,
                conn,
                expects,
                Arc::clone(&shared),
                common.keep_alive,
                stop_rx.clone(),
            ))
        })
        .collect();

    // Publish.
    let per_pub_rate = run.rate.map(|r| r / topo.publishers.len() as f64);
    let cpu_start = cpu_clock.sample()?;
    let start = Instant::now();
    let start_ns = nanos(start - shared.epoch);
    let mut pub_tasks = Vec::new();
    for (i, (conn, topic)) in pubs.into_iter().zip(&topo.publishers).enumerate() {
        let plan = PublisherPlan {
            index: i as u32,
            template: PublishTemplate::new(topic.clone(), run.qos, run.payload)?,
            qos: run.qos,
            count: run.count,
            duration: run.duration,
            rate: per_pub_rate,
            precise: run.shape == Shape::Latency,
            window: run.window,
            inflight: run.inflight,
            stall_timeout: run.stall_timeout,
            keep_alive: common.keep_alive,
        };
        pub_tasks.push(tokio::spawn(publisher::run(
            plan,
            conn,
            Arc::clone(&flows[i]),
            Arc::clone(&shared),
            start,
        )));
    }
    let mut pub_outcomes = Vec::new();
    for t in pub_tasks {
        pub_outcomes.push(t.await.context("a publisher task failed")?);
    }

    // Drain: wait until every expected delivery arrived, or deliveries stop.
    let expected: u64 = pub_outcomes
        .iter()
        .map(|o| o.sent * subs_per_pub[o.index as usize] as u64)
        .sum();
    // The broker's CPU is read when the last progress is seen, so the wait
    // for deliveries that never come does not count as idle broker time.
    let mut last = (Instant::now(), shared.delivered.load(Ordering::Relaxed));
    let mut cpu_end = cpu_clock.sample()?;
    loop {
        let d = shared.delivered.load(Ordering::Relaxed);
        if d >= expected {
            cpu_end = cpu_clock.sample()?;
            break;
        }
        if d != last.1 {
            last = (Instant::now(), d);
            cpu_end = cpu_clock.sample()?;
        } else if last.0.elapsed() >= run.drain_timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rss_after = rss.read()?;
    let _ = stop_tx.send(true);
    let mut sub_outcomes = Vec::new();
    for t in sub_tasks {
        sub_outcomes.push(t.await.context("a subscriber task failed")?);
    }
    let _ = progress.await;

    // Add up.
    let mut latency = new_histogram();
    let mut per_pub: Vec<PublisherDelivery> = pub_outcomes
        .iter()
        .map(|o| PublisherDelivery {
            publisher: o.index,
            sent: o.sent,
            counts: DeliveryCounts::default(),
        })
        .collect();
    let mut foreign = 0;
    let mut last_delivery_ns = start_ns;
    for s in &sub_outcomes {
        latency
            .add(&s.latency)
            .context("merging latency histograms")?;
        foreign += s.foreign;
        last_delivery_ns = last_delivery_ns.max(s.last_delivery_ns);
        for (p, tracker) in &s.trackers {
            let pd = &mut per_pub[*p as usize];
            pd.counts.add(&tracker.summary(pd.sent));
        }
    }
    let mut totals = DeliveryCounts::default();
    for p in &per_pub {
        totals.add(&p.counts);
    }
    let sent: u64 = pub_outcomes.iter().map(|o| o.sent).sum();
    let unacknowledged: u64 = pub_outcomes.iter().map(|o| o.unacknowledged).sum();
    let sent_end_ns = pub_outcomes
        .iter()
        .map(|o| o.finished_ns)
        .max()
        .unwrap_or(start_ns);
    let secs = |end: u64| end.saturating_sub(start_ns) as f64 / 1e9;

    let mut violations = Vec::new();
    if run.qos != QoS::AtMostOnce && totals.lost > 0 {
        violations.push(format!(
            "{} of {} messages lost at QoS {}",
            totals.lost, totals.expected, run.qos
        ));
    }
    if run.qos == QoS::ExactlyOnce && totals.duplicated > 0 {
        violations.push(format!(
            "{} messages delivered more than once at QoS 2",
            totals.duplicated
        ));
    }
    if run.qos != QoS::AtMostOnce && unacknowledged > 0 {
        violations.push(format!(
            "{unacknowledged} QoS {} messages never acknowledged by the broker",
            run.qos
        ));
    }
    let broker_cpu = cpu::between(cpu_start, cpu_end, totals.delivered);
    let errors = shared.errors();
    let passed = errors.is_empty() && violations.is_empty();
    let report = Report {
        tool: format!("toolkit bench {}", env!("CARGO_PKG_VERSION")),
        label: common.label.clone(),
        scenario: run.shape.name().into(),
        broker: addr.to_string(),
        tls: common.target.is_tls(),
        settings: Settings {
            qos: run.qos.as_u8(),
            payload_bytes: run.payload,
            publishers: topo.publishers.len(),
            subscribers: topo.subscribers.len(),
            count: run.count,
            duration_s: run.duration.map(|d| d.as_secs_f64()),
            rate: run.rate,
            window: run.window,
            inflight: run.inflight,
            keep_alive: common.keep_alive,
            topic: run.topic.as_str().to_owned(),
        },
        throughput: Some(Throughput {
            sent: Rate::new(sent, secs(sent_end_ns), run.payload),
            delivered: Rate::new(totals.delivered, secs(last_delivery_ns), run.payload),
        }),
        latency: Percentiles::of(&latency),
        delivery: Some(Delivery {
            totals,
            foreign,
            unacknowledged,
            shares: Shares::of(&per_pub),
            per_publisher: per_pub,
        }),
        connections: stats.summary(0),
        memory: rss.memory(rss_before, rss_after, stats.established),
        broker_cpu,
        kernel: None,
        errors,
        violations,
        passed,
    };
    Ok((report, latency))
}
