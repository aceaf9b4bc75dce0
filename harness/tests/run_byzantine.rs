//! Byzantine scenarios on real processes: with f+1 colluding replicas the oracles must see the
//! violation (a negative control that reports `pass` fails here), and with one faulty replica
//! out of four the run must pass and show how the honest replicas repelled it.

mod run_support;

use run_support::{check_outcome, gauntlet_run, replicas_still_running};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, Once};

static BUILD_BYZANTINE: Once = Once::new();
/// One cluster at a time: the negative controls rely on timing (which replies arrive first),
/// and this machine has two cores shared with other builds.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The `byzantine-replica` binary is another crate's: make sure it sits next to `gauntlet`.
fn ensure_byzantine_binary() {
    BUILD_BYZANTINE.call_once(|| {
        let gauntlet = PathBuf::from(env!("CARGO_BIN_EXE_gauntlet"));
        if gauntlet.with_file_name("byzantine-replica").is_file() {
            return;
        }
        let mut command = Command::new(env!("CARGO"));
        command.args(["build", "-p", "byzantine", "--bin", "byzantine-replica"]);
        if gauntlet
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|p| p == "release")
        {
            command.arg("--release");
        }
        let status = command.status().expect("cargo runs");
        assert!(
            status.success(),
            "building the byzantine-replica binary failed"
        );
    });
}

fn run(args: &[&str]) -> (run_support::RunResult, tempfile::TempDir) {
    ensure_byzantine_binary();
    let out = tempfile::tempdir().expect("tempdir");
    let result = gauntlet_run(out.path(), args);
    (result, out)
}

fn faulty_ids(verdict: &serde_json::Value) -> Vec<(u64, String)> {
    verdict["counts"]["faulty"]
        .as_array()
        .map(|faulty| {
            faulty
                .iter()
                .map(|f| {
                    (
                        f["replica"].as_u64().unwrap_or(u64::MAX),
                        f["build"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn colluding_twins_on_two_of_four_replicas_are_caught_by_the_agreement_oracle() {
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (run, _out) = run(&["neg-twins-f1", "--seed", "3"]);
    assert_eq!(run.code(), Some(0), "stdout:\n{}", run.stdout());
    assert_eq!(run.verdict["outcome"], "violation");
    assert_eq!(check_outcome(&run.verdict, "agreement"), "violation");
    assert_eq!(
        faulty_ids(&run.verdict),
        vec![(1, "twin".to_string()), (2, "twin".to_string())]
    );
    // Both processes of each twin ran and left their files.
    for twin in [1, 2] {
        for name in [
            format!("replica-{twin}.events.jsonl"),
            format!("replica-{twin}-twin.events.jsonl"),
            format!("replica-{twin}-twin.stderr"),
        ] {
            assert!(run.run_dir.join(&name).is_file(), "{name} missing");
        }
    }
    // Only the honest replicas are judged.
    let defended: Vec<&String> = run.verdict["counts"]["defence"]
        .as_object()
        .map(|d| d.keys().collect())
        .unwrap_or_default();
    assert_eq!(defended, vec!["0", "3"]);
    assert!(replicas_still_running(&run.run_dir).is_empty());
}

#[test]
fn two_replicas_telling_the_same_lie_are_caught_by_the_linearizability_oracle() {
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (run, _out) = run(&["neg-wrong-reply-f1", "--seed", "3"]);
    assert_eq!(run.code(), Some(0), "stdout:\n{}", run.stdout());
    assert_eq!(run.verdict["outcome"], "violation");
    assert_eq!(check_outcome(&run.verdict, "linearizability"), "violation");
    // The lies were told to clients only: the replicas themselves still agree.
    assert_eq!(check_outcome(&run.verdict, "agreement"), "pass");
    assert!(replicas_still_running(&run.run_dir).is_empty());
}

fn assert_passes_with_one_faulty(args: &[&str], faulty: u64, build: &str) {
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (run, _out) = run(args);
    assert_eq!(run.code(), Some(0), "stdout:\n{}", run.stdout());
    assert_eq!(run.verdict["outcome"], "pass");
    assert_eq!(faulty_ids(&run.verdict), vec![(faulty, build.to_string())]);
    let defence = run.verdict["counts"]["defence"]
        .as_object()
        .expect("per honest replica defence");
    assert_eq!(defence.len(), 3, "{defence:?}");
    assert!(!defence.contains_key(&faulty.to_string()));
    for (replica, seen) in defence {
        assert!(seen["rejected"].is_object(), "r{replica}: {seen}");
        assert!(
            seen["view_changes_completed"].is_u64(),
            "r{replica}: {seen}"
        );
    }
    assert!(
        run.stdout().contains(&format!("faulty: r{faulty} {build}")),
        "{}",
        run.stdout()
    );
    assert!(replicas_still_running(&run.run_dir).is_empty());
}

#[test]
fn an_equivocating_primary_among_four_cannot_break_safety_or_liveness() {
    assert_passes_with_one_faulty(
        &["byz-equivocate", "--seed", "2", "--duration", "5"],
        0,
        "byzantine",
    );
}

#[test]
fn a_primary_running_as_twins_among_four_cannot_break_safety_or_liveness() {
    assert_passes_with_one_faulty(&["byz-twin", "--seed", "2", "--duration", "5"], 0, "twin");
}

#[test]
fn one_replica_lying_to_clients_is_outvoted_by_matching_honest_replies() {
    assert_passes_with_one_faulty(
        &["byz-wrong-reply", "--seed", "2", "--duration", "5"],
        1,
        "byzantine",
    );
}
