//! Is the broker still there? The liveness probe the suite runs before the
//! first scenario and after each one finishes (issue 13): a fresh client
//! connects as scenarios do (the run's host, plain port and credentials),
//! subscribes to a topic of its own under the run's nonce and publishes one
//! QoS 1 message to it, which must come back. A broker that refuses or
//! ignores new clients fails it within [`PROBE_TIMEOUT`] (times
//! `--time-scale`), and the suite stops instead of reporting every later
//! scenario as a failure of the rule it checks.
//!
//! The probe asks for no more than any broker must do for a live client;
//! what it does not require is on purpose: the PUBACK (a broker that loses
//! acknowledgements is alive, and the scenarios judge it), or a granted
//! subscription (a broker that refuses one has answered).

use std::time::Duration;

use mqtt_codec::raw::{RawPublish, RawSubscribe};
use mqtt_codec::{Packet, PacketType, SubAckReturnCode};
use tokio::time::Instant;

use crate::client::Transport;
use crate::engine::SessionError;
use crate::engine::service::{next_packet, open_session_over};
use crate::engine::simple_packet;
use crate::target::Target;

/// How long one probe may take before the broker counts as unavailable
/// (times the target's time scale). Far above a live broker's round trip
/// (about a millisecond on loopback) so a busy one is not mistaken for dead.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the broker failed the probe, as one line.
pub type ProbeError = SessionError;

/// The client id of probe `seq` of run `run_id`: `q{run}`, like every
/// scenario's ids, then `live` and the sequence number, which no scenario
/// index (three digits) can spell.
pub fn client_id(run_id: &str, seq: u32) -> String {
    format!("q{run_id}live{seq}")
}

/// The topic of probe `seq`, under the run's prefix `mqc/{run}/`.
pub fn topic(run_id: &str, seq: u32) -> String {
    format!("mqc/{run_id}/liveness/{seq}")
}

/// Runs probe `seq` of run `run_id` against `target`, allowing it at most
/// `limit`: connect, subscribe, publish at QoS 1 and receive the message
/// back, then disconnect.
pub async fn probe(
    target: &Target,
    run_id: &str,
    seq: u32,
    limit: Duration,
) -> Result<(), ProbeError> {
    probe_over(target, Transport::Plain, run_id, seq, limit).await
}

/// [`probe`] on the listener `transport` names: `toolkit fuzz --tls` checks
/// the TLS listener it fuzzes.
pub async fn probe_over(
    target: &Target,
    transport: Transport,
    run_id: &str,
    seq: u32,
    limit: Duration,
) -> Result<(), ProbeError> {
    let started = Instant::now();
    let deadline = started + limit;
    let topic = topic(run_id, seq).into_bytes();
    let mut conn = open_session_over(
        target,
        transport,
        started,
        client_id(run_id, seq).into_bytes(),
        deadline,
    )
    .await?;
    let subscribe = RawSubscribe {
        packet_id: 1,
        filters: vec![(topic.clone(), 1)],
    };
    let _ = conn.write(&subscribe.to_packet().to_bytes()).await;
    loop {
        match next_packet(&mut conn, deadline, "SUBACK", started).await? {
            Packet::SubAck(s) if s.return_codes.contains(&SubAckReturnCode::Failure) => {
                // Refused: the broker answered, so it is alive, but will not
                // route to this client; nothing more to ask of it.
                let _ = conn.write(&[0xe0, 0x00]).await;
                return Ok(());
            }
            Packet::SubAck(_) => break,
            // A message the probe never asked for (a broker that leaks
            // other clients' messages): judging it is the scenarios'
            // business, not the probe's, which only asks if the broker
            // still answers.
            Packet::Publish(_) => {}
            other => {
                return Err(SessionError::Unexpected {
                    waiting_for: "SUBACK",
                    got: crate::describe::packet(&other),
                });
            }
        }
    }
    let publish = RawPublish {
        flags: 0b0010,
        topic: topic.clone(),
        packet_id: Some(2),
        payload: b"liveness".to_vec(),
    };
    let _ = conn.write(&publish.to_packet().to_bytes()).await;
    loop {
        match next_packet(&mut conn, deadline, "the message back", started).await? {
            Packet::Publish(p) if p.topic().as_str().as_bytes() == topic.as_slice() => {
                if let Some(id) = p.packet_id() {
                    let ack = simple_packet(PacketType::PubAck, Some(id.get()));
                    let _ = conn.write(&ack.to_bytes()).await;
                }
                break;
            }
            // The PUBACK, before or after the delivery.
            _ => {}
        }
    }
    let _ = conn.write(&[0xe0, 0x00]).await;
    conn.shutdown().await;
    Ok(())
}
