//! Running a suite's scenarios against one target: at most `--jobs` at
//! once, `exclusive` ones alone and last, and the liveness probe
//! ([`crate::liveness`]) before the first and after each one finishes. When
//! the probe fails, the scenarios finished since the last good probe and
//! those still running are the likely cause: they are reported as errors,
//! the running ones stopped, and the run either marks the rest not run or,
//! with `--continue-after-crash`, waits (bounded) for the broker to answer
//! again and goes on. [`crate::suite::run`] sets it up and builds the report.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::outcome::{Outage, ScenarioResult, Verdict};
use crate::suite::{RunOptions, Suite};
use crate::target::Target;

/// How often a broker that failed the probe is probed again while
/// `--continue-after-crash` waits for it.
const REPROBE_INTERVAL: Duration = Duration::from_millis(200);

/// The state of one run: which scenarios are done, and the probes.
pub(crate) struct Scheduler<'a, P> {
    suite: &'a Suite,
    target: &'a Arc<Target>,
    run_id: &'a str,
    options: &'a RunOptions,
    progress: &'a P,
    /// One result per scenario of the suite, filled as they come.
    pub(crate) slots: Vec<Option<ScenarioResult>>,
    probes: u32,
    /// The outages found so far.
    pub(crate) outages: Vec<Outage>,
}

impl<'a, P: Fn(&ScenarioResult) + Send + Sync> Scheduler<'a, P> {
    /// A run of `suite` against `target`, `slots` holding the results
    /// already known (the skipped scenarios).
    pub(crate) fn new(
        suite: &'a Suite,
        target: &'a Arc<Target>,
        run_id: &'a str,
        options: &'a RunOptions,
        progress: &'a P,
        slots: Vec<Option<ScenarioResult>>,
    ) -> Self {
        Self {
            suite,
            target,
            run_id,
            options,
            progress,
            slots,
            probes: 0,
            outages: Vec::new(),
        }
    }

    /// Runs the `pending` scenarios (indexes into the suite, exclusive ones
    /// last), probing the broker between them.
    pub(crate) async fn run(&mut self, mut pending: VecDeque<usize>) {
        let mut tasks: tokio::task::JoinSet<ScenarioResult> = tokio::task::JoinSet::new();
        let mut task_of: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut running: Vec<usize> = Vec::new();
        // Finished since the last probe the broker passed.
        let mut unprobed: Vec<usize> = Vec::new();
        if let Err(e) = self.probe().await
            && !self.outage(Vec::new(), e.to_string()).await
        {
            self.not_run(pending);
            return;
        }
        loop {
            while let Some(&next) = pending.front() {
                let alone = self.suite.scenarios[next].exclusive;
                let room = if alone {
                    running.is_empty()
                } else {
                    running.len() < self.options.jobs.max(1)
                };
                if !room {
                    break;
                }
                pending.pop_front();
                running.push(next);
                let s = Arc::new(self.suite.scenarios[next].clone());
                let target = Arc::clone(self.target);
                // A `timing` scenario runs `--timing-repeats` times: at
                // once, staggered, unless it must see the broker alone.
                let phs = crate::suite::repeat_placeholders(
                    &s,
                    self.options.timing_repeats,
                    crate::suite::placeholders(self.run_id, next, &s.name),
                );
                let task = tasks.spawn(crate::runner::run_repeats(s, target, phs, !alone));
                task_of.insert(task.id(), next);
            }
            let Some(joined) = tasks.join_next_with_id().await else {
                break;
            };
            let (id, result) = match joined {
                Ok((id, r)) => (id, Ok(r)),
                Err(e) => (e.id(), Err(e)),
            };
            // Every task spawned above is in the map.
            let Some(i) = task_of.remove(&id) else {
                continue;
            };
            let r = result.unwrap_or_else(|e| {
                ScenarioResult::new(
                    &self.suite.scenarios[i],
                    Verdict::Error {
                        message: format!("scenario task failed: {e}"),
                    },
                    Duration::ZERO,
                    Vec::new(),
                )
            });
            running.retain(|&x| x != i);
            unprobed.push(i);
            (self.progress)(&r);
            self.slots[i] = Some(r);
            let Err(e) = self.probe().await else {
                unprobed.clear();
                continue;
            };
            // Those finished in the meantime keep their results; the rest
            // are stopped.
            tasks.abort_all();
            while let Some(joined) = tasks.join_next_with_id().await {
                if let Ok((id, r)) = joined
                    && let Some(&i) = task_of.get(&id)
                {
                    running.retain(|&x| x != i);
                    unprobed.push(i);
                    self.slots[i] = Some(r);
                }
            }
            let mut suspects: Vec<usize> = unprobed.drain(..).chain(running.drain(..)).collect();
            suspects.sort_unstable();
            let names = suspects
                .iter()
                .map(|&i| self.suite.scenarios[i].name.clone())
                .collect();
            let came_back = self.outage(names, e.to_string()).await;
            for i in suspects {
                self.blame(i, came_back);
            }
            if !came_back {
                self.not_run(pending);
                return;
            }
        }
    }

    /// The next liveness probe, bounded by the scaled probe timeout.
    async fn probe(&mut self) -> Result<(), crate::liveness::ProbeError> {
        self.probes += 1;
        let limit = self.target.scaled(crate::liveness::PROBE_TIMEOUT);
        crate::liveness::probe(self.target, self.run_id, self.probes, limit).await
    }

    /// Records an outage blaming `suspects`; with `--continue-after-crash`
    /// waits (bounded) for the broker to pass the probe again. Returns
    /// whether it did.
    async fn outage(&mut self, suspects: Vec<String>, probe: String) -> bool {
        let mut outage = Outage {
            suspects,
            probe,
            came_back_after: None,
        };
        if let Some(hook) = &self.options.on_outage {
            (hook.0)(&outage);
        }
        let came_back = match self.options.continue_after_crash {
            Some(wait) => self.wait_for_broker(wait).await,
            None => None,
        };
        outage.came_back_after = came_back;
        self.outages.push(outage);
        came_back.is_some()
    }

    /// Probes until the broker passes or `wait` has gone by; how long it
    /// took, when it passed.
    async fn wait_for_broker(&mut self, wait: Duration) -> Option<Duration> {
        let start = tokio::time::Instant::now();
        let give_up = start + wait;
        loop {
            let left = give_up.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            self.probes += 1;
            let limit = self.target.scaled(crate::liveness::PROBE_TIMEOUT).min(left);
            if crate::liveness::probe(self.target, self.run_id, self.probes, limit)
                .await
                .is_ok()
            {
                return Some(start.elapsed());
            }
            // A refused connection fails at once: pace the retries.
            tokio::time::sleep_until((tokio::time::Instant::now() + REPROBE_INTERVAL).min(give_up))
                .await;
        }
    }

    /// Marks scenario `i`, a suspect of an outage, as an error, keeping
    /// its transcript when it finished.
    fn blame(&mut self, i: usize, came_back: bool) {
        let s = &self.suite.scenarios[i];
        let message = if came_back {
            "broker became unavailable during this scenario (it answered again later)"
        } else {
            "broker became unavailable during this scenario"
        };
        let reported = self.slots[i].is_some();
        let (duration, transcript) = match self.slots[i].take() {
            Some(r) => (r.duration, r.transcript),
            None => (Duration::ZERO, Vec::new()),
        };
        let r = ScenarioResult::new(
            s,
            Verdict::Error {
                message: format!("{message}; the liveness probe after it failed"),
            },
            duration,
            transcript,
        );
        if !reported {
            (self.progress)(&r);
        }
        self.slots[i] = Some(r);
    }

    /// Marks the `pending` scenarios not run.
    fn not_run(&mut self, pending: VecDeque<usize>) {
        for i in pending {
            let r = ScenarioResult::new(
                &self.suite.scenarios[i],
                Verdict::NotRun {
                    reason: "broker unavailable".to_owned(),
                },
                Duration::ZERO,
                Vec::new(),
            );
            (self.progress)(&r);
            self.slots[i] = Some(r);
        }
    }
}
