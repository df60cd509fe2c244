//! `mia collect`: ingest plus the unified journal, with a counter table at the end.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use mia::clock::{Clock, LiveClock, Stopwatch};
use mia::config::Config;
use mia::ingest::collect::{CollectOptions, Collector};
use mia::model::Timestamp;
use mia::snapshot::SnapshotStore;

use super::Status;

/// How many rejected lines the report lists before pointing at the rejects journal.
const LIST_REJECTS: usize = 20;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Charts to read, comma-separated (default from config: 3,4,8,10).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    charts: Option<Vec<u16>>,
    /// Read what is there now and stop, instead of tailing until Ctrl-C.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    folders: super::Folders,
}

pub(crate) fn run(config: &Config, args: Args) -> anyhow::Result<Status> {
    let mut opts = CollectOptions::from_config(config);
    if let Some(charts) = args.charts {
        opts.charts = charts;
    }
    args.folders.apply(
        &mut opts.data_dir,
        &mut opts.journal_dir,
        &mut opts.state_dir,
    );
    let data_dir = opts.data_dir.clone();
    let stop = super::stop_flag();
    let started = Stopwatch::start();
    let mut collector = Collector::open(opts, Arc::new(LiveClock))
        .with_context(|| format!("cannot start collecting from {}", data_dir.display()))?;
    if !args.once {
        tracing::info!(
            files = collector.ingestor().sources().count(),
            "tailing; Ctrl-C to stop"
        );
    }
    // The snapshot is built alongside. In follow mode its clock is the wall clock; with --once
    // over recorded files it is the latest record time, so that ages read as in a replay.
    let mut store = SnapshotStore::new(config);
    let mut latest = Timestamp::default();
    let live = LiveClock;
    collector.run(args.once, &stop, &mut |source, record| {
        latest = latest.max(record.ts);
        let now = if args.once { latest } else { live.now() };
        store.apply(source.name.chart, record, now);
    })?;
    report(&collector, started.elapsed())?;
    let now = if args.once { latest } else { live.now() };
    report_snapshots(&store, now, config)?;
    Ok(Status::Ok)
}

fn fmt_price(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_owned(), |p| format!("{p:.2}"))
}

fn report_snapshots(store: &SnapshotStore, now: Timestamp, config: &Config) -> anyhow::Result<()> {
    let in_session = store.in_session(now);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "instrument",
        "last",
        "bid/ask",
        "vwap ±1σ",
        "value area",
        "vix",
        "levels",
        "stale",
    ]);
    let mut any = false;
    for s in store
        .snapshots()
        .iter()
        .filter(|s| s.bar.is_some() || !s.levels.is_empty())
    {
        any = true;
        let stale: Vec<String> = s
            .ages(now, &config.staleness, in_session)
            .iter()
            .filter(|a| a.stale)
            .map(|a| format!("{:?}", a.source).to_lowercase())
            .collect();
        table.add_row(vec![
            s.instrument.clone(),
            fmt_price(s.last_price),
            format!("{}/{}", fmt_price(s.bid), fmt_price(s.ask)),
            s.vwap.map_or_else(
                || "-".into(),
                |v| format!("{:.2} ±{:.2}", v.vwap, v.sigma().unwrap_or(0.0)),
            ),
            s.value_area.map_or_else(
                || "-".into(),
                |a| format!("{:.2}–{:.2} poc {:.2}", a.val, a.vah, a.vpoc),
            ),
            s.vix.map_or_else(|| "-".into(), |v| format!("{v:.2}")),
            s.levels.len().to_string(),
            if stale.is_empty() {
                "none".into()
            } else {
                stale.join(",")
            },
        ]);
    }
    if any {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "\nmarket snapshot at {}:\n{table}",
            now.to_iso_millis()
        )?;
    }
    Ok(())
}

fn report(collector: &Collector, elapsed: std::time::Duration) -> anyhow::Result<()> {
    let ingestor = collector.ingestor();
    let counters = ingestor.counters();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "chart",
        "type",
        "read",
        "accepted",
        "invalid",
        "duplicates",
        "unknown",
        "flagged",
    ]);
    let mut add = |chart: String, kind: String, c: &mia::ingest::counters::Counts| {
        table.add_row(vec![
            chart,
            kind,
            c.read.to_string(),
            c.accepted.to_string(),
            c.invalid.to_string(),
            c.duplicates.to_string(),
            c.unknown.to_string(),
            c.flagged.to_string(),
        ]);
    };
    for (chart, kind, counts) in counters.rows() {
        add(chart.to_string(), kind, &counts);
    }
    let total = counters.total();
    add("all".into(), String::new(), &total);
    for idx in 2..8 {
        if let Some(col) = table.column_mut(idx) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{table}")?;
    let secs = elapsed.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "{} files, {} lines in {:.2} s ({:.0} lines/s); {} records journaled to {}",
        ingestor.sources().count(),
        total.read,
        secs,
        total.read as f64 / secs,
        collector.journaled(),
        collector.journal_dir().display()
    )?;
    let rejects = collector.rejects();
    if total.invalid > 0 {
        writeln!(out, "\n{} rejected line(s):", total.invalid)?;
        for r in rejects.iter().take(LIST_REJECTS) {
            writeln!(out, "  {}:{}: {}", r.file, r.line, r.reason)?;
        }
        if total.invalid > LIST_REJECTS as u64 {
            writeln!(
                out,
                "  … and {} more, all listed in {}/mia_rejects_*.jsonl",
                total.invalid - LIST_REJECTS as u64,
                collector.journal_dir().display()
            )?;
        }
    }
    let pending = ingestor.pending();
    if !pending.is_empty() {
        writeln!(
            out,
            "\nwaiting for the end of a partial last line (read when Sierra finishes it):"
        )?;
        for (file, bytes) in pending {
            writeln!(out, "  {file}: {bytes} bytes")?;
        }
    }
    Ok(())
}
