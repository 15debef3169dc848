//! `toolkit`: certificates, probing and conformance testing for any MQTT
//! broker, and password files for mosquitto and the reference broker.
//!
//! A thin dispatcher: each subcommand lives in its own module, takes its
//! parsed flags and returns `anyhow::Result`; this file sets up logging,
//! prints an error chain once and maps it to the exit status it asks for
//! (see [`exit`]).

mod bench;
mod certs;
mod conformance;
mod connection;
mod differential;
mod exit;
#[cfg(test)]
mod flag_parse;
mod fuzz;
mod help;
mod passwd;
mod preflight;
mod probe;
mod proxy;
mod pubsub;
mod unique;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// MQTT testing toolkit: certificates, probing and conformance for any broker.
#[derive(Debug, Parser)]
#[command(
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("GIT_REVISION"), ")"),
    about,
    after_help = "Exit status: 0 ok; 1 failure; 2 bad usage or input file; 3 cannot connect; \
                  4 TLS handshake failed; 5 server certificate rejected; 6 CONNACK refused; \
                  7 message lost or late; 8 timed out; 9 connection closed by the broker; \
                  10 conformance baseline is stale; 11 conformance scenarios skipped with \
                  --fail-on-skip; 12 broker unavailable during conformance; 13 fuzz: the \
                  broker crashed; 14 fuzz: the broker hung.\n\
                  Set RUST_LOG=debug for a trace of what happens."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load-test a broker: throughput, latency and connections, with every delivery checked.
    Bench(bench::BenchArgs),
    /// Make a CA, server and client certificates, or inspect certificate files.
    Certs(certs::CertsArgs),
    /// Check that a broker answers: connect (plain or TLS), subscribe, publish
    /// and receive at each QoS, timing each round trip.
    Probe(probe::ProbeArgs),
    /// Run the MQTT 3.1.1 conformance suite against a broker and report,
    /// statement by statement, where it departs from the specification.
    Conformance(conformance::Args),
    /// Send malformed and mutated sessions to a broker until it crashes or
    /// hangs; minimise and record the culprit (`--replay` plays it again).
    Fuzz(fuzz::FuzzArgs),
    /// Add, change or delete a user in a mosquitto password file ($7$
    /// PBKDF2-SHA512, as mosquitto_passwd writes).
    Passwd(passwd::PasswdArgs),
    /// Publish a message (or each line of standard input), as mosquitto_pub.
    Pub(pubsub::PubArgs),
    /// Subscribe and print messages as they arrive, as mosquitto_sub.
    Sub(pubsub::SubArgs),
    /// Stand between clients and a broker as an MQTT-aware proxy that
    /// injects faults: delay, drops, duplicates, reordering, split writes,
    /// throttling, cuts, a paused broker.
    Proxy(proxy::ProxyArgs),
}

fn main() -> ExitCode {
    // Help is `--help` only (see `help`): `-h` is the host.
    let matches = help::long_only(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Certs(args) => certs::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Conformance(args) => conformance::run(args),
        Command::Passwd(args) => passwd::run(args),
        Command::Pub(args) => pubsub::publish::run(args),
        Command::Sub(args) => pubsub::subscribe::run(args),
        Command::Proxy(args) => proxy::run(args),
        Command::Fuzz(args) => fuzz::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", exit::message_of(&err));
            ExitCode::from(exit::status_of(&err).code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let matches = help::long_only(Cli::command()).try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }

    #[test]
    fn cli_definition_is_consistent() {
        help::long_only(Cli::command()).debug_assert();
    }

    #[test]
    fn a_subcommand_is_required() {
        assert!(parse(&["toolkit"]).is_err());
        assert!(parse(&["toolkit", "certs"]).is_ok());
    }

    #[test]
    fn help_is_long_only_everywhere() {
        let help = |args: &[&str]| {
            parse(args).err().map(|e| e.kind()) == Some(clap::error::ErrorKind::DisplayHelp)
        };
        for sub in [
            &["toolkit"][..],
            &["toolkit", "probe"],
            &["toolkit", "conformance"],
            &["toolkit", "bench"],
            &["toolkit", "bench", "fan-in"],
            &["toolkit", "certs"],
            &["toolkit", "passwd"],
            &["toolkit", "pub"],
            &["toolkit", "sub"],
            &["toolkit", "proxy"],
            &["toolkit", "fuzz"],
        ] {
            let mut long = sub.to_vec();
            long.push("--help");
            assert!(help(&long), "{long:?} prints help");
            let mut short = sub.to_vec();
            short.push("-h");
            assert!(!help(&short), "{short:?} must not print help");
        }
    }

    #[test]
    fn dash_h_is_the_host_in_every_connecting_subcommand() {
        for args in [
            &["toolkit", "probe", "-h", "broker.example"][..],
            &["toolkit", "conformance", "-h", "broker.example"],
            &["toolkit", "bench", "fan-in", "-h", "broker.example"],
            &["toolkit", "pub", "-h", "broker.example", "-t", "t", "-n"],
            &["toolkit", "sub", "-h", "broker.example", "-t", "t"],
            &["toolkit", "fuzz", "-h", "broker.example"],
        ] {
            let cli = parse(args).unwrap();
            let host = match cli.command {
                Command::Probe(a) => a.connection.host,
                Command::Conformance(a) => a.connection.host,
                Command::Fuzz(a) => a.connection.host,
                Command::Bench(a) => bench::host_of(&a).unwrap_or_default(),
                Command::Pub(a) => a.connection.host,
                Command::Sub(a) => a.connection.host,
                _ => String::new(),
            };
            assert_eq!(host, "broker.example", "{args:?}");
        }
    }
}
