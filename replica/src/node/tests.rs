//! The node's queueing under a flood of client requests: replica traffic is verified and
//! handed to the core first, and a flooding sender keeps one slot. No clocks: the tasks run on
//! the test's current-thread runtime and the test yields until they are done.

use super::driver::Inputs;
use super::event_log::EventLog;
use super::inbound::{ClientRoutes, Inbound};
use super::intake::{CONNECTION_SLOTS, Intake, Pushed};
use super::stats::NodeStats;
use super::verifier::{self, MAX_BATCH, ToCore, Unverified};
use crate::core::Input;
use crate::crypto::{KeyStore, key_from_seed};
use crate::digest::Digest;
use crate::ids::{ClientId, Principal, ReplicaId, Seq, Timestamp, View};
use crate::kv::Operation;
use crate::message::{MessageKind, Prepare, Request, Signed, WireMessage};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};

const SEED: u64 = 7;
const CLIENTS: u32 = 300;

fn keys() -> Arc<KeyStore> {
    let replicas = (0..4)
        .map(|r| key_from_seed(SEED, Principal::Replica(ReplicaId(r))).verifying_key())
        .collect();
    let clients = (0..CLIENTS + 1)
        .map(|c| {
            let key = key_from_seed(SEED, Principal::Client(ClientId(c)));
            (ClientId(c), key.verifying_key())
        })
        .collect();
    Arc::new(KeyStore::new(replicas, clients))
}

fn request(client: u32, timestamp: u64) -> Unverified {
    let signer = Principal::Client(ClientId(client));
    let body = Request {
        client: ClientId(client),
        timestamp: Timestamp(timestamp),
        op: Operation::Get { key: "k".into() },
    };
    let message = WireMessage::Request(Signed::sign(body, signer, &key_from_seed(SEED, signer)));
    Unverified {
        message,
        reply_route: None,
    }
}

fn prepare() -> Unverified {
    let signer = Principal::Replica(ReplicaId(1));
    let body = Prepare {
        view: View(0),
        seq: Seq(1),
        digest: Digest::of(b"batch"),
    };
    let message = WireMessage::Prepare(Signed::sign(body, signer, &key_from_seed(SEED, signer)));
    Unverified {
        message,
        reply_route: None,
    }
}

struct Node {
    inbound: Arc<Inbound>,
    replicas: mpsc::Receiver<Unverified>,
    _dir: tempfile::TempDir,
}

impl Node {
    /// One pass of the verifier's `take_batch` into `batch`; whether more is waiting.
    async fn take_batch(
        &mut self,
        requests_to_core: &mpsc::Sender<Input>,
        batch: &mut Vec<Unverified>,
    ) -> bool {
        verifier::take_batch(
            &mut self.replicas,
            &self.inbound.intake,
            requests_to_core,
            batch,
        )
        .await
    }
}

fn node() -> Node {
    let dir = tempfile::tempdir().expect("temp dir");
    let (intake, replicas) = Intake::new(64);
    let inbound = Arc::new(Inbound {
        keys: keys(),
        max_frame: 1 << 20,
        intake,
        stats: Arc::new(NodeStats::new(ReplicaId(0))),
        events: Arc::new(EventLog::open(dir.path(), ReplicaId(0)).expect("event log")),
        routes: Arc::new(ClientRoutes::default()),
    });
    Node {
        inbound,
        replicas,
        _dir: dir,
    }
}

/// A flood of `CLIENTS` requests (each from its own connection), then one PREPARE.
async fn flood_then_prepare(inbound: &Inbound) {
    for client in 0..CLIENTS {
        let pushed = inbound
            .intake
            .push_request(u64::from(client) + 10, request(client, 1));
        assert_eq!(pushed, Pushed::Queued);
    }
    assert!(inbound.intake.push_replica(prepare()).await);
}

fn kind(input: &Input) -> MessageKind {
    match input {
        Input::Message(verified) => verified.message().kind(),
        _ => panic!("not a message"),
    }
}

#[tokio::test]
async fn a_batch_takes_replica_traffic_before_queued_requests() {
    let mut node = node();
    flood_then_prepare(&node.inbound).await;
    let (requests_tx, _requests_rx) = mpsc::channel(1024);
    let mut batch = Vec::new();
    let more = node.take_batch(&requests_tx, &mut batch).await;
    assert!(more);
    assert_eq!(batch.len(), MAX_BATCH);
    assert_eq!(batch[0].message.kind(), MessageKind::Prepare);
    assert!(
        batch[1..]
            .iter()
            .all(|u| u.message.kind() == MessageKind::Request)
    );
    // The rest of the flood comes next, in the order its senders queued.
    batch.clear();
    node.take_batch(&requests_tx, &mut batch).await;
    assert_eq!(batch.len(), CLIENTS as usize - (MAX_BATCH - 1));
    assert_eq!(
        batch[0].message.signer(),
        Principal::Client(ClientId(MAX_BATCH as u32 - 1))
    );
}

#[tokio::test]
async fn the_core_gets_a_replica_message_before_a_flood_of_requests_queued_ahead_of_it() {
    let node = node();
    // The flood is verified and queued for the core before the PREPARE even arrives.
    for client in 0..CLIENTS {
        node.inbound
            .intake
            .push_request(u64::from(client) + 10, request(client, 1));
    }
    let (replicas_tx, replicas_rx) = mpsc::channel(64);
    let (requests_tx, requests_rx) = mpsc::channel(1024);
    let to_core = ToCore {
        replicas: replicas_tx,
        requests: requests_tx,
    };
    let Node {
        inbound, replicas, ..
    } = node;
    let verifier = tokio::spawn(verifier::run(replicas, to_core, inbound.clone()));
    while requests_rx.len() < CLIENTS as usize {
        tokio::task::yield_now().await;
    }
    assert!(inbound.intake.push_replica(prepare()).await);
    while replicas_rx.is_empty() {
        tokio::task::yield_now().await;
    }
    let mut inputs = Inputs::new(replicas_rx, requests_rx);
    let mut turn = Vec::new();
    inputs.fill_turn(&mut turn, 256);
    assert_eq!(turn.len(), 256);
    assert_eq!(kind(&turn[0]), MessageKind::Prepare);
    assert!(turn[1..].iter().all(|i| kind(i) == MessageKind::Request));
    assert!(inbound.stats.snapshot().rejected.is_empty());
    verifier.abort();
}

#[tokio::test]
async fn a_flooding_client_connection_has_one_request_checked_per_batch_and_none_dropped() {
    let mut node = node();
    let inbound = node.inbound.clone();
    // Client 0 floods on its own connection 1 with fresh timestamps.
    let flooder = tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(CONNECTION_SLOTS));
        for timestamp in 1..=1000 {
            let pushed = inbound
                .intake
                .push_client_request(1, &slots, request(0, timestamp))
                .await;
            assert_eq!(pushed, Pushed::Queued);
        }
    });
    tokio::task::yield_now().await;
    // Client 1 sends one request on connection 2.
    node.inbound.intake.push_request(2, request(1, 1));
    let (requests_tx, _requests_rx) = mpsc::channel(1024);
    let mut taken = Vec::new();
    for batch_number in 0..1000 {
        let mut batch = Vec::new();
        node.take_batch(&requests_tx, &mut batch).await;
        let flood = batch
            .iter()
            .filter(|u| u.message.signer() == Principal::Client(ClientId(0)));
        assert_eq!(flood.count(), 1, "batch {batch_number}");
        assert_eq!(batch.len(), if batch_number == 0 { 2 } else { 1 });
        taken.extend(batch);
        tokio::task::yield_now().await;
    }
    flooder.await.expect("flooder");
    let flood: Vec<u64> = taken
        .iter()
        .filter_map(|u| match &u.message {
            WireMessage::Request(r) if r.body.client == ClientId(0) => Some(r.body.timestamp.0),
            _ => None,
        })
        .collect();
    assert_eq!(flood, (1..=1000).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_flood_forwarded_on_a_peer_connection_keeps_one_slot_with_its_newest_request() {
    let mut node = node();
    // Client 0's flood, forwarded by a backup on connection 1; client 1 sends one request.
    for timestamp in 1..=1000 {
        node.inbound.intake.push_request(1, request(0, timestamp));
    }
    node.inbound.intake.push_request(2, request(1, 1));
    let (requests_tx, _requests_rx) = mpsc::channel(1024);
    let mut batch = Vec::new();
    node.take_batch(&requests_tx, &mut batch).await;
    let stamps: Vec<_> = batch
        .iter()
        .map(|u| match &u.message {
            WireMessage::Request(r) => (r.body.client, r.body.timestamp),
            _ => panic!("not a request"),
        })
        .collect();
    assert_eq!(
        stamps,
        [(ClientId(0), Timestamp(1000)), (ClientId(1), Timestamp(1))]
    );
}

#[tokio::test]
async fn requests_wait_unverified_while_the_core_has_no_room_for_them() {
    let mut node = node();
    flood_then_prepare(&node.inbound).await;
    let (requests_tx, _requests_rx) = mpsc::channel(1);
    requests_tx.try_send(Input::Start).expect("room for one");
    let mut batch = Vec::new();
    node.take_batch(&requests_tx, &mut batch).await;
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].message.kind(), MessageKind::Prepare);
    assert!(node.inbound.intake.requests_waiting());
}
