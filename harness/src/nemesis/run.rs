//! Carries out the planned faults at their times against the proxy and the processes, and
//! records each one's real start and end in `nemesis.jsonl`.

use super::{PlannedAction, PlannedFault, PlannedTarget, partition_cuts};
use crate::primary::PrimaryTracker;
use crate::processes::Supervisor;
use crate::proxy::{LinkSpec, ProxyHandle, Rule, partition_rules};
use crate::twins::TwinsPlan;
use replica::ReplicaId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// One line of `nemesis.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NemesisRecord {
    pub id: String,
    pub action: String,
    /// Nanoseconds since the run started, on the history's clock.
    pub start_ns: u64,
    /// `None` for a fault never undone (a permanent kill).
    pub end_ns: Option<u64>,
    /// The replicas hit (resolved at run time for "the primary").
    pub targets: Vec<ReplicaId>,
    /// The proxy rules installed, for network faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

#[derive(Clone, Default)]
pub struct NemesisLog {
    records: Arc<Mutex<Vec<NemesisRecord>>>,
}

impl NemesisLog {
    fn lock(&self) -> MutexGuard<'_, Vec<NemesisRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn records(&self) -> Vec<NemesisRecord> {
        let mut records = self.lock().clone();
        records.sort_by(|a, b| (a.start_ns, &a.id).cmp(&(b.start_ns, &b.id)));
        records
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for record in self.records() {
            let line = serde_json::to_string(&record).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")?;
        }
        out.flush()
    }
}

/// A fault in force: what `end` must undo.
struct Active {
    record: usize,
    targets: Vec<ReplicaId>,
}

pub struct Nemesis {
    proxy: ProxyHandle,
    supervisor: Arc<Supervisor>,
    tracker: Arc<Mutex<PrimaryTracker>>,
    links: Vec<LinkSpec>,
    n: usize,
    run_start: Instant,
    log: NemesisLog,
    active: Mutex<BTreeMap<String, Active>>,
    /// Twinned replicas: partitions cut both twins alike, and the rules that keep the twins
    /// apart survive the heal.
    twins: Option<TwinsPlan>,
}

impl Nemesis {
    pub fn new(
        proxy: ProxyHandle,
        supervisor: Arc<Supervisor>,
        tracker: Arc<Mutex<PrimaryTracker>>,
        links: Vec<LinkSpec>,
        n: usize,
        run_start: Instant,
    ) -> Nemesis {
        Nemesis {
            proxy,
            supervisor,
            tracker,
            links,
            n,
            run_start,
            log: NemesisLog::default(),
            active: Mutex::new(BTreeMap::new()),
            twins: None,
        }
    }

    pub fn with_twins(mut self, twins: Option<TwinsPlan>) -> Nemesis {
        self.twins = twins;
        self
    }

    pub fn log(&self) -> NemesisLog {
        self.log.clone()
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.run_start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn active(&self) -> MutexGuard<'_, BTreeMap<String, Active>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn primary(&self) -> ReplicaId {
        self.tracker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll()
    }

    fn resolve(&self, target: PlannedTarget) -> ReplicaId {
        match target {
            PlannedTarget::Replica(r) => r,
            PlannedTarget::Primary => self.primary(),
        }
    }

    /// Runs the schedule to its end, with fault times counted from `origin` (the workload's
    /// start). Cancel it (abort the task) to stop early; `heal` then undoes what is in force.
    pub async fn run(self: Arc<Self>, faults: Vec<PlannedFault>, origin: Instant) {
        // (time, starts?, index): an end sorts before a start at the same instant.
        let mut timeline: Vec<(u64, bool, usize)> = Vec::new();
        for (index, fault) in faults.iter().enumerate() {
            timeline.push((fault.start_ms, true, index));
            if let Some(end) = fault.end_ms
                && !matches!(
                    fault.action,
                    PlannedAction::Restart { .. } | PlannedAction::Resume { .. }
                )
            {
                timeline.push((end, false, index));
            }
        }
        timeline.sort();
        for (at_ms, starts, index) in timeline {
            let when = origin + Duration::from_millis(at_ms);
            tokio::time::sleep_until(when.into()).await;
            let fault = &faults[index];
            if starts {
                self.start(fault).await;
            } else {
                self.end(&fault.id).await;
            }
        }
    }

    async fn start(&self, fault: &PlannedFault) {
        let mut targets = Vec::new();
        let mut rules = Vec::new();
        let prefix = format!("{}/", fault.id);
        match &fault.action {
            PlannedAction::Partition {
                shape,
                target,
                cuts,
                one_way,
            } => {
                let cuts = if cuts.is_empty() {
                    let alone = target.map(|t| self.resolve(t));
                    targets.extend(alone);
                    let order: Vec<ReplicaId> = (0..self.n as u32).map(ReplicaId).collect();
                    partition_cuts(*shape, &order, alone)
                } else {
                    if let Some(PlannedTarget::Replica(r)) = target {
                        targets.push(*r);
                    }
                    cuts.clone()
                };
                for (k, groups) in cuts.iter().enumerate() {
                    let groups = match &self.twins {
                        Some(twins) => twins.expand_groups(groups),
                        None => groups.clone(),
                    };
                    rules.extend(partition_rules(
                        &format!("{prefix}{k}"),
                        &groups,
                        *one_way,
                        &self.links,
                    ));
                }
            }
            PlannedAction::LinkFault { rules: planned } => {
                rules.extend(planned.iter().map(|rule| Rule {
                    id: format!("{prefix}{}", rule.id),
                    ..rule.clone()
                }));
            }
            PlannedAction::Kill { target, permanent } => {
                let id = self.resolve(*target);
                targets.push(id);
                self.supervisor.kill(id, *permanent).await;
            }
            PlannedAction::Pause { target } => {
                let id = self.resolve(*target);
                targets.push(id);
                self.supervisor.pause(id);
            }
            PlannedAction::Restart { target } => {
                let id = self.resolve(*target);
                targets.push(id);
                if let Err(error) = self.supervisor.start(id) {
                    tracing::warn!(%error, "nemesis could not restart a replica");
                }
            }
            PlannedAction::Resume { target } => {
                let id = self.resolve(*target);
                targets.push(id);
                self.supervisor.resume(id);
            }
        }
        for rule in &rules {
            self.proxy.add_rule(rule.clone());
        }
        let now = self.now_ns();
        let instantaneous = matches!(
            fault.action,
            PlannedAction::Restart { .. } | PlannedAction::Resume { .. }
        );
        tracing::info!(fault = %fault.id, ?targets, "nemesis: start");
        let record = {
            let mut records = self.log.lock();
            records.push(NemesisRecord {
                id: fault.id.clone(),
                action: fault.action.name().to_string(),
                start_ns: now,
                end_ns: instantaneous.then_some(now),
                targets: targets.clone(),
                rules,
            });
            records.len() - 1
        };
        if !instantaneous {
            self.active()
                .insert(fault.id.clone(), Active { record, targets });
        }
    }

    async fn end(&self, id: &str) {
        let Some(active) = self.active().remove(id) else {
            return;
        };
        let action = self.log.lock()[active.record].action.clone();
        match action.as_str() {
            "partition" | "link-fault" => self.proxy.remove_rules_with_prefix(&format!("{id}/")),
            "kill" => {
                for target in &active.targets {
                    if let Err(error) = self.supervisor.start(*target) {
                        tracing::warn!(%error, "nemesis could not restart a replica");
                    }
                }
            }
            "pause" => {
                for target in &active.targets {
                    self.supervisor.resume(*target);
                }
            }
            _ => {}
        }
        tracing::info!(fault = %id, "nemesis: end");
        let now = self.now_ns();
        self.log.lock()[active.record].end_ns = Some(now);
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
        let open: Vec<(String, Active)> = std::mem::take(&mut *self.active()).into_iter().collect();
        let mut records = self.log.lock();
        for (_, active) in open {
            let record = &mut records[active.record];
            let permanent = record.action == "kill"
                && active.targets.iter().any(|t| {
                    matches!(
                        self.supervisor.state(*t),
                        Some(crate::processes::ReplicaState::Killed { permanent: true })
                    )
                });
            if !permanent {
                record.end_ns = Some(now);
            }
        }
        now
    }
}
