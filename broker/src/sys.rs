//! `$SYS/broker/...`: the broker's statistics as retained messages, under
//! the topic names mosquitto uses, plus a stats line in the log.
//!
//! Every `--sys-interval` seconds each value that changed since the last
//! round is published (QoS 0, retained), so a client subscribing to
//! `$SYS/#` gets the current figures at once. Clients cannot publish here
//! (see [`Router::publish_from_client`]), and `#` or `+` at the start of a
//! filter never match these topics [MQTT-4.7.2-1].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::router::Router;
use crate::stats::Stats;
use mqtt_codec::Message;
use mqtt_codec::QoS;
use mqtt_codec::topic::TopicName;

/// The version string published at `$SYS/broker/version`.
pub fn version() -> String {
    format!("mqtt-conformance broker {}", env!("CARGO_PKG_VERSION"))
}

/// The current `$SYS` topics and their values.
pub fn snapshot(router: &Router) -> Vec<(&'static str, String)> {
    let s: &Stats = router.stats();
    let connected = s.connected();
    let total = (router.session_count() as u64).max(connected);
    vec![
        ("$SYS/broker/version", version()),
        ("$SYS/broker/uptime", format!("{} seconds", s.uptime_secs())),
        ("$SYS/broker/clients/connected", connected.to_string()),
        ("$SYS/broker/clients/active", connected.to_string()),
        (
            "$SYS/broker/clients/disconnected",
            (total - connected).to_string(),
        ),
        (
            "$SYS/broker/clients/inactive",
            (total - connected).to_string(),
        ),
        ("$SYS/broker/clients/total", total.to_string()),
        (
            "$SYS/broker/clients/maximum",
            Stats::get(&s.connected_maximum).to_string(),
        ),
        (
            "$SYS/broker/clients/expired",
            Stats::get(&s.sessions_expired).to_string(),
        ),
        (
            "$SYS/broker/clients/refused",
            Stats::get(&s.connections_refused).to_string(),
        ),
        (
            "$SYS/broker/listeners/plain/connected",
            Stats::get(&s.connected_plain).to_string(),
        ),
        (
            "$SYS/broker/listeners/tls/connected",
            Stats::get(&s.connected_tls).to_string(),
        ),
        (
            "$SYS/broker/listeners/ws/connected",
            Stats::get(&s.connected_ws).to_string(),
        ),
        (
            "$SYS/broker/listeners/wss/connected",
            Stats::get(&s.connected_wss).to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            Stats::get(&s.messages_received).to_string(),
        ),
        (
            "$SYS/broker/messages/sent",
            Stats::get(&s.messages_sent).to_string(),
        ),
        (
            "$SYS/broker/publish/messages/received",
            Stats::get(&s.publish_received).to_string(),
        ),
        (
            "$SYS/broker/publish/messages/sent",
            Stats::get(&s.publish_sent).to_string(),
        ),
        (
            "$SYS/broker/publish/messages/dropped",
            Stats::get(&s.publish_dropped).to_string(),
        ),
        (
            "$SYS/broker/publish/pauses",
            Stats::get(&s.publish_paused).to_string(),
        ),
        (
            "$SYS/broker/clients/parked",
            Stats::get(&s.clients_parked).to_string(),
        ),
        (
            "$SYS/broker/clients/slow",
            Stats::get(&s.clients_slow).to_string(),
        ),
        (
            "$SYS/broker/bytes/received",
            Stats::get(&s.bytes_received).to_string(),
        ),
        (
            "$SYS/broker/bytes/sent",
            Stats::get(&s.bytes_sent).to_string(),
        ),
        (
            "$SYS/broker/subscriptions/count",
            router.subscription_count().to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            router.retained_count().to_string(),
        ),
        (
            "$SYS/broker/store/write-errors",
            Stats::get(&s.store_write_errors).to_string(),
        ),
    ]
}

/// Publishes the values that changed since `last`, and logs a stats line.
pub fn publish_round(router: &Router, last: &mut HashMap<&'static str, String>) {
    for (topic, value) in snapshot(router) {
        if last.get(topic) == Some(&value) {
            continue;
        }
        match TopicName::new(topic) {
            Ok(name) => {
                router.publish(&Message {
                    topic: name,
                    payload: Bytes::from(value.clone().into_bytes()),
                    qos: QoS::AtMostOnce,
                    retain: true,
                });
                last.insert(topic, value);
            }
            Err(e) => warn!(topic, error = %e, "invalid $SYS topic"),
        }
    }
    let s = router.stats();
    info!(
        connected = s.connected(),
        plain = Stats::get(&s.connected_plain),
        tls = Stats::get(&s.connected_tls),
        ws = Stats::get(&s.connected_ws),
        wss = Stats::get(&s.connected_wss),
        sessions = router.session_count(),
        subscriptions = router.subscription_count(),
        retained = router.retained_count(),
        publish_in = Stats::get(&s.publish_received),
        publish_out = Stats::get(&s.publish_sent),
        dropped = Stats::get(&s.publish_dropped),
        paused = Stats::get(&s.publish_paused),
        slow = Stats::get(&s.clients_slow),
        bytes_in = Stats::get(&s.bytes_received),
        bytes_out = Stats::get(&s.bytes_sent),
        "stats"
    );
}

/// Publishes `$SYS` every `interval` until shutdown.
pub async fn run(router: Arc<Router>, interval: Duration, shutdown: CancellationToken) {
    let mut last = HashMap::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => publish_round(&router, &mut last),
            () = shutdown.cancelled() => return,
        }
    }
}
