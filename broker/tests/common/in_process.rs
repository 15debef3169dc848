//! The broker library run in the test's own process, on a runtime thread
//! of its own, for tests that count its heap bytes with a global allocator
//! (a child process's heap cannot be counted from outside) and read its
//! counters and log directly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use broker::config::Config;
use broker::router::Router;
use broker::server::Broker;
use tokio_util::sync::CancellationToken;

/// A broker serving on `127.0.0.1`, plain only, until dropped.
pub struct InProcess {
    addr: SocketAddr,
    router: Arc<Router>,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    /// Starts the broker with `flags` after `--bind 127.0.0.1 --port 0
    /// --no-ssl`, on a current-thread runtime, and waits until it listens.
    pub fn start(flags: &[&str]) -> Self {
        let args = ["broker", "--bind", "127.0.0.1", "--port", "0", "--no-ssl"]
            .into_iter()
            .chain(flags.iter().copied());
        let config = Config::from_args(args).expect("flags");
        let shutdown = CancellationToken::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let token = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let broker = Broker::bind(config).await.expect("bind");
                let addr = broker.plain_addr().expect("addr");
                ready_tx
                    .send((addr, Arc::clone(broker.router())))
                    .expect("send");
                broker.run(token).await.expect("run");
            });
        });
        let (addr, router) = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("broker started");
        Self {
            addr,
            router,
            shutdown,
            thread: Some(thread),
        }
    }

    /// The plain listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker's router, for its counters.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A blocking client socket (it allocates nothing while it sits, so heap
/// counts stay the broker's), its reads bounded by [`super::WAIT`].
pub fn open(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, super::WAIT).expect("connect");
    s.set_read_timeout(Some(super::WAIT)).expect("read timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// CONNECT with clean session, keep-alive 60 s and `client_id` (at most
/// 100 bytes), as bytes.
pub fn connect_bytes(client_id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    let len = u8::try_from(client_id.len()).expect("a short client id");
    body.extend_from_slice(&[0, len]);
    body.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, u8::try_from(body.len()).expect("a short CONNECT")];
    packet.extend_from_slice(&body);
    packet
}

/// Opens a blocking client and waits for its CONNACK (accepted).
pub fn connected(addr: SocketAddr, client_id: &str) -> TcpStream {
    let mut s = open(addr);
    s.write_all(&connect_bytes(client_id))
        .expect("send CONNECT");
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("read CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
    s
}

/// What the broker in this process logged, from the first [`log`] call on.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends this process's `info` log lines (the broker's) to a buffer the
/// test can read; the same buffer for every test in the binary.
pub fn log() -> Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let sink = log.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .init();
        log
    })
    .clone()
}
