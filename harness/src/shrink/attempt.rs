//! One candidate, tried: rendered, validated as any scenario file is, run in simulation with
//! the original seed through the normal run path (`orchestrator::prepare` and `execute`
//! into `RunFolder::Exactly`), and judged against the oracle. Runs are counted against the
//! budget; a candidate tried before is answered from memory.

use super::origin::{fails, outcome_words};
use super::render::render;
use crate::backend::Backend;
use crate::layout::{RunDir, RunFolder};
use crate::orchestrator::{self, RunOptions};
use crate::scenario::{LoadedScenario, Scenario};
use crate::verdict::Verdict;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What one candidate showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Judged {
    /// It still fails the oracle; `ops` were invoked in its history.
    Fails { attempt: usize, ops: u64 },
    /// It ran and did not fail the oracle (passed, failed another, inconclusive, error).
    Other { words: String },
    /// The scenario validation or the plan refused it: never run.
    Invalid { why: String },
}

/// The budget is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exhausted {
    Runs,
    Time,
}

pub(crate) struct Runner<'w> {
    pub seed: u64,
    pub oracle: String,
    /// Each run's folder is `attempts/NNN/`; all but its scenario and verdict is removed.
    attempts_dir: PathBuf,
    pub runs: usize,
    pub invalid: usize,
    budget_runs: usize,
    deadline: Instant,
    cache: BTreeMap<String, Judged>,
    runtime: tokio::runtime::Runtime,
    pub log: &'w mut dyn Write,
}

impl<'w> Runner<'w> {
    pub(crate) fn new(
        seed: u64,
        oracle: String,
        attempts_dir: PathBuf,
        budget_runs: usize,
        deadline: Instant,
        log: &'w mut dyn Write,
    ) -> anyhow::Result<Runner<'w>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Runner {
            seed,
            oracle,
            attempts_dir,
            runs: 0,
            invalid: 0,
            budget_runs,
            deadline,
            cache: BTreeMap::new(),
            runtime,
            log,
        })
    }

    /// Tries `candidate`, described as `what` in the log.
    pub(crate) fn try_candidate(
        &mut self,
        candidate: &Scenario,
        what: &str,
    ) -> Result<Judged, Exhausted> {
        let text = render(candidate);
        if let Some(known) = self.cache.get(&text) {
            return Ok(known.clone());
        }
        if self.runs >= self.budget_runs {
            return Err(Exhausted::Runs);
        }
        if Instant::now() >= self.deadline {
            return Err(Exhausted::Time);
        }
        let attempt = self.runs + 1;
        let folder = self.attempts_dir.join(format!("{attempt:03}"));
        let loaded = match LoadedScenario::from_text(&text, &folder.join("scenario.yaml")) {
            Ok(loaded) => loaded,
            Err(error) => return Ok(self.refused(text, what, error.to_string())),
        };
        let options = sim_options(RunFolder::Exactly(folder.clone()));
        let (plan, dir) = match orchestrator::prepare(&loaded, self.seed, &options) {
            Ok(prepared) => prepared,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&folder);
                return Ok(self.refused(text, what, format!("{error:#}")));
            }
        };
        self.runs = attempt;
        let verdict = self
            .runtime
            .block_on(orchestrator::execute(plan, dir.clone(), &options))
            .verdict;
        keep_only_scenario_and_verdict(&dir);
        let judged = if fails(&verdict, &self.oracle) {
            Judged::Fails {
                attempt,
                ops: verdict.counts.operations.invoked,
            }
        } else {
            Judged::Other {
                words: outcome_words(&verdict),
            }
        };
        let said = match &judged {
            Judged::Fails { .. } => format!("still fails {}", self.oracle),
            Judged::Other { words } => words.clone(),
            Judged::Invalid { .. } => String::new(),
        };
        let _ = writeln!(self.log, "  attempt {attempt:>3}: {what}: {said}");
        self.cache.insert(text, judged.clone());
        Ok(judged)
    }

    /// A candidate that cannot even be written as a scenario (`base` with a behaviour's
    /// parameter cut to nothing), judged as one the scenario checks refuse, once per `base`
    /// and reason as a rendered candidate is once per text.
    pub(crate) fn unwritable(&mut self, base: &Scenario, what: &str, why: String) -> Judged {
        let key = format!("{}\n# unwritable: {why}", render(base));
        if let Some(known) = self.cache.get(&key) {
            return known.clone();
        }
        self.refused(key, what, why)
    }

    fn refused(&mut self, text: String, what: &str, why: String) -> Judged {
        self.invalid += 1;
        let _ = writeln!(self.log, "  skipped: {what}: not a valid scenario: {why}");
        let judged = Judged::Invalid { why };
        self.cache.insert(text, judged.clone());
        judged
    }

    /// Runs `loaded` into exactly `folder` in simulation, outside the budget, and writes its
    /// report: the confirming run of the shrunk scenario.
    pub(crate) fn run_into(
        &mut self,
        loaded: &LoadedScenario,
        folder: &Path,
    ) -> anyhow::Result<Verdict> {
        let options = sim_options(RunFolder::Exactly(folder.to_path_buf()));
        let (plan, dir) = orchestrator::prepare(loaded, self.seed, &options)?;
        let verdict = self
            .runtime
            .block_on(orchestrator::execute(plan, dir, &options))
            .verdict;
        if let Err(error) = crate::report::write_report(folder) {
            let _ = writeln!(self.log, "warning: report.html not written: {error:#}");
        }
        Ok(verdict)
    }
}

fn sim_options(folder: RunFolder) -> RunOptions {
    RunOptions {
        folder,
        duration_override: None,
        keep_data: false,
        backend: Backend::Sim,
    }
}

/// A candidate's folder keeps what it was and what it came to; its history, events and logs
/// (megabytes per run) go.
fn keep_only_scenario_and_verdict(dir: &RunDir) {
    let keep = [dir.scenario(), dir.verdict()];
    let Ok(entries) = std::fs::read_dir(&dir.root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if keep.contains(&path) {
            continue;
        }
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}
