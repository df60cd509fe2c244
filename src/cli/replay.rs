//! `mia replay`: recorded files through the whole pipeline with paper execution.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};
use mia::clock::Stopwatch;
use mia::config::Config;
use mia::perf::{Performance, STATS_COLUMNS, Stats, vix_group_name};
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
    /// Write a self-contained HTML report (equity curve, drawdown, results by tier and VIX
    /// policy, the shadow comparison) to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
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
    let live = summary.sets.iter().find(|s| s.name == "live");
    let shadow = summary.sets.iter().find(|s| s.name == "shadow");
    let comparison = shadow.zip(live).map(|(shadow, live)| {
        let records: Vec<_> = live
            .records
            .iter()
            .chain(&shadow.records)
            .cloned()
            .collect();
        let trades: Vec<_> = live.trades.iter().chain(&shadow.trades).cloned().collect();
        mia::shadow::compare(&records, &trades, 10)
    });
    if let Some(c) = &comparison {
        writeln!(out, "\n== shadow comparison")?;
        super::shadow_report::human(&mut out, c)?;
    }
    if let (Some(path), Some(live)) = (&args.report, live) {
        let html = mia::report::render(&mia::report::ReportInput {
            title: &format!("mia replay of {}", args.data.display()),
            live: &live.trades,
            shadow: shadow.map(|s| s.trades.as_slice()),
            comparison: comparison.as_ref(),
        });
        std::fs::write(path, html)
            .with_context(|| format!("cannot write the report {}", path.display()))?;
        writeln!(out, "report: {}", path.display())?;
    }
    for journal in &summary.journals {
        writeln!(out, "journal: {}", journal.display())?;
    }
    Ok(Status::Ok)
}

/// Performance of a set's paper trades: overall, then by tier, VIX policy and direction.
fn performance(trades: &[mia::perf::Trade]) -> Table {
    let p = Performance::from_trades(trades);
    let header = std::iter::once("group")
        .chain(STATS_COLUMNS)
        .map(str::to_owned)
        .collect();
    let mut table = super::table(header);
    let mut row = |name: String, s: &Stats| {
        table.add_row(std::iter::once(name).chain(s.cells()).collect::<Vec<_>>());
    };
    row("all".to_owned(), &p.overall);
    for (tier, s) in &p.by_tier {
        row(tier.as_str().to_owned(), s);
    }
    for (policy, s) in &p.by_vix_policy {
        row(format!("VIX {}", vix_group_name(*policy)), s);
    }
    for (direction, s) in &p.by_direction {
        row(direction.as_str().to_owned(), s);
    }
    super::align_right(&mut table, 1);
    table
}

fn print_set(out: &mut impl Write, set: &SetSummary, dir: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "\n== {} set: {dir} ({}), {} rule errors",
        set.name,
        super::short_hash(&set.rules_hash),
        set.rule_errors
    )?;
    let mut table = super::table(
        ["tier", "long", "short", "flat", "all"]
            .iter()
            .map(|h| (*h).to_owned())
            .collect(),
    );
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
    super::align_right(&mut table, 1);
    writeln!(out, "decisions:\n{table}")?;
    for (title, header, counts) in [
        ("vetoes by hard rule", "veto", &set.vetoes),
        ("risk verdicts", "verdict", &set.risk),
    ] {
        if counts.is_empty() {
            continue;
        }
        let mut table = super::table(vec![header.to_owned(), "decisions".to_owned()]);
        for (name, n) in counts {
            table.add_row(vec![name.clone(), n.to_string()]);
        }
        super::align_right(&mut table, 1);
        writeln!(out, "{title}:\n{table}")?;
    }
    writeln!(out, "paper trades:\n{}", performance(&set.trades))?;
    if !set.errors.is_empty() {
        writeln!(out, "rule errors:")?;
        for (message, n) in set.errors.iter().take(10) {
            writeln!(out, "  {n} × {message}")?;
        }
    }
    Ok(())
}
