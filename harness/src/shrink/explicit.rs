//! The run's resolved nemesis (`plan.json`) as an explicit `nemesis.schedule` the scenario
//! format accepts, so single actions can be removed, shortened or kept.
//!
//! A `generate` section is a function of the seed, the interval and the workload's duration:
//! removing one of its faults is not something it can express, and shortening the workload
//! regenerates all of them. The explicit form pins every choice the plan made: targets are
//! written as ids (or `primary`, resolved at run time as before) and every partition whose
//! grouping the plan fixed is written as the `link-fault` of the exact drop rules the
//! nemesis installs for it (`FaultBook::plan_start`), because an explicit `partition` would
//! draw its grouping from the seed again, and removing an earlier partition would change
//! the grouping of every later one (the only difference: `nemesis.jsonl` no longer names the
//! replica an `isolate-one` cut off). Only partitions decided at run time (`isolate-primary`)
//! stay partitions; they draw nothing that matters.

use crate::nemesis::{
    FaultBook, PlannedAction, PlannedFault, PlannedTarget, PlannedTrigger, TriggerTarget,
};
use crate::plan::Plan;
use crate::scenario::{
    FaultAction, NamedTarget, PartitionShape, Scenario, ScheduledFault, TargetSpec, TriggerSpec,
};
use replica::ReplicaId;

/// `scenario` with its nemesis replaced by the explicit form of `plan`'s faults (the
/// allowance for more than f down is kept).
pub(crate) fn with_explicit_schedule(scenario: &Scenario, plan: &Plan) -> Scenario {
    let mut explicit = scenario.clone();
    explicit.nemesis.generate = None;
    explicit.nemesis.schedule = schedule_of(plan);
    explicit
}

/// One `ScheduledFault` per planned fault, in the plan's order (which is by start time).
pub(crate) fn schedule_of(plan: &Plan) -> Vec<ScheduledFault> {
    let book = FaultBook::new(plan.n(), plan.links.clone(), plan.twins.clone());
    let mut schedule: Vec<ScheduledFault> = plan
        .nemesis
        .iter()
        .map(|fault| scheduled(fault, &book))
        .collect();
    // A chained trigger names the fault it follows by its position in this schedule.
    for (index, fault) in plan.nemesis.iter().enumerate() {
        let after = fault.trigger.as_ref().and_then(|t| t.after_fault.as_ref());
        let position = after.and_then(|id| plan.nemesis.iter().position(|f| &f.id == id));
        if let (Some(position), Some(on)) = (position, schedule[index].on.as_mut()) {
            on.after_fault = Some(position);
        }
    }
    schedule
}

fn target_spec(target: PlannedTarget) -> TargetSpec {
    match target {
        PlannedTarget::Replica(ReplicaId(id)) => TargetSpec::Id(id),
        PlannedTarget::Primary => TargetSpec::Named(NamedTarget::Primary),
    }
}

fn scheduled(fault: &PlannedFault, book: &FaultBook) -> ScheduledFault {
    if let Some(trigger) = &fault.trigger {
        return triggered(fault, trigger);
    }
    let mut out = ScheduledFault {
        at_ms: Some(fault.start_ms),
        on: None,
        after_ms: None,
        action: FaultAction::LinkFault,
        duration_ms: fault.end_ms.map(|end| end.saturating_sub(fault.start_ms)),
        target: None,
        shape: None,
        one_way: false,
        rules: Vec::new(),
        permanent: false,
    };
    match &fault.action {
        PlannedAction::Partition {
            shape,
            target,
            cuts,
            one_way,
        } if cuts.is_empty() => {
            out.action = FaultAction::Partition;
            out.shape = Some(*shape);
            out.target = target.map(target_spec);
            out.one_way = *one_way;
        }
        PlannedAction::Partition { shape, .. } => {
            // The grouping is in the plan: these are the very rules starting it installs.
            let prefix = format!("{}/", fault.id);
            let start = book.plan_start(fault, || ReplicaId(0));
            out.rules = start
                .rules
                .into_iter()
                .map(|mut rule| {
                    let rest = rule.id.strip_prefix(&prefix).unwrap_or(&rule.id);
                    rule.id = format!("{}-{rest}", shape_name(*shape));
                    rule
                })
                .collect();
        }
        PlannedAction::LinkFault { rules } => out.rules = rules.clone(),
        PlannedAction::Kill { target, permanent } => {
            out.action = FaultAction::Kill;
            out.target = Some(target_spec(*target));
            out.permanent = *permanent;
            if *permanent {
                out.duration_ms = None;
            }
        }
        PlannedAction::Restart { target } => {
            out.action = FaultAction::Restart;
            out.target = Some(target_spec(*target));
            out.duration_ms = None;
        }
        PlannedAction::Pause { target } => {
            out.action = FaultAction::Pause;
            out.target = Some(target_spec(*target));
        }
        PlannedAction::Resume { target } => {
            out.action = FaultAction::Resume;
            out.target = Some(target_spec(*target));
            out.duration_ms = None;
        }
    }
    out
}

/// A triggered fault as the scenario wrote it (its `after_fault` by schedule position in
/// the plan's order); the shrinker removes such a fault or keeps it whole.
fn triggered(fault: &PlannedFault, trigger: &PlannedTrigger) -> ScheduledFault {
    let by = trigger.by.map(target_spec);
    let target = match trigger.target {
        TriggerTarget::Sender => None,
        TriggerTarget::Replica(ReplicaId(id)) => Some(TargetSpec::Id(id)),
        TriggerTarget::Primary => Some(TargetSpec::Named(NamedTarget::Primary)),
    };
    let permanent = matches!(
        fault.action,
        PlannedAction::Kill {
            permanent: true,
            ..
        }
    );
    let after_ms = match trigger.action {
        FaultAction::Restart => trigger.after_ms.filter(|ms| *ms > 0),
        _ => trigger.after_ms,
    };
    ScheduledFault {
        at_ms: (fault.start_ms > 0).then_some(fault.start_ms),
        on: Some(TriggerSpec {
            sent: trigger.sent,
            replica: by,
            view: trigger.view,
            seq: trigger.seq,
            // Rewritten by `schedule_of`, which knows every fault's position.
            after_fault: None,
        }),
        action: trigger.action,
        after_ms,
        duration_ms: None,
        target,
        shape: None,
        one_way: false,
        rules: Vec::new(),
        permanent,
    }
}

pub(crate) fn shape_name(shape: PartitionShape) -> &'static str {
    match shape {
        PartitionShape::Halves => "halves",
        PartitionShape::IsolateOne => "isolate-one",
        PartitionShape::IsolatePrimary => "isolate-primary",
        PartitionShape::Bridge => "bridge",
        PartitionShape::Ring => "ring",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::{Step, resolve_schedule};
    use crate::plan::{resolve, substream};
    use crate::proxy::Rule;
    use crate::scenario::FaultKind;

    /// A rule without its id: what it matches and does.
    fn essence(rules: &[Rule]) -> Vec<String> {
        rules
            .iter()
            .map(|r| format!("{:?} {:?}", r.matcher, r.action))
            .collect()
    }

    fn steps(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::AddRules(rules) => format!("add {:?}", essence(rules)),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_explicit_schedule_starts_the_same_faults_at_the_same_times() {
        let mut loaded = crate::scenario::load("smoke").expect("built-in");
        if let Some(generate) = loaded.scenario.nemesis.generate.as_mut() {
            generate.kinds = vec![
                FaultKind::Partition,
                FaultKind::Delay,
                FaultKind::Loss,
                FaultKind::Duplicate,
                FaultKind::Reorder,
                FaultKind::Rewrite,
                FaultKind::Kill,
                FaultKind::Pause,
            ];
            generate.interval_ms = 400;
        }
        let mut partitions = 0;
        for seed in 0..12 {
            let plan = resolve(&loaded, seed).expect("plan");
            let explicit = with_explicit_schedule(&plan.scenario, &plan);
            crate::scenario::parse(
                &super::super::render::render(&explicit),
                std::path::Path::new("x"),
            )
            .expect("the explicit form is a valid scenario");
            let again = resolve_schedule(
                &explicit.nemesis.schedule,
                plan.n(),
                &mut substream(seed, "nemesis"),
            );
            assert_eq!(again.len(), plan.nemesis.len());
            let book = FaultBook::new(plan.n(), plan.links.clone(), plan.twins.clone());
            for (then, now) in plan.nemesis.iter().zip(&again) {
                assert_eq!((then.start_ms, then.end_ms), (now.start_ms, now.end_ms));
                let (a, b) = (
                    book.plan_start(then, || ReplicaId(1)),
                    book.plan_start(now, || ReplicaId(1)),
                );
                assert_eq!(steps(&a.steps), steps(&b.steps), "seed {seed}: {then:?}");
                if let PlannedAction::Partition { .. } = then.action {
                    // A fixed partition became a link fault: the same rules, but
                    // nemesis.jsonl no longer names the replica it isolated.
                    partitions += 1;
                } else {
                    assert_eq!(a.targets, b.targets);
                }
            }
        }
        assert!(partitions > 3, "the seeds drew partitions");
    }

    #[test]
    fn triggered_faults_are_written_back_whole_with_their_chain() {
        let text = "name: t\nworkload:\n  kind: kv\n  duration_s: 5\nnemesis:\n  allow_over_f: true\n  schedule:\n    - at_ms: 1000\n      action: kill\n      target: 1\n      duration_ms: 500\n    - on: {sent: commit, replica: 2, after_fault: 0}\n      action: restart\n    - at_ms: 300\n      on: {sent: new-view}\n      action: pause\n      target: primary\n      after_ms: 200\n";
        let loaded = crate::scenario::LoadedScenario::from_text(text, std::path::Path::new("t"))
            .expect("parses");
        let plan = resolve(&loaded, 4).expect("plan");
        let explicit = with_explicit_schedule(&plan.scenario, &plan);
        let rendered = super::super::render::render(&explicit);
        let parsed = crate::scenario::parse(&rendered, std::path::Path::new("x"))
            .expect("the explicit form is a valid scenario");
        let again = resolve_schedule(&parsed.nemesis.schedule, plan.n(), &mut substream(4, "x"));
        let followed = |faults: &[PlannedFault], i: usize| {
            let after = faults[i].trigger.as_ref()?.after_fault.as_ref()?;
            faults.iter().position(|f| &f.id == after)
        };
        assert_eq!(again.len(), plan.nemesis.len());
        for (i, (then, now)) in plan.nemesis.iter().zip(&again).enumerate() {
            assert_eq!(then.start_ms, now.start_ms);
            assert_eq!(then.action, now.action);
            assert_eq!(
                followed(&plan.nemesis, i),
                followed(&again, i),
                "{rendered}"
            );
            let strip = |f: &PlannedFault| {
                f.trigger.clone().map(|t| PlannedTrigger {
                    after_fault: None,
                    ..t
                })
            };
            assert_eq!(strip(then), strip(now), "{rendered}");
        }
    }
}
