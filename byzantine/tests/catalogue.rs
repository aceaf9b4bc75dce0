//! The catalogue, `build` and its errors, and the `byzantine-replica` command line.

use byzantine::{BehaviourError, build, catalogue};
use std::collections::BTreeMap;
use std::process::Command;

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const EXPECTED: &[&str] = &[
    "silent",
    "crash-later",
    "equivocate",
    "wrong-reply",
    "censor",
    "slow-primary",
    "bad-view-change",
    "replay",
    "forge-sender",
    "flood",
    "checkpoint-lie",
    "stale-view",
    "mutate",
    "twin",
];

#[test]
fn the_catalogue_names_every_behaviour_of_the_issue_and_each_in_process_one_builds() {
    let names: Vec<&str> = catalogue().iter().map(|b| b.name).collect();
    assert_eq!(names, EXPECTED);
    for info in catalogue() {
        assert!(!info.summary.is_empty() && !info.summary.contains('\n'));
        let built = build(info.name, &BTreeMap::new(), 1);
        assert_eq!(built.is_ok(), info.in_process, "{}", info.name);
    }
    assert!(matches!(
        build("twin", &BTreeMap::new(), 1),
        Err(BehaviourError::NotInProcess { .. })
    ));
}

#[test]
fn an_unknown_behaviour_or_parameter_is_refused_naming_it() {
    let error = build("teleport", &BTreeMap::new(), 0)
        .err()
        .expect("unknown");
    let text = error.to_string();
    assert!(
        text.contains("teleport") && text.contains("equivocate"),
        "{text}"
    );

    let error = build("flood", &params(&[("speed", "9")]), 0)
        .err()
        .expect("no such param");
    assert!(
        error.to_string().contains("speed") && error.to_string().contains("rate"),
        "{error}"
    );

    let bad = [
        ("crash-later", "after_ms", "soon"),
        ("censor", "clients", "0,x"),
        ("mutate", "probability", "1.5"),
        ("mutate", "kinds", "prepare,gossip"),
        ("mutate", "scope", "huge"),
        ("wrong-reply", "early", "maybe"),
    ];
    for (behaviour, param, value) in bad {
        let error = build(behaviour, &params(&[(param, value)]), 0)
            .err()
            .unwrap_or_else(|| panic!("{behaviour} accepted {param}={value}"));
        let text = error.to_string();
        assert!(text.contains(param) && text.contains(value), "{text}");
    }
    assert!(build("censor", &params(&[("clients", "0, 2")]), 0).is_ok());
    assert!(
        build(
            "mutate",
            &params(&[("kinds", "pre-prepare,reply"), ("scope", "any")]),
            0
        )
        .is_ok()
    );
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_byzantine-replica"))
}

#[test]
fn the_binary_lists_the_catalogue() {
    let output = binary().arg("--list").output().expect("the binary runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for name in EXPECTED {
        assert!(
            text.lines()
                .any(|line| line.split_whitespace().next() == Some(name)),
            "{name} missing from:\n{text}"
        );
    }
}

#[test]
fn the_binary_refuses_an_unknown_behaviour_with_the_configuration_exit_code() {
    let output = binary()
        .args(["--config", "/nonexistent/cluster.yaml", "--id", "0"])
        .args(["--behaviour", "teleport"])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("teleport"));

    let output = binary()
        .args(["--config", "/nonexistent/cluster.yaml", "--id", "0"])
        .args(["--behaviour", "flood", "--param", "rate"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("key=value"));
}
