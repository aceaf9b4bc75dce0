//! A short run of the default mix (generated partitions, link faults, kill/restart), then the
//! stored run re-judged with `gauntlet check`, and the plan reproduced with `gauntlet validate`;
//! the logs it left are plain text.

mod run_support;

use run_support::{assert_run_files, gauntlet_run, replicas_still_running};
use std::process::Command;

#[test]
fn short_default_mix_passes_and_its_stored_run_rechecks_and_replans_identically() {
    let out = tempfile::tempdir().expect("tempdir");
    let run = gauntlet_run(out.path(), &["smoke", "--seed", "7", "--duration", "5"]);
    assert_eq!(run.code(), Some(0), "stdout:\n{}", run.stdout());
    assert_eq!(run.verdict["outcome"], "pass");
    assert_eq!(
        run.verdict["reproduce"],
        "gauntlet run smoke --seed 7 --duration 5"
    );
    assert_run_files(&run.run_dir, 4);
    assert!(replicas_still_running(&run.run_dir).is_empty());
    let history = std::fs::read_to_string(run.run_dir.join("history.jsonl")).expect("history");
    assert!(history.lines().count() > 10, "too few operations recorded");
    // Logs into a pipe (gauntlet's stderr here) or a file (each replica's) carry no colour codes.
    let gauntlet_log = String::from_utf8_lossy(&run.output.stderr);
    assert!(
        !gauntlet_log.contains("\x1b["),
        "colour codes in gauntlet's piped stderr:\n{gauntlet_log}"
    );
    for id in 0..4 {
        let log = std::fs::read_to_string(run.run_dir.join(format!("replica-{id}.stderr")))
            .expect("replica stderr");
        assert!(
            log.contains("listening"),
            "replica {id} logged nothing:\n{log}"
        );
        assert!(
            !log.contains("\x1b["),
            "colour codes in replica-{id}.stderr:\n{log}"
        );
    }

    let check = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .arg("check")
        .arg(&run.run_dir)
        .output()
        .expect("gauntlet check runs");
    assert_eq!(check.status.code(), Some(0));
    let rechecked: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.run_dir.join("verdict.json")).expect("verdict"),
    )
    .expect("json");
    assert_eq!(rechecked["outcome"], run.verdict["outcome"]);
    assert_eq!(rechecked["reproduce"], run.verdict["reproduce"]);

    let validate = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(["validate", "smoke", "--seed", "7", "--duration", "5"])
        .output()
        .expect("gauntlet validate runs");
    assert_eq!(validate.status.code(), Some(0));
    let stored = std::fs::read_to_string(run.run_dir.join("plan.json")).expect("plan");
    assert_eq!(String::from_utf8_lossy(&validate.stdout), stored);
}

#[test]
fn a_scenario_error_names_file_and_line_and_exits_2() {
    let out = tempfile::tempdir().expect("tempdir");
    let scenario = out.path().join("broken.yaml");
    std::fs::write(
        &scenario,
        "name: broken\nworkload:\n  kind: kv\n  duration_s: 2\n  clinets: 3\n",
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("gauntlet runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:5:", scenario.display())) && stderr.contains("clinets"),
        "{stderr}"
    );
}

#[test]
fn list_into_a_closed_pipe_exits_quietly() {
    // `gauntlet list | awk '... exit'` (scripts/sim-determinism.sh) closes the pipe early.
    let mut child = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .arg("list")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gauntlet runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("gauntlet ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
