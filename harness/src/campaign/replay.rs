//! Whether a simulated rerun replayed its original exactly: a simulated run is a function of
//! its scenario, seed and build, so every file it records must come out byte for byte the
//! same. The first difference found points at where determinism broke.

use crate::layout::{ReplicaProcess, RunDir};
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// Verdict fields that say where a run was written or started from, not what happened in it.
/// `reproduce` names the scenario's source: a built-in at first, the stored file on a rerun.
/// (`started_at_ns` is virtual in the simulator and `build_id` names the code: both stay.)
const VERDICT_LOCATION_FIELDS: [&str; 2] = ["run_dir", "reproduce"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Every file present in either run is byte-identical in both.
    Exact { files: usize },
    /// `file` is in both runs but its lines first differ at `line` (1-based).
    Differs {
        file: String,
        line: usize,
        identical: usize,
    },
    /// `file` is in one run only (`missing_from` names the other).
    Missing {
        file: String,
        missing_from: &'static str,
        identical: usize,
    },
}

impl Replay {
    pub fn is_exact(&self) -> bool {
        matches!(self, Replay::Exact { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Replay::Exact { files } => format!("replayed exactly: {files} files identical"),
            Replay::Differs {
                file,
                line,
                identical,
            } => format!(
                "replay DIFFERS: {file} first differs at line {line} ({identical} files identical before it)"
            ),
            Replay::Missing {
                file,
                missing_from,
                identical,
            } => format!(
                "replay DIFFERS: {file} is missing from the {missing_from} ({identical} files identical before it)"
            ),
        }
    }
}

/// A file a simulated run records, wherever the run folder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recorded {
    History,
    Events(ReplicaProcess),
    Nemesis,
    ProxyLog,
    Verdict,
}

impl Recorded {
    fn path(self, dir: &RunDir) -> PathBuf {
        match self {
            Recorded::History => dir.history(),
            Recorded::Events(process) => dir.events_of(process),
            Recorded::Nemesis => dir.nemesis(),
            Recorded::ProxyLog => dir.proxy_log(),
            Recorded::Verdict => dir.verdict(),
        }
    }

    /// The file's name, the same in every run folder.
    fn name(self, dir: &RunDir) -> String {
        self.path(dir)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Compares the recorded files of two simulated runs in a fixed order (history, each
/// replica's events, nemesis, proxy, verdict) and stops at the first difference.
pub fn compare_runs(original: &Path, rerun: &Path) -> anyhow::Result<Replay> {
    let (original, rerun) = (
        RunDir::new(original.to_path_buf()),
        RunDir::new(rerun.to_path_buf()),
    );
    let mut identical = 0;
    for file in recorded_files(&original, &rerun)? {
        let (a, b) = match (
            read_if_present(&file.path(&original))?,
            read_if_present(&file.path(&rerun))?,
        ) {
            (None, None) => continue,
            (Some(a), Some(b)) => (a, b),
            (a, _) => {
                return Ok(Replay::Missing {
                    file: file.name(&original),
                    missing_from: if a.is_none() { "original" } else { "rerun" },
                    identical,
                });
            }
        };
        let (a, b) = if file == Recorded::Verdict {
            (without_location(&a), without_location(&b))
        } else {
            (a, b)
        };
        if let Some(line) = first_differing_line(&a, &b) {
            return Ok(Replay::Differs {
                file: file.name(&original),
                line,
                identical,
            });
        }
        identical += 1;
    }
    Ok(Replay::Exact { files: identical })
}

/// The files to compare: the replicas' events files of both runs (a replica missing from one
/// is itself a difference).
fn recorded_files(original: &RunDir, rerun: &RunDir) -> anyhow::Result<Vec<Recorded>> {
    let mut processes = original.collected_events()?;
    processes.extend(rerun.collected_events()?);
    processes.sort();
    processes.dedup();
    let mut files = vec![Recorded::History];
    files.extend(processes.into_iter().map(Recorded::Events));
    files.extend([Recorded::Nemesis, Recorded::ProxyLog, Recorded::Verdict]);
    Ok(files)
}

fn read_if_present(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The verdict re-encoded without its location fields. A verdict that is not JSON is
/// compared as it is.
fn without_location(bytes: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return bytes.to_vec();
    };
    if let Some(fields) = value.as_object_mut() {
        for field in VERDICT_LOCATION_FIELDS {
            fields.remove(field);
        }
    }
    serde_json::to_vec_pretty(&value).unwrap_or_else(|_| bytes.to_vec())
}

/// The 1-based number of the first line that differs, or `None` if the bytes are equal. When
/// one text is the other plus more lines, the first extra line is the difference.
fn first_differing_line(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    // Lines with their newline, so a missing final newline is a difference on its own line.
    let mut a_lines = a.split_inclusive(|&byte| byte == b'\n');
    let mut b_lines = b.split_inclusive(|&byte| byte == b'\n');
    let mut line = 1;
    loop {
        match (a_lines.next(), b_lines.next()) {
            (Some(x), Some(y)) if x == y => line += 1,
            _ => return Some(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::ReplicaId;

    fn layout(dir: &tempfile::TempDir) -> RunDir {
        RunDir::new(dir.path().to_path_buf())
    }

    /// A simulated run folder with a verdict written from `run_dir` by `reproduce`.
    fn run_folder(run_dir: &str, reproduce: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = layout(&dir);
        let write = |path: PathBuf, text: &str| {
            std::fs::write(path, text).expect("write");
        };
        write(run.history(), "{\"op\":1}\n{\"op\":2}\n");
        write(run.replica_events(ReplicaId(0)), "a\nb\nc\n");
        write(run.replica_events(ReplicaId(1)), "a\nb\nc\n");
        write(run.nemesis(), "");
        write(run.plan(), "{\"source\": \"differs and is not compared\"}");
        let verdict = serde_json::json!({
            "scenario": "smoke", "seed": 3, "backend": "sim", "outcome": "pass",
            "started_at_ns": 12, "build_id": "b1", "run_dir": run_dir, "reproduce": reproduce,
        });
        write(
            run.verdict(),
            &serde_json::to_string_pretty(&verdict).expect("json"),
        );
        dir
    }

    fn original_and_rerun() -> (tempfile::TempDir, tempfile::TempDir) {
        (
            run_folder(
                "results/smoke/3-a",
                "gauntlet run smoke --seed 3 --backend sim",
            ),
            run_folder(
                "results/smoke/3-b",
                "gauntlet run results/smoke/3-a/scenario.yaml --seed 3 --backend sim",
            ),
        )
    }

    #[test]
    fn identical_runs_replay_exactly_whatever_their_folders() {
        let (original, rerun) = original_and_rerun();
        let replay = compare_runs(original.path(), rerun.path()).expect("compared");
        // history, two events files, nemesis, verdict; no proxy.jsonl in either.
        assert_eq!(replay, Replay::Exact { files: 5 });
        assert_eq!(replay.describe(), "replayed exactly: 5 files identical");
    }

    #[test]
    fn the_first_differing_file_and_line_are_named() {
        let (original, rerun) = original_and_rerun();
        std::fs::write(layout(&rerun).replica_events(ReplicaId(1)), "a\nB\nc\n").expect("write");
        std::fs::write(layout(&rerun).nemesis(), "x\n").expect("write");
        let replay = compare_runs(original.path(), rerun.path()).expect("compared");
        assert_eq!(
            replay,
            Replay::Differs {
                file: "replica-1.events.jsonl".into(),
                line: 2,
                identical: 2,
            }
        );
        assert!(!replay.is_exact());
    }

    #[test]
    fn a_verdict_that_differs_in_what_happened_is_a_difference() {
        let (original, rerun) = original_and_rerun();
        let path = layout(&rerun).verdict();
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(
            &path,
            text.replace("\"started_at_ns\": 12", "\"started_at_ns\": 13"),
        )
        .expect("write");
        let replay = compare_runs(original.path(), rerun.path()).expect("compared");
        assert!(
            matches!(&replay, Replay::Differs { file, identical: 4, .. } if file == "verdict.json"),
            "{replay:?}"
        );
    }

    #[test]
    fn a_file_in_one_run_only_is_named_with_the_run_it_is_missing_from() {
        let (original, rerun) = original_and_rerun();
        std::fs::write(layout(&rerun).replica_events(ReplicaId(2)), "a\n").expect("write");
        let replay = compare_runs(original.path(), rerun.path()).expect("compared");
        assert_eq!(
            replay,
            Replay::Missing {
                file: "replica-2.events.jsonl".into(),
                missing_from: "original",
                identical: 3,
            }
        );
    }

    #[test]
    fn a_twins_events_are_compared_right_after_its_replicas() {
        let (original, rerun) = original_and_rerun();
        std::fs::write(layout(&original).twin_events(ReplicaId(0)), "t\n").expect("write");
        std::fs::write(layout(&rerun).twin_events(ReplicaId(0)), "T\n").expect("write");
        let replay = compare_runs(original.path(), rerun.path()).expect("compared");
        assert_eq!(
            replay,
            Replay::Differs {
                file: "replica-0-twin.events.jsonl".into(),
                line: 1,
                identical: 2,
            }
        );
    }

    #[test]
    fn line_numbers_count_from_one_and_extra_lines_differ() {
        assert_eq!(first_differing_line(b"a\nb\n", b"a\nb\n"), None);
        assert_eq!(first_differing_line(b"x\nb\n", b"a\nb\n"), Some(1));
        assert_eq!(first_differing_line(b"a\nb\n", b"a\nb\nc\n"), Some(3));
        assert_eq!(first_differing_line(b"a\nb", b"a\nb\n"), Some(2));
    }
}
