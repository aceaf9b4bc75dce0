//! Losing the primary: view change, and a partitioned primary rejoining.

mod core_support;

use core_support::*;
use replica::sim::SimConfig;
use replica::{ReplicaId, View};

#[test]
fn primary_crash_leads_to_a_view_change_after_which_new_operations_complete() {
    for seed in 1..=2 {
        let mut net = network(SimConfig {
            seed,
            ..SimConfig::default()
        });
        let mut driver = Driver::new(seed);
        assert!(driver.run_ops(&mut net, 10, 30_000), "seed {seed}: warm-up");
        let primary = net.core(ReplicaId(0)).expect("running").primary();
        net.crash(primary).expect("the primary was running");
        assert!(
            driver.run_ops(&mut net, 10, 60_000),
            "seed {seed}: no progress after the primary crashed"
        );
        for replica in net.replica_ids().filter(|r| *r != primary) {
            let core = net.core(replica).expect("running");
            assert!(
                core.view() > View(0),
                "seed {seed}: replica {replica} still in view 0"
            );
            assert_ne!(core.primary(), primary, "seed {seed}");
        }
        assert!(
            net.run_until(running_replicas_converged, 10_000),
            "seed {seed}"
        );
        for replica in net.replica_ids().filter(|r| *r != primary) {
            assert_matches_sequential_replay(&net, replica);
        }
        assert_no_agreement_violations(&net);
    }
}

#[test]
fn primary_partitioned_away_then_healed_progress_continues_and_it_rejoins() {
    for seed in 3..=4 {
        let mut net = network(SimConfig {
            seed,
            ..SimConfig::default()
        });
        let mut driver = Driver::new(seed);
        assert!(driver.run_ops(&mut net, 10, 30_000), "seed {seed}: warm-up");
        let old_primary = ReplicaId(0);
        net.isolate(old_primary);
        assert!(
            driver.run_ops(&mut net, 10, 60_000),
            "seed {seed}: no progress while the primary was partitioned away"
        );
        let view_during = net.core(ReplicaId(1)).expect("running").view();
        assert!(view_during > View(0), "seed {seed}: no view change");
        net.heal();
        // Enough operations after healing for checkpoints to pass the partition.
        assert!(
            driver.run_ops(&mut net, 20, 60_000),
            "seed {seed}: no progress after healing"
        );
        assert!(
            net.run_until(all_replicas_converged, 30_000),
            "seed {seed}: the old primary did not catch up (last executed {:?}, others {:?})",
            net.core(old_primary).map(|c| c.last_executed()),
            net.core(ReplicaId(1)).map(|c| c.last_executed()),
        );
        let views: Vec<View> = net
            .replica_ids()
            .map(|r| net.core(r).expect("running").view())
            .collect();
        assert!(
            views.iter().all(|v| *v == views[1]),
            "seed {seed}: the old primary did not rejoin the current view: {views:?}"
        );
        assert_no_agreement_violations(&net);
    }
}
