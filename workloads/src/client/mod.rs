//! The PBFT client over TCP: the sans-IO `replica::client::ClientCore` (signed requests, f+1
//! matching replies, re-sends to every replica, the deadline), the one the simulator drives
//! too, with a connection per replica and tokio's clock around it.
//!
//! One request is in flight per client (PBFT clients are sequential); run many clients for
//! concurrency. A `Client` is shared by reference between tasks: concurrent calls queue.

mod link;
mod stats;

pub use replica::client::{Decision, ReplyDrop, ReplyTally};
pub use stats::ClientStats;

use ed25519_dalek::SigningKey;
use link::{IncomingReply, Link, LinkShared, OutgoingFrame};
use replica::client::{ClientCore, ClientOutcome, ClientTiming, ClientTransmit};
use replica::config::ClusterConfig;
use replica::crypto;
use replica::ids::{ClientId, Principal, ReplicaId, Timestamp, View};
use replica::kv::{OpResult, Operation};
use replica::message::{Request, Signed, WireMessage};
use replica::wire::encode_frame;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// Frames waiting per replica while its connection is down; more are dropped (the retry
/// loop re-sends anyway).
const SEND_QUEUE: usize = 16;
/// Verified-or-not replies waiting for the request loop.
const REPLY_QUEUE: usize = 256;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error(
        "request {timestamp} got no {needed} matching replies within {waited:?}: outcome unknown"
    )]
    Timeout {
        timestamp: Timestamp,
        needed: usize,
        waited: Duration,
    },
    #[error("client {0} is not listed in the cluster file")]
    UnknownClient(ClientId),
    #[error("the key given for client {0} does not match its public key in the cluster file")]
    KeyMismatch(ClientId),
    #[error("cluster file: {0}")]
    Config(String),
    #[error("a Client must be created inside a tokio runtime")]
    NoRuntime,
    #[error("the client's connections have shut down")]
    Closed,
}

impl ClientError {
    /// Whether the request may still have executed (the harness records `info`, not `fail`).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ClientError::Timeout { .. } | ClientError::Closed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// Wait this long for f+1 matching replies before re-sending to every replica, and again
    /// between re-sends.
    pub retry: Duration,
    /// Give up (outcome unknown) after this long.
    pub deadline: Duration,
}

impl ClientOptions {
    pub fn from_config(config: &ClusterConfig) -> ClientOptions {
        ClientOptions {
            retry: Duration::from_millis(config.timeouts.client_retry_ms.max(1)),
            deadline: Duration::from_secs(10),
        }
    }
}

/// A signed request with its frame, ready to be submitted (and resubmitted unchanged).
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    pub request: Signed<Request>,
    frame: OutgoingFrame,
}

impl PreparedRequest {
    pub fn timestamp(&self) -> Timestamp {
        self.request.body.timestamp
    }

    pub fn op(&self) -> &Operation {
        &self.request.body.op
    }
}

/// A request the cluster answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    pub timestamp: Timestamp,
    pub result: OpResult,
    /// The view f+1 of the answering replicas have reached.
    pub view: View,
    /// The replicas whose verified replies matched.
    pub answered: Vec<ReplicaId>,
    /// From the first send to the decision.
    pub latency: Duration,
    /// Whether the request had to be re-sent to every replica.
    pub broadcast: bool,
}

pub struct Client {
    id: ClientId,
    /// The protocol; locked only for a step at a time, never across an await.
    core: std::sync::Mutex<ClientCore>,
    epoch: Instant,
    options: ClientOptions,
    shared: Arc<LinkShared>,
    senders: Vec<mpsc::Sender<OutgoingFrame>>,
    /// Holding this lock is what makes a request "in flight".
    replies: Mutex<mpsc::Receiver<IncomingReply>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Client {
    /// Connects to every replica at the address the cluster file gives (a proxy port, for the
    /// harness). Must be called inside a tokio runtime; connections are made in the background.
    pub fn new(
        config: &ClusterConfig,
        id: ClientId,
        key: SigningKey,
    ) -> Result<Client, ClientError> {
        Self::with_options(config, id, key, ClientOptions::from_config(config))
    }

    pub fn with_options(
        config: &ClusterConfig,
        id: ClientId,
        key: SigningKey,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ClientError::NoRuntime)?;
        let keys = config
            .key_store_for(
                std::path::Path::new("cluster file"),
                Principal::Client(id),
                &key,
            )
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let listed = keys
            .key_of(Principal::Client(id))
            .ok_or(ClientError::UnknownClient(id))?;
        if crypto::public_key_hex(listed) != crypto::public_key_hex(&key.verifying_key()) {
            return Err(ClientError::KeyMismatch(id));
        }
        let shared = Arc::new(LinkShared {
            client: id,
            max_frame: config.max_frame_bytes,
            in_flight: AtomicU64::new(0),
            stats: Default::default(),
            introduced: config
                .replicas
                .iter()
                .map(|_| AtomicBool::new(false))
                .collect(),
        });
        let (reply_sender, reply_receiver) = mpsc::channel(REPLY_QUEUE);
        let mut senders = Vec::with_capacity(config.replicas.len());
        let mut tasks = Vec::with_capacity(config.replicas.len());
        for entry in &config.replicas {
            let (sender, receiver) = mpsc::channel(SEND_QUEUE);
            let link = Link {
                replica: entry.id,
                address: entry.address,
                shared: shared.clone(),
                replies: reply_sender.clone(),
            };
            tasks.push(runtime.spawn(link.run(receiver)));
            senders.push(sender);
        }
        let timing = ClientTiming {
            retry: options.retry,
            deadline: Some(options.deadline),
        };
        let core = ClientCore::new(id, key, Arc::new(keys), config.quorums(), timing);
        Ok(Client {
            id,
            core: std::sync::Mutex::new(core),
            epoch: Instant::now(),
            options,
            shared,
            senders,
            replies: Mutex::new(reply_receiver),
            tasks,
        })
    }

    pub fn id(&self) -> ClientId {
        self.id
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The primary this client sends to first: that of the latest view f+1 replies named.
    pub fn believed_primary(&self) -> ReplicaId {
        self.with_core(|core| core.believed_primary())
    }

    pub fn stats(&self) -> ClientStats {
        self.shared.stats.snapshot()
    }

    fn with_core<R>(&self, step: impl FnOnce(&mut ClientCore) -> R) -> R {
        let mut core = self
            .core
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        step(&mut core)
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Signs `op` with the next timestamp. Timestamps start at the wall clock in microseconds,
    /// so a restarted client never reuses one; they strictly increase per client. Submit
    /// prepared requests in the order they were prepared: a replica refuses a request older
    /// than the client's last executed one.
    pub fn prepare(&self, op: Operation) -> PreparedRequest {
        let wall_micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let request = self.with_core(|core| core.prepare(op, wall_micros));
        let frame = encode_frame(&WireMessage::Request(request.clone()));
        PreparedRequest {
            frame: OutgoingFrame {
                timestamp: request.body.timestamp,
                frame: frame.into(),
            },
            request,
        }
    }

    /// Executes `op` and returns the cluster's result.
    pub async fn execute(&self, op: Operation) -> Result<OpResult, ClientError> {
        Ok(self.submit(&self.prepare(op)).await?.result)
    }

    /// Sends a prepared request and waits for f+1 matching replies. Calling it again with the
    /// same request after a timeout retries it: replicas answer a request they already
    /// executed from their reply cache, never by executing it twice.
    pub async fn submit(&self, request: &PreparedRequest) -> Result<Completed, ClientError> {
        let mut replies = self.replies.lock().await;
        while replies.try_recv().is_ok() {}
        let stats = &self.shared.stats;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let _awaiting = AwaitingGuard::set(&self.shared.in_flight, request.timestamp());
        let transmits = self.with_core(|core| {
            core.submit(self.now(), request.request.clone());
            core.take_transmits()
        });
        let sent_to: Vec<ReplicaId> = transmits
            .iter()
            .filter_map(|t| match t {
                ClientTransmit::To(replica, _) => Some(*replica),
                ClientTransmit::ToAll(_) => None,
            })
            .collect();
        self.send(transmits, &request.frame);
        // A replica learns where to send replies from the client's first frame on its
        // connection: introduce the client to every replica with its first request.
        for (index, introduced) in self.shared.introduced.iter().enumerate() {
            let replica = ReplicaId(index as u32);
            if !introduced.swap(true, Ordering::Relaxed) && !sent_to.contains(&replica) {
                self.send_to(replica, &request.frame);
            }
        }
        let outcome = loop {
            let wake = self.with_core(|core| core.poll_timeout());
            let wake = self.epoch + wake.unwrap_or(self.options.deadline);
            tokio::select! {
                biased;
                incoming = replies.recv() => {
                    let Some(incoming) = incoming else { return Err(ClientError::Closed) };
                    let now = self.now();
                    match self.with_core(|core| core.handle_reply(now, incoming.link, incoming.reply)) {
                        Ok(Some(outcome)) => break outcome,
                        Ok(None) | Err(ReplyDrop::BadSignature) => {}
                        Err(ReplyDrop::NotForThisRequest) => {
                            stats.stale_replies.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ReplyDrop::WrongSigner) => {
                            stats.replies_wrong_signer.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ReplyDrop::Redundant) => {
                            stats.redundant_replies.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => {
                    let now = self.now();
                    let (outcome, transmits) =
                        self.with_core(|core| (core.handle_timeout(now), core.take_transmits()));
                    if let Some(outcome) = outcome {
                        break outcome;
                    }
                    self.send(transmits, &request.frame);
                }
            }
        };
        match outcome {
            ClientOutcome::Completed(done) => {
                stats.completed.fetch_add(1, Ordering::Relaxed);
                stats
                    .replies_verified
                    .fetch_add(done.answered.len() as u64, Ordering::Relaxed);
                stats
                    .replies_bad_signature
                    .fetch_add(done.bad_signatures, Ordering::Relaxed);
                Ok(Completed {
                    timestamp: done.request.body.timestamp,
                    result: done.result,
                    view: done.view,
                    answered: done.answered,
                    latency: done.latency,
                    broadcast: done.broadcast,
                })
            }
            ClientOutcome::TimedOut {
                request,
                needed,
                waited,
                bad_signatures,
            } => {
                stats.timeouts.fetch_add(1, Ordering::Relaxed);
                stats
                    .replies_bad_signature
                    .fetch_add(bad_signatures, Ordering::Relaxed);
                Err(ClientError::Timeout {
                    timestamp: request.body.timestamp,
                    needed,
                    waited,
                })
            }
        }
    }

    /// Sends the outstanding request's frame where the core asked.
    fn send(&self, transmits: Vec<ClientTransmit>, frame: &OutgoingFrame) {
        for transmit in transmits {
            match transmit {
                ClientTransmit::To(replica, _) => self.send_to(replica, frame),
                ClientTransmit::ToAll(_) => {
                    self.shared.stats.broadcasts.fetch_add(1, Ordering::Relaxed);
                    for replica in 0..self.senders.len() {
                        self.send_to(ReplicaId(replica as u32), frame);
                    }
                }
            }
        }
    }

    fn send_to(&self, replica: ReplicaId, frame: &OutgoingFrame) {
        let Some(sender) = self.senders.get(replica.0 as usize) else {
            return;
        };
        if sender.try_send(frame.clone()).is_err() {
            self.shared
                .stats
                .sends_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Marks a request as awaited for the link tasks, and unmarks it however `submit` ends
/// (including when its future is dropped by a caller's timeout).
struct AwaitingGuard<'a>(&'a AtomicU64);

impl<'a> AwaitingGuard<'a> {
    fn set(slot: &'a AtomicU64, timestamp: Timestamp) -> Self {
        slot.store(timestamp.0, Ordering::Release);
        AwaitingGuard(slot)
    }
}

impl Drop for AwaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}
