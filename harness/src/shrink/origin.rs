//! The run to shrink: its folder read back (verdict, plan, scenario), the oracle it failed,
//! and every reason to refuse it.

use crate::check::CheckOutcome;
use crate::layout::RunDir;
use crate::plan::Plan;
use crate::verdict::{Outcome, Verdict, read_json};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ShrinkError {
    #[error("{0}: no such folder")]
    Missing(PathBuf),
    #[error("{path}: not a run folder ({why})")]
    NotARunFolder { path: PathBuf, why: String },
    #[error("nothing to shrink: run passed as expected ({0})")]
    PassedAsExpected(String),
    #[error("nothing to shrink: no oracle failed ({0})")]
    NoViolation(String),
    #[error("cannot shrink a run that could not be carried out (error verdict: {0})")]
    ErrorVerdict(String),
    #[error("`{asked}` is not a check this run violated (violated: {violated})")]
    NotViolated { asked: String, violated: String },
    #[error(
        "the original does not fail `{oracle}` in simulation with seed {seed} (the simulated run: {outcome}); nothing to shrink"
    )]
    NotInSimulation {
        oracle: String,
        seed: u64,
        outcome: String,
    },
    #[error("{0} is not empty: the shrink folder must be new or empty")]
    OutNotEmpty(PathBuf),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A failed run, read back.
pub(crate) struct Origin {
    pub verdict: Verdict,
    pub plan: Plan,
    /// The check to keep failing.
    pub oracle: String,
}

/// The checks `verdict` found violated, in the verdict's order.
pub(crate) fn violated(verdict: &Verdict) -> Vec<String> {
    verdict
        .checks
        .iter()
        .filter(|c| c.outcome == CheckOutcome::Violation)
        .map(|c| c.name.clone())
        .collect()
}

/// Whether `verdict` counts as failing `oracle`: that check is violated, and the run was
/// not cut short by the simulator's action budget (an inconclusive run shows nothing).
pub(crate) fn fails(verdict: &Verdict, oracle: &str) -> bool {
    verdict.outcome == Outcome::Violation
        && verdict
            .checks
            .iter()
            .any(|c| c.name == oracle && c.outcome == CheckOutcome::Violation)
        && !verdict.checks.iter().any(|c| c.name == "budget")
}

/// `pass`, or `violation (liveness)`, or `inconclusive`: for messages.
pub(crate) fn outcome_words(verdict: &Verdict) -> String {
    let violated = violated(verdict);
    match verdict.outcome {
        Outcome::Error => format!(
            "error: {}",
            verdict.error.as_deref().unwrap_or("no reason given")
        ),
        _ if violated.is_empty() => verdict.outcome.word().to_string(),
        _ => format!("{} ({})", verdict.outcome.word(), violated.join(", ")),
    }
}

/// Reads `run_dir` and decides what to keep failing: `oracle` if given, else the first
/// violated check.
pub(crate) fn read(run_dir: &Path, oracle: Option<&str>) -> Result<Origin, ShrinkError> {
    if !run_dir.is_dir() {
        return Err(ShrinkError::Missing(run_dir.to_path_buf()));
    }
    let dir = RunDir::new(run_dir.to_path_buf());
    let not_run = |why: String| ShrinkError::NotARunFolder {
        path: run_dir.to_path_buf(),
        why,
    };
    for file in [dir.verdict(), dir.plan(), dir.scenario()] {
        if !file.is_file() {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            return Err(not_run(format!("no {}", name.unwrap_or_default())));
        }
    }
    let verdict = Verdict::read(&dir).map_err(|e| not_run(format!("{e:#}")))?;
    if verdict.outcome == Outcome::Error {
        return Err(ShrinkError::ErrorVerdict(
            verdict
                .error
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        ));
    }
    let violated = violated(&verdict);
    if violated.is_empty() {
        let words = format!(
            "{} on {}, expected {}",
            verdict.outcome.word(),
            verdict.backend,
            verdict.expected_word()
        );
        return Err(if verdict.outcome == Outcome::Pass && verdict.as_expected {
            ShrinkError::PassedAsExpected(words)
        } else {
            ShrinkError::NoViolation(words)
        });
    }
    let oracle = match oracle {
        None => violated[0].clone(),
        Some(asked) if violated.iter().any(|v| v == asked) => asked.to_string(),
        Some(asked) => {
            return Err(ShrinkError::NotViolated {
                asked: asked.to_string(),
                violated: violated.join(", "),
            });
        }
    };
    let plan: Plan = read_json(&dir.plan()).map_err(|e| not_run(format!("{e:#}")))?;
    Ok(Origin {
        verdict,
        plan,
        oracle,
    })
}
