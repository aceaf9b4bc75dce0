//! The catalogue, `Behaviour::parse` and its errors, `build`, and the `byzantine-replica`
//! command line.

use byzantine::{Behaviour, BehaviourError, build, catalogue};
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
    "equivocate-all",
    "wrong-reply",
    "censor",
    "slow-primary",
    "bad-view-change",
    "replay",
    "forge-sender",
    "flood",
    "checkpoint-lie",
    "amnesia-probe",
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
        let parsed = Behaviour::parse(info.name, &BTreeMap::new());
        assert_eq!(parsed.is_ok(), info.in_process, "{}", info.name);
        if let Ok(behaviour) = parsed {
            assert_eq!(behaviour.name(), info.name);
            drop(build(&behaviour, 1));
        }
    }
    assert!(matches!(
        Behaviour::parse("twin", &BTreeMap::new()),
        Err(BehaviourError::NotInProcess { .. })
    ));
}

#[test]
fn an_unknown_behaviour_or_parameter_is_refused_naming_it() {
    let error = Behaviour::parse("teleport", &BTreeMap::new()).expect_err("unknown");
    let text = error.to_string();
    assert!(
        text.contains("teleport") && text.contains("equivocate"),
        "{text}"
    );

    let error = Behaviour::parse("flood", &params(&[("speed", "9")])).expect_err("no such param");
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
        ("equivocate-all", "targets", "everyone"),
        ("equivocate-all", "hold_ms", "soon"),
        ("wrong-reply", "early", "maybe"),
    ];
    for (behaviour, param, value) in bad {
        let Err(error) = Behaviour::parse(behaviour, &params(&[(param, value)])) else {
            panic!("{behaviour} accepted {param}={value}");
        };
        let text = error.to_string();
        assert!(text.contains(param) && text.contains(value), "{text}");
    }
    assert!(Behaviour::parse("censor", &params(&[("clients", "0, 2")])).is_ok());
    assert!(
        Behaviour::parse(
            "mutate",
            &params(&[("kinds", "pre-prepare,reply"), ("scope", "any")]),
        )
        .is_ok()
    );
}

#[test]
fn a_misspelt_behaviour_or_parameter_gets_the_closest_known_name() {
    let error = Behaviour::parse("equivocat", &BTreeMap::new()).expect_err("misspelt");
    assert!(
        matches!(
            &error,
            BehaviourError::Unknown {
                closest: Some("equivocate"),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("unknown behaviour `equivocat`; did you mean `equivocate`?"),
        "{error}"
    );
    for (typo, meant) in [
        ("slow_primary", "slow-primary"),
        ("Censor", "censor"),
        ("crash-latr", "crash-later"),
        ("stale-veiw", "stale-view"),
    ] {
        let error = Behaviour::parse(typo, &BTreeMap::new()).expect_err("misspelt");
        assert!(
            error
                .to_string()
                .contains(&format!("did you mean `{meant}`?")),
            "{typo}: {error}"
        );
    }
    // Nothing near: no guess, only the list.
    let error = Behaviour::parse("teleport", &BTreeMap::new()).expect_err("unknown");
    assert!(!error.to_string().contains("did you mean"), "{error}");

    let error =
        Behaviour::parse("crash-later", &params(&[("after", "5")])).expect_err("no such param");
    assert_eq!(
        error.to_string(),
        "behaviour `crash-later` has no parameter `after`; did you mean `after_ms`? (it takes: after_ms)"
    );
    let error =
        Behaviour::parse("mutate", &params(&[("probabilty", "0.5")])).expect_err("no such param");
    assert!(
        error.to_string().contains("did you mean `probability`?"),
        "{error}"
    );
    let error = Behaviour::parse("flood", &params(&[("speed", "9")])).expect_err("no such param");
    assert!(!error.to_string().contains("did you mean"), "{error}");
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

    let output = binary()
        .args(["--config", "/nonexistent/cluster.yaml", "--id", "0"])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--behaviour"));
}
