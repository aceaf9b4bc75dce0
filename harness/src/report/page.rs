//! The whole page: sections in reading order, one inline stylesheet, one tiny inline script
//! (the copy button). Nothing is fetched from anywhere.

use super::charts::{bucket_width_ms, buckets, latency_svg, throughput_svg};
use super::html::{duration_ms, escape};
use super::inputs::RunData;
use super::linview::failing_keys_html;
use super::ops::{OpOutcome, TimedOp, estimate_time_zero_ns, pair_operations, view_changes};
use super::resources::resource_breaches;
use super::shading::{Mark, bands, legend_html};
use super::tables::{
    STATES, agreement_conflicts, amnesia_conflicts, checks_table, conflicts_side_by_side,
    replica_table,
};
use super::timeline::timeline_svg;
use super::windows::{crashed_processes, stall_table, stuck_replicas, uncalled_view_changes};
use crate::defence::{Defence, FaultyReplica};
use crate::scenario::Build;
use crate::verdict::Outcome;
use replica::ReplicaId;
use replica::events::EventLine;
use std::fmt::Write as _;

pub const STYLE: &str = r#"
:root { --ok:#2e9d57; --fail:#d64541; --info:#e0a100; --open:#8a8f98; --ink:#1d232b; --muted:#6b7380; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0; background: #f6f7f9; overflow-wrap: break-word; }
main { max-width: 1280px; margin: 0 auto; padding: 18px 24px 48px; }
h1 { font-size: 22px; margin: 4px 0 12px; } h2 { font-size: 17px; margin: 28px 0 8px; } h3 { font-size: 15px; }
section { background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; padding: 12px 16px; margin-top: 14px; }
.verdict { border-radius: 10px; padding: 16px 22px; color: #fff; display: flex; gap: 28px; align-items: baseline; flex-wrap: wrap; }
.verdict.expected { background: var(--ok); } .verdict.unexpected { background: var(--fail); } .verdict.error { background: #a05a00; }
.verdict .big { font-size: 30px; font-weight: 700; letter-spacing: .5px; } .verdict > *, .stats > div { min-width: 0; }
.verdict .detail { font-size: 16px; }
.repro { display: flex; gap: 8px; align-items: center; }
.repro pre { flex: 1; margin: 0; padding: 8px 10px; background: #1d232b; color: #e6edf3; border-radius: 6px; overflow-x: auto; }
button { font: inherit; padding: 6px 12px; border-radius: 6px; border: 1px solid #c9ced6; background: #fff; cursor: pointer; }
.scroll { overflow-x: auto; max-width: 100%; } /* wide tables scroll in their own box, not the page */
table { border-collapse: collapse; margin: 6px 0; } th, td { border-bottom: 1px solid #e8eaee; padding: 4px 10px; text-align: left; vertical-align: top; }
thead th { background: #f0f2f5; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }
.pill.pass { background: var(--ok); } .pill.violation { background: var(--fail); } .pill.inconclusive { background: var(--info); } .pill.skipped { background: var(--open); }
.muted { color: var(--muted); } .note { background: #fff7e0; border-left: 4px solid var(--info); padding: 6px 10px; }
.problems li { color: #a05a00; }
.stats { display: flex; gap: 22px; flex-wrap: wrap; } .stats div b { display: block; font-size: 18px; }
ul.breakdown { margin: 2px 0 0; padding-left: 16px; font-size: 12px; color: var(--muted); }
td.digest.differs, td.differs { background: #fde2e1; } code { font-size: 12px; }
pre { white-space: pre-wrap; word-break: break-word; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
.axis line { stroke: #9aa1ab; } .axis line.grid { stroke: #eceef1; }
.op-ok { fill: var(--ok); } .op-fail { fill: var(--fail); } .op-info { fill: var(--info); } .op-open { fill: var(--open); }
.fault-partition { fill: #7b61ff; fill-opacity: .16; } .fault-crash { fill: #d64541; fill-opacity: .14; }
.fault-pause { fill: #00a3c4; fill-opacity: .16; } .fault-link { fill: #e07b00; fill-opacity: .15; } .fault-other { fill: #777; fill-opacity: .14; }
.view-change line { stroke: #333; stroke-dasharray: 4 3; stroke-width: 1; } .view-change text { font-weight: 600; }
.heal line { stroke: #2e9d57; stroke-width: 2; } .heal text { fill: #2e9d57; font-weight: 600; }
polyline { fill: none; stroke-width: 1.6; }
.lat-p50 { stroke: #2f6fdb; } .lat-p99 { stroke: #e07b00; } .lat-max { stroke: #d64541; stroke-opacity: .55; }
.tp-ok { stroke: var(--ok); } .tp-fail { stroke: var(--fail); } .tp-info { stroke: var(--info); }
.legend { display: inline-flex; gap: 14px; flex-wrap: wrap; font-size: 12px; margin-left: 10px; } .legend svg { vertical-align: middle; }
.key { display: inline-block; width: 12px; height: 10px; vertical-align: middle; margin-right: 3px; }
iframe.porcupine { width: 100%; height: 520px; border: 1px solid #e1e4e8; border-radius: 6px; background: #fff; }
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('button[data-copy]').forEach(function (button) {
  button.addEventListener('click', function () {
    var text = document.getElementById(button.getAttribute('data-copy')).textContent;
    var done = function () { button.textContent = 'copied'; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(button); });
    } else { selectText(button); }
  });
});
function selectText(button) {
  var range = document.createRange();
  range.selectNodeContents(document.getElementById(button.getAttribute('data-copy')));
  var selection = window.getSelection(); selection.removeAllRanges(); selection.addRange(range);
  button.textContent = 'selected: press Ctrl+C';
}
"#;

/// How the verdict banner reads and which colour it takes.
fn verdict_banner(data: &RunData) -> String {
    let Some(verdict) = &data.verdict else {
        return "<div class=\"verdict error\" id=\"verdict\"><span class=\"big\">NO VERDICT</span><span class=\"detail\">verdict.json is missing or unreadable: the run did not finish.</span></div>".into();
    };
    let (class, headline) = if verdict.outcome == Outcome::Error {
        ("error", "COULD NOT RUN")
    } else if verdict.met_expectation() {
        ("expected", "AS EXPECTED")
    } else {
        ("unexpected", "UNEXPECTED")
    };
    let mut html = format!(
        "<div class=\"verdict {class}\" id=\"verdict\"><span class=\"big\">{headline}</span><span class=\"detail\">outcome <b>{}</b> · expected <b>{}</b></span>",
        verdict.outcome.word(),
        verdict.expected_word(),
    );
    if let Some(error) = &verdict.error {
        let _ = write!(html, "<span class=\"detail\">{}</span>", escape(error));
    }
    html.push_str("</div>");
    html
}

/// Which backend ran, under the title: in a simulated run every time on the page is virtual.
/// The verdict says; a run that died before its verdict may still have its timeline.
fn backend_line(data: &RunData) -> String {
    let backend = data
        .verdict
        .as_ref()
        .map(|v| v.backend)
        .or_else(|| data.timeline.as_ref().map(|t| t.backend));
    backend.map_or_else(String::new, |backend| {
        format!(
            "<p class=\"muted\" id=\"backend\">backend: {}</p>",
            super::backend_label(backend)
        )
    })
}

fn reproduce_command(data: &RunData) -> String {
    data.verdict
        .as_ref()
        .map(|v| v.reproduce.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| format!("gauntlet reproduce {}", data.dir.display()))
}

fn counts_html(ops: &[TimedOp], run_end_ms: f64, data: &RunData) -> String {
    let count = |o: OpOutcome| ops.iter().filter(|op| op.outcome == o).count();
    let mut html = String::from("<div class=\"stats\">");
    let mut stat = |name: &str, value: String| {
        let _ = write!(html, "<div><b>{}</b>{name}</div>", escape(&value));
    };
    stat("operations", ops.len().to_string());
    stat("ok", count(OpOutcome::Ok).to_string());
    stat("fail", count(OpOutcome::Fail).to_string());
    stat("info (unknown)", count(OpOutcome::Info).to_string());
    stat("unfinished", count(OpOutcome::Open).to_string());
    stat("history span", duration_ms(run_end_ms));
    stat("replicas", data.replicas.len().to_string());
    stat("faults", data.faults.len().to_string());
    if let Some(build) = data.verdict.as_ref().and_then(|v| v.build_id.clone()) {
        stat("build", build);
    }
    html.push_str("</div>");
    html
}

fn failure_views(data: &RunData) -> String {
    let mut html = String::new();
    let Some(verdict) = &data.verdict else {
        return html;
    };
    for check in &verdict.checks {
        if check.name == "linearizability"
            && let Some(view) = failing_keys_html(&check.details)
        {
            let _ = write!(
                html,
                "<section id=\"linearizability\"><h2>Linearizability failure: porcupine-rs view</h2>{view}</section>"
            );
        }
        if check.name == "agreement"
            && let Some(view) = agreement_conflicts(&check.details)
        {
            let _ = write!(
                html,
                "<section id=\"agreement\"><h2>Agreement failure: commits side by side</h2>{view}</section>"
            );
        }
        if check.name == "state-agreement"
            && let Some(view) = conflicts_side_by_side(&check.details, &STATES)
        {
            let _ = write!(
                html,
                "<section id=\"state-agreement\"><h2>State agreement failure: checkpoint states side by side</h2>{view}</section>"
            );
        }
        if check.name == crate::check::WINDOW_LIVENESS
            && check.outcome == crate::check::CheckOutcome::Violation
            && let Some(view) = stall_table(&check.details)
        {
            let _ = write!(
                html,
                "<section id=\"window-liveness\"><h2>Window liveness failure: stalls and starved clients with at most f faulty</h2>{view}</section>"
            );
        }
        if check.name == crate::check::VIEW_STABILITY
            && check.outcome == crate::check::CheckOutcome::Violation
            && let Some(view) = uncalled_view_changes(&check.details)
        {
            let _ = write!(
                html,
                "<section id=\"view-stability\"><h2>View stability failure: view changes with nothing wrong</h2>{view}</section>"
            );
        }
        if check.name == crate::check::CATCH_UP
            && check.outcome == crate::check::CheckOutcome::Violation
            && let Some(view) = stuck_replicas(&check.details)
        {
            let _ = write!(
                html,
                "<section id=\"catch-up\"><h2>Catch-up failure: restarted replicas that stayed behind</h2>{view}</section>"
            );
        }
        if check.name == crate::check::NO_CRASH
            && check.outcome == crate::check::CheckOutcome::Violation
            && let Some(view) = crashed_processes(&check.details)
        {
            let _ = write!(
                html,
                "<section id=\"no-crash\"><h2>No-crash failure: honest replica processes that ended on their own</h2>{view}</section>"
            );
        }
        if check.name == "no-amnesia"
            && let Some(view) = amnesia_conflicts(&check.details)
        {
            let _ = write!(
                html,
                "<section id=\"no-amnesia\"><h2>No-amnesia failure: what a replica sent before and after its restart</h2>{view}</section>"
            );
        }
        if check.name == crate::check::BOUNDED_RESOURCES
            && let Some(view) = resource_breaches(&check.details)
        {
            let _ = write!(
                html,
                "<section id=\"bounded-resources\"><h2>Bounded resources failure: samples over their bounds</h2>{view}</section>"
            );
        }
    }
    html
}

/// Renders the report for already-loaded run data.
pub fn render(data: &RunData) -> String {
    let ops = pair_operations(&data.history);
    let history_end_ms = data
        .history
        .iter()
        .map(|e| e.time_ns as f64 / 1e6)
        .fold(0.0, f64::max);
    // A run without a history still gets a one-second axis to draw its faults on.
    let run_end_ms = if history_end_ms > 0.0 {
        history_end_ms
    } else {
        1000.0
    };
    let shaded = bands(&data.faults, run_end_ms);
    let all_events: Vec<&EventLine> = data.replicas.iter().flat_map(|r| r.events.iter()).collect();
    let time_zero = data
        .verdict
        .as_ref()
        .and_then(|v| v.started_at_ns)
        .map(|ns| ns as f64)
        .or_else(|| estimate_time_zero_ns(&data.history, &all_events));
    let mut marks = time_zero.map_or_else(Vec::new, |zero| view_changes(&all_events, zero));
    if let Some(timeline) = &data.timeline
        && timeline.heal_ns > 0
    {
        marks.push(Mark::heal(timeline.heal_ns as f64 / 1e6));
    }
    let timeline = timeline_svg(&ops, run_end_ms, &shaded, &marks);
    let width = bucket_width_ms(run_end_ms);
    let bucketed = buckets(&ops, run_end_ms, width);

    let scenario = data
        .verdict
        .as_ref()
        .map(|v| v.scenario.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown scenario".into());
    let seed = data
        .verdict
        .as_ref()
        .map_or_else(|| "?".to_string(), |v| v.seed.to_string());

    let mut html = String::with_capacity(256 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · seed {} · Gauntlet</title><style>{STYLE}</style></head><body><main>",
        escape(&scenario),
        escape(&seed)
    );
    let _ = write!(
        html,
        "<h1>Gauntlet run: <span id=\"scenario-name\">{}</span> · seed {}</h1>",
        escape(&scenario),
        escape(&seed)
    );
    html.push_str(&backend_line(data));
    html.push_str(&verdict_banner(data));
    let _ = write!(
        html,
        "<section><h2>Reproduce</h2><div class=\"repro\"><pre id=\"reproduce\">{}</pre><button type=\"button\" data-copy=\"reproduce\">copy</button></div></section>",
        escape(&reproduce_command(data))
    );
    let _ = write!(
        html,
        "<section><h2>Summary</h2>{}",
        counts_html(&ops, run_end_ms, data)
    );
    if !data.problems.is_empty() {
        html.push_str("<ul class=\"problems\">");
        for problem in &data.problems {
            let _ = write!(html, "<li>{}</li>", escape(problem));
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
    let checks = data
        .verdict
        .as_ref()
        .map(|v| v.checks.as_slice())
        .unwrap_or(&[]);
    let _ = write!(
        html,
        "<section id=\"checks\"><h2>Checks</h2>{}</section>",
        checks_table(checks)
    );
    html.push_str(&failure_views(data));
    html.push_str(&attack_html(data));

    let legend = legend_html(&shaded, &marks);
    let _ = write!(
        html,
        "<section id=\"timeline\"><h2>Timeline of client operations {legend}<span class=\"legend\"><span><i class=\"key op-ok\" style=\"background:var(--ok)\"></i>ok</span><span><i class=\"key\" style=\"background:var(--fail)\"></i>fail</span><span><i class=\"key\" style=\"background:var(--info)\"></i>info</span><span><i class=\"key\" style=\"background:var(--open)\"></i>unfinished</span></span></h2>"
    );
    if let Some(stride) = timeline.ok_stride {
        let _ = write!(
            html,
            "<p class=\"note\" id=\"sampled\">Sampled: {} operations are too many to draw one by one; showing {} of them — every failed, unknown and unfinished one, and one successful operation in every {stride}. The charts below count all of them.</p>",
            ops.len(),
            timeline.drawn
        );
    }
    if data.faults.is_empty() {
        html.push_str("<p class=\"muted\">No fault was recorded for this run.</p>");
    } else if !data.faults_from_log {
        html.push_str("<p class=\"muted\">Fault windows are the planned ones (plan.json): no nemesis log was found.</p>");
    }
    if time_zero.is_none() && data.replicas.iter().any(|r| !r.events.is_empty()) {
        html.push_str("<p class=\"muted\">View changes are not marked: the replicas' clock could not be lined up with the history's.</p>");
    }
    html.push_str(&timeline.svg);
    html.push_str("</section>");
    let _ = write!(
        html,
        "<section id=\"latency\"><h2>Latency of successful operations <span class=\"legend\"><span style=\"color:#2f6fdb\">p50</span><span style=\"color:#e07b00\">p99</span><span style=\"color:#d64541\">max</span></span></h2><p class=\"muted\">Aggregated per {} of completion time.</p>{}</section>",
        duration_ms(width),
        latency_svg(&bucketed, run_end_ms, width, &shaded, &marks)
    );
    let _ = write!(
        html,
        "<section id=\"throughput\"><h2>Throughput <span class=\"legend\"><span style=\"color:var(--ok)\">ok/s</span><span style=\"color:var(--fail)\">fail/s</span><span style=\"color:var(--info)\">info/s</span></span></h2>{}</section>",
        throughput_svg(&bucketed, run_end_ms, width, &shaded, &marks)
    );
    let _ = write!(
        html,
        "<section id=\"replicas\"><h2>Replicas</h2>{}</section>",
        replica_table(&data.replicas)
    );
    if let Some(yaml) = &data.scenario_yaml {
        let _ = write!(
            html,
            "<section id=\"scenario\"><h2>Scenario</h2><pre>{}</pre></section>",
            escape(yaml)
        );
    }
    let _ = write!(
        html,
        "<p class=\"muted\">Run folder: <code>{}</code></p></main><script>{SCRIPT}</script></body></html>",
        escape(&data.dir.display().to_string())
    );
    html
}

/// Who attacked and how the honest replicas held (the verdict's `counts.faulty` and
/// `counts.defence`); nothing when every replica was honest and none had to fall back on a
/// request's signature (a client's MAC attack needs no faulty replica).
fn attack_html(data: &RunData) -> String {
    let Some(counts) = data.verdict.as_ref().map(|v| &v.counts) else {
        return String::new();
    };
    let mac_attacked = counts.defence.values().any(|d| d.mac_fallbacks > 0);
    if counts.faulty.is_empty() && !mac_attacked {
        return String::new();
    }
    let mut html = String::from("<section id=\"attack\"><h2>Attack</h2>");
    if !counts.faulty.is_empty() {
        html.push_str("<div class=\"scroll\"><table><tr><th>faulty replica</th><th>build</th><th>behaviour</th><th>params / split</th></tr>");
        for replica in &counts.faulty {
            html.push_str(&faulty_row(replica));
        }
        html.push_str("</table></div>");
    }
    html.push_str("<h3>How the honest replicas held</h3><div class=\"scroll\"><table><tr><th>honest replica</th><th>rejected inputs by reason</th><th>view changes started / completed</th><th>state transfers</th><th>MAC fallbacks</th></tr>");
    for (replica, defence) in &counts.defence {
        html.push_str(&defence_row(*replica, defence));
    }
    html.push_str("</table></div></section>");
    html
}

fn faulty_row(replica: &FaultyReplica) -> String {
    // Parameters as the verdict stores them (a JSON object), so none is lost or reworded.
    let params = if replica.params.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&replica.params).unwrap_or_default()
    };
    let detail = [params, replica.split.clone().unwrap_or_default()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "<tr><td>r{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        replica.replica,
        escape(&build_word(replica.build)),
        escape(replica.behaviour.as_deref().unwrap_or_default()),
        escape(&detail)
    )
}

/// The build as scenarios spell it.
fn build_word(build: Build) -> String {
    serde_json::to_value(build)
        .ok()
        .and_then(|word| word.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn defence_row(replica: ReplicaId, defence: &Defence) -> String {
    let rejected = defence
        .rejected
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "<tr><td>r{replica}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>",
        escape(if rejected.is_empty() {
            "none"
        } else {
            &rejected
        }),
        defence.view_changes_started,
        defence.view_changes_completed,
        defence.state_transfers,
        defence.mac_fallbacks
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::scenario::Expectation;
    use crate::verdict::Verdict;
    use std::collections::BTreeMap;

    fn page_with(verdict: Verdict) -> String {
        render(&RunData {
            verdict: Some(verdict),
            ..RunData::default()
        })
    }

    fn passed_on(backend: Backend) -> Verdict {
        Verdict {
            backend,
            ..Verdict::bare(Outcome::Pass, Expectation::Pass)
        }
    }

    #[test]
    fn the_header_says_which_backend_ran() {
        assert!(page_with(passed_on(Backend::Sim)).contains("backend: sim (virtual time)</p>"));
        assert!(page_with(passed_on(Backend::Real)).contains("backend: real processes</p>"));
        let no_verdict = render(&RunData::default());
        assert!(
            !no_verdict.contains("id=\"backend\""),
            "no verdict, no timeline: nothing to say"
        );
    }

    #[test]
    fn the_attack_lists_each_faulty_replica_and_each_honest_defence() {
        let mut verdict = passed_on(Backend::Real);
        verdict.counts.faulty = vec![FaultyReplica {
            replica: ReplicaId(1),
            build: Build::Byzantine,
            behaviour: Some("wrong-reply".into()),
            params: BTreeMap::from([("value".into(), "x<y".into())]),
            split: None,
        }];
        verdict.counts.defence = BTreeMap::from([(
            ReplicaId(0),
            Defence {
                rejected: BTreeMap::from([("bad-signature".into(), 3), ("stale-view".into(), 1)]),
                view_changes_started: 2,
                view_changes_completed: 1,
                mac_fallbacks: 7,
                ..Defence::default()
            },
        )]);
        let html = page_with(verdict);
        assert!(
            html.contains("<tr><td>r1</td><td>byzantine</td><td>wrong-reply</td><td>{&quot;value&quot;:&quot;x&lt;y&quot;}</td></tr>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<tr><td>r0</td><td>bad-signature 3, stale-view 1</td><td>2 / 1</td><td>0</td><td>7</td></tr>"
            ),
            "{html}"
        );
        assert!(
            !page_with(passed_on(Backend::Real)).contains("id=\"attack\""),
            "no faulty replica, no attack section"
        );
    }

    #[test]
    fn a_clients_mac_attack_shows_the_defence_without_a_faulty_replica() {
        let mut verdict = passed_on(Backend::Sim);
        verdict.counts.defence = BTreeMap::from([
            (ReplicaId(0), Defence::default()),
            (
                ReplicaId(1),
                Defence {
                    mac_fallbacks: 12,
                    ..Defence::default()
                },
            ),
        ]);
        let html = page_with(verdict);
        assert!(html.contains("id=\"attack\""), "{html}");
        assert!(!html.contains("faulty replica</th>"), "{html}");
        assert!(
            html.contains("<tr><td>r1</td><td>none</td><td>0 / 0</td><td>0</td><td>12</td></tr>"),
            "{html}"
        );
    }
}
