//! Crash faults against 4 real replica processes (f = 1): the cluster keeps making progress
//! with one replica down, elects a new primary when the primary dies, and a replica killed
//! with SIGKILL mid-load recovers and catches up to the same state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use replica::ids::{ClientId, ReplicaId};
use replica::kv::OpResult;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_continues_with_a_backup_killed() {
    let mut cluster = blocking(start_cluster);
    let client = cluster.client(ClientId(0)).unwrap();
    client.execute(put("k", "before")).await.unwrap();
    blocking(|| cluster.kill(ReplicaId(2))).unwrap();
    for i in 0..20 {
        client.execute(append("k", &format!(",{i}"))).await.unwrap();
    }
    let expected: String = std::iter::once("before".to_string())
        .chain((0..20).map(|i| format!(",{i}")))
        .collect();
    assert_eq!(
        client.execute(get("k")).await.unwrap(),
        OpResult::Value(Some(expected))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_leads_to_a_view_change_and_progress() {
    let mut cluster = blocking(start_cluster);
    let client = cluster.client(ClientId(0)).unwrap();
    client.execute(put("k", "v0")).await.unwrap();
    assert_eq!(client.believed_primary(), ReplicaId(0));
    blocking(|| cluster.kill(ReplicaId(0))).unwrap();

    let done = client
        .submit(&client.prepare(put("k", "v1")))
        .await
        .unwrap();
    assert!(done.view.0 >= 1, "answered in view {}", done.view);
    assert!(!done.answered.contains(&ReplicaId(0)));
    assert_ne!(client.believed_primary(), ReplicaId(0));
    assert_eq!(
        client.execute(get("k")).await.unwrap(),
        OpResult::Value(Some("v1".into()))
    );

    // The surviving replicas report the view change they completed.
    blocking(|| {
        wait_until(
            Duration::from_secs(5),
            "view-change-completed events",
            || {
                [1, 2, 3].iter().all(|&r| {
                    views_entered(&cluster.events(ReplicaId(r)))
                        .iter()
                        .any(|&v| v >= 1)
                })
            },
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_load_catches_up_after_restart_with_the_same_state_digest() {
    let mut cluster = blocking(start_cluster);
    let victim = ReplicaId(3);
    let others = [ReplicaId(0), ReplicaId(1), ReplicaId(2)];
    let load = Load::start(&cluster, 4);
    wait_until_async(Duration::from_secs(15), "load before the kill", || {
        load.completed() >= 100
    })
    .await;

    blocking(|| cluster.kill(victim)).unwrap();
    let victim_stable_at_kill = stable_checkpoints(&cluster.events(victim))
        .keys()
        .last()
        .copied();
    let others_stable = |cluster: &workloads::testnet::LocalCluster| {
        others
            .iter()
            .map(|&r| {
                stable_checkpoints(&cluster.events(r))
                    .keys()
                    .last()
                    .copied()
            })
            .min()
            .flatten()
    };
    // Load goes on until the others have made a checkpoint stable that the victim never saw.
    wait_until_async(
        Duration::from_secs(15),
        "a new stable checkpoint without the victim",
        || others_stable(&cluster) > victim_stable_at_kill,
    )
    .await;
    let others_stable_at_restart = others_stable(&cluster).expect("checked above");
    blocking(|| cluster.restart(victim)).unwrap();

    // The victim catches up: it makes a checkpoint at or above what the others had reached
    // stable, and its state digest there equals theirs.
    let limit = Duration::from_secs(15);
    let started = std::time::Instant::now();
    let matched = loop {
        assert!(
            started.elapsed() < limit,
            "replica {victim} did not catch up"
        );
        let victim_stable = stable_checkpoints(&cluster.events(victim));
        let candidate =
            victim_stable
                .range(others_stable_at_restart..)
                .find_map(|(seq, digest)| {
                    let agreed = others
                        .iter()
                        .all(|&r| stable_checkpoints(&cluster.events(r)).get(seq) == Some(digest));
                    agreed.then_some(*seq)
                });
        if let Some(seq) = candidate {
            break seq;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "victim stable at kill {victim_stable_at_kill:?}, others at restart {others_stable_at_restart}, matched at {matched}"
    );
    assert!(matched >= others_stable_at_restart);
    let acknowledged = load.finish().await;
    assert!(acknowledged.iter().all(|values| !values.is_empty()));
}
