//! Reading a run's JSON-lines files back, naming the file and line of anything malformed.

use replica::events::EventLine;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use thiserror::Error;
use workloads::history::HistoryEvent;

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: malformed line: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Reads `history.jsonl`.
pub fn read_history(path: impl AsRef<Path>) -> Result<Vec<HistoryEvent>, ReadError> {
    read_json_lines(path.as_ref())
}

/// Reads one replica's `events.jsonl`.
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<EventLine>, ReadError> {
    read_json_lines(path.as_ref())
}

/// Parses the text of a `history.jsonl` already read from `path` (named in errors).
pub fn parse_history(text: &str, path: &Path) -> Result<Vec<HistoryEvent>, ReadError> {
    parse_json_lines(text, path)
}

fn read_json_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_json_lines(&text, path)
}

fn parse_json_lines<T: DeserializeOwned>(text: &str, path: &Path) -> Result<Vec<T>, ReadError> {
    // A process killed with SIGKILL can leave its last line half written: that line is not
    // evidence of anything, so an unterminated final line that does not parse is skipped.
    let unterminated_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut items = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(item) => items.push(item),
            Err(_) if unterminated_tail && index + 1 == lines.len() => {
                tracing::warn!(path = %path.display(), line = index + 1, "skipping a half-written last line");
            }
            Err(e) => {
                return Err(ReadError::Malformed {
                    path: path.to_path_buf(),
                    line: index + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(items)
}
