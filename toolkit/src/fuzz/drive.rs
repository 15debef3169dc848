//! Playing one session against the broker: connect (plain or TLS, through
//! `bench`'s transport), write its steps while reading what comes back,
//! then give the broker `linger` to close the connection, and report how
//! the connection ended and which packets the broker sent.

use std::collections::BTreeMap;
use std::time::Duration;

use mqtt_codec::parse_fixed_header;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::generate::Session;
use crate::bench::transport::{Reader, Target};

/// How a fuzzed connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ending {
    /// The broker closed it (end of stream), as it must after a malformed
    /// packet [MQTT-4.8.0-1].
    Closed,
    /// The broker reset it.
    Reset,
    /// Still open after the session and `linger`; we closed it.
    StillOpen,
    /// No connection could be opened (or the TLS handshake failed).
    NotConnected,
    /// Writing or reading stalled past the deadline.
    Stalled,
}

impl Ending {
    /// How the summary and `--replay` name it.
    pub fn describe(self) -> &'static str {
        match self {
            Ending::Closed => "closed by the broker",
            Ending::Reset => "reset by the broker",
            Ending::StillOpen => "still open at the end (closed by us)",
            Ending::NotConnected => "could not connect",
            Ending::Stalled => "stalled (no progress within the deadline)",
        }
    }
}

/// What one session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Played {
    /// Steps written in full.
    pub steps_sent: usize,
    /// Bytes written.
    pub bytes_sent: usize,
    /// How it ended.
    pub ending: Ending,
    /// Packets the broker sent, by type name (undecodable first bytes as
    /// "invalid").
    pub answers: BTreeMap<&'static str, u64>,
}

/// Timing of a session.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// How long the broker gets to close the connection after the last step.
    pub linger: Duration,
    /// Bound on connecting and on each write.
    pub deadline: Duration,
}

/// Plays `session` on a new connection to `target`.
pub async fn play(target: &Target, session: &Session, pace: Pace) -> Played {
    let mut played = Played {
        steps_sent: 0,
        bytes_sent: 0,
        ending: Ending::NotConnected,
        answers: BTreeMap::new(),
    };
    let Ok(Ok((reader, mut writer))) = tokio::time::timeout(pace.deadline, target.connect()).await
    else {
        return played;
    };
    let mut reading = tokio::spawn(read_answers(reader));
    let mut broken = false;
    'steps: for step in &session.steps {
        let chunks: Vec<&[u8]> = if step.slow {
            step.bytes.chunks(1).collect()
        } else {
            vec![&step.bytes[..]]
        };
        for chunk in chunks {
            let write = async {
                writer.write_all(chunk).await?;
                writer.flush().await
            };
            match tokio::time::timeout(pace.deadline, write).await {
                Ok(Ok(())) => played.bytes_sent += chunk.len(),
                Ok(Err(_)) => {
                    broken = true;
                    break 'steps;
                }
                Err(_) => {
                    played.ending = Ending::Stalled;
                    reading.abort();
                    return played;
                }
            }
        }
        played.steps_sent += 1;
    }
    let linger = if broken { pace.deadline } else { pace.linger };
    let ending = match tokio::time::timeout(linger, &mut reading).await {
        Ok(Ok((ending, answers))) => {
            played.answers = answers;
            ending
        }
        Ok(Err(_)) => Ending::Reset,
        Err(_) => {
            reading.abort();
            if broken {
                Ending::Stalled
            } else {
                Ending::StillOpen
            }
        }
    };
    played.ending = ending;
    let _ = writer.shutdown().await;
    played
}

/// Reads until the broker ends the connection, counting packets by type.
async fn read_answers(mut reader: Reader) -> (Ending, BTreeMap<&'static str, u64>) {
    let mut answers = BTreeMap::new();
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) => return (Ending::Closed, answers),
            Ok(n) => n,
            Err(_) => return (Ending::Reset, answers),
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match parse_fixed_header(&buf) {
                Ok(Some(h)) if buf.len() >= h.packet_len() => {
                    *answers.entry(h.packet_type.name()).or_default() += 1;
                    buf.drain(..h.packet_len());
                }
                Ok(_) => break,
                Err(_) => {
                    *answers.entry("invalid").or_default() += 1;
                    buf.clear();
                    break;
                }
            }
        }
    }
}

/// Plays `sessions` at once, each on its own connection, and returns what
/// each did, in the order given.
pub async fn play_all(target: &Target, sessions: &[Session], pace: Pace) -> Vec<Played> {
    let tasks: Vec<_> = sessions
        .iter()
        .map(|s| {
            let (target, session) = (target.clone(), s.clone());
            tokio::spawn(async move { play(&target, &session, pace).await })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap_or(Played {
            steps_sent: 0,
            bytes_sent: 0,
            ending: Ending::Stalled,
            answers: BTreeMap::new(),
        }));
    }
    out
}
