//! `gauntlet reproduce RUN_DIR [--backend real|sim]`: runs the stored scenario (the run
//! folder's `scenario.yaml`) with the stored seed into a new run folder beside the original,
//! on the original's backend unless told otherwise, and says whether the outcome matched.
//! A simulated run replayed in the simulator must come out byte for byte the same
//! (`replay.rs`); a simulated run rerun on real processes says whether its finding shows
//! there too. Warns when the binaries are not the ones that produced the original run.

use super::replay::{Replay, compare_runs};
use crate::backend::Backend;
use crate::check::CheckOutcome;
use crate::layout::RunDir;
use crate::report::backend_label;
use crate::verdict::{Outcome, Verdict};
use anyhow::{Context as _, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

#[derive(Clone, Debug)]
pub struct Reproduction {
    pub original: Verdict,
    pub rerun: Verdict,
    pub rerun_dir: PathBuf,
    /// Where the rerun ran (the original's backend is `original.backend`).
    pub rerun_backend: Backend,
    /// The rerun's outcome equals the original's.
    pub matched: bool,
    /// Sim replayed in sim: how the recorded files compare. `None` for any other pair.
    pub replay: Option<Replay>,
    /// `(original, now)` when the build identifiers differ or the original has none.
    pub build_mismatch: Option<(String, String)>,
    pub rerun_exit_code: Option<i32>,
}

impl Reproduction {
    /// 0 = the outcome matched (and a simulated replay was exact), 1 = not, 2 = the rerun
    /// could not be carried out.
    pub fn exit_code(&self) -> i32 {
        let replay_exact = self.replay.as_ref().is_none_or(Replay::is_exact);
        if self.rerun.outcome == Outcome::Error {
            2
        } else if self.matched && replay_exact {
            0
        } else {
            1
        }
    }

    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some((then, now)) = &self.build_mismatch {
            out.push_str(&format!(
                "warning: the binaries differ from the ones that produced the original run (build {then} then, {now} now): a different outcome may come from the code, not the seed\n"
            ));
        }
        out.push_str(&format!(
            "original ({}): {} (expected {}); rerun ({}): {} → {}\n",
            self.original.backend,
            outcome_words(&self.original),
            self.original.expected_word(),
            self.rerun_backend,
            outcome_words(&self.rerun),
            if self.matched {
                "the outcome matched"
            } else {
                "the outcome DIFFERS"
            },
        ));
        if let Some(replay) = &self.replay {
            out.push_str(&format!("{}\n", replay.describe()));
        }
        if self.original.backend != self.rerun_backend {
            out.push_str(&format!("{}\n", self.finding_words()));
        }
        out.push_str(&format!("rerun folder: {}\n", self.rerun_dir.display()));
        out
    }

    /// Whether what the original showed shows on the other backend too: a violation counts
    /// only if the same oracles are violated.
    fn finding_words(&self) -> String {
        let there = backend_label(self.rerun_backend);
        let (then, now) = (violated(&self.original), violated(&self.rerun));
        if self.matched && then == now {
            format!("on {there}: the same outcome, from the same oracles")
        } else if self.matched {
            format!(
                "on {there}: also {}, but other oracles are violated ({} then, {} now)",
                self.rerun.outcome.word(),
                then.join(", "),
                now.join(", ")
            )
        } else {
            format!(
                "on {there}: the original's {} does NOT show",
                self.original.outcome.word()
            )
        }
    }
}

/// The names of the checks a verdict found violated.
fn violated(verdict: &Verdict) -> Vec<&str> {
    verdict
        .checks
        .iter()
        .filter(|c| c.outcome == CheckOutcome::Violation)
        .map(|c| c.name.as_str())
        .collect()
}

/// `pass`, or `violation (agreement, linearizability)`: which oracle matters as much as the
/// outcome when comparing backends.
fn outcome_words(verdict: &Verdict) -> String {
    let oracles = violated(verdict);
    if oracles.is_empty() {
        verdict.outcome.word().to_string()
    } else {
        format!("{} ({})", verdict.outcome.word(), oracles.join(", "))
    }
}

/// The `--duration` the original run was started with, read back from its reproduce command
/// (the stored scenario has the duration of the file, not of the override).
pub fn duration_override(reproduce: &str) -> Option<String> {
    flag_value(reproduce, "--duration")
}

/// The `--auth` mode the original run's reproduce command names, if any.
pub fn auth_override(reproduce: &str) -> Option<String> {
    flag_value(reproduce, "--auth")
}

fn flag_value(command: &str, flag: &str) -> Option<String> {
    let mut words = command.split_whitespace();
    while let Some(word) = words.next() {
        if word == flag {
            return words.next().map(str::to_string);
        }
        if let Some(value) = word.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
            return Some(value.to_string());
        }
    }
    None
}

/// The results root the original run was written under (`<root>/<scenario>/<seed>-<time>/`).
fn results_root(run_dir: &Path) -> PathBuf {
    run_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("results"))
}

/// Re-runs `run_dir` on its own backend with `executable` (`None` = this executable) and
/// compares the outcomes.
pub fn reproduce(run_dir: &Path, executable: Option<&Path>) -> anyhow::Result<Reproduction> {
    reproduce_on(run_dir, executable, None, None)
}

/// Re-runs `run_dir` on `backend` (`None` = the original's) into `into` (new or empty; `None`
/// = a new folder beside the original's scenario folder) and compares: the outcomes, and
/// when both runs are simulated, every recorded file.
pub fn reproduce_on(
    run_dir: &Path,
    executable: Option<&Path>,
    backend: Option<Backend>,
    into: Option<&Path>,
) -> anyhow::Result<Reproduction> {
    let original_dir = RunDir::new(run_dir.to_path_buf());
    let original = Verdict::read(&original_dir)?;
    let rerun_backend = backend.unwrap_or(original.backend);
    let scenario = original_dir.scenario();
    if !scenario.is_file() {
        bail!("{}: no scenario.yaml to rerun", run_dir.display());
    }
    let executable = match executable {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe().context("cannot find this executable")?,
    };
    let now = crate::build_info::build_id();
    let build_mismatch = match &original.build_id {
        Some(then) if *then == now => None,
        Some(then) => Some((then.clone(), now)),
        None => Some(("not recorded".into(), now)),
    };
    let rerun_dir = match into {
        Some(folder) => RunDir::create_exactly(folder)?,
        None => RunDir::create_under(&results_root(run_dir), &original.scenario, original.seed)?,
    };
    let ran = run_again(&executable, &original, &scenario, rerun_backend, &rerun_dir);
    if ran.is_err() {
        // A rerun that never started leaves an empty folder: nothing worth keeping.
        rerun_dir.remove_if_empty();
    }
    let (status, rerun) = ran?;
    let replay = if original.backend == Backend::Sim && rerun_backend == Backend::Sim {
        Some(compare_runs(run_dir, &rerun_dir.root)?)
    } else {
        None
    };
    Ok(Reproduction {
        matched: rerun.outcome == original.outcome,
        original,
        rerun,
        rerun_dir: rerun_dir.root,
        rerun_backend,
        replay,
        build_mismatch,
        rerun_exit_code: status.code(),
    })
}

/// Runs the stored scenario with the original's seed (and `--duration`, if it had one) on
/// `backend` into `rerun_dir`, passing its output through; returns how it exited and its
/// verdict.
fn run_again(
    executable: &Path,
    original: &Verdict,
    scenario: &Path,
    backend: Backend,
    rerun_dir: &RunDir,
) -> anyhow::Result<(ExitStatus, Verdict)> {
    let mut command = Command::new(executable);
    command
        .arg("run")
        .arg(scenario)
        .arg("--seed")
        .arg(original.seed.to_string())
        .arg("--run-dir")
        .arg(&rerun_dir.root);
    if let Some(duration) = duration_override(&original.reproduce) {
        command.arg("--duration").arg(duration);
    }
    if let Some(auth) = auth_override(&original.reproduce) {
        command.arg("--auth").arg(auth);
    }
    command.arg("--backend").arg(backend.name());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", executable.display()))?;
    // Through this process's stdout, so that whoever captures it (a test) sees it too.
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
        }
    }
    let status = child.wait().context("cannot wait for the rerun")?;
    let verdict = Verdict::read(rerun_dir)
        .with_context(|| format!("the rerun left no verdict (exit status {status})"))?;
    Ok((status, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_override_is_read_from_the_reproduce_command() {
        assert_eq!(
            duration_override("gauntlet run smoke --seed 3 --duration 2.5"),
            Some("2.5".into())
        );
        assert_eq!(
            duration_override("gauntlet run x --duration=4"),
            Some("4".into())
        );
        assert_eq!(duration_override("gauntlet run smoke --seed 3"), None);
        assert_eq!(
            auth_override("gauntlet run smoke --seed 3 --auth macs --backend sim"),
            Some("macs".into())
        );
        assert_eq!(auth_override("gauntlet run smoke --seed 3"), None);
    }

    fn verdict(backend: Backend, outcome: Outcome, violated: &[&str]) -> Verdict {
        Verdict {
            backend,
            checks: violated
                .iter()
                .map(|name| crate::check::CheckResult {
                    name: name.to_string(),
                    outcome: CheckOutcome::Violation,
                    summary: String::new(),
                    details: serde_json::Value::Null,
                })
                .collect(),
            ..Verdict::bare(outcome, crate::scenario::Expectation::Pass)
        }
    }

    fn reproduction(original: Verdict, rerun: Verdict, replay: Option<Replay>) -> Reproduction {
        Reproduction {
            matched: original.outcome == rerun.outcome,
            rerun_backend: rerun.backend,
            original,
            rerun,
            rerun_dir: PathBuf::from("results/smoke/3-b"),
            replay,
            build_mismatch: None,
            rerun_exit_code: Some(1),
        }
    }

    #[test]
    fn a_simulated_replay_that_differs_fails_even_with_the_same_outcome() {
        let exact = reproduction(
            verdict(Backend::Sim, Outcome::Pass, &[]),
            verdict(Backend::Sim, Outcome::Pass, &[]),
            Some(Replay::Exact { files: 7 }),
        );
        assert_eq!(exact.exit_code(), 0);
        assert!(
            exact
                .summary()
                .contains("replayed exactly: 7 files identical")
        );
        let differs = Reproduction {
            replay: Some(Replay::Differs {
                file: "history.jsonl".into(),
                line: 12,
                identical: 0,
            }),
            ..exact
        };
        assert_eq!(differs.exit_code(), 1);
        assert!(
            differs
                .summary()
                .contains("history.jsonl first differs at line 12"),
            "{}",
            differs.summary()
        );
    }

    #[test]
    fn a_simulated_finding_rerun_on_real_processes_says_whether_it_shows_there() {
        let found = verdict(Backend::Sim, Outcome::Violation, &["agreement"]);
        let shows = reproduction(
            found.clone(),
            verdict(Backend::Real, Outcome::Violation, &["agreement"]),
            None,
        );
        assert!(
            shows.summary().contains(
                "original (sim): violation (agreement) (expected pass); rerun (real): violation (agreement)"
            ),
            "{}",
            shows.summary()
        );
        assert!(
            shows
                .summary()
                .contains("on real processes: the same outcome, from the same oracles")
        );
        let elsewhere = reproduction(
            found.clone(),
            verdict(Backend::Real, Outcome::Violation, &["linearizability"]),
            None,
        );
        assert!(
            elsewhere
                .summary()
                .contains("but other oracles are violated")
        );
        let gone = reproduction(found, verdict(Backend::Real, Outcome::Pass, &[]), None);
        assert!(
            gone.summary()
                .contains("on real processes: the original's violation does NOT show"),
            "{}",
            gone.summary()
        );
        assert_eq!(gone.exit_code(), 1);
    }

    #[test]
    fn reruns_land_in_the_original_results_root() {
        assert_eq!(
            results_root(Path::new("results/campaign-1/smoke/3-20260101T000000Z")),
            PathBuf::from("results/campaign-1")
        );
    }
}
