//! The HTML backtest report (product.md §11): one self-contained file with the equity curve,
//! the drawdown, results by tier, VIX policy, direction and day, and the shadow comparison when
//! a shadow set ran.
//!
//! Self-contained means it opens offline: CSS is inline, charts are inline SVG drawn by
//! `plotters` (its SVG backend writes text as `<text>` elements, so no font file is read at
//! build or run time), and nothing is loaded from a URL. Every figure is [`crate::perf`] or
//! [`crate::shadow`]'s value printed with the `perf::fmt_*` functions, so the report shows exactly what
//! the summary tables and `mia shadow-report` print. Pure: no I/O, no clock (the title is the
//! caller's), so the same trades give the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::perf::{self, EquityPoint, Performance, STATS_COLUMNS, Stats, Trade, fmt_rate};
use crate::rules::{Direction, Tier};
use crate::shadow::{Confusion, ShadowComparison};

/// What the report shows.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// Heading and page title (for example the data folder and the dates replayed).
    pub title: &'a str,
    /// Closed trades of the live set.
    pub live: &'a [Trade],
    /// Closed trades of the shadow set, when one ran.
    pub shadow: Option<&'a [Trade]>,
    /// The comparison of the two sets' decisions, when a shadow set ran
    /// ([`crate::shadow::compare`]).
    pub comparison: Option<&'a ShadowComparison>,
}

const LIVE_COLOR: RGBColor = RGBColor(31, 119, 180);
const SHADOW_COLOR: RGBColor = RGBColor(255, 127, 14);
const LOSS_COLOR: RGBColor = RGBColor(214, 39, 40);
const GAIN_COLOR: RGBColor = RGBColor(44, 160, 44);
const CHART_SIZE: (u32, u32) = (860, 300);

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .6em}th{background:#f4f4f4}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.chart svg{max-width:100%;height:auto}.note{color:#666;font-size:.9em}";

/// Renders the report as one HTML document.
pub fn render(input: &ReportInput<'_>) -> String {
    let live = Performance::from_trades(input.live);
    let shadow_perf = input.shadow.map(Performance::from_trades);
    let mut html = String::with_capacity(64 * 1024);
    let title = escape(input.title);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    summary_section(&mut html, &live, shadow_perf.as_ref());
    html.push_str("<h2>Equity curve</h2>\n");
    let mut curves = vec![("live", LIVE_COLOR, live.equity.as_slice())];
    if let Some(perf) = &shadow_perf {
        curves.push(("shadow", SHADOW_COLOR, perf.equity.as_slice()));
    }
    chart(&mut html, |area| {
        equity_chart(area, &curves[..1], "cumulative net P&L, $")
    });
    html.push_str("<h2>Drawdown</h2>\n<p class=\"note\">Dollars below the running peak of the equity curve (which starts at 0).</p>\n");
    chart(&mut html, |area| drawdown_chart(area, &live.equity));
    group_section(&mut html, "Results by tier", &tier_rows(&live.by_tier));
    group_section(&mut html, "Results by VIX policy", &vix_rows(&live));
    group_section(
        &mut html,
        "Results by direction",
        &direction_rows(&live.by_direction),
    );
    let days: Vec<(String, &Stats)> = live.by_day.iter().map(|(d, s)| (d.clone(), s)).collect();
    stats_table(&mut html, "Results by day", &days);
    if let Some(comparison) = input.comparison {
        comparison_section(&mut html, comparison);
        if curves.len() > 1 {
            html.push_str("<h3>Equity curves of both sets</h3>\n");
            chart(&mut html, |area| {
                equity_chart(area, &curves, "cumulative net P&L, $")
            });
        }
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn summary_section(html: &mut String, live: &Performance, shadow: Option<&Performance>) {
    let mut rows = vec![("live".to_owned(), &live.overall)];
    if let Some(perf) = shadow {
        rows.push(("shadow".to_owned(), &perf.overall));
    }
    stats_table(html, "Summary", &rows);
}

fn stats_table(html: &mut String, heading: &str, rows: &[(String, &Stats)]) {
    let _ = write!(html, "<h2>{}</h2>\n<table>\n<tr><th></th>", escape(heading));
    for name in STATS_COLUMNS {
        let _ = write!(html, "<th>{name}</th>");
    }
    html.push_str("</tr>\n");
    for (name, stats) in rows {
        let _ = write!(html, "<tr><th>{}</th>", escape(name));
        for cell in stats.cells() {
            let _ = write!(html, "<td class=\"n\">{}</td>", escape(&cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
}

/// A breakdown: its table, then a bar chart of the net P&L of each group.
fn group_section(html: &mut String, heading: &str, rows: &[(String, &Stats)]) {
    stats_table(html, heading, rows);
    let bars: Vec<(String, f64)> = rows.iter().map(|(n, s)| (n.clone(), s.net_pnl)).collect();
    chart(html, |area| bar_chart(area, &bars));
}

fn tier_rows(groups: &BTreeMap<Tier, Stats>) -> Vec<(String, &Stats)> {
    groups
        .iter()
        .map(|(k, s)| (k.as_str().to_owned(), s))
        .collect()
}

fn direction_rows(groups: &BTreeMap<Direction, Stats>) -> Vec<(String, &Stats)> {
    groups
        .iter()
        .map(|(k, s)| (k.as_str().to_owned(), s))
        .collect()
}

/// The VIX groups low to extreme, then `unknown`, as the JSON summary orders them.
fn vix_rows(perf: &Performance) -> Vec<(String, &Stats)> {
    let named = perf.by_vix_policy.iter().filter(|(p, _)| p.is_some());
    let unknown = perf.by_vix_policy.iter().filter(|(p, _)| p.is_none());
    named
        .chain(unknown)
        .map(|(p, s)| (perf::vix_group_name(*p).to_owned(), s))
        .collect()
}

fn comparison_section(html: &mut String, c: &ShadowComparison) {
    html.push_str("<h2>Shadow comparison</h2>\n");
    let _ = writeln!(
        html,
        "<p>{} pairs of decisions: {} compared, {} with a rule error, {} unpaired. Agreement (same direction and tier): {} of {} ({}).</p>",
        c.pairs,
        c.compared,
        c.pairs - c.compared,
        c.unpaired,
        c.agreements,
        c.compared,
        fmt_rate(c.agreement_rate)
    );
    let directions = [Direction::Long, Direction::Short, Direction::Flat];
    confusion_table(
        html,
        "Directions (rows live, columns shadow)",
        &c.direction_confusion,
        &directions,
        Direction::as_str,
    );
    confusion_table(
        html,
        "Tiers (rows live, columns shadow)",
        &c.tier_confusion,
        &Tier::ALL,
        Tier::as_str,
    );
    let score = match (&c.score.mean, &c.score.mean_abs, &c.score.largest) {
        (Some(mean), Some(abs), Some(l)) => format!(
            "mean {mean:+.2}, mean absolute {abs:.2}, largest {:+.2} at {} {} (live {:.1}, shadow {:.1})",
            l.diff, l.ts, l.instrument, l.live, l.shadow
        ),
        _ => "no pair to compare".to_owned(),
    };
    let _ = writeln!(
        html,
        "<p>Score difference (shadow − live): {}</p>",
        escape(&score)
    );
    let rows = [
        (format!("live {}", short_hash(&c.live.rules)), &c.live.stats),
        (
            format!("shadow {}", short_hash(&c.shadow.rules)),
            &c.shadow.stats,
        ),
    ];
    stats_table(html, "Hypothetical results of each set", &rows);
    let _ = writeln!(
        html,
        "<h3>First {} of {} divergences</h3>\n<table>\n<tr><th>time</th><th>instrument</th><th>live</th><th>shadow</th><th>score diff</th></tr>",
        c.divergences.len(),
        c.divergence_count
    );
    for d in &c.divergences {
        let diff = match (d.live.score(), d.shadow.score()) {
            (Some(l), Some(s)) => format!("{:+.1}", s - l),
            _ => "—".to_owned(),
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{diff}</td></tr>",
            escape(&d.ts),
            escape(&d.instrument),
            escape(&d.live.to_string()),
            escape(&d.shadow.to_string()),
        );
    }
    html.push_str("</table>\n");
}

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn confusion_table<K: Ord + Copy>(
    html: &mut String,
    heading: &str,
    table: &Confusion<K>,
    keys: &[K],
    name: fn(K) -> &'static str,
) {
    let _ = write!(
        html,
        "<h3>{heading}</h3>\n<table>\n<tr><th>live \\ shadow</th>"
    );
    for col in keys {
        let _ = write!(html, "<th>{}</th>", name(*col));
    }
    html.push_str("</tr>\n");
    for row in keys {
        let _ = write!(html, "<tr><th>{}</th>", name(*row));
        for col in keys {
            let n = table
                .get(row)
                .and_then(|r| r.get(col))
                .copied()
                .unwrap_or(0);
            let _ = write!(html, "<td class=\"n\">{n}</td>");
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
}

/// One line of a chart: its legend name, colour and points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

type ChartResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Draws one chart into an SVG string and appends it; a chart that cannot be drawn leaves a
/// note instead, so the rest of the report is still written.
fn chart(html: &mut String, draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> ChartResult) {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present())
    };
    match result {
        // The namespace is a name, not a resource, but an inline <svg> in HTML needs none, and
        // without it the file holds no URL at all.
        Ok(()) => {
            let svg = svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "");
            let _ = writeln!(html, "<div class=\"chart\">{svg}</div>");
        }
        Err(e) => {
            let _ = writeln!(
                html,
                "<p class=\"note\">chart not drawn: {}</p>",
                escape(&e.to_string())
            );
        }
    }
}

/// The x of an equity point: its exit time in seconds since the epoch.
fn seconds(time: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

/// The curves' points on one x axis: exit times when every time parses, else trade numbers.
/// Returns whether the axis is time.
fn curve_points(
    curves: &[&[EquityPoint]],
    value: fn(&EquityPoint) -> f64,
) -> (bool, Vec<Vec<(f64, f64)>>) {
    let all_times = curves
        .iter()
        .flat_map(|c| c.iter())
        .all(|p| seconds(&p.time).is_some());
    let points = curves
        .iter()
        .map(|curve| {
            let mut points: Vec<(f64, f64)> = curve
                .iter()
                .enumerate()
                .map(|(idx, p)| {
                    let x = if all_times {
                        seconds(&p.time).unwrap_or(0.0)
                    } else {
                        (idx + 1) as f64
                    };
                    (x, value(p))
                })
                .collect();
            // Each curve starts at 0, just before its first trade closed.
            if let Some(&(x, _)) = points.first() {
                points.insert(0, (x, 0.0));
            }
            points
        })
        .collect();
    (all_times, points)
}

/// The range of `values` with some room, never empty.
fn padded(values: impl Iterator<Item = f64>, include_zero: bool) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if include_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    let room = ((hi - lo) * 0.05).max(1.0);
    (lo - room)..(hi + room)
}

fn x_label(is_time: bool, x: f64) -> String {
    if !is_time {
        return format!("#{x:.0}");
    }
    chrono::DateTime::from_timestamp(x as i64, 0)
        .map(|t| t.format("%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn line_chart(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    y_desc: &str,
    is_time: bool,
    series: &[Series<'_>],
) -> ChartResult {
    let x_range = padded(series.iter().flat_map(|s| s.2.iter().map(|p| p.0)), false);
    let y_range = padded(series.iter().flat_map(|s| s.2.iter().map(|p| p.1)), true);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&|x| x_label(is_time, *x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc(y_desc)
        .draw()?;
    for (name, color, points) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

fn equity_chart(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    curves: &[(&str, RGBColor, &[EquityPoint])],
    y_desc: &str,
) -> ChartResult {
    let equity: Vec<&[EquityPoint]> = curves.iter().map(|c| c.2).collect();
    let (is_time, points) = curve_points(&equity, |p| p.equity);
    let series: Vec<Series<'_>> = curves
        .iter()
        .zip(points)
        .map(|((name, color, _), points)| (*name, *color, points))
        .collect();
    line_chart(
        area,
        "Equity (cumulative net P&L after each trade)",
        y_desc,
        is_time,
        &series,
    )
}

fn drawdown_chart(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    equity: &[EquityPoint],
) -> ChartResult {
    // Drawn below zero, as an equity curve's distance under water reads.
    let (is_time, mut points) = curve_points(&[equity], |p| -p.drawdown);
    let points = points.pop().unwrap_or_default();
    line_chart(
        area,
        "Drawdown from the running peak",
        "$ below peak",
        is_time,
        &[("live", LOSS_COLOR, points)],
    )
}

/// Bars of net P&L per group, green for gains and red for losses.
fn bar_chart(area: &DrawingArea<SVGBackend<'_>, Shift>, bars: &[(String, f64)]) -> ChartResult {
    let n = bars.len().max(1) as u32;
    let y_range = padded(bars.iter().map(|b| b.1), true);
    let mut chart = ChartBuilder::on(area)
        .caption("Net P&L by group", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n).into_segmented(), y_range)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len().max(1))
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(idx) => bars
                .get(*idx as usize)
                .map(|b| b.0.clone())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("net P&L, $")
        .draw()?;
    chart.draw_series(bars.iter().zip(0u32..).map(|((_, value), idx)| {
        let color = if *value < 0.0 { LOSS_COLOR } else { GAIN_COLOR };
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(idx), 0.0),
                (SegmentValue::Exact(idx + 1), *value),
            ],
            color.filled(),
        );
        // Gaps between the bars.
        bar.set_margin(0, 0, 12, 12);
        bar
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_without_trades() {
        let html = render(&ReportInput {
            title: "empty <day>",
            live: &[],
            shadow: None,
            comparison: None,
        });
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<h1>empty &lt;day&gt;</h1>"));
        assert!(html.contains("<svg"));
        assert!(!html.contains("chart not drawn"), "{html}");
        assert!(!html.contains("Shadow comparison"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
