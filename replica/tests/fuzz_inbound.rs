//! The fuzzed inbound path (issue 12): a bounded run of `replica::fuzz` must reach every stage
//! of framing, decoding, authentication and the core, and crash nowhere; the same seed must
//! give the same run; and what the fuzzer found stays fixed.
//!
//! The long run is `scripts/fuzz-inbound.sh` (10,000,000 frames by default).

use replica::config::Timeouts;
use replica::core::{Core, CoreParams, Effect, Input, Timer};
use replica::crypto::{KeyStore, key_from_seed};
use replica::fuzz::{FuzzConfig, Report, run};
use replica::message::{MessageKind, Signed, ViewChange, WireMessage};
use replica::verify::{RejectReason, verify};
use replica::{Principal, Quorums, ReplicaId, Seq, View};
use std::collections::HashMap;
use std::sync::Arc;

fn fuzz(seed: u64, frames: u64) -> Report {
    let config = FuzzConfig {
        seed,
        frames,
        ..FuzzConfig::default()
    };
    run(&config, |_| {}).expect("the simulated cluster builds the corpus")
}

#[test]
fn a_bounded_run_reaches_every_stage_of_the_inbound_path_and_never_crashes() {
    let report = fuzz(12, 20_000);
    let c = &report.counts;
    let context = format!("\n{report}");

    for kind in MessageKind::ALL {
        assert!(
            report.corpus.get(kind).is_some_and(|n| *n > 0),
            "no captured {kind} in the corpus{context}"
        );
        assert!(
            c.verified_by_kind.get(kind).is_some_and(|n| *n > 0),
            "no {kind} got through verification{context}"
        );
    }
    assert_eq!(c.frames, 20_000);
    assert_eq!(c.crashes, 0, "panics on the inbound path{context}");
    assert_eq!(
        c.verdict_divergences, 0,
        "batch and single verdicts{context}"
    );
    assert!(c.verdict_cross_checks > 0, "{context}");

    // Framing and decoding refuse what they must.
    assert!(c.split_oversized > 0, "no oversized length prefix{context}");
    assert!(
        c.split_incomplete > 0,
        "no stream ended inside a frame{context}"
    );
    assert!(c.decode_malformed > 0, "no malformed payload{context}");
    assert!(
        c.decode_trailing > 0,
        "no payload with trailing bytes{context}"
    );

    // Authentication refuses for each reason it has.
    for reason in [
        RejectReason::BadSignature,
        RejectReason::UnknownSender,
        RejectReason::WrongSenderKind,
        RejectReason::DigestMismatch,
        RejectReason::MalformedFrame,
    ] {
        assert!(
            c.verify_rejected.get(&reason).is_some_and(|n| *n > 0),
            "verify never refused with {}{context}",
            reason.name()
        );
    }

    // Verified messages reach both live cores, which refuse some for protocol reasons and
    // act on others.
    assert!(c.verified > 0 && c.steps_backup == c.verified, "{context}");
    assert!(c.steps_primary > 0 && c.timer_steps > 0, "{context}");
    for reason in [
        RejectReason::StaleView,
        RejectReason::FutureView,
        RejectReason::NotFromPrimary,
        RejectReason::Misdirected,
        RejectReason::InvalidViewChange,
        RejectReason::InvalidStateTransfer,
    ] {
        assert!(
            c.core_rejected.get(&reason).is_some_and(|n| *n > 0),
            "the core never refused with {}{context}",
            reason.name()
        );
    }
    // Retargeted traffic carries the backup on: it commits, executes, replies, checkpoints.
    for event in [
        "commit",
        "execute",
        "checkpoint-stable",
        "view-change-started",
    ] {
        assert!(
            c.core_events.get(event).is_some_and(|n| *n > 0),
            "no {event} event{context}"
        );
    }
    assert!(c.persisted > 0 && c.outbound > 0, "{context}");
    assert!(
        c.restarts_own_log > 0 && c.restarts_pristine > 0,
        "{context}"
    );
    for op in [
        "original",
        "replay",
        "bit-flip",
        "truncate",
        "extend",
        "splice",
        "concat",
        "length-prefix",
        "structure",
        "retarget",
    ] {
        assert!(c.mutations.contains_key(op), "no {op} mutation{context}");
    }
}

/// Under `auth: macs` the corpus carries authenticators and MACs; byte and field mutations of
/// them are refused as `bad-mac`, and the backup still commits and executes genuine traffic.
#[test]
fn under_macs_a_bounded_run_refuses_spoiled_macs_and_never_crashes() {
    let config = FuzzConfig {
        seed: 13,
        frames: 10_000,
        auth: replica::auth::AuthMode::Macs,
        ..FuzzConfig::default()
    };
    let report = run(&config, |_| {}).expect("the simulated cluster builds the corpus");
    let c = &report.counts;
    let context = format!("\n{report}");
    assert_eq!(c.crashes, 0, "panics on the inbound path{context}");
    assert_eq!(
        c.verdict_divergences, 0,
        "batch and single verdicts{context}"
    );
    assert!(
        c.verify_rejected
            .get(&RejectReason::BadMac)
            .is_some_and(|n| *n > 0),
        "no spoiled MAC was refused{context}"
    );
    assert!(
        c.verified_by_kind
            .get(&MessageKind::Commit)
            .is_some_and(|n| *n > 0),
        "no COMMIT got through{context}"
    );
    for event in ["commit", "execute"] {
        assert!(
            c.core_events.get(event).is_some_and(|n| *n > 0),
            "no {event} event{context}"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let a = fuzz(5, 3_000);
    let b = fuzz(5, 3_000);
    assert_eq!(a.counts, b.counts);
    let other = fuzz(6, 3_000);
    assert_ne!(a.counts, other.counts);
}

fn key(principal: Principal) -> ed25519_dalek::SigningKey {
    key_from_seed(77, principal)
}

/// Found by the fuzzer (seed 1, frame 6390, in debug builds): once two replicas (more than
/// f = 1, so beyond the fault model) asked for `View(u64::MAX)`, the backup joined that view
/// and its view-change timer then computed the view after it, `u64::MAX + 1`, and panicked
/// with an arithmetic overflow (release builds wrapped to view 0 instead).
#[test]
fn a_replica_pushed_to_the_last_view_survives_its_view_change_timer() {
    let replica = |i: u32| Principal::Replica(ReplicaId(i));
    let keys = Arc::new(KeyStore::new(
        (0..4).map(|i| key(replica(i)).verifying_key()).collect(),
        HashMap::new(),
    ));
    let params = CoreParams {
        id: ReplicaId(1),
        quorums: Quorums { f: 1 },
        checkpoint_interval: 8,
        watermark_window: 32,
        max_batch: 2,
        pipeline_depth: 1,
        timeouts: Timeouts::default(),
        max_frame_bytes: replica::wire::DEFAULT_MAX_FRAME,
    };
    let mut core = Core::new(params, key(replica(1)), keys.clone());
    core.step(Input::Start);
    let last = View(u64::MAX);
    let mut effects = Vec::new();
    for from in [0, 2] {
        let view_change = ViewChange {
            new_view: last,
            stable_seq: Seq(0),
            checkpoint_proof: Vec::new(),
            prepared: Vec::new(),
        };
        let signed = Signed::sign(view_change, replica(from), &key(replica(from)));
        let verified = verify(WireMessage::ViewChange(signed), &keys).expect("validly signed");
        effects.extend(core.step(Input::Message(verified)));
    }
    assert_eq!(core.view(), last);
    assert!(core.in_view_change());
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::SetTimer {
                timer: Timer::ViewChange,
                ..
            }
        )),
        "2f+1 replicas want the view: the core waits for its NEW-VIEW"
    );

    core.step(Input::TimerFired(Timer::ViewChange));
    assert_eq!(core.view(), last, "there is no view after the last one");
    assert!(core.in_view_change());
}
