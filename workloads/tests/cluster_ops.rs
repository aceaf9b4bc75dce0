//! Operations through the client against 4 real replica processes (f = 1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use replica::ids::{ClientId, ReplicaId};
use replica::kv::{OpResult, Operation};
use std::time::Duration;
use workloads::testnet::{LocalCluster, LocalClusterOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_append_and_cas_return_the_services_results() {
    let cluster = blocking(start_cluster);
    let client = cluster.client(ClientId(0)).unwrap();
    let value = |v: &str| OpResult::Value(Some(v.into()));
    let cas = |expected: Option<&str>, new: &str| Operation::Cas {
        key: "a".into(),
        expected: expected.map(String::from),
        new: new.into(),
    };

    assert_eq!(
        client.execute(get("a")).await.unwrap(),
        OpResult::Value(None)
    );
    assert_eq!(
        client.execute(cas(Some("x"), "never")).await.unwrap(),
        OpResult::Swapped(false)
    );
    assert_eq!(
        client.execute(cas(None, "1")).await.unwrap(),
        OpResult::Swapped(true)
    );
    assert_eq!(client.execute(get("a")).await.unwrap(), value("1"));
    assert_eq!(
        client.execute(append("a", "2")).await.unwrap(),
        OpResult::Done
    );
    assert_eq!(client.execute(get("a")).await.unwrap(), value("12"));
    assert_eq!(
        client.execute(cas(Some("1"), "stale")).await.unwrap(),
        OpResult::Swapped(false)
    );
    assert_eq!(
        client.execute(cas(Some("12"), "3")).await.unwrap(),
        OpResult::Swapped(true)
    );
    assert_eq!(client.execute(put("a", "4")).await.unwrap(), OpResult::Done);
    assert_eq!(client.execute(get("a")).await.unwrap(), value("4"));

    let detailed = client.submit(&client.prepare(get("a"))).await.unwrap();
    assert!(detailed.answered.len() >= 2, "{detailed:?}");
    assert_eq!(client.stats().replies_bad_signature, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubmitted_request_is_answered_from_the_cache_not_executed_twice() {
    let cluster = blocking(start_cluster);
    let client = cluster.client(ClientId(1)).unwrap();
    let request = client.prepare(append("once", "x"));
    let first = client.submit(&request).await.unwrap();
    let again = client.submit(&request).await.unwrap();
    assert_eq!(first.timestamp, again.timestamp);
    assert_eq!(
        client.execute(get("once")).await.unwrap(),
        OpResult::Value(Some("x".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_lose_no_acknowledged_append() {
    let cluster = blocking(start_cluster);
    let load = Load::start(&cluster, 4);
    wait_until_async(Duration::from_secs(15), "200 appends", || {
        load.completed() >= 200
    })
    .await;
    let acknowledged = load.finish().await;
    let reader = cluster.client(ClientId(0)).unwrap();
    for (c, values) in acknowledged.iter().enumerate() {
        let stored = match reader.execute(get(&format!("load-{c}"))).await.unwrap() {
            OpResult::Value(Some(v)) => v,
            other => panic!("load-{c} read {other:?}"),
        };
        let stored: Vec<&str> = stored.split_terminator(',').collect();
        for value in values {
            assert!(
                stored.contains(&value.trim_end_matches(',')),
                "load-{c} lost {value}"
            );
        }
    }
}

/// Under `auth: macs` (COMMITs and replies MAC'd, requests signed and MAC'd) four real replicas
/// serve concurrent clients, every appended value is read back in order, and the client checks
/// every reply's MAC (none fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_macs_real_replicas_serve_concurrent_clients_and_every_reply_checks() {
    let cluster = blocking(|| {
        LocalCluster::start(LocalClusterOptions {
            checkpoint_interval: Some(16),
            watermark_window: Some(64),
            auth: replica::auth::AuthMode::Macs,
            ..LocalClusterOptions::default()
        })
        .expect("the local cluster starts")
    });
    let load = Load::start(&cluster, 3);
    wait_until_async(Duration::from_secs(30), "100 appends under MACs", || {
        load.completed() >= 100
    })
    .await;
    let acknowledged = load.finish().await;
    let reader = cluster.client(ClientId(3)).unwrap();
    for (c, values) in acknowledged.iter().enumerate() {
        let read = reader.execute(get(&format!("load-{c}"))).await.unwrap();
        let OpResult::Value(Some(text)) = read else {
            panic!("client {c}'s key is empty: {read:?}");
        };
        assert!(
            text.starts_with(&values.concat()),
            "client {c}: {text} lacks its acknowledged appends"
        );
    }
    assert_eq!(reader.stats().replies_bad_signature, 0);
    // Events reach the file after the turn's log sync: wait for the line, and make sure there
    // are enough sequence numbers for a checkpoint even when batches are large.
    let more = Load::start(&cluster, 1);
    wait_until_async(
        Duration::from_secs(30),
        "a stable checkpoint under MACs",
        || !stable_checkpoints(&cluster.events(ReplicaId(0))).is_empty(),
    )
    .await;
    more.finish().await;
}
