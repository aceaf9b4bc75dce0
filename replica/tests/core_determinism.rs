//! The simulator is a pure function of its seed and the calls made on it.

mod core_support;

use core_support::*;
use replica::ReplicaId;
use replica::sim::{CompletedOp, Latency, SimConfig, SimEvent};

type Outcome = (Vec<Vec<SimEvent>>, Vec<CompletedOp>, u64);

/// Jitter, reordering, drops and a crash with restart: every source of choice the simulator has.
fn eventful_run(seed: u64) -> Outcome {
    let mut net = network(SimConfig {
        seed,
        clients: 3,
        drop_probability: 0.02,
        reorder: true,
        latency: Latency {
            base_ms: 1,
            jitter_ms: 6,
        },
        ..SimConfig::default()
    });
    let mut driver = Driver::new(seed);
    assert!(driver.run_ops(&mut net, 8, 30_000));
    net.crash(ReplicaId(3)).expect("running");
    assert!(driver.run_ops(&mut net, 8, 30_000));
    net.restart(ReplicaId(3)).expect("crashed");
    assert!(driver.run_ops(&mut net, 8, 30_000));
    let events = net.replica_ids().map(|r| net.events(r).to_vec()).collect();
    (events, net.completed().to_vec(), net.now_ms())
}

#[test]
fn two_runs_with_the_same_seed_produce_identical_event_lists() {
    let first = eventful_run(21);
    let second = eventful_run(21);
    assert!(!first.1.is_empty(), "the run completed operations");
    assert!(
        first.0.iter().all(|events| !events.is_empty()),
        "every replica reported events"
    );
    assert_eq!(first.0, second.0, "event lists");
    assert_eq!(first.1, second.1, "completed operations");
    assert_eq!(first.2, second.2, "end time");
}
