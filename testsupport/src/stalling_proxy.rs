//! A TCP proxy in front of a broker that, once a client has sent bytes
//! holding a chosen text (a topic, which in the conformance suite holds the
//! scenario's name), stops answering every later client: it accepts their
//! connections and never forwards a byte, as a broker whose routing hung
//! would. Connections opened before that go on working. For tests of the
//! harness's liveness checks against a real broker binary.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The proxy, listening on an ephemeral loopback port until dropped.
#[derive(Debug)]
pub struct StallingProxy {
    addr: SocketAddr,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl StallingProxy {
    /// Forwards to `upstream` until a client sends `trigger`.
    pub fn start(upstream: SocketAddr, trigger: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, stopping) = (Arc::clone(&stalled), Arc::clone(&stop));
        let trigger = trigger.as_bytes().to_vec();
        std::thread::spawn(move || {
            // Connections taken after the stall: held open, never answered.
            let mut held = Vec::new();
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if flag.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                let watch = Some((trigger.clone(), Arc::clone(&flag)));
                std::thread::spawn(move || pump(client, server, watch));
                std::thread::spawn(move || pump(s, c, None));
            }
        });
        Self {
            addr,
            stalled,
            stop,
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Whether the trigger went by.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to` until either ends; with `watch`, sets its flag
/// once the bytes (across reads) hold its trigger.
fn pump(mut from: TcpStream, mut to: TcpStream, watch: Option<(Vec<u8>, Arc<AtomicBool>)>) {
    let mut buf = [0u8; 4096];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((trigger, flag)) = &watch {
            tail.extend_from_slice(&buf[..n]);
            if tail.windows(trigger.len()).any(|w| w == trigger.as_slice()) {
                flag.store(true, Ordering::SeqCst);
            }
            let keep = trigger.len().saturating_sub(1);
            tail.drain(..tail.len().saturating_sub(keep));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
