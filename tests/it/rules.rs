//! The rule sets shipped with mia: their test cases pass, their decisions on the cases match the
//! golden decision journals, and replay journals are byte-identical across runs.

use std::path::Path;

use mia::rules::{RuleHost, cases};
use pretty_assertions::assert_eq;

use crate::support::{TestCommand, golden, manifest_dir, simulate_session, tmp};

/// Evaluates every case of a rule folder; returns one journal line per case and the failures.
fn run_cases(rule_dir: &Path) -> (String, Vec<String>) {
    let host = RuleHost::new();
    let set = host
        .compile(rule_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", rule_dir.display()));
    let files = cases::load_folder(rule_dir).unwrap();
    assert!(
        !files.is_empty(),
        "{} has no tests/*.toml",
        rule_dir.display()
    );
    let mut journal = String::new();
    let mut failures = Vec::new();
    for (file, cases) in files {
        for case in cases {
            let input = case
                .input()
                .unwrap_or_else(|e| panic!("{}: {}: {e:?}", file.display(), case.name));
            let line = match host.evaluate(&set, &input) {
                Ok(eval) => {
                    for problem in case.check(&eval.decision) {
                        failures.push(format!("{}: {}", case.name, problem));
                    }
                    serde_json::json!({ "case": case.name, "decision": eval.decision, "ops": eval.operations })
                }
                Err(e) => {
                    failures.push(format!("{}: rule error: {e}", case.name));
                    serde_json::json!({ "case": case.name, "error": e.to_string() })
                }
            };
            journal.push_str(&line.to_string());
            journal.push('\n');
        }
    }
    (journal, failures)
}

#[test]
fn default_rules_pass_their_cases_and_match_the_golden_decisions() {
    let (journal, failures) = run_cases(&manifest_dir().join("rules"));
    assert_eq!(failures, Vec::<String>::new());
    golden("decisions/default.jsonl", &journal);
}

#[test]
fn example_rules_pass_their_cases_and_match_the_golden_decisions() {
    let (journal, failures) = run_cases(&manifest_dir().join("examples/rules"));
    assert_eq!(failures, Vec::<String>::new());
    golden("decisions/mq_first.jsonl", &journal);
}

#[test]
fn the_default_cases_cover_every_tier_both_directions_and_every_hard_rule() {
    let files = cases::load_folder(&manifest_dir().join("rules")).unwrap();
    let all: Vec<_> = files.into_iter().flat_map(|(_, c)| c).collect();
    let has = |f: &dyn Fn(&cases::Expect) -> bool| all.iter().any(|c| f(&c.expect));
    for tier in ["PREMIUM", "STRONG", "GOOD", "WEAK", "NO_TRADE"] {
        assert!(
            has(&|e| e.tier.as_deref() == Some(tier)),
            "no case for tier {tier}"
        );
    }
    for dir in ["long", "short", "flat"] {
        assert!(
            has(&|e| e.direction.as_deref() == Some(dir)),
            "no case for direction {dir}"
        );
    }
    for veto in [
        "blind_spot",
        "stale_menthorq",
        "vix_extreme",
        "gamma_wall_ahead",
        "score_not_above_70",
    ] {
        assert!(
            has(&|e| e.vetoes.as_ref().is_some_and(|v| v == &[veto.to_owned()])),
            "no case where {veto} vetoes alone"
        );
    }
}

#[test]
fn replay_journals_are_byte_identical_across_runs() {
    let dir = tmp();
    let data = dir.path().join("data");
    // 60 minutes, seed 1: both sets trade once, so every journal has lines.
    simulate_session(&data, 60, 1, true);
    let mut runs = Vec::new();
    for run in ["a", "b"] {
        let out = dir.path().join(run);
        let ran = TestCommand::new([
            "replay",
            data.to_str().unwrap(),
            "--rules",
            "rules",
            "--shadow",
            "examples/rules",
            "--out",
            out.to_str().unwrap(),
        ])
        .run();
        assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
        assert!(ran.stdout.contains("evaluation points"), "{}", ran.stdout);
        let mut journals = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(&out).unwrap().flatten() {
            journals.insert(
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            );
        }
        runs.push(journals);
    }
    assert_eq!(
        runs[0].keys().collect::<Vec<_>>(),
        [
            "decisions_20250919.jsonl",
            "orders_20250919.jsonl",
            "trades_20250919.jsonl"
        ]
    );
    for (name, bytes) in &runs[0] {
        assert!(
            runs[1][name] == *bytes,
            "{name} differs between two replays"
        );
    }
    let text = String::from_utf8(runs[0]["decisions_20250919.jsonl"].clone()).unwrap();
    let count = |set: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("\"set\":\"{set}\"")))
            .count()
    };
    // One decision per completed one-minute bar, by each set, on the same snapshots.
    assert_eq!((count("live"), count("shadow")), (59, 59));
    let times = |set: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(&format!("\"set\":\"{set}\"")))
            .map(|l| l[..30].to_owned())
            .collect()
    };
    assert_eq!(times("live"), times("shadow"));
}

#[test]
fn replay_timings_are_opt_in_and_the_out_folder_may_hold_other_journals() {
    let dir = tmp();
    let data = dir.path().join("data");
    let out = dir.path().join("journal");
    std::fs::create_dir_all(&out).unwrap();
    // A collect journal without its checkpoint: replay must leave it alone.
    std::fs::write(out.join("mia_unified_20250919.jsonl"), "{}\n").unwrap();
    simulate_session(&data, 4, 1, false);
    let (data, out_s) = (data.to_str().unwrap(), out.to_str().unwrap());
    let ran = TestCommand::new([
        "replay",
        data,
        "--rules",
        "rules",
        "--out",
        out_s,
        "--timings",
    ])
    .run();
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    let timed = std::fs::read_to_string(out.join("decisions_20250919.jsonl")).unwrap();
    assert_eq!(timed.lines().count(), 3);
    assert!(timed.lines().all(|l| l.contains("\"eval_us\":")), "{timed}");
    let ran = TestCommand::new(["replay", data, "--rules", "rules", "--out", out_s]).run();
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let plain = std::fs::read_to_string(out.join("decisions_20250919.jsonl")).unwrap();
    assert_eq!(
        plain.lines().count(),
        3,
        "the earlier journal was replaced, not appended to"
    );
    assert!(!plain.contains("eval_us"));
    assert_eq!(
        std::fs::read_to_string(out.join("mia_unified_20250919.jsonl")).unwrap(),
        "{}\n"
    );
}

#[test]
fn replay_journals_the_risk_verdict_of_every_decision() {
    let dir = tmp();
    let data = dir.path().join("data");
    simulate_session(&data, 120, 5, false);
    let out = dir.path().join("out");
    let ran = TestCommand::new([
        "replay",
        data.to_str().unwrap(),
        "--rules",
        "rules",
        "--out",
        out.to_str().unwrap(),
    ])
    .run();
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("risk verdicts"), "{}", ran.stdout);
    let text = std::fs::read_to_string(out.join("decisions_20250919.jsonl")).unwrap();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let risk = &v["risk"];
        if let Some(order) = risk.get("approved") {
            let stop = order["stop_ticks"].as_u64().unwrap();
            let target = order["target_ticks"].as_u64().unwrap();
            assert!((7..=20).contains(&stop), "{line}");
            assert!(target as f64 >= 2.5 * stop as f64, "{line}");
            assert!(v["vetoes"].as_array().unwrap().is_empty(), "{line}");
            *kinds.entry("approved".into()).or_default() += 1;
        } else {
            let kind = risk["refused"]["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{line}"));
            // A vetoed decision is refused as vetoed, a flat one as flat.
            if !v["vetoes"].as_array().unwrap().is_empty() && v["direction"] != "flat" {
                assert_eq!(kind, "vetoed", "{line}");
            }
            if v["direction"] == "flat" {
                assert_eq!(kind, "flat", "{line}");
            }
            *kinds.entry(kind.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(kinds.values().sum::<usize>(), text.lines().count());
}
