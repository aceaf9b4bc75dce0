//! Campaigns of real `gauntlet run` processes: the index, the JUnit file, the `latest` link
//! and the exit code.

mod run_support;

use harness::campaign::{
    CampaignOptions, INDEX_FILE, JUNIT_FILE, LATEST_LINK, RunStatus, Seeds, run_campaign,
};
use harness::layout::RunDir;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn gauntlet() -> PathBuf {
    run_support::ensure_replica_binary();
    PathBuf::from(env!("CARGO_BIN_EXE_gauntlet"))
}

/// The built-in smoke scenario, renamed and made to expect a violation it will not produce.
fn surprise_scenario(dir: &Path) -> PathBuf {
    let smoke =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.yaml"))
            .expect("smoke scenario");
    let text = smoke
        .replace("name: smoke", "name: smoke-expects-violation")
        .replace("expect: pass", "expect: violation");
    assert!(
        text.contains("expect: violation"),
        "smoke.yaml changed shape"
    );
    let path = dir.join("smoke-expects-violation.yaml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

#[test]
fn campaign_writes_index_junit_and_latest_and_exits_one_on_an_unexpected_outcome() {
    let out = tempfile::tempdir().expect("tempdir");
    let surprise = surprise_scenario(out.path());
    let options = CampaignOptions {
        scenarios: vec!["smoke".into(), surprise.display().to_string()],
        seeds: Seeds { first: 5, count: 1 },
        jobs: 2,
        out: out.path().join("results"),
        executable: Some(gauntlet()),
        run_args: vec!["--duration".into(), "3".into()],
        progress_bars: Some(false),
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).expect("campaign ran");
    assert_eq!(summary.records.len(), 2);
    let statuses: Vec<RunStatus> = summary.records.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![RunStatus::AsExpected, RunStatus::Unexpected],
        "{:#?}",
        summary.records
    );
    assert_eq!(summary.exit_code(), 1);
    for record in &summary.records {
        let dir = record.run_dir.as_ref().expect("run folder");
        assert!(
            dir.starts_with(&summary.dir),
            "runs live in the campaign folder"
        );
        assert!(dir.join("report.html").is_file(), "{dir:?} has a report");
    }

    let index = std::fs::read_to_string(summary.dir.join(INDEX_FILE)).expect("index");
    let surprise_row = index
        .find("<td>smoke-expects-violation</td>")
        .expect("surprise row");
    let smoke_row = index.find("<td>smoke</td>").expect("smoke row");
    assert!(surprise_row < smoke_row, "failures come first");
    assert!(index.contains("<div><b>2</b>runs</div>"));
    assert!(index.contains("<div><b>1</b>unexpected</div>"));
    assert!(index.contains("/report.html\">report</a>"));

    let junit = std::fs::read_to_string(summary.dir.join(JUNIT_FILE)).expect("junit");
    assert!(junit.contains("tests=\"2\""), "{junit}");
    assert!(junit.contains("failures=\"1\""), "{junit}");
    assert!(junit.contains("<testcase name=\"smoke seed 5\""));
    assert!(junit.contains("reproduce: gauntlet run"), "{junit}");

    let latest = out.path().join("results").join(LATEST_LINK);
    assert_eq!(
        std::fs::read_link(&latest).expect("latest link"),
        PathBuf::from(&summary.name)
    );
}

#[test]
fn budget_spent_before_the_first_run_skips_every_cell() {
    let out = tempfile::tempdir().expect("tempdir");
    let options = CampaignOptions {
        scenarios: vec!["smoke".into(), "default".into()],
        seeds: Seeds { first: 1, count: 2 },
        budget: Some(Duration::ZERO),
        jobs: 2,
        out: out.path().to_path_buf(),
        // Never started: a run would fail with this executable and count as an error.
        executable: Some(out.path().join("no-such-gauntlet")),
        progress_bars: Some(false),
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).expect("campaign ran");
    assert_eq!(summary.records.len(), 4);
    assert!(
        summary
            .records
            .iter()
            .all(|r| r.status == RunStatus::Skipped)
    );
    assert_eq!(summary.exit_code(), 0);
    let junit = std::fs::read_to_string(summary.dir.join(JUNIT_FILE)).expect("junit");
    assert_eq!(junit.matches("<skipped").count(), 4, "{junit}");
}

#[test]
fn a_run_that_cannot_be_carried_out_makes_the_campaign_exit_two() {
    let out = tempfile::tempdir().expect("tempdir");
    let options = CampaignOptions {
        scenarios: vec!["no-such-scenario".into()],
        out: out.path().to_path_buf(),
        executable: Some(gauntlet()),
        progress_bars: Some(false),
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).expect("campaign ran");
    assert_eq!(summary.records[0].status, RunStatus::Error);
    assert!(
        summary.records[0].summary.contains("no-such-scenario"),
        "the error is kept: {:?}",
        summary.records[0].summary
    );
    assert_eq!(summary.records[0].run_dir, None, "nothing ran, no folder");
    assert_eq!(summary.exit_code(), 2);
    let junit = std::fs::read_to_string(summary.dir.join(JUNIT_FILE)).expect("junit");
    assert!(junit.contains("<error"), "{junit}");
}

/// A stand-in for `gauntlet run` that announces a decoy folder on stdout, writes a passing
/// verdict into the folder it is given with `--run-dir`, and logs its arguments.
fn stand_in_gauntlet(dir: &Path, decoy: &Path) -> (PathBuf, PathBuf) {
    let verdict = dir.join("verdict-to-copy.json");
    let passed = serde_json::json!({
        "scenario": "smoke", "seed": 5, "outcome": "pass", "expected": "pass",
        "as_expected": true, "checks": [],
        "counts": { "operations": { "invoked": 0, "ok": 0, "fail": 0, "info": 0 },
                    "replicas": {}, "nemesis_actions": 0 },
        "reproduce": "gauntlet run smoke --seed 5", "run_dir": "elsewhere",
    });
    std::fs::write(&verdict, passed.to_string()).expect("write verdict");
    let args = dir.join("args.txt");
    let script = dir.join("gauntlet-stand-in");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
printf '%s\n' "$@" > '{args}'
echo 'run folder: {decoy}'
while [ $# -gt 0 ]; do
  if [ "$1" = --run-dir ]; then cp '{verdict}' "$2/verdict.json"; fi
  shift
done
"#,
            args = args.display(),
            decoy = decoy.display(),
            verdict = verdict.display(),
        ),
    )
    .expect("write script");
    let mut permissions = std::fs::metadata(&script).expect("script").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&script, permissions).expect("chmod");
    (script, args)
}

#[test]
fn each_run_goes_into_the_folder_the_campaign_chose_not_one_it_announces() {
    let out = tempfile::tempdir().expect("tempdir");
    let decoy = out.path().join("decoy");
    std::fs::create_dir(&decoy).expect("mkdir decoy");
    let (script, args) = stand_in_gauntlet(out.path(), &decoy);
    let options = CampaignOptions {
        scenarios: vec!["smoke".into()],
        seeds: Seeds { first: 5, count: 1 },
        out: out.path().join("results"),
        executable: Some(script),
        progress_bars: Some(false),
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).expect("campaign ran");
    let record = &summary.records[0];
    assert_eq!(record.status, RunStatus::AsExpected, "{record:#?}");
    let dir = record.run_dir.clone().expect("a run folder");
    assert_eq!(
        dir.parent(),
        Some(summary.dir.join("smoke").as_path()),
        "<campaign>/<scenario>/<seed>-<time>"
    );
    let name = dir
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("5-20") && name.len() == "5-".len() + 16,
        "{name}"
    );
    let passed: Vec<String> = std::fs::read_to_string(&args)
        .expect("args logged")
        .lines()
        .map(str::to_string)
        .collect();
    let at = passed
        .iter()
        .position(|a| a == "--run-dir")
        .expect("--run-dir passed");
    assert_eq!(Path::new(&passed[at + 1]), dir);
    assert!(!passed.iter().any(|a| a == "--out"), "{passed:?}");
    let run = RunDir::new(dir);
    assert!(run.verdict().is_file() && run.report().is_file());
    assert_eq!(
        std::fs::read_dir(&decoy).expect("decoy").count(),
        0,
        "the announced folder is never read or written"
    );
}
