//! The nemesis: a schedule of faults, written out in the scenario or generated from the seed,
//! resolved into the plan, then carried out against the proxy and the processes. Most start
//! at a time; triggered ones start right after a replica sends a given message (`trigger.rs`).

mod book;
mod generate;
mod over_f;
mod rounds;
mod run;
mod schedule;
mod scheduler;
mod trigger;
mod watch;

pub use book::{FaultBook, NemesisRecord, Start, Step, timeline};
pub use generate::generate;
pub use over_f::max_down;
pub use rounds::{RoundContext, generate_rounds};
pub use run::{Nemesis, NemesisSetup};
pub use schedule::resolve_schedule;
pub use scheduler::{Due, FaultScheduler};
pub use trigger::{Fired, PlannedTrigger, TriggerRecord, TriggerTarget, TriggerWatch};

use crate::proxy::{Endpoint, Rule};
use crate::scenario::PartitionShape;
use replica::ReplicaId;
use serde::{Deserialize, Serialize};

/// A replica named in the plan, or the primary as known when the action starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlannedTarget {
    Replica(ReplicaId),
    Primary,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum PlannedAction {
    Partition {
        shape: PartitionShape,
        /// The isolated replica for `isolate-one` / `isolate-primary`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<PlannedTarget>,
        /// Each entry is one grouping handed to `proxy::partition_rules`; a ring needs several.
        /// Empty when the grouping depends on the primary at run time.
        cuts: Vec<Vec<Vec<Endpoint>>>,
        one_way: bool,
    },
    LinkFault {
        rules: Vec<Rule>,
    },
    Kill {
        target: PlannedTarget,
        permanent: bool,
    },
    Restart {
        target: PlannedTarget,
    },
    Pause {
        target: PlannedTarget,
    },
    Resume {
        target: PlannedTarget,
    },
}

impl PlannedAction {
    pub fn name(&self) -> &'static str {
        match self {
            PlannedAction::Partition { .. } => "partition",
            PlannedAction::LinkFault { .. } => "link-fault",
            PlannedAction::Kill { .. } => "kill",
            PlannedAction::Restart { .. } => "restart",
            PlannedAction::Pause { .. } => "pause",
            PlannedAction::Resume { .. } => "resume",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// Unique within the run; prefixes the proxy rule ids of this fault.
    pub id: String,
    pub start_ms: u64,
    /// When the fault is undone; `None` = at the final heal (never, for a permanent kill).
    pub end_ms: Option<u64>,
    #[serde(flatten)]
    pub action: PlannedAction,
    /// A fault at a protocol point: `start_ms` only arms it, and it starts when a replica's
    /// event matches (`trigger.rs`); its target is the trigger's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<PlannedTrigger>,
}

/// The groupings of a static partition shape over replicas `0..n` (clients stay connected to
/// everyone: the shapes are about the replicas' view of each other). `order` is a seeded
/// permutation of the replicas; `isolated` picks the replica for `isolate-one`.
pub fn partition_cuts(
    shape: PartitionShape,
    order: &[ReplicaId],
    isolated: Option<ReplicaId>,
) -> Vec<Vec<Vec<Endpoint>>> {
    let ep = |r: &ReplicaId| Endpoint::Replica(*r);
    let n = order.len();
    match shape {
        PartitionShape::Halves => {
            let (a, b) = order.split_at(n / 2);
            vec![vec![a.iter().map(ep).collect(), b.iter().map(ep).collect()]]
        }
        PartitionShape::IsolateOne | PartitionShape::IsolatePrimary => {
            let Some(alone) = isolated else {
                return Vec::new();
            };
            let rest = order.iter().filter(|r| **r != alone).map(ep).collect();
            vec![vec![vec![Endpoint::Replica(alone)], rest]]
        }
        PartitionShape::Bridge => {
            // The first replica talks to both sides; the two sides cannot talk to each other.
            let Some((bridge, others)) = order.split_first() else {
                return Vec::new();
            };
            let _ = bridge;
            let (a, b) = others.split_at(others.len() / 2);
            vec![vec![a.iter().map(ep).collect(), b.iter().map(ep).collect()]]
        }
        PartitionShape::Ring => {
            // Each replica keeps only its two ring neighbours: cut every non-adjacent pair.
            let mut cuts = Vec::new();
            for i in 0..n {
                for j in (i + 1)..n {
                    let adjacent = j == i + 1 || (i == 0 && j == n - 1);
                    if !adjacent {
                        cuts.push(vec![vec![ep(&order[i])], vec![ep(&order[j])]]);
                    }
                }
            }
            cuts
        }
    }
}
