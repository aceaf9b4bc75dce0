//! Identifier newtypes: a sequence number is never confused with a view or a replica id.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Index of a replica in the cluster, `0..n`.
    ReplicaId(u32)
);
id_type!(
    /// A client known to the cluster (its public key is in the cluster file).
    ClientId(u32)
);
id_type!(
    /// A PBFT view; the primary of view `v` is replica `v mod n`.
    View(u64)
);
id_type!(
    /// A sequence number assigned by the primary to a batch.
    Seq(u64)
);
id_type!(
    /// A client's request timestamp; strictly increasing per client, used for exactly-once.
    Timestamp(u64)
);

impl View {
    /// The view after this one; the last view (`u64::MAX`, reachable only when more than f
    /// replicas ask for it) has none and stays itself, so asking to move past it does
    /// nothing rather than overflow (debug builds) or wrap to view 0 (release builds).
    pub fn next(self) -> View {
        View(self.0.saturating_add(1))
    }

    /// The primary of this view in a cluster of `n` replicas.
    pub fn primary(self, n: usize) -> ReplicaId {
        ReplicaId((self.0 % n as u64) as u32)
    }
}

impl Seq {
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

/// Who signed a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Principal {
    Replica(ReplicaId),
    Client(ClientId),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Replica(r) => write!(f, "replica {r}"),
            Principal::Client(c) => write!(f, "client {c}"),
        }
    }
}

/// Cluster arithmetic for `n = 3f + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorums {
    pub f: usize,
}

impl Quorums {
    pub fn n(self) -> usize {
        3 * self.f + 1
    }
    /// Matching messages from distinct replicas that guarantee intersection in an honest replica.
    pub fn quorum(self) -> usize {
        2 * self.f + 1
    }
    /// Matching messages that guarantee at least one came from an honest replica.
    pub fn weak(self) -> usize {
        self.f + 1
    }
}
