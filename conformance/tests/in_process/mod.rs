//! The reference broker for this crate's tests, inside the test process.
//!
//! Cargo gives `CARGO_BIN_EXE_broker` only to the broker crate's own tests,
//! and building the binary from inside a test nests a `cargo build` in a
//! `cargo test` (a second build on the same target directory, with the
//! test's environment to scrub). So the broker *library* is a
//! dev-dependency of this crate (never a normal one: the judge does not
//! stand on the judged), and [`InProcessBroker`] runs its server on its own
//! thread and runtime with the flags `testsupport::ReferenceOptions` gives
//! the binary, its log captured for failure messages. Setting `$BROKER_BIN`
//! runs that binary instead ([`Reference::start`]), to check a release
//! build or another version.

#![allow(dead_code, clippy::unwrap_used)]

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use broker::config::Config;
use broker::server::Broker;
use testsupport::{ReferenceBroker, ReferenceOptions, broker_binary_from_env};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// How long the broker gets to start, and to stop when dropped.
const WAIT: Duration = Duration::from_secs(30);

/// The reference broker: in this process, or `$BROKER_BIN` as a child.
#[derive(Debug)]
pub enum Reference {
    /// The broker library, run by this test process.
    InProcess(InProcessBroker),
    /// The binary `$BROKER_BIN` names.
    Binary(ReferenceBroker),
}

impl Reference {
    /// Starts the broker with `options`: the binary `$BROKER_BIN` names if
    /// it is set, else the library in this process.
    pub fn start(options: ReferenceOptions) -> Self {
        match broker_binary_from_env() {
            Some(binary) => Self::Binary(ReferenceBroker::start(binary, options)),
            None => Self::InProcess(InProcessBroker::start(options)),
        }
    }

    /// The plain listener.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Self::InProcess(b) => b.plain,
            Self::Binary(b) => b.addr(),
        }
    }

    /// The TLS listener, when started with TLS.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::InProcess(b) => b.tls,
            Self::Binary(b) => b.tls_addr(),
        }
    }

    /// The WebSocket listener, when started with `--ws-port`.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::InProcess(b) => b.ws,
            Self::Binary(b) => b.ws_addr(),
        }
    }

    /// The WebSocket-over-TLS listener, when started with `--wss-port`.
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::InProcess(b) => b.wss,
            Self::Binary(b) => b.wss_addr(),
        }
    }

    /// The CA certificate that signed a generated server certificate.
    pub fn ca_file(&self) -> PathBuf {
        match self {
            Self::InProcess(b) => b.data_dir.join("tls").join("ca.pem"),
            Self::Binary(b) => b.ca_file(),
        }
    }

    /// Everything the broker has logged so far.
    pub fn log(&self) -> String {
        match self {
            Self::InProcess(b) => b.log(),
            Self::Binary(b) => b.log(),
        }
    }

    /// Waits (at most `timeout`) until the log holds `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The broker library serving on its own thread, stopped when dropped.
#[derive(Debug)]
pub struct InProcessBroker {
    plain: SocketAddr,
    tls: Option<SocketAddr>,
    ws: Option<SocketAddr>,
    wss: Option<SocketAddr>,
    log: Arc<Mutex<Vec<u8>>>,
    /// Where a generated certificate goes (`--data-dir`).
    data_dir: PathBuf,
    /// Keeps a temporary data directory alive while the broker runs.
    _home: tempfile::TempDir,
    shutdown: CancellationToken,
    /// Ends the broker's thread without a graceful shutdown (no final
    /// save), as SIGKILL ends a process.
    kill: CancellationToken,
    stopped: mpsc::Receiver<()>,
}

/// An `io::Write` appending to the shared log buffer.
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl InProcessBroker {
    /// Binds the broker on ephemeral loopback ports and serves on a new
    /// thread; panics with its log if it does not come up within [`WAIT`].
    pub fn start(options: ReferenceOptions) -> Self {
        Self::start_mutant(options, None)
    }

    /// Like [`start`](Self::start), with the bug `mutant` (a name from
    /// `broker::mutant::ALL`, or `NAME=VALUE`) planted on every thread of
    /// the broker's runtime.
    /// Its plain port is `options.port` (a restart binds the port the
    /// broker had), or an ephemeral one.
    pub fn start_mutant(mut options: ReferenceOptions, mutant: Option<&str>) -> Self {
        let mutant = mutant.map(str::to_owned);
        let home = tempfile::tempdir().unwrap();
        // The binary started by testsupport puts a generated certificate
        // under a temporary $XDG_DATA_HOME, which a test process cannot
        // change for one broker alone; a data directory of its own holds it
        // instead (the broker then also keeps its state there, which no
        // scenario can tell: nothing restarts it).
        if options.tls && options.tls_files.is_none() && options.data_dir.is_none() {
            options.data_dir = Some(home.path().to_owned());
        }
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| home.path().to_owned());
        let args = std::iter::once(OsString::from("broker")).chain(options.flags());
        let config = Config::from_args(args).unwrap_or_else(|e| panic!("broker flags: {e:#}"));

        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let filter = std::env::var("BROKER_LOG").unwrap_or_else(|_| "info".into());
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::new(filter))
                .with_ansi(false)
                .with_writer(move || LogSink(Arc::clone(&sink)))
                .finish(),
        );
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let kill = CancellationToken::new();
        let killed = kill.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stopped_tx, stopped_rx) = mpsc::channel();
        std::thread::spawn(move || {
            // The broker's log goes to this test's buffer: this thread runs
            // the broker's tasks (one thread, as the binary runs on one
            // CPU), and the runtime's blocking threads log there too.
            let _log = tracing::dispatcher::set_default(&dispatch);
            broker::mutant::set_for_this_thread(mutant.as_deref());
            let blocking_dispatch = dispatch.clone();
            let blocking_mutant = mutant.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_start(move || {
                    // A blocking-pool thread keeps this default for its life.
                    std::mem::forget(tracing::dispatcher::set_default(&blocking_dispatch));
                    broker::mutant::set_for_this_thread(blocking_mutant.as_deref());
                })
                .build()
                .unwrap();
            runtime.block_on(async move {
                match Broker::bind(config).await {
                    Ok(broker) => {
                        use broker::config::ListenerTransport;
                        let addrs = (
                            broker.plain_addr(),
                            broker.tls_addr(),
                            broker.addr_of(ListenerTransport::WebSockets),
                            broker.addr_of(ListenerTransport::WebSocketsTls),
                        );
                        let _ = ready_tx.send(Ok(addrs));
                        tokio::select! {
                            biased;
                            // Dropping the serving future mid-way: no
                            // shutdown, no final save.
                            () = killed.cancelled() => tracing::info!("killed"),
                            r = broker.run(token) => if let Err(e) = r {
                                tracing::error!("{e:#}");
                            },
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                    }
                }
            });
            // Every task (connections, autosave) goes with the runtime, and
            // the store's file is closed before the broker counts as stopped.
            drop(runtime);
            let _ = stopped_tx.send(());
        });
        let text = |log: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&log.lock().map(|l| l.clone()).unwrap_or_default()).into_owned()
        };
        match ready_rx.recv_timeout(WAIT) {
            Ok(Ok((Some(plain), tls, ws, wss))) => Self {
                plain,
                tls,
                ws,
                wss,
                log,
                data_dir,
                _home: home,
                shutdown,
                kill,
                stopped: stopped_rx,
            },
            Ok(Ok((None, ..))) => panic!("the broker has no plain address:\n{}", text(&log)),
            Ok(Err(e)) => panic!("the broker did not start: {e}\n{}", text(&log)),
            Err(e) => panic!(
                "the broker did not start within {WAIT:?}: {e}\n{}",
                text(&log)
            ),
        }
    }

    /// The plain listener.
    pub fn addr(&self) -> SocketAddr {
        self.plain
    }

    /// Ends the broker at once, without its graceful shutdown (no final
    /// save), as SIGKILL would; returns once its thread has let go of the
    /// port and the data directory.
    pub fn kill(self) {
        self.kill.cancel();
        // Drop then waits for the thread.
    }

    /// Everything the broker has logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().map(|l| l.clone()).unwrap_or_default())
            .into_owned()
    }
}

impl Drop for InProcessBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // Bounded: a broker that does not stop is left to the end of the
        // process rather than hanging the test.
        let _ = self.stopped.recv_timeout(WAIT);
    }
}
