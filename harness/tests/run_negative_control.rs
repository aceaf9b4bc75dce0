//! Negative control: with f+1 replicas killed and kept down, the harness must see the loss of
//! liveness, report it, and count it as the expected outcome (exit 0).

mod run_support;

use run_support::{assert_run_files, check_outcome, gauntlet_run, replicas_still_running};

#[test]
fn too_many_crashes_reports_the_expected_liveness_violation_and_leaves_no_replica() {
    let out = tempfile::tempdir().expect("tempdir");
    let run = gauntlet_run(out.path(), &["too-many-crashes", "--seed", "11"]);
    assert_eq!(run.code(), Some(0), "stdout:\n{}", run.stdout());
    assert_eq!(run.verdict["outcome"], "violation");
    assert_eq!(run.verdict["expected"], "violation");
    assert_eq!(check_outcome(&run.verdict, "liveness"), "violation");
    // Losing liveness must not look like losing safety.
    assert_eq!(check_outcome(&run.verdict, "agreement"), "pass");
    assert_eq!(check_outcome(&run.verdict, "integrity"), "pass");
    assert_run_files(&run.run_dir, 4);
    assert_eq!(
        run.verdict["reproduce"],
        "gauntlet run too-many-crashes --seed 11"
    );
    assert!(run.stdout().starts_with("seed: 11\n"), "{}", run.stdout());
    assert!(replicas_still_running(&run.run_dir).is_empty());
}

#[test]
fn a_scenario_expecting_a_violation_that_passes_exits_1() {
    let out = tempfile::tempdir().expect("tempdir");
    let scenario = out.path().join("quiet.yaml");
    std::fs::write(
        &scenario,
        "name: quiet\nworkload:\n  kind: register\n  clients: 2\n  keys: 2\n  duration_s: 2\nchecks:\n  settle_ms: 100\nexpect: violation\n",
    )
    .expect("write scenario");
    let path = scenario.to_string_lossy().into_owned();
    let run = gauntlet_run(out.path(), &[&path, "--seed", "5"]);
    assert_eq!(run.code(), Some(1), "stdout:\n{}", run.stdout());
    assert_eq!(run.verdict["outcome"], "pass");
    assert_eq!(run.verdict["as_expected"], false);
    assert!(replicas_still_running(&run.run_dir).is_empty());
}
