//! Catch-up: a replica restarted into a working cluster gets back what the cluster made stable
//! while it was down.
//!
//! A replica that cannot catch up after a restart is invisible to every client-side check:
//! the other 2f+1 still serve every request. The cluster has silently lost its tolerance of
//! one more fault, which the next fault turns into an outage. On restart a replica asks its
//! peers for what it missed (`FETCH-STATE`); any that executed further answer with their stable
//! checkpoint and the committed certificates after it (Castro & Liskov's state transfer).
//!
//! The check judges two moments, each inside a window with no network fault and at most f
//! replicas faulty (`window-liveness`'s windows):
//! - every honest replica's restart (its `recovered` event);
//! - the end of the faults before a window, for every honest replica the window does not count
//!   as faulty and that was not itself down just before: one that ran on but was cut off (a
//!   partition, a link fault, a restart while the network was still broken) must catch up once
//!   the faults are gone. Judged only while the workload still runs (a deadline before the
//!   heal), so that new checkpoints keep telling it how far behind it is. A replica resuming
//!   from a pause is not judged: it first works through what queued up while it was frozen.
//!
//! At that moment the *target* is the highest checkpoint another honest replica had made stable.
//! Within the bound the replica must have reached the target: executed it, installed a
//! transferred state at or past it, or taken a checkpoint there. The bound (`catch_up_bound`)
//! is the peers' longest wait before they dial the replica again plus four state-transfer retry
//! periods. A moment whose window ends sooner than the bound is not judged; nor is one with
//! nothing to catch up on.

use super::windows::{WindowSpec, back_at, fault_free_windows};
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

/// Why a replica had to catch up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// It restarted (its `recovered` event).
    #[default]
    Restart,
    /// The faults before a window ended (`CatchUp::after_faults`) and it was behind.
    FaultsEnded,
}

/// One judged moment at which a replica was behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUp {
    pub replica: ReplicaId,
    #[serde(default)]
    pub cause: Cause,
    /// The faults that had just ended (`FaultsEnded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_faults: Vec<String>,
    /// When it came back or the faults ended, on the history's clock.
    pub at_ns: u64,
    /// What it had executed then.
    #[serde(alias = "recovered_seq")]
    pub executed_then: Seq,
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
    #[serde(alias = "restarts")]
    pub judged: Vec<CatchUp>,
}

impl CatchUp {
    /// What happened at `at_ns`, as a phrase after the replica's name.
    pub fn how(&self) -> String {
        match self.cause {
            Cause::Restart => "came back".into(),
            Cause::FaultsEnded => format!("was behind when {} ended", self.after_faults.join(", ")),
        }
    }
}

impl CatchUpDetails {
    /// The moments after which a replica did not reach its target in time.
    pub fn stuck(&self) -> impl Iterator<Item = &CatchUp> {
        self.judged.iter().filter(|r| r.caught_up_ns.is_none())
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

    /// The furthest it had got by `at_ns`.
    fn reached_by(&self, at_ns: u64) -> Seq {
        self.steps
            .iter()
            .filter(|(t, _)| *t <= at_ns)
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(Seq(0))
    }

    fn restarted_within(&self, from_ns: u64, to_ns: u64) -> bool {
        self.restarts
            .iter()
            .any(|(t, _)| from_ns <= *t && *t <= to_ns)
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
/// `bound` to catch up after each restart and after the faults before each window.
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
    let mut judged = Vec::new();
    for (&replica, own) in &progress {
        for &(at_ns, executed_then) in &own.restarts {
            let deadline_ns = at_ns.saturating_add(bound_ns);
            let in_window = windows
                .iter()
                .any(|(w, _)| w.from_ns <= at_ns && deadline_ns <= w.to_ns);
            if in_window {
                let moment = Moment {
                    replica,
                    cause: Cause::Restart,
                    after_faults: Vec::new(),
                    at_ns,
                    executed_then,
                    deadline_ns,
                };
                judged.extend(moment.judge(&progress));
            }
        }
    }
    for (window, before) in windows.iter().filter(|(_, before)| !before.is_empty()) {
        let deadline_ns = window.from_ns.saturating_add(bound_ns);
        if deadline_ns > window.to_ns || deadline_ns > spec.heal_ns {
            continue;
        }
        // A replica back from a kill is judged at its restart; one back from a pause first
        // works through everything that queued up while it was frozen, which no fixed bound
        // covers. So these moments judge the replicas that ran on, cut off.
        let back = back_at(spec, window.from_ns);
        for (&replica, own) in &progress {
            if window.faulty.contains(&replica)
                || back.contains(&replica)
                || own.restarted_within(window.from_ns, deadline_ns)
            {
                continue;
            }
            let moment = Moment {
                replica,
                cause: Cause::FaultsEnded,
                after_faults: before.clone(),
                at_ns: window.from_ns,
                executed_then: own.reached_by(window.from_ns),
                deadline_ns,
            };
            judged.extend(moment.judge(&progress));
        }
    }
    judged.sort_by_key(|r| (r.at_ns, r.replica));
    judge(judged, bound_ns)
}

/// A moment at which `replica` may be behind, before it is judged.
struct Moment {
    replica: ReplicaId,
    cause: Cause,
    after_faults: Vec<String>,
    at_ns: u64,
    executed_then: Seq,
    deadline_ns: u64,
}

impl Moment {
    /// `None` when no other honest replica had a stable checkpoint past where it was.
    fn judge(self, progress: &BTreeMap<ReplicaId, Progress>) -> Option<CatchUp> {
        let (target_holder, target) = progress
            .iter()
            .filter(|(other, _)| **other != self.replica)
            .filter_map(|(other, p)| p.stable_by(self.at_ns).map(|s| (*other, s)))
            .max_by_key(|(other, s)| (*s, std::cmp::Reverse(*other)))
            .filter(|(_, s)| *s > self.executed_then)?;
        let own = &progress[&self.replica];
        let (caught_up_ns, reached) = own.reached(self.at_ns, self.deadline_ns, target);
        Some(CatchUp {
            replica: self.replica,
            cause: self.cause,
            after_faults: self.after_faults,
            at_ns: self.at_ns,
            executed_then: self.executed_then,
            target,
            target_holder,
            caught_up_ns,
            deadline_ns: self.deadline_ns,
            reached: reached.max(self.executed_then),
        })
    }
}

fn judge(judged: Vec<CatchUp>, bound_ns: u64) -> CheckResult {
    let details = CatchUpDetails {
        bound_ms: bound_ns / 1_000_000,
        judged,
    };
    let stuck: Vec<&CatchUp> = details.stuck().collect();
    let (outcome, summary) = match stuck.first() {
        None => (
            CheckOutcome::Pass,
            format!(
                "{} time(s) a replica was behind a stable checkpoint (restarts, ends of faults), each caught up within {}",
                details.judged.len(),
                seconds(bound_ns)
            ),
        ),
        Some(first) => (
            CheckOutcome::Violation,
            format!(
                "{} time(s) a replica did not catch up within {}; first: r{} {} at {} with seq {} while r{} had seq {} stable, and reached only seq {}",
                stuck.len(),
                seconds(bound_ns),
                first.replica.0,
                first.how(),
                seconds(first.at_ns),
                first.executed_then.0,
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
        assert_eq!(details.judged[0].target, Seq(128));
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
        assert_eq!(details.judged[0].caught_up_ns, Some(13 * S));
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
        assert!(details.judged.is_empty(), "{details:?}");
    }

    fn partition(from_s: u64, to_s: u64) -> NemesisRecord {
        NemesisRecord {
            id: "p1".into(),
            action: "partition".into(),
            start_ns: from_s * S,
            end_ns: Some(to_s * S),
            targets: vec![ReplicaId(2)],
            rules: Vec::new(),
        }
    }

    fn executed(replica: u32, at_s: u64, seq: u64) -> EventLine {
        let event = ReplicaEvent::CheckpointTaken {
            seq: Seq(seq),
            state_digest: String::new(),
        };
        line(replica, at_s, event)
    }

    #[test]
    fn a_replica_left_behind_by_a_partition_must_catch_up_once_it_ends() {
        // r2 is cut off from 5 s to 8 s while r0 makes seq 128 stable; it never catches up.
        let lines = vec![executed(2, 4, 40), stable(0, 7, 128), stable(0, 20, 192)];
        let (result, details) = judge_lines(&spec(&[partition(5, 8)]), lines);
        assert_eq!(
            result.outcome,
            CheckOutcome::Violation,
            "{}",
            result.summary
        );
        let stuck = &details.judged[0];
        assert_eq!(stuck.replica, ReplicaId(2));
        assert_eq!(stuck.cause, Cause::FaultsEnded);
        assert_eq!((stuck.executed_then, stuck.target), (Seq(40), Seq(128)));
        assert!(
            result
                .summary
                .contains("r2 was behind when p1 (partition r2) ended at 8.000 s with seq 40"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn a_replica_that_catches_up_after_a_partition_passes_and_late_ends_are_not_judged() {
        let caught_up = vec![executed(2, 4, 40), stable(0, 7, 128), transfer(2, 10, 128)];
        let (result, details) = judge_lines(&spec(&[partition(5, 8)]), caught_up);
        assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
        assert_eq!(details.judged[0].caught_up_ns, Some(10 * S));
        // Ends 3 s before the heal (30 s): the workload would stop before the 5 s bound.
        let stuck = vec![executed(2, 4, 40), stable(0, 7, 128)];
        let (result, details) = judge_lines(&spec(&[partition(5, 27)]), stuck);
        assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
        assert!(details.judged.is_empty(), "{details:?}");
    }

    #[test]
    fn a_replica_resuming_from_a_pause_is_not_judged_when_it_resumes() {
        let pause = NemesisRecord {
            action: "pause".into(),
            ..partition(5, 8)
        };
        let lines = vec![executed(2, 4, 40), stable(0, 7, 128), stable(0, 20, 192)];
        let (result, details) = judge_lines(&spec(&[pause]), lines);
        assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
        assert!(details.judged.is_empty(), "{details:?}");
    }
}
