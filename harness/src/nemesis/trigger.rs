//! Faults at protocol points: which planned faults wait for an event, and which replica event
//! fires which of them. Free of clocks and I/O, so the simulator (which sees every event as
//! it is produced) and the real nemesis (which tails `events.jsonl`) decide alike.

use super::{PlannedAction, PlannedFault, PlannedTarget};
use crate::scenario::{FaultAction, SentKind};
use replica::events::ReplicaEvent;
use replica::message::MessageKind;
use replica::{ReplicaId, View};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whom a triggered fault hits, resolved when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerTarget {
    /// The replica that sent the message.
    Sender,
    Replica(ReplicaId),
    /// The primary of the message's view.
    Primary,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedTrigger {
    pub sent: SentKind,
    /// Whose message; `None` = anyone's; `Primary` = the primary of the message's view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<PlannedTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Armed only once the fault with this id has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_fault: Option<String>,
    pub target: TriggerTarget,
    /// The fault is undone this long after it fires; `None` = at the final heal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
    /// The scenario's action (`restart` plans as a kill undone after `after_ms`).
    pub action: FaultAction,
}

/// A trigger that matched: the fault to start now, its target filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Fired {
    pub fault: PlannedFault,
    /// The replica whose event fired it, and the event in words.
    pub sender: ReplicaId,
    pub event: String,
    /// When to undo it, in ms after it starts; `None` = at the final heal.
    pub end_after_ms: Option<u64>,
}

/// How a triggered fault fired: written beside its record in `nemesis.jsonl` (an extra
/// `trigger` key, which readers of `NemesisRecord` skip).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerRecord {
    /// `replica 1 sent commit view 0 seq 5`.
    pub event: String,
    /// The replica whose event it was.
    pub replica: ReplicaId,
    /// When the replica reported the event, on the record's clock.
    pub event_ns: u64,
    /// From the event to the fault in force (`start_ns - event_ns`): 0 in simulation, the
    /// event log's flush, the tailing and the signal on real processes.
    pub lag_ns: u64,
    /// From the event to the nemesis reading it (real processes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_lag_ns: Option<u64>,
}

/// The triggered faults not fired yet, and what each replica's events said about its view.
pub struct TriggerWatch {
    n: usize,
    pending: Vec<PlannedFault>,
    /// The last view each replica's events named: a checkpoint's view.
    views: BTreeMap<ReplicaId, View>,
}

/// The message an event reports as just sent: kind, view, seq.
fn message_of(event: &ReplicaEvent, replica: ReplicaId, last_view: View) -> Option<Sent> {
    let (kind, view, seq) = match event {
        ReplicaEvent::Sent {
            kind, view, seq, ..
        } => {
            let kind = match kind {
                MessageKind::PrePrepare => SentKind::PrePrepare,
                MessageKind::Prepare => SentKind::Prepare,
                MessageKind::Commit => SentKind::Commit,
                _ => return None,
            };
            (kind, *view, Some(seq.0))
        }
        ReplicaEvent::CheckpointTaken { seq, .. } => (SentKind::Checkpoint, last_view, Some(seq.0)),
        ReplicaEvent::ViewChangeStarted { view, .. } => (SentKind::ViewChange, *view, None),
        // Only the new view's primary sends the NEW-VIEW; the others received it.
        ReplicaEvent::ViewChangeCompleted { view, primary } if *primary == replica => {
            (SentKind::NewView, *view, None)
        }
        _ => return None,
    };
    Some(Sent { kind, view, seq })
}

struct Sent {
    kind: SentKind,
    view: View,
    seq: Option<u64>,
}

impl Sent {
    fn describe(&self, replica: ReplicaId) -> String {
        let mut out = format!(
            "replica {replica} sent {} view {}",
            self.kind.name(),
            self.view
        );
        if let Some(seq) = self.seq {
            out.push_str(&format!(" seq {seq}"));
        }
        out
    }
}

/// The view an event leaves its replica in, if it names one.
fn view_after(event: &ReplicaEvent) -> Option<View> {
    match event {
        ReplicaEvent::Sent { view, .. }
        | ReplicaEvent::ViewChangeStarted { view, .. }
        | ReplicaEvent::ViewChangeCompleted { view, .. }
        | ReplicaEvent::Recovered { view, .. }
        | ReplicaEvent::Commit { view, .. } => Some(*view),
        _ => None,
    }
}

impl TriggerWatch {
    pub fn new(faults: &[PlannedFault], n: usize) -> TriggerWatch {
        TriggerWatch {
            n,
            pending: faults
                .iter()
                .filter(|f| f.trigger.is_some())
                .cloned()
                .collect(),
            views: BTreeMap::new(),
        }
    }

    /// No trigger is left to fire.
    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// `replica` reported `event` before any trigger could fire: only its view is noted.
    pub fn note(&mut self, replica: ReplicaId, event: &ReplicaEvent) {
        if let Some(view) = view_after(event) {
            self.views.insert(replica, view);
        }
    }

    /// `replica` reported `event`, `elapsed_ms` after the workload started; `ended` says
    /// whether a fault (by id) has ended. Returns the faults it fires, each at most once.
    pub fn observe(
        &mut self,
        replica: ReplicaId,
        event: &ReplicaEvent,
        elapsed_ms: u64,
        ended: impl Fn(&str) -> bool,
    ) -> Vec<Fired> {
        let last_view = self.views.get(&replica).copied().unwrap_or_default();
        if let Some(view) = view_after(event) {
            self.views.insert(replica, view);
        }
        let Some(sent) = message_of(event, replica, last_view) else {
            return Vec::new();
        };
        let n = self.n;
        let mut fired = Vec::new();
        self.pending.retain(|fault| {
            let Some(trigger) = &fault.trigger else {
                return false;
            };
            let armed =
                elapsed_ms >= fault.start_ms && trigger.after_fault.as_deref().is_none_or(&ended);
            if !armed || !matches(trigger, &sent, replica, n) {
                return true;
            }
            let target = match trigger.target {
                TriggerTarget::Sender => replica,
                TriggerTarget::Replica(r) => r,
                TriggerTarget::Primary => sent.view.primary(n),
            };
            fired.push(Fired {
                fault: aimed_at(fault, target),
                sender: replica,
                event: sent.describe(replica),
                end_after_ms: trigger.after_ms,
            });
            false
        });
        fired
    }
}

fn matches(trigger: &PlannedTrigger, sent: &Sent, replica: ReplicaId, n: usize) -> bool {
    let by = match trigger.by {
        None => true,
        Some(PlannedTarget::Replica(r)) => r == replica,
        Some(PlannedTarget::Primary) => sent.view.primary(n) == replica,
    };
    by && trigger.sent == sent.kind
        && trigger.view.is_none_or(|v| v == sent.view.0)
        && trigger.seq.is_none_or(|s| Some(s) == sent.seq)
}

/// `fault` with its process action aimed at `target`.
fn aimed_at(fault: &PlannedFault, target: ReplicaId) -> PlannedFault {
    let target = PlannedTarget::Replica(target);
    let action = match &fault.action {
        PlannedAction::Kill { permanent, .. } => PlannedAction::Kill {
            target,
            permanent: *permanent,
        },
        PlannedAction::Pause { .. } => PlannedAction::Pause { target },
        other => other.clone(),
    };
    PlannedFault {
        action,
        ..fault.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::Seq;

    fn triggered(id: &str, trigger: PlannedTrigger) -> PlannedFault {
        PlannedFault {
            id: id.into(),
            start_ms: 0,
            end_ms: None,
            action: PlannedAction::Kill {
                target: PlannedTarget::Primary,
                permanent: false,
            },
            trigger: Some(trigger),
        }
    }

    fn trigger(sent: SentKind) -> PlannedTrigger {
        PlannedTrigger {
            sent,
            by: None,
            view: None,
            seq: None,
            after_fault: None,
            target: TriggerTarget::Sender,
            after_ms: Some(100),
            action: FaultAction::Restart,
        }
    }

    fn commit(view: u64, seq: u64) -> ReplicaEvent {
        ReplicaEvent::Sent {
            kind: MessageKind::Commit,
            view: View(view),
            seq: Seq(seq),
            digest: String::new(),
        }
    }

    #[test]
    fn a_commit_trigger_fires_once_at_its_replica_and_seq() {
        let t = PlannedTrigger {
            by: Some(PlannedTarget::Replica(ReplicaId(1))),
            seq: Some(5),
            ..trigger(SentKind::Commit)
        };
        let mut watch = TriggerWatch::new(&[triggered("a", t)], 4);
        let never = |_: &str| false;
        assert!(
            watch
                .observe(ReplicaId(2), &commit(0, 5), 0, never)
                .is_empty()
        );
        assert!(
            watch
                .observe(ReplicaId(1), &commit(0, 4), 0, never)
                .is_empty()
        );
        let fired = watch.observe(ReplicaId(1), &commit(0, 5), 0, never);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].event, "replica 1 sent commit view 0 seq 5");
        assert_eq!(
            fired[0].fault.action,
            PlannedAction::Kill {
                target: PlannedTarget::Replica(ReplicaId(1)),
                permanent: false
            }
        );
        assert!(watch.is_done());
        assert!(
            watch
                .observe(ReplicaId(1), &commit(0, 5), 0, never)
                .is_empty()
        );
    }

    #[test]
    fn new_view_is_the_new_primary_s_and_a_chained_trigger_waits_for_its_predecessor() {
        let t = PlannedTrigger {
            after_fault: Some("s00-kill".into()),
            target: TriggerTarget::Primary,
            ..trigger(SentKind::NewView)
        };
        let mut watch = TriggerWatch::new(&[triggered("b", t)], 4);
        let completed = |view: u64| ReplicaEvent::ViewChangeCompleted {
            view: View(view),
            primary: ReplicaId((view % 4) as u32),
        };
        // A backup entering view 1 did not send the NEW-VIEW.
        assert!(
            watch
                .observe(ReplicaId(2), &completed(1), 0, |_| true)
                .is_empty()
        );
        // Not armed while its predecessor is in force.
        assert!(
            watch
                .observe(ReplicaId(1), &completed(1), 0, |_| false)
                .is_empty()
        );
        let fired = watch.observe(ReplicaId(2), &completed(2), 0, |id| id == "s00-kill");
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].sender, ReplicaId(2));
        assert_eq!(
            fired[0].fault.action,
            PlannedAction::Kill {
                target: PlannedTarget::Replica(ReplicaId(2)),
                permanent: false
            }
        );
    }

    #[test]
    fn by_primary_means_the_primary_of_the_message_s_view_and_arming_waits_for_start_ms() {
        let t = PlannedTrigger {
            by: Some(PlannedTarget::Primary),
            ..trigger(SentKind::Commit)
        };
        let mut fault = triggered("c", t);
        fault.start_ms = 500;
        let mut watch = TriggerWatch::new(&[fault], 4);
        let never = |_: &str| false;
        assert!(
            watch
                .observe(ReplicaId(1), &commit(0, 1), 900, never)
                .is_empty()
        );
        assert!(
            watch
                .observe(ReplicaId(1), &commit(1, 1), 100, never)
                .is_empty()
        );
        assert_eq!(
            watch.observe(ReplicaId(1), &commit(1, 2), 600, never).len(),
            1
        );
    }
}
