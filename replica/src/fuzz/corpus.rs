//! The seed corpus: genuine, validly signed frames of every message kind.
//!
//! Chosen approach: run the in-process simulator (`crate::sim`) for a short seeded workload
//! that includes a state transfer and two view changes, and capture what its replicas receive
//! and send. A recording `Interceptor` on every replica keeps each verified input and each
//! outgoing message (replies included), so the corpus holds exactly the messages real cores
//! produce, signed with the cluster's keys (`key_from_seed(seed, …)`), nested certificates and
//! all. The simulated replicas' disks then give the fuzzing targets a real starting state.

use crate::auth::AuthMode;
use crate::config::ClusterConfig;
use crate::core::{Effect, Input};
use crate::crypto::KeyStore;
use crate::ids::{ClientId, Principal, ReplicaId, View};
use crate::kv::Operation;
use crate::message::{MessageKind, WireMessage};
use crate::node::{InterceptContext, Interceptor};
use crate::sim::{SimConfig, SimDisk, SimError, SimNetwork};
use crate::wire::encode_frame;
use ed25519_dalek::SigningKey;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Small numbers so a short run crosses checkpoints, a state transfer and view changes.
const CHECKPOINT_INTERVAL: u64 = 8;
const WATERMARK_WINDOW: u64 = 32;
const MAX_BATCH: usize = 2;
const PHASE_MS: u64 = 60_000;
const PHASE_FRAMES: u64 = 400_000;

/// A captured message and its frame.
#[derive(Clone, Debug)]
pub struct Sample {
    pub message: WireMessage,
    pub frame: Vec<u8>,
}

/// Genuine messages of every kind, and the simulated cluster they came from.
pub struct Corpus {
    pub seed: u64,
    pub config: ClusterConfig,
    pub keys: Arc<KeyStore>,
    /// Secret keys of every replica and client (indexed by id): the fuzzer may sign as any.
    pub replica_keys: Vec<SigningKey>,
    pub client_keys: Vec<SigningKey>,
    /// Distinct captured messages per kind, in capture order.
    pub samples: BTreeMap<MessageKind, Vec<Sample>>,
    /// Each replica's simulated disk when the workload ended.
    pub disks: Vec<SimDisk>,
    /// The fuzzing targets: a backup and the primary of the final view.
    pub backup: ReplicaId,
    pub primary: ReplicaId,
    /// The faulty replica whose key structure-level mutations sign with: neither target.
    pub byzantine: ReplicaId,
    pub final_view: View,
    pub phases_unfinished: usize,
}

/// Keeps a copy of every message a replica receives (verified) or sends.
struct Recorder {
    sink: Arc<Mutex<Vec<WireMessage>>>,
}

impl Recorder {
    fn keep(&self, message: WireMessage) {
        self.sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }
}

impl Interceptor for Recorder {
    fn inbound(&mut self, input: Input, _ctx: &InterceptContext<'_>) -> Vec<Input> {
        if let Input::Message(verified) = &input {
            self.keep(verified.message().clone());
        }
        vec![input]
    }

    fn outbound(&mut self, effect: Effect, _ctx: &InterceptContext<'_>) -> Vec<(Duration, Effect)> {
        match &effect {
            Effect::Send { message, .. } | Effect::Broadcast(message) => self.keep(message.clone()),
            Effect::Reply { reply, .. } => self.keep(WireMessage::Reply(reply.clone())),
            _ => {}
        }
        vec![(Duration::ZERO, effect)]
    }
}

/// Operations over a few keys, every kind of operation, from the seed.
struct Operations {
    rng: ChaCha8Rng,
    counter: u64,
}

impl Operations {
    fn next(&mut self, client: ClientId) -> Operation {
        self.counter += 1;
        let key = format!("k{}", self.rng.random_range(0..5u32));
        let value = format!("c{}n{}", client.0, self.counter);
        match self.rng.random_range(0..8u32) {
            0 | 1 => Operation::Put { key, value },
            2 | 3 => Operation::Get { key },
            4 | 5 => Operation::Append { key, value },
            6 => Operation::Cas {
                key,
                expected: None,
                new: value,
            },
            _ => Operation::Cas {
                key,
                expected: Some(format!("c{}n{}", client.0, self.counter - 1)),
                new: value,
            },
        }
    }
}

impl Corpus {
    /// Runs the simulated cluster (f = 1, four clients) for the seed and captures its frames;
    /// under `auth: macs` the frames carry the MACs such a cluster sends.
    pub fn build(seed: u64, auth: AuthMode) -> Result<Corpus, SimError> {
        let mut net = SimNetwork::new(SimConfig {
            seed,
            auth,
            checkpoint_interval: CHECKPOINT_INTERVAL,
            watermark_window: WATERMARK_WINDOW,
            max_batch: MAX_BATCH,
            ..SimConfig::default()
        })?;
        let sink = Arc::new(Mutex::new(Vec::new()));
        for replica in net.replica_ids() {
            let recorder = Recorder { sink: sink.clone() };
            net.set_interceptor(replica, Box::new(recorder))?;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(3);
        let mut operations = Operations { rng, counter: 0 };
        let mut unfinished = 0;
        let mut phase = |net: &mut SimNetwork, per_client: u64| {
            let done = net.run_workload(
                per_client,
                PHASE_MS,
                PHASE_FRAMES,
                |c| operations.next(c),
                |_| {},
            );
            if done.is_err() {
                unfinished += 1;
            }
        };
        phase(&mut net, 3);
        // A backup misses more than a checkpoint interval: FETCH-STATE and STATE-TRANSFER.
        let lagging = ReplicaId(3);
        net.isolate(lagging);
        phase(&mut net, 12);
        net.heal();
        phase(&mut net, 6);
        // Two view changes, each by cutting the current primary off: VIEW-CHANGE, NEW-VIEW.
        for _ in 0..2 {
            let primary = net
                .core(ReplicaId(0))
                .map_or(ReplicaId(0), |core| core.primary());
            net.isolate(primary);
            phase(&mut net, 4);
            net.heal();
            phase(&mut net, 4);
        }
        let converged = |net: &SimNetwork| {
            let executed: HashSet<_> = net
                .replica_ids()
                .filter_map(|r| net.core(r).map(|c| c.last_executed()))
                .collect();
            executed.len() == 1
        };
        if !net.run_until(converged, 10_000) {
            unfinished += 1;
        }

        let final_view = net.core(ReplicaId(1)).map_or(View(0), |c| c.view());
        let n = net.replica_ids().count() as u32;
        let primary = final_view.primary(n as usize);
        let backup = if primary == ReplicaId(1) {
            ReplicaId(0)
        } else {
            ReplicaId(1)
        };
        let byzantine = (0..n)
            .rev()
            .map(ReplicaId)
            .find(|r| *r != primary && *r != backup)
            .unwrap_or(ReplicaId(n - 1));
        let captured = std::mem::take(&mut *sink.lock().unwrap_or_else(|p| p.into_inner()));
        let mut seen = HashSet::new();
        let mut samples: BTreeMap<MessageKind, Vec<Sample>> = BTreeMap::new();
        for message in captured {
            let frame = encode_frame(&message);
            if seen.insert(frame.clone()) {
                samples
                    .entry(message.kind())
                    .or_default()
                    .push(Sample { message, frame });
            }
        }
        let replica_keys = net
            .replica_ids()
            .filter_map(|r| net.replica_key(r).cloned())
            .collect();
        let client_keys = net
            .client_ids()
            .filter_map(|c| net.client_key(c).cloned())
            .collect();
        let disks = net
            .replica_ids()
            .filter_map(|r| net.disk(r).cloned())
            .collect();
        Ok(Corpus {
            seed,
            config: net.config().clone(),
            keys: Arc::new(net.keys().clone()),
            replica_keys,
            client_keys,
            samples,
            disks,
            backup,
            primary,
            byzantine,
            final_view,
            phases_unfinished: unfinished,
        })
    }

    /// Kinds of `WireMessage` with no captured sample (empty for a good corpus).
    /// `me`'s key store: the public keys and, under `auth: macs`, `me`'s session keys.
    pub fn keys_of(&self, me: Principal) -> Arc<KeyStore> {
        let secret = match me {
            Principal::Replica(r) => self.replica_keys.get(r.0 as usize),
            Principal::Client(c) => self.client_keys.get(c.0 as usize),
        };
        match (self.config.auth, secret) {
            (AuthMode::Macs, Some(secret)) => {
                Arc::new(self.keys.as_ref().clone().with_sessions(me, secret))
            }
            _ => self.keys.clone(),
        }
    }

    pub fn missing_kinds(&self) -> Vec<MessageKind> {
        MessageKind::ALL
            .iter()
            .copied()
            .filter(|k| self.samples.get(k).is_none_or(Vec::is_empty))
            .collect()
    }

    pub fn sizes(&self) -> BTreeMap<MessageKind, usize> {
        self.samples.iter().map(|(k, v)| (*k, v.len())).collect()
    }
}
