//! Carries out the fault schedule on the wall clock against the proxy and the processes: the
//! `FaultScheduler` says what is due and when, `watch.rs` feeds it the replicas' events for
//! the triggered faults, and `FaultBook` (inside the scheduler) keeps `nemesis.jsonl`.

use super::PlannedFault;
use super::book::Step;
use super::scheduler::{Due, FaultScheduler};
use crate::primary::PrimaryTracker;
use crate::processes::{ReplicaState, Supervisor};
use crate::proxy::{LinkSpec, ProxyHandle};
use crate::twins::TwinsPlan;
use replica::ReplicaId;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How often the event files are read while a trigger is left to fire.
const POLL: Duration = Duration::from_millis(2);

pub struct Nemesis {
    proxy: ProxyHandle,
    supervisor: Arc<Supervisor>,
    tracker: Arc<Mutex<PrimaryTracker>>,
    pub(super) run_start: Instant,
    /// `run_start` on the wall clock (ns since the Unix epoch), which event lines use.
    pub(super) run_start_unix_ns: u64,
    schedule: Mutex<FaultScheduler>,
    /// Twinned replicas: the rules that keep the twins apart survive the heal.
    twins: Option<TwinsPlan>,
    /// Every replica's `events.jsonl`, by id, which triggered faults watch.
    pub(super) event_files: Vec<(ReplicaId, PathBuf)>,
}

/// What the nemesis works on besides the proxy and the processes.
pub struct NemesisSetup {
    pub faults: Vec<PlannedFault>,
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
        let schedule = FaultScheduler::new(setup.faults, setup.n, setup.links, setup.twins.clone());
        Nemesis {
            proxy,
            supervisor,
            tracker,
            run_start: setup.run_start,
            run_start_unix_ns: super::watch::unix_now_ns().saturating_sub(since_start),
            schedule: Mutex::new(schedule),
            twins: setup.twins,
            event_files: setup.event_files,
        }
    }

    /// Writes `nemesis.jsonl`.
    pub fn write_log(&self, path: &Path) -> std::io::Result<()> {
        self.schedule().write(path)
    }

    pub(super) fn schedule(&self) -> MutexGuard<'_, FaultScheduler> {
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.run_start).as_nanos()).unwrap_or(u64::MAX)
    }

    fn primary(&self) -> ReplicaId {
        self.tracker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll()
    }

    /// Runs the schedule for the workload from `origin` to `until`, reading the replicas'
    /// events for the triggered faults meanwhile. Returns when nothing is left to do; cancel
    /// it (abort the task) to stop early; `heal` then undoes what is in force.
    pub async fn run(self: Arc<Self>, origin: Instant, until: Instant) {
        self.schedule().arm(self.ns_at(origin), self.ns_at(until));
        let mut events = super::watch::EventTail::new(self.event_files.clone());
        loop {
            while let Some(due) = self.poll_due() {
                for step in &due.steps {
                    self.carry_out(step).await;
                }
                let now = self.now_ns();
                self.schedule().complete(due, now);
            }
            let (finished, watching, timeout) = {
                let schedule = self.schedule();
                let timeout = schedule.poll_timeout();
                (schedule.is_finished(), schedule.watches_events(), timeout)
            };
            if finished {
                return;
            }
            let next_due = timeout.map(|ns| self.run_start + Duration::from_nanos(ns));
            let wake = match (watching, next_due) {
                (true, Some(due)) => due.min(Instant::now() + POLL),
                (true, None) => Instant::now() + POLL,
                (false, Some(due)) => due,
                // Nothing is timed and no trigger is left: only the heal ends the faults.
                (false, None) => return,
            };
            tokio::time::sleep_until(wake.into()).await;
            if watching {
                self.read_events(&mut events);
            }
        }
    }

    fn poll_due(&self) -> Option<Due> {
        let now = self.now_ns();
        self.schedule().poll_due(now, || self.primary())
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
        self.schedule().heal(now, |r| {
            matches!(
                supervisor.state(r),
                Some(ReplicaState::Killed { permanent: true })
            )
        });
        now
    }
}
