//! Simulated clients: signed requests, one outstanding at a time, done on f+1 matching replies.

use crate::ids::{ClientId, Principal, Quorums, ReplicaId, Timestamp, View};
use crate::kv::{OpResult, Operation};
use crate::message::{Reply, Request, RequestId, Signed};
use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;

/// A client operation that completed: f+1 replicas vouched for `result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedOp {
    pub client: ClientId,
    /// The exact signed request, so a test can retransmit or replay it.
    pub request: Signed<Request>,
    pub result: OpResult,
    pub invoked_at_ms: u64,
    pub completed_at_ms: u64,
}

impl CompletedOp {
    pub fn id(&self) -> RequestId {
        self.request.id()
    }

    pub fn op(&self) -> &Operation {
        &self.request.body.op
    }
}

pub(super) struct Outstanding {
    pub(super) request: Signed<Request>,
    invoked_at_ms: u64,
    /// The first reply from each replica for this request.
    replies: BTreeMap<ReplicaId, (View, OpResult)>,
}

pub(super) struct SimClient {
    id: ClientId,
    key: SigningKey,
    last_timestamp: u64,
    /// The view the client believes current; requests go first to its primary.
    view: View,
    pub(super) outstanding: Option<Outstanding>,
}

impl SimClient {
    pub(super) fn new(id: ClientId, key: SigningKey) -> SimClient {
        SimClient {
            id,
            key,
            last_timestamp: 0,
            view: View(0),
            outstanding: None,
        }
    }

    pub(super) fn key(&self) -> &SigningKey {
        &self.key
    }

    pub(super) fn view(&self) -> View {
        self.view
    }

    /// Signs `op` with a fresh timestamp and makes it the outstanding request.
    pub(super) fn start(&mut self, op: Operation, now_ms: u64) -> Signed<Request> {
        self.last_timestamp += 1;
        let body = Request {
            client: self.id,
            timestamp: Timestamp(self.last_timestamp),
            op,
        };
        let request = Signed::sign(body, Principal::Client(self.id), &self.key);
        self.outstanding = Some(Outstanding {
            request: request.clone(),
            invoked_at_ms: now_ms,
            replies: BTreeMap::new(),
        });
        request
    }

    /// Whether a reply is worth verifying: for the outstanding request, from a replica not yet
    /// heard. Replies that cannot matter are dropped unverified, as a real client may.
    pub(super) fn wants(&self, reply: &Signed<Reply>) -> bool {
        let Some(outstanding) = &self.outstanding else {
            return false;
        };
        let Some(replica) = reply.replica() else {
            return false;
        };
        reply.body.client == self.id
            && reply.body.timestamp == outstanding.request.body.timestamp
            && !outstanding.replies.contains_key(&replica)
    }

    /// Takes a verified reply; returns the completed operation once f+1 distinct replicas sent
    /// the same result for the outstanding request.
    pub(super) fn accept(
        &mut self,
        reply: Signed<Reply>,
        now_ms: u64,
        quorums: Quorums,
    ) -> Option<CompletedOp> {
        if !self.wants(&reply) {
            return None;
        }
        let replica = reply.replica()?;
        let outstanding = self.outstanding.as_mut()?;
        outstanding
            .replies
            .insert(replica, (reply.body.view, reply.body.result.clone()));
        let mut views: Vec<View> = outstanding
            .replies
            .values()
            .filter(|(_, result)| *result == reply.body.result)
            .map(|(view, _)| *view)
            .collect();
        if views.len() < quorums.weak() {
            return None;
        }
        // The (f+1)-th highest view was reported by at least one honest replica.
        views.sort_unstable_by(|a, b| b.cmp(a));
        self.view = self.view.max(views[quorums.weak() - 1]);
        let done = self.outstanding.take()?;
        Some(CompletedOp {
            client: self.id,
            request: done.request,
            result: reply.body.result,
            invoked_at_ms: done.invoked_at_ms,
            completed_at_ms: now_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::key_from_seed;

    fn reply(client: &SimClient, from: u32, view: u64, result: OpResult) -> Signed<Reply> {
        let timestamp = client
            .outstanding
            .as_ref()
            .map(|o| o.request.body.timestamp)
            .unwrap_or_default();
        let body = Reply::new(View(view), client.id, timestamp, result);
        let replica = ReplicaId(from);
        Signed::sign(
            body,
            Principal::Replica(replica),
            &key_from_seed(0, Principal::Replica(replica)),
        )
    }

    fn client() -> SimClient {
        let id = ClientId(0);
        let mut client = SimClient::new(id, key_from_seed(0, Principal::Client(id)));
        client.start(Operation::Get { key: "k".into() }, 7);
        client
    }

    #[test]
    fn completes_only_on_f_plus_one_matching_results_from_distinct_replicas() {
        let quorums = Quorums { f: 1 };
        let mut c = client();
        let a = OpResult::Value(Some("a".into()));
        let b = OpResult::Value(Some("b".into()));
        assert_eq!(c.accept(reply(&c, 0, 0, a.clone()), 9, quorums), None);
        assert_eq!(
            c.accept(reply(&c, 0, 0, a.clone()), 9, quorums),
            None,
            "same replica"
        );
        assert_eq!(
            c.accept(reply(&c, 1, 0, b), 9, quorums),
            None,
            "different result"
        );
        let done = c
            .accept(reply(&c, 2, 3, a.clone()), 11, quorums)
            .expect("two distinct replicas agree");
        assert_eq!(done.result, a);
        assert_eq!((done.invoked_at_ms, done.completed_at_ms), (7, 11));
        assert!(c.outstanding.is_none());
        // Views 3 and 0 were vouched for: only view 0 is known to be reached by an honest one.
        assert_eq!(c.view(), View(0));
    }

    #[test]
    fn timestamps_strictly_increase_and_stale_replies_are_ignored() {
        let quorums = Quorums { f: 1 };
        let mut c = client();
        let stale = reply(&c, 0, 0, OpResult::Done);
        c.outstanding = None;
        let second = c.start(Operation::Get { key: "k".into() }, 8);
        assert_eq!(second.body.timestamp, Timestamp(2));
        assert!(!c.wants(&stale));
        assert_eq!(c.accept(stale, 9, quorums), None);
    }
}
