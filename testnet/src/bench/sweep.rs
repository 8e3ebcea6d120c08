//! `ordo bench --sweep`: one open-loop run per offered rate, and the curve they make.
//!
//! A closed loop never offers more than the system absorbs, so it hides both a system's
//! latency below capacity and what happens beyond it. The sweep offers fixed rates in
//! turn and reports, for each, what was committed and at what latency: committed rate
//! against p50 and p99, the throughput-latency figure of the consensus literature. Each
//! point is a whole [`BenchReport`]; this module only summarises and draws them.

use std::fmt::Write as _;

use serde::Serialize;

use super::plot::{open, step, x_ticks, y_grid};
use super::report::BenchReport;

/// Most rates one sweep runs: each is a whole run with its own warm-up and drain.
pub const MAX_RATES: usize = 32;

/// One offered rate's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepPoint {
    pub offered_tps: f64,
    pub committed_tps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Summed over validators; `None` when no validator exported the counter.
    pub view_change_timeouts: Option<u64>,
    pub rejected: u64,
    pub expired: u64,
    /// Refusals with `busy` that the sender offered again later.
    pub busy_retries: u64,
}

impl SweepPoint {
    pub fn from_report(offered_tps: f64, r: &BenchReport) -> Self {
        Self {
            offered_tps,
            committed_tps: r.committed_tps,
            p50_ms: r.latency_ms.p50,
            p99_ms: r.latency_ms.p99,
            view_change_timeouts: r.stages.view_change_timeouts,
            rejected: r.rejected,
            expired: r.expired,
            busy_retries: r.busy_retries,
        }
    }
}

/// Parses `RATE,RATE,...` (transactions per second, each above zero, at most
/// [`MAX_RATES`]); they run in the order given.
pub fn parse_rates(text: &str) -> Result<Vec<f64>, String> {
    let mut rates = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let rate: f64 = part
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{part:?} is not a rate in transactions per second"))?;
        if !rate.is_finite() || rate <= 0.0 {
            return Err(format!("a rate must be above 0, not {part}"));
        }
        rates.push(rate);
    }
    if rates.len() > MAX_RATES {
        return Err(format!(
            "{} rates: at most {MAX_RATES} (each is a whole run)",
            rates.len()
        ));
    }
    Ok(rates)
}

/// The points as a table, one line per offered rate.
pub fn table(points: &[SweepPoint]) -> String {
    let mut out = String::from(
        "  offered/s   committed/s    p50 ms    p99 ms   timeouts   rejected    expired   busy retries\n",
    );
    for p in points {
        let timeouts = p
            .view_change_timeouts
            .map_or_else(|| "-".to_string(), |t| t.to_string());
        let _ = writeln!(
            out,
            "{:>11.0} {:>13.0} {:>9.0} {:>9.0} {:>10} {:>10} {:>10} {:>14}",
            p.offered_tps,
            p.committed_tps,
            p.p50_ms,
            p.p99_ms,
            timeouts,
            p.rejected,
            p.expired,
            p.busy_retries
        );
    }
    out
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// The curve as an SVG: committed rate across, latency (p50 and p99) up, each point
/// labelled with the rate offered.
pub fn svg(title: &str, points: &[SweepPoint]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_top = points
        .iter()
        .map(|p| p.committed_tps)
        .fold(0.0, f64::max)
        .max(1.0);
    let y_top = points.iter().map(|p| p.p99_ms).fold(0.0, f64::max).max(1.0);
    let (x_step, y_step) = (step(x_top, 8.0), step(y_top, 6.0));
    let (x_max, y_max) = (
        (x_top / x_step).ceil() * x_step,
        (y_top / y_step).ceil() * y_step,
    );
    let x = |v: f64| LEFT + v / x_max * plot_w;
    let y = |v: f64| TOP + plot_h - v / y_max * plot_h;

    let mut svg = String::new();
    open(&mut svg, WIDTH, HEIGHT, LEFT, title);
    y_grid(&mut svg, y_max, y_step, &y, LEFT, WIDTH - RIGHT);
    x_ticks(&mut svg, x_max, x_step, &x, TOP + plot_h);
    for (name, color, pick) in [
        (
            "p50",
            "#1f77b4",
            (|p: &SweepPoint| p.p50_ms) as fn(&SweepPoint) -> f64,
        ),
        ("p99", "#d62728", |p: &SweepPoint| p.p99_ms),
    ] {
        let path: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.committed_tps), y(pick(p))))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"##,
            path.join(" ")
        );
        for p in points {
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{name}: offered {:.0}/s, committed {:.0}/s, {:.0} ms</title></circle>"##,
                x(p.committed_tps),
                y(pick(p)),
                p.offered_tps,
                p.committed_tps,
                pick(p)
            );
        }
        if let Some(last) = points.last() {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="{color}">{name}</text>"##,
                x(last.committed_tps) + 5.0,
                y(pick(last)) - 5.0
            );
        }
    }
    for p in points {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="9" fill="#555555" text-anchor="middle">{:.0}</text>"##,
            x(p.committed_tps),
            y(p.p99_ms) - 8.0,
            p.offered_tps
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#333333"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">committed per second (grey: offered per second)</text><text x="18" y="{:.1}" font-size="12" transform="rotate(-90 18 {:.1})" text-anchor="middle">latency, submission to execution (ms)</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(offered: f64, committed: f64, p50: f64, p99: f64) -> SweepPoint {
        SweepPoint {
            offered_tps: offered,
            committed_tps: committed,
            p50_ms: p50,
            p99_ms: p99,
            view_change_timeouts: Some(0),
            rejected: 0,
            expired: 0,
            busy_retries: 0,
        }
    }

    #[test]
    fn rates_parse_in_order_and_bad_ones_are_named() {
        assert_eq!(
            parse_rates("5000, 10_000,2.5e4").unwrap(),
            vec![5_000.0, 10_000.0, 25_000.0]
        );
        assert!(parse_rates("5000,fast").unwrap_err().contains("\"fast\""));
        assert!(parse_rates("0").unwrap_err().contains("above 0"));
        assert!(parse_rates("-3").is_err());
        assert!(parse_rates("").is_err());
        assert!(parse_rates("1,2,").is_err());
        let many = vec!["1"; MAX_RATES + 1].join(",");
        assert!(parse_rates(&many).unwrap_err().contains("at most"));
    }

    #[test]
    fn the_table_has_a_line_per_rate() {
        let mut p = point(20_000.0, 11_000.0, 14_000.0, 25_000.0);
        p.view_change_timeouts = None;
        let t = table(&[point(5_000.0, 5_010.0, 120.0, 300.0), p]);
        assert_eq!(t.lines().count(), 3);
        assert!(t.lines().nth(1).unwrap().contains("5010"));
        assert!(t.lines().nth(2).unwrap().contains(" - "));
    }

    #[test]
    fn the_svg_draws_both_percentiles_through_every_point() {
        let points = [
            point(5_000.0, 5_000.0, 100.0, 200.0),
            point(10_000.0, 9_900.0, 150.0, 400.0),
            point(20_000.0, 11_000.0, 2_000.0, 9_000.0),
        ];
        let doc = svg("a <sweep>", &points);
        assert!(doc.starts_with("<svg") && doc.trim_end().ends_with("</svg>"));
        assert_eq!(doc.matches("<polyline").count(), 2);
        assert_eq!(doc.matches("<circle").count(), 2 * points.len());
        assert!(doc.contains("a &lt;sweep&gt;"));
        assert!(doc.contains(">20000</text>"));
    }
}
