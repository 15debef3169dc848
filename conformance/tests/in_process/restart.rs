//! The in-process broker as a restartable target: [`RestartableBroker`]
//! keeps one data directory and one port, and its [`BrokerControl`]s stop
//! the broker (gracefully, or by dropping its runtime as SIGKILL would)
//! and start it again there, with the same planted bug. The `restart` and
//! `kill` steps then run against it as against a user's command.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::restart::{BrokerControl, ControlError, ControlFuture};
use conformance::target::Target;
use testsupport::ReferenceOptions;

use super::InProcessBroker;

/// A broker that can be restarted on its port with its data directory.
#[derive(Debug)]
pub struct RestartableBroker {
    state: Mutex<Option<InProcessBroker>>,
    options: ReferenceOptions,
    mutant: Option<String>,
    port: u16,
    /// Held for the broker's whole life, across restarts.
    _data: tempfile::TempDir,
    /// Every log of every run, in order.
    logs: Mutex<String>,
}

impl RestartableBroker {
    /// Starts the broker with a data directory of its own and `extra_args`,
    /// with `mutant` planted (across restarts too).
    pub fn start(extra_args: &[&str], mutant: Option<&str>) -> Arc<Self> {
        let data = tempfile::tempdir().unwrap();
        let options = ReferenceOptions {
            data_dir: Some(data.path().to_owned()),
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            ..ReferenceOptions::default()
        };
        let broker = InProcessBroker::start_on(options.clone(), mutant, 0);
        let port = broker.addr().port();
        Arc::new(Self {
            state: Mutex::new(Some(broker)),
            options,
            mutant: mutant.map(str::to_owned),
            port,
            _data: data,
            logs: Mutex::new(String::new()),
        })
    }

    /// A target for the broker that restarts it for `restart` steps and
    /// kills it for `kill` steps.
    pub fn target(self: &Arc<Self>) -> Target {
        let mut t = Target::plain("127.0.0.1", self.port);
        t.restart = Some(Arc::new(Control {
            broker: Arc::clone(self),
            kill: false,
        }));
        t.kill = Some(Arc::new(Control {
            broker: Arc::clone(self),
            kill: true,
        }));
        t
    }

    /// Every run's log so far.
    pub fn log(&self) -> String {
        let mut all = self.logs.lock().unwrap().clone();
        if let Some(b) = self.state.lock().unwrap().as_ref() {
            all.push_str(&b.log());
        }
        all
    }

    /// Stops the running broker (`kill`: without a graceful shutdown) and
    /// starts it again on the same port and data directory.
    fn cycle(&self, kill: bool) {
        let mut state = self.state.lock().unwrap();
        if let Some(b) = state.take() {
            let log = b.log();
            if kill {
                b.kill();
            } else {
                drop(b);
            }
            let mut logs = self.logs.lock().unwrap();
            logs.push_str(&log);
            logs.push_str(if kill {
                "--- killed ---\n"
            } else {
                "--- restarted ---\n"
            });
        }
        *state = Some(InProcessBroker::start_on(
            self.options.clone(),
            self.mutant.as_deref(),
            self.port,
        ));
    }
}

/// A restart or kill of a [`RestartableBroker`].
#[derive(Debug)]
struct Control {
    broker: Arc<RestartableBroker>,
    kill: bool,
}

impl BrokerControl for Control {
    fn run(&self, timeout: Duration) -> ControlFuture<'_> {
        let broker = Arc::clone(&self.broker);
        let kill = self.kill;
        Box::pin(async move {
            let work = tokio::task::spawn_blocking(move || broker.cycle(kill));
            match tokio::time::timeout(timeout, work).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ControlError::Other(format!("restart panicked: {e}"))),
                Err(_) => Err(ControlError::Other(format!(
                    "restart did not finish within {timeout:?}"
                ))),
            }
        })
    }

    fn describe(&self) -> String {
        if self.kill {
            "an in-process kill".to_owned()
        } else {
            "an in-process restart".to_owned()
        }
    }
}
