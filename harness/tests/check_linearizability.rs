//! The linearizability checker on hand-made histories.

use harness::check::{
    CheckOutcome, KeyVerdict, LinearizabilityOptions, MalformedHistory, check_keys,
    histories_by_key, linearizability,
};
use replica::kv::{OpResult, Operation};
use replica::{ClientId, Timestamp};
use std::time::Duration;
use workloads::history::{EventType, HistoryEvent};

fn put(key: &str, value: &str) -> Operation {
    Operation::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn get(key: &str) -> Operation {
    Operation::Get { key: key.into() }
}

fn append(key: &str, value: &str) -> Operation {
    Operation::Append {
        key: key.into(),
        value: value.into(),
    }
}

/// Builds a history event by event; each call names the process and request.
#[derive(Default)]
struct History {
    events: Vec<HistoryEvent>,
}

impl History {
    fn invoke(&mut self, process: u32, request: u64, op: Operation, at: u64) -> HistoryEvent {
        let event = HistoryEvent::invoke(ClientId(process), Timestamp(request), &op, at);
        self.events.push(event.clone());
        event
    }

    fn ok(&mut self, invoke: &HistoryEvent, result: OpResult, at: u64) {
        self.events.push(invoke.ok(&result, at));
    }

    fn incomplete(&mut self, invoke: &HistoryEvent, kind: EventType, at: u64) {
        self.events.push(invoke.incomplete(kind, "timed out", at));
    }
}

fn options() -> LinearizabilityOptions {
    LinearizabilityOptions {
        timeout_per_key: Duration::from_secs(20),
        max_threads: 2,
        max_keys_to_draw: 1,
        all_keys: false,
    }
}

#[test]
fn sequential_reads_of_the_latest_write_are_linearizable() {
    let mut h = History::default();
    let w = h.invoke(1, 1, put("x", "a"), 10);
    h.ok(&w, OpResult::Done, 20);
    let r = h.invoke(2, 1, get("x"), 30);
    h.ok(&r, OpResult::Value(Some("a".into())), 40);
    let a = h.invoke(1, 2, append("x", "b"), 50);
    h.ok(&a, OpResult::Done, 60);
    let r = h.invoke(2, 2, get("x"), 70);
    h.ok(&r, OpResult::Value(Some("ab".into())), 80);
    let result = linearizability(&h.events, &options());
    assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
}

#[test]
fn stale_read_after_a_completed_write_is_a_violation_with_its_key_drawn() {
    let mut h = History::default();
    let w = h.invoke(1, 1, put("x", "a"), 10);
    h.ok(&w, OpResult::Done, 20);
    let w = h.invoke(1, 2, put("x", "b"), 30);
    h.ok(&w, OpResult::Done, 40);
    let r = h.invoke(2, 1, get("x"), 50);
    h.ok(&r, OpResult::Value(Some("a".into())), 60);
    // An unrelated key that is fine on its own.
    let w = h.invoke(3, 1, put("y", "1"), 10);
    h.ok(&w, OpResult::Done, 20);
    let result = linearizability(&h.events, &options());
    assert_eq!(
        result.outcome,
        CheckOutcome::Violation,
        "{}",
        result.summary
    );
    assert_eq!(result.details["illegal_keys"], serde_json::json!(["x"]));
    let failing = &result.details["failing"][0];
    assert_eq!(failing["key"], "x");
    assert_eq!(failing["operations"].as_array().map(Vec::len), Some(3));
    let partitions = &failing["visualization"]["partitions"];
    assert_eq!(partitions[0]["history"].as_array().map(Vec::len), Some(3));
}

#[test]
fn a_write_of_unknown_outcome_may_explain_a_later_read() {
    let mut h = History::default();
    let w = h.invoke(1, 1, put("x", "a"), 10);
    h.ok(&w, OpResult::Done, 20);
    let lost = h.invoke(1, 2, put("x", "b"), 30);
    h.incomplete(&lost, EventType::Info, 40);
    let r = h.invoke(2, 1, get("x"), 100);
    h.ok(&r, OpResult::Value(Some("b".into())), 110);
    let with_info = linearizability(&h.events, &options());
    assert_eq!(
        with_info.outcome,
        CheckOutcome::Pass,
        "{}",
        with_info.summary
    );

    // The same read is impossible if the write certainly failed.
    let mut failed = h.events.clone();
    failed[3].kind = EventType::Fail;
    let with_fail = linearizability(&failed, &options());
    assert_eq!(
        with_fail.outcome,
        CheckOutcome::Violation,
        "{}",
        with_fail.summary
    );
}

#[test]
fn an_unknown_write_may_also_never_take_effect() {
    let mut h = History::default();
    let lost = h.invoke(1, 1, put("x", "a"), 10);
    h.incomplete(&lost, EventType::Info, 20);
    let r = h.invoke(2, 1, get("x"), 30);
    h.ok(&r, OpResult::Value(None), 40);
    // Never completed at all: treated like `info`.
    h.invoke(3, 1, put("x", "c"), 50);
    let result = linearizability(&h.events, &options());
    assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
}

#[test]
fn a_completion_before_its_invocation_is_refused_as_malformed() {
    let mut h = History::default();
    let w = h.invoke(1, 1, put("x", "a"), 50);
    h.ok(&w, OpResult::Done, 40);
    assert!(matches!(
        histories_by_key(&h.events, &|i| i + 1),
        Err(MalformedHistory::ReturnBeforeCall {
            line: 2,
            called: 50,
            returned: 40
        })
    ));
    let result = linearizability(&h.events, &options());
    assert_eq!(result.outcome, CheckOutcome::Inconclusive);
    assert!(result.summary.contains("malformed"), "{}", result.summary);
}

#[test]
fn a_completion_without_invocation_is_refused_as_malformed() {
    let mut h = History::default();
    let w = HistoryEvent::invoke(ClientId(1), Timestamp(1), &put("x", "a"), 10);
    h.ok(&w, OpResult::Done, 20);
    let result = linearizability(&h.events, &options());
    assert_eq!(result.outcome, CheckOutcome::Inconclusive);
    assert!(
        result.details["malformed"]
            .as_str()
            .is_some_and(|m| m.contains("no pending invocation"))
    );
}

#[test]
fn running_out_of_time_is_inconclusive_never_pass() {
    // 24 concurrent appends, then a read no order of them can produce: proving that takes
    // porcupine through every order of the appends, far beyond the budget.
    let mut h = History::default();
    let appends: Vec<HistoryEvent> = (0..24u32)
        .map(|p| h.invoke(p, 1, append("x", &format!("[{p}]")), 10))
        .collect();
    for a in &appends {
        h.ok(a, OpResult::Done, 100);
    }
    let r = h.invoke(99, 1, get("x"), 200);
    h.ok(&r, OpResult::Value(Some("impossible".into())), 300);
    let opts = LinearizabilityOptions {
        timeout_per_key: Duration::from_millis(200),
        ..options()
    };
    let result = linearizability(&h.events, &opts);
    assert_eq!(
        result.outcome,
        CheckOutcome::Inconclusive,
        "{}",
        result.summary
    );
    assert_eq!(
        result.details["counts"]["timed_out_keys"],
        serde_json::json!(["x"])
    );
    assert!(
        result.summary.contains("ran out of budget on \"x\""),
        "{}",
        result.summary
    );
}

#[test]
fn thousands_of_keys_are_checked_from_a_bounded_pool() {
    let mut h = History::default();
    for k in 0..3_000u64 {
        let key = format!("k{k}");
        let at = k * 10;
        let w = h.invoke(1, 2 * k + 1, put(&key, "v"), at);
        h.ok(&w, OpResult::Done, at + 1);
        let r = h.invoke(2, 2 * k + 1, get(&key), at + 2);
        h.ok(&r, OpResult::Value(Some("v".into())), at + 3);
    }
    let result = linearizability(&h.events, &options());
    assert_eq!(result.outcome, CheckOutcome::Pass, "{}", result.summary);
    assert_eq!(result.details["counts"]["keys"], 3_000);
}

/// 24 concurrent appends to `key`, then a read no order of them explains: proving that takes
/// porcupine through every order of the appends, far beyond any budget here.
fn hopeless_key(h: &mut History, key: &str, first_process: u32) {
    let appends: Vec<HistoryEvent> = (0..24u32)
        .map(|p| h.invoke(first_process + p, 1, append(key, &format!("[{p}]")), 10))
        .collect();
    for a in &appends {
        h.ok(a, OpResult::Done, 100);
    }
    let r = h.invoke(first_process + 99, 1, get(key), 200);
    h.ok(&r, OpResult::Value(Some("impossible".into())), 300);
}

#[test]
fn a_failing_key_behind_hard_keys_is_found_and_cuts_them_to_the_first_look() {
    let mut h = History::default();
    for (i, key) in ["a0", "a1", "a2", "a3"].iter().enumerate() {
        hopeless_key(&mut h, key, 1000 * (i as u32 + 1));
    }
    let w = h.invoke(1, 1, put("b", "1"), 10);
    h.ok(&w, OpResult::Done, 20);
    let r = h.invoke(2, 1, get("b"), 30);
    h.ok(&r, OpResult::Value(Some("2".into())), 40);
    // Without the stop, each hard key would use this whole budget.
    let opts = LinearizabilityOptions {
        timeout_per_key: Duration::from_secs(600),
        ..options()
    };
    let keys = histories_by_key(&h.events, &|i| i + 1).expect("well formed");
    let outcomes = check_keys(&keys, &opts);
    let verdicts: Vec<(&str, KeyVerdict)> = outcomes
        .iter()
        .map(|o| (o.key.as_str(), o.verdict))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("a0", KeyVerdict::OutOfBudget),
            ("a1", KeyVerdict::OutOfBudget),
            ("a2", KeyVerdict::OutOfBudget),
            ("a3", KeyVerdict::OutOfBudget),
            ("b", KeyVerdict::NotLinearizable),
        ]
    );
    let result = linearizability(&h.events, &opts);
    assert_eq!(result.outcome, CheckOutcome::Violation);
}

#[test]
fn the_verdict_names_the_first_illegal_key_in_key_order_whichever_is_proven_first() {
    let mut h = History::default();
    // "a" is illegal but needs a search; "b" is illegal at a glance and is proven first.
    hopeless_key(&mut h, "a", 1000);
    let w = h.invoke(1, 1, put("b", "1"), 10);
    h.ok(&w, OpResult::Done, 20);
    let r = h.invoke(2, 1, get("b"), 30);
    h.ok(&r, OpResult::Value(Some("2".into())), 40);
    let w = h.invoke(3, 1, put("c", "1"), 10);
    h.ok(&w, OpResult::Done, 20);
    let r = h.invoke(4, 1, get("c"), 30);
    h.ok(&r, OpResult::Value(Some("2".into())), 40);
    let keys = histories_by_key(&h.events, &|i| i + 1).expect("well formed");
    for _ in 0..5 {
        let outcomes = check_keys(&keys, &options());
        let verdicts: Vec<KeyVerdict> = outcomes.iter().map(|o| o.verdict).collect();
        assert_eq!(
            verdicts,
            vec![
                KeyVerdict::OutOfBudget,
                KeyVerdict::NotLinearizable,
                KeyVerdict::NotSearched
            ]
        );
    }
}

#[test]
fn with_all_keys_every_key_is_searched_and_the_unfinished_are_named() {
    let mut h = History::default();
    hopeless_key(&mut h, "a0", 1000);
    let w = h.invoke(1, 1, put("b", "1"), 10);
    h.ok(&w, OpResult::Done, 20);
    let r = h.invoke(2, 1, get("b"), 30);
    h.ok(&r, OpResult::Value(Some("2".into())), 40);
    let opts = LinearizabilityOptions {
        timeout_per_key: Duration::from_millis(300),
        all_keys: true,
        ..options()
    };
    let result = linearizability(&h.events, &opts);
    assert_eq!(result.outcome, CheckOutcome::Violation);
    assert!(
        result.summary.contains("ran out of budget on \"a0\""),
        "a key out of budget is named in the summary: {}",
        result.summary
    );
}
