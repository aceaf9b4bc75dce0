//! The replicated service: a deterministic key-value state machine.

use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An operation a client asks the service to execute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    Put {
        key: String,
        value: String,
    },
    Get {
        key: String,
    },
    Append {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
}

impl Operation {
    pub fn key(&self) -> &str {
        match self {
            Operation::Put { key, .. }
            | Operation::Get { key }
            | Operation::Append { key, .. }
            | Operation::Cas { key, .. } => key,
        }
    }

    /// Executes the operation on its key's value (`None`: never written). This is the
    /// service's semantics, one key at a time: the store and the linearizability model both
    /// run it, so they cannot drift apart.
    pub fn apply_to(&self, value: &mut Option<String>) -> OpResult {
        match self {
            Operation::Put { value: new, .. } => {
                *value = Some(new.clone());
                OpResult::Done
            }
            Operation::Get { .. } => OpResult::Value(value.clone()),
            Operation::Append { value: suffix, .. } => {
                value.get_or_insert_with(String::new).push_str(suffix);
                OpResult::Done
            }
            Operation::Cas { expected, new, .. } => {
                if value == expected {
                    *value = Some(new.clone());
                    OpResult::Swapped(true)
                } else {
                    OpResult::Swapped(false)
                }
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Operation::Put { .. } => "put",
            Operation::Get { .. } => "get",
            Operation::Append { .. } => "append",
            Operation::Cas { .. } => "cas",
        }
    }
}

/// What executing an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpResult {
    /// `put` and `append` succeeded.
    Done,
    /// `get`: the value, or none if the key was never written.
    Value(Option<String>),
    /// `cas`: whether the swap happened.
    Swapped(bool),
}

impl std::fmt::Display for OpResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpResult::Done => f.write_str("ok"),
            OpResult::Value(Some(v)) => f.write_str(v),
            OpResult::Value(None) => f.write_str("null"),
            OpResult::Swapped(b) => write!(f, "{b}"),
        }
    }
}

/// The key-value store. A `BTreeMap` so the canonical encoding (and so the digest) does not
/// depend on insertion order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    entries: BTreeMap<String, String>,
}

impl KvStore {
    pub fn execute(&mut self, op: &Operation) -> OpResult {
        let key = op.key();
        match self.entries.get_mut(key) {
            Some(stored) => {
                let mut value = Some(std::mem::take(stored));
                let result = op.apply_to(&mut value);
                // No operation removes a key, so a stored value stays stored.
                *stored = value.unwrap_or_default();
                result
            }
            None => {
                let mut value = None;
                let result = op.apply_to(&mut value);
                if let Some(written) = value {
                    self.entries.insert(key.to_string(), written);
                }
                result
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn digest(&self) -> Digest {
        Digest::of(&postcard::to_stdvec(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Operation {
        Operation::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn operations_follow_register_semantics() {
        let mut kv = KvStore::default();
        assert_eq!(
            kv.execute(&Operation::Get { key: "a".into() }),
            OpResult::Value(None)
        );
        assert_eq!(kv.execute(&put("a", "1")), OpResult::Done);
        assert_eq!(
            kv.execute(&Operation::Append {
                key: "a".into(),
                value: "2".into()
            }),
            OpResult::Done
        );
        assert_eq!(kv.get("a"), Some("12"));
        let cas = |expected: Option<&str>, new: &str| Operation::Cas {
            key: "a".into(),
            expected: expected.map(String::from),
            new: new.into(),
        };
        assert_eq!(kv.execute(&cas(Some("1"), "x")), OpResult::Swapped(false));
        assert_eq!(kv.execute(&cas(Some("12"), "x")), OpResult::Swapped(true));
        assert_eq!(kv.execute(&cas(None, "y")), OpResult::Swapped(false));
        assert_eq!(kv.get("a"), Some("x"));
    }

    #[test]
    fn digest_is_independent_of_insertion_order() {
        let mut a = KvStore::default();
        let mut b = KvStore::default();
        a.execute(&put("x", "1"));
        a.execute(&put("y", "2"));
        b.execute(&put("y", "2"));
        b.execute(&put("x", "1"));
        assert_eq!(a.digest(), b.digest());
        b.execute(&put("x", "3"));
        assert_ne!(a.digest(), b.digest());
    }
}
