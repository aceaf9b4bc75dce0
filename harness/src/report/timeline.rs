//! The timeline: one lane per client, one bar per operation from invocation to completion,
//! coloured by outcome, over the fault bands and view-change marks.

use super::html::{escape, num};
use super::ops::{OpOutcome, TimedOp};
use super::scale::{LinearScale, bottom_axis, seconds_label};
use super::shading::{Band, Mark, marks_svg, shade_svg};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Above this many operations the timeline draws a sample (and says so).
pub const MAX_BARS: usize = 3000;

pub const WIDTH: f64 = 1200.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 22.0;
const LANE_HEIGHT: f64 = 18.0;
const BAR_HEIGHT: f64 = 12.0;
const AXIS_SPACE: f64 = 28.0;

/// Lane index of each client: clients sorted by id, one lane each.
pub fn lanes(ops: &[TimedOp]) -> BTreeMap<u32, usize> {
    let mut clients: Vec<u32> = ops.iter().map(|op| op.process).collect();
    clients.sort_unstable();
    clients.dedup();
    clients
        .into_iter()
        .enumerate()
        .map(|(lane, client)| (client, lane))
        .collect()
}

/// Which operations get a bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub indices: Vec<usize>,
    /// `Some(k)`: only every k-th successful operation is drawn (all others are).
    pub ok_stride: Option<usize>,
}

/// Everything when it fits under `limit`; otherwise every failed, unknown and unfinished
/// operation (they are what a reader looks for, up to `limit`) and an even stride of the
/// successful ones to fill the rest. Deterministic: the same run always draws the same bars.
pub fn select_for_drawing(ops: &[TimedOp], limit: usize) -> Selection {
    if ops.len() <= limit {
        return Selection {
            indices: (0..ops.len()).collect(),
            ok_stride: None,
        };
    }
    let mut unusual: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].outcome != OpOutcome::Ok)
        .collect();
    unusual.truncate(limit);
    let ok_count = ops.len() - unusual.len();
    let room = limit - unusual.len();
    let stride = if room == 0 {
        usize::MAX
    } else {
        ok_count.div_ceil(room).max(1)
    };
    let mut indices = unusual;
    let mut ok_seen = 0usize;
    for (i, op) in ops.iter().enumerate() {
        if op.outcome == OpOutcome::Ok {
            if ok_seen.is_multiple_of(stride) {
                indices.push(i);
            }
            ok_seen += 1;
        }
    }
    indices.sort_unstable();
    Selection {
        indices,
        ok_stride: Some(stride),
    }
}

/// The time axis every picture of the page shares: from 0 to the end of the run.
pub fn time_scale(run_end_ms: f64) -> LinearScale {
    LinearScale::new((0.0, run_end_ms.max(1.0)), (LEFT, WIDTH - RIGHT))
}

pub struct TimelineSvg {
    pub svg: String,
    pub drawn: usize,
    pub ok_stride: Option<usize>,
}

pub fn timeline_svg(
    ops: &[TimedOp],
    run_end_ms: f64,
    bands: &[Band],
    marks: &[Mark],
) -> TimelineSvg {
    let lane_of = lanes(ops);
    let lane_count = lane_of.len().max(1);
    let plot_bottom = TOP + lane_count as f64 * LANE_HEIGHT;
    let height = plot_bottom + AXIS_SPACE;
    let x = time_scale(run_end_ms);
    let selection = select_for_drawing(ops, MAX_BARS);

    let mut svg = format!(
        r#"<svg class="timeline" viewBox="0 0 {} {}" width="100%" role="img" aria-label="timeline of client operations">"#,
        num(WIDTH),
        num(height)
    );
    svg.push_str(&shade_svg(bands, &x, TOP, plot_bottom - TOP));
    svg.push_str(&bottom_axis(&x, plot_bottom, TOP, seconds_label));
    svg.push_str(r#"<g class="lanes">"#);
    for (client, lane) in &lane_of {
        let y = TOP + *lane as f64 * LANE_HEIGHT;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">client {client}</text>"#,
            num(LEFT - 6.0),
            num(y + LANE_HEIGHT / 2.0 + 4.0)
        );
    }
    svg.push_str("</g><g class=\"ops\">");
    for &i in &selection.indices {
        let op = &ops[i];
        let Some(lane) = lane_of.get(&op.process) else {
            continue;
        };
        let y = TOP + *lane as f64 * LANE_HEIGHT + (LANE_HEIGHT - BAR_HEIGHT) / 2.0;
        let end = op.end_ms.unwrap_or(run_end_ms);
        let x0 = x.map_clamped(op.start_ms);
        let x1 = x.map_clamped(end);
        let latency = op
            .latency_ms()
            .map_or_else(|| "unfinished".to_string(), |l| format!("{} ms", num(l)));
        let _ = write!(
            svg,
            r#"<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>client {}: {} [{}s, {}]</title></rect>"#,
            op.outcome.class(),
            num(x0),
            num(y),
            num((x1 - x0).max(1.5)),
            num(BAR_HEIGHT),
            op.process,
            escape(&op.label),
            num(op.start_ms / 1000.0),
            latency
        );
    }
    svg.push_str("</g>");
    svg.push_str(&marks_svg(marks, &x, TOP, plot_bottom));
    svg.push_str("</svg>");
    TimelineSvg {
        svg,
        drawn: selection.indices.len(),
        ok_stride: selection.ok_stride,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(process: u32, start_ms: f64, outcome: OpOutcome) -> TimedOp {
        TimedOp {
            process,
            start_ms,
            end_ms: (outcome != OpOutcome::Open).then_some(start_ms + 5.0),
            outcome,
            label: format!("op at {start_ms}"),
        }
    }

    #[test]
    fn each_client_gets_one_lane_in_id_order() {
        let ops = vec![
            op(7, 0.0, OpOutcome::Ok),
            op(2, 1.0, OpOutcome::Ok),
            op(7, 2.0, OpOutcome::Fail),
            op(4, 3.0, OpOutcome::Info),
        ];
        let lanes = lanes(&ops);
        assert_eq!(
            lanes.into_iter().collect::<Vec<_>>(),
            vec![(2, 0), (4, 1), (7, 2)]
        );
    }

    #[test]
    fn small_histories_are_drawn_whole() {
        let ops: Vec<TimedOp> = (0..10).map(|i| op(0, i as f64, OpOutcome::Ok)).collect();
        let selection = select_for_drawing(&ops, 100);
        assert_eq!(selection.indices.len(), 10);
        assert_eq!(selection.ok_stride, None);
    }

    #[test]
    fn sampling_keeps_every_unusual_operation_and_stays_under_the_limit() {
        let ops: Vec<TimedOp> = (0..10_000)
            .map(|i| {
                let outcome = match i % 500 {
                    0 => OpOutcome::Info,
                    1 => OpOutcome::Fail,
                    _ => OpOutcome::Ok,
                };
                op(i % 4, i as f64, outcome)
            })
            .collect();
        let selection = select_for_drawing(&ops, 1000);
        assert!(
            selection.indices.len() <= 1000,
            "{}",
            selection.indices.len()
        );
        assert!(
            selection.indices.len() >= 900,
            "the limit is used, not wasted"
        );
        let unusual = ops.iter().filter(|o| o.outcome != OpOutcome::Ok).count();
        let kept_unusual = selection
            .indices
            .iter()
            .filter(|&&i| ops[i].outcome != OpOutcome::Ok)
            .count();
        assert_eq!(kept_unusual, unusual);
        assert!(selection.ok_stride.is_some_and(|s| s > 1));
        assert!(selection.indices.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn bars_are_coloured_by_outcome_and_unfinished_ones_run_to_the_end() {
        let ops = vec![op(0, 1000.0, OpOutcome::Ok), op(1, 2000.0, OpOutcome::Open)];
        let drawn = timeline_svg(&ops, 10_000.0, &[], &[]);
        assert_eq!(drawn.drawn, 2);
        assert!(drawn.svg.contains(r#"class="op-ok""#));
        let open_bar = drawn
            .svg
            .split("<rect ")
            .find(|r| r.contains("op-open"))
            .expect("open bar");
        // Starts at 2 s and reaches the right edge of the plot (x + width = WIDTH - RIGHT).
        let x0 = time_scale(10_000.0).map(2000.0);
        let width = WIDTH - RIGHT - x0;
        assert!(
            open_bar.contains(&format!(r#"width="{}""#, num(width))),
            "{open_bar}"
        );
    }
}
