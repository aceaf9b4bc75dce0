//! One fuzzing target: a live `Core` in the replica's own `host::Host`, driven as
//! `node::driver` drives it. Messages are handled inside a turn, due timers fire before the
//! turn ends, persisted records go to an in-memory log (replaced at each stable checkpoint, as
//! the WAL is), and sends, broadcasts and replies are counted and dropped.

use super::report::Counts;
use super::{Corpus, guarded};
use crate::config::ClusterConfig;
use crate::core::{Core, CoreParams, Input};
use crate::crypto::KeyStore;
use crate::events::ReplicaEvent;
use crate::host::{Host as ReplicaHost, Storage};
use crate::ids::{Principal, ReplicaId};
use crate::sim::SimDisk;
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use std::time::Duration;

/// Records kept in the in-memory log before it stops growing (and restarts come from the
/// simulated state instead): bounds the fuzzer's own memory whatever the core persists.
const MAX_LOG_RECORDS: usize = 100_000;

pub(super) struct Host {
    params: CoreParams,
    key: SigningKey,
    keys: Arc<KeyStore>,
    config: Arc<ClusterConfig>,
    /// The replica's disk when the simulation ended: its real starting state.
    pristine: SimDisk,
    /// What this core has persisted since.
    disk: SimDisk,
    log_overflowed: bool,
    /// The replica's own host (`replica::host`), as the node and the simulator run it.
    host: ReplicaHost,
    /// Timers the host had fired when this target last counted them.
    timers_counted: u64,
}

fn event_name(event: &ReplicaEvent) -> &'static str {
    match event {
        ReplicaEvent::Commit { .. } => "commit",
        ReplicaEvent::Execute { .. } => "execute",
        ReplicaEvent::Suspected { .. } => "suspected",
        ReplicaEvent::ViewChangeStarted { .. } => "view-change-started",
        ReplicaEvent::ViewChangeCompleted { .. } => "view-change-completed",
        ReplicaEvent::CheckpointTaken { .. } => "checkpoint-taken",
        ReplicaEvent::CheckpointStable { .. } => "checkpoint-stable",
        ReplicaEvent::StateTransfer { .. } => "state-transfer",
        ReplicaEvent::Rejected { .. } => "rejected",
        ReplicaEvent::Recovered { .. } => "recovered",
        ReplicaEvent::Sent { .. } => "sent",
        ReplicaEvent::Resources { .. } => "resources",
    }
}

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl Host {
    /// The replica rebuilt from its simulated disk (`Core::recover`) and started.
    pub(super) fn new(id: ReplicaId, corpus: &Corpus, counts: &mut Counts) -> Result<Host, String> {
        let params = CoreParams::from_config(&corpus.config, id);
        let key = corpus.replica_keys[id.0 as usize].clone();
        let pristine = corpus.disks[id.0 as usize].clone();
        let keys = corpus.keys_of(Principal::Replica(id));
        let config = Arc::new(corpus.config.clone());
        let core = Core::new(params.clone(), key.clone(), keys.clone());
        let host = ReplicaHost::new(core, None, key.clone(), keys.clone(), config.clone(), at(0));
        let mut target = Host {
            params,
            key,
            keys,
            config,
            disk: pristine.clone(),
            pristine,
            log_overflowed: false,
            host,
            timers_counted: 0,
        };
        target.restart(false, 0, counts)?;
        Ok(target)
    }

    pub(super) fn core(&self) -> &Core {
        self.host.core()
    }

    /// A crash-restart: `Core::recover` from this core's own log (the records the fuzzed
    /// inputs made it persist), or from the simulated state; then `Input::Start`.
    pub(super) fn restart(
        &mut self,
        from_own_log: bool,
        now: u64,
        counts: &mut Counts,
    ) -> Result<(), String> {
        let own = from_own_log && !self.log_overflowed;
        if own {
            counts.restarts_own_log += 1;
        } else {
            counts.restarts_pristine += 1;
            self.disk = self.pristine.clone();
            self.log_overflowed = false;
        }
        let (params, key, keys) = (self.params.clone(), self.key.clone(), self.keys.clone());
        let disk = self.disk.clone();
        let core = guarded(|| Core::recover(params, key, keys, disk.snapshot, disk.records))?;
        self.replace_core(core, now);
        let host = &mut self.host;
        guarded(|| host.start(at(now)))?;
        self.absorb(counts);
        Ok(())
    }

    /// After a panic the core may be half-updated: back to the simulated state, and to an
    /// empty core should even that fail.
    pub(super) fn reset(&mut self, now: u64, counts: &mut Counts) {
        if self.restart(false, now, counts).is_err() {
            let core = Core::new(self.params.clone(), self.key.clone(), self.keys.clone());
            self.replace_core(core, now);
        }
    }

    fn replace_core(&mut self, core: Core, now: u64) {
        self.host = ReplicaHost::new(
            core,
            None,
            self.key.clone(),
            self.keys.clone(),
            self.config.clone(),
            at(now),
        );
        self.timers_counted = 0;
    }

    pub(super) fn begin_turn(&mut self) {
        self.host.begin_turn();
    }

    pub(super) fn step(
        &mut self,
        input: Input,
        now: u64,
        counts: &mut Counts,
    ) -> Result<(), String> {
        let host = &mut self.host;
        guarded(|| host.handle_input(at(now), input))?;
        self.absorb(counts);
        Ok(())
    }

    /// Fires every timer due by `now`, as the driver does once per turn.
    pub(super) fn run_due(&mut self, now: u64, counts: &mut Counts) -> Result<(), String> {
        let host = &mut self.host;
        guarded(|| host.handle_timeout(at(now)))?;
        self.absorb(counts);
        Ok(())
    }

    pub(super) fn end_turn(&mut self, now: u64, counts: &mut Counts) -> Result<(), String> {
        let host = &mut self.host;
        guarded(|| host.end_turn(at(now)))?;
        self.absorb(counts);
        Ok(())
    }

    /// Counts what the host produced; keeps what it persisted as the disk a restart reads.
    fn absorb(&mut self, counts: &mut Counts) {
        let fired = self.host.timers_fired();
        counts.timer_steps += fired - self.timers_counted;
        self.timers_counted = fired;
        let output = self.host.take_output();
        counts.outbound += output.transmits.len() as u64;
        for write in output.storage {
            match write {
                Storage::Append(record) => {
                    counts.persisted += 1;
                    if self.disk.records.len() < MAX_LOG_RECORDS {
                        self.disk.records.push(record);
                        counts.max_wal_records =
                            counts.max_wal_records.max(self.disk.records.len());
                    } else {
                        self.log_overflowed = true;
                    }
                }
                Storage::InstallCheckpoint { snapshot, retained } => {
                    counts.stable_checkpoints += 1;
                    self.disk = SimDisk {
                        snapshot: Some(snapshot),
                        records: retained,
                    };
                    self.log_overflowed = false;
                }
            }
        }
        for event in output.events {
            match event {
                ReplicaEvent::Rejected { reason, .. } => {
                    *counts.core_rejected.entry(reason).or_default() += 1
                }
                event => *counts.core_events.entry(event_name(&event)).or_default() += 1,
            }
        }
    }
}
