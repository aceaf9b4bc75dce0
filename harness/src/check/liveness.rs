//! Liveness: once faults are healed, every client gets an operation through within a bound.

use super::{CheckOutcome, CheckResult};
use replica::ClientId;
use serde_json::json;
use std::time::Duration;
use workloads::history::{EventType, HistoryEvent};

/// Every client in `clients` completes at least one operation `ok` in
/// `[heal_time_ns, heal_time_ns + bound]` (times as in the history: ns since the run started).
pub fn liveness(
    history: &[HistoryEvent],
    heal_time_ns: u64,
    bound: Duration,
    clients: &[ClientId],
) -> CheckResult {
    let deadline = heal_time_ns.saturating_add(u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX));
    let first_ok_after_heal = |client: ClientId| {
        history
            .iter()
            .filter(|e| e.process == client && e.kind == EventType::Ok)
            .filter(|e| e.time_ns >= heal_time_ns)
            .map(|e| e.time_ns)
            .min()
    };
    let mut per_client = Vec::new();
    let mut stuck = Vec::new();
    for &client in clients {
        let first = first_ok_after_heal(client);
        let in_time = first.is_some_and(|t| t <= deadline);
        if !in_time {
            stuck.push(client);
        }
        per_client.push(json!({
            "client": client,
            "first_ok_after_heal_ns": first,
            "latency_after_heal_ms": first.map(|t| (t - heal_time_ns) / 1_000_000),
            "in_time": in_time,
        }));
    }
    let history_end_ns = history.iter().map(|e| e.time_ns).max();
    let details = json!({
        "heal_time_ns": heal_time_ns,
        "bound_ms": bound.as_millis() as u64,
        "history_end_ns": history_end_ns,
        "clients": per_client,
    });
    let bound_text = format!("{:.1} s", bound.as_secs_f64());
    if stuck.is_empty() {
        return CheckResult {
            name: "liveness".into(),
            outcome: CheckOutcome::Pass,
            summary: format!(
                "all {} clients completed an operation within {bound_text} of healing",
                clients.len()
            ),
            details,
        };
    }
    let names: Vec<String> = stuck.iter().map(ToString::to_string).collect();
    CheckResult {
        name: "liveness".into(),
        outcome: CheckOutcome::Violation,
        summary: format!(
            "{} of {} clients completed no operation within {bound_text} of healing (clients {})",
            stuck.len(),
            clients.len(),
            names.join(", ")
        ),
        details,
    }
}
