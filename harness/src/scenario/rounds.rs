//! The `rounds` part of `nemesis.generate`: faults bound to protocol rounds rather than to
//! wall time, drawn from the seed (`crate::nemesis::rounds` carries them out).
//!
//! ```yaml
//! nemesis:
//!   generate:
//!     kinds: [round-partition, loss, kill]   # round kinds mix with the timed kinds
//!     interval_ms: 2000                      # the timed kinds only
//!     intensity: 0.4
//!     rounds:
//!       network_faults: 3   # ByzzFuzz's c: rounds that get a partition
//!       within: 12          # ByzzFuzz's r: rounds are drawn among the first r
//!       views: 2            # rounds lie in views 0..views (default 1)
//!       groups: [2, 3]      # each partition has 2 to 3 groups
//!       phases: true        # a partition may hit one phase (pre-prepare, prepare or commit)
//! ```
//!
//! A round of `round-partition` and `round-crash` is a view and a window of `span` sequence
//! numbers; a round of `twins-round` is a whole view.

use super::locate::Segment::{self, Key};
use super::{FaultKind, Problem, Scenario, problem};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundSpec {
    /// `round-partition`: how many distinct rounds get a partition (ByzzFuzz's c).
    #[serde(default = "default_network_faults")]
    pub network_faults: u32,
    /// `round-crash`: how many rounds end with their sender killed and restarted.
    #[serde(default = "default_process_faults")]
    pub process_faults: u32,
    /// Rounds are drawn among the first `within` sequence windows of each view (ByzzFuzz's r).
    #[serde(default = "default_within")]
    pub within: u64,
    /// Sequence numbers per round: round k of a view covers seqs `k*span+1 ..= (k+1)*span`.
    #[serde(default = "default_span")]
    pub span: u64,
    /// How many views rounds lie in (views `0..views`). For `twins-round`, every one of these
    /// views gets its own partition; absent = 1 for seq rounds, 3 for `twins-round`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<u64>,
    /// `[min, max]` groups per partition.
    #[serde(default = "default_groups")]
    pub groups: [usize; 2],
    /// A `round-partition` may hit only one phase of its round (its PRE-PREPAREs, PREPAREs
    /// or COMMITs) instead of every message of it.
    #[serde(default)]
    pub phases: bool,
    /// `twins-round`: the chance that a view's partition is the twins' own split (every twin A
    /// with the principals routed to it, every twin B with the rest), which with two twinned
    /// replicas gives each twin a quorum of its own. A split drawn lasts two views.
    #[serde(default = "default_quorum_bias")]
    pub quorum_bias: f64,
}

fn default_network_faults() -> u32 {
    2
}
fn default_process_faults() -> u32 {
    1
}
fn default_within() -> u64 {
    10
}
fn default_span() -> u64 {
    1
}
fn default_groups() -> [usize; 2] {
    [2, 3]
}
fn default_quorum_bias() -> f64 {
    0.5
}

impl Default for RoundSpec {
    fn default() -> Self {
        RoundSpec {
            network_faults: default_network_faults(),
            process_faults: default_process_faults(),
            within: default_within(),
            span: default_span(),
            views: None,
            groups: default_groups(),
            phases: false,
            quorum_bias: default_quorum_bias(),
        }
    }
}

impl RoundSpec {
    /// The views rounds of `kind` lie in.
    pub fn views_for(&self, kind: FaultKind) -> u64 {
        self.views
            .unwrap_or(if kind == FaultKind::TwinsRound { 3 } else { 1 })
    }
}

impl FaultKind {
    /// Kinds bound to protocol rounds instead of to time.
    pub fn is_round_bound(self) -> bool {
        matches!(
            self,
            FaultKind::RoundPartition | FaultKind::TwinsRound | FaultKind::RoundCrash
        )
    }
}

/// Caps that keep a plan small and every rule cheap to match.
const MAX_VIEWS: u64 = 64;
const MAX_WITHIN: u64 = 10_000;

/// Checks `nemesis.generate.rounds` and the round kinds against the cluster.
pub(super) fn validate_rounds(s: &Scenario) -> Result<(), Problem> {
    let Some(generate) = &s.nemesis.generate else {
        return Ok(());
    };
    let at = |field: &str| {
        let mut path: Vec<Segment> = vec![Key("nemesis".into()), Key("generate".into())];
        if field != "kinds" {
            path.push(Key("rounds".into()));
        }
        path.push(Key(field.into()));
        path
    };
    let round_kinds: Vec<FaultKind> = generate
        .kinds
        .iter()
        .copied()
        .filter(|k| k.is_round_bound())
        .collect();
    let Some(spec) = generate.rounds.as_ref() else {
        return check_kinds(s, &round_kinds, &RoundSpec::default(), &at);
    };
    if round_kinds.is_empty() {
        return Err(problem(
            vec![
                Key("nemesis".into()),
                Key("generate".into()),
                Key("rounds".into()),
            ],
            "no round kind in `kinds` uses it (round-partition, twins-round, round-crash)",
        ));
    }
    if !(1..=MAX_WITHIN).contains(&spec.within) {
        return Err(problem(
            at("within"),
            format!("must be in 1..={MAX_WITHIN}"),
        ));
    }
    if spec.span == 0 {
        return Err(problem(at("span"), "must be at least 1"));
    }
    if let Some(views) = spec.views
        && !(1..=MAX_VIEWS).contains(&views)
    {
        return Err(problem(at("views"), format!("must be in 1..={MAX_VIEWS}")));
    }
    if !(0.0..=1.0).contains(&spec.quorum_bias) {
        return Err(problem(at("quorum_bias"), "must be in [0, 1]"));
    }
    check_kinds(s, &round_kinds, spec, &at)
}

/// What each round kind listed needs of the spec and the cluster.
fn check_kinds(
    s: &Scenario,
    kinds: &[FaultKind],
    spec: &RoundSpec,
    at: &dyn Fn(&str) -> Vec<Segment>,
) -> Result<(), Problem> {
    let processes = s.cluster.n() + s.twinned().len();
    let [low, high] = spec.groups;
    let groups_fit = 2 <= low && low <= high && high <= processes;
    if !kinds.is_empty() && !groups_fit {
        return Err(problem(
            at("groups"),
            format!("give [min, max] with 2 <= min <= max <= {processes} (the replica processes)"),
        ));
    }
    for kind in kinds {
        let rounds = spec.within * spec.views_for(*kind);
        match kind {
            FaultKind::RoundPartition
                if spec.network_faults == 0 || u64::from(spec.network_faults) > rounds =>
            {
                return Err(problem(
                    at("network_faults"),
                    format!("must be in 1..={rounds} (distinct rounds: within × views)"),
                ));
            }
            FaultKind::RoundCrash
                if spec.process_faults == 0 || u64::from(spec.process_faults) > rounds =>
            {
                return Err(problem(
                    at("process_faults"),
                    format!("must be in 1..={rounds} (distinct rounds: within × views)"),
                ));
            }
            FaultKind::TwinsRound if s.twinned().is_empty() => {
                return Err(problem(
                    at("kinds"),
                    "twins-round partitions twinned replicas: give one `build: twin` under `replicas`",
                ));
            }
            FaultKind::TwinsRound if s.twins.as_ref().is_some_and(|t| t.partition) => {
                return Err(problem(
                    vec![Key("twins".into()), Key("partition".into())],
                    "twins-round draws the partitions per view: drop `partition` (the groups still route the links)",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::scenario::{ScenarioError, parse};
    use std::path::Path;

    const BASE: &str = "name: t\nworkload:\n  kind: kv\n  duration_s: 5\n";

    fn refused(extra: &str) -> ScenarioError {
        parse(&format!("{BASE}{extra}"), Path::new("t.yaml")).expect_err("refused")
    }

    #[test]
    fn round_kinds_parse_with_defaults_and_mix_with_timed_kinds() {
        let text = format!(
            "{BASE}nemesis:\n  generate:\n    kinds: [round-partition, round-crash, loss]\n"
        );
        let s = parse(&text, Path::new("t.yaml")).expect("parses");
        let generate = s.nemesis.generate.expect("generate");
        assert_eq!(generate.interval_ms, 1000);
        assert!(generate.rounds.is_none());
    }

    #[test]
    fn bad_round_parameters_name_their_file_line_and_field() {
        let e = refused(
            "nemesis:\n  generate:\n    kinds: [round-partition]\n    rounds:\n      within: 4\n      network_faults: 9\n",
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with("t.yaml:10: field `nemesis.generate.rounds.network_faults`"),
            "{shown}"
        );
        assert!(shown.contains("1..=4"), "{shown}");
        let e = refused(
            "nemesis:\n  generate:\n    kinds: [round-partition]\n    rounds:\n      groups: [1, 3]\n",
        );
        assert_eq!(e.line(), Some(9), "{e}");
        assert!(e.to_string().contains("rounds.groups"), "{e}");
        let e = refused("nemesis:\n  generate:\n    kinds: [loss]\n    rounds: { within: 3 }\n");
        assert_eq!(e.line(), Some(8), "{e}");
        assert!(e.to_string().contains("no round kind"), "{e}");
        let e = refused("nemesis:\n  generate:\n    kinds: [twins-round]\n");
        assert_eq!(e.line(), Some(7), "{e}");
        assert!(e.to_string().contains("`build: twin`"), "{e}");
        let e = refused(
            "nemesis:\n  generate:\n    kinds: [round-partition]\n    rounds:\n      quorum_bias: 2\n",
        );
        assert!(e.to_string().contains("quorum_bias"), "{e}");
        let e = refused(
            "nemesis:\n  generate:\n    kinds: [round-partition]\n    rounds: { span: 0 }\n",
        );
        assert!(e.to_string().contains("rounds.span"), "{e}");
        let e = refused(
            "nemesis:\n  generate:\n    kinds: [round-partition]\n    rounds: { rounds: 3 }\n",
        );
        assert!(matches!(e, ScenarioError::Parse { line: 8, .. }), "{e}");
    }

    #[test]
    fn twins_round_refuses_the_standing_partition() {
        let e = refused(
            "replicas:\n  0: { build: twin }\ntwins:\n  partition: true\nnemesis:\n  generate:\n    kinds: [twins-round]\n",
        );
        assert_eq!(e.line(), Some(8), "{e}");
        assert!(e.to_string().contains("twins.partition"), "{e}");
    }
}
