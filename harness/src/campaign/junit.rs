//! `junit.xml` for CI test reporters: one test case per run, named `<scenario> seed <S>`; an
//! unexpected outcome is a failure, a run that could not be carried out an error, a run the
//! budget left out a skip. Failures carry the verdict and the reproduce command.

use super::{CampaignSummary, RunStatus};
use crate::report::REPORT_FILE;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub fn junit_xml(summary: &CampaignSummary) -> anyhow::Result<String> {
    let mut report = Report::new(format!("gauntlet {}", summary.name));
    let mut suite = TestSuite::new("gauntlet");
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
                description.push_str(&format!("report: {}\n", dir.join(REPORT_FILE).display()));
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
        case.set_classname(format!("gauntlet.{}", record.scenario_name));
        case.set_time(Duration::from_millis(record.duration_ms));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}
