//! `toolkit bench compare`: saved reports side by side, one column per broker
//! (`--label`), with the ratio of one broker's figures to each other's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::report::Report;
use crate::exit::{Failure, Status};

/// Flags of `toolkit bench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Reports written by `toolkit bench <scenario> --json`; a file may hold one report or a JSON list of them.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The broker (its --label) whose figures are divided by each other broker's [default: the first label].
    #[arg(long, value_name = "LABEL")]
    ours: Option<String>,
    /// Also write the table, with every report, as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
}

/// Whether a larger figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Better {
    Higher,
    Lower,
    /// Neither: a figure that explains the others (how busy the broker was).
    Neither,
}

/// One figure of one case across brokers.
#[derive(Debug, Clone, Serialize)]
struct Row {
    case: String,
    figure: &'static str,
    better: Better,
    values: BTreeMap<String, f64>,
    /// `ours/other` for each other broker.
    ratios: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
struct Comparison {
    ours: String,
    labels: Vec<String>,
    rows: Vec<Row>,
    failures: Vec<String>,
    reports: Vec<Report>,
}

fn case_of(r: &Report) -> String {
    let s = &r.settings;
    match r.scenario.as_str() {
        "connections" => format!(
            "connections {}{}",
            s.subscribers,
            s.rate.map(|r| format!(" @{r}/s")).unwrap_or_default()
        ),
        other => format!(
            "{other} QoS {} {}x{} {}B{}",
            s.qos,
            s.publishers,
            s.subscribers,
            s.payload_bytes,
            s.rate.map(|r| format!(" @{r}/s")).unwrap_or_default()
        ),
    }
}

fn figures(r: &Report) -> Vec<(&'static str, Better, f64)> {
    let mut f = Vec::new();
    if r.scenario == "connections" {
        f.push(("connects/s", Better::Higher, r.connections.per_sec));
        f.push(("failed", Better::Lower, r.connections.failed as f64));
        if let Some(l) = &r.connections.latency {
            f.push(("connect p99 µs", Better::Lower, l.p99_us));
        }
        if let Some(b) = r.memory.as_ref().and_then(|m| m.per_connection_bytes) {
            f.push(("KiB/connection", Better::Lower, b / 1024.0));
        }
        if let Some(b) = r.kernel.as_ref().and_then(|k| k.per_connection_bytes) {
            // Machine-wide and both ends on loopback: context, not a score.
            f.push(("kernel KiB/conn", Better::Neither, b / 1024.0));
        }
        cpu_figures(r, "CPU µs/connect", &mut f);
        return f;
    }
    if let Some(t) = &r.throughput
        && r.scenario != "latency"
    {
        f.push(("delivered msgs/s", Better::Higher, t.delivered.msgs_per_sec));
        f.push(("sent msgs/s", Better::Higher, t.sent.msgs_per_sec));
    }
    if let Some(l) = &r.latency {
        if r.scenario == "latency" {
            f.push(("p50 µs", Better::Lower, l.p50_us));
            f.push(("p90 µs", Better::Lower, l.p90_us));
        }
        f.push(("p99 µs", Better::Lower, l.p99_us));
        f.push(("p99.9 µs", Better::Lower, l.p999_us));
        if r.scenario == "latency" {
            f.push(("max µs", Better::Lower, l.max_us));
        }
    }
    if let Some(d) = &r.delivery {
        f.push(("lost", Better::Lower, d.totals.lost as f64));
    }
    cpu_figures(r, "CPU µs/msg", &mut f);
    f
}

/// The broker's CPU per item and how busy it was, when the run measured them.
fn cpu_figures(r: &Report, per_item: &'static str, f: &mut Vec<(&'static str, Better, f64)>) {
    if let Some(c) = &r.broker_cpu {
        if let Some(us) = c.us_per_item {
            f.push((per_item, Better::Lower, us));
        }
        f.push(("broker busy %", Better::Neither, c.busy_percent));
    }
}

fn load(files: &[PathBuf]) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading report {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let parsed = if value.is_array() {
            serde_json::from_value::<Vec<Report>>(value)
        } else {
            serde_json::from_value::<Report>(value).map(|r| vec![r])
        };
        reports.extend(parsed.with_context(|| {
            format!(
                "{} is not a report written by `toolkit bench --json`",
                path.display()
            )
        })?);
    }
    Ok(reports)
}

fn compare(reports: Vec<Report>, ours: Option<&str>) -> anyhow::Result<Comparison> {
    let mut labels: Vec<String> = Vec::new();
    for r in &reports {
        let l = label_of(r);
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    let ours = match ours {
        Some(o) => {
            anyhow::ensure!(
                labels.iter().any(|l| l == o),
                "--ours '{o}' matches no report; the labels are {}",
                labels.join(", ")
            );
            o.to_owned()
        }
        None => labels.first().cloned().context("no reports given")?,
    };
    // Cases and figures in the order first seen.
    let mut rows: Vec<Row> = Vec::new();
    let mut failures = Vec::new();
    for r in &reports {
        let case = case_of(r);
        let label = label_of(r);
        if !r.passed {
            let why: Vec<_> = r.violations.iter().chain(&r.errors).cloned().collect();
            failures.push(format!("{label}, {case}: {}", why.join("; ")));
        }
        for (figure, better, value) in figures(r) {
            let idx = match rows
                .iter()
                .position(|x| x.case == case && x.figure == figure)
            {
                Some(i) => i,
                None => {
                    rows.push(Row {
                        case: case.clone(),
                        figure,
                        better,
                        values: BTreeMap::new(),
                        ratios: BTreeMap::new(),
                    });
                    rows.len() - 1
                }
            };
            rows[idx].values.insert(label.clone(), value);
        }
    }
    for row in &mut rows {
        if let Some(&o) = row.values.get(&ours) {
            for l in labels.iter().filter(|l| **l != ours) {
                if let Some(&v) = row.values.get(l)
                    && v != 0.0
                {
                    row.ratios.insert(format!("{ours}/{l}"), o / v);
                }
            }
        }
    }
    Ok(Comparison {
        ours,
        labels,
        rows,
        failures,
        reports,
    })
}

fn label_of(r: &Report) -> String {
    r.label.clone().unwrap_or_else(|| r.broker.clone())
}

fn value(v: Option<&f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

fn render(c: &Comparison) -> String {
    let others: Vec<&String> = c.labels.iter().filter(|l| **l != c.ours).collect();
    let mut header = vec!["case".to_string(), "figure".to_string()];
    header.extend(c.labels.iter().cloned());
    header.extend(others.iter().map(|o| format!("{}/{o}", c.ours)));
    let mut lines = vec![header];
    for row in &c.rows {
        let mut line = vec![
            row.case.clone(),
            format!(
                "{} {}",
                row.figure,
                match row.better {
                    Better::Higher => "↑",
                    Better::Lower => "↓",
                    Better::Neither => "·",
                }
            ),
        ];
        line.extend(c.labels.iter().map(|l| value(row.values.get(l))));
        line.extend(others.iter().map(|o| {
            row.ratios
                .get(&format!("{}/{o}", c.ours))
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "-".into())
        }));
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for (n, line) in lines.iter().enumerate() {
        let mut out = String::new();
        for (i, cell) in line.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i < 2 {
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
            }
        }
        let _ = writeln!(s, "{}", out.trim_end());
        if n == 0 {
            let _ = writeln!(
                s,
                "{}",
                "-".repeat(widths.iter().sum::<usize>() + 2 * widths.len())
            );
        }
    }
    let _ = writeln!(
        s,
        "↑ higher is better, ↓ lower is better, · neither; ratios are {}/other.",
        c.ours
    );
    for f in &c.failures {
        let _ = writeln!(s, "FAILED: {f}");
    }
    s
}

/// Runs `toolkit bench compare`.
pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let reports = load(&args.files).map_err(|e| Failure::new(Status::Usage, format!("{e:#}")))?;
    let c = compare(reports, args.ours.as_deref())
        .map_err(|e| Failure::new(Status::Usage, format!("{e:#}")))?;
    print!("{}", render(&c));
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&c)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
