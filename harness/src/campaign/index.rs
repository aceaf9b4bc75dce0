//! `index.html`: one row per run, failures first, with totals and links to each run's report.
//! Self-contained like the run reports: inline styles, nothing fetched.

use super::runner::relative_to;
use super::{CampaignSummary, RunStatus};
use crate::layout::RunDir;
use crate::report::html::{duration_ms, escape};
use std::fmt::Write as _;
use std::path::Path;

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232b; margin: 0; background: #f6f7f9; }
main { max-width: 1280px; margin: 0 auto; padding: 18px 24px 48px; }
h1 { font-size: 22px; }
.totals { display: flex; gap: 14px; flex-wrap: wrap; margin: 12px 0; }
.totals div { background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; padding: 8px 14px; }
.totals b { display: block; font-size: 22px; }
.banner { border-radius: 10px; padding: 14px 20px; color: #fff; font-size: 22px; font-weight: 700; }
.banner.ok { background: #2e9d57; } .banner.unexpected { background: #d64541; } .banner.error { background: #a05a00; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #e1e4e8; }
th, td { border-bottom: 1px solid #e8eaee; padding: 5px 10px; text-align: left; vertical-align: top; }
thead th { background: #f0f2f5; position: sticky; top: 0; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; white-space: nowrap; }
.pill.as-expected { background: #2e9d57; } .pill.unexpected { background: #d64541; } .pill.error { background: #a05a00; } .pill.skipped { background: #8a8f98; }
tr.unexpected td, tr.error td { background: #fff5f5; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font-size: 12px; }
code { font-size: 12px; } .muted { color: #6b7380; }
"#;

/// Percent-encodes a relative path for an `href`, keeping `/` and unreserved characters.
pub fn href_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

fn class(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Error => "error",
        RunStatus::Unexpected => "unexpected",
        RunStatus::Skipped => "skipped",
        RunStatus::AsExpected => "as-expected",
    }
}

/// What `scripts/triage.sh` made of a failed run, as links: the shrunk scenario, its run's
/// report, and that run re-run on real processes. Empty until triage ran.
fn triage_links(run_dir: &Path, campaign_dir: &Path) -> String {
    let shrink = crate::shrink::default_folder(run_dir);
    let candidates = [
        ("shrunk scenario", shrink.join(crate::shrink::SHRUNK_YAML)),
        (
            "shrunk run",
            RunDir::new(shrink.join(crate::shrink::RUN)).report(),
        ),
        (
            "shrunk run on real processes",
            RunDir::new(shrink.join(crate::shrink::REAL)).report(),
        ),
    ];
    let links: Vec<String> = candidates
        .iter()
        .filter(|(_, path)| path.exists())
        .map(|(label, path)| {
            let href = href_path(&relative_to(path, campaign_dir));
            format!("<a href=\"{}\">{label}</a>", escape(&href))
        })
        .collect();
    if links.is_empty() {
        return String::new();
    }
    format!("<div class=\"triage\">triage: {}</div>", links.join(" · "))
}

pub fn render_index(summary: &CampaignSummary) -> String {
    let (banner_class, banner) = match summary.exit_code() {
        0 => ("ok", "every run as expected"),
        1 => ("unexpected", "some runs were not as expected"),
        _ => ("error", "some runs could not be carried out"),
    };
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · Gauntlet campaign</title><style>{STYLE}</style></head><body><main>",
        escape(&summary.name)
    );
    let _ = write!(
        html,
        "<h1>Gauntlet campaign <code>{}</code></h1><p class=\"muted\" id=\"backend\">backend: {}</p><div class=\"banner {banner_class}\" id=\"verdict\">{banner}</div>",
        escape(&summary.name),
        crate::report::backend_label(summary.backend)
    );
    html.push_str("<div class=\"totals\" id=\"totals\">");
    let totals = [
        ("runs", summary.records.len()),
        ("as expected", summary.count(RunStatus::AsExpected)),
        ("unexpected", summary.count(RunStatus::Unexpected)),
        ("could not run", summary.count(RunStatus::Error)),
        ("skipped", summary.count(RunStatus::Skipped)),
    ];
    for (name, count) in totals {
        let _ = write!(html, "<div><b>{count}</b>{name}</div>");
    }
    let _ = write!(
        html,
        "<div><b>{}</b>wall time</div></div><p class=\"muted\">shard {} · seeds from {} ({} per scenario) · {} jobs · budget {}</p>",
        duration_ms(summary.elapsed_ms as f64),
        summary.shard,
        summary.seeds.first,
        summary.seeds.count,
        summary.jobs,
        summary
            .budget_s
            .map_or_else(|| "none".to_string(), |s| duration_ms(s as f64 * 1000.0))
    );
    html.push_str("<table id=\"runs\"><thead><tr><th>result</th><th>scenario</th><th>seed</th><th>outcome</th><th>expected</th><th>duration</th><th>report</th><th>details</th></tr></thead><tbody>");
    for record in summary.ordered() {
        let report = match record.run_dir.clone().map(|dir| RunDir::new(dir).report()) {
            Some(report) if report.exists() => {
                let relative = relative_to(&report, &summary.dir);
                format!("<a href=\"{}\">report</a>", escape(&href_path(&relative)))
            }
            Some(_) => "<span class=\"muted\">no report</span>".into(),
            None => "<span class=\"muted\">–</span>".into(),
        };
        let mut details = String::new();
        if record.status != RunStatus::AsExpected {
            let _ = write!(details, "<pre>{}</pre>", escape(&record.summary));
            if record.status != RunStatus::Skipped {
                let _ = write!(
                    details,
                    "<div>reproduce: <code>{}</code></div>",
                    escape(&record.reproduce)
                );
            }
            if let Some(run_dir) = &record.run_dir {
                details.push_str(&triage_links(run_dir, &summary.dir));
            }
            if !record.log_tail.is_empty() {
                let _ = write!(
                    details,
                    "<details><summary>last lines of stderr</summary><pre>{}</pre></details>",
                    escape(&record.log_tail)
                );
            }
        }
        let dash = |s: &str| {
            if s.is_empty() {
                "–".to_string()
            } else {
                escape(s)
            }
        };
        let _ = write!(
            html,
            "<tr class=\"{cls}\"><td><span class=\"pill {cls}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{report}</td><td>{details}</td></tr>",
            record.status.word(),
            escape(&record.scenario_name),
            record.cell.seed,
            dash(&record.outcome),
            dash(&record.expected),
            if record.status == RunStatus::Skipped {
                "–".to_string()
            } else {
                duration_ms(record.duration_ms as f64)
            },
            cls = class(record.status),
        );
    }
    html.push_str("</tbody></table></main></body></html>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;

    #[test]
    fn the_header_names_the_backend() {
        let summary = CampaignSummary::sample(Backend::Sim, Vec::new());
        let html = render_index(&summary);
        assert!(
            html.contains("<p class=\"muted\" id=\"backend\">backend: sim (virtual time)</p>"),
            "{html}"
        );
    }

    #[test]
    fn a_triaged_failure_links_its_shrunk_scenario_and_runs() {
        let campaign = tempfile::tempdir().expect("tempdir");
        let run = campaign.path().join("default/1-x");
        let shrink = crate::shrink::default_folder(&run);
        std::fs::create_dir_all(shrink.join("run")).expect("mkdir");
        std::fs::write(shrink.join(crate::shrink::SHRUNK_YAML), "name: s\n").expect("yaml");
        std::fs::write(RunDir::new(shrink.join("run")).report(), "<html>").expect("report");
        let links = triage_links(&run, campaign.path());
        assert!(
            links.contains("href=\"default/1-x-shrink/shrunk.yaml\">shrunk scenario</a>"),
            "{links}"
        );
        assert!(
            links.contains("href=\"default/1-x-shrink/run/report.html\">shrunk run</a>"),
            "{links}"
        );
        assert!(!links.contains("real processes"), "{links}");
        assert_eq!(
            triage_links(&campaign.path().join("other"), campaign.path()),
            ""
        );
    }

    #[test]
    fn hrefs_keep_slashes_and_encode_the_rest() {
        assert_eq!(
            href_path(Path::new("smoke/7-2026 01\"x#/report.html")),
            "smoke/7-2026%2001%22x%23/report.html"
        );
    }
}
