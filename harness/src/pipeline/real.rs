//! The real world behind `Cluster`: replica processes on 127.0.0.1 under a `Supervisor`,
//! every link through the proxy, the `Nemesis` on the wall clock, tokio clients.

use super::{Cluster, Collected, Healed, Phase, Probed, Started, WorkloadDone};
use crate::backend::Backend;
use crate::layout::{ReplicaProcess, RunDir, cluster_config_for};
use crate::nemesis::{Nemesis, NemesisSetup, PlannedAction};
use crate::plan::Plan;
use crate::primary::PrimaryTracker;
use crate::processes::{ReplicaLaunch, Supervisor, find_binary};
use crate::proxy::{Endpoint, Proxy, ProxyConfig, Rule};
use crate::scenario::Build;
use crate::verdict::write_json;
use crate::workload::{HistoryWriter, WorkloadClient, write_byzantine_clients};
use anyhow::Context;
use replica::node::{EVENTS_FILE, STATS_FILE};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How long a replica may take to listen after it is started.
const READY_WITHIN: Duration = Duration::from_secs(15);
/// SIGTERM, then this long, then SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A plan's cluster of processes behind the proxy. What exists depends on how far the run
/// got, so `stop_and_collect` stops exactly what was started.
pub(crate) struct RealCluster<'a> {
    plan: &'a Plan,
    dir: &'a RunDir,
    /// From `start` on.
    live: Option<Live>,
    /// From the end of the workload to the probe.
    worked: Option<Worked>,
}

/// The proxy, the processes and the run's clock.
struct Live {
    proxy: Proxy,
    supervisor: Arc<Supervisor>,
    run_start: Instant,
}

/// What the workload leaves for the heal and the probe.
struct Worked {
    clients: Vec<WorkloadClient>,
    history: HistoryWriter,
    nemesis: Arc<Nemesis>,
}

impl<'a> RealCluster<'a> {
    /// Nothing runs until `start`.
    pub(crate) fn new(plan: &'a Plan, dir: &'a RunDir) -> RealCluster<'a> {
        RealCluster {
            plan,
            dir,
            live: None,
            worked: None,
        }
    }

    fn live(&self) -> anyhow::Result<&Live> {
        self.live.as_ref().context("the cluster was not started")
    }
}

impl Live {
    fn ns(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.run_start).as_nanos()).unwrap_or(0)
    }
}

impl Cluster for RealCluster<'_> {
    const BACKEND: Backend = Backend::Real;

    async fn start(&mut self) -> anyhow::Result<Started> {
        let launches = launches(self.plan, self.dir)?;
        let run_start = Instant::now();
        let started_at_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        let proxy = Proxy::start(
            self.plan.links.clone(),
            ProxyConfig {
                seed: self.plan.proxy_seed,
                max_frame: replica::wire::DEFAULT_MAX_FRAME,
                log_path: self.dir.proxy_log(),
                run_start,
            },
        )
        .await
        .context("cannot start the proxy")?;
        let supervisor = Arc::new(Supervisor::new(launches));
        // Kept before the replicas start, so a failed start still stops what did start.
        let live = self.live.insert(Live {
            proxy,
            supervisor,
            run_start,
        });
        live.supervisor.start_all()?;
        live.supervisor.wait_all_ready(READY_WITHIN).await?;
        tracing::info!(
            "all {} replica processes listen",
            live.supervisor.process_count()
        );
        Ok(Started { started_at_ns })
    }

    fn install_rules(&mut self, rules: Vec<Rule>) -> anyhow::Result<()> {
        self.live()?.proxy.set_rules(rules);
        Ok(())
    }

    async fn workload_under_nemesis(&mut self) -> anyhow::Result<Phase<WorkloadDone>> {
        let (plan, dir) = (self.plan, self.dir);
        let live = self.live()?;
        let mut clients = Vec::new();
        for client in &plan.clients {
            let config = cluster_config_for(plan, Endpoint::Client(client.id))?;
            clients.push(WorkloadClient::connect(
                &config,
                plan,
                client,
                live.run_start,
            )?);
        }
        let history = HistoryWriter::create(&dir.history())?;
        let nemesis = Arc::new(nemesis(plan, dir, live));

        // Dropping the JoinSets (on any early return) aborts the tasks.
        let workload_start = Instant::now();
        let until = workload_start + Duration::from_millis(plan.duration_ms());
        let mut nemesis_task = JoinSet::new();
        nemesis_task.spawn(Arc::clone(&nemesis).run(workload_start, until));
        let clients = run_clients(plan, clients, until, &history).await?;
        let workload_end = Instant::now();
        nemesis_task.shutdown().await;
        write_byzantine_clients(dir, plan, &clients, workload_end - workload_start)?;
        let done = WorkloadDone {
            start_ns: live.ns(workload_start),
            end_ns: live.ns(workload_end),
        };
        self.worked = Some(Worked {
            clients,
            history,
            nemesis,
        });
        Ok(Phase::Done(done))
    }

    async fn heal(&mut self) -> anyhow::Result<Healed> {
        let worked = self.worked.as_ref().context("a heal before the workload")?;
        let heal_ns = worked.nemesis.heal().await;
        if let Err(error) = worked.nemesis.write_log(&self.dir.nemesis()) {
            tracing::warn!(%error, "cannot write nemesis.jsonl");
        }
        Ok(Healed { heal_ns })
    }

    async fn settle(&mut self, ms: u64) -> anyhow::Result<Phase<()>> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(Phase::Done(()))
    }

    async fn probe(&mut self, ops: u32, deadline_ns: u64) -> anyhow::Result<Phase<Probed>> {
        let worked = self.worked.take().context("a probe before the workload")?;
        let live = self.live()?;
        let probe_start = Instant::now();
        let deadline = live.run_start + Duration::from_nanos(deadline_ns);
        let mut probes = JoinSet::new();
        for mut client in worked.clients {
            let history = worked.history.clone();
            probes.spawn(async move {
                let ok = client.probe(ops, deadline, &history).await;
                (client.id, ok)
            });
        }
        while let Some(joined) = probes.join_next().await {
            let (client, ok) = joined.context("a probe task failed")?;
            tracing::info!(%client, ok, "liveness probe done");
        }
        let probe_end = Instant::now();
        worked
            .history
            .flush()
            .with_context(|| format!("cannot write {}", self.dir.history().display()))?;
        Ok(Phase::Done(Probed {
            start_ns: live.ns(probe_start),
            end_ns: live.ns(probe_end),
        }))
    }

    async fn stop_and_collect(mut self) -> anyhow::Result<Collected> {
        // The clients go first: nothing is sent to a replica that is stopping.
        drop(self.worked.take());
        let Some(live) = self.live.take() else {
            return Ok(Collected {
                exits: Vec::new(),
                summary: "nothing was started".into(),
            });
        };
        let processes = live.supervisor.process_count();
        // Before the stop: a process that has ended by now ended on its own.
        let exits = live.supervisor.exits();
        live.supervisor.stop_all(STOP_GRACE).await;
        let stats = live.proxy.stats();
        live.proxy.shutdown().await;
        if let Err(error) = write_json(&self.dir.proxy_stats(), &stats) {
            tracing::warn!("{error:#}");
        }
        let copied = collect_replica_files(self.plan, self.dir);
        Ok(Collected {
            exits,
            summary: format!("{processes} processes stopped, {copied} replica files collected"),
        })
    }
}

/// The nemesis over this cluster's proxy and processes; it finds the primary by tailing the
/// honest replicas' events.
fn nemesis(plan: &Plan, dir: &RunDir, live: &Live) -> Nemesis {
    let honest_events = plan
        .honest()
        .into_iter()
        .map(|id| dir.data_events(id))
        .collect();
    let tracker = Arc::new(Mutex::new(PrimaryTracker::new(plan.n(), honest_events)));
    Nemesis::new(
        live.proxy.handle(),
        Arc::clone(&live.supervisor),
        tracker,
        NemesisSetup {
            faults: plan.nemesis.clone(),
            links: plan.links.clone(),
            n: plan.n(),
            twins: plan.twins.clone(),
            run_start: live.run_start,
            event_files: plan
                .replicas
                .iter()
                .map(|r| (r.id, dir.data_events(r.id)))
                .collect(),
        },
    )
}

/// Runs every client until `until`, each at its share of the scenario's rate.
async fn run_clients(
    plan: &Plan,
    clients: Vec<WorkloadClient>,
    until: Instant,
    history: &HistoryWriter,
) -> anyhow::Result<Vec<WorkloadClient>> {
    let w = &plan.scenario.workload;
    let interval = w
        .rate
        .map(|rate| Duration::from_secs_f64(f64::from(w.clients) / rate));
    let mut tasks = JoinSet::new();
    for mut client in clients {
        let history = history.clone();
        tasks.spawn(async move {
            let counts = client.run_until(until, interval, &history).await;
            (client, counts)
        });
    }
    let mut clients = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (client, counts) = joined.context("a workload client task failed")?;
        tracing::info!(client = %client.id, ?counts, "workload done");
        clients.push(client);
    }
    Ok(clients)
}

fn launches(plan: &Plan, dir: &RunDir) -> anyhow::Result<Vec<ReplicaLaunch>> {
    let honest_binary = find_binary("replica", "replica")?;
    let events_flush_ms = events_flush_ms(plan).to_string();
    let honest_args = |config: PathBuf, id: replica::ReplicaId, data: PathBuf| -> Vec<OsString> {
        vec![
            "run".into(),
            "--config".into(),
            config.into(),
            "--id".into(),
            id.to_string().into(),
            "--data-dir".into(),
            data.into(),
            "--key".into(),
            dir.replica_key(id).into(),
            "--exit-with-stdin".into(),
            "--events-flush-ms".into(),
            events_flush_ms.clone().into(),
        ]
    };
    let mut launches = Vec::new();
    let mut twins = Vec::new();
    for r in &plan.replicas {
        let mut args = honest_args(dir.replica_config(r.id), r.id, dir.data_dir(r.id));
        let program = match r.build {
            Build::Honest => honest_binary.clone(),
            Build::Byzantine => {
                let program = find_binary("byzantine-replica", "byzantine").with_context(|| {
                    format!(
                        "replica {} needs the byzantine build, which is not available",
                        r.id
                    )
                })?;
                let behaviour = r.behaviour.as_ref().with_context(|| {
                    format!("replica {} is byzantine but has no behaviour", r.id)
                })?;
                // `run` is the honest binary's subcommand; the byzantine one takes flags only.
                args.remove(0);
                let seed = r.behaviour_seed.unwrap_or(0);
                args.extend(behaviour.args(seed).into_iter().map(OsString::from));
                program
            }
            Build::Twin => {
                // Twin A is the replica's own process; twin B is a second honest one with the
                // same id and key, its own address, cluster file and data dir.
                let address = r.twin_address.with_context(|| {
                    format!(
                        "replica {} is a twin but the plan has no twin address",
                        r.id
                    )
                })?;
                twins.push(ReplicaLaunch {
                    id: r.id,
                    twin: true,
                    program: honest_binary.clone(),
                    args: honest_args(dir.twin_config(r.id), r.id, dir.twin_data_dir(r.id)),
                    address,
                    stderr_path: dir.twin_stderr(r.id),
                });
                honest_binary.clone()
            }
        };
        launches.push(ReplicaLaunch {
            id: r.id,
            twin: false,
            program,
            args,
            address: r.address,
            stderr_path: dir.replica_stderr(r.id),
        });
    }
    launches.extend(twins);
    Ok(launches)
}

/// How often each replica writes its events to its file (`--events-flush-ms`). The replica's
/// own period (200 ms) costs two faults their precision: a fault at a protocol point waits for
/// the event to reach the file (a kill "right after COMMIT seq 40" landed 30-160 ms and dozens
/// of commits late), and a kill -9 loses what was not written, hiding from no-amnesia the very
/// votes a crash is most likely to forget. So a plan with either flushes after every turn.
fn events_flush_ms(plan: &Plan) -> u64 {
    let kills_or_waits = plan
        .nemesis
        .iter()
        .any(|fault| fault.trigger.is_some() || matches!(fault.action, PlannedAction::Kill { .. }));
    if kills_or_waits { 0 } else { 200 }
}

/// Copies each replica process's events and stats out of its data dir into the run folder;
/// returns how many files it copied.
fn collect_replica_files(plan: &Plan, dir: &RunDir) -> usize {
    let mut processes = Vec::new();
    for r in &plan.replicas {
        processes.push(ReplicaProcess::replica(r.id));
        if r.twin_address.is_some() {
            processes.push(ReplicaProcess::twin(r.id));
        }
    }
    let mut copied = 0;
    for process in processes {
        let data = dir.data_dir_of(process);
        let copies = [
            (data.join(EVENTS_FILE), dir.events_of(process)),
            (data.join(STATS_FILE), dir.stats_of(process)),
        ];
        for (from, to) in copies {
            if !from.exists() {
                continue;
            }
            match std::fs::copy(&from, &to) {
                Ok(_) => copied += 1,
                Err(error) => {
                    tracing::warn!(%error, from = %from.display(), "cannot collect a replica file")
                }
            }
        }
    }
    copied
}

#[cfg(test)]
mod tests {
    use super::events_flush_ms;
    use crate::scenario;

    fn flush_of(name: &str) -> u64 {
        let loaded = scenario::load(name).expect("built-in");
        events_flush_ms(&crate::plan::resolve(&loaded, 1).expect("plan"))
    }

    #[test]
    fn replicas_flush_events_every_turn_when_a_fault_kills_or_waits_for_an_event() {
        assert_eq!(flush_of("fault-after-commit"), 0, "a trigger");
        assert_eq!(flush_of("primary-crash"), 0, "a timed kill");
        assert_eq!(flush_of("pause-primary"), 200, "no kill, no trigger");
        assert_eq!(flush_of("byz-silent"), 200, "no nemesis kill");
    }
}
