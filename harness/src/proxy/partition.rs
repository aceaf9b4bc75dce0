//! Partitions as drop rules on the links between groups.

use super::matching::endpoint_label;
use super::rules::{Action, Direction, Endpoint, LinkSpec, Matcher, Rule};
use std::collections::BTreeSet;

/// Drop rules that cut every link between endpoints that share no group.
///
/// Groups may overlap, which is how the non-transitive shapes are written: a bridge is two
/// groups that share the bridge node, a ring is each node's group with its neighbour. An
/// endpoint in no group (a client, typically) is not cut from anyone.
///
/// With `one_way`, only traffic from the endpoint whose first group comes earlier to the one
/// whose first group comes later is cut: later groups still reach earlier ones. Traffic is
/// cut on whichever connection carries it (forward on the sender's link, backward on the
/// receiver's).
///
/// Rule ids are `{id_prefix}:{from}->{to}`, so `ProxyHandle::remove_rules_with_prefix` heals
/// the whole partition.
pub fn partition_rules(
    id_prefix: &str,
    groups: &[Vec<Endpoint>],
    one_way: bool,
    links: &[LinkSpec],
) -> Vec<Rule> {
    let groups_of = |endpoint: Endpoint| -> BTreeSet<usize> {
        groups
            .iter()
            .enumerate()
            .filter(|(_, members)| members.contains(&endpoint))
            .map(|(index, _)| index)
            .collect()
    };
    let mut seen = BTreeSet::new();
    let mut rules = Vec::new();
    for link in links {
        if !seen.insert((link.from, link.to)) {
            continue;
        }
        let dialer = groups_of(link.from);
        let listener = groups_of(Endpoint::Replica(link.to));
        let (Some(&dialer_first), Some(&listener_first)) = (dialer.first(), listener.first())
        else {
            continue;
        };
        if !dialer.is_disjoint(&listener) {
            continue;
        }
        let direction = match (one_way, dialer_first < listener_first) {
            (false, _) => Direction::Both,
            (true, true) => Direction::Forward,
            (true, false) => Direction::Backward,
        };
        rules.push(Rule {
            id: format!(
                "{id_prefix}:{}->{}",
                endpoint_label(link.from),
                endpoint_label(Endpoint::Replica(link.to))
            ),
            matcher: Matcher {
                from: Some(vec![link.from]),
                to: Some(vec![link.to]),
                direction,
                ..Matcher::default()
            },
            action: Action::Drop { probability: 1.0 },
        });
    }
    rules
}
