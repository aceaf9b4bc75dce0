//! The sequential specification the linearizability checker holds a history against: one
//! register per key with put / get / append / cas, executed by the service's own `KvStore`
//! so the model cannot drift from what the replicas run.
//!
//! The model covers one key. Histories must be split by key before checking (the harness's
//! checker does it, and checks keys from a bounded pool): `partition_operations` is left at
//! porcupine's single-partition default on purpose, because porcupine starts one OS thread
//! per partition at once.

use crate::history::{EventType, Function, HistoryEvent};
use replica::kv::{KvStore, OpResult, Operation};
use std::fmt;
use thiserror::Error;

/// One operation as the model sees it: what was asked and, if known, what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvOp {
    pub op: Operation,
    /// `None` when the outcome is unknown (`info`): any result is acceptable, and the
    /// operation may take effect at any point after its invocation.
    pub result: Option<OpResult>,
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let described = match &self.op {
            Operation::Put { key, value } => format!("put({key}, {value:?})"),
            Operation::Get { key } => format!("get({key})"),
            Operation::Append { key, value } => format!("append({key}, {value:?})"),
            Operation::Cas { key, expected, new } => {
                format!("cas({key}, {expected:?} -> {new:?})")
            }
        };
        match &self.result {
            Some(result) => write!(f, "{described} -> {result}"),
            None => write!(f, "{described} -> ?"),
        }
    }
}

/// The state of one key: its value, or `None` if it was never written.
pub type RegisterState = Option<String>;

#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl KvModel {
    /// Runs `op` on a store holding `state` for the op's key, exactly as a replica would.
    pub fn apply(state: &RegisterState, op: &Operation) -> (RegisterState, OpResult) {
        let key = op.key().to_string();
        let mut store = KvStore::default();
        if let Some(value) = state {
            store.execute(&Operation::Put {
                key: key.clone(),
                value: value.clone(),
            });
        }
        let result = store.execute(op);
        (store.get(&key).map(String::from), result)
    }
}

impl porcupine_rs::Model for KvModel {
    type State = RegisterState;
    type Op = KvOp;
    type Metadata = String;

    fn init() -> RegisterState {
        None
    }

    fn step(state: &RegisterState, op: &KvOp) -> (bool, RegisterState) {
        let (next, result) = KvModel::apply(state, &op.op);
        match &op.result {
            Some(observed) if *observed != result => (false, state.clone()),
            _ => (true, next),
        }
    }

    fn describe_operation(op: &KvOp) -> String {
        op.to_string()
    }

    fn describe_state(state: &RegisterState) -> String {
        match state {
            Some(value) => format!("{value:?}"),
            None => "(absent)".to_string(),
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelOpError {
    #[error("a {f:?} invocation needs a value")]
    MissingValue { f: Function },
    #[error("a cas completion of type ok needs `swapped`")]
    MissingSwapped,
    #[error("completion is not ok: {0:?}")]
    NotOk(EventType),
}

/// The operation an `invoke` event asked for.
pub fn operation_of(invoke: &HistoryEvent) -> Result<Operation, ModelOpError> {
    let key = invoke.key.clone();
    let value = || {
        invoke
            .value
            .clone()
            .ok_or(ModelOpError::MissingValue { f: invoke.f })
    };
    Ok(match invoke.f {
        Function::Put => Operation::Put {
            key,
            value: value()?,
        },
        Function::Get => Operation::Get { key },
        Function::Append => Operation::Append {
            key,
            value: value()?,
        },
        Function::Cas => Operation::Cas {
            key,
            expected: invoke.expected.clone(),
            new: value()?,
        },
    })
}

/// The result an `ok` completion reports for an operation of kind `f`.
pub fn result_of(completion: &HistoryEvent) -> Result<OpResult, ModelOpError> {
    if completion.kind != EventType::Ok {
        return Err(ModelOpError::NotOk(completion.kind));
    }
    Ok(match completion.f {
        Function::Put | Function::Append => OpResult::Done,
        Function::Get => OpResult::Value(completion.value.clone()),
        Function::Cas => OpResult::Swapped(completion.swapped.ok_or(ModelOpError::MissingSwapped)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use porcupine_rs::Model;

    fn known(op: Operation, result: OpResult) -> KvOp {
        KvOp {
            op,
            result: Some(result),
        }
    }

    #[test]
    fn model_steps_follow_the_service_semantics() {
        let key = || "k".to_string();
        let state = KvModel::init();
        let (ok, state) = KvModel::step(
            &state,
            &known(
                Operation::Append {
                    key: key(),
                    value: "a".into(),
                },
                OpResult::Done,
            ),
        );
        assert!(ok);
        assert_eq!(state.as_deref(), Some("a"));
        let read_wrong = known(Operation::Get { key: key() }, OpResult::Value(None));
        assert!(!KvModel::step(&state, &read_wrong).0);
        let cas = Operation::Cas {
            key: key(),
            expected: Some("a".into()),
            new: "b".into(),
        };
        let (ok, swapped) = KvModel::step(&state, &known(cas.clone(), OpResult::Swapped(true)));
        assert!(ok);
        assert_eq!(swapped.as_deref(), Some("b"));
        assert!(!KvModel::step(&state, &known(cas.clone(), OpResult::Swapped(false))).0);
        let unknown = KvOp {
            op: cas,
            result: None,
        };
        assert_eq!(KvModel::step(&state, &unknown), (true, Some("b".into())));
    }
}
