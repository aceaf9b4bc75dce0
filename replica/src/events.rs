//! Structured events a replica reports. The node writes them as JSON lines (`events.jsonl` in
//! its data dir); the harness's oracles and reports read them back with the same types.

use crate::ids::{Principal, ReplicaId, Seq, View};
use crate::message::{MessageKind, RequestId};
use crate::verify::RejectReason;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ReplicaEvent {
    /// A batch committed locally (2f+1 matching COMMITs).
    Commit {
        view: View,
        seq: Seq,
        digest: String,
        requests: Vec<RequestId>,
    },
    /// One request of a committed batch reached the service.
    Execute {
        seq: Seq,
        request: RequestId,
        op: String,
        result: String,
        duplicate: bool,
    },
    /// This replica's view-change timer expired in `view` while it waited for `waiting_for`:
    /// it told the others it suspects the primary, and stays in `view` until f+1 replicas do.
    Suspected { view: View, waiting_for: RequestId },
    /// This replica gave up on `from` and asked for `view`.
    ViewChangeStarted { from: View, view: View },
    /// This replica entered `view` after a valid NEW-VIEW.
    ViewChangeCompleted { view: View, primary: ReplicaId },
    /// This replica executed up to `seq` and digested its own state there (the digest its
    /// CHECKPOINT carries): what it computed, not what a quorum certified.
    CheckpointTaken { seq: Seq, state_digest: String },
    /// 2f+1 matching CHECKPOINTs made `seq` stable; everything below is garbage collected.
    CheckpointStable { seq: Seq, state_digest: String },
    /// State installed from a peer: jumped from `from_seq` to `to_seq`.
    StateTransfer {
        from_seq: Seq,
        to_seq: Seq,
        source: ReplicaId,
    },
    /// An input was refused.
    Rejected {
        reason: RejectReason,
        kind: Option<MessageKind>,
        from: Option<Principal>,
    },
    /// Rebuilt from the write-ahead log after a restart.
    Recovered {
        view: View,
        stable_seq: Seq,
        last_executed: Seq,
        records: usize,
    },
    /// This replica made and sent its own vote for `(view, seq)`: a PRE-PREPARE (as the
    /// primary, also each one a NEW-VIEW re-issues), a PREPARE or a COMMIT, for the batch with
    /// `digest`. One line per vote made, none per retransmission: what a restarted replica must
    /// not contradict (the no-amnesia oracle). Its CHECKPOINTs are `CheckpointTaken`, its
    /// VIEW-CHANGEs `ViewChangeStarted`.
    Sent {
        kind: MessageKind,
        view: View,
        seq: Seq,
        digest: String,
    },
    /// What this replica held, sampled every `host::RESOURCE_SAMPLE_INTERVAL` of its clock by
    /// whoever drives its host (the node, the simulator): the bounded-resources oracle's input.
    /// The two peaks cover the whole interval since the previous sample, so the write-ahead
    /// log's high point just before a stable checkpoint truncates it is never missed.
    Resources {
        /// Most message-log slots held at once since the previous sample.
        slots: u64,
        /// Most bytes `wal.log` held at once since the previous sample (records after the
        /// stable checkpoint, headers included).
        wal_bytes: u64,
        /// Bytes of `snapshot.bin` (the stable checkpoint's snapshot) at the sample.
        snapshot_bytes: u64,
        /// The stable checkpoint at the sample.
        stable_seq: Seq,
        /// Resident memory (VmRSS) at the sample; only a real process measures it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rss_bytes: Option<u64>,
    },
}

/// One line of `events.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    /// Wall-clock time (ns since the Unix epoch), so lines from several processes interleave.
    pub time_ns: u64,
    pub replica: ReplicaId,
    #[serde(flatten)]
    pub event: ReplicaEvent,
}
