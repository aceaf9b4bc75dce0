//! Behaviours that lie in, forge, replay or flood messages, each with one faulty replica of
//! four: the attack happens (honest replicas or clients refuse it), and the honest replicas
//! stay in agreement and make progress.

mod support;

use replica::core::Effect;
use replica::events::ReplicaEvent;
use replica::message::{FetchState, MessageKind, Signed, WireMessage};
use replica::verify::RejectReason;
use replica::{Principal, ReplicaId, Seq};
use std::collections::{BTreeMap, BTreeSet};
use support::*;

const FAULTY: ReplicaId = ReplicaId(3);

fn count(map: &BTreeMap<RejectReason, usize>, reason: RejectReason) -> usize {
    map.get(&reason).copied().unwrap_or(0)
}

#[test]
fn wrong_replies_are_fabricated_but_f_plus_one_matching_correct_replies_win() {
    let mut net = network(cluster(201));
    let tape = Tap::install(&mut net, FAULTY, "wrong-reply", &[], 201);
    assert!(Driver::new(201).run_ops(&mut net, 10, 60_000));
    let truth: BTreeMap<(u32, u64), String> = net
        .events(ReplicaId(1))
        .iter()
        .filter_map(|e| match &e.event {
            ReplicaEvent::Execute {
                request, result, ..
            } => Some(((request.client.0, request.timestamp.0), result.clone())),
            _ => None,
        })
        .collect();
    let mut lies = 0;
    for effect in tape.lock().expect("tape").iter() {
        if let Effect::Reply { reply, .. } = effect {
            let key = (reply.body.client.0, reply.body.timestamp.0);
            if let Some(true_result) = truth.get(&key) {
                assert_ne!(
                    &reply.body.result.to_string(),
                    true_result,
                    "an honest reply slipped out"
                );
                lies += 1;
            }
        }
    }
    assert!(lies > 10, "only {lies} fabricated replies");
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

fn stale_rejections(net: &replica::sim::SimNetwork) -> usize {
    honest(net)
        .into_iter()
        .map(|r| {
            let rejections = net.rejections(r);
            [
                RejectReason::OutsideWatermarks,
                RejectReason::StaleView,
                RejectReason::FutureView,
            ]
            .iter()
            .map(|reason| rejections.get(reason).copied().unwrap_or(0) as usize)
            .sum::<usize>()
        })
        .sum()
}

/// A workload with a view change in the middle (replica 0 cut off for a while), so that
/// messages of an older view exist; `attacker` runs on replica 3 if given.
fn run_with_view_change(
    seed: u64,
    attacker: Option<(&str, &[(&str, &str)])>,
) -> replica::sim::SimNetwork {
    let mut net = network(cluster(seed));
    if let Some((name, params)) = attacker {
        install(&mut net, FAULTY, name, params, seed);
    }
    let mut driver = Driver::new(seed);
    assert!(driver.run_ops(&mut net, 4, 30_000));
    net.isolate(ReplicaId(0));
    driver.run_ops(&mut net, 2, 5_000);
    net.heal();
    assert!(
        driver.run_ops(&mut net, 8, 60_000),
        "no progress after the heal"
    );
    net
}

#[test]
fn replayed_old_messages_are_refused_as_stale_and_change_nothing() {
    // The same run without the attacker is the baseline.
    let baseline = run_with_view_change(202, None);
    let mut net = run_with_view_change(202, Some(("replay", &[("burst", "16")])));
    let relayed: usize = honest(&net)
        .into_iter()
        .flat_map(|r| net.events(r).iter())
        .filter(|e| {
            matches!(&e.event, ReplicaEvent::Rejected { from: Some(Principal::Replica(from)), .. }
                if *from != FAULTY)
        })
        .count();
    assert!(
        stale_rejections(&net) > stale_rejections(&baseline) + 20,
        "replays were not refused: {} vs baseline {}",
        stale_rejections(&net),
        stale_rejections(&baseline)
    );
    assert!(
        relayed > 0,
        "no replayed message of another replica was refused"
    );
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

#[test]
fn messages_claiming_another_sender_are_rejected_as_bad_signatures() {
    let mut net = network(cluster(203));
    install(&mut net, FAULTY, "forge-sender", &[], 203);
    assert!(Driver::new(203).run_ops(&mut net, 10, 60_000));
    let claimed_replicas: BTreeSet<ReplicaId> = (0..3)
        .map(ReplicaId)
        .filter(|r| {
            count(
                &rejections_of(&net, Principal::Replica(*r)),
                RejectReason::BadSignature,
            ) > 0
        })
        .collect();
    assert!(
        !claimed_replicas.is_empty(),
        "no forged replica message was refused"
    );
    let claimed_clients = net
        .client_ids()
        .filter(|c| {
            count(
                &rejections_of(&net, Principal::Client(*c)),
                RejectReason::BadSignature,
            ) > 0
        })
        .count();
    assert!(claimed_clients > 0, "no forged client request was refused");
    assert!(
        net.stats().client_rejections > 0,
        "clients accepted forged replies"
    );
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

#[test]
fn a_flood_outside_the_watermarks_is_rejected_and_memory_stays_bounded() {
    let config = cluster(204);
    let window = config.watermark_window as usize;
    let mut net = network(config);
    install(&mut net, FAULTY, "flood", &[("rate", "4000")], 204);
    let mut largest_log = 0;
    let progressed = Driver::new(204).run_ops_observed(&mut net, 10, 60_000, |net| {
        for r in honest(net) {
            largest_log = largest_log.max(net.core(r).map_or(0, |c| c.log_len()));
        }
    });
    assert!(progressed);
    // Over one more second of virtual time, 4000 messages each go to 3 honest replicas.
    let refused = |net: &replica::sim::SimNetwork| {
        count(
            &rejections_of(net, Principal::Replica(FAULTY)),
            RejectReason::OutsideWatermarks,
        )
    };
    let before = refused(&net);
    assert!(before > 0, "no flood message was refused");
    net.run_for(1000);
    let in_one_second = refused(&net) - before;
    assert!(
        in_one_second >= 11_000,
        "only {in_one_second} flood messages refused in a second"
    );
    assert!(
        largest_log <= window,
        "an honest log grew to {largest_log} slots"
    );
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

#[test]
fn checkpoint_lies_never_certify_a_state_and_lying_state_transfers_are_refused() {
    let liar = ReplicaId(0);
    let mut net = network(cluster(205));
    install(&mut net, liar, "checkpoint-lie", &[], 205);
    assert!(Driver::new(205).run_ops(&mut net, 10, 60_000));
    assert!(settle(&mut net, 10_000));
    for r in honest(&net) {
        let snapshot = net
            .disk(r)
            .and_then(|d| d.snapshot.clone())
            .expect("checkpoints became stable without the liar");
        assert!(snapshot.seq > Seq(0));
        assert!(
            snapshot
                .checkpoint_proof
                .iter()
                .all(|c| c.replica() != Some(liar)),
            "replica {r} certified a state with the liar's CHECKPOINT"
        );
    }
    // Ask the liar for state as replica 1 would when behind.
    let asker = ReplicaId(1);
    let key = net.replica_key(asker).expect("known replica").clone();
    let fetch = Signed::sign(FetchState { have: Seq(0) }, Principal::Replica(asker), &key);
    net.inject(liar, &WireMessage::FetchState(fetch))
        .expect("known replica");
    net.run_for(100);
    let refused = rejections_of(&net, Principal::Replica(liar));
    assert!(
        count(&refused, RejectReason::InvalidStateTransfer)
            + count(&refused, RejectReason::BadSignature)
            > 0,
        "the lying state transfer was not refused: {refused:?}"
    );
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(2));
}

#[test]
fn copies_for_old_and_future_views_are_rejected_as_stale_and_future() {
    let mut net = run_with_view_change(206, Some(("stale-view", &[])));
    let refused = rejections_of(&net, Principal::Replica(FAULTY));
    assert!(count(&refused, RejectReason::StaleView) > 0, "{refused:?}");
    assert!(count(&refused, RejectReason::FutureView) > 0, "{refused:?}");
    assert!(settle(&mut net, 10_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

fn rejected_kinds(net: &replica::sim::SimNetwork, signer: ReplicaId) -> BTreeSet<MessageKind> {
    honest(net)
        .into_iter()
        .flat_map(|r| net.events(r).iter())
        .filter_map(|e| match &e.event {
            ReplicaEvent::Rejected {
                kind: Some(kind),
                from: Some(from),
                ..
            } if *from == Principal::Replica(signer) => Some(*kind),
            _ => None,
        })
        .collect()
}

#[test]
fn small_scope_mutations_are_refused_for_several_reasons_and_agreement_holds() {
    let mut net = network(cluster(207));
    install(&mut net, FAULTY, "mutate", &[("probability", "0.3")], 207);
    assert!(Driver::new(207).run_ops(&mut net, 12, 90_000));
    let refused = rejections_of(&net, Principal::Replica(FAULTY));
    assert!(
        refused.len() >= 2,
        "mutations were refused for too few reasons: {refused:?}"
    );
    assert!(settle(&mut net, 20_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

#[test]
fn any_scope_mutations_of_chosen_rounds_touch_only_those_rounds() {
    let mut net = network(cluster(208));
    let params = [
        ("kinds", "commit,checkpoint"),
        ("probability", "0.5"),
        ("scope", "any"),
    ];
    install(&mut net, FAULTY, "mutate", &params, 208);
    assert!(Driver::new(208).run_ops(&mut net, 12, 90_000));
    let kinds = rejected_kinds(&net, FAULTY);
    assert!(kinds.contains(&MessageKind::Commit), "{kinds:?}");
    let chosen: BTreeSet<MessageKind> = [MessageKind::Commit, MessageKind::Checkpoint].into();
    assert!(
        kinds.is_subset(&chosen),
        "a round that was not chosen was mutated: {kinds:?}"
    );
    assert!(settle(&mut net, 20_000));
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}
