//! `toolkit conformance`: runs the scripted suite against any broker and
//! reports, statement by statement, where it departs from MQTT 3.1.1.
//!
//! Thin: flags are parsed here and handed to the `conformance` crate.
//!
//! Exit statuses (see `exit.rs` for the toolkit-wide table):
//! - 0: every MUST scenario passed, or failed only as listed in `--baseline`
//!   (and `--coverage` printed its table).
//! - 1: at least one MUST scenario failed that the baseline does not list.
//! - 2: bad input: a flag, a scenario script, a baseline or an output path.
//! - 3 to 9: the preflight connection (one per listener, before any
//!   scenario) failed, with `probe`'s status and one line saying why.
//! - 10: no new failures, but a baseline entry now passes: the baseline is stale.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;
use conformance::baseline::{Baseline, Evaluation, Status as RunStatus};
use conformance::report::Format;
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

/// Flags of `toolkit conformance`.
#[derive(Debug, clap::Args)]
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
    /// Load scenario scripts from this directory instead of the built-in suite.
    #[arg(long = "scenarios")]
    scenarios_dir: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// Write the report to this file instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Known deviations of the broker (TOML, see fixtures/baselines/).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// How many scenarios run at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Print which statements the suite covers, which cannot be tested, and
    /// which are missing, then exit without contacting a broker.
    #[arg(long)]
    coverage: bool,
}

/// Loads the suite, checks `--scenario` and `--tags`, and returns it whole
/// (a baseline is checked against every scenario) with the filtered part.
fn load_suite(args: &Args) -> anyhow::Result<(Suite, Suite)> {
    let suite = match &args.scenarios_dir {
        Some(dir) => Suite::from_dir(dir).map_err(|e| usage(e.to_string()))?,
        None => {
            Suite::builtin().context("the built-in suite is broken (a bug: please report it)")?
        }
    };
    let unknown = suite.unknown_names(&args.scenarios_named);
    if !unknown.is_empty() {
        return Err(usage(format!(
            "no scenario named {}; list them with --format json or see fixtures/scenarios/",
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
    let filtered = suite.clone().filter(&args.tags, &args.scenarios_named);
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
        return emit(&args, &table.to_text());
    }
    let baseline = match &args.baseline {
        Some(p) => Baseline::load(p, &whole).map_err(|e| usage(e.to_string()))?,
        None => Baseline::default(),
    };
    let (target, tls) = preflight::target(&args.connection)?;
    if let Some(out) = &args.output
        && let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(usage(format!(
            "--output {}: directory {} does not exist",
            out.display(),
            dir.display()
        )));
    }

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
    let report = runtime.block_on(conformance::suite::run(
        &suite,
        &target,
        &RunOptions {
            jobs: usize::from(args.jobs),
            run_id: None,
        },
        move |r| match &bar {
            Some(b) => {
                b.set_message(r.name.clone());
                b.inc(1);
            }
            None => eprintln!("{:<8} {}", verdict_word(r), r.name),
        },
    ));
    if let Some(b) = progress {
        b.finish_and_clear();
    }
    let eval = Evaluation::of(&report, &baseline);
    let format = match args.format {
        FormatArg::Text => Format::Text,
        FormatArg::Json => Format::Json,
        FormatArg::Junit => Format::Junit,
    };
    emit(
        &args,
        &conformance::report::render(format, &report, &eval, &baseline),
    )?;
    match eval.status() {
        RunStatus::Pass => Ok(()),
        RunStatus::Fail => Err(Failure::new(
            Status::Failure,
            format!(
                "{} MUST scenario(s) failed outside the baseline: {}",
                eval.failures.len(),
                eval.failures.join(", ")
            ),
        )
        .into()),
        RunStatus::StaleBaseline => Err(Failure::new(
            Status::StaleBaseline,
            format!(
                "baseline is stale: {} now pass; remove them from the baseline",
                eval.stale.join(", ")
            ),
        )
        .into()),
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

fn emit(args: &Args, text: &str) -> anyhow::Result<()> {
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("writing report to {}", path.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
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
