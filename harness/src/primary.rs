//! Learns the current primary by tailing the honest replicas' `events.jsonl`: the highest view
//! any of them completed a view change into (or recovered into) names the primary, view mod n.

use replica::events::{EventLine, ReplicaEvent};
use replica::{ReplicaId, View};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

pub struct PrimaryTracker {
    n: usize,
    files: Vec<TailedFile>,
    view: View,
}

/// A file read as it grows, in whole lines (the nemesis's triggers tail every replica's).
pub(crate) struct TailedFile {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl PrimaryTracker {
    /// `paths`: the events files of the honest replicas (they may not exist yet).
    pub fn new(n: usize, paths: Vec<PathBuf>) -> PrimaryTracker {
        PrimaryTracker {
            n,
            files: paths.into_iter().map(TailedFile::new).collect(),
            view: View(0),
        }
    }

    /// Reads what was appended since the last call and returns the primary it implies.
    pub fn poll(&mut self) -> ReplicaId {
        for file in &mut self.files {
            for line in file.new_lines() {
                if let Some(view) = view_of(&line) {
                    self.view = self.view.max(view);
                }
            }
        }
        self.primary()
    }

    pub fn primary(&self) -> ReplicaId {
        self.view.primary(self.n)
    }

    pub fn view(&self) -> View {
        self.view
    }
}

/// Only the view-entering events are parsed; the filter keeps the commit flood cheap.
fn view_of(line: &str) -> Option<View> {
    if !(line.contains("view-change-completed") || line.contains("\"recovered\"")) {
        return None;
    }
    match serde_json::from_str::<EventLine>(line).ok()?.event {
        ReplicaEvent::ViewChangeCompleted { view, .. } | ReplicaEvent::Recovered { view, .. } => {
            Some(view)
        }
        _ => None,
    }
}

impl TailedFile {
    pub(crate) fn new(path: PathBuf) -> TailedFile {
        TailedFile {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The whole lines appended since the last call (a file that shrank is read again).
    pub(crate) fn new_lines(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Replaced, not appended to: start over.
            self.offset = 0;
            self.partial.clear();
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut fresh = Vec::new();
        if file.read_to_end(&mut fresh).is_err() {
            return Vec::new();
        }
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(last_newline) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(replica: u32, event: ReplicaEvent) -> String {
        serde_json::to_string(&EventLine {
            time_ns: 1,
            replica: ReplicaId(replica),
            event,
        })
        .expect("serializes")
    }

    #[test]
    fn primary_follows_the_highest_completed_view_across_replicas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.jsonl");
        let b = dir.path().join("b.jsonl");
        let mut tracker = PrimaryTracker::new(4, vec![a.clone(), b.clone()]);
        assert_eq!(tracker.poll(), ReplicaId(0), "view 0 before any event");
        let mut fa = std::fs::File::create(&a).expect("create");
        writeln!(
            fa,
            "{}",
            line(
                1,
                ReplicaEvent::ViewChangeCompleted {
                    view: View(1),
                    primary: ReplicaId(1)
                }
            )
        )
        .expect("write");
        assert_eq!(tracker.poll(), ReplicaId(1));
        let mut fb = std::fs::File::create(&b).expect("create");
        let half = line(
            2,
            ReplicaEvent::ViewChangeCompleted {
                view: View(6),
                primary: ReplicaId(2),
            },
        );
        let (first, second) = half.split_at(10);
        write!(fb, "{first}").expect("write");
        assert_eq!(tracker.poll(), ReplicaId(1), "a torn line is not read yet");
        writeln!(fb, "{second}").expect("write");
        assert_eq!(tracker.poll(), ReplicaId(2), "view 6 mod 4");
        assert_eq!(tracker.view(), View(6));
    }
}
