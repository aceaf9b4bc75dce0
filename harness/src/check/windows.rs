//! Window liveness: the cluster makes progress in every fault-free stretch of the run, not
//! only after the final heal.
//!
//! The run (from the workload's start to the end of the liveness probe) is cut at every fault
//! transition of `nemesis.jsonl` (a fault starting or ending, a restart, a resume, the heal).
//! A piece between two transitions is a *window*; it is judged when
//!
//! - no network fault is in force in it: no partition or link fault of the nemesis, and none
//!   of the scenario's standing `network.rules` (in force from the start to the heal; twin
//!   separation is not among them), and
//! - at most f replicas are faulty in it: the non-honest builds for the whole run, plus the
//!   replicas killed (until their restart) or paused (until their resume).
//!
//! Every window starts with a grace: any change of the fault set may need a view change, and
//! after a long fault the doubling view-change timer may sit at its cap, so the grace is the
//! cluster's `timeouts.max_view_change_ms`. In the rest of the window, a *stall* is a stretch
//! of at least `checks.liveness_bound_ms` in which an honest operation was waiting (invoked,
//! not yet answered) and no honest operation completed (`ok` or `fail`). A window shorter than
//! the grace plus the bound can hold no stall. All times are the history's (ns since the run
//! started; virtual time in simulated runs), so the check is the same for both backends.

use super::{CheckOutcome, CheckResult};
use crate::nemesis::NemesisRecord;
use replica::{ClientId, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use workloads::history::{EventType, HistoryEvent};

/// What the window computation needs besides the history.
#[derive(Clone, Debug)]
pub struct WindowSpec<'a> {
    /// `nemesis.jsonl`.
    pub faults: &'a [NemesisRecord],
    /// Replicas that run a non-honest build (faulty for the whole run).
    pub byzantine: BTreeSet<ReplicaId>,
    pub f: usize,
    /// The scenario's standing `network.rules` (in force from the start until `heal_ns`).
    pub standing_rules: usize,
    /// The judged span: the workload's start and the probe's end.
    pub from_ns: u64,
    pub to_ns: u64,
    pub heal_ns: u64,
    pub bound_ns: u64,
    pub grace_ns: u64,
    pub clients: &'a [ClientId],
}

/// A judged window: no network fault, at most f replicas faulty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from_ns: u64,
    pub to_ns: u64,
    /// Faulty replicas in the window (Byzantine builds and replicas down), at most f.
    pub faulty: Vec<ReplicaId>,
}

/// A stall inside a judged window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// From the first moment an honest operation was waiting (after the grace) ...
    pub from_ns: u64,
    /// ... to the next completion or the window's end.
    pub to_ns: u64,
    pub window_from_ns: u64,
    pub window_to_ns: u64,
    /// The faults in force just before the window started (those that ended at its start
    /// included); empty at the run's start.
    pub faults_before: Vec<String>,
    /// Faulty replicas during the window (at most f).
    pub faulty: Vec<ReplicaId>,
    /// Honest operations invoked in the stall (none completed).
    pub invoked: u64,
    /// Honest operations already waiting when the stall started.
    pub waiting_at_start: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Network,
    Down(ReplicaId),
}

/// One fault as an interval of time.
#[derive(Clone, Debug)]
struct Span {
    label: String,
    kind: Kind,
    from: u64,
    to: u64,
}

/// One honest operation: invoked, answered (any completion, `info` too), completed (`ok`/`fail`).
pub(super) struct Op {
    pub(super) invoke: u64,
    pub(super) end: Option<u64>,
}

fn label(record: &NemesisRecord) -> String {
    if record.targets.is_empty() {
        format!("{} ({})", record.id, record.action)
    } else {
        let targets: Vec<String> = record.targets.iter().map(|r| format!("r{}", r.0)).collect();
        format!("{} ({} {})", record.id, record.action, targets.join(","))
    }
}

/// The faults as intervals, and every instant the fault set changed.
fn spans(spec: &WindowSpec) -> (Vec<Span>, BTreeSet<u64>) {
    let open_end = spec.to_ns.max(spec.heal_ns);
    let mut spans = Vec::new();
    let mut transitions: BTreeSet<u64> = BTreeSet::new();
    let undone_by = |action: &str| match action {
        "kill" => Some("restart"),
        "pause" => Some("resume"),
        _ => None,
    };
    for record in spec.faults {
        transitions.insert(record.start_ns);
        if let Some(end) = record.end_ns {
            transitions.insert(end);
        }
        match record.action.as_str() {
            // Instantaneous: they end a kill or a pause (below), nothing else.
            "restart" | "resume" => {}
            "kill" | "pause" => {
                let undo = undone_by(&record.action).unwrap_or_default();
                for &target in &record.targets {
                    // The first restart (resume) of the target after the fault started ends
                    // it even when the fault itself stayed open until the heal.
                    let undone = spec
                        .faults
                        .iter()
                        .filter(|r| r.action == undo && r.targets.contains(&target))
                        .map(|r| r.start_ns)
                        .filter(|t| *t >= record.start_ns)
                        .min();
                    let end = [record.end_ns, undone].into_iter().flatten().min();
                    spans.push(Span {
                        label: label(record),
                        kind: Kind::Down(target),
                        from: record.start_ns,
                        to: end.unwrap_or(open_end),
                    });
                }
            }
            // Partitions, link faults and anything this build does not know: network faults.
            _ => spans.push(Span {
                label: label(record),
                kind: Kind::Network,
                from: record.start_ns,
                to: record.end_ns.unwrap_or(open_end),
            }),
        }
    }
    if spec.standing_rules > 0 {
        spans.push(Span {
            label: format!("network.rules ({} standing)", spec.standing_rules),
            kind: Kind::Network,
            from: 0,
            to: spec.heal_ns,
        });
        transitions.insert(spec.heal_ns);
    }
    transitions.insert(spec.from_ns);
    transitions.insert(spec.heal_ns);
    (spans, transitions)
}

/// The replicas whose kill or pause ended at `at_ns` (restarted or resumed then).
pub(super) fn back_at(spec: &WindowSpec, at_ns: u64) -> BTreeSet<ReplicaId> {
    spans(spec)
        .0
        .iter()
        .filter_map(|s| match s.kind {
            Kind::Down(r) if s.to == at_ns && s.from < at_ns => Some(r),
            _ => None,
        })
        .collect()
}

/// The judged windows (before the grace is taken off) and what was in force just before each.
pub(super) fn fault_free_windows(spec: &WindowSpec) -> Vec<(Window, Vec<String>)> {
    let (spans, transitions) = spans(spec);
    let mut cuts: Vec<u64> = transitions
        .into_iter()
        .filter(|t| *t > spec.from_ns && *t < spec.to_ns)
        .collect();
    cuts.insert(0, spec.from_ns);
    cuts.push(spec.to_ns);
    let mut out = Vec::new();
    for pair in cuts.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        if to <= from {
            continue;
        }
        let in_force: Vec<&Span> = spans
            .iter()
            .filter(|s| s.from <= from && from < s.to)
            .collect();
        if in_force.iter().any(|s| s.kind == Kind::Network) {
            continue;
        }
        let mut faulty = spec.byzantine.clone();
        faulty.extend(in_force.iter().filter_map(|s| match s.kind {
            Kind::Down(r) => Some(r),
            Kind::Network => None,
        }));
        if faulty.len() > spec.f {
            continue;
        }
        let before: Vec<String> = if from == spec.from_ns {
            Vec::new()
        } else {
            let set: BTreeSet<String> = spans
                .iter()
                .filter(|s| s.from < from && from <= s.to)
                .map(|s| s.label.clone())
                .collect();
            set.into_iter().collect()
        };
        out.push((
            Window {
                from_ns: from,
                to_ns: to,
                faulty: faulty.into_iter().collect(),
            },
            before,
        ));
    }
    out
}

/// The honest operations, in invocation order, and the honest completions (`ok`/`fail`).
pub(super) fn operations(history: &[HistoryEvent], clients: &[ClientId]) -> (Vec<Op>, Vec<u64>) {
    let honest: BTreeSet<ClientId> = clients.iter().copied().collect();
    let mut open: BTreeMap<ClientId, usize> = BTreeMap::new();
    let mut ops: Vec<Op> = Vec::new();
    let mut completions = Vec::new();
    let mut events: Vec<&HistoryEvent> = history
        .iter()
        .filter(|e| honest.contains(&e.process))
        .collect();
    // Stable: events of one instant keep the file's order.
    events.sort_by_key(|e| e.time_ns);
    for event in events {
        match event.kind {
            EventType::Invoke => {
                open.insert(event.process, ops.len());
                ops.push(Op {
                    invoke: event.time_ns,
                    end: None,
                });
            }
            kind => {
                if let Some(index) = open.remove(&event.process) {
                    ops[index].end = Some(event.time_ns);
                }
                if matches!(kind, EventType::Ok | EventType::Fail) {
                    completions.push(event.time_ns);
                }
            }
        }
    }
    (ops, completions)
}

/// The stalls of the run, and the windows judged.
pub fn stalls(spec: &WindowSpec, history: &[HistoryEvent]) -> (Vec<Window>, Vec<Stall>) {
    let (ops, completions) = operations(history, spec.clients);
    let mut judged = Vec::new();
    let mut stalls = Vec::new();
    for (window, before) in fault_free_windows(spec) {
        if let Some(found) = stalls_in(spec, &window, &before, &ops, &completions) {
            stalls.extend(found);
            judged.push(window);
        }
    }
    (judged, stalls)
}

/// The stalls of `ops` in one window, judged by `completions` alone; `None` if the window is
/// too short to judge.
pub(super) fn stalls_in(
    spec: &WindowSpec,
    window: &Window,
    before: &[String],
    ops: &[Op],
    completions: &[u64],
) -> Option<Vec<Stall>> {
    let start = window.from_ns.saturating_add(spec.grace_ns);
    let end = window.to_ns;
    if end <= start || end - start < spec.bound_ns {
        return None;
    }
    let mut cuts = vec![start];
    cuts.extend(
        completions
            .iter()
            .copied()
            .filter(|t| *t > start && *t < end),
    );
    cuts.push(end);
    let mut stalls = Vec::new();
    for gap in cuts.windows(2) {
        let (s, e) = (gap[0], gap[1]);
        if e - s < spec.bound_ns {
            continue;
        }
        // Operations waiting at some point of (s, e): invoked before e, unanswered at s.
        let waiting: Vec<&Op> = ops
            .iter()
            .filter(|op| op.invoke < e && op.end.is_none_or(|t| t > s))
            .collect();
        let Some(demand) = waiting.iter().map(|op| op.invoke.max(s)).min() else {
            continue;
        };
        if e - demand < spec.bound_ns {
            continue;
        }
        stalls.push(Stall {
            from_ns: demand,
            to_ns: e,
            window_from_ns: window.from_ns,
            window_to_ns: window.to_ns,
            faults_before: before.to_vec(),
            faulty: window.faulty.clone(),
            invoked: waiting.iter().filter(|op| op.invoke >= demand).count() as u64,
            waiting_at_start: waiting.iter().filter(|op| op.invoke < demand).count() as u64,
        });
    }
    Some(stalls)
}

fn secs(ns: u64) -> String {
    format!("{:.1} s", ns as f64 / 1e9)
}

/// The check's result for a run: stalls of the whole cluster, and honest clients starved while
/// others were served (`starvation.rs`).
pub fn window_liveness(spec: &WindowSpec, history: &[HistoryEvent]) -> CheckResult {
    let (judged, found) = stalls(spec, history);
    let starved = super::starved(spec, history);
    let judged_ns: u64 = judged
        .iter()
        .map(|w| w.to_ns - (w.from_ns + spec.grace_ns))
        .sum();
    let details = serde_json::json!({
        "bound_ms": spec.bound_ns / 1_000_000,
        "grace_ms": spec.grace_ns / 1_000_000,
        "grace_from": "cluster.timeouts.max_view_change_ms",
        "f": spec.f,
        "byzantine": spec.byzantine,
        "windows": judged,
        "stalls": found,
        "starved": starved,
    });
    let bound = secs(spec.bound_ns);
    let grace = secs(spec.grace_ns);
    let outcome = if found.is_empty() && starved.is_empty() {
        CheckOutcome::Pass
    } else {
        CheckOutcome::Violation
    };
    let summary = if let Some(first) = found.first() {
        format!(
            "{} stall(s) of at least {bound} with at most f faulty and no network fault; first {}–{} ({}): {} operations invoked, {} waiting, none completed",
            found.len(),
            secs(first.from_ns),
            secs(first.to_ns),
            after(&first.faults_before),
            first.invoked,
            first.waiting_at_start
        )
    } else if let Some(first) = starved.first() {
        format!(
            "{} time(s) an honest client waited at least {bound} while others were served, with at most f faulty and no network fault; first client {} {}–{} ({}), {} other operations completed meanwhile",
            starved.len(),
            first.client.0,
            secs(first.stall.from_ns),
            secs(first.stall.to_ns),
            after(&first.stall.faults_before),
            first.others_completed
        )
    } else {
        format!(
            "no stall of {bound} and no client starved in {} fault-free windows ({} judged after a {grace} grace per fault change)",
            judged.len(),
            secs(judged_ns)
        )
    };
    CheckResult {
        name: NAME.into(),
        outcome,
        summary,
        details,
    }
}

fn after(faults_before: &[String]) -> String {
    if faults_before.is_empty() {
        "from the run's start".to_string()
    } else {
        format!("after {}", faults_before.join(", "))
    }
}

/// The check's name in the verdict.
pub const NAME: &str = "window-liveness";

/// Reads `nemesis.jsonl` (absent: no faults).
pub fn read_nemesis(path: &Path) -> anyhow::Result<Vec<NemesisRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("{}:{}: malformed line: {e}", path.display(), i + 1))
        })
        .collect()
}

/// A run from 1 s to 40 s, healed at 30 s, f = 1, with `faults` and the `byzantine` replicas:
/// the tests' spec for the checks judged in these windows.
#[cfg(test)]
pub(super) fn test_spec<'a>(faults: &'a [NemesisRecord], byzantine: &[u32]) -> WindowSpec<'a> {
    const S: u64 = 1_000_000_000;
    WindowSpec {
        faults,
        byzantine: byzantine.iter().map(|r| ReplicaId(*r)).collect(),
        f: 1,
        standing_rules: 0,
        from_ns: S,
        to_ns: 40 * S,
        heal_ns: 30 * S,
        bound_ns: 10 * S,
        grace_ns: 8 * S,
        clients: &[ClientId(0)],
    }
}

/// A history event of `process` at `at_ms`, for the tests of the checks judged in these windows.
#[cfg(test)]
pub(super) fn test_event(process: u32, kind: EventType, at_ms: u64) -> HistoryEvent {
    HistoryEvent {
        process: ClientId(process),
        kind,
        f: workloads::history::Function::Get,
        key: "k".into(),
        value: None,
        expected: None,
        swapped: None,
        time_ns: at_ms * 1_000_000,
        request: replica::Timestamp(at_ms),
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::test_event as event;
    use super::*;

    const S: u64 = 1_000_000_000;

    fn record(
        id: &str,
        action: &str,
        start: u64,
        end: Option<u64>,
        targets: &[u32],
    ) -> NemesisRecord {
        NemesisRecord {
            id: id.into(),
            action: action.into(),
            start_ns: start * S,
            end_ns: end.map(|e| e * S),
            targets: targets.iter().map(|r| ReplicaId(*r)).collect(),
            rules: Vec::new(),
        }
    }

    /// One client completing an operation every 100 ms in [from, to) s, then one operation
    /// invoked at `to` and answered (ok) at `answered`.
    fn busy(from: u64, to: u64, answered: u64) -> Vec<HistoryEvent> {
        let mut h = Vec::new();
        let mut t = from * 1000;
        while t + 100 <= to * 1000 {
            h.push(event(0, EventType::Invoke, t));
            h.push(event(0, EventType::Ok, t + 50));
            t += 100;
        }
        h.push(event(0, EventType::Invoke, to * 1000));
        h.push(event(0, EventType::Ok, answered * 1000));
        h
    }

    fn spec<'a>(faults: &'a [NemesisRecord], clients: &'a [ClientId]) -> WindowSpec<'a> {
        WindowSpec {
            faults,
            byzantine: BTreeSet::new(),
            f: 1,
            standing_rules: 0,
            from_ns: 0,
            to_ns: 100 * S,
            heal_ns: 90 * S,
            bound_ns: 10 * S,
            grace_ns: 8 * S,
            clients,
        }
    }

    #[test]
    fn a_stall_inside_a_fault_free_window_is_caught() {
        let clients = [ClientId(0)];
        // A pause of one replica (at most f) from 10 s to 20 s, then nothing completes from
        // 40 s to 70 s although an operation waits.
        let faults = [record("p1", "pause", 10, Some(20), &[1])];
        let mut history = busy(0, 40, 70);
        history.extend(busy(70, 89, 89));
        let (_, found) = stalls(&spec(&faults, &clients), &history);
        assert_eq!(found.len(), 1, "{found:?}");
        let stall = &found[0];
        assert_eq!((stall.from_ns, stall.to_ns), (40 * S, 70 * S));
        assert_eq!((stall.window_from_ns, stall.window_to_ns), (20 * S, 90 * S));
        assert_eq!(stall.faults_before, vec!["p1 (pause r1)".to_string()]);
        assert_eq!((stall.invoked, stall.waiting_at_start), (1, 0));
        let result = window_liveness(&spec(&faults, &clients), &history);
        assert_eq!(result.outcome, CheckOutcome::Violation);
        assert!(
            result.summary.contains("40.0 s–70.0 s"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn a_stall_while_two_of_four_replicas_are_down_is_not_judged() {
        let clients = [ClientId(0)];
        // r1 killed at 30 s, r2 paused at 35 s, both back at 75 s: nothing completes from
        // 40 s to 75 s, but two replicas are faulty for all of it.
        let faults = [
            record("k1", "kill", 30, None, &[1]),
            record("p2", "pause", 35, Some(75), &[2]),
            record("r1", "restart", 75, Some(75), &[1]),
        ];
        let history = busy(0, 40, 76);
        let (judged, found) = stalls(&spec(&faults, &clients), &history);
        assert!(found.is_empty(), "{found:?}");
        assert!(
            judged
                .iter()
                .all(|w| w.to_ns <= 35 * S || w.from_ns >= 75 * S)
        );
        // The kill alone (35 s - 30 s) is too short to judge, and after the restart the
        // operation completes within the grace.
        assert_eq!(
            window_liveness(&spec(&faults, &clients), &history).outcome,
            CheckOutcome::Pass
        );
    }

    #[test]
    fn windows_shorter_than_the_grace_and_the_bound_are_not_judged() {
        let clients = [ClientId(0)];
        // Partitions leave fault-free gaps of 15 s (< 8 s grace + 10 s bound) in which
        // nothing completes.
        let faults = [
            record("a", "partition", 0, Some(20), &[]),
            record("b", "partition", 35, Some(60), &[]),
            record("c", "link-fault", 75, Some(100), &[]),
        ];
        let mut history = vec![event(0, EventType::Invoke, 1000)];
        history.push(event(0, EventType::Ok, 99_000));
        let (judged, found) = stalls(&spec(&faults, &clients), &history);
        assert!(
            judged.is_empty() && found.is_empty(),
            "{judged:?} {found:?}"
        );
    }

    #[test]
    fn standing_rules_and_byzantine_builds_count_as_faults() {
        let clients = [ClientId(0)];
        let history = vec![
            event(0, EventType::Invoke, 0),
            event(0, EventType::Ok, 95_000),
        ];
        let mut with_rules = spec(&[], &clients);
        with_rules.standing_rules = 1;
        // Until the heal at 90 s the rules are a network fault; after it 10 s remain.
        let (judged, found) = stalls(&with_rules, &history);
        assert!(
            judged.is_empty() && found.is_empty(),
            "{judged:?} {found:?}"
        );

        let faults = [record("k", "kill", 20, Some(60), &[2])];
        let mut byzantine = spec(&faults, &clients);
        byzantine.byzantine = BTreeSet::from([ReplicaId(3)]);
        let (judged, found) = stalls(&byzantine, &history);
        // r3 Byzantine plus r2 down is over f from 20 s to 60 s; the rest is judged.
        assert_eq!(
            judged
                .iter()
                .map(|w| (w.from_ns / S, w.to_ns / S))
                .collect::<Vec<_>>(),
            vec![(0, 20), (60, 90)]
        );
        assert_eq!(
            found
                .iter()
                .map(|s| (s.from_ns / S, s.to_ns / S, s.waiting_at_start))
                .collect::<Vec<_>>(),
            vec![(8, 20, 1), (68, 90, 1)]
        );
        assert_eq!(found[1].faulty, vec![ReplicaId(3)]);
        assert_eq!(found[1].faults_before, vec!["k (kill r2)".to_string()]);
    }

    #[test]
    fn idle_clients_are_no_stall() {
        let clients = [ClientId(0), ClientId(1)];
        // Nothing invoked between 10 s and 60 s; a Byzantine client's waiting does not count.
        let mut history = busy(0, 10, 10);
        history.push(event(7, EventType::Invoke, 10_000));
        history.extend(busy(60, 89, 89));
        let mut s = spec(&[], &clients);
        s.to_ns = 89 * S;
        let (_, found) = stalls(&s, &history);
        assert!(found.is_empty(), "{found:?}");
    }
}
