//! The HTML report on the trades of `tests/data/shadow/two_days`: self-contained, with its
//! charts, and the same figures as `perf` and the shadow comparison.

use mia::perf::{Performance, fmt_money, fmt_rate, fmt_ratio};
use mia::report::{ReportInput, render};
use mia::shadow::{self, RuleSetRole};

use crate::support::data_path;

fn two_days_report() -> (String, Performance, Performance, shadow::ShadowComparison) {
    let journals = shadow::read_journals(&data_path("shadow/two_days")).unwrap();
    let live = shadow::trades_of(&journals.trades, RuleSetRole::Live);
    let shadow_trades = shadow::trades_of(&journals.trades, RuleSetRole::Shadow);
    let comparison = shadow::compare(&journals.decisions, &journals.trades, 10);
    let html = render(&ReportInput {
        title: "two days",
        live: &live,
        shadow: Some(&shadow_trades),
        comparison: Some(&comparison),
    });
    if let Some(path) = std::env::var_os("MIA_REPORT_OUT") {
        std::fs::write(path, &html).unwrap();
    }
    (
        html,
        Performance::from_trades(&live),
        Performance::from_trades(&shadow_trades),
        comparison,
    )
}

#[test]
fn report_is_self_contained() {
    let (html, ..) = two_days_report();
    assert!(html.starts_with("<!doctype html>"));
    for outside in [
        "http://", "https://", "src=", "<link", "<script", "@import", "url(",
    ] {
        assert!(!html.contains(outside), "the report holds {outside:?}");
    }
}

#[test]
fn report_has_its_svg_charts_with_text() {
    let (html, ..) = two_days_report();
    // Equity, drawdown, bars by tier, by VIX policy and by direction, both equity curves.
    assert_eq!(html.matches("<svg").count(), 6);
    assert!(!html.contains("chart not drawn"));
    assert!(html.contains("<text"), "axis labels are SVG text");
    assert!(html.contains("Drawdown from the running peak"));
    // plotters writes each label on its own line inside <text>.
    assert!(
        html.contains("\nPREMIUM\n</text>"),
        "the tier bars are labelled"
    );
}

#[test]
fn report_shows_the_perf_figures() {
    let (html, live, shadow_perf, comparison) = two_days_report();
    // The figures worked out in tests/data/shadow/README.md, printed as perf prints them.
    assert_eq!(fmt_money(live.overall.net_pnl), "446.00");
    assert_eq!(fmt_rate(live.overall.win_rate), "40.0%");
    assert_eq!(fmt_money(shadow_perf.overall.net_pnl), "784.50");
    for figure in [
        fmt_money(live.overall.net_pnl),
        fmt_rate(live.overall.win_rate),
        fmt_ratio(live.overall.profit_factor),
        fmt_money(live.overall.max_drawdown),
        fmt_money(shadow_perf.overall.net_pnl),
        fmt_rate(shadow_perf.overall.win_rate),
        fmt_money(live.by_tier[&mia::rules::Tier::Premium].net_pnl),
    ] {
        assert!(
            html.contains(&format!(">{figure}<")),
            "the report lacks {figure}"
        );
    }
    let agreement = format!("5 of 9 ({})", fmt_rate(comparison.agreement_rate));
    assert!(html.contains(&agreement), "the report lacks {agreement}");
    assert!(html.contains("First 5 of 5 divergences"));
}

#[test]
fn report_is_deterministic() {
    assert_eq!(two_days_report().0, two_days_report().0);
}
