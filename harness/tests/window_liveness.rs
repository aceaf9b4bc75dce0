//! `window-liveness` end to end in the simulator: a pause of 2 of 4 replicas stops every
//! operation mid-run. Over f, that stall is no violation; when the nemesis log claims only one
//! replica was paused, re-judging the same run names the stall and nothing else fails.

use harness::backend::Backend;
use harness::check::{CheckOutcome, WINDOW_LIVENESS};
use harness::layout::RunFolder;
use harness::orchestrator::{self, RunOptions};
use harness::scenario;
use harness::verdict::{self, Outcome};

/// Bound 3 s, grace (`max_view_change_ms`) 2 s; r1 and r2 paused from 2 s to 11 s.
const SCENARIO: &str = r#"name: window-stall
description: two of four replicas paused for longer than the liveness bound
cluster:
  timeouts:
    view_change_ms: 500
    client_retry_ms: 300
    max_view_change_ms: 2000
    state_transfer_retry_ms: 300
workload:
  kind: kv
  clients: 2
  keys: 4
  duration_s: 16
  op_timeout_ms: 1500
nemesis:
  allow_over_f: true
  schedule:
    - at_ms: 2000
      action: pause
      target: 1
      duration_ms: 9000
    - at_ms: 2000
      action: pause
      target: 2
      duration_ms: 9000
checks:
  liveness_bound_ms: 3000
  settle_ms: 300
  probe_ops: 1
expect: pass
"#;

#[test]
fn a_stall_is_judged_only_while_at_most_f_replicas_are_faulty() {
    let out = tempfile::tempdir().expect("tempdir");
    let path = out.path().join("window-stall.yaml");
    std::fs::write(&path, SCENARIO).expect("write scenario");
    let loaded = scenario::load(path.to_str().expect("utf-8 path")).expect("scenario loads");
    let options = RunOptions {
        folder: RunFolder::Under(out.path().join("runs")),
        duration_override: None,
        keep_data: false,
        backend: Backend::Sim,
    };
    let (plan, dir) = orchestrator::prepare(&loaded, 5, &options).expect("prepared");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(orchestrator::execute(plan, dir, &options));
    let first = outcome.verdict;
    let failed: Vec<&str> = first
        .checks
        .iter()
        .filter(|c| !matches!(c.outcome, CheckOutcome::Pass | CheckOutcome::Skipped))
        .map(|c| c.name.as_str())
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", first.summary());
    let window = first
        .checks
        .iter()
        .find(|c| c.name == WINDOW_LIVENESS)
        .expect("window liveness judged beside liveness");
    assert_eq!(window.outcome, CheckOutcome::Pass, "{}", window.summary);

    // The same files, but the log forgets r2's pause: r1 alone (at most f) was paused.
    let nemesis = outcome.dir.join("nemesis.jsonl");
    let text = std::fs::read_to_string(&nemesis).expect("nemesis.jsonl");
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.contains(r#""targets":[2]"#))
        .collect();
    assert_eq!(kept.len(), 1, "{text}");
    std::fs::write(&nemesis, kept.join("\n") + "\n").expect("rewrite nemesis.jsonl");

    let second = verdict::recheck(&outcome.dir).expect("re-judged");
    assert_eq!(second.outcome, Outcome::Violation, "{}", second.summary());
    for check in &second.checks {
        let expected = match check.name.as_str() {
            WINDOW_LIVENESS => CheckOutcome::Violation,
            _ => {
                first
                    .checks
                    .iter()
                    .find(|c| c.name == check.name)
                    .expect("same checks")
                    .outcome
            }
        };
        assert_eq!(check.outcome, expected, "{}: {}", check.name, check.summary);
    }
    let window = second
        .checks
        .iter()
        .find(|c| c.name == WINDOW_LIVENESS)
        .expect("window liveness");
    let stalls = window.details["stalls"].as_array().expect("stalls");
    assert_eq!(stalls.len(), 1, "{}", window.details);
    let stall = &stalls[0];
    let start_ns = 2_000_000_000 + first_workload_start(&outcome.dir);
    // The window opens when r1's pause starts and closes at its resume (11 s); the stall is
    // judged after the 2 s grace and lasts to the window's end.
    assert_eq!(stall["window_from_ns"].as_u64(), Some(start_ns));
    assert_eq!(stall["from_ns"].as_u64(), Some(start_ns + 2_000_000_000));
    let to_ns = stall["to_ns"].as_u64().expect("to_ns");
    assert_eq!(to_ns, start_ns + 9_000_000_000, "{stall}");
    assert!(
        stall["invoked"].as_u64().unwrap_or(0) + stall["waiting_at_start"].as_u64().unwrap_or(0)
            > 0
    );
    assert_eq!(stall["faulty"], serde_json::json!([1]));
    assert!(window.summary.contains("stall"), "{}", window.summary);

    // The report lists the window.
    harness::report::write_report(&outcome.dir).expect("report");
    let report = std::fs::read_to_string(outcome.dir.join("report.html")).expect("report.html");
    assert!(
        report.contains("id=\"window-liveness\""),
        "no window section"
    );
}

fn first_workload_start(dir: &std::path::Path) -> u64 {
    let timeline: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("timeline.json")).expect("timeline"),
    )
    .expect("timeline.json parses");
    timeline["workload_start_ns"]
        .as_u64()
        .expect("workload_start_ns")
}
