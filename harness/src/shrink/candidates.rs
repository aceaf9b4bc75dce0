//! The dimensions a scenario shrinks along, as edits of the typed `Scenario`. Each edit is
//! only a proposal: the loop renders it, and the normal scenario validation and plan
//! resolution decide whether it is a scenario at all before it is run.
//!
//! Two shapes: a *step* dimension proposes, per slot (the duration, the clients, one fault's
//! window, one replica), a few smaller values, the biggest cut first; a *list* dimension
//! (`ListTarget`) is a list that ddmin cuts down (the nemesis actions, the network rules, the
//! rules of one link fault, a behaviour's message kinds, the kinds a `generate` section
//! draws from).

use crate::scenario::{
    Build, FaultAction, Member, ReplicaSpec, Scenario, ScheduledFault, TargetSpec,
};
use byzantine::Behaviour;
use serde::{Deserialize, Serialize};

/// Below this a workload is too short to say anything.
const MIN_DURATION_MS: u64 = 200;
/// A fault window is not halved below this.
const MIN_WINDOW_MS: u64 = 50;
/// Byzantine parameters that are a rate, a count or a probability: halving them is less
/// misbehaviour. (Parameters that are a time, such as `after_ms`, are not: halving
/// `crash-later`'s would crash it sooner.)
const INTENSITY_PARAMS: [&str; 3] = ["rate", "burst", "probability"];
/// Byzantine parameters that are a comma-separated list ddmin can cut (`mutate`'s rounds).
const LIST_PARAMS: [&str; 1] = ["kinds"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dimension {
    Duration,
    Nemesis,
    ByzantineReplicas,
    NetworkRules,
    Clients,
    Keys,
    FaultWindows,
    ByzantineParams,
    LinkFaultRules,
}

impl Dimension {
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Duration => "duration",
            Dimension::Nemesis => "nemesis",
            Dimension::ByzantineReplicas => "byzantine-replicas",
            Dimension::NetworkRules => "network-rules",
            Dimension::Clients => "clients",
            Dimension::Keys => "keys",
            Dimension::FaultWindows => "fault-windows",
            Dimension::ByzantineParams => "byzantine-params",
            Dimension::LinkFaultRules => "link-fault-rules",
        }
    }
}

/// One proposed change.
#[derive(Clone, Debug)]
pub(crate) struct Edit {
    /// What the proposal is about; proposals of one slot are tried in order, and a slot is
    /// done for the round when none of them still fails.
    pub slot: String,
    pub dimension: Dimension,
    /// For people: `duration 6000 -> 3000 ms`.
    pub what: String,
    pub scenario: Scenario,
}

/// A step dimension: every proposal for the scenario as it is now.
pub(crate) type Proposals = fn(&Scenario) -> Vec<Edit>;

fn edit(slot: String, dimension: Dimension, what: String, scenario: Scenario) -> Edit {
    Edit {
        slot,
        dimension,
        what,
        scenario,
    }
}

/// Halving first, then cutting a quarter, then an eighth, in steps of 100 ms. Faults that
/// would start after the new end go too (they could never start).
pub(crate) fn duration(s: &Scenario) -> Vec<Edit> {
    let now = s.workload.duration_ms();
    let mut seen = Vec::new();
    let mut edits = Vec::new();
    for cut in [2, 4, 8] {
        let new = (now - now / cut) / 100 * 100;
        if new < MIN_DURATION_MS || new >= now || seen.contains(&new) {
            continue;
        }
        seen.push(new);
        let mut next = s.clone();
        next.workload.duration_s = new as f64 / 1000.0;
        let before = next.nemesis.schedule.len();
        next.nemesis
            .schedule
            .retain(|f| f.at_ms.is_none_or(|at| at <= new));
        let dropped = before - next.nemesis.schedule.len();
        let mut what = format!("duration {now} -> {new} ms");
        if dropped > 0 {
            let faults = if dropped == 1 { "fault" } else { "faults" };
            what.push_str(&format!(" (and the {dropped} {faults} after the new end)"));
        }
        edits.push(edit("duration".into(), Dimension::Duration, what, next));
    }
    edits
}

/// Half of `now`, then one fewer, each only if it is at least 1 and new.
fn smaller_counts(now: u32) -> Vec<u32> {
    let mut counts: Vec<u32> = [now / 2, now.saturating_sub(1)]
        .into_iter()
        .filter(|c| *c >= 1 && *c < now)
        .collect();
    counts.dedup();
    counts
}

/// Half the clients, then one fewer. Twin groups lose the clients that no longer exist.
pub(crate) fn clients(s: &Scenario) -> Vec<Edit> {
    let now = s.workload.clients;
    let mut edits = Vec::new();
    for new in smaller_counts(now) {
        let mut next = s.clone();
        next.workload.clients = new;
        if let Some(groups) = next.twins.as_mut().and_then(|t| t.groups.as_mut()) {
            for group in groups.iter_mut() {
                group.retain(|m| !matches!(m, Member::Client(id) if *id >= new));
            }
        }
        let what = format!("clients {now} -> {new}");
        edits.push(edit("clients".into(), Dimension::Clients, what, next));
    }
    edits
}

/// Half the keys, then one fewer.
pub(crate) fn keys(s: &Scenario) -> Vec<Edit> {
    let now = s.workload.keys;
    let mut edits = Vec::new();
    for new in smaller_counts(now) {
        let mut next = s.clone();
        next.workload.keys = new;
        edits.push(edit(
            "keys".into(),
            Dimension::Keys,
            format!("keys {now} -> {new}"),
            next,
        ));
    }
    edits
}

/// Each non-honest replica in turn runs the honest build instead. A `twins` section left
/// without a twin goes with the last one.
pub(crate) fn byzantine_replicas(s: &Scenario) -> Vec<Edit> {
    s.replicas
        .iter()
        .filter(|(_, spec)| spec.build != Build::Honest)
        .map(|(id, spec)| {
            let mut next = s.clone();
            next.replicas.remove(id);
            if next.twinned().is_empty() {
                next.twins = None;
            }
            let what = format!("r{id} ({}) -> honest", describe_build(spec));
            edit(
                format!("replica-{id}"),
                Dimension::ByzantineReplicas,
                what,
                next,
            )
        })
        .collect()
}

pub(crate) fn describe_build(spec: &ReplicaSpec) -> String {
    match spec.build {
        Build::Honest => "honest".into(),
        Build::Twin => "twin".into(),
        Build::Byzantine => {
            let mut out = spec.behaviour.as_ref().map_or("", |b| b.name()).to_string();
            let params = spec.params();
            if !params.is_empty() {
                let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!(" {}", params.join(" ")));
            }
            out
        }
    }
}

/// Each fault's window halved (down to `MIN_WINDOW_MS`); with a `generate` section, its
/// intensity halved (shorter and milder faults).
pub(crate) fn fault_windows(s: &Scenario) -> Vec<Edit> {
    let mut edits = Vec::new();
    for (index, fault) in s.nemesis.schedule.iter().enumerate() {
        let Some(window) = fault.duration_ms else {
            continue;
        };
        let new = window / 2 / 10 * 10;
        if new < MIN_WINDOW_MS {
            continue;
        }
        let mut next = s.clone();
        next.nemesis.schedule[index].duration_ms = Some(new);
        let what = format!(
            "{}: window {window} -> {new} ms",
            describe_fault(index, fault)
        );
        edits.push(edit(
            format!("window-{index}"),
            Dimension::FaultWindows,
            what,
            next,
        ));
    }
    if let Some(generate) = &s.nemesis.generate {
        let new = (generate.intensity / 2.0 * 1000.0).round() / 1000.0;
        if new >= 0.05 {
            let mut next = s.clone();
            if let Some(g) = next.nemesis.generate.as_mut() {
                g.intensity = new;
            }
            let what = format!("generated intensity {} -> {new}", generate.intensity);
            edits.push(edit(
                "intensity".into(),
                Dimension::FaultWindows,
                what,
                next,
            ));
        }
        // A longer interval is fewer generated faults (none once it outlasts the workload).
        let interval = generate.interval_ms.saturating_mul(2);
        if generate.interval_ms >= s.workload.duration_ms() {
            return edits;
        }
        let mut next = s.clone();
        if let Some(g) = next.nemesis.generate.as_mut() {
            g.interval_ms = interval;
        }
        let what = format!(
            "generated interval {} -> {interval} ms",
            generate.interval_ms
        );
        edits.push(edit("interval".into(), Dimension::Nemesis, what, next));
    }
    edits
}

/// The default a behaviour's catalogue line gives `param` (`burst=8 (messages per 50 ms
/// tick)` gives `8`), if it lists one.
fn catalogue_default(behaviour: &str, param: &str) -> Option<String> {
    let info = byzantine::catalogue()
        .into_iter()
        .find(|b| b.name == behaviour)?;
    info.params.split(", ").find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == param).then(|| value.split_whitespace().next().unwrap_or("").to_string())
    })
}

/// The value of `param` in force for a Byzantine replica: its own, or the catalogue's.
fn param_value(spec: &ReplicaSpec, param: &str) -> Option<String> {
    let behaviour = spec.behaviour.as_ref()?;
    behaviour
        .params()
        .remove(param)
        .or_else(|| catalogue_default(behaviour.name(), param))
}

/// `spec` with its behaviour's `param` set to `value`, if the behaviour takes that value.
fn with_param(spec: &ReplicaSpec, param: &str, value: String) -> Result<ReplicaSpec, String> {
    let behaviour = spec
        .behaviour
        .as_ref()
        .ok_or("a build without a behaviour has no parameters")?;
    let mut params = behaviour.params();
    params.insert(param.to_string(), value);
    let behaviour = Behaviour::parse(behaviour.name(), &params).map_err(|e| e.to_string())?;
    Ok(ReplicaSpec {
        build: spec.build,
        behaviour: Some(behaviour),
    })
}

/// Every rate, count or probability of a Byzantine behaviour halved.
pub(crate) fn byzantine_params(s: &Scenario) -> Vec<Edit> {
    let mut edits = Vec::new();
    for (id, spec) in &s.replicas {
        if spec.build != Build::Byzantine {
            continue;
        }
        for param in INTENSITY_PARAMS {
            let Some(value) = param_value(spec, param) else {
                continue;
            };
            let Some(halved) = halve(&value) else {
                continue;
            };
            let Ok(halved_spec) = with_param(spec, param, halved.clone()) else {
                continue;
            };
            let mut next = s.clone();
            next.replicas.insert(*id, halved_spec);
            let what = format!(
                "r{id} {}: {param} {value} -> {halved}",
                spec.behaviour.as_ref().map_or("", |b| b.name())
            );
            edits.push(edit(
                format!("param-{id}-{param}"),
                Dimension::ByzantineParams,
                what,
                next,
            ));
        }
    }
    edits
}

/// Half of a whole number (down to 1) or of a fraction (down to 0.01), as text.
fn halve(value: &str) -> Option<String> {
    let value = value.trim();
    if let Ok(whole) = value.parse::<u64>() {
        return (whole >= 2).then(|| (whole / 2).to_string());
    }
    let fraction = value.parse::<f64>().ok()?;
    let half = (fraction / 2.0 * 1000.0).round() / 1000.0;
    (half >= 0.01).then(|| half.to_string())
}

/// For people: `s03 kill r2 at 4000 ms for 800 ms`.
pub(crate) fn describe_fault(index: usize, fault: &ScheduledFault) -> String {
    let action = match fault.action {
        FaultAction::Partition => "partition",
        FaultAction::LinkFault => "link-fault",
        FaultAction::Kill => "kill",
        FaultAction::Restart => "restart",
        FaultAction::Pause => "pause",
        FaultAction::Resume => "resume",
    };
    let mut out = format!("#{index} {action}");
    if let Some(shape) = fault.shape {
        out.push_str(&format!(" {}", super::explicit::shape_name(shape)));
    }
    match fault.target {
        Some(TargetSpec::Id(id)) => out.push_str(&format!(" r{id}")),
        Some(TargetSpec::Named(named)) => out.push_str(&format!(
            " {}",
            serde_json::to_value(named)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        )),
        None => {}
    }
    if !fault.rules.is_empty() {
        let first = &fault.rules[0].id;
        let kind = serde_json::to_value(&fault.rules[0].action)
            .ok()
            .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
            .unwrap_or_default();
        out.push_str(&format!(
            " ({} {kind} rule{}, {first}{})",
            fault.rules.len(),
            if fault.rules.len() == 1 { "" } else { "s" },
            if fault.rules.len() > 1 { ", ..." } else { "" }
        ));
    }
    if let Some(on) = &fault.on {
        // A triggered fault: the shrinker removes it or keeps it, never edits it.
        out.push_str(&format!(" on {}", on.sent.name()));
    }
    if let Some(at_ms) = fault.at_ms {
        out.push_str(&format!(" at {at_ms} ms"));
    }
    if let Some(window) = fault.duration_ms {
        out.push_str(&format!(" for {window} ms"));
    }
    out
}

/// A list ddmin cuts down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListTarget {
    /// `nemesis.schedule`.
    Schedule,
    /// The kinds a `generate` section draws from (when the schedule could not be made
    /// explicit).
    GenerateKinds,
    /// `network.rules`.
    NetworkRules,
    /// The rules of the link fault at this position of the schedule.
    LinkFaultRules(usize),
    /// A comma-separated Byzantine parameter (`mutate`'s `kinds`).
    Param { replica: u32, param: &'static str },
}

impl ListTarget {
    /// Every list of `s` of the given dimension worth cutting (two items or more, or one
    /// item where none is a valid answer: the whole nemesis, the whole network).
    pub(crate) fn of(s: &Scenario, dimension: Dimension) -> Vec<ListTarget> {
        match dimension {
            Dimension::Nemesis if s.nemesis.generate.is_some() => vec![ListTarget::GenerateKinds],
            Dimension::Nemesis => vec![ListTarget::Schedule],
            Dimension::NetworkRules => vec![ListTarget::NetworkRules],
            Dimension::LinkFaultRules => (0..s.nemesis.schedule.len())
                .filter(|i| s.nemesis.schedule[*i].rules.len() >= 2)
                .map(ListTarget::LinkFaultRules)
                .collect(),
            Dimension::ByzantineParams => s
                .replicas
                .iter()
                .filter(|(_, spec)| spec.build == Build::Byzantine)
                .flat_map(|(id, spec)| {
                    LIST_PARAMS
                        .iter()
                        .filter(|p| param_value(spec, p).is_some())
                        .map(|p| ListTarget::Param {
                            replica: *id,
                            param: p,
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn dimension(&self) -> Dimension {
        match self {
            ListTarget::Schedule | ListTarget::GenerateKinds => Dimension::Nemesis,
            ListTarget::NetworkRules => Dimension::NetworkRules,
            ListTarget::LinkFaultRules(_) => Dimension::LinkFaultRules,
            ListTarget::Param { .. } => Dimension::ByzantineParams,
        }
    }

    /// What the list holds, for people: `nemesis actions`, `rules of #3 link-fault ...`.
    pub(crate) fn noun(&self, s: &Scenario) -> String {
        match self {
            ListTarget::Schedule => "nemesis actions".into(),
            ListTarget::GenerateKinds => "generated fault kinds".into(),
            ListTarget::NetworkRules => "network rules".into(),
            ListTarget::LinkFaultRules(i) => format!(
                "rules of {}",
                s.nemesis
                    .schedule
                    .get(*i)
                    .map(|f| describe_fault(*i, f))
                    .unwrap_or_default()
            ),
            ListTarget::Param { replica, param } => format!("r{replica} {param}"),
        }
    }

    /// One label per item, in order.
    pub(crate) fn items(&self, s: &Scenario) -> Vec<String> {
        match self {
            ListTarget::Schedule => s
                .nemesis
                .schedule
                .iter()
                .enumerate()
                .map(|(i, f)| describe_fault(i, f))
                .collect(),
            ListTarget::GenerateKinds => s
                .nemesis
                .generate
                .as_ref()
                .map(|g| {
                    g.kinds
                        .iter()
                        .map(|k| {
                            serde_json::to_value(k)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ListTarget::NetworkRules => s.network.rules.iter().map(|r| r.id.clone()).collect(),
            ListTarget::LinkFaultRules(i) => s
                .nemesis
                .schedule
                .get(*i)
                .map(|f| f.rules.iter().map(|r| r.id.clone()).collect())
                .unwrap_or_default(),
            ListTarget::Param { replica, param } => s
                .replicas
                .get(replica)
                .and_then(|spec| param_value(spec, param))
                .map(|v| v.split(',').map(|k| k.trim().to_string()).collect())
                .unwrap_or_default(),
        }
    }

    /// `s` with only the items at `kept` (positions in increasing order), or why that is no
    /// scenario at all (a parameter cut to nothing).
    pub(crate) fn keep(&self, s: &Scenario, kept: &[usize]) -> Result<Scenario, String> {
        fn pick<T: Clone>(items: &[T], kept: &[usize]) -> Vec<T> {
            kept.iter().filter_map(|i| items.get(*i).cloned()).collect()
        }
        let mut next = s.clone();
        match self {
            ListTarget::Schedule => next.nemesis.schedule = pick(&s.nemesis.schedule, kept),
            ListTarget::GenerateKinds => {
                if kept.is_empty() {
                    // No kind at all is no nemesis at all.
                    next.nemesis.generate = None;
                } else if let Some(g) = next.nemesis.generate.as_mut() {
                    g.kinds = pick(&g.kinds, kept);
                }
            }
            ListTarget::NetworkRules => next.network.rules = pick(&s.network.rules, kept),
            ListTarget::LinkFaultRules(i) => {
                if let Some(fault) = next.nemesis.schedule.get_mut(*i) {
                    fault.rules = pick(&fault.rules, kept);
                }
            }
            ListTarget::Param { replica, param } => {
                let items = self.items(s);
                if let Some(spec) = s.replicas.get(replica) {
                    let cut =
                        with_param(spec, param, pick(&items, kept).join(",")).map_err(|why| {
                            format!("field `replicas.{replica}.params.{param}`: {why}")
                        })?;
                    next.replicas.insert(*replica, cut);
                }
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str) -> Scenario {
        crate::scenario::load(name).expect("built-in").scenario
    }

    #[test]
    fn the_duration_is_halved_first_and_faults_after_the_end_go() {
        let s = scenario("too-many-crashes");
        let edits = duration(&s);
        assert_eq!(edits[0].scenario.workload.duration_ms(), 2000);
        assert_eq!(edits[0].scenario.nemesis.schedule.len(), 2);
        let mut short = s.clone();
        short.workload.duration_s = 1.6;
        let edits = duration(&short);
        assert_eq!(edits[0].scenario.workload.duration_ms(), 800);
        assert!(
            edits[0].scenario.nemesis.schedule.is_empty(),
            "{}",
            edits[0].what
        );
    }

    #[test]
    fn fewer_clients_leave_the_twin_groups_naming_only_clients_that_exist() {
        let s = scenario("neg-twins-f1");
        let edits = clients(&s);
        assert_eq!(edits.len(), 2, "halve, then one fewer");
        let halved = &edits[0].scenario;
        assert_eq!(halved.workload.clients, 2);
        let groups = halved
            .twins
            .as_ref()
            .and_then(|t| t.groups.clone())
            .expect("groups");
        assert!(
            groups
                .iter()
                .flatten()
                .all(|m| !matches!(m, Member::Client(c) if *c >= 2))
        );
        crate::scenario::parse(
            &super::super::render::render(halved),
            std::path::Path::new("x"),
        )
        .expect("still valid");
    }

    #[test]
    fn intensity_parameters_halve_from_the_catalogue_default_when_unset() {
        assert_eq!(catalogue_default("replay", "burst").as_deref(), Some("8"));
        assert_eq!(
            catalogue_default("mutate", "probability").as_deref(),
            Some("0.2")
        );
        assert_eq!(halve("8").as_deref(), Some("4"));
        assert_eq!(halve("0.2").as_deref(), Some("0.1"));
        assert_eq!(halve("1"), None);
        let edits = byzantine_params(&scenario("byz-replay"));
        assert!(
            edits.iter().any(|e| e.what.contains("burst 8 -> 4")),
            "{:?}",
            edits.iter().map(|e| &e.what).collect::<Vec<_>>()
        );
    }

    #[test]
    fn list_targets_keep_only_the_chosen_items() {
        let s = scenario("neg-wrong-reply-f1");
        let target = ListTarget::NetworkRules;
        assert_eq!(target.items(&s), vec!["slow-honest-replies".to_string()]);
        let none = target.keep(&s, &[]).expect("no rule is a scenario");
        assert!(none.network.rules.is_empty());
        let mutate = scenario("byz-mutate");
        let lists = ListTarget::of(&mutate, Dimension::ByzantineParams);
        assert_eq!(lists.len(), 1, "{lists:?}");
        let kinds = lists[0].items(&mutate);
        assert!(kinds.len() >= 2, "{kinds:?}");
        let one = lists[0]
            .keep(&mutate, &[1])
            .expect("one kind is a scenario");
        let spec = one
            .replicas
            .values()
            .find(|r| r.build == Build::Byzantine)
            .expect("byz");
        assert_eq!(spec.params().get("kinds"), Some(&kinds[1]));
        assert!(
            lists[0].keep(&mutate, &[]).is_err(),
            "no kind is no scenario"
        );
    }
}
