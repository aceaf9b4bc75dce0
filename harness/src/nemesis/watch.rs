//! Triggered faults on real processes: tail every replica's `events.jsonl` and hand each event
//! that may fire a trigger to the schedule as soon as it is read. A replica writes its event
//! lines after the turn's log sync and sends (every turn in a run with triggers:
//! `--events-flush-ms 0`, see `pipeline::real`), so a fault fires late by that turn, the
//! polling and the signal: each record says how late (`TriggerRecord`).

use super::run::Nemesis;
use crate::primary::TailedFile;
use replica::ReplicaId;
use replica::events::EventLine;
use std::path::PathBuf;

pub(super) fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0))
}

/// Only these lines can fire a trigger (or tell a checkpoint's view); the rest (executions,
/// commits of others, rejections) are not parsed.
fn may_matter(line: &str) -> bool {
    [
        "\"sent\"",
        "view-change",
        "checkpoint-taken",
        "\"recovered\"",
    ]
    .iter()
    .any(|tag| line.contains(tag))
}

/// How far each replica's event file was read.
pub(super) struct EventTail {
    tails: Vec<(ReplicaId, TailedFile)>,
}

impl EventTail {
    pub(super) fn new(files: Vec<(ReplicaId, PathBuf)>) -> EventTail {
        EventTail {
            tails: files
                .into_iter()
                .map(|(id, path)| (id, TailedFile::new(path)))
                .collect(),
        }
    }
}

impl Nemesis {
    /// Hands the schedule every new event line that may fire a trigger, on the run's clock.
    pub(super) fn read_events(&self, events: &mut EventTail) {
        for (replica, tail) in &mut events.tails {
            for line in tail.new_lines() {
                if !may_matter(&line) {
                    continue;
                }
                let Ok(event) = serde_json::from_str::<EventLine>(&line) else {
                    continue;
                };
                let seen_ns = self.now_ns();
                let event_ns = event.time_ns.saturating_sub(self.run_start_unix_ns);
                self.schedule()
                    .observe(*replica, &event.event, event_ns, Some(seen_ns));
            }
        }
    }
}
