//! The protocol under `auth: macs`: COMMITs and replies carry MACs, requests a signature and an
//! authenticator, everything a third party must trust a signature. The normal case, a view
//! change (prepared certificates cross views) and a state transfer (committed certificates
//! with authenticators convince their recipient) all still hold.

mod core_support;

use core_support::*;
use replica::auth::AuthMode;
use replica::sim::SimConfig;
use replica::verify::RejectReason;
use replica::{ReplicaId, View};

fn macs(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        auth: AuthMode::Macs,
        ..SimConfig::default()
    }
}

#[test]
fn under_macs_operations_complete_and_match_a_sequential_replay() {
    for seed in 1..=2 {
        let mut net = network(macs(seed));
        let mut driver = Driver::new(seed);
        assert!(driver.run_ops(&mut net, 20, 30_000), "seed {seed}");
        assert!(net.run_until(all_replicas_converged, 10_000), "seed {seed}");
        for replica in net.replica_ids() {
            assert_matches_sequential_replay(&net, replica);
        }
        assert_no_agreement_violations(&net);
        assert_every_mac_checked(&net, seed);
    }
}

/// Every replica is honest here, so no MAC may fail anywhere: none refused, and none whose
/// request's signature had to stand in for it (`mac_fallbacks`, the MAC attack's trace).
fn assert_every_mac_checked(net: &replica::sim::SimNetwork, seed: u64) {
    for replica in net.replica_ids() {
        let stats = net
            .process_stats(replica::sim::Endpoint::Replica(replica))
            .expect("a replica of the network");
        assert_eq!(stats.mac_fallbacks, 0, "seed {seed}: r{replica}");
    }
    for reason in [RejectReason::BadMac, RejectReason::Unsigned] {
        let rejected: u64 = net
            .replica_ids()
            .map(|r| net.rejection_count(r, reason))
            .sum();
        assert_eq!(
            rejected, 0,
            "seed {seed}: honest messages refused as {reason:?}"
        );
    }
}

#[test]
fn under_macs_a_crashed_primary_is_replaced_by_a_view_change() {
    for seed in 3..=4 {
        let mut net = network(macs(seed));
        let mut driver = Driver::new(seed);
        assert!(driver.run_ops(&mut net, 10, 30_000), "seed {seed}: warm-up");
        let primary = net.core(ReplicaId(0)).expect("running").primary();
        net.crash(primary).expect("the primary was running");
        assert!(
            driver.run_ops(&mut net, 10, 60_000),
            "seed {seed}: no progress after the primary crashed"
        );
        for replica in net.replica_ids().filter(|r| *r != primary) {
            assert!(net.core(replica).expect("running").view() > View(0));
        }
        assert!(
            net.run_until(running_replicas_converged, 10_000),
            "seed {seed}"
        );
        for replica in net.replica_ids().filter(|r| *r != primary) {
            assert_matches_sequential_replay(&net, replica);
        }
        assert_no_agreement_violations(&net);
        assert_every_mac_checked(&net, seed);
    }
}

#[test]
fn under_macs_a_partitioned_backup_catches_up_by_state_transfer() {
    for seed in 5..=6 {
        let mut net = network(SimConfig {
            checkpoint_interval: 8,
            watermark_window: 32,
            max_batch: 2,
            ..macs(seed)
        });
        let mut driver = Driver::new(seed);
        let lagging = ReplicaId(3);
        assert!(driver.run_ops(&mut net, 5, 30_000), "seed {seed}: warm-up");
        net.isolate(lagging);
        assert!(driver.run_ops(&mut net, 30, 60_000), "seed {seed}");
        net.heal();
        assert!(driver.run_ops(&mut net, 20, 60_000), "seed {seed}: healed");
        assert!(
            net.run_until(all_replicas_converged, 30_000),
            "seed {seed}: the lagging backup did not catch up"
        );
        // It skipped executions, so its own replay proves nothing; the others' does.
        assert_matches_sequential_replay(&net, ReplicaId(0));
        assert_no_agreement_violations(&net);
        assert_every_mac_checked(&net, seed);
    }
}
