//! A fault at a protocol point on real processes: the nemesis tails the replica's events,
//! kills it as soon as it reads its COMMIT for seq 40, records the event and the lag, and the
//! replica writes nothing from the kill until its restart.

mod run_support;

use replica::events::{EventLine, ReplicaEvent};
use run_support::{gauntlet_run, replicas_still_running};

#[test]
fn a_kill_after_a_commit_fires_on_real_processes_with_its_lag_recorded() {
    let out = tempfile::tempdir().expect("tempdir");
    let run = gauntlet_run(
        out.path(),
        &["fault-after-commit", "--seed", "3", "--duration", "4"],
    );
    assert_eq!(run.code(), Some(0), "stdout:\n{}", run.stdout());
    assert!(replicas_still_running(&run.run_dir).is_empty());
    let text = std::fs::read_to_string(run.run_dir.join("nemesis.jsonl")).expect("nemesis.jsonl");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(records.len(), 1, "{text}");
    let record = &records[0];
    let trigger = &record["trigger"];
    assert_eq!(trigger["event"], "replica 2 sent commit view 0 seq 40");
    assert_eq!(record["targets"], serde_json::json!([2]));
    let lag = trigger["lag_ns"].as_u64().expect("lag");
    assert!(lag > 0 && lag < 2_000_000_000, "lag {lag} ns");
    let start = record["start_ns"].as_u64().expect("start");
    let end = record["end_ns"].as_u64().expect("restarted");
    assert_eq!(trigger["event_ns"].as_u64(), Some(start - lag));

    // On the events' wall clock: nothing from replica 2 while it was down.
    let timeline: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.run_dir.join("timeline.json")).expect("timeline"),
    )
    .expect("JSON");
    let origin = timeline["started_at_ns"].as_u64().expect("started_at_ns");
    let events = std::fs::read_to_string(run.run_dir.join("replica-2.events.jsonl"))
        .expect("events of replica 2");
    let lines: Vec<EventLine> = events
        .lines()
        .map(|l| serde_json::from_str(l).expect("event line"))
        .collect();
    let down = lines
        .iter()
        .filter(|l| l.time_ns > origin + start && l.time_ns < origin + end)
        .count();
    assert_eq!(down, 0, "replica 2 wrote events while killed");
    assert!(
        lines
            .iter()
            .any(|l| matches!(l.event, ReplicaEvent::Recovered { .. })),
        "restarted from its log"
    );
}
