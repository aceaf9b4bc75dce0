//! The interceptor seam in the simulator: Byzantine behaviours run in-process.

mod core_support;

use core_support::*;
use replica::core::Effect;
use replica::message::WireMessage;
use replica::node::{InterceptContext, Interceptor};
use replica::sim::SimConfig;
use replica::verify::RejectReason;
use replica::{ReplicaId, View};
use std::time::Duration;

/// Sends nothing at all: a crashed replica that still receives.
struct Silent;

impl Interceptor for Silent {
    fn outbound(&mut self, effect: Effect, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        match effect {
            Effect::Send { .. } | Effect::Broadcast(_) | Effect::Reply { .. } => Vec::new(),
            other => vec![(Duration::ZERO, other)],
        }
    }
}

/// Rewrites the digest of its PREPAREs and COMMITs without re-signing them.
struct DigestRewriter;

impl Interceptor for DigestRewriter {
    fn outbound(&mut self, effect: Effect, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        let rewrite = |message: WireMessage| match message {
            WireMessage::Prepare(mut m) => {
                m.body.digest.0[0] ^= 0xff;
                WireMessage::Prepare(m)
            }
            WireMessage::Commit(mut m) => {
                m.body.digest.0[0] ^= 0xff;
                WireMessage::Commit(m)
            }
            other => other,
        };
        let effect = match effect {
            Effect::Broadcast(m) => Effect::Broadcast(rewrite(m)),
            Effect::Send { to, message } => Effect::Send {
                to,
                message: rewrite(message),
            },
            other => other,
        };
        vec![(Duration::ZERO, effect)]
    }
}

#[test]
fn a_silent_backup_does_not_stop_progress_or_agreement() {
    let mut net = network(SimConfig {
        seed: 31,
        ..SimConfig::default()
    });
    net.set_interceptor(ReplicaId(2), Box::new(Silent))
        .expect("known replica");
    assert!(!net.is_honest(ReplicaId(2)));
    let mut driver = Driver::new(31);
    assert!(driver.run_ops(&mut net, 20, 60_000));
    assert_no_agreement_violations(&net);
    assert_matches_sequential_replay(&net, ReplicaId(0));
}

#[test]
fn a_silent_primary_is_replaced_by_a_view_change() {
    let mut net = network(SimConfig {
        seed: 32,
        ..SimConfig::default()
    });
    net.set_interceptor(ReplicaId(0), Box::new(Silent))
        .expect("known replica");
    let mut driver = Driver::new(32);
    assert!(driver.run_ops(&mut net, 10, 60_000));
    assert!(net.core(ReplicaId(1)).expect("running").view() > View(0));
    assert_no_agreement_violations(&net);
}

#[test]
fn messages_rewritten_by_a_byzantine_replica_are_rejected_by_honest_ones() {
    let mut net = network(SimConfig {
        seed: 33,
        ..SimConfig::default()
    });
    let liar = ReplicaId(3);
    net.set_interceptor(liar, Box::new(DigestRewriter))
        .expect("known replica");
    let mut driver = Driver::new(33);
    assert!(driver.run_ops(&mut net, 10, 60_000));
    for honest in net.replica_ids().filter(|r| *r != liar) {
        assert!(
            net.rejection_count(honest, RejectReason::BadSignature) > 0,
            "replica {honest} accepted rewritten messages"
        );
    }
    assert_no_agreement_violations(&net);
}
