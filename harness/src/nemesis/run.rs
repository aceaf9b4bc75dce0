//! Carries out the planned faults at their times against the proxy and the processes; the
//! bookkeeping (what each fault does, `nemesis.jsonl`) is `FaultBook`'s.

use super::PlannedFault;
use super::book::{FaultBook, Step, timeline};
use crate::primary::PrimaryTracker;
use crate::processes::{ReplicaState, Supervisor};
use crate::proxy::{LinkSpec, ProxyHandle};
use crate::twins::TwinsPlan;
use replica::ReplicaId;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub struct Nemesis {
    proxy: ProxyHandle,
    supervisor: Arc<Supervisor>,
    tracker: Arc<Mutex<PrimaryTracker>>,
    run_start: Instant,
    book: Mutex<FaultBook>,
    /// Twinned replicas: the rules that keep the twins apart survive the heal.
    twins: Option<TwinsPlan>,
}

impl Nemesis {
    pub fn new(
        proxy: ProxyHandle,
        supervisor: Arc<Supervisor>,
        tracker: Arc<Mutex<PrimaryTracker>>,
        links: Vec<LinkSpec>,
        n: usize,
        twins: Option<TwinsPlan>,
        run_start: Instant,
    ) -> Nemesis {
        Nemesis {
            proxy,
            supervisor,
            tracker,
            run_start,
            book: Mutex::new(FaultBook::new(n, links, twins.clone())),
            twins,
        }
    }

    /// Writes `nemesis.jsonl`.
    pub fn write_log(&self, path: &Path) -> std::io::Result<()> {
        self.book().write(path)
    }

    fn book(&self) -> MutexGuard<'_, FaultBook> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.run_start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn primary(&self) -> ReplicaId {
        self.tracker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll()
    }

    /// Runs the schedule to its end, with fault times counted from `origin` (the workload's
    /// start). Cancel it (abort the task) to stop early; `heal` then undoes what is in force.
    pub async fn run(self: Arc<Self>, faults: Vec<PlannedFault>, origin: Instant) {
        for (at_ms, starts, index) in timeline(&faults) {
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

    async fn carry_out(&self, step: &Step) {
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
