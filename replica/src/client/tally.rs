//! Collecting replies until f+1 distinct replicas vouch for one result.
//!
//! Verification is lazy: a reply's signature is checked only once its result group could reach
//! the quorum with it, so in the common case exactly f+1 signatures are checked per request and
//! the replies that arrive after the decision are never verified at all. Each reply is verified
//! at most once.

use crate::crypto::KeyStore;
use crate::ids::{ClientId, Principal, ReplicaId, Timestamp, View};
use crate::kv::OpResult;
use crate::message::{Reply, Signed, WireMessage};
use crate::verify::verify_many;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Replies kept unverified per result group; beyond this a flooding replica is ignored.
const MAX_PENDING_PER_GROUP: usize = 64;

/// Why a reply was not counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyDrop {
    /// For another client or another request (late, duplicated, or misdirected).
    NotForThisRequest,
    /// Signed by someone other than the replica whose connection carried it.
    WrongSigner,
    /// The signature does not verify.
    BadSignature,
    /// This replica already vouched for this result, or its group is flooded.
    Redundant,
}

/// f+1 matching, verified replies from distinct replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub result: OpResult,
    /// The replicas whose verified replies carried `result`, in id order.
    pub answered: Vec<ReplicaId>,
    /// A view that at least f+1 of those replicas have reached (so an honest one has).
    pub view: View,
}

#[derive(Default)]
struct Group {
    verified: BTreeMap<ReplicaId, View>,
    pending: Vec<(ReplicaId, Signed<Reply>)>,
}

pub struct ReplyTally {
    client: ClientId,
    timestamp: Timestamp,
    needed: usize,
    keys: Arc<KeyStore>,
    groups: HashMap<OpResult, Group>,
    /// Replies that failed verification during this request (the caller counts them).
    pub bad_signatures: u64,
}

impl ReplyTally {
    pub fn new(client: ClientId, timestamp: Timestamp, needed: usize, keys: Arc<KeyStore>) -> Self {
        ReplyTally {
            client,
            timestamp,
            needed,
            keys,
            groups: HashMap::new(),
            bad_signatures: 0,
        }
    }

    /// Takes one reply that arrived on `link`'s connection. `Ok(Some(_))` once a result has
    /// f+1 verified votes; `Ok(None)` while undecided.
    pub fn add(
        &mut self,
        link: ReplicaId,
        reply: Signed<Reply>,
    ) -> Result<Option<Decision>, ReplyDrop> {
        if reply.body.client != self.client || reply.body.timestamp != self.timestamp {
            return Err(ReplyDrop::NotForThisRequest);
        }
        if reply.signer != Principal::Replica(link) {
            return Err(ReplyDrop::WrongSigner);
        }
        let result = reply.body.result.clone();
        let group = self.groups.entry(result.clone()).or_default();
        if group.verified.contains_key(&link) || group.pending.len() >= MAX_PENDING_PER_GROUP {
            return Err(ReplyDrop::Redundant);
        }
        group.pending.push((link, reply));
        let candidates: BTreeSet<ReplicaId> = group
            .verified
            .keys()
            .chain(group.pending.iter().map(|(r, _)| r))
            .copied()
            .collect();
        if candidates.len() < self.needed {
            return Ok(None);
        }
        let mut newly_bad = 0;
        // One batch for the f+1 (or more) candidates: cheaper than checking them one by one.
        let (candidates, messages): (Vec<_>, Vec<_>) = std::mem::take(&mut group.pending)
            .into_iter()
            .filter(|(replica, _)| !group.verified.contains_key(replica))
            .map(|(replica, reply)| ((replica, reply.body.view), WireMessage::Reply(reply)))
            .unzip();
        for ((replica, view), verdict) in candidates
            .into_iter()
            .zip(verify_many(messages, &self.keys))
        {
            match verdict.result {
                Ok(_) => {
                    group.verified.insert(replica, view);
                }
                Err(_) => newly_bad += 1,
            }
        }
        self.bad_signatures += newly_bad;
        if group.verified.len() < self.needed {
            return if newly_bad > 0 {
                Err(ReplyDrop::BadSignature)
            } else {
                Ok(None)
            };
        }
        let mut views: Vec<View> = group.verified.values().copied().collect();
        views.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Some(Decision {
            result,
            answered: group.verified.keys().copied().collect(),
            view: views[self.needed - 1],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::key_from_seed;
    use ed25519_dalek::SigningKey;

    const SEED: u64 = 11;
    const CLIENT: ClientId = ClientId(5);
    const TS: Timestamp = Timestamp(1000);

    fn replica_key(i: u32) -> SigningKey {
        key_from_seed(SEED, Principal::Replica(ReplicaId(i)))
    }

    fn key_store() -> Arc<KeyStore> {
        let replicas = (0..4).map(|i| replica_key(i).verifying_key()).collect();
        let clients = [(
            CLIENT,
            key_from_seed(SEED, Principal::Client(CLIENT)).verifying_key(),
        )];
        Arc::new(KeyStore::new(replicas, clients.into_iter().collect()))
    }

    fn reply_signed_with(
        key: &SigningKey,
        signer: u32,
        view: u64,
        result: OpResult,
    ) -> Signed<Reply> {
        let body = Reply::new(View(view), CLIENT, TS, result);
        Signed::sign(body, Principal::Replica(ReplicaId(signer)), key)
    }

    fn reply(from: u32, view: u64, result: OpResult) -> Signed<Reply> {
        reply_signed_with(&replica_key(from), from, view, result)
    }

    fn value(v: &str) -> OpResult {
        OpResult::Value(Some(v.into()))
    }

    #[test]
    fn f_plus_one_matching_replies_from_distinct_replicas_decide() {
        let keys = key_store();
        let mut tally = ReplyTally::new(CLIENT, TS, 2, keys);
        assert_eq!(tally.add(ReplicaId(0), reply(0, 0, value("a"))), Ok(None));
        let decision = tally
            .add(ReplicaId(2), reply(2, 0, value("a")))
            .expect("counted")
            .expect("decided");
        assert_eq!(decision.result, value("a"));
        assert_eq!(decision.answered, vec![ReplicaId(0), ReplicaId(2)]);
    }

    #[test]
    fn one_replica_repeating_itself_is_not_a_quorum() {
        let keys = key_store();
        let mut tally = ReplyTally::new(CLIENT, TS, 2, keys);
        for _ in 0..MAX_PENDING_PER_GROUP {
            assert_eq!(
                tally.add(ReplicaId(1), reply(1, 0, OpResult::Done)),
                Ok(None)
            );
        }
        // The flood is capped, so memory stays bounded within one request.
        assert_eq!(
            tally.add(ReplicaId(1), reply(1, 0, OpResult::Done)),
            Err(ReplyDrop::Redundant)
        );
    }

    #[test]
    fn f_lying_replicas_cannot_outvote_the_honest_result() {
        let keys = key_store();
        let mut tally = ReplyTally::new(CLIENT, TS, 2, keys);
        assert_eq!(
            tally.add(ReplicaId(3), reply(3, 0, value("forged"))),
            Ok(None)
        );
        assert_eq!(
            tally.add(ReplicaId(0), reply(0, 0, value("real"))),
            Ok(None)
        );
        let decision = tally
            .add(ReplicaId(1), reply(1, 0, value("real")))
            .expect("counted")
            .expect("decided");
        assert_eq!(decision.result, value("real"));
    }

    #[test]
    fn a_reply_with_a_forged_signature_is_not_counted() {
        let keys = key_store();
        let mut tally = ReplyTally::new(CLIENT, TS, 2, keys);
        // Replica 3 signs a reply that claims to come from replica 1, on replica 1's link.
        let forged = reply_signed_with(&replica_key(3), 1, 0, value("x"));
        assert_eq!(tally.add(ReplicaId(0), reply(0, 0, value("x"))), Ok(None));
        assert_eq!(
            tally.add(ReplicaId(1), forged),
            Err(ReplyDrop::BadSignature)
        );
        assert_eq!(tally.bad_signatures, 1);
        let decision = tally
            .add(ReplicaId(2), reply(2, 0, value("x")))
            .expect("counted")
            .expect("decided");
        assert_eq!(decision.answered, vec![ReplicaId(0), ReplicaId(2)]);
    }

    #[test]
    fn a_reply_on_another_replicas_connection_is_refused() {
        let keys = key_store();
        let mut tally = ReplyTally::new(CLIENT, TS, 2, keys);
        assert_eq!(
            tally.add(ReplicaId(2), reply(1, 0, OpResult::Done)),
            Err(ReplyDrop::WrongSigner)
        );
    }

    #[test]
    fn replies_for_other_requests_or_clients_are_refused() {
        let keys = key_store();
        let mut tally = ReplyTally::new(CLIENT, Timestamp(999), 2, keys);
        assert_eq!(
            tally.add(ReplicaId(0), reply(0, 0, OpResult::Done)),
            Err(ReplyDrop::NotForThisRequest)
        );
    }

    #[test]
    fn the_decided_view_is_one_that_f_plus_one_replicas_vouch_for() {
        let keys = key_store();
        let mut tally = ReplyTally::new(CLIENT, TS, 2, keys);
        // A faulty replica claims a far-future view; the client must not follow it alone.
        assert_eq!(
            tally.add(ReplicaId(3), reply(3, 99, OpResult::Done)),
            Ok(None)
        );
        let decision = tally
            .add(ReplicaId(1), reply(1, 2, OpResult::Done))
            .expect("counted")
            .expect("decided");
        assert_eq!(decision.view, View(2));
    }
}
