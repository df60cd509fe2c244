//! `mia replay`: recorded files through the whole pipeline with paper execution.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use mia::clock::Stopwatch;
use mia::config::Config;
use mia::replay::{self, ReplayOptions, SetSummary};
use mia::rules::{Direction, Tier};

use super::Status;

/// Replay recorded chart files through snapshot, features, rules, risk and paper execution.
///
/// The same pipeline as `mia run`, with a replay clock: one decision per completed one-minute
/// bar, risk checks against a paper account, and brackets filled from the bars (the stop first
/// when one bar reaches both; slippage and commission from [execution] in the config).
/// Writes decisions_YYYYMMDD.jsonl, orders_YYYYMMDD.jsonl and trades_YYYYMMDD.jsonl to --out.
/// The same inputs, rules and config give byte-identical journals.
///
/// Examples:
///
///   mia replay demo-data --out replay
///
///   mia replay D:/archive --from 2025-09-15 --to 2025-09-19 --shadow examples/rules
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Recorded data folder (chart files as Sierra wrote them, any layout, one day or many).
    data: PathBuf,
    /// Live rule set folder (its strategy.rhai defines fn decide(s)).
    #[arg(long, value_name = "DIR", default_value = "rules")]
    rules: PathBuf,
    /// Shadow rule set, evaluated on the same snapshots and paper-traded on its own account.
    #[arg(long, value_name = "DIR")]
    shadow: Option<PathBuf>,
    /// First trading day to replay (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    from: Option<NaiveDate>,
    /// Last trading day to replay (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    to: Option<NaiveDate>,
    /// Where to write the journals (earlier decision, order and trade journals there are
    /// replaced).
    #[arg(long, value_name = "DIR", default_value = "replay")]
    out: PathBuf,
    /// Also journal each evaluation's time in µs (journals then differ between runs).
    #[arg(long)]
    timings: bool,
}

pub(crate) fn run(config: &Config, args: Args) -> anyhow::Result<Status> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from > to
    {
        anyhow::bail!("--from {from} is after --to {to}");
    }
    let opts = ReplayOptions {
        data_dir: args.data.clone(),
        out_dir: args.out.clone(),
        rules_dir: args.rules.clone(),
        shadow_dir: args.shadow.clone(),
        from: args.from,
        to: args.to,
        timings: args.timings,
    };
    let stop = super::stop_flag();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} replaying [{bar:30}] {bytes}/{total_bytes} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = Stopwatch::start();
    let summary = replay::run(config, &opts, &stop, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("cannot replay {}", args.data.display()))?;
    bar.finish_and_clear();

    let mut out = std::io::stdout().lock();
    let total = summary.counters.total();
    writeln!(
        out,
        "replayed {} lines ({} accepted, {} invalid, {} duplicates) in {:.2} s; {} evaluation points",
        total.read,
        total.accepted,
        total.invalid,
        total.duplicates,
        started.elapsed().as_secs_f64(),
        summary.evaluations,
    )?;
    for set in &summary.sets {
        let dir = if set.name == "shadow" {
            args.shadow.as_ref().unwrap_or(&args.rules)
        } else {
            &args.rules
        };
        print_set(&mut out, set, &dir.display().to_string())?;
    }
    for journal in &summary.journals {
        writeln!(out, "journal: {}", journal.display())?;
    }
    Ok(Status::Ok)
}

fn right_align(table: &mut Table, from: usize) {
    for idx in from..table.column_count() {
        if let Some(col) = table.column_mut(idx) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn print_set(out: &mut impl Write, set: &SetSummary, dir: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "\n== {} set: {dir} ({}), {} rule errors",
        set.name,
        &set.rules_hash[..12.min(set.rules_hash.len())],
        set.rule_errors
    )?;
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(vec!["tier", "long", "short", "flat", "all"]);
    for tier in Tier::ALL {
        let count = |d: Direction| set.decisions.get(&(tier, d)).copied().unwrap_or(0);
        let (l, s, f) = (
            count(Direction::Long),
            count(Direction::Short),
            count(Direction::Flat),
        );
        table.add_row(vec![
            tier.as_str().to_owned(),
            l.to_string(),
            s.to_string(),
            f.to_string(),
            (l + s + f).to_string(),
        ]);
    }
    right_align(&mut table, 1);
    writeln!(out, "decisions:\n{table}")?;
    for (title, header, counts) in [
        ("vetoes by hard rule", "veto", &set.vetoes),
        ("risk verdicts", "verdict", &set.risk),
    ] {
        if counts.is_empty() {
            continue;
        }
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_header(vec![header, "decisions"]);
        for (name, n) in counts {
            table.add_row(vec![name.clone(), n.to_string()]);
        }
        right_align(&mut table, 1);
        writeln!(out, "{title}:\n{table}")?;
    }
    let wins = set.trades.iter().filter(|t| t.pnl > 0.0).count();
    let net: f64 = set.trades.iter().map(|t| t.pnl).sum();
    writeln!(
        out,
        "paper trades: {}, {} won, net {:.2} $",
        set.trades.len(),
        wins,
        net
    )?;
    if !set.errors.is_empty() {
        writeln!(out, "rule errors:")?;
        for (message, n) in set.errors.iter().take(10) {
            writeln!(out, "  {n} × {message}")?;
        }
    }
    Ok(())
}
