//! What a fuzzing run counted, the crashes it found, and how to print them.

use crate::ids::{ReplicaId, View};
use crate::message::MessageKind;
use crate::verify::RejectReason;
use std::collections::BTreeMap;
use std::fmt;

/// Crashes kept in full (seed, frame, hex); beyond this only the count grows.
pub const MAX_CRASHES_KEPT: usize = 64;

/// Every outcome a run counts. A pure function of the seed and the number of frames: two runs
/// with the same configuration produce equal `Counts` (time and memory are in `Report`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Fuzzed inputs fed to the inbound path, each as the bytes of one connection's stream.
    pub frames: u64,
    /// Core turns (`begin_turn` .. `end_turn`), each carrying one or more frames.
    pub turns: u64,
    /// Frames by the mutation operator that made them.
    pub mutations: BTreeMap<&'static str, u64>,
    /// Structure-level mutations by how the result was signed.
    pub signing: BTreeMap<&'static str, u64>,

    /// `split_frame`: payloads split off, lengths refused, and streams that ended inside a
    /// frame (the node reports `malformed-frame` for those when the connection closes).
    pub framed: u64,
    pub split_oversized: u64,
    pub split_incomplete: u64,

    /// `decode_payload`: messages decoded, and the three ways a payload is refused.
    pub decoded: u64,
    pub decode_malformed: u64,
    pub decode_trailing: u64,
    pub decode_oversized: u64,
    pub decoded_by_kind: BTreeMap<MessageKind, u64>,

    /// `verify` / `verify_many`: refusals by reason, and messages that became `Verified`.
    pub verify_rejected: BTreeMap<RejectReason, u64>,
    pub verified: u64,
    pub verified_by_kind: BTreeMap<MessageKind, u64>,
    /// Turns whose batch verdicts were also computed one message at a time, and how often the
    /// two disagreed (`verify_many` promises they never do).
    pub verdict_cross_checks: u64,
    pub verdict_divergences: u64,

    /// `Core::step` calls with a verified message, per instance, and with a fired timer.
    pub steps_backup: u64,
    pub steps_primary: u64,
    pub timer_steps: u64,
    /// What the cores refused (their `Rejected` events), by reason.
    pub core_rejected: BTreeMap<RejectReason, u64>,
    /// The cores' other events, by name (commit, execute, view-change-started, ...).
    pub core_events: BTreeMap<&'static str, u64>,
    /// Sends, broadcasts and replies the cores produced (dropped: nothing leaves the fuzzer).
    pub outbound: u64,
    pub persisted: u64,
    pub stable_checkpoints: u64,
    /// Write-ahead log records held at most between two stable checkpoints (either core).
    pub max_wal_records: usize,
    /// Restarts: `Core::recover` from the instance's own log, or back to the simulated state.
    pub restarts_own_log: u64,
    pub restarts_pristine: u64,

    /// Panics caught anywhere on the inbound path.
    pub crashes: u64,
}

impl Counts {
    /// Everything `split_frame` and `decode_payload` refused.
    pub fn framing_errors(&self) -> u64 {
        self.split_oversized + self.split_incomplete
    }

    pub fn decode_errors(&self) -> u64 {
        self.decode_malformed + self.decode_trailing + self.decode_oversized
    }

    pub fn verify_rejections(&self) -> u64 {
        self.verify_rejected.values().sum()
    }

    pub fn core_steps(&self) -> u64 {
        self.steps_backup + self.steps_primary
    }
}

/// One panic on the inbound path, with what reproduces it: rerunning the same seed for
/// `frame + 1` frames replays everything up to it, and `frames` are the exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    pub seed: u64,
    /// Index (from 0) of the frame being handled, or of the last frame of its turn when the
    /// panic was in a turn-wide stage (batch verification, timers, `end_turn`, a restart).
    pub frame: u64,
    pub stage: &'static str,
    pub mutation: String,
    pub panic: String,
    /// (frame index, bytes as hex) of every frame involved.
    pub frames: Vec<(u64, String)>,
}

/// The result of `fuzz::run`.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub counts: Counts,
    /// The first `MAX_CRASHES_KEPT` crashes and verdict divergences (`counts` has them all).
    pub crashes: Vec<Crash>,
    /// Distinct captured messages per kind.
    pub corpus: BTreeMap<MessageKind, usize>,
    /// Simulated workload phases that did not finish in time (the corpus is still used).
    pub corpus_phases_unfinished: usize,
    pub backup: ReplicaId,
    pub primary: ReplicaId,
    pub byzantine: ReplicaId,
    /// Views of the two instances when the simulation ended and when fuzzing ended.
    pub views_start: (View, View),
    pub views_end: (View, View),
    pub corpus_seconds: f64,
    pub fuzz_seconds: f64,
    /// Resident set size (`/proc/self/statm`) before and after the fuzzing loop, and the
    /// largest seen at a progress or restart point in between.
    pub rss_before: u64,
    pub rss_after: u64,
    pub rss_max: u64,
}

impl Report {
    pub fn frames_per_second(&self) -> f64 {
        if self.fuzz_seconds > 0.0 {
            self.counts.frames as f64 / self.fuzz_seconds
        } else {
            0.0
        }
    }

    /// No panic and no verdict divergence.
    pub fn clean(&self) -> bool {
        self.counts.crashes == 0 && self.counts.verdict_divergences == 0
    }
}

/// Resident set size of this process in bytes, from `/proc/self/statm` (0 where unavailable).
pub fn resident_bytes() -> u64 {
    // The second field is resident pages; x86-64 and aarch64 Linux use 4 KiB pages here.
    const PAGE: u64 = 4096;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * PAGE)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn line(f: &mut fmt::Formatter<'_>, label: &str, value: impl fmt::Display) -> fmt::Result {
    writeln!(f, "  {label:<28} {value}")
}

fn map<K: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    entries: &BTreeMap<K, u64>,
) -> fmt::Result {
    writeln!(f, "  {title}:")?;
    if entries.is_empty() {
        return writeln!(f, "    (none)");
    }
    for (key, count) in entries {
        writeln!(f, "    {:<26} {count}", key.to_string())?;
    }
    Ok(())
}

fn reasons(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    entries: &BTreeMap<RejectReason, u64>,
) -> fmt::Result {
    let named: BTreeMap<String, u64> = entries.iter().map(|(r, c)| (r.name(), *c)).collect();
    map(f, title, &named)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(f, "fuzz-inbound: seed {}", self.seed)?;
        writeln!(
            f,
            "corpus (simulated cluster, {:.1} s): {}",
            self.corpus_seconds,
            self.corpus
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        if self.corpus_phases_unfinished > 0 {
            writeln!(
                f,
                "  ({} workload phases did not finish in time)",
                self.corpus_phases_unfinished
            )?;
        }
        writeln!(
            f,
            "target: replica {} (backup, view {}), primary instance replica {} (view {}); \
             Byzantine signer replica {}",
            self.backup, self.views_start.0, self.primary, self.views_start.1, self.byzantine
        )?;
        writeln!(f, "frames")?;
        line(f, "fed", c.frames)?;
        line(f, "turns", c.turns)?;
        line(
            f,
            "wall time (fuzz loop)",
            format!("{:.1} s", self.fuzz_seconds),
        )?;
        line(f, "frames/s", format!("{:.0}", self.frames_per_second()))?;
        map(f, "by mutation", &c.mutations)?;
        map(f, "structure-level, signed", &c.signing)?;
        writeln!(f, "framing (split_frame)")?;
        line(f, "payloads split off", c.framed)?;
        line(f, "oversized length", c.split_oversized)?;
        line(f, "ended inside a frame", c.split_incomplete)?;
        writeln!(f, "decoding (decode_payload)")?;
        line(f, "decoded", c.decoded)?;
        line(f, "malformed", c.decode_malformed)?;
        line(f, "trailing bytes", c.decode_trailing)?;
        line(f, "oversized", c.decode_oversized)?;
        map(f, "decoded by kind", &c.decoded_by_kind)?;
        writeln!(f, "authentication (verify, verify_many)")?;
        reasons(f, "rejected", &c.verify_rejected)?;
        line(f, "accepted (Verified)", c.verified)?;
        map(f, "accepted by kind", &c.verified_by_kind)?;
        line(
            f,
            "batch vs single verdicts",
            format!(
                "{} turns cross-checked, {} divergences",
                c.verdict_cross_checks, c.verdict_divergences
            ),
        )?;
        writeln!(f, "core (Core::step, begin_turn/end_turn)")?;
        line(f, "message steps, backup", c.steps_backup)?;
        line(f, "message steps, primary", c.steps_primary)?;
        line(f, "timer steps", c.timer_steps)?;
        reasons(f, "rejected by the core", &c.core_rejected)?;
        map(f, "events", &c.core_events)?;
        line(f, "outbound (dropped)", c.outbound)?;
        line(f, "records persisted", c.persisted)?;
        line(f, "stable checkpoints", c.stable_checkpoints)?;
        line(f, "largest log between ckpts", c.max_wal_records)?;
        line(
            f,
            "restarts",
            format!(
                "{} from own log, {} from the simulated state",
                c.restarts_own_log, c.restarts_pristine
            ),
        )?;
        line(
            f,
            "views at the end",
            format!("backup {}, primary {}", self.views_end.0, self.views_end.1),
        )?;
        writeln!(f, "memory (resident)")?;
        line(f, "before", mib(self.rss_before))?;
        line(f, "after", mib(self.rss_after))?;
        line(f, "max sampled", mib(self.rss_max))?;
        writeln!(
            f,
            "crashes: {}   verdict divergences: {}",
            c.crashes, c.verdict_divergences
        )?;
        for crash in &self.crashes {
            writeln!(
                f,
                "  FOUND seed {} frame {} in {} ({}): {}",
                crash.seed, crash.frame, crash.stage, crash.mutation, crash.panic
            )?;
            for (index, hex) in &crash.frames {
                writeln!(f, "    frame {index}: {hex}")?;
            }
        }
        Ok(())
    }
}
