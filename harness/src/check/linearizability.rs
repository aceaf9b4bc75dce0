//! Linearizability of the client history, key by key, with porcupine-rs.
//!
//! porcupine-rs 0.3.0 has traps this module steps around:
//! * its own partitioning starts one OS thread per partition at once, so the history is split
//!   by key here and keys are checked from a bounded pool of threads;
//! * its timeout starts threads and a timer per call and nothing outside can stop a search, so
//!   the verdict comes from its untimed inline search under the model's `search_budget`;
//! * `check_operations_info_timeout` answers Illegal when it times out, so it only draws a key
//!   already found Illegal;
//! * an operation returning before it was called is silently Illegal, so the history is
//!   validated first and a malformed one is refused with its reason.

use super::{CheckOutcome, CheckResult};
use porcupine_rs::Operation as TimedOp;
use porcupine_rs::visualization::compute_visualization_data;
use replica::{ClientId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use workloads::history::{EventType, Function, HistoryEvent};
use workloads::model::search_budget::{self, Interrupted};
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
    /// Keep searching every key after one is proven not linearizable.
    pub all_keys: bool,
}

impl Default for LinearizabilityOptions {
    fn default() -> Self {
        LinearizabilityOptions {
            timeout_per_key: Duration::from_secs(10),
            max_threads: 2,
            max_keys_to_draw: 1,
            all_keys: false,
        }
    }
}

/// Why a history cannot be checked. Each names the offending line of its file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MalformedHistory {
    #[error(
        "line {line}: {kind:?} for request {request} of process {process} that has no pending invocation"
    )]
    CompletionWithoutInvoke {
        line: usize,
        kind: EventType,
        process: ClientId,
        request: Timestamp,
    },
    #[error(
        "line {line}: request {request} of process {process} invoked again (first at line {first})"
    )]
    InvokedTwice {
        line: usize,
        first: usize,
        process: ClientId,
        request: Timestamp,
    },
    #[error(
        "line {line}: completion is for {completion_f:?} on {completion_key:?} but the invocation was {invoke_f:?} on {invoke_key:?}"
    )]
    CompletionMismatch {
        line: usize,
        invoke_f: Function,
        invoke_key: String,
        completion_f: Function,
        completion_key: String,
    },
    #[error("line {line}: completes at {returned} ns, before its invocation at {called} ns")]
    ReturnBeforeCall {
        line: usize,
        called: u64,
        returned: u64,
    },
    #[error("line {line}: time {time_ns} ns is beyond what the checker can represent")]
    TimeOutOfRange { line: usize, time_ns: u64 },
    #[error("line {line}: {source}")]
    BadOperation {
        line: usize,
        #[source]
        source: ModelOpError,
    },
}

impl MalformedHistory {
    /// The file line the refusal names.
    pub fn line(&self) -> usize {
        match self {
            MalformedHistory::CompletionWithoutInvoke { line, .. }
            | MalformedHistory::InvokedTwice { line, .. }
            | MalformedHistory::CompletionMismatch { line, .. }
            | MalformedHistory::ReturnBeforeCall { line, .. }
            | MalformedHistory::TimeOutOfRange { line, .. }
            | MalformedHistory::BadOperation { line, .. } => *line,
        }
    }
}

/// One key's operations, ready for porcupine.
pub struct KeyHistory {
    pub key: String,
    pub operations: Vec<TimedOp<KvModel>>,
}

/// Pairs invocations with completions and splits the history by key. `fail` operations are
/// left out (they did not happen), unknown ones (`info`, or never completed) return at
/// `i64::MAX`, and reads of unknown outcome are left out (they cannot constrain anything).
/// `line_of(i)` is the file line of event `i`, for messages.
pub fn histories_by_key(
    history: &[HistoryEvent],
    line_of: &dyn Fn(usize) -> usize,
) -> Result<Vec<KeyHistory>, MalformedHistory> {
    let mut pending: HashMap<(ClientId, Timestamp), usize> = HashMap::new();
    let mut invoked: HashMap<(ClientId, Timestamp), usize> = HashMap::new();
    let mut by_key: BTreeMap<String, Vec<TimedOp<KvModel>>> = BTreeMap::new();
    let time_of = |index: usize, time_ns: u64| {
        i64::try_from(time_ns).map_err(|_| MalformedHistory::TimeOutOfRange {
            line: line_of(index),
            time_ns,
        })
    };
    for (index, event) in history.iter().enumerate() {
        let id = (event.process, event.request);
        let line = line_of(index);
        time_of(index, event.time_ns)?;
        if event.kind == EventType::Invoke {
            if let Some(&first) = invoked.get(&id) {
                return Err(MalformedHistory::InvokedTwice {
                    line,
                    first: line_of(first),
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
        if let Some(op) = timed(invoke, line_of(invoke_index), result, Some(event.time_ns)) {
            by_key.entry(invoke.key.clone()).or_default().push(op);
        }
    }
    let mut unfinished: Vec<usize> = pending.into_values().collect();
    unfinished.sort_unstable();
    for invoke_index in unfinished {
        let invoke = &history[invoke_index];
        if let Some(op) = timed(invoke, line_of(invoke_index), None, None) {
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
    invoke_line: usize,
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
            "process {} request {} (line {})",
            invoke.process, invoke.request, invoke_line
        )),
    })
}

/// One key's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyVerdict {
    Linearizable,
    NotLinearizable,
    /// The search ran out of its budget before deciding.
    OutOfBudget,
    /// Not searched to the end: another key was already proven not linearizable.
    NotSearched,
}

/// What the search found for one key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyOutcome {
    pub key: String,
    pub operations: usize,
    pub verdict: KeyVerdict,
    /// Wall time the search took, in milliseconds (zero when it never started).
    pub search_ms: f64,
}

/// Checks the whole history, key by key.
pub fn linearizability(history: &[HistoryEvent], opts: &LinearizabilityOptions) -> CheckResult {
    match histories_by_key(history, &|index| index + 1) {
        Ok(keys) => judge_keys(&keys, opts),
        Err(malformed) => CheckResult {
            name: CHECK_NAME.into(),
            outcome: CheckOutcome::Inconclusive,
            summary: format!("history is malformed and was not checked: {malformed}"),
            details: json!({ "malformed": malformed.to_string() }),
        },
    }
}

/// The check's result over histories already split by key.
pub fn judge_keys(keys: &[KeyHistory], opts: &LinearizabilityOptions) -> CheckResult {
    summarize_keys(keys, &check_keys(keys, opts), opts)
}

/// The check's result from each key's outcome (`outcomes[i]` is `keys[i]`'s); draws the first
/// `max_keys_to_draw` keys that are not linearizable.
pub fn summarize_keys(
    keys: &[KeyHistory],
    outcomes: &[KeyOutcome],
    opts: &LinearizabilityOptions,
) -> CheckResult {
    let operation_count: usize = keys.iter().map(|k| k.operations.len()).sum();
    let with = |verdict: KeyVerdict| -> Vec<&str> {
        outcomes
            .iter()
            .filter(|o| o.verdict == verdict)
            .map(|o| o.key.as_str())
            .collect()
    };
    let illegal_keys = with(KeyVerdict::NotLinearizable);
    let unknown = with(KeyVerdict::OutOfBudget);
    let not_searched = with(KeyVerdict::NotSearched);
    let counts = json!({
        "keys": keys.len(),
        "operations": operation_count,
        "timed_out_keys": unknown,
        "not_searched_keys": not_searched.len(),
        "timeout_per_key_ms": opts.timeout_per_key.as_millis() as u64,
    });
    let out_of_budget = if unknown.is_empty() {
        String::new()
    } else {
        format!("; the search ran out of budget on {}", name_keys(&unknown))
    };
    if !illegal_keys.is_empty() {
        let failing: Vec<serde_json::Value> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| o.verdict == KeyVerdict::NotLinearizable)
            .take(opts.max_keys_to_draw)
            .map(|(i, _)| draw_failing_key(&keys[i], opts.timeout_per_key))
            .collect();
        let unsearched = if not_searched.is_empty() {
            String::new()
        } else {
            format!(
                "; {} other keys were not searched (--all-keys searches them)",
                not_searched.len()
            )
        };
        return CheckResult {
            name: CHECK_NAME.into(),
            outcome: CheckOutcome::Violation,
            summary: format!(
                "{} of {} keys are not linearizable: {}{out_of_budget}{unsearched}",
                illegal_keys.len(),
                keys.len(),
                name_keys(&illegal_keys)
            ),
            details: json!({ "counts": counts, "illegal_keys": illegal_keys, "failing": failing }),
        };
    }
    if !unknown.is_empty() {
        return CheckResult {
            name: CHECK_NAME.into(),
            outcome: CheckOutcome::Inconclusive,
            summary: format!(
                "no violation in {} of {} keys{out_of_budget} ({} ms each)",
                keys.len() - unknown.len(),
                keys.len(),
                opts.timeout_per_key.as_millis()
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

/// `"a", "b" and 3 more`: keys named in a summary line, never a pass hiding them.
fn name_keys(keys: &[&str]) -> String {
    const NAMED: usize = 5;
    let named: Vec<String> = keys.iter().take(NAMED).map(|k| key_name(k)).collect();
    match keys.len().saturating_sub(NAMED) {
        0 => named.join(", "),
        more => format!("{} and {more} more", named.join(", ")),
    }
}

/// A key as messages show it; a single register (Jepsen's register histories) has the key "".
pub fn key_name(key: &str) -> String {
    if key.is_empty() {
        "(the register)".to_string()
    } else {
        format!("{key:?}")
    }
}

/// The first look at every key: most keys are decided within it, and a hard key cannot hold
/// back an easy failing one.
const FIRST_LOOK: Duration = Duration::from_millis(200);

/// Searches every key, at most `max_threads` at a time, each within `timeout_per_key`.
///
/// When there are more keys than threads, every key first gets a short look ([`FIRST_LOOK`]);
/// only the keys still undecided are then searched again with the whole budget, so a failing
/// key is found early even when harder keys come before it. Unless `all_keys` is set, a key
/// proven not linearizable stops the search of every key after it (in key order), running or
/// waiting, as porcupine itself stops at the first illegal partition, and cuts every key
/// before it to the first look. The verdict names the first illegal key in key order, reports
/// the keys after it as not searched and a key before it that a cut stopped as out of budget,
/// so it does not depend on which thread finished first (only on whether a search fits its
/// wall-clock budget).
pub fn check_keys(keys: &[KeyHistory], opts: &LinearizabilityOptions) -> Vec<KeyOutcome> {
    // The first illegal key in key order, once one is known: the keys after it stop, the
    // keys before it are still searched, so the verdict names the same key whichever thread
    // finished first.
    let first_illegal = Arc::new(AtomicUsize::new(usize::MAX));
    let everything: Vec<usize> = (0..keys.len()).collect();
    // With a thread for every key, all are searched at once: nothing waits behind a hard key.
    let first_look = if keys.len() <= opts.max_threads.max(1) {
        opts.timeout_per_key
    } else {
        opts.timeout_per_key.min(FIRST_LOOK)
    };
    let mut outcomes = search_pass(keys, &everything, first_look, &first_illegal, opts);
    let undecided: Vec<usize> = everything
        .into_iter()
        .filter(|&i| outcomes[i].verdict == KeyVerdict::OutOfBudget)
        .collect();
    let violation_known = first_illegal.load(Ordering::Relaxed) != usize::MAX;
    if first_look < opts.timeout_per_key && !undecided.is_empty() && !violation_known {
        let again = search_pass(keys, &undecided, opts.timeout_per_key, &first_illegal, opts);
        for index in undecided {
            let first_ms = outcomes[index].search_ms;
            outcomes[index] = again[index].clone();
            outcomes[index].search_ms += first_ms;
        }
    }
    if !opts.all_keys {
        settle_around_first_illegal(&mut outcomes, first_illegal.load(Ordering::Relaxed));
    }
    outcomes
}

/// Whether a key after the first illegal one was decided before the stop reached it depends
/// on thread timing, so none of them is reported; a key before it that the cut stopped is
/// reported as a search that did not fit its budget (the first look), as it would have been.
fn settle_around_first_illegal(outcomes: &mut [KeyOutcome], first: usize) {
    for (index, outcome) in outcomes.iter_mut().enumerate() {
        if index > first {
            outcome.verdict = KeyVerdict::NotSearched;
        } else if index < first && outcome.verdict == KeyVerdict::NotSearched {
            outcome.verdict = KeyVerdict::OutOfBudget;
        }
    }
}

/// Searches `keys[i]` for each `i` in `which` within `budget`, from a pool of threads; the
/// outcome of a key not in `which` is `NotSearched`.
fn search_pass(
    keys: &[KeyHistory],
    which: &[usize],
    budget: Duration,
    first_illegal: &Arc<AtomicUsize>,
    opts: &LinearizabilityOptions,
) -> Vec<KeyOutcome> {
    let slots: Vec<Mutex<Option<KeyOutcome>>> = keys.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = opts.max_threads.clamp(1, which.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(&index) = which.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let outcome = search_key(&keys[index], index, budget, first_illegal);
                    if outcome.verdict == KeyVerdict::NotLinearizable && !opts.all_keys {
                        first_illegal.fetch_min(index, Ordering::Relaxed);
                    }
                    if let Ok(mut slot) = slots[index].lock() {
                        *slot = Some(outcome);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(keys)
        .map(|(slot, key)| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| KeyOutcome {
                    key: key.key.clone(),
                    operations: key.operations.len(),
                    verdict: KeyVerdict::NotSearched,
                    search_ms: 0.0,
                })
        })
        .collect()
}

/// The search of key number `index`, on this thread, within `budget` and until a key before
/// it is known to be illegal.
fn search_key(
    key: &KeyHistory,
    index: usize,
    budget: Duration,
    first_illegal: &Arc<AtomicUsize>,
) -> KeyOutcome {
    let started = Instant::now();
    let verdict = if first_illegal.load(Ordering::Relaxed) < index {
        KeyVerdict::NotSearched
    } else {
        let stop = Arc::clone(first_illegal);
        let cut = move || match stop.load(Ordering::Relaxed) {
            usize::MAX => false,
            first => first < index || started.elapsed() >= FIRST_LOOK,
        };
        // porcupine's untimed check of one partition runs inline, under the model's budget.
        let result = search_budget::run(started + budget, cut, || {
            porcupine_rs::check_operations(&key.operations)
        });
        match result {
            Ok(true) => KeyVerdict::Linearizable,
            Ok(false) => KeyVerdict::NotLinearizable,
            Err(Interrupted::OutOfTime) => KeyVerdict::OutOfBudget,
            Err(Interrupted::Stopped) => KeyVerdict::NotSearched,
        }
    };
    KeyOutcome {
        key: key.key.clone(),
        operations: key.operations.len(),
        verdict,
        search_ms: started.elapsed().as_secs_f64() * 1e3,
    }
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
