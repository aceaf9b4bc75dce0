//! One run, start to finish: files, proxy, replicas, workload with the nemesis, heal, settle,
//! liveness probe, stop, collect, judge.

use crate::backend::Backend;
use crate::layout::{ReplicaProcess, RunDir, RunFolder, cluster_config_for, write_cluster_files};
use crate::nemesis::{Nemesis, NemesisSetup};
use crate::plan::{self, Plan};
use crate::primary::PrimaryTracker;
use crate::processes::{ReplicaLaunch, Supervisor, find_binary};
use crate::proxy::{Endpoint, Proxy, ProxyConfig};
use crate::scenario::{Build, LoadedScenario};
use crate::verdict::{Timeline, Verdict, judge, write_json};
use crate::workload::{HistoryWriter, WorkloadClient};
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

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where the run folder goes: a new one under `--out`, or exactly `--run-dir`.
    pub folder: RunFolder,
    /// Replaces the workload's duration (the reproduce command repeats it).
    pub duration_override: Option<f64>,
    /// Keep the replicas' data dirs (write-ahead logs, snapshots) after the run.
    pub keep_data: bool,
    /// Real processes or the simulator.
    pub backend: crate::backend::Backend,
}

pub struct RunOutcome {
    pub verdict: Verdict,
    pub dir: PathBuf,
    /// Wall time of the whole command, and of the workload phase alone.
    pub total: Duration,
    pub workload: Duration,
}

/// Creates the run folder with the scenario and the plan in it.
pub fn prepare(
    loaded: &LoadedScenario,
    seed: u64,
    options: &RunOptions,
) -> anyhow::Result<(Plan, RunDir)> {
    let plan = plan::resolve(loaded, seed)?;
    let dir = options.folder.create(&plan.scenario.name, seed)?;
    std::fs::write(dir.scenario(), &loaded.text)
        .with_context(|| format!("cannot write {}", dir.scenario().display()))?;
    std::fs::write(dir.plan(), plan.to_json() + "\n")
        .with_context(|| format!("cannot write {}", dir.plan().display()))?;
    write_cluster_files(&dir, &plan)?;
    Ok((plan, dir))
}

/// Carries out a prepared run. Never returns without a verdict on disk: a failure becomes an
/// `error` verdict (exit code 2).
pub async fn execute(plan: Plan, dir: RunDir, options: &RunOptions) -> RunOutcome {
    let started = Instant::now();
    let reproduce = plan.reproduce_command(options.duration_override, options.backend);
    let mut workload = Duration::ZERO;
    let build_id = Some(crate::build_info::build_id());
    let ran = match options.backend {
        Backend::Real => drive(&plan, &dir, &mut workload).await,
        Backend::Sim => {
            // One thread, no I/O until the files: nothing else needs the runtime meanwhile.
            let simulated = Instant::now();
            let timeline = crate::sim::drive(&plan, &dir);
            workload = simulated.elapsed();
            timeline
        }
    };
    let mut verdict = match ran.and_then(|timeline| write_timeline(&dir, timeline)) {
        Ok(timeline) => judge(&dir, &plan, &timeline, reproduce, build_id),
        Err(error) => {
            tracing::error!("run failed: {error:#}");
            Verdict::error(&plan, &dir, reproduce, build_id, &error)
        }
    };
    verdict.backend = options.backend;
    if let Err(error) = verdict.write(&dir) {
        tracing::error!("{error:#}");
    }
    if !options.keep_data {
        // Only the replicas' logs and snapshots live there; events and stats were copied out.
        let _ = std::fs::remove_dir_all(dir.data_root());
    }
    RunOutcome {
        verdict,
        dir: dir.root.clone(),
        total: started.elapsed(),
        workload,
    }
}

fn launches(plan: &Plan, dir: &RunDir) -> anyhow::Result<Vec<ReplicaLaunch>> {
    let honest_binary = find_binary("replica", "replica")?;
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
                // `run` is the honest binary's subcommand; the byzantine one takes flags only.
                args.remove(0);
                args.push("--behaviour".into());
                args.push(r.behaviour.clone().unwrap_or_default().into());
                for (k, v) in &r.params {
                    args.push("--param".into());
                    args.push(format!("{k}={v}").into());
                }
                args.push("--seed".into());
                args.push(r.behaviour_seed.unwrap_or(0).to_string().into());
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

async fn drive(
    plan: &Plan,
    dir: &RunDir,
    workload_time: &mut Duration,
) -> anyhow::Result<Timeline> {
    let launches = launches(plan, dir)?;
    let run_start = Instant::now();
    let started_at_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
    let proxy = Proxy::start(
        plan.links.clone(),
        ProxyConfig {
            seed: plan.proxy_seed,
            max_frame: replica::wire::DEFAULT_MAX_FRAME,
            log_path: dir.proxy_log(),
            run_start,
        },
    )
    .await
    .context("cannot start the proxy")?;

    let supervisor = Arc::new(Supervisor::new(launches));
    let result = drive_cluster(plan, dir, &proxy, &supervisor, run_start, workload_time).await;

    // Stop everything whatever happened, then collect what the replicas wrote.
    supervisor.stop_all(STOP_GRACE).await;
    let stats = proxy.stats();
    proxy.shutdown().await;
    if let Err(error) = write_json(&dir.proxy_stats(), &stats) {
        tracing::warn!("{error:#}");
    }
    collect_replica_files(plan, dir);
    Ok(Timeline {
        started_at_ns,
        ..result?
    })
}

fn write_timeline(dir: &RunDir, timeline: Timeline) -> anyhow::Result<Timeline> {
    write_json(&dir.timeline(), &timeline)?;
    Ok(timeline)
}

async fn drive_cluster(
    plan: &Plan,
    dir: &RunDir,
    proxy: &Proxy,
    supervisor: &Arc<Supervisor>,
    run_start: Instant,
    workload_time: &mut Duration,
) -> anyhow::Result<Timeline> {
    let ns = |at: Instant| u64::try_from(at.duration_since(run_start).as_nanos()).unwrap_or(0);
    supervisor.start_all()?;
    supervisor.wait_all_ready(READY_WITHIN).await?;
    tracing::info!(
        "all {} replica processes listen",
        supervisor.process_count()
    );

    let scenario = &plan.scenario;
    let w = &scenario.workload;
    let mut clients = Vec::new();
    for client in &plan.clients {
        let config = cluster_config_for(plan, Endpoint::Client(client.id))?;
        clients.push(WorkloadClient::connect(&config, plan, client, run_start)?);
    }
    let history = HistoryWriter::create(&dir.history())?;
    let honest_events = plan
        .honest()
        .into_iter()
        .map(|id| dir.data_events(id))
        .collect();
    let tracker = Arc::new(Mutex::new(PrimaryTracker::new(plan.n(), honest_events)));
    let nemesis = Arc::new(Nemesis::new(
        proxy.handle(),
        Arc::clone(supervisor),
        tracker,
        NemesisSetup {
            links: plan.links.clone(),
            n: plan.n(),
            twins: plan.twins.clone(),
            run_start,
            event_files: plan
                .replicas
                .iter()
                .map(|r| (r.id, dir.data_events(r.id)))
                .collect(),
        },
    ));

    // Workload and nemesis together. Dropping the JoinSets (on any early return) aborts them.
    let mut rules = plan.standing_rules();
    rules.extend(scenario.network.rules.iter().cloned());
    proxy.set_rules(rules);
    let workload_start = Instant::now();
    let until = workload_start + Duration::from_millis(plan.duration_ms());
    let mut nemesis_task = JoinSet::new();
    nemesis_task.spawn(Arc::clone(&nemesis).run(plan.nemesis.clone(), workload_start));
    let interval = w
        .rate
        .map(|rate| Duration::from_secs_f64(f64::from(w.clients) / rate));
    let mut client_tasks = JoinSet::new();
    for mut client in clients {
        let history = history.clone();
        client_tasks.spawn(async move {
            let counts = client.run_until(until, interval, &history).await;
            (client, counts)
        });
    }
    let mut clients = Vec::new();
    while let Some(joined) = client_tasks.join_next().await {
        let (client, counts) = joined.context("a workload client task failed")?;
        tracing::info!(client = %client.id, ?counts, "workload done");
        clients.push(client);
    }
    let workload_end = Instant::now();
    *workload_time = workload_end - workload_start;
    nemesis_task.shutdown().await;
    crate::workload::write_byzantine_clients(dir, plan, &clients, *workload_time)?;

    // Heal, settle, probe.
    let heal_ns = nemesis.heal().await;
    let heal_at = run_start + Duration::from_nanos(heal_ns);
    if let Err(error) = nemesis.write_log(&dir.nemesis()) {
        tracing::warn!(%error, "cannot write nemesis.jsonl");
    }
    tokio::time::sleep(Duration::from_millis(scenario.checks.settle_ms)).await;
    let probe_start = Instant::now();
    let probe_deadline = heal_at + Duration::from_millis(scenario.checks.liveness_bound_ms);
    let probe_ops = scenario.checks.probe_ops.max(1);
    let mut probes = JoinSet::new();
    for mut client in clients {
        let history = history.clone();
        probes.spawn(async move {
            let ok = client.probe(probe_ops, probe_deadline, &history).await;
            (client.id, ok)
        });
    }
    while let Some(joined) = probes.join_next().await {
        let (client, ok) = joined.context("a probe task failed")?;
        tracing::info!(%client, ok, "liveness probe done");
    }
    let probe_end = Instant::now();
    history
        .flush()
        .with_context(|| format!("cannot write {}", dir.history().display()))?;
    Ok(Timeline {
        workload_start_ns: ns(workload_start),
        workload_end_ns: ns(workload_end),
        heal_ns,
        probe_start_ns: ns(probe_start),
        probe_end_ns: ns(probe_end),
        ..Timeline::default()
    })
}

/// Copies each replica process's events and stats out of its data dir into the run folder.
fn collect_replica_files(plan: &Plan, dir: &RunDir) {
    let mut processes = Vec::new();
    for r in &plan.replicas {
        processes.push(ReplicaProcess::replica(r.id));
        if r.twin_address.is_some() {
            processes.push(ReplicaProcess::twin(r.id));
        }
    }
    for process in processes {
        let data = dir.data_dir_of(process);
        let copies = [
            (data.join(EVENTS_FILE), dir.events_of(process)),
            (data.join(STATS_FILE), dir.stats_of(process)),
        ];
        for (from, to) in copies {
            if from.exists()
                && let Err(error) = std::fs::copy(&from, &to)
            {
                tracing::warn!(%error, from = %from.display(), "cannot collect a replica file");
            }
        }
    }
}
