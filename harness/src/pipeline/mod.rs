//! One run, top to bottom, as Jepsen's `run!` has it: start the cluster, the workload under
//! the nemesis, heal and settle, the liveness probe, stop and collect, then the timeline and
//! the judge. Every phase is one call on a `Cluster` and returns a value; the timeline is
//! made from those values. The plan comes before (`orchestrator::prepare`), the report after
//! (`gauntlet run` writes it once the verdict is on disk).
//!
//! Two worlds implement `Cluster`: `RealCluster` (`real.rs`: replica processes, the proxy,
//! the nemesis on the wall clock) and `sim::SimCluster` (the same plan in virtual time, where
//! the clients, the faults and the online oracles interleave inside each phase).

mod real;

pub(crate) use real::RealCluster;

use crate::backend::Backend;
use crate::layout::RunDir;
use crate::orchestrator::{RunOptions, RunOutcome};
use crate::plan::Plan;
use crate::processes::ReplicaExit;
use crate::proxy::Rule;
use crate::verdict::{EarlyStop, Timeline, Verdict, judge, write_json};
use std::time::{Duration, Instant};

const MS: u64 = 1_000_000;

/// A world that runs the replicas of a plan. Every time is in ns on the run's own clock
/// (since the run started for real processes, virtual ns in simulation).
///
/// The methods are `async` because the real world waits on processes and sockets; the
/// simulator's bodies never wait. The trait is used generically, never as `dyn`, so it needs
/// no boxed futures, and crate-private, so no caller relies on the futures being `Send`.
pub(crate) trait Cluster {
    /// Recorded in the timeline and the verdict.
    const BACKEND: Backend;

    /// Starts every replica and waits until each one serves.
    async fn start(&mut self) -> anyhow::Result<Started>;

    /// Puts `rules`, and only them, in force on every link.
    fn install_rules(&mut self, rules: Vec<Rule>) -> anyhow::Result<()>;

    /// The clients for the scenario's duration while the nemesis starts and ends its faults
    /// (at their times, and at their protocol events).
    async fn workload_under_nemesis(&mut self) -> anyhow::Result<Phase<WorkloadDone>>;

    /// Undoes every fault but a permanent kill and every rule but the standing ones.
    async fn heal(&mut self) -> anyhow::Result<Healed>;

    /// Lets `ms` pass on the healed cluster.
    async fn settle(&mut self, ms: u64) -> anyhow::Result<Phase<()>>;

    /// Each client's `ops` probe operations, until done or `deadline_ns`.
    async fn probe(&mut self, ops: u32, deadline_ns: u64) -> anyhow::Result<Phase<Probed>>;

    /// Stops everything that runs and writes what the replicas recorded into the run folder.
    /// Called whatever happened before, so a failed run stops its processes too.
    async fn stop_and_collect(self) -> anyhow::Result<Collected>;
}

/// How a phase ended: at its end, or early (only the simulator stops early: an online
/// oracle's first violation, or the action budget) with what it did up to then.
pub(crate) enum Phase<T> {
    Done(T),
    Stopped(T, EarlyStop),
}

/// The cluster serves.
pub(crate) struct Started {
    /// Wall-clock ns since the Unix epoch of the run's zero (the simulator's fixed epoch).
    pub started_at_ns: u64,
}

/// The workload's window; a stopped workload ends at the stop.
pub(crate) struct WorkloadDone {
    pub start_ns: u64,
    pub end_ns: u64,
}

#[derive(Clone, Copy)]
pub(crate) struct Healed {
    pub heal_ns: u64,
}

/// The probe's window; a stopped probe has no end (0, as the timeline has it).
pub(crate) struct Probed {
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The cluster stopped and its files are in the run folder.
pub(crate) struct Collected {
    /// One line for the log: what was stopped and collected.
    pub summary: String,
    /// Replica processes that ended on their own (real processes only).
    pub exits: Vec<ReplicaExit>,
}

/// The step values of a run, as far as it got.
pub(crate) struct Ran {
    started: Started,
    workload: WorkloadDone,
    /// Wall time of the workload phase.
    workload_wall: Duration,
    healed: Option<Healed>,
    probed: Option<Probed>,
    stopped: Option<EarlyStop>,
    /// Known once the cluster is stopped.
    exits: Vec<ReplicaExit>,
}

impl Ran {
    /// `timeline.json`: the step values, 0 for a phase the run did not reach.
    pub(crate) fn timeline(&self, backend: Backend) -> Timeline {
        Timeline {
            workload_start_ns: self.workload.start_ns,
            workload_end_ns: self.workload.end_ns,
            heal_ns: self.healed.map_or(0, |h| h.heal_ns),
            probe_start_ns: self.probed.as_ref().map_or(0, |p| p.start_ns),
            probe_end_ns: self.probed.as_ref().map_or(0, |p| p.end_ns),
            started_at_ns: self.started.started_at_ns,
            backend,
            stopped: self.stopped.clone(),
            replica_exits: self.exits.clone(),
        }
    }
}

/// One run on `cluster`: the phases, the timeline, the judge. Never returns without a
/// verdict on disk: a failure becomes an `error` verdict (exit code 2).
pub(crate) async fn run<C: Cluster>(
    cluster: C,
    plan: &Plan,
    dir: &RunDir,
    options: &RunOptions,
) -> RunOutcome {
    let began = Instant::now();
    let reproduce = plan.reproduce_command(options.duration_override, C::BACKEND);
    let build_id = Some(crate::build_info::build_id());
    // Start, the workload under the nemesis, heal and settle, probe; stop and collect.
    let ran = drive(cluster, plan).await;
    let workload = ran.as_ref().map_or(Duration::ZERO, |ran| ran.workload_wall);
    // The timeline from the phases' values, then the judge.
    let timeline = ran.and_then(|ran| {
        let timeline = ran.timeline(C::BACKEND);
        write_json(&dir.timeline(), &timeline)?;
        Ok(timeline)
    });
    let mut verdict = match timeline {
        Ok(timeline) => judge(dir, plan, &timeline, reproduce, build_id),
        Err(error) => {
            tracing::error!("run failed: {error:#}");
            Verdict::error(plan, dir, reproduce, build_id, &error)
        }
    };
    verdict.backend = C::BACKEND;
    if let Err(error) = verdict.write(dir) {
        tracing::error!("{error:#}");
    }
    if !options.keep_data {
        // Only the replicas' logs and snapshots live there; events and stats were copied out.
        let _ = std::fs::remove_dir_all(dir.data_root());
    }
    RunOutcome {
        verdict,
        dir: dir.root.clone(),
        total: began.elapsed(),
        workload,
    }
}

/// The phases, then stop and collect whatever happened in them.
pub(crate) async fn drive<C: Cluster>(mut cluster: C, plan: &Plan) -> anyhow::Result<Ran> {
    let ran = phases(&mut cluster, plan).await;
    let collected = cluster.stop_and_collect().await;
    let mut ran = ran?;
    let collected = collected?;
    tracing::info!(collected = %collected.summary, "cluster stopped");
    ran.exits = collected.exits;
    if let Some(stop) = &ran.stopped {
        tracing::warn!("{}", stop.describe());
    }
    Ok(ran)
}

async fn phases<C: Cluster>(cluster: &mut C, plan: &Plan) -> anyhow::Result<Ran> {
    let checks = &plan.scenario.checks;
    let started = cluster.start().await?;
    cluster.install_rules(network_rules(plan))?;
    // The workload under the nemesis; a stop there skips to stop and collect.
    let began = Instant::now();
    let workload = cluster.workload_under_nemesis().await?;
    let workload_wall = began.elapsed();
    let (workload, stopped) = workload.split();
    let ran = Ran {
        started,
        workload,
        workload_wall,
        healed: None,
        probed: None,
        stopped,
        exits: Vec::new(),
    };
    if ran.stopped.is_some() {
        return Ok(ran);
    }
    // Heal and settle.
    let healed = cluster.heal().await?;
    let (_settled, stopped) = cluster.settle(checks.settle_ms).await?.split();
    let ran = Ran {
        healed: Some(healed),
        stopped,
        ..ran
    };
    if ran.stopped.is_some() {
        return Ok(ran);
    }
    // The liveness probe, against a deadline counted from the heal.
    let deadline_ns = healed.heal_ns + checks.liveness_bound_ms * MS;
    let (probed, stopped) = cluster
        .probe(checks.probe_ops.max(1), deadline_ns)
        .await?
        .split();
    Ok(Ran {
        probed: Some(probed),
        stopped,
        ..ran
    })
}

/// What is in force while the workload runs: the standing rules (twin separation) and the
/// scenario's own network rules.
fn network_rules(plan: &Plan) -> Vec<Rule> {
    let mut rules = plan.standing_rules();
    rules.extend(plan.scenario.network.rules.iter().cloned());
    rules
}

impl<T> Phase<T> {
    fn split(self) -> (T, Option<EarlyStop>) {
        match self {
            Phase::Done(value) => (value, None),
            Phase::Stopped(value, why) => (value, Some(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    /// A cluster that records the calls and stops where it is told to.
    #[derive(Default)]
    struct Scripted {
        stop_in: Option<&'static str>,
        fail_in: Option<&'static str>,
        /// Shared with the test, which keeps it after `stop_and_collect` consumed the cluster.
        log: std::rc::Rc<std::cell::RefCell<Vec<&'static str>>>,
    }

    fn stop(at_ns: u64) -> EarlyStop {
        EarlyStop::OutOfBudget { actions: 1, at_ns }
    }

    impl Scripted {
        fn call(&mut self, name: &'static str) -> anyhow::Result<bool> {
            self.log.borrow_mut().push(name);
            if self.fail_in == Some(name) {
                anyhow::bail!("{name} failed");
            }
            Ok(self.stop_in == Some(name))
        }
    }

    impl Cluster for Scripted {
        const BACKEND: Backend = Backend::Sim;

        async fn start(&mut self) -> anyhow::Result<Started> {
            self.call("start")?;
            Ok(Started { started_at_ns: 7 })
        }

        fn install_rules(&mut self, _rules: Vec<Rule>) -> anyhow::Result<()> {
            self.call("install_rules").map(|_| ())
        }

        async fn workload_under_nemesis(&mut self) -> anyhow::Result<Phase<WorkloadDone>> {
            let stopped = self.call("workload")?;
            let cut = |end_ns| WorkloadDone {
                start_ns: 10,
                end_ns,
            };
            Ok(if stopped {
                Phase::Stopped(cut(15), stop(15))
            } else {
                Phase::Done(cut(20))
            })
        }

        async fn heal(&mut self) -> anyhow::Result<Healed> {
            self.call("heal")?;
            Ok(Healed { heal_ns: 21 })
        }

        async fn settle(&mut self, _ms: u64) -> anyhow::Result<Phase<()>> {
            let stopped = self.call("settle")?;
            Ok(if stopped {
                Phase::Stopped((), stop(22))
            } else {
                Phase::Done(())
            })
        }

        async fn probe(&mut self, _ops: u32, deadline_ns: u64) -> anyhow::Result<Phase<Probed>> {
            let stopped = self.call("probe")?;
            let probed = |end_ns| Probed {
                start_ns: 23,
                end_ns,
            };
            Ok(if stopped {
                Phase::Stopped(probed(0), stop(24))
            } else {
                Phase::Done(probed(deadline_ns))
            })
        }

        async fn stop_and_collect(mut self) -> anyhow::Result<Collected> {
            self.call("stop_and_collect")?;
            Ok(Collected {
                exits: Vec::new(),
                summary: String::new(),
            })
        }
    }

    fn plan() -> Plan {
        let loaded = crate::scenario::load("smoke").expect("built-in scenario loads");
        crate::plan::resolve(&loaded, 1).expect("plan resolves")
    }

    /// Drives `cluster` (whose futures never wait) and returns the calls it saw.
    fn drive_scripted(cluster: Scripted) -> (anyhow::Result<Ran>, Vec<&'static str>) {
        let log = std::rc::Rc::clone(&cluster.log);
        let plan = plan();
        let mut context = Context::from_waker(Waker::noop());
        let Poll::Ready(ran) = std::pin::pin!(drive(cluster, &plan)).poll(&mut context) else {
            panic!("a scripted cluster never waits");
        };
        let calls = log.borrow().clone();
        (ran, calls)
    }

    const ALL: [&str; 7] = [
        "start",
        "install_rules",
        "workload",
        "heal",
        "settle",
        "probe",
        "stop_and_collect",
    ];

    #[test]
    fn a_run_walks_every_phase_in_order_and_the_timeline_is_made_of_their_values() {
        let (ran, calls) = drive_scripted(Scripted::default());
        assert_eq!(calls, ALL);
        let timeline = ran.expect("ran").timeline(Backend::Sim);
        let bound = plan().scenario.checks.liveness_bound_ms;
        assert_eq!(
            (
                timeline.started_at_ns,
                timeline.workload_start_ns,
                timeline.workload_end_ns,
                timeline.heal_ns,
                timeline.probe_start_ns,
                timeline.probe_end_ns,
            ),
            (7, 10, 20, 21, 23, 21 + bound * MS)
        );
        assert_eq!(timeline.stopped, None);
    }

    #[test]
    fn a_stop_skips_to_stop_and_collect_and_leaves_the_later_phases_at_zero() {
        let stopped_in = |phase| {
            drive_scripted(Scripted {
                stop_in: Some(phase),
                ..Scripted::default()
            })
        };
        let (ran, calls) = stopped_in("workload");
        assert_eq!(
            calls,
            ["start", "install_rules", "workload", "stop_and_collect"]
        );
        let timeline = ran.expect("ran").timeline(Backend::Sim);
        assert_eq!((timeline.workload_end_ns, timeline.heal_ns), (15, 0));
        assert_eq!(timeline.stopped, Some(stop(15)));

        let (ran, calls) = stopped_in("settle");
        assert_eq!(
            calls,
            ALL.iter()
                .copied()
                .filter(|c| *c != "probe")
                .collect::<Vec<_>>()
        );
        let timeline = ran.expect("ran").timeline(Backend::Sim);
        assert_eq!((timeline.heal_ns, timeline.probe_start_ns), (21, 0));

        let (ran, calls) = stopped_in("probe");
        assert_eq!(calls, ALL);
        let timeline = ran.expect("ran").timeline(Backend::Sim);
        assert_eq!((timeline.probe_start_ns, timeline.probe_end_ns), (23, 0));
        assert_eq!(timeline.stopped, Some(stop(24)));
    }

    #[test]
    fn a_failed_phase_still_stops_and_collects_then_fails_the_run() {
        let (ran, calls) = drive_scripted(Scripted {
            fail_in: Some("start"),
            ..Scripted::default()
        });
        assert_eq!(calls, ["start", "stop_and_collect"]);
        let error = ran.err().expect("the start failed");
        assert!(error.to_string().contains("start failed"), "{error:#}");
    }
}
