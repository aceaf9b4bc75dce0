//! A `window-liveness` failure: each stall, its window and what was in force before it.

use super::html::escape;
use crate::check::Stall;
use std::fmt::Write as _;

fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// One row per stall of a violated `window-liveness` check; `None` when there is none.
pub fn stall_table(details: &serde_json::Value) -> Option<String> {
    let stalls: Vec<Stall> = serde_json::from_value(details.get("stalls")?.clone()).ok()?;
    if stalls.is_empty() {
        return None;
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
        let before = if stall.faults_before.is_empty() {
            "nothing (run start)".to_string()
        } else {
            stall.faults_before.join(", ")
        };
        let faulty = if stall.faulty.is_empty() {
            "none".to_string()
        } else {
            let names: Vec<String> = stall.faulty.iter().map(|r| format!("r{}", r.0)).collect();
            names.join(", ")
        };
        let _ = write!(
            html,
            "<tr><td>{} – {}</td><td>{} – {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>0</td></tr>",
            secs(stall.from_ns),
            secs(stall.to_ns),
            secs(stall.window_from_ns),
            secs(stall.window_to_ns),
            escape(&before),
            escape(&faulty),
            stall.invoked,
            stall.waiting_at_start
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
}
