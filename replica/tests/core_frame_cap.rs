//! Every message that carries batches fits in one frame: a PRE-PREPARE, and a VIEW-CHANGE or
//! NEW-VIEW carrying a certified batch for every sequence number of the window. A request too
//! large for a batch is refused by every replica alike (so no view-change timer waits for it),
//! and large requests that each fit are split over several batches.

use replica::kv::Operation;
use replica::sim::{SimConfig, SimNetwork};
use replica::verify::RejectReason;
use replica::{ClientId, ReplicaId, View};

/// With f = 1 and a window of 8, a frame holds (2f+2) x (8+1) = 36 certified batches: a batch
/// may carry a little under CAP / 36 = 4096 bytes of requests.
const CAP: usize = 36 * 4096;
const BATCH: usize = CAP / 36;

/// One batch in flight at a time, so requests that arrive together share the next one.
fn network() -> SimNetwork {
    SimNetwork::new(SimConfig {
        seed: 3,
        max_frame_bytes: CAP,
        max_batch: 16,
        pipeline_depth: 1,
        checkpoint_interval: 4,
        watermark_window: 8,
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
fn a_request_larger_than_a_batch_may_carry_is_refused_by_every_replica_and_nothing_stalls() {
    let mut net = network();
    // Its frame is far under the cap, but a window of certificates carrying it would not be.
    net.submit(ClientId(0), put("big", BATCH + 100))
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
        net.submit(ClientId(c), put(&format!("k{c}"), BATCH / 3))
            .expect("idle client");
    }
    net.run_for(20_000);
    assert_eq!(net.completed().len(), 4, "every request completes");
    assert_eq!(total(&net, RejectReason::OversizedFrame), 0);
    assert_eq!(total(&net, RejectReason::OversizedRequest), 0);
    let primary = ReplicaId(0);
    assert!(
        net.core(primary).expect("running").last_executed().0 >= 2,
        "four thirds of a batch need at least two PRE-PREPAREs"
    );
}

/// The bound is what lets a view change complete: the window full of the largest batches the
/// primary may propose, the primary crashes, and the VIEW-CHANGEs and the NEW-VIEW carrying
/// those certificates still fit in a frame.
#[test]
fn a_view_change_completes_while_the_window_holds_the_largest_batches_allowed() {
    let mut net = network();
    // Each request alone nearly fills a batch, so every PRE-PREPARE carries one of them.
    let largest = BATCH - 600;
    for round in 0..3 {
        for c in 0..4 {
            net.submit(ClientId(c), put(&format!("k{c}r{round}"), largest))
                .expect("idle client");
        }
        net.run_for(2_000);
    }
    assert_eq!(net.completed().len(), 12, "the warm-up completes");
    // The primary crashes with these in flight: prepared somewhere, carried by VIEW-CHANGEs.
    for c in 0..4 {
        net.submit(ClientId(c), put(&format!("k{c}after"), largest))
            .expect("idle client");
    }
    net.run_for(2);
    net.crash(ReplicaId(0)).expect("the primary was running");
    net.run_for(30_000);
    assert_eq!(
        net.completed().len(),
        16,
        "requests complete in the new view"
    );
    assert_eq!(total(&net, RejectReason::OversizedFrame), 0);
    for replica in net.replica_ids().filter(|r| *r != ReplicaId(0)) {
        assert!(net.core(replica).expect("running").view() > View(0));
    }
}

/// The bound holds against a faulty primary too: a backup refuses a PRE-PREPARE whose batch is
/// over it, as an honest primary would never have proposed it.
#[test]
fn a_backup_refuses_a_pre_prepare_whose_batch_is_over_the_byte_bound() {
    use replica::message::{PrePrepare, Request, Signed, WireMessage, batch_digest};
    use replica::{Principal, Seq, Timestamp};
    let mut net = network();
    let client = net.client_key(ClientId(0)).expect("client 0").clone();
    let batch: Vec<Signed<Request>> = (0..2)
        .map(|i| {
            let body = Request {
                client: ClientId(0),
                timestamp: Timestamp(i + 1),
                op: put(&format!("k{i}"), BATCH * 2 / 3),
            };
            Signed::sign(body, Principal::Client(ClientId(0)), &client)
        })
        .collect();
    let body = PrePrepare {
        view: View(0),
        seq: Seq(1),
        digest: batch_digest(&batch),
        batch,
    };
    let primary = net.replica_key(ReplicaId(0)).expect("replica 0").clone();
    let pre_prepare = Signed::sign(body, Principal::Replica(ReplicaId(0)), &primary);
    net.inject(ReplicaId(1), &WireMessage::PrePrepare(pre_prepare))
        .expect("replica 1 runs");
    net.run_for(10);
    assert_eq!(
        net.rejection_count(ReplicaId(1), RejectReason::OversizedBatch),
        1
    );
}
