//! `--backend sim`: the run of `orchestrator::drive`, carried out in one process in virtual
//! time. The same plan picks the same replica builds (each Byzantine behaviour is the same
//! interceptor in the same `Host`), the proxy's own rule engine decides every frame's fate
//! (`links.rs`), the nemesis's `FaultBook` says what each fault does, and the clients draw
//! from the same generators (`clients.rs`). It writes the same files, so the same judges
//! read them. Nothing here reads the wall clock or an unseeded random source: the seed and
//! the build fix every byte of the history and of the replicas' events.

mod clients;
mod links;
mod online;
mod triggered;
mod world;

pub use links::HopLatency;
pub use world::{SIM_EPOCH_NS, calibrated_costs, hop_latency};

use crate::backend::Backend;
use crate::layout::RunDir;
use crate::nemesis::{FaultBook, Step, TriggerWatch, timeline};
use crate::plan::Plan;
use crate::proxy::open_log;
use crate::verdict::{EarlyStop, Timeline, write_json};
use crate::workload::HistoryWriter;
use anyhow::Context;
use clients::SimClients;
use links::SimProxy;
use online::OnlineOracles;
use replica::ReplicaId;
use replica::sim::SimNetwork;
use std::collections::BTreeSet;
use std::io::Write;
use triggered::SimTriggers;

/// Virtual time the replicas get to start before the workload does.
const WORKLOAD_START_NS: u64 = 10_000_000;
/// Simulator actions one run may take before it ends inconclusive, out of budget (a run of
/// the default scenario takes a few million).
pub const MAX_ACTIONS: u64 = 200_000_000;

const MS: u64 = 1_000_000;

/// One simulated run in progress: the world, the network's rules, the faults, the clients.
struct SimRun<'a> {
    plan: &'a Plan,
    net: SimNetwork,
    proxy: SimProxy,
    book: FaultBook,
    clients: SimClients,
    /// Replicas killed for good: the heal does not restart them.
    down_for_good: BTreeSet<ReplicaId>,
    actions: u64,
    max_actions: u64,
    oracles: OnlineOracles,
    /// The faults that start at protocol events (`triggered.rs`).
    triggers: SimTriggers,
}

/// Carries out `plan` in the simulator and writes the run's files into `dir`.
pub fn drive(plan: &Plan, dir: &RunDir) -> anyhow::Result<Timeline> {
    drive_within(plan, dir, MAX_ACTIONS)
}

/// `drive`, ending the run inconclusive after `max_actions` simulator actions.
pub fn drive_within(plan: &Plan, dir: &RunDir, max_actions: u64) -> anyhow::Result<Timeline> {
    // Every honest signature is made on this thread, so its check needs no curve arithmetic;
    // anything else is checked in full (see `signature_ledger`).
    let _ledger = replica::signature_ledger::enable();
    let (log, log_writer) = open_log(&dir.proxy_log())
        .with_context(|| format!("cannot create {}", dir.proxy_log().display()))?;
    let proxy = SimProxy::new(plan, hop_latency(), log.clone());
    let net = world::build(plan, &proxy)?;
    let links = proxy.links();
    let mut run = SimRun {
        plan,
        net,
        proxy,
        book: FaultBook::new(plan.n(), plan.links.clone(), plan.twins.clone()),
        clients: SimClients::new(plan, HistoryWriter::create(&dir.history())?, links)?,
        down_for_good: BTreeSet::new(),
        actions: 0,
        max_actions,
        oracles: OnlineOracles::new(plan.honest(), &plan.scenario.checks.oracles),
        triggers: SimTriggers::new(TriggerWatch::new(&plan.nemesis, plan.n()), plan.n()),
    };
    let timeline = run.phases();
    log_writer.close(&log);
    run.write_files(dir)?;
    Ok(timeline)
}

impl SimRun<'_> {
    /// The phases of a run, as `orchestrator::drive_cluster` has them; a run that stops
    /// early (an online oracle's first violation, the budget) says so in its timeline.
    fn phases(&mut self) -> Timeline {
        let mut timeline = Timeline {
            started_at_ns: SIM_EPOCH_NS,
            backend: Backend::Sim,
            ..Timeline::default()
        };
        if let Err(stop) = self.phases_until_stopped(&mut timeline) {
            tracing::warn!("{}", stop.describe());
            let now = self.net.now_ns();
            self.clients.end_phase(&mut self.net, now);
            if timeline.workload_end_ns == 0 {
                timeline.workload_end_ns = now;
            }
            timeline.stopped = Some(stop);
        }
        timeline
    }

    fn phases_until_stopped(&mut self, timeline: &mut Timeline) -> Result<(), EarlyStop> {
        let scenario = &self.plan.scenario;
        let mut rules = self.plan.standing_rules();
        rules.extend(scenario.network.rules.iter().cloned());
        self.proxy.set_rules(rules);

        let workload_start = WORKLOAD_START_NS;
        let workload_end = workload_start + self.plan.duration_ms() * MS;
        timeline.workload_start_ns = workload_start;
        self.advance_to(workload_start)?;
        self.clients.start_workload(workload_start, workload_end);
        self.workload_under_nemesis(workload_start, workload_end)?;
        self.clients.end_phase(&mut self.net, workload_end);
        timeline.workload_end_ns = workload_end;
        for (client, invoked, ok) in self.clients.counts() {
            tracing::info!(%client, invoked, ok, "workload done");
        }

        let heal = self.heal();
        timeline.heal_ns = heal;
        self.advance_to(heal + scenario.checks.settle_ms * MS)?;
        timeline.probe_start_ns = self.net.now_ns();
        let probe_deadline = heal + scenario.checks.liveness_bound_ms * MS;
        self.clients
            .start_probe(scenario.checks.probe_ops.max(1), probe_deadline);
        self.probe(probe_deadline)?;
        timeline.probe_end_ns = self.net.now_ns();
        self.clients.end_phase(&mut self.net, timeline.probe_end_ns);
        Ok(())
    }

    /// One simulator action, counted against the budget, then the online oracles.
    fn step(&mut self) -> Result<(), EarlyStop> {
        self.actions += 1;
        if self.actions > self.max_actions {
            return Err(EarlyStop::OutOfBudget {
                actions: self.max_actions,
                at_ns: self.net.now_ns(),
            });
        }
        self.net.step_once();
        self.clients.step(&mut self.net);
        self.oracles.observe(&self.net)
    }

    /// Runs the world up to `at_ns`, stepping the clients after every action.
    fn advance_to(&mut self, at_ns: u64) -> Result<(), EarlyStop> {
        while self.net.next_action_ns().is_some_and(|t| t <= at_ns) {
            self.step()?;
        }
        self.net.run_to_ns(at_ns);
        self.clients.step(&mut self.net);
        Ok(())
    }

    /// Runs the world up to `at_ns` as `advance_to` does, but returns as soon as an action
    /// fired a triggered fault (the fault's end may come before `at_ns`).
    fn advance_watching(&mut self, at_ns: u64) -> Result<(), EarlyStop> {
        while self.net.next_action_ns().is_some_and(|t| t <= at_ns) {
            self.step()?;
            if self.fire_triggers() {
                return Ok(());
            }
        }
        self.net.run_to_ns(at_ns);
        self.clients.step(&mut self.net);
        Ok(())
    }

    fn workload_under_nemesis(&mut self, start: u64, end: u64) -> Result<(), EarlyStop> {
        let faults = self.plan.nemesis.clone();
        let mut schedule = timeline(&faults)
            .into_iter()
            .map(|(at_ms, starts, index)| (start + at_ms * MS, starts, index))
            .filter(|(at, _, _)| *at < end)
            .peekable();
        self.arm_triggers(start);
        loop {
            let next_fault = schedule.peek().map(|(at, _, _)| *at);
            let next_pacing = self
                .clients
                .next_start_ns()
                .filter(|t| *t > self.net.now_ns());
            let next_end = self.triggers.next_end_ns();
            let until = [next_fault, next_end, next_pacing, Some(end)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end);
            self.advance_watching(until)?;
            if self.net.now_ns() >= end && next_fault.is_none_or(|t| t >= end) {
                self.disarm_triggers();
                return Ok(());
            }
            self.end_due_triggers();
            while let Some(&(at, starts, index)) = schedule.peek() {
                if at > self.net.now_ns() {
                    break;
                }
                schedule.next();
                let fault = &faults[index];
                if starts {
                    self.start_fault(fault);
                } else {
                    let steps = self.book.end(&fault.id, self.net.now_ns());
                    self.carry_out(&steps);
                }
            }
        }
    }

    fn start_fault(&mut self, fault: &crate::nemesis::PlannedFault) {
        let start = self.book.plan_start(fault, || self.primary());
        tracing::info!(fault = %fault.id, targets = ?start.targets, "nemesis: start");
        self.carry_out(&start.steps);
        self.book.record_start(fault, start, self.net.now_ns());
    }

    /// The primary as the honest replicas know it: the highest view any of them entered.
    fn primary(&self) -> ReplicaId {
        let view = self
            .plan
            .honest()
            .into_iter()
            .filter_map(|r| self.net.core(r).map(|core| core.view()))
            .max()
            .unwrap_or_default();
        view.primary(self.plan.n())
    }

    fn carry_out(&mut self, steps: &[Step]) {
        for step in steps {
            // A step that finds the replica already in that state changes nothing, as
            // killing a dead process changes nothing.
            let _ = match step {
                Step::AddRules(rules) => {
                    self.proxy.add_rules(rules);
                    Ok(())
                }
                Step::RemoveRules(prefix) => {
                    self.proxy.remove_rules_with_prefix(prefix);
                    Ok(())
                }
                Step::Kill { replica, permanent } => {
                    if *permanent {
                        self.down_for_good.insert(*replica);
                    }
                    self.net.crash(*replica)
                }
                Step::Restart(replica) => self.net.restart(*replica),
                Step::Pause(replica) => self.net.pause(*replica),
                Step::Resume(replica) => self.net.resume(*replica),
            };
        }
    }

    /// Undoes every fault but a permanent kill, and every network rule but the standing
    /// ones; returns the virtual time of the heal.
    fn heal(&mut self) -> u64 {
        self.proxy.set_rules(self.plan.standing_rules());
        for replica in (0..self.plan.n() as u32).map(ReplicaId) {
            if self.net.is_paused(replica) {
                let _ = self.net.resume(replica);
            }
            if !self.net.is_running(replica) && !self.down_for_good.contains(&replica) {
                let _ = self.net.restart(replica);
            }
        }
        let now = self.net.now_ns();
        let down = self.down_for_good.clone();
        self.book.heal(now, |r| down.contains(&r));
        now
    }

    /// The liveness probe: until every client has finished its probe operations or the
    /// deadline passes.
    fn probe(&mut self, deadline: u64) -> Result<(), EarlyStop> {
        while !self.clients.probe_done() {
            match self.net.next_action_ns() {
                Some(at) if at <= deadline => self.step()?,
                _ => {
                    self.advance_to(deadline)?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn write_files(&self, dir: &RunDir) -> anyhow::Result<()> {
        self.clients
            .flush_history()
            .with_context(|| format!("cannot write {}", dir.history().display()))?;
        self.clients.write_byzantine_report(self.plan, dir)?;
        for replica in (0..self.plan.n() as u32).map(ReplicaId) {
            let lines = world::event_lines(self.net.events(replica), replica);
            write_lines(&dir.replica_events(replica), lines.into_iter())?;
            let twin = self.net.twin_events(replica);
            if !twin.is_empty() {
                let lines = world::event_lines(twin, replica);
                write_lines(&dir.twin_events(replica), lines.into_iter())?;
            }
            let processes = [
                (
                    replica::sim::Endpoint::Replica(replica),
                    dir.replica_stats(replica),
                ),
                (
                    replica::sim::Endpoint::Twin(replica),
                    dir.twin_stats(replica),
                ),
            ];
            for (process, path) in processes {
                if let Some(stats) = world::stats_of(&self.net, process) {
                    write_json(&path, &stats)?;
                }
            }
        }
        self.book
            .write(&dir.nemesis())
            .with_context(|| format!("cannot write {}", dir.nemesis().display()))?;
        write_json(&dir.proxy_stats(), &self.proxy.stats())?;
        let sim = world::summary(&self.net, self.actions);
        tracing::info!(%sim, "simulation done");
        Ok(())
    }
}

fn write_lines(path: &std::path::Path, lines: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for line in lines {
        writeln!(out, "{line}").with_context(|| format!("cannot write {}", path.display()))?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}
