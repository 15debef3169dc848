//! What a fuzz run did, counted as it goes: sessions, packets and bytes
//! sent, how connections ended, which packets the broker sent back, and
//! liveness checks passed. Printed as a progress line on a terminal and as
//! a summary at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use super::drive::{Ending, Played};

/// Counts of a run.
#[derive(Debug, Default)]
pub struct Summary {
    seed: u64,
    sessions: u64,
    packets: u64,
    bytes: u64,
    endings: BTreeMap<Ending, u64>,
    answers: BTreeMap<&'static str, u64>,
    /// Liveness checks the broker passed.
    pub liveness_passed: u64,
}

impl Summary {
    /// An empty summary of the run seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Counts a batch.
    pub fn add(&mut self, batch: &[Played]) {
        for p in batch {
            self.sessions += 1;
            self.packets += p.steps_sent as u64;
            self.bytes += p.bytes_sent as u64;
            *self.endings.entry(p.ending).or_default() += 1;
            for (name, n) in &p.answers {
                *self.answers.entry(name).or_default() += n;
            }
        }
    }

    fn rate(&self, elapsed: Duration) -> f64 {
        self.packets as f64 / elapsed.as_secs_f64().max(1e-3)
    }

    /// The progress line: sessions, packets, rate, seed.
    pub fn progress_line(&self, elapsed: Duration) -> String {
        format!(
            "fuzz: {} sessions, {} packets, {:.0} packets/s, seed {}",
            self.sessions,
            self.packets,
            self.rate(elapsed),
            self.seed
        )
    }

    /// The summary printed at the end.
    pub fn report(&self, elapsed: Duration) -> String {
        let endings: Vec<String> = self
            .endings
            .iter()
            .map(|(e, n)| format!("{} {n}", e.describe()))
            .collect();
        format!(
            "fuzz summary (seed {}): {} sessions, {} packets, {} bytes in {:.1}s ({:.0} packets/s)\n\
             connections: {}\n\
             broker answers: {}\n\
             liveness checks passed: {}",
            self.seed,
            self.sessions,
            self.packets,
            self.bytes,
            elapsed.as_secs_f64(),
            self.rate(elapsed),
            if endings.is_empty() {
                "none".to_owned()
            } else {
                endings.join(", ")
            },
            answers_line(&self.answers),
            self.liveness_passed
        )
    }
}

/// `CONNACK 3, SUBACK 1`, or `nothing`.
pub fn answers_line(answers: &BTreeMap<&'static str, u64>) -> String {
    if answers.is_empty() {
        return "nothing".to_owned();
    }
    answers
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_packets_endings_and_answers() {
        let mut s = Summary::new(9);
        let played = |ending, answers: &[(&'static str, u64)]| Played {
            steps_sent: 2,
            bytes_sent: 10,
            ending,
            answers: answers.iter().copied().collect(),
        };
        s.add(&[
            played(Ending::Closed, &[("CONNACK", 1)]),
            played(Ending::StillOpen, &[("CONNACK", 1), ("SUBACK", 2)]),
        ]);
        s.liveness_passed = 1;
        let r = s.report(Duration::from_secs(2));
        assert!(
            r.starts_with(
                "fuzz summary (seed 9): 2 sessions, 4 packets, 20 bytes in 2.0s (2 packets/s)"
            ),
            "{r}"
        );
        assert!(
            r.contains(
                "connections: closed by the broker 1, still open at the end (closed by us) 1"
            ),
            "{r}"
        );
        assert!(r.contains("broker answers: CONNACK 2, SUBACK 2"), "{r}");
        assert!(r.contains("liveness checks passed: 1"), "{r}");
        assert!(s.progress_line(Duration::from_secs(1)).contains("seed 9"));
    }
}
