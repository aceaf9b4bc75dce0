//! No crash: an honest replica process runs until the nemesis kills it or the harness stops it.
//!
//! A replica that panics, refuses to recover from its own log, or exits on an error is a bug,
//! and one the other checks can miss: with at most f replicas gone the cluster stays safe and
//! live, and a replica that is simply absent contradicts nobody. The supervisor notices every
//! process that ended on its own (`processes::ReplicaExit`, kept in `timeline.json`); any of
//! an honest replica is a violation. Simulated replicas are not processes: the check is
//! skipped there.

use super::{CheckOutcome, CheckResult};
use crate::backend::Backend;
use crate::processes::ReplicaExit;
use replica::ReplicaId;

/// The check's name in the verdict.
pub const NAME: &str = "no-crash";

/// The check over the exits a run's supervisor recorded.
pub fn no_crash(backend: Backend, exits: &[ReplicaExit], honest: &[ReplicaId]) -> CheckResult {
    if backend == Backend::Sim {
        return CheckResult {
            name: NAME.into(),
            outcome: CheckOutcome::Skipped,
            summary: "simulated replicas are not processes".into(),
            details: serde_json::Value::Null,
        };
    }
    let crashed: Vec<&ReplicaExit> = exits
        .iter()
        .filter(|e| honest.contains(&e.replica))
        .collect();
    let (outcome, summary) = match crashed.first() {
        None => (
            CheckOutcome::Pass,
            format!(
                "every honest replica process ran until it was killed or stopped ({} honest replicas)",
                honest.len()
            ),
        ),
        Some(first) => (
            CheckOutcome::Violation,
            format!(
                "{} honest replica process(es) ended on their own; first: {} with {}: {}",
                crashed.len(),
                first.process,
                first.status,
                first
                    .stderr_tail
                    .last()
                    .map(String::as_str)
                    .unwrap_or("(no stderr)")
            ),
        ),
    };
    CheckResult {
        name: NAME.into(),
        outcome,
        summary,
        details: serde_json::to_value(crashed).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(replica: u32) -> ReplicaExit {
        ReplicaExit {
            replica: ReplicaId(replica),
            process: format!("replica {replica}"),
            status: "exit status: 1".into(),
            stderr_tail: vec!["error: write-ahead log: snapshot is damaged".into()],
        }
    }

    fn honest() -> Vec<ReplicaId> {
        (1..4).map(ReplicaId).collect()
    }

    #[test]
    fn an_honest_replica_that_exits_on_its_own_is_a_violation() {
        let result = no_crash(Backend::Real, &[exit(3)], &honest());
        assert_eq!(result.outcome, CheckOutcome::Violation);
        assert!(
            result
                .summary
                .contains("replica 3 with exit status: 1: error: write-ahead log"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn a_byzantine_replica_s_exit_and_a_quiet_run_pass() {
        assert_eq!(
            no_crash(Backend::Real, &[exit(0)], &honest()).outcome,
            CheckOutcome::Pass
        );
        assert_eq!(
            no_crash(Backend::Real, &[], &honest()).outcome,
            CheckOutcome::Pass
        );
    }

    #[test]
    fn simulated_runs_are_not_judged() {
        assert_eq!(
            no_crash(Backend::Sim, &[], &honest()).outcome,
            CheckOutcome::Skipped
        );
    }
}
