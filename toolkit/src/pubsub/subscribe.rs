//! `toolkit sub`: subscribe to one or more topic filters and print each
//! message as it arrives, until `-C` messages, `-W` seconds, Ctrl-C or
//! SIGTERM; then send DISCONNECT, so the broker drops the will.
//!
//! QoS 1 and 2 messages are acknowledged as they arrive (rumqttc sends
//! PUBACK, PUBREC and PUBCOMP); before leaving, `sub` waits (within
//! `--timeout`) for the PUBREL of every QoS 2 message it received, so the
//! broker's side of each exchange is complete too.

use std::io::Write as _;
use std::time::Duration;

use clap::Args;

use time::OffsetDateTime;
use tokio::signal::unix::{SignalKind, signal};

use super::format::Format;
use super::{SessionFlags, open, runtime};
use crate::connection::ConnectionFlags;
use crate::exit::{Failure, Status, usage};
use crate::probe::session::Message;
use crate::probe::{qos_digit, qos_of};

/// Flags of `toolkit sub`.
#[derive(Debug, Args)]
#[command(
    after_help = "Output: the payload of each message and a newline (-v: topic, space, \
                  payload; -N: no newline; -F: a template, see docs/pubsub.md).\n\
                  Exit status: 0 done (-C reached, -W over without -C, Ctrl-C or SIGTERM); \
                  2 bad usage; 3 cannot connect; 4 TLS handshake failed; \
                  5 server certificate rejected; 6 CONNACK or SUBACK refused; \
                  8 -W over before -C messages came, or no SUBACK within --timeout; \
                  9 the broker closed the connection.\n\
                  Each failure prints one line saying what to try."
)]
pub struct SubArgs {
    /// Where the broker is and how to connect (shared with probe, pub, ...).
    #[command(flatten)]
    pub connection: ConnectionFlags,

    /// Keep-alive, clean session, will and --timeout.
    #[command(flatten)]
    pub session: SessionFlags,

    /// Topic filter to subscribe to (wildcards + and # allowed); repeat for
    /// more.
    #[arg(short = 't', long, value_name = "FILTER", required = true)]
    topic: Vec<String>,

    /// QoS to subscribe at.
    #[arg(short = 'q', long, value_name = "0|1|2", default_value = "0",
          value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,

    /// Exit after COUNT messages.
    #[arg(short = 'C', long = "count", value_name = "COUNT",
          value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,

    /// Exit after SECONDS (counted from the start); with -C, not reaching
    /// the count by then exits 8.
    #[arg(short = 'W', long = "wait", value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..))]
    wait: Option<u32>,

    /// Print the topic before the payload.
    #[arg(short = 'v', long)]
    verbose: bool,

    /// Do not add a newline after each message.
    #[arg(short = 'N', long = "no-newline")]
    no_newline: bool,

    /// Print each message through this template (%t topic, %p payload, %q,
    /// %r, %m, %l, %x, %X, %I, %U, %j, %J, \n, \t, ...), or `json` for
    /// one JSON object per message.
    #[arg(
        short = 'F',
        long = "format",
        value_name = "FORMAT",
        conflicts_with = "json"
    )]
    format: Option<String>,

    /// One JSON object per message (as -F json, mosquitto_sub's %j).
    #[arg(long)]
    json: bool,

    /// Do not print retained messages (those the broker had stored).
    #[arg(short = 'R', long = "no-retained")]
    no_retained: bool,

    /// Print only retained messages, and exit at the first that is not.
    #[arg(long, conflicts_with = "no_retained")]
    retained_only: bool,
}

impl SubArgs {
    fn output(&self) -> anyhow::Result<Format> {
        let template = if self.json {
            Some("json")
        } else {
            self.format.as_deref()
        };
        Format::new(template, self.verbose, self.no_newline)
    }
}

/// Why the loop stopped.
enum End {
    /// `-C` reached, `--retained-only` done, or a signal.
    Done,
    /// `-W` passed.
    Waited,
}

/// Runs `toolkit sub`.
pub fn run(args: SubArgs) -> anyhow::Result<()> {
    for filter in &args.topic {
        mqtt_codec::topic::TopicFilter::new(filter).map_err(|e| {
            usage(format!(
                "-t {filter:?} is not a topic filter to subscribe to: {e}"
            ))
        })?;
    }
    let format = args.output()?;
    runtime()?.block_on(async {
        // Installed before connecting: a SIGTERM that comes while connecting
        // must not kill the process without its DISCONNECT.
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let deadline = args
            .wait
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(u64::from(s)));
        let mut session = open(&args.connection, &args.session, "sub").await?;
        for filter in &args.topic {
            let granted = session.subscribe(filter, qos_of(args.qos)).await?;
            // On standard error with RUST_LOG=info: a script (or a test)
            // can wait for it before publishing.
            tracing::info!(topic_filter = %filter, granted = qos_digit(granted), "subscribed");
        }
        let mut printed = 0u64;
        let received = async {
            loop {
                while let Some(message) = session.take_message() {
                    if args.retained_only && !message.retain {
                        return Ok::<_, Failure>(());
                    }
                    if args.no_retained && message.retain {
                        continue;
                    }
                    if !print(&format, &message)? {
                        return Ok(());
                    }
                    printed += 1;
                    if args.count.is_some_and(|c| printed >= c) {
                        return Ok(());
                    }
                }
                session.next_event().await?;
            }
        };
        let end = tokio::select! {
            r = received => r.map(|()| End::Done),
            _ = terminate.recv() => Ok(End::Done),
            _ = interrupt.recv() => Ok(End::Done),
            () = sleep_until(deadline) => Ok(End::Waited),
        };
        let result = match end {
            Ok(End::Done) => Ok(()),
            Ok(End::Waited) => match args.count {
                Some(count) => Err(Failure::new(
                    Status::Timeout,
                    format!(
                        "-W {}: {printed} of {count} messages (-C) came in time",
                        args.wait.unwrap_or_default()
                    ),
                )),
                None => Ok(()),
            },
            Err(failure) => Err(failure),
        };
        if !session.is_closed() {
            session.finish_qos2().await;
            session.disconnect().await;
        }
        result.map_err(anyhow::Error::from)
    })
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Writes `message` to standard output at once (a script reading it line
/// by line sees each message when it comes). `false` when the reader has
/// gone (`toolkit sub ... | head -1`): `sub` then ends quietly, as
/// mosquitto_sub does.
fn print(format: &Format, message: &Message) -> Result<bool, Failure> {
    let bytes = format
        .render(message, OffsetDateTime::now_utc())
        .map_err(|e| Failure::new(Status::Failure, e.to_string()))?;
    let mut out = std::io::stdout().lock();
    match out.write_all(&bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure::new(
            Status::Failure,
            format!("writing to standard output: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SubArgs, clap::Error> {
        crate::flag_parse::parse_flags("sub", args)
    }

    #[test]
    fn topics_repeat_and_are_required() {
        assert!(parse(&[]).is_err());
        let a = parse(&["-t", "a/#", "-t", "b/+", "--topic", "c"]).unwrap();
        assert_eq!(a.topic, ["a/#", "b/+", "c"]);
    }

    #[test]
    fn mosquitto_sub_flags_parse() {
        let a = parse(&[
            "-t", "x", "-q", "1", "-C", "3", "-W", "9", "-v", "-N", "-R", "-i", "me", "-c", "-k",
            "30",
        ])
        .unwrap();
        assert_eq!((a.qos, a.count, a.wait), (1, Some(3), Some(9)));
        assert!(a.verbose && a.no_newline && a.no_retained);
        assert!(a.session.keep_session);
        assert!(parse(&["-t", "x", "-C", "0"]).is_err());
        assert!(parse(&["-t", "x", "-W", "0"]).is_err());
        assert!(parse(&["-t", "x", "-q", "3"]).is_err());
        assert!(parse(&["-t", "x", "-R", "--retained-only"]).is_err());
        assert!(
            parse(&["-t", "x", "--retained-only"])
                .unwrap()
                .retained_only
        );
    }

    #[test]
    fn json_and_format_choose_the_output() {
        let a = parse(&["-t", "x", "--json"]).unwrap();
        assert_eq!(
            a.output().unwrap(),
            Format::new(Some("json"), false, false).unwrap()
        );
        let a = parse(&["-t", "x", "-F", "%t=%p"]).unwrap();
        assert_eq!(
            a.output().unwrap(),
            Format::new(Some("%t=%p"), false, false).unwrap()
        );
        assert!(parse(&["-t", "x", "-F", "%p", "--json"]).is_err());
        let a = parse(&["-t", "x", "-F", "%k"]).unwrap();
        assert!(a.output().is_err());
    }
}
