//! `gauntlet campaign`: many runs (scenarios × seeds, this shard's part), J at a time, each in
//! a child `gauntlet run` of this same executable, within a time budget; then an index page,
//! JUnit XML and a `latest` link to the newest campaign.

mod index;
mod junit;
pub mod matrix;
pub mod replay;
pub mod reproduce;
mod runner;

pub use index::render_index;
pub use junit::junit_xml;
pub use matrix::{Cell, MatrixError, Seeds, Shard, matrix, parse_budget, shard_cells, suite};

use crate::backend::Backend;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const INDEX_FILE: &str = "index.html";
pub const JUNIT_FILE: &str = "junit.xml";
pub const SUMMARY_FILE: &str = "campaign.json";
pub const LATEST_LINK: &str = "latest";

#[derive(Clone, Debug)]
pub struct CampaignOptions {
    /// Built-in suite to run (`smoke`, `nightly`); ignored when `scenarios` is not empty.
    pub suite: Option<String>,
    /// Built-in names or YAML paths.
    pub scenarios: Vec<String>,
    pub seeds: Seeds,
    /// No run starts once this much time has passed; runs in flight finish.
    pub budget: Option<Duration>,
    pub jobs: usize,
    pub shard: Shard,
    /// The results root: the campaign folder and the `latest` link go here.
    pub out: PathBuf,
    /// The `gauntlet` to run each cell with; `None` = this executable.
    pub executable: Option<PathBuf>,
    /// Passed to every `gauntlet run` (e.g. `--duration 5`).
    pub run_args: Vec<String>,
    /// Passed to every `gauntlet run` as `--backend`.
    pub backend: Backend,
    /// Stop starting runs after the first unexpected or failed one.
    pub fail_fast: bool,
    /// Progress bars on a terminal; `None` = decide from whether stderr is one.
    pub progress_bars: Option<bool>,
}

impl Default for CampaignOptions {
    fn default() -> Self {
        CampaignOptions {
            suite: None,
            scenarios: Vec::new(),
            seeds: Seeds::default(),
            budget: None,
            jobs: 1,
            shard: Shard::default(),
            out: PathBuf::from("results"),
            executable: None,
            run_args: Vec::new(),
            backend: Backend::Real,
            fail_fast: false,
            progress_bars: None,
        }
    }
}

/// How one cell ended, from the campaign's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Listed first everywhere: the run could not be carried out.
    Error,
    /// The outcome was not what the scenario expects.
    Unexpected,
    /// Not started: the budget was spent, or the backend does not model the scenario.
    Skipped,
    AsExpected,
}

impl RunStatus {
    pub fn word(self) -> &'static str {
        match self {
            RunStatus::Error => "error",
            RunStatus::Unexpected => "unexpected",
            RunStatus::Skipped => "skipped",
            RunStatus::AsExpected => "as expected",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub cell: Cell,
    /// The scenario's own name (from its verdict); the cell's built-in name or path until then.
    pub scenario_name: String,
    pub status: RunStatus,
    /// From the run's verdict: `pass`, `violation`, `inconclusive`, `error` (empty if none).
    pub outcome: String,
    pub expected: String,
    pub duration_ms: u64,
    pub run_dir: Option<PathBuf>,
    /// One line per failed or inconclusive check, or why the run could not be carried out.
    pub summary: String,
    pub reproduce: String,
    /// The last lines the run printed to stderr, kept when it did not finish normally.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_tail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignSummary {
    pub dir: PathBuf,
    pub name: String,
    /// Where every run of the campaign happened; campaigns from before the simulator: real.
    #[serde(default)]
    pub backend: Backend,
    pub shard: Shard,
    pub seeds: Seeds,
    pub budget_s: Option<u64>,
    pub jobs: usize,
    pub elapsed_ms: u64,
    pub records: Vec<RunRecord>,
}

impl CampaignSummary {
    /// A campaign folder's summary with `records`, for the page and file writers' tests.
    #[cfg(test)]
    pub(crate) fn sample(backend: Backend, records: Vec<RunRecord>) -> CampaignSummary {
        CampaignSummary {
            dir: PathBuf::from("/tmp/c"),
            name: "c".into(),
            backend,
            shard: Shard::default(),
            seeds: Seeds::default(),
            budget_s: None,
            jobs: 1,
            elapsed_ms: 0,
            records,
        }
    }

    pub fn count(&self, status: RunStatus) -> usize {
        self.records.iter().filter(|r| r.status == status).count()
    }

    /// 2 if any run could not be carried out, else 1 if any outcome was unexpected, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.count(RunStatus::Error) > 0 {
            2
        } else if self.count(RunStatus::Unexpected) > 0 {
            1
        } else {
            0
        }
    }

    /// Records in reading order: failures first, then by scenario and seed.
    pub fn ordered(&self) -> Vec<&RunRecord> {
        let mut records: Vec<&RunRecord> = self.records.iter().collect();
        records.sort_by(|a, b| {
            (a.status, &a.scenario_name, a.cell.seed).cmp(&(
                b.status,
                &b.scenario_name,
                b.cell.seed,
            ))
        });
        records
    }

    /// The table printed at the end of a campaign.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<12} {:<24} {:>20} {:<13} {:<10} {:>9}  {}\n",
            "result", "scenario", "seed", "outcome", "expected", "time", "run folder"
        );
        for r in self.ordered() {
            out.push_str(&format!(
                "{:<12} {:<24} {:>20} {:<13} {:<10} {:>8.1}s  {}\n",
                r.status.word(),
                r.scenario_name,
                r.cell.seed,
                if r.outcome.is_empty() {
                    "-"
                } else {
                    &r.outcome
                },
                if r.expected.is_empty() {
                    "-"
                } else {
                    &r.expected
                },
                r.duration_ms as f64 / 1000.0,
                r.run_dir
                    .as_ref()
                    .map_or_else(|| "-".into(), |d| d.display().to_string())
            ));
        }
        out.push_str(&format!(
            "{} runs on {}: {} as expected, {} unexpected, {} could not run, {} skipped — {}\n",
            self.records.len(),
            crate::report::backend_label(self.backend),
            self.count(RunStatus::AsExpected),
            self.count(RunStatus::Unexpected),
            self.count(RunStatus::Error),
            self.count(RunStatus::Skipped),
            self.dir.join(INDEX_FILE).display()
        ));
        out
    }
}

/// The scenarios to run: the named ones, or the suite's, or an error if neither.
pub fn scenarios_for(options: &CampaignOptions) -> Result<Vec<String>, MatrixError> {
    if !options.scenarios.is_empty() {
        return Ok(options.scenarios.clone());
    }
    let builtins: Vec<&str> = crate::scenario::BUILTINS.iter().map(|b| b.name).collect();
    match &options.suite {
        Some(name) => suite(name, &builtins),
        None => Err(MatrixError::Empty),
    }
}

/// Runs the campaign and writes its folder. The caller exits with `summary.exit_code()`.
pub fn run_campaign(options: &CampaignOptions) -> anyhow::Result<CampaignSummary> {
    let scenarios = scenarios_for(options)?;
    let cells = shard_cells(matrix(&scenarios, options.seeds), options.shard);
    let executable = match &options.executable {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("cannot find this executable to run cells with")?,
    };
    let (dir, name) = create_campaign_dir(&options.out, options)?;
    let started = std::time::Instant::now();
    let mut records = runner::run_cells(&runner::RunnerConfig {
        executable,
        campaign_dir: dir.clone(),
        run_args: options.run_args.clone(),
        backend: options.backend,
        jobs: options.jobs.max(1),
        budget: options.budget,
        fail_fast: options.fail_fast,
        progress_bars: options
            .progress_bars
            .unwrap_or_else(|| std::io::IsTerminal::is_terminal(&std::io::stderr())),
        cells,
    });
    records.sort_by_key(|r| r.cell.index);
    let summary = CampaignSummary {
        dir: dir.clone(),
        name,
        backend: options.backend,
        shard: options.shard,
        seeds: options.seeds,
        budget_s: options.budget.map(|b| b.as_secs()),
        jobs: options.jobs.max(1),
        elapsed_ms: started.elapsed().as_millis() as u64,
        records,
    };
    write_campaign_files(&summary)?;
    if let Err(error) = point_latest(&options.out, &dir) {
        tracing::warn!("cannot update the `latest` link: {error:#}");
    }
    Ok(summary)
}

/// Writes `index.html`, `junit.xml` and `campaign.json` into the campaign folder.
pub fn write_campaign_files(summary: &CampaignSummary) -> anyhow::Result<()> {
    let write = |file: &str, text: String| {
        let path = summary.dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write(INDEX_FILE, render_index(summary))?;
    write(JUNIT_FILE, junit_xml(summary)?)?;
    write(SUMMARY_FILE, serde_json::to_string_pretty(summary)? + "\n")?;
    Ok(())
}

/// Renders `index.html` again from the folder's `campaign.json`; returns its path.
pub fn rewrite_index(campaign_dir: &Path) -> anyhow::Result<PathBuf> {
    let summary_path = campaign_dir.join(SUMMARY_FILE);
    let text = std::fs::read_to_string(&summary_path)
        .with_context(|| format!("cannot read {}", summary_path.display()))?;
    let summary: CampaignSummary = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a campaign summary", summary_path.display()))?;
    let path = campaign_dir.join(INDEX_FILE);
    std::fs::write(&path, render_index(&summary))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn create_campaign_dir(out: &Path, options: &CampaignOptions) -> anyhow::Result<(PathBuf, String)> {
    let mut base = format!("campaign-{}", crate::layout::timestamp_label());
    if options.shard.total > 1 {
        base.push_str(&format!(
            "-shard-{}-of-{}",
            options.shard.index, options.shard.total
        ));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for attempt in 1..100 {
        let name = if attempt == 1 {
            base.clone()
        } else {
            format!("{base}-{attempt}")
        };
        let dir = out.join(&name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((dir, name)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    anyhow::bail!(
        "cannot find a free campaign folder name under {}",
        out.display()
    )
}

/// Points `<out>/latest` at the campaign folder (relative, so the results tree can move),
/// replacing the previous link atomically.
pub fn point_latest(out: &Path, campaign_dir: &Path) -> anyhow::Result<()> {
    let target = campaign_dir
        .file_name()
        .context("the campaign folder has no name")?;
    let link = out.join(LATEST_LINK);
    let temporary = out.join(format!(".{LATEST_LINK}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    std::fs::rename(&temporary, &link)
        .with_context(|| format!("cannot replace {}", link.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(scenario: &str, seed: u64, status: RunStatus) -> RunRecord {
        RunRecord {
            cell: Cell {
                index: 0,
                scenario: scenario.into(),
                seed,
            },
            scenario_name: scenario.into(),
            status,
            outcome: String::new(),
            expected: "pass".into(),
            duration_ms: 1000,
            run_dir: None,
            summary: String::new(),
            reproduce: String::new(),
            log_tail: String::new(),
        }
    }

    fn summary(records: Vec<RunRecord>) -> CampaignSummary {
        CampaignSummary::sample(Backend::Real, records)
    }

    #[test]
    fn exit_code_is_two_for_errors_then_one_for_surprises() {
        let ok = record("a", 1, RunStatus::AsExpected);
        let skipped = record("a", 2, RunStatus::Skipped);
        let bad = record("b", 1, RunStatus::Unexpected);
        let broken = record("c", 1, RunStatus::Error);
        assert_eq!(summary(vec![ok.clone(), skipped.clone()]).exit_code(), 0);
        assert_eq!(summary(vec![ok.clone(), bad.clone()]).exit_code(), 1);
        assert_eq!(summary(vec![ok, bad, broken]).exit_code(), 2);
    }

    #[test]
    fn failures_come_first_in_reading_order() {
        let s = summary(vec![
            record("a", 1, RunStatus::AsExpected),
            record("b", 1, RunStatus::Unexpected),
            record("a", 2, RunStatus::Skipped),
            record("c", 1, RunStatus::Error),
        ]);
        let order: Vec<RunStatus> = s.ordered().iter().map(|r| r.status).collect();
        assert_eq!(
            order,
            vec![
                RunStatus::Error,
                RunStatus::Unexpected,
                RunStatus::Skipped,
                RunStatus::AsExpected
            ]
        );
    }

    #[test]
    fn campaign_json_without_a_backend_reads_as_real() {
        let mut json = serde_json::to_value(summary(Vec::new())).expect("encode");
        json.as_object_mut().expect("object").remove("backend");
        let read: CampaignSummary = serde_json::from_value(json).expect("old campaign.json");
        assert_eq!(read.backend, Backend::Real);
    }

    #[test]
    fn latest_link_moves_to_the_newest_campaign() {
        let root = tempfile::tempdir().expect("tempdir");
        for name in ["campaign-1", "campaign-2"] {
            let dir = root.path().join(name);
            std::fs::create_dir(&dir).expect("mkdir");
            point_latest(root.path(), &dir).expect("link");
        }
        let link = root.path().join(LATEST_LINK);
        assert_eq!(
            std::fs::read_link(&link).expect("a link"),
            PathBuf::from("campaign-2")
        );
        assert!(link.join(".").is_dir(), "the link resolves");
    }
}
