//! `mia check-rules`: lint rule folders and run their tests, for people and for CI.

use std::io::Write;
use std::path::PathBuf;

use mia::rules::RuleHost;
use mia::rules::check::{Problem, Report, check};

use super::Status;

/// Check rule folders: every file, the set as a whole, and the rule tests beside it.
///
/// Reports every problem it finds, each with file, line, column, a code and how to fix it:
/// syntax errors (one per broken function), unknown snapshot properties (`s.pricee`), a
/// missing or wrongly shaped `decide`, `*_WEIGHT` constants that do not add up to 100, tier
/// thresholds that are not monotonic, forbidden constructs (`eval`, imports from outside the
/// folder, statements at the top level), and the cases of `tests/*.toml` that fail, run past
/// the operation budget or return an invalid decision.
///
/// Examples:
///
///   mia check-rules                          # the live set, ./rules
///
///   mia check-rules rules examples/rules --format github   # in a GitHub Actions step
///
/// Exit codes: 0 clean, 1 problems found, 2 could not run (a folder is missing or unreadable).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rule folders to check.
    #[arg(value_name = "DIR", default_value = "rules")]
    dirs: Vec<PathBuf>,
    /// Output format: `human` (file:line:col: error[code]: message), `json` (one document),
    /// `github` (workflow commands that annotate the pull request).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
    Github,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Status> {
    let host = RuleHost::new();
    let reports = args
        .dirs
        .iter()
        .map(|dir| check(&host, dir))
        .collect::<Result<Vec<_>, _>>()?;
    let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Human => human(&mut out, &reports)?,
        Format::Json => {
            let doc = serde_json::json!({
                "ok": problems == 0,
                "problems": problems,
                "sets": reports,
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        Format::Github => {
            for problem in reports.iter().flat_map(|r| &r.problems) {
                writeln!(out, "{}", github(problem))?;
            }
        }
    }
    Ok(if problems == 0 {
        Status::Ok
    } else {
        Status::Problems
    })
}

fn human(out: &mut impl Write, reports: &[Report]) -> std::io::Result<()> {
    for p in reports.iter().flat_map(|r| &r.problems) {
        writeln!(out, "{p}")?;
    }
    for r in reports {
        let mut summary = match r.problems.len() {
            0 => "ok".to_owned(),
            1 => "1 problem".to_owned(),
            n => format!("{n} problems"),
        };
        if let Some(hash) = &r.hash {
            summary += &format!(
                "; {} of {} tests passed",
                r.tests_run - r.tests_failed,
                r.tests_run
            );
            if let Some(h) = &r.heaviest {
                summary += &format!(
                    "; heaviest evaluation {} of {} operations (\"{}\")",
                    h.operations, r.budget, h.case
                );
            }
            summary += &format!("; hash {}", super::short_hash(hash));
        }
        writeln!(out, "{}: {summary}", r.dir.display())?;
    }
    Ok(())
}

/// A GitHub Actions workflow command (`::error file=…,line=…,col=…::message`).
fn github(p: &Problem) -> String {
    let property = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
            .replace(':', "%3A")
            .replace(',', "%2C")
    };
    let data = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let mut at = format!("file={}", property(&p.file.display().to_string()));
    if p.line > 0 {
        at += &format!(",line={}", p.line);
        if p.column > 0 {
            at += &format!(",col={}", p.column);
        }
    }
    format!("::error {at}::[{}] {}", p.code, data(&p.message))
}
