//! Tables: the checks, per-replica statistics, and an agreement failure's digests side by side.

use super::html::escape;
use super::inputs::ReplicaFiles;
use crate::check::{CheckOutcome, CheckResult};
use replica::events::ReplicaEvent;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Details shown raw are cut here: a verdict can list thousands of items.
const MAX_DETAILS_CHARS: usize = 20_000;

pub fn outcome_word(outcome: CheckOutcome) -> &'static str {
    match outcome {
        CheckOutcome::Pass => "pass",
        CheckOutcome::Violation => "violation",
        CheckOutcome::Inconclusive => "inconclusive",
        CheckOutcome::Skipped => "skipped",
    }
}

/// One row per check with its summary, and its details behind a disclosure.
pub fn checks_table(checks: &[CheckResult]) -> String {
    if checks.is_empty() {
        return "<p class=\"muted\">No check results were recorded.</p>".into();
    }
    let mut html = String::from(
        "<div class=\"scroll\"><table class=\"checks\"><thead><tr><th>check</th><th>outcome</th><th>summary</th></tr></thead><tbody>",
    );
    for check in checks {
        let word = outcome_word(check.outcome);
        let _ = write!(
            html,
            "<tr><td>{}</td><td><span class=\"pill {word}\">{word}</span></td><td>{}",
            escape(&check.name),
            escape(&check.summary)
        );
        if !check.details.is_null() {
            let mut pretty =
                serde_json::to_string_pretty(&check.details).unwrap_or_else(|e| e.to_string());
            if pretty.len() > MAX_DETAILS_CHARS {
                let cut = (0..=MAX_DETAILS_CHARS)
                    .rev()
                    .find(|&i| pretty.is_char_boundary(i))
                    .unwrap_or(0);
                pretty.truncate(cut);
                pretty.push_str("\n… (cut; the full details are in verdict.json)");
            }
            let _ = write!(
                html,
                "<details><summary>details</summary><pre>{}</pre></details>",
                escape(&pretty)
            );
        }
        html.push_str("</td></tr>");
    }
    html.push_str("</tbody></table></div>");
    html
}

/// What a replica's event log says happened, for when `stats.json` is missing and to cross-check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventCounts {
    pub commits: usize,
    pub executions: usize,
    pub suspicions: usize,
    pub view_changes_started: usize,
    pub view_changes_completed: usize,
    pub checkpoints: usize,
    pub state_transfers: usize,
    pub recoveries: usize,
    pub rejected: BTreeMap<String, u64>,
}

pub fn event_counts(files: &ReplicaFiles) -> EventCounts {
    let mut counts = EventCounts::default();
    for line in &files.events {
        match &line.event {
            ReplicaEvent::Commit { .. } => counts.commits += 1,
            ReplicaEvent::Execute { .. } => counts.executions += 1,
            ReplicaEvent::Suspected { .. } => counts.suspicions += 1,
            ReplicaEvent::ViewChangeStarted { .. } => counts.view_changes_started += 1,
            ReplicaEvent::ViewChangeCompleted { .. } => counts.view_changes_completed += 1,
            ReplicaEvent::CheckpointStable { .. } => counts.checkpoints += 1,
            // Counted once, when it becomes stable.
            ReplicaEvent::CheckpointTaken { .. } => {}
            ReplicaEvent::StateTransfer { .. } => counts.state_transfers += 1,
            ReplicaEvent::Recovered { .. } => counts.recoveries += 1,
            ReplicaEvent::Sent { .. } | ReplicaEvent::Resources { .. } => {}
            ReplicaEvent::Rejected { reason, .. } => {
                let name = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("{reason:?}"));
                *counts.rejected.entry(name).or_default() += 1;
            }
        }
    }
    counts
}

fn breakdown(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "0".into();
    }
    let total: u64 = map.values().sum();
    let mut items: Vec<(&String, &u64)> = map.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut html = format!("<b>{total}</b><ul class=\"breakdown\">");
    for (name, count) in items {
        let _ = write!(html, "<li>{} {count}</li>", escape(name));
    }
    html.push_str("</ul>");
    html
}

/// One column per replica: the node's counters where `stats.json` exists, the event log's
/// counts otherwise.
pub fn replica_table(replicas: &[ReplicaFiles]) -> String {
    if replicas.is_empty() {
        return "<p class=\"muted\">No replica files were found in the run folder.</p>".into();
    }
    let columns: Vec<(String, EventCounts, Option<&replica::node::StatsSnapshot>)> = replicas
        .iter()
        .map(|r| {
            (
                format!("replica {}", r.id),
                event_counts(r),
                r.stats.as_ref(),
            )
        })
        .collect();
    let mut html =
        String::from("<div class=\"scroll\"><table class=\"replicas\"><thead><tr><th></th>");
    for (name, _, _) in &columns {
        let _ = write!(html, "<th>{}</th>", escape(name));
    }
    html.push_str("</tr></thead><tbody>");
    let mut row =
        |title: &str,
         cell: &dyn Fn(&EventCounts, Option<&replica::node::StatsSnapshot>) -> String| {
            let _ = write!(html, "<tr><th>{title}</th>");
            for (_, counts, stats) in &columns {
                let _ = write!(html, "<td>{}</td>", cell(counts, *stats));
            }
            html.push_str("</tr>");
        };
    let missing = || "<span class=\"muted\">–</span>".to_string();
    row("final view", &|_, s| {
        s.map_or_else(missing, |s| {
            format!(
                "{}{}",
                s.view,
                if s.in_view_change { " (changing)" } else { "" }
            )
        })
    });
    row("last executed", &|_, s| {
        s.map_or_else(missing, |s| s.last_executed.to_string())
    });
    row("stable checkpoint", &|_, s| {
        s.map_or_else(missing, |s| s.stable_checkpoint.to_string())
    });
    row("messages in", &|_, s| {
        s.map_or_else(missing, |s| breakdown(&s.messages_in))
    });
    row("messages out", &|_, s| {
        s.map_or_else(missing, |s| breakdown(&s.messages_out))
    });
    row("rejected", &|c, s| match s {
        Some(s) => breakdown(&s.rejected),
        None => breakdown(&c.rejected),
    });
    // A request's MAC entry spoiled for this replica, its signature checked instead.
    row("MAC fallbacks", &|_, s| {
        s.map_or_else(missing, |s| s.mac_fallbacks.to_string())
    });
    // Timer expiries that suspected the primary; only f+1 of them start a view change.
    row("suspicions of the primary (events)", &|c, _| {
        c.suspicions.to_string()
    });
    row("view changes started / completed", &|c, s| match s {
        Some(s) => format!("{} / {}", s.view_changes_started, s.view_changes_completed),
        None => format!("{} / {}", c.view_changes_started, c.view_changes_completed),
    });
    row("stable checkpoints (events)", &|c, _| {
        c.checkpoints.to_string()
    });
    row("state transfers", &|c, s| {
        s.map_or(c.state_transfers as u64, |s| s.state_transfers)
            .to_string()
    });
    row("commits / executions (events)", &|c, _| {
        format!("{} / {}", c.commits, c.executions)
    });
    row("recoveries from the log", &|c, _| c.recoveries.to_string());
    row("bytes in / out", &|_, s| {
        s.map_or_else(missing, |s| format!("{} / {}", s.bytes_in, s.bytes_out))
    });
    row("outbound frames dropped", &|_, s| {
        s.map_or_else(missing, |s| s.outbound_dropped.to_string())
    });
    html.push_str("</tbody></table></div>");
    html
}

/// Hex digits of a digest shown at least; more only where two digests of one row would
/// otherwise look the same.
const DIGEST_PREFIX: usize = 12;

/// How many leading characters tell every digest of `digests` apart (the whole length at most),
/// and never fewer than [`DIGEST_PREFIX`].
fn distinguishing_prefix(digests: &[&str]) -> usize {
    let longest = digests.iter().map(|d| d.chars().count()).max().unwrap_or(0);
    let mut distinct: Vec<&str> = digests.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let prefix = |d: &str, len: usize| d.chars().take(len).collect::<String>();
    (DIGEST_PREFIX..longest)
        .find(|&len| {
            let mut shown: Vec<String> = distinct.iter().map(|d| prefix(d, len)).collect();
            shown.sort_unstable();
            shown.dedup();
            shown.len() == distinct.len()
        })
        .unwrap_or(longest)
}

/// A digest as a short prefix that fits a table cell, the whole digest in its tooltip.
fn digest_html(digest: &str, shown_chars: usize) -> String {
    if digest.chars().count() <= shown_chars {
        return format!("<code>{}</code>", escape(digest));
    }
    let prefix: String = digest.chars().take(shown_chars).collect();
    format!(
        "<code title=\"{}\">{}…</code>",
        escape(digest),
        escape(&prefix)
    )
}

/// How one oracle's conflicts are laid out: which list holds the claims, the row under the
/// replicas, and what the digest is of.
pub struct ConflictLayout {
    pub claims: &'static str,
    pub detail_key: &'static str,
    pub detail_label: &'static str,
    pub digest_label: &'static str,
}

/// Agreement: who committed which batch at a sequence number, in which view.
pub const COMMITS: ConflictLayout = ConflictLayout {
    claims: "commits",
    detail_key: "view",
    detail_label: "view",
    digest_label: "batch digest",
};

/// State agreement: who held which state at a checkpoint, computed or certified.
pub const STATES: ConflictLayout = ConflictLayout {
    claims: "states",
    detail_key: "how",
    detail_label: "own state or certified",
    digest_label: "state digest",
};

/// An agreement failure: for each conflicting sequence number, every replica's view and digest
/// in one row, with digests that differ from the first one marked. Digests show as prefixes
/// long enough to tell them apart (the whole digest in the tooltip), and the tables scroll
/// inside their own box when there are more replicas than fit the page.
pub fn agreement_conflicts(details: &serde_json::Value) -> Option<String> {
    conflicts_side_by_side(details, &COMMITS)
}

/// A failure's `conflicts` (none: `None`) and the opening of its section, which says when the
/// verdict kept only some of `conflict_count` (`what` names them).
fn conflict_list<'a>(
    details: &'a serde_json::Value,
    what: &str,
) -> Option<(&'a Vec<serde_json::Value>, String)> {
    let conflicts = details.get("conflicts")?.as_array()?;
    if conflicts.is_empty() {
        return None;
    }
    let mut html = String::from("<div class=\"scroll\">");
    if let Some(total) = details.get("conflict_count").and_then(|c| c.as_u64())
        && total as usize > conflicts.len()
    {
        let _ = write!(
            html,
            "<p class=\"note\">Showing {} of {total} {what}.</p>",
            conflicts.len()
        );
    }
    Some((conflicts, html))
}

/// An agreement or state-agreement failure laid out as `layout` says: each conflicting
/// sequence number as one table, a column per claim.
pub fn conflicts_side_by_side(
    details: &serde_json::Value,
    layout: &ConflictLayout,
) -> Option<String> {
    let (conflicts, mut html) = conflict_list(details, "conflicting sequence numbers")?;
    for conflict in conflicts {
        let seq = conflict
            .get("seq")
            .map_or_else(String::new, |s| s.to_string());
        let commits = conflict
            .get(layout.claims)
            .and_then(|c| c.as_array())
            .cloned()
            .unwrap_or_default();
        let digests: Vec<&str> = commits
            .iter()
            .map(|c| c.get("digest").and_then(|d| d.as_str()).unwrap_or(""))
            .collect();
        let first_digest = digests.first().copied().unwrap_or("");
        let shown_chars = distinguishing_prefix(&digests);
        let _ = write!(
            html,
            "<table class=\"conflict\"><caption>sequence number {}</caption><thead><tr><th></th>",
            escape(&seq)
        );
        for commit in &commits {
            let replica = commit
                .get("replica")
                .map_or_else(String::new, |r| r.to_string());
            let _ = write!(html, "<th>replica {}</th>", escape(&replica));
        }
        let _ = write!(
            html,
            "</tr></thead><tbody><tr><th>{}</th>",
            layout.detail_label
        );
        for commit in &commits {
            let detail = match commit.get(layout.detail_key) {
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(value) => value.to_string(),
                None => String::new(),
            };
            let _ = write!(html, "<td>{}</td>", escape(&detail));
        }
        let _ = write!(html, "</tr><tr><th>{}</th>", layout.digest_label);
        for digest in &digests {
            let class = if *digest == first_digest {
                "digest"
            } else {
                "digest differs"
            };
            let _ = write!(
                html,
                "<td class=\"{class}\">{}</td>",
                digest_html(digest, shown_chars)
            );
        }
        html.push_str("</tr></tbody></table>");
    }
    html.push_str("</div>");
    Some(html)
}

/// A no-amnesia failure: for each contradiction, what the replica sent before its restart
/// and what it sent after, side by side, with the lines of its events file that say so.
pub fn amnesia_conflicts(details: &serde_json::Value) -> Option<String> {
    let (conflicts, mut html) = conflict_list(details, "contradictions")?;
    let text = |value: Option<&serde_json::Value>| match value {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(value) => value.to_string(),
    };
    for conflict in conflicts {
        let sides = [&conflict["before"], &conflict["after"]];
        let place = match (conflict.get("view"), conflict.get("seq")) {
            (Some(view), Some(seq)) if !seq.is_null() => {
                format!("view {}, seq {}", text(Some(view)), text(Some(seq)))
            }
            (Some(view), _) => format!("view {}", text(Some(view))),
            _ => String::new(),
        };
        let _ = write!(
            html,
            "<table class=\"conflict\"><caption>replica {}: {} at {}</caption><thead><tr><th></th>",
            escape(&text(conflict.get("replica"))),
            escape(&text(conflict.get("rule"))),
            escape(&place)
        );
        for (side, label) in sides
            .iter()
            .zip(["before the restart", "after the restart"])
        {
            let _ = write!(
                html,
                "<th>{label} (incarnation {})</th>",
                escape(&text(side.get("incarnation")))
            );
        }
        html.push_str("</tr></thead><tbody>");
        let digests: Vec<&str> = sides
            .iter()
            .map(|s| s.get("digest").and_then(|d| d.as_str()).unwrap_or(""))
            .collect();
        let shown_chars = distinguishing_prefix(&digests);
        for (field, label) in [
            ("what", "sent"),
            ("view", "view"),
            ("seq", "seq"),
            ("digest", "digest"),
            ("line", "events line"),
        ] {
            let cells: Vec<String> = sides.iter().map(|s| text(s.get(field))).collect();
            if cells.iter().all(String::is_empty) {
                continue;
            }
            let _ = write!(html, "<tr><th>{label}</th>");
            for cell in &cells {
                let differs = cell != &cells[0] && field != "line";
                let class = match (field, differs) {
                    ("digest", true) => " class=\"digest differs\"",
                    ("digest", false) => " class=\"digest\"",
                    (_, true) => " class=\"differs\"",
                    _ => "",
                };
                let shown = if field == "digest" {
                    digest_html(cell, shown_chars)
                } else {
                    escape(cell)
                };
                let _ = write!(html, "<td{class}>{shown}</td>");
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</div>");
    Some(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::events::EventLine;
    use replica::verify::RejectReason;
    use replica::{ReplicaId, Seq, View};

    #[test]
    fn an_amnesia_conflict_shows_what_was_sent_before_and_after_the_restart() {
        use replica::message::MessageKind;
        let mut oracle = crate::check::NoAmnesiaOracle::default();
        let prepare = |digest: &str| ReplicaEvent::Sent {
            kind: MessageKind::Prepare,
            view: View(2),
            seq: Seq(9),
            digest: digest.into(),
        };
        let recovered = ReplicaEvent::Recovered {
            view: View(2),
            stable_seq: Seq(0),
            last_executed: Seq(0),
            records: 0,
        };
        for event in [
            prepare(&"a".repeat(64)),
            recovered,
            prepare(&"b".repeat(64)),
        ] {
            oracle.observe(ReplicaId(3), &event);
        }
        let html = amnesia_conflicts(&oracle.finish().details).expect("rendered");
        assert!(
            html.contains("<caption>replica 3: vote-digest at view 2, seq 9</caption>"),
            "{html}"
        );
        assert!(
            html.contains("<th>before the restart (incarnation 0)</th><th>after the restart (incarnation 1)</th>"),
            "{html}"
        );
        assert!(
            html.contains("<th>events line</th><td>1</td><td>3</td>"),
            "{html}"
        );
        assert_eq!(html.matches("digest differs").count(), 1, "{html}");
        assert_eq!(
            amnesia_conflicts(&serde_json::json!({ "counts": {} })),
            None
        );
    }

    #[test]
    fn a_state_conflict_shows_each_replicas_own_or_certified_digest() {
        let details = serde_json::json!({
            "conflicts": [{ "seq": 16, "states": [
                { "replica": 0, "digest": "aa11", "how": "taken" },
                { "replica": 2, "digest": "bb22", "how": "taken" },
                { "replica": 2, "digest": "aa11", "how": "stable" },
            ]}],
            "conflict_count": 1,
        });
        let html = conflicts_side_by_side(&details, &STATES).expect("rendered");
        assert!(
            html.contains("<th>own state or certified</th><td>taken</td>"),
            "{html}"
        );
        assert!(html.contains("<th>state digest</th>"), "{html}");
        assert_eq!(html.matches("digest differs").count(), 1, "{html}");
    }

    #[test]
    fn conflicting_digests_are_side_by_side_and_the_odd_one_marked() {
        let details = serde_json::json!({
            "conflict_count": 3,
            "conflicts": [{ "seq": 17, "commits": [
                { "replica": 0, "view": 1, "digest": "aaaa" },
                { "replica": 1, "view": 1, "digest": "aaaa" },
                { "replica": 2, "view": 1, "digest": "bbbb" },
            ]}],
        });
        let html = agreement_conflicts(&details).expect("rendered");
        assert!(html.contains("sequence number 17"));
        assert!(html.contains("<th>replica 0</th><th>replica 1</th><th>replica 2</th>"));
        assert_eq!(html.matches("digest differs").count(), 1);
        assert!(html.contains("Showing 1 of 3"));
        assert_eq!(
            agreement_conflicts(&serde_json::json!({ "counts": {} })),
            None
        );
    }

    #[test]
    fn long_digests_show_as_distinguishing_prefixes_with_the_whole_digest_in_the_tooltip() {
        let a = "3f".repeat(32);
        // Shares its first 20 hex digits with `a`: the prefix grows until they differ.
        let b = format!("{}{}", &a[..20], "0".repeat(44));
        let c = "9e".repeat(32);
        let details = serde_json::json!({
            "conflicts": [{ "seq": 5, "commits": [
                { "replica": 0, "view": 0, "digest": a },
                { "replica": 1, "view": 0, "digest": a },
                { "replica": 2, "view": 0, "digest": b },
                { "replica": 3, "view": 0, "digest": c },
            ]}],
        });
        let html = agreement_conflicts(&details).expect("rendered");
        assert!(
            html.starts_with("<div class=\"scroll\">") && html.ends_with("</div>"),
            "the tables scroll in their own box: {html}"
        );
        assert_eq!(
            html.matches(&format!("<code title=\"{a}\">{}…</code>", &a[..21]))
                .count(),
            2,
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "<td class=\"digest differs\"><code title=\"{b}\">{}…</code></td>",
                &b[..21]
            )),
            "{html}"
        );
        assert!(html.contains(&format!("<code title=\"{c}\">{}…</code>", &c[..21])));
        for digest in [&a, &b, &c] {
            assert!(
                !html.contains(&format!(">{digest}")),
                "a whole digest is cell text: {html}"
            );
        }
        // Apart at 12 digits: 12 are shown.
        let details = serde_json::json!({
            "conflicts": [{ "seq": 6, "commits": [
                { "replica": 0, "view": 0, "digest": a },
                { "replica": 1, "view": 0, "digest": c },
            ]}],
        });
        let html = agreement_conflicts(&details).expect("rendered");
        assert!(html.contains(&format!(">{}…</code>", &a[..12])), "{html}");
    }

    #[test]
    fn replica_table_falls_back_to_event_counts_without_stats() {
        let line = |event| EventLine {
            time_ns: 0,
            replica: ReplicaId(3),
            event,
        };
        let files = ReplicaFiles {
            id: ReplicaId(3),
            events: vec![
                line(ReplicaEvent::CheckpointStable {
                    seq: Seq(16),
                    state_digest: "d".into(),
                }),
                line(ReplicaEvent::ViewChangeStarted {
                    from: View(0),
                    view: View(1),
                }),
                line(ReplicaEvent::Rejected {
                    reason: RejectReason::MalformedFrame,
                    kind: None,
                    from: None,
                }),
            ],
            stats: None,
        };
        let counts = event_counts(&files);
        assert_eq!((counts.checkpoints, counts.view_changes_started), (1, 1));
        assert_eq!(counts.rejected.get("malformed-frame"), Some(&1));
        let html = replica_table(&[files]);
        assert!(html.contains("<th>replica 3</th>"));
        assert!(html.contains("malformed-frame 1"));
        assert!(html.contains("<td>1 / 0</td>"));
    }

    #[test]
    fn check_summaries_and_details_are_escaped() {
        let check = CheckResult {
            name: "linearizability".into(),
            outcome: CheckOutcome::Violation,
            summary: "key \"<k>\" broke".into(),
            details: serde_json::json!({ "key": "<script>" }),
        };
        let html = checks_table(&[check]);
        assert!(html.contains("&lt;k&gt;") && html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
    }
}
