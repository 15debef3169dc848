//! Parse tests: every script error names file:line and what is wrong.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use super::parse_file;
use crate::actions::Action;
use crate::actions::batch::Batch;
use crate::model::{Level, Requirement};

fn known() -> HashSet<String> {
    crate::spec::statement_ids()
}

fn err(src: &str) -> String {
    parse_file("t.toml", src, &known()).unwrap_err().to_string()
}

/// Asserts that `src` does not parse, with a message starting with `prefix`.
fn assert_err_starts(src: &str, prefix: &str) {
    let e = err(src);
    assert!(e.starts_with(prefix), "{e}");
}

const HEAD: &str = "[[scenario]]\nname = \"x.y\"\ndescription = \"d\"\nstatements = [\"MQTT-3.1.4-4\"]\ntags = [\"connect\"]\n";

#[test]
fn parses_a_scenario_with_defaults() {
    let src = format!(
        "{HEAD}steps = [\n  {{ connect = \"a\", connack = 0 }},\n  {{ connect = \"b\", tls = true }},\n]\n"
    );
    let s = parse_file("dir/connect.toml", &src, &known()).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].area, "connect");
    assert_eq!(s[0].level, Level::Must);
    assert_eq!(
        s[0].requires,
        vec![Requirement::Tls],
        "tls connect implies the requirement"
    );
    assert_eq!(s[0].steps[0].location.line, 7);
    assert_eq!(s[0].steps[1].location.line, 8);
    let Action::Connect(c) = &s[0].steps[0].action else {
        panic!("not a connect")
    };
    let spec = &c.spec;
    assert!(spec.clean_session && spec.keep_alive == 60 && spec.connack == Some(0));
}

#[test]
fn timing_key_marks_a_scenario_for_repeats() {
    let steps = "steps = [ { connect = \"a\", keep_alive = 2, connack = 0 }, { expect_keepalive_close = \"a\" } ]\n";
    let plain = parse_file("t.toml", &format!("{HEAD}{steps}"), &known()).unwrap();
    assert!(!plain[0].timing, "timing defaults to false");
    let timed = parse_file("t.toml", &format!("{HEAD}timing = true\n{steps}"), &known()).unwrap();
    assert!(timed[0].timing);
    assert_err_starts(&format!("{HEAD}timing = 3\n{steps}"), "t.toml:");
}

#[test]
fn misspelt_step_field_names_line_and_field() {
    let src = format!("{HEAD}steps = [\n  {{ connect = \"a\", clean_sesion = false }},\n]\n");
    assert_err_starts(
        &src,
        "t.toml:7: in `connect` step: unknown field `clean_sesion`",
    );
}

#[test]
fn step_without_action_lists_actions() {
    let e = err(&format!("{HEAD}steps = [\n  {{ client = \"a\" }},\n]\n"));
    assert!(e.starts_with("t.toml:7: step has no action"), "{e}");
    assert!(e.contains("expect_closed"), "{e}");
}

#[test]
fn step_with_two_actions_is_refused() {
    let src = format!("{HEAD}steps = [\n  {{ connect = \"a\", drop = \"a\" }},\n]\n");
    assert_err_starts(&src, "t.toml:7: step has several actions (connect, drop)");
}

#[test]
fn unknown_statement_id_is_refused() {
    let src = HEAD.replace("MQTT-3.1.4-4", "MQTT-9.9.9-9") + "steps = [ { drop = \"a\" } ]\n";
    assert_err_starts(&src, "t.toml:4: unknown statement id \"MQTT-9.9.9-9\"");
}

#[test]
fn unknown_tag_is_refused() {
    let src = HEAD.replace("[\"connect\"]", "[\"conect\"]") + "steps = [ { drop = \"a\" } ]\n";
    assert_err_starts(&src, "t.toml:5: unknown tag \"conect\"");
}

#[test]
fn unknown_scenario_key_is_refused() {
    let src = format!("{HEAD}levle = \"must\"\nsteps = [ {{ drop = \"a\" }} ]\n");
    let e = err(&src);
    assert!(
        e.starts_with("t.toml:") && e.contains("unknown field `levle`"),
        "{e}"
    );
}

#[test]
fn toml_syntax_error_names_its_line() {
    let e = err(&format!("{HEAD}steps = [\n  {{ connect = \"a\" \n]\n"));
    assert!(
        e.starts_with("t.toml:7:") || e.starts_with("t.toml:8:"),
        "{e}"
    );
}

#[test]
fn one_of_holds_only_expectations() {
    let src = format!(
        "{HEAD}steps = [\n  {{ one_of = [ [ {{ expect_closed = \"a\" }} ], [ {{ drop = \"a\" }} ] ] }},\n]\n"
    );
    assert_err_starts(&src, "t.toml:7: a `one_of` branch may hold only");
}

#[test]
fn unknown_placeholder_is_refused() {
    let src = format!("{HEAD}steps = [\n  {{ publish = \"a\", topic = \"{{topic}}/x\" }},\n]\n");
    assert!(err(&src).contains("unknown placeholder {topic}"));
}

#[test]
fn bad_hex_is_refused() {
    let src = format!("{HEAD}steps = [\n  {{ send = \"a\", hex = \"c0 0\" }},\n]\n");
    assert_err_starts(&src, "t.toml:7: hex \"c0 0\" has an odd number of digits");
}

#[test]
fn client_names_are_short_and_plain() {
    let src = format!("{HEAD}steps = [\n  {{ connect = \"Publisher1\" }},\n]\n");
    assert!(err(&src).contains("1 to 8 lowercase letters or digits"));
}

#[test]
fn packet_id_forms() {
    let src = format!(
        "{HEAD}steps = [\n  {{ expect = \"a\", packet = \"puback\", packet_id = \"$p\" }},\n  {{ send = \"a\", packet = \"puback\", packet_id = \"{{n}}\" }},\n  {{ send = \"a\", packet = \"puback\", packet_id = \"p\" }},\n]\n"
    );
    assert_err_starts(&src, "t.toml:9: packet_id \"p\" must be a number");
}

#[test]
fn builtin_suite_parses_with_unique_names_and_statements() {
    let suite = crate::suite::Suite::builtin().unwrap();
    assert!(suite.scenarios.len() > 100);
    for s in &suite.scenarios {
        // Only a SHOULD/MAY check may stand on spec text without an id (the
        // parser refuses a MUST scenario without statements).
        assert!(
            !s.statements.is_empty() || s.level != Level::Must,
            "{} cites no statement",
            s.name
        );
        assert!(!s.description.is_empty(), "{} has no description", s.name);
    }
}

#[test]
fn builtin_coverage_has_nothing_missing_and_no_overlap() {
    let suite = crate::suite::Suite::builtin().unwrap();
    let statements = crate::spec::statements();
    let untestable = crate::spec::untestable().unwrap();
    let table = crate::spec::CoverageTable::compute(&statements, &untestable, &suite.scenarios);
    let (covered, not_testable, missing) = table.totals();
    assert_eq!(missing, 0, "{}", table.to_text());
    assert_eq!(covered + not_testable, statements.len());
    let cited: HashSet<&String> = suite.scenarios.iter().flat_map(|s| &s.statements).collect();
    for id in untestable.keys() {
        assert!(
            !cited.contains(id),
            "{id} is listed untestable but a scenario cites it"
        );
    }
}

#[test]
fn must_scenario_needs_statements() {
    let src = "[[scenario]]\nname = \"x.y\"\ndescription = \"d\"\nstatements = []\ntags = [\"connect\"]\nsteps = [ { connect = \"a\", connack = 0 } ]\n";
    assert!(
        err(src).contains("a MUST scenario cites the statements it checks"),
        "{}",
        err(src)
    );
    let may = src.replace("statements = []", "statements = []\nlevel = \"may\"");
    assert!(parse_file("t.toml", &may, &known()).is_ok());
}

#[test]
fn old_granted_field_says_what_replaced_it() {
    let src = format!(
        "{HEAD}steps = [\n  {{ subscribe = \"a\", filter = \"{{t}}/x\", qos = 1, granted = [1] }},\n]\n"
    );
    let e = err(&src);
    assert!(e.starts_with("t.toml:7: `granted` is gone"), "{e}");
    assert!(e.contains("require"), "{e}");
}

#[test]
fn require_and_grants_parse_into_a_grant_check() {
    let src = format!(
        "{HEAD}steps = [\n  {{ subscribe = \"a\", filters = [[\"{{t}}/x\", 2], [\"{{t}}/y\", 1]], require = [1, 0], grants = [\"$g\", \"$h\"] }},\n  {{ expect = \"a\", packet = \"publish\", qos = \"min(2, $g)\" }},\n]\n"
    );
    let s = parse_file("t.toml", &src, &known()).unwrap().remove(0);
    let Action::Subscribe(crate::actions::subscribe::Subscribe {
        grants: Some(g), ..
    }) = &s.steps[0].action
    else {
        panic!("no grant check: {:?}", s.steps[0].action);
    };
    assert_eq!(g.require, vec![1, 0]);
    assert_eq!(g.capture, vec![Some("g".into()), Some("h".into())]);
    let Action::Expect(e) = &s.steps[1].action else {
        panic!("not an expect");
    };
    assert_eq!(
        e.matcher.qos,
        Some(crate::model::QosSpec::MinOf(2, "g".into()))
    );
    let bad = format!(
        "{HEAD}steps = [\n  {{ subscribe = \"a\", filter = \"{{t}}/x\", qos = 0, require = [1] }},\n]\n"
    );
    assert!(err(&bad).contains("can never be met"), "{}", err(&bad));
}

#[test]
fn client_cert_and_refusal_flags_are_checked() {
    let plain = format!("{HEAD}steps = [\n  {{ open = \"a\", client_cert = false }},\n]\n");
    assert!(err(&plain).contains("`client_cert` goes with `tls = true`"));
    let mtls = format!(
        "{HEAD}steps = [\n  {{ open = \"a\", tls = true, client_cert = false }},\n  {{ expect_closed = \"a\", tls_refused = true }},\n]\n"
    );
    let s = parse_file("t.toml", &mtls, &known()).unwrap().remove(0);
    assert!(s.requires.contains(&Requirement::ClientCert));
    assert!(s.requires.contains(&Requirement::Tls));
    let refusal = format!(
        "{HEAD}steps = [\n  {{ connect = \"a\", protocol_level = 3, connack = 1, refusal_not_applicable = true }},\n]\n"
    );
    assert!(err(&refusal).contains("goes with `connack = 0`"));
}

#[test]
fn batch_parses_its_sending_steps_and_chunking() {
    let src = format!(
        "{HEAD}steps = [\n  {{ batch = \"a\", chunk = 1, pause_ms = 5, steps = [\n    {{ connect = \"a\" }},\n    {{ repeat = 2, steps = [ {{ publish = \"a\", topic = \"t\", qos = 1 }} ] }},\n  ] }},\n]\n"
    );
    let s = parse_file("t.toml", &src, &known()).unwrap();
    let Action::Batch(Batch {
        client,
        steps,
        chunk,
        pause,
    }) = &s[0].steps[0].action
    else {
        panic!("not a batch")
    };
    assert_eq!(client, "a");
    assert_eq!(steps.len(), 2);
    assert_eq!(*chunk, Some(1));
    assert_eq!(pause.as_millis(), 5);
}

#[test]
fn batch_refuses_steps_that_wait_or_act_for_another_client() {
    let batch =
        |inner: &str| format!("{HEAD}steps = [\n  {{ batch = \"a\", steps = [ {inner} ] }},\n]\n");
    assert_err_starts(
        &batch("{ connect = \"a\", connack = 0 }"),
        "t.toml:7: a `connect` step in a `batch` may not wait for an answer",
    );
    let e = err(&batch(
        "{ publish = \"a\", topic = \"t\", qos = 1, ack = true }",
    ));
    assert!(e.contains("may not wait"), "{e}");
    let e = err(&batch(
        "{ subscribe = \"a\", filter = \"{t}\", require = [0] }",
    ));
    assert!(e.contains("may not wait"), "{e}");
    let e = err(&batch("{ disconnect = \"a\" }"));
    assert!(e.contains("may not wait"), "{e}");
    let e = err(&batch("{ publish = \"b\", topic = \"t\" }"));
    assert!(e.contains("one batch is one connection's bytes"), "{e}");
    let e = err(&batch("{ expect = \"a\", packet = \"connack\" }"));
    assert!(e.contains("a `batch` holds only"), "{e}");
    let e = err(&batch(""));
    assert!(e.contains("at least one step"), "{e}");
    let e = err(&format!(
        "{HEAD}steps = [\n  {{ batch = \"a\", chunk = 0, steps = [ {{ send = \"a\", hex = \"c0 00\" }} ] }},\n]\n"
    ));
    assert!(e.contains("at least 1"), "{e}");
    let e = err(&format!(
        "{HEAD}steps = [\n  {{ batch = \"a\", pause_ms = 3, steps = [ {{ send = \"a\", hex = \"c0 00\" }} ] }},\n]\n"
    ));
    assert!(e.contains("`pause_ms` goes with `chunk`"), "{e}");
}

#[test]
fn restart_and_kill_steps_add_their_requirements_and_need_exclusive() {
    let src = format!(
        "{HEAD}exclusive = true\nsteps = [\n  {{ connect = \"a\", clean_session = false }},\n  {{ restart = true }},\n  {{ kill = true }},\n]\n"
    );
    let s = parse_file("t.toml", &src, &known()).unwrap();
    assert_eq!(s[0].requires, vec![Requirement::Restart, Requirement::Kill]);
    let src = format!("{HEAD}steps = [\n  {{ restart = true }},\n]\n");
    assert_eq!(
        err(&src),
        "t.toml:1: a scenario that restarts or kills the broker drops the clients of every scenario running beside it: set `exclusive = true`"
    );
}
