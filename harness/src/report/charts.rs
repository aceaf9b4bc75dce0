//! Latency and throughput over time, aggregated into time buckets so a run of any length
//! draws a few hundred points, with the same fault bands and view marks as the timeline.

use super::html::num;
use super::ops::{OpOutcome, TimedOp};
use super::scale::{LinearScale, bottom_axis, left_axis, nice_step, seconds_label};
use super::shading::{Band, Mark, marks_svg, shade_svg};
use super::timeline::{WIDTH, time_scale};
use std::fmt::Write as _;

const TARGET_BUCKETS: usize = 150;
const TOP: f64 = 14.0;
const PLOT_HEIGHT: f64 = 180.0;
const HEIGHT: f64 = TOP + PLOT_HEIGHT + 28.0;

/// Operations completed in one time bucket, by outcome, and the latencies of the `ok` ones.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bucket {
    pub start_ms: f64,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// Sorted.
    pub ok_latencies_ms: Vec<f64>,
}

impl Bucket {
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let n = self.ok_latencies_ms.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Some(self.ok_latencies_ms[rank.clamp(1, n) - 1])
    }
}

/// A bucket width at a 1-2-5 step giving about `TARGET_BUCKETS` buckets, never under 100 ms.
pub fn bucket_width_ms(run_end_ms: f64) -> f64 {
    nice_step(run_end_ms, TARGET_BUCKETS).max(100.0)
}

/// Buckets operations by completion time; unfinished operations count nowhere.
pub fn buckets(ops: &[TimedOp], run_end_ms: f64, width_ms: f64) -> Vec<Bucket> {
    let count = ((run_end_ms / width_ms).ceil() as usize).max(1);
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start_ms: i as f64 * width_ms,
            ..Bucket::default()
        })
        .collect();
    for op in ops {
        let Some(end) = op.end_ms else { continue };
        let index = ((end.max(0.0) / width_ms) as usize).min(count - 1);
        let bucket = &mut buckets[index];
        match op.outcome {
            OpOutcome::Ok => {
                bucket.ok += 1;
                bucket.ok_latencies_ms.push(end - op.start_ms);
            }
            OpOutcome::Fail => bucket.fail += 1,
            OpOutcome::Info => bucket.info += 1,
            OpOutcome::Open => {}
        }
    }
    for bucket in &mut buckets {
        bucket.ok_latencies_ms.sort_by(f64::total_cmp);
    }
    buckets
}

struct Series<'a> {
    class: &'a str,
    name: &'a str,
    /// (bucket start, value); `None` leaves a gap.
    points: Vec<(f64, Option<f64>)>,
}

fn polyline(series: &Series, x: &LinearScale, y: &LinearScale, width_ms: f64) -> String {
    let mut svg = String::new();
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, svg: &mut String| {
        if !run.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline class="{}" points="{}"><title>{}</title></polyline>"#,
                series.class,
                run.join(" "),
                series.name
            );
            run.clear();
        }
    };
    for &(start, value) in &series.points {
        match value {
            Some(v) => run.push(format!(
                "{},{}",
                num(x.map(start + width_ms / 2.0)),
                num(y.map(v))
            )),
            None => flush(&mut run, &mut svg),
        }
    }
    flush(&mut run, &mut svg);
    svg
}

fn chart(
    series: &[Series],
    run_end_ms: f64,
    width_ms: f64,
    y_label: fn(f64) -> String,
    bands: &[Band],
    marks: &[Mark],
    aria: &str,
) -> String {
    let x = time_scale(run_end_ms);
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y = LinearScale::new((0.0, (max * 1.1).max(1.0)), (TOP + PLOT_HEIGHT, TOP));
    let (left, right) = x.range();
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{aria}">"#,
        num(WIDTH),
        num(HEIGHT)
    );
    svg.push_str(&shade_svg(bands, &x, TOP, PLOT_HEIGHT));
    svg.push_str(&bottom_axis(&x, TOP + PLOT_HEIGHT, TOP, seconds_label));
    svg.push_str(&left_axis(&y, left, right, y_label));
    for s in series {
        svg.push_str(&polyline(s, &x, &y, width_ms));
    }
    svg.push_str(&marks_svg(marks, &x, TOP, TOP + PLOT_HEIGHT));
    svg.push_str("</svg>");
    svg
}

fn ms_label(v: f64) -> String {
    format!("{} ms", num(v))
}

fn rate_label(v: f64) -> String {
    format!("{}/s", num(v))
}

/// p50, p99 and maximum latency of successful operations per bucket.
pub fn latency_svg(
    buckets: &[Bucket],
    run_end_ms: f64,
    width_ms: f64,
    bands: &[Band],
    marks: &[Mark],
) -> String {
    let series = [
        ("lat-max", "max", 100.0),
        ("lat-p99", "p99", 99.0),
        ("lat-p50", "p50", 50.0),
    ]
    .map(|(class, name, p)| Series {
        class,
        name,
        points: buckets
            .iter()
            .map(|b| {
                let value = if p >= 100.0 {
                    b.ok_latencies_ms.last().copied()
                } else {
                    b.percentile(p)
                };
                (b.start_ms, value)
            })
            .collect(),
    });
    chart(
        &series,
        run_end_ms,
        width_ms,
        ms_label,
        bands,
        marks,
        "latency over time",
    )
}

/// Completions per second per bucket, by outcome.
pub fn throughput_svg(
    buckets: &[Bucket],
    run_end_ms: f64,
    width_ms: f64,
    bands: &[Band],
    marks: &[Mark],
) -> String {
    let per_second = 1000.0 / width_ms;
    let series = [
        ("tp-ok", "ok", 0usize),
        ("tp-fail", "fail", 1),
        ("tp-info", "info", 2),
    ]
    .map(|(class, name, which)| Series {
        class,
        name,
        points: buckets
            .iter()
            .map(|b| {
                let count = [b.ok, b.fail, b.info][which];
                (b.start_ms, Some(count as f64 * per_second))
            })
            .collect(),
    });
    chart(
        &series,
        run_end_ms,
        width_ms,
        rate_label,
        bands,
        marks,
        "throughput over time",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(start_ms: f64, end_ms: f64, outcome: OpOutcome) -> TimedOp {
        TimedOp {
            process: 0,
            start_ms,
            end_ms: Some(end_ms),
            outcome,
            label: String::new(),
        }
    }

    #[test]
    fn operations_land_in_the_bucket_of_their_completion() {
        let ops = vec![
            done(0.0, 50.0, OpOutcome::Ok),
            done(90.0, 150.0, OpOutcome::Ok),
            done(100.0, 180.0, OpOutcome::Fail),
            done(120.0, 260.0, OpOutcome::Info),
            TimedOp {
                end_ms: None,
                outcome: OpOutcome::Open,
                ..done(10.0, 0.0, OpOutcome::Open)
            },
        ];
        let b = buckets(&ops, 300.0, 100.0);
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].ok, b[1].ok, b[1].fail, b[2].info), (1, 1, 1, 1));
        assert_eq!(b[1].ok_latencies_ms, vec![60.0]);
    }

    #[test]
    fn completions_after_the_end_go_into_the_last_bucket() {
        let b = buckets(&[done(0.0, 999.0, OpOutcome::Ok)], 300.0, 100.0);
        assert_eq!(b[2].ok, 1);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let bucket = Bucket {
            ok_latencies_ms: (1..=100).map(f64::from).collect(),
            ..Bucket::default()
        };
        assert_eq!(bucket.percentile(50.0), Some(50.0));
        assert_eq!(bucket.percentile(99.0), Some(99.0));
        assert_eq!(Bucket::default().percentile(50.0), None);
    }

    #[test]
    fn a_thirty_minute_run_is_drawn_with_a_bounded_number_of_buckets() {
        let width = bucket_width_ms(30.0 * 60_000.0);
        let count = (30.0 * 60_000.0 / width).ceil() as usize;
        assert!((50..=400).contains(&count), "{count} buckets of {width} ms");
        assert_eq!(bucket_width_ms(2000.0), 100.0, "never finer than 100 ms");
    }

    #[test]
    fn empty_buckets_leave_gaps_in_the_latency_lines() {
        let ops = vec![
            done(0.0, 50.0, OpOutcome::Ok),
            done(250.0, 280.0, OpOutcome::Ok),
        ];
        let b = buckets(&ops, 300.0, 100.0);
        let svg = latency_svg(&b, 300.0, 100.0, &[], &[]);
        assert_eq!(svg.matches(r#"<polyline class="lat-p50""#).count(), 2);
    }
}
