//! [`StderrLog`]: what a child process (a broker under test) writes to
//! stderr, collected on a background thread so that a test can wait for its
//! "ready" line and show the whole log when something fails.

use std::io::{BufRead, BufReader};
use std::process::ChildStderr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// The lines a child process has written to stderr so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct StderrLog(Arc<Mutex<String>>);

impl StderrLog {
    /// Collects `stderr` line by line on a background thread. Each line is
    /// logged, then given to `ready`; whatever `ready` returns `Some` for is
    /// sent on the returned channel, and `None` follows once the log ends
    /// (the process closed stderr, usually by exiting).
    pub(crate) fn follow<T: Send + 'static>(
        stderr: ChildStderr,
        ready: impl Fn(&str) -> Option<T> + Send + 'static,
    ) -> (Self, mpsc::Receiver<Option<T>>) {
        let log = Self::default();
        let (ready_tx, ready_rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.0.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if let Some(found) = ready(&line) {
                    let _ = ready_tx.send(Some(found));
                }
            }
            let _ = ready_tx.send(None);
        });
        (log, ready_rx)
    }

    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
