//! Protocol oracles over the honest replicas' event logs: agreement, validity, integrity.

use super::claims::DigestClaims;
use super::{CheckOutcome, CheckResult};
use replica::events::{EventLine, ReplicaEvent};
use replica::message::RequestId;
use replica::{ClientId, ReplicaId, Seq, View};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use workloads::history::{EventType, HistoryEvent};

/// How many offending items the details list before they only count them.
const MAX_LISTED: usize = 20;

fn honest_logs<'a>(
    events: &'a BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &'a [ReplicaId],
) -> impl Iterator<Item = (ReplicaId, &'a [EventLine])> + 'a {
    honest
        .iter()
        .filter_map(|id| events.get(id).map(|lines| (*id, lines.as_slice())))
}

fn result(
    name: &str,
    outcome: CheckOutcome,
    summary: String,
    details: serde_json::Value,
) -> CheckResult {
    CheckResult {
        name: name.into(),
        outcome,
        summary,
        details,
    }
}

/// Agreement, one event at a time: no two honest replicas (nor one replica twice) commit
/// different batches at one sequence number. The same digest committed again, as after a
/// restart, is fine. The offline check feeds it a run's files; the simulator feeds it every
/// event as it happens and stops at the first conflict.
#[derive(Default)]
pub struct AgreementOracle {
    /// Committed digests, each with the (replica, view) pairs that committed it.
    commits: DigestClaims<(ReplicaId, View)>,
}

impl AgreementOracle {
    /// Takes one event of honest `replica`; true when it makes a new conflict.
    pub fn observe(&mut self, replica: ReplicaId, event: &ReplicaEvent) -> bool {
        let ReplicaEvent::Commit {
            view, seq, digest, ..
        } = event
        else {
            return false;
        };
        self.commits.claim(*seq, digest, (replica, *view))
    }

    pub fn finish(&self, honest: &[ReplicaId]) -> CheckResult {
        let seqs = self.commits.sequence_numbers();
        let counts = json!({ "honest_replicas": honest, "sequence_numbers": seqs });
        let Some((first_seq, digests)) = self.commits.first_conflict() else {
            return result(
                "agreement",
                CheckOutcome::Pass,
                format!("honest replicas agree on all {seqs} committed sequence numbers"),
                json!({ "counts": counts }),
            );
        };
        let listed = self.commits.listed(
            MAX_LISTED,
            "commits",
            |digest, (replica, view)| json!({ "replica": replica, "view": view, "digest": digest }),
        );
        let conflicts = self.commits.conflict_count();
        result(
            "agreement",
            CheckOutcome::Violation,
            format!(
                "honest replicas committed different batches at {conflicts} sequence numbers (first: seq {first_seq}, {digests} digests)"
            ),
            json!({ "counts": counts, "conflicts": listed, "conflict_count": conflicts }),
        )
    }
}

/// Agreement over a run's event files (see `AgreementOracle`).
pub fn agreement(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
) -> CheckResult {
    let mut oracle = AgreementOracle::default();
    for (replica, lines) in honest_logs(events, honest) {
        for line in lines {
            oracle.observe(replica, &line.event);
        }
    }
    oracle.finish(honest)
}

/// State agreement, one event at a time: honest replicas that reach a checkpoint agree on
/// the state there. A replica whose own state diverged silently (its CHECKPOINT digest differs
/// from the others', or from the stable certificate) is caught at its next checkpoint, also
/// after it installed a state by transfer, whatever its clients were told.
#[derive(Default)]
pub struct StateAgreementOracle {
    /// State digests, each with the replicas that reached it and how they knew (`taken`: its
    /// own state; `stable`: a quorum's certificate).
    states: DigestClaims<(ReplicaId, &'static str)>,
}

impl StateAgreementOracle {
    /// Takes one event of honest `replica`; true when it makes a new conflict.
    pub fn observe(&mut self, replica: ReplicaId, event: &ReplicaEvent) -> bool {
        let (seq, digest, how) = match event {
            ReplicaEvent::CheckpointTaken { seq, state_digest } => (seq, state_digest, "taken"),
            ReplicaEvent::CheckpointStable { seq, state_digest } => (seq, state_digest, "stable"),
            _ => return false,
        };
        self.states.claim(*seq, digest, (replica, how))
    }

    pub fn finish(&self) -> CheckResult {
        let checkpoints = self.states.sequence_numbers();
        let counts = json!({ "checkpoints": checkpoints });
        let Some((first_seq, digests)) = self.states.first_conflict() else {
            return result(
                "state-agreement",
                CheckOutcome::Pass,
                format!("honest replicas agree on the state at all {checkpoints} checkpoints"),
                json!({ "counts": counts }),
            );
        };
        let listed = self.states.listed(
            MAX_LISTED,
            "states",
            |digest, (replica, how)| json!({ "replica": replica, "digest": digest, "how": how }),
        );
        let conflicts = self.states.conflict_count();
        result(
            "state-agreement",
            CheckOutcome::Violation,
            format!(
                "honest replicas hold different states at {conflicts} checkpoints (first: seq {first_seq}, {digests} digests)"
            ),
            json!({ "counts": counts, "conflicts": listed, "conflict_count": conflicts }),
        )
    }
}

/// State agreement over a run's event files (see `StateAgreementOracle`).
pub fn state_agreement(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
) -> CheckResult {
    let mut oracle = StateAgreementOracle::default();
    for (replica, lines) in honest_logs(events, honest) {
        for line in lines {
            oracle.observe(replica, &line.event);
        }
    }
    oracle.finish()
}

/// Every request an honest replica executed was invoked by its client in the history.
pub fn validity(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
    history: &[HistoryEvent],
) -> CheckResult {
    validity_with(events, honest, history, &[])
}

/// `validity`, where the requests of `byzantine_clients` are not judged: such a client records
/// no history, and whatever it signed with its own key it issued.
pub fn validity_with(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
    history: &[HistoryEvent],
    byzantine_clients: &[ClientId],
) -> CheckResult {
    let mut byzantine_executions = 0usize;
    let issued: HashSet<RequestId> = history
        .iter()
        .filter(|e| e.kind == EventType::Invoke)
        .map(|e| RequestId {
            client: e.process,
            timestamp: e.request,
        })
        .collect();
    let mut executed = 0usize;
    let mut unknown: BTreeMap<RequestId, Vec<(ReplicaId, Seq)>> = BTreeMap::new();
    for (replica, lines) in honest_logs(events, honest) {
        for line in lines {
            if let ReplicaEvent::Execute { seq, request, .. } = &line.event {
                if byzantine_clients.contains(&request.client) {
                    byzantine_executions += 1;
                    continue;
                }
                executed += 1;
                if !issued.contains(request) {
                    unknown.entry(*request).or_default().push((replica, *seq));
                }
            }
        }
    }
    let mut counts = json!({ "executions": executed, "requests_issued": issued.len() });
    if !byzantine_clients.is_empty() {
        counts["byzantine_client_executions"] = json!(byzantine_executions);
    }
    if unknown.is_empty() {
        let byzantine = if byzantine_clients.is_empty() {
            String::new()
        } else {
            format!(" ({byzantine_executions} of Byzantine clients' requests not judged)")
        };
        return result(
            "validity",
            CheckOutcome::Pass,
            format!(
                "all {executed} executions by honest replicas are of requests clients issued{byzantine}"
            ),
            json!({ "counts": counts }),
        );
    }
    let listed: Vec<serde_json::Value> = unknown
        .iter()
        .take(MAX_LISTED)
        .map(|(request, at)| {
            let at: Vec<serde_json::Value> = at
                .iter()
                .map(|(replica, seq)| json!({ "replica": replica, "seq": seq }))
                .collect();
            json!({ "client": request.client, "timestamp": request.timestamp, "executed": at })
        })
        .collect();
    result(
        "validity",
        CheckOutcome::Violation,
        format!(
            "honest replicas executed {} requests no client issued",
            unknown.len()
        ),
        json!({ "counts": counts, "unknown_requests": listed }),
    )
}

/// Each request is executed (not answered from the reply cache) at most once per honest
/// replica, and at one sequence number everywhere. A restart (`recovered`) or an installed
/// state transfer may replay executions: the same request at the same seq again is fine there.
pub fn integrity(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
) -> CheckResult {
    let mut problems: Vec<serde_json::Value> = Vec::new();
    let mut problem_count = 0usize;
    let mut report = |problem: serde_json::Value| {
        problem_count += 1;
        if problems.len() < MAX_LISTED {
            problems.push(problem);
        }
    };
    // request -> seq -> replicas that executed it there (first execution only)
    let mut executed_at: BTreeMap<RequestId, BTreeMap<Seq, BTreeSet<ReplicaId>>> = BTreeMap::new();
    let mut executions = 0usize;
    for (replica, lines) in honest_logs(events, honest) {
        let mut this_incarnation: BTreeMap<RequestId, Seq> = BTreeMap::new();
        for line in lines {
            match &line.event {
                ReplicaEvent::Recovered { .. } | ReplicaEvent::StateTransfer { .. } => {
                    this_incarnation.clear();
                }
                ReplicaEvent::Execute {
                    seq,
                    request,
                    duplicate: false,
                    ..
                } => {
                    executions += 1;
                    if let Some(first) = this_incarnation.insert(*request, *seq) {
                        report(json!({
                            "problem": "executed twice",
                            "replica": replica,
                            "client": request.client,
                            "timestamp": request.timestamp,
                            "seqs": [first, seq],
                        }));
                    }
                    executed_at
                        .entry(*request)
                        .or_default()
                        .entry(*seq)
                        .or_default()
                        .insert(replica);
                }
                _ => {}
            }
        }
    }
    for (request, seqs) in &executed_at {
        if seqs.len() > 1 {
            let at: Vec<serde_json::Value> = seqs
                .iter()
                .map(|(seq, replicas)| json!({ "seq": seq, "replicas": replicas }))
                .collect();
            report(json!({
                "problem": "executed at different sequence numbers",
                "client": request.client,
                "timestamp": request.timestamp,
                "executed": at,
            }));
        }
    }
    let counts = json!({ "executions": executions, "requests": executed_at.len() });
    if problem_count == 0 {
        return result(
            "integrity",
            CheckOutcome::Pass,
            format!(
                "each of {} requests was executed once per honest replica, at one sequence number",
                executed_at.len()
            ),
            json!({ "counts": counts }),
        );
    }
    result(
        "integrity",
        CheckOutcome::Violation,
        format!(
            "{problem_count} requests were executed more than once or at different sequence numbers"
        ),
        json!({ "counts": counts, "problems": problems }),
    )
}

#[cfg(test)]
mod state_agreement_tests {
    use super::*;

    fn taken(seq: u64, digest: &str) -> ReplicaEvent {
        ReplicaEvent::CheckpointTaken {
            seq: Seq(seq),
            state_digest: digest.into(),
        }
    }

    #[test]
    fn a_replica_whose_own_state_differs_from_the_certified_one_is_a_conflict() {
        let mut oracle = StateAgreementOracle::default();
        assert!(!oracle.observe(ReplicaId(0), &taken(16, "aa")));
        assert!(!oracle.observe(ReplicaId(1), &taken(16, "aa")));
        let stable = ReplicaEvent::CheckpointStable {
            seq: Seq(16),
            state_digest: "aa".into(),
        };
        assert!(!oracle.observe(ReplicaId(2), &stable));
        assert_eq!(oracle.finish().outcome, CheckOutcome::Pass);
        // Replica 2 certified "aa" from its peers but computed something else itself.
        assert!(oracle.observe(ReplicaId(2), &taken(16, "bb")));
        let verdict = oracle.finish();
        assert_eq!(verdict.outcome, CheckOutcome::Violation);
        assert!(
            verdict.summary.contains("first: seq 16, 2 digests"),
            "{}",
            verdict.summary
        );
        let claims = &verdict.details["conflicts"][0]["states"];
        assert!(claims.to_string().contains("\"how\":\"taken\""), "{claims}");
    }
}

#[cfg(test)]
mod agreement_oracle_tests {
    use super::*;

    fn commit(seq: u64, digest: &str) -> ReplicaEvent {
        ReplicaEvent::Commit {
            view: View(0),
            seq: Seq(seq),
            digest: digest.into(),
            requests: Vec::new(),
        }
    }

    #[test]
    fn the_first_conflicting_commit_is_reported_once_and_a_repeat_is_not_a_conflict() {
        let mut oracle = AgreementOracle::default();
        assert!(!oracle.observe(ReplicaId(0), &commit(1, "aa")));
        assert!(!oracle.observe(ReplicaId(1), &commit(1, "aa")));
        assert!(!oracle.observe(ReplicaId(0), &commit(1, "aa")));
        assert!(oracle.observe(ReplicaId(2), &commit(1, "bb")));
        assert!(!oracle.observe(ReplicaId(3), &commit(1, "cc")));
        let verdict = oracle.finish(&[ReplicaId(0), ReplicaId(1), ReplicaId(2)]);
        assert_eq!(verdict.outcome, CheckOutcome::Violation);
        assert!(
            verdict.summary.contains("first: seq 1, 3 digests"),
            "{}",
            verdict.summary
        );
    }
}
