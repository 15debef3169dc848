//! `toolkit conformance`: runs the scripted suite against any broker and
//! reports, statement by statement, where it departs from MQTT 3.1.1.
//!
//! Thin: flags are parsed here and handed to the `conformance` crate.
//!
//! Reports: the text report always goes to standard output; `--junit FILE`
//! and `--json FILE` write the machine reports in the same run. The old
//! spellings still work: `--format json|junit` alone prints that format on
//! standard output instead of the text (for scripts that pipe it), and
//! `--format F --output FILE` (`--output` is hidden) is `--json FILE` or
//! `--junit FILE`, the text still going to standard output.
//!
//! Exit statuses (see `exit.rs` for the toolkit-wide table):
//! - 0: every MUST scenario passed, or failed only as listed in `--baseline`
//!   (and `--coverage` or `--list` printed its table, or `--write-baseline`
//!   wrote its file).
//! - 1: at least one MUST scenario failed that the baseline does not list.
//! - 2: bad input: a flag, a scenario script, a baseline, a pattern that
//!   matches nothing, or an output path.
//! - 3 to 9: the preflight connection (one per listener, before any
//!   scenario) failed, with `probe`'s status and one line saying why.
//! - 10: no new failures, but a baseline entry now passes: the baseline is stale.
//! - 11: with `--fail-on-skip`, no failures and nothing stale, but scenarios
//!   were skipped (the run lacked TLS, credentials or a client certificate;
//!   restart scenarios without `--restart-command` are not counted).
//! - 12: the broker stopped answering the liveness probe during the run
//!   (the run stopped, or with `--continue-after-crash` waited for it); the
//!   error names the scenarios likely to blame. Wins over 1, 10 and 11.
//!
//! [`outputs`] writes the reports, [`progress`] shows the run as it goes.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::ValueEnum;
use conformance::baseline::{Baseline, Evaluation, Status as RunStatus};
use conformance::report::differential::NamedRun;
use conformance::restart::{BrokerControl, ShellCommand};
use conformance::select::Selection;
use conformance::suite::{Suite, describe_target};

mod outputs;
mod progress;

use outputs::Outputs;
use progress::{run_suite, unavailable_message};

use crate::connection::ConnectionFlags;
use crate::differential::TargetSpec;
use crate::exit::{Failure, Status, usage};
use crate::preflight;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
    Junit,
}

/// Exit statuses of `toolkit conformance`, shown after its `--help`.
const EXIT_HELP: &str = "Exit status: 0 passed (failures only as the baseline lists them; or --list, \
--coverage, --write-baseline done); 1 a MUST scenario failed outside the baseline; 2 bad flag, \
script, baseline, pattern or path; 3-9 the preflight failed, as `toolkit probe` says it (3 \
nothing listens or not MQTT, 4 TLS handshake, 5 certificate, 6 credentials refused, 9 closed); \
10 stale baseline (a listed deviation \
now passes); 11 scenarios were skipped and --fail-on-skip was given; 12 the broker became \
unavailable during the run (the error names the likely scenario).";

/// Flags of `toolkit conformance`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_HELP)]
pub struct Args {
    /// Where the broker is and how to connect (shared with probe and
    /// bench): the main listener on --port (MQTT on TCP, or over WebSocket
    /// with --transport ws|wss and --ws-path), the TLS one on --tls-port
    /// (scenarios tagged tls/cross are skipped without it). Give -u/-P only
    /// for a broker that refuses wrong credentials (enables the auth
    /// scenarios), --cert/--key only for a TLS listener that requires client
    /// certificates (enables the client-cert scenarios). -i is the client id
    /// of the preflight connections.
    #[command(flatten)]
    pub connection: ConnectionFlags,
    /// Run only scenarios carrying one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Run only this scenario (repeat the flag for several).
    #[arg(long = "scenario")]
    scenarios_named: Vec<String>,
    /// Add the scenario scripts (*.toml) of this directory to the built-in
    /// suite (see --no-builtin).
    #[arg(long = "scenarios", value_name = "DIR")]
    scenarios_dir: Option<PathBuf>,
    /// Run only the scenarios of --scenarios DIR, not the built-in suite.
    #[arg(long, requires = "scenarios_dir")]
    no_builtin: bool,
    /// Run only scenarios whose id, area, tag or statement id matches this
    /// glob (`*` any run, `?` one character), e.g. `connect.*`, `qos`,
    /// `MQTT-3.1.2-*`. Repeat the flag, or separate with commas, for several.
    #[arg(long, value_delimiter = ',', value_name = "GLOB")]
    only: Vec<String>,
    /// Leave out scenarios whose id, area, tag or statement id matches this
    /// glob (applied after --only). Repeatable.
    #[arg(long, value_delimiter = ',', value_name = "GLOB")]
    skip: Vec<String>,
    /// List the selected scenarios (id, area, level, needs, statements)
    /// and exit without contacting a broker; with --format json, as JSON.
    #[arg(long, conflicts_with = "coverage")]
    list: bool,
    /// Format of what goes to standard output: the text report, or instead
    /// the JSON or JUnit report (prefer --json FILE / --junit FILE, which
    /// keep the text report on standard output). Also the format of --list.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// Old spelling: with --format json or junit, the same as --json FILE or
    /// --junit FILE.
    #[arg(long, hide = true)]
    output: Option<PathBuf>,
    /// Also write the JUnit XML report (Jenkins/Surefire schema) to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Known deviations of the broker: a baseline file, or the name of a
    /// shipped one (mosquitto-2.0).
    #[arg(long, value_name = "FILE|NAME")]
    baseline: Option<PathBuf>,
    /// Record the MUST scenarios that failed in this run as a baseline in
    /// FILE (each with its statements, the observed failure as the reason,
    /// and today's date), then exit 0. Entries of --baseline that still
    /// fail, or are marked flaky, are kept as they are.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// Exit 11 when any scenario was skipped because the run lacked what it
    /// needs (TLS, credentials, a client certificate). The restart
    /// scenarios, which run only when --restart-command/--kill-command ask
    /// for them, are not counted.
    #[arg(long)]
    fail_on_skip: bool,
    /// Shell command (run with `sh -c`) that restarts the broker under test
    /// gracefully, e.g. "systemctl restart mosquitto" or "docker restart
    /// b": enables the restart scenarios (area `restart`; they run alone,
    /// after the others). It must exit 0 once the broker is stopped and
    /// starting again; the harness then waits until the broker accepts a
    /// client. A failure, or a run past 60 s, is a scenario error quoting
    /// its stderr.
    #[arg(long, value_name = "CMD", value_parser = command_line)]
    restart_command: Option<String>,
    /// Shell command that kills the broker abruptly and starts it again,
    /// e.g. "docker kill b && docker start b": enables the kill scenarios
    /// (observations: what survives a crash is what the broker documents).
    #[arg(long, value_name = "CMD", value_parser = command_line)]
    kill_command: Option<String>,
    /// Stretch every wait for the broker (packet and close deadlines,
    /// connect and scenario timeouts) by this factor, for slow CI runners;
    /// at least 1. The report says when it was used.
    #[arg(long, default_value_t = 1.0, value_parser = time_scale, value_name = "F")]
    time_scale: f64,
    /// How many scenarios run at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// When the broker stops answering the liveness probe (run before the
    /// first scenario and after each one), wait for it to come back (a
    /// supervisor restarting it) and go on, instead of stopping the run.
    /// The scenarios running when it stopped are reported as errors; the
    /// exit status is still 12.
    #[arg(long)]
    continue_after_crash: bool,
    /// With --continue-after-crash: how long to wait for the broker to
    /// answer again before stopping the run.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECS",
        requires = "continue_after_crash",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    crash_wait: u64,
    /// Run the suite against several brokers, one after another, and print
    /// one table of scenario x broker (pass, FAIL, obs, n/a, skip, error,
    /// not run), by default only the rows where they differ. Repeat for
    /// each broker: NAME (letters, digits, - and _) heads its column; HOST
    /// is a name, an IPv4 address or an IPv6 address in brackets. The
    /// other connection flags (TLS, credentials) apply to every target; -h
    /// and -p cannot be given with it. The FIRST target is the
    /// broker under test: --baseline describes it, --junit reports it, and
    /// the exit status is that of a run against it alone.
    #[arg(
        long = "target",
        value_name = "NAME=HOST:PORT",
        value_parser = crate::differential::parse_target,
        conflicts_with_all = ["host", "port"]
    )]
    targets: Vec<TargetSpec>,
    /// A second node: another node of the same cluster as -h (EMQX,
    /// HiveMQ, VerneMQ...), or a broker bridged to it. Adds the cross-node
    /// scenarios (area cross-node: subscribe on one node, publish on the
    /// other; retained messages, wills and session takeover across nodes).
    /// The connection flags (transport, TLS, credentials) apply to it too.
    #[arg(long, value_name = "HOST", conflicts_with = "targets")]
    second_host: Option<String>,
    /// Port of the second node's main listener [default: --port].
    #[arg(long, value_name = "PORT", requires = "second_host")]
    second_port: Option<u16>,
    /// The two nodes are separate brokers joined by a bridge, not one
    /// cluster: the cross-node scenarios that check what a bridge cannot
    /// promise (a session taken over or resumed on the other node) report
    /// a failure as an observation instead of a MUST failure.
    #[arg(long, requires = "second_host")]
    second_bridged: bool,
    /// With --target: show every scenario in the table, not only those where
    /// the brokers differ.
    #[arg(long, requires = "targets")]
    verbose: bool,
    /// How many times each timing-dependent scenario (the keep-alive
    /// checks) runs, at once and 500 ms apart; a deviation seen in any
    /// repeat fails it, so a broker whose timers are only sometimes wrong
    /// fails every run instead of now and then. 1 to 100.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=100), value_name = "N")]
    timing_repeats: u8,
    /// Print which statements the suite covers, which cannot be tested, and
    /// which are missing, then exit without contacting a broker.
    #[arg(long)]
    coverage: bool,
}

/// `--time-scale`: a finite number, at least 1.
fn time_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 1.0 => Ok(f),
        _ => Err(format!("{s} is not a number of at least 1")),
    }
}

/// `--restart-command`, `--kill-command`: not empty.
fn command_line(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("the command is empty; give the shell command that restarts the broker".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

/// Loads the suite, checks `--scenario`, `--tags`, `--only` and `--skip`,
/// and returns it whole (a baseline is checked against every scenario) with
/// the selected part.
fn load_suite(args: &Args) -> anyhow::Result<(Suite, Suite)> {
    let builtin =
        || Suite::builtin().context("the built-in suite is broken (a bug: please report it)");
    let suite = match &args.scenarios_dir {
        Some(dir) => {
            let mine = Suite::from_dir(dir).map_err(|e| usage(e.to_string()))?;
            if args.no_builtin {
                mine
            } else {
                builtin()?.extend(mine).map_err(|e| usage(e.to_string()))?
            }
        }
        None => builtin()?,
    };
    // The cross-node scenarios need a second node: they are part of the
    // run only when one is given.
    let suite = if args.second_host.is_some() {
        let cross_node = Suite::cross_node()
            .context("the cross-node scenarios are broken (a bug: please report it)")?;
        suite.extend(cross_node).map_err(|e| usage(e.to_string()))?
    } else {
        suite
    };
    let unknown = suite.unknown_names(&args.scenarios_named);
    if !unknown.is_empty() {
        return Err(usage(format!(
            "no scenario named {}; list them with --list",
            unknown.join(", ")
        )));
    }
    let known_tags = conformance::script::TAGS;
    if let Some(t) = args.tags.iter().find(|t| !known_tags.contains(&t.as_str())) {
        return Err(usage(format!(
            "unknown tag {t:?} in --tags; known tags: {}",
            known_tags.join(", ")
        )));
    }
    let selection = Selection {
        only: args.only.clone(),
        skip: args.skip.clone(),
    };
    let unmatched = selection.unmatched(&suite.scenarios);
    if !unmatched.is_empty() {
        return Err(usage(format!(
            "--only/--skip {} matches no scenario id, area, tag or statement id; see --list",
            unmatched.join(", ")
        )));
    }
    let filtered = suite
        .clone()
        .filter(&args.tags, &args.scenarios_named)
        .select(&selection);
    Ok((suite, filtered))
}

/// Runs the subcommand: prints the report, then returns an error carrying
/// the exit status when the run did not pass.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (whole, suite) = load_suite(&args)?;
    if args.coverage {
        let statements = conformance::spec::statements();
        let untestable = conformance::spec::untestable()?;
        let table =
            conformance::spec::CoverageTable::compute(&statements, &untestable, &suite.scenarios);
        return match &args.output {
            Some(path) => std::fs::write(path, table.to_text())
                .with_context(|| format!("writing the coverage table to {}", path.display())),
            None => {
                print!("{}", table.to_text());
                Ok(())
            }
        };
    }
    if args.list {
        match args.format {
            FormatArg::Json => print!("{}", conformance::report::list_json(&suite)),
            _ => print!("{}", conformance::report::list_text(&suite)),
        }
        return Ok(());
    }
    let baseline = match &args.baseline {
        Some(p) => Baseline::load_file_or_shipped(p, &whole).map_err(|e| usage(e.to_string()))?,
        None => Baseline::default(),
    };
    let outputs = Outputs::of(&args)?;
    if !args.targets.is_empty() && (args.restart_command.is_some() || args.kill_command.is_some()) {
        return Err(usage(
            "--restart-command and --kill-command restart one broker and cannot be given with \
             --target; run the restart area against each broker on its own (-h/-p)"
                .to_owned(),
        ));
    }
    for (i, t) in args.targets.iter().enumerate() {
        if args.targets[..i].iter().any(|u| u.name == t.name) {
            return Err(usage(format!(
                "--target {}: the name is given twice; give each broker its own",
                t.name
            )));
        }
    }
    // Each target: the shared connection flags pointed at its host and
    // port; without --target, the one broker of -h/-p.
    let targets: Vec<(Option<&str>, ConnectionFlags)> = if args.targets.is_empty() {
        vec![(None, args.connection.clone())]
    } else {
        args.targets
            .iter()
            .map(|t| (Some(t.name.as_str()), t.flags(&args.connection)))
            .collect()
    };
    let mut prepared = Vec::new();
    for (name, flags) in &targets {
        let (mut target, tls) = preflight::target(flags)?;
        target.time_scale = args.time_scale;
        target.restart = args
            .restart_command
            .as_deref()
            .map(|c| Arc::new(ShellCommand::new(c)) as Arc<dyn BrokerControl>);
        target.kill = args
            .kill_command
            .as_deref()
            .map(|c| Arc::new(ShellCommand::new(c)) as Arc<dyn BrokerControl>);
        if let Some(host) = &args.second_host {
            target.second = Some(Arc::new(second_node(&args, flags, host)?));
        }
        prepared.push((*name, flags, target, tls));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // One connection per listener of every target first: a broker that
    // cannot be reached gives one line and probe's exit status, and nothing
    // else runs.
    for (name, flags, target, tls) in &prepared {
        let checked = preflight::check(&runtime, flags, target, tls.as_ref());
        match name {
            Some(n) => checked.with_context(|| format!("--target {n}"))?,
            None => checked?,
        }
        if let Some(second) = &target.second {
            let flags = second_flags(&args, flags, &second.target.host);
            preflight::check(&runtime, &flags, &second.target, tls.as_ref())
                .context("the second node (--second-host)")?;
        }
    }

    let mut runs = Vec::new();
    for (name, _, target, _) in &prepared {
        if let Some(n) = name {
            eprintln!(
                "running the suite against {n} ({})",
                describe_target(target)
            );
        }
        let report = run_suite(&runtime, &args, &suite, target);
        runs.push(NamedRun {
            name: name.unwrap_or_default().to_owned(),
            report,
        });
    }
    // The first target is the broker under test: the baseline describes
    // it, and it alone decides the exit status.
    let report = &runs[0].report;
    let eval = Evaluation::of(report, &baseline);
    if args.targets.is_empty() {
        outputs.write(report, &eval, &baseline)?;
    } else {
        outputs.write_differential(&runs, &eval, &baseline, args.verbose)?;
    }
    // A run the broker cut short records nothing: its errors are not the
    // broker's deviations.
    if let Some(path) = &args.write_baseline
        && eval.outages.is_empty()
    {
        let date = time::OffsetDateTime::now_utc().date().to_string();
        let recorded = Baseline::record(
            report,
            &baseline,
            &format!("recorded from {} on {date}", report.target),
            &date,
        );
        let text = format!("{RECORDED_HEADER}{}", recorded.to_toml());
        std::fs::write(path, text)
            .with_context(|| format!("writing baseline {}", path.display()))?;
        eprintln!(
            "wrote {} deviation(s) to {}",
            recorded.deviations.len(),
            path.display()
        );
        return Ok(());
    }
    let (status, message) = match eval.status() {
        RunStatus::BrokerUnavailable => (Status::BrokerUnavailable, unavailable_message(&eval)),
        RunStatus::Fail => (
            Status::Failure,
            format!(
                "{} MUST scenario(s) failed outside the baseline: {}",
                eval.failures.len(),
                eval.failures.join(", ")
            ),
        ),
        RunStatus::StaleBaseline => (
            Status::StaleBaseline,
            format!(
                "baseline is stale: {} now pass; remove them from the baseline",
                eval.stale.join(", ")
            ),
        ),
        RunStatus::Pass
            if args.fail_on_skip && !counted_skips(&eval.skipped, &suite).is_empty() =>
        {
            let counted = counted_skips(&eval.skipped, &suite);
            (
                Status::Skipped,
                format!(
                    "{} scenario(s) skipped with --fail-on-skip: {}",
                    counted.len(),
                    counted.join(", ")
                ),
            )
        }
        RunStatus::Pass => return Ok(()),
    };
    Err(Failure::new(status, message).into())
}

/// The connection flags of the second node: those of the first, pointed at
/// `--second-host` and `--second-port` (default: the first node's port).
fn second_flags(args: &Args, flags: &ConnectionFlags, host: &str) -> ConnectionFlags {
    let mut second = flags.clone();
    second.host = host.to_owned();
    second.port = args.second_port.or(flags.port);
    // Its TLS listener is not used: the cross-node scenarios reach each node
    // on its main listener, which needs the TLS settings only for wss.
    second.tls_port = None;
    if second.transport != crate::connection::Carrier::Wss {
        second.cafile = None;
        second.insecure = false;
        second.cert = None;
        second.key = None;
    }
    second
}

/// The second node of a cross-node run, from `--second-host`,
/// `--second-port` and `--second-bridged`.
fn second_node(
    args: &Args,
    flags: &ConnectionFlags,
    host: &str,
) -> anyhow::Result<conformance::target::SecondNode> {
    let (mut target, _) = preflight::target(&second_flags(args, flags, host))
        .context("the second node (--second-host)")?;
    target.time_scale = args.time_scale;
    Ok(conformance::target::SecondNode {
        target,
        bridged: args.second_bridged,
    })
}

/// The skipped scenarios `--fail-on-skip` counts: all but those that need
/// a broker restart (`--restart-command`, `--kill-command`), which run only
/// when asked for.
fn counted_skips(skipped: &[String], suite: &Suite) -> Vec<String> {
    use conformance::model::Requirement;
    skipped
        .iter()
        .filter(|name| {
            !suite.scenarios.iter().any(|s| {
                &&s.name == name
                    && s.requires
                        .iter()
                        .any(|r| matches!(r, Requirement::Restart | Requirement::Kill))
            })
        })
        .cloned()
        .collect()
}

/// The top of a file `--write-baseline` writes.
const RECORDED_HEADER: &str = "\
# Known deviations recorded by `toolkit conformance --write-baseline`.
# Each reason is the failure observed: replace it with why the broker, not
# the suite, is wrong. Mark a deviation that sometimes passes (timing)
# `flaky = true`: it then neither fails the run nor turns it stale.

";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        crate::flag_parse::parse_flags("conformance", args)
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        let c = &a.connection;
        assert_eq!((c.host.as_str(), c.port, a.jobs), ("127.0.0.1", None, 8));
        assert!(c.tls_port.is_none() && c.cafile.is_none() && !c.insecure);
        assert!(c.cert.is_none() && c.key.is_none());
        assert!(a.tags.is_empty() && a.scenarios_named.is_empty() && a.scenarios_dir.is_none());
        assert!(matches!(a.format, FormatArg::Text));
        assert!(a.output.is_none() && a.baseline.is_none() && !a.coverage);
        assert!(a.only.is_empty() && a.skip.is_empty() && !a.list && !a.no_builtin);
        assert!(a.junit.is_none() && a.json.is_none() && a.write_baseline.is_none());
        assert!(!a.fail_on_skip);
        assert_eq!(a.time_scale, 1.0);
        assert!(!a.continue_after_crash && a.crash_wait == 60);
        assert!(a.targets.is_empty() && !a.verbose);
        assert!(a.restart_command.is_none() && a.kill_command.is_none());
    }

    #[test]
    fn liveness_flags_parse() {
        let a = parse(&["--continue-after-crash", "--crash-wait", "5"]).unwrap();
        assert!(a.continue_after_crash);
        assert_eq!(a.crash_wait, 5);
        assert!(
            parse(&["--crash-wait", "5"]).is_err(),
            "--crash-wait needs --continue-after-crash"
        );
        assert!(parse(&["--continue-after-crash", "--crash-wait", "0"]).is_err());
        assert!(parse(&["--continue-after-crash", "--crash-wait", "x"]).is_err());
    }

    #[test]
    fn differential_flags_parse() {
        let a = parse(&[
            "--target",
            "ours=127.0.0.1:1883",
            "--target",
            "mosquitto=[::1]:1884",
            "--verbose",
            "-u",
            "u",
        ])
        .unwrap();
        let names: Vec<(&str, &str, u16)> = a
            .targets
            .iter()
            .map(|t| (t.name.as_str(), t.host.as_str(), t.port))
            .collect();
        assert_eq!(
            names,
            [("ours", "127.0.0.1", 1883), ("mosquitto", "[::1]", 1884)]
        );
        assert!(a.verbose);
        // Each target keeps the shared flags, with its own host and port.
        let f = a.targets[1].flags(&a.connection);
        assert_eq!((f.host.as_str(), f.port), ("[::1]", Some(1884)));
        assert_eq!(f.username.as_deref(), Some("u"));
        assert!(parse(&["--target", "a=h:1", "-p", "1"]).is_err());
        assert!(parse(&["--target", "a=h:1", "-h", "x"]).is_err());
        assert!(parse(&["--verbose"]).is_err(), "--verbose needs --target");
        assert!(parse(&["--target", "a"]).is_err());
    }

    #[test]
    fn restart_and_kill_commands_parse() {
        let a = parse(&[
            "--restart-command",
            "systemctl restart mosquitto",
            "--kill-command",
            "docker kill b && docker start b",
        ])
        .unwrap();
        assert_eq!(
            a.restart_command.as_deref(),
            Some("systemctl restart mosquitto")
        );
        assert_eq!(
            a.kill_command.as_deref(),
            Some("docker kill b && docker start b")
        );
        let e = parse(&["--restart-command", " "]).unwrap_err().to_string();
        assert!(e.contains("the command is empty"), "{e}");
        assert_eq!(
            u32::from(a.timing_repeats),
            conformance::suite::DEFAULT_TIMING_REPEATS
        );
    }

    #[test]
    fn timing_repeats_parse_within_bounds() {
        assert_eq!(
            parse(&["--timing-repeats", "50"]).unwrap().timing_repeats,
            50
        );
        assert_eq!(
            parse(&["--timing-repeats", "100"]).unwrap().timing_repeats,
            100
        );
        for bad in ["0", "101", "x"] {
            assert!(parse(&["--timing-repeats", bad]).is_err(), "{bad}");
        }
        assert_eq!(
            100,
            conformance::suite::MAX_TIMING_REPEATS,
            "--timing-repeats's bound is the harness's"
        );
    }

    #[test]
    fn report_selection_and_baseline_flags_parse() {
        let a = parse(&[
            "--scenarios",
            "dir",
            "--no-builtin",
            "--only",
            "connect.*,qos",
            "--only",
            "MQTT-3.1.2-*",
            "--skip",
            "*.pingreq-*",
            "--junit",
            "r.xml",
            "--json",
            "r.json",
            "--write-baseline",
            "b.toml",
            "--fail-on-skip",
            "--time-scale",
            "2.5",
        ])
        .unwrap();
        assert!(a.no_builtin);
        assert_eq!(a.only, vec!["connect.*", "qos", "MQTT-3.1.2-*"]);
        assert_eq!(a.skip, vec!["*.pingreq-*"]);
        assert_eq!(a.junit, Some(PathBuf::from("r.xml")));
        assert_eq!(a.json, Some(PathBuf::from("r.json")));
        assert_eq!(a.write_baseline, Some(PathBuf::from("b.toml")));
        assert!(a.fail_on_skip);
        assert_eq!(a.time_scale, 2.5);
        assert!(parse(&["--list", "--format", "json"]).unwrap().list);
    }

    #[test]
    fn bad_report_selection_and_baseline_flags_are_refused() {
        assert!(
            parse(&["--no-builtin"]).is_err(),
            "--no-builtin needs --scenarios"
        );
        assert!(parse(&["--time-scale", "0.5"]).is_err());
        assert!(parse(&["--time-scale", "inf"]).is_err());
        assert!(parse(&["--time-scale", "x"]).is_err());
        assert!(parse(&["--list", "--coverage"]).is_err());
    }

    #[test]
    fn every_flag_parses() {
        let a = parse(&[
            "-h",
            "broker.local",
            "-p",
            "11883",
            "--tls-port",
            "18883",
            "--cafile",
            "ca.pem",
            "--cert",
            "client.pem",
            "--key",
            "client.key",
            "-u",
            "u",
            "-P",
            "p",
            "--tags",
            "qos1,retained",
            "--scenario",
            "a.b",
            "--scenario",
            "c.d",
            "--scenarios",
            "dir",
            "--format",
            "junit",
            "--output",
            "out.xml",
            "--baseline",
            "base.toml",
            "--jobs",
            "3",
            "--coverage",
        ])
        .unwrap();
        let c = &a.connection;
        assert_eq!(
            (c.host.as_str(), c.port, c.tls_port),
            ("broker.local", Some(11883), Some(18883))
        );
        assert_eq!(c.cafile, Some(PathBuf::from("ca.pem")));
        assert_eq!(
            (c.cert.clone(), c.key.clone()),
            (
                Some(PathBuf::from("client.pem")),
                Some(PathBuf::from("client.key"))
            )
        );
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(a.tags, vec!["qos1", "retained"]);
        assert_eq!(a.scenarios_named, vec!["a.b", "c.d"]);
        assert_eq!(a.scenarios_dir, Some(PathBuf::from("dir")));
        assert!(matches!(a.format, FormatArg::Junit));
        assert_eq!(a.output, Some(PathBuf::from("out.xml")));
        assert_eq!(a.baseline, Some(PathBuf::from("base.toml")));
        assert_eq!(a.jobs, 3);
        assert!(a.coverage);
        assert!(
            parse(&["--tls-port", "8883", "--insecure"])
                .unwrap()
                .connection
                .insecure
        );
    }

    /// Parsed, but refused (usage, exit 2) before anything connects.
    fn refused_after_parse(args: &[&str]) -> bool {
        let a = parse(args).unwrap();
        preflight::target(&a.connection).is_err_and(|e| crate::exit::status_of(&e) == Status::Usage)
    }

    #[test]
    fn inconsistent_flags_are_refused() {
        assert!(
            refused_after_parse(&["--cafile", "ca.pem"]),
            "--cafile needs --tls-port"
        );
        assert!(
            refused_after_parse(&["--insecure"]),
            "--insecure needs --tls-port"
        );
        assert!(parse(&["--tls-port", "1", "--cafile", "c", "--insecure"]).is_err());
        assert!(
            parse(&["--tls-port", "1", "--insecure", "--cert", "c.pem"]).is_err(),
            "--cert needs --key"
        );
        assert!(
            parse(&["--tls-port", "1", "--insecure", "--key", "c.key"]).is_err(),
            "--key needs --cert"
        );
        assert!(
            refused_after_parse(&["--cert", "c.pem", "--key", "c.key"]),
            "--cert needs --tls-port"
        );
        assert!(
            parse(&["--password", "p"]).is_err(),
            "--password needs --username"
        );
        assert!(
            refused_after_parse(&["--tls", "-p", "8883"]),
            "--tls does not apply: the TLS listener is --tls-port"
        );
        assert!(parse(&["--jobs", "0"]).is_err());
        assert!(parse(&["--port", "70000"]).is_err());
        assert!(parse(&["--format", "yaml"]).is_err());
    }
}
