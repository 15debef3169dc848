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
mod exit;
#[cfg(test)]
mod flag_parse;
mod passwd;
mod probe;
mod unique;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MQTT testing toolkit: certificates, probing and conformance for any broker.
#[derive(Debug, Parser)]
#[command(
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("GIT_REVISION"), ")"),
    about,
    after_help = "Exit status: 0 ok; 1 failure; 2 bad usage or input file; 3 cannot connect; \
                  4 TLS handshake failed; 5 server certificate rejected; 6 CONNACK refused; \
                  7 message lost or late; 8 timed out; 9 connection closed by the broker; \
                  10 conformance baseline is stale.\n\
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
    /// Add, change or delete a user in a mosquitto password file ($7$
    /// PBKDF2-SHA512, as mosquitto_passwd writes).
    Passwd(passwd::PasswdArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_subcommand_is_required() {
        assert!(Cli::try_parse_from(["toolkit"]).is_err());
        assert!(Cli::try_parse_from(["toolkit", "certs"]).is_ok());
    }
}
