//! Twins (Diem): a twinned replica runs as two honest processes that share one id and one key,
//! each with its own address and data dir. The proxy routes every link to a twinned replica to
//! the twin on the dialer's side, and standing drop rules cut each twin's links to the other
//! side, so each twin lives in its own half of the world and the two never hear of each other.
//! To everyone else the replica equivocates without a line of Byzantine code.

use crate::proxy::{Action, Direction, Endpoint, LinkSpec, Matcher, Rule, endpoint_label};
use crate::scenario::{Member, Scenario};
use replica::{ClientId, ReplicaId};
use serde::{Deserialize, Serialize};

/// Prefix of the standing rules' ids.
pub const RULE_PREFIX: &str = "twins:";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The first group, with every twin A (`Endpoint::Replica`).
    A,
    /// The second group, with every twin B (`Endpoint::Twin`).
    B,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TwinsPlan {
    pub twinned: Vec<ReplicaId>,
    /// Side A then side B, each with the twins that join it.
    pub groups: [Vec<Endpoint>; 2],
    /// Whether links between members of different groups are cut for everyone.
    pub partition: bool,
    /// Standing drop rules that keep the sides apart: in force from the start, re-installed
    /// after the final heal (they are the attack, not a network fault).
    pub rules: Vec<Rule>,
    /// The generator's `twins-round` partitions, one per view, take the place of the
    /// standing separation: `rules` stays empty and the groups only route the links.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_round: bool,
}

impl TwinsPlan {
    /// The twins of `scenario`, or `None` if it has none. `rules` stays empty until the links
    /// are known (`with_rules`).
    pub fn of(scenario: &Scenario) -> Option<TwinsPlan> {
        let twinned: Vec<ReplicaId> = scenario.twinned().into_iter().map(ReplicaId).collect();
        if twinned.is_empty() {
            return None;
        }
        let endpoint = |member: &Member| match *member {
            Member::Replica(id) => Endpoint::Replica(ReplicaId(id)),
            Member::Client(id) => Endpoint::Client(ClientId(id)),
        };
        let [a, b] = scenario.twin_groups();
        let mut side_a: Vec<Endpoint> = twinned.iter().map(|r| Endpoint::Replica(*r)).collect();
        side_a.extend(a.iter().map(endpoint));
        let mut side_b: Vec<Endpoint> = twinned.iter().map(|r| Endpoint::Twin(*r)).collect();
        side_b.extend(b.iter().map(endpoint));
        Some(TwinsPlan {
            twinned,
            groups: [side_a, side_b],
            partition: scenario.twins.as_ref().is_some_and(|t| t.partition),
            rules: Vec::new(),
            per_round: scenario
                .nemesis
                .generate
                .as_ref()
                .is_some_and(|g| g.kinds.contains(&crate::scenario::FaultKind::TwinsRound)),
        })
    }

    pub fn is_twinned(&self, replica: ReplicaId) -> bool {
        self.twinned.contains(&replica)
    }

    /// The side `endpoint` is on, if any (a principal in neither group has none).
    pub fn side(&self, endpoint: Endpoint) -> Option<Side> {
        if self.groups[0].contains(&endpoint) {
            Some(Side::A)
        } else if self.groups[1].contains(&endpoint) {
            Some(Side::B)
        } else {
            None
        }
    }

    /// Which twin a link from `from` to a twinned replica reaches: the one on `from`'s side;
    /// twin A for a principal on no side.
    pub fn route(&self, from: Endpoint) -> Side {
        self.side(from).unwrap_or(Side::A)
    }

    /// The process a link's frames reach: for a link to a twinned replica, the twin on the
    /// dialer's side (routing is fixed for the run: a principal never reaches the other twin).
    pub fn listener(&self, link: &LinkSpec) -> Endpoint {
        if self.is_twinned(link.to) && self.route(link.from) == Side::B {
            Endpoint::Twin(link.to)
        } else {
            Endpoint::Replica(link.to)
        }
    }

    /// Every replica process: each replica (twin A for a twinned one), then every twin B.
    pub fn processes(&self, n: usize) -> Vec<Endpoint> {
        let mut all: Vec<Endpoint> = (0..n as u32)
            .map(|r| Endpoint::Replica(ReplicaId(r)))
            .collect();
        all.extend(self.twinned.iter().map(|r| Endpoint::Twin(*r)));
        all
    }

    fn is_twin_process(&self, endpoint: Endpoint) -> bool {
        match endpoint {
            Endpoint::Replica(r) => self.is_twinned(r),
            Endpoint::Twin(_) => true,
            Endpoint::Client(_) => false,
        }
    }

    /// Drop rules for every link whose two ends are on different sides and that must not carry
    /// traffic: a twin's links always, everyone's when `partition` is set. A link to a twinned
    /// replica is never cut: it is routed to the twin on the dialer's side.
    pub fn separation_rules(&self, links: &[LinkSpec]) -> Vec<Rule> {
        let mut rules = Vec::new();
        if self.per_round {
            return rules;
        }
        for link in links {
            if self.is_twinned(link.to) {
                continue;
            }
            let listener = Endpoint::Replica(link.to);
            let (Some(from_side), Some(to_side)) = (self.side(link.from), self.side(listener))
            else {
                continue;
            };
            if from_side == to_side || !(self.partition || self.is_twin_process(link.from)) {
                continue;
            }
            rules.push(Rule {
                id: format!(
                    "{RULE_PREFIX}{}->{}",
                    endpoint_label(link.from),
                    endpoint_label(listener)
                ),
                matcher: Matcher {
                    from: Some(vec![link.from]),
                    to: Some(vec![link.to]),
                    direction: Direction::Both,
                    ..Matcher::default()
                },
                action: Action::Drop { probability: 1.0 },
            });
        }
        rules
    }

    /// One line per side for summaries: `twin A with r0, r2, c0 | twin B with r3, c1`.
    pub fn describe(&self) -> String {
        let side = |group: &[Endpoint], twin: bool| {
            group
                .iter()
                .filter(|e| self.is_twin_process(**e) == twin)
                .map(|e| endpoint_label(*e))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{} with {} | {} with {}{}",
            side(&self.groups[0], true),
            side(&self.groups[0], false),
            side(&self.groups[1], true),
            side(&self.groups[1], false),
            if self.per_round {
                " (partitioned per view by twins-round)"
            } else if self.partition {
                " (sides partitioned)"
            } else {
                ""
            }
        )
    }

    /// Adds every twin B to the groups that hold its twin A, so that a partition drawn over
    /// replica ids cuts both processes of a twinned replica alike.
    pub fn expand_groups(&self, groups: &[Vec<Endpoint>]) -> Vec<Vec<Endpoint>> {
        groups
            .iter()
            .map(|group| {
                let mut expanded = group.clone();
                for endpoint in group {
                    if let Endpoint::Replica(r) = endpoint
                        && self.is_twinned(*r)
                    {
                        expanded.push(Endpoint::Twin(*r));
                    }
                }
                expanded
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::LoadedScenario;
    use std::path::Path;

    fn plan_of(extra: &str) -> crate::plan::Plan {
        let text = format!(
            "name: t\nworkload:\n  kind: kv\n  clients: 2\n  duration_s: 3\nreplicas:\n  1: {{ build: twin }}\n{extra}"
        );
        let loaded = LoadedScenario::from_text(&text, Path::new("t.yaml")).expect("parses");
        crate::plan::resolve(&loaded, 7).expect("plan")
    }

    fn cut(plan: &crate::plan::Plan, from: Endpoint, to: u32) -> bool {
        let twins = plan.twins.as_ref().expect("twins");
        twins.rules.iter().any(|rule| {
            rule.matcher.from.as_deref() == Some(&[from][..])
                && rule.matcher.to.as_deref() == Some(&[ReplicaId(to)][..])
        })
    }

    #[test]
    fn links_to_a_twinned_replica_reach_the_twin_on_the_dialers_side() {
        let plan = plan_of("twins:\n  groups: [[0, 2, \"client:0\"], [3, \"client:1\"]]\n");
        let twin = &plan.replicas[1];
        let twin_b = twin.twin_address.expect("twin B has an address");
        assert_ne!(twin_b, twin.address);
        let target = |from: Endpoint| {
            plan.links
                .iter()
                .find(|l| l.from == from && l.to == ReplicaId(1))
                .map(|l| l.target)
        };
        assert_eq!(target(Endpoint::Replica(ReplicaId(0))), Some(twin.address));
        assert_eq!(target(Endpoint::Replica(ReplicaId(2))), Some(twin.address));
        assert_eq!(target(Endpoint::Client(ClientId(0))), Some(twin.address));
        assert_eq!(target(Endpoint::Replica(ReplicaId(3))), Some(twin_b));
        assert_eq!(target(Endpoint::Client(ClientId(1))), Some(twin_b));
    }

    #[test]
    fn each_twin_is_cut_from_the_other_side_and_honest_links_stay_open() {
        let plan = plan_of("twins:\n  groups: [[0, 2, \"client:0\"], [3, \"client:1\"]]\n");
        let (a, b) = (
            Endpoint::Replica(ReplicaId(1)),
            Endpoint::Twin(ReplicaId(1)),
        );
        assert!(cut(&plan, a, 3) && !cut(&plan, a, 0) && !cut(&plan, a, 2));
        assert!(cut(&plan, b, 0) && cut(&plan, b, 2) && !cut(&plan, b, 3));
        // Twin B dials its peers through links of its own.
        assert!(
            plan.links
                .iter()
                .any(|l| l.from == b && l.to == ReplicaId(3))
        );
        assert!(!cut(&plan, Endpoint::Replica(ReplicaId(0)), 3));
        assert!(!cut(&plan, Endpoint::Client(ClientId(1)), 0));
    }

    #[test]
    fn partitioned_twins_cut_the_honest_links_between_the_sides_too() {
        let plan = plan_of(
            "twins:\n  partition: true\n  groups: [[0, 2, \"client:0\"], [3, \"client:1\"]]\n",
        );
        assert!(cut(&plan, Endpoint::Replica(ReplicaId(0)), 3));
        assert!(cut(&plan, Endpoint::Replica(ReplicaId(3)), 2));
        assert!(cut(&plan, Endpoint::Client(ClientId(1)), 0));
        assert!(!cut(&plan, Endpoint::Client(ClientId(1)), 3));
        assert!(!cut(&plan, Endpoint::Client(ClientId(0)), 2));
    }

    #[test]
    fn two_twin_pairs_split_the_same_way_reach_each_other_on_their_own_side() {
        let text = "name: t\nworkload:\n  kind: kv\n  clients: 2\n  duration_s: 3\nreplicas:\n  1: { build: twin }\n  2: { build: twin }\ntwins:\n  groups: [[0, \"client:0\"], [3, \"client:1\"]]\n";
        let loaded = LoadedScenario::from_text(text, Path::new("t.yaml")).expect("parses");
        let plan = crate::plan::resolve(&loaded, 3).expect("plan");
        let link = |from: Endpoint| {
            plan.links
                .iter()
                .find(|l| l.from == from && l.to == ReplicaId(2))
                .map(|l| l.target)
        };
        assert_eq!(
            link(Endpoint::Replica(ReplicaId(1))),
            Some(plan.replicas[2].address)
        );
        assert_eq!(
            link(Endpoint::Twin(ReplicaId(1))),
            plan.replicas[2].twin_address
        );
    }
}
