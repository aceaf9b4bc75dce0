//! Reading a run folder for the report. Every file is optional: a run that died early still
//! gets a page, and what could not be read is listed on it instead of failing the report.

use crate::backend::Backend;
use crate::check::{CheckResult, read_events, read_history};
use crate::nemesis::{NemesisRecord, PlannedAction, PlannedFault, PlannedTarget};
use crate::verdict::Timeline;
use replica::ReplicaId;
use replica::events::EventLine;
use replica::node::StatsSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use workloads::history::HistoryEvent;

/// `verdict.json` as the report, the campaign and `reproduce` read it: every field optional,
/// unknown fields ignored, so a verdict from an older or newer build still renders.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VerdictFile {
    #[serde(default)]
    pub scenario: String,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Absent in verdicts from before the simulator (real); a backend this build does not
    /// know also reads as real rather than costing the whole verdict.
    #[serde(default, deserialize_with = "lenient_backend")]
    pub backend: Backend,
    /// `pass`, `violation`, `inconclusive` or `error`.
    #[serde(default)]
    pub outcome: String,
    /// `pass` or `violation`.
    #[serde(default, alias = "expect")]
    pub expected: String,
    /// Set by the orchestrator when it judged the outcome against the expectation itself.
    #[serde(default)]
    pub as_expected: Option<bool>,
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    #[serde(default)]
    pub counts: serde_json::Value,
    #[serde(default, alias = "reproduce_command")]
    pub reproduce: String,
    #[serde(default)]
    pub build_id: Option<String>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Wall-clock time (ns since the Unix epoch) of the history's time zero.
    #[serde(default, alias = "started_unix_ns", alias = "start_unix_ns")]
    pub started_at_ns: Option<u64>,
    /// Why the run could not be carried out, for outcome `error`.
    #[serde(default)]
    pub error: Option<String>,
}

impl VerdictFile {
    pub fn read(path: &Path) -> Result<VerdictFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether the outcome is what the scenario expected; an `error` never is.
    pub fn matches_expectation(&self) -> bool {
        if self.outcome == "error" {
            return false;
        }
        self.as_expected
            .unwrap_or_else(|| !self.outcome.is_empty() && self.outcome == self.expected)
    }
}

fn lenient_backend<'de, D: serde::Deserializer<'de>>(input: D) -> Result<Backend, D::Error> {
    let value = serde_json::Value::deserialize(input)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

/// One replica's files.
#[derive(Clone, Debug, Default)]
pub struct ReplicaFiles {
    pub id: ReplicaId,
    pub events: Vec<EventLine>,
    pub stats: Option<StatsSnapshot>,
}

/// A fault's time span, in ms on the history's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    pub start_ms: f64,
    /// `None`: lasted until the final heal (or the end of the run).
    pub end_ms: Option<f64>,
    /// `partition`, `link-fault`, `kill`, `pause`, ...: picks the shading colour.
    pub kind: String,
    pub label: String,
}

#[derive(Clone, Debug, Default)]
pub struct RunData {
    pub dir: PathBuf,
    pub verdict: Option<VerdictFile>,
    pub scenario_yaml: Option<String>,
    pub history: Vec<HistoryEvent>,
    pub replicas: Vec<ReplicaFiles>,
    pub faults: Vec<FaultWindow>,
    /// Whether `faults` are what the nemesis logged doing (true) or only what the plan said.
    pub faults_from_log: bool,
    /// `timeline.json`: when the workload ended and the faults were healed.
    pub timeline: Option<Timeline>,
    /// Files that were missing or unreadable, in words, for the page.
    pub problems: Vec<String>,
}

impl RunData {
    pub fn load(dir: &Path) -> RunData {
        let mut data = RunData {
            dir: dir.to_path_buf(),
            ..RunData::default()
        };
        match VerdictFile::read(&dir.join("verdict.json")) {
            Ok(verdict) => data.verdict = Some(verdict),
            Err(problem) => data.problems.push(problem),
        }
        data.scenario_yaml = std::fs::read_to_string(dir.join("scenario.yaml")).ok();
        let history_path = dir.join("history.jsonl");
        if history_path.exists() {
            match read_history(&history_path) {
                Ok(history) => data.history = history,
                Err(e) => data.problems.push(e.to_string()),
            }
        } else {
            data.problems.push("history.jsonl is missing".into());
        }
        data.replicas = load_replicas(dir, &mut data.problems);
        data.timeline = std::fs::read_to_string(dir.join("timeline.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let logged = read_nemesis_log(&dir.join("nemesis.jsonl"));
        if logged.is_empty() {
            data.faults = read_planned_faults(&dir.join("plan.json"));
        } else {
            data.faults = logged;
            data.faults_from_log = true;
        }
        data
    }
}

/// Finds each replica's events and stats: `replica-N.events.jsonl` / `replica-N.stats.json`
/// (the orchestrator's layout), or `replica-N/{events.jsonl,stats.json}` (a data dir).
fn load_replicas(dir: &Path, problems: &mut Vec<String>) -> Vec<ReplicaFiles> {
    let mut found: BTreeMap<u32, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
    // Data dirs first, so the copies collected into the run folder win.
    for folder in [dir.join("data"), dir.to_path_buf()] {
        find_replica_files(&folder, &mut found);
    }
    found
        .into_iter()
        .map(|(id, (events, stats))| load_replica(id, events, stats, problems))
        .collect()
}

type FoundFiles = BTreeMap<u32, (Option<PathBuf>, Option<PathBuf>)>;

fn find_replica_files(folder: &Path, found: &mut FoundFiles) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if let Some(id) = name
            .strip_prefix("replica-")
            .and_then(|s| s.parse::<u32>().ok())
            && path.is_dir()
        {
            let slot = found.entry(id).or_default();
            let events = path.join("events.jsonl");
            let stats = path.join("stats.json");
            if events.exists() {
                slot.0 = Some(events);
            }
            if stats.exists() {
                slot.1 = Some(stats);
            }
        } else if let Some(id) = numbered(&name, "replica-", ".events.jsonl")
            .or_else(|| numbered(&name, "events-", ".jsonl"))
        {
            found.entry(id).or_default().0 = Some(path);
        } else if let Some(id) = numbered(&name, "replica-", ".stats.json")
            .or_else(|| numbered(&name, "stats-", ".json"))
        {
            found.entry(id).or_default().1 = Some(path);
        }
    }
}

fn load_replica(
    id: u32,
    events: Option<PathBuf>,
    stats: Option<PathBuf>,
    problems: &mut Vec<String>,
) -> ReplicaFiles {
    let mut files = ReplicaFiles {
        id: ReplicaId(id),
        ..ReplicaFiles::default()
    };
    if let Some(path) = events {
        match read_events(&path) {
            Ok(events) => files.events = events,
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(path) = stats {
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(stats) => files.stats = Some(stats),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    files
}

fn numbered(name: &str, prefix: &str, suffix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// The faults the plan scheduled (`plan.json`'s `nemesis`), for runs without a nemesis log.
fn read_planned_faults(path: &Path) -> Vec<FaultWindow> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(plan) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let Some(faults) = plan.get("nemesis").and_then(|n| n.as_array()) else {
        return Vec::new();
    };
    faults
        .iter()
        .filter_map(|f| serde_json::from_value::<PlannedFault>(f.clone()).ok())
        .map(|fault| {
            let target = match &fault.action {
                PlannedAction::Partition { shape, target, .. } => {
                    let shape = serde_json::to_value(shape)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    format!(" {shape}{}", target.map(target_words).unwrap_or_default())
                }
                PlannedAction::Kill { target, .. }
                | PlannedAction::Restart { target }
                | PlannedAction::Pause { target }
                | PlannedAction::Resume { target } => target_words(*target),
                PlannedAction::LinkFault { rules } => format!(" ({} rules)", rules.len()),
            };
            FaultWindow {
                start_ms: fault.start_ms as f64,
                end_ms: fault.end_ms.map(|e| e as f64),
                kind: fault.action.name().to_string(),
                label: format!("{}{target} [{}]", fault.action.name(), fault.id),
            }
        })
        .collect()
}

fn target_words(target: PlannedTarget) -> String {
    match target {
        PlannedTarget::Replica(id) => format!(" → replica {id}"),
        PlannedTarget::Primary => " → the primary".into(),
    }
}

/// The faults as the nemesis carried them out (`nemesis.jsonl`); malformed lines are skipped.
fn read_nemesis_log(path: &Path) -> Vec<FaultWindow> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<NemesisRecord>(line).ok())
        .map(|record| {
            let targets: Vec<String> = record.targets.iter().map(|t| t.to_string()).collect();
            let mut label = record.action.clone();
            if !targets.is_empty() {
                label.push_str(&format!(" → replica {}", targets.join(", ")));
            }
            if !record.rules.is_empty() {
                label.push_str(&format!(" ({} rules)", record.rules.len()));
            }
            label.push_str(&format!(" [{}]", record.id));
            FaultWindow {
                start_ms: record.start_ns as f64 / 1e6,
                end_ms: record.end_ns.map(|e| e as f64 / 1e6),
                kind: record.action,
                label,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_faults_become_windows_with_readable_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plan = serde_json::json!({ "nemesis": [
            { "id": "g00-kill", "start_ms": 1000, "end_ms": 2500, "action": "kill",
              "target": { "replica": 2 }, "permanent": false },
            { "id": "g01-partition", "start_ms": 3000, "end_ms": null, "action": "partition",
              "shape": "halves", "cuts": [], "one_way": false },
        ]});
        std::fs::write(dir.path().join("plan.json"), plan.to_string()).expect("write");
        let windows = read_planned_faults(&dir.path().join("plan.json"));
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].kind, "kill");
        assert_eq!(windows[0].label, "kill → replica 2 [g00-kill]");
        assert_eq!(windows[0].end_ms, Some(2500.0));
        assert_eq!(windows[1].label, "partition halves [g01-partition]");
        assert_eq!(windows[1].end_ms, None);
    }

    #[test]
    fn nemesis_log_records_become_windows_on_the_history_clock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = [
            NemesisRecord {
                id: "g00-pause".into(),
                action: "pause".into(),
                start_ns: 1_000_000_000,
                end_ns: Some(2_000_000_000),
                targets: vec![ReplicaId(0)],
                rules: Vec::new(),
            },
            NemesisRecord {
                id: "s01-kill".into(),
                action: "kill".into(),
                start_ns: 1_500_000_000,
                end_ns: None,
                targets: vec![ReplicaId(1), ReplicaId(2)],
                rules: Vec::new(),
            },
        ];
        let text: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).expect("encode"))
            .collect();
        std::fs::write(
            dir.path().join("nemesis.jsonl"),
            text.join("\n") + "\nnot json\n",
        )
        .expect("write");
        let windows = read_nemesis_log(&dir.path().join("nemesis.jsonl"));
        assert_eq!(windows.len(), 2);
        assert_eq!(
            (windows[0].start_ms, windows[0].end_ms),
            (1000.0, Some(2000.0))
        );
        assert_eq!(windows[0].label, "pause → replica 0 [g00-pause]");
        assert_eq!(windows[1].label, "kill → replica 1, 2 [s01-kill]");
        assert_eq!(
            windows[1].end_ms, None,
            "a fault never undone lasts to the end"
        );
    }

    #[test]
    fn verdict_file_backend_defaults_to_real_when_absent_or_unknown() {
        let read = |json: &str| -> VerdictFile { serde_json::from_str(json).expect("lenient") };
        assert_eq!(read(r#"{"outcome": "pass"}"#).backend, Backend::Real);
        assert_eq!(read(r#"{"backend": "sim"}"#).backend, Backend::Sim);
        assert_eq!(read(r#"{"backend": "quantum"}"#).backend, Backend::Real);
    }

    #[test]
    fn verdict_without_explicit_judgement_compares_outcome_and_expectation() {
        let mut verdict = VerdictFile {
            outcome: "violation".into(),
            expected: "violation".into(),
            ..VerdictFile::default()
        };
        assert!(verdict.matches_expectation());
        verdict.expected = "pass".into();
        assert!(!verdict.matches_expectation());
        verdict.outcome = "error".into();
        verdict.as_expected = Some(true);
        assert!(
            !verdict.matches_expectation(),
            "an error is never as expected"
        );
    }
}
