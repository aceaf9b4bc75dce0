//! The client's network behaviour against replicas that never answer: it must send to the
//! primary first, then re-send the same signed request to every replica, and finally report
//! an unknown outcome instead of hanging.

#![allow(clippy::unwrap_used)]

use replica::config::{ClientEntry, ClusterConfig, ReplicaEntry, Timeouts};
use replica::crypto::{key_from_seed, public_key_hex};
use replica::ids::{ClientId, Principal, ReplicaId};
use replica::kv::Operation;
use replica::message::{Request, Signed, WireMessage};
use replica::wire::{decode_payload, split_frame};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use workloads::client::{Client, ClientError, ClientOptions};

const SEED: u64 = 3;
const CLIENT: ClientId = ClientId(0);

type Received = Arc<Mutex<Vec<(ReplicaId, Signed<Request>)>>>;

/// Replicas that read and record every request but never reply.
async fn silent_replicas(count: u32, received: Received) -> Vec<std::net::SocketAddr> {
    let mut addresses = Vec::new();
    for id in 0..count {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addresses.push(listener.local_addr().unwrap());
        let received = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let received = received.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        while let Ok(Some((payload, used))) = split_frame(&buffer, 1 << 20) {
                            if let Ok(WireMessage::Request(request)) =
                                decode_payload(payload, 1 << 20)
                            {
                                received.lock().unwrap().push((ReplicaId(id), request));
                            }
                            buffer.drain(..used);
                        }
                    }
                });
            }
        });
    }
    addresses
}

fn cluster_config(addresses: &[std::net::SocketAddr]) -> ClusterConfig {
    let replicas = addresses
        .iter()
        .enumerate()
        .map(|(i, address)| ReplicaEntry {
            id: ReplicaId(i as u32),
            address: *address,
            public_key: public_key_hex(
                &key_from_seed(SEED, Principal::Replica(ReplicaId(i as u32))).verifying_key(),
            ),
        })
        .collect::<Vec<_>>();
    let client = ClientEntry {
        id: CLIENT,
        public_key: public_key_hex(&key_from_seed(SEED, Principal::Client(CLIENT)).verifying_key()),
    };
    let yaml = format!(
        "f: 1\nreplicas: {}\nclients: {}\ntimeouts: {}",
        serde_json::to_string(&replicas).unwrap(),
        serde_json::to_string(&[client]).unwrap(),
        serde_json::to_string(&Timeouts::default()).unwrap(),
    );
    ClusterConfig::parse(&yaml, Path::new("test cluster")).unwrap()
}

#[tokio::test]
async fn an_unanswered_request_is_resent_unchanged_to_every_replica_then_times_out() {
    let received: Received = Arc::default();
    let addresses = silent_replicas(4, received.clone()).await;
    let config = cluster_config(&addresses);
    let options = ClientOptions {
        retry: Duration::from_millis(100),
        deadline: Duration::from_millis(450),
    };
    let key = key_from_seed(SEED, Principal::Client(CLIENT));
    let client = Client::with_options(&config, CLIENT, key, options).unwrap();
    let op = Operation::Put {
        key: "k".into(),
        value: "v".into(),
    };
    let prepared = client.prepare(op);
    let error = client.submit(&prepared).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    assert!(error.outcome_unknown());

    let received = received.lock().unwrap().clone();
    assert_eq!(
        received.first().map(|(r, _)| *r),
        Some(ReplicaId(0)),
        "primary first"
    );
    for replica in 0..4 {
        assert!(
            received.iter().any(|(r, _)| *r == ReplicaId(replica)),
            "replica {replica} never got the request"
        );
    }
    assert!(
        received
            .iter()
            .all(|(_, request)| *request == prepared.request)
    );
    let stats = client.stats();
    assert_eq!(stats.timeouts, 1);
    assert!(stats.broadcasts >= 2, "{stats:?}");
}

#[tokio::test]
async fn timestamps_strictly_increase_and_start_near_the_wall_clock() {
    let received: Received = Arc::default();
    let addresses = silent_replicas(4, received).await;
    let config = cluster_config(&addresses);
    let key = key_from_seed(SEED, Principal::Client(CLIENT));
    let client = Client::new(&config, CLIENT, key).unwrap();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let get = || Operation::Get { key: "k".into() };
    let stamps: Vec<u64> = (0..1000)
        .map(|_| client.prepare(get()).timestamp().0)
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]));
    assert!(stamps[0] >= now_us);
}

#[tokio::test]
async fn a_key_that_does_not_match_the_cluster_file_is_refused() {
    let received: Received = Arc::default();
    let addresses = silent_replicas(4, received).await;
    let config = cluster_config(&addresses);
    let wrong = key_from_seed(SEED + 1, Principal::Client(CLIENT));
    assert!(matches!(
        Client::new(&config, CLIENT, wrong),
        Err(ClientError::KeyMismatch(CLIENT))
    ));
    let key = key_from_seed(SEED, Principal::Client(ClientId(9)));
    assert!(matches!(
        Client::new(&config, ClientId(9), key),
        Err(ClientError::UnknownClient(ClientId(9)))
    ));
}
