//! One simulated replica: its core (absent while crashed), simulated disk, timers, events.

use crate::core::{Core, CoreParams, Snapshot, Timer, WalRecord};
use crate::events::ReplicaEvent;
use crate::node::Interceptor;
use crate::verify::RejectReason;
use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;

/// What a replica has made durable: the latest stable snapshot and the log records after it.
/// It survives `crash` and is what `restart` recovers from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimDisk {
    pub snapshot: Option<Snapshot>,
    pub records: Vec<WalRecord>,
}

/// A replica event with the virtual time it happened at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEvent {
    pub at_ms: u64,
    pub event: ReplicaEvent,
}

pub(super) struct SimReplica {
    pub(super) params: CoreParams,
    pub(super) key: SigningKey,
    pub(super) core: Option<Core>,
    pub(super) disk: SimDisk,
    /// Armed timers and the generation that arms them; a firing with another generation was
    /// cancelled or re-armed in the meantime.
    pub(super) timers: BTreeMap<Timer, u64>,
    pub(super) timer_generation: u64,
    /// Bumped on every crash and restart, so nothing scheduled for an earlier life happens.
    pub(super) incarnation: u64,
    pub(super) started_at_ms: u64,
    pub(super) events: Vec<SimEvent>,
    pub(super) rejections: BTreeMap<RejectReason, u64>,
    pub(super) interceptor: Option<Box<dyn Interceptor>>,
    /// Bumped whenever the interceptor changes, so only one tick chain runs.
    pub(super) tick_generation: u64,
}

impl SimReplica {
    pub(super) fn new(params: CoreParams, key: SigningKey, core: Core) -> SimReplica {
        SimReplica {
            params,
            key,
            core: Some(core),
            disk: SimDisk::default(),
            timers: BTreeMap::new(),
            timer_generation: 0,
            incarnation: 0,
            started_at_ms: 0,
            events: Vec::new(),
            rejections: BTreeMap::new(),
            interceptor: None,
            tick_generation: 0,
        }
    }

    pub(super) fn is_running(&self) -> bool {
        self.core.is_some()
    }

    /// Records an event; rejections are also counted by reason.
    pub(super) fn record(&mut self, at_ms: u64, event: ReplicaEvent) {
        if let ReplicaEvent::Rejected { reason, .. } = &event {
            *self.rejections.entry(*reason).or_default() += 1;
        }
        self.events.push(SimEvent { at_ms, event });
    }

    pub(super) fn crash(&mut self) {
        self.core = None;
        self.timers.clear();
        self.incarnation += 1;
    }
}
