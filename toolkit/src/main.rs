//! `toolkit`: certificates, probing and conformance testing for any MQTT broker.
//!
//! Exit codes are chosen on purpose and documented per subcommand; in
//! general 0 is success, 1 a finding (a broker failed), 2 bad input (flags,
//! files), and higher codes name specific situations.

mod conformance;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MQTT testing toolkit.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MQTT 3.1.1 conformance suite against a broker.
    Conformance(conformance::Args),
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
    match cli.command {
        Command::Conformance(args) => conformance::main(args),
    }
}
