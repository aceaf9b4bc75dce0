//! Parsing and refusing faults at protocol points (`on:`), with the file, line and field.

use super::*;
use crate::plan;

fn scenario(schedule: &str) -> String {
    format!("name: t\nworkload:\n  kind: kv\n  duration_s: 10\nnemesis:\n  schedule:\n{schedule}")
}

fn parse_err(text: &str) -> String {
    match parse(text, Path::new("trig.yaml")) {
        Ok(s) => panic!("expected an error, parsed {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_triggered_restart_parses_in_block_and_flow_style() {
    let block = scenario(
        "    - on:\n        replica: 1\n        sent: commit\n        seq: 5\n      action: restart\n      after_ms: 300\n",
    );
    let flow = scenario(
        "    - on: {replica: 1, sent: commit, seq: 5}\n      action: restart\n      after_ms: 300\n",
    );
    for text in [block, flow] {
        let s = parse(&text, Path::new("t.yaml")).expect("parses");
        let fault = &s.nemesis.schedule[0];
        let on = fault.on.as_ref().expect("triggered");
        assert_eq!(on.sent, SentKind::Commit);
        assert_eq!(on.replica, Some(TargetSpec::Id(1)));
        assert_eq!((on.seq, on.view, fault.at_ms), (Some(5), None, None));
        assert_eq!(fault.after_ms, Some(300));
    }
    let primary = scenario(
        "    - on: {replica: primary, sent: new-view, view: 1}\n      action: pause\n      target: primary\n",
    );
    let s = parse(&primary, Path::new("t.yaml")).expect("parses");
    let on = s.nemesis.schedule[0].on.as_ref().expect("triggered");
    assert_eq!(on.replica, Some(TargetSpec::Named(NamedTarget::Primary)));
    assert_eq!(on.sent, SentKind::NewView);
}

#[test]
fn an_unknown_message_kind_names_file_line_and_the_kinds() {
    let text = scenario("    - on:\n        sent: comit\n      action: kill\n");
    let shown = parse_err(&text);
    assert!(shown.starts_with("trig.yaml:8:"), "{shown}");
    assert!(shown.contains("comit"), "{shown}");
    assert!(shown.contains("pre-prepare"), "{shown}");
}

#[test]
fn an_unknown_trigger_field_is_refused() {
    let text =
        scenario("    - on:\n        sent: commit\n        sequence: 4\n      action: kill\n");
    let shown = parse_err(&text);
    assert!(shown.starts_with("trig.yaml:9:"), "{shown}");
    assert!(shown.contains("sequence"), "{shown}");
}

#[test]
fn bad_triggered_faults_point_at_their_field() {
    let cases = [
        (
            "    - on:\n        replica: 4\n        sent: commit\n      action: kill\n",
            "trig.yaml:8: field `nemesis.schedule[0].on.replica`: replica 4 does not exist",
        ),
        (
            "    - on: {sent: commit}\n      action: kill\n      target: 9\n",
            "trig.yaml:9: field `nemesis.schedule[0].target`: replica 9 does not exist",
        ),
        (
            "    - on: {sent: commit}\n      action: partition\n      shape: halves\n",
            "trig.yaml:8: field `nemesis.schedule[0].action`: a triggered fault (`on`) is a kill, restart or pause",
        ),
        (
            "    - on: {sent: commit}\n      action: kill\n      duration_ms: 100\n",
            "trig.yaml:9: field `nemesis.schedule[0].duration_ms`: a triggered fault lasts `after_ms`",
        ),
        (
            "    - on:\n        sent: view-change\n        seq: 3\n      action: kill\n",
            "trig.yaml:9: field `nemesis.schedule[0].on.seq`: a view-change has no sequence number",
        ),
        (
            "    - on:\n        sent: checkpoint\n        view: 1\n      action: kill\n",
            "trig.yaml:9: field `nemesis.schedule[0].on.view`: a checkpoint has no view",
        ),
        (
            "    - on: {sent: commit}\n      action: kill\n      permanent: true\n      after_ms: 5\n",
            "trig.yaml:10: field `nemesis.schedule[0].after_ms`: a permanent kill is never restarted",
        ),
        (
            "    - action: kill\n      target: 1\n",
            "trig.yaml:7: field `nemesis.schedule[0].at_ms`: a fault needs `at_ms` (a time) or `on`",
        ),
        (
            "    - at_ms: 5\n      action: kill\n      target: 1\n      after_ms: 5\n",
            "trig.yaml:10: field `nemesis.schedule[0].after_ms`: only a triggered fault",
        ),
    ];
    for (schedule, expected) in cases {
        let shown = parse_err(&scenario(schedule));
        assert!(
            shown.starts_with(expected),
            "{shown}\n  expected: {expected}"
        );
    }
}

#[test]
fn after_fault_must_name_an_earlier_fault_that_ends_and_only_once() {
    let forward = "    - on:\n        sent: commit\n        after_fault: 1\n      action: kill\n    - on: {sent: prepare}\n      action: restart\n";
    let shown = parse_err(&scenario(forward));
    assert!(
        shown.starts_with(
            "trig.yaml:9: field `nemesis.schedule[0].on.after_fault`: must name an earlier entry"
        ),
        "{shown}"
    );
    let never_ends = "    - on: {sent: commit}\n      action: kill\n    - on: {sent: new-view, after_fault: 0}\n      action: kill\n";
    let shown = parse_err(&scenario(never_ends));
    assert!(shown.contains("entry 0 never ends"), "{shown}");
    let twice = "    - at_ms: 100\n      action: kill\n      target: 1\n      duration_ms: 100\n    - on: {sent: commit, after_fault: 0}\n      action: restart\n    - on: {sent: prepare, after_fault: 0}\n      action: restart\n";
    let shown = parse_err(&scenario(twice));
    assert!(shown.contains("entry 1 already follows entry 0"), "{shown}");
}

fn resolve(text: &str) -> Result<plan::Plan, plan::PlanError> {
    let loaded = LoadedScenario::from_text(text, Path::new("trig.yaml")).expect("parses");
    plan::resolve(&loaded, 1)
}

#[test]
fn two_triggered_kills_with_f_1_are_refused_unless_chained_or_allowed() {
    let two = "    - on: {replica: 1, sent: commit, seq: 5}\n      action: restart\n      after_ms: 500\n    - on: {replica: 2, sent: commit, seq: 9}\n      action: restart\n      after_ms: 500\n";
    let error = resolve(&scenario(two)).expect_err("two at once with f = 1");
    assert!(error.to_string().contains("trig.yaml:6"), "{error}");
    assert!(error.to_string().contains("more than f = 1"), "{error}");

    let chained = two.replace(
        "{replica: 2, sent: commit, seq: 9}",
        "{replica: 2, sent: commit, after_fault: 0}",
    );
    let plan = resolve(&scenario(&chained)).expect("sequential: one down at a time");
    let trigger = plan.nemesis[1].trigger.as_ref().expect("triggered");
    assert_eq!(trigger.after_fault.as_deref(), Some("s00-kill"));

    let allowed = scenario(two).replace("nemesis:\n", "nemesis:\n  allow_over_f: true\n");
    assert!(resolve(&allowed).is_ok());
}

#[test]
fn the_built_in_two_faulty_primaries_is_refused_with_f_1() {
    let text = builtin("two-faulty-primaries").expect("built-in").yaml;
    assert!(resolve(text).is_ok(), "f = 2 allows both down at once");
    let f1 = text.replace("  f: 2", "  f: 1");
    let error = resolve(&f1).expect_err("two primaries down with f = 1");
    assert!(error.to_string().contains("more than f = 1"), "{error}");
}
