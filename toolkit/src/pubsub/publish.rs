//! `toolkit pub`: connect, publish one message (or one per line of standard
//! input with `-l`), wait until the broker has it (PUBACK at QoS 1, PUBCOMP
//! at QoS 2), and disconnect.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{ArgGroup, Args};
use tokio::io::AsyncBufReadExt as _;

use super::{SessionFlags, open, runtime, topic_name};
use crate::connection::ConnectionFlags;
use crate::exit::usage;
use crate::probe::qos_of;
use crate::probe::session::Session;

/// Flags of `toolkit pub`.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("source").required(true)
        .args(["message", "file", "stdin_line", "stdin_file", "null_message"])),
    after_help = "Exactly one of -m, -f, -l, -s, -n gives the message.\n\
                  Exit status: 0 published (and acknowledged at QoS 1 and 2); \
                  2 bad usage or unreadable -f file; 3 cannot connect; 4 TLS handshake failed; \
                  5 server certificate rejected; 6 CONNACK refused; 8 no PUBACK/PUBCOMP \
                  within --timeout; 9 the broker closed the connection.\n\
                  Each failure prints one line saying what to try."
)]
pub struct PubArgs {
    /// Where the broker is and how to connect (shared with probe, sub, ...).
    #[command(flatten)]
    pub connection: ConnectionFlags,

    /// Keep-alive, clean session, will and --timeout.
    #[command(flatten)]
    pub session: SessionFlags,

    /// Topic to publish to.
    #[arg(short = 't', long, value_name = "TOPIC")]
    topic: String,

    /// The message.
    #[arg(short = 'm', long, value_name = "TEXT")]
    message: Option<String>,

    /// Send the contents of FILE as the message.
    #[arg(short = 'f', long, value_name = "FILE")]
    file: Option<PathBuf>,

    /// Read standard input and send each line as a message (without its
    /// newline), as it arrives, on one connection.
    #[arg(short = 'l', long = "stdin-line")]
    stdin_line: bool,

    /// Read all of standard input and send it as one message.
    #[arg(short = 's', long = "stdin-file")]
    stdin_file: bool,

    /// Send an empty (zero-length) message.
    #[arg(short = 'n', long = "null-message")]
    null_message: bool,

    /// QoS to publish at.
    #[arg(short = 'q', long, value_name = "0|1|2", default_value = "0",
          value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,

    /// Ask the broker to retain the message (an empty retained message
    /// clears the topic's).
    #[arg(short = 'r', long)]
    retain: bool,
}

/// Runs `toolkit pub`.
pub fn run(args: PubArgs) -> anyhow::Result<()> {
    topic_name(&args.topic, "-t")?;
    // The message is read before connecting, so an unreadable file is a
    // usage error whatever the broker's state; -l reads as it publishes.
    let single = if args.stdin_line {
        None
    } else {
        Some(message_of(&args)?)
    };
    runtime()?.block_on(async {
        let mut session = open(&args.connection, &args.session, "pub").await?;
        let result = match single {
            Some(payload) => publish(&mut session, &args, payload).await,
            None => publish_lines(&mut session, &args).await,
        };
        session.disconnect().await;
        result
    })
}

/// The one message `-m`, `-f`, `-s` or `-n` gives.
fn message_of(args: &PubArgs) -> anyhow::Result<Vec<u8>> {
    if let Some(text) = &args.message {
        return Ok(text.as_bytes().to_vec());
    }
    if let Some(path) = &args.file {
        return std::fs::read(path)
            .map_err(|e| usage(format!("cannot read -f {}: {e}", path.display())));
    }
    if args.stdin_file {
        let mut payload = Vec::new();
        std::io::stdin()
            .read_to_end(&mut payload)
            .context("reading standard input (-s)")?;
        return Ok(payload);
    }
    Ok(Vec::new())
}

async fn publish(session: &mut Session, args: &PubArgs, payload: Vec<u8>) -> anyhow::Result<()> {
    session
        .publish(&args.topic, qos_of(args.qos), args.retain, payload)
        .await?;
    Ok(())
}

/// `-l`: each line of standard input as a message, until its end. While
/// waiting for a line the connection is kept serviced (keep-alive pings),
/// and a connection the broker ends is reported at once.
async fn publish_lines(session: &mut Session, args: &PubArgs) -> anyhow::Result<()> {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    loop {
        // `read_until` is not cancel-safe as a whole, but what it has read
        // when the other branch wins stays in `line`: the line is cleared
        // only once it has been sent, so no part of it is lost.
        let read = tokio::select! {
            read = stdin.read_until(b'\n', &mut line) => read.context("reading standard input (-l)")?,
            event = session.next_event() => {
                event?;
                continue;
            }
        };
        if read == 0 && line.is_empty() {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        publish(session, args, std::mem::take(&mut line)).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Status;

    fn parse(args: &[&str]) -> Result<PubArgs, clap::Error> {
        crate::flag_parse::parse_flags("pub", args)
    }

    #[test]
    fn one_message_source_is_required() {
        assert!(parse(&["-t", "a"]).is_err());
        assert!(parse(&["-t", "a", "-m", "x", "-n"]).is_err());
        assert!(parse(&["-t", "a", "-l", "-s"]).is_err());
        assert!(parse(&["-m", "x"]).is_err(), "-t is required");
        for source in [&["-m", "x"][..], &["-f", "f"], &["-l"], &["-s"], &["-n"]] {
            let mut args = vec!["-t", "a"];
            args.extend_from_slice(source);
            assert!(parse(&args).is_ok(), "{source:?}");
        }
    }

    #[test]
    fn mosquitto_pub_flags_parse() {
        let a = parse(&[
            "-h", "b", "-p", "1884", "-t", "x/y", "-m", "hi", "-q", "2", "-r", "-i", "me", "-k",
            "5", "-c", "-u", "u", "-P", "p",
        ])
        .unwrap();
        assert_eq!(a.topic, "x/y");
        assert_eq!(a.message.as_deref(), Some("hi"));
        assert_eq!((a.qos, a.retain), (2, true));
        assert_eq!(a.connection.client_id.as_deref(), Some("me"));
        assert_eq!(a.session.keepalive, 5);
        assert!(a.session.keep_session);
        assert!(parse(&["-t", "a", "-n", "-q", "3"]).is_err());
        let long = parse(&["--topic", "a", "--null-message", "--retain", "--qos", "1"]).unwrap();
        assert!(long.null_message && long.retain);
    }

    #[test]
    fn the_message_comes_from_its_flag() {
        let a = parse(&["-t", "a", "-m", "hi"]).unwrap();
        assert_eq!(message_of(&a).unwrap(), b"hi");
        let a = parse(&["-t", "a", "-n"]).unwrap();
        assert!(message_of(&a).unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        std::fs::write(&path, b"\x00\xffbytes").unwrap();
        let a = parse(&["-t", "a", "-f", path.to_str().unwrap()]).unwrap();
        assert_eq!(message_of(&a).unwrap(), b"\x00\xffbytes");
        let a = parse(&["-t", "a", "-f", "/nonexistent/m"]).unwrap();
        let err = message_of(&a).unwrap_err();
        assert_eq!(crate::exit::status_of(&err), Status::Usage);
        assert!(
            err.to_string().starts_with("cannot read -f /nonexistent/m"),
            "{err}"
        );
    }
}
