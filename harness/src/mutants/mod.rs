//! `gauntlet mutants`: who tests the tester. Plants each bug cargo-mutants generates in the
//! protocol code, one at a time, in a separate worktree, builds `gauntlet` from it and judges
//! the build with a simulated `--fail-fast` campaign (not the unit tests; on real processes for
//! the node's own code, which the simulator does not run): a mutant is caught
//! when a scenario ends other than it expects. Writes `mutants.jsonl` as it goes (an
//! interrupted score keeps what it found), then `mutants.json` and `mutants.md`.

pub mod list;
pub mod outcome;
mod worktree;

pub use list::Mutant;
pub use outcome::{Finding, Score, Status};

use crate::campaign::CampaignSummary;
use anyhow::Context as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use worktree::Worktree;

/// The protocol code the issue names: what a planted bug in it must not get past.
pub const DEFAULT_FILES: &[&str] = &[
    "replica/src/core/**/*.rs",
    "replica/src/verify.rs",
    "replica/src/service.rs",
    "replica/src/node/wal.rs",
    "replica/src/client/tally.rs",
];

#[derive(Clone, Debug)]
pub struct MutantsOptions {
    /// The workspace whose committed HEAD is mutated.
    pub root: PathBuf,
    /// Globs cargo-mutants takes with `--file`.
    pub files: Vec<String>,
    /// Only mutants whose names match one of these regular expressions (to re-judge the
    /// survivors of an earlier score, say).
    pub names: Vec<String>,
    /// Judge a seeded sample of this many instead of all.
    pub sample: Option<usize>,
    pub seed: u64,
    /// Where the mutated tree lives; kept between scores so builds are incremental.
    pub worktree: PathBuf,
    /// The campaign that judges each mutant: these scenarios, or when there are none the suite.
    pub scenarios: Vec<String>,
    pub suite: String,
    pub seeds: u64,
    pub jobs: usize,
    /// Campaign time per mutant: no run starts after it.
    pub budget: Duration,
    /// This score's folder.
    pub out: PathBuf,
    /// Trust that the unmutated tree passes the campaign instead of checking it first.
    pub skip_baseline: bool,
}

/// Code the simulator does not run (it has its own disk, network and clock): mutants here are
/// judged by the same campaign on real processes.
pub const REAL_ONLY: &[&str] = &["replica/src/node/"];

fn backend_for(mutant: &Mutant) -> &'static str {
    if REAL_ONLY
        .iter()
        .any(|prefix| mutant.file.starts_with(prefix))
    {
        "real"
    } else {
        "sim"
    }
}

/// A campaign that has not ended this long after its budget hung.
const HANG_GRACE: Duration = Duration::from_secs(120);

pub fn score(options: &MutantsOptions, log: &mut dyn Write) -> anyhow::Result<Score> {
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("cannot create {}", options.out.display()))?;
    let mutants = list::sample(
        list::list(&options.root, &options.files, &options.names)?,
        options.sample,
        options.seed,
    );
    writeln!(log, "{} mutants to judge", mutants.len())?;
    let worktree = Worktree::prepare(&options.root, &options.worktree)?;
    if !options.skip_baseline {
        baseline(&worktree, options, log)?;
    }
    let mut stream = std::fs::File::create(options.out.join("mutants.jsonl"))?;
    let mut findings = Vec::new();
    for (i, mutant) in mutants.iter().enumerate() {
        let finding = judge(&worktree, mutant, i, options)?;
        writeln!(
            log,
            "[{}/{}] {} {} {}",
            i + 1,
            mutants.len(),
            finding.status.word(),
            mutant.name.clone(),
            finding.scenario.as_deref().unwrap_or("")
        )?;
        writeln!(stream, "{}", serde_json::to_string(&finding)?)?;
        findings.push(finding);
    }
    worktree.reset()?;
    let score = Score::of(&findings);
    let json = serde_json::json!({ "score": score, "findings": findings });
    std::fs::write(
        options.out.join("mutants.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    std::fs::write(
        options.out.join("mutants.md"),
        outcome::markdown(&findings, &score),
    )?;
    writeln!(log, "{}", score.line())?;
    Ok(score)
}

/// The unmutated tree must meet every expectation, or every mutant would look caught.
fn baseline(
    worktree: &Worktree,
    options: &MutantsOptions,
    log: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(log, "baseline: building and judging the unmutated tree")?;
    worktree.reset()?;
    worktree.build(false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let campaign = run_campaign(worktree, options, "sim", &options.out.join("baseline"))?
        .context("the baseline campaign hung")?;
    let finding = Finding::from_campaign("baseline".into(), &campaign, 0);
    anyhow::ensure!(
        finding.status == Status::Missed,
        "the unmutated tree fails the campaign ({} seed {:?}: {}); fix that before scoring",
        finding.scenario.as_deref().unwrap_or("?"),
        finding.seed,
        finding.checks
    );
    writeln!(
        log,
        "baseline: {} runs as expected in {:.1} s",
        finding.runs,
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

fn judge(
    worktree: &Worktree,
    mutant: &Mutant,
    index: usize,
    options: &MutantsOptions,
) -> anyhow::Result<Finding> {
    worktree.reset()?;
    worktree.apply(&mutant.file, &mutant.diff)?;
    let started = Instant::now();
    let backend = backend_for(mutant);
    let built = worktree.build(backend == "real");
    let build_ms = started.elapsed().as_millis() as u64;
    if let Err(error) = built {
        return Ok(Finding::unviable(mutant.name.clone(), build_ms, &error));
    }
    let started = Instant::now();
    let folder = options.out.join(format!("campaigns/{index:04}"));
    Ok(match run_campaign(worktree, options, backend, &folder)? {
        Some(campaign) => Finding::from_campaign(mutant.name.clone(), &campaign, build_ms),
        None => Finding::hung(
            mutant.name.clone(),
            started.elapsed().as_millis() as u64,
            build_ms,
        ),
    })
}

/// Runs the worktree's `gauntlet campaign` on `backend`; `None` when it had to be killed.
fn run_campaign(
    worktree: &Worktree,
    options: &MutantsOptions,
    backend: &str,
    out: &Path,
) -> anyhow::Result<Option<CampaignSummary>> {
    let judges = if options.scenarios.is_empty() {
        vec!["--suite".to_string(), options.suite.clone()]
    } else {
        options.scenarios.clone()
    };
    let args = ["campaign".to_string(), "--backend".into(), backend.into()]
        .into_iter()
        .chain(judges)
        .chain([
            "--seeds".into(),
            options.seeds.to_string(),
            "--jobs".into(),
            options.jobs.to_string(),
            "--budget".into(),
            format!("{}s", options.budget.as_secs().max(1)),
            "--fail-fast".into(),
            "--out".into(),
            out.display().to_string(),
        ])
        .collect::<Vec<String>>();
    if !worktree.run_gauntlet(&args, options.budget + HANG_GRACE)? {
        return Ok(None);
    }
    let summary = out
        .join(crate::campaign::LATEST_LINK)
        .join(crate::campaign::SUMMARY_FILE);
    let text = std::fs::read_to_string(&summary)
        .with_context(|| format!("the campaign wrote no {}", summary.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| {
        format!("cannot read {}", summary.display())
    })?))
}
