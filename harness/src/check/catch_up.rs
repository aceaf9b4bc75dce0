//! Catch-up: a replica restarted into a working cluster gets back what the cluster made stable
//! while it was down.
//!
//! A replica that cannot catch up after a restart is invisible to every client-side check:
//! the other 2f+1 still serve every request. The cluster has silently lost its tolerance of
//! one more fault, which the next fault turns into an outage. On restart a replica asks its
//! peers for what it missed (`FETCH-STATE`); any that executed further answer with their stable
//! checkpoint and the committed certificates after it (Castro & Liskov's state transfer).
//!
//! The check: for every honest replica's restart (its `recovered` event) inside a window with
//! no network fault and at most f replicas faulty (`window-liveness`'s windows), the *target*
//! is the highest checkpoint another honest replica had made stable by then. Within the bound
//! the replica must have reached the target: executed it, installed a transferred state at or
//! past it, or taken a checkpoint there. The bound (`catch_up_bound`) is the peers' longest
//! wait before they dial the restarted replica again plus four state-transfer retry periods. A
//! restart whose window ends sooner than the bound is not judged; nor is one with nothing to
//! catch up on.

use super::windows::{WindowSpec, fault_free_windows};
use super::{CheckOutcome, CheckResult, seconds};
use replica::events::{EventLine, ReplicaEvent};
use replica::{ReplicaId, Seq};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The check's name in the verdict.
pub const NAME: &str = "catch-up";

/// How long a restarted replica may take to catch up, from the cluster's state-transfer retry
/// period (`timeouts.state_transfer_retry_ms`).
pub fn catch_up_bound(state_transfer_retry: Duration) -> Duration {
    replica::node::outbound::MAX_BACKOFF + 4 * state_transfer_retry
}

/// One judged restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    pub replica: ReplicaId,
    /// When it came back (its `recovered` event), on the history's clock.
    pub at_ns: u64,
    /// What it had executed when it came back.
    pub recovered_seq: Seq,
    /// The highest checkpoint another honest replica had made stable by then, and which one.
    pub target: Seq,
    pub target_holder: ReplicaId,
    /// When it reached the target, if it did before the deadline.
    pub caught_up_ns: Option<u64>,
    pub deadline_ns: u64,
    /// The furthest it got by the deadline.
    pub reached: Seq,
}

/// The check's details, as `verdict.json` stores them and the report reads them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUpDetails {
    pub bound_ms: u64,
    pub restarts: Vec<Restart>,
}

impl CatchUpDetails {
    /// The restarts that did not reach their target in time.
    pub fn stuck(&self) -> impl Iterator<Item = &Restart> {
        self.restarts.iter().filter(|r| r.caught_up_ns.is_none())
    }
}

/// How far one replica had got, at every event that moved it.
#[derive(Default)]
struct Progress {
    /// (time on the history's clock, seq reached), in time order.
    steps: Vec<(u64, Seq)>,
    /// (time, seq) of each checkpoint it made stable.
    stable: Vec<(u64, Seq)>,
    restarts: Vec<(u64, Seq)>,
}

impl Progress {
    fn of(lines: &[EventLine], started_at_ns: u64) -> Progress {
        let mut progress = Progress::default();
        for line in lines {
            let at = line.time_ns.saturating_sub(started_at_ns);
            let reached = match &line.event {
                ReplicaEvent::Execute { seq, .. } | ReplicaEvent::CheckpointTaken { seq, .. } => {
                    *seq
                }
                ReplicaEvent::StateTransfer { to_seq, .. } => *to_seq,
                ReplicaEvent::CheckpointStable { seq, .. } => {
                    progress.stable.push((at, *seq));
                    continue;
                }
                ReplicaEvent::Recovered { last_executed, .. } => {
                    progress.restarts.push((at, *last_executed));
                    *last_executed
                }
                _ => continue,
            };
            progress.steps.push((at, reached));
        }
        progress
    }

    fn stable_by(&self, at_ns: u64) -> Option<Seq> {
        self.stable
            .iter()
            .filter(|(t, _)| *t <= at_ns)
            .map(|(_, s)| *s)
            .max()
    }

    /// The first time at or after `from_ns` that it had reached `target`, and the furthest it
    /// got by `until_ns`.
    fn reached(&self, from_ns: u64, until_ns: u64, target: Seq) -> (Option<u64>, Seq) {
        let mut furthest = Seq(0);
        for &(t, seq) in self.steps.iter().filter(|(t, _)| *t <= until_ns) {
            if t < from_ns {
                continue;
            }
            furthest = furthest.max(seq);
            if seq >= target {
                return (Some(t), furthest);
            }
        }
        (None, furthest)
    }
}

/// The check over a run: `honest` replicas' events, judged in `spec`'s fault-free windows with
/// `bound` to catch up after each restart.
pub fn catch_up(
    spec: &WindowSpec,
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
    started_at_ns: u64,
    bound: Duration,
) -> CheckResult {
    let bound_ns = bound.as_nanos() as u64;
    let windows = fault_free_windows(spec);
    let progress: BTreeMap<ReplicaId, Progress> = events
        .iter()
        .filter(|(replica, _)| honest.contains(replica))
        .map(|(replica, lines)| (*replica, Progress::of(lines, started_at_ns)))
        .collect();
    let mut restarts = Vec::new();
    for (&replica, own) in &progress {
        for &(at_ns, recovered_seq) in &own.restarts {
            let deadline_ns = at_ns.saturating_add(bound_ns);
            let in_window = windows
                .iter()
                .any(|(w, _)| w.from_ns <= at_ns && deadline_ns <= w.to_ns);
            if !in_window {
                continue;
            }
            let Some((target_holder, target)) = progress
                .iter()
                .filter(|(other, _)| **other != replica)
                .filter_map(|(other, p)| p.stable_by(at_ns).map(|s| (*other, s)))
                .max_by_key(|(other, s)| (*s, std::cmp::Reverse(*other)))
                .filter(|(_, s)| *s > recovered_seq)
            else {
                continue;
            };
            let (caught_up_ns, reached) = own.reached(at_ns, deadline_ns, target);
            restarts.push(Restart {
                replica,
                at_ns,
                recovered_seq,
                target,
                target_holder,
                caught_up_ns,
                deadline_ns,
                reached: reached.max(recovered_seq),
            });
        }
    }
    restarts.sort_by_key(|r| (r.at_ns, r.replica));
    judge(restarts, bound_ns)
}

fn judge(restarts: Vec<Restart>, bound_ns: u64) -> CheckResult {
    let details = CatchUpDetails {
        bound_ms: bound_ns / 1_000_000,
        restarts,
    };
    let stuck: Vec<&Restart> = details.stuck().collect();
    let (outcome, summary) = match stuck.first() {
        None => (
            CheckOutcome::Pass,
            format!(
                "{} restart(s) behind a stable checkpoint, each caught up within {}",
                details.restarts.len(),
                seconds(bound_ns)
            ),
        ),
        Some(first) => (
            CheckOutcome::Violation,
            format!(
                "{} restart(s) did not catch up within {}; first: r{} came back at {} with seq {} while r{} had seq {} stable, and reached only seq {}",
                stuck.len(),
                seconds(bound_ns),
                first.replica.0,
                seconds(first.at_ns),
                first.recovered_seq.0,
                first.target_holder.0,
                first.target.0,
                first.reached.0
            ),
        ),
    };
    CheckResult {
        name: NAME.into(),
        outcome,
        summary,
        details: serde_json::to_value(details).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::NemesisRecord;
    use replica::View;

    const S: u64 = 1_000_000_000;
    const EPOCH: u64 = 1_700_000_000 * S;

    fn spec(faults: &[NemesisRecord]) -> WindowSpec<'_> {
        super::super::windows::test_spec(faults, &[])
    }

    fn line(replica: u32, at_s: u64, event: ReplicaEvent) -> EventLine {
        EventLine {
            time_ns: EPOCH + at_s * S,
            replica: ReplicaId(replica),
            event,
        }
    }

    fn stable(replica: u32, at_s: u64, seq: u64) -> EventLine {
        let state_digest = String::new();
        line(
            replica,
            at_s,
            ReplicaEvent::CheckpointStable {
                seq: Seq(seq),
                state_digest,
            },
        )
    }

    fn recovered(replica: u32, at_s: u64, last_executed: u64) -> EventLine {
        let event = ReplicaEvent::Recovered {
            view: View(0),
            stable_seq: Seq(0),
            last_executed: Seq(last_executed),
            records: 0,
        };
        line(replica, at_s, event)
    }

    fn transfer(replica: u32, at_s: u64, to_seq: u64) -> EventLine {
        let event = ReplicaEvent::StateTransfer {
            from_seq: Seq(0),
            to_seq: Seq(to_seq),
            source: ReplicaId(0),
        };
        line(replica, at_s, event)
    }

    fn judge_lines(spec: &WindowSpec, lines: Vec<EventLine>) -> (CheckResult, CatchUpDetails) {
        let mut events: BTreeMap<ReplicaId, Vec<EventLine>> = BTreeMap::new();
        for l in lines {
            events.entry(l.replica).or_default().push(l);
        }
        let honest: Vec<ReplicaId> = (0..4).map(ReplicaId).collect();
        let result = catch_up(spec, &events, &honest, EPOCH, Duration::from_secs(5));
        let details = serde_json::from_value(result.details.clone()).expect("typed details");
        (result, details)
    }

    #[test]
    fn a_restart_that_never_catches_up_is_a_violation() {
        let lines = vec![stable(0, 10, 128), recovered(2, 12, 40), stable(0, 20, 192)];
        let (result, details) = judge_lines(&spec(&[]), lines);
        assert_eq!(
            result.outcome,
            CheckOutcome::Violation,
            "{}",
            result.summary
        );
        assert_eq!(details.restarts[0].target, Seq(128));
        assert!(
            result
                .summary
                .contains("r2 came back at 12.000 s with seq 40 while r0 had seq 128"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn a_state_transfer_past_the_target_in_time_passes() {
        let lines = vec![
            stable(0, 10, 128),
            recovered(2, 12, 40),
            transfer(2, 13, 128),
        ];
        let (result, details) = judge_lines(&spec(&[]), lines);
        assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
        assert_eq!(details.restarts[0].caught_up_ns, Some(13 * S));
    }

    #[test]
    fn catching_up_after_the_bound_is_too_late() {
        // Back at 12 s, caught up at 18 s: a second past the bound.
        let lines = vec![
            stable(0, 10, 128),
            recovered(2, 12, 40),
            transfer(2, 18, 128),
        ];
        let (result, _) = judge_lines(&spec(&[]), lines);
        assert_eq!(
            result.outcome,
            CheckOutcome::Violation,
            "{}",
            result.summary
        );
    }

    #[test]
    fn restarts_with_nothing_to_catch_up_or_under_a_network_fault_are_not_judged() {
        let partition = NemesisRecord {
            id: "p1".into(),
            action: "partition".into(),
            start_ns: 25 * S,
            end_ns: Some(29 * S),
            targets: vec![ReplicaId(2)],
            rules: Vec::new(),
        };
        let lines = vec![
            stable(0, 10, 128),
            recovered(1, 12, 128),
            recovered(2, 26, 40),
        ];
        let (result, details) = judge_lines(&spec(&[partition]), lines);
        assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
        assert!(details.restarts.is_empty(), "{details:?}");
    }
}
