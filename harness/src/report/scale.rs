//! Linear scales, "nice" tick positions and SVG axes shared by the timeline and the charts.

use super::html::{escape, num};
use std::fmt::Write as _;

/// Maps a data interval onto a pixel interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearScale {
    domain: (f64, f64),
    range: (f64, f64),
}

impl LinearScale {
    /// An empty or inverted-by-accident domain is widened, so `map` never divides by zero.
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> LinearScale {
        let (mut lo, mut hi) = domain;
        if !lo.is_finite() || !hi.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        LinearScale {
            domain: (lo, hi),
            range,
        }
    }

    pub fn range(&self) -> (f64, f64) {
        self.range
    }

    pub fn map(&self, x: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        r0 + (x - d0) / (d1 - d0) * (r1 - r0)
    }

    /// `map`, clamped to the range: for bars that start before or end after the visible part.
    pub fn map_clamped(&self, x: f64) -> f64 {
        let (r0, r1) = self.range;
        self.map(x).clamp(r0.min(r1), r0.max(r1))
    }

    /// Tick values at a 1-2-5 step, about `target` of them, inside the domain.
    pub fn ticks(&self, target: usize) -> Vec<f64> {
        let (lo, hi) = self.domain;
        let step = nice_step(hi - lo, target);
        let first = (lo / step).ceil() as i64;
        let last = (hi / step + 1e-9).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    }
}

/// The 1, 2 or 5 times a power of ten that splits `span` into about `target` parts.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let target = target.max(1) as f64;
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target;
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Tick label for a time in milliseconds since the run started.
pub fn seconds_label(ms: f64) -> String {
    format!("{}s", num(ms / 1000.0))
}

/// A horizontal axis at `y` with tick marks and labels, plus faint vertical grid lines up to
/// `grid_top`.
pub fn bottom_axis(scale: &LinearScale, y: f64, grid_top: f64, label: fn(f64) -> String) -> String {
    let (r0, r1) = scale.range();
    let mut svg = format!(
        r#"<g class="axis"><line x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
        num(r0),
        num(y),
        num(r1),
        num(y)
    );
    for tick in scale.ticks(8) {
        let x = num(scale.map(tick));
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{x}" y1="{}" x2="{x}" y2="{}"/><line x1="{x}" y1="{}" x2="{x}" y2="{}"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            num(grid_top),
            num(y),
            num(y),
            num(y + 4.0),
            num(y + 16.0),
            escape(&label(tick))
        );
    }
    svg.push_str("</g>");
    svg
}

/// A vertical axis at `x` with labelled ticks and horizontal grid lines across to `grid_right`.
pub fn left_axis(scale: &LinearScale, x: f64, grid_right: f64, label: fn(f64) -> String) -> String {
    let (r0, r1) = scale.range();
    let mut svg = format!(
        r#"<g class="axis"><line x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
        num(x),
        num(r0),
        num(x),
        num(r1)
    );
    for tick in scale.ticks(5) {
        let y = num(scale.map(tick));
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{}" y1="{y}" x2="{}" y2="{y}"/><text x="{}" y="{y}" dy="4" text-anchor="end">{}</text>"#,
            num(x),
            num(grid_right),
            num(x - 5.0),
            escape(&label(tick))
        );
    }
    svg.push_str("</g>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_maps_domain_ends_onto_range_ends() {
        let scale = LinearScale::new((1000.0, 3000.0), (50.0, 450.0));
        assert_eq!(scale.map(1000.0), 50.0);
        assert_eq!(scale.map(3000.0), 450.0);
        assert_eq!(scale.map(2000.0), 250.0);
    }

    #[test]
    fn inverted_range_maps_larger_values_higher_on_screen() {
        let scale = LinearScale::new((0.0, 100.0), (200.0, 0.0));
        assert!(scale.map(80.0) < scale.map(20.0));
    }

    #[test]
    fn empty_domain_is_widened_instead_of_dividing_by_zero() {
        let scale = LinearScale::new((5.0, 5.0), (0.0, 100.0));
        assert!(scale.map(5.0).is_finite());
        assert_eq!(scale.map(5.0), 0.0);
    }

    #[test]
    fn clamped_map_keeps_outside_values_on_the_edge() {
        let scale = LinearScale::new((0.0, 10.0), (0.0, 100.0));
        assert_eq!(scale.map_clamped(-5.0), 0.0);
        assert_eq!(scale.map_clamped(25.0), 100.0);
    }

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(30_000.0, 8), 5000.0);
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(7.0, 7), 1.0);
        assert_eq!(nice_step(0.0, 5), 1.0);
    }

    #[test]
    fn ticks_stay_inside_the_domain_at_a_regular_step() {
        let scale = LinearScale::new((130.0, 29_870.0), (0.0, 1000.0));
        let ticks = scale.ticks(8);
        assert_eq!(ticks.first(), Some(&5000.0));
        assert_eq!(ticks.last(), Some(&25_000.0));
        assert!(
            ticks
                .windows(2)
                .all(|w| (w[1] - w[0] - 5000.0).abs() < 1e-6)
        );
    }

    #[test]
    fn axis_labels_every_tick() {
        let scale = LinearScale::new((0.0, 10_000.0), (0.0, 500.0));
        let svg = bottom_axis(&scale, 100.0, 0.0, seconds_label);
        for label in ["0s", "2s", "4s", "6s", "8s", "10s"] {
            assert!(
                svg.contains(&format!(">{label}</text>")),
                "missing {label}: {svg}"
            );
        }
    }
}
