//! The simulator's crash model against persist-before-send. A turn's log records reach the
//! replica's `SimDisk` when the turn ends, before the turn's messages are handed to the network,
//! and a crash falls between turns: so a crash at any moment loses nothing the replica had sent
//! (what the node guarantees with one sync per turn before its sends, `node::driver`). Checked
//! here at every crash of a long run that crashes and restarts replicas, the primary included,
//! at arbitrary points mid-traffic.

mod core_support;

use core_support::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::events::ReplicaEvent;
use replica::message::{MessageKind, WireMessage};
use replica::sim::{SimConfig, SimDisk, SimNetwork};
use replica::{ReplicaId, Seq, View, WalRecord};

/// The highest view the disk commits the replica to after a restart: the snapshot's, its own
/// VIEW-CHANGEs' and the NEW-VIEWs it entered.
fn durable_view(disk: &SimDisk, me: ReplicaId) -> View {
    let logged = disk
        .records
        .iter()
        .filter_map(|WalRecord::Message(m)| match m {
            WireMessage::ViewChange(vc) if vc.replica() == Some(me) => Some(vc.body.new_view),
            WireMessage::NewView(nv) => Some(nv.body.view),
            _ => None,
        });
    let snapshot = disk.snapshot.as_ref().map(|s| s.view);
    logged.chain(snapshot).max().unwrap_or_default()
}

/// Whether the disk holds `me`'s own vote of `kind` for (view, seq) with `digest` (a
/// PRE-PREPARE also inside a NEW-VIEW it sent).
fn vote_on_disk(
    disk: &SimDisk,
    me: ReplicaId,
    kind: MessageKind,
    view: View,
    seq: Seq,
    digest: &str,
) -> bool {
    disk.records.iter().any(|WalRecord::Message(m)| {
        let matches = |v: View, s: Seq, d: String, by: Option<ReplicaId>| {
            (v, s, d.as_str(), by) == (view, seq, digest, Some(me))
        };
        match (kind, m) {
            (MessageKind::PrePrepare, WireMessage::PrePrepare(p)) => {
                matches(p.body.view, p.body.seq, p.body.digest.to_hex(), p.replica())
            }
            (MessageKind::PrePrepare, WireMessage::NewView(nv)) => nv
                .body
                .pre_prepares
                .iter()
                .any(|p| matches(p.body.view, p.body.seq, p.body.digest.to_hex(), p.replica())),
            (MessageKind::Prepare, WireMessage::Prepare(p)) => {
                matches(p.body.view, p.body.seq, p.body.digest.to_hex(), p.replica())
            }
            (MessageKind::Commit, WireMessage::Commit(c)) => {
                matches(c.body.view, c.body.seq, c.body.digest.to_hex(), c.replica())
            }
            _ => false,
        }
    })
}

/// Everything `me` ever reported sending is on its disk now, or the disk makes it moot (below
/// the stable checkpoint, or in a view the disk has moved past). Returns how many sends it
/// checked.
fn assert_sent_is_durable(net: &SimNetwork, me: ReplicaId) -> usize {
    let disk = net.disk(me).expect("known replica");
    let stable = disk.snapshot.as_ref().map_or(Seq(0), |s| s.seq);
    let view = durable_view(disk, me);
    let mut checked = 0;
    for event in net.events(me) {
        let at = event.at_ms();
        match &event.event {
            ReplicaEvent::Sent {
                kind,
                view: v,
                seq,
                digest,
            } => {
                checked += 1;
                assert!(
                    *seq <= stable || view > *v || vote_on_disk(disk, me, *kind, *v, *seq, digest),
                    "replica {me} sent {kind} ({v}, {seq}) at {at} ms, lost by the crash at {} ms",
                    net.now_ms()
                );
            }
            ReplicaEvent::CheckpointTaken { seq, state_digest } => {
                checked += 1;
                let on_disk = disk.records.iter().any(|WalRecord::Message(m)| {
                    matches!(m, WireMessage::Checkpoint(c)
                        if c.replica() == Some(me)
                            && c.body.seq == *seq
                            && c.body.state_digest.to_hex() == *state_digest)
                });
                let in_snapshot = disk.snapshot.as_ref().is_some_and(|s| {
                    s.seq > *seq || (s.seq == *seq && s.state.digest().to_hex() == *state_digest)
                });
                assert!(
                    on_disk || in_snapshot,
                    "replica {me}'s CHECKPOINT at {seq} (sent at {at} ms) lost by the crash"
                );
            }
            ReplicaEvent::ViewChangeStarted { view: v, .. }
            | ReplicaEvent::ViewChangeCompleted { view: v, .. } => {
                checked += 1;
                assert!(
                    view >= *v,
                    "replica {me} moved to {v} at {at} ms; its disk says only {view}"
                );
            }
            _ => {}
        }
    }
    checked
}

#[test]
fn a_crash_at_any_moment_loses_nothing_the_replica_had_sent() {
    for seed in 1..=3 {
        let mut net = network(SimConfig {
            seed,
            checkpoint_interval: 4,
            watermark_window: 16,
            ..SimConfig::default()
        });
        let mut driver = Driver::new(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        assert!(driver.run_ops(&mut net, 3, 30_000), "seed {seed}: warm-up");
        let (mut checked, mut views) = (0, 0);
        for round in 0..16 {
            // Every third round the primary, down long enough for a view change; otherwise any
            // replica, briefly (possibly in the middle of that view change).
            let (victim, down_ms) = match net.core(ReplicaId(1)) {
                Some(core) if round % 3 == 0 => (core.primary(), rng.random_range(1500..4000)),
                _ => (ReplicaId(rng.random_range(0..4)), rng.random_range(0..400)),
            };
            // Mid-traffic: every idle client has a request out, and a random number of steps.
            for client in net.idle_clients() {
                net.submit(client, driver.next_op(client)).expect("idle");
            }
            for _ in 0..rng.random_range(1..600) {
                net.step_once();
            }
            if !net.is_running(victim) {
                continue;
            }
            net.crash(victim).expect("running");
            checked += assert_sent_is_durable(&net, victim);
            // Requests while it is down: a lost primary is then replaced.
            for client in net.idle_clients() {
                net.submit(client, driver.next_op(client)).expect("idle");
            }
            net.run_for(down_ms);
            net.restart(victim).expect("crashed");
            net.run_for(1);
            let core = net.core(victim).expect("restarted");
            let disk = net.disk(victim).expect("known replica");
            assert!(
                core.view() >= durable_view(disk, victim),
                "seed {seed}: replica {victim} recovered in {} below its disk's view",
                core.view()
            );
            views = views.max(core.view().0);
        }
        assert!(
            driver.run_ops(&mut net, 3, 120_000),
            "seed {seed}: no progress after the crashes"
        );
        assert_no_agreement_violations(&net);
        assert!(checked > 500, "seed {seed}: only {checked} sends checked");
        eprintln!("seed {seed}: {checked} sends checked at crashes; highest view {views}");
    }
}
