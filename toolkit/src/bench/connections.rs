//! The `connections` scenario: open N idle clients at a given rate, hold
//! them, and report the connect rate, failures and what the connections cost
//! the broker in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mqtt_codec::Packet;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, watch};

use super::connect::ConnectStats;
use super::cpu::{self, CpuClock};
use super::kernel;
use super::memory::Rss;
use super::progress;
use super::report::{Report, Settings};
use super::scenario::Common;
use super::shared::{RunShared, stopped};
use super::wire::{ClientError, Connection, append_ack, open};

/// The `connections` scenario's settings.
#[derive(Debug, Clone)]
pub struct ConnectionsRun {
    /// How many clients.
    pub clients: usize,
    /// Connections per second; `None` as fast as the concurrency allows.
    pub rate: Option<f64>,
    /// How long to hold them once all attempts are answered.
    pub hold: Duration,
}

/// Runs the scenario.
pub async fn run(run: &ConnectionsRun, common: &Common) -> anyhow::Result<Report> {
    let run_id: u32 = rand::random();
    let shared = Arc::new(RunShared::new(run_id));
    let rss = Rss::open(common.broker_pid)?;
    let rss_before = rss.read()?;
    let kernel_before = kernel::sample();
    let cpu_clock = CpuClock::open(common.broker_pid)?;
    let cpu_before = cpu_clock.sample()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let progress = progress::spawn(Arc::clone(&shared), common.progress, stop_rx.clone());
    let closed = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(common.connect_concurrency.max(1)));
    let (result_tx, mut result_rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    let mut holders = Vec::with_capacity(run.clients);

    for i in 0..run.clients {
        if let Some(rate) = run.rate {
            tokio::time::sleep_until((start + Duration::from_secs_f64(i as f64 / rate)).into())
                .await;
        }
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let id = common.identity(format!("{}-{run_id:08x}-c{i}", common.client_id_prefix));
        let target = common.target.clone();
        let timeout = common.connect_timeout;
        let result_tx = result_tx.clone();
        let shared = Arc::clone(&shared);
        let closed = Arc::clone(&closed);
        let stop = stop_rx.clone();
        let keep_alive = common.keep_alive;
        holders.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = open(&target, &id, timeout).await;
            let ended = Instant::now();
            drop(permit);
            let kind = r.as_ref().map(|_| ()).map_err(ClientError::kind);
            let _ = result_tx.send((started, ended, kind));
            // The tally ends when every attempt has reported, not when every
            // held connection has ended.
            drop(result_tx);
            if let Ok(conn) = r {
                shared.connections.fetch_add(1, Ordering::Relaxed);
                hold(conn, keep_alive, stop, &closed).await;
                shared.connections.fetch_sub(1, Ordering::Relaxed);
            }
        }));
    }
    drop(result_tx);

    let mut stats = ConnectStats::default();
    while let Some((started, ended, kind)) = result_rx.recv().await {
        stats.record(started, ended, kind);
    }
    let cpu_after = cpu_clock.sample()?;
    tokio::time::sleep(run.hold).await;
    let rss_after = rss.read()?;
    let kernel_after = kernel::sample();
    let _ = stop_tx.send(true);
    for h in holders {
        let _ = h.await;
    }
    let _ = progress.await;

    let closed = closed.load(Ordering::Relaxed);
    let connections = stats.summary(closed);
    let mut violations = Vec::new();
    if connections.failed > 0 {
        violations.push(format!(
            "{} of {} connections failed",
            connections.failed, connections.attempted
        ));
    }
    if closed > 0 {
        violations.push(format!(
            "the broker closed {closed} idle connections while they were held"
        ));
    }
    let errors = shared.errors();
    Ok(Report {
        tool: format!("toolkit bench {}", env!("CARGO_PKG_VERSION")),
        label: common.label.clone(),
        scenario: "connections".into(),
        broker: common.target.addr.to_string(),
        tls: common.target.is_tls(),
        settings: Settings {
            qos: 0,
            payload_bytes: 0,
            publishers: 0,
            subscribers: run.clients,
            count: None,
            duration_s: Some(run.hold.as_secs_f64()),
            rate: run.rate,
            window: 0,
            inflight: 0,
            keep_alive: common.keep_alive,
            topic: String::new(),
        },
        throughput: None,
        latency: None,
        delivery: None,
        memory: rss.memory(rss_before, rss_after, connections.established),
        broker_cpu: cpu::between(cpu_before, cpu_after, connections.established),
        kernel: kernel::between(kernel_before, kernel_after, connections.established),
        connections,
        passed: errors.is_empty() && violations.is_empty(),
        errors,
        violations,
    })
}

/// Keeps a connection open and alive until `stop`: answers nothing, sends
/// PINGREQ every half keep-alive, notes if the broker closes it.
async fn hold(
    conn: Connection,
    keep_alive: u16,
    mut stop: watch::Receiver<bool>,
    closed: &AtomicU64,
) {
    let Connection {
        mut reader,
        mut writer,
    } = conn;
    let every = Duration::from_secs(u64::from(keep_alive)) / 2;
    let mut out = Vec::with_capacity(4);
    loop {
        tokio::select! {
            r = reader.fill() => {
                let gone = match r {
                    Ok(0) | Err(_) => true,
                    Ok(_) => reader.next_packet().is_err(),
                };
                // Anything but PINGRESP is dropped unread: idle clients get nothing else.
                while let Ok(Some(_)) = reader.next_packet() {}
                if gone {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            _ = stopped(&mut stop) => break,
            _ = tokio::time::sleep(every), if !every.is_zero() => {
                out.clear();
                append_ack(&mut out, &Packet::PingReq);
                if writer.write_all(&out).await.is_err() {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
    out.clear();
    append_ack(&mut out, &Packet::Disconnect);
    if writer.write_all(&out).await.is_err() {
        return;
    }
    // The broker closes the connection on DISCONNECT [MQTT-3.14.4-1]: let
    // it close first, so TIME_WAIT falls on its side. Were it ours, a run
    // of 19,000 clients bound to source addresses (`--source-addrs`) would
    // leave their ports unusable to the next run for a minute.
    let closed_by_broker = async {
        while let Ok(n) = reader.fill().await {
            if n == 0 {
                break;
            }
            while let Ok(Some(_)) = reader.next_packet() {}
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, closed_by_broker).await;
    let _ = writer.shutdown().await;
}

/// How long a client waits for the broker to close after DISCONNECT.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
