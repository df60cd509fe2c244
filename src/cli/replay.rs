//! `mia replay`: recorded files through snapshot, features and rules, read-only.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use mia::clock::Stopwatch;
use mia::config::Config;
use mia::replay::{self, ReplayOptions};
use mia::rules::{Direction, Tier};

use super::Status;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Recorded data folder (chart files as Sierra wrote them, any layout).
    data: PathBuf,
    /// Rule set folder (its strategy.rhai defines fn decide(s)).
    #[arg(long, value_name = "DIR", default_value = "rules")]
    rules: PathBuf,
    /// Where to write decisions_YYYYMMDD.jsonl (earlier ones there are replaced).
    #[arg(long, value_name = "DIR", default_value = "replay")]
    out: PathBuf,
    /// Also journal each evaluation's time in µs (journals then differ between runs).
    #[arg(long)]
    timings: bool,
}

pub(crate) fn run(config: &Config, args: Args) -> anyhow::Result<Status> {
    let opts = ReplayOptions {
        data_dir: args.data.clone(),
        out_dir: args.out.clone(),
        rules_dir: args.rules.clone(),
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
        "replayed {} lines ({} accepted, {} invalid, {} duplicates) in {:.2} s; rules {} ({})",
        total.read,
        total.accepted,
        total.invalid,
        total.duplicates,
        started.elapsed().as_secs_f64(),
        args.rules.display(),
        &summary.rules_hash[..12],
    )?;
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(vec!["tier", "long", "short", "flat", "all"]);
    for tier in Tier::ALL {
        let count = |d: Direction| summary.decisions.get(&(tier, d)).copied().unwrap_or(0);
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
    for idx in 1..5 {
        if let Some(col) = table.column_mut(idx) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    writeln!(
        out,
        "\n{} evaluations, {} rule errors:\n{table}",
        summary.evaluations, summary.rule_errors
    )?;
    for (title, header, counts) in [
        ("vetoes by hard rule", "veto", &summary.vetoes),
        (
            "risk verdicts (a fresh account: no execution in replay yet)",
            "verdict",
            &summary.risk,
        ),
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
        writeln!(out, "\n{title}:\n{table}")?;
    }
    if !summary.errors.is_empty() {
        writeln!(out, "\nrule errors:")?;
        for (message, n) in summary.errors.iter().take(10) {
            writeln!(out, "  {n} × {message}")?;
        }
    }
    for journal in &summary.journals {
        writeln!(out, "decisions: {}", journal.display())?;
    }
    Ok(Status::Ok)
}
