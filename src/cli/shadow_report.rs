//! `mia shadow-report`: how the shadow rule set compares with the live set over a replay.

use std::io::Write;
use std::path::PathBuf;

use comfy_table::Table;
use mia::perf::{STATS_COLUMNS, fmt_rate};
use mia::rules::{Direction, Tier};
use mia::shadow::{self, Confusion, ShadowComparison};

use super::{Status, align_right, short_hash, table};

/// Compare the shadow rule set with the live set over a replay's journals.
///
/// Reads the decisions_*.jsonl and trades_*.jsonl of JOURNAL_DIR (the --out folder of a
/// replay with --shadow) and pairs each live decision with the shadow decision on the same
/// snapshot. Reports the agreement rate (same direction and tier), direction and tier
/// confusion tables (live rows, shadow columns), score differences (shadow − live), the
/// hypothetical P&L and win rate of each set's paper trades, and the first divergences.
///
/// Example:
///
///   mia replay data --shadow examples/rules --out out && mia shadow-report out
///
/// Exit codes: 0 success, 2 could not run (no folder, no decision journal, no shadow decisions,
/// a malformed line).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Folder with the replay's decision and trade journals.
    #[arg(value_name = "JOURNAL_DIR")]
    dir: PathBuf,
    /// Output format: `human` (tables) or `json` (one document).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// How many divergences to list, first ones first.
    #[arg(long, value_name = "N", default_value_t = 10)]
    divergences: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Status> {
    let journals = shadow::read_journals(&args.dir)?;
    let comparison = shadow::compare(&journals.decisions, &journals.trades, args.divergences);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Human => human(&mut out, &comparison)?,
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&comparison)?)?,
    }
    Ok(Status::Ok)
}

pub(crate) fn human(out: &mut impl Write, c: &ShadowComparison) -> anyhow::Result<()> {
    writeln!(
        out,
        "live rules {}, shadow rules {}",
        short_hash(&c.live.rules),
        short_hash(&c.shadow.rules)
    )?;
    writeln!(
        out,
        "{} pairs of decisions: {} compared, {} with a rule error, {} unpaired",
        c.pairs,
        c.compared,
        c.pairs - c.compared,
        c.unpaired
    )?;
    writeln!(
        out,
        "agreement (same direction and tier): {} of {} ({})",
        c.agreements,
        c.compared,
        fmt_rate(c.agreement_rate)
    )?;
    let directions = [Direction::Long, Direction::Short, Direction::Flat];
    writeln!(
        out,
        "\ndirections (rows live, columns shadow):\n{}",
        confusion(&c.direction_confusion, &directions, |d| d.as_str())
    )?;
    writeln!(
        out,
        "\ntiers (rows live, columns shadow):\n{}",
        confusion(&c.tier_confusion, &Tier::ALL, |t| t.as_str())
    )?;
    writeln!(out, "\nscore difference (shadow − live): {}", score_line(c))?;
    writeln!(out, "\nhypothetical results:\n{}", results(c))?;
    if c.divergences.is_empty() {
        writeln!(out, "\nno divergences")?;
    } else {
        writeln!(
            out,
            "\nfirst {} of {} divergences:\n{}",
            c.divergences.len(),
            c.divergence_count,
            divergences(c)
        )?;
    }
    Ok(())
}

fn confusion<K: Ord + Copy>(
    table_of: &Confusion<K>,
    keys: &[K],
    name: fn(K) -> &'static str,
) -> Table {
    let mut header = vec!["live \\ shadow".to_owned()];
    header.extend(keys.iter().map(|k| name(*k).to_owned()));
    let mut table = table(header);
    for row in keys {
        let mut cells = vec![name(*row).to_owned()];
        for col in keys {
            let n = table_of
                .get(row)
                .and_then(|r| r.get(col))
                .copied()
                .unwrap_or(0);
            cells.push(n.to_string());
        }
        table.add_row(cells);
    }
    align_right(&mut table, 1);
    table
}

fn score_line(c: &ShadowComparison) -> String {
    let signed = |v: f64| format!("{v:+.2}");
    match (&c.score.mean, &c.score.mean_abs, &c.score.largest) {
        (Some(mean), Some(mean_abs), Some(largest)) => format!(
            "mean {}, mean absolute {:.2}, largest {} at {} {} (live {:.1}, shadow {:.1})",
            signed(*mean),
            mean_abs,
            signed(largest.diff),
            largest.ts,
            largest.instrument,
            largest.live,
            largest.shadow
        ),
        _ => "no pair to compare".to_owned(),
    }
}

fn results(c: &ShadowComparison) -> Table {
    let header = ["set", "rules", "decisions"]
        .into_iter()
        .chain(STATS_COLUMNS)
        .map(str::to_owned)
        .collect();
    let mut table = table(header);
    for (name, set) in [("live", &c.live), ("shadow", &c.shadow)] {
        table.add_row(
            [
                name.to_owned(),
                short_hash(&set.rules).to_owned(),
                set.decisions.to_string(),
            ]
            .into_iter()
            .chain(set.stats.cells())
            .collect::<Vec<_>>(),
        );
    }
    align_right(&mut table, 2);
    table
}

fn divergences(c: &ShadowComparison) -> Table {
    let header = ["time", "instrument", "live", "shadow", "score diff"];
    let mut table = table(header.iter().map(|h| (*h).to_owned()).collect());
    for d in &c.divergences {
        let diff = match (d.live.score(), d.shadow.score()) {
            (Some(l), Some(s)) => format!("{:+.1}", s - l),
            _ => "—".to_owned(),
        };
        table.add_row(vec![
            d.ts.clone(),
            d.instrument.clone(),
            d.live.to_string(),
            d.shadow.to_string(),
            diff,
        ]);
    }
    align_right(&mut table, 4);
    table
}
