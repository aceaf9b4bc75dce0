//! What a shrink measured and decided: the size of a scenario (`Metrics`), each accepted
//! step, `shrink.json`, and the lines printed for people.

use super::candidates::{Dimension, describe_build};
use crate::nemesis::{self, PlannedAction, PlannedFault};
use crate::plan::substream;
use crate::scenario::{Build, Scenario};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How big a scenario is, along every dimension shrinking cuts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Faults the plan schedules (generated or listed), for the run's seed.
    pub nemesis_actions: usize,
    /// The sum of every fault's window (a fault with no end lasts until the workload ends).
    pub fault_window_ms: u64,
    pub byzantine_replicas: usize,
    /// Per non-honest replica: its build, behaviour and parameters.
    pub byzantine: BTreeMap<u32, String>,
    pub network_rules: usize,
    pub clients: u32,
    pub keys: u32,
    pub duration_ms: u64,
    /// Operations invoked in the run's history.
    pub ops: u64,
}

/// The faults `scenario` resolves to with `seed`, as `plan::resolve` draws them.
pub fn planned_faults(scenario: &Scenario, seed: u64) -> Vec<PlannedFault> {
    let n = scenario.cluster.n();
    let mut rng = substream(seed, "nemesis");
    match &scenario.nemesis.generate {
        Some(spec) => nemesis::generate(spec, n, scenario.workload.duration_ms(), &mut rng),
        None => nemesis::resolve_schedule(&scenario.nemesis.schedule, n, &mut rng),
    }
}

impl Metrics {
    pub fn of(scenario: &Scenario, seed: u64, ops: u64) -> Metrics {
        let duration_ms = scenario.workload.duration_ms();
        let faults = planned_faults(scenario, seed);
        let fault_window_ms = faults
            .iter()
            .map(|f| match f.action {
                PlannedAction::Restart { .. } | PlannedAction::Resume { .. } => 0,
                _ => f
                    .end_ms
                    .unwrap_or(duration_ms)
                    .max(f.start_ms)
                    .saturating_sub(f.start_ms),
            })
            .sum();
        let byzantine: BTreeMap<u32, String> = scenario
            .replicas
            .iter()
            .filter(|(_, spec)| spec.build != Build::Honest)
            .map(|(id, spec)| (*id, describe_build(spec)))
            .collect();
        Metrics {
            nemesis_actions: faults.len(),
            fault_window_ms,
            byzantine_replicas: byzantine.len(),
            byzantine,
            network_rules: scenario.network.rules.len(),
            clients: scenario.workload.clients,
            keys: scenario.workload.keys,
            duration_ms,
            ops,
        }
    }
}

/// One accepted change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub step: usize,
    /// The run (attempt number) that showed the smaller scenario still fails.
    pub attempt: usize,
    pub dimension: Dimension,
    pub change: String,
    pub after: Metrics,
}

/// Why the search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stopped {
    /// A whole round over every dimension changed nothing.
    Fixpoint,
    BudgetRuns,
    BudgetTime,
}

/// `shrink.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run_dir: String,
    pub scenario: String,
    pub seed: u64,
    /// Where the original ran (`real` originals are first re-run in simulation).
    pub original_backend: String,
    /// The check every accepted candidate violates, as the original did.
    pub oracle: String,
    /// How the nemesis was made explicit, or why it was not.
    pub nemesis_form: String,
    pub original: Metrics,
    #[serde(rename = "final")]
    pub last: Metrics,
    /// Simulated runs made (the final confirming run not included).
    pub attempts: usize,
    /// Candidates refused by the scenario validation or the plan, never run.
    pub invalid_skipped: usize,
    pub budget_runs: usize,
    pub budget_seconds: u64,
    pub stopped: Stopped,
    pub steps: Vec<Step>,
    /// The shrunk scenario, the run folder of its confirming run, its report.
    pub shrunk_yaml: String,
    pub run: String,
    /// Whether the confirming run of `shrunk.yaml` failed the same oracle.
    pub confirmed: bool,
    pub wall_seconds: f64,
}

/// `5412` as `5,412`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Summary {
    /// `12 -> 2 nemesis actions, 8 -> 1 clients, 30000 -> 4000 ms, 5,412 -> 310 ops`, plus
    /// whatever else changed.
    pub fn one_line(&self) -> String {
        let (a, b) = (&self.original, &self.last);
        let mut parts = vec![
            format!(
                "{} -> {} nemesis actions",
                a.nemesis_actions, b.nemesis_actions
            ),
            format!("{} -> {} clients", a.clients, b.clients),
            format!("{} -> {} ms", a.duration_ms, b.duration_ms),
            format!("{} -> {} ops", thousands(a.ops), thousands(b.ops)),
        ];
        if a.keys != b.keys {
            parts.push(format!("{} -> {} keys", a.keys, b.keys));
        }
        if a.fault_window_ms != b.fault_window_ms {
            parts.push(format!(
                "{} -> {} ms of faults",
                a.fault_window_ms, b.fault_window_ms
            ));
        }
        if a.byzantine != b.byzantine {
            parts.push(format!(
                "{} -> {} byzantine replicas",
                describe_byzantine(a),
                describe_byzantine(b)
            ));
        }
        if a.network_rules != b.network_rules {
            parts.push(format!(
                "{} -> {} network rules",
                a.network_rules, b.network_rules
            ));
        }
        parts.join(", ")
    }
}

fn describe_byzantine(m: &Metrics) -> String {
    if m.byzantine.is_empty() {
        return "0".into();
    }
    let list: Vec<String> = m
        .byzantine
        .iter()
        .map(|(id, what)| format!("r{id} {what}"))
        .collect();
    format!("{} ({})", m.byzantine_replicas, list.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(5412), "5,412");
        assert_eq!(thousands(310), "310");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn metrics_count_planned_faults_and_their_windows() {
        let s = crate::scenario::load("too-many-crashes")
            .expect("built-in")
            .scenario;
        let m = Metrics::of(&s, 1, 0);
        assert_eq!(m.nemesis_actions, 2);
        // Two permanent kills from 1000 ms to the end (4000 ms).
        assert_eq!(m.fault_window_ms, 6000);
        assert_eq!(m.clients, 2);
        let smoke = crate::scenario::load("smoke").expect("built-in").scenario;
        assert!(Metrics::of(&smoke, 1, 0).nemesis_actions >= 2);
    }
}
