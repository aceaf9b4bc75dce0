//! Linearizability of the client history, key by key, with porcupine-rs.
//!
//! porcupine-rs 0.3.0 has traps this module steps around:
//! * its own partitioning starts one OS thread per partition at once, so the history is split
//!   by key here and keys are checked from a bounded pool of threads;
//! * `check_operations_info_timeout` answers Illegal when it times out, so the verdict comes
//!   from `check_operations_timeout` and the info variant only draws a key already found Illegal;
//! * an operation returning before it was called is silently Illegal, so the history is
//!   validated first and a malformed one is refused with its reason.

use super::{CheckOutcome, CheckResult};
use porcupine_rs::visualization::compute_visualization_data;
use porcupine_rs::{CheckResult as Verdict, Operation as TimedOp};
use replica::{ClientId, Timestamp};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use thiserror::Error;
use workloads::history::{EventType, Function, HistoryEvent};
use workloads::model::{KvModel, KvOp, ModelOpError, operation_of, result_of};

pub const CHECK_NAME: &str = "linearizability";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearizabilityOptions {
    /// Search budget for one key; running out makes the outcome inconclusive.
    pub timeout_per_key: Duration,
    /// Keys checked at once (each check also runs one porcupine thread).
    pub max_threads: usize,
    /// Failing keys for which porcupine's linearization view is computed for the report.
    pub max_keys_to_draw: usize,
}

impl Default for LinearizabilityOptions {
    fn default() -> Self {
        LinearizabilityOptions {
            timeout_per_key: Duration::from_secs(10),
            max_threads: 2,
            max_keys_to_draw: 1,
        }
    }
}

/// Why a history cannot be checked. Each names the offending line (1-based, in file order).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MalformedHistory {
    #[error(
        "event {line}: {kind:?} for request {request} of process {process} that has no pending invocation"
    )]
    CompletionWithoutInvoke {
        line: usize,
        kind: EventType,
        process: ClientId,
        request: Timestamp,
    },
    #[error(
        "event {line}: request {request} of process {process} invoked again (first at event {first})"
    )]
    InvokedTwice {
        line: usize,
        first: usize,
        process: ClientId,
        request: Timestamp,
    },
    #[error(
        "event {line}: completion is for {completion_f:?} on {completion_key:?} but the invocation was {invoke_f:?} on {invoke_key:?}"
    )]
    CompletionMismatch {
        line: usize,
        invoke_f: Function,
        invoke_key: String,
        completion_f: Function,
        completion_key: String,
    },
    #[error("event {line}: completes at {returned} ns, before its invocation at {called} ns")]
    ReturnBeforeCall {
        line: usize,
        called: u64,
        returned: u64,
    },
    #[error("event {line}: time {time_ns} ns is beyond what the checker can represent")]
    TimeOutOfRange { line: usize, time_ns: u64 },
    #[error("event {line}: {source}")]
    BadOperation {
        line: usize,
        #[source]
        source: ModelOpError,
    },
}

/// One key's operations, ready for porcupine.
pub struct KeyHistory {
    pub key: String,
    pub operations: Vec<TimedOp<KvModel>>,
}

/// Pairs invocations with completions and splits the history by key. `fail` operations are
/// left out (they did not happen), unknown ones (`info`, or never completed) return at
/// `i64::MAX`, and reads of unknown outcome are left out (they cannot constrain anything).
pub fn histories_by_key(history: &[HistoryEvent]) -> Result<Vec<KeyHistory>, MalformedHistory> {
    let mut pending: HashMap<(ClientId, Timestamp), usize> = HashMap::new();
    let mut invoked: HashMap<(ClientId, Timestamp), usize> = HashMap::new();
    let mut by_key: BTreeMap<String, Vec<TimedOp<KvModel>>> = BTreeMap::new();
    let time_of = |index: usize, time_ns: u64| {
        i64::try_from(time_ns).map_err(|_| MalformedHistory::TimeOutOfRange {
            line: index + 1,
            time_ns,
        })
    };
    for (index, event) in history.iter().enumerate() {
        let id = (event.process, event.request);
        let line = index + 1;
        time_of(index, event.time_ns)?;
        if event.kind == EventType::Invoke {
            if let Some(&first) = invoked.get(&id) {
                return Err(MalformedHistory::InvokedTwice {
                    line,
                    first: first + 1,
                    process: event.process,
                    request: event.request,
                });
            }
            operation_of(event)
                .map_err(|source| MalformedHistory::BadOperation { line, source })?;
            invoked.insert(id, index);
            pending.insert(id, index);
            continue;
        }
        let Some(invoke_index) = pending.remove(&id) else {
            return Err(MalformedHistory::CompletionWithoutInvoke {
                line,
                kind: event.kind,
                process: event.process,
                request: event.request,
            });
        };
        let invoke = &history[invoke_index];
        if invoke.f != event.f || invoke.key != event.key {
            return Err(MalformedHistory::CompletionMismatch {
                line,
                invoke_f: invoke.f,
                invoke_key: invoke.key.clone(),
                completion_f: event.f,
                completion_key: event.key.clone(),
            });
        }
        if event.time_ns < invoke.time_ns {
            return Err(MalformedHistory::ReturnBeforeCall {
                line,
                called: invoke.time_ns,
                returned: event.time_ns,
            });
        }
        let result = match event.kind {
            EventType::Fail => continue,
            EventType::Ok => Some(
                result_of(event)
                    .map_err(|source| MalformedHistory::BadOperation { line, source })?,
            ),
            _ => None,
        };
        if let Some(op) = timed(invoke, invoke_index, result, Some(event.time_ns)) {
            by_key.entry(invoke.key.clone()).or_default().push(op);
        }
    }
    let mut unfinished: Vec<usize> = pending.into_values().collect();
    unfinished.sort_unstable();
    for invoke_index in unfinished {
        let invoke = &history[invoke_index];
        if let Some(op) = timed(invoke, invoke_index, None, None) {
            by_key.entry(invoke.key.clone()).or_default().push(op);
        }
    }
    Ok(by_key
        .into_iter()
        .map(|(key, operations)| KeyHistory { key, operations })
        .collect())
}

/// Builds porcupine's operation; `None` for an unknown read, which can be left out.
fn timed(
    invoke: &HistoryEvent,
    invoke_index: usize,
    result: Option<replica::kv::OpResult>,
    returned: Option<u64>,
) -> Option<TimedOp<KvModel>> {
    if result.is_none() && invoke.f == Function::Get {
        return None;
    }
    // Validated by the caller: both conversions succeed and the op converts.
    let op = operation_of(invoke).ok()?;
    let call_time = i64::try_from(invoke.time_ns).ok()?;
    let return_time = match (&result, returned) {
        (Some(_), Some(t)) => i64::try_from(t).ok()?,
        _ => i64::MAX,
    };
    Some(TimedOp {
        client_id: Some(invoke.process.0),
        call_time,
        return_time,
        op: KvOp { op, result },
        metadata: Some(format!(
            "process {} request {} (event {})",
            invoke.process,
            invoke.request,
            invoke_index + 1
        )),
    })
}

/// Checks the whole history, key by key.
pub fn linearizability(history: &[HistoryEvent], opts: &LinearizabilityOptions) -> CheckResult {
    let keys = match histories_by_key(history) {
        Ok(keys) => keys,
        Err(malformed) => {
            return CheckResult {
                name: CHECK_NAME.into(),
                outcome: CheckOutcome::Inconclusive,
                summary: format!("history is malformed and was not checked: {malformed}"),
                details: json!({ "malformed": malformed.to_string() }),
            };
        }
    };
    let verdicts = check_keys(&keys, opts);
    let operation_count: usize = keys.iter().map(|k| k.operations.len()).sum();
    let illegal: Vec<usize> = (0..keys.len())
        .filter(|&i| verdicts[i] == Verdict::Illegal)
        .collect();
    let unknown: Vec<&str> = (0..keys.len())
        .filter(|&i| verdicts[i] == Verdict::Unknown)
        .map(|i| keys[i].key.as_str())
        .collect();
    let counts = json!({
        "keys": keys.len(),
        "operations": operation_count,
        "timed_out_keys": unknown,
        "timeout_per_key_ms": opts.timeout_per_key.as_millis() as u64,
    });
    if !illegal.is_empty() {
        let failing: Vec<serde_json::Value> = illegal
            .iter()
            .take(opts.max_keys_to_draw)
            .map(|&i| draw_failing_key(&keys[i], opts.timeout_per_key))
            .collect();
        let illegal_keys: Vec<&str> = illegal.iter().map(|&i| keys[i].key.as_str()).collect();
        return CheckResult {
            name: CHECK_NAME.into(),
            outcome: CheckOutcome::Violation,
            summary: format!(
                "{} of {} keys are not linearizable (first: {:?})",
                illegal.len(),
                keys.len(),
                illegal_keys[0]
            ),
            details: json!({ "counts": counts, "illegal_keys": illegal_keys, "failing": failing }),
        };
    }
    if !unknown.is_empty() {
        return CheckResult {
            name: CHECK_NAME.into(),
            outcome: CheckOutcome::Inconclusive,
            summary: format!(
                "the checker ran out of time on {} of {} keys; no violation in the others",
                unknown.len(),
                keys.len()
            ),
            details: json!({ "counts": counts }),
        };
    }
    CheckResult {
        name: CHECK_NAME.into(),
        outcome: CheckOutcome::Pass,
        summary: format!(
            "{operation_count} operations on {} keys are linearizable",
            keys.len()
        ),
        details: json!({ "counts": counts }),
    }
}

/// Verdict per key, from at most `max_threads` keys at a time.
fn check_keys(keys: &[KeyHistory], opts: &LinearizabilityOptions) -> Vec<Verdict> {
    let verdicts: Vec<Mutex<Verdict>> = keys.iter().map(|_| Mutex::new(Verdict::Unknown)).collect();
    let next = AtomicUsize::new(0);
    let workers = opts.max_threads.clamp(1, keys.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(key) = keys.get(index) else { break };
                    let verdict = porcupine_rs::check_operations_timeout(
                        &key.operations,
                        opts.timeout_per_key,
                    );
                    if let Ok(mut slot) = verdicts[index].lock() {
                        *slot = verdict;
                    }
                }
            });
        }
    });
    verdicts
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or(Verdict::Unknown))
        .collect()
}

/// The failing key's operations and porcupine's linearization view of it, for the report.
fn draw_failing_key(key: &KeyHistory, timeout: Duration) -> serde_json::Value {
    let operations: Vec<serde_json::Value> = key
        .operations
        .iter()
        .map(|op| {
            json!({
                "process": op.client_id,
                "call_ns": op.call_time,
                "return_ns": (op.return_time != i64::MAX).then_some(op.return_time),
                "operation": op.op.to_string(),
                "origin": op.metadata,
            })
        })
        .collect();
    let (_, info) = porcupine_rs::check_operations_info_timeout(&key.operations, timeout);
    let visualization = serde_json::to_value(compute_visualization_data(&info))
        .unwrap_or_else(|e| json!({ "error": e.to_string() }));
    json!({ "key": key.key, "operations": operations, "visualization": visualization })
}
