//! The in-process broker as a [`Restartable`] target: one data
//! directory and one port, stopped gracefully or by dropping its runtime
//! (as SIGKILL would, no final save) and started again there, with the
//! same planted bug.

use std::sync::Arc;

use testsupport::ReferenceOptions;

use crate::common::restart::{Process, Restartable};
use crate::in_process::InProcessBroker;

impl Process for InProcessBroker {
    fn log(&self) -> String {
        InProcessBroker::log(self)
    }

    fn stop(self, kill: bool) -> String {
        let log = InProcessBroker::log(&self);
        if kill {
            self.kill();
        }
        // Dropping it otherwise stops it gracefully.
        log
    }
}

/// The in-process broker with a data directory of its own and
/// `extra_args`, with `mutant` planted (across restarts too).
pub fn restartable_broker(
    extra_args: &[&str],
    mutant: Option<&str>,
) -> Arc<Restartable<InProcessBroker>> {
    let data = tempfile::tempdir().unwrap();
    let options = ReferenceOptions {
        data_dir: Some(data.path().to_owned()),
        extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
        ..ReferenceOptions::default()
    };
    let first = InProcessBroker::start_mutant(options.clone(), mutant);
    let port = first.addr().port();
    let mutant = mutant.map(str::to_owned);
    Restartable::new(data, first, port, move || {
        let options = ReferenceOptions {
            port: Some(port),
            ..options.clone()
        };
        InProcessBroker::start_mutant(options, mutant.as_deref())
    })
}
