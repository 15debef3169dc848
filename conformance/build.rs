//! Embeds the built-in suite (`fixtures/scenarios/*.toml`), the shipped
//! baselines (`fixtures/baselines/*.toml`), the statement
//! list and the untestable list into the library, so `toolkit conformance`
//! works from any directory; and lists the scenario actions
//! (`src/actions/*.rs`), so that adding an action is adding one file. Cargo
//! re-runs this when any of them changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let fixtures = manifest.join("..").join("fixtures");
    let scenarios = fixtures.join("scenarios");
    let spec = fixtures.join("spec");
    println!("cargo:rerun-if-changed={}", scenarios.display());
    println!("cargo:rerun-if-changed={}", spec.display());

    let mut files: Vec<PathBuf> = std::fs::read_dir(&scenarios)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();

    let mut out = String::from(
        "/// The built-in scenario files: (name, contents), sorted by name.\npub static SCENARIO_FILES: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .expect("read_dir entries have names")
            .to_string_lossy();
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            f.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    for (konst, file) in [
        ("STATEMENTS_TSV", "mqtt-3.1.1-statements.tsv"),
        ("UNTESTABLE_TOML", "untestable.toml"),
    ] {
        let path = spec.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            out,
            "/// `fixtures/spec/{file}`.\npub static {konst}: &str = include_str!({:?});",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    let baselines = fixtures.join("baselines");
    println!("cargo:rerun-if-changed={}", baselines.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&baselines)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    out.push_str(
        "/// The shipped baselines (`fixtures/baselines/*.toml`): (file name, contents), sorted by name.\npub static BASELINE_FILES: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .expect("read_dir entries have names")
            .to_string_lossy();
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            f.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("builtin.rs"), out).expect("writing builtin.rs to OUT_DIR");
    let actions = actions(
        &manifest.join("src").join("actions"),
        &scenarios.join("README.md"),
    );
    std::fs::write(out_dir.join("actions.rs"), actions).expect("writing actions.rs to OUT_DIR");
}

/// The module declarations of the action modules in `dir` (every `*.rs`
/// but `mod.rs`; `x_y.rs` defines `XY`) and one `actions!` call listing
/// them, in the order the step table of `readme` documents them (actions
/// it lacks go last, by name; a unit test then fails on them).
fn actions(dir: &Path, readme: &Path) -> String {
    // The directory catches a file added (cargo scans it for the newest
    // mtime); each file listed catches one removed (a missing path is stale).
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut stems: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .expect("reading src/actions")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_owned();
            (stem != "mod").then_some((stem, p))
        })
        .collect();
    let documented: Vec<String> = std::fs::read_to_string(readme)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l.chars().take_while(|c| *c != ' ' && *c != '`').collect())
        .collect();
    for (_, path) in &stems {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    stems.sort_by_key(|(stem, _)| {
        let place = documented.iter().position(|d| d == stem);
        (place.unwrap_or(usize::MAX), stem.clone())
    });
    let mut out = String::from(
        "// Generated by build.rs from src/actions/*.rs, in the order of the step\n// table in fixtures/scenarios/README.md.\n",
    );
    for (stem, path) in &stems {
        writeln!(
            out,
            "#[path = {:?}]\npub mod {stem};",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("actions! {\n");
    for (stem, _) in &stems {
        let camel: String = stem
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        writeln!(out, "    {stem}::{camel},").expect("writing to a String");
    }
    out.push_str("}\n");
    out
}
