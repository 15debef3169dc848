//! The live progress line: messages per second, connections, errors. An
//! indicatif spinner line on a terminal, a plain line per second otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::shared::{RunShared, stopped};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A redrawn line on a terminal.
    Terminal,
    /// One line per second, for logs.
    Plain,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// A terminal line when stderr is a terminal, else plain lines; `quiet`
    /// wins.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Self::Quiet
        } else if std::io::stderr().is_terminal() {
            Self::Terminal
        } else {
            Self::Plain
        }
    }
}

fn rate(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// Shows progress until `stop` turns true.
pub fn spawn(
    shared: Arc<RunShared>,
    mode: ProgressMode,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if mode == ProgressMode::Quiet {
            return;
        }
        let (every, bar) = match mode {
            ProgressMode::Terminal => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                (Duration::from_millis(250), Some(bar))
            }
            _ => (Duration::from_secs(1), None),
        };
        let started = Instant::now();
        let mut last = (Instant::now(), 0u64, 0u64);
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped(&mut stop) => break,
            }
            let now = Instant::now();
            let sent = shared.sent.load(Ordering::Relaxed);
            let delivered = shared.delivered.load(Ordering::Relaxed);
            let secs = (now - last.0).as_secs_f64().max(1e-9);
            let line = format!(
                "sent {sent} ({}/s)  delivered {delivered} ({}/s)  connections {}  errors {}",
                rate((sent - last.1) as f64 / secs),
                rate((delivered - last.2) as f64 / secs),
                shared.connections.load(Ordering::Relaxed),
                shared.error_count.load(Ordering::Relaxed),
            );
            last = (now, sent, delivered);
            match &bar {
                Some(b) => {
                    b.set_message(line);
                    b.tick();
                }
                None => eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64()),
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    })
}
