//! `--backend sim`: the pipeline's `Cluster` (`SimCluster`), carried out in one process in
//! virtual time. The same plan picks the same replica builds (each Byzantine behaviour is the
//! same interceptor in the same `Host`), the proxy's own rule engine decides every frame's
//! fate (`links.rs`), the nemesis's `FaultScheduler` says what each fault does and when
//! (`nemesis.rs`), and the clients
//! draw from the same generators (`clients.rs`). It writes the same files, so the same judges
//! read them. Nothing here reads the wall clock or an unseeded random source: the seed and
//! the build fix every byte of the history and of the replicas' events.

mod clients;
mod links;
mod nemesis;
mod online;
mod world;

pub use links::HopLatency;
pub use world::{SIM_EPOCH_NS, calibrated_costs, hop_latency};

use crate::backend::Backend;
use crate::layout::RunDir;
use crate::nemesis::FaultScheduler;
use crate::pipeline::{self, Cluster, Collected, Healed, Phase, Probed, Started, WorkloadDone};
use crate::plan::Plan;
use crate::proxy::{LogWriter, ProxyLog, Rule, open_log};
use crate::verdict::{EarlyStop, Timeline, write_json};
use crate::workload::HistoryWriter;
use anyhow::Context as _;
use clients::SimClients;
use links::SimProxy;
use nemesis::EventCursor;
use online::OnlineOracles;
use replica::ReplicaId;
use replica::signature_ledger::LedgerGuard;
use replica::sim::SimNetwork;
use std::collections::BTreeSet;
use std::future::Future;
use std::io::Write;
use std::task::{Context, Poll, Waker};

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
    schedule: FaultScheduler,
    clients: SimClients,
    /// Replicas killed for good: the heal does not restart them.
    down_for_good: BTreeSet<ReplicaId>,
    actions: u64,
    max_actions: u64,
    oracles: OnlineOracles,
    /// How far the schedule has read each replica's events (for the triggered faults).
    events_seen: EventCursor,
    /// `proxy.jsonl` and its writer thread, closed before the other files are written.
    log: ProxyLog,
    log_writer: LogWriter,
    /// Every honest signature is made on this thread while the run lives, so its check needs
    /// no curve arithmetic; anything else is checked in full (see `signature_ledger`).
    _ledger: LedgerGuard,
}

/// The simulator behind the pipeline's `Cluster`: the plan's world, built at `start`. Each
/// phase interleaves the clients, the faults (timed and triggered) and the online oracles
/// action by action, and ends early at the first violation or when the budget is spent.
pub(crate) struct SimCluster<'a> {
    plan: &'a Plan,
    dir: &'a RunDir,
    max_actions: u64,
    run: Option<SimRun<'a>>,
}

/// Carries out `plan` in the simulator, writes the run's files into `dir` (all but
/// `timeline.json` and the verdict) and returns the timeline; the run ends inconclusive after
/// `max_actions` simulator actions.
pub fn drive_within(plan: &Plan, dir: &RunDir, max_actions: u64) -> anyhow::Result<Timeline> {
    let drive = pipeline::drive(SimCluster::new(plan, dir, max_actions), plan);
    // The simulator's phases never wait, so the pipeline's future is ready at its first poll.
    let mut context = Context::from_waker(Waker::noop());
    match std::pin::pin!(drive).poll(&mut context) {
        Poll::Ready(ran) => Ok(ran?.timeline(Backend::Sim)),
        Poll::Pending => anyhow::bail!("a simulated run waited on something outside it"),
    }
}

impl<'a> SimCluster<'a> {
    /// Nothing is built until `start`.
    pub(crate) fn new(plan: &'a Plan, dir: &'a RunDir, max_actions: u64) -> SimCluster<'a> {
        SimCluster {
            plan,
            dir,
            max_actions,
            run: None,
        }
    }

    fn run(&mut self) -> anyhow::Result<&mut SimRun<'a>> {
        self.run
            .as_mut()
            .context("the simulated cluster was not started")
    }
}

impl Cluster for SimCluster<'_> {
    const BACKEND: Backend = Backend::Sim;

    async fn start(&mut self) -> anyhow::Result<Started> {
        self.run = Some(SimRun::build(self.plan, self.dir, self.max_actions)?);
        Ok(Started {
            started_at_ns: SIM_EPOCH_NS,
        })
    }

    fn install_rules(&mut self, rules: Vec<Rule>) -> anyhow::Result<()> {
        self.run()?.proxy.set_rules(rules);
        Ok(())
    }

    async fn workload_under_nemesis(&mut self) -> anyhow::Result<Phase<WorkloadDone>> {
        let run = self.run()?;
        let start_ns = WORKLOAD_START_NS;
        let end_ns = start_ns + run.plan.duration_ms() * MS;
        let ran = run
            .workload(start_ns, end_ns)
            .map(|()| WorkloadDone { start_ns, end_ns });
        Ok(run.ended(ran, |now| WorkloadDone {
            start_ns,
            end_ns: now,
        }))
    }

    async fn heal(&mut self) -> anyhow::Result<Healed> {
        Ok(Healed {
            heal_ns: self.run()?.heal(),
        })
    }

    async fn settle(&mut self, ms: u64) -> anyhow::Result<Phase<()>> {
        let run = self.run()?;
        let ran = run.advance_to(run.net.now_ns() + ms * MS);
        Ok(run.ended(ran, |_| ()))
    }

    async fn probe(&mut self, ops: u32, deadline_ns: u64) -> anyhow::Result<Phase<Probed>> {
        let run = self.run()?;
        let start_ns = run.net.now_ns();
        run.clients.start_probe(ops, deadline_ns);
        let ran = run.probe(deadline_ns).map(|()| {
            let end_ns = run.net.now_ns();
            run.clients.end_phase(&mut run.net, end_ns);
            Probed { start_ns, end_ns }
        });
        Ok(run.ended(ran, |_| Probed {
            start_ns,
            end_ns: 0,
        }))
    }

    async fn stop_and_collect(mut self) -> anyhow::Result<Collected> {
        let Some(run) = self.run.take() else {
            return Ok(Collected {
                exits: Vec::new(),
                summary: "nothing was built".into(),
            });
        };
        run.close_and_write(self.dir)
    }
}

impl<'a> SimRun<'a> {
    /// The plan's world at virtual time 0, its proxy log open.
    fn build(plan: &'a Plan, dir: &RunDir, max_actions: u64) -> anyhow::Result<SimRun<'a>> {
        let ledger = replica::signature_ledger::enable();
        let (log, log_writer) = open_log(&dir.proxy_log())
            .with_context(|| format!("cannot create {}", dir.proxy_log().display()))?;
        let proxy = SimProxy::new(plan, hop_latency(), log.clone());
        let net = world::build(plan, &proxy)?;
        let links = proxy.links();
        Ok(SimRun {
            plan,
            net,
            proxy,
            schedule: FaultScheduler::new(
                plan.nemesis.clone(),
                plan.n(),
                plan.links.clone(),
                plan.twins.clone(),
            ),
            clients: SimClients::new(plan, HistoryWriter::create(&dir.history())?, links)?,
            down_for_good: BTreeSet::new(),
            actions: 0,
            max_actions,
            oracles: OnlineOracles::new(plan.honest(), &plan.scenario.checks.oracles),
            events_seen: EventCursor::new(plan.n()),
            log,
            log_writer,
            _ledger: ledger,
        })
    }

    /// A phase's value: what `ran` gave, or, at an early stop, what `cut` makes of the stop's
    /// time, with the clients' open operations ended there.
    fn ended<T>(&mut self, ran: Result<T, EarlyStop>, cut: impl FnOnce(u64) -> T) -> Phase<T> {
        match ran {
            Ok(done) => Phase::Done(done),
            Err(stop) => {
                let now = self.net.now_ns();
                self.clients.end_phase(&mut self.net, now);
                Phase::Stopped(cut(now), stop)
            }
        }
    }

    /// The workload from `start` to `end` with the faults at their times and events.
    fn workload(&mut self, start: u64, end: u64) -> Result<(), EarlyStop> {
        self.advance_to(start)?;
        self.clients.start_workload(start, end);
        self.under_nemesis(start, end)?;
        self.clients.end_phase(&mut self.net, end);
        for (client, invoked, ok) in self.clients.counts() {
            tracing::info!(%client, invoked, ok, "workload done");
        }
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
    /// made a fault due (a triggered fault fired).
    fn advance_watching(&mut self, at_ns: u64) -> Result<(), EarlyStop> {
        while self.net.next_action_ns().is_some_and(|t| t <= at_ns) {
            self.step()?;
            if self.feed_events() {
                return Ok(());
            }
        }
        self.net.run_to_ns(at_ns);
        self.clients.step(&mut self.net);
        Ok(())
    }

    /// The workload's world with the faults carried out as the schedule makes them due.
    fn under_nemesis(&mut self, start: u64, end: u64) -> Result<(), EarlyStop> {
        self.arm_nemesis(start, end);
        loop {
            let next_pacing = self
                .clients
                .next_start_ns()
                .filter(|t| *t > self.net.now_ns());
            let until = [self.schedule.poll_timeout(), next_pacing, Some(end)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end);
            self.advance_watching(until)?;
            self.carry_out_due();
            if self.net.now_ns() >= end {
                return Ok(());
            }
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
        self.schedule.heal(now, |r| down.contains(&r));
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

    /// Closes `proxy.jsonl`, then writes the other files the replicas, the clients, the
    /// nemesis and the proxy recorded.
    fn close_and_write(self, dir: &RunDir) -> anyhow::Result<Collected> {
        self.log_writer.close(&self.log);
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
        self.schedule
            .write(&dir.nemesis())
            .with_context(|| format!("cannot write {}", dir.nemesis().display()))?;
        write_json(&dir.proxy_stats(), &self.proxy.stats())?;
        Ok(Collected {
            exits: Vec::new(),
            summary: world::summary(&self.net, self.actions),
        })
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
