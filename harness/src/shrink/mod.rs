//! `gauntlet shrink RUN_DIR`: delta debugging of a failing run, in simulation. With the run's
//! own seed, it searches for a smaller scenario that still fails the same oracle (the same
//! check name violated), and writes it (`shrunk.yaml`), the run folder and report of its
//! confirming run (`run/`), and `shrink.json` into a shrink folder.
//!
//! The search is greedy and deterministic: rounds over the dimensions of `candidates.rs`,
//! the big cheap cuts first (halving the workload, ddmin over the nemesis actions), then the
//! Byzantine replicas, network rules, clients, keys, fault windows, Byzantine parameters and
//! the rules of each link fault, until a round changes nothing or the budget (runs or wall
//! time) is spent. A candidate counts as failing only if its verdict violates the same check
//! and the simulator did not run out of its action budget. The same run folder and budget
//! give the same `shrunk.yaml` (a wall-time budget that runs out may stop it earlier).

mod attempt;
mod candidates;
mod ddmin;
mod explicit;
mod origin;
mod render;
mod summary;

pub use candidates::Dimension;
pub use origin::ShrinkError;
pub use summary::{Metrics, Step, Stopped, Summary, planned_faults};

use crate::scenario::{self, Scenario};
use crate::verdict::write_json;
use anyhow::Context;
use attempt::{Exhausted, Judged, Runner};
use candidates::{ListTarget, Proposals};
use ddmin::{Probe, ddmin};
use origin::{Origin, fails, outcome_words};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File names inside a shrink folder.
pub const SHRUNK_YAML: &str = "shrunk.yaml";
pub const SHRINK_JSON: &str = "shrink.json";
pub const RUN: &str = "run";
pub const ATTEMPTS: &str = "attempts";
/// `scripts/triage.sh` re-runs the shrunk run on real processes here.
pub const REAL: &str = "real";

/// `<run_dir>-shrink`, beside the run: where a shrink goes by default, and where triage
/// (and the campaign index, which links what it finds there) expects it.
pub fn default_folder(run_dir: &Path) -> PathBuf {
    let name = run_dir
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    run_dir.with_file_name(format!("{name}-shrink"))
}

#[derive(Clone, Debug)]
pub struct ShrinkOptions {
    /// Simulated runs the search may make (the final confirming run is not counted).
    pub budget_runs: usize,
    /// Wall time after which no new run starts.
    pub budget: Duration,
    /// The shrink folder (new or empty); default: `<RUN_DIR>-shrink` beside the run.
    pub out: Option<PathBuf>,
    /// The check to keep failing; default: the first one the run violated.
    pub oracle: Option<String>,
}

impl Default for ShrinkOptions {
    fn default() -> Self {
        ShrinkOptions {
            budget_runs: 200,
            budget: Duration::from_secs(600),
            out: None,
            oracle: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ShrinkOutcome {
    pub dir: PathBuf,
    pub shrunk_yaml: PathBuf,
    pub run_dir: PathBuf,
    pub summary: Summary,
}

/// Shrinks the failing run in `run_dir`; progress and the result go to `log`.
pub fn shrink(
    run_dir: &Path,
    options: &ShrinkOptions,
    log: &mut dyn Write,
) -> Result<ShrinkOutcome, ShrinkError> {
    let started = Instant::now();
    let origin = origin::read(run_dir, options.oracle.as_deref())?;
    let out = shrink_folder(run_dir, options.out.as_deref())?;
    let seed = origin.verdict.seed;
    let _ = writeln!(
        log,
        "shrinking {} (scenario {}, seed {}, {} run, {}): keeping `{}` failing",
        run_dir.display(),
        origin.verdict.scenario,
        seed,
        origin.verdict.backend,
        outcome_words(&origin.verdict),
        origin.oracle
    );
    let _ = writeln!(log, "shrink folder: {}", out.display());
    let mut runner = Runner::new(
        seed,
        origin.oracle.clone(),
        out.join(ATTEMPTS),
        options.budget_runs,
        started + options.budget,
        log,
    )?;
    let (start, nemesis_form, ops) = match starting_point(&origin, &mut runner) {
        Ok(start) => start,
        Err(error) => {
            // Nothing was shrunk: the folder (new or empty before) would hold only noise.
            drop(runner);
            let _ = std::fs::remove_dir_all(&out);
            return Err(error);
        }
    };
    let original = Metrics::of(&start, seed, ops);
    let mut search = Search {
        runner: &mut runner,
        current: start,
        steps: Vec::new(),
        seed,
    };
    let stopped = match search.rounds() {
        Ok(()) => Stopped::Fixpoint,
        Err(Exhausted::Runs) => Stopped::BudgetRuns,
        Err(Exhausted::Time) => Stopped::BudgetTime,
    };
    let Search { current, steps, .. } = search;

    let shrunk = with_description(&current, &origin);
    let shrunk_yaml = out.join(SHRUNK_YAML);
    let text = format!(
        "# Shrunk by `gauntlet shrink` from scenario {} with seed {seed}: it still fails `{}` in\n\
         # simulation. Reproduce: gauntlet run {SHRUNK_YAML} --backend sim --seed {seed}\n{}",
        origin.verdict.scenario,
        origin.oracle,
        render::render(&shrunk)
    );
    std::fs::write(&shrunk_yaml, text)
        .with_context(|| format!("cannot write {}", shrunk_yaml.display()))?;

    // The confirming run: the file as written, through the normal loader and run path.
    let loaded = scenario::load(&shrunk_yaml.display().to_string())
        .with_context(|| format!("{} does not load", shrunk_yaml.display()))?;
    let run = out.join(RUN);
    let verdict = runner.run_into(&loaded, &run)?;
    let confirmed = fails(&verdict, &origin.oracle);
    let last = Metrics::of(&loaded.scenario, seed, verdict.counts.operations.invoked);
    let summary = Summary {
        run_dir: run_dir.display().to_string(),
        scenario: origin.verdict.scenario.clone(),
        seed,
        original_backend: origin.verdict.backend.to_string(),
        oracle: origin.oracle.clone(),
        nemesis_form,
        original,
        last,
        attempts: runner.runs,
        invalid_skipped: runner.invalid,
        budget_runs: options.budget_runs,
        budget_seconds: options.budget.as_secs(),
        stopped,
        steps,
        shrunk_yaml: shrunk_yaml.display().to_string(),
        run: run.display().to_string(),
        confirmed,
        wall_seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    };
    write_json(&out.join(SHRINK_JSON), &summary)?;
    let log = &mut runner.log;
    if !confirmed {
        let _ = writeln!(
            log,
            "warning: the confirming run of {} did not fail `{}` ({}): the simulator is not replaying deterministically",
            shrunk_yaml.display(),
            origin.oracle,
            outcome_words(&verdict)
        );
    }
    let stopped_words = match stopped {
        Stopped::Fixpoint => "no smaller candidate fails",
        Stopped::BudgetRuns => "run budget spent",
        Stopped::BudgetTime => "time budget spent",
    };
    let _ = writeln!(
        log,
        "done after {} runs ({} invalid candidates skipped; {stopped_words}), {:.1} s",
        summary.attempts, summary.invalid_skipped, summary.wall_seconds
    );
    let _ = writeln!(log, "shrunk scenario: {}", shrunk_yaml.display());
    let _ = writeln!(
        log,
        "its run: {} (report.html), verdict: {}",
        run.display(),
        outcome_words(&verdict)
    );
    let _ = writeln!(
        log,
        "reproduce: gauntlet run {} --backend sim --seed {seed}",
        shrunk_yaml.display()
    );
    let _ = writeln!(log, "shrunk: {}", summary.one_line());
    Ok(ShrinkOutcome {
        dir: out,
        shrunk_yaml,
        run_dir: run,
        summary,
    })
}

/// The shrink folder: `out` (new or empty), or `<run_dir>-shrink` (`-2`, `-3`, ... if
/// taken).
fn shrink_folder(run_dir: &Path, out: Option<&Path>) -> Result<PathBuf, ShrinkError> {
    let empty_or_new =
        |path: &Path| std::fs::read_dir(path).map_or(true, |mut entries| entries.next().is_none());
    let folder = match out {
        Some(out) if !empty_or_new(out) => return Err(ShrinkError::OutNotEmpty(out.into())),
        Some(out) => out.to_path_buf(),
        None => {
            let base = default_folder(run_dir);
            let mut folder = base.clone();
            let mut k = 2;
            while !empty_or_new(&folder) {
                folder = PathBuf::from(format!("{}-{k}", base.display()));
                k += 1;
            }
            folder
        }
    };
    std::fs::create_dir_all(folder.join(ATTEMPTS))
        .with_context(|| format!("cannot create {}", folder.display()))?;
    Ok(folder)
}

/// Where the search starts, with how the nemesis was written and the ops of its run: the
/// original with its nemesis made explicit if that still fails, else the original as it
/// is; if neither fails in simulation, there is nothing to shrink.
fn starting_point(
    origin: &Origin,
    runner: &mut Runner,
) -> Result<(Scenario, String, u64), ShrinkError> {
    let original = origin.plan.scenario.clone();
    let explicit = explicit::with_explicit_schedule(&original, &origin.plan);
    let budget_gone = |_| {
        ShrinkError::Other(anyhow::anyhow!(
            "the budget was spent before the original was reproduced in simulation"
        ))
    };
    if origin.verdict.backend != crate::backend::Backend::Sim {
        let _ = writeln!(
            runner.log,
            "the original ran on {} processes: re-running it in simulation with seed {} first",
            origin.verdict.backend, origin.verdict.seed
        );
    }
    let mut explicit_words = None;
    if explicit != original {
        let faults = origin.plan.nemesis.len();
        let what = format!("the original, its {faults} planned faults as an explicit schedule");
        match runner
            .try_candidate(&explicit, &what)
            .map_err(budget_gone)?
        {
            Judged::Fails { ops, .. } => {
                let form = format!(
                    "the {faults} planned faults of plan.json written as an explicit nemesis.schedule (partitions as the link faults of their drop rules)"
                );
                return Ok((explicit, form, ops));
            }
            Judged::Other { words } | Judged::Invalid { why: words } => {
                explicit_words = Some(words);
            }
        }
    }
    match runner
        .try_candidate(&original, "the original")
        .map_err(budget_gone)?
    {
        Judged::Fails { ops, .. } => {
            let form = match explicit_words {
                Some(words) => format!(
                    "kept as the scenario wrote it: its explicit form did not fail ({words}); its generate parameters shrink instead"
                ),
                None if original.nemesis.schedule.is_empty()
                    && original.nemesis.generate.is_none() =>
                {
                    "no nemesis".into()
                }
                None => "already an explicit schedule".into(),
            };
            Ok((original, form, ops))
        }
        Judged::Other { words } | Judged::Invalid { why: words } => {
            Err(ShrinkError::NotInSimulation {
                oracle: origin.oracle.clone(),
                seed: origin.verdict.seed,
                outcome: words,
            })
        }
    }
}

/// The shrunk scenario says where it came from.
fn with_description(current: &Scenario, origin: &Origin) -> Scenario {
    let mut shrunk = current.clone();
    let note = format!(
        "shrunk from {} seed {} (still fails {})",
        origin.verdict.scenario, origin.verdict.seed, origin.oracle
    );
    // A shrunk scenario shrunk again keeps one note, the newest.
    let description = match current.description.strip_prefix("shrunk from ") {
        Some(rest) => rest.split_once("): ").map_or("", |(_, d)| d),
        None => current.description.as_str(),
    };
    shrunk.description = if description.is_empty() {
        note
    } else {
        format!("{note}: {description}")
    };
    shrunk
}

struct Search<'r, 'w> {
    runner: &'r mut Runner<'w>,
    current: Scenario,
    steps: Vec<Step>,
    seed: u64,
}

impl Search<'_, '_> {
    /// Rounds over every dimension until one changes nothing.
    fn rounds(&mut self) -> Result<(), Exhausted> {
        let steps: [(Dimension, Option<Proposals>); 10] = [
            (Dimension::Duration, Some(candidates::duration)),
            (Dimension::Nemesis, None),
            (
                Dimension::ByzantineReplicas,
                Some(candidates::byzantine_replicas),
            ),
            (Dimension::NetworkRules, None),
            (Dimension::Clients, Some(candidates::clients)),
            (Dimension::Keys, Some(candidates::keys)),
            (Dimension::FaultWindows, Some(candidates::fault_windows)),
            (
                Dimension::ByzantineParams,
                Some(candidates::byzantine_params),
            ),
            (Dimension::ByzantineParams, None),
            (Dimension::LinkFaultRules, None),
        ];
        loop {
            let before = self.steps.len();
            for (dimension, proposals) in steps {
                match proposals {
                    Some(proposals) => self.step_dimension(proposals)?,
                    None => self.list_dimension(dimension)?,
                }
            }
            if self.steps.len() == before {
                return Ok(());
            }
        }
    }

    fn accept(
        &mut self,
        dimension: Dimension,
        change: String,
        next: Scenario,
        attempt: usize,
        ops: u64,
    ) {
        let step = self.steps.len() + 1;
        let _ = writeln!(self.runner.log, "step {step}: {change}");
        self.current = next;
        self.steps.push(Step {
            step,
            attempt,
            dimension,
            change,
            after: Metrics::of(&self.current, self.seed, ops),
        });
    }

    /// Slot by slot, the first proposal that still fails is taken, and the slot is asked
    /// again; a slot none of whose proposals fails is done for this round.
    fn step_dimension(&mut self, proposals: Proposals) -> Result<(), Exhausted> {
        let mut done: Vec<String> = Vec::new();
        loop {
            let edits = proposals(&self.current);
            let Some(slot) = edits
                .iter()
                .map(|e| e.slot.clone())
                .find(|s| !done.contains(s))
            else {
                return Ok(());
            };
            let mut accepted = false;
            for edit in edits.into_iter().filter(|e| e.slot == slot) {
                if let Judged::Fails { attempt, ops } =
                    self.runner.try_candidate(&edit.scenario, &edit.what)?
                {
                    self.accept(edit.dimension, edit.what, edit.scenario, attempt, ops);
                    accepted = true;
                    break;
                }
            }
            if !accepted {
                done.push(slot);
            }
        }
    }

    /// ddmin over each list of the dimension in turn.
    fn list_dimension(&mut self, dimension: Dimension) -> Result<(), Exhausted> {
        let mut done: Vec<ListTarget> = Vec::new();
        loop {
            let Some(target) = ListTarget::of(&self.current, dimension)
                .into_iter()
                .find(|t| !done.contains(t))
            else {
                return Ok(());
            };
            self.cut_list(&target)?;
            done.push(target);
        }
    }

    fn cut_list(&mut self, target: &ListTarget) -> Result<(), Exhausted> {
        let base = self.current.clone();
        let items = target.items(&base);
        if items.is_empty() {
            return Ok(());
        }
        let noun = target.noun(&base);
        let mut kept_now: Vec<usize> = (0..items.len()).collect();
        let mut stop = None;
        ddmin(items.len(), &mut |subset: &[usize]| {
            let what = format!(
                "{noun}: keep {} of {} {subset:?}",
                subset.len(),
                kept_now.len()
            );
            let candidate = match target.keep(&base, subset) {
                Ok(candidate) => candidate,
                Err(why) => {
                    self.runner.unwritable(&base, &what, why);
                    return Probe::Passes;
                }
            };
            match self.runner.try_candidate(&candidate, &what) {
                Ok(Judged::Fails { attempt, ops }) => {
                    let removed: Vec<&str> = kept_now
                        .iter()
                        .filter(|i| !subset.contains(i))
                        .map(|i| items[*i].as_str())
                        .collect();
                    let change = format!(
                        "{noun}: {} -> {} (removed {})",
                        kept_now.len(),
                        subset.len(),
                        list_words(&removed)
                    );
                    self.accept(target.dimension(), change, candidate, attempt, ops);
                    kept_now = subset.to_vec();
                    Probe::Fails
                }
                Ok(_) => Probe::Passes,
                Err(exhausted) => {
                    stop = Some(exhausted);
                    Probe::Stop
                }
            }
        });
        match stop {
            Some(exhausted) => Err(exhausted),
            None => Ok(()),
        }
    }
}

/// The first few labels, then how many more.
fn list_words(labels: &[&str]) -> String {
    const SHOWN: usize = 4;
    let mut out = labels
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
    if labels.len() > SHOWN {
        out.push_str(&format!("; and {} more", labels.len() - SHOWN));
    }
    out
}
