//! Fault windows drawn as shaded bands behind the timeline and the charts, and view changes
//! drawn as marker lines, so every picture shows when the nemesis was at work.

use super::html::{escape, num};
use super::inputs::FaultWindow;
use super::scale::LinearScale;
use std::fmt::Write as _;

/// A fault clipped to the visible time span, in ms.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub start_ms: f64,
    pub end_ms: f64,
    pub class: &'static str,
    pub label: String,
}

/// Clips each window to `[0, run_end_ms]`; an open-ended window lasts to `run_end_ms`; a window
/// wholly outside, or empty, is dropped.
pub fn bands(windows: &[FaultWindow], run_end_ms: f64) -> Vec<Band> {
    windows
        .iter()
        .filter_map(|w| {
            let start = w.start_ms.max(0.0);
            let end = w.end_ms.unwrap_or(run_end_ms).min(run_end_ms);
            (end > start).then(|| Band {
                start_ms: start,
                end_ms: end,
                class: fault_class(&w.kind),
                label: w.label.clone(),
            })
        })
        .collect()
}

/// The CSS class of a fault kind: one colour per family of faults.
pub fn fault_class(kind: &str) -> &'static str {
    match kind {
        "partition" => "fault-partition",
        "kill" | "restart" | "crash" => "fault-crash",
        "pause" | "resume" => "fault-pause",
        "link-fault" | "delay" | "loss" | "duplicate" | "reorder" | "rewrite" => "fault-link",
        _ => "fault-other",
    }
}

/// The bands as SVG rectangles spanning `top..top+height`, each with a hover title.
pub fn shade_svg(bands: &[Band], x: &LinearScale, top: f64, height: f64) -> String {
    let mut svg = String::from(r#"<g class="faults">"#);
    for band in bands {
        let x0 = x.map_clamped(band.start_ms);
        let x1 = x.map_clamped(band.end_ms);
        let _ = write!(
            svg,
            r#"<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{} ({}s – {}s)</title></rect>"#,
            band.class,
            num(x0),
            num(top),
            num((x1 - x0).max(1.0)),
            num(height),
            escape(&band.label),
            num(band.start_ms / 1000.0),
            num(band.end_ms / 1000.0)
        );
    }
    svg.push_str("</g>");
    svg
}

/// A moment drawn as a vertical line: a new view (as the first replica to enter it saw it)
/// or the final heal, on the history's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub at_ms: f64,
    /// Short text above the line: `v3`, `heal`.
    pub label: String,
    pub title: String,
    /// `view-change` or `heal`.
    pub class: &'static str,
}

impl Mark {
    pub fn new_view(at_ms: f64, view: u64, primary: u32) -> Mark {
        Mark {
            at_ms,
            label: format!("v{view}"),
            title: format!("view {view} (primary {primary})"),
            class: "view-change",
        }
    }

    pub fn heal(at_ms: f64) -> Mark {
        Mark {
            at_ms,
            label: "heal".into(),
            title: "every fault healed".into(),
            class: "heal",
        }
    }
}

/// Vertical lines with their label on top; marks outside the plot are left out.
pub fn marks_svg(marks: &[Mark], x: &LinearScale, top: f64, bottom: f64) -> String {
    let mut svg = String::from(r#"<g class="marks">"#);
    for mark in marks {
        let (r0, r1) = x.range();
        let px = x.map(mark.at_ms);
        if px < r0 || px > r1 {
            continue;
        }
        let _ = write!(
            svg,
            r#"<g class="{}"><line x1="{px}" y1="{}" x2="{px}" y2="{}"><title>{} at {}s</title></line><text x="{px}" y="{}" text-anchor="middle">{}</text></g>"#,
            mark.class,
            num(top),
            num(bottom),
            escape(&mark.title),
            num(mark.at_ms / 1000.0),
            num(top - 3.0),
            escape(&mark.label),
            px = num(px)
        );
    }
    svg.push_str("</g>");
    svg
}

/// The legend for the fault colours in use, and for view-change marks when there are any.
pub fn legend_html(bands: &[Band], marks: &[Mark]) -> String {
    let mut classes: Vec<(&'static str, &'static str)> = Vec::new();
    for band in bands {
        let name = match band.class {
            "fault-partition" => "partition",
            "fault-crash" => "crash / restart",
            "fault-pause" => "pause",
            "fault-link" => "link fault",
            _ => "other fault",
        };
        if !classes.iter().any(|(c, _)| *c == band.class) {
            classes.push((band.class, name));
        }
    }
    let mut html = String::from(r#"<span class="legend">"#);
    for (class, name) in classes {
        let _ = write!(
            html,
            r#"<span><svg width="14" height="10"><rect class="{class}" width="14" height="10"/></svg> {name}</span>"#
        );
    }
    for (class, name) in [("view-change", "new view"), ("heal", "heal")] {
        if marks.iter().any(|m| m.class == class) {
            let _ = write!(
                html,
                r#"<span><svg width="14" height="10" class="{class}"><line x1="7" y1="0" x2="7" y2="10"/></svg> {name}</span>"#
            );
        }
    }
    html.push_str("</span>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: f64, end: Option<f64>, kind: &str) -> FaultWindow {
        FaultWindow {
            start_ms: start,
            end_ms: end,
            kind: kind.into(),
            label: format!("{kind} at {start}"),
        }
    }

    #[test]
    fn open_ended_fault_is_shaded_until_the_end_of_the_run() {
        let shaded = bands(&[window(2000.0, None, "kill")], 9000.0);
        assert_eq!(shaded.len(), 1);
        assert_eq!((shaded[0].start_ms, shaded[0].end_ms), (2000.0, 9000.0));
        assert_eq!(shaded[0].class, "fault-crash");
    }

    #[test]
    fn faults_are_clipped_to_the_run_and_those_outside_it_dropped() {
        let shaded = bands(
            &[
                window(-500.0, Some(1000.0), "partition"),
                window(8000.0, Some(12_000.0), "loss"),
                window(9500.0, Some(9900.0), "pause"),
                window(3000.0, Some(3000.0), "pause"),
            ],
            9000.0,
        );
        let spans: Vec<(f64, f64)> = shaded.iter().map(|b| (b.start_ms, b.end_ms)).collect();
        assert_eq!(spans, vec![(0.0, 1000.0), (8000.0, 9000.0)]);
        assert_eq!(shaded[1].class, "fault-link");
    }

    #[test]
    fn shading_rectangles_sit_where_the_scale_puts_their_times() {
        let scale = LinearScale::new((0.0, 10_000.0), (100.0, 1100.0));
        let svg = shade_svg(
            &bands(&[window(1000.0, Some(3000.0), "partition")], 10_000.0),
            &scale,
            5.0,
            50.0,
        );
        assert!(
            svg.contains(r#"x="200" y="5" width="200" height="50""#),
            "{svg}"
        );
    }

    #[test]
    fn fault_labels_are_escaped_in_titles() {
        let scale = LinearScale::new((0.0, 10.0), (0.0, 10.0));
        let mut w = window(1.0, Some(2.0), "partition");
        w.label = "<b>evil</b>".into();
        let svg = shade_svg(&bands(&[w], 10.0), &scale, 0.0, 1.0);
        assert!(svg.contains("&lt;b&gt;evil&lt;/b&gt;") && !svg.contains("<b>"));
    }

    #[test]
    fn view_marks_outside_the_plot_are_not_drawn() {
        let scale = LinearScale::new((0.0, 10_000.0), (0.0, 1000.0));
        let marks = [
            Mark::new_view(4000.0, 1, 1),
            Mark::new_view(20_000.0, 2, 2),
            Mark::heal(9000.0),
        ];
        let svg = marks_svg(&marks, &scale, 10.0, 100.0);
        assert!(svg.contains(">v1<") && !svg.contains(">v2<"));
        assert!(svg.contains(r#"<g class="heal"><line x1="900""#), "{svg}");
    }
}
