//! Agreement, validity, integrity and liveness on hand-made replica logs and histories.

use harness::check::{
    CheckOutcome, agreement, integrity, liveness, read_events, read_history, validity,
};
use replica::events::{EventLine, ReplicaEvent};
use replica::kv::{OpResult, Operation};
use replica::message::RequestId;
use replica::{ClientId, ReplicaId, Seq, Timestamp, View};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;
use workloads::history::HistoryEvent;

fn request(client: u32, timestamp: u64) -> RequestId {
    RequestId {
        client: ClientId(client),
        timestamp: Timestamp(timestamp),
    }
}

fn commit(replica: u32, seq: u64, digest: &str, requests: Vec<RequestId>) -> EventLine {
    EventLine {
        time_ns: seq,
        replica: ReplicaId(replica),
        event: ReplicaEvent::Commit {
            view: View(0),
            seq: Seq(seq),
            digest: digest.into(),
            requests,
        },
    }
}

fn execute(replica: u32, seq: u64, request: RequestId, duplicate: bool) -> EventLine {
    EventLine {
        time_ns: seq,
        replica: ReplicaId(replica),
        event: ReplicaEvent::Execute {
            seq: Seq(seq),
            request,
            op: "put".into(),
            result: "ok".into(),
            duplicate,
        },
    }
}

fn recovered(replica: u32) -> EventLine {
    EventLine {
        time_ns: 0,
        replica: ReplicaId(replica),
        event: ReplicaEvent::Recovered {
            view: View(0),
            stable_seq: Seq(0),
            last_executed: Seq(0),
            records: 3,
        },
    }
}

fn logs(lines: Vec<EventLine>) -> BTreeMap<ReplicaId, Vec<EventLine>> {
    let mut by_replica: BTreeMap<ReplicaId, Vec<EventLine>> = BTreeMap::new();
    for line in lines {
        by_replica.entry(line.replica).or_default().push(line);
    }
    by_replica
}

fn all_honest() -> Vec<ReplicaId> {
    (0..4).map(ReplicaId).collect()
}

fn put_history(
    client: u32,
    timestamp: u64,
    invoked: u64,
    completed: Option<u64>,
) -> Vec<HistoryEvent> {
    let op = Operation::Put {
        key: "k".into(),
        value: format!("{client}-{timestamp}"),
    };
    let invoke = HistoryEvent::invoke(ClientId(client), Timestamp(timestamp), &op, invoked);
    let mut events = vec![invoke.clone()];
    if let Some(at) = completed {
        events.push(invoke.ok(&OpResult::Done, at));
    }
    events
}

#[test]
fn agreement_holds_when_commits_repeat_with_the_same_digest() {
    let events = logs(vec![
        commit(0, 1, "aa", vec![request(1, 1)]),
        commit(1, 1, "aa", vec![request(1, 1)]),
        commit(2, 2, "bb", vec![]),
        // replica 1 restarted and committed seq 1 again
        commit(1, 1, "aa", vec![request(1, 1)]),
    ]);
    let result = agreement(&events, &all_honest());
    assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
}

#[test]
fn agreement_is_broken_by_two_digests_at_one_seq_and_names_both() {
    let events = logs(vec![
        commit(0, 1, "aa", vec![]),
        commit(1, 1, "aa", vec![]),
        commit(2, 1, "bb", vec![]),
    ]);
    let result = agreement(&events, &all_honest());
    assert_eq!(
        result.outcome,
        CheckOutcome::Violation,
        "{}",
        result.summary
    );
    let conflict = &result.details["conflicts"][0];
    assert_eq!(conflict["seq"], 1);
    let digests: Vec<&str> = conflict["commits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["digest"].as_str())
        .collect();
    assert_eq!(digests, vec!["aa", "aa", "bb"]);
}

#[test]
fn agreement_ignores_replicas_that_are_not_honest() {
    let events = logs(vec![
        commit(0, 1, "aa", vec![]),
        commit(3, 1, "evil", vec![]),
    ]);
    let honest = vec![ReplicaId(0), ReplicaId(1), ReplicaId(2)];
    assert_eq!(agreement(&events, &honest).outcome, CheckOutcome::Pass);
    assert_eq!(
        agreement(&events, &all_honest()).outcome,
        CheckOutcome::Violation
    );
}

#[test]
fn validity_accepts_executions_of_invoked_requests_and_catches_unknown_ones() {
    let history = put_history(1, 1, 10, Some(20));
    let good = logs(vec![execute(0, 1, request(1, 1), false)]);
    assert_eq!(
        validity(&good, &all_honest(), &history).outcome,
        CheckOutcome::Pass
    );

    let forged = logs(vec![
        execute(0, 1, request(1, 1), false),
        execute(1, 2, request(1, 7), false),
    ]);
    let result = validity(&forged, &all_honest(), &history);
    assert_eq!(
        result.outcome,
        CheckOutcome::Violation,
        "{}",
        result.summary
    );
    assert_eq!(result.details["unknown_requests"][0]["timestamp"], 7);
}

#[test]
fn validity_flags_executions_when_the_history_is_empty() {
    let events = logs(vec![execute(0, 1, request(1, 1), false)]);
    assert_eq!(
        validity(&events, &all_honest(), &[]).outcome,
        CheckOutcome::Violation
    );
}

#[test]
fn integrity_catches_a_request_executed_twice_by_one_replica() {
    let events = logs(vec![
        execute(0, 1, request(1, 1), false),
        execute(0, 2, request(1, 1), false),
    ]);
    let result = integrity(&events, &all_honest());
    assert_eq!(
        result.outcome,
        CheckOutcome::Violation,
        "{}",
        result.summary
    );
    assert!(
        result.details["problems"]
            .to_string()
            .contains("executed twice")
    );
}

#[test]
fn integrity_accepts_cache_hits_and_replays_after_a_restart() {
    let events = logs(vec![
        execute(0, 1, request(1, 1), false),
        execute(0, 3, request(1, 1), true),
        execute(1, 1, request(1, 1), false),
        recovered(1),
        execute(1, 1, request(1, 1), false),
    ]);
    let result = integrity(&events, &all_honest());
    assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
}

#[test]
fn integrity_catches_one_request_executed_at_different_seqs_on_different_replicas() {
    let events = logs(vec![
        execute(0, 1, request(1, 1), false),
        execute(1, 2, request(1, 1), false),
    ]);
    let result = integrity(&events, &all_honest());
    assert_eq!(
        result.outcome,
        CheckOutcome::Violation,
        "{}",
        result.summary
    );
    assert!(
        result.details["problems"]
            .to_string()
            .contains("different sequence numbers")
    );
}

#[test]
fn liveness_is_met_when_every_client_completes_within_the_bound_after_healing() {
    let mut history = put_history(1, 1, 1_000, Some(2_000));
    history.extend(put_history(2, 1, 1_500, Some(3_000)));
    let bound = Duration::from_nanos(5_000);
    let result = liveness(&history, 1_000, bound, &[ClientId(1), ClientId(2)]);
    assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
}

#[test]
fn liveness_is_missed_by_a_client_that_completes_nothing_or_too_late() {
    let mut history = put_history(1, 1, 1_000, Some(2_000));
    // client 2 completed only before the heal, client 3 only after the bound
    history.extend(put_history(2, 1, 100, Some(500)));
    history.extend(put_history(3, 1, 1_000, Some(9_000)));
    let bound = Duration::from_nanos(5_000);
    let result = liveness(
        &history,
        1_000,
        bound,
        &[ClientId(1), ClientId(2), ClientId(3)],
    );
    assert_eq!(
        result.outcome,
        CheckOutcome::Violation,
        "{}",
        result.summary
    );
    assert!(
        result.summary.contains("clients 2, 3"),
        "{}",
        result.summary
    );
}

#[test]
fn reading_files_names_the_file_and_line_of_a_malformed_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.jsonl");
    let history = put_history(1, 1, 10, Some(20));
    let mut file = std::fs::File::create(&path).expect("create");
    writeln!(file, "{}", history[0].to_json_line()).expect("write");
    writeln!(file, "{{\"not\": \"an event\"}}").expect("write");
    drop(file);
    let error = read_history(&path)
        .expect_err("line 2 is malformed")
        .to_string();
    assert!(error.contains("history.jsonl:2:"), "{error}");

    let events = dir.path().join("events.jsonl");
    let line = serde_json::to_string(&commit(0, 1, "aa", vec![])).expect("encode");
    // A half-written last line, as SIGKILL leaves it, is skipped.
    std::fs::write(&events, format!("{line}\n{}", &line[..line.len() / 2])).expect("write");
    let read = read_events(&events).expect("readable");
    assert_eq!(read, vec![commit(0, 1, "aa", vec![])]);
}
