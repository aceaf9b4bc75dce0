//! Carries out the planned faults at their times against the proxy and the processes (and the
//! triggered ones as `watch.rs` sees their events); the bookkeeping (what each fault does,
//! `nemesis.jsonl`) is `FaultBook`'s.

use super::book::{FaultBook, Step, timeline};
use super::{PlannedFault, TriggerWatch};
use crate::primary::PrimaryTracker;
use crate::processes::{ReplicaState, Supervisor};
use crate::proxy::{LinkSpec, ProxyHandle};
use crate::twins::TwinsPlan;
use replica::ReplicaId;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub struct Nemesis {
    proxy: ProxyHandle,
    supervisor: Arc<Supervisor>,
    tracker: Arc<Mutex<PrimaryTracker>>,
    pub(super) run_start: Instant,
    /// `run_start` on the wall clock (ns since the Unix epoch), which event lines use.
    pub(super) run_start_unix_ns: u64,
    book: Mutex<FaultBook>,
    /// Twinned replicas: the rules that keep the twins apart survive the heal.
    twins: Option<TwinsPlan>,
    /// Every replica's `events.jsonl`, by id, which triggered faults watch.
    pub(super) event_files: Vec<(ReplicaId, PathBuf)>,
    n: usize,
}

/// What the nemesis works on besides the proxy and the processes.
pub struct NemesisSetup {
    pub links: Vec<LinkSpec>,
    pub n: usize,
    pub twins: Option<TwinsPlan>,
    pub run_start: Instant,
    /// Every replica's `events.jsonl` (they may not exist yet).
    pub event_files: Vec<(ReplicaId, PathBuf)>,
}

impl Nemesis {
    pub fn new(
        proxy: ProxyHandle,
        supervisor: Arc<Supervisor>,
        tracker: Arc<Mutex<PrimaryTracker>>,
        setup: NemesisSetup,
    ) -> Nemesis {
        let since_start = u64::try_from(setup.run_start.elapsed().as_nanos()).unwrap_or(0);
        Nemesis {
            proxy,
            supervisor,
            tracker,
            run_start: setup.run_start,
            run_start_unix_ns: super::watch::unix_now_ns().saturating_sub(since_start),
            book: Mutex::new(FaultBook::new(setup.n, setup.links, setup.twins.clone())),
            twins: setup.twins,
            event_files: setup.event_files,
            n: setup.n,
        }
    }

    /// Writes `nemesis.jsonl`.
    pub fn write_log(&self, path: &Path) -> std::io::Result<()> {
        self.book().write(path)
    }

    pub(super) fn book(&self) -> MutexGuard<'_, FaultBook> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn now_ns(&self) -> u64 {
        u64::try_from(self.run_start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub(super) fn primary(&self) -> ReplicaId {
        self.tracker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll()
    }

    /// Runs the schedule to its end, with fault times counted from `origin` (the workload's
    /// start), and watches the replicas' events for the triggered faults meanwhile. Cancel it
    /// (abort the task) to stop early; `heal` then undoes what is in force.
    pub async fn run(self: Arc<Self>, faults: Vec<PlannedFault>, origin: Instant) {
        let watch = TriggerWatch::new(&faults, self.n);
        if watch.is_done() {
            self.run_timed(&faults, origin).await;
        } else {
            tokio::join!(
                self.run_timed(&faults, origin),
                self.watch_triggers(watch, origin)
            );
        }
    }

    async fn run_timed(&self, faults: &[PlannedFault], origin: Instant) {
        for (at_ms, starts, index) in timeline(faults) {
            let when = origin + Duration::from_millis(at_ms);
            tokio::time::sleep_until(when.into()).await;
            let fault = &faults[index];
            if starts {
                let start = self.book().plan_start(fault, || self.primary());
                tracing::info!(fault = %fault.id, targets = ?start.targets, "nemesis: start");
                for step in &start.steps {
                    self.carry_out(step).await;
                }
                let now = self.now_ns();
                self.book().record_start(fault, start, now);
            } else {
                tracing::info!(fault = %fault.id, "nemesis: end");
                let now = self.now_ns();
                let steps = self.book().end(&fault.id, now);
                for step in &steps {
                    self.carry_out(step).await;
                }
            }
        }
    }

    pub(super) async fn carry_out(&self, step: &Step) {
        match step {
            Step::AddRules(rules) => {
                for rule in rules {
                    self.proxy.add_rule(rule.clone());
                }
            }
            Step::RemoveRules(prefix) => self.proxy.remove_rules_with_prefix(prefix),
            Step::Kill { replica, permanent } => self.supervisor.kill(*replica, *permanent).await,
            Step::Restart(replica) => {
                if let Err(error) = self.supervisor.start(*replica) {
                    tracing::warn!(%error, "nemesis could not restart a replica");
                }
            }
            Step::Pause(replica) => self.supervisor.pause(*replica),
            Step::Resume(replica) => self.supervisor.resume(*replica),
        }
    }

    /// Undoes everything: every proxy rule (the scenario's default network rules too), every
    /// pause, every kill that is not permanent. Twins stay apart: that is the attack, not a
    /// fault of the network. Returns when the heal was complete, in ns since the run started.
    pub async fn heal(&self) -> u64 {
        self.proxy.set_rules(
            self.twins
                .as_ref()
                .map(|t| t.rules.clone())
                .unwrap_or_default(),
        );
        if let Err(error) = self.supervisor.heal() {
            tracing::warn!(%error, "heal could not restart a replica");
        }
        let now = self.now_ns();
        let supervisor = &self.supervisor;
        self.book().heal(now, |r| {
            matches!(
                supervisor.state(r),
                Some(ReplicaState::Killed { permanent: true })
            )
        });
        now
    }
}
