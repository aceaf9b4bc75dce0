//! One run: `prepare` (the plan and the run folder), then `execute` (the pipeline in
//! `pipeline/` over the real or the simulated cluster, to a verdict on disk).

use crate::backend::Backend;
use crate::layout::{RunDir, RunFolder, write_cluster_files};
use crate::pipeline::{self, RealCluster};
use crate::plan::{self, Plan};
use crate::scenario::LoadedScenario;
use crate::sim::SimCluster;
use crate::verdict::Verdict;
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Wall time of the whole run, and of the workload phase alone.
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

/// Carries out a prepared run: the pipeline over the world `options.backend` names. Never
/// returns without a verdict on disk: a failure becomes an `error` verdict (exit code 2).
pub async fn execute(plan: Plan, dir: RunDir, options: &RunOptions) -> RunOutcome {
    match options.backend {
        Backend::Real => pipeline::run(RealCluster::new(&plan, &dir), &plan, &dir, options).await,
        Backend::Sim => {
            let cluster = SimCluster::new(&plan, &dir, crate::sim::MAX_ACTIONS);
            pipeline::run(cluster, &plan, &dir, options).await
        }
    }
}
