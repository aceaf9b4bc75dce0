//! Catching up: a lagging backup by state transfer, a crashed replica from its log.

mod core_support;

use core_support::*;
use replica::events::ReplicaEvent;
use replica::sim::SimConfig;
use replica::{ReplicaId, Seq};

#[test]
fn backup_partitioned_longer_than_a_checkpoint_interval_catches_up_by_state_transfer() {
    for seed in 1..=2 {
        let mut net = network(SimConfig {
            seed,
            checkpoint_interval: 8,
            watermark_window: 32,
            max_batch: 2,
            ..SimConfig::default()
        });
        let mut driver = Driver::new(seed);
        let lagging = ReplicaId(3);
        assert!(driver.run_ops(&mut net, 5, 30_000), "seed {seed}: warm-up");
        net.isolate(lagging);
        assert!(
            driver.run_ops(&mut net, 30, 60_000),
            "seed {seed}: progress without it"
        );
        let stable = net.core(ReplicaId(0)).expect("running").stable_checkpoint();
        let behind = net.core(lagging).expect("running").last_executed();
        assert!(
            stable.0 >= behind.0 + 8,
            "seed {seed}: the partition did not outlast a checkpoint ({behind:?} vs {stable:?})"
        );
        net.heal();
        assert!(
            driver.run_ops(&mut net, 20, 60_000),
            "seed {seed}: after healing"
        );
        assert!(
            net.run_until(all_replicas_converged, 30_000),
            "seed {seed}: the lagging backup did not catch up ({:?} vs {:?})",
            net.core(lagging).map(|c| c.last_executed()),
            net.core(ReplicaId(0)).map(|c| c.last_executed()),
        );
        let transfers = count_events(
            &net,
            lagging,
            |e| matches!(e, ReplicaEvent::StateTransfer { to_seq, .. } if *to_seq > behind),
        );
        assert!(
            transfers > 0,
            "seed {seed}: caught up without a state transfer"
        );
        assert_no_agreement_violations(&net);
    }
}

#[test]
fn crashed_replica_restarts_from_its_log_recovers_and_converges() {
    for seed in 1..=2 {
        let mut net = network(SimConfig {
            seed,
            ..SimConfig::default()
        });
        let mut driver = Driver::new(seed);
        let victim = ReplicaId(2);
        assert!(driver.run_ops(&mut net, 15, 30_000), "seed {seed}: warm-up");
        net.crash(victim).expect("running");
        assert!(net.core(victim).is_none());
        let disk = net.disk(victim).expect("known replica");
        assert!(
            disk.snapshot.is_some() || !disk.records.is_empty(),
            "seed {seed}: nothing was persisted"
        );
        let snapshot_seq = disk.snapshot.as_ref().map_or(Seq(0), |s| s.seq);
        assert!(
            driver.run_ops(&mut net, 15, 60_000),
            "seed {seed}: progress without it"
        );
        net.restart(victim).expect("crashed");
        net.run_for(1);
        let recovered: Vec<_> = net
            .events(victim)
            .iter()
            .filter_map(|e| match &e.event {
                ReplicaEvent::Recovered { stable_seq, .. } => Some(*stable_seq),
                _ => None,
            })
            .collect();
        assert_eq!(
            recovered,
            vec![snapshot_seq],
            "seed {seed}: one Recovered event"
        );
        assert!(net.core(victim).expect("running").last_executed() >= snapshot_seq);
        assert!(
            driver.run_ops(&mut net, 20, 60_000),
            "seed {seed}: after restart"
        );
        assert!(
            net.run_until(all_replicas_converged, 30_000),
            "seed {seed}: the restarted replica did not converge"
        );
        assert_no_agreement_violations(&net);
    }
}

#[test]
fn replica_restarted_without_peers_rebuilds_its_state_from_disk_alone() {
    let mut net = network(SimConfig {
        seed: 7,
        ..SimConfig::default()
    });
    let mut driver = Driver::new(7);
    let victim = ReplicaId(1);
    assert!(driver.run_ops(&mut net, 20, 30_000));
    assert!(net.run_until(all_replicas_converged, 10_000));
    net.crash(victim).expect("running");
    let snapshot = net
        .disk(victim)
        .and_then(|d| d.snapshot.clone())
        .expect("80 requests at interval 16 made a checkpoint stable");
    net.isolate(victim);
    net.restart(victim).expect("crashed");
    net.run_for(1);
    let core = net.core(victim).expect("running");
    assert!(core.stable_checkpoint() >= snapshot.seq);
    assert!(core.last_executed() >= snapshot.seq);
    if core.last_executed() == snapshot.seq {
        assert_eq!(core.state_digest(), snapshot.state.digest());
    }
}
