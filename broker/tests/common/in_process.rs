//! The broker running inside the test process, for tests that count its
//! heap with a global allocator (`cap`) rather than time it.
//!
//! It runs on its own current-thread runtime on one thread; the clients are
//! [`BlockingClient`](super::blocking_client::BlockingClient)s on `std`
//! sockets, which hold no heap while they wait, so the bytes that stay
//! allocated across a step are the broker's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use broker::config::Config;
use broker::router::Router;
use broker::server::Broker;
use tokio_util::sync::CancellationToken;

/// A broker on a thread of this process, shut down when dropped.
pub struct InProcessBroker {
    /// Its plain MQTT listener, on an ephemeral loopback port.
    pub addr: SocketAddr,
    /// Its router, for counters (`stats().publish_dropped`) and sizes.
    pub router: Arc<Router>,
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
