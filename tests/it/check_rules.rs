//! `mia check-rules` on the corpus of broken rule sets in `tests/data/rules/`, its three output
//! formats and its exit codes.
//!
//! Each folder of the corpus is a rule set broken on purpose, with the whole expected human
//! output in `expected.txt` beside it (`MIA_BLESS=1` rewrites them).

use pretty_assertions::assert_eq;

use super::support::{TestCommand, data_path, golden, manifest_dir};

/// Every rule set of the corpus, by folder name.
fn corpus() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_path("rules"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn check_rules(args: &[&str]) -> super::support::Ran {
    TestCommand::new(["check-rules"].iter().chain(args)).run()
}

#[test]
fn corpus_reports_exactly_the_expected_diagnostics() {
    let names = corpus();
    assert!(names.len() >= 10, "the corpus shrank: {names:?}");
    for name in names {
        let dir = format!("tests/data/rules/{name}");
        let ran = check_rules(&[&dir]);
        assert_eq!(
            ran.code,
            Some(1),
            "{dir}: every corpus set has problems\n{ran:?}"
        );
        assert_eq!(ran.stderr, "", "{dir}");
        golden(&format!("rules/{name}/expected.txt"), &ran.stdout);
    }
}

#[test]
fn corpus_covers_every_code() {
    let all: String = corpus()
        .iter()
        .map(|name| {
            std::fs::read_to_string(data_path(&format!("rules/{name}/expected.txt"))).unwrap()
        })
        .collect();
    for code in [
        "syntax",
        "import",
        "top-level",
        "forbidden",
        "unknown-property",
        "missing-entry",
        "missing-decide",
        "decide-arity",
        "weights",
        "tiers",
        "test-file",
        "test-failed",
        "runtime-error",
        "invalid-result",
        "ops-budget",
    ] {
        assert!(
            all.contains(&format!("error[{code}]")),
            "no corpus set reports {code}"
        );
    }
}

#[test]
fn broken_functions_are_each_reported() {
    let ran = check_rules(&["tests/data/rules/syntax_functions"]);
    let lines: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.contains("error[syntax]"))
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "one diagnostic per broken function:\n{}",
        ran.stdout
    );
    assert!(lines[0].starts_with("tests/data/rules/syntax_functions/strategy.rhai:4:5:"));
    assert!(lines[1].starts_with("tests/data/rules/syntax_functions/strategy.rhai:9:13:"));
}

#[test]
fn json_format_is_one_document() {
    let ran = check_rules(&["tests/data/rules/tests_fail", "rules", "--format", "json"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let doc: serde_json::Value = serde_json::from_str(&ran.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["problems"], 6);
    let sets = doc["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0]["tests_run"], 6);
    assert_eq!(sets[0]["tests_failed"], 5);
    assert_eq!(sets[1]["dir"], "rules");
    assert_eq!(sets[1]["problems"].as_array().unwrap().len(), 0);
    assert_eq!(sets[1]["tests_failed"], 0);
    let first = &sets[0]["problems"][0];
    assert_eq!(first["file"], "tests/data/rules/tests_fail/strategy.rhai");
    assert_eq!(first["line"], 11);
    assert_eq!(first["column"], 28);
    assert_eq!(first["code"], "runtime-error");
    golden("rules/tests_fail.json", &ran.stdout);
}

#[test]
fn github_format_annotates_each_problem() {
    let ran = check_rules(&["tests/data/rules/tests_fail", "--format", "github"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    for line in ran.stdout.lines() {
        assert!(line.starts_with("::error file="), "{line}");
    }
    golden("rules/tests_fail.github", &ran.stdout);
    // A multi-line diff is one annotation, with its line breaks escaped.
    assert!(
        ran.stdout.contains(
            "::error file=tests/data/rules/tests_fail/tests/cases.toml,line=14,col=1::[test-failed] case \"wrong expectation\" failed; fix the rules or the expectation:%0Adirection: expected \"short\", got \"long\"%0A"
        ),
        "{}",
        ran.stdout
    );
    // A problem about a whole file has no line.
    let missing = check_rules(&["tests/data/rules/missing_entry", "--format", "github"]);
    assert!(
        missing.stdout.starts_with(
            "::error file=tests/data/rules/missing_entry/strategy.rhai::[missing-entry]"
        ),
        "{}",
        missing.stdout
    );
}

#[test]
fn shipped_rule_sets_are_clean_and_exit_0() {
    let ran = check_rules(&["rules", "examples/rules"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", ran.stdout);
    assert!(
        lines[0].starts_with("rules: ok; 22 of 22 tests passed;"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("examples/rules: ok; 15 of 15 tests passed;"),
        "{}",
        lines[1]
    );
    let github = check_rules(&["rules", "examples/rules", "--format", "github"]);
    assert_eq!((github.code, github.stdout.as_str()), (Some(0), ""));
}

#[test]
fn default_folder_is_rules() {
    let ran = check_rules(&[]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.starts_with("rules: ok;"), "{}", ran.stdout);
}

#[test]
fn a_missing_folder_cannot_run_and_exits_2() {
    let ran = check_rules(&["rules", "no/such/folder"]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert_eq!(ran.stdout, "");
    assert!(ran.stderr.contains("no/such/folder"), "{}", ran.stderr);
}

#[test]
fn library_check_finds_no_problem_in_shipped_sets() {
    let host = mia::rules::RuleHost::new();
    for dir in ["rules", "examples/rules"] {
        let report = mia::rules::check::check(&host, &manifest_dir().join(dir)).unwrap();
        assert_eq!(report.problems, vec![], "{dir}");
        assert!(report.tests_run > 0 && report.tests_failed == 0, "{dir}");
        let heaviest = report.heaviest.expect("tests ran");
        assert!(
            heaviest.operations < report.budget / 10,
            "{dir}: {heaviest:?}"
        );
    }
}
