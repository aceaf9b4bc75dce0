#![allow(dead_code)] // each test binary uses a different part of this shared module
//! Shared by the simulated end-to-end tests: one run in simulation, in this process, through
//! the same `orchestrator::prepare`/`execute` as `gauntlet run --backend sim`.

use harness::backend::Backend;
use harness::layout::RunFolder;
use harness::orchestrator::{self, RunOptions};
use harness::scenario::{self, LoadedScenario};
use harness::verdict::Verdict;
use std::path::{Path, PathBuf};

/// Runs `loaded` with `seed` into a new folder under `out`; the verdict and the folder.
pub fn run_loaded(loaded: &LoadedScenario, seed: u64, out: &Path) -> (Verdict, PathBuf) {
    run_loaded_with(loaded, seed, out, None)
}

/// As `run_loaded`, for a scenario whose duration was overridden (named in the reproduce
/// command).
pub fn run_loaded_with(
    loaded: &LoadedScenario,
    seed: u64,
    out: &Path,
    duration_override: Option<f64>,
) -> (Verdict, PathBuf) {
    let options = RunOptions {
        folder: RunFolder::Under(out.to_path_buf()),
        duration_override,
        keep_data: false,
        backend: Backend::Sim,
    };
    let (plan, dir) = orchestrator::prepare(loaded, seed, &options).expect("prepared");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(orchestrator::execute(plan, dir, &options));
    (outcome.verdict, outcome.dir)
}

/// Runs a built-in scenario (or a YAML path) by name.
pub fn run_named(name: &str, seed: u64, out: &Path) -> (Verdict, PathBuf) {
    let loaded = scenario::load(name).expect("scenario loads");
    run_loaded(&loaded, seed, out)
}
