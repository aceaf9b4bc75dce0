//! Every PRE-PREPARE fits in one frame: a request too large for any PRE-PREPARE is refused by
//! every replica alike (so no view-change timer waits for it), and large requests that each fit
//! are split over several batches.

use replica::kv::Operation;
use replica::sim::{SimConfig, SimNetwork};
use replica::verify::RejectReason;
use replica::{ClientId, ReplicaId, View};

const CAP: usize = 4096;

/// One batch in flight at a time, so requests that arrive together share the next one.
fn network() -> SimNetwork {
    SimNetwork::new(SimConfig {
        seed: 3,
        max_frame_bytes: CAP,
        max_batch: 16,
        pipeline_depth: 1,
        ..SimConfig::default()
    })
    .expect("valid simulated cluster")
}

fn put(key: &str, bytes: usize) -> Operation {
    Operation::Put {
        key: key.into(),
        value: "x".repeat(bytes),
    }
}

fn total(net: &SimNetwork, reason: RejectReason) -> u64 {
    net.replica_ids()
        .map(|r| net.rejection_count(r, reason))
        .sum()
}

#[test]
fn a_request_that_fits_a_frame_but_no_pre_prepare_is_refused_by_every_replica_and_nothing_stalls() {
    let mut net = network();
    // Its REQUEST frame is under the cap; the PRE-PREPARE around it would not be.
    net.submit(ClientId(0), put("big", CAP - 150))
        .expect("client 0 is idle");
    net.submit(ClientId(1), put("small", 8))
        .expect("client 1 is idle");
    net.run_for(20_000);
    for replica in net.replica_ids() {
        let view = net.core(replica).expect("running").view();
        assert_eq!(view, View(0), "replica {replica} changed view over it");
    }
    assert_eq!(total(&net, RejectReason::OversizedFrame), 0);
    let done: Vec<ClientId> = net.completed().iter().map(|c| c.id().client).collect();
    assert_eq!(done, vec![ClientId(1)], "only the small request completes");
    assert!(
        total(&net, RejectReason::OversizedRequest) >= 4,
        "every replica refuses it"
    );
}

#[test]
fn large_requests_that_each_fit_are_split_over_pre_prepares_within_the_cap() {
    let mut net = network();
    for c in 0..4 {
        net.submit(ClientId(c), put(&format!("k{c}"), CAP / 3))
            .expect("idle client");
    }
    net.run_for(20_000);
    assert_eq!(net.completed().len(), 4, "every request completes");
    assert_eq!(total(&net, RejectReason::OversizedFrame), 0);
    assert_eq!(total(&net, RejectReason::OversizedRequest), 0);
    let primary = ReplicaId(0);
    assert!(
        net.core(primary).expect("running").last_executed().0 >= 2,
        "four thirds of a frame need at least two PRE-PREPAREs"
    );
}
