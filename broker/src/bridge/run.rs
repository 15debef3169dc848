//! The bridge's task: connect to the remote broker, move messages both
//! ways while connected, and connect again after `restart_timeout` when the
//! connection is lost.
//!
//! On this broker the bridge is a client like any other, without a socket:
//! it holds a session in the router under its local client id, subscribed
//! to the local filters of its `out` topics. With `cleansession false` (the
//! default) that session is persistent: while the remote is away it is
//! parked and its queue keeps collecting messages (bounded by
//! `--max-queued`), and the QoS 1/2 messages in flight to the remote stay
//! in the session's window and are sent again, with DUP, on the next
//! connection. The session's flows serve both directions, as a
//! connection's do: messages from the remote are acknowledged and their
//! QoS 2 ids remembered by [`Session::handle`], messages to it get their ids
//! from [`Session::deliver`]. The slot is marked a bridge, so what the
//! bridge publishes here does not go back out over it (loop prevention
//! for `both`).

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::{BridgeConfig, RestartTimeout};
use super::remote::{Remote, RemoteError, Step};
use super::topics;
use crate::listener::buffers::LINGER;
use crate::router::{Attachment, ClientSlot, Kick, Router, SlotEvent};
use crate::session::{Action, Seq, Session};
use mqtt_codec::topic::TopicName;
use mqtt_codec::{
    Connect, ConnectReturnCode, Delivery, Message, Packet, PacketId, Publish, QoS,
    SubAckReturnCode, Subscribe, SubscribeFilter,
};

/// How long the remote has to accept the TCP connection, finish TLS and
/// answer CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the bridge waits for an older holder of its local client id
/// to let go.
const TAKEOVER_WAIT: Duration = Duration::from_secs(10);

/// Messages moved from the bridge's outbox per pull.
const PULL_BATCH: usize = 256;

/// What a bridge needs of the broker it runs in.
#[derive(Debug, Clone)]
pub struct Host {
    /// The broker's router.
    pub router: Arc<Router>,
    /// The in-flight window towards the remote (`--max-inflight`).
    pub max_inflight: usize,
    /// The largest packet taken from the remote (`--max-packet-size`).
    pub max_packet_size: usize,
    /// With `--durability batched`: the tickets the bridge's output waits
    /// for, as a connection's does.
    pub commits: Option<Arc<crate::store::commit::Commits>>,
    /// How long the bridge's local publishing waits on a full subscriber
    /// before that subscriber is disconnected (`--slow-client-timeout`).
    pub slow_client_timeout: Option<Duration>,
}

/// Why one connection to the remote ended.
#[derive(Debug, thiserror::Error)]
enum End {
    /// The broker is stopping.
    #[error("the broker is stopping")]
    Shutdown,
    /// The remote connection failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The remote sent a packet a server may not send.
    #[error("the remote sent {0}, which a server may not send")]
    Protocol(mqtt_codec::PacketType),
    /// No PINGRESP within a keep-alive interval.
    #[error("no answer to PINGREQ within {} s", .0.as_secs())]
    NoPingResp(Duration),
    /// The router told the local session to end.
    #[error("the local session was told to end: {}", kick_reason(*.0))]
    Kicked(Kick),
    /// The local session could not be attached.
    #[error("the local session: {0}")]
    Local(String),
}

/// Why the router told the local session to end, in words.
fn kick_reason(kick: Kick) -> &'static str {
    match kick {
        Kick::TakenOver => "another client connected with the bridge's local client id",
        Kick::Shutdown => "the broker is stopping",
        Kick::SlowClient => "the remote took messages too slowly (--slow-client-timeout)",
    }
}

/// Runs one bridge until `shutdown` fires.
pub async fn run(
    config: BridgeConfig,
    tls: Option<TlsConnector>,
    host: Host,
    shutdown: CancellationToken,
) {
    let local_id = config.local_client_id();
    let remote_id = config.remote_client_id();
    info!(
        local_client_id = %local_id,
        remote_client_id = %remote_id,
        addresses = config.addresses.len(),
        topics = config.topics.len(),
        "bridge starting"
    );
    // Subscribed at once, so that a persistent session queues what is
    // published before the remote first answers.
    if !config.local_clean() {
        match attach(&config, &host, &local_id).await {
            Ok((slot, session)) => host.router.disconnect(&slot, session),
            Err(e) => warn!(error = %e, "the bridge's local session could not be prepared"),
        }
    }
    // Not connected yet: a state kept from before a restart says so.
    notify_local(&config, &host, false);
    let mut private = config.try_private;
    let mut backoff = Backoff::new(config.restart);
    let mut next = 0usize;
    let mut last_failure: Option<String> = None;
    loop {
        let Some(address) = config.addresses.get(next % config.addresses.len().max(1)) else {
            return;
        };
        let connect = Connect {
            protocol: config.protocol.bridged(private),
            clean_session: config.clean_session,
            keep_alive: config.keepalive,
            client_id: remote_id.clone(),
            // The remote says `0` for us if we vanish.
            will: remote_notification(&config).map(|topic| state_message(topic, false)),
            username: config.remote_username.clone(),
            password: config
                .remote_password
                .as_ref()
                .map(|p| Bytes::copy_from_slice(p.as_bytes())),
        };
        let opened = tokio::select! {
            r = Remote::open(address, tls.as_ref(), &connect, CONNECT_TIMEOUT, host.max_packet_size) => r,
            () = shutdown.cancelled() => break,
        };
        let failure = match opened {
            Ok((remote, ack)) if ack.code == ConnectReturnCode::Accepted => {
                info!(
                    %address,
                    session_present = ack.session_present,
                    bridge_protocol = private,
                    "bridge connected"
                );
                last_failure = None;
                backoff.reset();
                notify_local(&config, &host, true);
                let end = connected(
                    remote,
                    ack.session_present,
                    &config,
                    &host,
                    &local_id,
                    &shutdown,
                )
                .await;
                notify_local(&config, &host, false);
                match end {
                    End::Shutdown => break,
                    end => warn!(%address, reason = %end, "bridge connection lost"),
                }
                None
            }
            Ok((_, ack))
                if ack.code == ConnectReturnCode::UnacceptableProtocolVersion && private =>
            {
                // As mosquitto does with try_private: a remote that does not
                // know the bridge bit is asked again as a plain client.
                private = false;
                warn!(
                    %address,
                    "the remote refused the bridge protocol level (0x84); connecting as a plain MQTT client, so it may send this bridge's own messages back"
                );
                continue;
            }
            Ok((_, ack)) => Some(format!(
                "the remote refused the connection: {}",
                ack.code.describe()
            )),
            Err(e) => {
                next = next.wrapping_add(1);
                Some(e.to_string())
            }
        };
        if let Some(reason) = failure {
            // Each state once: the same failure again is not news.
            if last_failure.as_deref() == Some(reason.as_str()) {
                debug!(%address, %reason, "bridge still cannot connect");
            } else {
                warn!(%address, %reason, "bridge cannot connect; trying again");
            }
            last_failure = Some(reason);
        }
        let wait = backoff.next_wait();
        debug!(?wait, "bridge waits before connecting again");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => break,
        }
    }
    info!("bridge stopped");
}

/// The bridge's state as `notifications` publish it: `1` connected, `0`
/// not, retained, at QoS 1.
fn state_message(topic: TopicName, up: bool) -> Message {
    Message {
        topic,
        payload: Bytes::from_static(if up { b"1" } else { b"0" }),
        qos: QoS::AtLeastOnce,
        retain: true,
    }
}

/// Where the state goes on the remote, unless `notifications` is off or
/// `notifications_local_only` on.
fn remote_notification(config: &BridgeConfig) -> Option<TopicName> {
    config
        .notification_topic()
        .filter(|_| !config.notifications_local_only)
}

/// Publishes the bridge's state here (a message of the broker's own, as
/// `$SYS` is).
fn notify_local(config: &BridgeConfig, host: &Host, up: bool) {
    if let Some(topic) = config.notification_topic() {
        host.router.publish(&state_message(topic, up));
    }
}

/// Takes the bridge's local session and brings its subscriptions in line
/// with the `out` topics.
async fn attach(
    config: &BridgeConfig,
    host: &Host,
    local_id: &str,
) -> Result<(Arc<ClientSlot>, Session), End> {
    let clean = config.local_clean();
    let Attachment {
        slot, mut session, ..
    } = host
        .router
        .connect_as(
            local_id,
            None,
            // No user name: the session is exempt from the ACL (below), as
            // mosquitto's own bridges are, so `local_username` is ignored.
            None,
            clean,
            host.max_inflight,
            TAKEOVER_WAIT,
        )
        .await
        .map_err(|e| End::Local(e.to_string()))?;
    slot.set_bridge(true);
    // Before anything is subscribed or published: the topics are the
    // operator's configuration, which the ACL does not second-guess.
    slot.set_acl_exempt();
    // No keep-alive: the bridge's local session has no socket to fall
    // silent.
    session.attach(clean, 0, Instant::now().into_std());
    let wanted: Vec<SubscribeFilter> = config
        .topics
        .iter()
        .filter(|t| t.direction.out())
        .map(|t| SubscribeFilter {
            filter: t.local_filter.clone(),
            qos: t.qos,
        })
        .collect();
    let stale: Vec<_> = session
        .subscriptions()
        .keys()
        .filter(|f| !wanted.iter().any(|w| &w.filter == *f))
        .cloned()
        .collect();
    // Under the gate, as a client's SUBSCRIBE and UNSUBSCRIBE are: a
    // commit's cut sees a subscription together with the retained
    // messages it owes (the router records the two in turn).
    let gate = host.router.gate();
    if !stale.is_empty() {
        host.router.unsubscribe(&slot, &stale);
        for f in &stale {
            session.unsubscribed(f);
        }
    }
    let missing: Vec<SubscribeFilter> = wanted
        .into_iter()
        .filter(|w| session.subscriptions().get(&w.filter) != Some(&w.qos))
        .collect();
    if !missing.is_empty() {
        let grants = host.router.subscribe(&slot, &missing);
        // Only what was granted is a subscription of the session.
        for (f, code) in missing.into_iter().zip(grants.return_codes) {
            if matches!(code, SubAckReturnCode::Granted(_)) {
                session.subscribed(f.filter, f.qos);
            } else {
                warn!(filter = %f.filter, "the bridge's local subscription was refused");
            }
        }
    }
    drop(gate);
    Ok((slot, session))
}

/// One connection to the remote, from CONNACK to its end; the local
/// session is handed back to the router (parked if persistent) before it
/// returns.
async fn connected(
    remote: Remote,
    session_present: bool,
    config: &BridgeConfig,
    host: &Host,
    local_id: &str,
    shutdown: &CancellationToken,
) -> End {
    let (slot, mut session) = tokio::select! {
        r = attach(config, host, local_id) => match r {
            Ok(a) => a,
            Err(end) => return end,
        },
        () = shutdown.cancelled() => return End::Shutdown,
    };
    if !session_present {
        // The remote kept no session: the QoS 2 messages it sent before are
        // gone from its side, and it numbers new ones from 1 again, so an
        // id remembered here would answer a new message PUBREC and drop
        // it. Our own unacknowledged messages are still sent again with
        // their ids [MQTT-4.4.0-1]: to a remote without a session they are
        // new (QoS 1 delivered again at most a second time, QoS 2 answered
        // as any PUBLISH), and a PUBREL it does not know is still answered
        // with PUBCOMP, which ends the flow here.
        let _gate = host.router.gate();
        if session.forget_awaiting_rel() {
            debug!("the remote has no session: its QoS 2 ids waiting for PUBREL are forgotten");
            host.router.flows_changed(&slot, &session);
        }
    }
    let mut link = Link {
        remote,
        config,
        host,
        slot,
        session,
        subscribing: None,
        hold: None,
        owed: true,
    };
    let end = link.serve(shutdown).await;
    let Link { slot, session, .. } = link;
    host.router.disconnect(&slot, session);
    end
}

/// A bridge while connected: the remote connection and the local session.
struct Link<'a> {
    remote: Remote,
    config: &'a BridgeConfig,
    host: &'a Host,
    slot: Arc<ClientSlot>,
    session: Session,
    /// The SUBSCRIBE to the remote waiting for its SUBACK: nothing is
    /// delivered meanwhile, so its packet id stays unique.
    subscribing: Option<PacketId>,
    /// With `--durability batched`: the commit the output waits for.
    hold: Option<u64>,
    /// Retained messages may still be owed (see `Router::feed_retained`):
    /// the outbox's event says only that messages wait, not that a
    /// cursor does (one restored from the store, say, with the queue
    /// empty), so the loop pulls while this is set and the window is open.
    owed: bool,
}

impl Link<'_> {
    async fn serve(&mut self, shutdown: &CancellationToken) -> End {
        // The flows left in flight by the last connection first, in order
        // [MQTT-4.4.0-1]: PUBLISH again with DUP, or PUBREL.
        let resumed: Vec<Packet> = self.session.resume().collect();
        for packet in resumed {
            self.put_out(packet);
        }
        let filters: Vec<SubscribeFilter> = self
            .config
            .topics
            .iter()
            .filter(|t| t.direction.inward())
            .map(|t| SubscribeFilter {
                filter: t.remote_filter.clone(),
                qos: t.qos,
            })
            .collect();
        if !filters.is_empty() {
            let packet_id = self.free_packet_id();
            self.remote
                .put(&Packet::Subscribe(Subscribe { packet_id, filters }));
            self.subscribing = Some(packet_id);
        }
        if let Some(topic) = remote_notification(self.config) {
            // At QoS 0, outside the session: the store keeps only messages
            // that were queued, and this one is sent anew on every connect
            // (the CONNECT's will sets the state back to 0).
            let up = state_message(topic, true);
            self.put_out(Packet::Publish(Publish::new(Delivery::AtMostOnce, up)));
        }
        let keepalive = Duration::from_secs(u64::from(self.config.keepalive));
        let mut ping = Ping::new(keepalive);
        loop {
            // With `--durability batched`, queued output waits for its
            // commit; then it is written while the loop goes on.
            if self.hold.is_some() {
                tokio::select! {
                    () = self.released() => {}
                    () = shutdown.cancelled() => return self.goodbye().await,
                }
            }
            // A remote that does not read is a slow consumer: past the high
            // water nothing more is pulled, and the outbox's limits apply.
            let pull =
                self.subscribing.is_none() && self.session.window_open() && !self.remote.full();
            if pull && self.owed {
                self.pull().await;
                continue;
            }
            let slot = Arc::clone(&self.slot);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return self.goodbye().await,
                r = self.remote.step(true) => match r {
                    Ok(Step::Wrote) => ping.sent(),
                    Ok(Step::Packet(packet)) => {
                        ping.heard();
                        if let Err(end) = self.handle(packet, shutdown).await {
                            return end;
                        }
                    }
                    Err(e) => return e.into(),
                },
                event = poll_fn(|cx| slot.poll_event(cx, pull)) => match event {
                    SlotEvent::Kicked(Kick::Shutdown) => return self.goodbye().await,
                    SlotEvent::Kicked(kick) => return End::Kicked(kick),
                    SlotEvent::Messages => self.pull().await,
                    SlotEvent::Durable => {}
                },
                () = ping.due(), if ping.on() => {
                    if ping.awaited() {
                        return End::NoPingResp(keepalive);
                    }
                    self.remote.put(&Packet::PingReq);
                    ping.asked();
                }
            }
        }
    }

    /// DISCONNECT, so the remote drops no will and knows we meant to go;
    /// written within [`LINGER`], as a remote that does not read would
    /// hold the broker's shutdown otherwise.
    ///
    /// Output held for a commit goes only once that commit is on disk (the
    /// committer runs until the connections are gone, so it waits
    /// [`LINGER`] at most); otherwise the connection just closes, and the
    /// remote sends again what it got no acknowledgement for.
    async fn goodbye(&mut self) -> End {
        if self.hold.is_some() && tokio::time::timeout(LINGER, self.released()).await.is_err() {
            debug!("closing without DISCONNECT: its acknowledgements are not on disk yet");
            return End::Shutdown;
        }
        self.remote.put(&Packet::Disconnect);
        match tokio::time::timeout(LINGER, self.remote.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!(error = %e, "DISCONNECT to the remote not written"),
            Err(_) => debug!("the remote did not take the DISCONNECT in time"),
        }
        End::Shutdown
    }

    /// A packet id no flow in flight holds, for the SUBSCRIBE.
    fn free_packet_id(&self) -> PacketId {
        let mut id = PacketId::new(1).expect("1 is not 0");
        while self.session.outgoing().iter().any(|f| f.packet_id == id) {
            id = id.next();
        }
        id
    }

    /// Queues a packet of the local session's flows for the remote, its
    /// topic given the remote's name. A message no `out` topic maps any
    /// more (the configuration changed while it waited) goes as it is.
    fn put_out(&mut self, packet: Packet) {
        let packet = match packet {
            Packet::Publish(p) => match topics::to_remote(&self.config.topics, p.topic()) {
                Some(topic) => {
                    let dup = p.dup;
                    let delivery = p.delivery();
                    let message = Message {
                        topic,
                        ..p.into_message()
                    };
                    Packet::Publish(Publish::new(delivery, message).with_dup(dup))
                }
                None => Packet::Publish(p),
            },
            other => other,
        };
        self.remote.put(&packet);
    }

    /// Moves messages from the local outbox to the remote, within the
    /// in-flight window.
    async fn pull(&mut self) {
        let router = Arc::clone(&self.host.router);
        let mut batch = Vec::new();
        loop {
            let owed = router.feed_retained(&self.slot);
            let took;
            let more;
            {
                // Held from the take on, as a connection's pull holds it:
                // a commit's cut must never see a message taken from the
                // queue but not yet in the in-flight window (it would be
                // in neither, and a crash after that commit would lose it).
                let _gate = router.gate();
                let taken = self.slot.take_within(
                    &mut batch,
                    PULL_BATCH,
                    self.session.window_room(),
                    usize::MAX,
                    router.limits(),
                );
                if taken.dropped > 0 {
                    warn!(
                        dropped = taken.dropped,
                        "messages for the bridge were dropped while the remote was away: its queue was full (--max-queued, --max-queued-bytes)"
                    );
                }
                more = taken.more;
                let first = taken.first;
                took = batch.len();
                let mut in_flight = false;
                let mut exactly_once = false;
                for (message, seq) in batch.drain(..).zip(first.0..) {
                    in_flight |= message.qos != QoS::AtMostOnce;
                    exactly_once |= message.qos == QoS::ExactlyOnce;
                    if let Some(publish) = self.session.deliver(message, Seq(seq)) {
                        self.put_out(Packet::Publish(publish));
                    }
                }
                if took > 0 {
                    router.session_changed(&self.slot);
                }
                if in_flight {
                    router.flows_changed(&self.slot, &self.session);
                }
                // A QoS 2 id in flight is on disk before its PUBLISH goes
                // out, or a restart would send it again as new.
                if exactly_once && !self.session.is_clean() {
                    self.hold_output();
                }
            }
            self.owed = owed;
            if (!more && !owed) || !self.session.window_open() {
                return;
            }
            if took == 0 {
                // A chunk of the retained walk matched nothing: let others
                // run, then go on.
                tokio::task::yield_now().await;
            }
        }
    }

    /// One packet from the remote.
    async fn handle(&mut self, packet: Packet, shutdown: &CancellationToken) -> Result<(), End> {
        match packet {
            Packet::SubAck(ack) => {
                if self.subscribing == Some(ack.packet_id) {
                    self.subscribing = None;
                }
                let topics = self.config.topics.iter().filter(|t| t.direction.inward());
                for (topic, code) in topics.zip(&ack.return_codes) {
                    if *code == SubAckReturnCode::Failure {
                        warn!(filter = %topic.remote_filter.as_str(), "the remote refused the bridge's subscription");
                    }
                }
                return Ok(());
            }
            Packet::PingResp | Packet::UnsubAck(_) => return Ok(()),
            Packet::ConnAck(_)
            | Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::Disconnect => return Err(End::Protocol(packet.packet_type())),
            Packet::Publish(_)
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_) => {}
        }
        // What changes the session's flows: an acknowledgement of ours,
        // or a QoS 2 id to remember until PUBREL.
        let flows = !matches!(&packet, Packet::Publish(p) if p.qos() != QoS::ExactlyOnce);
        let persistent = !self.session.is_clean();
        let router = Arc::clone(&self.host.router);
        let gate = router.gate();
        let action = self
            .session
            .handle(packet, Instant::now().into_std())
            .map_err(|e| End::Local(e.to_string()))?;
        if flows {
            router.flows_changed(&self.slot, &self.session);
        }
        let mut full = None;
        let mut commit = false;
        match action {
            Action::Route { message, ack } => {
                match topics::to_local(&self.config.topics, &message.topic) {
                    Some(topic) => {
                        let local = Message { topic, ..message };
                        // As a connection does: when routing touched stored
                        // state, the message is on disk before its
                        // PUBACK/PUBREC goes out (--durability batched).
                        crate::router::Router::take_marked();
                        full = router.publish_paced(&local, &self.slot).full;
                        commit =
                            crate::router::Router::take_marked() && local.qos != QoS::AtMostOnce;
                    }
                    None => {
                        debug!(topic = %message.topic.as_str(), "a message from the remote no `in` topic maps, dropped");
                    }
                }
                if let Some(ack) = ack {
                    self.remote.put(&ack);
                }
            }
            Action::Reply(packet) => {
                // PUBREL and PUBCOMP once their state is on disk.
                commit = persistent && matches!(packet, Packet::PubRel(_) | Packet::PubComp(_));
                self.remote.put(&packet);
            }
            Action::None => {}
            Action::Subscribe(_) | Action::Unsubscribe(_) | Action::Disconnect => {
                // Answered above: a server sends none of these.
            }
        }
        if commit {
            self.hold_output();
        }
        drop(gate);
        if let Some(full) = full {
            self.wait_for_room(&full, shutdown).await;
        }
        Ok(())
    }

    /// With `--durability batched`: what was queued for the remote waits
    /// until the changes made so far are on disk (called with the router's
    /// gate held, right after the changes).
    fn hold_output(&mut self) {
        if let Some(commits) = &self.host.commits {
            self.hold = Some(commits.request());
        }
    }

    /// Waits, if the output is held, until its commit is on disk.
    async fn released(&mut self) {
        if let (Some(commits), Some(ticket)) = (&self.host.commits, self.hold.take()) {
            poll_fn(|cx| commits.poll_durable(cx, ticket)).await;
        }
    }

    /// Backpressure, as for a client's connection: a local subscriber's
    /// outbox is full, so nothing more is read from the remote until it
    /// drains; one that stays full past `--slow-client-timeout` is
    /// disconnected.
    async fn wait_for_room(&mut self, full: &Arc<ClientSlot>, shutdown: &CancellationToken) {
        let slot = Arc::clone(&self.slot);
        loop {
            let wait = self
                .host
                .slow_client_timeout
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                () = poll_fn(|cx| full.poll_room(cx, &slot)) => break,
                () = tokio::time::sleep(wait) => {
                    if self.host.slow_client_timeout.is_some() {
                        full.kick_slow(wait);
                    }
                }
                () = shutdown.cancelled() => {
                    full.leave_line(&slot);
                    return;
                }
            }
        }
        full.pass_turn(&slot);
    }
}

/// The bridge's keep-alive as a client [MQTT-3.1.2-23]: a PINGREQ when
/// nothing was sent to the remote for a keep-alive interval (what the
/// remote sends does not count: the remote times the bridge by what it
/// receives), and the connection dropped when nothing at all comes back
/// within an interval after it. Off with `keepalive_interval 0`.
#[derive(Debug)]
struct Ping {
    keepalive: Duration,
    /// When bytes last went to the remote.
    last_sent: Instant,
    /// After a PINGREQ: by when the remote must have sent something.
    answer_by: Option<Instant>,
}

impl Ping {
    fn new(keepalive: Duration) -> Self {
        Self {
            keepalive,
            // The CONNECT has just been written.
            last_sent: Instant::now(),
            answer_by: None,
        }
    }

    fn on(&self) -> bool {
        !self.keepalive.is_zero()
    }

    /// Bytes went to the remote.
    fn sent(&mut self) {
        self.last_sent = Instant::now();
    }

    /// A packet came from the remote: it is there.
    fn heard(&mut self) {
        self.answer_by = None;
    }

    /// A PINGREQ was queued.
    fn asked(&mut self) {
        self.answer_by = Some(Instant::now() + self.keepalive);
    }

    /// Whether a PINGREQ waits for an answer.
    fn awaited(&self) -> bool {
        self.answer_by.is_some()
    }

    /// Ready when a PINGREQ is due, or its answer overdue.
    async fn due(&self) {
        let at = self.answer_by.unwrap_or(self.last_sent + self.keepalive);
        tokio::time::sleep_until(at).await;
    }
}

/// The waits between connection attempts: mosquitto's `restart_timeout`.
#[derive(Debug)]
struct Backoff {
    restart: RestartTimeout,
    last: Option<Duration>,
}

impl Backoff {
    fn new(restart: RestartTimeout) -> Self {
        Self {
            restart,
            last: None,
        }
    }

    /// Back to the base wait, after a connection succeeded.
    fn reset(&mut self) {
        self.last = None;
    }

    /// The next wait: constant, or "decorrelated jitter" (a random time
    /// between the base and three times the last wait, at most the cap).
    fn next_wait(&mut self) -> Duration {
        let wait = match self.restart {
            RestartTimeout::Constant(d) => d,
            RestartTimeout::Backoff { base, cap } => match self.last {
                None => base,
                Some(last) => {
                    let high = (last * 3).max(base);
                    let millis = rand::random_range(base.as_millis()..=high.as_millis());
                    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX)).min(cap)
                }
            },
        };
        self.last = Some(wait);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_the_base_and_stays_under_the_cap() {
        let (base, cap) = (Duration::from_secs(5), Duration::from_secs(30));
        let mut b = Backoff::new(RestartTimeout::Backoff { base, cap });
        assert_eq!(b.next_wait(), base);
        for _ in 0..50 {
            let w = b.next_wait();
            assert!(w >= base && w <= cap, "{w:?}");
        }
        b.reset();
        assert_eq!(b.next_wait(), base);
        let mut constant = Backoff::new(RestartTimeout::Constant(Duration::from_secs(2)));
        assert_eq!(constant.next_wait(), Duration::from_secs(2));
        assert_eq!(constant.next_wait(), Duration::from_secs(2));
    }
}
