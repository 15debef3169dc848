//! mosquitto_sub and mosquitto_pub as test clients: a subscriber whose
//! printed lines are read as they come, and one-shot publishes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use testsupport::WAIT;

/// `mosquitto_sub` printing `topic payload` lines, started and subscribed.
pub struct Sub {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Sub {
    pub fn start(args: &[String]) -> Self {
        let sub = Self::spawn(args);
        sub.wait_for("SUBACK");
        sub
    }

    /// Starts it without waiting for its SUBACK: a resumed session's queued
    /// messages come before it, and [`Self::start`] would skip them.
    pub fn spawn(args: &[String]) -> Self {
        // mosquitto_sub block-buffers a piped stdout; stdbuf makes it
        // print each line as it comes.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub"])
            .args(args)
            .args(["-d", "-v"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub is installed (scripts/setup)");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines: rx }
    }

    /// Kills the client without a DISCONNECT (so its will goes out) and
    /// waits for it to exit.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill mosquitto_sub");
        let _ = self.child.wait();
    }

    /// The next line containing `needle` (debug lines included).
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_until(|line| line.contains(needle), needle)
    }

    /// The next message on `topic`: a `topic payload` line.
    pub fn message(&self, topic: &str) -> String {
        let prefix = format!("{topic} ");
        self.wait_until(|line| line.starts_with(&prefix), topic)
    }

    pub fn wait_until(&self, pred: impl Fn(&str) -> bool, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("mosquitto_sub printed no line with {needle:?}: {e}"),
            }
        }
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn mosquitto_pub(args: &[String]) {
    let out = Command::new("mosquitto_pub")
        .args(args)
        .output()
        .expect("mosquitto_pub is installed (scripts/setup)");
    assert!(
        out.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
