//! The checkpointed service state: the KV store plus the per-client reply cache that makes
//! execution exactly-once. Both are part of the state digest, so a replica that restores a
//! checkpoint also restores which requests it has already answered.

use crate::digest::Digest;
use crate::ids::{ClientId, Timestamp};
use crate::kv::{KvStore, OpResult, Operation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedReply {
    pub timestamp: Timestamp,
    pub result: OpResult,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    pub kv: KvStore,
    pub last_reply: BTreeMap<ClientId, CachedReply>,
}

/// What happened when a committed request reached execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Execution {
    /// First time: executed, result cached.
    Executed(OpResult),
    /// The client's latest request was already executed: answer from the cache.
    AlreadyExecuted(OpResult),
    /// Older than the client's latest executed request: no reply can be produced.
    Superseded,
}

impl ServiceState {
    pub fn execute(&mut self, client: ClientId, timestamp: Timestamp, op: &Operation) -> Execution {
        if let Some(cached) = self.last_reply.get(&client) {
            if timestamp == cached.timestamp {
                return Execution::AlreadyExecuted(cached.result.clone());
            }
            if timestamp < cached.timestamp {
                return Execution::Superseded;
            }
        }
        let result = self.kv.execute(op);
        self.last_reply.insert(
            client,
            CachedReply {
                timestamp,
                result: result.clone(),
            },
        );
        Execution::Executed(result)
    }

    /// The cached reply for exactly this request, if it was executed.
    pub fn cached(&self, client: ClientId, timestamp: Timestamp) -> Option<&OpResult> {
        self.last_reply
            .get(&client)
            .filter(|c| c.timestamp == timestamp)
            .map(|c| &c.result)
    }

    /// Whether a request at `timestamp` has been executed (or superseded) already.
    pub fn is_done(&self, client: ClientId, timestamp: Timestamp) -> bool {
        self.last_reply
            .get(&client)
            .is_some_and(|c| timestamp <= c.timestamp)
    }

    pub fn digest(&self) -> Digest {
        Digest::of(&postcard::to_stdvec(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retransmitted_request_is_answered_from_the_cache_not_executed_again() {
        let mut state = ServiceState::default();
        let op = Operation::Append {
            key: "k".into(),
            value: "x".into(),
        };
        let c = ClientId(1);
        assert_eq!(
            state.execute(c, Timestamp(1), &op),
            Execution::Executed(OpResult::Done)
        );
        assert_eq!(
            state.execute(c, Timestamp(1), &op),
            Execution::AlreadyExecuted(OpResult::Done)
        );
        assert_eq!(state.kv.get("k"), Some("x"));
        assert_eq!(state.execute(c, Timestamp(0), &op), Execution::Superseded);
        assert_eq!(state.kv.get("k"), Some("x"));
    }
}
