//! Faults at protocol points: a `nemesis.schedule` entry with `on:` instead of (or besides)
//! `at_ms:` starts when a replica has just sent a given message, not at a time.
//!
//! ```yaml
//! - on: {replica: 1, sent: commit, seq: 5}   # after replica 1 sends its COMMIT for seq 5
//!   action: restart                          # kill, restart (kill, then start again) or pause
//!   after_ms: 800                            # restart / resume this long after
//! ```
//!
//! A trigger fires once, at the first matching event after it is armed: from `at_ms`
//! (default 0) and, with `after_fault: K`, only once schedule entry K has ended, so the two
//! faults cannot overlap (the over-f guard counts them as one replica).

use super::locate::Segment::{self, Index, Key};
use super::{FaultAction, Problem, Scenario, ScheduledFault, TargetSpec, problem};
use serde::{Deserialize, Serialize};

/// The message a replica has just sent, as its events report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SentKind {
    /// `sent` with kind `pre-prepare` (the primary; also each one a NEW-VIEW re-issues).
    PrePrepare,
    Prepare,
    Commit,
    /// `checkpoint-taken`: the replica digested its state at `seq` and sent its CHECKPOINT.
    Checkpoint,
    /// `view-change-started`: the replica sent its VIEW-CHANGE for `view`.
    ViewChange,
    /// `view-change-completed` at the new view's primary: it sent the NEW-VIEW for `view`.
    NewView,
}

impl SentKind {
    pub fn name(self) -> &'static str {
        match self {
            SentKind::PrePrepare => "pre-prepare",
            SentKind::Prepare => "prepare",
            SentKind::Commit => "commit",
            SentKind::Checkpoint => "checkpoint",
            SentKind::ViewChange => "view-change",
            SentKind::NewView => "new-view",
        }
    }

    fn has_seq(self) -> bool {
        !matches!(self, SentKind::ViewChange | SentKind::NewView)
    }

    fn has_view(self) -> bool {
        self != SentKind::Checkpoint
    }
}

/// When a triggered fault starts: right after a replica sends a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    pub sent: SentKind,
    /// Who sent it: an id, `primary` (the primary of the message's view) or `random` (drawn
    /// from the seed); absent = any replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<TargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Armed only once this earlier schedule entry (0-based) has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_fault: Option<usize>,
}

/// Checks the schedule's triggered entries (`at_ms`-only entries are `validate_fault`'s).
pub(super) fn validate_triggers(s: &Scenario) -> Result<(), Problem> {
    let n = s.cluster.n() as u32;
    let schedule = &s.nemesis.schedule;
    let mut followed: Vec<Option<usize>> = vec![None; schedule.len()];
    for (index, fault) in schedule.iter().enumerate() {
        let at = |fields: &[&str]| {
            let mut path: Vec<Segment> =
                vec![Key("nemesis".into()), Key("schedule".into()), Index(index)];
            path.extend(fields.iter().map(|f| Key(f.to_string())));
            path
        };
        let Some(on) = &fault.on else {
            if fault.at_ms.is_none() {
                return Err(problem(
                    at(&["at_ms"]),
                    "a fault needs `at_ms` (a time) or `on` (a protocol event)",
                ));
            }
            if fault.after_ms.is_some() {
                return Err(problem(
                    at(&["after_ms"]),
                    "only a triggered fault (`on`) takes `after_ms`; a timed one lasts `duration_ms`",
                ));
            }
            continue;
        };
        check_triggered(fault, on, n).map_err(|(fields, message)| problem(at(&fields), message))?;
        if let Some(earlier) = on.after_fault {
            check_follows(schedule, index, earlier, &mut followed)
                .map_err(|message| problem(at(&["on", "after_fault"]), message))?;
        }
    }
    Ok(())
}

type FieldError = (Vec<&'static str>, String);

fn check_triggered(fault: &ScheduledFault, on: &TriggerSpec, n: u32) -> Result<(), FieldError> {
    let err = |fields: &[&'static str], message: String| Err((fields.to_vec(), message));
    if !matches!(
        fault.action,
        FaultAction::Kill | FaultAction::Restart | FaultAction::Pause
    ) {
        return err(
            &["action"],
            "a triggered fault (`on`) is a kill, restart or pause".into(),
        );
    }
    if fault.duration_ms.is_some() {
        return err(
            &["duration_ms"],
            "a triggered fault lasts `after_ms` (from the moment it fires), not `duration_ms`"
                .into(),
        );
    }
    if fault.permanent && fault.after_ms.is_some() {
        return err(&["after_ms"], "a permanent kill is never restarted".into());
    }
    for (field, target) in [("target", fault.target), ("replica", on.replica)] {
        if let Some(TargetSpec::Id(id)) = target
            && id >= n
        {
            let fields: &[&'static str] = if field == "target" {
                &["target"]
            } else {
                &["on", "replica"]
            };
            return err(fields, format!("replica {id} does not exist (ids 0..{n})"));
        }
    }
    if on.seq.is_some() && !on.sent.has_seq() {
        return err(
            &["on", "seq"],
            format!("a {} has no sequence number", on.sent.name()),
        );
    }
    if on.view.is_some() && !on.sent.has_view() {
        return err(
            &["on", "view"],
            "a checkpoint has no view (it is about a sequence number)".into(),
        );
    }
    Ok(())
}

/// `after_fault` names an earlier entry that ends (else the trigger would never be armed)
/// and that no other entry follows (two followers of one fault could overlap each other).
fn check_follows(
    schedule: &[ScheduledFault],
    index: usize,
    earlier: usize,
    followed: &mut [Option<usize>],
) -> Result<(), String> {
    if earlier >= index {
        return Err(format!(
            "must name an earlier entry of the schedule (0..{index}), not {earlier}"
        ));
    }
    let before = &schedule[earlier];
    let ends = match &before.on {
        Some(_) => before.action == FaultAction::Restart || before.after_ms.is_some(),
        None => before.duration_ms.is_some() && !before.permanent,
    };
    if !ends {
        return Err(format!(
            "entry {earlier} never ends before the final heal (give it `after_ms` or \
             `duration_ms`), so this trigger would never be armed"
        ));
    }
    if let Some(other) = followed[earlier] {
        return Err(format!(
            "entry {other} already follows entry {earlier}; a fault has at most one follower"
        ));
    }
    followed[earlier] = Some(index);
    Ok(())
}
