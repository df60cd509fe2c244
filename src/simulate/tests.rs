//! Tests of the simulator against an independent reading of the files it writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{NaiveDate, NaiveTime};
use serde_json::{Map, Value};

use super::*;
use crate::ingest::naming::{Layout, SourceName};

fn options(dir: &Path, minutes: u32, layout: Layout, quirks: bool) -> SimOptions {
    SimOptions {
        out: dir.to_path_buf(),
        // Midday: the quietest part of the session keeps the debug-build tests fast.
        start: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        minutes,
        layout,
        quirks,
        ..SimOptions::default()
    }
}

fn generate(opts: &SimOptions) -> (SimReport, Manifest) {
    let stop = AtomicBool::new(false);
    let report = run(opts, &stop, &mut |_, _| {}).expect("simulation runs");
    let manifest = Manifest::load(&report.manifest_path).expect("manifest loads");
    (report, manifest)
}

/// Every file below `dir` except the manifest, relative with `/`, sorted.
fn list_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(rel.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.retain(|p| p != MANIFEST_FILE);
    out.sort();
    out
}

/// The chart-4 kind of a line without `type`, from its keys.
fn chart4_kind(obj: &Map<String, Value>) -> &'static str {
    for (key, kind) in [
        ("sd1", "vwap"),
        ("poc", "vva"),
        ("ppoc", "vva_previous"),
        ("pvpoc", "previous_vp"),
        ("psd1", "previous_vwap"),
        ("askvol", "nbcv"),
        ("hvn", "volume_profile"),
        ("cumulative_delta", "cumulative_delta"),
    ] {
        if obj.contains_key(key) {
            return kind;
        }
    }
    "unknown"
}

fn record_type(obj: &Map<String, Value>, kind: Option<&str>) -> String {
    match obj.get("type").and_then(Value::as_str) {
        Some(t) => t.to_owned(),
        None => kind.map_or_else(|| chart4_kind(obj).to_owned(), str::to_owned),
    }
}

/// A line number, the parsed object (`None` when invalid) and the bytes without line ending.
type Line = (u64, Option<Map<String, Value>>, Vec<u8>);

/// A parsed file: every complete line, and the facts the manifest states.
struct Read {
    facts: FileManifest,
    lines: Vec<Line>,
}

/// Reads a file the way an independent reader would, applying the duplicate definition.
fn read_file(root: &Path, rel: &str) -> Read {
    let bytes = std::fs::read(root.join(rel)).unwrap();
    let name = SourceName::parse(rel.rsplit('/').next().unwrap()).expect("a chart file name");
    let kind = name.kind.clone();
    let mut lines = Vec::new();
    let mut invalid = Vec::new();
    let mut duplicates = Vec::new();
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    let mut seqs: HashSet<(String, String, u64)> = HashSet::new();
    let mut last: HashMap<String, Vec<u8>> = HashMap::new();
    let mut crlf_lines = 0u64;
    let mut n = 0u64;
    let mut rest: &[u8] = &bytes;
    while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
        n += 1;
        let mut line = &rest[..pos];
        rest = &rest[pos + 1..];
        if line.last() == Some(&b'\r') {
            crlf_lines += 1;
            line = &line[..line.len() - 1];
        }
        let parsed = serde_json::from_slice::<Value>(line).ok();
        let obj = match parsed {
            Some(Value::Object(obj)) => obj,
            _ => {
                invalid.push(n);
                lines.push((n, None, line.to_vec()));
                continue;
            }
        };
        let ty = record_type(&obj, kind.as_deref());
        *types.entry(ty.clone()).or_insert(0) += 1;
        let sym = obj
            .get("sym")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if ty == "quote" || ty == "trade" {
            let seq = obj["seq"].as_u64().unwrap();
            if !seqs.insert((sym, ty, seq)) {
                duplicates.push(n);
            }
        } else {
            let i = obj
                .get("i")
                .or_else(|| obj.get("bar"))
                .and_then(Value::as_f64)
                .map(|x| x as i64);
            let mut key = format!("{}|{sym}|{ty}|{i:?}", name.chart);
            if ty == "menthorq_level" {
                key.push_str(&format!("|{}|{}", obj["study_id"], obj["subgraph"]));
            }
            match last.get(&key) {
                Some(prev) if prev.as_slice() == line => duplicates.push(n),
                _ => {
                    last.insert(key, line.to_vec());
                }
            }
        }
        lines.push((n, Some(obj), line.to_vec()));
    }
    assert!(
        crlf_lines == 0 || crlf_lines == n,
        "{rel}: mixed line endings"
    );
    Read {
        facts: FileManifest {
            path: rel.to_owned(),
            chart: name.chart,
            kind,
            lines: n,
            bytes: bytes.len() as u64,
            invalid,
            duplicates,
            partial_tail_bytes: rest.len() as u64,
            crlf: n > 0 && crlf_lines == n,
            types,
        },
        lines,
    }
}

/// Reads every file and checks that the manifest says exactly the same.
fn verify_manifest(root: &Path, manifest: &Manifest) -> BTreeMap<String, Read> {
    let on_disk = list_files(root);
    let listed: Vec<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(on_disk, listed, "files on disk vs manifest");
    let mut reads = BTreeMap::new();
    let (mut lines, mut bytes) = (0, 0);
    for file in &manifest.files {
        let read = read_file(root, &file.path);
        pretty_assertions::assert_eq!(&read.facts, file);
        lines += file.lines;
        bytes += file.bytes;
        reads.insert(file.path.clone(), read);
    }
    assert_eq!((lines, bytes), (manifest.lines, manifest.bytes));
    reads
}

fn objects<'a>(
    reads: &'a BTreeMap<String, Read>,
    ty: &'a str,
) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
    reads
        .values()
        .filter(|r| r.facts.chart != 4)
        .flat_map(move |r| {
            let kind = r.facts.kind.clone();
            r.lines.iter().filter_map(move |(_, obj, _)| {
                let obj = obj.as_ref()?;
                (record_type(obj, kind.as_deref()) == ty).then_some(obj)
            })
        })
}

fn chart4_objects<'a>(
    reads: &'a BTreeMap<String, Read>,
    ty: &'a str,
) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
    reads
        .values()
        .filter(|r| r.facts.chart == 4)
        .flat_map(move |r| {
            let kind = r.facts.kind.clone();
            r.lines.iter().filter_map(move |(_, obj, _)| {
                let obj = obj.as_ref()?;
                (record_type(obj, kind.as_deref()) == ty).then_some(obj)
            })
        })
}

fn f(obj: &Map<String, Value>, key: &str) -> f64 {
    obj.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{key} in {obj:?}"))
}

fn on_tick(x: f64, tick: f64) -> bool {
    ((x / tick).round() * tick - x).abs() < 1e-9
}

fn file_of<'a>(reads: &'a BTreeMap<String, Read>, chart: u16, kind: &str) -> &'a Read {
    reads
        .values()
        .find(|r| r.facts.chart == chart && r.facts.kind.as_deref().is_none_or(|k| k == kind))
        .unwrap_or_else(|| panic!("no file for chart {chart} {kind}"))
}

/// The invariants of clean mode.
fn check_clean(manifest: &Manifest, reads: &BTreeMap<String, Read>) {
    let tick = manifest.tick_size;
    assert!(
        manifest.injected.iter().all(|q| q.quirk == 8),
        "{:?}",
        manifest.injected
    );
    for read in reads.values() {
        let facts = &read.facts;
        assert!(facts.invalid.is_empty(), "{}: invalid lines", facts.path);
        assert!(facts.duplicates.is_empty(), "{}: duplicates", facts.path);
        assert!(!facts.crlf, "{}: CRLF", facts.path);
        assert_eq!(facts.partial_tail_bytes, 0, "{}", facts.path);
        assert!(facts.lines > 0, "{}: empty", facts.path);
        if facts.chart == 4 {
            for (_, obj, _) in &read.lines {
                let obj = obj.as_ref().unwrap();
                assert!(!obj.contains_key("type") && !obj.contains_key("chart"));
            }
        }
    }

    for obj in objects(reads, "basedata") {
        for k in ["o", "h", "l", "c"] {
            assert!(on_tick(f(obj, k), tick), "{obj:?}");
        }
        assert_eq!(f(obj, "bidvol") + f(obj, "askvol"), f(obj, "v"));
        assert!(f(obj, "l") <= f(obj, "o").min(f(obj, "c")));
        assert!(f(obj, "h") >= f(obj, "o").max(f(obj, "c")));
    }
    for obj in objects(reads, "vwap") {
        let keys = ["dn3", "dn2", "dn1", "v", "up1", "up2", "up3"];
        for k in keys {
            assert!(on_tick(f(obj, k), tick), "{obj:?}");
        }
        for pair in keys.windows(2) {
            assert!(f(obj, pair[0]) <= f(obj, pair[1]), "{obj:?}");
        }
    }
    for obj in objects(reads, "vva") {
        for k in ["vah", "val", "vpoc", "pvah", "pval", "ppoc"] {
            assert!(on_tick(f(obj, k), tick), "{obj:?}");
        }
        assert!(f(obj, "val") <= f(obj, "vpoc") && f(obj, "vpoc") <= f(obj, "vah"));
        assert!(f(obj, "pval") <= f(obj, "ppoc") && f(obj, "ppoc") <= f(obj, "pvah"));
    }
    for obj in chart4_objects(reads, "vva") {
        assert!(f(obj, "val") <= f(obj, "poc") && f(obj, "poc") <= f(obj, "vah"));
    }
    for obj in chart4_objects(reads, "volume_profile") {
        let (val, vah) = (f(obj, "val"), f(obj, "vah"));
        assert!(val <= f(obj, "vpoc") && f(obj, "vpoc") <= vah);
        assert!((val..=vah).contains(&f(obj, "hvn")) && (val..=vah).contains(&f(obj, "lvn")));
    }
    for obj in chart4_objects(reads, "nbcv") {
        assert_eq!(f(obj, "delta"), f(obj, "askvol") - f(obj, "bidvol"));
        assert_eq!(f(obj, "totalvol"), f(obj, "askvol") + f(obj, "bidvol"));
    }

    // NBCV: exact order-flow arithmetic, and the session running sum of the bars' deltas.
    let (mut before, mut cur_i, mut cur_delta) = (0.0, None, 0.0);
    for obj in objects(reads, "nbcv") {
        let (ask, bid) = (f(obj, "ask_volume"), f(obj, "bid_volume"));
        let delta = f(obj, "delta");
        assert_eq!(delta, ask - bid);
        assert_eq!(f(obj, "total_volume"), ask + bid);
        let i = f(obj, "i");
        if cur_i.is_some_and(|c| c != i) {
            before += cur_delta;
        }
        cur_i = Some(i);
        cur_delta = delta;
        assert_eq!(f(obj, "cumulative_delta"), before + delta, "{obj:?}");
        let total = ask + bid;
        if total > 0.0 {
            assert!((f(obj, "ask_percent") - ask / total).abs() < 2e-6);
            assert!((f(obj, "delta_ratio") - delta / total).abs() < 2e-6);
        }
        let strong = total >= 75.0;
        let bull = strong
            && delta > 0.0
            && (f(obj, "delta_ratio").abs() >= 0.075 || f(obj, "ask_bid_ratio") >= 1.25);
        let bear = strong
            && delta < 0.0
            && (f(obj, "delta_ratio").abs() >= 0.075 || f(obj, "bid_ask_ratio") >= 1.25);
        assert_eq!(
            f(obj, "pressure_bullish"),
            f64::from(u8::from(bull)),
            "{obj:?}"
        );
        assert_eq!(
            f(obj, "pressure_bearish"),
            f64::from(u8::from(bear)),
            "{obj:?}"
        );
        assert_eq!(
            f(obj, "pressure"),
            f64::from(i8::from(bull) - i8::from(bear))
        );
    }
    for obj in objects(reads, "cumulative_delta") {
        assert_eq!((f(obj, "study"), f(obj, "sg")), (32.0, 3.0));
    }

    // Quotes and trades: one tick apart, on the grid, seq strictly increasing per file and
    // never shared between a quote and a trade.
    let mut all_seqs = HashSet::new();
    for ty in ["quote", "trade"] {
        let mut prev = 0u64;
        for obj in objects(reads, ty) {
            let seq = obj["seq"].as_u64().unwrap();
            assert!(seq > prev, "{ty} seq {seq} after {prev}");
            prev = seq;
            assert!(all_seqs.insert(seq));
            if ty == "quote" {
                let (bid, ask) = (f(obj, "bid"), f(obj, "ask"));
                assert!(
                    bid < ask && on_tick(bid, tick) && on_tick(ask, tick),
                    "{obj:?}"
                );
                assert!((ask - bid - tick).abs() < 1e-9);
            } else {
                assert!(on_tick(f(obj, "px"), tick));
                let vol = f(obj, "vol");
                assert!((1.0..=20.0).contains(&vol));
                let buy = obj["side"] == "BUY";
                assert_eq!(f(obj, "tt"), if buy { 2.0 } else { 1.0 });
            }
        }
        assert!(prev > 0, "some {ty} lines");
    }
    for obj in objects(reads, "depth") {
        assert!(on_tick(f(obj, "price"), tick) && f(obj, "size") >= 1.0);
        assert!((1.0..=10.0).contains(&f(obj, "lvl")));
    }

    // T&S times are UTC: 16:00 UTC for a 12:00 New York bar in September.
    let first_trade = objects(reads, "trade").next().unwrap();
    let first_bar = objects(reads, "basedata").next().unwrap();
    let offset_h = (f(first_trade, "t") - f(first_bar, "t")) * 24.0;
    assert!((offset_h - 4.0).abs() < 0.05, "{offset_h}");

    let levels: Vec<_> = objects(reads, "menthorq_level").collect();
    assert_eq!(levels.len() % 29, 0);
    for (_, _, raw) in &file_of(reads, 10, "menthorq").lines {
        let text = String::from_utf8_lossy(raw);
        if let Some(idx) = text.find("\"price\":") {
            let num: String = text[idx + 8..].chars().take_while(|c| *c != ',').collect();
            assert_eq!(num.split('.').nth(1).map(str::len), Some(2), "{text}");
        }
    }
    for obj in &levels {
        assert!(on_tick(f(obj, "price"), tick) && f(obj, "price") > 0.0);
    }
    for obj in objects(reads, "correlation") {
        assert!((-1.0..=1.0).contains(&f(obj, "cc")));
    }
    for obj in objects(reads, "vix").filter(|o| o.contains_key("last")) {
        assert!(f(obj, "last") > 0.0 && f(obj, "last") <= 100.0);
    }
}

fn contains(read: &Read, needle: &str) -> bool {
    read.lines
        .iter()
        .any(|(_, _, raw)| String::from_utf8_lossy(raw).contains(needle))
}

/// Every quirk is present, detected from the files themselves.
fn check_quirks(root: &Path, manifest: &Manifest, reads: &BTreeMap<String, Read>) {
    let layout = manifest.layout;
    let injected: HashSet<u8> = manifest.injected.iter().map(|q| q.quirk).collect();
    let expected: Vec<u8> = (1..=13)
        .filter(|&q| q != 11 || layout != Layout::PerChart)
        .collect();
    for q in &expected {
        assert!(injected.contains(q), "quirk {q} not recorded");
    }

    // 1: CRLF on charts 3, 8, 10; LF on chart 4.
    for read in reads.values().filter(|r| r.facts.lines > 0) {
        assert_eq!(
            read.facts.crlf,
            read.facts.chart != 4,
            "{}",
            read.facts.path
        );
    }
    // 2: the quote file ends with the start of a line.
    let quote = file_of(reads, 3, "quote");
    let bytes = std::fs::read(root.join(&quote.facts.path)).unwrap();
    let tail = quote.facts.partial_tail_bytes as usize;
    assert!(tail > 5 && bytes[bytes.len() - tail..].starts_with(b"{\"t\":"));
    // 3: nan/inf tokens and a torn line.
    assert!(contains(file_of(reads, 3, "basedata"), "\"c\":nan"));
    assert!(contains(file_of(reads, 4, "vwap"), "\"sd3\":inf"));
    assert!(contains(file_of(reads, 8, "vix"), "\"last\":-nan(ind)"));
    let depth = file_of(reads, 3, "depth");
    assert!(depth.lines.iter().any(|(_, obj, raw)| obj.is_none()
        && !String::from_utf8_lossy(raw).contains("nan")
        && !String::from_utf8_lossy(raw).contains("inf")));
    // 4: at least two replays of T&S lines, each a run of consecutive duplicates (a
    // trade_summary line may sit inside a run in the per-chart file).
    for kind in ["quote", "trade"] {
        let read = file_of(reads, 3, kind);
        let dup_lines: Vec<u64> = read
            .lines
            .iter()
            .filter(|(n, obj, _)| {
                read.facts.duplicates.contains(n)
                    && obj.as_ref().is_some_and(|o| record_type(o, None) == kind)
            })
            .map(|(n, _, _)| *n)
            .collect();
        let runs = 1 + dup_lines.windows(2).filter(|w| w[1] > w[0] + 3).count();
        assert!(!dup_lines.is_empty() && runs >= 2, "{kind}: {runs} replays");
    }
    let replays: Vec<_> = manifest.injected.iter().filter(|q| q.quirk == 4).collect();
    assert!(replays.iter().all(|q| q.count >= 1 && q.count <= 1000));
    // 5: a byte-identical vwap snapshot right after itself (in its own file or key).
    let vwap = file_of(reads, 3, "vwap");
    let vwap_lines: Vec<&Vec<u8>> = vwap
        .lines
        .iter()
        .filter(|(_, obj, _)| obj.as_ref().is_some_and(|o| o["type"] == "vwap"))
        .map(|(_, _, raw)| raw)
        .collect();
    assert!(vwap_lines.windows(2).any(|w| w[0] == w[1]));
    // 6 and 7: one-decimal prices at HEAD, and one old-format block.
    let mq = file_of(reads, 10, "menthorq");
    let mut one_decimal = 0;
    let mut old = 0;
    for (_, obj, raw) in &mq.lines {
        let Some(obj) = obj else { continue };
        if obj.get("type") != Some(&Value::from("menthorq_level")) {
            continue;
        }
        let text = String::from_utf8_lossy(raw);
        let idx = text.find("\"price\":").unwrap();
        let num: String = text[idx + 8..].chars().take_while(|c| *c != ',').collect();
        let decimals = num.split('.').nth(1).map_or(0, str::len);
        if obj["sym"].as_str().unwrap().ends_with("[M]  1 Min  #10") {
            assert!(obj.contains_key("bar") && !obj.contains_key("i"));
            assert_eq!(decimals, 2);
            old += 1;
        } else {
            assert_eq!(decimals, 1, "{text}");
            if num.ends_with(".2")
                || num.ends_with(".8")
                || num.ends_with(".3")
                || num.ends_with(".7")
            {
                one_decimal += 1;
            }
        }
    }
    assert_eq!(old, 29);
    assert!(one_decimal > 0);
    // 8: chart-4 lines have no type and no chart.
    for read in reads.values().filter(|r| r.facts.chart == 4) {
        for (_, obj, _) in &read.lines {
            if let Some(obj) = obj {
                assert!(!obj.contains_key("type") && !obj.contains_key("chart"));
            }
        }
    }
    // 9: crossed quotes.
    assert!(objects(reads, "quote").any(|o| f(o, "bid") > f(o, "ask")));
    // 10: zero sentinels.
    assert!(objects(reads, "vwap").any(|o| f(o, "up3") == 0.0 && f(o, "dn3") == 0.0));
    assert!(objects(reads, "vva").any(|o| f(o, "pvah") == 0.0 && f(o, "ppoc") == 0.0));
    assert!(objects(reads, "nbcv").any(|o| f(o, "trades") == 0.0 && f(o, "total_volume") > 0.0));
    // 11: touched-but-empty files.
    if layout != Layout::PerChart {
        for (chart, kind) in [(3u16, "correlation"), (8, "vix_close")] {
            let read = file_of(reads, chart, kind);
            assert_eq!((read.facts.lines, read.facts.bytes), (0, 0));
        }
    }
    // 12: an inverted value area.
    assert!(objects(reads, "vva").any(|o| f(o, "val") > f(o, "vpoc")));
    // 13: an unknown type on chart 10 and the nbcv alias on chart 3.
    assert!(objects(reads, "menthorq_diag").count() == 1);
    assert!(objects(reads, "nbcv_footprint").count() == 1);

    // The only duplicates are the injected ones: the replayed runs and the repeated snapshot.
    let mut expected_dups: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for q in manifest.injected.iter() {
        let entry = expected_dups.entry(q.path.as_str()).or_default();
        match (q.quirk, q.line) {
            (4, Some(line)) => entry.extend(line..line + q.count),
            (5, Some(line)) => entry.push(line),
            _ => {}
        }
    }
    for read in reads.values() {
        let mut expected = expected_dups
            .get(read.facts.path.as_str())
            .cloned()
            .unwrap_or_default();
        expected.sort_unstable();
        assert_eq!(read.facts.duplicates, expected, "{}", read.facts.path);
    }
}

#[test]
fn clean_sessions_match_their_manifest_in_every_layout() {
    for layout in [Layout::Organised, Layout::Flat, Layout::PerChart] {
        let dir = tempfile::tempdir().unwrap();
        let (report, manifest) = generate(&options(dir.path(), 30, layout, false));
        assert!(manifest.complete);
        assert_eq!(report.minutes_written, 30);
        assert!(!report.stopped);
        let reads = verify_manifest(dir.path(), &manifest);
        check_clean(&manifest, &reads);
        let expected_files = match layout {
            Layout::PerChart => 4,
            _ => 12 + 8 + 1 + 1,
        };
        assert_eq!(report.files, expected_files, "{layout:?}");
        assert_eq!(manifest.symbol, "ESZ25_FUT_CME");
    }
}

#[test]
fn quirk_sessions_match_their_manifest_in_every_layout() {
    for layout in [Layout::Organised, Layout::Flat, Layout::PerChart] {
        let dir = tempfile::tempdir().unwrap();
        let (_, manifest) = generate(&options(dir.path(), 30, layout, true));
        let reads = verify_manifest(dir.path(), &manifest);
        check_quirks(dir.path(), &manifest, &reads);
        for q in &manifest.injected {
            assert!(manifest.file(&q.path).is_some(), "{q:?}");
            if let Some(line) = q.line {
                let file = manifest.file(&q.path).unwrap();
                assert!(line >= 1 && line <= file.lines, "{q:?}");
                if matches!(q.quirk, 3) {
                    assert!(file.invalid.contains(&line), "{q:?}");
                }
                if q.quirk == 5 {
                    assert!(file.duplicates.contains(&line), "{q:?}");
                }
                if q.quirk == 4 {
                    assert!(file.duplicates.contains(&(line + q.count - 1)), "{q:?}");
                }
            }
        }
    }
}

#[test]
fn organised_layout_puts_charts_3_and_10_in_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest) = generate(&options(dir.path(), 2, Layout::Organised, false));
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(
        &"DATA_SIERRA_CHART/DATA_2025/SEPTEMBRE/20250919/CHART_3/chart_3_basedata_20250919.jsonl"
    ));
    assert!(paths.contains(
        &"DATA_SIERRA_CHART/DATA_2025/SEPTEMBRE/20250919/CHART_10/chart_10_menthorq_20250919.jsonl"
    ));
    assert!(paths.contains(&"chart_4_volume_profile_20250919.jsonl"));
    assert!(paths.contains(&"chart_8_vix_20250919.jsonl"));
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files: BTreeMap<String, Vec<u8>> = list_files(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(dir.join(&p)).unwrap();
            (p, bytes)
        })
        .collect();
    files.insert(
        MANIFEST_FILE.to_owned(),
        std::fs::read(dir.join(MANIFEST_FILE)).unwrap(),
    );
    files
}

#[test]
fn same_options_give_identical_bytes_and_seeds_differ() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let opts_a = options(a.path(), 12, Layout::Flat, true);
    let mut opts_b = opts_a.clone();
    opts_b.out = b.path().to_path_buf();
    let mut opts_c = opts_a.clone();
    opts_c.out = c.path().to_path_buf();
    opts_c.seed = 2;
    generate(&opts_a);
    generate(&opts_b);
    generate(&opts_c);
    let (sa, sb, sc) = (snapshot(a.path()), snapshot(b.path()), snapshot(c.path()));
    assert_eq!(sa, sb);
    let quote = "chart_3_quote_20250919.jsonl";
    assert_ne!(sa[quote], sc[quote]);
    assert_ne!(sa[MANIFEST_FILE], sc[MANIFEST_FILE]);
}

#[test]
fn quirks_do_not_change_the_market() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (_, clean) = generate(&options(a.path(), 10, Layout::Flat, false));
    let (_, quirky) = generate(&options(b.path(), 10, Layout::Flat, true));
    assert_eq!(clean.session.close, quirky.session.close);
    assert_eq!(clean.session.volume, quirky.session.volume);
    let bars = |dir: &Path| {
        let text = std::fs::read_to_string(dir.join("chart_8_vix_20250919.jsonl")).unwrap();
        text.lines()
            .filter(|l| !l.contains("nan"))
            .map(|l| l.trim_end_matches('\r').to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(bars(a.path()), bars(b.path()));
}

#[test]
fn realtime_writes_the_same_bytes_and_reports_progress() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let opts = options(a.path(), 3, Layout::PerChart, true);
    generate(&opts);
    let mut fast = opts.clone();
    fast.out = b.path().to_path_buf();
    fast.realtime = Some(1e9);
    let stop = AtomicBool::new(false);
    let mut calls = Vec::new();
    run(&fast, &stop, &mut |done, total| calls.push((done, total))).unwrap();
    assert_eq!(calls, vec![(1, 3), (2, 3), (3, 3)]);
    // Same chart files; the manifests differ only by the realtime run's clock anchor.
    let (mut files_a, mut files_b) = (snapshot(a.path()), snapshot(b.path()));
    files_a.remove(MANIFEST_FILE);
    files_b.remove(MANIFEST_FILE);
    assert_eq!(files_a, files_b);
    let manifest_a = Manifest::load(&a.path().join(MANIFEST_FILE)).unwrap();
    let mut manifest_b = Manifest::load(&b.path().join(MANIFEST_FILE)).unwrap();
    let anchor = manifest_b
        .realtime
        .take()
        .expect("a realtime run records its clock");
    assert_eq!(anchor.factor, 1e9);
    assert_eq!(manifest_a, manifest_b);
}

#[test]
fn stop_finishes_the_minute_and_writes_a_true_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 30, Layout::Organised, true);
    opts.realtime = Some(1e9);
    let stop = AtomicBool::new(false);
    let report = run(&opts, &stop, &mut |done, _| {
        if done == 4 {
            stop.store(true, Ordering::Relaxed);
        }
    })
    .unwrap();
    assert!(report.stopped);
    assert_eq!(report.minutes_written, 4);
    let manifest = Manifest::load(&report.manifest_path).unwrap();
    assert_eq!(manifest.minutes_written, 4);
    assert!(manifest.complete);
    verify_manifest(dir.path(), &manifest);
    // Four whole minutes: the last basedata bar index is the fourth.
    let vix = manifest.file("chart_8_vix_20250919.jsonl").unwrap();
    assert_eq!(vix.types.get("vix"), Some(&4));
}

#[test]
fn refuses_to_overwrite_a_folder_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("chart_8_vix_20250919.jsonl");
    std::fs::write(&real, "{\"t\":1}\n").unwrap();
    let opts = options(dir.path(), 1, Layout::Organised, false);
    let stop = AtomicBool::new(false);
    let err = run(&opts, &stop, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, SimError::WouldOverwrite { .. }), "{err}");
    assert_eq!(std::fs::read(&real).unwrap(), b"{\"t\":1}\n");

    // A folder the simulator wrote can be written again.
    let sim = tempfile::tempdir().unwrap();
    let opts = options(sim.path(), 2, Layout::Organised, false);
    generate(&opts);
    let (_, manifest) = generate(&opts);
    verify_manifest(sim.path(), &manifest);
}

#[test]
fn invalid_options_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let base = options(dir.path(), 1, Layout::Flat, false);
    let cases: Vec<(SimOptions, &str)> = vec![
        (
            SimOptions {
                root: "ZZ".into(),
                ..base.clone()
            },
            "unknown instrument root",
        ),
        (
            SimOptions {
                minutes: 0,
                ..base.clone()
            },
            "minutes",
        ),
        (
            SimOptions {
                minutes: MAX_MINUTES + 1,
                ..base.clone()
            },
            "minutes",
        ),
        (
            SimOptions {
                realtime: Some(f64::NAN),
                ..base.clone()
            },
            "realtime",
        ),
        (
            SimOptions {
                realtime: Some(0.0),
                ..base.clone()
            },
            "realtime",
        ),
        (
            SimOptions {
                symbol: Some("ES\"Z25".into()),
                ..base.clone()
            },
            "symbol",
        ),
        (
            SimOptions {
                day: NaiveDate::MAX,
                ..base.clone()
            },
            "years 1900 and 9999",
        ),
        (
            SimOptions {
                start_price: Some(-5.0),
                ..base.clone()
            },
            "start price",
        ),
        (
            SimOptions {
                start_price: Some(f64::INFINITY),
                ..base.clone()
            },
            "start price",
        ),
    ];
    for (opts, needle) in cases {
        let err = run(&opts, &stop, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    assert!(list_files(dir.path()).is_empty());
}

#[test]
fn front_month_rolls_eight_days_before_expiry() {
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    assert_eq!(front_month_symbol("ES", d(2025, 9, 10)), "ESU25_FUT_CME");
    assert_eq!(front_month_symbol("ES", d(2025, 9, 11)), "ESZ25_FUT_CME");
    assert_eq!(front_month_symbol("ES", d(2025, 9, 19)), "ESZ25_FUT_CME");
    assert_eq!(front_month_symbol("NQ", d(2025, 12, 31)), "NQH26_FUT_CME");
    assert_eq!(front_month_symbol("YM", d(2026, 1, 2)), "YMH26_FUT_CBOT");
    assert_eq!(front_month_symbol("ES", d(2099, 12, 30)), "ESH00_FUT_CME");
    assert!(front_month_symbol("ES", NaiveDate::MAX).starts_with("ESZ"));
    assert!(front_month_symbol("ES", NaiveDate::MIN).starts_with("ESH"));
}

#[test]
fn other_instruments_use_their_tick_and_price() {
    for (root, tick, low, high) in [
        ("NQ", 0.25, 20_000.0, 27_000.0),
        ("RTY", 0.1, 2_000.0, 2_800.0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), 3, Layout::Flat, false);
        opts.root = root.into();
        let (_, manifest) = generate(&opts);
        assert_eq!(manifest.tick_size, tick);
        assert!(manifest.symbol.starts_with(root));
        let reads = verify_manifest(dir.path(), &manifest);
        for obj in objects(&reads, "trade") {
            let px = f(obj, "px");
            assert!(on_tick(px, tick) && (low..high).contains(&px), "{px}");
        }
        for obj in objects(&reads, "menthorq_level") {
            assert!(on_tick(f(obj, "price"), tick));
        }
    }
}

#[test]
fn other_time_zones_keep_trade_times_in_utc() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2, Layout::Flat, false);
    opts.tz = chrono_tz::Europe::Paris;
    opts.start = NaiveTime::from_hms_opt(15, 30, 0).unwrap();
    let (_, manifest) = generate(&opts);
    let reads = verify_manifest(dir.path(), &manifest);
    let trade = objects(&reads, "trade").next().unwrap();
    let bar = objects(&reads, "basedata").next().unwrap();
    let offset_h = (f(trade, "t") - f(bar, "t")) * 24.0;
    assert!((offset_h + 2.0).abs() < 0.05, "{offset_h}");
    assert_eq!(manifest.tz, "Europe/Paris");
}

/// A whole regular session: the demo relies on every VIX regime and blind-spot approaches.
#[test]
fn full_session_reaches_every_vix_regime_and_blind_spots() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 390, Layout::Organised, true);
    opts.start = NaiveTime::from_hms_opt(9, 30, 0).unwrap();
    let (report, manifest) = generate(&opts);
    // The manifest is checked line by line on shorter sessions; here only the market matters.
    let regimes = &manifest.session.vix_regimes;
    for r in ["low", "normal", "high", "extreme"] {
        assert!(regimes.iter().any(|x| x == r), "{regimes:?}");
    }
    assert!(manifest.session.blind_spot_approaches >= 3);
    assert!(report.lines > 100_000);
}
