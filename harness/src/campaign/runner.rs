//! Carrying out the cells: a pool of J workers, each spawning `gauntlet run` for the next cell
//! until the queue is empty or the budget is spent, with progress shown as it goes.

use super::matrix::Cell;
use super::{RunRecord, RunStatus};
use crate::backend::Backend;
use crate::check::CheckOutcome;
use crate::layout::RunDir;
use crate::report;
use crate::verdict::Verdict;
use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Lines of a run's stderr kept for the record when it fails.
const LOG_TAIL_LINES: usize = 30;

pub struct RunnerConfig {
    pub executable: PathBuf,
    pub campaign_dir: PathBuf,
    pub run_args: Vec<String>,
    /// Every child runs with `--backend` this.
    pub backend: Backend,
    pub jobs: usize,
    pub budget: Option<Duration>,
    /// No run starts after one ended unexpected or in error (the mutation score's judge wants
    /// the first detection, not a full matrix).
    pub fail_fast: bool,
    pub progress_bars: bool,
    pub cells: Vec<Cell>,
}

/// Kills the child if the worker unwinds before waiting for it: no orphaned runs.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

enum Progress {
    Bars {
        multi: MultiProgress,
        overall: ProgressBar,
    },
    Lines {
        total: usize,
        done: Mutex<usize>,
    },
}

impl Progress {
    fn new(bars: bool, total: usize) -> Progress {
        if bars {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template(
                    "campaign [{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} runs {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Progress::Bars { multi, overall }
        } else {
            Progress::Lines {
                total,
                done: Mutex::new(0),
            }
        }
    }

    fn started(&self, cell: &Cell) -> Option<ProgressBar> {
        match self {
            Progress::Bars { multi, .. } => {
                let spinner = multi.add(ProgressBar::new_spinner());
                spinner.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix} [{elapsed}] {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                spinner.set_prefix(format!("{} seed {}", cell.scenario, cell.seed));
                spinner.enable_steady_tick(Duration::from_millis(200));
                Some(spinner)
            }
            Progress::Lines { .. } => None,
        }
    }

    fn finished(&self, spinner: Option<ProgressBar>, record: &RunRecord) {
        let line = format!(
            "{} seed {}: {} (outcome {}, expected {}) in {:.1}s{}",
            record.scenario_name,
            record.cell.seed,
            record.status.word(),
            if record.outcome.is_empty() {
                "-"
            } else {
                &record.outcome
            },
            if record.expected.is_empty() {
                "-"
            } else {
                &record.expected
            },
            record.duration_ms as f64 / 1000.0,
            record
                .run_dir
                .as_ref()
                .map_or_else(String::new, |d| format!(" → {}", d.display()))
        );
        match self {
            Progress::Bars { multi, overall } => {
                if let Some(spinner) = spinner {
                    spinner.finish_and_clear();
                    multi.remove(&spinner);
                }
                let _ = multi.println(line);
                overall.inc(1);
            }
            Progress::Lines { total, done } => {
                let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
                *done += 1;
                eprintln!("[{}/{}] {line}", *done, total);
            }
        }
    }

    fn close(&self, skipped: usize) {
        match self {
            Progress::Bars { overall, .. } => {
                if skipped > 0 {
                    overall.set_message(format!("({skipped} skipped: budget spent)"));
                }
                overall.finish();
            }
            Progress::Lines { .. } => {
                if skipped > 0 {
                    eprintln!("budget spent: {skipped} runs not started");
                }
            }
        }
    }
}

/// The cells not started yet and the seeds of the runs in flight.
struct Schedule {
    queue: VecDeque<Cell>,
    running_seeds: Vec<u64>,
    /// Whether two runs with one seed must not run at once (see `take_next`).
    one_run_per_seed: bool,
}

impl Schedule {
    fn new(cells: &[Cell], backend: Backend) -> Schedule {
        Schedule {
            queue: cells.iter().cloned().collect(),
            running_seeds: Vec::new(),
            // Simulated runs bind no ports, so seeds need not take turns: a one-seed campaign
            // still keeps every core busy.
            one_run_per_seed: backend == Backend::Real,
        }
    }

    /// The first queued cell whose seed is not running: a real run draws its ports from its
    /// seed, so two runs with one seed at once would fight over the same ports.
    fn take_next(&mut self) -> Option<Cell> {
        let position = self
            .queue
            .iter()
            .position(|c| !self.one_run_per_seed || !self.running_seeds.contains(&c.seed))?;
        let cell = self.queue.remove(position)?;
        self.running_seeds.push(cell.seed);
        Some(cell)
    }

    fn finish(&mut self, seed: u64) {
        if let Some(i) = self.running_seeds.iter().position(|s| *s == seed) {
            self.running_seeds.swap_remove(i);
        }
    }
}

pub fn run_cells(config: &RunnerConfig) -> Vec<RunRecord> {
    let started = Instant::now();
    let schedule = Mutex::new(Schedule::new(&config.cells, config.backend));
    let turn = Condvar::new();
    let records: Mutex<Vec<RunRecord>> = Mutex::new(Vec::new());
    let progress = Progress::new(config.progress_bars, config.cells.len());
    let workers = config.jobs.clamp(1, config.cells.len().max(1));
    let budget_spent = || config.budget.is_some_and(|b| started.elapsed() >= b);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let stop_starting = || {
        budget_spent() || (config.fail_fast && failed.load(std::sync::atomic::Ordering::Relaxed))
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let cell = {
                        let mut state = schedule.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if stop_starting() || state.queue.is_empty() {
                                break None;
                            }
                            if let Some(cell) = state.take_next() {
                                break Some(cell);
                            }
                            state = turn.wait(state).unwrap_or_else(|p| p.into_inner());
                        }
                    };
                    let Some(cell) = cell else {
                        turn.notify_all();
                        break;
                    };
                    let spinner = progress.started(&cell);
                    let record = run_cell(config, &cell, spinner.as_ref());
                    progress.finished(spinner, &record);
                    if matches!(record.status, RunStatus::Unexpected | RunStatus::Error) {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    records
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(record);
                    schedule
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .finish(cell.seed);
                    turn.notify_all();
                }
            });
        }
    });
    let mut records = records.into_inner().unwrap_or_else(|p| p.into_inner());
    let skipped: Vec<Cell> = schedule
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .queue
        .into();
    progress.close(skipped.len());
    records.extend(skipped.into_iter().map(|cell| {
        let reason = if failed.load(std::sync::atomic::Ordering::Relaxed) && config.fail_fast {
            "not started: an earlier run failed (--fail-fast)"
        } else {
            "not started: the campaign's budget was spent"
        };
        let reason = reason.to_string();
        skipped_record(cell, &config.run_args, config.backend, reason)
    }));
    records.sort_by_key(|r| r.cell.index);
    records
}

/// The record of a cell that was never run, and why.
pub fn skipped_record(
    cell: Cell,
    run_args: &[String],
    backend: Backend,
    reason: String,
) -> RunRecord {
    RunRecord {
        reproduce: reproduce_hint(&cell, run_args, backend),
        scenario_name: cell.scenario.clone(),
        cell,
        status: RunStatus::Skipped,
        outcome: String::new(),
        expected: String::new(),
        duration_ms: 0,
        run_dir: None,
        summary: reason,
        log_tail: String::new(),
    }
}

/// The command a run would print, until it prints its own (`Plan::reproduce_command`).
fn reproduce_hint(cell: &Cell, run_args: &[String], backend: Backend) -> String {
    let mut command = format!("gauntlet run {} --seed {}", cell.scenario, cell.seed);
    for arg in run_args {
        command.push(' ');
        command.push_str(arg);
    }
    if backend != Backend::Real {
        command.push_str(&format!(" --backend {backend}"));
    }
    command
}

/// Runs one cell to completion in a run folder chosen here, and judges it from its exit code
/// and the verdict in that folder.
fn run_cell(config: &RunnerConfig, cell: &Cell, spinner: Option<&ProgressBar>) -> RunRecord {
    let started = Instant::now();
    let mut record = RunRecord {
        cell: cell.clone(),
        scenario_name: cell.scenario.clone(),
        status: RunStatus::Error,
        outcome: String::new(),
        expected: String::new(),
        duration_ms: 0,
        run_dir: None,
        summary: String::new(),
        reproduce: reproduce_hint(cell, &config.run_args, config.backend),
        log_tail: String::new(),
    };
    let dir = match reserve_run_dir(&config.campaign_dir, cell) {
        Ok(dir) => dir,
        Err(error) => {
            record.summary = format!("{error:#}");
            return record;
        }
    };
    let child = match spawn_run(config, cell, &dir) {
        Ok(child) => child,
        Err(error) => {
            dir.remove_if_empty();
            record.summary = format!("cannot start {}: {error}", config.executable.display());
            return record;
        }
    };
    let (exit_code, tail) = wait_for_run(child, spinner);
    record.duration_ms = started.elapsed().as_millis() as u64;
    let verdict = Verdict::read(&dir).map_err(|error| format!("{error:#}"));
    // A run that stopped before it began (a bad argument, say) leaves its folder empty.
    if !dir.remove_if_empty() {
        record.run_dir = Some(dir.root.clone());
        write_missing_report(&dir);
    }
    judge_record(&mut record, exit_code, verdict);
    if record.status == RunStatus::Error {
        record.log_tail = tail;
    }
    record
}

/// The run's folder, `<campaign>/<scenario>/<seed>-<time>/` as `gauntlet run --out` names
/// it, created here so that the campaign knows where the run is and no two runs share one.
fn reserve_run_dir(campaign_dir: &Path, cell: &Cell) -> anyhow::Result<RunDir> {
    let loaded = crate::scenario::load(&cell.scenario).context("the scenario does not load")?;
    RunDir::create_under(campaign_dir, &loaded.scenario.name, cell.seed)
}

fn spawn_run(config: &RunnerConfig, cell: &Cell, dir: &RunDir) -> std::io::Result<Child> {
    Command::new(&config.executable)
        .arg("run")
        .arg(&cell.scenario)
        .arg("--seed")
        .arg(cell.seed.to_string())
        .arg("--run-dir")
        .arg(&dir.root)
        .args(&config.run_args)
        .arg("--backend")
        .arg(config.backend.name())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Waits for the run to exit, its stdout shown on the spinner; returns its exit code (`None`
/// if a signal ended it) and the last lines of its stderr.
fn wait_for_run(mut child: Child, spinner: Option<&ProgressBar>) -> (Option<i32>, String) {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut guard = ChildGuard(Some(child));
    let tail = std::thread::scope(|scope| {
        let tail = scope.spawn(move || stderr.map(read_tail).unwrap_or_default());
        if let Some(stdout) = stdout {
            show_progress(stdout, spinner);
        }
        tail.join().unwrap_or_default()
    });
    let exit_code = match guard.0.take().map(|mut child| child.wait()) {
        Some(Ok(status)) => status.code(),
        Some(Err(error)) => {
            tracing::warn!("cannot wait for a run: {error}");
            None
        }
        None => None,
    };
    (exit_code, tail)
}

/// The run writes its own report; one that died before it did still gets a page saying so.
fn write_missing_report(dir: &RunDir) {
    if !dir.report().exists()
        && let Err(error) = report::write_report(&dir.root)
    {
        tracing::warn!(
            "cannot write the report of {}: {error:#}",
            dir.root.display()
        );
    }
}

/// Status from the exit code (0/1/2, as `gauntlet run` defines them) and the verdict; an exit
/// code that contradicts the verdict, a missing verdict or a crash count as errors.
fn judge_record(record: &mut RunRecord, exit_code: Option<i32>, verdict: Result<Verdict, String>) {
    let verdict = match verdict {
        Ok(verdict) => verdict,
        Err(problem) => {
            record.status = RunStatus::Error;
            record.summary = format!("no readable verdict ({problem}); exit code {exit_code:?}");
            return;
        }
    };
    record.scenario_name = verdict.scenario.clone();
    record.outcome = verdict.outcome.word().to_string();
    record.expected = verdict.expected_word().to_string();
    record.reproduce = verdict.reproduce.clone();
    record.summary = verdict_summary(&verdict);
    if exit_code != Some(verdict.exit_code()) {
        record.status = RunStatus::Error;
        record.summary = format!(
            "exit code {exit_code:?} does not fit the verdict ({}): {}",
            verdict.outcome.word(),
            record.summary
        );
        return;
    }
    record.status = match verdict.exit_code() {
        0 => RunStatus::AsExpected,
        1 => RunStatus::Unexpected,
        _ => RunStatus::Error,
    };
}

/// The failing checks, one per line; or the run's error; or the passing summary.
pub fn verdict_summary(verdict: &Verdict) -> String {
    if let Some(error) = &verdict.error {
        return format!("error: {error}");
    }
    let lines: Vec<String> = verdict
        .checks
        .iter()
        .filter(|c| {
            matches!(
                c.outcome,
                CheckOutcome::Violation | CheckOutcome::Inconclusive
            )
        })
        .map(|c| format!("{}: {}", c.name, c.summary))
        .collect();
    if lines.is_empty() {
        format!(
            "{} (expected {})",
            verdict.outcome.word(),
            verdict.expected_word()
        )
    } else {
        lines.join("\n")
    }
}

/// Shows each line the run prints on the spinner, to the end of its output.
fn show_progress(stdout: impl Read, spinner: Option<&ProgressBar>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(spinner) = spinner {
            spinner.set_message(line);
        }
    }
}

fn read_tail(stderr: impl Read) -> String {
    let mut tail: VecDeque<String> = VecDeque::with_capacity(LOG_TAIL_LINES);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if tail.len() == LOG_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    Vec::from(tail).join("\n")
}

/// Where a run folder is relative to the campaign folder, for links.
pub fn relative_to(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Expectation;
    use crate::verdict::Outcome;

    fn blank() -> RunRecord {
        RunRecord {
            cell: Cell {
                index: 0,
                scenario: "s".into(),
                seed: 1,
            },
            scenario_name: "s".into(),
            status: RunStatus::Error,
            outcome: String::new(),
            expected: String::new(),
            duration_ms: 0,
            run_dir: None,
            summary: String::new(),
            reproduce: String::new(),
            log_tail: String::new(),
        }
    }

    fn verdict(outcome: Outcome, expected: Expectation) -> Verdict {
        Verdict::bare(outcome, expected)
    }

    #[test]
    fn exit_code_and_verdict_together_decide_the_status() {
        use Expectation as E;
        use Outcome as O;
        let cases = [
            (Some(0), verdict(O::Pass, E::Pass), RunStatus::AsExpected),
            (
                Some(1),
                verdict(O::Violation, E::Pass),
                RunStatus::Unexpected,
            ),
            (
                Some(0),
                verdict(O::Violation, E::Violation),
                RunStatus::AsExpected,
            ),
            (
                Some(1),
                verdict(O::Inconclusive, E::Pass),
                RunStatus::Unexpected,
            ),
            (Some(2), verdict(O::Error, E::Pass), RunStatus::Error),
            (Some(0), verdict(O::Violation, E::Pass), RunStatus::Error),
            (None, verdict(O::Pass, E::Pass), RunStatus::Error),
        ];
        for (code, v, want) in cases {
            let mut record = blank();
            judge_record(&mut record, code, Ok(v.clone()));
            assert_eq!(record.status, want, "{code:?} {v:?}");
            assert_eq!(record.reproduce, "gauntlet run s --seed 1");
        }
        let mut record = blank();
        judge_record(&mut record, Some(0), Err("no verdict.json".into()));
        assert_eq!(
            record.status,
            RunStatus::Error,
            "no verdict is never a pass"
        );
    }

    #[test]
    fn the_record_takes_the_verdicts_words_and_its_error() {
        let mut record = blank();
        judge_record(
            &mut record,
            Some(2),
            Ok(Verdict {
                error: Some("the proxy did not start".into()),
                ..verdict(Outcome::Error, Expectation::Violation)
            }),
        );
        assert_eq!(
            (record.outcome.as_str(), record.expected.as_str()),
            ("error", "violation")
        );
        assert_eq!(record.summary, "error: the proxy did not start");
    }

    #[test]
    fn two_runs_with_one_seed_never_run_at_once() {
        let cell = |index: usize, seed: u64| Cell {
            index,
            scenario: format!("s{index}"),
            seed,
        };
        let cells = [cell(0, 1), cell(1, 1), cell(2, 2)];
        let mut schedule = Schedule::new(&cells, Backend::Real);
        assert_eq!(schedule.take_next().map(|c| c.index), Some(0));
        assert_eq!(
            schedule.take_next().map(|c| c.index),
            Some(2),
            "seed 1 is busy"
        );
        assert_eq!(
            schedule.take_next(),
            None,
            "only seed 1 is left and it is busy"
        );
        schedule.finish(1);
        assert_eq!(schedule.take_next().map(|c| c.index), Some(1));

        let mut simulated = Schedule::new(&cells, Backend::Sim);
        let order: Vec<usize> =
            std::iter::from_fn(|| simulated.take_next().map(|c| c.index)).collect();
        assert_eq!(order, vec![0, 1, 2], "simulated runs bind no ports");
    }

    #[test]
    fn reproduce_hints_name_the_sim_backend_as_runs_do() {
        let cell = Cell {
            index: 0,
            scenario: "smoke".into(),
            seed: 4,
        };
        let args = ["--duration".to_string(), "3".to_string()];
        assert_eq!(
            reproduce_hint(&cell, &args, Backend::Real),
            "gauntlet run smoke --seed 4 --duration 3"
        );
        assert_eq!(
            reproduce_hint(&cell, &args, Backend::Sim),
            "gauntlet run smoke --seed 4 --duration 3 --backend sim"
        );
    }

    #[test]
    fn stderr_tail_keeps_only_the_last_lines() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = read_tail(text.as_bytes());
        assert_eq!(tail.lines().count(), LOG_TAIL_LINES);
        assert!(tail.ends_with("line 99"));
    }
}
