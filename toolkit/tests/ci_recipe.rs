//! The CI recipes (issue 12, item 7) cannot rot: `scripts/ci-gate`, the one
//! script that the GitHub Actions composite action (`action.yml`) and the
//! GitLab CI snippet (`docs/ci-recipes.md`) run, is run here against a
//! mosquitto started by the test with the toolkit cargo built; the action's
//! own shell steps are run as a runner would run them; and the action and
//! the docs are checked against the script, so an input, a variable or a
//! path cannot drift from what the script reads.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{RUN_TIMEOUT, stderr_of, stdout_of};
use testsupport::{Mosquitto, MosquittoOptions, free_port};

/// The repository root (the action's checkout).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// `scripts/ci-gate`, run in `cwd` as a CI job would, with none of the
/// settings it reads inherited from the environment of the test.
fn ci_gate(cwd: &Path) -> Command {
    let mut c = Command::new(root().join("scripts/ci-gate"));
    c.current_dir(cwd)
        .timeout(RUN_TIMEOUT)
        .env_remove("RUST_LOG");
    for name in script_variables() {
        c.env_remove(name);
    }
    c.env_remove("MQTT_PASSWORD");
    c
}

/// The toolkit binary cargo built for this test.
fn toolkit_binary() -> &'static str {
    env!("CARGO_BIN_EXE_toolkit")
}

/// The environment variables `scripts/ci-gate` reads (`${NAME…}` in its
/// code, comments left out).
fn script_variables() -> BTreeSet<String> {
    let script = read("scripts/ci-gate");
    let mut names = BTreeSet::new();
    for line in script.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for (i, _) in line.match_indices("${") {
            let name: String = line[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn ci_gate_passes_against_mosquitto_with_its_baseline_and_writes_valid_junit() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let dir = tempfile::tempdir().unwrap();
    // A report directory that does not exist yet: the script makes it.
    let out = ci_gate(dir.path())
        .env("TOOLKIT", toolkit_binary())
        .env("MQTT_HOST", "127.0.0.1")
        .env("MQTT_PORT", m.port().to_string())
        .env("CONFORMANCE_BASELINE", "mosquitto-2.0")
        .env("CONFORMANCE_JUNIT", "reports/conformance.xml")
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // The command line, printed before it runs.
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "ci-gate: {} conformance -h 127.0.0.1 -p {} --baseline mosquitto-2.0 \
             --junit reports/conformance.xml",
            toolkit_binary(),
            m.port()
        )
    );
    // The text report's summary line on standard output.
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("PASS: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    let total: usize = summary[6..].split(' ').next().unwrap().parse().unwrap();
    // The JUnit report, where the job's artifact step looks for it.
    let xml = std::fs::read_to_string(dir.path().join("reports/conformance.xml")).unwrap();
    let cases = testsupport::check_junit(&xml).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(cases.len(), total);
    assert!(cases.iter().all(|c| c.status.as_deref() != Some("failure")));
}

#[test]
fn ci_gate_at_a_wrong_port_exits_with_the_preflight_status_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No TOOLKIT: the toolkit on PATH, as after `cargo install`.
    let bin_dir = Path::new(toolkit_binary()).parent().unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = ci_gate(dir.path())
        .env("PATH", path)
        .env("MQTT_PORT", port.to_string())
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert_eq!(stdout, "", "no scenario ran");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "the command and one line: {stderr}");
    assert_eq!(
        lines[0],
        format!(
            "ci-gate: toolkit conformance -h 127.0.0.1 -p {port} --junit conformance-report.xml"
        )
    );
    assert!(lines[1].contains("refused"), "{stderr}");
    assert!(!dir.path().join("conformance-report.xml").exists());
}

#[test]
fn ci_gate_passes_extra_args_as_words_and_masks_a_password() {
    let dir = tempfile::tempdir().unwrap();
    // `--list` runs without a broker: what is listed shows the words went
    // through one by one.
    let out = ci_gate(dir.path())
        .env("TOOLKIT", toolkit_binary())
        .env("MQTT_USERNAME", "ci")
        .env("CONFORMANCE_JUNIT", "")
        .env(
            "CONFORMANCE_ARGS",
            "  -P s3cret --list\t--only connect.accepted  ",
        )
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let listed: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split(' ').next())
        .filter(|id| !id.is_empty())
        .collect();
    assert_eq!(listed, ["connect.accepted", "1"], "{stdout}");
    assert_eq!(
        stderr,
        format!(
            "ci-gate: {} conformance -h 127.0.0.1 -p 1883 -u ci -P *** --list --only \
             connect.accepted\n",
            toolkit_binary()
        )
    );
}

#[test]
fn ci_gate_without_a_toolkit_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-toolkit");
    let out = ci_gate(dir.path())
        .env("TOOLKIT", &missing)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cargo install --locked --path toolkit"),
        "{stderr}"
    );
}

/// `action.yml`'s top-level sections: the names declared under `inputs:`
/// (two-space indented keys) and the text of `runs:`.
fn action_parts() -> (BTreeSet<String>, String) {
    let action = read("action.yml");
    let inputs_at = action.find("\ninputs:\n").expect("an inputs: section");
    let runs_at = action.find("\nruns:\n").expect("a runs: section");
    assert!(inputs_at < runs_at, "inputs: comes before runs:");
    let declared = action[inputs_at..runs_at]
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.strip_suffix(':'))
        .map(str::to_owned)
        .collect();
    (declared, action[runs_at..].to_owned())
}

/// The `key: value` lines of the step named `name` in `runs`.
fn step<'a>(runs: &'a str, name: &str) -> &'a str {
    let start = runs
        .find(&format!("    - name: {name}\n"))
        .unwrap_or_else(|| panic!("no step {name:?} in:\n{runs}"));
    let rest = &runs[start + 6..];
    &runs[start..start + 6 + rest.find("\n    - ").unwrap_or(rest.len())]
}

#[test]
fn action_inputs_are_declared_used_and_passed_to_the_script() {
    let (declared, runs) = action_parts();
    for required in [
        "host", "port", "tls-port", "cafile", "baseline", "args", "junit",
    ] {
        assert!(declared.contains(required), "input {required} missing");
    }
    let used: BTreeSet<String> = runs
        .match_indices("inputs.")
        .map(|(i, _)| {
            runs[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .collect();
    assert_eq!(used, declared, "inputs used in the steps vs declared");

    // The suite runs through the same script as the test above, with every
    // setting it reads given (and nothing it does not read).
    let run = step(&runs, "Run the conformance suite");
    assert!(
        run.contains("run: '\"$GITHUB_ACTION_PATH/scripts/ci-gate\"'"),
        "{run}"
    );
    let env_keys: BTreeSet<String> = run
        .lines()
        .filter_map(|l| l.strip_prefix("        "))
        .filter_map(|l| l.split_once(": ").map(|(k, _)| k.to_owned()))
        .collect();
    assert_eq!(env_keys, script_variables(), "{run}");
    let script = root().join("scripts/ci-gate");
    let mode = std::os::unix::fs::PermissionsExt::mode(&script.metadata().unwrap().permissions());
    assert!(mode & 0o111 != 0, "scripts/ci-gate is executable");
}

#[test]
fn action_installs_the_toolkit_where_it_runs_it_and_always_uploads_the_report() {
    let (_, runs) = action_parts();
    assert!(runs.contains("  using: composite\n"), "{runs}");
    let install = step(&runs, "Install the toolkit");
    assert!(
        install.contains(
            "cargo install --locked --path \"$GITHUB_ACTION_PATH/toolkit\" \
             --root \"$RUNNER_TEMP/mqtt-toolkit\""
        ),
        "{install}"
    );
    assert!(root().join("toolkit/Cargo.toml").exists());
    let cache = step(&runs, "Restore the toolkit");
    assert!(
        cache.contains("uses: actions/cache@v4")
            && cache.contains("path: ${{ runner.temp }}/mqtt-toolkit\n"),
        "{cache}"
    );
    let run = step(&runs, "Run the conformance suite");
    assert!(
        run.contains("TOOLKIT: ${{ runner.temp }}/mqtt-toolkit/bin/toolkit\n"),
        "{run}"
    );
    let upload = step(&runs, "Upload the JUnit report");
    assert!(
        upload.contains("if: always()")
            && upload.contains("uses: actions/upload-artifact@v4")
            && upload.contains("path: ${{ inputs.junit }}\n"),
        "{upload}"
    );
}

#[test]
fn docs_recipes_use_the_script_and_only_variables_it_reads() {
    let docs = read("docs/ci-recipes.md");
    let read_by_script = script_variables();
    for heading in ["## GitHub Actions", "## GitLab CI"] {
        assert!(
            docs.contains(&format!("\n{heading}\n")),
            "{heading} missing"
        );
    }
    let gitlab = &docs[docs.find("\n## GitLab CI\n").unwrap()..];
    for needle in [
        "cargo install --locked --path ",
        "/toolkit ",
        "/scripts/ci-gate\n",
        "reports:\n      junit: ",
    ] {
        assert!(gitlab.contains(needle), "{needle:?} not in:\n{gitlab}");
    }
    // Every MQTT_… or CONFORMANCE_… variable the docs name is one the script
    // reads (or MQTT_PASSWORD, which the toolkit reads itself).
    for (i, _) in docs
        .match_indices("MQTT_")
        .chain(docs.match_indices("CONFORMANCE_"))
    {
        let name: String = docs[i..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        assert!(
            name == "MQTT_PASSWORD" || read_by_script.contains(&name),
            "docs name {name}, which scripts/ci-gate does not read"
        );
    }
}

/// One step of `action.yml`'s `runs.steps`: its `key: value` lines, the
/// text of its `run:` block, and its `env:` and `with:` maps (in order).
#[derive(Debug, Default)]
struct Step {
    keys: Vec<(String, String)>,
    run: Option<String>,
    env: Vec<(String, String)>,
    with: Vec<(String, String)>,
}

impl Step {
    fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A YAML scalar as written on one line: plain, 'single' or "double" quoted
/// (this file needs no escapes beyond `''`).
fn scalar(v: &str) -> String {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        inner.to_owned()
    } else {
        v.to_owned()
    }
}

/// The steps of `runs` (the text from `runs:` on), read the way this
/// action writes them: each `    - ` item, keys indented six spaces, block
/// and map contents eight.
fn steps(runs: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut block: Option<&str> = None;
    for line in runs.lines() {
        if let Some(first) = line.strip_prefix("    - ") {
            steps.push(Step::default());
            block = None;
            let (k, v) = first.split_once(':').unwrap();
            steps.last_mut().unwrap().keys.push((k.into(), scalar(v)));
            continue;
        }
        let Some(step) = steps.last_mut() else {
            continue;
        };
        if let Some(inner) = line.strip_prefix("        ") {
            match block {
                Some("run") => {
                    let run = step.run.get_or_insert_with(String::new);
                    run.push_str(inner);
                    run.push('\n');
                }
                Some(map) => {
                    let (k, v) = inner.split_once(": ").unwrap();
                    let pair = (k.to_owned(), scalar(v));
                    if map == "env" {
                        step.env.push(pair);
                    } else {
                        step.with.push(pair);
                    }
                }
                None => panic!("unexpected line in a step: {line:?}"),
            }
        } else if let Some(inner) = line.strip_prefix("      ") {
            let (k, v) = inner.split_once(':').unwrap();
            block = None;
            match (k, v.trim()) {
                ("run", "|") => block = Some("run"),
                ("env" | "with", "") => block = Some(if k == "env" { "env" } else { "with" }),
                ("run", v) => step.run = Some(scalar(v) + "\n"),
                (k, v) => step.keys.push((k.into(), scalar(v))),
            }
        }
    }
    steps
}

/// `text` with each `${{ inputs.X }}`, `${{ runner.temp }}` and
/// `${{ steps.ID.outputs.NAME }}` replaced; any other expression fails the
/// test, since the emulation below would not know it.
fn expand(
    text: &str,
    inputs: &std::collections::BTreeMap<String, String>,
    runner_temp: &Path,
    outputs: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${{") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("}}").unwrap() + at;
        let expr = rest[at + 3..end].trim();
        let value = if let Some(name) = expr.strip_prefix("inputs.") {
            inputs
                .get(name)
                .unwrap_or_else(|| panic!("undeclared input {name}"))
                .clone()
        } else if expr == "runner.temp" {
            runner_temp.to_str().unwrap().to_owned()
        } else if let Some(output) = expr.strip_prefix("steps.") {
            outputs
                .get(output)
                .unwrap_or_else(|| panic!("no output {output} yet"))
                .clone()
        } else {
            panic!("expression {expr:?} not known to this emulation");
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Runs `action.yml`'s steps as a runner would, on this machine: the `run`
/// steps with bash as GitHub does (`bash --noprofile --norc -eo pipefail`),
/// with `GITHUB_ACTION_PATH` this repository, the inputs' defaults
/// overridden by `given`, in a fresh workspace. Two things are not run:
/// `actions/cache` (taken as a miss) and `cargo install`, which takes minutes;
/// in its place the binary cargo built for this test is put where the
/// install step's `--root` would put it. Returns the workspace and the
/// exit status of each `run` step by name.
fn run_action(given: &[(&str, &str)]) -> (tempfile::TempDir, Vec<(String, Option<i32>)>) {
    let action = read("action.yml");
    let inputs_at = action.find("\ninputs:\n").unwrap();
    let runs_at = action.find("\nruns:\n").unwrap();
    let mut inputs = std::collections::BTreeMap::new();
    let mut current = String::new();
    for line in action[inputs_at..runs_at].lines() {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
            current = name.to_owned();
        } else if let Some(default) = line.strip_prefix("    default:") {
            inputs.insert(current.clone(), scalar(default));
        }
    }
    for (k, v) in given {
        assert!(inputs.contains_key(*k), "input {k} not declared");
        inputs.insert((*k).to_owned(), (*v).to_owned());
    }
    let workspace = tempfile::tempdir().unwrap();
    let runner_temp = tempfile::tempdir().unwrap();
    let mut outputs = std::collections::BTreeMap::new();
    let mut statuses = Vec::new();
    for step in steps(&action[runs_at..]) {
        let name = step.get("name").unwrap_or_default().to_owned();
        if let Some(uses) = step.get("uses") {
            let with: Vec<(String, String)> = step
                .with
                .iter()
                .map(|(k, v)| (k.clone(), expand(v, &inputs, runner_temp.path(), &outputs)))
                .collect();
            if uses.starts_with("actions/cache@") {
                let key = &with.iter().find(|(k, _)| k == "key").unwrap().1;
                assert!(key.starts_with("mqtt-toolkit-Linux-X64-"), "{key}");
            }
            statuses.push((name, None));
            continue;
        }
        let run = expand(
            step.run.as_deref().unwrap(),
            &inputs,
            runner_temp.path(),
            &outputs,
        );
        if let Some(install) = run.strip_prefix("cargo install ") {
            let root = install
                .split("--root ")
                .nth(1)
                .unwrap()
                .trim()
                .trim_matches('"')
                .replace("$RUNNER_TEMP", runner_temp.path().to_str().unwrap());
            std::fs::create_dir_all(Path::new(&root).join("bin")).unwrap();
            std::os::unix::fs::symlink(toolkit_binary(), Path::new(&root).join("bin/toolkit"))
                .unwrap();
            statuses.push((name, None));
            continue;
        }
        assert_eq!(step.get("shell"), Some("bash"), "{name}");
        let script = runner_temp.path().join("step.sh");
        let output_file = runner_temp.path().join("output");
        std::fs::write(&script, &run).unwrap();
        std::fs::write(&output_file, "").unwrap();
        let mut c = Command::new("bash");
        c.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script)
            .current_dir(workspace.path())
            .timeout(RUN_TIMEOUT)
            .env_remove("RUST_LOG")
            .env("GITHUB_ACTION_PATH", root().canonicalize().unwrap())
            .env("GITHUB_OUTPUT", &output_file)
            .env("RUNNER_TEMP", runner_temp.path())
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64");
        for var in script_variables() {
            c.env_remove(var);
        }
        for (k, v) in &step.env {
            c.env(k, expand(v, &inputs, runner_temp.path(), &outputs));
        }
        c.env_remove("MQTT_PASSWORD");
        let out = c.output().unwrap();
        eprintln!(
            "step {name}: {:?}\n{}{}",
            out.status.code(),
            stdout_of(&out),
            stderr_of(&out)
        );
        if let Some(id) = step.get("id") {
            for line in std::fs::read_to_string(&output_file).unwrap().lines() {
                let (k, v) = line.split_once('=').unwrap();
                outputs.insert(format!("{id}.outputs.{k}"), v.to_owned());
            }
        }
        statuses.push((name, out.status.code()));
    }
    (workspace, statuses)
}

#[test]
fn action_steps_run_against_mosquitto_and_leave_the_report_for_upload() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let port = m.port().to_string();
    let (workspace, statuses) = run_action(&[
        ("port", &port),
        ("baseline", "mosquitto-2.0"),
        ("args", "--only connect.* --time-scale 1"),
        ("junit", "reports/mqtt.xml"),
    ]);
    let ran: Vec<(&str, Option<i32>)> = statuses.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    assert_eq!(
        ran,
        [
            ("Key the toolkit build on the action's sources", Some(0)),
            ("Restore the toolkit", None),
            ("Install the toolkit", None),
            ("Run the conformance suite", Some(0)),
            ("Upload the JUnit report", None),
        ]
    );
    // What the upload step's `path` names, in the workspace.
    let xml = std::fs::read_to_string(workspace.path().join("reports/mqtt.xml")).unwrap();
    let cases = testsupport::check_junit(&xml).unwrap_or_else(|p| panic!("{p:#?}"));
    assert!(!cases.is_empty() && cases.iter().all(|c| c.name.starts_with("connect.")));
}

#[test]
fn action_run_step_fails_with_the_preflight_status_at_a_wrong_port() {
    let port = free_port().to_string();
    let (workspace, statuses) = run_action(&[("port", &port)]);
    let run = statuses
        .iter()
        .find(|(n, _)| n == "Run the conformance suite")
        .unwrap();
    assert_eq!(run.1, Some(3));
    assert!(!workspace.path().join("conformance-report.xml").exists());
}
