//! `toolkit certs`: make the certificates MQTT over TLS needs, and say what a
//! certificate file holds.
//!
//! Generation is [`credentials::certs`], the code the broker itself uses for its
//! first-run certificate; this module turns flags into calls and reports what
//! was written. Inspection ([`inspect`], [`render`]) is the toolkit's own.

mod generate;
mod inspect;
mod render;

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use inspect::{CertInfo, describe, inspect_file};
pub use render::status_text;

/// Flags of `toolkit certs`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Without a subcommand, writes ca.pem, ca.key, mqtt_server.pem and mqtt_server.key \
                  (or, with --self-signed, only mqtt_server.pem and mqtt_server.key).\n\n\
                  Exit status: 0 done; 1 files exist (use --force) or cannot be written; \
                  2 bad flag, or an input file missing or unreadable."
)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: Option<CertsCommand>,

    #[command(flatten)]
    server: ServerArgs,

    /// Print what the certificates in FILE hold instead of generating any
    /// (same as `toolkit certs info FILE`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["hostname", "ip", "self_signed", "force", "no_default_names", "days", "ca_days", "backdate", "out"])]
    info: Option<PathBuf>,

    /// With --info: print JSON instead of text.
    #[arg(long, requires = "info")]
    json: bool,
}

/// Flags for the CA and server certificate.
#[derive(Debug, Args)]
struct ServerArgs {
    /// A DNS name for the server certificate (repeatable). The first one is
    /// also the common name. An IP address given here becomes an IP SAN, as
    /// with --ip. Added to localhost, 127.0.0.1 and ::1 unless
    /// --no-default-names.
    #[arg(long, value_name = "NAME")]
    hostname: Vec<String>,

    /// An IP address for the server certificate (repeatable).
    #[arg(long, value_name = "ADDR")]
    ip: Vec<IpAddr>,

    /// Leave localhost, 127.0.0.1 and ::1 out of the server certificate.
    #[arg(long)]
    no_default_names: bool,

    /// Make one self-signed server certificate instead of a CA and a server
    /// certificate signed by it. Clients then use the certificate itself as
    /// their CA file.
    #[arg(long)]
    self_signed: bool,

    #[command(flatten)]
    common: CommonArgs,

    /// Days the CA certificate is valid.
    #[arg(long, value_name = "N", default_value_t = 3650)]
    ca_days: u32,
}

/// Flags shared by the server and client certificates.
#[derive(Debug, Args)]
struct CommonArgs {
    /// Folder to write into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,

    /// Days the certificate is valid. 0 makes one that is already expired.
    #[arg(long, value_name = "N", default_value_t = 365)]
    days: u32,

    /// Move the validity window this many days into the past (to test how
    /// clients treat expired certificates).
    #[arg(long, value_name = "DAYS", default_value_t = 0)]
    backdate: u32,

    /// Replace existing files instead of refusing.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Make a client certificate for mutual TLS, signed by the CA in --out
    /// (NAME.pem, NAME.key).
    Client(ClientArgs),
    /// Print what the certificates in a PEM (or DER) file hold.
    Info(InfoArgs),
}

/// Flags of `toolkit certs client`.
#[derive(Debug, Args)]
struct ClientArgs {
    /// The client's name: its common name and the files' stem.
    #[arg(long, value_name = "NAME")]
    name: String,

    /// The CA certificate to sign with [default: OUT/ca.pem].
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,

    /// The CA key to sign with [default: OUT/ca.key].
    #[arg(long, value_name = "FILE")]
    ca_key: Option<PathBuf>,

    #[command(flatten)]
    common: CommonArgs,
}

/// Flags of `toolkit certs info`.
#[derive(Debug, Args)]
struct InfoArgs {
    /// PEM or DER files; every certificate in each is shown.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `toolkit certs`.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    // clap waives `requires` when the required flag conflicts with one that
    // is present (`--json --out DIR`), so check again here.
    if args.json && args.info.is_none() {
        return Err(crate::exit::usage(
            "--json only applies to --info FILE (or `toolkit certs info --json FILE`)",
        ));
    }
    match (args.command, args.info) {
        (Some(CertsCommand::Client(client)), _) => generate::client(&client),
        (Some(CertsCommand::Info(info)), _) => print_info(&info.files, info.json),
        (None, Some(file)) => print_info(&[file], args.json),
        (None, None) => generate::server(&args.server),
    }
}

fn print_info(files: &[PathBuf], json: bool) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        reports.push((file.clone(), inspect_file(file, now)?));
    }
    let out = if json {
        render::json(&reports)?
    } else {
        render::text(&reports)
    };
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<CertsArgs, clap::Error> {
        crate::flag_parse::parse_flags("certs", args)
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert!(a.command.is_none() && a.info.is_none());
        assert_eq!(a.server.common.out, PathBuf::from("."));
        assert_eq!(a.server.common.days, 365);
        assert_eq!(a.server.ca_days, 3650);
        assert!(!a.server.self_signed && !a.server.common.force);
    }

    #[test]
    fn repeatable_names_and_ips() {
        let a = parse(&[
            "--hostname",
            "a",
            "--hostname",
            "b",
            "--ip",
            "10.0.0.1",
            "--ip",
            "::1",
        ])
        .unwrap();
        assert_eq!(a.server.hostname, ["a", "b"]);
        assert_eq!(a.server.ip.len(), 2);
    }

    #[test]
    fn bad_ip_and_days_are_usage_errors() {
        assert!(parse(&["--ip", "not-an-ip"]).is_err());
        assert!(parse(&["--days", "-1"]).is_err());
        assert!(parse(&["--days", "x"]).is_err());
    }

    #[test]
    fn info_flag_excludes_generation_flags_and_json_needs_info() {
        assert!(parse(&["--info", "f.pem", "--json"]).unwrap().json);
        assert!(parse(&["--info", "f.pem", "--hostname", "x"]).is_err());
        assert!(parse(&["--json"]).is_err());
    }

    #[test]
    fn client_subcommand_needs_a_name() {
        assert!(parse(&["client"]).is_err());
        let a = parse(&["client", "--name", "c1", "--days", "3", "--force"]).unwrap();
        let Some(CertsCommand::Client(c)) = a.command else {
            panic!("not client")
        };
        assert_eq!(c.name, "c1");
        assert_eq!(c.common.days, 3);
        assert!(c.common.force);
    }

    #[test]
    fn info_subcommand_takes_files_and_json() {
        let a = parse(&["info", "a.pem", "b.pem", "--json"]).unwrap();
        let Some(CertsCommand::Info(i)) = a.command else {
            panic!("not info")
        };
        assert_eq!(i.files.len(), 2);
        assert!(i.json);
        assert!(parse(&["info"]).is_err());
    }

    #[test]
    fn flags_before_a_subcommand_are_refused() {
        assert!(parse(&["--self-signed", "client", "--name", "x"]).is_err());
    }
}
