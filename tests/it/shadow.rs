//! `mia shadow-report` on hand-made journal folders whose differences are known in advance
//! (`tests/data/shadow/README.md` has the arithmetic), and its exit codes.

use crate::support::{TestCommand, data_path, golden, tmp, write};

fn report(dir: &str, extra: &[&str]) -> crate::support::Ran {
    let path = data_path(&format!("shadow/{dir}"));
    let mut args = vec!["shadow-report".to_owned(), path.display().to_string()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    TestCommand::new(args).run()
}

#[test]
fn two_days_human_report_matches_golden() {
    let ran = report("two_days", &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    golden("shadow/two_days.golden.txt", &ran.stdout);
}

#[test]
fn identical_sets_agree_everywhere() {
    let ran = report("identical", &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    golden("shadow/identical.golden.txt", &ran.stdout);
}

#[test]
fn json_report_has_the_known_figures() {
    let ran = report("two_days", &["--format", "json", "--divergences", "2"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let doc: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(doc["pairs"], 10);
    assert_eq!(doc["compared"], 9);
    assert_eq!(doc["agreements"], 5);
    assert_eq!(doc["divergence_count"], 5);
    assert_eq!(doc["direction_confusion"]["flat"]["short"], 1);
    assert_eq!(doc["tier_confusion"]["GOOD"]["PREMIUM"], 1);
    assert_eq!(doc["score"]["largest"]["diff"], 22.0);
    assert_eq!(doc["score"]["largest"]["ts"], "2025-09-15T15:00:00.000Z");
    assert_eq!(doc["live"]["stats"]["net_pnl"], 446.0);
    assert_eq!(doc["shadow"]["stats"]["net_pnl"], 784.5);
    assert_eq!(doc["live"]["stats"]["max_drawdown"], 375.5);
    assert_eq!(doc["shadow"]["stats"]["wins"], 3);
    let divergences = doc["divergences"].as_array().unwrap();
    assert_eq!(divergences.len(), 2);
    assert_eq!(divergences[0]["live"]["tier"], "GOOD");
    assert_eq!(divergences[1]["shadow"]["direction"], "flat");
}

#[test]
fn a_rule_error_shows_as_an_error_side_in_json() {
    let ran = report("two_days", &["--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(
        doc["divergences"][3]["live"]["error"],
        "strategy.rhai:41:17: division by zero"
    );
}

#[test]
fn a_missing_folder_exits_2() {
    let ran = report("no-such-folder", &[]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr.contains("cannot read the journal folder"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_folder_without_decision_journals_says_what_to_run() {
    let dir = tmp();
    write(&dir.path().join("trades_20250915.jsonl"), "");
    let ran = TestCommand::new(["shadow-report".as_ref(), dir.path().as_os_str()]).run();
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("no decision journal"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("--shadow examples/rules --out"),
        "{}",
        ran.stderr
    );
}

#[test]
fn journals_without_shadow_decisions_say_what_to_run() {
    let ran = report("live_only", &[]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("no shadow decisions"), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("mia replay DATA_DIR --shadow examples/rules"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_malformed_line_is_reported_with_file_and_line() {
    let ran = report("malformed", &[]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr.contains("malformed/decisions_20250915.jsonl:3:"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_malformed_trade_line_is_reported_too() {
    let dir = tmp();
    crate::support::copy_tree(&data_path("shadow/identical"), dir.path());
    write(
        &dir.path().join("trades_20250916.jsonl"),
        "{\"set\":\"live\"}\n",
    );
    let ran = TestCommand::new(["shadow-report".as_ref(), dir.path().as_os_str()]).run();
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr
            .contains("trades_20250916.jsonl:1: missing field"),
        "{}",
        ran.stderr
    );
}
