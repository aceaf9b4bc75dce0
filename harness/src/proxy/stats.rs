//! Counters of what the proxy did, per link, direction and message kind.

use super::rules::{Direction, Endpoint};
use replica::ReplicaId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::AddAssign;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameCounts {
    /// Frames read from the sender.
    pub received: u64,
    /// Frames written to the receiver (duplicates included).
    pub forwarded: u64,
    pub dropped: u64,
    pub delayed: u64,
    pub duplicated: u64,
    pub rewritten: u64,
    pub reordered: u64,
    /// Dropped because too many frames were already held on this link.
    pub overflowed: u64,
}

impl FrameCounts {
    /// Counts a frame read from the sender and what the rules did to it.
    pub fn count_received(&mut self, fate: &super::fate::Fate) {
        self.received += 1;
        for taken in &fate.taken {
            match taken.action {
                "delay" => self.delayed += 1,
                "drop" => self.dropped += 1,
                "duplicate" => self.duplicated += 1,
                "reorder" => self.reordered += 1,
                "rewrite" => self.rewritten += 1,
                _ => {}
            }
        }
    }
}

impl AddAssign for FrameCounts {
    fn add_assign(&mut self, other: FrameCounts) {
        self.received += other.received;
        self.forwarded += other.forwarded;
        self.dropped += other.dropped;
        self.delayed += other.delayed;
        self.duplicated += other.duplicated;
        self.rewritten += other.rewritten;
        self.reordered += other.reordered;
        self.overflowed += other.overflowed;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRow {
    pub from: Endpoint,
    pub to: ReplicaId,
    pub direction: Direction,
    /// A message kind's name, or `undecodable`.
    pub kind: String,
    pub counts: FrameCounts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkConnections {
    pub from: Endpoint,
    pub to: ReplicaId,
    pub accepted: u64,
    /// Connections closed because the real target could not be reached.
    pub dial_failures: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyStats {
    pub rows: Vec<StatsRow>,
    pub connections: Vec<LinkConnections>,
}

impl ProxyStats {
    pub fn total(&self) -> FrameCounts {
        self.sum(|_| true)
    }

    /// Totals over the rows `select` picks.
    pub fn sum(&self, select: impl Fn(&StatsRow) -> bool) -> FrameCounts {
        let mut total = FrameCounts::default();
        for row in self.rows.iter().filter(|r| select(r)) {
            total += row.counts;
        }
        total
    }

    pub fn for_kind(&self, kind: &str) -> FrameCounts {
        self.sum(|row| row.kind == kind)
    }
}

/// The live table behind `ProxyStats`, keyed by (link index, forward?, kind).
#[derive(Default)]
pub(crate) struct StatsTable {
    pub frames: BTreeMap<(usize, bool, &'static str), FrameCounts>,
    pub accepted: BTreeMap<usize, u64>,
    pub dial_failures: BTreeMap<usize, u64>,
}

impl StatsTable {
    pub fn frame(
        &mut self,
        link: usize,
        direction: Direction,
        kind: &'static str,
    ) -> &mut FrameCounts {
        self.frames
            .entry((link, direction != Direction::Backward, kind))
            .or_default()
    }

    pub fn snapshot(&self, links: &[super::LinkSpec]) -> ProxyStats {
        let rows = self
            .frames
            .iter()
            .filter_map(|(&(link, forward, kind), counts)| {
                let spec = links.get(link)?;
                Some(StatsRow {
                    from: spec.from,
                    to: spec.to,
                    direction: if forward {
                        Direction::Forward
                    } else {
                        Direction::Backward
                    },
                    kind: kind.to_string(),
                    counts: *counts,
                })
            })
            .collect();
        let connections = links
            .iter()
            .enumerate()
            .map(|(index, spec)| LinkConnections {
                from: spec.from,
                to: spec.to,
                accepted: self.accepted.get(&index).copied().unwrap_or(0),
                dial_failures: self.dial_failures.get(&index).copied().unwrap_or(0),
            })
            .collect();
        ProxyStats { rows, connections }
    }
}
