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
//!   were skipped (the run lacked TLS, credentials or a client certificate).

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;
use conformance::baseline::{Baseline, Evaluation, Status as RunStatus};
use conformance::report::Format;
use conformance::select::Selection;
use conformance::suite::{RunOptions, Suite};

use crate::connection::ConnectionFlags;
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
now passes); 11 scenarios were skipped and --fail-on-skip was given.";

/// Flags of `toolkit conformance`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_HELP)]
pub struct Args {
    /// Where the broker is and how to connect (shared with probe and
    /// bench): the plain listener on --port, the TLS one on --tls-port
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
    /// needs (TLS, credentials, a client certificate).
    #[arg(long)]
    fail_on_skip: bool,
    /// Stretch every wait for the broker (packet and close deadlines,
    /// connect and scenario timeouts) by this factor, for slow CI runners;
    /// at least 1. The report says when it was used.
    #[arg(long, default_value_t = 1.0, value_parser = time_scale, value_name = "F")]
    time_scale: f64,
    /// How many scenarios run at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// How many times each timing-dependent scenario (the keep-alive
    /// checks) runs, at once and 200 ms apart; a deviation seen in any
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
    let (mut target, tls) = preflight::target(&args.connection)?;
    target.time_scale = args.time_scale;
    let outputs = Outputs::of(&args)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // One connection per listener first: a broker that cannot be reached
    // gives one line and probe's exit status, and nothing else runs.
    preflight::check(&runtime, &args.connection, &target, tls.as_ref())?;

    let total = suite.scenarios.len() as u64;
    let progress = progress_bar(total);
    let bar = progress.clone();
    let mut report = runtime.block_on(conformance::suite::run(
        &suite,
        &target,
        &RunOptions {
            jobs: usize::from(args.jobs),
            run_id: None,
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
    let eval = Evaluation::of(&report, &baseline);
    outputs.write(&report, &eval, &baseline)?;
    if let Some(path) = &args.write_baseline {
        let date = time::OffsetDateTime::now_utc().date().to_string();
        let recorded = Baseline::record(
            &report,
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
        RunStatus::Pass if args.fail_on_skip && !eval.skipped.is_empty() => (
            Status::Skipped,
            format!(
                "{} scenario(s) skipped with --fail-on-skip: {}",
                eval.skipped.len(),
                eval.skipped.join(", ")
            ),
        ),
        RunStatus::Pass => return Ok(()),
    };
    Err(Failure::new(status, message).into())
}

/// The top of a file `--write-baseline` writes.
const RECORDED_HEADER: &str = "\
# Known deviations recorded by `toolkit conformance --write-baseline`.
# Each reason is the failure observed: replace it with why the broker, not
# the suite, is wrong. Mark a deviation that sometimes passes (timing)
# `flaky = true`: it then neither fails the run nor turns it stale.

";

/// Where the reports of a run go: the text report, or the `--format`
/// chosen, to standard output; the JUnit and JSON reports to their files.
#[derive(Debug)]
struct Outputs {
    stdout: Format,
    junit: Option<PathBuf>,
    json: Option<PathBuf>,
}

impl Outputs {
    /// Reads the report flags, checking each file's directory exists before
    /// the run starts.
    fn of(args: &Args) -> anyhow::Result<Self> {
        let mut out = Self {
            stdout: Format::Text,
            junit: args.junit.clone(),
            json: args.json.clone(),
        };
        match (args.format, &args.output) {
            (FormatArg::Text, None) => {}
            (FormatArg::Json, None) => out.stdout = Format::Json,
            (FormatArg::Junit, None) => out.stdout = Format::Junit,
            (FormatArg::Json, Some(p)) => out.json = Some(p.clone()),
            (FormatArg::Junit, Some(p)) => out.junit = Some(p.clone()),
            (FormatArg::Text, Some(_)) => {
                return Err(usage(
                    "--output needs --format json or junit; better: --json FILE or --junit FILE",
                ));
            }
        }
        let files = [
            ("--junit", &out.junit),
            ("--json", &out.json),
            ("--write-baseline", &args.write_baseline),
        ];
        for (flag, file) in files {
            if let Some(f) = file
                && let Some(dir) = f.parent().filter(|d| !d.as_os_str().is_empty())
                && !dir.is_dir()
            {
                return Err(usage(format!(
                    "{flag} {}: directory {} does not exist",
                    f.display(),
                    dir.display()
                )));
            }
        }
        Ok(out)
    }

    fn write(
        &self,
        report: &conformance::suite::RunReport,
        eval: &Evaluation,
        baseline: &Baseline,
    ) -> anyhow::Result<()> {
        for (path, format) in [(&self.junit, Format::Junit), (&self.json, Format::Json)] {
            if let Some(path) = path {
                let text = conformance::report::render(format, report, eval, baseline);
                std::fs::write(path, text)
                    .with_context(|| format!("writing report to {}", path.display()))?;
            }
        }
        print!(
            "{}",
            conformance::report::render(self.stdout, report, eval, baseline)
        );
        Ok(())
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
