//! The sequential specification the linearizability checker holds a history against: one
//! register per key with put / get / append / cas, executed by the service's own `Operation::apply_to`
//! so the model cannot drift from what the replicas run.
//!
//! The model covers one key. Histories must be split by key before checking (the harness's
//! checker does it, and checks keys from a bounded pool): `partition_operations` is left at
//! porcupine's single-partition default on purpose, because porcupine starts one OS thread
//! per partition at once.

use crate::history::{EventType, Function, HistoryEvent};
use replica::kv::{OpResult, Operation};
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
    /// Runs `op` on `state` (the op's key's value), exactly as a replica would.
    pub fn apply(state: &RegisterState, op: &Operation) -> (RegisterState, OpResult) {
        let mut next = state.clone();
        let result = op.apply_to(&mut next);
        (next, result)
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
        if search_budget::exhausted() {
            return (false, state.clone());
        }
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

/// A deadline and a stop condition for the porcupine search running on this thread.
///
/// porcupine-rs cannot be stopped from outside: its own timeout starts a thread per call and
/// its kill flag is private. So the search runs inline on the caller's thread (porcupine's
/// untimed single-partition path), and the model's `step` asks this budget first: once it is
/// spent every step fails, the search unwinds in a few backtracks, and `run` reports that its
/// answer is not a verdict.
pub mod search_budget {
    use std::cell::RefCell;
    use std::time::Instant;

    /// Steps between two looks at the clock (a step costs well under a microsecond).
    const STEPS_PER_CLOCK_READ: u32 = 256;

    struct Budget {
        deadline: Instant,
        should_stop: Box<dyn Fn() -> bool>,
        steps_until_clock: u32,
        spent: Option<Interrupted>,
    }

    thread_local! {
        static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
    }

    /// Why a search ended before its verdict.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Interrupted {
        /// The deadline passed.
        OutOfTime,
        /// `should_stop` said so (another key already decided the outcome).
        Stopped,
    }

    /// Runs `search` on this thread under a deadline and a stop condition; `Err` when either
    /// ended it, in which case whatever `search` returned is not a verdict.
    pub fn run<R>(
        deadline: Instant,
        should_stop: impl Fn() -> bool + 'static,
        search: impl FnOnce() -> R,
    ) -> Result<R, Interrupted> {
        BUDGET.with(|b| {
            *b.borrow_mut() = Some(Budget {
                deadline,
                should_stop: Box::new(should_stop),
                steps_until_clock: 0,
                spent: None,
            })
        });
        let result = search();
        match BUDGET.with(|b| b.borrow_mut().take()).and_then(|b| b.spent) {
            None => Ok(result),
            Some(why) => Err(why),
        }
    }

    /// True once the budget of the search on this thread is spent (never without a budget).
    pub(super) fn exhausted() -> bool {
        BUDGET.with(|b| {
            let mut slot = b.borrow_mut();
            let Some(budget) = slot.as_mut() else {
                return false;
            };
            if budget.spent.is_some() {
                return true;
            }
            if budget.steps_until_clock == 0 {
                budget.steps_until_clock = STEPS_PER_CLOCK_READ;
                if (budget.should_stop)() {
                    budget.spent = Some(Interrupted::Stopped);
                } else if Instant::now() >= budget.deadline {
                    budget.spent = Some(Interrupted::OutOfTime);
                }
            }
            budget.steps_until_clock -= 1;
            budget.spent.is_some()
        })
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

    /// 16 concurrent appends and a read no order of them explains: exhausting it takes far
    /// longer than any test waits.
    fn hopeless_history() -> Vec<porcupine_rs::Operation<KvModel>> {
        let mut ops: Vec<porcupine_rs::Operation<KvModel>> = (0..16u32)
            .map(|p| porcupine_rs::Operation {
                client_id: Some(p),
                call_time: 0,
                return_time: 100,
                op: known(
                    Operation::Append {
                        key: "k".into(),
                        value: format!("[{p}]"),
                    },
                    OpResult::Done,
                ),
                metadata: None,
            })
            .collect();
        ops.push(porcupine_rs::Operation {
            client_id: Some(99),
            call_time: 200,
            return_time: 300,
            op: known(
                Operation::Get { key: "k".into() },
                OpResult::Value(Some("impossible".into())),
            ),
            metadata: None,
        });
        ops
    }

    #[test]
    fn a_search_past_its_deadline_is_interrupted_not_judged() {
        use std::time::{Duration, Instant};
        let ops = hopeless_history();
        let deadline = Instant::now() + Duration::from_millis(50);
        let outcome =
            search_budget::run(deadline, || false, || porcupine_rs::check_operations(&ops));
        assert_eq!(outcome, Err(search_budget::Interrupted::OutOfTime));
    }

    #[test]
    fn a_stopped_search_says_so_and_the_next_one_on_the_thread_runs_free() {
        use std::time::{Duration, Instant};
        let far = Instant::now() + Duration::from_secs(3600);
        let outcome = search_budget::run(
            far,
            || true,
            || porcupine_rs::check_operations(&hopeless_history()),
        );
        assert_eq!(outcome, Err(search_budget::Interrupted::Stopped));
        let small: Vec<porcupine_rs::Operation<KvModel>> = vec![porcupine_rs::Operation {
            client_id: Some(1),
            call_time: 0,
            return_time: 1,
            op: known(Operation::Get { key: "k".into() }, OpResult::Value(None)),
            metadata: None,
        }];
        assert_eq!(
            search_budget::run(far, || false, || porcupine_rs::check_operations(&small)),
            Ok(true)
        );
        // Without a budget the model never refuses a step.
        assert!(porcupine_rs::check_operations(&small));
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
