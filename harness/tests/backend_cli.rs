//! `--backend` on the command line: what the simulator cannot run is refused before anything
//! is planned or started, naming the file, line and field, and a simulated campaign skips it
//! with the reason instead of failing. None of this needs the simulated run itself.

use harness::backend::Backend;
use harness::campaign::{
    CampaignOptions, CampaignSummary, JUNIT_FILE, RunStatus, SUMMARY_FILE, Seeds, run_campaign,
};
use std::path::PathBuf;
use std::process::{Command, Output};

fn gauntlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .output()
        .expect("gauntlet starts")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const TWIN_REFUSAL: &str = "<built-in byz-twin>:4: field `replicas.0.build`: \
                            the sim backend does not model twins yet; run it with --backend real";

#[test]
fn validate_refuses_twins_on_the_sim_backend_only() {
    let refused = gauntlet(&["validate", "byz-twin", "--backend", "sim"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains(TWIN_REFUSAL),
        "{}",
        stderr(&refused)
    );
    for args in [
        &["validate", "byz-twin"][..],
        &["validate", "smoke", "--backend", "sim"][..],
    ] {
        let accepted = gauntlet(args);
        assert_eq!(
            accepted.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&accepted)
        );
    }
}

#[test]
fn a_refused_sim_run_leaves_no_run_folder() {
    let out = tempfile::tempdir().expect("tempdir");
    let results = out.path().join("results");
    let refused = gauntlet(&[
        "run",
        "byz-twin",
        "--backend",
        "sim",
        "--seed",
        "1",
        "--out",
        &results.display().to_string(),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains(TWIN_REFUSAL),
        "{}",
        stderr(&refused)
    );
    assert!(
        !results.exists(),
        "refused before planning: nothing written"
    );
}

#[test]
fn a_sim_campaign_skips_twin_scenarios_with_the_reason() {
    let out = tempfile::tempdir().expect("tempdir");
    let options = CampaignOptions {
        scenarios: vec!["byz-twin".into(), "neg-twins-f1".into()],
        seeds: Seeds { first: 1, count: 2 },
        jobs: 2,
        out: out.path().join("results"),
        executable: Some(PathBuf::from(env!("CARGO_BIN_EXE_gauntlet"))),
        backend: Backend::Sim,
        progress_bars: Some(false),
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).expect("campaign ran");
    assert_eq!(summary.records.len(), 4, "every cell is recorded");
    assert!(
        summary
            .records
            .iter()
            .all(|r| r.status == RunStatus::Skipped
                && r.run_dir.is_none()
                && r.summary.contains("does not model twins")),
        "{:#?}",
        summary.records
    );
    assert_eq!(summary.exit_code(), 0, "a skip is not a failure");

    let stored: CampaignSummary = serde_json::from_str(
        &std::fs::read_to_string(summary.dir.join(SUMMARY_FILE)).expect("campaign.json"),
    )
    .expect("campaign.json parses");
    assert_eq!(stored.backend, Backend::Sim);
    let junit = std::fs::read_to_string(summary.dir.join(JUNIT_FILE)).expect("junit");
    assert!(
        junit.contains("<testsuite name=\"gauntlet-sim\""),
        "{junit}"
    );
    assert_eq!(junit.matches("<skipped").count(), 4, "{junit}");
    assert!(summary.table().contains("4 runs on sim (virtual time)"));
}
