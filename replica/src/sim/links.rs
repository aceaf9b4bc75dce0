//! Who can reach whom: partitions and one-way link blocks; and what a link does to each frame
//! (`LinkPolicy`): the built-in latency-and-loss model, or one the caller brings (the harness
//! brings its proxy's rule engine).

use crate::ids::{ClientId, ReplicaId};
use crate::message::MessageKind;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One end of a simulated link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Replica(ReplicaId),
    Client(ClientId),
    /// The second process of a twinned replica (`SimNetwork::add_twin`): the same id and key,
    /// its own state. Built-in partitions and blocks do not apply to it.
    Twin(ReplicaId),
}

/// Message latency: `base_ms` plus a uniform draw from `0..=jitter_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    pub base_ms: u64,
    pub jitter_ms: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            base_ms: 1,
            jitter_ms: 2,
        }
    }
}

/// One copy of a frame that a link will deliver, `delay` after it was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub frame: Vec<u8>,
    pub delay: Duration,
    /// Delivered no earlier than anything sent before it on the same link (TCP's order);
    /// false for a copy the link may reorder.
    pub in_order: bool,
}

/// What a link does to the frames sent over it. Called once per frame per destination, in
/// the order frames are sent, at the virtual time `now`; every random choice must come from
/// the policy's own seeded state, so the same calls give the same answers.
pub trait LinkPolicy: Send {
    /// The copies of `frame` to deliver to `to` (none: the frame is lost).
    fn route(
        &mut self,
        now: Duration,
        from: Endpoint,
        to: Endpoint,
        frame: Vec<u8>,
    ) -> Vec<Delivery>;

    /// Which process of replica `to` a frame from `from` reaches: with twins, the one on the
    /// sender's side. Without twins, the replica itself.
    fn destination(&self, from: Endpoint, to: ReplicaId) -> Endpoint {
        let _ = from;
        Endpoint::Replica(to)
    }
}

/// The simulator's own link model: `latency` and an independent loss probability per frame,
/// drawn from one ChaCha8 stream.
pub struct BuiltinLinks {
    pub(super) latency: Latency,
    pub(super) drop_probability: f64,
    /// Off: each link delivers in order, like the TCP connections of the real node.
    pub(super) reorder: bool,
    pub(super) rng: ChaCha8Rng,
}

impl LinkPolicy for BuiltinLinks {
    fn route(
        &mut self,
        _now: Duration,
        _from: Endpoint,
        _to: Endpoint,
        frame: Vec<u8>,
    ) -> Vec<Delivery> {
        if self.drop_probability > 0.0 && self.rng.random_bool(self.drop_probability) {
            return Vec::new();
        }
        let jitter = match self.latency.jitter_ms {
            0 => 0,
            j => self.rng.random_range(0..=j),
        };
        vec![Delivery {
            frame,
            delay: Duration::from_millis(self.latency.base_ms + jitter),
            in_order: !self.reorder,
        }]
    }
}

/// Counters of what the network did with the frames handed to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    pub sent: u64,
    /// Frames handed to the network by message type (injected frames excluded).
    pub sent_by_kind: BTreeMap<MessageKind, u64>,
    pub delivered: u64,
    /// Refused by a partition or a blocked link.
    pub dropped_by_fault: u64,
    /// Lost on the link: the built-in drop probability, or a policy that delivered no copy.
    pub dropped_randomly: u64,
    /// Addressed to a replica that was down when it arrived (or went down while in flight).
    pub lost_to_crash: u64,
    /// Frames a client could not decode or verify.
    pub client_rejections: u64,
}

/// The faults currently imposed on links.
#[derive(Clone, Debug, Default)]
pub(super) struct LinkFaults {
    /// Replica -> group index while a partition is in force. Clients are never partitioned:
    /// they reach every replica unless a link is blocked explicitly.
    groups: Option<BTreeMap<ReplicaId, usize>>,
    blocked: BTreeSet<(Endpoint, Endpoint)>,
}

impl LinkFaults {
    /// Replicas in different groups cannot talk; a replica named in no group is alone.
    pub(super) fn partition(&mut self, groups: &[&[ReplicaId]], n: usize) {
        let mut assignment = BTreeMap::new();
        for (index, group) in groups.iter().enumerate() {
            for replica in group.iter() {
                assignment.insert(*replica, index);
            }
        }
        let mut next_alone = groups.len();
        for replica in (0..n as u32).map(ReplicaId) {
            assignment.entry(replica).or_insert_with(|| {
                next_alone += 1;
                next_alone
            });
        }
        self.groups = Some(assignment);
    }

    pub(super) fn block(&mut self, from: Endpoint, to: Endpoint) {
        self.blocked.insert((from, to));
    }

    pub(super) fn unblock(&mut self, from: Endpoint, to: Endpoint) {
        self.blocked.remove(&(from, to));
    }

    pub(super) fn heal(&mut self) {
        self.groups = None;
        self.blocked.clear();
    }

    pub(super) fn allows(&self, from: Endpoint, to: Endpoint) -> bool {
        if self.blocked.contains(&(from, to)) {
            return false;
        }
        match (&self.groups, from, to) {
            (Some(groups), Endpoint::Replica(a), Endpoint::Replica(b)) => {
                groups.get(&a) == groups.get(&b)
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(i: u32) -> Endpoint {
        Endpoint::Replica(ReplicaId(i))
    }

    #[test]
    fn partition_separates_groups_and_isolates_unnamed_replicas_but_not_clients() {
        let mut faults = LinkFaults::default();
        faults.partition(&[&[ReplicaId(0), ReplicaId(1)], &[ReplicaId(2)]], 4);
        assert!(faults.allows(r(0), r(1)));
        assert!(!faults.allows(r(0), r(2)));
        assert!(!faults.allows(r(3), r(2)));
        assert!(!faults.allows(r(3), r(0)));
        assert!(faults.allows(Endpoint::Client(ClientId(0)), r(3)));
        faults.heal();
        assert!(faults.allows(r(3), r(0)));
    }

    #[test]
    fn a_blocked_link_is_one_way() {
        let mut faults = LinkFaults::default();
        faults.block(r(0), r(1));
        assert!(!faults.allows(r(0), r(1)));
        assert!(faults.allows(r(1), r(0)));
        faults.unblock(r(0), r(1));
        assert!(faults.allows(r(0), r(1)));
    }
}
