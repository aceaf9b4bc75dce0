//! `junit.xml` for CI test reporters: one test case per run, named `<scenario> seed <S>`; an
//! unexpected outcome is a failure, a run that could not be carried out an error, a run the
//! budget (or the backend) left out a skip. Failures carry the verdict and the reproduce
//! command. A simulated campaign is the suite `gauntlet-sim`, so CI can keep its results apart
//! from the real ones; every suite also has a `backend` property.

use super::{CampaignSummary, RunStatus};
use crate::backend::Backend;
use crate::layout::RunDir;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub fn junit_xml(summary: &CampaignSummary) -> anyhow::Result<String> {
    let mut report = Report::new(format!("gauntlet {}", summary.name));
    let suite_name = suite_name(summary.backend);
    let mut suite = TestSuite::new(suite_name.clone());
    suite.add_property(Property::new("backend", summary.backend.name()));
    suite.set_time(Duration::from_millis(summary.elapsed_ms));
    for record in &summary.records {
        let mut status = match record.status {
            RunStatus::AsExpected => TestCaseStatus::success(),
            RunStatus::Unexpected => TestCaseStatus::non_success(NonSuccessKind::Failure),
            RunStatus::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
            RunStatus::Skipped => TestCaseStatus::skipped(),
        };
        if record.status != RunStatus::AsExpected {
            let first_line = record.summary.lines().next().unwrap_or("").to_string();
            status.set_message(match record.status {
                RunStatus::Unexpected => format!(
                    "outcome {} but expected {}: {first_line}",
                    record.outcome, record.expected
                ),
                _ => first_line,
            });
            let mut description =
                format!("{}\n\nreproduce: {}\n", record.summary, record.reproduce);
            if let Some(dir) = &record.run_dir {
                let report = RunDir::new(dir.clone()).report();
                description.push_str(&format!("report: {}\n", report.display()));
            }
            if !record.log_tail.is_empty() {
                description.push_str(&format!("\nlast lines of stderr:\n{}\n", record.log_tail));
            }
            status.set_description(description);
        }
        let mut case = TestCase::new(
            format!("{} seed {}", record.scenario_name, record.cell.seed),
            status,
        );
        case.set_classname(format!("{suite_name}.{}", record.scenario_name));
        case.set_time(Duration::from_millis(record.duration_ms));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}

/// `gauntlet` for real runs, as before the simulator; `gauntlet-sim` for simulated ones.
fn suite_name(backend: Backend) -> String {
    match backend {
        Backend::Real => "gauntlet".into(),
        other => format!("gauntlet-{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{Cell, RunRecord};

    #[test]
    fn a_sim_campaign_is_its_own_suite_with_a_backend_property() {
        let summary = CampaignSummary::sample(
            Backend::Sim,
            vec![RunRecord {
                cell: Cell {
                    index: 0,
                    scenario: "byz-twin".into(),
                    seed: 1,
                },
                scenario_name: "byz-twin".into(),
                status: RunStatus::Skipped,
                outcome: String::new(),
                expected: String::new(),
                duration_ms: 0,
                run_dir: None,
                summary: "not started: the budget was spent".into(),
                reproduce: String::new(),
                log_tail: String::new(),
            }],
        );
        let xml = junit_xml(&summary).expect("xml");
        assert!(xml.contains("<testsuite name=\"gauntlet-sim\""), "{xml}");
        assert!(
            xml.contains("<property name=\"backend\" value=\"sim\""),
            "{xml}"
        );
        assert!(xml.contains("classname=\"gauntlet-sim.byz-twin\""), "{xml}");
        assert!(xml.contains("the budget was spent"), "{xml}");
    }
}
