//! Client requests waiting for a busy simulated replica, shared fairly among their senders, as
//! the node's intake shares them (`node::intake`): a sender is the endpoint a request came
//! from and the client it claims to be. A client's own requests wait in order, as they would
//! in its TCP stream while the node pushes back, and are checked (and cost their signature)
//! only when taken; a replica forwarding requests keeps its newest per client, the older one
//! is shed, as the node sheds it. Each turn takes one request from every sender, so a client
//! that floods gets one check per turn, like everybody else, and the replica's own traffic is
//! never stuck behind the flood.

use super::links::Endpoint;
use crate::ids::ClientId;
use crate::message::WireMessage;
use std::collections::{BTreeMap, VecDeque};

type Sender = (Option<Endpoint>, ClientId);
/// A request's frame (its verdict is memoized by the frame's digest) and the message decoded
/// from it on arrival, so it is not decoded twice.
pub(super) type Queued = (Vec<u8>, WireMessage);

/// Requests of type `T` (a `Queued` in the simulator) per sender.
#[derive(Debug)]
pub(super) struct RequestBacklog<T = Queued> {
    senders: BTreeMap<Sender, VecDeque<T>>,
}

impl<T> Default for RequestBacklog<T> {
    fn default() -> Self {
        RequestBacklog {
            senders: BTreeMap::new(),
        }
    }
}

impl<T> RequestBacklog<T> {
    /// Queues a request frame; true when it pushed out an older forwarded one (shed).
    pub(super) fn push(&mut self, from: Option<Endpoint>, client: ClientId, request: T) -> bool {
        let queue = self.senders.entry((from, client)).or_default();
        let forwarded = matches!(from, Some(Endpoint::Replica(_) | Endpoint::Twin(_)));
        let shed = forwarded && !queue.is_empty();
        if shed {
            queue.clear();
        }
        queue.push_back(request);
        shed
    }

    /// The oldest waiting request of every sender, in sender order.
    pub(super) fn take_round(&mut self) -> Vec<T> {
        let taken = self
            .senders
            .values_mut()
            .filter_map(VecDeque::pop_front)
            .collect();
        self.senders.retain(|_, queue| !queue.is_empty());
        taken
    }

    pub(super) fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.senders.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ReplicaId;

    #[test]
    fn each_round_takes_one_request_from_every_sender_in_order() {
        let mut backlog = RequestBacklog::<Vec<u8>>::default();
        let flooder = Some(Endpoint::Client(ClientId(3)));
        let honest = Some(Endpoint::Client(ClientId(0)));
        for i in 0..100u8 {
            assert!(!backlog.push(flooder, ClientId(3), vec![i]));
        }
        backlog.push(honest, ClientId(0), vec![200]);
        let round = backlog.take_round();
        assert_eq!(round, vec![vec![200], vec![0]]);
        let round = backlog.take_round();
        assert_eq!(round, vec![vec![1]]);
    }

    #[test]
    fn a_forwarding_replica_keeps_only_its_newest_request_per_client() {
        let mut backlog = RequestBacklog::<Vec<u8>>::default();
        let peer = Some(Endpoint::Replica(ReplicaId(2)));
        assert!(!backlog.push(peer, ClientId(1), vec![1]));
        assert!(backlog.push(peer, ClientId(1), vec![2]));
        assert!(!backlog.push(peer, ClientId(2), vec![3]));
        let round = backlog.take_round();
        assert_eq!(round, vec![vec![2], vec![3]]);
        assert!(backlog.is_empty());
    }
}
