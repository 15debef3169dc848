//! Restartable brokers as targets for the restart area: a broker that can
//! stop (gracefully, or killed) and start again on its port with its data
//! ([`Cycle`]), and the [`BrokerControl`]s the `restart` and `kill` steps
//! run, which call it where a user's run would call `--restart-command`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::restart::{BrokerControl, ControlError, ControlFuture};
use conformance::target::Target;
use testsupport::{Mosquitto, MosquittoOptions};

/// A broker that stops and starts again on the same port and data.
pub trait Cycle: Send + Sync + std::fmt::Debug + 'static {
    /// Stops the broker (`kill`: abruptly, no save) and starts it again;
    /// returns once it is started.
    fn cycle(&self, kill: bool);

    /// Its plain port, the same across restarts.
    fn port(&self) -> u16;
}

/// A target for `broker` whose `restart` and `kill` steps cycle it.
pub fn target<C: Cycle>(broker: &Arc<C>) -> Target {
    let mut t = Target::plain("127.0.0.1", broker.port());
    for kill in [false, true] {
        let control: Arc<dyn BrokerControl> = Arc::new(Control {
            broker: Arc::clone(broker),
            kill,
        });
        if kill {
            t.kill = Some(control);
        } else {
            t.restart = Some(control);
        }
    }
    t
}

/// A restart or kill of a [`Cycle`].
#[derive(Debug)]
struct Control<C> {
    broker: Arc<C>,
    kill: bool,
}

impl<C: Cycle> BrokerControl for Control<C> {
    fn run(&self, timeout: Duration) -> ControlFuture<'_> {
        let broker = Arc::clone(&self.broker);
        let kill = self.kill;
        Box::pin(async move {
            // Blocking: it waits for a thread or a process.
            let work = tokio::task::spawn_blocking(move || broker.cycle(kill));
            match tokio::time::timeout(timeout, work).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ControlError::Other(format!("the restart panicked: {e}"))),
                Err(_) => Err(ControlError::Other(format!(
                    "the restart did not finish within {timeout:?}"
                ))),
            }
        })
    }

    fn describe(&self) -> String {
        if self.kill {
            "a test's kill"
        } else {
            "a test's restart"
        }
        .to_owned()
    }
}

/// A broker process a [`Restartable`] holds.
pub trait Process: Send + 'static {
    /// Everything it has logged so far.
    fn log(&self) -> String;

    /// Stops it (`kill`: abruptly, no final save); returns its log.
    fn stop(self, kill: bool) -> String;
}

/// A broker restarted on its port with its data: the running process, how
/// to start the next one, and the logs of those before it.
pub struct Restartable<P> {
    running: Mutex<Option<P>>,
    again: Box<dyn Fn() -> P + Send + Sync>,
    port: u16,
    /// Held across restarts.
    _data: tempfile::TempDir,
    /// The logs of the runs before this one.
    logs: Mutex<String>,
}

impl<P> std::fmt::Debug for Restartable<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restartable")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl<P: Process> Restartable<P> {
    /// `first`, running on `port` with its data in `data`; `again` starts
    /// the next one there.
    pub fn new(
        data: tempfile::TempDir,
        first: P,
        port: u16,
        again: impl Fn() -> P + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            running: Mutex::new(Some(first)),
            again: Box::new(again),
            port,
            _data: data,
            logs: Mutex::new(String::new()),
        })
    }

    /// Every run's log so far.
    pub fn log(&self) -> String {
        let mut all = self.logs.lock().unwrap().clone();
        if let Some(p) = self.running.lock().unwrap().as_ref() {
            all.push_str(&p.log());
        }
        all
    }
}

impl<P: Process> Cycle for Restartable<P> {
    fn cycle(&self, kill: bool) {
        let mut running = self.running.lock().unwrap();
        if let Some(p) = running.take() {
            let log = p.stop(kill);
            let mut logs = self.logs.lock().unwrap();
            logs.push_str(&log);
            logs.push_str(if kill {
                "--- killed ---\n"
            } else {
                "--- restarted ---\n"
            });
        }
        *running = Some((self.again)());
    }

    fn port(&self) -> u16 {
        self.port
    }
}

impl Process for Mosquitto {
    fn log(&self) -> String {
        Mosquitto::log(self)
    }

    fn stop(self, kill: bool) -> String {
        if kill { self.kill() } else { self.terminate() }
    }
}

/// Mosquitto with persistence on (saved every second and at shutdown),
/// restarted with SIGTERM or killed with SIGKILL and started again on its
/// port and persistence directory.
pub fn restartable_mosquitto() -> Arc<Restartable<Mosquitto>> {
    let data = tempfile::tempdir().unwrap();
    let mut options = MosquittoOptions {
        persistence: Some(data.path().to_owned()),
        ..MosquittoOptions::default()
    };
    let first = Mosquitto::start(options.clone());
    let port = first.port();
    options.port = Some(port);
    Restartable::new(data, first, port, move || Mosquitto::start(options.clone()))
}
