//! Protocol oracles over the honest replicas' event logs: agreement, validity, integrity.

use super::{CheckOutcome, CheckResult};
use replica::events::{EventLine, ReplicaEvent};
use replica::message::RequestId;
use replica::{ReplicaId, Seq, View};
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

/// Per committed digest at one sequence number: the (replica, view) pairs that committed it.
type CommitsAtSeq<'a> = BTreeMap<&'a str, BTreeSet<(ReplicaId, View)>>;

/// No two honest replicas (nor one replica twice) commit different batches at one sequence
/// number. The same digest committed again, as after a restart, is fine.
pub fn agreement(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
) -> CheckResult {
    let mut commits: BTreeMap<Seq, CommitsAtSeq> = BTreeMap::new();
    for (replica, lines) in honest_logs(events, honest) {
        for line in lines {
            if let ReplicaEvent::Commit {
                view, seq, digest, ..
            } = &line.event
            {
                commits
                    .entry(*seq)
                    .or_default()
                    .entry(digest.as_str())
                    .or_default()
                    .insert((replica, *view));
            }
        }
    }
    let conflicts: Vec<(&Seq, &CommitsAtSeq)> = commits
        .iter()
        .filter(|(_, digests)| digests.len() > 1)
        .collect();
    let counts = json!({ "honest_replicas": honest, "sequence_numbers": commits.len() });
    if conflicts.is_empty() {
        return result(
            "agreement",
            CheckOutcome::Pass,
            format!(
                "honest replicas agree on all {} committed sequence numbers",
                commits.len()
            ),
            json!({ "counts": counts }),
        );
    }
    let listed: Vec<serde_json::Value> = conflicts
        .iter()
        .take(MAX_LISTED)
        .map(|(seq, digests)| {
            let side_by_side: Vec<serde_json::Value> = digests
                .iter()
                .flat_map(|(digest, by)| {
                    by.iter().map(move |(replica, view)| {
                        json!({ "replica": replica, "view": view, "digest": digest })
                    })
                })
                .collect();
            json!({ "seq": seq, "commits": side_by_side })
        })
        .collect();
    let (first_seq, first_digests) = conflicts[0];
    result(
        "agreement",
        CheckOutcome::Violation,
        format!(
            "honest replicas committed different batches at {} sequence numbers (first: seq {first_seq}, {} digests)",
            conflicts.len(),
            first_digests.len()
        ),
        json!({ "counts": counts, "conflicts": listed, "conflict_count": conflicts.len() }),
    )
}

/// Every request an honest replica executed was invoked by its client in the history.
pub fn validity(
    events: &BTreeMap<ReplicaId, Vec<EventLine>>,
    honest: &[ReplicaId],
    history: &[HistoryEvent],
) -> CheckResult {
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
                executed += 1;
                if !issued.contains(request) {
                    unknown.entry(*request).or_default().push((replica, *seq));
                }
            }
        }
    }
    let counts = json!({ "executions": executed, "requests_issued": issued.len() });
    if unknown.is_empty() {
        return result(
            "validity",
            CheckOutcome::Pass,
            format!("all {executed} executions by honest replicas are of requests clients issued"),
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
