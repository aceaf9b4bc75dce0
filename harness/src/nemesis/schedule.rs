//! Turning the scenario's explicit `nemesis.schedule` into planned faults: timed ones, and
//! triggered ones (`on`), whose start waits for a replica's event (all choices seeded).

use super::generate::{partition_action, resolve_target};
use super::{PlannedAction, PlannedFault, PlannedTarget, PlannedTrigger, TriggerTarget};
use crate::scenario::{
    FaultAction, NamedTarget, PartitionShape, ScheduledFault, TargetSpec, TriggerSpec,
};
use rand_chacha::ChaCha20Rng;

/// Resolves an explicit schedule: random targets and groupings are drawn from `rng`.
pub fn resolve_schedule(
    schedule: &[ScheduledFault],
    n: usize,
    rng: &mut ChaCha20Rng,
) -> Vec<PlannedFault> {
    let mut planned = Vec::new();
    let ids: Vec<String> = schedule
        .iter()
        .enumerate()
        .map(|(index, fault)| fault_id(index, fault))
        .collect();
    for (index, fault) in schedule.iter().enumerate() {
        if let Some(on) = &fault.on {
            planned.push(triggered_fault(fault, on, &ids, index, n, rng));
            continue;
        }
        let at_ms = fault.at_ms.unwrap_or(0);
        let end_ms = fault.duration_ms.map(|d| at_ms + d);
        let action = match fault.action {
            FaultAction::Partition => partition_action(
                fault.shape.unwrap_or(PartitionShape::Halves),
                fault.target,
                fault.one_way,
                n,
                rng,
            ),
            FaultAction::LinkFault => PlannedAction::LinkFault {
                rules: fault.rules.clone(),
            },
            FaultAction::Kill => PlannedAction::Kill {
                target: resolve_target(fault.target, n, rng),
                permanent: fault.permanent,
            },
            FaultAction::Restart => PlannedAction::Restart {
                target: resolve_target(fault.target, n, rng),
            },
            FaultAction::Pause => PlannedAction::Pause {
                target: resolve_target(fault.target, n, rng),
            },
            FaultAction::Resume => PlannedAction::Resume {
                target: resolve_target(fault.target, n, rng),
            },
        };
        let end_ms = match action {
            PlannedAction::Restart { .. } | PlannedAction::Resume { .. } => Some(at_ms),
            _ => end_ms,
        };
        planned.push(PlannedFault {
            id: ids[index].clone(),
            start_ms: at_ms,
            end_ms,
            action,
            trigger: None,
        });
    }
    // By start, a chained trigger no earlier than the fault it follows (the explicit schedule
    // the shrinker writes must name only earlier entries). Stable: ties keep schedule order.
    let mut keys: Vec<u64> = Vec::with_capacity(schedule.len());
    for (index, fault) in schedule.iter().enumerate() {
        let own = fault.at_ms.unwrap_or(0);
        let after = fault.on.as_ref().and_then(|on| on.after_fault);
        let key = after
            .filter(|k| *k < index)
            .map_or(own, |k| own.max(keys[k]));
        keys.push(key);
    }
    planned.sort_by_key(|f| ids.iter().position(|id| *id == f.id).map_or(0, |i| keys[i]));
    planned
}

/// `s03-kill`: the schedule position and what the fault does (a triggered `restart` is a
/// kill undone later, and is named so).
fn fault_id(index: usize, fault: &ScheduledFault) -> String {
    let name = match fault.action {
        FaultAction::Partition => "partition",
        FaultAction::LinkFault => "link-fault",
        FaultAction::Kill => "kill",
        FaultAction::Restart if fault.on.is_some() => "kill",
        FaultAction::Restart => "restart",
        FaultAction::Pause => "pause",
        FaultAction::Resume => "resume",
    };
    format!("s{index:02}-{name}")
}

/// A fault at a protocol point: armed from `at_ms`, started by the trigger; its target is
/// known only when it fires (the plan keeps a fixed id, or "the primary", for reports).
fn triggered_fault(
    fault: &ScheduledFault,
    on: &TriggerSpec,
    ids: &[String],
    index: usize,
    n: usize,
    rng: &mut ChaCha20Rng,
) -> PlannedFault {
    let by = on.replica.map(|r| resolve_target(Some(r), n, rng));
    let target = match fault.target {
        None => TriggerTarget::Sender,
        Some(TargetSpec::Named(NamedTarget::Primary)) => TriggerTarget::Primary,
        Some(other) => match resolve_target(Some(other), n, rng) {
            PlannedTarget::Replica(r) => TriggerTarget::Replica(r),
            PlannedTarget::Primary => TriggerTarget::Primary,
        },
    };
    let shown = match (target, by) {
        (TriggerTarget::Replica(r), _)
        | (TriggerTarget::Sender, Some(PlannedTarget::Replica(r))) => PlannedTarget::Replica(r),
        _ => PlannedTarget::Primary,
    };
    let after_ms = match fault.action {
        FaultAction::Restart => Some(fault.after_ms.unwrap_or(0)),
        _ => fault.after_ms,
    };
    let action = match fault.action {
        FaultAction::Pause => PlannedAction::Pause { target: shown },
        _ => PlannedAction::Kill {
            target: shown,
            permanent: fault.permanent,
        },
    };
    PlannedFault {
        id: ids[index].clone(),
        start_ms: fault.at_ms.unwrap_or(0),
        end_ms: None,
        action,
        trigger: Some(PlannedTrigger {
            sent: on.sent,
            by,
            view: on.view,
            seq: on.seq,
            after_fault: on.after_fault.and_then(|k| ids.get(k).cloned()),
            target,
            after_ms,
            action: fault.action,
        }),
    }
}
