//! One simulated replica: its host (absent while crashed), simulated disk, events.

use crate::core::{CoreParams, Snapshot, WalRecord};
use crate::crypto::KeyStore;
use crate::events::ReplicaEvent;
use crate::host::{DiskUsage, Host};
use crate::node::{Interceptor, NodeStats};
use crate::verify::{RejectReason, Verified};
use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a replica has made durable: the latest stable snapshot and the log records after it.
/// It survives `crash` and is what `restart` recovers from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimDisk {
    pub snapshot: Option<Snapshot>,
    pub records: Vec<WalRecord>,
}

impl SimDisk {
    /// The bytes the node's `wal.log` would hold with these records (`node::wal::record_len`).
    pub fn log_bytes(&self) -> u64 {
        self.records.iter().map(crate::node::wal::record_len).sum()
    }

    /// The bytes the node's `snapshot.bin` would hold.
    pub fn snapshot_bytes(&self) -> u64 {
        self.snapshot
            .as_ref()
            .map_or(0, crate::node::wal::record_len)
    }
}

/// A replica event with the virtual time it happened at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEvent {
    /// Virtual nanoseconds since the simulation started.
    pub at_ns: u64,
    pub event: ReplicaEvent,
}

impl SimEvent {
    pub fn at_ms(&self) -> u64 {
        self.at_ns / 1_000_000
    }
}

pub(super) struct SimReplica {
    pub(super) params: CoreParams,
    pub(super) key: SigningKey,
    /// This replica's key store (its own session keys under `auth: macs`).
    pub(super) keys: Arc<KeyStore>,
    /// The replica's host (absent while crashed): the same one the node drives.
    pub(super) host: Option<Host>,
    /// An installed interceptor waits here while the replica is crashed.
    pub(super) parked_interceptor: Option<Box<dyn Interceptor>>,
    /// Whether an interceptor was ever installed: the replica then counts as faulty.
    pub(super) faulty: bool,
    pub(super) disk: SimDisk,
    /// When the host's next wake-up is scheduled, and its generation: a wake-up of an older
    /// generation was superseded.
    pub(super) wake_at: Option<u64>,
    pub(super) wake_generation: u64,
    /// Bumped on every crash and restart, so nothing scheduled for an earlier life happens.
    pub(super) incarnation: u64,
    pub(super) events: Vec<SimEvent>,
    pub(super) rejections: BTreeMap<RejectReason, u64>,
    /// Until when the replica is busy with its last turn (see `CostModel`): what arrives
    /// before then waits in `inbox` and is handled together in one turn, as the node handles
    /// the inputs that queued while it worked.
    pub(super) busy_until_ns: u64,
    pub(super) inbox: Vec<Verified>,
    /// Client requests that arrived while the replica was busy, unchecked (see `intake`).
    pub(super) requests: super::intake::RequestBacklog,
    pub(super) drain_scheduled: bool,
    /// Paused (SIGSTOP): frames that arrive wait in `held`, as in a socket buffer, and no
    /// timer fires until `resume`.
    pub(super) paused: bool,
    pub(super) held: Vec<(Option<super::links::Endpoint>, Vec<u8>)>,
    /// The node's own counters, kept the way the node keeps them.
    pub(super) stats: NodeStats,
    /// The most bytes the log held just before a stable checkpoint truncated it, since the
    /// last resources sample (between truncations the log only grows, so these moments and
    /// the sample's own are where its peaks are). It survives a crash, as the disk does.
    pub(super) peak_log_bytes: u64,
}

impl SimReplica {
    pub(super) fn new(
        params: CoreParams,
        key: SigningKey,
        keys: Arc<KeyStore>,
        host: Host,
    ) -> SimReplica {
        let id = params.id;
        SimReplica {
            params,
            key,
            keys,
            host: Some(host),
            parked_interceptor: None,
            faulty: false,
            disk: SimDisk::default(),
            wake_at: None,
            wake_generation: 0,
            incarnation: 0,
            events: Vec::new(),
            rejections: BTreeMap::new(),
            busy_until_ns: 0,
            inbox: Vec::new(),
            requests: Default::default(),
            drain_scheduled: false,
            paused: false,
            held: Vec::new(),
            stats: NodeStats::new(id),
            peak_log_bytes: 0,
        }
    }

    /// Whether `wal.log` would be replaced now: remember what it held before.
    pub(super) fn before_truncation(&mut self) {
        self.peak_log_bytes = self.peak_log_bytes.max(self.disk.log_bytes());
    }

    /// Records a resources sample when the host says one is due (virtual time, so the
    /// events stay byte-deterministic; no memory figure, which a simulation does not have).
    pub(super) fn sample_resources_if_due(&mut self, now_ns: u64) {
        let now = std::time::Duration::from_nanos(now_ns);
        if !self.host.as_ref().is_some_and(|h| h.resources_due(now)) {
            return;
        }
        let disk = self.take_disk_usage();
        if let Some(host) = self.host.as_mut() {
            let sample = host.sample_resources(now, disk, None);
            self.record(now_ns, sample);
        }
    }

    /// The disk's part of a resources sample; the peak starts over.
    fn take_disk_usage(&mut self) -> DiskUsage {
        let now = self.disk.log_bytes();
        let peak = std::mem::replace(&mut self.peak_log_bytes, 0).max(now);
        DiskUsage {
            peak_log_bytes: peak,
            snapshot_bytes: self.disk.snapshot_bytes(),
        }
    }

    pub(super) fn is_running(&self) -> bool {
        self.host.is_some()
    }

    /// Records an event; rejections are also counted by reason.
    pub(super) fn record(&mut self, at_ns: u64, event: ReplicaEvent) {
        if let ReplicaEvent::Rejected { reason, .. } = &event {
            *self.rejections.entry(*reason).or_default() += 1;
        }
        self.stats.observe_event(&event);
        self.events.push(SimEvent { at_ns, event });
    }

    pub(super) fn crash(&mut self) {
        if let Some(host) = self.host.take() {
            self.parked_interceptor = host.into_interceptor();
        }
        self.wake_at = None;
        self.incarnation += 1;
        // What was queued in memory or in socket buffers dies with the process.
        self.inbox.clear();
        self.requests.clear();
        self.drain_scheduled = false;
        self.paused = false;
        self.held.clear();
    }
}
