//! Retransmitted protocol messages are answered, not echoed back and forth.

mod core_support;

use core_support::*;
use replica::crypto::key_from_seed;
use replica::events::ReplicaEvent;
use replica::kv::Operation;
use replica::message::{Commit, Signed, WireMessage};
use replica::sim::SimConfig;
use replica::{ClientId, Principal, ReplicaId};

#[test]
fn a_duplicated_vote_gets_a_bounded_answer_not_an_endless_echo() {
    let seed = 41;
    let mut net = network(SimConfig {
        seed,
        clients: 1,
        ..SimConfig::default()
    });
    net.submit(
        ClientId(0),
        Operation::Put {
            key: "k".into(),
            value: "v".into(),
        },
    )
    .expect("idle client");
    assert!(net.run_until(|n| n.completed().len() == 1, 10_000));
    assert!(net.run_until(all_replicas_converged, 10_000));
    let (view, seq, digest) = net
        .events(ReplicaId(2))
        .iter()
        .find_map(|e| match &e.event {
            ReplicaEvent::Commit {
                view, seq, digest, ..
            } => Some((*view, *seq, digest.clone())),
            _ => None,
        })
        .expect("replica 2 committed the put");
    let digest = replica::digest::Digest(
        hex::decode(digest)
            .expect("event digests are hex")
            .try_into()
            .expect("32 bytes"),
    );
    // Replica 2's COMMIT again, as a retransmission (or a duplicating network) delivers it.
    let key = key_from_seed(seed, Principal::Replica(ReplicaId(2)));
    let commit = Signed::sign(
        Commit { view, seq, digest },
        Principal::Replica(ReplicaId(2)),
        &key,
    );
    let sent_before = net.stats().sent;
    net.inject(ReplicaId(1), &WireMessage::Commit(commit))
        .expect("known replica");
    // Stop early once it is clearly an echo, so a regression fails instead of hanging.
    net.run_until(|n| n.stats().sent - sent_before > 1_000, 100);
    let sent = net.stats().sent - sent_before;
    assert!(
        sent <= 10,
        "one duplicate vote led to {sent} frames in 100 ms: {:?}",
        net.stats().sent_by_kind
    );
}
