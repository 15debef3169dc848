//! What a run shows while it goes: the progress bar or one line per
//! scenario on standard error, the outages as they are found, and the
//! one-line error of a run the broker cut short.

use std::io::IsTerminal as _;

use conformance::baseline::Evaluation;
use conformance::suite::{OutageHook, RunOptions, RunReport, Suite};

use super::Args;

/// Runs `suite` against `target` with the run flags of `args`, showing
/// progress on standard error and the outages as they are found.
pub(super) fn run_suite(
    runtime: &tokio::runtime::Runtime,
    args: &Args,
    suite: &Suite,
    target: &conformance::target::Target,
) -> RunReport {
    let continue_wait = args.continue_after_crash.then_some(args.crash_wait);
    let progress = progress_bar(suite.scenarios.len() as u64);
    let bar = progress.clone();
    let above_bar = progress.clone();
    let mut report = runtime.block_on(conformance::suite::run(
        suite,
        target,
        &RunOptions {
            jobs: usize::from(args.jobs),
            run_id: None,
            continue_after_crash: continue_wait.map(std::time::Duration::from_secs),
            on_outage: Some(OutageHook(std::sync::Arc::new(move |o| {
                let line = outage_line(o, continue_wait);
                match &above_bar {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
            }))),
            timing_repeats: u32::from(args.timing_repeats),
        },
        move |r| match &bar {
            Some(b) => {
                b.set_message(r.name.clone());
                b.inc(1);
            }
            None => eprintln!("{:<8} {}", verdict_word(r), r.name),
        },
    ));
    // The report names the toolkit as `--version` does, git revision included.
    report.tool_version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (git ",
        env!("GIT_REVISION"),
        ")"
    )
    .to_owned();
    if let Some(b) = progress {
        b.finish_and_clear();
    }
    report
}

/// The line printed on standard error when the broker fails the probe.
fn outage_line(o: &conformance::outcome::Outage, continue_wait: Option<u64>) -> String {
    let cause = if o.suspects.is_empty() {
        "before the first scenario".to_owned()
    } else {
        format!("likely cause: {}", o.suspects.join(", "))
    };
    let next = match continue_wait {
        Some(secs) => {
            format!("waiting up to {secs}s for it to answer again (--continue-after-crash)")
        }
        None => "stopping the run (--continue-after-crash waits for it instead)".to_owned(),
    };
    format!("broker became unavailable ({}); {cause}; {next}", o.probe)
}

/// The one-line error of a run the broker cut short (exit status 12).
pub(super) fn unavailable_message(eval: &Evaluation) -> String {
    let suspects: Vec<&str> = eval
        .outages
        .iter()
        .flat_map(|o| o.suspects.iter().map(String::as_str))
        .collect();
    let cause = if suspects.is_empty() {
        "before the first scenario".to_owned()
    } else {
        format!("likely cause: {}", suspects.join(", "))
    };
    let stopped = eval.outages.iter().any(|o| o.came_back_after.is_none());
    if stopped {
        format!(
            "the broker became unavailable ({cause}); {} scenario(s) not run",
            eval.not_run.len()
        )
    } else {
        format!(
            "the broker became unavailable {} time(s) and came back ({cause})",
            eval.outages.len()
        )
    }
}

fn verdict_word(r: &conformance::outcome::ScenarioResult) -> &'static str {
    use conformance::outcome::Verdict;
    match r.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail { .. } => "FAIL",
        Verdict::Skipped { .. } => "skip",
        Verdict::NotApplicable { .. } => "n/a",
        Verdict::Error { .. } => "ERROR",
        Verdict::NotRun { .. } => "not run",
    }
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {wide_msg}")
    {
        bar.set_style(style);
    }
    Some(bar)
}
