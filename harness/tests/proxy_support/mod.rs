//! Real TCP endpoints and real signed messages for the proxy tests.
#![allow(dead_code)]

use harness::proxy::{Endpoint, LinkSpec, Proxy, ProxyConfig};
use replica::crypto::{KeyStore, key_from_seed};
use replica::digest::Digest;
use replica::kv::{OpResult, Operation};
use replica::message::{
    Checkpoint, Commit, FetchState, PrePrepare, Prepare, Reply, Request, Signed, WireMessage,
    batch_digest,
};
use replica::wire::{DEFAULT_MAX_FRAME, decode_payload, encode_frame, split_frame};
use replica::{ClientId, Principal, ReplicaId, Seq, Timestamp, View};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const KEY_SEED: u64 = 7;
const PATIENCE: Duration = Duration::from_secs(10);

pub fn keys() -> KeyStore {
    let replicas = (0..4)
        .map(|r| key_from_seed(KEY_SEED, Principal::Replica(ReplicaId(r))).verifying_key())
        .collect();
    let clients: HashMap<ClientId, _> = (0..4)
        .map(|c| {
            (
                ClientId(c),
                key_from_seed(KEY_SEED, Principal::Client(ClientId(c))).verifying_key(),
            )
        })
        .collect();
    KeyStore::new(replicas, clients)
}

fn by_replica<T: replica::message::Signable>(r: u32, body: T) -> Signed<T> {
    Signed::sign(
        body,
        Principal::Replica(ReplicaId(r)),
        &key_from_seed(KEY_SEED, Principal::Replica(ReplicaId(r))),
    )
}

pub fn request(client: u32, timestamp: u64) -> Signed<Request> {
    let body = Request {
        client: ClientId(client),
        timestamp: Timestamp(timestamp),
        op: Operation::Put {
            key: format!("k{timestamp}"),
            value: format!("v{client}-{timestamp}"),
        },
    };
    Signed::sign(
        body,
        Principal::Client(ClientId(client)),
        &key_from_seed(KEY_SEED, Principal::Client(ClientId(client))),
    )
}

pub fn prepare(seq: u64) -> WireMessage {
    WireMessage::Prepare(by_replica(
        0,
        Prepare {
            view: View(0),
            seq: Seq(seq),
            digest: Digest::of(&seq.to_be_bytes()),
        },
    ))
}

pub fn commit(seq: u64) -> WireMessage {
    WireMessage::Commit(by_replica(
        0,
        Commit {
            view: View(0),
            seq: Seq(seq),
            digest: Digest::of(&seq.to_be_bytes()),
        },
    ))
}

pub fn pre_prepare(seq: u64) -> WireMessage {
    let batch = vec![request(1, seq), request(2, seq)];
    WireMessage::PrePrepare(by_replica(
        0,
        PrePrepare {
            view: View(0),
            seq: Seq(seq),
            digest: batch_digest(&batch),
            batch,
        },
    ))
}

pub fn checkpoint(seq: u64) -> WireMessage {
    WireMessage::Checkpoint(by_replica(
        0,
        Checkpoint {
            seq: Seq(seq),
            state_digest: Digest::of(b"state"),
        },
    ))
}

pub fn reply(timestamp: u64) -> WireMessage {
    WireMessage::Reply(by_replica(
        0,
        Reply::new(
            View(0),
            ClientId(1),
            Timestamp(timestamp),
            OpResult::Value(Some("v".into())),
        ),
    ))
}

/// The frame that closes a test's stream: everything sent before it arrived before it.
pub fn sentinel() -> WireMessage {
    WireMessage::FetchState(by_replica(0, FetchState { have: Seq(424_242) }))
}

pub fn is_sentinel(payload: &[u8]) -> bool {
    decode_payload(payload, DEFAULT_MAX_FRAME).is_ok_and(|m| m == sentinel())
}

/// A stand-in for the replica behind the proxy: records every frame's payload and, if asked,
/// echoes each frame back on its connection.
pub struct Target {
    pub addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Vec<u8>>,
    task: JoinHandle<()>,
}

impl Target {
    pub async fn start(echo: bool) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind target");
        let addr = listener.local_addr().expect("target addr");
        let (sender, received) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    let mut conn = FramedConn::new(stream);
                    while let Some(payload) = conn.next_payload().await {
                        if echo {
                            conn.send_payload(&payload).await;
                        }
                        if sender.send(payload).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Target {
            addr,
            received,
            task,
        }
    }

    pub async fn next_payload(&mut self) -> Vec<u8> {
        tokio::time::timeout(PATIENCE, self.received.recv())
            .await
            .expect("a frame arrives at the target in time")
            .expect("target still running")
    }

    /// Payloads up to (not including) the sentinel.
    pub async fn until_sentinel(&mut self) -> Vec<Vec<u8>> {
        let mut payloads = Vec::new();
        loop {
            let payload = self.next_payload().await;
            if is_sentinel(&payload) {
                return payloads;
            }
            payloads.push(payload);
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A framed TCP connection.
pub struct FramedConn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl FramedConn {
    pub fn new(stream: TcpStream) -> Self {
        FramedConn {
            stream,
            buffer: Vec::new(),
        }
    }

    pub async fn dial(addr: SocketAddr) -> Self {
        FramedConn::new(TcpStream::connect(addr).await.expect("dial the proxy"))
    }

    pub async fn send(&mut self, message: &WireMessage) {
        self.send_raw(&encode_frame(message)).await;
    }

    pub async fn send_payload(&mut self, payload: &[u8]) {
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        self.send_raw(&frame).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write frame");
    }

    /// The next frame's payload, or `None` at end of stream.
    pub async fn next_payload(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Ok(Some((payload, used))) = split_frame(&self.buffer, DEFAULT_MAX_FRAME) {
                let payload = payload.to_vec();
                self.buffer.drain(..used);
                return Some(payload);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub async fn expect_payload(&mut self) -> Vec<u8> {
        tokio::time::timeout(PATIENCE, self.next_payload())
            .await
            .expect("a frame comes back in time")
            .expect("connection open")
    }
}

pub fn link(from: Endpoint, to: u32, target: SocketAddr) -> LinkSpec {
    LinkSpec {
        from,
        to: ReplicaId(to),
        listen: "127.0.0.1:0".parse().expect("addr"),
        target,
    }
}

pub struct Running {
    pub proxy: Proxy,
    pub log_path: PathBuf,
    _dir: tempfile::TempDir,
}

pub async fn start_proxy(links: Vec<LinkSpec>, seed: u64) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("proxy.jsonl");
    let config = ProxyConfig {
        seed,
        max_frame: DEFAULT_MAX_FRAME,
        log_path: log_path.clone(),
        run_start: std::time::Instant::now(),
    };
    let proxy = Proxy::start(links, config).await.expect("proxy starts");
    Running {
        proxy,
        log_path,
        _dir: dir,
    }
}

impl Running {
    /// Shuts the proxy down and returns its log's lines.
    pub async fn finish(self) -> Vec<serde_json::Value> {
        self.proxy.shutdown().await;
        let text = std::fs::read_to_string(&self.log_path).expect("proxy.jsonl exists");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("each log line is JSON"))
            .collect()
    }
}

pub fn decode(payload: &[u8]) -> WireMessage {
    decode_payload(payload, DEFAULT_MAX_FRAME).expect("payload decodes")
}

/// Waits until the proxy has read `count` frames in all, so a rule change made afterwards
/// cannot apply to them.
pub async fn wait_until_received(proxy: &Proxy, count: u64) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while proxy.stats().total().received < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the proxy read {count} frames in time");
}
