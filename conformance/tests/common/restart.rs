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

/// Mosquitto with persistence on (saved every second and at shutdown),
/// restarted with SIGTERM or killed with SIGKILL and started again on its
/// port and persistence directory.
#[derive(Debug)]
pub struct RestartableMosquitto {
    running: Mutex<Option<Mosquitto>>,
    options: MosquittoOptions,
    /// Held across restarts.
    _data: tempfile::TempDir,
    /// The logs of the runs before this one.
    logs: Mutex<String>,
}

impl RestartableMosquitto {
    /// Starts it.
    pub fn start() -> Arc<Self> {
        let data = tempfile::tempdir().unwrap();
        let mut options = MosquittoOptions {
            persistence: Some(data.path().to_owned()),
            ..MosquittoOptions::default()
        };
        let m = Mosquitto::start(options.clone());
        options.port = Some(m.port());
        Arc::new(Self {
            running: Mutex::new(Some(m)),
            options,
            _data: data,
            logs: Mutex::new(String::new()),
        })
    }

    /// Every run's log so far.
    pub fn log(&self) -> String {
        let mut all = self.logs.lock().unwrap().clone();
        if let Some(m) = self.running.lock().unwrap().as_ref() {
            all.push_str(&m.log());
        }
        all
    }
}

impl Cycle for RestartableMosquitto {
    fn cycle(&self, kill: bool) {
        let mut running = self.running.lock().unwrap();
        if let Some(m) = running.take() {
            let log = if kill { m.kill() } else { m.terminate() };
            let mut logs = self.logs.lock().unwrap();
            logs.push_str(&log);
            logs.push_str(if kill {
                "--- killed ---\n"
            } else {
                "--- restarted ---\n"
            });
        }
        *running = Some(Mosquitto::start(self.options.clone()));
    }

    fn port(&self) -> u16 {
        self.options.port.unwrap_or_default()
    }
}
