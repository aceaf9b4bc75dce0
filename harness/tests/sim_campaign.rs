//! The smoke suite on the simulator, several seeds, as CI runs it: every outcome is what its
//! scenario expects (the negative control is caught), and a run replays byte for byte.

use harness::backend::Backend;
use harness::campaign::reproduce::reproduce;
use harness::campaign::{
    CampaignOptions, CampaignSummary, JUNIT_FILE, RunStatus, SUMMARY_FILE, Seeds, run_campaign,
};
use std::path::PathBuf;

#[test]
fn the_smoke_suite_meets_every_expectation_in_simulation_and_a_run_replays_exactly() {
    let out = tempfile::tempdir().expect("tempdir");
    let gauntlet = PathBuf::from(env!("CARGO_BIN_EXE_gauntlet"));
    let options = CampaignOptions {
        suite: Some("smoke".into()),
        seeds: Seeds { first: 1, count: 3 },
        jobs: 2,
        out: out.path().join("results"),
        executable: Some(gauntlet.clone()),
        backend: Backend::Sim,
        progress_bars: Some(false),
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).expect("campaign ran");
    assert_eq!(summary.records.len(), 12, "{:#?}", summary.records);
    for record in &summary.records {
        assert_eq!(
            record.status,
            RunStatus::AsExpected,
            "{} seed {}: {:#?}",
            record.scenario_name,
            record.cell.seed,
            record
        );
    }
    assert_eq!(summary.exit_code(), 0);
    let stored: CampaignSummary = serde_json::from_str(
        &std::fs::read_to_string(summary.dir.join(SUMMARY_FILE)).expect("campaign.json"),
    )
    .expect("campaign.json parses");
    assert_eq!(stored.backend, Backend::Sim);
    let junit = std::fs::read_to_string(summary.dir.join(JUNIT_FILE)).expect("junit.xml");
    assert!(
        junit.contains("<testsuite name=\"gauntlet-sim\""),
        "{junit}"
    );
    let negative = summary
        .records
        .iter()
        .find(|r| r.scenario_name == "too-many-crashes")
        .and_then(|r| r.run_dir.clone())
        .expect("the negative control ran");
    let replay = reproduce(&negative, Some(&gauntlet)).expect("reproduced");
    assert_eq!(replay.exit_code(), 0, "{}", replay.summary());
    assert!(
        replay.summary().contains("replayed exactly"),
        "{}",
        replay.summary()
    );
}

/// `--fail-fast`: the mutation score's judge stops at the first detection, and says why the
/// rest did not run.
#[test]
fn fail_fast_starts_no_run_after_an_unexpected_outcome() {
    let out = tempfile::tempdir().expect("tempdir");
    let builtin = harness::scenario::builtin("too-many-crashes").expect("built in");
    let wrongly_expecting_pass = builtin
        .yaml
        .replace("name: too-many-crashes", "name: crashes-expecting-pass")
        .replace("expect: violation", "expect: pass");
    let path = out.path().join("crashes-expecting-pass.yaml");
    std::fs::write(&path, wrongly_expecting_pass).expect("scenario written");
    let options = CampaignOptions {
        scenarios: vec![path.display().to_string(), "smoke".into()],
        seeds: Seeds { first: 1, count: 2 },
        jobs: 1,
        out: out.path().join("results"),
        executable: Some(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet"))),
        backend: Backend::Sim,
        fail_fast: true,
        progress_bars: Some(false),
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).expect("campaign ran");
    assert_eq!(
        summary.count(RunStatus::Unexpected),
        1,
        "{}",
        summary.table()
    );
    assert_eq!(summary.count(RunStatus::Skipped), 3, "{}", summary.table());
    assert!(
        summary
            .records
            .iter()
            .filter(|r| r.status == RunStatus::Skipped)
            .all(|r| r.summary.contains("--fail-fast")),
        "{:#?}",
        summary.records
    );
    assert_eq!(summary.exit_code(), 1);
}
