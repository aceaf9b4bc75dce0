//! The verdict on one imported history: per key and overall, as plain data that the terminal
//! summary, the JSON file and the HTML page all read unchanged.

use super::{Format, ImportedHistory, ModelKind, Timing};
use crate::check::{
    CheckResult, KeyOutcome, KeyVerdict, LinearizabilityOptions, check_keys, histories_by_key,
    key_name, summarize_keys,
};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// The overall answer, with Jepsen's exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overall {
    Linearizable,
    NotLinearizable,
    /// Some key's search ran out of budget and none was proven not linearizable.
    Unknown,
}

impl Overall {
    pub fn exit_code(self) -> i32 {
        match self {
            Overall::Linearizable => 0,
            Overall::NotLinearizable => 1,
            Overall::Unknown => 2,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Overall::Linearizable => "linearizable",
            Overall::NotLinearizable => "NOT linearizable",
            Overall::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryVerdict {
    pub file: PathBuf,
    pub format: Format,
    pub model: ModelKind,
    pub timing: Timing,
    pub overall: Overall,
    /// Operations the checker held against the model (fails and unknown reads left out).
    pub operations: usize,
    pub keys: Vec<KeyOutcome>,
    /// The same result a run's verdict carries: the summary line and the failing key's
    /// operations and porcupine view.
    pub check: CheckResult,
    pub search_ms: f64,
}

/// Checks an imported history key by key; an error names `file` and the offending line.
pub fn check_history(
    file: PathBuf,
    history: &ImportedHistory,
    opts: &LinearizabilityOptions,
) -> Result<HistoryVerdict, super::ImportError> {
    let started = Instant::now();
    let keys = histories_by_key(&history.events, &|i| history.lines[i]).map_err(|malformed| {
        super::LineError::new(malformed.line(), malformed.to_string()).in_file(&file)
    })?;
    let outcomes = check_keys(&keys, opts);
    let check = summarize_keys(&keys, &outcomes, opts);
    let has = |verdict: KeyVerdict| outcomes.iter().any(|o| o.verdict == verdict);
    let overall = if has(KeyVerdict::NotLinearizable) {
        Overall::NotLinearizable
    } else if has(KeyVerdict::OutOfBudget) {
        Overall::Unknown
    } else {
        Overall::Linearizable
    };
    Ok(HistoryVerdict {
        file,
        format: history.format,
        model: history.model,
        timing: history.timing,
        overall,
        operations: keys.iter().map(|k| k.operations.len()).sum(),
        keys: outcomes,
        check,
        search_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

impl HistoryVerdict {
    /// Terminal lines: the overall verdict with the keys that decided it, then one line per
    /// key that is not plainly linearizable (all keys when there are few).
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{}: {} ({} operations, {} keys, {}, {} model{}) in {:.1} ms\n  {}\n",
            self.file.display(),
            self.overall.word(),
            self.operations,
            self.keys.len(),
            self.format,
            self.model,
            match self.timing {
                Timing::Recorded => "",
                Timing::FileOrder => ", no :time: file order is time order",
            },
            self.search_ms,
            self.check.summary
        );
        const LIST_ALL_UP_TO: usize = 10;
        for key in &self.keys {
            if self.keys.len() > LIST_ALL_UP_TO && key.verdict == KeyVerdict::Linearizable {
                continue;
            }
            let _ = writeln!(
                out,
                "  key {:<16} {:>6} ops  {:<17} {:>9.1} ms",
                key_name(&key.key),
                key.operations,
                verdict_word(key.verdict),
                key.search_ms
            );
        }
        out
    }
}

pub fn verdict_word(verdict: KeyVerdict) -> &'static str {
    match verdict {
        KeyVerdict::Linearizable => "linearizable",
        KeyVerdict::NotLinearizable => "NOT linearizable",
        KeyVerdict::OutOfBudget => "out of budget",
        KeyVerdict::NotSearched => "not searched",
    }
}
