# Tasks for the MQTT conformance toolkit. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Lint, then run every test of the workspace.
test: lint
    cargo test --workspace --all-targets

# Formatting, clippy, the API docs (no rustdoc warnings) and the crate
# layering, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
    ./scripts/check-layers

# Load benchmark: our broker, mosquitto and rumqttd, each pinned to core 0 with
# the load on core 1; prints a side-by-side table, writes target/bench/bench.json.
bench:
    ./scripts/bench

# Installs what `just bench` needs and the tests do not (rumqttd, taskset).
bench-setup:
    ./scripts/bench-setup

# Criterion micro-benchmarks of the codec and the subscription index.
bench-micro:
    cargo bench -p mqtt-codec
    cargo bench -p broker

# Conformance suite: with no arguments against the reference broker started here
# (plain + mutual TLS, password file, no baseline); `just conformance --mosquitto`
# against a mosquitto started here the same way (with its baseline);
# `just conformance HOST PORT [flags]` against any broker.
conformance *args:
    ./scripts/conformance {{args}}

# Fuzz smoke run: seeds the corpora (golden packets, built-in scenarios) and
# runs each cargo-fuzz target in fuzz/ for SECONDS (nightly + cargo-fuzz);
# `just fuzz 600 decode_stream` runs one target longer.
fuzz seconds="60" *targets:
    ./scripts/fuzz {{seconds}} {{targets}}

# Mutation test: the whole suite once per planted bug of broker::mutant::ALL
# (the reference broker set up as for the suite, 4 mutants at a time, with a
# control run of the good broker); each bug must fail at least two MUST
# scenarios. Prints the catch table (mutant, catching scenarios, survivors)
# and writes it to target/mutants.md; `just mutants NAME,NAME` runs only those.
mutants only="":
    report="$(realpath -m "${CARGO_TARGET_DIR:-target}")/mutants.md"; mkdir -p "$(dirname "$report")"; MUTANTS="{{only}}" MUTANTS_REPORT="$report" cargo test -p conformance --test mutants -- --nocapture
