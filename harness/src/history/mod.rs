//! Histories from other systems, for `gauntlet check-history`: Jepsen's `history.edn`,
//! porcupine's two test-data formats and Gauntlet's own `history.jsonl`, read into Gauntlet's
//! history events so the one linearizability checker judges them all.
//!
//! Semantics follow Jepsen: `fail` means the operation did not take effect, `info` and a
//! missing completion mean an unknown outcome, a read of `nil` reads the initial value, events
//! without `:time` are in time order, and the `:nemesis` process is skipped. A completion
//! before its invocation, a process with two operations open, or a completion with no
//! invocation is refused with its line. Each format's own reading is documented in its module.

mod detect;
mod edn;
mod edn_split;
mod etcd_log;
mod pairing;
mod verdict;

pub use detect::detect_format;
pub use pairing::{ImportedHistory, Timing};
pub use verdict::{HistoryVerdict, Overall, check_history, verdict_word};

use std::fmt;
use std::path::{Path, PathBuf};
use workloads::history::{EventType, Function, HistoryEvent};

/// The file formats `check-history` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Gauntlet's `history.jsonl`.
    Gauntlet,
    /// Jepsen's `history.edn`: one map per operation event.
    JepsenEdn,
    /// porcupine's key-value test logs: EDN maps with `:key`, a read of "" reads an absent key.
    PorcupineKv,
    /// porcupine's Jepsen etcd logs: `INFO  jepsen.util - P :type :f value` lines.
    PorcupineJepsenLog,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Gauntlet => "gauntlet",
            Format::JepsenEdn => "jepsen-edn",
            Format::PorcupineKv => "porcupine-kv",
            Format::PorcupineJepsenLog => "porcupine-jepsen-log",
        })
    }
}

/// The sequential specification a history is held against. Each is one register per key with
/// the service's own semantics (`replica::kv::Operation::apply_to`); they differ in the
/// operations they admit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// read and write.
    Register,
    /// read, write and compare-and-set.
    CasRegister,
    /// get, put, append and compare-and-set, per key.
    Kv,
}

impl ModelKind {
    /// The model a format's files are written against, when the user names none.
    pub fn default_for(format: Format) -> ModelKind {
        match format {
            Format::Gauntlet | Format::PorcupineKv => ModelKind::Kv,
            Format::JepsenEdn | Format::PorcupineJepsenLog => ModelKind::CasRegister,
        }
    }

    pub fn admits(self, f: Function) -> bool {
        match self {
            ModelKind::Register => matches!(f, Function::Get | Function::Put),
            ModelKind::CasRegister => !matches!(f, Function::Append),
            ModelKind::Kv => true,
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
        })
    }
}

/// One event as its file states it, before pairing: Gauntlet's event with no request id yet,
/// its line, and its time if the file gives one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEvent {
    pub line: usize,
    pub time_ns: Option<u64>,
    pub event: HistoryEvent,
}

impl SourceEvent {
    /// An event of `process` with the request id and time left for pairing to fill in.
    pub fn new(line: usize, process: u32, kind: EventType, f: Function, key: String) -> Self {
        SourceEvent {
            line,
            time_ns: None,
            event: HistoryEvent {
                process: replica::ClientId(process),
                kind,
                f,
                key,
                value: None,
                expected: None,
                swapped: None,
                time_ns: 0,
                request: replica::Timestamp(0),
                error: None,
            },
        }
    }
}

/// Why a history file was refused: the file, the line when one is to blame, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

impl std::error::Error for ImportError {}

/// A reason tied to a line, before the file's path is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

impl LineError {
    pub fn new(line: usize, reason: impl Into<String>) -> Self {
        LineError {
            line,
            reason: reason.into(),
        }
    }

    pub fn in_file(self, path: &Path) -> ImportError {
        ImportError {
            path: path.to_path_buf(),
            line: Some(self.line),
            reason: self.reason,
        }
    }
}

/// Reads `path` in `format` (detected from its content when `None`) and pairs its events.
pub fn import(
    path: &Path,
    format: Option<Format>,
    model: Option<ModelKind>,
) -> Result<ImportedHistory, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError {
        path: path.to_path_buf(),
        line: None,
        reason: format!("cannot read: {e}"),
    })?;
    let format = match format {
        Some(format) => format,
        None => detect_format(&text).map_err(|e| e.in_file(path))?,
    };
    let events = match format {
        Format::Gauntlet => gauntlet_events(&text, path),
        Format::JepsenEdn => edn::read(&text, edn::Flavour::Jepsen),
        Format::PorcupineKv => edn::read(&text, edn::Flavour::PorcupineKv),
        Format::PorcupineJepsenLog => etcd_log::read(&text),
    }
    .map_err(|e| e.in_file(path))?;
    let model = model.unwrap_or(ModelKind::default_for(format));
    pairing::pair(events, format, model).map_err(|e| e.in_file(path))
}

/// Gauntlet's own file, through the run folder's parser; its events carry their times.
fn gauntlet_events(text: &str, path: &Path) -> Result<Vec<SourceEvent>, LineError> {
    let history = crate::check::parse_history(text, path).map_err(|e| match e {
        crate::check::ReadError::Malformed { line, reason, .. } => {
            LineError::new(line, format!("malformed line: {reason}"))
        }
        // The text is already read: parsing it cannot fail to read it.
        crate::check::ReadError::Io { source, .. } => LineError::new(1, source.to_string()),
    })?;
    Ok(history
        .into_iter()
        .enumerate()
        .map(|(index, event)| SourceEvent {
            line: index + 1,
            time_ns: Some(event.time_ns),
            event,
        })
        .collect())
}
