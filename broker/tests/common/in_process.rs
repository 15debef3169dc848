//! The broker running inside the test process, for tests that count its
//! heap with a global allocator (`cap`) rather than time it.
//!
//! It runs on its own current-thread runtime on one thread; the clients are
//! [`BlockingClient`](super::blocking_client::BlockingClient)s on `std`
//! sockets, which hold no heap while they wait, so the bytes that stay
//! allocated across a step are the broker's.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use broker::config::Config;
use broker::router::Router;
use broker::server::Broker;
use tokio_util::sync::CancellationToken;

/// A broker on a thread of this process, shut down when dropped.
pub struct InProcessBroker {
    /// Its plain MQTT listener, on an ephemeral loopback port.
    addr: SocketAddr,
    /// Its router, for counters (`stats().publish_dropped`) and sizes.
    router: Arc<Router>,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl InProcessBroker {
    /// Starts it on 127.0.0.1, an ephemeral port, no TLS and no `$SYS`
    /// updates (which would allocate while a test counts), with `extra`
    /// flags.
    pub fn start(extra: &[&str]) -> Self {
        let mut args = vec![
            "broker",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--no-ssl",
            "--sys-interval",
            "0",
        ];
        args.extend_from_slice(extra);
        let config = Config::from_args(args).expect("flags");
        let shutdown = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let token = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let broker = Broker::bind(config).await.expect("bind");
                let addr = broker.plain_addr().expect("plain listener");
                tx.send((addr, Arc::clone(broker.router()))).expect("send");
                broker.run(token).await.expect("run");
            });
        });
        let (addr, router) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("broker started");
        Self {
            addr,
            router,
            shutdown,
            thread: Some(thread),
        }
    }
}

impl InProcessBroker {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its router, for its counters.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// Waits (within [`WAIT`](super::WAIT)) until exactly `count` clients
    /// are parked (`$SYS/broker/clients/parked`): idle plain connections
    /// park within two seconds.
    pub fn wait_parked(&self, count: u64) {
        let parked = &self.router.stats().clients_parked;
        super::flood::wait_for(&format!("{count} parked clients"), || {
            parked.load(std::sync::atomic::Ordering::Relaxed) == count
        });
    }

    /// Shuts it down and waits, within [`WAIT`](super::WAIT) (no longer
    /// than the broker gives its connections to close), for its run to
    /// return: every connection ended, the state saved.
    pub fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            super::flood::wait_for("the broker to stop", || thread.is_finished());
            thread.join().expect("the broker's thread");
        }
    }
}

impl Drop for InProcessBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !std::thread::panicking()
        {
            panic!("the broker's thread panicked");
        }
    }
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
