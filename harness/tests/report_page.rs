//! The run report rendered from a fake run folder written with the real types.

mod report_support;

use harness::report::{MAX_BARS, write_report};
use report_support::{FakeRun, HOSTILE_NAME, fake_digest};

fn render(run: &FakeRun) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    run.write(dir.path());
    let path = write_report(dir.path()).expect("report written");
    assert_eq!(path, dir.path().join("report.html"));
    let html = std::fs::read_to_string(path).expect("read report");
    (dir, html)
}

/// Every reference that would make a browser fetch something from outside the file: absolute
/// URLs, protocol-relative `src`/`href`, `@import`, and `url(...)` other than `#id` or `data:`.
/// XML namespace names are identifiers, never fetched, so they are allowed.
pub fn external_references(html: &str) -> Vec<String> {
    const NAMESPACES: &[&str] = &["http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"];
    // srcdoc frames hold whole escaped documents: check the unescaped text as well.
    let unescaped = html
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let mut found = Vec::new();
    for text in [html.to_string(), unescaped] {
        let lower = text.to_ascii_lowercase();
        for scheme in ["http://", "https://", "ftp://"] {
            for (at, _) in lower.match_indices(scheme) {
                let url: String = lower[at..]
                    .chars()
                    .take_while(|c| !matches!(c, '"' | '\'' | ' ' | ')' | '<' | '>' | '&'))
                    .collect();
                if !NAMESPACES.contains(&url.as_str()) {
                    found.push(url);
                }
            }
        }
        for attribute in ["src=", "href=", "action=", "srcset="] {
            for (at, _) in lower.match_indices(attribute) {
                let value = lower[at + attribute.len()..].trim_start_matches(['"', '\'']);
                if value.starts_with("//") || value.starts_with("data:text/html") {
                    found.push(lower[at..(at + 40).min(lower.len())].to_string());
                }
            }
        }
        for (at, _) in lower.match_indices("@import") {
            found.push(lower[at..(at + 30).min(lower.len())].to_string());
        }
        for (at, _) in lower.match_indices("url(") {
            let inside = lower[at + 4..].trim_start_matches(['"', '\'']);
            if !(inside.starts_with('#') || inside.starts_with("data:image")) {
                found.push(lower[at..(at + 30).min(lower.len())].to_string());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn external_reference_finder_catches_each_kind_of_fetch() {
    for bad in [
        r#"<img src="//cdn.example/x.png">"#,
        r#"<link href="https://fonts.example/css">"#,
        "<style>@import 'x.css';</style>",
        "<style>body { background: url(/bg.png) }</style>",
        r#"<iframe srcdoc="&lt;script src=&quot;//evil.example/a.js&quot;&gt;"></iframe>"#,
    ] {
        assert!(!external_references(bad).is_empty(), "missed: {bad}");
    }
    let fine = r##"<svg xmlns="http://www.w3.org/2000/svg"><use href="#a"/></svg><a href="smoke/1/report.html">r</a>"##;
    assert_eq!(external_references(fine), Vec::<String>::new());
}

#[test]
fn report_references_nothing_outside_itself() {
    let (_dir, html) = render(&FakeRun::default());
    assert_eq!(external_references(&html), Vec::<String>::new());
}

#[test]
fn broken_run_shows_unexpected_verdict_and_both_failure_views() {
    let (_dir, html) = render(&FakeRun::default());
    assert!(html.contains(
        r#"<div class="verdict unexpected" id="verdict"><span class="big">UNEXPECTED</span>"#
    ));
    assert!(html.contains("outcome <b>violation</b> · expected <b>pass</b>"));
    // porcupine's own view of the failing key, in a sandboxed frame.
    assert!(html.contains(r#"<section id="linearizability">"#));
    assert!(html.contains("<h3>key <code>bad</code></h3>"));
    assert!(html.contains(r#"<iframe class="porcupine" sandbox="allow-scripts""#));
    // The conflicting commit at seq 3 side by side, the forged digest marked: a short prefix,
    // the whole digest in its tooltip.
    assert!(html.contains(r#"<section id="agreement">"#));
    assert!(html.contains("<caption>sequence number 3</caption>"));
    let forged = fake_digest(u64::MAX);
    assert!(html.contains(&format!(
        r#"<td class="digest differs"><code title="{forged}">{}…</code></td>"#,
        &forged[..12]
    )));
}

#[test]
fn wide_content_scrolls_in_its_own_box_and_long_words_wrap() {
    let (_dir, html) = render(&FakeRun::default());
    assert!(html.contains(".scroll { overflow-x: auto;"));
    assert!(html.contains("overflow-wrap: break-word"));
    for section in ["checks", "agreement", "replicas"] {
        let start = html
            .find(&format!(r#"<section id="{section}">"#))
            .unwrap_or_else(|| panic!("no {section} section"));
        let body = &html[start..];
        let body = &body[..body.find("</section>").expect("section ends")];
        assert!(
            body.contains(r#"<div class="scroll"><table"#)
                || body.contains(r#"<div class="scroll"><p class="note">"#),
            "{section}: its table is not in a scroll box"
        );
    }
    // No whole 64-digit digest is cell text anywhere (the verdict's details keep them, in a
    // wrapping <pre>).
    for n in [3, u64::MAX] {
        let digest = fake_digest(n);
        assert!(!html.contains(&format!(">{digest}<")), "{digest}");
    }
}

#[test]
fn timeline_has_a_lane_per_client_faults_shaded_and_the_view_change_marked() {
    let (_dir, html) = render(&FakeRun::default());
    for client in 0..4 {
        assert!(
            html.contains(&format!(">client {client}</text>")),
            "lane {client}"
        );
    }
    assert!(html.contains(r#"<rect class="fault-partition""#));
    assert!(html.contains("partition [g00-partition]"));
    assert!(html.contains("kill → replica 1 [g01-kill]"));
    // The replicas' wall clock is lined up with the history's from executions: view 1 shows.
    assert!(html.contains(r#"<g class="view-change">"#) && html.contains(">v1</text>"));
    assert!(html.contains(r#"<g class="heal">"#));
    assert!(html.contains(r#"class="op-info""#) && html.contains(r#"class="op-fail""#));
    assert!(
        !html.contains(r#"id="sampled""#),
        "a small run is drawn whole"
    );
}

#[test]
fn replica_statistics_come_from_each_replicas_stats_file() {
    let (_dir, html) = render(&FakeRun::default());
    assert!(
        html.contains("<th>replica 0</th><th>replica 1</th><th>replica 2</th><th>replica 3</th>")
    );
    assert!(
        html.contains("<li>prepare 13</li>"),
        "replica 3 counted 13 prepares in"
    );
    assert!(html.contains("<li>malformed-frame 1</li>"));
}

#[test]
fn hostile_scenario_name_is_escaped_everywhere() {
    let (_dir, html) = render(&FakeRun::default());
    assert!(!html.contains(HOSTILE_NAME));
    assert!(!html.contains("<script>alert"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );
    assert!(html.contains("evil&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"));
}

#[test]
fn long_run_is_sampled_and_the_page_says_so() {
    let run = FakeRun {
        ops_per_client: 2500,
        broken: false,
        scenario_name: "long".into(),
    };
    let (_dir, html) = render(&run);
    assert!(
        html.contains(r#"<p class="note" id="sampled">Sampled: 10000 operations"#),
        "no note"
    );
    let bars = html.matches(r#"<rect class="op-"#).count();
    assert!(bars <= MAX_BARS && bars > MAX_BARS / 2, "{bars} bars");
    assert!(html.len() < 4_000_000, "report is {} bytes", html.len());
    assert!(html.contains(r#"<div class="verdict expected" id="verdict">"#));
}

#[test]
fn run_folder_without_files_still_gets_a_page_that_lists_what_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_report(dir.path()).expect("report");
    let html = std::fs::read_to_string(path).expect("read");
    assert!(html.contains("NO VERDICT"));
    assert!(html.contains("history.jsonl is missing"));
    assert_eq!(external_references(&html), Vec::<String>::new());
}
