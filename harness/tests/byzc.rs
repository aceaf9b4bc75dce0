//! Byzantine clients end to end: a client of the workload runs a behaviour instead of the
//! honest workload; its frames reach the replicas, nothing of it enters the history, the
//! honest clients' service is judged, and `byzantine-clients.json` says what it sent. In
//! simulation (replays, sizes over the cap, the same bytes from one seed) and on real
//! processes (a client that never reads its connections).

mod run_support;

use harness::backend::Backend;
use harness::layout::RunFolder;
use harness::orchestrator::{self, RunOptions};
use harness::scenario::{self, LoadedScenario};
use harness::workload::ByzantineClientsReport;
use run_support::{check_outcome, gauntlet_run, replicas_still_running};
use std::path::{Path, PathBuf};

fn run_sim(loaded: &LoadedScenario, seed: u64, out: &Path) -> (harness::verdict::Verdict, PathBuf) {
    let options = RunOptions {
        folder: RunFolder::Under(out.to_path_buf()),
        duration_override: None,
        keep_data: false,
        backend: Backend::Sim,
    };
    let (plan, dir) = orchestrator::prepare(loaded, seed, &options).expect("prepared");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(orchestrator::execute(plan, dir, &options));
    (outcome.verdict, outcome.dir)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn report(dir: &Path) -> ByzantineClientsReport {
    serde_json::from_str(&read(dir, "byzantine-clients.json")).expect("byzantine-clients.json")
}

fn scenario_text(body: &str) -> LoadedScenario {
    LoadedScenario::from_text(body, Path::new("byzc-test.yaml")).expect("scenario parses")
}

#[test]
fn a_replaying_client_is_answered_from_the_cache_and_leaves_no_trace_in_the_history() {
    let out = tempfile::tempdir().expect("tempdir");
    let loaded = scenario::load("byzc-replay-timestamps")
        .expect("built-in")
        .with_duration(2.0)
        .expect("shorter");
    let (verdict, dir) = run_sim(&loaded, 3, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let report = report(&dir);
    let client = &report.clients[0];
    assert_eq!(client.client.0, 3);
    assert_eq!(client.behaviour, "replay-timestamps");
    for class in [
        "fresh",
        "replay-executed",
        "replay-old",
        "duplicate-timestamp",
        "older-timestamp",
        "out-of-order",
    ] {
        let sent = serde_json::to_value(&client.sent.requests).expect("counts")[class].as_u64();
        assert!(sent > Some(0), "{class}: {:?}", client.sent.requests);
    }
    assert_eq!(report.honest.clients.len(), 3);
    assert!(report.honest.ok > 100, "{:?}", report.honest);
    // Nothing of client 3 in the history; its requests did reach the replicas and executed
    // at most once each (the integrity oracle passed), and some were answered as duplicates.
    let history = read(&dir, "history.jsonl");
    assert!(
        !history.contains("\"process\":3,"),
        "client 3 is not in the history"
    );
    let events = read(&dir, "replica-1.events.jsonl");
    let executed_of_3 = events
        .lines()
        .filter(|l| l.contains("\"event\":\"execute\"") && l.contains("\"client\":3,"))
        .count();
    assert!(executed_of_3 > 50, "{executed_of_3}");
    assert_eq!(check_outcome_of(&verdict, "integrity"), "pass");
    assert_eq!(check_outcome_of(&verdict, "validity"), "pass");

    // The same seed, the same bytes: the client's frames, the history and the replicas'.
    let (_, again) = run_sim(&loaded, 3, out.path());
    for name in [
        "byzantine-clients.json",
        "history.jsonl",
        "replica-0.events.jsonl",
    ] {
        assert!(read(&dir, name) == read(&again, name), "{name} differs");
    }
}

fn check_outcome_of(verdict: &harness::verdict::Verdict, name: &str) -> String {
    verdict
        .checks
        .iter()
        .find(|c| c.name == name)
        .map(|c| format!("{:?}", c.outcome).to_lowercase())
        .unwrap_or_default()
}

#[test]
fn frames_over_the_cap_are_refused_and_counted_by_every_replica() {
    let out = tempfile::tempdir().expect("tempdir");
    let loaded = scenario_text(
        "name: byzc-over-cap\n\
         description: frames a little over the cap\n\
         clients:\n  \
           2: { behaviour: max-size-requests, params: { interval_ms: \"400\", sizes: \"over\" } }\n\
         workload: { kind: kv, clients: 3, keys: 4, duration_s: 2 }\n\
         checks: { liveness_bound_ms: 5000, settle_ms: 200 }\n",
    );
    let (verdict, dir) = run_sim(&loaded, 1, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let sent = &report(&dir).clients[0].sent;
    let rounds = serde_json::to_value(&sent.requests).expect("counts")["over-cap"]
        .as_u64()
        .expect("over-cap frames sent");
    assert_eq!(rounds, 5, "one per 400 ms for 2 s");
    for replica in 0..4 {
        let refused = read(&dir, &format!("replica-{replica}.events.jsonl"))
            .lines()
            .filter(|l| l.contains("\"reason\":\"oversized-frame\""))
            .count() as u64;
        assert_eq!(refused, rounds, "replica {replica} refused each one");
    }
}

/// A real run: a client asks every replica for 48 KiB replies and never reads them (a value
/// under the largest request a batch may carry at the default window, about 64 KiB). Each
/// replica's reply queue for it fills and the replica drops what it cannot send (it counts
/// them), and it goes on serving the honest clients.
#[test]
fn replicas_drop_what_a_client_that_never_reads_cannot_take_and_serve_the_others() {
    let out = tempfile::tempdir().expect("tempdir");
    let path = out.path().join("never-read.yaml");
    std::fs::write(
        &path,
        "name: byzc-never-read-short\n\
         description: 48 KiB replies to a client that never reads\n\
         clients:\n  \
           2: { behaviour: never-read, params: { rate: \"300\", value_bytes: \"49152\" } }\n\
         workload: { kind: kv, clients: 3, keys: 4, duration_s: 3 }\n\
         checks: { liveness_bound_ms: 6000, settle_ms: 200 }\n",
    )
    .expect("scenario written");
    let path = path.display().to_string();
    let run = gauntlet_run(out.path(), &[&path, "--seed", "5"]);
    assert!(
        replicas_still_running(&run.run_dir).is_empty(),
        "replica processes outlived the run"
    );
    assert_eq!(run.code(), Some(0), "{}", run.stdout());
    assert_eq!(check_outcome(&run.verdict, "liveness"), "pass");
    let report = report(&run.run_dir);
    let sent = &report.clients[0].sent;
    assert_eq!(sent.replies, 0, "it never read");
    assert!(sent.total_frames() > 1000, "{sent:?}");
    assert!(report.honest.ok > 100, "{:?}", report.honest);
    for replica in 0..4 {
        let stats: serde_json::Value = serde_json::from_str(&read(
            &run.run_dir,
            &format!("replica-{replica}.stats.json"),
        ))
        .expect("stats");
        assert!(
            stats["outbound_dropped"].as_u64() > Some(0),
            "replica {replica} dropped replies it could not send: {stats}"
        );
    }
}
