//! `equivocate-all` in the simulator, under MAC authentication: one faulty replica (primary or
//! backup) tells its peers conflicting PRE-PREPAREs, PREPAREs, COMMITs and VIEW-CHANGEs, each
//! accepted at its receiver, the same lie on every retransmission, and the honest replicas stay
//! in agreement and live; two such replicas (f+1) break agreement.

mod support;

use replica::auth::AuthMode;
use replica::core::Effect;
use replica::message::{MessageKind, WireMessage};
use replica::sim::{SimConfig, SimNetwork};
use replica::verify::{RejectReason, verify};
use replica::{ReplicaId, Seq, View};
use std::collections::{BTreeMap, BTreeSet};
use support::*;

fn macs(seed: u64) -> SimConfig {
    SimConfig {
        auth: AuthMode::Macs,
        ..cluster(seed)
    }
}

/// Every message the faulty replica signed, by recipient (broadcasts expanded).
fn sent(tape: &Tape, from: ReplicaId, n: u32) -> Vec<(ReplicaId, WireMessage)> {
    let tape = tape.lock().expect("tape");
    let mut out = Vec::new();
    for effect in tape.iter() {
        match effect {
            Effect::Send { to, message } => out.push((*to, message.clone())),
            Effect::Broadcast(message) => out.extend(
                (0..n)
                    .map(ReplicaId)
                    .filter(|r| *r != from)
                    .map(|to| (to, message.clone())),
            ),
            _ => {}
        }
    }
    out.retain(|(_, m)| m.signer() == replica(from.0));
    out
}

type Told = BTreeMap<(MessageKind, View, Seq), BTreeMap<ReplicaId, BTreeSet<String>>>;

/// (kind, view, seq) -> recipient -> the digests it was told.
fn told(sent: &[(ReplicaId, WireMessage)]) -> Told {
    let mut told = Told::new();
    for (to, message) in sent {
        let digest = match message {
            WireMessage::PrePrepare(m) => m.body.digest,
            WireMessage::Prepare(m) => m.body.digest,
            WireMessage::Commit(m) => m.body.digest,
            _ => continue,
        };
        let (Some(view), Some(seq)) = (message.view(), message.seq()) else {
            continue;
        };
        told.entry((message.kind(), view, seq))
            .or_default()
            .entry(*to)
            .or_default()
            .insert(digest.to_hex());
    }
    told
}

/// Each recipient accepts what it was sent: seal, signatures and digests check at its end.
fn assert_each_verifies_at_its_receiver(net: &SimNetwork, sent: &[(ReplicaId, WireMessage)]) {
    for (to, message) in sent {
        let keys = net.core(*to).expect("running").keys();
        let kind = message.kind();
        assert!(
            verify(message.clone(), keys).is_ok(),
            "{kind:?} to {to} does not verify there"
        );
    }
}

/// One digest per recipient and round (retransmissions repeat the lie); returns how many
/// rounds of `kind` told two recipients different digests.
fn split_rounds(told: &Told, kind: MessageKind) -> usize {
    let mut split = 0;
    for ((k, view, seq), by_peer) in told {
        for (peer, digests) in by_peer {
            assert_eq!(
                digests.len(),
                1,
                "{k:?} {view} {seq} to {peer}: {digests:?}"
            );
        }
        let distinct: BTreeSet<&String> = by_peer.values().flatten().collect();
        if *k == kind && distinct.len() > 1 {
            split += 1;
        }
    }
    split
}

/// Runs a cluster with `liar` equivocating, checks it split rounds of each of `kinds`, that
/// every copy verified where it landed, and that the honest replicas stayed safe.
fn assert_splits_and_honest_stay_safe(liar: ReplicaId, seed: u64, kinds: [MessageKind; 2]) {
    let mut net = network(macs(seed));
    let tape = Tap::install(&mut net, liar, "equivocate-all", &[], seed);
    assert!(
        Driver::new(seed).run_ops(&mut net, 8, 120_000),
        "clients stalled"
    );
    let sent = sent(&tape, liar, 4);
    let told = told(&sent);
    for kind in kinds {
        assert!(split_rounds(&told, kind) > 0, "no {kind:?} split");
    }
    assert_each_verifies_at_its_receiver(&net, &sent);
    assert!(settle(&mut net, 30_000), "honest replicas did not converge");
    assert_honest_agreement(&net);
    assert_clients_saw_sequential_results(&net, ReplicaId(1));
}

#[test]
fn an_equivocating_primary_splits_pre_prepares_and_commits_and_the_honest_stay_safe() {
    assert_splits_and_honest_stay_safe(
        ReplicaId(0),
        401,
        [MessageKind::PrePrepare, MessageKind::Commit],
    );
}

#[test]
fn an_equivocating_backup_splits_prepares_and_commits_and_the_honest_stay_safe() {
    assert_splits_and_honest_stay_safe(
        ReplicaId(2),
        402,
        [MessageKind::Prepare, MessageKind::Commit],
    );
}

#[test]
fn view_changes_are_split_too_each_valid_where_it_lands() {
    let liar = ReplicaId(2);
    let mut net = network(macs(403));
    let tape = Tap::install(&mut net, liar, "equivocate-all", &[], 403);
    let mut driver = Driver::new(403);
    assert!(driver.run_ops(&mut net, 6, 60_000));
    // Cut the honest primary off: the others change view, the liar among them.
    net.isolate(ReplicaId(0));
    assert!(
        driver.run_ops(&mut net, 4, 120_000),
        "no progress after the view change"
    );
    let sent = sent(&tape, liar, 4);
    let view_changes: Vec<&(ReplicaId, WireMessage)> = sent
        .iter()
        .filter(|(_, m)| m.kind() == MessageKind::ViewChange)
        .collect();
    let mut by_view: BTreeMap<View, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for (_, message) in &view_changes {
        if let WireMessage::ViewChange(vc) = message {
            by_view
                .entry(vc.body.new_view)
                .or_default()
                .insert(vc.signing_bytes());
        }
    }
    assert!(
        by_view.values().any(|bodies| bodies.len() > 1),
        "no VIEW-CHANGE split: {by_view:?}"
    );
    let owned: Vec<(ReplicaId, WireMessage)> = view_changes.into_iter().cloned().collect();
    assert_each_verifies_at_its_receiver(&net, &owned);
    let refused = rejections_of(&net, replica(liar.0));
    assert_eq!(
        refused.get(&RejectReason::InvalidViewChange),
        None,
        "{refused:?}"
    );
    net.heal();
    assert!(settle(&mut net, 30_000), "honest replicas did not converge");
    assert_honest_agreement(&net);
}

#[test]
fn two_equivocators_together_exceed_f_and_break_agreement() {
    let mut net = network(macs(404));
    for liar in [ReplicaId(0), ReplicaId(1)] {
        install(
            &mut net,
            liar,
            "equivocate-all",
            &[],
            404 + u64::from(liar.0),
        );
    }
    // Progress is not expected: two of four are faulty.
    let _ = Driver::new(404).run_ops(&mut net, 8, 30_000);
    let violations = net.agreement_violations();
    assert!(
        !violations.is_empty(),
        "two colluding equivocators did not split the honest replicas"
    );
}
