//! `amnesia-probe`: the primary re-proposes other batches to a backup that restarted. A backup
//! whose log kept its votes refuses every probe; one whose log was lost votes again, for other
//! digests, which is what the no-amnesia oracle looks for.

mod support;

use replica::events::ReplicaEvent;
use replica::ids::{Seq, View};
use replica::message::MessageKind;
use replica::sim::{Endpoint, SimNetwork};
use replica::verify::RejectReason;
use replica::{Principal, ReplicaId};
use std::collections::BTreeMap;
use support::*;

const PRIMARY: ReplicaId = ReplicaId(0);
const RESTARTED: ReplicaId = ReplicaId(3);

/// PREPARE digests per (view, seq).
type Prepares = BTreeMap<(View, Seq), String>;

/// The restarted backup's PREPAREs before and after its restart.
fn prepares_around_restart(net: &SimNetwork) -> (Prepares, Prepares) {
    let mut before = BTreeMap::new();
    let mut after = BTreeMap::new();
    let mut restarted = false;
    for e in net.events(RESTARTED) {
        match &e.event {
            ReplicaEvent::Recovered { .. } => restarted = true,
            ReplicaEvent::Sent {
                kind: MessageKind::Prepare,
                view,
                seq,
                digest,
            } => {
                let side = if restarted { &mut after } else { &mut before };
                side.insert((*view, *seq), digest.clone());
            }
            _ => {}
        }
    }
    (before, after)
}

fn voted_past_executed(net: &SimNetwork) -> bool {
    let mut voted = Seq(0);
    let mut executed = Seq(0);
    for e in net.events(RESTARTED) {
        match &e.event {
            ReplicaEvent::Sent { seq, .. } => voted = voted.max(*seq),
            ReplicaEvent::Execute { seq, .. } => executed = executed.max(*seq),
            _ => {}
        }
    }
    voted > executed
}

/// Runs a workload, crashes the backup, optionally loses its log, and restarts it while only
/// the primary can answer it.
fn probe_a_restart(seed: u64, lose_the_log: bool) -> SimNetwork {
    let mut net = network(cluster(seed));
    install(&mut net, PRIMARY, "amnesia-probe", &[], seed);
    let mut driver = Driver::new(seed);
    assert!(driver.run_ops(&mut net, 6, 60_000));
    // Crash it mid-request: it has voted on a batch it has not executed yet.
    for client in net.client_ids().collect::<Vec<_>>() {
        let op = driver.next_op(client);
        net.submit(client, op).expect("an idle client");
    }
    assert!(net.run_until(voted_past_executed, 10_000));
    net.crash(RESTARTED).expect("known replica");
    if lose_the_log {
        net.wipe_disk(RESTARTED).expect("known replica");
    }
    for other in [ReplicaId(1), ReplicaId(2)] {
        net.block_link(Endpoint::Replica(other), Endpoint::Replica(RESTARTED));
    }
    net.restart(RESTARTED).expect("known replica");
    net.run_for(500);
    net
}

#[test]
fn a_backup_that_kept_its_log_refuses_every_re_proposal() {
    let net = probe_a_restart(301, false);
    let refused = rejections_of(&net, Principal::Replica(PRIMARY));
    let conflicting = refused
        .get(&RejectReason::Conflicting)
        .copied()
        .unwrap_or(0);
    assert!(conflicting > 0, "no probe reached the backup: {refused:?}");
    let (before, after) = prepares_around_restart(&net);
    let contradicted: Vec<_> = after
        .iter()
        .filter(|(slot, digest)| before.get(slot).is_some_and(|d| d != *digest))
        .collect();
    assert!(contradicted.is_empty(), "{contradicted:?}");
}

#[test]
fn a_backup_that_lost_its_log_votes_again_for_other_batches() {
    let net = probe_a_restart(302, true);
    let (before, after) = prepares_around_restart(&net);
    let contradicted = after
        .iter()
        .filter(|(slot, digest)| before.get(slot).is_some_and(|d| d != *digest))
        .count();
    assert!(
        contradicted > 0,
        "the amnesiac backup was not led to contradict itself: {} prepares before, {} after",
        before.len(),
        after.len()
    );
}
