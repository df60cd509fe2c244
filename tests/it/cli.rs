//! The `mia` binary: help, `config check`, exit codes and error messages.

use pretty_assertions::assert_eq;

use crate::support::{TestCommand, data_path, golden, tmp};

/// The subcommands listed under "Commands:" in `mia --help`.
fn listed_commands(help: &str) -> Vec<String> {
    let section = help
        .split("Commands:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Commands: section in\n{help}"));
    section
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn help_mentions_every_command_and_each_has_its_own_help() {
    let ran = TestCommand::new(["--help"]).run();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let commands = listed_commands(&ran.stdout);
    for wanted in ["collect", "simulate", "config"] {
        assert!(
            commands.iter().any(|c| c == wanted),
            "`{wanted}` missing from --help: {commands:?}\n{}",
            ran.stdout
        );
    }
    assert!(ran.stdout.contains("Exit codes"), "{}", ran.stdout);
    for command in commands.iter().filter(|c| *c != "help") {
        let sub = TestCommand::new([command.as_str(), "--help"]).run();
        assert_eq!(sub.code, Some(0), "mia {command} --help: {sub:?}");
        assert!(sub.stdout.contains("Usage: mia"), "{sub:?}");
    }
}

#[test]
fn config_check_accepts_the_reference_file() {
    let ran = TestCommand::new(["config", "check", "config/mia.toml"]).run();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.starts_with("config/mia.toml: ok\n"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("instrument ES"), "{}", ran.stdout);

    // With no file named and none in the folder, the embedded reference is checked.
    let dir = tmp();
    let ran = TestCommand::new(["config", "check"])
        .current_dir(dir.path())
        .run();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.starts_with("embedded reference config: ok"),
        "{}",
        ran.stdout
    );
}

#[test]
fn config_check_reports_every_bad_setting_with_file_line_and_column() {
    let rel = "tests/data/config/bad.toml";
    let ran = TestCommand::new(["config", "check", rel]).run();
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(ran.stderr, "", "the report goes to stdout");
    golden("config/bad.expected", &ran.stdout);

    // Every issue line reads `file:line:col: key: message` and points at the right line.
    let source: Vec<&str> = include_str!("../data/config/bad.toml").lines().collect();
    let issues: Vec<&str> = ran.stdout.lines().skip(1).collect();
    assert!(issues.len() >= 10, "{}", ran.stdout);
    assert!(
        ran.stdout
            .starts_with(&format!("{rel} has {} invalid setting(s):", issues.len())),
        "{}",
        ran.stdout
    );
    for issue in issues {
        let rest = issue
            .trim_start()
            .strip_prefix(&format!("{rel}:"))
            .unwrap_or_else(|| panic!("no file prefix: {issue}"));
        let mut parts = rest.splitn(4, ':');
        let line: usize = parts.next().unwrap().parse().expect(issue);
        let col: usize = parts.next().unwrap().parse().expect(issue);
        let key = parts.next().unwrap().trim();
        let message = parts.next().unwrap().trim();
        assert!(!message.is_empty(), "{issue}");
        let leaf = key.rsplit('.').next().unwrap();
        let text = source[line - 1];
        assert!(col <= text.len() + 1, "{issue}");
        assert!(
            text.contains(leaf) || text.starts_with('['),
            "{issue}: line {line} is `{text}`"
        );
    }
}

#[test]
fn config_check_exit_codes_for_syntax_errors_and_missing_files() {
    let dir = tmp();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[ingest\npoll_interval_ms = 5\n").unwrap();
    let ran = TestCommand::new(["config", "check", broken.to_str().unwrap()]).run();
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stdout.contains("invalid TOML"), "{ran:?}");

    let missing = dir.path().join("nope.toml");
    let ran = TestCommand::new(["config", "check", missing.to_str().unwrap()]).run();
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("nope.toml"), "{ran:?}");
}

#[test]
fn collect_on_a_missing_data_folder_exits_2_with_one_line_naming_it() {
    let dir = tmp();
    let ran = TestCommand::new([
        "collect",
        "--once",
        "--data",
        "missing",
        "--journal",
        "j",
        "--state",
        "s",
    ])
    .current_dir(dir.path())
    .run();
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert_eq!(ran.stdout, "");
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", ran.stderr);
    assert!(lines[0].starts_with("mia: "), "{}", lines[0]);
    assert!(lines[0].contains("missing"), "{}", lines[0]);
    assert!(!dir.path().join("j").exists(), "nothing written");
}

#[test]
fn collect_once_prints_counters_and_rejects_and_journals() {
    let dir = tmp();
    let data = data_path("ingest/quirks/invalid");
    let (journal, state) = (dir.path().join("j"), dir.path().join("s"));
    let collect_once = || {
        TestCommand::new([
            "collect",
            "--once",
            "--data",
            data.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .run()
    };
    let ran = collect_once();
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let row = ran
        .stdout
        .lines()
        .find(|l| l.contains("basedata"))
        .unwrap_or_else(|| panic!("{}", ran.stdout));
    let cells: Vec<&str> = row
        .split(['│', '┆', '|'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        &cells[..7],
        &["3", "basedata", "8", "3", "5", "0", "0"],
        "{row}"
    );
    assert!(ran.stdout.contains("5 rejected line(s):"), "{}", ran.stdout);
    for line in [2, 4, 5, 6, 7] {
        assert!(
            ran.stdout.contains(&format!(
                "  chart_3_basedata_20250919.jsonl:{line}: not valid JSON"
            )),
            "{}",
            ran.stdout
        );
    }
    let unified = std::fs::read_to_string(journal.join("mia_unified_20250919.jsonl")).unwrap();
    assert_eq!(unified.lines().count(), 3);
    assert!(state.join("ingest_checkpoint.json").is_file());

    // Run again: everything is already journaled.
    let again = collect_once();
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(
        std::fs::read_to_string(journal.join("mia_unified_20250919.jsonl")).unwrap(),
        unified
    );
}

#[test]
fn collect_refuses_an_orphan_journal_with_exit_2() {
    let dir = tmp();
    let journal = dir.path().join("j");
    std::fs::create_dir_all(&journal).unwrap();
    std::fs::write(journal.join("mia_unified_20250919.jsonl"), "{}\n").unwrap();
    let data = data_path("ingest/quirks/crlf");
    let ran = TestCommand::new([
        "collect",
        "--once",
        "--data",
        data.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
        "--state",
        dir.path().join("s").to_str().unwrap(),
    ])
    .current_dir(dir.path())
    .run();
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("no checkpoint"), "{}", ran.stderr);
    assert_eq!(
        std::fs::read_to_string(journal.join("mia_unified_20250919.jsonl")).unwrap(),
        "{}\n"
    );
}
