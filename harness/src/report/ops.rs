//! Client operations rebuilt from the history (an invoke joined with its completion), and the
//! replicas' clock lined up with the history's.

use super::shading::Mark;
use replica::events::{EventLine, ReplicaEvent};
use std::collections::{BTreeMap, HashMap};
use workloads::history::{EventType, Function, HistoryEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpOutcome {
    Ok,
    Fail,
    /// Completed with an unknown outcome.
    Info,
    /// Never completed before the history ended.
    Open,
}

impl OpOutcome {
    pub fn class(self) -> &'static str {
        match self {
            OpOutcome::Ok => "op-ok",
            OpOutcome::Fail => "op-fail",
            OpOutcome::Info => "op-info",
            OpOutcome::Open => "op-open",
        }
    }
}

/// One client operation on the history's clock (ms since the run's time zero).
#[derive(Clone, Debug, PartialEq)]
pub struct TimedOp {
    pub process: u32,
    pub start_ms: f64,
    /// `None` for an operation that never completed.
    pub end_ms: Option<f64>,
    pub outcome: OpOutcome,
    pub label: String,
}

impl TimedOp {
    pub fn latency_ms(&self) -> Option<f64> {
        self.end_ms.map(|end| end - self.start_ms)
    }
}

/// Joins every invoke with the completion of the same `(process, request)`; operations come
/// out in invocation order.
pub fn pair_operations(history: &[HistoryEvent]) -> Vec<TimedOp> {
    let mut ops: Vec<TimedOp> = Vec::new();
    let mut pending: HashMap<(u32, u64), usize> = HashMap::new();
    for event in history {
        let key = (event.process.0, event.request.0);
        let at_ms = event.time_ns as f64 / 1e6;
        match event.kind {
            EventType::Invoke => {
                pending.insert(key, ops.len());
                ops.push(TimedOp {
                    process: event.process.0,
                    start_ms: at_ms,
                    end_ms: None,
                    outcome: OpOutcome::Open,
                    label: describe_invoke(event),
                });
            }
            EventType::Ok | EventType::Fail | EventType::Info => {
                let Some(index) = pending.remove(&key) else {
                    continue;
                };
                let op = &mut ops[index];
                op.end_ms = Some(at_ms);
                op.outcome = match event.kind {
                    EventType::Ok => OpOutcome::Ok,
                    EventType::Fail => OpOutcome::Fail,
                    _ => OpOutcome::Info,
                };
                op.label.push_str(&describe_completion(event));
            }
        }
    }
    ops
}

fn describe_invoke(event: &HistoryEvent) -> String {
    let value = event.value.as_deref().unwrap_or("");
    match event.f {
        Function::Put => format!("put {} = {value}", event.key),
        Function::Append => format!("append {} += {value}", event.key),
        Function::Get => format!("get {}", event.key),
        Function::Cas => format!(
            "cas {} {} → {value}",
            event.key,
            event.expected.as_deref().unwrap_or("∅")
        ),
    }
}

fn describe_completion(event: &HistoryEvent) -> String {
    let mut text = format!(" ⇒ {}", kind_word(event.kind));
    if event.kind == EventType::Ok {
        match event.f {
            Function::Get => text.push_str(&format!(": {}", event.value.as_deref().unwrap_or("∅"))),
            Function::Cas => {
                if let Some(swapped) = event.swapped {
                    text.push_str(if swapped {
                        ": swapped"
                    } else {
                        ": not swapped"
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(error) = &event.error {
        text.push_str(&format!(" ({error})"));
    }
    text
}

fn kind_word(kind: EventType) -> &'static str {
    match kind {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

/// The wall-clock time (ns since the epoch) of the history's time zero, inferred from when the
/// replicas executed requests: the first execution of a request happens after its invocation
/// and before its `ok` (the client needs replies from executed replicas). Returns `None` when
/// no executed request can be matched.
pub fn estimate_time_zero_ns(history: &[HistoryEvent], events: &[&EventLine]) -> Option<f64> {
    let mut spans: HashMap<(u32, u64), (f64, Option<f64>)> = HashMap::new();
    for event in history {
        let key = (event.process.0, event.request.0);
        match event.kind {
            EventType::Invoke => {
                spans.insert(key, (event.time_ns as f64, None));
            }
            EventType::Ok => {
                if let Some(span) = spans.get_mut(&key) {
                    span.1 = Some(event.time_ns as f64);
                }
            }
            _ => {}
        }
    }
    let mut first_execution: HashMap<(u32, u64), f64> = HashMap::new();
    for line in events {
        if let ReplicaEvent::Execute { request, .. } = &line.event {
            let at = line.time_ns as f64;
            first_execution
                .entry((request.client.0, request.timestamp.0))
                .and_modify(|t| *t = t.min(at))
                .or_insert(at);
        }
    }
    let mut lower = f64::MIN;
    let mut upper = f64::MAX;
    let mut matched = false;
    for (key, executed_at) in &first_execution {
        let Some((invoked, ok)) = spans.get(key) else {
            continue;
        };
        matched = true;
        upper = upper.min(executed_at - invoked);
        if let Some(ok) = ok {
            lower = lower.max(executed_at - ok);
        }
    }
    if !matched {
        return None;
    }
    // Consistent bounds give an interval (its middle is the best guess); clock noise can make
    // them cross, and then the upper bound (from invocations) is the safer side.
    Some(if lower <= upper && lower > f64::MIN {
        (lower + upper) / 2.0
    } else {
        upper
    })
}

/// The first time any replica entered each view after view 0, on the history's clock.
pub fn view_changes(events: &[&EventLine], time_zero_ns: f64) -> Vec<Mark> {
    let mut first: BTreeMap<u64, (f64, u32)> = BTreeMap::new();
    for line in events {
        if let ReplicaEvent::ViewChangeCompleted { view, primary } = &line.event {
            let at_ms = (line.time_ns as f64 - time_zero_ns) / 1e6;
            first
                .entry(view.0)
                .and_modify(|slot| {
                    if at_ms < slot.0 {
                        *slot = (at_ms, primary.0);
                    }
                })
                .or_insert((at_ms, primary.0));
        }
    }
    first
        .into_iter()
        .map(|(view, (at_ms, primary))| Mark::new_view(at_ms, view, primary))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::kv::{OpResult, Operation};
    use replica::message::RequestId;
    use replica::{ClientId, ReplicaId, Seq, Timestamp, View};

    fn put(process: u32, request: u64, at_ms: u64) -> HistoryEvent {
        HistoryEvent::invoke(
            ClientId(process),
            Timestamp(request),
            &Operation::Put {
                key: "k".into(),
                value: format!("v{request}"),
            },
            at_ms * 1_000_000,
        )
    }

    #[test]
    fn invokes_are_joined_with_their_own_completion() {
        let a = put(0, 1, 0);
        let b = put(1, 1, 5);
        let history = vec![
            a.clone(),
            b.clone(),
            b.incomplete(EventType::Info, "timeout", 40_000_000),
            a.ok(&OpResult::Done, 20_000_000),
            put(0, 2, 30),
        ];
        let ops = pair_operations(&history);
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].outcome, ops[0].end_ms), (OpOutcome::Ok, Some(20.0)));
        assert_eq!(
            (ops[1].outcome, ops[1].latency_ms()),
            (OpOutcome::Info, Some(35.0))
        );
        assert!(ops[1].label.contains("timeout"));
        assert_eq!((ops[2].outcome, ops[2].end_ms), (OpOutcome::Open, None));
    }

    fn execute(client: u32, request: u64, at_ns: u64) -> EventLine {
        EventLine {
            time_ns: at_ns,
            replica: ReplicaId(0),
            event: ReplicaEvent::Execute {
                seq: Seq(1),
                request: RequestId {
                    client: ClientId(client),
                    timestamp: Timestamp(request),
                },
                op: "put".into(),
                result: "done".into(),
                duplicate: false,
            },
        }
    }

    #[test]
    fn time_zero_lies_between_invocation_and_ok_bounds() {
        let zero = 1_700_000_000_000_000_000u64;
        let a = put(0, 1, 100);
        let history = vec![a.clone(), a.ok(&OpResult::Done, 110_000_000)];
        // Executed 104 ms after time zero, so zero is within [exec - 110 ms, exec - 100 ms]:
        // 6 ms before to 4 ms after the true zero, whose middle is 1 ms before it.
        let exec = execute(0, 1, zero + 104_000_000);
        let estimate = estimate_time_zero_ns(&history, &[&exec]).expect("matched");
        let error_ms = (estimate - zero as f64) / 1e6;
        assert!((error_ms + 1.0).abs() < 0.01, "{error_ms} ms off");
        assert_eq!(estimate_time_zero_ns(&history, &[]), None);
    }

    #[test]
    fn each_view_is_marked_once_at_its_first_entry() {
        let line = |replica: u32, at_ms: u64, view: u64| EventLine {
            time_ns: at_ms * 1_000_000,
            replica: ReplicaId(replica),
            event: ReplicaEvent::ViewChangeCompleted {
                view: View(view),
                primary: ReplicaId(view as u32 % 4),
            },
        };
        let lines = [line(0, 900, 1), line(2, 800, 1), line(1, 2000, 2)];
        let refs: Vec<&EventLine> = lines.iter().collect();
        let marks = view_changes(&refs, 0.0);
        assert_eq!(marks.len(), 2);
        assert_eq!((marks[0].label.as_str(), marks[0].at_ms), ("v1", 800.0));
        assert_eq!(marks[1].title, "view 2 (primary 2)");
    }
}
