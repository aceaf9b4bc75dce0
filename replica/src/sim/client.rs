//! Simulated clients: the same `ClientCore` the real client drives, in virtual time.

use crate::client::ClientCore;
use crate::ids::ClientId;
use crate::kv::{OpResult, Operation};
use crate::message::{Request, RequestId, Signed};
use ed25519_dalek::SigningKey;

/// A client operation that completed: f+1 replicas vouched for `result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedOp {
    pub client: ClientId,
    /// The exact signed request, so a test can retransmit or replay it.
    pub request: Signed<Request>,
    pub result: OpResult,
    /// Virtual nanoseconds since the simulation started.
    pub invoked_at_ns: u64,
    pub completed_at_ns: u64,
}

impl CompletedOp {
    pub fn id(&self) -> RequestId {
        self.request.id()
    }

    pub fn op(&self) -> &Operation {
        &self.request.body.op
    }

    pub fn latency_ms(&self) -> u64 {
        (self.completed_at_ns - self.invoked_at_ns) / 1_000_000
    }
}

/// A simulated client: the protocol's own `ClientCore`, and when its request was invoked.
pub(super) struct SimClient {
    pub(super) core: ClientCore,
    /// Its signing key, for tests that forge or replay requests.
    pub(super) key: SigningKey,
    pub(super) invoked_at_ns: u64,
    /// Bumped whenever a wake-up is scheduled; only the latest one is acted on.
    pub(super) wake_generation: u64,
}
