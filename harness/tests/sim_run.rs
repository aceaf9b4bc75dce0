//! `--backend sim` end to end through the library: a scenario runs in virtual time, writes
//! the run folder the judges read, and the same seed gives the same bytes.

mod sim_support;

use harness::backend::Backend;
use harness::layout::RunFolder;
use harness::orchestrator::{self, RunOptions};
use harness::scenario;
use sim_support::run_named as run_sim;
use std::path::Path;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// verdict.json without the fields that name where and when it ran.
fn verdict_without_location(dir: &Path) -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_json::from_str(&read(dir, "verdict.json")).expect("verdict.json parses");
    if let Some(object) = value.as_object_mut() {
        object.remove("run_dir");
    }
    value
}

#[test]
fn a_simulated_smoke_run_passes_and_replays_byte_for_byte_from_its_seed() {
    let out = tempfile::tempdir().expect("tempdir");
    let (first, first_dir) = run_sim("smoke", 11, out.path());
    assert!(first.as_expected, "{}", first.summary());
    assert_eq!(first.backend, Backend::Sim);
    assert!(first.counts.operations.ok > 100, "{:?}", first.counts);
    let states = first
        .checks
        .iter()
        .find(|c| c.name == "state-agreement")
        .expect("state agreement judged");
    assert_eq!(states.outcome, harness::check::CheckOutcome::Pass);
    assert!(
        states.details["counts"]["checkpoints"].as_u64() > Some(10),
        "{}",
        states.summary
    );
    let (second, second_dir) = run_sim("smoke", 11, out.path());
    assert_ne!(first_dir, second_dir);
    assert_eq!(second.outcome, first.outcome);
    let mut files = vec![
        "history.jsonl",
        "nemesis.jsonl",
        "proxy.jsonl",
        "timeline.json",
    ];
    let events: Vec<String> = (0..4)
        .map(|i| format!("replica-{i}.events.jsonl"))
        .collect();
    files.extend(events.iter().map(String::as_str));
    for name in files {
        assert!(
            read(&first_dir, name) == read(&second_dir, name),
            "{name} differs between two runs of one seed"
        );
    }
    assert_eq!(
        verdict_without_location(&first_dir),
        verdict_without_location(&second_dir)
    );
}

#[test]
fn a_simulated_run_out_of_budget_ends_inconclusive_with_the_reason_and_skips_liveness() {
    let out = tempfile::tempdir().expect("tempdir");
    let loaded = scenario::load("smoke").expect("built-in scenario loads");
    let options = RunOptions {
        folder: RunFolder::Under(out.path().to_path_buf()),
        duration_override: None,
        keep_data: false,
        backend: Backend::Sim,
    };
    let (plan, dir) = orchestrator::prepare(&loaded, 2, &options).expect("prepared");
    let timeline = harness::sim::drive_within(&plan, &dir, 5_000).expect("files written");
    let stop = timeline.stopped.clone().expect("stopped early");
    assert!(
        stop.describe().contains("out of budget"),
        "{}",
        stop.describe()
    );
    let verdict = harness::verdict::judge(&dir, &plan, &timeline, String::new(), None);
    assert_eq!(verdict.outcome, harness::verdict::Outcome::Inconclusive);
    assert!(!verdict.as_expected);
    let check = |name: &str| {
        verdict
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} check"))
            .clone()
    };
    assert!(check("budget").summary.contains("5000 actions"));
    assert!(check("liveness").summary.contains("out of budget"));
}

#[test]
fn twins_over_f_break_agreement_in_simulation_and_the_run_stops_at_the_first_conflict() {
    let out = tempfile::tempdir().expect("tempdir");
    let (verdict, dir) = run_sim("neg-twins-f1", 1, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let agreement = verdict
        .checks
        .iter()
        .find(|c| c.name == "agreement")
        .expect("agreement judged");
    assert_eq!(
        agreement.outcome,
        harness::check::CheckOutcome::Violation,
        "{}",
        agreement.summary
    );
    let timeline: harness::verdict::Timeline =
        serde_json::from_str(&read(&dir, "timeline.json")).expect("timeline.json parses");
    let stop = timeline
        .stopped
        .clone()
        .expect("stopped at the first violation");
    assert!(stop.describe().contains("agreement"), "{}", stop.describe());
    assert!(
        timeline.workload_end_ns < 6_000_000_000,
        "stopped before the 6 s workload ended: {timeline:?}"
    );
    assert!(
        dir.join("replica-1-twin.events.jsonl").exists(),
        "the twins' second processes wrote their events"
    );
}

#[test]
fn an_oracle_the_scenario_leaves_out_does_not_stop_a_simulated_run() {
    let out = tempfile::tempdir().expect("tempdir");
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/neg-twins-f1.yaml"),
    )
    .expect("built-in scenario file");
    let text = builtin.replace("checks:\n", "checks:\n  oracles: [linearizability]\n");
    assert_ne!(text, builtin, "neg-twins-f1.yaml changed shape");
    let path = out.path().join("twins-without-agreement.yaml");
    std::fs::write(&path, text).expect("write scenario");
    let (_, dir) = run_sim(&path.display().to_string(), 1, out.path());
    let timeline: harness::verdict::Timeline =
        serde_json::from_str(&read(&dir, "timeline.json")).expect("timeline.json parses");
    assert_eq!(timeline.stopped, None);
    assert!(timeline.probe_end_ns > 0, "the run went on to its probe");
}
