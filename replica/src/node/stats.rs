//! Counters every part of the node bumps, and `stats.json`, the snapshot of them that the
//! harness reports show. Counting is lock-free on the hot path (atomics per message kind).

use crate::events::ReplicaEvent;
use crate::ids::{ReplicaId, Seq, View};
use crate::message::MessageKind;
use crate::verify::RejectReason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub const STATS_FILE: &str = "stats.json";
const KINDS: usize = MessageKind::ALL.len();

/// The contents of `stats.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub replica: ReplicaId,
    /// When this snapshot was taken (ns since the Unix epoch).
    pub time_ns: u64,
    pub uptime_ms: u64,
    pub view: View,
    pub in_view_change: bool,
    pub last_executed: Seq,
    pub stable_checkpoint: Seq,
    pub view_changes_started: u64,
    pub view_changes_completed: u64,
    pub state_transfers: u64,
    /// Verified messages received, by message kind name.
    pub messages_in: BTreeMap<String, u64>,
    /// Messages handed to the network (one per destination), by message kind name.
    pub messages_out: BTreeMap<String, u64>,
    /// Refused inputs by reason name, from frame checks, verification and the core.
    pub rejected: BTreeMap<String, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Frames dropped from a full per-peer queue (the protocol retransmits) or without a
    /// live client connection to reply on.
    pub outbound_dropped: u64,
    pub connections_accepted: u64,
    /// Batches of messages whose signatures were checked together (received messages divided
    /// by this is the mean batch).
    #[serde(default)]
    pub verify_batches: u64,
    /// Client requests dropped unverified because the same sender (connection and claimed
    /// client) queued a newer one before they were checked, or because the request queue had
    /// no room for another sender (`node::intake`).
    #[serde(default)]
    pub requests_shed: u64,
    /// Requests proposed in a PRE-PREPARE whose MAC entry for this replica failed, so that it
    /// checked their signatures instead (Aardvark's "MAC attack"; see
    /// `verify::Verdict::mac_fallbacks`). Those whose signature failed too are also among
    /// `rejected`'s `bad-signature`.
    #[serde(default)]
    pub mac_fallbacks: u64,
}

pub struct NodeStats {
    replica: ReplicaId,
    started: Instant,
    messages_in: [AtomicU64; KINDS],
    messages_out: [AtomicU64; KINDS],
    rejected: Mutex<BTreeMap<RejectReason, u64>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    outbound_dropped: AtomicU64,
    connections_accepted: AtomicU64,
    verify_batches: AtomicU64,
    requests_shed: AtomicU64,
    mac_fallbacks: AtomicU64,
    view: AtomicU64,
    in_view_change: AtomicBool,
    last_executed: AtomicU64,
    stable_checkpoint: AtomicU64,
    view_changes_started: AtomicU64,
    view_changes_completed: AtomicU64,
    state_transfers: AtomicU64,
}

impl NodeStats {
    pub fn new(replica: ReplicaId) -> NodeStats {
        NodeStats {
            replica,
            started: Instant::now(),
            messages_in: [const { AtomicU64::new(0) }; KINDS],
            messages_out: [const { AtomicU64::new(0) }; KINDS],
            rejected: Mutex::new(BTreeMap::new()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            outbound_dropped: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            verify_batches: AtomicU64::new(0),
            requests_shed: AtomicU64::new(0),
            mac_fallbacks: AtomicU64::new(0),
            view: AtomicU64::new(0),
            in_view_change: AtomicBool::new(false),
            last_executed: AtomicU64::new(0),
            stable_checkpoint: AtomicU64::new(0),
            view_changes_started: AtomicU64::new(0),
            view_changes_completed: AtomicU64::new(0),
            state_transfers: AtomicU64::new(0),
        }
    }

    pub fn message_in(&self, kind: MessageKind) {
        self.messages_in[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn messages_out(&self, kind: MessageKind, count: u64) {
        self.messages_out[kind as usize].fetch_add(count, Relaxed);
    }

    pub fn verify_batch(&self) {
        self.verify_batches.fetch_add(1, Relaxed);
    }

    pub fn request_shed(&self) {
        self.requests_shed.fetch_add(1, Relaxed);
    }

    /// Counts MAC entries a verdict's signatures stood in for (zero is a no-op).
    pub fn mac_fallbacks(&self, count: u32) {
        if count > 0 {
            self.mac_fallbacks.fetch_add(u64::from(count), Relaxed);
        }
    }

    pub fn rejected(&self, reason: RejectReason) {
        let mut rejected = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        *rejected.entry(reason).or_default() += 1;
    }

    pub fn bytes_in(&self, bytes: usize) {
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }

    pub fn bytes_out(&self, bytes: usize) {
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
    }

    pub fn outbound_dropped(&self, frames: u64) {
        self.outbound_dropped.fetch_add(frames, Relaxed);
    }

    pub fn connection_accepted(&self) {
        self.connections_accepted.fetch_add(1, Relaxed);
    }

    pub fn core_state(&self, view: View, in_view_change: bool, executed: Seq, stable: Seq) {
        self.view.store(view.0, Relaxed);
        self.in_view_change.store(in_view_change, Relaxed);
        self.last_executed.store(executed.0, Relaxed);
        self.stable_checkpoint.store(stable.0, Relaxed);
    }

    /// Counts what an event of the core says about view changes, state transfers, rejections.
    pub fn observe_event(&self, event: &ReplicaEvent) {
        match event {
            ReplicaEvent::ViewChangeStarted { .. } => {
                self.view_changes_started.fetch_add(1, Relaxed);
            }
            ReplicaEvent::ViewChangeCompleted { .. } => {
                self.view_changes_completed.fetch_add(1, Relaxed);
            }
            ReplicaEvent::StateTransfer { .. } => {
                self.state_transfers.fetch_add(1, Relaxed);
            }
            ReplicaEvent::Rejected { reason, .. } => self.rejected(*reason),
            _ => {}
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let by_kind = |counters: &[AtomicU64; KINDS]| {
            MessageKind::ALL
                .iter()
                .map(|kind| {
                    (
                        kind.name().to_string(),
                        counters[*kind as usize].load(Relaxed),
                    )
                })
                .filter(|(_, count)| *count > 0)
                .collect()
        };
        let rejected = self
            .rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(reason, count)| (reason.name(), *count))
            .collect();
        StatsSnapshot {
            replica: self.replica,
            time_ns: unix_time_ns(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            view: View(self.view.load(Relaxed)),
            in_view_change: self.in_view_change.load(Relaxed),
            last_executed: Seq(self.last_executed.load(Relaxed)),
            stable_checkpoint: Seq(self.stable_checkpoint.load(Relaxed)),
            view_changes_started: self.view_changes_started.load(Relaxed),
            view_changes_completed: self.view_changes_completed.load(Relaxed),
            state_transfers: self.state_transfers.load(Relaxed),
            messages_in: by_kind(&self.messages_in),
            messages_out: by_kind(&self.messages_out),
            rejected,
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            outbound_dropped: self.outbound_dropped.load(Relaxed),
            connections_accepted: self.connections_accepted.load(Relaxed),
            verify_batches: self.verify_batches.load(Relaxed),
            requests_shed: self.requests_shed.load(Relaxed),
            mac_fallbacks: self.mac_fallbacks.load(Relaxed),
        }
    }

    /// Rewrites `<dir>/stats.json` atomically (temp file + rename): a reader never sees half.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(&self.snapshot()).map_err(std::io::Error::other)?;
        let temp = dir.join(format!("{STATS_FILE}.tmp"));
        std::fs::write(&temp, json)?;
        std::fs::rename(&temp, dir.join(STATS_FILE))
    }
}

pub(crate) fn unix_time_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
