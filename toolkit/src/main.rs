//! `toolkit`: certificates, probing, conformance testing and load generation
//! for any MQTT broker.
//!
//! This file only parses the command line, sets up logging and hands each
//! subcommand to its own module.
//!
//! Exit codes: 0 success; 1 the command could not be carried out (bad file,
//! unreachable broker, i/o error); 2 bad flags (from clap); 3 the command ran
//! but the broker failed its checks (for example `bench` saw a QoS 1 message
//! lost).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;

/// MQTT testing toolkit.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load-test a broker: throughput, latency, connections, with delivery checked.
    Bench(bench::BenchArgs),
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
