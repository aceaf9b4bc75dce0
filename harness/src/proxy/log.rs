//! `proxy.jsonl`: one JSON line per action the proxy took, written by a thread of its own
//! through a buffer that is flushed whenever the queue runs dry.

use super::matching::{FrameInfo, endpoint_label};
use super::rules::Direction;
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

#[derive(Debug, Serialize)]
pub struct LogEntry {
    pub time_ns: u64,
    pub from: String,
    pub to: String,
    pub direction: &'static str,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub action: &'static str,
    /// The rule that acted; `None` for the proxy's own decisions (overflow, oversized frames).
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl LogEntry {
    pub fn new(
        time_ns: u64,
        frame: &FrameInfo,
        action: &'static str,
        rule: Option<String>,
        detail: Option<String>,
    ) -> Self {
        LogEntry {
            time_ns,
            from: endpoint_label(frame.from),
            to: endpoint_label(replica_endpoint(frame)),
            direction: match frame.direction {
                Direction::Backward => "backward",
                _ => "forward",
            },
            kind: frame.kind_label(),
            view: frame.view.map(|v| v.0),
            seq: frame.seq.map(|s| s.0),
            action,
            rule,
            detail,
        }
    }
}

impl LogEntry {
    /// One entry per action the rules took on a frame.
    pub fn for_fate<'a>(
        time_ns: u64,
        frame: &'a FrameInfo,
        fate: &'a super::fate::Fate,
    ) -> impl Iterator<Item = LogEntry> + 'a {
        fate.taken.iter().map(move |taken| {
            LogEntry::new(
                time_ns,
                frame,
                taken.action,
                Some(taken.rule.clone()),
                taken.detail.clone(),
            )
        })
    }
}

fn replica_endpoint(frame: &FrameInfo) -> super::Endpoint {
    super::Endpoint::Replica(frame.to)
}

enum Command {
    Line(String),
    Close(mpsc::Sender<()>),
}

/// The sending side; cheap to clone into every relay.
#[derive(Clone)]
pub struct ProxyLog {
    commands: mpsc::Sender<Command>,
}

pub struct LogWriter {
    thread: Option<JoinHandle<()>>,
}

/// Creates the log file and starts its writer thread.
pub fn open(path: &Path) -> std::io::Result<(ProxyLog, LogWriter)> {
    let file = std::fs::File::create(path)?;
    let (commands, queue) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("proxy-log".into())
        .spawn(move || write_until_closed(BufWriter::new(file), queue))?;
    Ok((
        ProxyLog { commands },
        LogWriter {
            thread: Some(thread),
        },
    ))
}

fn write_until_closed(mut out: BufWriter<std::fs::File>, queue: mpsc::Receiver<Command>) {
    let write_line = |out: &mut BufWriter<std::fs::File>, line: String| {
        if let Err(error) = writeln!(out, "{line}") {
            tracing::warn!(%error, "cannot write proxy.jsonl");
        }
    };
    while let Ok(command) = queue.recv() {
        let mut next = Some(command);
        while let Some(command) = next.take() {
            match command {
                Command::Line(line) => write_line(&mut out, line),
                Command::Close(done) => {
                    let _ = out.flush();
                    let _ = done.send(());
                    return;
                }
            }
            next = queue.try_recv().ok();
        }
        if let Err(error) = out.flush() {
            tracing::warn!(%error, "cannot flush proxy.jsonl");
        }
    }
    let _ = out.flush();
}

impl ProxyLog {
    pub fn record(&self, entry: &LogEntry) {
        match serde_json::to_string(entry) {
            Ok(line) => {
                // After close, lines from relays still winding down have nowhere to go.
                let _ = self.commands.send(Command::Line(line));
            }
            Err(error) => tracing::warn!(%error, "cannot encode a proxy log entry"),
        }
    }
}

impl LogWriter {
    /// Writes out everything logged so far and stops the writer thread.
    pub fn close(mut self, log: &ProxyLog) {
        let (done, flushed) = mpsc::channel();
        if log.commands.send(Command::Close(done)).is_ok() {
            let _ = flushed.recv();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
