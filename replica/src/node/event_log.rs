//! `events.jsonl`: one `EventLine` per event, buffered, appended across restarts.
//!
//! Rejections are always counted (in `NodeStats`) but written at a bounded rate per reason,
//! so a flood of bad input cannot fill the disk; a summary line says how many were left out.

use super::stats::unix_time_ns;
use crate::events::{EventLine, ReplicaEvent};
use crate::ids::ReplicaId;
use crate::verify::RejectReason;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const EVENTS_FILE: &str = "events.jsonl";
/// At most this many `rejected` lines per reason per second.
const REJECTION_LINES_PER_SECOND: u32 = 50;

pub struct EventLog {
    replica: ReplicaId,
    sink: Mutex<Sink>,
}

struct Sink {
    writer: BufWriter<File>,
    rejection_windows: HashMap<RejectReason, RateWindow>,
    /// Set after a write error so a full disk is reported once, not per event.
    failed: bool,
}

struct RateWindow {
    started: Instant,
    written: u32,
    suppressed: u64,
}

impl EventLog {
    pub fn open(dir: &Path, replica: ReplicaId) -> std::io::Result<EventLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(EVENTS_FILE))?;
        Ok(EventLog {
            replica,
            sink: Mutex::new(Sink {
                writer: BufWriter::with_capacity(64 * 1024, file),
                rejection_windows: HashMap::new(),
                failed: false,
            }),
        })
    }

    pub fn write(&self, event: &ReplicaEvent) {
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let ReplicaEvent::Rejected { reason, .. } = event
            && !sink.admit_rejection(*reason)
        {
            return;
        }
        let line = EventLine {
            time_ns: unix_time_ns(),
            replica: self.replica,
            event: event.clone(),
        };
        sink.write_line(&line);
    }

    pub fn flush(&self) {
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = sink.writer.flush() {
            sink.report_failure(e);
        }
    }
}

impl Sink {
    fn admit_rejection(&mut self, reason: RejectReason) -> bool {
        let now = Instant::now();
        let window = self
            .rejection_windows
            .entry(reason)
            .or_insert_with(|| RateWindow {
                started: now,
                written: 0,
                suppressed: 0,
            });
        if now.duration_since(window.started) >= Duration::from_secs(1) {
            if window.suppressed > 0 {
                tracing::warn!(
                    reason = %reason.name(),
                    suppressed = window.suppressed,
                    "rejections over the event rate limit were counted but not written"
                );
            }
            *window = RateWindow {
                started: now,
                written: 0,
                suppressed: 0,
            };
        }
        if window.written < REJECTION_LINES_PER_SECOND {
            window.written += 1;
            true
        } else {
            window.suppressed += 1;
            false
        }
    }

    fn write_line(&mut self, line: &EventLine) {
        let result = serde_json::to_writer(&mut self.writer, line)
            .map_err(std::io::Error::other)
            .and_then(|()| self.writer.write_all(b"\n"));
        if let Err(e) = result {
            self.report_failure(e);
        }
    }

    fn report_failure(&mut self, error: std::io::Error) {
        if !self.failed {
            tracing::error!(%error, "cannot write events.jsonl; events are being lost");
            self.failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageKind;

    #[test]
    fn a_flood_of_rejections_is_written_at_a_bounded_rate_but_other_events_are_not_limited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = EventLog::open(dir.path(), ReplicaId(2)).expect("open");
        let rejected = ReplicaEvent::Rejected {
            reason: RejectReason::BadSignature,
            kind: Some(MessageKind::Prepare),
            from: None,
        };
        let other_reason = ReplicaEvent::Rejected {
            reason: RejectReason::MalformedFrame,
            kind: None,
            from: None,
        };
        let stable = ReplicaEvent::CheckpointStable {
            seq: crate::ids::Seq(64),
            state_digest: "ab".into(),
        };
        for _ in 0..1000 {
            log.write(&rejected);
            log.write(&stable);
        }
        log.write(&other_reason);
        log.flush();
        let text = std::fs::read_to_string(dir.path().join(EVENTS_FILE)).expect("read");
        let lines: Vec<EventLine> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is an EventLine"))
            .collect();
        let count = |event: &ReplicaEvent| lines.iter().filter(|l| &l.event == event).count();
        // The loop runs well under a second on any machine that can build this crate, but a
        // slow one may open a second window: allow it, and still require the bound to bite.
        assert!(count(&rejected) <= 2 * REJECTION_LINES_PER_SECOND as usize);
        assert!(count(&rejected) >= REJECTION_LINES_PER_SECOND as usize);
        assert_eq!(count(&stable), 1000);
        assert_eq!(count(&other_reason), 1);
        assert!(lines.iter().all(|l| l.replica == ReplicaId(2)));
    }
}
