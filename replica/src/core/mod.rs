//! The PBFT protocol as a sans-IO state machine.
//!
//! `Core::step` takes one input (a verified message, a timer) and returns the effects to carry
//! out, in order. It never touches sockets, clocks, threads, randomness or disk, so the same
//! code runs in the `replica` process, in unit tests and in the simulator.

mod effects;

pub use effects::{Effect, Input, Snapshot, Timer, WalRecord};

use crate::config::{ClusterConfig, Timeouts};
use crate::crypto::KeyStore;
use crate::digest::Digest;
use crate::ids::{Quorums, ReplicaId, Seq, View};
use crate::service::ServiceState;
use ed25519_dalek::SigningKey;
use std::sync::Arc;

/// Everything the core needs to know about its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreParams {
    pub id: ReplicaId,
    pub quorums: Quorums,
    pub checkpoint_interval: u64,
    pub watermark_window: u64,
    pub max_batch: usize,
    pub pipeline_depth: u64,
    pub timeouts: Timeouts,
}

impl CoreParams {
    pub fn from_config(config: &ClusterConfig, id: ReplicaId) -> CoreParams {
        CoreParams {
            id,
            quorums: config.quorums(),
            checkpoint_interval: config.checkpoint_interval,
            watermark_window: config.watermark_window,
            max_batch: config.max_batch,
            pipeline_depth: config.pipeline_depth,
            timeouts: config.timeouts.clone(),
        }
    }
}

pub struct Core {
    params: CoreParams,
    key: SigningKey,
    keys: Arc<KeyStore>,
    service: ServiceState,
}

// PLACEHOLDER while the protocol is being written: the API below is final, the bodies are not.
impl Core {
    /// A replica starting from nothing (view 0, empty state).
    pub fn new(params: CoreParams, key: SigningKey, keys: Arc<KeyStore>) -> Core {
        Core {
            params,
            key,
            keys,
            service: ServiceState::default(),
        }
    }

    /// A replica rebuilt from its latest snapshot and the write-ahead log records after it.
    /// Reports `ReplicaEvent::Recovered` on its first `Input::Start`.
    pub fn recover(
        params: CoreParams,
        key: SigningKey,
        keys: Arc<KeyStore>,
        _snapshot: Option<Snapshot>,
        _records: Vec<WalRecord>,
    ) -> Core {
        Core::new(params, key, keys)
    }

    pub fn step(&mut self, _input: Input) -> Vec<Effect> {
        let _ = (&self.key, &self.keys);
        Vec::new()
    }

    pub fn params(&self) -> &CoreParams {
        &self.params
    }
    pub fn id(&self) -> ReplicaId {
        self.params.id
    }
    pub fn view(&self) -> View {
        View(0)
    }
    pub fn primary(&self) -> ReplicaId {
        self.view().primary(self.params.quorums.n())
    }
    pub fn is_primary(&self) -> bool {
        self.primary() == self.params.id
    }
    pub fn in_view_change(&self) -> bool {
        false
    }
    pub fn last_executed(&self) -> Seq {
        Seq(0)
    }
    pub fn stable_checkpoint(&self) -> Seq {
        Seq(0)
    }
    pub fn service(&self) -> &ServiceState {
        &self.service
    }
    pub fn state_digest(&self) -> Digest {
        self.service.digest()
    }
    /// Sequence numbers held in the message log (bounded by the watermark window).
    pub fn log_len(&self) -> usize {
        0
    }
}
