//! Who can reach whom: partitions, one-way link blocks and the per-link latency model.

use crate::ids::{ClientId, ReplicaId};
use crate::message::MessageKind;
use std::collections::{BTreeMap, BTreeSet};

/// One end of a simulated link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Replica(ReplicaId),
    Client(ClientId),
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

/// Counters of what the network did with the frames handed to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    pub sent: u64,
    /// Frames handed to the network by message type (injected frames excluded).
    pub sent_by_kind: BTreeMap<MessageKind, u64>,
    pub delivered: u64,
    /// Refused by a partition or a blocked link.
    pub dropped_by_fault: u64,
    /// Lost to the configured drop probability.
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
