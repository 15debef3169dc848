//! The in-process broker as a restartable target ([`Cycle`]): one data
//! directory and one port, stopped gracefully or by dropping its runtime
//! (as SIGKILL would, no final save) and started again there, with the
//! same planted bug.

use std::sync::{Arc, Mutex};

use testsupport::ReferenceOptions;

use crate::common::restart::Cycle;
use crate::in_process::InProcessBroker;

/// A broker that can be restarted on its port with its data directory.
#[derive(Debug)]
pub struct RestartableBroker {
    running: Mutex<Option<InProcessBroker>>,
    options: ReferenceOptions,
    mutant: Option<String>,
    port: u16,
    /// Held for the broker's whole life, across restarts.
    _data: tempfile::TempDir,
    /// The logs of the runs before this one.
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
        let broker = InProcessBroker::start_mutant(options.clone(), mutant);
        let port = broker.addr().port();
        Arc::new(Self {
            running: Mutex::new(Some(broker)),
            options,
            mutant: mutant.map(str::to_owned),
            port,
            _data: data,
            logs: Mutex::new(String::new()),
        })
    }

    /// Every run's log so far.
    pub fn log(&self) -> String {
        let mut all = self.logs.lock().unwrap().clone();
        if let Some(b) = self.running.lock().unwrap().as_ref() {
            all.push_str(&b.log());
        }
        all
    }
}

impl Cycle for RestartableBroker {
    fn cycle(&self, kill: bool) {
        let mut running = self.running.lock().unwrap();
        if let Some(b) = running.take() {
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
        let options = ReferenceOptions {
            port: Some(self.port),
            ..self.options.clone()
        };
        *running = Some(InProcessBroker::start_mutant(
            options,
            self.mutant.as_deref(),
        ));
    }

    fn port(&self) -> u16 {
        self.port
    }
}
