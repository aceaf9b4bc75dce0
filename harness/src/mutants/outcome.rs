//! What became of one mutant, and the figures over all of them.

use crate::campaign::{CampaignSummary, RunStatus};
use serde::{Deserialize, Serialize};

/// How the judge ended for one mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A run ended other than its scenario expects: the harness noticed the planted bug.
    Caught,
    /// Every run within the budget ended as expected.
    Missed,
    /// The campaign did not end within its budget plus a grace period: a simulated run hung,
    /// which a nightly job reports as a failure. Counted as detected.
    Hung,
    /// The mutated code does not compile; it says nothing about the harness.
    Unviable,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Caught => "caught",
            Status::Missed => "missed",
            Status::Hung => "hung",
            Status::Unviable => "unviable",
        }
    }
}

/// The judge's finding for one mutant: plain data, written as one record of `mutants.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `file:line: replacement`, as cargo-mutants names it.
    pub mutant: String,
    pub status: Status,
    /// The first run that ended unexpectedly: scenario and seed.
    pub scenario: Option<String>,
    pub seed: Option<u64>,
    /// Which checks failed, as the campaign summarised them (one line per check).
    pub checks: String,
    /// Campaign wall time until the detecting run ended (or the whole campaign, if missed).
    pub campaign_ms: u64,
    /// Runs the campaign finished (those skipped after the detection are not counted).
    pub runs: usize,
    pub build_ms: u64,
}

impl Finding {
    /// Reads a `--fail-fast` campaign over the mutated build.
    pub fn from_campaign(mutant: String, campaign: &CampaignSummary, build_ms: u64) -> Finding {
        let finished = campaign
            .records
            .iter()
            .filter(|r| r.status != RunStatus::Skipped);
        let first_failure = campaign
            .ordered()
            .into_iter()
            .find(|r| matches!(r.status, RunStatus::Unexpected | RunStatus::Error));
        Finding {
            mutant,
            status: match first_failure {
                Some(_) => Status::Caught,
                None => Status::Missed,
            },
            scenario: first_failure.map(|r| r.scenario_name.clone()),
            seed: first_failure.map(|r| r.cell.seed),
            checks: first_failure.map_or_else(String::new, |r| {
                if r.status == RunStatus::Error {
                    format!("run error: {}", r.summary)
                } else {
                    r.summary.clone()
                }
            }),
            campaign_ms: campaign.elapsed_ms,
            runs: finished.count(),
            build_ms,
        }
    }

    pub fn hung(mutant: String, campaign_ms: u64, build_ms: u64) -> Finding {
        Finding {
            mutant,
            status: Status::Hung,
            scenario: None,
            seed: None,
            checks: "the campaign did not finish; it was killed".into(),
            campaign_ms,
            runs: 0,
            build_ms,
        }
    }

    pub fn unviable(mutant: String, build_ms: u64, error: &str) -> Finding {
        Finding {
            mutant,
            status: Status::Unviable,
            scenario: None,
            seed: None,
            checks: error.lines().take(3).collect::<Vec<_>>().join(" / "),
            campaign_ms: 0,
            runs: 0,
            build_ms,
        }
    }
}

/// The mutation score and detection times over a set of findings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub generated: usize,
    pub caught: usize,
    pub hung: usize,
    pub missed: usize,
    pub unviable: usize,
    /// (caught + hung) / (caught + hung + missed); equivalent mutants are judged by a person
    /// (MUTANTS.md).
    pub score: Option<f64>,
    pub median_detection_ms: Option<u64>,
    pub worst_detection_ms: Option<u64>,
}

impl Score {
    pub fn of(findings: &[Finding]) -> Score {
        let count = |status| findings.iter().filter(|f| f.status == status).count();
        let (caught, hung, missed) = (
            count(Status::Caught),
            count(Status::Hung),
            count(Status::Missed),
        );
        let detected = caught + hung;
        let mut times: Vec<u64> = findings
            .iter()
            .filter(|f| f.status == Status::Caught)
            .map(|f| f.campaign_ms)
            .collect();
        times.sort_unstable();
        Score {
            generated: findings.len(),
            caught,
            hung,
            missed,
            unviable: count(Status::Unviable),
            score: (detected + missed > 0).then(|| detected as f64 / (detected + missed) as f64),
            median_detection_ms: times.get(times.len() / 2).copied(),
            worst_detection_ms: times.last().copied(),
        }
    }

    pub fn line(&self) -> String {
        let seconds =
            |ms: Option<u64>| ms.map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
        format!(
            "{} mutants: {} caught, {} hung, {} missed, {} unviable; score {}; detection median {}, worst {}",
            self.generated,
            self.caught,
            self.hung,
            self.missed,
            self.unviable,
            self.score
                .map_or("-".into(), |s| format!("{:.1}%", s * 100.0)),
            seconds(self.median_detection_ms),
            seconds(self.worst_detection_ms),
        )
    }
}

/// `mutants.md`: the table a person reads, missed mutants first.
pub fn markdown(findings: &[Finding], score: &Score) -> String {
    let mut ordered: Vec<&Finding> = findings.iter().collect();
    ordered.sort_by_key(|f| match f.status {
        Status::Missed => 0,
        Status::Caught | Status::Hung => 1,
        Status::Unviable => 2,
    });
    let mut out = format!(
        "# Mutation score\n\n{}\n\n| mutant | result | by scenario (seed) | checks | campaign s | runs |\n|---|---|---|---|---|---|\n",
        score.line()
    );
    for f in ordered {
        let by = match (&f.scenario, f.seed) {
            (Some(scenario), Some(seed)) => format!("{scenario} ({seed})"),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {:.1} | {} |\n",
            f.mutant.replace('|', "\\|"),
            f.status.word(),
            by,
            f.checks.replace('|', "\\|").replace('\n', " / "),
            f.campaign_ms as f64 / 1000.0,
            f.runs,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::campaign::{Cell, RunRecord};
    use std::path::PathBuf;

    fn record(scenario: &str, seed: u64, status: RunStatus, summary: &str) -> RunRecord {
        RunRecord {
            cell: Cell {
                index: seed as usize,
                scenario: scenario.into(),
                seed,
            },
            scenario_name: scenario.into(),
            status,
            outcome: String::new(),
            expected: "pass".into(),
            duration_ms: 1000,
            run_dir: Some(PathBuf::from("/r")),
            summary: summary.into(),
            reproduce: String::new(),
            log_tail: String::new(),
        }
    }

    fn campaign(records: Vec<RunRecord>, elapsed_ms: u64) -> CampaignSummary {
        let mut summary = CampaignSummary::sample(Backend::Sim, records);
        summary.elapsed_ms = elapsed_ms;
        summary
    }

    #[test]
    fn the_first_unexpected_run_names_the_scenario_and_checks_that_caught_it() {
        let runs = campaign(
            vec![
                record("smoke", 1, RunStatus::AsExpected, ""),
                record(
                    "default",
                    1,
                    RunStatus::Unexpected,
                    "agreement: seq 4 differs",
                ),
                record(
                    "byz-silent",
                    1,
                    RunStatus::Skipped,
                    "not started (--fail-fast)",
                ),
            ],
            2500,
        );
        let finding = Finding::from_campaign("m".into(), &runs, 900);
        assert_eq!(finding.status, Status::Caught);
        assert_eq!(finding.scenario.as_deref(), Some("default"));
        assert_eq!(finding.seed, Some(1));
        assert_eq!(finding.checks, "agreement: seq 4 differs");
        assert_eq!((finding.runs, finding.campaign_ms), (2, 2500));
    }

    #[test]
    fn a_campaign_that_met_every_expectation_missed_the_mutant() {
        let runs = campaign(vec![record("smoke", 1, RunStatus::AsExpected, "")], 100);
        let finding = Finding::from_campaign("m".into(), &runs, 0);
        assert_eq!(finding.status, Status::Missed);
        assert_eq!(finding.scenario, None);
    }

    #[test]
    fn the_score_counts_hangs_as_detected_and_leaves_unviable_mutants_out() {
        let caught = |ms| Finding {
            campaign_ms: ms,
            ..Finding::from_campaign(
                "c".into(),
                &campaign(vec![record("s", 1, RunStatus::Unexpected, "x")], ms),
                0,
            )
        };
        let missed = Finding::from_campaign("m".into(), &campaign(vec![], 0), 0);
        let findings = vec![
            caught(3000),
            caught(1000),
            caught(2000),
            Finding::hung("h".into(), 9000, 0),
            missed,
            Finding::unviable("u".into(), 0, "error[E0308]"),
        ];
        let score = Score::of(&findings);
        assert_eq!(
            (score.caught, score.hung, score.missed, score.unviable),
            (3, 1, 1, 1)
        );
        assert_eq!(score.score, Some(0.8));
        assert_eq!(score.median_detection_ms, Some(2000));
        assert_eq!(score.worst_detection_ms, Some(3000));
        let table = markdown(&findings, &score);
        let missed_row = table.find("| `m` | missed").expect("missed row");
        let caught_row = table.find("| `c` | caught").expect("caught row");
        assert!(missed_row < caught_row, "{table}");
    }
}
