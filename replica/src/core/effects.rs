//! What goes into the sans-IO core and what comes out of it.

use crate::events::ReplicaEvent;
use crate::ids::{ClientId, ReplicaId, Seq, View};
use crate::message::{Checkpoint, Reply, Signed, WireMessage};
use crate::service::ServiceState;
use crate::verify::Verified;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    /// A backup waiting for a request to execute, or for a NEW-VIEW after a VIEW-CHANGE.
    ViewChange,
    /// Periodic re-sending of this replica's protocol messages for unfinished sequence numbers,
    /// so lost messages are recovered without waiting for a view change.
    Retransmit,
    /// Re-asking peers for state while behind.
    StateTransfer,
    /// The primary has held a partial batch long enough: propose it.
    Batch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Sent once when the node is up and connected to start timers.
    Start,
    /// A message whose signatures have been checked.
    Message(Verified),
    TimerFired(Timer),
}

/// A record of the write-ahead log: a protocol message this replica accepted or sent.
/// Replaying the records in order after the latest snapshot rebuilds the core's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalRecord {
    Message(WireMessage),
}

/// The durable image of a stable checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub seq: Seq,
    pub view: View,
    pub state: ServiceState,
    pub checkpoint_proof: Vec<Signed<Checkpoint>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Send {
        to: ReplicaId,
        message: WireMessage,
    },
    /// To every other replica.
    Broadcast(WireMessage),
    Reply {
        client: ClientId,
        reply: Signed<Reply>,
    },
    /// Must be durable before any later `Send`, `Broadcast` or `Reply` leaves.
    Persist(WalRecord),
    /// A checkpoint became stable: store `snapshot` durably, then replace the write-ahead log
    /// with `retained` (the records still needed above the checkpoint).
    StableCheckpoint {
        snapshot: Snapshot,
        retained: Vec<WalRecord>,
    },
    SetTimer {
        timer: Timer,
        after_ms: u64,
    },
    CancelTimer(Timer),
    Event(ReplicaEvent),
}
