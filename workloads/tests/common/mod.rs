//! Shared pieces of the process-level cluster tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use replica::events::{EventLine, ReplicaEvent};
use replica::ids::{ClientId, ReplicaId, Seq};
use replica::kv::Operation;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use workloads::client::Client;
use workloads::testnet::{LocalCluster, LocalClusterOptions};

/// A 4-replica cluster with frequent checkpoints, so catch-up is visible within seconds.
pub fn start_cluster() -> LocalCluster {
    LocalCluster::start(LocalClusterOptions {
        checkpoint_interval: Some(16),
        watermark_window: Some(64),
        ..LocalClusterOptions::default()
    })
    .expect("the local cluster starts")
}

pub fn put(key: &str, value: &str) -> Operation {
    Operation::Put {
        key: key.into(),
        value: value.into(),
    }
}

pub fn get(key: &str) -> Operation {
    Operation::Get { key: key.into() }
}

pub fn append(key: &str, value: &str) -> Operation {
    Operation::Append {
        key: key.into(),
        value: value.into(),
    }
}

/// Polls `condition` until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Like `wait_until`, without blocking the runtime the clients run on.
pub async fn wait_until_async(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `checkpoint-stable` events of one replica: seq -> state digest.
pub fn stable_checkpoints(events: &[EventLine]) -> BTreeMap<Seq, String> {
    events
        .iter()
        .filter_map(|line| match &line.event {
            ReplicaEvent::CheckpointStable { seq, state_digest } => {
                Some((*seq, state_digest.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Views this replica completed a view change into.
pub fn views_entered(events: &[EventLine]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|line| match &line.event {
            ReplicaEvent::ViewChangeCompleted { view, .. } => Some(view.0),
            _ => None,
        })
        .collect()
}

/// Clients appending to their own keys in the background until stopped.
pub struct Load {
    pub stop: Arc<AtomicBool>,
    pub completed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    pub fn start(cluster: &LocalCluster, clients: u32) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicU64::new(0));
        let tasks = (0..clients)
            .map(|c| {
                let client = cluster.client(ClientId(c)).unwrap();
                let stop = stop.clone();
                let completed = completed.clone();
                tokio::spawn(async move { append_until_stopped(client, stop, completed).await })
            })
            .collect();
        Load {
            stop,
            completed,
            tasks,
        }
    }

    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Stops the clients; returns, per client, the values whose append was acknowledged.
    pub async fn finish(self) -> Vec<Vec<String>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut acknowledged = Vec::new();
        for task in self.tasks {
            acknowledged.push(task.await.unwrap());
        }
        acknowledged
    }
}

async fn append_until_stopped(
    client: Client,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
) -> Vec<String> {
    let key = format!("load-{}", client.id());
    let mut acknowledged = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let value = format!("{n},");
        if client.execute(append(&key, &value)).await.is_ok() {
            acknowledged.push(value);
            completed.fetch_add(1, Ordering::Relaxed);
        }
    }
    acknowledged
}

/// Runs blocking cluster control (kill, restart) from inside a multi-thread tokio test.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

pub const ALL: [ReplicaId; 4] = [ReplicaId(0), ReplicaId(1), ReplicaId(2), ReplicaId(3)];
