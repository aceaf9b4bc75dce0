use super::*;

fn parse_err(text: &str) -> ScenarioError {
    match parse(text, Path::new("bad.yaml")) {
        Ok(s) => panic!("expected an error, parsed {s:?}"),
        Err(e) => e,
    }
}

const MINIMAL: &str = "\
name: t
workload:
  kind: kv
  duration_s: 3
";

#[test]
fn every_builtin_parses_and_names_itself() {
    for b in BUILTINS {
        let loaded = load(b.name).unwrap_or_else(|e| panic!("{}: {e}", b.name));
        assert_eq!(loaded.scenario.name, b.name);
    }
}

#[test]
fn minimal_scenario_gets_defaults() {
    let s = parse(MINIMAL, Path::new("m.yaml")).expect("minimal parses");
    assert_eq!(s.cluster.f, 1);
    assert_eq!(s.workload.clients, 4);
    assert_eq!(s.expect, Expectation::Pass);
    assert_eq!(s.checks.oracles, Oracle::ALL.to_vec());
}

#[test]
fn unknown_field_error_names_file_line_and_field() {
    let text = "name: t\nworkload:\n  kind: kv\n  duration_s: 3\n  clinets: 4\n";
    let e = parse_err(text);
    let shown = e.to_string();
    assert!(shown.starts_with("bad.yaml:5:"), "{shown}");
    assert!(shown.contains("clinets"), "{shown}");
    assert!(shown.contains("workload"), "{shown}");
}

#[test]
fn wrong_type_error_names_line_and_field_path() {
    let text = "name: t\nworkload:\n  kind: kv\n  duration_s: 3\n  clients: many\n";
    let e = parse_err(text);
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.to_string().contains("workload.clients"), "{e}");
}

#[test]
fn unknown_field_in_proxy_rule_is_refused_with_its_line() {
    let text = "name: t\nworkload:\n  kind: kv\n  duration_s: 3\nnetwork:\n  rules:\n    - id: x\n      action: !drop { probability: 0.5 }\n      bogus: 1\n";
    let e = parse_err(text);
    assert_eq!(e.line(), Some(9), "{e}");
    assert!(e.to_string().contains("bogus"), "{e}");
}

#[test]
fn semantic_error_points_at_the_offending_field_line() {
    let text = "\
name: t
workload:
  kind: kv
  duration_s: 10
nemesis:
  schedule:
    - at_ms: 100
      action: kill
      target: 1
      duration_ms: 100
    - at_ms: 200
      action: pause
      target: 7
";
    let e = parse_err(text);
    let shown = e.to_string();
    assert_eq!(e.line(), Some(13), "{shown}");
    assert!(
        shown.starts_with("bad.yaml:13: field `nemesis.schedule[1].target`"),
        "{shown}"
    );
}

#[test]
fn zero_clients_is_refused_at_its_line() {
    let text = "name: t\nworkload:\n  kind: kv\n  clients: 0\n  duration_s: 3\n";
    let e = parse_err(text);
    assert_eq!(e.line(), Some(4), "{e}");
    assert!(e.to_string().contains("workload.clients"), "{e}");
}

#[test]
fn schedule_and_generator_together_are_refused() {
    let text = "\
name: t
workload:
  kind: kv
  duration_s: 10
nemesis:
  schedule:
    - at_ms: 100
      action: partition
      shape: halves
  generate:
    kinds: [kill]
    interval_ms: 1000
    intensity: 0.5
";
    let e = parse_err(text);
    assert_eq!(e.line(), Some(10), "{e}");
}

#[test]
fn partition_without_shape_is_refused() {
    let text = "name: t\nworkload:\n  kind: kv\n  duration_s: 10\nnemesis:\n  schedule:\n    - at_ms: 100\n      action: partition\n";
    let e = parse_err(text);
    assert!(e.to_string().contains("nemesis.schedule[0].shape"), "{e}");
    assert_eq!(e.line(), Some(7), "{e}");
}

#[test]
fn unknown_scenario_name_is_reported() {
    let e = load("no-such-scenario-anywhere").expect_err("unknown");
    assert!(matches!(e, ScenarioError::Unknown(_)));
}

#[test]
fn misspelt_behaviour_is_refused_at_load_with_the_closest_name() {
    let text = "\
name: t
workload:
  kind: kv
  duration_s: 3
replicas: {0: {build: byzantine, behaviour: equivocat}}
";
    let e = parse_err(text);
    let shown = e.to_string();
    assert_eq!(e.line(), Some(5), "{shown}");
    assert!(
        shown.starts_with(
            "bad.yaml:5: field `replicas.0.behaviour`: unknown behaviour `equivocat`; did you mean `equivocate`?"
        ),
        "{shown}"
    );
}

#[test]
fn unknown_behaviour_parameter_is_refused_at_its_own_line() {
    let text = "\
name: t
workload:
  kind: kv
  duration_s: 3
replicas:
  0: { build: twin }
  1:
    build: byzantine
    behaviour: crash-later
    params:
      after: '500'
";
    let e = parse_err(text);
    let shown = e.to_string();
    assert_eq!(e.line(), Some(11), "{shown}");
    assert!(
        shown.starts_with("bad.yaml:11: field `replicas.1.params.after`: behaviour `crash-later` has no parameter `after`; did you mean `after_ms`?"),
        "{shown}"
    );
}

#[test]
fn behaviour_parameter_values_are_checked_as_the_replica_would() {
    let text = "\
name: t
workload:
  kind: kv
  duration_s: 3
replicas:
  2:
    build: byzantine
    behaviour: mutate
    params:
      kinds: prepare,commit
      probability: '1.5'
";
    let e = parse_err(text);
    assert_eq!(e.line(), Some(11), "{e}");
    assert!(
        e.to_string().contains(
            "field `replicas.2.params.probability`: behaviour `mutate`, parameter `probability=1.5`"
        ),
        "{e}"
    );
    let fixed = text.replace("'1.5'", "'0.5'");
    let s = parse(&fixed, Path::new("ok.yaml")).expect("valid parameters parse");
    assert_eq!(s.replicas[&2].params()["probability"], "0.5");
}

#[test]
fn twin_named_as_a_byzantine_behaviour_points_at_the_twin_build() {
    let text = "\
name: t
workload:
  kind: kv
  duration_s: 3
replicas:
  1:
    build: byzantine
    behaviour: twin
";
    let e = parse_err(text);
    assert_eq!(e.line(), Some(8), "{e}");
    assert!(e.to_string().contains("write `build: twin` instead"), "{e}");
}

#[test]
fn a_byzantine_replica_holds_its_behaviour_typed_and_writes_it_back_as_name_and_params() {
    let text = "\
name: t
workload: { kind: kv, duration_s: 3 }
replicas:
  0: { build: byzantine, behaviour: censor, params: { clients: '2,0' } }
  1: { build: twin }
";
    let s = parse(text, Path::new("ok.yaml")).expect("valid");
    let censor = byzantine::Behaviour::Censor {
        clients: Some(byzantine::Censored::Only(vec![
            replica::ClientId(2),
            replica::ClientId(0),
        ])),
    };
    assert_eq!(s.replicas[&0].behaviour, Some(censor));
    assert_eq!(s.replicas[&1].behaviour, None);
    let json = serde_json::to_value(&s.replicas).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({
            "0": { "build": "byzantine", "behaviour": "censor", "params": { "clients": "2,0" } },
            "1": { "build": "twin", "behaviour": null, "params": {} },
        })
    );
    let back: Scenario =
        serde_json::from_value(serde_json::to_value(&s).expect("serializes")).expect("reads back");
    assert_eq!(back, s);
}

#[test]
fn a_bad_parameter_is_refused_at_load_with_its_file_line_and_field() {
    let text = "\
name: t
workload: { kind: kv, duration_s: 3 }
replicas:
  3:
    build: byzantine
    behaviour: flood
    params: { rate: fast }
";
    let e = parse_err(text);
    assert_eq!(
        e.to_string(),
        "bad.yaml:7: field `replicas.3.params.rate`: behaviour `flood`, parameter `rate=fast`: \
         expected a whole number"
    );
}

#[test]
fn the_cluster_and_the_replica_ids_are_judged_before_a_behaviour_as_they_always_were() {
    let bad_behaviour = "replicas: {7: {build: byzantine, behaviour: teleport}}\n";
    let e = parse_err(&format!("{MINIMAL}cluster: {{ f: 0 }}\n{bad_behaviour}"));
    assert!(e.to_string().contains("field `cluster.f`"), "{e}");
    let e = parse_err(&format!("{MINIMAL}{bad_behaviour}"));
    assert!(
        e.to_string()
            .contains("field `replicas.7`: replica 7 does not exist"),
        "{e}"
    );
}

#[test]
fn a_behaviour_must_match_the_build() {
    let e = parse_err(&format!("{MINIMAL}replicas: {{1: {{build: byzantine}}}}\n"));
    assert!(
        e.to_string()
            .contains("field `replicas.1`: a byzantine build needs a `behaviour`"),
        "{e}"
    );
    let e = parse_err(&format!(
        "{MINIMAL}replicas: {{1: {{build: honest, params: {{rate: '5'}}}}}}\n"
    ));
    assert!(
        e.to_string()
            .contains("field `replicas.1`: only a byzantine build takes a `behaviour`"),
        "{e}"
    );
}
