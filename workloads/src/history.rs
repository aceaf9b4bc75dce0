//! Recorded client histories: one JSON line per event, Jepsen-style.
//!
//! Every operation appears as an `invoke` and, later, exactly one completion: `ok` (it took
//! effect, with its result), `fail` (it certainly did not take effect) or `info` (unknown: it
//! may have taken effect at any point after its invocation).

use replica::kv::{OpResult, Operation};
use replica::{ClientId, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    Put,
    Get,
    Append,
    Cas,
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// The client (one process per client id, as in Jepsen).
    pub process: ClientId,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: Function,
    pub key: String,
    /// `put`/`append`: the written value; `cas`: the new value; `get` on `ok`: the value read
    /// (absent = the key did not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `cas` only: the value expected (absent = expected the key not to exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// `cas` on `ok`: whether the swap happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swapped: Option<bool>,
    /// Nanoseconds since the start of the run, from one monotonic clock.
    pub time_ns: u64,
    /// The request's timestamp: `(process, request)` names it in the replicas' event logs.
    pub request: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HistoryEvent {
    /// The invocation of `op` by `process`.
    pub fn invoke(process: ClientId, request: Timestamp, op: &Operation, time_ns: u64) -> Self {
        let (f, key, value, expected) = match op {
            Operation::Put { key, value } => (Function::Put, key, Some(value.clone()), None),
            Operation::Get { key } => (Function::Get, key, None, None),
            Operation::Append { key, value } => (Function::Append, key, Some(value.clone()), None),
            Operation::Cas { key, expected, new } => {
                (Function::Cas, key, Some(new.clone()), expected.clone())
            }
        };
        HistoryEvent {
            process,
            kind: EventType::Invoke,
            f,
            key: key.clone(),
            value,
            expected,
            swapped: None,
            time_ns,
            request,
            error: None,
        }
    }

    /// The `ok` completion of this invocation with the service's result.
    pub fn ok(&self, result: &OpResult, time_ns: u64) -> Self {
        let mut done = HistoryEvent {
            kind: EventType::Ok,
            time_ns,
            error: None,
            ..self.clone()
        };
        match result {
            OpResult::Done => {}
            OpResult::Value(v) => done.value = v.clone(),
            OpResult::Swapped(b) => done.swapped = Some(*b),
        }
        done
    }

    /// A `fail` (certainly not executed) or `info` (unknown) completion.
    pub fn incomplete(&self, kind: EventType, error: impl Into<String>, time_ns: u64) -> Self {
        debug_assert!(matches!(kind, EventType::Fail | EventType::Info));
        HistoryEvent {
            kind,
            time_ns,
            error: Some(error.into()),
            ..self.clone()
        }
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("history events always serialize")
    }
}
