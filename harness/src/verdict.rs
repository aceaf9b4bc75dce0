//! Judging a run from its files (the same code for `gauntlet run` and `gauntlet check`) and
//! `verdict.json`.

use crate::backend::Backend;
use crate::check::{self, CheckOutcome, CheckResult, LinearizabilityOptions};
use crate::defence::{Defence, FaultyReplica, defence_of, faulty_replicas};
use crate::layout::RunDir;
use crate::plan::Plan;
use crate::proxy::{FrameCounts, ProxyStats};
use crate::scenario::{Expectation, Oracle};
use anyhow::Context;
use replica::ReplicaId;
use replica::events::{EventLine, ReplicaEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use workloads::history::{EventType, HistoryEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Violation,
    Inconclusive,
    /// The run could not be carried out or its files could not be read.
    Error,
}

impl Outcome {
    /// As `verdict.json` spells it.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Violation => "violation",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Error => "error",
        }
    }
}

/// What happened when, on the history's clock (ns since the run started), for the checkers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub workload_start_ns: u64,
    pub workload_end_ns: u64,
    /// Every fault undone (proxy rules cleared, paused resumed, killed restarted).
    pub heal_ns: u64,
    pub probe_start_ns: u64,
    pub probe_end_ns: u64,
    /// Wall-clock time (ns since the Unix epoch) of the history's zero, so the replicas'
    /// wall-clock events line up with the history.
    #[serde(default)]
    pub started_at_ns: u64,
    /// Which world the run happened in; folders from before the simulator say nothing: real.
    #[serde(default)]
    pub backend: Backend,
    /// Why the run ended before its probe, when it did (only the simulator stops early).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<EarlyStop>,
    /// Replica processes that ended on their own (real processes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_exits: Vec<crate::processes::ReplicaExit>,
}

/// A simulated run that did not reach its liveness probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum EarlyStop {
    /// An oracle, run online, saw its first violation: the rest could only repeat it.
    Violation {
        oracle: String,
        at_ns: u64,
        summary: String,
    },
    /// The run used up its budget of simulator actions: its outcome is unknown.
    OutOfBudget { actions: u64, at_ns: u64 },
}

impl Timeline {
    /// The run folder's `timeline.json`.
    pub fn read(dir: &RunDir) -> anyhow::Result<Timeline> {
        read_json(&dir.timeline())
    }
}

impl EarlyStop {
    pub fn describe(&self) -> String {
        match self {
            EarlyStop::Violation {
                oracle,
                at_ns,
                summary,
            } => format!(
                "the simulation stopped at {} ms, at the first {oracle} violation: {summary}",
                at_ns / 1_000_000
            ),
            EarlyStop::OutOfBudget { actions, at_ns } => format!(
                "the simulation ran out of budget ({actions} actions) at {} ms of virtual time",
                at_ns / 1_000_000
            ),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationCounts {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaCounts {
    pub commits: u64,
    pub executions: u64,
    pub view_changes_completed: u64,
    pub state_transfers: u64,
    pub rejected: u64,
    pub recoveries: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub operations: OperationCounts,
    pub replicas: BTreeMap<ReplicaId, ReplicaCounts>,
    pub nemesis_actions: u64,
    /// What the proxy did over the whole run (absent if its statistics were not saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<FrameCounts>,
    /// Replicas that did not run the honest build, and how they misbehaved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faulty: Vec<FaultyReplica>,
    /// Per honest replica: what it refused (by reason), its view changes and state transfers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub defence: BTreeMap<ReplicaId, Defence>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub scenario: String,
    pub seed: u64,
    /// Real processes or the simulator; verdicts from before the simulator read as real.
    #[serde(default)]
    pub backend: Backend,
    pub outcome: Outcome,
    pub expected: Expectation,
    /// Whether the outcome is what the scenario expects (exit code 0).
    pub as_expected: bool,
    pub checks: Vec<CheckResult>,
    pub counts: Counts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Run this to get the same plan again.
    pub reproduce: String,
    pub run_dir: String,
    /// Wall-clock time (ns since the Unix epoch) of the history's zero (0 = unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ns: Option<u64>,
    /// Hash of the gauntlet, replica and byzantine-replica binaries that produced the run, so
    /// `gauntlet reproduce` can warn when it reruns with different ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

impl Verdict {
    /// The run folder's `verdict.json`, as any build since the first wrote it.
    pub fn read(dir: &RunDir) -> anyhow::Result<Verdict> {
        read_json(&dir.verdict())
    }

    /// 0 = as expected, 1 = unexpected outcome, 2 = the run could not be carried out.
    pub fn exit_code(&self) -> i32 {
        match (self.outcome, self.as_expected) {
            (Outcome::Error, _) => 2,
            (_, true) => 0,
            (_, false) => 1,
        }
    }

    /// Whether the outcome is the one the scenario expects; a run that could not be carried
    /// out never is.
    pub fn met_expectation(&self) -> bool {
        self.exit_code() == 0
    }

    /// The expectation as the scenario spells it.
    pub fn expected_word(&self) -> &'static str {
        match self.expected {
            Expectation::Pass => "pass",
            Expectation::Violation => "violation",
        }
    }

    pub fn error(
        plan: &Plan,
        dir: &RunDir,
        reproduce: String,
        build_id: Option<String>,
        error: &anyhow::Error,
    ) -> Verdict {
        Verdict {
            scenario: plan.scenario.name.clone(),
            seed: plan.seed,
            // The caller knows the backend and overwrites this.
            backend: Backend::Real,
            outcome: Outcome::Error,
            expected: plan.scenario.expect,
            as_expected: false,
            checks: Vec::new(),
            counts: Counts {
                faulty: faulty_replicas(plan),
                ..Counts::default()
            },
            error: Some(format!("{error:#}")),
            reproduce,
            run_dir: dir.root.display().to_string(),
            started_at_ns: None,
            build_id,
        }
    }

    pub fn write(&self, dir: &RunDir) -> anyhow::Result<()> {
        write_json(&dir.verdict(), self)
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{}: {:?} (expected {:?}) — {}\n",
            self.scenario,
            self.outcome,
            self.expected,
            if self.as_expected {
                "as expected"
            } else {
                "UNEXPECTED"
            }
        );
        if self.backend == Backend::Sim {
            out.push_str(&format!(
                "  backend: {}\n",
                crate::report::backend_label(self.backend)
            ));
        }
        let ops = &self.counts.operations;
        out.push_str(&format!(
            "  operations: {} invoked, {} ok, {} fail, {} info; nemesis actions: {}\n",
            ops.invoked, ops.ok, ops.fail, ops.info, self.counts.nemesis_actions
        ));
        if let Some(p) = &self.counts.proxy {
            out.push_str(&format!(
                "  proxy: {} frames, {} dropped, {} delayed, {} duplicated, {} reordered, {} rewritten\n",
                p.received, p.dropped, p.delayed, p.duplicated, p.reordered, p.rewritten
            ));
        }
        for faulty in &self.counts.faulty {
            out.push_str(&format!("  faulty: {}\n", faulty.describe()));
        }
        for (replica, defence) in &self.counts.defence {
            out.push_str(&format!("  honest r{replica}: {}\n", defence.describe()));
        }
        for check in &self.checks {
            out.push_str(&format!(
                "  {:<16} {:<12} {}\n",
                check.name,
                format!("{:?}", check.outcome).to_lowercase(),
                check.summary
            ));
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("  error: {error}\n"));
        }
        out.push_str(&format!("  reproduce: {}\n", self.reproduce));
        out
    }
}

fn count_operations(history: &[HistoryEvent]) -> OperationCounts {
    let mut counts = OperationCounts::default();
    for event in history {
        match event.kind {
            EventType::Invoke => counts.invoked += 1,
            EventType::Ok => counts.ok += 1,
            EventType::Fail => counts.fail += 1,
            EventType::Info => counts.info += 1,
        }
    }
    counts
}

fn count_replica(events: &[EventLine]) -> ReplicaCounts {
    let mut counts = ReplicaCounts::default();
    for line in events {
        match line.event {
            ReplicaEvent::Commit { .. } => counts.commits += 1,
            ReplicaEvent::Execute { .. } => counts.executions += 1,
            ReplicaEvent::ViewChangeCompleted { .. } => counts.view_changes_completed += 1,
            ReplicaEvent::StateTransfer { .. } => counts.state_transfers += 1,
            ReplicaEvent::Rejected { .. } => counts.rejected += 1,
            ReplicaEvent::Recovered { .. } => counts.recoveries += 1,
            _ => {}
        }
    }
    counts
}

/// Whether `outcome` is what a scenario expecting `expected` should come to.
fn meets(outcome: Outcome, expected: Expectation) -> bool {
    matches!(
        (outcome, expected),
        (Outcome::Pass, Expectation::Pass) | (Outcome::Violation, Expectation::Violation)
    )
}

fn skipped(oracle: Oracle) -> CheckResult {
    CheckResult {
        name: oracle.name().to_string(),
        outcome: CheckOutcome::Skipped,
        summary: "not asked for by the scenario".into(),
        details: serde_json::Value::Null,
    }
}

/// Runs the scenario's oracles over the run's stored files.
/// The verdict on a run's files. `build_id` names the binaries that produced the run (hashing
/// them costs tens of milliseconds, so the caller decides whether they are the current ones).
pub fn judge(
    dir: &RunDir,
    plan: &Plan,
    timeline: &Timeline,
    reproduce: String,
    build_id: Option<String>,
) -> Verdict {
    let mut verdict = match judge_files(dir, plan, timeline, reproduce.clone(), build_id.clone()) {
        Ok(verdict) => verdict,
        Err(error) => Verdict::error(plan, dir, reproduce, build_id, &error),
    };
    // The timeline is the run's own record of where it ran (`gauntlet check` has nothing else).
    verdict.backend = timeline.backend;
    verdict
}

fn judge_files(
    dir: &RunDir,
    plan: &Plan,
    timeline: &Timeline,
    reproduce: String,
    build_id: Option<String>,
) -> anyhow::Result<Verdict> {
    let history = check::read_history(dir.history())?;
    let mut events: BTreeMap<ReplicaId, Vec<EventLine>> = BTreeMap::new();
    for r in &plan.replicas {
        let path = dir.replica_events(r.id);
        let lines = if path.exists() {
            check::read_events(&path)?
        } else {
            tracing::warn!(path = %path.display(), "no events file: the replica wrote none");
            Vec::new()
        };
        events.insert(r.id, lines);
    }
    let honest = plan.honest();
    let checks_spec = &plan.scenario.checks;
    let asked = |o: Oracle| checks_spec.oracles.contains(&o);
    let mut checks = Vec::new();
    for oracle in Oracle::ALL {
        if !asked(oracle) {
            checks.push(skipped(oracle));
            continue;
        }
        let result = match oracle {
            // No probe ran: there is nothing to judge liveness on.
            Oracle::Liveness if timeline.stopped.is_some() => CheckResult {
                summary: timeline
                    .stopped
                    .as_ref()
                    .map(EarlyStop::describe)
                    .unwrap_or_default(),
                ..skipped(oracle)
            },
            Oracle::Linearizability => check::linearizability(
                &history,
                &LinearizabilityOptions {
                    timeout_per_key: Duration::from_millis(checks_spec.linearizability_timeout_ms),
                    ..LinearizabilityOptions::default()
                },
            ),
            Oracle::Agreement => check::agreement(&events, &honest),
            Oracle::StateAgreement => check::state_agreement(&events, &honest),
            Oracle::NoAmnesia => check::no_amnesia(&events, &honest),
            Oracle::Validity => check::validity_with(
                &events,
                &honest,
                &history,
                &plan.scenario.byzantine_clients(),
            ),
            Oracle::Integrity => check::integrity(&events, &honest),
            Oracle::Liveness => check::liveness(
                &history,
                timeline.heal_ns,
                Duration::from_millis(checks_spec.liveness_bound_ms),
                &plan.scenario.honest_clients(),
            ),
            Oracle::BoundedResources => bounded_resources(plan, timeline, &events, &honest),
        };
        let liveness_judged = oracle == Oracle::Liveness && result.outcome != CheckOutcome::Skipped;
        checks.push(result);
        // Reported beside `liveness`, which turns them on: progress in every fault-free
        // window, no view change while nothing is wrong, restarted replicas catching up.
        if liveness_judged {
            checks.extend(fault_free_window_checks(
                dir, plan, timeline, &history, &events, &honest,
            )?);
        }
    }
    checks.push(check::no_crash(
        timeline.backend,
        &timeline.replica_exits,
        &honest,
    ));
    if let Some(stop @ EarlyStop::OutOfBudget { .. }) = &timeline.stopped {
        checks.push(CheckResult {
            name: "budget".into(),
            outcome: CheckOutcome::Inconclusive,
            summary: stop.describe(),
            details: serde_json::to_value(stop).unwrap_or_default(),
        });
    }
    let outcome = if checks.iter().any(|c| c.outcome == CheckOutcome::Violation) {
        Outcome::Violation
    } else if checks
        .iter()
        .any(|c| c.outcome == CheckOutcome::Inconclusive)
    {
        Outcome::Inconclusive
    } else {
        Outcome::Pass
    };
    let expected = plan.scenario.expect;
    let as_expected = meets(outcome, expected);
    let nemesis_actions = std::fs::read_to_string(dir.nemesis())
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count() as u64)
        .unwrap_or(0);
    Ok(Verdict {
        scenario: plan.scenario.name.clone(),
        seed: plan.seed,
        backend: timeline.backend,
        outcome,
        expected,
        as_expected,
        checks,
        counts: Counts {
            operations: count_operations(&history),
            replicas: events
                .iter()
                .map(|(id, lines)| (*id, count_replica(lines)))
                .collect(),
            nemesis_actions,
            proxy: read_json::<ProxyStats>(&dir.proxy_stats())
                .ok()
                .map(|stats| stats.total()),
            faulty: faulty_replicas(plan),
            defence: honest
                .iter()
                .map(|id| {
                    let lines = events.get(id).map(Vec::as_slice).unwrap_or_default();
                    (*id, defence_of(lines, &dir.replica_stats(*id)))
                })
                .collect(),
        },
        error: None,
        reproduce,
        run_dir: dir.root.display().to_string(),
        started_at_ns: (timeline.started_at_ns > 0).then_some(timeline.started_at_ns),
        build_id,
    })
}

/// The `bounded-resources` check, with the bounds of the cluster file the replicas ran with.
fn bounded_resources(
    plan: &Plan,
    timeline: &Timeline,
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
) -> CheckResult {
    let any = plan.replicas.first().map_or(ReplicaId(0), |r| r.id);
    match crate::layout::cluster_config_for(plan, crate::proxy::Endpoint::Replica(any)) {
        Ok(config) => check::bounded_resources(events, honest, &config, timeline.started_at_ns),
        Err(error) => CheckResult {
            name: check::BOUNDED_RESOURCES.into(),
            outcome: CheckOutcome::Inconclusive,
            summary: format!("cannot derive the bounds from the plan: {error:#}"),
            details: serde_json::Value::Null,
        },
    }
}

/// `window-liveness`, `view-stability` and `catch-up`: the checks judged in the run's
/// fault-free windows.
fn fault_free_window_checks(
    dir: &RunDir,
    plan: &Plan,
    timeline: &Timeline,
    history: &[HistoryEvent],
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
) -> anyhow::Result<Vec<CheckResult>> {
    let faults = check::read_nemesis(&dir.nemesis())?;
    let clients = plan.scenario.honest_clients();
    let spec = window_spec(plan, timeline, &faults, &clients);
    let retry = plan.scenario.cluster.timeouts.state_transfer_retry_ms;
    Ok(vec![
        check::window_liveness(&spec, history),
        check::view_stability(&spec, events, honest, timeline.started_at_ns),
        check::catch_up(
            &spec,
            events,
            honest,
            timeline.started_at_ns,
            check::catch_up_bound(Duration::from_millis(retry)),
        ),
    ])
}

/// The fault-free windows' inputs (`check::WindowSpec`): the run's faults from `nemesis.jsonl`.
fn window_spec<'a>(
    plan: &Plan,
    timeline: &Timeline,
    faults: &'a [crate::nemesis::NemesisRecord],
    clients: &'a [replica::ClientId],
) -> check::WindowSpec<'a> {
    let scenario = &plan.scenario;
    check::WindowSpec {
        faults,
        byzantine: plan.faulty().into_iter().map(|r| r.id).collect(),
        f: scenario.cluster.f,
        standing_rules: scenario.network.rules.len(),
        from_ns: timeline.workload_start_ns,
        to_ns: timeline.probe_end_ns,
        heal_ns: timeline.heal_ns,
        bound_ns: scenario.checks.liveness_bound_ms * 1_000_000,
        grace_ns: scenario.cluster.timeouts.max_view_change_ms * 1_000_000,
        clients,
    }
}

/// `gauntlet check RUN_DIR`: re-judges a stored run and rewrites its verdict.
pub fn recheck(root: &std::path::Path) -> anyhow::Result<Verdict> {
    let dir = RunDir::new(root.to_path_buf());
    let plan: Plan = read_json(&dir.plan())?;
    let timeline = Timeline::read(&dir)?;
    let stored = Verdict::read(&dir).ok();
    let reproduce = stored
        .as_ref()
        .map(|v| v.reproduce.clone())
        .unwrap_or_else(|| plan.reproduce_command(None, timeline.backend));
    // Re-judging does not change which binaries produced the run.
    let build_id = stored
        .and_then(|v| v.build_id)
        .unwrap_or_else(crate::build_info::build_id);
    let verdict = judge(&dir, &plan, &timeline, reproduce, Some(build_id));
    verdict.write(&dir)?;
    Ok(verdict)
}

/// Writes `value` as pretty JSON and a newline, the form of every JSON file in a run folder.
pub fn write_json<T: Serialize>(path: &std::path::Path, value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

#[cfg(test)]
impl Verdict {
    /// A verdict that says nothing but its outcome against its expectation, for tests of what
    /// reads verdicts.
    pub(crate) fn bare(outcome: Outcome, expected: Expectation) -> Verdict {
        Verdict {
            scenario: "s".into(),
            seed: 1,
            backend: Backend::Real,
            outcome,
            expected,
            as_expected: meets(outcome, expected),
            checks: Vec::new(),
            counts: Counts::default(),
            error: None,
            reproduce: "gauntlet run s --seed 1".into(),
            run_dir: String::new(),
            started_at_ns: None,
            build_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    /// A verdict.json as builds before the simulator wrote it: no `backend`; and as the first
    /// build wrote it: no `build_id`, `started_at_ns`, `counts.faulty` or `counts.defence`.
    const OLD_VERDICT: &str = r#"{
  "scenario": "smoke", "seed": 3, "outcome": "pass", "expected": "pass",
  "as_expected": true, "checks": [],
  "counts": { "operations": { "invoked": 0, "ok": 0, "fail": 0, "info": 0 },
              "replicas": {}, "nemesis_actions": 0 },
  "reproduce": "gauntlet run smoke --seed 3", "run_dir": "results/smoke/3"
}"#;

    #[test]
    fn an_old_verdict_and_timeline_without_a_backend_read_as_real() {
        let verdict: Verdict = serde_json::from_str(OLD_VERDICT).expect("old verdict");
        assert_eq!(verdict.backend, Backend::Real);
        let timeline: Timeline =
            serde_json::from_str(r#"{"workload_start_ns": 0, "workload_end_ns": 1, "heal_ns": 1, "probe_start_ns": 1, "probe_end_ns": 2}"#)
                .expect("old timeline");
        assert_eq!(timeline.backend, Backend::Real);
    }

    #[test]
    fn the_first_builds_verdict_reads_from_its_run_folder() {
        let folder = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::new(folder.path().to_path_buf());
        std::fs::write(dir.verdict(), OLD_VERDICT).expect("write");
        let verdict = Verdict::read(&dir).expect("old verdict");
        assert_eq!((verdict.seed, verdict.outcome), (3, Outcome::Pass));
        assert!(verdict.met_expectation());
        assert_eq!(verdict.build_id, None);
        assert!(verdict.counts.faulty.is_empty() && verdict.counts.defence.is_empty());
    }

    #[test]
    fn the_summary_names_the_backend_only_when_it_is_sim() {
        let mut verdict: Verdict = serde_json::from_str(OLD_VERDICT).expect("old verdict");
        assert!(
            !verdict.summary().contains("backend"),
            "{}",
            verdict.summary()
        );
        verdict.backend = Backend::Sim;
        assert!(
            verdict.summary().contains("backend: sim (virtual time)"),
            "{}",
            verdict.summary()
        );
        let text = serde_json::to_string(&verdict).expect("encode");
        assert!(text.contains(r#""backend":"sim""#), "{text}");
    }

    #[test]
    fn judging_copies_the_timelines_backend_even_into_an_error_verdict() {
        let folder = tempfile::tempdir().expect("tempdir");
        let dir = RunDir::new(folder.path().to_path_buf());
        let plan =
            crate::plan::resolve(&scenario::load("smoke").expect("built-in"), 1).expect("plan");
        let timeline = Timeline {
            backend: Backend::Sim,
            ..Timeline::default()
        };
        // No history.jsonl: the judge fails, and the error verdict still says where it ran.
        let verdict = judge(&dir, &plan, &timeline, "r".into(), None);
        assert_eq!(verdict.outcome, Outcome::Error);
        assert_eq!(verdict.backend, Backend::Sim);
    }
}
