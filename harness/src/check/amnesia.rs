//! No amnesia: an honest replica restarted from its write-ahead log never contradicts what it
//! sent before the crash. Its events file is one stream across its incarnations, a restart
//! showing as a `recovered` line; after one, the replica must not
//!
//! - vote (`sent`: PRE-PREPARE, PREPARE, COMMIT) a different batch digest for a (view, seq) it
//!   had voted for in an earlier incarnation,
//! - speak from a view lower than one it had moved to in an earlier incarnation (a
//!   VIEW-CHANGE it sent, a view it entered, a vote it sent in that view): its votes,
//!   VIEW-CHANGEs and the views it enters are judged,
//! - send a CHECKPOINT (`checkpoint-taken`) with a different state digest for a seq.
//!
//! Only a later incarnation against an earlier one is judged: within one life the replica
//! remembers everything, and agreement and state agreement judge what it decided. Like the
//! other incremental oracles, the offline check feeds it a run's files and the simulator feeds
//! it every event as it happens, stopping at the first violation.

use super::{CheckOutcome, CheckResult};
use replica::events::{EventLine, ReplicaEvent};
use replica::{ReplicaId, Seq, View};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// How many violations the details list before they only count them.
const MAX_LISTED: usize = 20;

/// One thing a replica sent (or a view it entered), and where its events file says so.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Claim {
    /// `pre-prepare`, `prepare`, `commit`, `checkpoint`, `view-change` or `entered view`.
    what: &'static str,
    view: Option<View>,
    seq: Option<Seq>,
    digest: Option<String>,
    /// 1-based position in the replica's events file.
    line: usize,
    /// 0 before the first restart, then one more per `recovered` line.
    incarnation: u32,
}

impl Claim {
    fn to_json(&self) -> Value {
        let mut claim = json!({
            "what": self.what,
            "line": self.line,
            "incarnation": self.incarnation,
        });
        if let Some(view) = self.view {
            claim["view"] = json!(view);
        }
        if let Some(seq) = self.seq {
            claim["seq"] = json!(seq);
        }
        if let Some(digest) = &self.digest {
            claim["digest"] = json!(digest);
        }
        claim
    }

    fn describe(&self) -> String {
        let mut text = self.what.to_string();
        if let Some(view) = self.view {
            text.push_str(&format!(" view {view}"));
        }
        if let Some(seq) = self.seq {
            text.push_str(&format!(" seq {seq}"));
        }
        if let Some(digest) = &self.digest {
            text.push_str(&format!(" digest {}", short(digest)));
        }
        format!("{text} (line {})", self.line)
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// What one replica sent so far, by incarnation.
#[derive(Default)]
struct Memory {
    lines: usize,
    incarnation: u32,
    /// (view, seq) -> one claim per distinct batch digest voted there.
    votes: BTreeMap<(View, Seq), Vec<Claim>>,
    /// seq -> one claim per distinct state digest its CHECKPOINTs carried.
    checkpoints: BTreeMap<Seq, Vec<Claim>>,
    /// The highest view moved to in an earlier incarnation, and in this one.
    moved_before: Option<Claim>,
    moved_now: Option<Claim>,
}

fn view_of(claim: &Option<Claim>) -> Option<View> {
    claim.as_ref().and_then(|c| c.view)
}

impl Memory {
    fn restart(&mut self) {
        self.incarnation += 1;
        if view_of(&self.moved_now) > view_of(&self.moved_before) {
            self.moved_before = self.moved_now.take();
        }
        self.moved_now = None;
    }

    fn claim(&self, what: &'static str, view: Option<View>, seq: Option<Seq>) -> Claim {
        Claim {
            what,
            view,
            seq,
            digest: None,
            line: self.lines,
            incarnation: self.incarnation,
        }
    }

    /// A message from `claim.view`: a conflict when an earlier incarnation had moved higher.
    fn speaks_from(&mut self, claim: &Claim) -> Option<Conflict> {
        let conflict = match &self.moved_before {
            Some(before) if view_of(&self.moved_before) > claim.view => Some(Conflict {
                rule: "lower-view",
                before: before.clone(),
                after: claim.clone(),
            }),
            _ => None,
        };
        if claim.view > view_of(&self.moved_now) {
            self.moved_now = Some(claim.clone());
        }
        conflict
    }

    /// A digest claimed at `key`: a conflict when an earlier incarnation claimed another one
    /// there (and this one is new).
    fn digest_at<K: Ord>(
        claims: &mut BTreeMap<K, Vec<Claim>>,
        key: K,
        claim: &Claim,
        rule: &'static str,
    ) -> Option<Conflict> {
        let known = claims.entry(key).or_default();
        if known.iter().any(|c| c.digest == claim.digest) {
            return None;
        }
        let conflict = known
            .iter()
            .find(|c| c.incarnation < claim.incarnation)
            .map(|before| Conflict {
                rule,
                before: before.clone(),
                after: claim.clone(),
            });
        known.push(claim.clone());
        conflict
    }
}

/// One contradiction: what the replica sent in an earlier incarnation, and what it sent after.
struct Conflict {
    /// `vote-digest`, `checkpoint-digest` or `lower-view`.
    rule: &'static str,
    before: Claim,
    after: Claim,
}

/// The no-amnesia oracle, one event at a time (see the module documentation).
#[derive(Default)]
pub struct NoAmnesiaOracle {
    replicas: BTreeMap<ReplicaId, Memory>,
    /// (replica, rule, view, seq) already reported, so one forgotten slot counts once.
    reported: BTreeSet<(ReplicaId, &'static str, Option<View>, Option<Seq>)>,
    listed: Vec<Value>,
    first: Option<String>,
    conflicts: usize,
    restarts: usize,
    votes: usize,
}

impl NoAmnesiaOracle {
    /// Takes the next event of honest `replica`'s stream; true when it contradicts what the
    /// replica sent in an earlier incarnation (each forgotten slot counts once).
    pub fn observe(&mut self, replica: ReplicaId, event: &ReplicaEvent) -> bool {
        let memory = self.replicas.entry(replica).or_default();
        memory.lines += 1;
        let conflict = match event {
            ReplicaEvent::Recovered { .. } => {
                memory.restart();
                self.restarts += 1;
                return false;
            }
            ReplicaEvent::Sent {
                kind,
                view,
                seq,
                digest,
            } => {
                self.votes += 1;
                let mut claim = memory.claim(kind.name(), Some(*view), Some(*seq));
                claim.digest = Some(digest.clone());
                let lower = memory.speaks_from(&claim);
                let other =
                    Memory::digest_at(&mut memory.votes, (*view, *seq), &claim, "vote-digest");
                other.or(lower)
            }
            ReplicaEvent::ViewChangeStarted { view, .. } => {
                let claim = memory.claim("view-change", Some(*view), None);
                memory.speaks_from(&claim)
            }
            ReplicaEvent::ViewChangeCompleted { view, .. } => {
                let claim = memory.claim("entered view", Some(*view), None);
                memory.speaks_from(&claim)
            }
            ReplicaEvent::CheckpointTaken { seq, state_digest } => {
                let mut claim = memory.claim("checkpoint", None, Some(*seq));
                claim.digest = Some(state_digest.clone());
                Memory::digest_at(&mut memory.checkpoints, *seq, &claim, "checkpoint-digest")
            }
            _ => None,
        };
        let Some(conflict) = conflict else {
            return false;
        };
        let key = (
            replica,
            conflict.rule,
            conflict.after.view,
            conflict.after.seq,
        );
        if !self.reported.insert(key) {
            return false;
        }
        self.conflicts += 1;
        if self.first.is_none() {
            self.first = Some(format!(
                "replica {replica} sent {} in incarnation {}, after {} in incarnation {}",
                conflict.after.describe(),
                conflict.after.incarnation,
                conflict.before.describe(),
                conflict.before.incarnation,
            ));
        }
        if self.listed.len() < MAX_LISTED {
            self.listed.push(json!({
                "replica": replica,
                "rule": conflict.rule,
                "view": conflict.after.view,
                "seq": conflict.after.seq,
                "before": conflict.before.to_json(),
                "after": conflict.after.to_json(),
            }));
        }
        true
    }

    pub fn finish(&self) -> CheckResult {
        let counts = json!({
            "replicas": self.replicas.len(),
            "restarts": self.restarts,
            "votes_sent": self.votes,
        });
        let Some(first) = &self.first else {
            return CheckResult {
                name: "no-amnesia".into(),
                outcome: CheckOutcome::Pass,
                summary: format!(
                    "no honest replica contradicted after a restart what it had sent before ({}, {})",
                    plural(self.restarts, "restart"),
                    plural(self.votes, "vote")
                ),
                details: json!({ "counts": counts }),
            };
        };
        CheckResult {
            name: "no-amnesia".into(),
            outcome: CheckOutcome::Violation,
            summary: format!(
                "honest replicas contradicted after a restart what they had sent before: {} (first: {first})",
                plural(self.conflicts, "contradiction")
            ),
            details: json!({
                "counts": counts,
                "conflicts": self.listed,
                "conflict_count": self.conflicts,
            }),
        }
    }
}

fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// No amnesia over a run's event files (see `NoAmnesiaOracle`).
pub fn no_amnesia(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
) -> CheckResult {
    let mut oracle = NoAmnesiaOracle::default();
    for replica in honest {
        for line in events.get(replica).map(Vec::as_slice).unwrap_or_default() {
            oracle.observe(*replica, &line.event);
        }
    }
    oracle.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::message::MessageKind;

    fn sent(kind: MessageKind, view: u64, seq: u64, digest: &str) -> ReplicaEvent {
        ReplicaEvent::Sent {
            kind,
            view: View(view),
            seq: Seq(seq),
            digest: digest.into(),
        }
    }

    fn prepare(view: u64, seq: u64, digest: &str) -> ReplicaEvent {
        sent(MessageKind::Prepare, view, seq, digest)
    }

    fn commit(view: u64, seq: u64, digest: &str) -> ReplicaEvent {
        sent(MessageKind::Commit, view, seq, digest)
    }

    fn recovered(view: u64) -> ReplicaEvent {
        ReplicaEvent::Recovered {
            view: View(view),
            stable_seq: Seq(0),
            last_executed: Seq(0),
            records: 4,
        }
    }

    fn taken(seq: u64, digest: &str) -> ReplicaEvent {
        ReplicaEvent::CheckpointTaken {
            seq: Seq(seq),
            state_digest: digest.into(),
        }
    }

    /// Feeds `events` as replica 1's stream; the 1-based lines that were violations.
    fn violations(events: &[ReplicaEvent]) -> (Vec<usize>, CheckResult) {
        let mut oracle = NoAmnesiaOracle::default();
        let lines = events
            .iter()
            .enumerate()
            .filter(|(_, e)| oracle.observe(ReplicaId(1), e))
            .map(|(i, _)| i + 1)
            .collect();
        (lines, oracle.finish())
    }

    #[test]
    fn the_same_votes_again_after_a_restart_pass() {
        let (lines, verdict) = violations(&[
            prepare(0, 1, "aa"),
            commit(0, 1, "aa"),
            taken(16, "s1"),
            recovered(0),
            prepare(0, 1, "aa"),
            commit(0, 1, "aa"),
            taken(16, "s1"),
            prepare(0, 2, "bb"),
        ]);
        assert_eq!(lines, Vec::<usize>::new());
        assert_eq!(verdict.outcome, CheckOutcome::Pass, "{}", verdict.summary);
        assert!(
            verdict.summary.contains("1 restart, 5 votes"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn another_digest_for_a_slot_voted_before_the_restart_is_caught_with_both_lines() {
        let (lines, verdict) = violations(&[
            prepare(0, 1, "aaaa"),
            commit(0, 1, "aaaa"),
            recovered(0),
            prepare(0, 1, "bbbb"),
            // The same forgotten slot again counts once.
            commit(0, 1, "bbbb"),
        ]);
        assert_eq!(lines, vec![4]);
        assert_eq!(verdict.outcome, CheckOutcome::Violation);
        let conflict = &verdict.details["conflicts"][0];
        assert_eq!(conflict["replica"], 1);
        assert_eq!(conflict["rule"], "vote-digest");
        assert_eq!(
            (&conflict["view"], &conflict["seq"]),
            (&json!(0), &json!(1))
        );
        assert_eq!(conflict["before"]["digest"], "aaaa");
        assert_eq!(conflict["before"]["line"], 1);
        assert_eq!(conflict["before"]["incarnation"], 0);
        assert_eq!(conflict["after"]["digest"], "bbbb");
        assert_eq!(conflict["after"]["line"], 4);
        assert_eq!(conflict["after"]["incarnation"], 1);
        assert_eq!(verdict.details["conflict_count"], 1);
        assert!(
            verdict
                .summary
                .contains("replica 1 sent prepare view 0 seq 1 digest bbbb (line 4)"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn a_primary_that_proposes_another_batch_after_a_restart_is_caught() {
        let (lines, _) = violations(&[
            sent(MessageKind::PrePrepare, 0, 3, "aa"),
            recovered(0),
            sent(MessageKind::PrePrepare, 0, 3, "cc"),
        ]);
        assert_eq!(lines, vec![3]);
    }

    #[test]
    fn speaking_from_a_lower_view_than_one_moved_to_before_the_restart_is_caught() {
        let view_change = ReplicaEvent::ViewChangeStarted {
            from: View(0),
            view: View(1),
        };
        // Asked for view 1, restarted, and prepared in view 0 again.
        let (lines, verdict) = violations(&[
            prepare(0, 1, "aa"),
            view_change.clone(),
            recovered(0),
            prepare(0, 2, "bb"),
        ]);
        assert_eq!(lines, vec![4]);
        let conflict = &verdict.details["conflicts"][0];
        assert_eq!(conflict["rule"], "lower-view");
        assert_eq!(conflict["before"]["what"], "view-change");
        assert_eq!(conflict["before"]["view"], 1);
        assert_eq!(conflict["after"]["view"], 0);
        // Entered view 2, restarted, and asked for view 1.
        let entered = ReplicaEvent::ViewChangeCompleted {
            view: View(2),
            primary: ReplicaId(2),
        };
        let (lines, _) = violations(&[entered, recovered(0), view_change.clone()]);
        assert_eq!(lines, vec![3]);
        // Moving on to a higher view after the restart is what a replica does.
        let (lines, _) = violations(&[
            view_change,
            recovered(1),
            ReplicaEvent::ViewChangeStarted {
                from: View(1),
                view: View(2),
            },
            prepare(2, 5, "dd"),
        ]);
        assert_eq!(lines, Vec::<usize>::new());
    }

    #[test]
    fn another_checkpoint_digest_after_a_restart_is_caught() {
        let (lines, verdict) = violations(&[
            taken(16, "s1"),
            recovered(0),
            taken(16, "s2"),
            taken(32, "s3"),
        ]);
        assert_eq!(lines, vec![3]);
        assert_eq!(verdict.details["conflicts"][0]["rule"], "checkpoint-digest");
    }

    #[test]
    fn events_from_one_incarnation_alone_never_violate() {
        // Contradictions within one life are for agreement to judge, not amnesia.
        let view_change = ReplicaEvent::ViewChangeStarted {
            from: View(0),
            view: View(3),
        };
        let (lines, verdict) = violations(&[
            prepare(0, 1, "aa"),
            prepare(0, 1, "bb"),
            view_change,
            prepare(1, 2, "cc"),
            taken(16, "s1"),
            taken(16, "s2"),
        ]);
        assert_eq!(lines, Vec::<usize>::new());
        assert_eq!(verdict.outcome, CheckOutcome::Pass);
    }

    #[test]
    fn each_replica_is_judged_against_its_own_past_only() {
        let mut oracle = NoAmnesiaOracle::default();
        assert!(!oracle.observe(ReplicaId(0), &prepare(0, 1, "aa")));
        assert!(!oracle.observe(ReplicaId(1), &recovered(0)));
        assert!(!oracle.observe(ReplicaId(1), &prepare(0, 1, "bb")));
        assert_eq!(oracle.finish().outcome, CheckOutcome::Pass);
    }

    #[test]
    fn the_offline_check_reads_honest_replicas_only() {
        let line = |replica: u32, event: ReplicaEvent| EventLine {
            time_ns: 0,
            replica: ReplicaId(replica),
            event,
        };
        let forgetful = vec![
            line(3, prepare(0, 1, "aa")),
            line(3, recovered(0)),
            line(3, prepare(0, 1, "bb")),
        ];
        let events = BTreeMap::from([(ReplicaId(3), forgetful)]);
        let judged = no_amnesia(&events, &[ReplicaId(3)]);
        assert_eq!(judged.outcome, CheckOutcome::Violation);
        let byzantine = no_amnesia(&events, &[ReplicaId(0)]);
        assert_eq!(byzantine.outcome, CheckOutcome::Pass);
    }
}
