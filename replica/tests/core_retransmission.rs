//! Retransmitted protocol messages are answered, not echoed back and forth.

mod core_support;

use core_support::*;
use replica::core::Effect;
use replica::crypto::key_from_seed;
use replica::events::ReplicaEvent;
use replica::kv::Operation;
use replica::message::{Commit, FetchState, MessageKind, Signed, WireMessage};
use replica::node::{InterceptContext, Interceptor};
use replica::sim::{SimConfig, SimNetwork};
use replica::{ClientId, Principal, ReplicaId};
use std::time::Duration;

fn one_client_network(seed: u64) -> SimNetwork {
    network(SimConfig {
        seed,
        clients: 1,
        ..SimConfig::default()
    })
}

/// One client puts one key, and the put completes.
fn complete_one_put(net: &mut SimNetwork) {
    net.submit(
        ClientId(0),
        Operation::Put {
            key: "k".into(),
            value: "v".into(),
        },
    )
    .expect("idle client");
    assert!(net.run_until(|n| n.completed().len() == 1, 10_000));
}

#[test]
fn a_duplicated_vote_gets_a_bounded_answer_not_an_endless_echo() {
    let seed = 41;
    let mut net = one_client_network(seed);
    complete_one_put(&mut net);
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

/// The primary's PRE-PREPAREs reach every backup but replica 3 (a lossy link, modelled on the
/// primary's side so the rest of the traffic is untouched).
struct PrePrepareNotTo3;

impl Interceptor for PrePrepareNotTo3 {
    fn outbound(&mut self, effect: Effect, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        match effect {
            Effect::Broadcast(message @ WireMessage::PrePrepare(_)) => [1, 2]
                .into_iter()
                .map(|to| {
                    let to = ReplicaId(to);
                    let message = message.clone();
                    (Duration::ZERO, Effect::Send { to, message })
                })
                .collect(),
            other => vec![(Duration::ZERO, other)],
        }
    }
}

#[test]
fn a_backup_that_missed_the_last_pre_prepare_catches_up_without_more_traffic() {
    let mut net = one_client_network(43);
    net.set_interceptor(ReplicaId(0), Box::new(PrePrepareNotTo3))
        .expect("known replica");
    complete_one_put(&mut net);
    let executed = |n: &SimNetwork, r: u32| n.core(ReplicaId(r)).map(|c| c.last_executed());
    assert_eq!(
        executed(&net, 3),
        Some(replica::Seq(0)),
        "replica 3 saw the PREPAREs and COMMITs but not the batch"
    );
    // No client sends anything more: replica 3 must ask for what it misses, well before its
    // view-change timer would take it out of the view alone.
    let view_change_ms = net.config().timeouts.view_change_ms;
    assert!(
        net.run_until(|n| executed(n, 3) == executed(n, 1), view_change_ms / 2),
        "replica 3 is still at {:?}, the others at {:?}",
        executed(&net, 3),
        executed(&net, 1)
    );
    assert_eq!(
        net.core(ReplicaId(3)).map(|c| c.state_digest()),
        net.core(ReplicaId(1)).map(|c| c.state_digest())
    );
    assert_eq!(
        net.core(ReplicaId(3)).map(|c| c.view()),
        Some(replica::View(0))
    );
}

#[test]
fn a_peer_asking_for_state_over_and_over_gets_one_answer_per_tick() {
    let seed = 47;
    let mut net = one_client_network(seed);
    complete_one_put(&mut net);
    assert!(net.run_until(all_replicas_converged, 10_000));
    let transfers = |n: &SimNetwork| {
        n.stats()
            .sent_by_kind
            .get(&MessageKind::StateTransfer)
            .copied()
            .unwrap_or(0)
    };
    let before = transfers(&net);
    // Replica 3 (faulty here) claims to have executed nothing, again and again.
    let key = key_from_seed(seed, Principal::Replica(ReplicaId(3)));
    for _ in 0..20 {
        let fetch = Signed::sign(
            FetchState {
                have: replica::Seq(0),
            },
            Principal::Replica(ReplicaId(3)),
            &key,
        );
        net.inject(ReplicaId(1), &WireMessage::FetchState(fetch))
            .expect("known replica");
    }
    net.run_for(5);
    assert_eq!(transfers(&net) - before, 1, "one signed answer, not twenty");
}
