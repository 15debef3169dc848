//! Where the reports of a run go: the text report (or the `--format`
//! chosen) to standard output, JUnit and JSON to their files, and the
//! differential run's table.

use std::path::PathBuf;

use anyhow::Context as _;
use conformance::baseline::{Baseline, Evaluation};
use conformance::report::Format;
use conformance::report::differential::{self, NamedRun};

use super::{Args, FormatArg};
use crate::exit::usage;

/// Where the reports of a run go: the text report, or the `--format`
/// chosen, to standard output; the JUnit and JSON reports to their files.
#[derive(Debug)]
pub(super) struct Outputs {
    stdout: Format,
    junit: Option<PathBuf>,
    json: Option<PathBuf>,
}

impl Outputs {
    /// Reads the report flags, checking each file's directory exists before
    /// the run starts.
    pub(super) fn of(args: &Args) -> anyhow::Result<Self> {
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

    pub(super) fn write(
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

    /// The reports of a differential run: the table (or the differential
    /// JSON document with --format json) on standard output, the JSON
    /// document to --json FILE, and the first target's JUnit report to
    /// --junit FILE (CI judges the broker under test).
    pub(super) fn write_differential(
        &self,
        runs: &[NamedRun],
        eval: &Evaluation,
        baseline: &Baseline,
        all_rows: bool,
    ) -> anyhow::Result<()> {
        if let Some(path) = &self.junit {
            let text = conformance::report::junit(&runs[0].report, baseline);
            std::fs::write(path, text)
                .with_context(|| format!("writing report to {}", path.display()))?;
        }
        let json = || differential::json(runs, eval, baseline);
        if let Some(path) = &self.json {
            std::fs::write(path, json())
                .with_context(|| format!("writing report to {}", path.display()))?;
        }
        match self.stdout {
            Format::Json => print!("{}", json()),
            Format::Junit => print!("{}", conformance::report::junit(&runs[0].report, baseline)),
            Format::Text => print!("{}", differential::text(runs, all_rows)),
        }
        Ok(())
    }
}
