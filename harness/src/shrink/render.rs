//! A scenario as YAML a person can read: the typed `Scenario` serialized, minus every field
//! that says only what its default says. The pruned text is parsed back and must give the
//! same scenario; if it ever did not, the full serialization is used instead.

use crate::scenario::{self, Scenario};
use serde_yaml::{Mapping, Value};
use std::path::Path;

/// Fields of the workload kept even when they equal their default: they are what shrinking
/// changes, so the reader should see them.
const WORKLOAD_ALWAYS: [&str; 4] = ["kind", "clients", "keys", "duration_s"];
/// Top-level fields kept whatever they say.
const TOP_ALWAYS: [&str; 3] = ["name", "workload", "expect"];

/// The YAML text of `scenario`, without default-valued fields.
pub(crate) fn render(scenario: &Scenario) -> String {
    pruned(scenario).unwrap_or_else(|| serde_yaml::to_string(scenario).unwrap_or_default())
}

/// The pruned text, if it parses back to `scenario`.
fn pruned(scenario: &Scenario) -> Option<String> {
    let mut value = serde_yaml::to_value(scenario).ok()?;
    prune(&mut value, &defaults()?);
    let text = serde_yaml::to_string(&value).ok()?;
    let back = scenario::parse(&text, Path::new("shrunk.yaml")).ok()?;
    (back == *scenario).then_some(text)
}

/// The serialized form of a scenario that sets nothing but what is required.
fn defaults() -> Option<Value> {
    let minimal = "name: d\nworkload: { kind: kv, duration_s: 1 }\n";
    let scenario = scenario::parse(minimal, Path::new("defaults")).ok()?;
    serde_yaml::to_value(scenario).ok()
}

fn section<'v>(value: &'v mut Value, key: &str) -> Option<&'v mut Mapping> {
    value.get_mut(key).and_then(Value::as_mapping_mut)
}

/// Removes from `map` every key whose value equals the one in `defaults`, except `keep`.
fn drop_defaults(map: &mut Mapping, defaults: Option<&Value>, keep: &[&str]) {
    let Some(defaults) = defaults.and_then(Value::as_mapping) else {
        return;
    };
    map.retain(|k, v| {
        k.as_str().is_some_and(|k| keep.contains(&k)) || defaults.get(k) != Some(&*v)
    });
}

/// Null, false, an empty list or an empty map: what a `#[serde(default)]` field reads as
/// when it is absent, for the fields this is used on.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Sequence(items) => items.is_empty(),
        Value::Mapping(map) => map.is_empty(),
        _ => false,
    }
}

fn drop_empty(map: &mut Mapping, keys: &[&str]) {
    map.retain(|k, v| !(k.as_str().is_some_and(|k| keys.contains(&k)) && is_empty(v)));
}

fn prune(value: &mut Value, defaults: &Value) {
    for name in ["cluster", "checks", "nemesis"] {
        if let Some(map) = section(value, name) {
            drop_defaults(map, defaults.get(name), &[]);
        }
    }
    if let Some(workload) = section(value, "workload") {
        drop_defaults(workload, defaults.get("workload"), &WORKLOAD_ALWAYS);
    }
    if let Some(replicas) = section(value, "replicas") {
        for (_, spec) in replicas.iter_mut() {
            if let Some(spec) = spec.as_mapping_mut() {
                drop_empty(spec, &["behaviour", "params"]);
            }
        }
    }
    if let Some(twins) = section(value, "twins") {
        drop_empty(twins, &["groups", "partition"]);
    }
    if let Some(network) = section(value, "network") {
        prune_rules(network.get_mut("rules"));
        drop_empty(network, &["rules"]);
    }
    if let Some(nemesis) = section(value, "nemesis")
        && let Some(schedule) = nemesis.get_mut("schedule").and_then(Value::as_sequence_mut)
    {
        for fault in schedule.iter_mut() {
            if let Some(fault) = fault.as_mapping_mut() {
                drop_empty(
                    fault,
                    &[
                        "duration_ms",
                        "target",
                        "shape",
                        "one_way",
                        "rules",
                        "permanent",
                    ],
                );
                prune_rules(fault.get_mut("rules"));
            }
        }
    }
    if let Some(top) = value.as_mapping_mut() {
        // Whole sections that say nothing (and any section added later, at its default).
        drop_defaults(top, Some(defaults), &TOP_ALWAYS);
        top.retain(|k, v| {
            let optional = ["cluster", "network", "nemesis", "checks"];
            !(k.as_str().is_some_and(|k| optional.contains(&k)) && is_empty(v))
        });
    }
}

/// Drops a rule's match fields that match everything (`None`, `direction: both`).
fn prune_rules(rules: Option<&mut Value>) {
    let Some(rules) = rules.and_then(Value::as_sequence_mut) else {
        return;
    };
    for rule in rules.iter_mut() {
        let Some(rule) = rule.as_mapping_mut() else {
            continue;
        };
        if let Some(matcher) = rule.get_mut("match").and_then(Value::as_mapping_mut) {
            matcher.retain(|k, v| {
                !(v.is_null() || (k.as_str() == Some("direction") && v.as_str() == Some("both")))
            });
        }
        rule.retain(|k, v| !(k.as_str() == Some("match") && is_empty(v)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scenario_renders_to_text_that_parses_back_to_it() {
        for builtin in scenario::BUILTINS {
            let loaded = scenario::load(builtin.name).expect("built-in loads");
            let text = render(&loaded.scenario);
            let back = scenario::parse(&text, Path::new("x")).expect("rendered text parses");
            assert_eq!(back, loaded.scenario, "{}:\n{text}", builtin.name);
            assert!(
                pruned(&loaded.scenario).is_some(),
                "{}: pruning changed the scenario",
                builtin.name
            );
        }
    }

    #[test]
    fn defaults_are_left_out() {
        let loaded = scenario::load("neg-wrong-reply-f1").expect("built-in loads");
        let text = render(&loaded.scenario);
        for absent in ["cluster:", "op_timeout_ms", "nemesis:", "params", "from:"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        for present in [
            "clients: 3",
            "keys: 4",
            "slow-honest-replies",
            "expect: violation",
        ] {
            assert!(text.contains(present), "{present} not in\n{text}");
        }
    }
}
