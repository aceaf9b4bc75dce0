//! Failures of the checks judged in fault-free windows: `window-liveness` (each stall, its
//! window and what was in force before it, and each starved client), `view-stability` (each
//! view change started while nothing was wrong) and `catch-up` (each restart that stayed behind); and `no-crash` (each
//! honest replica process that ended on its own).

use super::html::escape;
use crate::check::{CatchUpDetails, Stall, Starved, ViewStabilityDetails, seconds};
use crate::processes::ReplicaExit;
use std::fmt::Write as _;

/// The faults in force just before a window began, for a table cell.
fn in_force_before(faults_before: &[String]) -> String {
    if faults_before.is_empty() {
        "nothing (run start)".to_string()
    } else {
        faults_before.join(", ")
    }
}

/// One row per stall of a violated `window-liveness` check; `None` when there is none.
pub fn stall_table(details: &serde_json::Value) -> Option<String> {
    let stalls: Vec<Stall> = serde_json::from_value(details.get("stalls")?.clone()).ok()?;
    let starved = starved_table(details);
    if stalls.is_empty() {
        return starved;
    }
    let bound = details
        .get("bound_ms")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let grace = details
        .get("grace_ms")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let mut html = format!(
        "<p>No honest operation completed for at least {bound} ms while one was waiting, with no network fault and at most f replicas faulty, {grace} ms (<code>max_view_change_ms</code>) or more after the last change of faults. Times are since the run started.</p>"
    );
    html.push_str(
        "<div class=\"scroll\"><table class=\"checks\"><thead><tr><th>stall</th><th>window</th><th>in force just before</th><th>faulty during</th><th>invoked in it</th><th>waiting at its start</th><th>completed</th></tr></thead><tbody>",
    );
    for stall in &stalls {
        let before = in_force_before(&stall.faults_before);
        let faulty = if stall.faulty.is_empty() {
            "none".to_string()
        } else {
            let names: Vec<String> = stall.faulty.iter().map(|r| format!("r{}", r.0)).collect();
            names.join(", ")
        };
        let _ = write!(
            html,
            "<tr><td>{} – {}</td><td>{} – {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>0</td></tr>",
            seconds(stall.from_ns),
            seconds(stall.to_ns),
            seconds(stall.window_from_ns),
            seconds(stall.window_to_ns),
            escape(&before),
            escape(&faulty),
            stall.invoked,
            stall.waiting_at_start
        );
    }
    html.push_str("</tbody></table></div>");
    html.push_str(&starved.unwrap_or_default());
    Some(html)
}

/// One row per honest client left waiting while others were served; `None` when there is none.
fn starved_table(details: &serde_json::Value) -> Option<String> {
    let starved: Vec<Starved> = serde_json::from_value(details.get("starved")?.clone()).ok()?;
    if starved.is_empty() {
        return None;
    }
    let mut html = String::from(
        "<p>An honest client waited at least the bound for an answer while other clients were served, with no network fault and at most f replicas faulty. PBFT promises every correct client's request executes: look for a primary that orders some clients and not others, and a view-change timer that never fires for the starved request.</p>",
    );
    html.push_str(
        "<div class=\"scroll\"><table class=\"checks\"><thead><tr><th>client</th><th>waiting</th><th>window</th><th>in force just before</th><th>others completed meanwhile</th></tr></thead><tbody>",
    );
    for entry in &starved {
        let stall = &entry.stall;
        let before = in_force_before(&stall.faults_before);
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{} – {}</td><td>{} – {}</td><td>{}</td><td>{}</td></tr>",
            entry.client.0,
            seconds(stall.from_ns),
            seconds(stall.to_ns),
            seconds(stall.window_from_ns),
            seconds(stall.window_to_ns),
            escape(&before),
            entry.others_completed
        );
    }
    html.push_str("</tbody></table></div>");
    Some(html)
}

/// One row per view change of a violated `view-stability` check; `None` when there is none.
pub fn uncalled_view_changes(details: &serde_json::Value) -> Option<String> {
    let details: ViewStabilityDetails = serde_json::from_value(details.clone()).ok()?;
    if details.view_changes.is_empty() {
        return None;
    }
    let mut html = format!(
        "<p>An honest replica asked for a new view while every replica was up and honest and no network fault was in force, {} ms (<code>max_view_change_ms</code>) or more after the last change of faults. Nothing should have waited long enough to suspect the primary: look for a view-change timer left running or started without a pending request. A view change <em>still unfinished</em> when the judged window began was started earlier and never completed: that replica sits alone in a higher view and no longer votes. Times are since the run started.</p>",
        details.grace_ms
    );
    html.push_str(
        "<div class=\"scroll\"><table class=\"checks\"><thead><tr><th>started at</th><th>replica</th><th>from view</th><th>to view</th><th>judged window</th><th>in force just before</th></tr></thead><tbody>",
    );
    for change in &details.view_changes {
        let before = in_force_before(&change.faults_before);
        let _ = write!(
            html,
            "<tr><td>{}{}</td><td>r{}</td><td>{}</td><td>{}</td><td>{} – {}</td><td>{}</td></tr>",
            seconds(change.at_ns),
            if change.unfinished {
                " (still unfinished)"
            } else {
                ""
            },
            change.replica.0,
            change.from.0,
            change.to.0,
            seconds(change.window_from_ns),
            seconds(change.window_to_ns),
            escape(&before)
        );
    }
    html.push_str("</tbody></table></div>");
    Some(html)
}

/// One row per moment of a violated `catch-up` check after which a replica stayed behind;
/// `None` when none did.
pub fn stuck_replicas(details: &serde_json::Value) -> Option<String> {
    let details: CatchUpDetails = serde_json::from_value(details.clone()).ok()?;
    let stuck: Vec<_> = details.stuck().collect();
    if stuck.is_empty() {
        return None;
    }
    let mut html = format!(
        "<p>An honest replica was behind a checkpoint another honest replica had made stable, at a moment from which the network worked and at most f replicas were faulty: when it restarted, or when the faults that had cut it off ended. It had not reached that checkpoint {} ms later (the peers' 1 s redial wait plus four <code>state_transfer_retry_ms</code>). Its peers answer its FETCH-STATE with their stable checkpoint: look at whether it asked, whether they answered (its <code>rejected</code> events) and whether it installed what came. Times are since the run started.</p>",
        details.bound_ms
    );
    html.push_str(
        "<div class=\"scroll\"><table class=\"checks\"><thead><tr><th>replica</th><th>moment</th><th>at</th><th>executed then</th><th>stable elsewhere</th><th>reached by the deadline</th><th>deadline</th></tr></thead><tbody>",
    );
    for restart in stuck {
        let _ = write!(
            html,
            "<tr><td>r{}</td><td>{}</td><td>{}</td><td>seq {}</td><td>seq {} (r{})</td><td>seq {}</td><td>{}</td></tr>",
            restart.replica.0,
            escape(&restart.how()),
            seconds(restart.at_ns),
            restart.executed_then.0,
            restart.target.0,
            restart.target_holder.0,
            restart.reached.0,
            seconds(restart.deadline_ns)
        );
    }
    html.push_str("</tbody></table></div>");
    Some(html)
}

/// One row per honest replica process of a violated `no-crash` check; `None` when none ended.
pub fn crashed_processes(details: &serde_json::Value) -> Option<String> {
    let exits: Vec<ReplicaExit> = serde_json::from_value(details.clone()).ok()?;
    if exits.is_empty() {
        return None;
    }
    let mut html = String::from(
        "<p>These honest replica processes ended while they should have been running: the nemesis had not killed them and the harness had not stopped them. Their stderr (in the run folder) says why; the last lines are below.</p>",
    );
    html.push_str(
        "<div class=\"scroll\"><table class=\"checks\"><thead><tr><th>process</th><th>ended with</th><th>stderr, last lines</th></tr></thead><tbody>",
    );
    for exit in &exits {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            escape(&exit.process),
            escape(&exit.status),
            escape(&exit.stderr_tail.join("\n"))
        );
    }
    html.push_str("</tbody></table></div>");
    Some(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_listed_with_what_came_before_it() {
        let details = serde_json::json!({
            "bound_ms": 3000, "grace_ms": 2000,
            "stalls": [{
                "from_ns": 4_000_000_000u64, "to_ns": 11_000_000_000u64,
                "window_from_ns": 2_000_000_000u64, "window_to_ns": 11_000_000_000u64,
                "faults_before": ["p1 (pause r1)"], "faulty": [1],
                "invoked": 3, "waiting_at_start": 2
            }]
        });
        let html = stall_table(&details).expect("a table");
        assert!(html.contains("4.000 s – 11.000 s"), "{html}");
        assert!(
            html.contains("p1 (pause r1)") && html.contains("r1"),
            "{html}"
        );
        assert_eq!(stall_table(&serde_json::json!({"stalls": []})), None);
    }

    #[test]
    fn an_uncalled_view_change_is_listed_with_its_window() {
        let details = serde_json::json!({
            "grace_ms": 8000,
            "windows": [{"from_ns": 0, "to_ns": 20_000_000_000u64, "faults_before": []}],
            "view_changes": [{
                "replica": 2, "at_ns": 1_500_000_000u64, "from": 0, "to": 1,
                "window_from_ns": 0, "window_to_ns": 20_000_000_000u64, "faults_before": []
            }]
        });
        let html = uncalled_view_changes(&details).expect("a table");
        assert!(
            html.contains("<td>1.500 s</td><td>r2</td><td>0</td><td>1</td>"),
            "{html}"
        );
        assert!(html.contains("nothing (run start)"), "{html}");
    }

    #[test]
    fn a_stuck_restart_is_listed_with_its_target() {
        let details = serde_json::json!({
            "bound_ms": 5000,
            "restarts": [{
                "replica": 1, "at_ns": 12_000_000_000u64, "recovered_seq": 40, "target": 128,
                "target_holder": 0, "caught_up_ns": null, "deadline_ns": 17_000_000_000u64,
                "reached": 40
            }]
        });
        let html = stuck_replicas(&details).expect("a table");
        assert!(
            html.contains(
                "<td>r1</td><td>came back</td><td>12.000 s</td><td>seq 40</td><td>seq 128 (r0)</td>"
            ),
            "{html}"
        );
    }

    #[test]
    fn a_replica_stuck_after_a_fault_is_listed_with_the_fault() {
        let details = serde_json::json!({
            "bound_ms": 5000,
            "judged": [{
                "replica": 2, "cause": "faults-ended", "after_faults": ["p1 (partition r2)"],
                "at_ns": 8_000_000_000u64, "executed_then": 40, "target": 128,
                "target_holder": 0, "caught_up_ns": null, "deadline_ns": 13_000_000_000u64,
                "reached": 40
            }]
        });
        let html = stuck_replicas(&details).expect("a table");
        assert!(
            html.contains(
                "<td>r2</td><td>was behind when p1 (partition r2) ended</td><td>8.000 s</td>"
            ),
            "{html}"
        );
    }

    #[test]
    fn a_crashed_process_is_listed_with_its_stderr() {
        let details = serde_json::json!([{
            "replica": 3, "process": "replica 3", "status": "exit status: 1",
            "stderr_tail": ["error: snapshot is <damaged>"]
        }]);
        let html = crashed_processes(&details).expect("a table");
        assert!(
            html.contains("<td>replica 3</td><td>exit status: 1</td>"),
            "{html}"
        );
        assert!(html.contains("snapshot is &lt;damaged&gt;"), "{html}");
    }
}
