//! One test per quirk of sierra-format.md §5 that matters to a reader, over the small
//! hand-written fixtures of `tests/data/ingest/quirks/<case>/`.
//!
//! Each test checks the counters and the exact unified-journal lines (the collector runs in
//! process with a stopped clock, so `ingest_ts` is fixed).

use std::path::PathBuf;

use mia::ingest::collect::Collector;
use mia::ingest::record::{LineContext, Payload, TradeSide, ValueArea, parse_line};
use mia::model::{ContractSpec, Level};
use pretty_assertions::assert_eq;

use crate::support::{
    self, INGEST_TS, Seen, Verdict, append, collect_opts, copy_tree, counts, data_path, drain,
    ingestor, open_collector, read_journals, tmp,
};

fn fixture(case: &str) -> PathBuf {
    data_path(&format!("ingest/quirks/{case}"))
}

/// The lines of a fixture file, without their line endings.
fn lines_of(case: &str, file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(case).join(file)).unwrap();
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
        .collect()
}

/// One unified-journal line as the collector must write it.
fn unified(t: &str, ts: &str, sym: Option<&str>, graph: u16, kind: &str, raw: &str) -> String {
    let sym = sym.map_or_else(|| "null".to_owned(), |s| format!("\"{s}\""));
    format!(
        "{{\"t\":{t},\"ts\":\"{ts}\",\"sym\":{sym},\"graph\":{graph},\"type\":\"{kind}\",\"ingest_ts\":\"{INGEST_TS}\",\"data\":{raw}}}\n"
    )
}

const ES: Option<&str> = Some("ESZ25_FUT_CME");

/// Runs `collect --once` in process over a fixture (read in place: collect never writes to the
/// data folder). Returns the temp folder holding journal and state, and the collector.
fn collect(case: &str) -> (tempfile::TempDir, Collector) {
    collect_dir(fixture(case))
}

fn collect_dir(data: PathBuf) -> (tempfile::TempDir, Collector) {
    let dir = tmp();
    let opts = collect_opts(
        &data,
        &dir.path().join("journal"),
        &dir.path().join("state"),
    );
    let mut collector = open_collector(opts);
    collector.step(true, &mut |_, _| {}).unwrap();
    (dir, collector)
}

fn journals(dir: &tempfile::TempDir) -> std::collections::BTreeMap<String, String> {
    read_journals(&dir.path().join("journal"))
}

fn row(chart: u16, kind: &str, c: [u64; 6]) -> (u16, String, [u64; 6]) {
    (chart, kind.to_owned(), c)
}

fn verdicts(seen: &[Seen]) -> Vec<(u64, Verdict)> {
    seen.iter()
        .map(|s| {
            let v = match &s.verdict {
                Verdict::Invalid(_) => Verdict::Invalid(String::new()),
                v => v.clone(),
            };
            (s.line_no, v)
        })
        .collect()
}

#[test]
fn crlf_and_lf_mixed_in_one_file() {
    let lines = lines_of("crlf", "chart_3_quote_20250919.jsonl");
    let mut ing = ingestor(&fixture("crlf"), &[3]);
    let seen = drain(&mut ing);
    assert_eq!(
        verdicts(&seen),
        vec![
            (1, Verdict::Accepted),
            (2, Verdict::Accepted),
            (4, Verdict::Accepted),
            (5, Verdict::Accepted)
        ],
        "the blank CRLF line 3 is skipped, not counted as read"
    );
    assert!(seen.iter().all(|s| !s.raw.contains('\r')), "{seen:#?}");
    assert_eq!(ing.counters().blank, 1);
    assert_eq!(
        counts(ing.counters()),
        vec![row(3, "quote", [4, 4, 0, 0, 0, 0])]
    );

    let (dir, collector) = collect("crlf");
    assert!(collector.rejects().is_empty());
    let expected = [
        unified(
            "45919.563337",
            "2025-09-19T13:31:12.317Z",
            ES,
            3,
            "quote",
            &lines[0],
        ),
        unified(
            "45919.563338",
            "2025-09-19T13:31:12.403Z",
            ES,
            3,
            "quote",
            &lines[1],
        ),
        unified(
            "45919.563339",
            "2025-09-19T13:31:12.490Z",
            ES,
            3,
            "quote",
            &lines[3],
        ),
        unified(
            "45919.56334",
            "2025-09-19T13:31:12.576Z",
            ES,
            3,
            "quote",
            &lines[4],
        ),
    ]
    .concat();
    assert_eq!(
        journals(&dir),
        [("mia_unified_20250919.jsonl".to_owned(), expected)].into()
    );
}

#[test]
fn partial_last_line_waits_for_its_end_and_is_accepted_once() {
    let dir = tmp();
    let data = dir.path().join("data");
    copy_tree(&fixture("partial"), &data);
    let file = data.join("chart_3_trade_20250919.jsonl");
    let lines = lines_of("partial", "chart_3_trade_20250919.jsonl");
    let fragment = lines[2].clone();
    assert!(!fragment.is_empty() && !fragment.ends_with('}'));

    let opts = collect_opts(
        &data,
        &dir.path().join("journal"),
        &dir.path().join("state"),
    );
    let mut collector = open_collector(opts);
    assert_eq!(collector.step(true, &mut |_, _| {}).unwrap(), 2);
    assert_eq!(
        collector.ingestor().pending(),
        vec![(
            "chart_3_trade_20250919.jsonl".to_owned(),
            fragment.len() as u64
        )],
        "the fragment is left for the next read"
    );
    // Nothing new: polling again neither reads nor rejects the fragment.
    assert_eq!(collector.step(true, &mut |_, _| {}).unwrap(), 0);
    assert!(collector.rejects().is_empty());

    let rest = ",\"vol\":2,\"seq\":48213380,\"tt\":2,\"chart\":3}";
    append(&file, &format!("{rest}\r\n"));
    assert_eq!(collector.step(true, &mut |_, _| {}).unwrap(), 1);
    assert_eq!(collector.step(true, &mut |_, _| {}).unwrap(), 0);
    assert!(collector.ingestor().pending().is_empty());
    assert!(collector.rejects().is_empty());
    assert_eq!(
        support::counts(collector.ingestor().counters()),
        vec![row(3, "trade", [3, 3, 0, 0, 0, 0])]
    );

    let completed = format!("{fragment}{rest}");
    let expected = [
        unified(
            "45919.563338",
            "2025-09-19T13:31:12.403Z",
            ES,
            3,
            "trade",
            &lines[0],
        ),
        unified(
            "45919.563339",
            "2025-09-19T13:31:12.490Z",
            ES,
            3,
            "trade",
            &lines[1],
        ),
        unified(
            "45919.56334",
            "2025-09-19T13:31:12.576Z",
            ES,
            3,
            "trade",
            &completed,
        ),
    ]
    .concat();
    assert_eq!(
        journals(&dir),
        [("mia_unified_20250919.jsonl".to_owned(), expected)].into()
    );

    // The completed line parses as the trade it is.
    let mut ing = ingestor(&data, &[3]);
    let seen = drain(&mut ing);
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[2].payload,
        Some(Payload::Trade {
            side: TradeSide::Buy,
            price: 6499.0,
            volume: 2.0,
            seq: Some(48213380)
        })
    );
}

#[test]
fn nan_and_inf_lines_are_counted_invalid_with_file_and_line() {
    let file = "chart_3_basedata_20250919.jsonl";
    let lines = lines_of("invalid", file);
    let (dir, collector) = collect("invalid");
    assert_eq!(
        counts(collector.ingestor().counters()),
        vec![row(3, "basedata", [8, 3, 5, 0, 0, 0])]
    );
    let rejects: Vec<(String, u64)> = collector
        .rejects()
        .iter()
        .map(|r| (r.file.clone(), r.line))
        .collect();
    assert_eq!(
        rejects,
        [2, 4, 5, 6, 7].map(|n| (file.to_owned(), n)).to_vec(),
        "nan, -nan(ind), inf, -inf and a torn line"
    );
    assert!(
        collector
            .rejects()
            .iter()
            .all(|r| r.reason.starts_with("not valid JSON")),
        "{:?}",
        collector.rejects()
    );

    let all = journals(&dir);
    let expected = [
        unified(
            "45919.646528",
            "2025-09-19T19:31:00.000Z",
            ES,
            3,
            "basedata",
            &lines[0],
        ),
        unified(
            "45919.646528",
            "2025-09-19T19:31:00.000Z",
            ES,
            3,
            "basedata",
            &lines[2],
        ),
        unified(
            "45919.647222",
            "2025-09-19T19:32:00.000Z",
            ES,
            3,
            "basedata",
            &lines[7],
        ),
    ]
    .concat();
    assert_eq!(all["mia_unified_20250919.jsonl"], expected);

    // The rejects journal lists every rejected line with its file, line number and text.
    let rejected: Vec<serde_json::Value> = all["mia_rejects_20250919.jsonl"]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rejected.len(), 5);
    for (value, n) in rejected.iter().zip([2usize, 4, 5, 6, 7]) {
        assert_eq!(value["file"], file);
        assert_eq!(value["line"], n);
        assert_eq!(value["raw"], lines[n - 1].as_str());
        assert_eq!(value["ingest_ts"], INGEST_TS);
        assert!(
            value["reason"]
                .as_str()
                .unwrap()
                .starts_with("not valid JSON"),
            "{value}"
        );
    }
}

#[test]
fn replayed_time_and_sales_are_dropped_by_seq_and_counted() {
    let quotes = lines_of("duplicates", "chart_3_quote_20250919.jsonl");
    let trades = lines_of("duplicates", "chart_3_trade_20250919.jsonl");
    let mut ing = ingestor(&fixture("duplicates"), &[3]);
    let seen = drain(&mut ing);
    let quote_verdicts: Vec<_> = seen
        .iter()
        .filter(|s| s.file.contains("quote"))
        .map(|s| s.verdict.clone())
        .collect();
    use Verdict::{Accepted as A, Duplicate as D};
    assert_eq!(
        quote_verdicts,
        vec![A, A, A, D, D, A, D],
        "seq 102 and 103 replayed; a replay of 103 with another bid is still a replay"
    );
    assert_eq!(
        counts(ing.counters()),
        vec![
            row(3, "quote", [7, 4, 0, 3, 0, 0]),
            row(3, "trade", [3, 2, 0, 1, 0, 0])
        ],
        "trades are their own stream: trade seq 102 is not a duplicate of quote seq 102"
    );

    let (dir, _) = collect("duplicates");
    let q = |n: usize, ts: &str| {
        let t = &quotes[n][5..17];
        unified(t, ts, ES, 3, "quote", &quotes[n])
    };
    let t = |n: usize, ts: &str| {
        let t = &trades[n][5..17];
        unified(t, ts, ES, 3, "trade", &trades[n])
    };
    // Files are read in path order: quotes, then trades.
    let expected = [
        q(0, "2025-09-19T13:31:09.206Z"),
        q(1, "2025-09-19T13:31:09.293Z"),
        q(2, "2025-09-19T13:31:09.379Z"),
        q(5, "2025-09-19T13:31:09.466Z"),
        t(0, "2025-09-19T13:31:09.293Z"),
        t(1, "2025-09-19T13:31:09.552Z"),
    ]
    .concat();
    assert_eq!(
        journals(&dir),
        [("mia_unified_20250919.jsonl".to_owned(), expected)].into()
    );
}

#[test]
fn intrabar_snapshots_are_all_kept_and_identical_repeats_are_duplicates() {
    let lines = lines_of("intrabar", "chart_3_basedata_20250919.jsonl");
    let mut ing = ingestor(&fixture("intrabar"), &[3]);
    let seen = drain(&mut ing);
    use Verdict::{Accepted as A, Duplicate as D};
    assert_eq!(
        seen.iter().map(|s| s.verdict.clone()).collect::<Vec<_>>(),
        vec![A, A, D, A, A, D, A],
        "line 3 repeats line 2; line 6 repeats the last state of bar 14022 after bar 14023 began"
    );
    assert_eq!(
        seen.iter().map(|s| s.index.unwrap()).collect::<Vec<_>>(),
        vec![14022, 14022, 14022, 14022, 14023, 14022, 14023]
    );
    // The last accepted snapshot of each bar is its final state (last wins is the snapshot's
    // job; ingest hands every distinct state over in file order).
    let last = |i: i64| {
        seen.iter()
            .rfind(|s| s.accepted() && s.index == Some(i))
            .and_then(|s| match s.payload {
                Some(Payload::Bar(bar)) => Some((bar.close, bar.volume)),
                _ => None,
            })
    };
    assert_eq!(last(14022), Some((6499.0, 150.0)));
    assert_eq!(last(14023), Some((6499.75, 30.0)));
    assert_eq!(
        counts(ing.counters()),
        vec![row(3, "basedata", [7, 5, 0, 2, 0, 0])]
    );

    let (dir, _) = collect("intrabar");
    let b = |n: usize, t: &str, ts: &str| unified(t, ts, ES, 3, "basedata", &lines[n]);
    let expected = [
        b(0, "45919.646528", "2025-09-19T19:31:00.000Z"),
        b(1, "45919.646528", "2025-09-19T19:31:00.000Z"),
        b(3, "45919.646528", "2025-09-19T19:31:00.000Z"),
        b(4, "45919.647222", "2025-09-19T19:32:00.000Z"),
        b(6, "45919.647222", "2025-09-19T19:32:00.000Z"),
    ]
    .concat();
    assert_eq!(journals(&dir)["mia_unified_20250919.jsonl"], expected);
}

#[test]
fn menthorq_one_decimal_prices_are_parsed_as_printed() {
    let lines = lines_of("menthorq", "chart_10_menthorq_20250919.jsonl");
    let mut ing = ingestor(&fixture("menthorq"), &[10]);
    let seen = drain(&mut ing);
    let levels: Vec<(Option<Level>, f64)> = seen
        .iter()
        .filter(|s| s.accepted())
        .filter_map(|s| match s.payload {
            Some(Payload::Level { level, price }) => Some((level, price)),
            _ => None,
        })
        .collect();
    assert_eq!(
        levels,
        vec![
            (Some(Level::CallResistance), 6550.0),
            (Some(Level::PutSupport), 6412.2),
            (Some(Level::Hvl), 6487.3),
            (Some(Level::Gex(1)), 6500.0),
            (None, 6601.7),
            (Some(Level::BlindSpot(4)), 6487.8),
        ],
        "prices as printed (%.1f); blind_spot_3 is BL 4; gamma_sg_19 is unnamed"
    );
    // Snapping (the snapshot's job) recovers the tick from the printed value.
    let es = ContractSpec::builtin("ES").unwrap();
    assert_eq!(
        levels.iter().map(|(_, p)| es.snap(*p)).collect::<Vec<_>>(),
        vec![6550.0, 6412.25, 6487.25, 6500.0, 6601.75, 6487.75]
    );
    assert_eq!(
        seen.iter()
            .find(|s| s.kind.as_deref() == Some("correlation"))
            .and_then(|s| s.payload.clone()),
        Some(Payload::Correlation(0.934512)),
        "correlation records live in the menthorq file"
    );
    assert_eq!(
        counts(ing.counters()),
        vec![
            row(10, "correlation", [1, 1, 0, 0, 0, 0]),
            row(10, "menthorq_level", [7, 6, 0, 1, 0, 0]),
        ],
        "the repeated blind-spot line (same study, subgraph, bar and bytes) is a duplicate"
    );

    let (dir, _) = collect("menthorq");
    let expected: String = (0..7)
        .map(|n| {
            let kind = if n == 6 {
                "correlation"
            } else {
                "menthorq_level"
            };
            unified(
                "45919.645833",
                "2025-09-19T19:30:00.000Z",
                ES,
                10,
                kind,
                &lines[n],
            )
        })
        .collect();
    assert_eq!(journals(&dir)["mia_unified_20250919.jsonl"], expected);
}

#[test]
fn old_chart10_symbol_suffix_is_stripped_and_bar_is_read_as_i() {
    let lines = lines_of("old_chart10", "chart_10_20250910.jsonl");
    let mut ing = ingestor(&fixture("old_chart10"), &[10]);
    let seen = drain(&mut ing);
    assert_eq!(
        seen.iter()
            .map(|s| (s.kind.clone().unwrap(), s.sym.clone(), s.index, s.known))
            .collect::<Vec<_>>(),
        vec![
            (
                "menthorq_level".to_owned(),
                Some("ESU25_FUT_CME".to_owned()),
                Some(1403),
                true
            ),
            ("menthorq_diag".to_owned(), None, None, true),
            (
                "menthorq_level".to_owned(),
                Some("ESU25_FUT_CME".to_owned()),
                Some(1398),
                true
            ),
        ]
    );
    assert_eq!(
        counts(ing.counters()),
        vec![
            row(10, "menthorq_diag", [1, 1, 0, 0, 0, 0]),
            row(10, "menthorq_level", [2, 2, 0, 0, 0, 0]),
        ]
    );

    // The journal carries the clean symbol in the envelope and the line verbatim in `data`.
    let (dir, _) = collect("old_chart10");
    let ts = "2025-09-10T19:30:00.000Z";
    let sym = Some("ESU25_FUT_CME");
    let expected = [
        unified("45910.645833", ts, sym, 10, "menthorq_level", &lines[0]),
        unified("45910.645833", ts, None, 10, "menthorq_diag", &lines[1]),
        unified("45910.645833", ts, sym, 10, "menthorq_level", &lines[2]),
    ]
    .concat();
    assert_eq!(
        journals(&dir),
        [("mia_unified_20250910.jsonl".to_owned(), expected)].into()
    );
}

#[test]
fn chart4_records_without_type_are_dispatched_on_the_file_kind() {
    let mut ing = ingestor(&fixture("chart4"), &[4]);
    let seen = drain(&mut ing);
    let by_kind = |kind: &str| {
        seen.iter()
            .find(|s| s.kind.as_deref() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} in {seen:#?}"))
    };
    assert!(matches!(
        by_kind("vwap").payload,
        Some(Payload::ProfileVwap { vwap, up: [Some(u1), Some(u2), Some(u3)], dn: [Some(d1), _, Some(d3)] })
            if vwap == 6491.737305 && u1 == 6496.489258 && u2 == 6501.241211 && u3 == 6505.993164
                && d1 == 6486.985352 && d3 == 6477.481445
    ));
    assert_eq!(
        by_kind("vva").payload,
        Some(Payload::ProfileValueArea {
            previous: false,
            area: ValueArea {
                vah: 6503.25,
                val: 6484.5,
                vpoc: 6492.0,
                trusted: true
            }
        })
    );
    assert!(matches!(
        by_kind("previous_vp").payload,
        Some(Payload::ProfileValueArea { previous: true, area: ValueArea { vpoc, .. } }) if vpoc == 6475.5
    ));
    assert!(matches!(
        by_kind("nbcv").payload,
        Some(Payload::OrderFlow(flow)) if flow.ask_volume == 24190.0 && flow.bid_volume == 24021.0
            && flow.delta == 169.0 && flow.total_volume == 48211.0 && flow.trades == Some(11873.0)
    ));
    assert_eq!(by_kind("ohlc").payload, Some(Payload::Other));
    assert!(
        by_kind("ohlc").known,
        "a GEN2b ohlc file is known, not a new type"
    );
    assert_eq!(
        counts(ing.counters()),
        ["nbcv", "ohlc", "previous_vp", "vva", "vwap"]
            .map(|k| row(4, k, [1, 1, 0, 0, 0, 0]))
            .to_vec()
    );

    // In the journal, `type` is the file kind and `data` the line as written.
    let (dir, _) = collect("chart4");
    let journal = &journals(&dir)["mia_unified_20250919.jsonl"];
    let kinds: Vec<(String, String)> = journal
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["type"].as_str().unwrap().to_owned(),
                v["data"].to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = ["nbcv", "ohlc", "previous_vp", "vva", "vwap"]
        .iter()
        .map(|k| {
            let raw = &lines_of("chart4", &format!("chart_4_{k}_20250919.jsonl"))[0];
            let v: serde_json::Value = serde_json::from_str(raw).unwrap();
            ((*k).to_owned(), v.to_string())
        })
        .collect();
    assert_eq!(kinds, expected);
}

/// Chart-4 times: the current dumper prints a serial date (`%.9f` days, about 45919 in
/// September 2025), GEN2b printed seconds since midnight (0…86399). Both are below 86400, so
/// the magnitude alone cannot tell them apart (sierra-format.md §3.3: "decide by file
/// generation, not by magnitude").
#[test]
fn chart4_head_serial_dates_are_not_read_as_seconds_of_day() {
    let (dir, _) = collect("chart4");
    // 45919.645833333 = 2025-09-19 15:30 New York; 55800 s of 2025-09-19 = 15:30 New York.
    let ts = "2025-09-19T19:30:00.000Z";
    let line = |kind: &str, t: &str| {
        let raw = &lines_of("chart4", &format!("chart_4_{kind}_20250919.jsonl"))[0];
        unified(t, ts, ES, 4, kind, raw)
    };
    let expected = [
        line("nbcv", "45919.645833333"),
        line("ohlc", "55800"),
        line("previous_vp", "45919.645833333"),
        line("vva", "55800"),
        line("vwap", "45919.645833333"),
    ]
    .concat();
    assert_eq!(journals(&dir)["mia_unified_20250919.jsonl"], expected);
}

#[test]
fn crossed_quotes_and_inverted_value_areas_are_accepted_and_flagged() {
    let mut ing = ingestor(&fixture("crossed"), &[3]);
    let seen = drain(&mut ing);
    assert_eq!(
        seen.iter()
            .map(|s| (s.kind.clone().unwrap(), s.line_no, s.accepted(), s.flagged))
            .collect::<Vec<_>>(),
        vec![
            ("quote".to_owned(), 1, true, false),
            ("quote".to_owned(), 2, true, true),
            ("quote".to_owned(), 3, true, false),
            ("vva".to_owned(), 1, true, false),
            ("vva".to_owned(), 2, true, true),
        ],
        "bid > ask is crossed; bid == ask (locked) is not; val > vpoc is not trusted"
    );
    assert!(matches!(
        seen[4].payload,
        Some(Payload::ValueAreas {
            current: Some(ValueArea { trusted: false, .. }),
            previous: Some(ValueArea { trusted: true, .. })
        })
    ));
    assert_eq!(
        counts(ing.counters()),
        vec![
            row(3, "quote", [3, 3, 0, 0, 0, 1]),
            row(3, "vva", [2, 2, 0, 0, 0, 1])
        ]
    );
    let (dir, _) = collect("crossed");
    assert_eq!(
        journals(&dir)["mia_unified_20250919.jsonl"].lines().count(),
        5,
        "flagged lines are journaled"
    );
}

#[test]
fn zero_sentinels_are_read_as_missing() {
    let mut ing = ingestor(&fixture("zeros"), &[3]);
    let seen = drain(&mut ing);
    let payload = |kind: &str| {
        seen.iter()
            .find(|s| s.kind.as_deref() == Some(kind))
            .and_then(|s| s.payload.clone())
            .unwrap()
    };
    let Payload::Vwap(vwap) = payload("vwap") else {
        panic!("{seen:#?}")
    };
    assert_eq!(vwap.v, Some(6496.5));
    assert_eq!(vwap.up, [Some(6501.25), Some(6506.0), None]);
    assert_eq!(vwap.dn, [Some(6487.0), None, None]);
    assert_eq!(
        payload("vva"),
        Payload::ValueAreas {
            current: Some(ValueArea {
                vah: 6503.25,
                val: 6484.5,
                vpoc: 6492.0,
                trusted: true
            }),
            previous: None,
        },
        "pvah = pval = ppoc = 0: no previous value area, and nothing flagged"
    );
    let Payload::OrderFlow(flow) = payload("nbcv") else {
        panic!()
    };
    assert_eq!(
        flow.trades, None,
        "trades = 0 means the subgraph was missing"
    );
    assert_eq!(
        (flow.ask_volume, flow.bid_volume, flow.delta),
        (812.0, 655.0, 157.0)
    );
    assert!(seen.iter().all(|s| s.accepted() && !s.flagged));
}

#[test]
fn empty_files_are_fine() {
    let mut ing = ingestor(&fixture("empty"), &[3, 8]);
    assert_eq!(ing.sources().count(), 4);
    assert!(drain(&mut ing).is_empty());
    assert!(ing.counters().rows().is_empty());
    assert!(ing.pending().is_empty());

    let (dir, collector) = collect("empty");
    assert!(collector.rejects().is_empty());
    assert_eq!(collector.journaled(), 0);
    assert!(
        journals(&dir).values().all(String::is_empty),
        "{:?}",
        journals(&dir)
    );
}

#[test]
fn unknown_types_are_counted_and_kept_in_the_journal() {
    let typed = lines_of("unknown", "chart_3_basedata_20250919.jsonl");
    let per_chart = lines_of("unknown", "chart_3_20250919.jsonl");
    let (dir, collector) = collect("unknown");
    assert_eq!(
        counts(collector.ingestor().counters()),
        vec![
            row(3, "basedata", [1, 1, 0, 0, 0, 0]),
            row(3, "brand_new_record", [1, 1, 0, 0, 1, 0]),
            row(3, "untyped", [1, 1, 0, 0, 1, 0]),
            row(3, "vwap_diag", [1, 1, 0, 0, 0, 0]),
        ],
        "a record without type in a chart-3 file is unknown; vwap_diag is a known diagnostic"
    );
    let ts = "2025-09-19T19:31:00.000Z";
    // Path order: chart_3_20250919.jsonl sorts before chart_3_basedata_20250919.jsonl.
    let expected = [
        unified("45919.646528", ts, ES, 3, "untyped", &per_chart[0]),
        unified("45919.646528", ts, None, 3, "vwap_diag", &per_chart[1]),
        unified("45919.646528", ts, ES, 3, "basedata", &typed[0]),
        unified("45919.646528", ts, ES, 3, "brand_new_record", &typed[1]),
    ]
    .concat();
    assert_eq!(journals(&dir)["mia_unified_20250919.jsonl"], expected);
}

#[test]
fn the_three_naming_schemes_are_discovered_and_other_files_ignored() {
    let root = fixture("naming");
    let organised = "DATA_SIERRA_CHART/DATA_2025/SEPTEMBRE/20250919";
    let ing = ingestor(&root, &[3, 4, 8, 10]);
    let sources: Vec<(String, u16, Option<String>, String)> = ing
        .sources()
        .map(|s| {
            (
                s.rel.clone(),
                s.name.chart,
                s.name.kind.clone(),
                s.name.date.unwrap().format("%Y%m%d").to_string(),
            )
        })
        .collect();
    let src = |rel: String, chart: u16, kind: Option<&str>, date: &str| {
        (rel, chart, kind.map(str::to_owned), date.to_owned())
    };
    assert_eq!(
        sources,
        vec![
            src(
                format!("{organised}/CHART_10/chart_10_menthorq_20250919.jsonl"),
                10,
                Some("menthorq"),
                "20250919"
            ),
            src(
                format!("{organised}/CHART_3/chart_3_basedata_20250919.jsonl"),
                3,
                Some("basedata"),
                "20250919"
            ),
            src("chart_3_20250918.jsonl".into(), 3, None, "20250918"),
            src(
                "chart_4_vwap_20250919.jsonl".into(),
                4,
                Some("vwap"),
                "20250919"
            ),
            src(
                "chart_8_vix_20250919.jsonl".into(),
                8,
                Some("vix"),
                "20250919"
            ),
        ],
        "chart 5 and 12 are not asked for; logs, inventories and journals are not chart files"
    );

    let only3 = ingestor(&root, &[3]);
    assert_eq!(
        only3.sources().map(|s| s.rel.clone()).collect::<Vec<_>>(),
        vec![
            format!("{organised}/CHART_3/chart_3_basedata_20250919.jsonl"),
            "chart_3_20250918.jsonl".to_owned()
        ]
    );

    let (dir, collector) = collect("naming");
    assert!(collector.rejects().is_empty());
    assert_eq!(
        counts(collector.ingestor().counters()),
        vec![
            row(3, "basedata", [2, 2, 0, 0, 0, 0]),
            row(3, "quote", [1, 1, 0, 0, 0, 0]),
            row(4, "vwap", [1, 1, 0, 0, 0, 0]),
            row(8, "vix", [1, 1, 0, 0, 0, 0]),
            row(10, "menthorq_level", [1, 1, 0, 0, 0, 0]),
        ]
    );
    let all = journals(&dir);
    assert_eq!(
        all.keys().cloned().collect::<Vec<_>>(),
        vec![
            "mia_unified_20250918.jsonl".to_owned(),
            "mia_unified_20250919.jsonl".to_owned()
        ],
        "each record goes to the journal of its file's date"
    );
    let per_chart = lines_of("naming", "chart_3_20250918.jsonl");
    assert_eq!(
        all["mia_unified_20250918.jsonl"],
        [
            unified(
                "45918.646528",
                "2025-09-18T19:31:00.000Z",
                ES,
                3,
                "basedata",
                &per_chart[0]
            ),
            unified(
                "45918.563337",
                "2025-09-18T13:31:12.317Z",
                ES,
                3,
                "quote",
                &per_chart[1]
            ),
        ]
        .concat()
    );
    assert_eq!(all["mia_unified_20250919.jsonl"].lines().count(), 4);
    let vix = lines_of("naming", "chart_8_vix_20250919.jsonl");
    assert!(
        all["mia_unified_20250919.jsonl"].contains(&unified(
            "45919.646528",
            "2025-09-19T19:31:00.000Z",
            None,
            8,
            "vix",
            &vix[0]
        )),
        "G8 records have no sym"
    );
}

/// The same line parses the same way whatever file it comes from, except where the file kind
/// is the only type information (chart 4).
#[test]
fn parse_line_uses_the_file_kind_only_for_typeless_chart4_lines() {
    let ctx = |chart: u16, kind: Option<&'static str>| LineContext {
        chart,
        kind,
        file_date: chrono::NaiveDate::from_ymd_opt(2025, 9, 19),
        tz: chrono_tz::America::New_York,
    };
    let typeless = r#"{"sym":"ESZ25_FUT_CME","t":45919.645833333,"i":467,"atr":9.187500}"#;
    let r = parse_line(typeless, &ctx(4, Some("atr"))).unwrap();
    assert_eq!(
        (r.kind.as_ref(), &r.payload),
        ("atr", &Payload::Atr(9.1875))
    );
    let r = parse_line(typeless, &ctx(3, Some("atr"))).unwrap();
    assert_eq!(
        r.kind.as_ref(),
        "atr",
        "kind from the file name when type is absent"
    );
    // A one-file-per-chart chart-4 file has no kind in its name: the key set decides.
    let r = parse_line(typeless, &ctx(4, None)).unwrap();
    assert_eq!(
        (r.kind.as_ref(), &r.payload),
        ("atr", &Payload::Atr(9.1875))
    );
    assert!(r.known);
}
