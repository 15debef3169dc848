//! The default probe: connect, subscribe to a topic of our own, publish to it
//! at each QoS and time each message's round trip.

use std::time::Instant;

use rumqttc::QoS;

use super::session::Session;
use super::{Target, connect, ms, nonce, qos_digit};
use crate::exit::{Failure, Status};

/// Probes one listener.
pub(super) async fn run(target: &Target, qos_list: &[QoS]) -> anyhow::Result<()> {
    let mut session = connect::open(target, Some("")).await?;
    let topic = format!("toolkit/probe/{}", nonce());
    let granted = subscribe(&mut session, &topic, "").await?;
    let mut first_failure = None;
    for &qos in qos_list {
        match round_trip(&mut session, &topic, qos, granted, "").await {
            Ok(()) => {}
            Err(failure) if failure.status == Status::Lost => {
                println!("qos {}    FAILED: {failure}", qos_digit(qos));
                first_failure.get_or_insert(failure);
            }
            Err(failure) => return Err(failure.into()),
        }
    }
    // Leave the broker as we found it; a failure here no longer matters.
    let _ = session.unsubscribe(&topic).await;
    session.disconnect().await;
    if let Some(failure) = first_failure {
        return Err(failure.into());
    }
    let levels: Vec<String> = qos_list.iter().map(|q| qos_digit(*q).to_string()).collect();
    println!(
        "ok       {} passed: connect, subscribe, publish and receive at QoS {}",
        target.addr(),
        levels.join(", ")
    );
    Ok(())
}

/// Subscribes `session` to `topic` at QoS 2 and prints, after `label`, the
/// QoS the broker granted and how long the SUBACK took.
pub(super) async fn subscribe(
    session: &mut Session,
    topic: &str,
    label: &str,
) -> Result<QoS, Failure> {
    let started = Instant::now();
    let granted = session.subscribe(topic, QoS::ExactlyOnce).await?;
    println!(
        "{label}suback   {topic} granted QoS {} in {}",
        qos_digit(granted),
        ms(started.elapsed())
    );
    Ok(granted)
}

/// Publishes one message on `publisher` to `topic` and waits for it on
/// `subscriber` (the same session in the default probe), checking payload and
/// delivered QoS, which must be the lower of published and granted
/// [MQTT-3.8.4-6]. Prints one line.
pub(super) async fn round_trip_between(
    publisher: &mut Session,
    subscriber: Option<&mut Session>,
    topic: &str,
    qos: QoS,
    granted: QoS,
    label: &str,
) -> Result<(), Failure> {
    let payload = format!("toolkit probe qos {} {}", qos_digit(qos), nonce());
    let started = Instant::now();
    let acked = publisher
        .publish(topic, qos, false, payload.clone().into_bytes())
        .await?;
    let receiver = match subscriber {
        Some(s) => s,
        None => publisher,
    };
    let timeout = receiver.endpoint().timeout;
    let message = receiver
        .receive(|m| m.topic == topic && m.payload == payload.as_bytes())
        .await?
        .ok_or_else(|| {
            Failure::new(
                Status::Lost,
                format!(
                    "the message published at QoS {} to {topic} did not arrive within {}: the broker took it but did not deliver it; check its access control, or raise --timeout",
                    qos_digit(qos),
                    humantime::format_duration(timeout)
                ),
            )
        })?;
    let expected = if qos_digit(granted) < qos_digit(qos) {
        granted
    } else {
        qos
    };
    if message.qos != expected {
        return Err(Failure::new(
            Status::Lost,
            format!(
                "the message published at QoS {} arrived at QoS {}, not {} (the lower of published and granted QoS) [MQTT-3.8.4-6]",
                qos_digit(qos),
                qos_digit(message.qos),
                qos_digit(expected)
            ),
        ));
    }
    let ack = match qos {
        QoS::AtMostOnce => String::new(),
        QoS::AtLeastOnce => format!(" (PUBACK in {})", ms(acked)),
        QoS::ExactlyOnce => format!(" (PUBCOMP in {})", ms(acked)),
    };
    println!(
        "{label}qos {}    round trip {}{ack}",
        qos_digit(qos),
        ms(message.at - started)
    );
    Ok(())
}

async fn round_trip(
    session: &mut Session,
    topic: &str,
    qos: QoS,
    granted: QoS,
    label: &str,
) -> Result<(), Failure> {
    round_trip_between(session, None, topic, qos, granted, label).await
}
