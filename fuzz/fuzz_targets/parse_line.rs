//! Sierra lines: `mia::ingest::record::parse_line`, one line at a time and as a file.
//!
//! The input is used three ways:
//!
//! 1. The whole input (lossy UTF-8, borrowed as `&str` when it is valid UTF-8) as one line, parsed
//!    in every `LineContext` the dumpers produce (the four of `tests/it/props.rs` plus the two
//!    typeless chart-4 ones). Never a panic; an accepted record has a non-empty type and a finite
//!    `t` (as the property tests assert), parses again to the same record (parsing is pure) and
//!    is unchanged by `into_owned`.
//! 2. The input as the content of one chart file: its complete lines go through
//!    `ingest::classify_line` with the context the file name gives and one duplicate memory,
//!    as the tailer does; the counters balance (read = accepted + invalid + duplicates).
//! 3. For one input in eight that holds a complete line (chosen by a hash of the input, so that a
//!    crash reproduces), the same file through the real `ingest::Ingestor` (a file on tmpfs),
//!    appended in up to four pieces with a poll after each: the same events and counters as
//!    step 2, and one event per line read. File I/O costs far more than parsing, hence the
//!    sampling; the property tests in `tests/it/props.rs` cover the Ingestor more thoroughly.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mia::ingest::counters::Counters;
use mia::ingest::dedup::Dedup;
use mia::ingest::naming::SourceName;
use mia::ingest::record::{InvalidLine, LineContext, Record, parse_line};
use mia::ingest::{Ingestor, LineEvent, Outcome, classify_line};

/// Chart files the dumpers write (and an undated first-generation one), picked by input hash.
const FILES: &[&str] = &[
    "chart_3_20250919.jsonl",
    "chart_3_quote_20250919.jsonl",
    "chart_4_20250919.jsonl",
    "chart_4_vwap_20250919.jsonl",
    "chart_4.jsonl",
    "chart_10_20250919.jsonl",
    "chart_10_menthorq_20250919.jsonl",
];

fn contexts() -> [LineContext<'static>; 6] {
    let date = chrono::NaiveDate::from_ymd_opt(2025, 9, 19);
    let ny = chrono_tz::America::New_York;
    let ctx = |chart, kind, file_date, tz| LineContext {
        chart,
        kind,
        file_date,
        tz,
    };
    [
        ctx(3, Some("basedata"), date, ny),
        ctx(4, Some("vwap"), date, ny),
        ctx(4, Some("vva"), None, ny),
        ctx(10, None, date, chrono_tz::Europe::Paris),
        // Typeless chart-4 lines: kind from the key set, seconds-of-day or serial `t`.
        ctx(4, None, date, ny),
        ctx(4, None, None, ny),
    ]
}

/// What one line became, comparable across the three paths.
#[derive(Debug, PartialEq)]
enum Seen {
    Accepted(u64, String, String),
    Duplicate(u64, String, String),
    Invalid(u64, String, String),
}

fn seen(line_no: u64, raw: &str, outcome: &Outcome<'_>) -> Seen {
    match outcome {
        Outcome::Accepted(r) => Seen::Accepted(line_no, raw.to_owned(), format!("{r:?}")),
        Outcome::Duplicate(r) => Seen::Duplicate(line_no, raw.to_owned(), format!("{r:?}")),
        Outcome::Invalid(e) => Seen::Invalid(line_no, raw.to_owned(), format!("{e:?}")),
    }
}

fn check_record(line: &str, ctx: &LineContext<'_>, record: &Record<'_>) {
    assert!(!record.kind.is_empty(), "empty kind from {line:?}");
    assert!(record.t.is_finite(), "non-finite t from {line:?}");
    // Debug rather than `==`: a payload may hold a value that is not equal to itself.
    let again = parse_line(line, ctx).expect("an accepted line is accepted again");
    let (first, second) = (format!("{record:?}"), format!("{again:?}"));
    assert_eq!(first, second, "parsing {line:?} twice differs");
    assert_eq!(
        first,
        format!("{:?}", again.into_owned()),
        "into_owned changed the record of {line:?}"
    );
}

/// Step 2: the complete lines of `bytes` as the tailer reads them, without files.
fn classify_file(name: &SourceName, bytes: &[u8]) -> (Vec<Seen>, Counters) {
    let ctx = LineContext {
        chart: name.chart,
        kind: name.kind.as_deref(),
        file_date: name.date,
        tz: chrono_tz::America::New_York,
    };
    let mut dedup = Dedup::default();
    let mut counters = Counters::default();
    let mut out = Vec::new();
    let Some(last_nl) = bytes.iter().rposition(|b| *b == b'\n') else {
        return (out, counters);
    };
    for (n, mut line) in bytes[..last_nl].split(|b| *b == b'\n').enumerate() {
        let line_no = n as u64 + 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            counters.blank += 1;
            continue;
        }
        match std::str::from_utf8(line) {
            Ok(text) => {
                let (outcome, _) = classify_line(text, &ctx, None, &mut dedup, &mut counters);
                if let Outcome::Accepted(r) | Outcome::Duplicate(r) = &outcome {
                    assert!(!r.kind.is_empty() && r.t.is_finite());
                }
                out.push(seen(line_no, text, &outcome));
            }
            Err(_) => {
                let counts = counters.entry(ctx.chart, ctx.kind.unwrap_or("?"));
                counts.read += 1;
                counts.invalid += 1;
                let raw = String::from_utf8_lossy(line);
                let invalid = InvalidLine::Json("not UTF-8".into());
                out.push(Seen::Invalid(
                    line_no,
                    raw.into_owned(),
                    format!("{invalid:?}"),
                ));
            }
        }
    }
    let total = counters.total();
    assert_eq!(
        total.read,
        total.accepted + total.invalid + total.duplicates
    );
    assert_eq!(total.read, out.len() as u64);
    (out, counters)
}

/// A folder on tmpfs for this process, created for each Ingestor run and removed after it.
fn scratch() -> &'static Path {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("mia-fuzz-parse-line-{}", std::process::id()))
    })
}

/// Step 3: the file through the real `Ingestor`, appended in `chunks` with a poll after each.
fn ingest(file: &str, chunks: &[&[u8]]) -> (Vec<Seen>, Counters) {
    let root = scratch();
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).expect("fuzz scratch folder");
    let path = root.join(file);
    std::fs::write(&path, b"").expect("create the chart file");
    let mut ing = Ingestor::new(root, &[3, 4, 10], chrono_tz::America::New_York, 1 << 20)
        .expect("ingestor over the scratch folder");
    ing.rescan().expect("scan the scratch folder");
    let mut out = Vec::new();
    let mut read = 0;
    let mut sink = |e: LineEvent<'_>| {
        assert!(!e.replayed && !e.filtered);
        out.push(seen(e.line_no, e.raw, &e.outcome));
    };
    for chunk in chunks {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open the chart file");
        std::io::Write::write_all(&mut f, chunk).expect("append to the chart file");
        drop(f);
        read += ing.poll(&mut sink).lines;
    }
    read += ing.drain(&mut sink).lines;
    let _ = std::fs::remove_dir_all(root);
    let counters = ing.counters().clone();
    let total = counters.total();
    assert_eq!(
        total.read,
        total.accepted + total.invalid + total.duplicates
    );
    assert_eq!(total.read, out.len() as u64, "one event per line read");
    assert_eq!(read, out.len() as u64, "poll counts every line it reads");
    assert!(ing.take_unreadable().is_empty());
    (out, counters)
}

/// FNV-1a, to derive the file name and the cut points from the input itself.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Cuts `data` into up to four pieces at points derived from a seed.
fn pieces(data: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut cuts: Vec<usize> = (0..3)
        .map(|i| ((seed >> (i * 16)) & 0xffff) as usize % (data.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.into_iter().chain([data.len()]) {
        if end > start {
            out.push(&data[start..end]);
            start = end;
        }
    }
    out
}

/// One input in this many also goes through the Ingestor.
const INGESTOR_EVERY: u64 = 8;

fuzz_target!(|data: &[u8]| {
    // 1. The whole input as one line.
    let text = String::from_utf8_lossy(data);
    for ctx in &contexts() {
        if let Ok(record) = parse_line(&text, ctx) {
            check_record(&text, ctx, &record);
        }
    }

    // 2. The input as a chart file, without files.
    let h = hash(data);
    let file = FILES[(h % FILES.len() as u64) as usize];
    let name = SourceName::parse(file).expect("a chart file name");
    let (expected, counters) = classify_file(&name, data);

    // 3. Sometimes, the same file through the Ingestor, appended in pieces.
    if (h >> 48) % INGESTOR_EVERY != 0 || !data.contains(&b'\n') {
        return;
    }
    let (events, ingested) = ingest(file, &pieces(data, h));
    assert_eq!(events, expected, "the Ingestor and classify_line disagree");
    assert_eq!(ingested, counters);
});
