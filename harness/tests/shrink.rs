//! `gauntlet shrink` through the library: a negative control with noise added fails in
//! simulation, shrinks to a smaller scenario that loads and still fails the same oracle when
//! run again, the same folder shrinks to the same bytes twice, and runs that did not fail
//! are refused with a message that says why.

use harness::backend::Backend;
use harness::layout::RunFolder;
use harness::orchestrator::{self, RunOptions};
use harness::scenario::{self, LoadedScenario};
use harness::shrink::{Metrics, ShrinkError, ShrinkOptions, Summary, shrink};
use harness::verdict::Verdict;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SEED: u64 = 3;

/// `neg-twins-f1` (agreement must fail) with a generated nemesis the failure does not need.
fn noisy_twins() -> String {
    let base = scenario::builtin("neg-twins-f1").expect("built-in").yaml;
    format!(
        "{base}\nnemesis:\n  generate: {{ kinds: [delay, loss, pause], interval_ms: 800, intensity: 0.4, start_ms: 200 }}\n"
    )
}

fn run_sim(loaded: &LoadedScenario, folder: &Path) -> Verdict {
    let options = RunOptions {
        folder: RunFolder::Exactly(folder.to_path_buf()),
        duration_override: None,
        keep_data: false,
        backend: Backend::Sim,
    };
    let (plan, dir) = orchestrator::prepare(loaded, SEED, &options).expect("prepared");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(orchestrator::execute(plan, dir, &options))
        .verdict
}

fn violated(verdict: &Verdict, oracle: &str) -> bool {
    verdict
        .checks
        .iter()
        .any(|c| c.name == oracle && c.outcome == harness::check::CheckOutcome::Violation)
}

fn options(out: PathBuf) -> ShrinkOptions {
    ShrinkOptions {
        budget_runs: 12,
        budget: Duration::from_secs(3600),
        out: Some(out),
        oracle: None,
    }
}

#[test]
fn a_noisy_negative_control_shrinks_to_a_smaller_scenario_that_fails_the_same_oracle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source = tmp.path().join("noisy-twins.yaml");
    std::fs::write(&source, noisy_twins()).expect("scenario written");
    let loaded = scenario::load(&source.display().to_string()).expect("noisy scenario loads");
    let original_dir = tmp.path().join("original");
    let original = run_sim(&loaded, &original_dir);
    assert!(violated(&original, "agreement"), "{}", original.summary());

    let mut log = Vec::new();
    let first = shrink(
        &original_dir,
        &options(tmp.path().join("shrink-1")),
        &mut log,
    )
    .unwrap_or_else(|e| panic!("shrink failed: {e}"));
    let printed = String::from_utf8_lossy(&log).into_owned();
    let summary = &first.summary;
    assert_eq!(summary.oracle, "agreement");
    assert!(summary.confirmed, "{printed}");
    assert!(summary.attempts <= 12, "{printed}");
    assert!(!summary.steps.is_empty(), "{printed}");

    // The shrunk scenario is a scenario file like any other.
    let shrunk = scenario::load(&first.shrunk_yaml.display().to_string()).expect("shrunk loads");
    let (a, b): (&Metrics, &Metrics) = (&summary.original, &summary.last);
    assert_eq!(
        *b,
        Metrics::of(&shrunk.scenario, SEED, b.ops),
        "shrink.json describes shrunk.yaml"
    );
    assert!(b.nemesis_actions <= a.nemesis_actions, "{printed}");
    assert!(b.clients <= a.clients, "{printed}");
    assert!(b.duration_ms <= a.duration_ms, "{printed}");
    assert!(
        b.nemesis_actions < a.nemesis_actions
            || b.clients < a.clients
            || b.duration_ms < a.duration_ms,
        "nothing got smaller:\n{printed}"
    );
    assert!(a.nemesis_actions > 0, "the noise was planned");
    assert_eq!(
        b.nemesis_actions, 0,
        "twins disagree without any fault:\n{printed}"
    );
    assert!(printed.contains("shrunk: "), "{printed}");
    assert!(printed.contains("step 1: "), "{printed}");

    // Its run folder and report, and shrink.json.
    assert!(first.run_dir.join("verdict.json").is_file());
    assert!(first.run_dir.join("report.html").is_file());
    let stored: Summary = serde_json::from_str(
        &std::fs::read_to_string(first.dir.join("shrink.json")).expect("shrink.json"),
    )
    .expect("shrink.json parses");
    assert_eq!(stored.steps, summary.steps);

    // Run again from the file, with the same seed: the same oracle fails.
    let again = run_sim(&shrunk, &tmp.path().join("again"));
    assert!(violated(&again, "agreement"), "{}", again.summary());

    // Shrinking the same folder again gives the same bytes.
    let second = shrink(
        &original_dir,
        &options(tmp.path().join("shrink-2")),
        &mut std::io::sink(),
    )
    .unwrap_or_else(|e| panic!("second shrink failed: {e}"));
    assert_eq!(
        std::fs::read_to_string(&first.shrunk_yaml).expect("first"),
        std::fs::read_to_string(&second.shrunk_yaml).expect("second"),
    );
}

#[test]
fn a_passing_run_and_folders_that_are_not_runs_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = "name: tiny-pass\nworkload: { kind: kv, clients: 1, keys: 2, duration_s: 1 }\n\
                checks: { liveness_bound_ms: 3000, settle_ms: 100, probe_ops: 1 }\n";
    let loaded = LoadedScenario::from_text(text, Path::new("tiny-pass.yaml")).expect("parses");
    let dir = tmp.path().join("passed");
    let verdict = run_sim(&loaded, &dir);
    assert!(verdict.as_expected, "{}", verdict.summary());
    let out = tmp.path().join("shrink");
    let error = shrink(&dir, &options(out.clone()), &mut std::io::sink())
        .expect_err("a passing run has nothing to shrink");
    assert!(matches!(error, ShrinkError::PassedAsExpected(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains("nothing to shrink: run passed as expected"),
        "{error}"
    );
    assert!(!out.exists(), "a refused shrink writes nothing");

    let missing = tmp.path().join("no-such-run");
    let error = shrink(&missing, &options(out.clone()), &mut std::io::sink()).expect_err("missing");
    assert!(error.to_string().contains("no such folder"), "{error}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let error = shrink(&empty, &options(out), &mut std::io::sink()).expect_err("not a run");
    assert!(error.to_string().contains("not a run folder"), "{error}");
}
