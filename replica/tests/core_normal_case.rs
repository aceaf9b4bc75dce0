//! The normal case on the simulator: batching, commit, execution and replies.

mod core_support;

use core_support::*;
use replica::events::ReplicaEvent;
use replica::sim::{Latency, SimConfig};

#[test]
fn normal_case_every_operation_completes_with_the_result_of_a_sequential_replay() {
    for seed in 1..=3 {
        let mut net = network(SimConfig {
            seed,
            clients: 4,
            ..SimConfig::default()
        });
        let mut driver = Driver::new(seed);
        assert!(
            driver.run_ops(&mut net, 40, 60_000),
            "seed {seed}: not every operation completed"
        );
        assert_eq!(net.completed().len(), 160, "seed {seed}");
        assert!(
            net.run_until(all_replicas_converged, 10_000),
            "seed {seed}: replicas did not converge"
        );
        for replica in net.replica_ids() {
            assert_matches_sequential_replay(&net, replica);
            assert_eq!(first_executions(&net, replica).len(), 160, "seed {seed}");
        }
        assert_no_agreement_violations(&net);
    }
}

#[test]
fn lossy_reordering_network_still_completes_every_operation_consistently() {
    for seed in 11..=12 {
        let mut net = network(SimConfig {
            seed,
            clients: 3,
            drop_probability: 0.05,
            reorder: true,
            latency: Latency {
                base_ms: 1,
                jitter_ms: 8,
            },
            ..SimConfig::default()
        });
        let mut driver = Driver::new(seed);
        assert!(
            driver.run_ops(&mut net, 25, 120_000),
            "seed {seed}: not every operation completed"
        );
        assert!(
            net.stats().dropped_randomly > 0,
            "seed {seed}: nothing was dropped"
        );
        net.set_drop_probability(0.0).expect("valid probability");
        assert!(
            net.run_until(all_replicas_converged, 30_000),
            "seed {seed}: replicas did not converge"
        );
        assert_no_agreement_violations(&net);
        let reference = net
            .replica_ids()
            .find(|r| {
                count_events(&net, *r, |e| {
                    matches!(e, ReplicaEvent::StateTransfer { .. })
                }) == 0
            })
            .expect("at most f replicas fell behind far enough to need a state transfer");
        assert_matches_sequential_replay(&net, reference);
    }
}
