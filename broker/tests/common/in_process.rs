//! The broker in the test's own process, on a runtime thread of its own:
//! for tests that count its heap with a global allocator (a child process's
//! allocations would not show).

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use broker::config::Config;
use broker::server::Broker;
use tokio_util::sync::CancellationToken;

/// A broker on `127.0.0.1`, an ephemeral port, no TLS, on one
/// current-thread runtime: everything it does happens on that one thread,
/// so a step that hogs it stalls every client. Shut down and joined on drop.
pub struct InProcessBroker {
    addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl InProcessBroker {
    /// Starts it with `extra` flags after the bind flags.
    pub fn start(extra: &[&str]) -> Self {
        let mut args = vec!["broker", "--bind", "127.0.0.1", "--port", "0", "--no-ssl"];
        args.extend_from_slice(extra);
        let config = Config::from_args(args).expect("flags");
        let shutdown = CancellationToken::new();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let token = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let broker = Broker::bind(config).await.expect("bind");
                addr_tx
                    .send(broker.plain_addr().expect("addr"))
                    .expect("send");
                broker.run(token).await.expect("run");
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("broker started");
        Self {
            addr,
            shutdown,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for InProcessBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            // A panic on the broker's thread fails the test here, unless the
            // test is already failing.
            if thread.join().is_err() && !std::thread::panicking() {
                panic!("the broker's thread panicked");
            }
        }
    }
}
