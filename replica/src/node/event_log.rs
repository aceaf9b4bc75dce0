//! `events.jsonl`: one `EventLine` per event, buffered, appended across restarts.
//!
//! The buffer goes to the file in whole lines, and a reopened log first cuts off any half line
//! that a killed process left, so a restart never glues its first line onto a torn one.
//!
//! Rejections are always counted (in `NodeStats`) but written at a bounded rate per reason,
//! so a flood of bad input cannot fill the disk; a summary line says how many were left out.

use super::stats::unix_time_ns;
use crate::events::{EventLine, ReplicaEvent};
use crate::ids::ReplicaId;
use crate::verify::RejectReason;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const EVENTS_FILE: &str = "events.jsonl";
/// Buffered lines are written once they pass this size.
const BUFFER_BYTES: usize = 64 * 1024;
/// At most this many `rejected` lines per reason per second.
const REJECTION_LINES_PER_SECOND: u32 = 50;

pub struct EventLog {
    replica: ReplicaId,
    sink: Mutex<Sink>,
}

struct Sink {
    file: File,
    /// Whole lines not yet written.
    pending: Vec<u8>,
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
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(dir.join(EVENTS_FILE))?;
        cut_torn_tail(&mut file)?;
        Ok(EventLog {
            replica,
            sink: Mutex::new(Sink {
                file,
                pending: Vec::with_capacity(BUFFER_BYTES),
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
        self.sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_pending();
    }
}

/// Truncates the file after its last newline: a half line there is what a process killed in the
/// middle of a write leaves, and it carries no event.
fn cut_torn_tail(file: &mut File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    const CHUNK: u64 = 4096;
    let mut end = len;
    let mut chunk = Vec::new();
    let keep = loop {
        let start = end.saturating_sub(CHUNK);
        chunk.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            break start + at as u64 + 1;
        }
        if start == 0 {
            break 0;
        }
        end = start;
    };
    if keep == len {
        return Ok(());
    }
    tracing::warn!(
        torn_bytes = len - keep,
        "cutting a half-written last line off events.jsonl"
    );
    file.set_len(keep)
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
        let line_start = self.pending.len();
        if let Err(e) = serde_json::to_writer(&mut self.pending, line) {
            self.pending.truncate(line_start);
            self.report_failure(std::io::Error::other(e));
            return;
        }
        self.pending.push(b'\n');
        if self.pending.len() >= BUFFER_BYTES {
            self.write_pending();
        }
    }

    fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let result = self.file.write_all(&self.pending);
        // Dropped even on error: a full disk must not grow the buffer without bound.
        self.pending.clear();
        if let Err(e) = result {
            self.report_failure(e);
            // A write that failed part way may have left half a line; a later write must not
            // be glued onto it.
            let _ = cut_torn_tail(&mut self.file);
        }
    }

    fn report_failure(&mut self, error: std::io::Error) {
        if !self.failed {
            tracing::error!(%error, "cannot write events.jsonl; events are being lost");
            self.failed = true;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.write_pending();
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

    #[test]
    fn a_line_torn_by_a_killed_process_is_cut_off_when_the_log_is_reopened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stable = ReplicaEvent::CheckpointStable {
            seq: crate::ids::Seq(64),
            state_digest: "ab".into(),
        };
        let first = EventLog::open(dir.path(), ReplicaId(1)).expect("open");
        first.write(&stable);
        first.flush();
        drop(first);
        let path = dir.path().join(EVENTS_FILE);
        let whole = std::fs::read(&path).expect("read");
        // What SIGKILL in the middle of a write leaves: a complete line, then half of one.
        let mut torn = whole.clone();
        torn.extend_from_slice(&whole[..whole.len() / 2]);
        std::fs::write(&path, &torn).expect("write");

        let restarted = EventLog::open(dir.path(), ReplicaId(1)).expect("reopen");
        restarted.write(&stable);
        restarted.flush();

        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<EventLine> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is an EventLine"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
    }
}
