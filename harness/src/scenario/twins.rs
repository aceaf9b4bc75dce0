//! The `twins` section: how the two processes of each twinned replica split the other
//! principals between them (Twins, Diem). Twin A of every twinned replica joins the first
//! group, twin B the second, so several twin pairs are always split the same way.

use super::locate::Segment::{self, Index, Key};
use super::{Build, Problem, Scenario, problem};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinsSpec {
    /// Exactly two groups of principals that are not twins themselves: replica ids, and
    /// clients as `"client:N"`. Absent = the other replicas split in halves by id (the first
    /// half with twin A) and the clients alternately (even ids with twin A). A principal in
    /// neither group talks to twin A and is never cut.
    #[serde(default)]
    pub groups: Option<Vec<Vec<Member>>>,
    /// Also cut every link between members of different groups, honest ones included: each
    /// group becomes a world of its own, as in the Twins paper's partitions. Off, only the
    /// twins are split (each twin's links to the other group are cut) and the honest
    /// principals stay connected, which is what a run expecting `pass` wants.
    #[serde(default)]
    pub partition: bool,
}

/// A principal named in a twins group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "MemberText", into = "MemberText")]
pub enum Member {
    Replica(u32),
    Client(u32),
}

/// How a member is written: a bare replica id, or `"replica:N"` / `"client:N"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum MemberText {
    Id(u32),
    Name(String),
}

impl TryFrom<MemberText> for Member {
    type Error = String;

    fn try_from(text: MemberText) -> Result<Member, String> {
        let name = match text {
            MemberText::Id(id) => return Ok(Member::Replica(id)),
            MemberText::Name(name) => name,
        };
        let parsed = |prefix: &str| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.trim().parse::<u32>().ok())
        };
        if let Some(id) = parsed("client:") {
            Ok(Member::Client(id))
        } else if let Some(id) = parsed("replica:") {
            Ok(Member::Replica(id))
        } else {
            Err(format!(
                "`{name}` is not a group member: write a replica id (`2` or `\"replica:2\"`) or a client (`\"client:0\"`)"
            ))
        }
    }
}

impl From<Member> for MemberText {
    fn from(member: Member) -> MemberText {
        match member {
            Member::Replica(id) => MemberText::Id(id),
            Member::Client(id) => MemberText::Name(format!("client:{id}")),
        }
    }
}

impl Scenario {
    /// The replica ids that run as twins, in order.
    pub fn twinned(&self) -> Vec<u32> {
        self.replicas
            .iter()
            .filter(|(_, spec)| spec.build == Build::Twin)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The two groups in force: the scenario's, or the default split.
    pub fn twin_groups(&self) -> [Vec<Member>; 2] {
        if let Some(groups) = self.twins.as_ref().and_then(|t| t.groups.as_ref())
            && let [a, b] = groups.as_slice()
        {
            return [a.clone(), b.clone()];
        }
        let twinned = self.twinned();
        let others: Vec<u32> = (0..self.cluster.n() as u32)
            .filter(|id| !twinned.contains(id))
            .collect();
        let (a, b) = others.split_at(others.len().div_ceil(2));
        let mut groups = [
            a.iter().copied().map(Member::Replica).collect::<Vec<_>>(),
            b.iter().copied().map(Member::Replica).collect::<Vec<_>>(),
        ];
        for client in 0..self.workload.clients {
            groups[(client % 2) as usize].push(Member::Client(client));
        }
        groups
    }
}

/// Checks the `twins` section against the replicas and clients that exist.
pub(super) fn validate_twins(s: &Scenario) -> Result<(), Problem> {
    let twinned = s.twinned();
    let Some(spec) = &s.twins else {
        return Ok(());
    };
    if twinned.is_empty() {
        return Err(problem(
            vec![Key("twins".into())],
            "no replica runs as a twin (give one `build: twin` under `replicas`)",
        ));
    }
    let Some(groups) = &spec.groups else {
        return Ok(());
    };
    let at = |rest: Vec<Segment>| {
        let mut path = vec![Key("twins".into()), Key("groups".into())];
        path.extend(rest);
        path
    };
    if groups.len() != 2 {
        return Err(problem(
            at(Vec::new()),
            format!(
                "give exactly two groups (twin A joins the first, twin B the second), not {}",
                groups.len()
            ),
        ));
    }
    let n = s.cluster.n() as u32;
    let mut seen = BTreeSet::new();
    for (g, group) in groups.iter().enumerate() {
        for (m, member) in group.iter().enumerate() {
            let here = at(vec![Index(g), Index(m)]);
            match *member {
                Member::Replica(id) if id >= n => {
                    return Err(problem(
                        here,
                        format!("replica {id} does not exist (ids 0..{n})"),
                    ));
                }
                Member::Replica(id) if twinned.contains(&id) => {
                    return Err(problem(
                        here,
                        format!(
                            "replica {id} is a twin: its twin A joins the first group and twin B the second by themselves"
                        ),
                    ));
                }
                Member::Client(id) if id >= s.workload.clients => {
                    return Err(problem(
                        here,
                        format!(
                            "client {id} does not exist (the workload has {} clients)",
                            s.workload.clients
                        ),
                    ));
                }
                _ => {}
            }
            if !seen.insert(*member) {
                return Err(problem(here, "listed twice: the groups must not overlap"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;
    use std::path::Path;

    const BASE: &str = "name: t\nworkload:\n  kind: kv\n  clients: 2\n  duration_s: 3\nreplicas:\n  1: { build: twin }\n";

    #[test]
    fn twin_groups_read_replica_ids_and_named_clients() {
        let text = format!(
            "{BASE}twins:\n  groups: [[0, 2, \"client:0\"], [\"replica:3\", \"client:1\"]]\n"
        );
        let scenario = parse(&text, Path::new("t.yaml")).expect("parses");
        assert_eq!(
            scenario.twin_groups(),
            [
                vec![Member::Replica(0), Member::Replica(2), Member::Client(0)],
                vec![Member::Replica(3), Member::Client(1)],
            ]
        );
    }

    #[test]
    fn default_twin_groups_split_the_other_principals_in_halves() {
        let scenario = parse(BASE, Path::new("t.yaml")).expect("parses");
        assert_eq!(scenario.twinned(), vec![1]);
        assert_eq!(
            scenario.twin_groups(),
            [
                vec![Member::Replica(0), Member::Replica(2), Member::Client(0)],
                vec![Member::Replica(3), Member::Client(1)],
            ]
        );
    }

    #[test]
    fn twin_groups_naming_a_twin_or_a_missing_client_are_refused_with_their_line() {
        let twin_listed = format!("{BASE}twins:\n  groups:\n    - [0, 1]\n    - [3]\n");
        let error = parse(&twin_listed, Path::new("t.yaml")).expect_err("1 is a twin");
        assert!(error.to_string().contains("replica 1 is a twin"), "{error}");
        assert_eq!(error.line(), Some(10), "{error}");
        let missing_client = format!("{BASE}twins:\n  groups: [[0, \"client:5\"], [3]]\n");
        let error = parse(&missing_client, Path::new("t.yaml")).expect_err("no client 5");
        assert!(
            error.to_string().contains("client 5 does not exist"),
            "{error}"
        );
        let three = format!("{BASE}twins:\n  groups: [[0], [2], [3]]\n");
        let error = parse(&three, Path::new("t.yaml")).expect_err("three groups");
        assert!(error.to_string().contains("exactly two groups"), "{error}");
    }

    #[test]
    fn a_twins_section_without_a_twin_is_refused() {
        let text = "name: t\nworkload:\n  kind: kv\n  duration_s: 3\ntwins:\n  partition: true\n";
        let error = parse(text, Path::new("t.yaml")).expect_err("no twin");
        assert!(
            error.to_string().contains("no replica runs as a twin"),
            "{error}"
        );
        assert_eq!(error.line(), Some(5), "{error}");
    }

    #[test]
    fn a_bad_member_name_is_a_parse_error() {
        let text = format!("{BASE}twins:\n  groups: [[0, \"clients:0\"], [3]]\n");
        let error = parse(&text, Path::new("t.yaml")).expect_err("bad name");
        assert!(
            error.to_string().contains("is not a group member"),
            "{error}"
        );
    }
}
