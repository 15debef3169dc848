//! `toolkit fuzz`: malformed and mutated MQTT sessions against any broker,
//! many connections at once, reproducible from `--seed`. After each batch
//! a liveness check ([`health`]) tells whether the broker crashed or hung;
//! if so the batch is written as a replayable file ([`record`]), minimised
//! ([`minimise`]) and the run exits with status 13 (crash) or 14 (hang).
//! `--replay FILE` plays a file again. See docs/fuzz.md.

mod drive;
mod generate;
mod health;
mod minimise;
mod record;
mod summary;

use std::io::IsTerminal as _;
use std::net::ToSocketAddrs as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use conformance::client::Transport;
use conformance::target::Target as HarnessTarget;
use tokio::time::Instant;

use self::drive::{Pace, play_all};
use self::generate::{Recipe, Session};
use self::health::{FailureKind, Health, Unhealthy};
use self::minimise::{Minimiser, Stopped};
use self::record::Record;
use self::summary::Summary;
use crate::bench::transport::{Target, TlsOptions};
use crate::connection::{self, ConnectionFlags};
use crate::exit::{Failure, Status};

/// Flags of `toolkit fuzz`.
#[derive(Debug, Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    pub connection: ConnectionFlags,

    /// Seed of the sessions [default: random, printed at the start]; the
    /// same seed against the same broker sends the same sessions.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Sessions played at once, each on its own connection (one batch).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,

    /// Stop after this many sessions.
    #[arg(long, value_name = "N")]
    pub sessions: Option<u64>,

    /// Stop after this long (e.g. `30s`, `10m`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// How long the broker may take to pass the liveness check (connect,
    /// subscribe, publish, receive) before it counts as hung.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub deadline: Duration,

    /// How long each session waits, after its last write, for the broker
    /// to close the connection before closing it itself.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub linger: Duration,

    /// Shell command (`sh -c`) that restarts the broker after a crash or
    /// hang, so the failing session can be minimised against a fresh one.
    /// Without it, minimising waits for the broker to come back by itself.
    #[arg(long, value_name = "COMMAND")]
    pub restart_command: Option<String>,

    /// How long to wait for the broker to answer again after a failure
    /// (and for --restart-command to finish).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub restart_wait: Duration,

    /// Most replays spent minimising a failure.
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub max_tries: u32,

    /// Where to write the failing sessions [default:
    /// fuzz-{crash|hang}-SEED.json in the current folder].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Play the sessions of a file `toolkit fuzz` wrote, report what the
    /// broker did, and exit 13 or 14 if it crashed or hung again.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["seed", "sessions", "duration", "out"])]
    pub replay: Option<PathBuf>,

    /// No progress line, even on a terminal.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Runs `toolkit fuzz`.
pub fn run(args: FuzzArgs) -> anyhow::Result<()> {
    let setup = Setup::from_args(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match &args.replay {
            Some(file) => replay(&setup, file).await,
            None => fuzz(&setup, &args).await,
        }
    })
}

/// What both modes need, from the flags.
struct Setup {
    target: Target,
    health: Health,
    pace: Pace,
    recipe: Recipe,
}

impl Setup {
    fn from_args(args: &FuzzArgs) -> anyhow::Result<Self> {
        let flags = &args.connection;
        connection::refuse(
            flags.tls_port.is_some(),
            "--tls-port",
            "fuzz one listener: -p PORT, with --tls for a TLS one",
        )?;
        connection::refuse(
            flags.client_id.is_some(),
            "-i",
            "fuzzed sessions use the client ids fz0 to fz999",
        )?;
        let port = flags.port_or_default();
        let addr = (flags.host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                Failure::new(
                    Status::Connect,
                    format!("cannot resolve {}: check -h", flags.host),
                )
            })?;
        let settings = flags.tls_settings(flags.tls, "--tls")?;
        let tls = settings.clone().map(|settings| TlsOptions {
            settings,
            server_name: flags.host.clone(),
        });
        let target = Target::new(addr, tls.as_ref())?;
        let mut harness = HarnessTarget::plain(flags.host.clone(), port);
        harness.connect_timeout = args.deadline;
        let transport = match &settings {
            None => Transport::Plain,
            Some(s) => {
                harness.tls = Some(conformance::target::TlsTarget {
                    port,
                    client_cert: s.client_auth.is_some(),
                    config: connection::client_config(s)?,
                    config_without_cert: connection::client_config(s)?,
                    server_name: connection::server_name(&flags.host)?,
                });
                Transport::Tls {
                    client_cert: s.client_auth.is_some(),
                }
            }
        };
        let credentials = flags.credentials();
        harness.credentials = credentials
            .clone()
            .map(|(username, password)| conformance::target::Credentials { username, password });
        let run_id = format!("{:08x}", rand::random::<u32>());
        Ok(Self {
            target,
            health: Health {
                target: harness,
                transport,
                run_id,
                deadline: args.deadline,
                restart_command: args.restart_command.clone(),
                restart_wait: args.restart_wait,
            },
            pace: Pace {
                linger: args.linger,
                deadline: args.deadline,
            },
            recipe: Recipe { credentials },
        })
    }
}

/// The exit status for a failure of `kind`.
fn status_for(kind: FailureKind) -> Status {
    match kind {
        FailureKind::Crash => Status::FuzzCrash,
        FailureKind::Hang => Status::FuzzHang,
    }
}

async fn fuzz(setup: &Setup, args: &FuzzArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("fuzz: seed {seed} (rerun with --seed {seed})");
    let mut seq = 0;
    if let Err(u) = setup.health.check(seq).await {
        return Err(Failure::new(
            Status::Connect,
            format!(
                "the broker failed the liveness check before fuzzing: {}",
                u.detail
            ),
        )
        .into());
    }
    let started = Instant::now();
    let mut summary = Summary::new(seed);
    let terminal = !args.quiet && std::io::stderr().is_terminal();
    let mut last_progress = started;
    let mut index = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let failure = loop {
        if args.sessions.is_some_and(|n| index >= n)
            || args.duration.is_some_and(|d| started.elapsed() >= d)
        {
            break None;
        }
        let n = u64::from(args.connections).min(args.sessions.map_or(u64::MAX, |s| s - index));
        let batch: Vec<Session> = (index..index + n)
            .map(|i| generate::session(seed, i, &setup.recipe))
            .collect();
        index += n;
        let played = tokio::select! {
            p = play_all(&setup.target, &batch, setup.pace) => p,
            _ = &mut ctrl_c => break None,
        };
        summary.add(&played);
        seq += 1;
        match setup.health.check(seq).await {
            Ok(()) => summary.liveness_passed += 1,
            Err(u) => break Some((batch, u)),
        }
        if terminal && last_progress.elapsed() >= Duration::from_millis(250) {
            last_progress = Instant::now();
            eprint!("\r{}", summary.progress_line(started.elapsed()));
        }
    };
    if terminal {
        eprintln!();
    }
    println!("{}", summary.report(started.elapsed()));
    let Some((batch, unhealthy)) = failure else {
        return Ok(());
    };
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("fuzz-{}-{seed}.json", unhealthy.kind.name())));
    handle_failure(setup, args, seed, batch, &unhealthy, &path, &mut seq).await
}

/// Writes the failing batch, minimises it, writes the result, and returns
/// the failure that sets the exit status.
async fn handle_failure(
    setup: &Setup,
    args: &FuzzArgs,
    seed: u64,
    batch: Vec<Session>,
    unhealthy: &Unhealthy,
    path: &std::path::Path,
    seq: &mut u32,
) -> anyhow::Result<()> {
    let kind = unhealthy.kind;
    let first: Vec<u64> = batch.iter().map(|s| s.index).collect();
    eprintln!(
        "fuzz: the broker failed ({}) after sessions {}..={}: {}",
        kind.name(),
        first.first().copied().unwrap_or(0),
        first.last().copied().unwrap_or(0),
        unhealthy.detail
    );
    Record::new(seed, kind.name(), &unhealthy.detail, false, &batch).write(path)?;
    eprintln!(
        "fuzz: wrote the failing batch to {}; minimising",
        path.display()
    );
    let mut on_progress = |sessions: &[Session]| {
        let bytes: usize = sessions.iter().map(Session::byte_len).sum();
        let steps: usize = sessions.iter().map(|s| s.steps.len()).sum();
        tracing::info!(steps, bytes, "still failing");
    };
    let minimised = Minimiser {
        target: &setup.target,
        pace: setup.pace,
        health: &setup.health,
        kind,
        max_tries: args.max_tries,
        seq,
        on_progress: &mut on_progress,
    }
    .run(batch)
    .await;
    let done = match &minimised.stopped {
        None => "minimised".to_owned(),
        Some(Stopped::OutOfTries) => {
            format!("minimised as far as {} tries allowed", minimised.tries)
        }
        Some(Stopped::BrokerGone) if minimised.tries == 0 => format!(
            "cannot minimise: the broker did not answer again within {} (give --restart-command to restart it); kept the whole batch",
            humantime::format_duration(args.restart_wait)
        ),
        Some(Stopped::BrokerGone) => format!(
            "minimising stopped after {} tries: the broker did not answer again within {}",
            minimised.tries,
            humantime::format_duration(args.restart_wait)
        ),
    };
    let is_minimised = minimised.tries > 0;
    Record::new(
        seed,
        kind.name(),
        &unhealthy.detail,
        is_minimised,
        &minimised.sessions,
    )
    .write(path)?;
    let steps: usize = minimised.sessions.iter().map(|s| s.steps.len()).sum();
    let bytes: usize = minimised.sessions.iter().map(Session::byte_len).sum();
    eprintln!(
        "fuzz: {done}: {} session(s), {steps} packet(s), {bytes} bytes in {}; replay with: toolkit fuzz --replay {}",
        minimised.sessions.len(),
        path.display(),
        path.display()
    );
    Err(Failure::new(
        status_for(kind),
        format!(
            "the broker {} ({}); the sessions are in {}",
            match kind {
                FailureKind::Crash => "crashed",
                FailureKind::Hang => "hung",
            },
            unhealthy.detail,
            path.display()
        ),
    )
    .into())
}

/// `--replay FILE`: plays the recorded sessions, says what the broker did
/// with each, and checks it.
async fn replay(setup: &Setup, file: &std::path::Path) -> anyhow::Result<()> {
    let record = Record::read(file)?;
    let sessions = record.sessions()?;
    if setup.health.check(0).await.is_err() {
        return Err(Failure::new(
            Status::Connect,
            "the broker failed the liveness check before the replay: is it running?",
        )
        .into());
    }
    println!(
        "replaying {} ({}, seed {}, {} session(s))",
        file.display(),
        record.failure,
        record.seed,
        sessions.len()
    );
    let played = play_all(&setup.target, &sessions, setup.pace).await;
    for (session, p) in sessions.iter().zip(&played) {
        println!(
            "session {}: sent {} of {} packets ({} bytes); broker answered {}; {}",
            session.index,
            p.steps_sent,
            session.steps.len(),
            p.bytes_sent,
            summary::answers_line(&p.answers),
            p.ending.describe()
        );
    }
    match setup.health.check(1).await {
        Ok(()) => {
            println!("the broker passed the liveness check afterwards");
            Ok(())
        }
        Err(u) => {
            println!("the broker failed: {}", u.detail);
            Err(Failure::new(
                status_for(u.kind),
                format!(
                    "the replay made the broker {} again: {}",
                    u.kind.name(),
                    u.detail
                ),
            )
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<FuzzArgs, clap::Error> {
        crate::flag_parse::parse_flags("fuzz", args)
    }

    #[test]
    fn every_flag_parses() {
        let a = parse(&[
            "-h",
            "b",
            "-p",
            "1",
            "--seed",
            "42",
            "--connections",
            "3",
            "--sessions",
            "10",
            "--duration",
            "1m",
            "--deadline",
            "2s",
            "--linger",
            "50ms",
            "--restart-command",
            "systemctl restart mosquitto",
            "--restart-wait",
            "9s",
            "--max-tries",
            "5",
            "--out",
            "f.json",
            "-q",
        ])
        .unwrap();
        assert_eq!(a.connection.host, "b");
        assert_eq!((a.seed, a.connections, a.sessions), (Some(42), 3, Some(10)));
        assert_eq!(a.duration, Some(Duration::from_secs(60)));
        assert_eq!(
            (a.deadline, a.linger),
            (Duration::from_secs(2), Duration::from_millis(50))
        );
        assert_eq!(
            a.restart_command.as_deref(),
            Some("systemctl restart mosquitto")
        );
        assert_eq!((a.restart_wait, a.max_tries), (Duration::from_secs(9), 5));
        assert!(a.quiet && a.out.is_some() && a.replay.is_none());
        let d = parse(&[]).unwrap();
        assert_eq!((d.connections, d.deadline), (8, Duration::from_secs(5)));
    }

    #[test]
    fn replay_takes_no_generation_flags() {
        assert!(parse(&["--replay", "f.json"]).is_ok());
        assert!(parse(&["--replay", "f.json", "--seed", "1"]).is_err());
        assert!(parse(&["--connections", "0"]).is_err());
    }

    #[test]
    fn flags_that_do_not_apply_are_refused() {
        for (args, says) in [
            (
                &["--tls-port", "8883"][..],
                "--tls-port does not apply here",
            ),
            (&["-i", "me"], "-i does not apply here"),
            (
                &["--cafile", "ca.pem"],
                "--cafile only applies to TLS: add --tls",
            ),
        ] {
            let err = Setup::from_args(&parse(args).unwrap()).err().unwrap();
            assert_eq!(crate::exit::status_of(&err), Status::Usage, "{args:?}");
            assert!(err.to_string().contains(says), "{args:?}: {err}");
        }
    }
}
