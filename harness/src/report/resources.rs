//! A `bounded-resources` failure: each sample over its bound, the bound, how it was derived,
//! and what every honest replica held at most.

use super::html::escape;
use crate::check::{Breach, Peaks};
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / f64::from(1 << 20))
}

/// How a measurement reads: slots as a count, the rest as bytes.
fn amount(resource: &str, value: u64) -> String {
    if resource == "slots" {
        format!("{value} slots")
    } else {
        format!("{value} B ({})", mib(value))
    }
}

/// The breaches of a violated `bounded-resources` check, then every replica's peaks; `None`
/// when the details list no breach.
pub fn resource_breaches(details: &serde_json::Value) -> Option<String> {
    let breaches: Vec<Breach> = serde_json::from_value(details.get("breaches")?.clone()).ok()?;
    if breaches.is_empty() {
        return None;
    }
    let mut html = String::from(
        "<p>A sample is a <code>resources</code> line of the replica's events: the most it held since the sample before (log slots, <code>wal.log</code> bytes) and, from a real process, its resident memory. Times are since the run started.</p>",
    );
    html.push_str(
        "<div class=\"scroll\"><table class=\"checks\"><thead><tr><th>replica</th><th>what</th><th>held</th><th>bound</th><th>sample</th><th>how the bound is derived</th></tr></thead><tbody>",
    );
    for breach in &breaches {
        let sample = &breach.sample;
        let rss = sample
            .rss_bytes
            .map_or_else(String::new, |rss| format!(", rss {}", mib(rss)));
        let _ = write!(
            html,
            "<tr><td>r{}</td><td>{}</td><td>{}</td><td>{}</td><td>line {}, {:.3} s: {} slots, wal {} B, snapshot {} B, stable seq {}{}</td><td>{}</td></tr>",
            breach.replica,
            escape(&breach.resource),
            escape(&amount(&breach.resource, breach.measured)),
            escape(&amount(&breach.resource, breach.bound)),
            sample.line,
            sample.since_start_ms as f64 / 1e3,
            sample.slots,
            sample.wal_bytes,
            sample.snapshot_bytes,
            sample.stable_seq,
            rss,
            escape(&breach.derivation),
        );
    }
    html.push_str("</tbody></table></div>");
    if let Some(peaks) = details
        .get("replicas")
        .and_then(|v| serde_json::from_value::<BTreeMap<String, Peaks>>(v.clone()).ok())
    {
        html.push_str(&peaks_table(&peaks));
    }
    Some(html)
}

fn peaks_table(peaks: &BTreeMap<String, Peaks>) -> String {
    let mut html = String::from(
        "<p>What each honest replica held at most over the run:</p><div class=\"scroll\"><table class=\"checks\"><thead><tr><th>replica</th><th>samples</th><th>slots</th><th>wal bytes (bound then)</th><th>snapshot bytes</th><th>resident</th></tr></thead><tbody>",
    );
    for (replica, p) in peaks {
        let rss = p.rss_bytes.map_or_else(|| "not measured".into(), mib);
        let _ = write!(
            html,
            "<tr><td>r{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td></tr>",
            escape(replica),
            p.samples,
            p.slots,
            p.wal_bytes,
            p.wal_bound,
            p.snapshot_bytes,
            rss
        );
    }
    html.push_str("</tbody></table></div>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breach_is_listed_with_its_sample_bound_and_derivation() {
        let details = serde_json::json!({
            "breaches": [{
                "replica": 2, "resource": "wal-bytes", "measured": 5_000_000u64,
                "bound": 4_300_000u64, "derivation": "⌈W/K⌉·n·checkpoint + W·slot = ...",
                "sample": {"line": 40, "time_ns": 8_500_000_000u64, "since_start_ms": 7_500, "slots": 12,
                           "wal_bytes": 5_000_000u64, "snapshot_bytes": 900, "stable_seq": 48}
            }],
            "replicas": {"2": {"samples": 15, "slots": 30, "wal_bytes": 5_000_000u64,
                               "wal_bound": 4_300_000u64, "snapshot_bytes": 900}}
        });
        let html = resource_breaches(&details).expect("a table");
        assert!(html.contains("<td>r2</td><td>wal-bytes</td>"), "{html}");
        assert!(
            html.contains("5000000 B") && html.contains("4300000 B"),
            "{html}"
        );
        assert!(html.contains("line 40, 7.500 s"), "{html}");
        assert!(html.contains("⌈W/K⌉·n·checkpoint"), "{html}");
        assert!(html.contains("not measured"), "{html}");
        assert_eq!(
            resource_breaches(&serde_json::json!({"breaches": []})),
            None
        );
        assert_eq!(resource_breaches(&serde_json::json!({})), None);
    }
}
