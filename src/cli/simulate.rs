//! `mia simulate`: a realistic Sierra session written as the dumpers write it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{NaiveDate, NaiveTime};
use indicatif::{ProgressBar, ProgressStyle};
use mia::clock::{Clock, LiveClock, Stopwatch};
use mia::ingest::naming::{Layout, parse_yyyymmdd};
use mia::model::utc_to_local;
use mia::simulate::{self, SimOptions};

use super::Status;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LayoutArg {
    /// Charts 3 and 10 in the DATA_SIERRA_CHART tree, charts 4 and 8 flat (what the current
    /// studies do).
    Organised,
    /// Every file flat in the output folder.
    Flat,
    /// One file per chart and day, chart_<N>_<YYYYMMDD>.jsonl (the original design's naming).
    PerChart,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output folder (the Sierra data folder to simulate).
    #[arg(long, value_name = "DIR", default_value = "demo-data")]
    out: PathBuf,
    /// Trading day, YYYYMMDD (default: today in New York).
    #[arg(long, value_name = "YYYYMMDD", value_parser = parse_day)]
    day: Option<NaiveDate>,
    /// First bar, HH:MM chart time.
    #[arg(long, value_name = "HH:MM", default_value = "09:30", value_parser = parse_time)]
    start: NaiveTime,
    /// Number of one-minute bars (390 = the regular session, 1380 = the whole Globex day).
    #[arg(long, value_name = "N", default_value_t = 390)]
    minutes: u32,
    /// Random seed: the same seed, day and options give byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// File layout.
    #[arg(long, value_enum, default_value = "organised")]
    layout: LayoutArg,
    /// Inject every real-world quirk of the dumper files (CRLF, partial last line, nan tokens,
    /// T&S replays, %.1f MenthorQ prices, crossed quotes, zero sentinels, empty files, …).
    #[arg(long)]
    quirks: bool,
    /// Append lines over time like Sierra does, FACTOR times faster than real time
    /// (60 = one simulated minute per second).
    #[arg(long, value_name = "FACTOR")]
    realtime: Option<f64>,
    /// Instrument root (ES, NQ, MES, MNQ, YM, RTY).
    #[arg(long, default_value = "ES")]
    root: String,
    /// Sierra symbol (default: the front quarterly contract of the root for the day).
    #[arg(long)]
    symbol: Option<String>,
}

fn parse_day(s: &str) -> Result<NaiveDate, String> {
    parse_yyyymmdd(s).ok_or_else(|| format!("`{s}` is not a date YYYYMMDD"))
}

fn parse_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("`{s}` is not a time HH:MM"))
}

pub(crate) fn run(args: Args) -> anyhow::Result<Status> {
    if let Some(factor) = args.realtime
        && !(factor.is_finite() && factor > 0.0)
    {
        anyhow::bail!("--realtime must be a positive factor, got {factor}");
    }
    let tz = chrono_tz::America::New_York;
    let day = match args.day {
        Some(day) => day,
        None => utc_to_local(LiveClock.now(), tz)
            .map(|d| d.date())
            .context("the clock is out of range")?,
    };
    let opts = SimOptions {
        out: args.out.clone(),
        day,
        start: args.start,
        minutes: args.minutes,
        seed: args.seed,
        layout: match args.layout {
            LayoutArg::Organised => Layout::Organised,
            LayoutArg::Flat => Layout::Flat,
            LayoutArg::PerChart => Layout::PerChart,
        },
        quirks: args.quirks,
        realtime: args.realtime,
        symbol: args.symbol.clone(),
        root: args.root.clone(),
        tz,
        ..SimOptions::default()
    };
    let stop = super::stop_flag();
    let bar = ProgressBar::new(u64::from(args.minutes));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} simulating {pos}/{len} minutes [{bar:30}] {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = Stopwatch::start();
    let report = simulate::run(&opts, &stop, &mut |done, _total| {
        bar.set_position(u64::from(done))
    })
    .with_context(|| format!("cannot simulate into {}", args.out.display()))?;
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wrote {} lines ({:.1} MiB) in {} files to {} in {:.2} s{}",
        report.lines,
        report.bytes as f64 / (1024.0 * 1024.0),
        report.files,
        args.out.display(),
        started.elapsed().as_secs_f64(),
        if args.quirks { ", with quirks" } else { "" },
    )?;
    writeln!(out, "manifest: {}", report.manifest_path.display())?;
    Ok(Status::Ok)
}
