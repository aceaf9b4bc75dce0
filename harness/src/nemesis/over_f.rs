//! The over-f guard's count: how many replicas a schedule can have down or paused at once.

use super::{PlannedAction, PlannedFault, PlannedTarget};
use replica::ReplicaId;
use std::collections::{BTreeMap, BTreeSet};

/// Who a fault takes down, as far as the plan knows.
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Who {
    Known(ReplicaId),
    /// "The primary" of a timed fault, by fault index: its id is known only at run time.
    Primary(usize),
    /// A chain of faults linked by `after_fault`, by the index of its first member: each
    /// member is armed only once the one before it ended, so they never overlap.
    Chain(usize),
}

/// The most replicas down or paused at any one moment under `faults`. A fault on "the primary"
/// counts as a replica of its own (its id is known only at run time), which over-counts at
/// worst. Faults with no end last until the final heal. A triggered fault may fire at any
/// moment after it is armed and its target is known only then, so it counts as a replica of
/// its own from then until the heal, unless `after_fault` chains it behind another: a chain
/// counts as one replica. Both over-count at worst.
pub fn max_down(faults: &[PlannedFault]) -> usize {
    let chains = chain_roots(faults);
    // (time, order, who, starts?): ends sort before starts at the same instant.
    let mut events: Vec<(u64, u8, Who, bool)> = Vec::new();
    for (index, fault) in faults.iter().enumerate() {
        let who = |t: PlannedTarget| match (chains.get(&index), t) {
            (Some(root), _) => Who::Chain(*root),
            (None, PlannedTarget::Replica(r)) => Who::Known(r),
            (None, PlannedTarget::Primary) => Who::Primary(index),
        };
        // A chain member's end is the next member's start: the chain ends at the heal.
        let end = if chains.contains_key(&index) {
            None
        } else {
            fault.end_ms
        };
        match fault.action {
            PlannedAction::Kill { target, .. } | PlannedAction::Pause { target } => {
                events.push((fault.start_ms, 1, who(target), true));
                if let Some(end) = end {
                    events.push((end, 0, who(target), false));
                }
            }
            PlannedAction::Restart { target } | PlannedAction::Resume { target } => {
                events.push((fault.start_ms, 0, who(target), false));
            }
            _ => {}
        }
    }
    events.sort_by_key(|e| (e.0, e.1));
    let mut down: BTreeSet<Who> = BTreeSet::new();
    let mut most = 0;
    for (_, _, who, starts) in events {
        if starts {
            down.insert(who);
        } else if let Who::Known(_) | Who::Chain(_) = who {
            down.remove(&who);
        } else {
            // A restart of "the primary" undoes the latest primary-targeted fault.
            let latest = down
                .iter()
                .rev()
                .find(|w| matches!(w, Who::Primary(_)))
                .copied();
            if let Some(latest) = latest {
                down.remove(&latest);
            }
        }
        most = most.max(down.len());
    }
    most
}

/// For every fault that is triggered or that a trigger follows, the index of the first
/// fault of its chain.
fn chain_roots(faults: &[PlannedFault]) -> BTreeMap<usize, usize> {
    let index_of: BTreeMap<&str, usize> = faults
        .iter()
        .enumerate()
        .map(|(i, f)| (f.id.as_str(), i))
        .collect();
    let before = |i: usize| -> Option<usize> {
        let after = faults[i].trigger.as_ref()?.after_fault.as_deref()?;
        index_of.get(after).copied()
    };
    let mut roots = BTreeMap::new();
    for (index, fault) in faults.iter().enumerate() {
        if fault.trigger.is_none() {
            continue;
        }
        let mut root = index;
        // Bounded: validation makes every link point to an earlier schedule entry.
        for _ in 0..faults.len() {
            match before(root) {
                Some(earlier) if earlier != root => root = earlier,
                _ => break,
            }
        }
        roots.insert(index, root);
        roots.insert(root, root);
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::{PlannedTrigger, TriggerTarget};
    use crate::scenario::{FaultAction, SentKind};

    fn kill(id: u32, start: u64, end: Option<u64>) -> PlannedFault {
        PlannedFault {
            id: format!("k{id}"),
            start_ms: start,
            end_ms: end,
            action: PlannedAction::Kill {
                target: PlannedTarget::Replica(ReplicaId(id)),
                permanent: end.is_none(),
            },
            trigger: None,
        }
    }

    fn on_commit(id: &str, after_fault: Option<&str>) -> PlannedFault {
        PlannedFault {
            id: id.into(),
            start_ms: 0,
            end_ms: None,
            action: PlannedAction::Kill {
                target: PlannedTarget::Primary,
                permanent: false,
            },
            trigger: Some(PlannedTrigger {
                sent: SentKind::Commit,
                by: None,
                view: None,
                seq: None,
                after_fault: after_fault.map(str::to_string),
                target: TriggerTarget::Sender,
                after_ms: Some(500),
                action: FaultAction::Restart,
            }),
        }
    }

    #[test]
    fn max_down_counts_overlapping_process_faults_only() {
        assert_eq!(max_down(&[kill(1, 0, Some(10)), kill(2, 10, Some(20))]), 1);
        assert_eq!(max_down(&[kill(1, 0, Some(11)), kill(2, 10, Some(20))]), 2);
        assert_eq!(max_down(&[kill(2, 0, None), kill(3, 0, None)]), 2);
    }

    #[test]
    fn triggered_faults_count_apart_unless_chained() {
        assert_eq!(max_down(&[on_commit("a", None)]), 1);
        assert_eq!(max_down(&[on_commit("a", None), on_commit("b", None)]), 2);
        assert_eq!(
            max_down(&[on_commit("a", None), on_commit("b", Some("a"))]),
            1
        );
        let chain = [
            on_commit("a", None),
            on_commit("b", Some("a")),
            on_commit("c", Some("b")),
        ];
        assert_eq!(max_down(&chain), 1);
        // A timed kill in force while a trigger may fire: two.
        assert_eq!(
            max_down(&[kill(1, 100, Some(200)), on_commit("a", None)]),
            2
        );
        // A trigger armed only when the timed kill ended: one.
        assert_eq!(
            max_down(&[kill(1, 100, Some(200)), on_commit("a", Some("k1"))]),
            1
        );
    }
}
