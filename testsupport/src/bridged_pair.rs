//! Two mosquittos joined by a bridge, for the harness's cross-node
//! scenarios: the first carries a mosquitto bridge (`connection`,
//! `address`, `topic # both 2`) to the second, so every message published
//! on either reaches the subscribers of both, as on two nodes of a cluster,
//! while connections and sessions stay on the broker that has them.
//!
//! [`BridgedMosquittos::start`] returns once the bridge carries messages
//! both ways: a client on each node sees a probe message published on the
//! other (republished every [`PROBE_EVERY`] until it arrives, within
//! [`BRIDGE_TIMEOUT`]), since mosquitto logs the bridge's connection before
//! its subscription on the second broker is in place.

use std::net::SocketAddr;
use std::time::Duration;

use mqtt_codec::QoS;
use mqtt_codec::raw::RawPublish;

use crate::mosquitto::{Mosquitto, MosquittoOptions};
use crate::raw_client::RawClient;

/// How long the bridge gets to carry the first message each way.
pub const BRIDGE_TIMEOUT: Duration = Duration::from_secs(20);

/// How often the probe message is published again while the bridge comes
/// up (a QoS 0 message published before the bridge subscribed is lost).
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

/// The two brokers; both are killed when dropped.
#[derive(Debug)]
pub struct BridgedMosquittos {
    /// The broker that carries the bridge (node 1).
    pub first: Mosquitto,
    /// The broker the bridge connects to (node 2).
    pub second: Mosquitto,
}

impl BridgedMosquittos {
    /// Starts the second broker, then the first with a bridge to it, and
    /// waits until messages cross both ways. Panics with both logs if they
    /// do not within `BRIDGE_TIMEOUT` (20 s).
    pub fn start() -> Self {
        let second = Mosquitto::start(MosquittoOptions::default());
        let bridge = format!(
            "connection cross-node\n\
             address 127.0.0.1:{}\n\
             topic # both 2\n\
             bridge_protocol_version mqttv311\n\
             cleansession true\n\
             notifications false\n\
             restart_timeout 1\n",
            second.port()
        );
        let first = Mosquitto::start(MosquittoOptions {
            extra_config: bridge,
            ..MosquittoOptions::default()
        });
        let pair = Self { first, second };
        assert!(
            wait_until_bridged(pair.first.addr(), pair.second.addr()),
            "the bridge did not carry messages both ways within {BRIDGE_TIMEOUT:?}\n--- first ---\n{}\n--- second ---\n{}",
            pair.first.log(),
            pair.second.log()
        );
        pair
    }
}

/// Waits until messages published on either of two bridged brokers reach
/// a subscriber on the other, at most `BRIDGE_TIMEOUT` (20 s); returns whether
/// they did. For any pair of bridged brokers (ours bridged to ours too).
pub fn wait_until_bridged(first: SocketAddr, second: SocketAddr) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the bridge probe");
    runtime.block_on(async {
        tokio::time::timeout(BRIDGE_TIMEOUT, async {
            crosses(second, first, "to-first").await;
            crosses(first, second, "to-second").await;
        })
        .await
        .is_ok()
    })
}

/// Returns once a message published on `from` reaches a subscriber on
/// `to`, publishing it again every [`PROBE_EVERY`].
async fn crosses(from: SocketAddr, to: SocketAddr, way: &str) {
    let topic = format!("bridge-probe/{way}/{}", std::process::id());
    let mut sub = RawClient::connected(to, &format!("probe-sub-{way}")).await;
    sub.subscribe(&[(topic.as_str(), QoS::AtMostOnce)], 1).await;
    let mut publisher = RawClient::connected(from, &format!("probe-pub-{way}")).await;
    let probe = RawPublish {
        flags: 0,
        topic: topic.into_bytes(),
        packet_id: None,
        payload: b"probe".to_vec(),
    }
    .to_packet()
    .to_bytes();
    loop {
        publisher.send_bytes(&probe).await;
        if let Ok(Some(_)) = tokio::time::timeout(PROBE_EVERY, sub.try_recv()).await {
            return;
        }
    }
}
