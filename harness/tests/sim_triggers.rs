//! Faults at protocol points in simulation: the fault starts at the virtual instant of the
//! event that triggers it, `nemesis.jsonl` says which event and when, and the replica sends
//! nothing between the kill and its restart.

mod sim_support;

use harness::scenario;
use harness::sim::SIM_EPOCH_NS;
use replica::events::{EventLine, ReplicaEvent};
use replica::message::MessageKind;
use replica::{ReplicaId, Seq};
use std::path::{Path, PathBuf};

fn run_sim(
    name: &str,
    seed: u64,
    duration_s: f64,
    out: &Path,
) -> (harness::verdict::Verdict, PathBuf) {
    let loaded = scenario::load(name)
        .expect("built-in scenario loads")
        .with_duration(duration_s)
        .expect("valid duration");
    sim_support::run_loaded_with(&loaded, seed, out, Some(duration_s))
}

fn nemesis_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("nemesis.jsonl"))
        .expect("nemesis.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn events(dir: &Path, replica: u32) -> Vec<EventLine> {
    let path = dir.join(format!("replica-{replica}.events.jsonl"));
    std::fs::read_to_string(&path)
        .expect("events file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event line"))
        .collect()
}

#[test]
fn a_kill_after_a_commit_fires_at_that_event_and_the_replica_is_silent_until_restarted() {
    let out = tempfile::tempdir().expect("tempdir");
    let (verdict, dir) = run_sim("fault-after-commit", 3, 3.0, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let records = nemesis_lines(&dir);
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    let trigger = &record["trigger"];
    assert_eq!(trigger["event"], "replica 2 sent commit view 0 seq 40");
    assert_eq!(record["targets"], serde_json::json!([2]));
    assert_eq!(trigger["lag_ns"], 0, "exact in simulation");
    let start = record["start_ns"].as_u64().expect("start");
    let end = record["end_ns"].as_u64().expect("restarted");
    assert_eq!(trigger["event_ns"].as_u64(), Some(start));
    assert_eq!(end - start, 2_000_000_000, "after_ms: 2000");

    let lines = events(&dir, 2);
    let at = lines
        .iter()
        .position(|l| {
            matches!(
                l.event,
                ReplicaEvent::Sent {
                    kind: MessageKind::Commit,
                    seq: Seq(40),
                    ..
                }
            )
        })
        .expect("replica 2's COMMIT for seq 40");
    assert_eq!(
        lines[at].time_ns,
        SIM_EPOCH_NS + start,
        "the fault is at the event's instant"
    );
    assert_eq!(lines[at].replica, ReplicaId(2));
    // Nothing else from that incarnation: the next line is the restart, at the fault's end.
    let next = &lines[at + 1];
    assert!(
        matches!(next.event, ReplicaEvent::Recovered { .. }),
        "{next:?}"
    );
    assert_eq!(next.time_ns, SIM_EPOCH_NS + end);
}

#[test]
fn two_faulty_primaries_in_a_row_fire_in_order_and_the_cluster_reaches_view_2() {
    let out = tempfile::tempdir().expect("tempdir");
    let (verdict, dir) = run_sim("two-faulty-primaries", 1, 3.0, out.path());
    assert!(verdict.as_expected, "{}", verdict.summary());
    let records = nemesis_lines(&dir);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        records[0]["trigger"]["event"],
        "replica 0 sent pre-prepare view 0 seq 30"
    );
    assert_eq!(records[0]["targets"], serde_json::json!([0]));
    assert_eq!(
        records[1]["trigger"]["event"],
        "replica 1 sent new-view view 1"
    );
    assert_eq!(records[1]["targets"], serde_json::json!([1]));
    // The NEW-VIEW for view 1 was replica 1's last word before the kill.
    let start = records[1]["start_ns"].as_u64().expect("start");
    let lines = events(&dir, 1);
    let silent = lines
        .iter()
        .filter(|l| l.time_ns > SIM_EPOCH_NS + start)
        .take_while(|l| !matches!(l.event, ReplicaEvent::Recovered { .. }))
        .count();
    assert_eq!(
        silent, 0,
        "replica 1 reported nothing between the kill and its restart"
    );
    // Replica 1 faulty in view 1 too: the others moved on to view 2.
    let reached_view_2 = events(&dir, 3)
        .iter()
        .any(|l| matches!(l.event, ReplicaEvent::ViewChangeCompleted { view, .. } if view.0 == 2));
    assert!(reached_view_2);
}
