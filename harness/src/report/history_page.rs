//! The page `gauntlet check-history --out DIR` writes for one history: the verdict per key,
//! porcupine's linearization view of the failing key, and the timeline of every operation.
//! Self-contained like a run's report, and drawn with the same parts.

use super::html::{escape, num};
use super::linview::failing_keys_html;
use super::ops::pair_operations;
use super::page::STYLE;
use super::timeline::timeline_svg;
use crate::history::{HistoryVerdict, Overall, Timing, verdict_word};
use std::fmt::Write as _;
use workloads::history::HistoryEvent;

/// The page for `verdict` over the history's `events`.
pub fn render_history_page(verdict: &HistoryVerdict, events: &[HistoryEvent]) -> String {
    let name = verdict.file.display().to_string();
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · Gauntlet check-history</title><style>{STYLE}</style></head><body><main>",
        escape(&name)
    );
    let _ = write!(html, "<h1>History: <code>{}</code></h1>", escape(&name));
    let class = match verdict.overall {
        Overall::Linearizable => "expected",
        Overall::NotLinearizable => "unexpected",
        Overall::Unknown => "error",
    };
    let _ = write!(
        html,
        "<div class=\"verdict {class}\" id=\"verdict\"><span class=\"big\">{}</span><span class=\"detail\">{}</span></div>",
        escape(&verdict.overall.word().to_uppercase()),
        escape(&verdict.check.summary)
    );
    let timing = match verdict.timing {
        Timing::Recorded => "each event's recorded time",
        Timing::FileOrder => {
            "the order of the events in the file (no :time): one event per ms on the timeline"
        }
    };
    let _ = write!(
        html,
        "<section><h2>Summary</h2><p>{} operations on {} keys · format <b>{}</b> · model <b>{}</b> · time from {} · searched in {} ms</p>{}</section>",
        verdict.operations,
        verdict.keys.len(),
        verdict.format,
        verdict.model,
        timing,
        num(verdict.search_ms),
        keys_table(verdict)
    );
    if let Some(failing) = failing_keys_html(&verdict.check.details) {
        let _ = write!(
            html,
            "<section id=\"linearization\"><h2>Not linearizable: porcupine's view of the failing key</h2>{failing}</section>"
        );
    }
    let ops = pair_operations(events);
    let end_ms = events
        .iter()
        .map(|e| e.time_ns as f64 / 1e6)
        .fold(0.0, f64::max)
        .max(1.0);
    let timeline = timeline_svg(&ops, end_ms, &[], &[]);
    let sampled = if timeline.drawn < ops.len() {
        format!(
            "<p class=\"note\">{} of {} operations drawn: every failed or unknown one, and a sample of the rest.</p>",
            timeline.drawn,
            ops.len()
        )
    } else {
        String::new()
    };
    let _ = write!(
        html,
        "<section><h2>Timeline</h2>{sampled}<div class=\"scroll\">{}</div></section>",
        timeline.svg
    );
    html.push_str("</main></body></html>\n");
    html
}

fn keys_table(verdict: &HistoryVerdict) -> String {
    let mut html = String::from(
        "<div class=\"scroll\"><table class=\"ops\"><thead><tr><th>key</th><th>operations</th><th>verdict</th><th>search</th></tr></thead><tbody>",
    );
    for key in &verdict.keys {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{} ms</td></tr>",
            escape(&key.key),
            key.operations,
            verdict_word(key.verdict),
            num(key.search_ms)
        );
    }
    html.push_str("</tbody></table></div>");
    html
}
