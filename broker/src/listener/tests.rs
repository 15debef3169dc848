//! Connections driven over loopback sockets: the task's size, the
//! connection limit, and the timers (connect timeout, keep-alive) on a
//! paused clock.

use std::net::Ipv4Addr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Every wait in these tests ends within this.
const WAIT: Duration = Duration::from_secs(10);

/// What a listener shares, with `connections` as the connection limit.
fn shared(connections: Option<Arc<Semaphore>>) -> Arc<Shared> {
    shared_with(connections, None)
}

/// The same, holding acknowledgements on `commits` (`--durability batched`).
fn shared_with(
    connections: Option<Arc<Semaphore>>,
    commits: Option<Arc<crate::store::commit::Commits>>,
) -> Arc<Shared> {
    let stats = Arc::new(Stats::new());
    Arc::new(Shared {
        router: Arc::new(Router::new(
            crate::router::Limits {
                max_queued: 0,
                max_queued_bytes: 0,
                queue_qos0: false,
            },
            Arc::clone(&stats),
        )),
        auth: Authenticator::new(None, true),
        stats,
        limits: ConnLimits {
            max_packet_size: 1024,
            max_inflight: 10,
            slow_client_timeout: None,
            connect_timeout: Duration::from_secs(1),
            max_connections: connections.as_ref().map_or(0, |s| s.available_permits()),
        },
        use_username_as_clientid: false,
        connections,
        commits,
    })
}

/// A plain MQTT listener's endpoint.
fn plain() -> Arc<Endpoint> {
    Arc::new(Endpoint {
        kind: crate::stats::Transport::Plain,
        tls: None,
        websocket: None,
        identity_as_username: false,
    })
}

/// A connected pair of loopback sockets: (client, server side).
async fn socket_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}

/// A listener's home for `shared`'s connections, without a parking lot
/// (these tests drive single connections, not a listener).
fn home(shared: Arc<Shared>) -> Arc<Home> {
    Arc::new(Home {
        shared,
        shutdown: CancellationToken::new(),
        lot: None,
    })
}

/// Every connection is a task holding this future; its size is most of
/// what a connection costs while it has a task (an idle one parks
/// without it, see `park.rs`), so it is watched here. 480 bytes now (488
/// before issue 15 put a listener's shared state, shutdown and parking
/// lot behind one pointer; 480 in release then, which with tokio's task
/// header makes a 640-byte task); it was 1.9 KB before the loop stopped holding a future per
/// `select!` branch and its state twice. See also
/// `tests/idle_memory.rs`.
#[tokio::test]
async fn connection_task_stays_small() {
    let (client, server) = socket_pair().await;
    let guard = None;
    let fut = connection::serve(
        server,
        plain(),
        home(shared(None)),
        guard,
        tokio::time::Instant::now(),
    );
    let size = std::mem::size_of_val(&fut);
    eprintln!("connection future: {size} bytes");
    assert!(size <= 512, "connection future grew to {size} bytes");
    drop(client);
}

/// `--max-connections 1`: the connection's task holds its permit from
/// the accept to its end, then gives it back.
#[tokio::test]
async fn a_connection_holds_its_permit_until_it_ends() {
    let shared = shared(connection_limit(1));
    let guard = admit(&shared).expect("the first is let in");
    assert!(admit(&shared).is_none(), "a second is refused");

    let (mut client, server) = socket_pair().await;
    let task = tokio::spawn(connection::serve(
        server,
        plain(),
        home(Arc::clone(&shared)),
        guard,
        tokio::time::Instant::now(),
    ));
    // CONNECT: MQTT 3.1.1, clean session, keep-alive 60, client id "c".
    let connect = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'c',
    ];
    client.write_all(&connect).await.expect("send CONNECT");
    let mut connack = [0; 4];
    tokio::time::timeout(WAIT, client.read_exact(&mut connack))
        .await
        .expect("CONNACK in time")
        .expect("read CONNACK");
    assert_eq!(connack, [0x20, 2, 0, 0]);
    assert!(
        admit(&shared).is_none(),
        "still refused while the first is connected"
    );

    client.write_all(&[0xE0, 0]).await.expect("send DISCONNECT");
    drop(client);
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the connection ends in time")
        .expect("task");
    assert!(admit(&shared).is_some(), "let in once the first has ended");
}

/// CONNECT: MQTT 3.1.1, keep-alive `keep_alive`, client id `client_id`,
/// with Clean Session as given.
fn connect_packet(client_id: &str, keep_alive: u16, clean_session: bool) -> Vec<u8> {
    let flags = if clean_session { 0x02 } else { 0x00 };
    let [ka_hi, ka_lo] = keep_alive.to_be_bytes();
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags, ka_hi, ka_lo];
    let id_len = u16::try_from(client_id.len()).expect("short client id");
    body.extend_from_slice(&id_len.to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, u8::try_from(body.len()).expect("short CONNECT")];
    packet.extend_from_slice(&body);
    packet
}

/// A connection task serving a fresh loopback socket; returns the client
/// side and the task.
async fn spawn_connection(
    shared: &Arc<Shared>,
) -> (tokio::net::TcpStream, tokio::task::JoinHandle<()>) {
    let (client, server) = socket_pair().await;
    let task = tokio::spawn(connection::serve(
        server,
        plain(),
        home(Arc::clone(shared)),
        None,
        tokio::time::Instant::now(),
    ));
    (client, task)
}

/// Sends CONNECT and reads the 4-byte CONNACK.
async fn handshake(client: &mut tokio::net::TcpStream, connect: &[u8]) -> [u8; 4] {
    client.write_all(connect).await.expect("send CONNECT");
    let mut connack = [0; 4];
    tokio::time::timeout(WAIT, client.read_exact(&mut connack))
        .await
        .expect("CONNACK in time")
        .expect("read CONNACK");
    connack
}

/// Reads until the broker closes the connection; returns what came first.
async fn until_closed(client: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT * 6, client.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .expect("read to the end");
    rest
}

/// Asserts that the broker closes the connection without sending anything
/// (more), and no sooner than `at_least` after `since`.
async fn expect_silent_close(
    client: &mut tokio::net::TcpStream,
    since: tokio::time::Instant,
    at_least: Duration,
) {
    assert_eq!(until_closed(client).await, b"", "nothing before the close");
    assert!(
        since.elapsed() >= at_least,
        "closed after {:?}, before {at_least:?}",
        since.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn no_connect_within_the_connect_timeout_closes_without_connack() {
    let shared = shared(None);
    let (mut client, task) = spawn_connection(&shared).await;
    let t0 = tokio::time::Instant::now();
    // No CONNACK either.
    expect_silent_close(&mut client, t0, shared.limits.connect_timeout).await;
    task.await.expect("task");
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_closed_after_one_and_a_half_keep_alives() {
    let shared = shared(None);
    let (mut client, task) = spawn_connection(&shared).await;
    let connack = handshake(&mut client, &connect_packet("quiet", 2, true)).await;
    assert_eq!(connack, [0x20, 2, 0, 0]);
    let t0 = tokio::time::Instant::now();
    // Keep Alive 2 s: 3 s of silence [MQTT-3.1.2-24].
    expect_silent_close(&mut client, t0, Duration::from_secs(3)).await;
    task.await.expect("task");
}

#[tokio::test(start_paused = true)]
async fn a_pingreq_moves_the_keep_alive_deadline() {
    let shared = shared(None);
    let (mut client, task) = spawn_connection(&shared).await;
    handshake(&mut client, &connect_packet("pinger", 2, true)).await;
    let t0 = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    client.write_all(&[0xC0, 0]).await.expect("send PINGREQ");
    let mut pingresp = [0; 2];
    tokio::time::timeout(WAIT, client.read_exact(&mut pingresp))
        .await
        .expect("PINGRESP in time")
        .expect("read PINGRESP");
    assert_eq!(pingresp, [0xD0, 0]);
    // Heard at 2 s, so the deadline moved from 3 s to 5 s.
    expect_silent_close(&mut client, t0, Duration::from_secs(5)).await;
    task.await.expect("task");
}

#[tokio::test]
async fn a_second_connection_with_the_client_id_takes_the_session_over() {
    let shared = shared(None);
    let (mut first, first_task) = spawn_connection(&shared).await;
    let connect = connect_packet("same", 60, false);
    assert_eq!(handshake(&mut first, &connect).await, [0x20, 2, 0, 0]);
    let (mut second, second_task) = spawn_connection(&shared).await;
    // The first is told to go [MQTT-3.1.4-2]; the second resumes its
    // session [MQTT-3.2.2-2].
    assert_eq!(handshake(&mut second, &connect).await, [0x20, 2, 1, 0]);
    assert_eq!(until_closed(&mut first).await, b"");
    drop(first);
    tokio::time::timeout(WAIT, first_task)
        .await
        .expect("the first ends in time")
        .expect("task");
    drop(second);
    tokio::time::timeout(WAIT, second_task)
        .await
        .expect("the second ends in time")
        .expect("task");
}

#[tokio::test(start_paused = true)]
async fn keep_alive_expiry_publishes_the_will() {
    let shared = shared(None);
    // A watcher subscribed to the will's topic, straight on the router.
    let mut watcher = shared
        .router
        .connect("watcher", true, 10, WAIT)
        .await
        .expect("attached");
    let request = mqtt_codec::Subscribe {
        packet_id: mqtt_codec::PacketId::new(1).expect("non-zero"),
        filters: vec![mqtt_codec::SubscribeFilter {
            filter: mqtt_codec::topic::TopicFilter::new("w").expect("valid"),
            qos: mqtt_codec::QoS::AtMostOnce,
        }],
    };
    let grants = shared.router.subscribe(&watcher.slot, &request.filters);
    watcher.session.granted(request, grants.return_codes);

    // CONNECT as connect_packet("mortal", 2, true), plus the Will flag
    // (0x04) with topic "w" and message "gone".
    let mut connect = connect_packet("mortal", 2, true);
    connect[9] |= 0x04;
    connect.extend_from_slice(&[0, 1, b'w', 0, 4, b'g', b'o', b'n', b'e']);
    connect[1] += 9;
    let (mut client, task) = spawn_connection(&shared).await;
    assert_eq!(handshake(&mut client, &connect).await, [0x20, 2, 0, 0]);
    assert_eq!(until_closed(&mut client).await, b"");
    task.await.expect("task");

    // Silent past 1.5x its keep-alive: as if the network failed, so the will
    // is published [MQTT-3.1.2-24] [MQTT-3.1.2-8].
    let mut batch = Vec::new();
    watcher.slot.take(&mut batch, 10, 10);
    let payloads: Vec<&[u8]> = batch.iter().map(|m| m.payload.as_ref()).collect();
    assert_eq!(payloads, [b"gone".as_slice()]);
}

/// Every socket that has not sent CONNECT yet holds its opening future
/// (boxed, see `connection::serve`): 792 bytes now (768 before the
/// WebSocket upgrade joined the steps), where it was 2,912
/// while it also held the TLS handshake, the CONNECT rules, the takeover
/// wait and a refusal's close inline. Issue 14: 10,000 silent sockets.
#[tokio::test]
async fn opening_future_stays_small() {
    let (_client, server) = socket_pair().await;
    let fut = open::open(
        server,
        plain(),
        shared(None),
        CancellationToken::new(),
        tokio::time::Instant::now(),
    );
    let size = std::mem::size_of_val(&fut);
    eprintln!("opening future: {size} bytes");
    assert!(size <= 1_024, "opening future grew to {size} bytes");
}

/// Reads exactly `n` bytes, within [`WAIT`].
async fn read_n(client: &mut tokio::net::TcpStream, n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    tokio::time::timeout(WAIT, client.read_exact(&mut bytes))
        .await
        .expect("bytes in time")
        .expect("read");
    bytes
}

/// Asserts that nothing arrives for a while (a bounded look for absence).
async fn expect_nothing(client: &mut tokio::net::TcpStream) {
    let mut byte = [0; 1];
    let read = tokio::time::timeout(Duration::from_millis(400), client.read(&mut byte)).await;
    assert!(read.is_err(), "nothing expected, got {read:?}");
}

/// A QoS 1 PUBLISH to `topic` (one byte) with packet id `id`.
fn publish_qos1(topic: u8, id: u8, retain: bool) -> [u8; 8] {
    [0x32 | u8::from(retain), 6, 0, 1, topic, 0, id, b'm']
}

/// Receives a QoS 1 PUBLISH on `client`; returns the PUBACK for it.
async fn take(client: &mut tokio::net::TcpStream, topic: u8) -> [u8; 4] {
    let p = read_n(client, 8).await;
    assert_eq!((p[0] & 0xf6, p[4]), (0x32, topic), "a QoS 1 PUBLISH: {p:?}");
    [0x40, 2, p[5], p[6]]
}

/// Receives a QoS 1 PUBLISH on `client` and acknowledges it.
async fn take_and_ack(client: &mut tokio::net::TcpStream, topic: u8) {
    let puback = take(client, topic).await;
    client.write_all(&puback).await.expect("send PUBACK");
}

/// Issue 14 (durability throughput): with `--durability batched`, a QoS 1
/// PUBLISH whose every stored copy its subscriber has already taken and
/// acknowledged gets its PUBACK without waiting for the disk: here a full
/// disk, on which no commit lands. Held as before: one queued for a client
/// that is away (until the disk takes writes again), and one with RETAIN,
/// which the disk must keep whoever got it.
#[tokio::test]
async fn a_delivered_qos1_message_is_acknowledged_before_its_commit() {
    use crate::store::commit::{Commits, Committer};
    use std::sync::atomic::AtomicBool;

    let dir = tempfile::tempdir().expect("temp dir");
    let full = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(Commits::default());
    let shared = shared_with(None, Some(Arc::clone(&commits)));
    shared.router.track_changes(true);
    let store = Arc::new(
        crate::store::Store::open_failing_when(dir.path(), Arc::clone(&full)).expect("opens"),
    );
    store.write_ahead().expect("starts the log");
    let committer = Committer::start(
        store,
        Arc::clone(&shared.router),
        Arc::clone(&commits),
        None,
    )
    .expect("starts");
    let relay = tokio::spawn(Arc::clone(&commits).relay());

    // A persistent subscriber on t, one on a that goes away.
    let (mut sub, _sub_task) = spawn_connection(&shared).await;
    assert_eq!(
        handshake(&mut sub, &connect_packet("s", 60, false)).await,
        [0x20, 2, 0, 0]
    );
    sub.write_all(&[0x82, 6, 0, 1, 0, 1, b't', 1])
        .await
        .expect("SUBSCRIBE");
    assert_eq!(read_n(&mut sub, 5).await, [0x90, 3, 0, 1, 1]);
    let (mut away, away_task) = spawn_connection(&shared).await;
    handshake(&mut away, &connect_packet("away", 60, false)).await;
    away.write_all(&[0x82, 6, 0, 1, 0, 1, b'a', 1])
        .await
        .expect("SUBSCRIBE");
    assert_eq!(read_n(&mut away, 5).await, [0x90, 3, 0, 1, 1]);
    away.write_all(&[0xE0, 0]).await.expect("DISCONNECT");
    tokio::time::timeout(WAIT, away_task)
        .await
        .expect("gone")
        .expect("task");

    let (mut publisher, _pub_task) = spawn_connection(&shared).await;
    handshake(&mut publisher, &connect_packet("p", 60, true)).await;
    full.store(true, std::sync::atomic::Ordering::SeqCst);

    // Delivered but not acknowledged yet: held. Acknowledged: the PUBACK
    // comes, the disk still full.
    publisher
        .write_all(&publish_qos1(b't', 1, false))
        .await
        .expect("PUBLISH");
    let puback = take(&mut sub, b't').await;
    expect_nothing(&mut publisher).await;
    sub.write_all(&puback).await.expect("send PUBACK");
    assert_eq!(read_n(&mut publisher, 4).await, [0x40, 2, 0, 1]);

    // Queued for the client away: held until the disk takes it.
    publisher
        .write_all(&publish_qos1(b'a', 2, false))
        .await
        .expect("PUBLISH");
    expect_nothing(&mut publisher).await;
    full.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(read_n(&mut publisher, 4).await, [0x40, 2, 0, 2]);

    // Retained: held though delivered, until the disk takes it.
    full.store(true, std::sync::atomic::Ordering::SeqCst);
    publisher
        .write_all(&publish_qos1(b't', 3, true))
        .await
        .expect("PUBLISH");
    take_and_ack(&mut sub, b't').await;
    expect_nothing(&mut publisher).await;
    full.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(read_n(&mut publisher, 4).await, [0x40, 2, 0, 3]);

    relay.abort();
    tokio::task::spawn_blocking(move || committer.stop())
        .await
        .expect("stops");
}
