//! Forged and rewritten messages are refused on the receive path, for the right reason, and
//! change nothing.

mod core_support;

use core_support::*;
use replica::crypto::key_from_seed;
use replica::digest::Digest;
use replica::events::ReplicaEvent;
use replica::kv::Operation;
use replica::message::{Commit, PrePrepare, Prepare, Request, Signed, WireMessage, batch_digest};
use replica::sim::{SimConfig, SimNetwork};
use replica::verify::RejectReason;
use replica::{ClientId, Principal, ReplicaId, Seq, Timestamp, View};
use std::collections::BTreeMap;

const SEED: u64 = 9;

fn replica_key(i: u32) -> ed25519_dalek::SigningKey {
    key_from_seed(SEED, Principal::Replica(ReplicaId(i)))
}

fn client_key(i: u32) -> ed25519_dalek::SigningKey {
    key_from_seed(SEED, Principal::Client(ClientId(i)))
}

fn request(client: u32, timestamp: u64, signed_by: u32) -> Signed<Request> {
    let body = Request {
        client: ClientId(client),
        timestamp: Timestamp(timestamp),
        op: Operation::Put {
            key: "forged".into(),
            value: "yes".into(),
        },
    };
    Signed::sign(
        body,
        Principal::Client(ClientId(client)),
        &client_key(signed_by),
    )
}

fn pre_prepare(view: View, seq: Seq, batch: Vec<Signed<Request>>) -> Signed<PrePrepare> {
    let body = PrePrepare {
        view,
        seq,
        digest: batch_digest(&batch),
        batch,
    };
    let primary = view.primary(4);
    Signed::sign(body, Principal::Replica(primary), &replica_key(primary.0))
}

/// Forged messages a backup must refuse, each with the reason it must give.
fn forgeries(view: View, next: Seq) -> Vec<(&'static str, Vec<u8>, RejectReason)> {
    use RejectReason::*;
    let frame = |m: WireMessage| replica::wire::encode_frame(&m);
    let digest = Digest::of(b"forged batch");
    let prepare = Prepare {
        view,
        seq: next,
        digest,
    };
    let commit = Commit {
        view,
        seq: next,
        digest,
    };

    let mut bad_signature =
        Signed::sign(prepare, Principal::Replica(ReplicaId(2)), &replica_key(2));
    if let Some(signature) = bad_signature.seal.signature_mut() {
        signature[0] ^= 1;
    }
    // Signed with replica 3's key, claiming to be replica 2.
    let impersonation = Signed::sign(commit, Principal::Replica(ReplicaId(2)), &replica_key(3));
    let mut rewritten_commit =
        Signed::sign(commit, Principal::Replica(ReplicaId(2)), &replica_key(2));
    rewritten_commit.body.seq = next.next();
    let unknown = Signed::sign(prepare, Principal::Replica(ReplicaId(7)), &replica_key(2));
    let by_client = Signed::sign(prepare, Principal::Client(ClientId(0)), &client_key(0));

    let honest_request = request(0, 1_000, 0);
    let mut batch_swapped = pre_prepare(view, next, vec![honest_request.clone()]);
    batch_swapped.body.batch = vec![request(1, 1_000, 1)];
    let mut batch_and_digest_swapped = batch_swapped.clone();
    batch_and_digest_swapped.body.digest = batch_digest(&batch_and_digest_swapped.body.batch);
    let forged_client_inside = pre_prepare(view, next, vec![request(0, 1_001, 1)]);

    let mut wrong_kind_request = request(0, 1_002, 0);
    wrong_kind_request.signer = Principal::Client(ClientId(1));

    let mut oversized = (u32::MAX).to_be_bytes().to_vec();
    oversized.extend_from_slice(&[0; 16]);
    let mut truncated = frame(WireMessage::Prepare(Signed::sign(
        prepare,
        Principal::Replica(ReplicaId(2)),
        &replica_key(2),
    )));
    truncated.truncate(truncated.len() - 5);

    vec![
        (
            "flipped signature byte",
            frame(WireMessage::Prepare(bad_signature)),
            BadSignature,
        ),
        (
            "signer claims another replica",
            frame(WireMessage::Commit(impersonation)),
            BadSignature,
        ),
        (
            "seq rewritten without re-signing",
            frame(WireMessage::Commit(rewritten_commit)),
            BadSignature,
        ),
        (
            "signer not in the cluster",
            frame(WireMessage::Prepare(unknown)),
            UnknownSender,
        ),
        (
            "prepare signed by a client",
            frame(WireMessage::Prepare(by_client)),
            WrongSenderKind,
        ),
        (
            "batch swapped, digest kept",
            frame(WireMessage::PrePrepare(batch_swapped)),
            DigestMismatch,
        ),
        (
            "batch and digest swapped without re-signing",
            frame(WireMessage::PrePrepare(batch_and_digest_swapped)),
            BadSignature,
        ),
        (
            "request inside a pre-prepare with a forged client signature",
            frame(WireMessage::PrePrepare(forged_client_inside)),
            BadSignature,
        ),
        (
            "request signed by another client than it names",
            frame(WireMessage::Request(wrong_kind_request)),
            WrongSenderKind,
        ),
        (
            "request with a forged client signature",
            frame(WireMessage::Request(request(0, 1_003, 1))),
            BadSignature,
        ),
        (
            "garbage",
            vec![0, 0, 0, 6, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa],
            MalformedFrame,
        ),
        ("truncated frame", truncated, MalformedFrame),
        ("oversized length prefix", oversized, OversizedFrame),
    ]
}

struct Observed {
    view: View,
    last_executed: Seq,
    stable: Seq,
    state: Digest,
    commits: usize,
}

fn observe(net: &SimNetwork, replica: ReplicaId) -> Observed {
    let core = net.core(replica).expect("running");
    Observed {
        view: core.view(),
        last_executed: core.last_executed(),
        stable: core.stable_checkpoint(),
        state: core.state_digest(),
        commits: count_events(net, replica, |e| matches!(e, ReplicaEvent::Commit { .. })),
    }
}

#[test]
fn forged_and_rewritten_messages_are_rejected_with_their_reason_and_change_nothing() {
    let mut net = network(SimConfig {
        seed: SEED,
        clients: 2,
        ..SimConfig::default()
    });
    let mut driver = Driver::new(SEED);
    assert!(driver.run_ops(&mut net, 5, 30_000));
    assert!(net.run_until(all_replicas_converged, 10_000));
    let target = ReplicaId(1);
    let core = net.core(target).expect("running");
    let (view, next) = (core.view(), core.last_executed().next());

    for (what, frame, reason) in forgeries(view, next) {
        let before = net.rejections(target);
        let others_before: Vec<_> = net.replica_ids().map(|r| observe(&net, r)).collect();
        net.inject_frame(target, frame).expect("known replica");
        net.run_for(50);
        let after = net.rejections(target);
        let count = |m: &BTreeMap<RejectReason, u64>| m.get(&reason).copied().unwrap_or(0);
        assert_eq!(
            count(&after),
            count(&before) + 1,
            "{what}: not rejected as {reason:?}"
        );
        for (replica, was) in net.replica_ids().zip(others_before) {
            let now = observe(&net, replica);
            assert_eq!(now.view, was.view, "{what}: view of {replica}");
            assert_eq!(
                now.last_executed, was.last_executed,
                "{what}: {replica} executed"
            );
            assert_eq!(now.stable, was.stable, "{what}: {replica} checkpoint");
            assert_eq!(now.state, was.state, "{what}: state of {replica}");
            assert_eq!(now.commits, was.commits, "{what}: {replica} committed");
        }
    }
    let last = net.events(target).last().expect("rejections were reported");
    assert!(matches!(
        last.event,
        ReplicaEvent::Rejected {
            reason: RejectReason::OversizedFrame,
            kind: None,
            from: None
        }
    ));
    // The cluster still serves its clients afterwards.
    assert!(driver.run_ops(&mut net, 3, 30_000));
    assert_no_agreement_violations(&net);
}
