//! View stability: while nothing is wrong, no honest replica asks for a new view.
//!
//! A view change costs the cluster its throughput for at least a timeout, so one that starts
//! without cause is a bug even when every run stays safe and live: a timer that is not
//! cancelled when the request it guards executes, a primary that suspects itself, a timeout
//! that fires on an idle replica. Castro & Liskov start a view change only when a request has
//! waited too long; in a stretch with every replica up and honest and no network fault, none
//! should wait that long.
//!
//! The judged stretches are `window-liveness`'s windows (see `windows.rs`) narrowed to those
//! with no faulty replica at all: no Byzantine build in the run, none killed or paused, no
//! network fault. A window that follows a change of faults starts with the same grace
//! (`timeouts.max_view_change_ms`): a replica cut off before may still be climbing views. The
//! window at the run's start has no grace, since nothing was wrong before it. A view change an
//! honest replica starts inside the judged part (its `view-change-started` event) is a
//! violation, and so is one still unfinished when the judged part begins (started before, no
//! `view-change-completed` for that view or later since): after the grace, with nothing wrong,
//! a replica left alone in a higher view has stopped voting, and the cluster has silently lost
//! its tolerance of one more fault. Times are the history's, so both backends are judged alike.

use super::windows::{WindowSpec, fault_free_windows};
use super::{CheckOutcome, CheckResult, seconds};
use replica::events::{EventLine, ReplicaEvent};
use replica::{ReplicaId, View};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The check's name in the verdict.
pub const NAME: &str = "view-stability";

/// A stretch the check judged: every replica up and honest, no network fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StableWindow {
    /// Where judging started: the window's start, after the grace when a fault preceded it.
    pub from_ns: u64,
    pub to_ns: u64,
    /// The faults in force just before the window; empty at the run's start.
    pub faults_before: Vec<String>,
}

/// A view change an honest replica started inside a judged window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UncalledViewChange {
    pub replica: ReplicaId,
    pub at_ns: u64,
    pub from: View,
    pub to: View,
    /// The judged window it fell in.
    pub window_from_ns: u64,
    pub window_to_ns: u64,
    pub faults_before: Vec<String>,
    /// Started before the judged part and still unfinished when it began.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unfinished: bool,
}

/// The check's details, as `verdict.json` stores them and the report reads them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewStabilityDetails {
    pub grace_ms: u64,
    pub windows: Vec<StableWindow>,
    pub view_changes: Vec<UncalledViewChange>,
}

/// The parts of the fault-free windows this check judges.
fn judged_windows(spec: &WindowSpec) -> Vec<StableWindow> {
    fault_free_windows(spec)
        .into_iter()
        .filter(|(window, _)| window.faulty.is_empty())
        .filter_map(|(window, before)| {
            let grace = if before.is_empty() { 0 } else { spec.grace_ns };
            let from_ns = window.from_ns.saturating_add(grace);
            (from_ns < window.to_ns).then_some(StableWindow {
                from_ns,
                to_ns: window.to_ns,
                faults_before: before,
            })
        })
        .collect()
}

/// A view change an honest replica started, on the history's clock.
struct ViewChangeSpan {
    replica: ReplicaId,
    at_ns: u64,
    from: View,
    to: View,
    /// When it ended: its view's `view-change-completed`, a later view change, or a restart
    /// (the replica comes back from its log); `None` if it never did.
    ended_ns: Option<u64>,
}

impl ViewChangeSpan {
    fn unfinished_at(&self, at_ns: u64) -> bool {
        self.at_ns <= at_ns && self.ended_ns.is_none_or(|end| end > at_ns)
    }

    fn uncalled(&self, window: &StableWindow, unfinished: bool) -> UncalledViewChange {
        UncalledViewChange {
            replica: self.replica,
            at_ns: self.at_ns,
            from: self.from,
            to: self.to,
            window_from_ns: window.from_ns,
            window_to_ns: window.to_ns,
            faults_before: window.faults_before.clone(),
            unfinished,
        }
    }
}

/// Every view change the honest replicas started, in time order, read in one pass.
fn view_change_spans(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
    started_at_ns: u64,
) -> Vec<ViewChangeSpan> {
    let mut spans = Vec::new();
    for (replica, lines) in events.iter().filter(|(r, _)| honest.contains(r)) {
        let mut open: Option<ViewChangeSpan> = None;
        for line in lines {
            let t = line.time_ns.saturating_sub(started_at_ns);
            let ends = match line.event {
                ReplicaEvent::ViewChangeStarted { .. } | ReplicaEvent::Recovered { .. } => true,
                ReplicaEvent::ViewChangeCompleted { view, .. } => {
                    open.as_ref().is_some_and(|span| view >= span.to)
                }
                _ => false,
            };
            if ends && let Some(mut span) = open.take() {
                span.ended_ns = Some(t);
                spans.push(span);
            }
            if let ReplicaEvent::ViewChangeStarted { from, view } = line.event {
                open = Some(ViewChangeSpan {
                    replica: *replica,
                    at_ns: t,
                    from,
                    to: view,
                    ended_ns: None,
                });
            }
        }
        spans.extend(open);
    }
    spans.sort_by_key(|span| (span.at_ns, span.replica));
    spans
}

/// The check over a run: `events` are every replica's, `honest` the replicas to hold to it.
pub fn view_stability(
    spec: &WindowSpec,
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
    started_at_ns: u64,
) -> CheckResult {
    let windows = judged_windows(spec);
    let spans = view_change_spans(events, honest, started_at_ns);
    // Each view change once: where it started inside a judged window, or else the first
    // judged window it was still unfinished in.
    let view_changes: Vec<UncalledViewChange> = spans
        .iter()
        .filter_map(|span| {
            let started_in = windows
                .iter()
                .find(|w| w.from_ns <= span.at_ns && span.at_ns < w.to_ns);
            match started_in {
                Some(window) => Some(span.uncalled(window, false)),
                None => windows
                    .iter()
                    .find(|w| span.unfinished_at(w.from_ns))
                    .map(|window| span.uncalled(window, true)),
            }
        })
        .collect();
    let judged_ns: u64 = windows.iter().map(|w| w.to_ns - w.from_ns).sum();
    let summary = match view_changes.first() {
        None => format!(
            "no honest replica started a view change in {} window(s) with every replica up and no network fault ({} judged)",
            windows.len(),
            seconds(judged_ns)
        ),
        Some(first) if first.unfinished => format!(
            "{} view change(s) started or left unfinished with every replica up and honest and no network fault; first: r{} had started one from view {} to {} at {} and was still in it at {}, no longer voting",
            view_changes.len(),
            first.replica.0,
            first.from.0,
            first.to.0,
            seconds(first.at_ns),
            seconds(first.window_from_ns),
        ),
        Some(first) => format!(
            "{} view change(s) started or left unfinished with every replica up and honest and no network fault; first: r{} from view {} to {} at {} ({})",
            view_changes.len(),
            first.replica.0,
            first.from.0,
            first.to.0,
            seconds(first.at_ns),
            describe_before(&first.faults_before)
        ),
    };
    let outcome = if view_changes.is_empty() {
        CheckOutcome::Pass
    } else {
        CheckOutcome::Violation
    };
    let details = ViewStabilityDetails {
        grace_ms: spec.grace_ns / 1_000_000,
        windows,
        view_changes,
    };
    CheckResult {
        name: NAME.into(),
        outcome,
        summary,
        details: serde_json::to_value(details).unwrap_or_default(),
    }
}

/// What preceded a window, for a sentence.
pub fn describe_before(faults_before: &[String]) -> String {
    if faults_before.is_empty() {
        "no fault since the run started".into()
    } else {
        format!("after {}", faults_before.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::NemesisRecord;

    const S: u64 = 1_000_000_000;
    const EPOCH: u64 = 1_700_000_000 * S;

    fn spec<'a>(faults: &'a [NemesisRecord], byzantine: &[u32]) -> WindowSpec<'a> {
        super::super::windows::test_spec(faults, byzantine)
    }

    fn partition(start: u64, end: u64) -> NemesisRecord {
        NemesisRecord {
            id: "p1".into(),
            action: "partition".into(),
            start_ns: start * S,
            end_ns: Some(end * S),
            targets: vec![ReplicaId(0)],
            rules: Vec::new(),
        }
    }

    fn view_change(replica: u32, at_s: u64, to: u64) -> (ReplicaId, EventLine) {
        let line = EventLine {
            time_ns: EPOCH + at_s * S,
            replica: ReplicaId(replica),
            event: ReplicaEvent::ViewChangeStarted {
                from: View(to - 1),
                view: View(to),
            },
        };
        (ReplicaId(replica), line)
    }

    fn completed(replica: u32, at_ms: u64, view: u64) -> (ReplicaId, EventLine) {
        let line = EventLine {
            time_ns: EPOCH + at_ms * 1_000_000,
            replica: ReplicaId(replica),
            event: ReplicaEvent::ViewChangeCompleted {
                view: View(view),
                primary: ReplicaId((view % 4) as u32),
            },
        };
        (ReplicaId(replica), line)
    }

    fn judge(spec: &WindowSpec, changes: &[(ReplicaId, EventLine)]) -> CheckResult {
        let mut events: BTreeMap<ReplicaId, Vec<EventLine>> = BTreeMap::new();
        for (replica, line) in changes {
            events.entry(*replica).or_default().push(line.clone());
        }
        let honest: Vec<ReplicaId> = (0..4).map(ReplicaId).collect();
        view_stability(spec, &events, &honest, EPOCH)
    }

    fn found(result: &CheckResult) -> Vec<(u32, u64)> {
        let details: ViewStabilityDetails =
            serde_json::from_value(result.details.clone()).expect("typed details");
        details
            .view_changes
            .iter()
            .map(|v| (v.replica.0, v.at_ns / S))
            .collect()
    }

    #[test]
    fn a_view_change_in_a_run_without_faults_is_a_violation() {
        let result = judge(&spec(&[], &[]), &[view_change(2, 5, 1)]);
        assert_eq!(
            result.outcome,
            CheckOutcome::Violation,
            "{}",
            result.summary
        );
        assert_eq!(found(&result), vec![(2, 5)]);
        assert!(
            result.summary.contains("r2 from view 0 to 1"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn no_view_change_passes_and_says_how_much_was_judged() {
        let result = judge(&spec(&[], &[]), &[]);
        assert_eq!(result.outcome, CheckOutcome::Pass);
        assert!(
            result.summary.contains("39.000 s judged"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn view_changes_during_a_fault_and_its_grace_are_allowed_but_not_after() {
        let faults = [partition(5, 10)];
        // During the partition (7 s), in the grace after it (17 s), and after the grace (19 s).
        let result = judge(
            &spec(&faults, &[]),
            &[
                view_change(1, 7, 1),
                view_change(1, 17, 2),
                completed(1, 17_500, 2),
                view_change(3, 19, 1),
            ],
        );
        assert_eq!(found(&result), vec![(3, 19)], "{}", result.summary);
        assert!(result.summary.contains("after p1"), "{}", result.summary);
    }

    #[test]
    fn a_view_change_still_unfinished_when_the_grace_ends_is_a_violation() {
        // r2 goes alone to view 1 right after the partition and never completes it; r1's
        // view change in the same grace completes.
        let faults = [partition(5, 10)];
        let result = judge(
            &spec(&faults, &[]),
            &[
                view_change(1, 11, 1),
                completed(1, 11_500, 1),
                view_change(2, 11, 1),
            ],
        );
        assert_eq!(
            result.outcome,
            CheckOutcome::Violation,
            "{}",
            result.summary
        );
        assert_eq!(found(&result), vec![(2, 11)]);
        assert!(
            result.summary.contains(
                "r2 had started one from view 0 to 1 at 11.000 s and was still in it at 18.000 s"
            ),
            "{}",
            result.summary
        );
    }

    #[test]
    fn a_run_with_a_byzantine_replica_is_not_judged() {
        let result = judge(&spec(&[], &[3]), &[view_change(1, 5, 1)]);
        assert_eq!(result.outcome, CheckOutcome::Pass);
        assert!(
            result.summary.contains("in 0 window(s)"),
            "{}",
            result.summary
        );
    }
}
