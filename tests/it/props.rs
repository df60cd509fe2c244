//! Property tests: no input can make ingestion panic, and over a file of valid lines mixed with
//! garbage, appended in random pieces, every valid line is accepted once (or counted as a
//! duplicate by the dedup rule), every garbage line is counted invalid, and nothing is dropped
//! silently. Case counts are bounded so that the whole module runs in seconds.

use std::collections::{BTreeMap, BTreeSet};

use mia::ingest::Ingestor;
use mia::ingest::record::{LineContext, parse_line};
use mia::journal::Checkpoint;
use proptest::prelude::*;

use crate::support::{
    Verdict, append, collect_opts, drain, journal_data, open_collector, poll, read_journals, tmp,
};

fn contexts() -> [LineContext<'static>; 4] {
    let date = chrono::NaiveDate::from_ymd_opt(2025, 9, 19);
    let ny = chrono_tz::America::New_York;
    [
        LineContext {
            chart: 3,
            kind: Some("basedata"),
            file_date: date,
            tz: ny,
        },
        LineContext {
            chart: 4,
            kind: Some("vwap"),
            file_date: date,
            tz: ny,
        },
        LineContext {
            chart: 4,
            kind: Some("vva"),
            file_date: None,
            tz: ny,
        },
        LineContext {
            chart: 10,
            kind: None,
            file_date: date,
            tz: chrono_tz::Europe::Paris,
        },
    ]
}

/// Valid lines of every record type the dumpers write (sierra-format.md §2 examples).
const VALID: &[&str] = &[
    r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"basedata","i":14022,"o":6498.25000000,"h":6499.50000000,"l":6497.75000000,"c":6499.00000000,"v":1467,"bidvol":655,"askvol":812,"chart":3}"#,
    r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"vwap","src":"study","i":14022,"v":6496.50000000,"up1":6501.25000000,"dn1":6487.00000000,"up2":6506.00000000,"dn2":6482.25000000,"up3":6510.75000000,"dn3":6477.50000000,"chart":3}"#,
    r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"vva","i":14022,"vah":6503.25000000,"val":6484.50000000,"vpoc":6492.00000000,"pvah":6488.75000000,"pval":6461.25000000,"ppoc":6475.50000000,"id_curr":1,"id_prev":2,"chart":3}"#,
    r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"pvwap","i":14022,"prev_start":12587,"prev_end":13087,"pvwap":6475.37129340,"up1":6481.12884515,"dn1":6469.61374165,"up2":6486.88639690,"dn2":6463.85618990,"chart":3}"#,
    r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"nbcv","i":14022,"ask_volume":812,"bid_volume":655,"delta":157,"trades":389,"cumulative_delta":-2314,"total_volume":1467,"delta_ratio":0.107021,"ask_percent":0.553511,"bid_percent":0.446489,"bid_ask_ratio":0.806650,"ask_bid_ratio":1.239695,"pressure_bullish":1,"pressure_bearish":0,"pressure":1,"chart":3}"#,
    r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"depth","side":"ASK","lvl":3,"price":6499.75000000,"size":41,"chart":3}"#,
    r#"{"t":45919.563337,"sym":"ESZ25_FUT_CME","type":"quote","kind":"BIDASK","bid":6498.75000000,"ask":6499.00000000,"bq":14,"aq":9,"seq":48213377,"chart":3}"#,
    r#"{"t":45919.563338,"sym":"ESZ25_FUT_CME","type":"trade","side":"BUY","px":6499.00000000,"vol":3,"seq":48213378,"tt":2,"chart":3}"#,
    r#"{"t":45919.563338,"sym":"ESZ25_FUT_CME","type":"trade_summary","buy_trades":11904,"sell_trades":11392,"buy_vol":30551,"sell_vol":29876,"chart":3}"#,
    r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"cumulative_delta","i":14022,"close":-2314.000000,"study":32,"sg":3,"chart":3}"#,
    r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"atr","i":14022,"atr":2.812500,"study":45,"sg":0,"chart":3}"#,
    r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"vix","i":14022,"vix":15.420000,"study":23,"sg":3,"chart":3}"#,
    r#"{"t":45919.646528,"type":"vix","i":6121,"open":15.400000,"high":15.450000,"low":15.390000,"close":15.420000,"volume":0,"chart":8}"#,
    r#"{"t":45919.645833,"sym":"ESZ25_FUT_CME","type":"menthorq_level","level_type":"blind_spot_3","price":6487.8,"subgraph":3,"study_id":3,"i":1403,"chart":10}"#,
    r#"{"t":45919.645833,"sym":"ESZ25_FUT_CME[M]  1 Min  #10","type":"menthorq_level","level_type":"gex_1","price":6500.00,"subgraph":9,"study_id":1,"bar":1403,"chart":10}"#,
    r#"{"t":45919.645833,"sym":"ESZ25_FUT_CME","type":"correlation","cc":0.934512,"study_id":4,"sg":0,"i":1403,"chart":10}"#,
    r#"{"sym":"ESZ25_FUT_CME","t":45919.645833333,"i":467,"vwap":6491.737305,"sd1":6496.489258,"sd2":6486.985352,"sd3":6501.241211,"sd4":6482.233398,"sd5":6505.993164,"sd6":6477.481445}"#,
    r#"{"sym":"ESZ25_FUT_CME","t":55800.000000,"i":467,"poc":6492.000000,"vah":6503.250000,"val":6484.500000}"#,
    r#"{"t":45919.646528,"type":"nbcv_bind","chart":3,"study_id":33,"sg":{"ask":6,"bid":7,"delta":1,"trades":12,"cum":"study33_sg4_close"}}"#,
];

const TOKENS: &[&str] = &[
    "nan",
    "-nan(ind)",
    "inf",
    "-inf",
    "1e999",
    "-1e308",
    "18446744073709551616",
    "null",
    "\"",
    "}",
    "{",
    ",",
    ":",
    "[",
    "\\u0000",
    "\u{00e9}",
    "\"t\":1,",
    "\"type\":\"quote\",",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, usize),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        (any::<usize>(), 1..20usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn mutate(line: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = line.as_bytes().to_vec();
    for m in mutations {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *m {
            Mutation::Flip(i, b) if !bytes.is_empty() => {
                let i = i % bytes.len();
                bytes[i] ^= b;
            }
            Mutation::Flip(..) => {}
            Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len())),
            Mutation::Insert(i, t) => {
                let i = at(i, bytes.len());
                bytes.splice(i..i, TOKENS[t].bytes());
            }
            Mutation::Delete(i, n) => {
                let i = at(i, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
        }
    }
    bytes
}

fn parse_all_contexts(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for ctx in &contexts() {
        if let Ok(record) = parse_line(&text, ctx) {
            // Whatever parses has a type and a finite time.
            assert!(!record.kind.is_empty());
            assert!(record.t.is_finite());
        }
    }
}

/// An ingestor over a fresh folder with one file, fed `chunks` one poll at a time.
fn feed(file: &str, chunks: &[Vec<u8>]) -> (tempfile::TempDir, Ingestor, u64) {
    let dir = tmp();
    let path = dir.path().join(file);
    std::fs::write(&path, b"").unwrap();
    let mut ing = crate::support::ingestor(dir.path(), &[3, 4, 10]);
    let mut events = 0;
    for chunk in chunks {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, chunk).unwrap();
        drop(f);
        events += poll(&mut ing).len() as u64;
    }
    events += drain(&mut ing).len() as u64;
    (dir, ing, events)
}

fn check_books_balance(ing: &Ingestor, events: u64) {
    let total = ing.counters().total();
    assert_eq!(
        total.read,
        total.accepted + total.invalid + total.duplicates,
        "{total:?}"
    );
    assert_eq!(events, total.read, "one event per line read");
}

/// Bounded case counts; failures are saved beside the other test data.
fn config(cases: u32) -> ProptestConfig {
    crate::support::proptest_config(cases, "tests/data/proptest-regressions/props.txt")
}

// ---------------------------------------------------------------------------------------------
// A file of valid lines and garbage, and the dedup rule as a model.

#[derive(Debug, Clone)]
enum Item {
    /// A quote with this seq (small range: replays happen).
    Quote(u32),
    /// A trade with this seq (its own stream: may share seqs with quotes).
    Trade(u32),
    /// A basedata snapshot of bar `i` with close index `c` (small ranges: identical repeats
    /// happen).
    Bar(u32, u32),
    /// A line that can never be a valid record.
    Garbage(Garbage),
    /// An empty line.
    Blank,
}

#[derive(Debug, Clone)]
enum Garbage {
    /// A valid line with a NaN/Inf token in a number.
    Token(usize),
    /// A strict prefix of a valid line (a torn write).
    Torn(usize),
    /// Text that is not a JSON object.
    Text(String),
    /// A JSON object without `t`.
    NoTime(u32),
    /// A known type without a required field.
    Missing(u32),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => (0..40u32).prop_map(Item::Quote),
        2 => (0..40u32).prop_map(Item::Trade),
        4 => (0..6u32, 0..3u32).prop_map(|(i, c)| Item::Bar(i, c)),
        1 => (0..4usize).prop_map(|t| Item::Garbage(Garbage::Token(t))),
        1 => any::<usize>().prop_map(|n| Item::Garbage(Garbage::Torn(n))),
        1 => "[a-zA-Z][ -~]{0,40}".prop_map(|s| Item::Garbage(Garbage::Text(s))),
        1 => (0..40u32).prop_map(|s| Item::Garbage(Garbage::NoTime(s))),
        1 => (0..6u32).prop_map(|i| Item::Garbage(Garbage::Missing(i))),
        1 => Just(Item::Blank),
    ]
}

fn quote_line(seq: u32) -> String {
    format!(
        r#"{{"t":45919.5633{:02},"sym":"ESZ25_FUT_CME","type":"quote","kind":"BIDASK","bid":6498.75,"ask":6499.0,"bq":14,"aq":9,"seq":{seq},"chart":3}}"#,
        seq % 100
    )
}

fn trade_line(seq: u32) -> String {
    format!(
        r#"{{"t":45919.5633{:02},"sym":"ESZ25_FUT_CME","type":"trade","side":"SELL","px":6498.75,"vol":2,"seq":{seq},"tt":1,"chart":3}}"#,
        seq % 100
    )
}

fn bar_line(i: u32, c: u32) -> String {
    format!(
        r#"{{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"basedata","i":{},"o":6498.25,"h":6499.5,"l":6497.75,"c":{}.25,"v":14,"bidvol":6,"askvol":8,"chart":3}}"#,
        14_000 + i,
        6498 + c
    )
}

impl Item {
    fn text(&self) -> String {
        match self {
            Item::Quote(s) => quote_line(*s),
            Item::Trade(s) => trade_line(*s),
            Item::Bar(i, c) => bar_line(*i, *c),
            Item::Blank => String::new(),
            Item::Garbage(g) => match g {
                Garbage::Token(t) => {
                    bar_line(1, 1).replace("6499.25", ["nan", "-nan(ind)", "inf", "-inf"][*t])
                }
                Garbage::Torn(n) => {
                    let full = quote_line(7);
                    full[..1 + n % (full.len() - 1)].to_owned()
                }
                Garbage::Text(s) => s.clone(),
                Garbage::NoTime(s) => {
                    format!(r#"{{"sym":"ESZ25_FUT_CME","type":"quote","bid":1,"ask":2,"seq":{s}}}"#)
                }
                Garbage::Missing(i) => {
                    format!(r#"{{"t":45919.646528,"type":"basedata","i":{i},"o":1,"h":2,"l":0.5}}"#)
                }
            },
        }
    }
}

/// The dedup rule: quotes and trades by (stream, seq), other records by (stream, index) with the
/// last accepted bytes. Returns the expected verdict of each non-blank line, by line number.
fn model(items: &[Item]) -> Vec<(u64, Verdict)> {
    let mut quotes = BTreeSet::new();
    let mut trades = BTreeSet::new();
    let mut bars: BTreeMap<u32, String> = BTreeMap::new();
    let mut out = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let line_no = n as u64 + 1;
        let verdict = match item {
            Item::Blank => continue,
            Item::Garbage(_) => Verdict::Invalid(String::new()),
            Item::Quote(s) => fresh(quotes.insert(*s)),
            Item::Trade(s) => fresh(trades.insert(*s)),
            Item::Bar(i, _) => {
                let text = item.text();
                fresh(
                    bars.insert(*i, text.clone())
                        .is_none_or(|last| last != text),
                )
            }
        };
        out.push((line_no, verdict));
    }
    out
}

fn fresh(new: bool) -> Verdict {
    if new {
        Verdict::Accepted
    } else {
        Verdict::Duplicate
    }
}

/// The file bytes (each line with LF or CRLF) cut at `cuts`.
fn file_chunks(items: &[Item], crlf: &[bool], cuts: &[usize]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut bytes = Vec::new();
    for (n, item) in items.iter().enumerate() {
        bytes.extend_from_slice(item.text().as_bytes());
        bytes.extend_from_slice(if crlf[n % crlf.len()] { b"\r\n" } else { b"\n" });
    }
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        if p > start {
            chunks.push(bytes[start..p].to_vec());
            start = p;
        }
    }
    (bytes, chunks)
}

fn accepted_texts(items: &[Item], expected: &[(u64, Verdict)]) -> Vec<String> {
    expected
        .iter()
        .filter(|(_, v)| *v == Verdict::Accepted)
        .map(|(n, _)| items[*n as usize - 1].text())
        .collect()
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn parse_line_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        parse_all_contexts(&bytes);
    }

    #[test]
    fn parse_line_never_panics_on_mutated_valid_lines(
        which in 0..VALID.len(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        parse_all_contexts(&mutate(VALID[which], &mutations));
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn ingest_never_panics_on_random_file_content(
        chunks in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![8 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(b'{')], 0..200),
            1..8,
        ),
        per_chart in any::<bool>(),
    ) {
        let file = if per_chart { "chart_3_20250919.jsonl" } else { "chart_4_vwap_20250919.jsonl" };
        let (_dir, ing, events) = feed(file, &chunks);
        check_books_balance(&ing, events);
    }

    #[test]
    fn ingest_never_panics_on_mutated_valid_lines_split_anywhere(
        lines in proptest::collection::vec(
            (0..VALID.len(), proptest::collection::vec(mutation(), 0..3)),
            1..20,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut bytes = Vec::new();
        for (which, mutations) in &lines {
            bytes.extend(mutate(VALID[*which], mutations));
            bytes.push(b'\n');
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            chunks.push(bytes[start..p.max(start)].to_vec());
            start = p.max(start);
        }
        let (_dir, ing, events) = feed("chart_10_20250919.jsonl", &chunks);
        check_books_balance(&ing, events);
    }

    #[test]
    fn every_valid_line_is_accepted_once_and_every_garbage_line_counted(
        items in proptest::collection::vec(item(), 1..60),
        crlf in proptest::collection::vec(any::<bool>(), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let expected = model(&items);
        let (_, chunks) = file_chunks(&items, &crlf, &cuts);
        let dir = tmp();
        let path = dir.path().join("chart_3_20250919.jsonl");
        std::fs::write(&path, b"").unwrap();
        let mut ing = crate::support::ingestor(dir.path(), &[3]);
        let mut seen = Vec::new();
        for chunk in &chunks {
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            std::io::Write::write_all(&mut f, chunk).unwrap();
            drop(f);
            seen.extend(poll(&mut ing));
        }
        seen.extend(drain(&mut ing));

        let got: Vec<(u64, Verdict)> = seen
            .iter()
            .map(|s| match &s.verdict {
                Verdict::Invalid(_) => (s.line_no, Verdict::Invalid(String::new())),
                v => (s.line_no, v.clone()),
            })
            .collect();
        prop_assert_eq!(&got, &expected);
        let accepted: Vec<String> = seen.iter().filter(|s| s.accepted()).map(|s| s.raw.clone()).collect();
        prop_assert_eq!(accepted, accepted_texts(&items, &expected));

        let total = ing.counters().total();
        let garbage = items.iter().filter(|i| matches!(i, Item::Garbage(_))).count() as u64;
        let blank = items.iter().filter(|i| matches!(i, Item::Blank)).count() as u64;
        prop_assert_eq!(total.invalid, garbage);
        prop_assert_eq!(total.read, items.len() as u64 - blank);
        prop_assert_eq!(ing.counters().blank, blank);
        prop_assert_eq!(total.read, total.accepted + total.invalid + total.duplicates);
        prop_assert!(ing.pending().is_empty());
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// The same file through the collector, with restarts between polls, some of them
    /// "crashes" that lose the last checkpoint update: the journal holds every accepted line
    /// exactly once, in file order, and the rejects journal every garbage line.
    #[test]
    fn the_journal_survives_restarts_and_lost_checkpoints(
        items in proptest::collection::vec(item(), 1..50),
        crlf in proptest::collection::vec(any::<bool>(), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        restarts in proptest::collection::vec(0..3u8, 8),
    ) {
        let expected = model(&items);
        let (_, chunks) = file_chunks(&items, &crlf, &cuts);
        let dir = tmp();
        let data = dir.path().join("data");
        let path = data.join("chart_3_20250919.jsonl");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(&path, b"").unwrap();
        let (journal, state) = (dir.path().join("journal"), dir.path().join("state"));
        let opts = collect_opts(&data, &journal, &state);
        let mut collector = open_collector(opts.clone());
        for (n, chunk) in chunks.iter().enumerate() {
            append(&path, std::str::from_utf8(chunk).unwrap());
            let before = std::fs::read(state.join(Checkpoint::FILE)).ok();
            collector.step(false, &mut |_, _| {}).unwrap();
            match restarts[n % restarts.len()] {
                1 => {
                    drop(collector);
                    collector = open_collector(opts.clone());
                }
                2 => {
                    // Killed after the journal write, before the checkpoint rename.
                    drop(collector);
                    match &before {
                        Some(bytes) => std::fs::write(state.join(Checkpoint::FILE), bytes).unwrap(),
                        None => { let _ = std::fs::remove_file(state.join(Checkpoint::FILE)); }
                    }
                    if before.is_none() {
                        // No checkpoint yet: the journal is an orphan, as the tests of
                        // the journal check; start over from empty journals, as an operator would.
                        let _ = std::fs::remove_dir_all(&journal);
                    }
                    collector = open_collector(opts.clone());
                }
                _ => {}
            }
        }
        collector.step(true, &mut |_, _| {}).unwrap();
        let journals = read_journals(&journal);
        let unified = journals.get("mia_unified_20250919.jsonl").map(String::as_str).unwrap_or("");
        prop_assert_eq!(journal_data(unified), accepted_texts(&items, &expected));
        let garbage = items.iter().filter(|i| matches!(i, Item::Garbage(_))).count();
        let rejects = journals.get("mia_rejects_20250919.jsonl").map(String::as_str).unwrap_or("");
        prop_assert_eq!(rejects.lines().count(), garbage);
    }
}
