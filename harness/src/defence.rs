//! How an attack was mounted and how the honest replicas repelled it, for the verdict and the
//! run summary: which replicas were faulty and how, and per honest replica the inputs it
//! refused by reason, its view changes and its state transfers.

use crate::plan::Plan;
use crate::scenario::Build;
use replica::ReplicaId;
use replica::events::{EventLine, ReplicaEvent};
use replica::node::StatsSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A replica that did not run the honest build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultyReplica {
    pub replica: ReplicaId,
    pub build: Build,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// For twins: who each twin talked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

impl FaultyReplica {
    /// `r1 byzantine equivocate`, `r0 twin (r0 with r1, c0 | r0-twin with r3, c1)`.
    pub fn describe(&self) -> String {
        let mut out = format!("r{} ", self.replica);
        match self.build {
            Build::Byzantine => {
                out.push_str("byzantine ");
                out.push_str(self.behaviour.as_deref().unwrap_or("?"));
                if !self.params.is_empty() {
                    let params: Vec<String> = self
                        .params
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    out.push_str(&format!(" [{}]", params.join(", ")));
                }
            }
            Build::Twin => {
                out.push_str("twin");
                if let Some(split) = &self.split {
                    out.push_str(&format!(" ({split})"));
                }
            }
            Build::Honest => out.push_str("honest"),
        }
        out
    }
}

/// What one honest replica saw of the attack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Defence {
    /// Refused inputs by reason: from its `stats.json`, or counted from its events when the
    /// statistics are missing (a replica killed before it wrote any).
    pub rejected: BTreeMap<String, u64>,
    pub view_changes_started: u64,
    pub view_changes_completed: u64,
    pub state_transfers: u64,
    /// Requests proposed to it whose MAC entry for it failed, so that it checked their
    /// signatures instead (Aardvark's "MAC attack"; `mac_fallbacks` of its `stats.json`, zero
    /// without one). Those whose signature failed too are also among `rejected`.
    #[serde(default)]
    pub mac_fallbacks: u64,
    /// The view it ended in, and the last sequence number it executed (from `stats.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_view: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_executed: Option<u64>,
}

impl Defence {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// `view 1, 2 view changes, 0 state transfers, executed to 812; rejected 120 (bad-signature 100, stale-view 20)`,
    /// with `, 40 spoiled MAC entries checked by signature` before the `;` under a MAC attack.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(view) = self.final_view {
            out.push_str(&format!("view {view}, "));
        }
        out.push_str(&format!(
            "{} view changes, {} state transfers",
            self.view_changes_completed, self.state_transfers
        ));
        if let Some(seq) = self.last_executed {
            out.push_str(&format!(", executed to {seq}"));
        }
        if self.mac_fallbacks > 0 {
            // Only under attack: an honest run has no spoiled entry to mention.
            out.push_str(&format!(
                ", {} spoiled MAC entries checked by signature",
                self.mac_fallbacks
            ));
        }
        out.push_str(&format!("; rejected {}", self.rejected_total()));
        if !self.rejected.is_empty() {
            let mut reasons: Vec<(&String, &u64)> = self.rejected.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let listed: Vec<String> = reasons
                .iter()
                .map(|(reason, count)| format!("{reason} {count}"))
                .collect();
            out.push_str(&format!(" ({})", listed.join(", ")));
        }
        out
    }
}

/// The faulty replicas of `plan`, in id order.
pub fn faulty_replicas(plan: &Plan) -> Vec<FaultyReplica> {
    plan.faulty()
        .into_iter()
        .map(|r| FaultyReplica {
            replica: r.id,
            build: r.build,
            behaviour: r.behaviour.as_ref().map(|b| b.name().to_string()),
            params: r.behaviour.as_ref().map(|b| b.params()).unwrap_or_default(),
            split: (r.build == Build::Twin)
                .then(|| plan.twins.as_ref().map(|t| t.describe()))
                .flatten(),
        })
        .collect()
}

/// One honest replica's defence from its events and (when present) its `stats.json`.
pub fn defence_of(events: &[EventLine], stats_path: &Path) -> Defence {
    let stats: Option<StatsSnapshot> = std::fs::read_to_string(stats_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let mut defence = Defence::default();
    let mut rejected_in_events: BTreeMap<String, u64> = BTreeMap::new();
    for line in events {
        match &line.event {
            ReplicaEvent::ViewChangeStarted { .. } => defence.view_changes_started += 1,
            ReplicaEvent::ViewChangeCompleted { .. } => defence.view_changes_completed += 1,
            ReplicaEvent::StateTransfer { .. } => defence.state_transfers += 1,
            ReplicaEvent::Rejected { reason, .. } => {
                *rejected_in_events.entry(reason.name()).or_default() += 1;
            }
            _ => {}
        }
    }
    match stats {
        Some(stats) => {
            defence.rejected = stats.rejected;
            // The statistics outlive a restart only as far as the events do: take the larger.
            defence.view_changes_started =
                defence.view_changes_started.max(stats.view_changes_started);
            defence.view_changes_completed = defence
                .view_changes_completed
                .max(stats.view_changes_completed);
            defence.state_transfers = defence.state_transfers.max(stats.state_transfers);
            defence.mac_fallbacks = stats.mac_fallbacks;
            defence.final_view = Some(stats.view.0);
            defence.last_executed = Some(stats.last_executed.0);
        }
        None => defence.rejected = rejected_in_events,
    }
    defence
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::verify::RejectReason;
    use replica::{Seq, View};

    fn line(event: ReplicaEvent) -> EventLine {
        EventLine {
            time_ns: 1,
            replica: ReplicaId(2),
            event,
        }
    }

    #[test]
    fn defence_counts_rejections_by_reason_from_events_when_stats_are_missing() {
        let events = vec![
            line(ReplicaEvent::Rejected {
                reason: RejectReason::BadSignature,
                kind: None,
                from: None,
            }),
            line(ReplicaEvent::Rejected {
                reason: RejectReason::BadSignature,
                kind: None,
                from: None,
            }),
            line(ReplicaEvent::Rejected {
                reason: RejectReason::StaleView,
                kind: None,
                from: None,
            }),
            line(ReplicaEvent::ViewChangeStarted {
                from: View(0),
                view: View(1),
            }),
            line(ReplicaEvent::ViewChangeCompleted {
                view: View(1),
                primary: ReplicaId(1),
            }),
            line(ReplicaEvent::StateTransfer {
                from_seq: Seq(0),
                to_seq: Seq(16),
                source: ReplicaId(0),
            }),
        ];
        let defence = defence_of(&events, Path::new("/nonexistent/stats.json"));
        assert_eq!(defence.rejected.get("bad-signature"), Some(&2));
        assert_eq!(defence.rejected.get("stale-view"), Some(&1));
        assert_eq!(defence.rejected_total(), 3);
        assert_eq!(
            (
                defence.view_changes_started,
                defence.view_changes_completed,
                defence.state_transfers
            ),
            (1, 1, 1)
        );
        let text = defence.describe();
        assert!(
            text.contains("rejected 3 (bad-signature 2, stale-view 1)"),
            "{text}"
        );
        assert!(!text.contains("MAC"), "no fallback, nothing said: {text}");
    }

    #[test]
    fn defence_reads_mac_fallbacks_from_stats_and_says_so() {
        let dir = std::env::temp_dir().join(format!("defence-macs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let stats = replica::node::NodeStats::new(ReplicaId(2));
        stats.mac_fallbacks(40);
        stats.mac_fallbacks(2);
        stats.write(&dir).expect("stats.json");
        let defence = defence_of(&[], &dir.join(replica::node::STATS_FILE));
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(defence.mac_fallbacks, 42);
        let text = defence.describe();
        assert!(
            text.contains(", 42 spoiled MAC entries checked by signature; rejected 0"),
            "{text}"
        );
    }

    #[test]
    fn faulty_replicas_name_their_build_and_behaviour() {
        let text = "name: t\nworkload:\n  kind: kv\n  duration_s: 3\nreplicas:\n  0: { build: byzantine, behaviour: censor, params: { clients: \"0,1\" } }\n  2: { build: twin }\n";
        let loaded =
            crate::scenario::LoadedScenario::from_text(text, Path::new("t.yaml")).expect("parses");
        let plan = crate::plan::resolve(&loaded, 1).expect("plan");
        let faulty = faulty_replicas(&plan);
        assert_eq!(faulty.len(), 2);
        assert_eq!(faulty[0].describe(), "r0 byzantine censor [clients=0,1]");
        assert!(
            faulty[1].describe().starts_with("r2 twin (r2 with r0, r1"),
            "{}",
            faulty[1].describe()
        );
    }
}
