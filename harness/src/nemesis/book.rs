//! The nemesis's bookkeeping, free of clocks and I/O: what starting and ending each planned
//! fault does, which faults are in force, and the records of `nemesis.jsonl`. The real
//! nemesis (`run.rs`: the proxy and the processes) and the simulated one (`crate::sim`) both
//! carry out the steps it returns, so a fault means the same thing in both worlds.

use super::{PlannedAction, PlannedFault, PlannedTarget, TriggerRecord, partition_cuts};
use crate::proxy::{LinkSpec, Rule, partition_rules};
use crate::twins::TwinsPlan;
use replica::ReplicaId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// One line of `nemesis.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NemesisRecord {
    pub id: String,
    pub action: String,
    /// Nanoseconds since the run started, on the history's clock.
    pub start_ns: u64,
    /// `None` for a fault never undone (a permanent kill).
    pub end_ns: Option<u64>,
    /// The replicas hit (resolved at run time for "the primary").
    pub targets: Vec<ReplicaId>,
    /// The proxy rules installed, for network faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// A record line as written: the record, and how it fired when a trigger started it.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    record: &'a NemesisRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger: Option<&'a TriggerRecord>,
}

/// One thing to do to the world to start or end a fault.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    AddRules(Vec<Rule>),
    /// Remove every network rule whose id starts with this prefix.
    RemoveRules(String),
    Kill {
        replica: ReplicaId,
        permanent: bool,
    },
    /// Start a killed replica again from what it made durable.
    Restart(ReplicaId),
    Pause(ReplicaId),
    Resume(ReplicaId),
}

/// What starting a fault takes: the steps, and who it hit, for the record.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub steps: Vec<Step>,
    pub targets: Vec<ReplicaId>,
    pub rules: Vec<Rule>,
}

/// A fault in force: what ending it must undo.
struct Active {
    record: usize,
    action: &'static str,
    targets: Vec<ReplicaId>,
}

pub struct FaultBook {
    n: usize,
    links: Vec<LinkSpec>,
    /// Twinned replicas: partitions cut both twins alike.
    twins: Option<TwinsPlan>,
    records: Vec<NemesisRecord>,
    active: BTreeMap<String, Active>,
    /// How each triggered fault fired, by fault id.
    triggers: BTreeMap<String, TriggerRecord>,
}

/// When each fault starts and ends, in ms after the workload started, as
/// `(time, starts?, index into faults)`: an end sorts before a start at the same instant.
/// Restarts and resumes are instantaneous and have no end. Triggered faults are not on it:
/// an event starts them (`TriggerWatch`).
pub fn timeline(faults: &[PlannedFault]) -> Vec<(u64, bool, usize)> {
    let mut timeline: Vec<(u64, bool, usize)> = Vec::new();
    for (index, fault) in faults.iter().enumerate() {
        if fault.trigger.is_some() {
            continue;
        }
        timeline.push((fault.start_ms, true, index));
        if let Some(end) = fault.end_ms
            && !is_instantaneous(&fault.action)
        {
            timeline.push((end, false, index));
        }
    }
    timeline.sort();
    timeline
}

fn is_instantaneous(action: &PlannedAction) -> bool {
    matches!(
        action,
        PlannedAction::Restart { .. } | PlannedAction::Resume { .. }
    )
}

impl FaultBook {
    pub fn new(n: usize, links: Vec<LinkSpec>, twins: Option<TwinsPlan>) -> FaultBook {
        FaultBook {
            n,
            links,
            twins,
            records: Vec::new(),
            active: BTreeMap::new(),
            triggers: BTreeMap::new(),
        }
    }

    /// What starting `fault` takes. `primary` is asked only when the fault targets it.
    pub fn plan_start(&self, fault: &PlannedFault, primary: impl FnOnce() -> ReplicaId) -> Start {
        let mut primary = Some(primary);
        let mut resolve = |target: PlannedTarget| match target {
            PlannedTarget::Replica(r) => r,
            PlannedTarget::Primary => primary.take().map_or(ReplicaId(0), |p| p()),
        };
        let prefix = format!("{}/", fault.id);
        let (targets, rules, process) = match &fault.action {
            PlannedAction::Partition {
                shape,
                target,
                cuts,
                one_way,
            } => {
                let mut targets = Vec::new();
                let cuts = if cuts.is_empty() {
                    let alone = target.map(&mut resolve);
                    targets.extend(alone);
                    let order: Vec<ReplicaId> = (0..self.n as u32).map(ReplicaId).collect();
                    partition_cuts(*shape, &order, alone)
                } else {
                    if let Some(PlannedTarget::Replica(r)) = target {
                        targets.push(*r);
                    }
                    cuts.clone()
                };
                let mut rules = Vec::new();
                for (k, groups) in cuts.iter().enumerate() {
                    let groups = match &self.twins {
                        Some(twins) => twins.expand_groups(groups),
                        None => groups.clone(),
                    };
                    let id = format!("{prefix}{k}");
                    rules.extend(partition_rules(&id, &groups, *one_way, &self.links));
                }
                (targets, rules, None)
            }
            PlannedAction::LinkFault { rules: planned } => {
                let rules = planned
                    .iter()
                    .map(|rule| Rule {
                        id: format!("{prefix}{}", rule.id),
                        ..rule.clone()
                    })
                    .collect();
                (Vec::new(), rules, None)
            }
            PlannedAction::Kill { target, permanent } => {
                let replica = resolve(*target);
                let step = Step::Kill {
                    replica,
                    permanent: *permanent,
                };
                (vec![replica], Vec::new(), Some(step))
            }
            PlannedAction::Restart { target } => {
                let replica = resolve(*target);
                (vec![replica], Vec::new(), Some(Step::Restart(replica)))
            }
            PlannedAction::Pause { target } => {
                let replica = resolve(*target);
                (vec![replica], Vec::new(), Some(Step::Pause(replica)))
            }
            PlannedAction::Resume { target } => {
                let replica = resolve(*target);
                (vec![replica], Vec::new(), Some(Step::Resume(replica)))
            }
        };
        let mut steps: Vec<Step> = process.into_iter().collect();
        if !rules.is_empty() {
            steps.push(Step::AddRules(rules.clone()));
        }
        Start {
            steps,
            targets,
            rules,
        }
    }

    /// Records that `fault` started at `now_ns` as `start` said.
    pub fn record_start(&mut self, fault: &PlannedFault, start: Start, now_ns: u64) {
        let instantaneous = is_instantaneous(&fault.action);
        self.records.push(NemesisRecord {
            id: fault.id.clone(),
            action: fault.action.name().to_string(),
            start_ns: now_ns,
            end_ns: instantaneous.then_some(now_ns),
            targets: start.targets.clone(),
            rules: start.rules,
        });
        if !instantaneous {
            let active = Active {
                record: self.records.len() - 1,
                action: fault.action.name(),
                targets: start.targets,
            };
            self.active.insert(fault.id.clone(), active);
        }
    }

    /// Records how triggered fault `id` fired (after its `record_start`).
    pub fn record_trigger(&mut self, id: &str, trigger: TriggerRecord) {
        self.triggers.insert(id.to_string(), trigger);
    }

    /// How each triggered fault fired, by fault id.
    pub fn triggers(&self) -> &BTreeMap<String, TriggerRecord> {
        &self.triggers
    }

    /// Whether fault `id` started and has ended (a triggered fault's `after_fault` arms it).
    pub fn has_ended(&self, id: &str) -> bool {
        !self.active.contains_key(id)
            && self
                .records
                .iter()
                .any(|r| r.id == id && r.end_ns.is_some())
    }

    /// Ends fault `id` (if it is in force) at `now_ns`; the steps that undo it.
    pub fn end(&mut self, id: &str, now_ns: u64) -> Vec<Step> {
        let Some(active) = self.active.remove(id) else {
            return Vec::new();
        };
        self.records[active.record].end_ns = Some(now_ns);
        match active.action {
            "partition" | "link-fault" => vec![Step::RemoveRules(format!("{id}/"))],
            "kill" => active.targets.into_iter().map(Step::Restart).collect(),
            "pause" => active.targets.into_iter().map(Step::Resume).collect(),
            _ => Vec::new(),
        }
    }

    /// The final heal at `now_ns` closes every fault in force, except a kill of a replica
    /// that `stays_down` (a permanent kill): its record stays open.
    pub fn heal(&mut self, now_ns: u64, stays_down: impl Fn(ReplicaId) -> bool) {
        for (_, active) in std::mem::take(&mut self.active) {
            let permanent =
                active.action == "kill" && active.targets.iter().any(|t| stays_down(*t));
            if !permanent {
                self.records[active.record].end_ns = Some(now_ns);
            }
        }
    }

    /// The records in start order.
    pub fn records(&self) -> Vec<NemesisRecord> {
        let mut records = self.records.clone();
        records.sort_by(|a, b| (a.start_ns, &a.id).cmp(&(b.start_ns, &b.id)));
        records
    }

    /// Writes `nemesis.jsonl`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for record in self.records() {
            let line = Line {
                record: &record,
                trigger: self.triggers.get(&record.id),
            };
            let line = serde_json::to_string(&line).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")?;
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PartitionShape;

    fn fault(id: &str, start_ms: u64, end_ms: Option<u64>, action: PlannedAction) -> PlannedFault {
        PlannedFault {
            id: id.into(),
            start_ms,
            end_ms,
            action,
            trigger: None,
        }
    }

    #[test]
    fn an_end_sorts_before_a_start_at_the_same_instant_and_restarts_have_no_end() {
        let kill = PlannedAction::Kill {
            target: PlannedTarget::Replica(ReplicaId(1)),
            permanent: false,
        };
        let restart = PlannedAction::Restart {
            target: PlannedTarget::Replica(ReplicaId(1)),
        };
        let faults = [
            fault("a", 100, Some(200), kill.clone()),
            fault("b", 200, Some(300), kill),
            fault("c", 250, Some(400), restart),
        ];
        assert_eq!(
            timeline(&faults),
            vec![
                (100, true, 0),
                (200, false, 0),
                (200, true, 1),
                (250, true, 2),
                (300, false, 1)
            ]
        );
    }

    #[test]
    fn the_primary_is_resolved_when_the_fault_starts_and_ending_undoes_the_fault() {
        let mut book = FaultBook::new(4, Vec::new(), None);
        let pause = fault(
            "p",
            0,
            Some(10),
            PlannedAction::Pause {
                target: PlannedTarget::Primary,
            },
        );
        let start = book.plan_start(&pause, || ReplicaId(2));
        assert_eq!(start.steps, vec![Step::Pause(ReplicaId(2))]);
        book.record_start(&pause, start, 5);
        assert_eq!(book.end("p", 9), vec![Step::Resume(ReplicaId(2))]);
        assert_eq!(book.end("p", 9), Vec::new());
        assert_eq!(book.records()[0].end_ns, Some(9));
    }

    #[test]
    fn heal_leaves_a_permanent_kill_open_and_closes_the_rest() {
        let mut book = FaultBook::new(4, Vec::new(), None);
        let kill = |id: &str, r: u32| {
            fault(
                id,
                0,
                None,
                PlannedAction::Kill {
                    target: PlannedTarget::Replica(ReplicaId(r)),
                    permanent: r == 3,
                },
            )
        };
        let partition = fault(
            "x",
            0,
            None,
            PlannedAction::Partition {
                shape: PartitionShape::Halves,
                target: None,
                cuts: Vec::new(),
                one_way: false,
            },
        );
        for f in [kill("k1", 1), kill("k3", 3), partition] {
            let start = book.plan_start(&f, || ReplicaId(0));
            book.record_start(&f, start, 1);
        }
        book.heal(50, |r| r == ReplicaId(3));
        let ends: Vec<(String, Option<u64>)> = book
            .records()
            .into_iter()
            .map(|r| (r.id, r.end_ns))
            .collect();
        assert_eq!(
            ends,
            vec![
                ("k1".into(), Some(50)),
                ("k3".into(), None),
                ("x".into(), Some(50))
            ]
        );
    }
}
