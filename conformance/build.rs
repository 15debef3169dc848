//! Embeds the built-in suite (`fixtures/scenarios/*.toml`), the statement
//! list and the untestable list into the library, so `toolkit conformance`
//! works from any directory. Cargo re-runs this when any of them changes.

use std::fmt::Write as _;
use std::path::PathBuf;

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
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin.rs");
    std::fs::write(dest, out).expect("writing builtin.rs to OUT_DIR");
}
