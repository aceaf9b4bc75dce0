//! Reading a run folder for the report. Every file is optional: a run that died early still
//! gets a page, and what could not be read is listed on it instead of failing the report.

use crate::check::{read_events, read_history};
use crate::layout::RunDir;
use crate::nemesis::{NemesisRecord, PlannedAction, PlannedFault, PlannedTarget};
use crate::verdict::{Timeline, Verdict, read_json};
use replica::ReplicaId;
use replica::events::EventLine;
use replica::node::StatsSnapshot;
use std::path::{Path, PathBuf};
use workloads::history::HistoryEvent;

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
    pub verdict: Option<Verdict>,
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
        let run = RunDir::new(dir.to_path_buf());
        let mut data = RunData {
            dir: dir.to_path_buf(),
            ..RunData::default()
        };
        match Verdict::read(&run) {
            Ok(verdict) => data.verdict = Some(verdict),
            Err(problem) => data.problems.push(format!("{problem:#}")),
        }
        data.scenario_yaml = std::fs::read_to_string(run.scenario()).ok();
        data.history = load_history(&run, &mut data.problems);
        data.replicas = load_replicas(&run, &mut data.problems);
        data.timeline = Timeline::read(&run).ok();
        let logged = read_nemesis_log(&run.nemesis());
        if logged.is_empty() {
            data.faults = read_planned_faults(&run.plan());
        } else {
            data.faults = logged;
            data.faults_from_log = true;
        }
        data
    }
}

fn load_history(run: &RunDir, problems: &mut Vec<String>) -> Vec<HistoryEvent> {
    let path = run.history();
    if !path.exists() {
        problems.push(format!("{} is missing", file_name(&path)));
        return Vec::new();
    }
    read_history(&path).unwrap_or_else(|e| {
        problems.push(e.to_string());
        Vec::new()
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Each replica's events and statistics: the copies collected into the run folder, else the
/// originals in its data dir (a run stopped before collecting, or kept with `--keep-data`).
fn load_replicas(run: &RunDir, problems: &mut Vec<String>) -> Vec<ReplicaFiles> {
    run.replicas_with_files()
        .into_iter()
        .map(|id| load_replica(run, id, problems))
        .collect()
}

fn load_replica(run: &RunDir, id: ReplicaId, problems: &mut Vec<String>) -> ReplicaFiles {
    let mut files = ReplicaFiles {
        id,
        ..ReplicaFiles::default()
    };
    if let Some(path) = first_present([run.replica_events(id), run.data_events(id)]) {
        match read_events(&path) {
            Ok(events) => files.events = events,
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(path) = first_present([run.replica_stats(id), run.data_stats(id)]) {
        match read_json::<StatsSnapshot>(&path) {
            Ok(stats) => files.stats = Some(stats),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    files
}

fn first_present<const N: usize>(paths: [PathBuf; N]) -> Option<PathBuf> {
    paths.into_iter().find(|path| path.exists())
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
        let run = RunDir::new(dir.path().to_path_buf());
        std::fs::write(run.plan(), plan.to_string()).expect("write");
        let windows = read_planned_faults(&run.plan());
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
        let run = RunDir::new(dir.path().to_path_buf());
        std::fs::write(run.nemesis(), text.join("\n") + "\nnot json\n").expect("write");
        let windows = read_nemesis_log(&run.nemesis());
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

    /// One event line of replica `id`, at `time_ns`.
    fn event_line(id: u32, time_ns: u64) -> String {
        serde_json::to_string(&EventLine {
            time_ns,
            replica: ReplicaId(id),
            event: replica::events::ReplicaEvent::ViewChangeStarted {
                from: replica::View(0),
                view: replica::View(1),
            },
        })
        .expect("encode")
            + "\n"
    }

    #[test]
    fn collected_replica_files_win_over_data_dirs_and_twins_are_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::new(dir.path().to_path_buf());
        for id in [ReplicaId(0), ReplicaId(1)] {
            std::fs::create_dir_all(run.data_dir(id)).expect("mkdir");
        }
        std::fs::create_dir_all(run.twin_data_dir(ReplicaId(0))).expect("mkdir");
        std::fs::write(run.data_events(ReplicaId(0)), event_line(0, 1)).expect("write");
        std::fs::write(run.replica_events(ReplicaId(0)), event_line(0, 2)).expect("write");
        std::fs::write(run.data_events(ReplicaId(1)), event_line(1, 3)).expect("write");
        std::fs::write(run.twin_events(ReplicaId(0)), event_line(0, 4)).expect("write");
        std::fs::write(run.replica_events(ReplicaId(2)), event_line(2, 5)).expect("write");
        let mut problems = Vec::new();
        let replicas = load_replicas(&run, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let seen: Vec<(u32, Vec<u64>)> = replicas
            .iter()
            .map(|r| (r.id.0, r.events.iter().map(|e| e.time_ns).collect()))
            .collect();
        assert_eq!(seen, vec![(0, vec![2]), (1, vec![3]), (2, vec![5])]);
    }
}
