//! The run over time as an SVG: committed TPS per second above, p50 latency per second
//! below, the warm-up shaded and the end of sending (and a crash, if any) marked.

use std::fmt::Write as _;

use super::report::PerSecond;

const WIDTH: f64 = 900.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const GAP: f64 = 60.0;

/// Marks along the time axis.
pub struct Marks {
    pub warmup_s: f64,
    pub end_s: f64,
    pub fault_s: Option<f64>,
}

/// A round step giving about `count` ticks up to `max`.
pub(crate) fn step(max: f64, count: f64) -> f64 {
    let raw = (max / count).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Starts an SVG document of `width` by `height` on white, with `title` at `left`.
pub(crate) fn open(svg: &mut String, width: f64, height: f64, left: f64, title: &str) {
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">"##
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="22" font-size="15">{}</text>"##,
        escape(title)
    );
}

/// Horizontal grid lines from `left` to `right`, every `step` up to `max`, each with its
/// value left of the axis; `y` maps a value to its height.
pub(crate) fn y_grid(
    svg: &mut String,
    max: f64,
    step: f64,
    y: &dyn Fn(f64) -> f64,
    left: f64,
    right: f64,
) {
    let mut v = 0.0;
    while v <= max + 1e-9 {
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{0:.1}" x2="{right:.1}" y2="{0:.1}" stroke="#dddddd"/><text x="{1:.1}" y="{2:.1}" text-anchor="end" font-size="11">{v}</text>"##,
            y(v),
            left - 6.0,
            y(v) + 4.0
        );
        v += step;
    }
}

/// Ticks under the axis at height `base`, every `step` up to `max`, with their values;
/// `x` maps a value to its position.
pub(crate) fn x_ticks(svg: &mut String, max: f64, step: f64, x: &dyn Fn(f64) -> f64, base: f64) {
    let mut v = 0.0;
    while v <= max + 1e-9 {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{base:.1}" x2="{0:.1}" y2="{1:.1}" stroke="#999999"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle" font-size="11">{v}</text>"##,
            x(v),
            base + 4.0,
            base + 16.0
        );
        v += step;
    }
}

struct Panel<'a> {
    top: f64,
    title: &'a str,
    unit: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

fn panel(svg: &mut String, p: &Panel, x_max: f64, marks: &Marks) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let y_top = p
        .points
        .iter()
        .map(|(_, y)| *y)
        .fold(0.0, f64::max)
        .max(1.0);
    let y_step = step(y_top, 5.0);
    let y_max = (y_top / y_step).ceil() * y_step;
    let x = |t: f64| LEFT + t / x_max * plot_w;
    let y = |v: f64| p.top + PANEL - v / y_max * PANEL;

    let _ = writeln!(
        svg,
        r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{PANEL}" fill="#eeeeee"/>"##,
        x(0.0),
        p.top,
        x(marks.warmup_s.min(x_max)) - x(0.0)
    );
    y_grid(svg, y_max, y_step, &y, LEFT, WIDTH - RIGHT);
    x_ticks(svg, x_max, step(x_max, 10.0), &x, p.top + PANEL);
    let mut vertical = |at: f64, label: &str, color: &str| {
        if at <= x_max {
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="{color}" stroke-dasharray="4 3"/><text x="{3:.1}" y="{4:.1}" font-size="10" fill="{color}">{label}</text>"##,
                x(at),
                p.top,
                p.top + PANEL,
                x(at) + 3.0,
                p.top + 10.0
            );
        }
    };
    vertical(marks.end_s, "sending ends", "#555555");
    if let Some(f) = marks.fault_s {
        vertical(f, "crash", "#cc0000");
    }
    let path: Vec<String> = p
        .points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"##,
        path.join(" "),
        p.color
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{:.1}" width="{plot_w:.1}" height="{PANEL}" fill="none" stroke="#333333"/><text x="{LEFT}" y="{:.1}" font-size="13" font-weight="bold">{} ({})</text>"##,
        p.top,
        p.top - 8.0,
        escape(p.title),
        escape(p.unit)
    );
}

/// The SVG document.
pub fn svg(title: &str, seconds: &[PerSecond], marks: &Marks) -> String {
    let x_max = seconds
        .iter()
        .map(|s| s.t as f64 + 1.0)
        .fold(marks.end_s, f64::max)
        .max(1.0);
    let height = TOP + 2.0 * PANEL + GAP + 50.0;
    let mut svg = String::new();
    open(&mut svg, WIDTH, height, LEFT, title);
    let tps = Panel {
        top: TOP,
        title: "committed per second",
        unit: "tx/s",
        color: "#1f77b4",
        points: seconds
            .iter()
            .map(|s| (s.t as f64 + 0.5, s.committed as f64))
            .collect(),
    };
    panel(&mut svg, &tps, x_max, marks);
    let latency = Panel {
        top: TOP + PANEL + GAP,
        title: "p50 latency of the transactions committed in each second",
        unit: "ms",
        color: "#d62728",
        points: seconds
            .iter()
            .filter_map(|s| Some((s.t as f64 + 0.5, s.p50_ms?)))
            .collect(),
    };
    panel(&mut svg, &latency, x_max, marks);
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">seconds since the start (warm-up shaded)</text>"##,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        height - 12.0
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(step(100.0, 5.0), 20.0);
        assert_eq!(step(23_000.0, 5.0), 5_000.0);
        assert_eq!(step(7.0, 10.0), 1.0);
    }

    #[test]
    fn the_svg_holds_both_series() {
        let seconds: Vec<PerSecond> = (0..10)
            .map(|t| PerSecond {
                t,
                committed: 1000 * t,
                p50_ms: Some(100.0 + t as f64),
                p99_ms: Some(200.0 + t as f64),
            })
            .collect();
        let doc = svg(
            "a <test>",
            &seconds,
            &Marks {
                warmup_s: 2.0,
                end_s: 8.0,
                fault_s: Some(5.0),
            },
        );
        assert!(doc.starts_with("<svg") && doc.trim_end().ends_with("</svg>"));
        assert_eq!(doc.matches("<polyline").count(), 2);
        assert!(doc.contains("a &lt;test&gt;"));
        assert!(doc.contains("crash"));
    }
}
