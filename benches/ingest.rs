//! Ingest benchmarks (product.md §14: at least 1.5 million Sierra lines a second on one core).
//!
//! * `parse_line`: a realistic mix of lines (every 16th line of the simulated day, so each
//!   record type appears in its real proportion), lines/s and bytes/s;
//! * `drain_full_day`: an [`Ingestor`] reading a simulated full day (1,380 one-minute bars with
//!   quotes, trades, depth and studies, every quirk injected) from disk, single thread;
//! * `collect_once_full_day`: `collect --once` on the same day ([`Collector`], fsync off),
//!   journal included.
//!
//! The day is simulated once per process into a temporary folder, removed at the end
//! (15 minutes only when `cargo test` runs the benchmarks once as a smoke test).
//! Run with `cargo bench --bench ingest` (filters: `-- parse`, `-- drain`, `-- collect`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use mia::clock::ManualClock;
use mia::ingest::Ingestor;
use mia::ingest::collect::{CollectOptions, Collector};
use mia::ingest::naming::{Layout, SourceName};
use mia::ingest::record::{LineContext, parse_line};
use mia::model::Timestamp;
use mia::simulate::SimOptions;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

/// Minutes of the simulated day: the whole Globex session.
const MINUTES: u32 = 1_380;
/// Under `cargo test` (no `--bench` argument) divan runs each benchmark once as a smoke test,
/// in a debug build: a short session is enough there.
const TEST_MINUTES: u32 = 15;
/// One line in this many goes to the `parse_line` sample.
const SAMPLE_EVERY: usize = 16;

struct Day {
    dir: PathBuf,
    data: PathBuf,
    /// Complete lines and bytes of every chart file.
    lines: u64,
    bytes: u64,
    /// (chart, kind) of each sampled file, and the sampled lines with their file index.
    contexts: Vec<(u16, Option<String>)>,
    sample: Vec<(usize, String)>,
}

static DAY: OnceLock<Day> = OnceLock::new();

fn main() {
    divan::main();
    if let Some(day) = DAY.get() {
        let _ = std::fs::remove_dir_all(&day.dir);
    }
}

fn day() -> &'static Day {
    DAY.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("mia-bench-")
            .tempdir()
            .expect("temporary folder")
            .keep();
        let data = dir.join("data");
        let minutes = if std::env::args().any(|a| a == "--bench") {
            MINUTES
        } else {
            TEST_MINUTES
        };
        let opts = SimOptions {
            out: data.clone(),
            minutes,
            seed: 1,
            layout: Layout::Organised,
            quirks: true,
            ..SimOptions::default()
        };
        let report = mia::simulate::run(&opts, &AtomicBool::new(false), &mut |_, _| {})
            .expect("simulate a full day");
        let mut contexts = Vec::new();
        let mut sample = Vec::new();
        let mut files = Vec::new();
        collect_files(&data, &mut files);
        files.sort();
        for path in files {
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(SourceName::parse)
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path).expect("read a simulated file");
            let idx = contexts.len();
            contexts.push((name.chart, name.kind));
            for line in text.lines().step_by(SAMPLE_EVERY) {
                sample.push((idx, line.strip_suffix('\r').unwrap_or(line).to_owned()));
            }
        }
        Day {
            dir,
            data,
            lines: report.lines,
            bytes: report.bytes,
            contexts,
            sample,
        }
    })
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn parse_line_mix(bencher: Bencher<'_, '_>) {
    let day = day();
    let date = chrono::NaiveDate::from_ymd_opt(2025, 9, 19);
    let contexts: Vec<LineContext<'_>> = day
        .contexts
        .iter()
        .map(|(chart, kind)| LineContext {
            chart: *chart,
            kind: kind.as_deref(),
            file_date: date,
            tz: chrono_tz::America::New_York,
        })
        .collect();
    let bytes: usize = day.sample.iter().map(|(_, l)| l.len() + 1).sum();
    bencher
        .counter(ItemsCount::new(day.sample.len()))
        .counter(BytesCount::new(bytes))
        .bench_local(|| {
            let mut ok = 0usize;
            for (idx, line) in &day.sample {
                ok += usize::from(parse_line(black_box(line), &contexts[*idx]).is_ok());
            }
            ok
        });
}

fn ingestor(data: &Path) -> Ingestor {
    let mut ing = Ingestor::new(data, &[3, 4, 8, 10], chrono_tz::America::New_York, 16 << 20)
        .expect("data folder");
    ing.rescan().expect("scan");
    ing
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn drain_full_day(bencher: Bencher<'_, '_>) {
    let day = day();
    bencher
        .counter(ItemsCount::new(day.lines))
        .counter(BytesCount::new(day.bytes))
        .with_inputs(|| ingestor(&day.data))
        .bench_local_values(|mut ing| {
            let mut accepted = 0u64;
            ing.drain(&mut |event| {
                accepted += u64::from(matches!(event.outcome, mia::ingest::Outcome::Accepted(_)));
            });
            (ing, accepted)
        });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn collect_once_full_day(bencher: Bencher<'_, '_>) {
    let day = day();
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_758_312_000)));
    bencher
        .counter(ItemsCount::new(day.lines))
        .counter(BytesCount::new(day.bytes))
        .with_inputs(|| {
            tempfile::Builder::new()
                .prefix("mia-bench-journal-")
                .tempdir()
                .expect("temporary folder")
        })
        .bench_local_values(|out| {
            let opts = CollectOptions {
                data_dir: day.data.clone(),
                journal_dir: out.path().join("journal"),
                state_dir: out.path().join("state"),
                charts: vec![3, 4, 8, 10],
                tz: chrono_tz::America::New_York,
                poll_interval: std::time::Duration::from_millis(100),
                rescan_interval: std::time::Duration::from_secs(1),
                fsync: false,
                max_read: 16 << 20,
                watch: false,
                filters: Default::default(),
            };
            let mut collector = Collector::open(opts, clock.clone()).expect("open");
            collector.step(true, &mut |_, _| {}).expect("collect");
            (collector, out)
        });
}
