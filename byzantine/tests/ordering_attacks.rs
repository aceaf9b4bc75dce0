//! Behaviours that attack ordering and view changes, each with one faulty replica of four:
//! the attack happens, and the honest replicas stay in agreement and make progress.

mod support;

use replica::core::WalRecord;
use replica::events::ReplicaEvent;
use replica::message::WireMessage;
use replica::sim::SimNetwork;
use replica::verify::RejectReason;
use replica::{ClientId, ReplicaId, Seq, View};
use std::collections::{BTreeMap, BTreeSet};
use support::*;

const PRIMARY: ReplicaId = ReplicaId(0);

#[test]
fn silent_primary_is_voted_out_and_the_others_agree() {
    let mut net = network(cluster(101));
    let tape = Tap::install(&mut net, PRIMARY, "silent", &[], 101);
    assert!(Driver::new(101).run_ops(&mut net, 8, 60_000));
    let sent = tape
        .lock()
        .expect("tape")
        .iter()
        .filter(|e| is_transmission(e))
        .count();
    assert_eq!(sent, 0, "a silent replica put something on the wire");
    for r in honest(&net) {
        assert!(
            net.core(r).expect("running").view() > View(0),
            "replica {r} kept the silent primary"
        );
    }
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

fn is_transmission(effect: &replica::core::Effect) -> bool {
    use replica::core::Effect;
    matches!(
        effect,
        Effect::Send { .. } | Effect::Broadcast(_) | Effect::Reply { .. }
    )
}

#[test]
fn crash_later_primary_serves_view_zero_until_its_moment_then_is_replaced() {
    let mut net = network(cluster(102));
    install(
        &mut net,
        PRIMARY,
        "crash-later",
        &[("after_ms", "100")],
        102,
    );
    let mut driver = Driver::new(102);
    assert!(driver.run_ops(&mut net, 12, 90_000));
    let commits_in = |view: View| {
        net.events(ReplicaId(1))
            .iter()
            .filter(|e| matches!(&e.event, ReplicaEvent::Commit { view: v, .. } if *v == view))
            .count()
    };
    assert!(
        commits_in(View(0)) > 0,
        "nothing committed while the primary was honest"
    );
    let last_view_zero_commit = net
        .events(ReplicaId(1))
        .iter()
        .filter(|e| matches!(&e.event, ReplicaEvent::Commit { view: View(0), .. }))
        .map(|e| e.at_ms())
        .max()
        .unwrap_or_default();
    assert!(
        last_view_zero_commit <= 100 + 20,
        "view 0 went on after the crash"
    );
    assert!(net.core(ReplicaId(1)).expect("running").view() > View(0));
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(2));
}

/// (view, seq) -> batch digest -> honest replicas that accepted that PRE-PREPARE from `from`.
type Accepted = BTreeMap<(View, Seq), BTreeMap<String, BTreeSet<ReplicaId>>>;

fn record_accepted_pre_prepares(net: &SimNetwork, from: ReplicaId, accepted: &mut Accepted) {
    for r in honest(net) {
        let Some(disk) = net.disk(r) else { continue };
        for WalRecord::Message(message) in &disk.records {
            if let WireMessage::PrePrepare(pp) = message
                && pp.replica() == Some(from)
            {
                accepted
                    .entry((pp.body.view, pp.body.seq))
                    .or_default()
                    .entry(pp.body.digest.to_hex())
                    .or_default()
                    .insert(r);
            }
        }
    }
}

#[test]
fn equivocating_primary_shows_backups_different_batches_for_one_seq_without_breaking_agreement() {
    let mut net = network(cluster(103));
    install(&mut net, PRIMARY, "equivocate", &[], 103);
    let mut accepted = Accepted::new();
    let mut step = 0u64;
    let progressed = Driver::new(103).run_ops_observed(&mut net, 10, 120_000, |net| {
        step += 1;
        if step.is_multiple_of(16) {
            record_accepted_pre_prepares(net, PRIMARY, &mut accepted);
        }
    });
    record_accepted_pre_prepares(&net, PRIMARY, &mut accepted);
    assert!(progressed, "clients stalled under an equivocating primary");
    let conflicting = accepted
        .values()
        .filter(|digests| digests.len() > 1)
        .count();
    assert!(
        conflicting > 0,
        "no two backups accepted different PRE-PREPAREs for one seq"
    );
    assert!(settle(&mut net, 30_000), "honest replicas did not converge");
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

#[test]
fn censoring_primary_forces_a_view_change_and_the_censored_client_is_served_after_it() {
    let mut net = network(cluster(104));
    install(&mut net, PRIMARY, "censor", &[("clients", "0")], 104);
    assert!(Driver::new(104).run_ops(&mut net, 6, 90_000));
    let censored = ClientId(0);
    let views_of_censored: BTreeSet<View> = net
        .events(ReplicaId(1))
        .iter()
        .filter_map(|e| match &e.event {
            ReplicaEvent::Commit { view, requests, .. }
                if requests.iter().any(|r| r.client == censored) =>
            {
                Some(*view)
            }
            _ => None,
        })
        .collect();
    assert!(!views_of_censored.is_empty());
    assert!(
        !views_of_censored.contains(&View(0)),
        "the censoring primary ordered the censored client: {views_of_censored:?}"
    );
    for r in honest(&net) {
        assert!(
            view_changes_completed(&net, r) > 0,
            "replica {r} never changed view"
        );
    }
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(3));
}

#[test]
fn slow_primary_stays_just_under_the_timeout_so_every_operation_is_slow_but_no_view_changes() {
    let mut config = cluster(105);
    config.clients = 2;
    let view_change_ms = config.timeouts.view_change_ms;
    let mut net = network(config);
    install(&mut net, PRIMARY, "slow-primary", &[], 105);
    assert!(Driver::new(105).run_ops(&mut net, 5, 120_000));
    let delay = view_change_ms * 9 / 10;
    for op in net.completed() {
        let latency = op.latency_ms();
        assert!(
            latency >= delay,
            "an operation took {latency} ms, under the {delay} ms delay"
        );
    }
    for r in honest(&net) {
        assert_eq!(
            net.core(r).expect("running").view(),
            View(0),
            "replica {r} lost patience"
        );
    }
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

#[test]
fn bad_view_changes_and_a_bad_new_view_are_rejected_and_a_later_view_takes_over() {
    // Replica 1 is the primary of view 1: cutting replica 0 off forces a view change to it.
    let liar = ReplicaId(1);
    let mut net = network(cluster(106));
    install(&mut net, liar, "bad-view-change", &[], 106);
    let mut driver = Driver::new(106);
    assert!(driver.run_ops(&mut net, 3, 30_000));
    net.isolate(PRIMARY);
    driver.run_ops(&mut net, 2, 4_000);
    net.heal();
    assert!(
        driver.run_ops(&mut net, 4, 120_000),
        "no progress after the heal"
    );
    let rejected = rejections_of(&net, replica::Principal::Replica(liar));
    let refused_view_changes = rejected
        .get(&RejectReason::InvalidViewChange)
        .copied()
        .unwrap_or(0)
        + rejected
            .get(&RejectReason::BadSignature)
            .copied()
            .unwrap_or(0);
    assert!(
        refused_view_changes > 0,
        "nothing of the liar's was refused: {rejected:?}"
    );
    for r in honest(&net) {
        let view = net.core(r).expect("running").view();
        assert!(
            view > View(1),
            "replica {r} settled in the liar's view {view}"
        );
    }
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(2));
}

#[test]
fn two_different_byzantine_replicas_among_seven_leave_the_five_honest_in_agreement() {
    let mut config = cluster(107);
    config.f = 2;
    let mut net = network(config);
    install(&mut net, PRIMARY, "equivocate", &[], 107);
    install(
        &mut net,
        ReplicaId(4),
        "mutate",
        &[("probability", "0.3")],
        107,
    );
    assert!(Driver::new(107).run_ops(&mut net, 8, 120_000));
    assert_eq!(honest(&net).len(), 5);
    assert!(settle(&mut net, 30_000), "honest replicas did not converge");
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}
