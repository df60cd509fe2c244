//! Hand-built sessions through `mia replay` with known outcomes: a target hit, a stop hit, a
//! bar that reaches both (the stop), a hard rule vetoing a trade, and the daily loss limit
//! halting entries.
//!
//! Each session is a few one-minute ES bars written by hand in the dumper's format, with a trade
//! print in each bar, a VIX print and a MenthorQ block, and a rule set that goes long at chosen
//! minutes. The reference risk limits size a
//! GOOD decision at 2 contracts with a 7-tick stop and an 18-tick target (no MenthorQ level);
//! paper fills take 1 tick of slippage on the entry and the stop and $2.25 per contract per fill.

use std::path::Path;

use serde_json::Value;

use super::support::{TestCommand, tmp, write};

/// Excel serial day of 2025-09-19 (a Friday), as the dumpers write times.
const DAY: f64 = 45_919.0;

/// One bar at `minute` after 10:00 New York: (open, high, low, close).
type Bar = (u32, f64, f64, f64, f64);

fn t(minute: u32) -> String {
    format!("{:.6}", DAY + (600.0 + f64::from(minute)) / 1_440.0)
}

/// Writes the session: flat bars at 6500 from 10:00, the given bars, and a VIX of 15.5.
fn session(dir: &Path, bars: &[Bar]) {
    let mut lines = String::new();
    let last = bars.iter().map(|b| b.0).max().unwrap_or(0) + 3;
    for minute in 0..=last {
        let (o, h, l, c) = bars
            .iter()
            .find(|b| b.0 == minute)
            .map_or((6500.0, 6500.0, 6500.0, 6500.0), |b| (b.1, b.2, b.3, b.4));
        lines.push_str(&format!(
            "{{\"t\":{},\"sym\":\"ESZ25_FUT_CME\",\"type\":\"basedata\",\"i\":{},\"o\":{o:.2},\"h\":{h:.2},\"l\":{l:.2},\"c\":{c:.2},\"v\":100,\"bidvol\":50,\"askvol\":50,\"chart\":3}}\n",
            t(minute),
            1000 + minute
        ));
    }
    write(&dir.join("chart_3_basedata_20250919.jsonl"), &lines);
    // A trade print 50 s into each bar, at its close, keeps the one-minute data fresh (30 s)
    // as Sierra's Time & Sales does. Time & Sales times are UTC: 10:00 New York is 14:00 UTC.
    let prints: String = (0..=last)
        .map(|minute| {
            let close = bars.iter().find(|b| b.0 == minute).map_or(6500.0, |b| b.4);
            let utc = DAY + (840.0 + f64::from(minute) + 50.0 / 60.0) / 1_440.0;
            format!(
                "{{\"t\":{utc:.6},\"sym\":\"ESZ25_FUT_CME\",\"type\":\"trade\",\"side\":\"BUY\",\"px\":{close:.2},\"vol\":1,\"seq\":{},\"tt\":1,\"chart\":3}}\n",
                100 + minute
            )
        })
        .collect();
    write(&dir.join("chart_3_trade_20250919.jsonl"), &prints);
    let vix: String = (0..=last)
        .map(|m| {
            format!(
                "{{\"t\":{},\"type\":\"vix\",\"i\":{m},\"last\":15.5,\"chart\":8}}\n",
                t(m)
            )
        })
        .collect();
    write(&dir.join("chart_8_vix_20250919.jsonl"), &vix);
    // A MenthorQ block with its levels far away: fresh levels, and none within the 20-tick stop
    // range or before the target, so the stop is the 7-tick default.
    let levels = [("call_resistance", 6600.0), ("put_support", 6400.0)]
        .iter()
        .enumerate()
        .map(|(n, (kind, price))| {
            format!(
                "{{\"t\":{},\"sym\":\"ESZ25_FUT_CME\",\"type\":\"menthorq_level\",\"level_type\":\"{kind}\",\"price\":{price:.2},\"subgraph\":{n},\"study_id\":1,\"i\":1000,\"chart\":10}}\n",
                t(0)
            )
        })
        .collect::<String>();
    write(&dir.join("chart_10_menthorq_level_20250919.jsonl"), &levels);
}

/// A rule set that goes long (GOOD) when the completed bar is one of `long_at` (minutes after
/// 10:00), with `vetoes`, and is flat otherwise. The decision on bar M is made when bar M + 1
/// starts, at minute_of_day 600 + M + 1.
fn rules(dir: &Path, long_at: &[u32], vetoes: &[&str]) {
    let minutes: Vec<String> = long_at.iter().map(|m| (601 + m).to_string()).collect();
    let vetoes: Vec<String> = vetoes.iter().map(|v| format!("\"{v}\"")).collect();
    write(
        &dir.join("strategy.rhai"),
        &format!(
            "fn decide(s) {{\n    let long = [{}].contains(s.minute_of_day);\n    #{{ score: if long {{ 75.0 }} else {{ 50.0 }}, direction: if long {{ \"long\" }} else {{ \"flat\" }}, tier: if long {{ \"GOOD\" }} else {{ \"NO_TRADE\" }}, size_mult: if long {{ 1.0 }} else {{ 0.0 }}, components: #{{}}, reasons: [], vetoes: if long {{ [{}] }} else {{ [] }} }}\n}}\n",
            minutes.join(", "),
            vetoes.join(", ")
        ),
    );
}

struct Outcome {
    trades: Vec<Value>,
    decisions: Vec<Value>,
}

fn replay(bars: &[Bar], long_at: &[u32], vetoes: &[&str], config: Option<&str>) -> Outcome {
    let dir = tmp();
    let data = dir.path().join("data");
    let rule_dir = dir.path().join("rules");
    let out = dir.path().join("out");
    session(&data, bars);
    rules(&rule_dir, long_at, vetoes);
    let mut args = vec![
        "replay".to_owned(),
        data.display().to_string(),
        "--rules".into(),
        rule_dir.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    if let Some(text) = config {
        let path = dir.path().join("mia.toml");
        write(&path, text);
        args.extend(["--config".into(), path.display().to_string()]);
    }
    let ran = TestCommand::new(&args).run();
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    let read = |name: &str| -> Vec<Value> {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    Outcome {
        trades: read("trades_20250919.jsonl"),
        decisions: read("decisions_20250919.jsonl"),
    }
}

fn trade(o: &Outcome) -> (f64, f64, String, f64) {
    assert_eq!(o.trades.len(), 1, "{:?}", o.trades);
    let t = &o.trades[0];
    (
        t["entry"].as_f64().unwrap(),
        t["exit"].as_f64().unwrap(),
        t["exit_reason"].as_str().unwrap().to_owned(),
        t["pnl"].as_f64().unwrap(),
    )
}

#[test]
fn the_target_is_hit() {
    // Long on bar 10:05 (close 6500): entry 6500.25; target 6500 + 18 ticks = 6504.50, reached
    // by bar 10:06. 17 ticks × $12.50 × 2 − 4 × $2.25 = $416.
    let o = replay(&[(6, 6500.0, 6504.5, 6500.0, 6504.0)], &[5], &[], None);
    assert_eq!(trade(&o), (6500.25, 6504.5, "target".into(), 416.0));
}

#[test]
fn the_stop_is_hit() {
    // Stop 6500 − 7 ticks = 6498.25, filled a tick worse at 6498.00: −9 ticks × 12.5 × 2 − 9.
    let o = replay(&[(6, 6500.0, 6500.5, 6498.25, 6498.5)], &[5], &[], None);
    assert_eq!(trade(&o), (6500.25, 6498.0, "stop".into(), -234.0));
}

#[test]
fn a_bar_that_reaches_both_takes_the_stop() {
    let o = replay(&[(6, 6500.0, 6505.0, 6498.0, 6504.0)], &[5], &[], None);
    assert_eq!(trade(&o), (6500.25, 6498.0, "stop".into(), -234.0));
}

#[test]
fn a_hard_rule_vetoes_the_trade() {
    let o = replay(
        &[(6, 6500.0, 6504.5, 6500.0, 6504.0)],
        &[5],
        &["blind_spot"],
        None,
    );
    assert!(o.trades.is_empty(), "{:?}", o.trades);
    let vetoed: Vec<&Value> = o
        .decisions
        .iter()
        .filter(|d| d["direction"] == "long")
        .collect();
    assert_eq!(vetoed.len(), 1);
    assert_eq!(vetoed[0]["risk"]["refused"]["kind"], "vetoed");
}

#[test]
fn the_daily_loss_limit_halts_entries() {
    // max_daily_loss $200: the first trade loses $234 at its stop; the next long is refused.
    let config =
        crate::support::reference_config_with("max_daily_loss = 1000.0", "max_daily_loss = 200.0");
    let o = replay(
        &[
            (6, 6500.0, 6500.5, 6498.25, 6498.5),
            (20, 6500.0, 6504.5, 6500.0, 6504.0),
        ],
        &[5, 19],
        &[],
        Some(&config),
    );
    assert_eq!(trade(&o), (6500.25, 6498.0, "stop".into(), -234.0));
    let longs: Vec<&Value> = o
        .decisions
        .iter()
        .filter(|d| d["direction"] == "long")
        .collect();
    assert_eq!(longs.len(), 2);
    assert!(longs[0]["risk"]["approved"].is_object());
    assert_eq!(
        longs[1]["risk"]["refused"]["kind"], "daily_loss",
        "{}",
        longs[1]
    );
}

#[test]
fn a_shadow_set_with_known_differences() {
    // Live goes long on bar 10:05 only; shadow on 10:05 and 10:08. Bars 10:00 to 10:09 plus
    // the three flat ones after: 12 completed bars are evaluated by each set (the last bar of
    // the data never completes). Every pair agrees except 10:08: live flat NO_TRADE 50, shadow
    // long GOOD 75.
    let dir = tmp();
    let data = dir.path().join("data");
    let (live, shadow, out) = (
        dir.path().join("live"),
        dir.path().join("shadow"),
        dir.path().join("out"),
    );
    session(&data, &[(9, 6500.0, 6500.0, 6500.0, 6500.0)]);
    rules(&live, &[5], &[]);
    rules(&shadow, &[5, 8], &[]);
    let ran = TestCommand::new([
        "replay",
        data.to_str().unwrap(),
        "--rules",
        live.to_str().unwrap(),
        "--shadow",
        shadow.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .run();
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    let report =
        TestCommand::new(["shadow-report", out.to_str().unwrap(), "--format", "json"]).run();
    assert_eq!(report.code, Some(0), "{}", report.stderr);
    let c: Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(
        (&c["pairs"], &c["agreements"], &c["unpaired"]),
        (&Value::from(12), &Value::from(11), &Value::from(0))
    );
    assert_eq!(c["direction_confusion"]["flat"]["long"], 1);
    assert_eq!(c["tier_confusion"]["NO_TRADE"]["GOOD"], 1);
    assert_eq!(c["divergences"].as_array().unwrap().len(), 1);
    let d = &c["divergences"][0];
    assert_eq!(d["ts"], "2025-09-19T14:09:00.000Z");
    assert_eq!(
        (&d["live"]["direction"], &d["shadow"]["direction"]),
        (&Value::from("flat"), &Value::from("long"))
    );
    assert_eq!(c["score"]["largest"]["diff"], 25.0);
    // Each set trades its own longs on its own paper account: live once, shadow twice.
    assert_eq!(
        (
            &c["live"]["stats"]["trades"],
            &c["shadow"]["stats"]["trades"]
        ),
        (&Value::from(1), &Value::from(2))
    );
}

#[test]
fn from_and_to_select_trading_days() {
    let dir = tmp();
    let data = dir.path().join("data");
    for day in ["20250918", "20250919"] {
        let ran = TestCommand::new([
            "simulate",
            "--out",
            data.to_str().unwrap(),
            "--day",
            day,
            "--minutes",
            "10",
            "--layout",
            "flat",
        ])
        .run();
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    }
    let out = dir.path().join("out");
    let ran = TestCommand::new([
        "replay",
        data.to_str().unwrap(),
        "--from",
        "2025-09-19",
        "--to",
        "2025-09-19",
        "--out",
        out.to_str().unwrap(),
    ])
    .run();
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("decisions_"))
        .collect();
    assert_eq!(names, ["decisions_20250919.jsonl"]);
    let bad = TestCommand::new([
        "replay",
        data.to_str().unwrap(),
        "--from",
        "2025-09-20",
        "--to",
        "2025-09-19",
    ])
    .run();
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains("is after"), "{}", bad.stderr);
}

#[test]
fn replay_with_a_shadow_set_prints_the_shadow_report_and_writes_the_html_report() {
    let dir = tmp();
    let data = dir.path().join("data");
    crate::support::simulate_session(&data, 60, 1, false);
    let out = dir.path().join("out");
    let report = dir.path().join("report.html");
    let ran = TestCommand::new([
        "replay",
        data.to_str().unwrap(),
        "--shadow",
        "examples/rules",
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ])
    .run();
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    // The comparison replay prints is the one `mia shadow-report` reads back from the journals.
    let printed = ran
        .stdout
        .split("== shadow comparison\n")
        .nth(1)
        .and_then(|rest| rest.split("\nreport: ").next())
        .expect("a shadow comparison section");
    let from_journals = TestCommand::new(["shadow-report", out.to_str().unwrap()]).run();
    assert_eq!(from_journals.code, Some(0), "{}", from_journals.stderr);
    pretty_assertions::assert_eq!(printed.trim_end(), from_journals.stdout.trim_end());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && !html.contains("https://"));
}
