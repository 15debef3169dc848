//! Test-only helpers shared by the workspace's integration tests.
//!
//! Tests reach real peers on loopback only: [`free_port`] picks an ephemeral
//! port on 127.0.0.1, and [`Mosquitto`] starts Debian's mosquitto with a
//! config the test writes, waiting for the broker to say it is running rather
//! than sleeping. [`ReferenceBroker`] does the same for this workspace's own
//! `broker` binary, given its path, on ephemeral ports it reports in its log.
//! [`RawClient`] is the one raw MQTT client the tests speak through: whole
//! packets from `mqtt_codec`, plain or TLS, every wait bounded.
//! [`check_junit`] checks a JUnit report against the Jenkins/Surefire
//! schema's structure. [`WebSocketGateway`] serves MQTT over WebSocket (ws or
//! wss) in front of a broker that has no WebSocket listener.
//! [`BridgedMosquittos`] starts two mosquittos joined by a bridge, for the
//! cross-node scenarios.

#![allow(clippy::unwrap_used)]

mod bridged_pair;
mod junit;
mod mosquitto;
mod port;
mod raw_client;
mod reference;
mod stderr_log;
mod version;
mod websocket_gateway;

pub use bridged_pair::{BridgedMosquittos, wait_until_bridged};
pub use junit::{JunitCase, check_junit};
pub use mosquitto::{
    Mosquitto, MosquittoOptions, MosquittoTls, mosquitto_binary, user_line, write_acl_file,
    write_password_file,
};
pub use port::{free_port, wait_for_port};
pub use raw_client::{RawClient, WAIT, connect_packet, packet_id};
pub use reference::{ReferenceBroker, ReferenceOptions, ReferenceTls, broker_binary_from_env};
pub use version::expected_version_line;
pub use websocket_gateway::{GatewayOptions, WebSocketGateway};
