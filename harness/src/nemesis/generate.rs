//! Generated faults (`nemesis.generate`), and the seeded choices an explicit schedule shares
//! with them (targets, partition groupings); all choices seeded.

use super::{PlannedAction, PlannedFault, PlannedTarget, partition_cuts};
use crate::proxy::{Action, Matcher, RewriteMode, Rule};
use crate::scenario::{FaultKind, GenerateSpec, NamedTarget, PartitionShape, TargetSpec};
use rand::RngExt;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha20Rng;
use replica::ReplicaId;

/// No generated fault may still be active this close to the end of the workload, so the
/// cluster has a moment of calm before the heal even without the heal's help.
const QUIET_END_MS: u64 = 500;

fn shuffled_replicas(n: usize, rng: &mut ChaCha20Rng) -> Vec<ReplicaId> {
    let mut order: Vec<ReplicaId> = (0..n as u32).map(ReplicaId).collect();
    order.shuffle(rng);
    order
}

pub(super) fn resolve_target(
    target: Option<TargetSpec>,
    n: usize,
    rng: &mut ChaCha20Rng,
) -> PlannedTarget {
    match target {
        Some(TargetSpec::Id(id)) => PlannedTarget::Replica(ReplicaId(id)),
        Some(TargetSpec::Named(NamedTarget::Primary)) => PlannedTarget::Primary,
        Some(TargetSpec::Named(NamedTarget::Random)) | None => {
            PlannedTarget::Replica(ReplicaId(rng.random_range(0..n as u32)))
        }
    }
}

pub(super) fn partition_action(
    shape: PartitionShape,
    target: Option<TargetSpec>,
    one_way: bool,
    n: usize,
    rng: &mut ChaCha20Rng,
) -> PlannedAction {
    let order = shuffled_replicas(n, rng);
    let target = match shape {
        PartitionShape::IsolatePrimary => Some(PlannedTarget::Primary),
        PartitionShape::IsolateOne => Some(resolve_target(target, n, rng)),
        _ => None,
    };
    let isolated = match target {
        Some(PlannedTarget::Replica(r)) => Some(r),
        _ => None,
    };
    PlannedAction::Partition {
        shape,
        target,
        cuts: partition_cuts(shape, &order, isolated),
        one_way,
    }
}

fn everywhere(id: String, action: Action) -> Rule {
    Rule {
        id,
        matcher: Matcher::default(),
        action,
    }
}

/// Generates one timed fault per interval, one at a time, so at most one replica is ever down
/// or paused (within f for every f ≥ 1); every fault ends before the workload does. The
/// round-bound kinds are not dealt here: `rounds::generate_rounds` draws them.
pub fn generate(
    spec: &GenerateSpec,
    n: usize,
    duration_ms: u64,
    rng: &mut ChaCha20Rng,
) -> Vec<PlannedFault> {
    let mut planned = Vec::new();
    let intensity = spec.intensity.clamp(0.01, 1.0);
    let length = ((spec.interval_ms as f64) * intensity * 0.8).max(100.0) as u64;
    let slack = spec.interval_ms.saturating_sub(length).max(1);
    let mut slot_start = spec.start_ms;
    let mut index = 0usize;
    // Kinds are dealt from a shuffled bag, refilled when empty, so every kind shows up once
    // per `kinds.len()` faults instead of whenever a fair die allows.
    let mut bag: Vec<FaultKind> = Vec::new();
    while slot_start + length + QUIET_END_MS <= duration_ms {
        let start_ms = slot_start + rng.random_range(0..slack.min(spec.interval_ms / 4).max(1));
        let end_ms = (start_ms + length).min(duration_ms.saturating_sub(QUIET_END_MS));
        if bag.is_empty() {
            bag = spec
                .kinds
                .iter()
                .copied()
                .filter(|k| !k.is_round_bound())
                .collect();
            bag.shuffle(rng);
        }
        let Some(kind) = bag.pop() else {
            break;
        };
        let id = format!("g{index:02}-{}", kind_name(kind));
        let Some(action) = generated_action(kind, &id, intensity, n, rng) else {
            break;
        };
        planned.push(PlannedFault {
            id,
            start_ms,
            end_ms: Some(end_ms),
            action,
            trigger: None,
        });
        index += 1;
        slot_start += spec.interval_ms;
    }
    planned
}

fn kind_name(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Partition => "partition",
        FaultKind::Delay => "delay",
        FaultKind::Loss => "loss",
        FaultKind::Duplicate => "duplicate",
        FaultKind::Reorder => "reorder",
        FaultKind::Rewrite => "rewrite",
        FaultKind::Kill => "kill",
        FaultKind::Pause => "pause",
        FaultKind::RoundPartition => "round-partition",
        FaultKind::TwinsRound => "twins-round",
        FaultKind::RoundCrash => "round-crash",
    }
}

fn process_target(rng: &mut ChaCha20Rng, n: usize) -> PlannedTarget {
    if rng.random_bool(0.5) {
        PlannedTarget::Primary
    } else {
        PlannedTarget::Replica(ReplicaId(rng.random_range(0..n as u32)))
    }
}

fn generated_action(
    kind: FaultKind,
    id: &str,
    intensity: f64,
    n: usize,
    rng: &mut ChaCha20Rng,
) -> Option<PlannedAction> {
    let rule = |action: Action| PlannedAction::LinkFault {
        rules: vec![everywhere(format!("{id}-0"), action)],
    };
    let action = match kind {
        FaultKind::Partition => {
            let shapes = [
                PartitionShape::Halves,
                PartitionShape::IsolateOne,
                PartitionShape::IsolatePrimary,
                PartitionShape::Bridge,
                PartitionShape::Ring,
            ];
            let shape = shapes
                .choose(rng)
                .copied()
                .unwrap_or(PartitionShape::Halves);
            let one_way = rng.random_bool(0.2);
            partition_action(shape, None, one_way, n, rng)
        }
        FaultKind::Delay => {
            let fixed_ms = 2 + (40.0 * intensity) as u64;
            rule(Action::Delay {
                fixed_ms,
                jitter_ms: fixed_ms,
            })
        }
        FaultKind::Loss => rule(Action::Drop {
            probability: 0.05 + 0.25 * intensity,
        }),
        FaultKind::Duplicate => rule(Action::Duplicate {
            probability: 0.1 + 0.4 * intensity,
        }),
        FaultKind::Reorder => rule(Action::Reorder {
            window: 2 + (6.0 * intensity) as usize,
            max_hold_ms: 30,
        }),
        FaultKind::Rewrite => {
            let modes = [
                RewriteMode::Field,
                RewriteMode::FlipBytes,
                RewriteMode::Truncate,
            ];
            let mode = modes.choose(rng).copied().unwrap_or(RewriteMode::Field);
            rule(Action::Rewrite {
                mode,
                probability: 0.5 * intensity,
            })
        }
        FaultKind::Kill => PlannedAction::Kill {
            target: process_target(rng, n),
            permanent: false,
        },
        FaultKind::Pause => PlannedAction::Pause {
            target: process_target(rng, n),
        },
        // Bound to rounds, not to an interval: never dealt from the bag.
        FaultKind::RoundPartition | FaultKind::TwinsRound | FaultKind::RoundCrash => return None,
    };
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    fn spec(kinds: Vec<FaultKind>, interval_ms: u64, intensity: f64) -> GenerateSpec {
        GenerateSpec {
            kinds,
            interval_ms,
            intensity,
            start_ms: 500,
            rounds: None,
        }
    }

    #[test]
    fn generated_faults_never_take_down_more_than_one_replica_at_once() {
        let all = vec![
            FaultKind::Partition,
            FaultKind::Kill,
            FaultKind::Pause,
            FaultKind::Loss,
        ];
        for seed in 0..200u64 {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let intensity = 0.1 + (seed % 10) as f64 * 0.1;
            let faults = generate(&spec(all.clone(), 1000, intensity), 4, 20_000, &mut rng);
            assert!(!faults.is_empty());
            assert!(
                super::super::max_down(&faults) <= 1,
                "seed {seed}: {faults:?}"
            );
        }
    }

    #[test]
    fn generated_faults_all_end_before_the_workload_does() {
        for seed in 0..50u64 {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let faults = generate(&spec(vec![FaultKind::Kill], 700, 1.0), 4, 9_000, &mut rng);
            for f in &faults {
                let end = f.end_ms.expect("generated faults end");
                assert!(f.start_ms < end && end <= 9_000 - QUIET_END_MS, "{f:?}");
            }
        }
    }

    #[test]
    fn every_kind_is_dealt_once_per_round() {
        let kinds = vec![FaultKind::Partition, FaultKind::Loss, FaultKind::Kill];
        for seed in 0..20u64 {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let faults = generate(&spec(kinds.clone(), 1000, 0.5), 4, 7_000, &mut rng);
            let first_round: BTreeSet<&str> =
                faults.iter().take(3).map(|f| f.action.name()).collect();
            assert_eq!(first_round.len(), 3, "seed {seed}: {faults:?}");
        }
    }

    #[test]
    fn generation_is_a_function_of_the_seed() {
        let kinds = vec![FaultKind::Partition, FaultKind::Delay, FaultKind::Kill];
        let a = generate(
            &spec(kinds.clone(), 1000, 0.5),
            4,
            10_000,
            &mut ChaCha20Rng::seed_from_u64(7),
        );
        let b = generate(
            &spec(kinds.clone(), 1000, 0.5),
            4,
            10_000,
            &mut ChaCha20Rng::seed_from_u64(7),
        );
        let c = generate(
            &spec(kinds, 1000, 0.5),
            4,
            10_000,
            &mut ChaCha20Rng::seed_from_u64(8),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ring_cuts_only_non_adjacent_pairs() {
        let order: Vec<ReplicaId> = (0..5).map(ReplicaId).collect();
        let cuts = partition_cuts(PartitionShape::Ring, &order, None);
        // 5 replicas: 10 pairs, 5 adjacent.
        assert_eq!(cuts.len(), 5);
    }
}
