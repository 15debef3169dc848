//! `toolkit`: certificates, probing and conformance testing for any MQTT broker.

use clap::Parser;

/// MQTT testing toolkit.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
