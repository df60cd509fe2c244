//! Tailing real files while they change: appends (with lines split across appends), daily
//! rotation, truncation and replacement.

use std::path::Path;

use pretty_assertions::assert_eq;

use crate::support::{Seen, Verdict, append, drain, ingestor, poll, tmp, write};

fn quote(seq: u32) -> String {
    format!(
        "{{\"t\":45919.{:06},\"sym\":\"ESZ25_FUT_CME\",\"type\":\"quote\",\"kind\":\"BIDASK\",\"bid\":6498.75000000,\"ask\":6499.00000000,\"bq\":14,\"aq\":9,\"seq\":{seq},\"chart\":3}}",
        563_000 + seq % 1000
    )
}

/// (file, line number, seq) of every accepted quote.
fn accepted(seen: &[Seen]) -> Vec<(String, u64, u32)> {
    seen.iter()
        .map(|s| {
            assert_eq!(s.verdict, Verdict::Accepted, "{s:#?}");
            let seq = s.raw.split("\"seq\":").nth(1).unwrap();
            let seq = seq[..seq.find(',').unwrap()].parse().unwrap();
            (s.file.clone(), s.line_no, seq)
        })
        .collect()
}

const FILE: &str = "chart_3_quote_20250919.jsonl";

fn lines(seqs: impl IntoIterator<Item = u32>, ending: &str) -> String {
    seqs.into_iter()
        .map(|s| format!("{}{ending}", quote(s)))
        .collect()
}

fn rows(file: &str, from_line: u64, seqs: &[u32]) -> Vec<(String, u64, u32)> {
    seqs.iter()
        .zip(from_line..)
        .map(|(seq, n)| (file.to_owned(), n, *seq))
        .collect()
}

#[test]
fn appended_lines_are_seen_once_each_even_when_split_across_appends() {
    let dir = tmp();
    let path = dir.path().join(FILE);
    write(&path, "");
    let mut ing = ingestor(dir.path(), &[3]);
    assert!(poll(&mut ing).is_empty());

    append(&path, &lines([1, 2], "\r\n"));
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[1, 2]));
    assert!(poll(&mut ing).is_empty(), "nothing new, nothing read");

    // Line 3 arrives in three pieces, the last one together with line 4.
    let third = quote(3);
    let (a, b) = third.split_at(40);
    let (b, c) = b.split_at(30);
    append(&path, a);
    assert!(poll(&mut ing).is_empty());
    append(&path, b);
    assert!(poll(&mut ing).is_empty());
    assert_eq!(ing.pending(), vec![(FILE.to_owned(), 70)]);
    append(&path, &format!("{c}\r"));
    assert!(poll(&mut ing).is_empty(), "CR without LF is not a line end");
    append(&path, &format!("\n{}\n", quote(4)));
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 3, &[3, 4]));

    append(&path, &lines(5..=9, "\n"));
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 5, &[5, 6, 7, 8, 9]));
    assert!(poll(&mut ing).is_empty());
    assert!(ing.pending().is_empty());
    let total = ing.counters().total();
    assert_eq!((total.read, total.accepted, total.invalid), (9, 9, 0));
}

#[test]
fn daily_rotation_a_new_dated_file_is_picked_up_by_rescan() {
    let dir = tmp();
    let day1 = dir.path().join(FILE);
    write(&day1, &lines([1, 2], "\r\n"));
    let mut ing = ingestor(dir.path(), &[3]);
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[1, 2]));

    let day2_name = "chart_3_quote_20250920.jsonl";
    let day2 = dir.path().join(day2_name);
    write(&day2, &lines([3, 4], "\r\n"));
    assert!(
        poll(&mut ing).is_empty(),
        "a new file is only known after a rescan"
    );
    assert_eq!(ing.rescan().unwrap(), 1);
    assert_eq!(ing.rescan().unwrap(), 0, "already known");
    assert_eq!(accepted(&poll(&mut ing)), rows(day2_name, 1, &[3, 4]));

    // Both days are still tailed (a bar that spans midnight is written to both).
    append(&day1, &lines([5], "\r\n"));
    append(&day2, &lines([6], "\r\n"));
    let mut got = accepted(&poll(&mut ing));
    got.sort();
    assert_eq!(
        got,
        vec![(FILE.to_owned(), 3, 5), (day2_name.to_owned(), 3, 6)]
    );

    // The organised tree of the next day appears as a whole new folder.
    let organised =
        "DATA_SIERRA_CHART/DATA_2025/SEPTEMBRE/20250921/CHART_3/chart_3_quote_20250921.jsonl";
    write(&dir.path().join(organised), &lines([7], "\r\n"));
    assert_eq!(ing.rescan().unwrap(), 1);
    assert_eq!(accepted(&poll(&mut ing)), rows(organised, 1, &[7]));
}

#[test]
fn a_truncated_file_is_read_again_from_the_start() {
    let dir = tmp();
    let path = dir.path().join(FILE);
    write(&path, &lines([1, 2, 3], "\r\n"));
    let mut ing = ingestor(dir.path(), &[3]);
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[1, 2, 3]));

    // Truncated, then a shorter content written.
    write(&path, &lines([10], "\r\n"));
    assert_eq!(
        accepted(&poll(&mut ing)),
        rows(FILE, 1, &[10]),
        "line numbers restart with the new content"
    );
    append(&path, &lines([11], "\r\n"));
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 2, &[11]));

    // Emptied: nothing to read, and the next content is read from its first byte.
    write(&path, "");
    assert!(poll(&mut ing).is_empty());
    append(&path, &lines([12], "\n"));
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[12]));
}

/// A file cut back to a prefix keeps its first line, so only its size tells: it shrank, and is
/// read again from the start (lines already seen come back as duplicates, not as new lines).
#[test]
fn a_file_cut_back_to_its_first_line_is_read_again_from_the_start() {
    let dir = tmp();
    let path = dir.path().join(FILE);
    write(&path, &lines([1, 2, 3], "\r\n"));
    let mut ing = ingestor(dir.path(), &[3]);
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[1, 2, 3]));

    write(&path, &lines([1], "\r\n"));
    let again = poll(&mut ing);
    assert_eq!(
        again
            .iter()
            .map(|s| (s.line_no, s.verdict.clone()))
            .collect::<Vec<_>>(),
        vec![(1, Verdict::Duplicate)]
    );
    append(&path, &lines([4], "\r\n"));
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 2, &[4]));
}

fn replaced(dir: &Path, content: &str) {
    // As a dumper restarted with a fresh file would: a new file under the same name.
    let tmp_path = dir.join("replacement.tmp");
    std::fs::write(&tmp_path, content).unwrap();
    std::fs::rename(&tmp_path, dir.join(FILE)).unwrap();
}

#[test]
fn a_replaced_file_of_the_same_size_is_read_again_from_the_start() {
    let dir = tmp();
    write(&dir.path().join(FILE), &lines([101, 102, 103], "\r\n"));
    let mut ing = ingestor(dir.path(), &[3]);
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[101, 102, 103]));

    let new = lines([201, 202, 203], "\r\n");
    assert_eq!(
        new.len() as u64,
        std::fs::metadata(dir.path().join(FILE)).unwrap().len()
    );
    replaced(dir.path(), &new);
    assert_eq!(
        ing.rescan().unwrap(),
        0,
        "a replaced file is not a new file"
    );
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[201, 202, 203]));
    assert!(poll(&mut ing).is_empty());
}

#[test]
fn a_replaced_larger_file_is_read_again_from_the_start() {
    let dir = tmp();
    write(&dir.path().join(FILE), &lines([101, 102], "\r\n"));
    let mut ing = ingestor(dir.path(), &[3]);
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[101, 102]));

    replaced(dir.path(), &lines([201, 202, 203, 204], "\r\n"));
    ing.rescan().unwrap();
    assert_eq!(
        accepted(&poll(&mut ing)),
        rows(FILE, 1, &[201, 202, 203, 204])
    );
}

/// Found with `cargo fuzz run parse_line` (fuzz/regressions/parse_line/
/// ingestor-first-line-over-4k-read-twice.jsonl): a first line longer than the 4 KiB the
/// replacement check reads made every later poll and rescan take the file for a replaced one,
/// so its lines came out again (as duplicates, or counted invalid again).
#[test]
fn a_first_line_longer_than_4_kib_is_not_taken_for_a_replaced_file() {
    let dir = tmp();
    let path = dir.path().join(FILE);
    let long = format!("{{\"t\":1,\"x\":\"{}\"}}\n", "x".repeat(5000));
    write(&path, &long);
    let mut ing = ingestor(dir.path(), &[3]);
    let first = poll(&mut ing);
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0].line_no, 1);

    append(&path, &lines([7], "\n"));
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 2, &[7]));
    ing.rescan().unwrap();
    append(&path, &lines([8], "\n"));
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 3, &[8]));
    assert!(poll(&mut ing).is_empty(), "nothing read again");
}

/// The collector polls every `poll_interval` but rescans only every `rescan_interval`, so a
/// poll usually comes first after a replacement: it must not read the new content from the old
/// offset (here the middle of a line), and every line of the new file must be accepted once.
#[test]
fn a_replaced_larger_file_polled_before_the_rescan_is_read_from_the_start() {
    let dir = tmp();
    write(&dir.path().join(FILE), &lines([101, 102], "\r\n"));
    let mut ing = ingestor(dir.path(), &[3]);
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[101, 102]));

    // Longer lines: the old offset falls inside the second new line.
    replaced(
        dir.path(),
        &lines([2_000_001, 2_000_002, 2_000_003, 2_000_004], "\r\n"),
    );
    let mut seen = poll(&mut ing);
    ing.rescan().unwrap();
    seen.extend(poll(&mut ing));
    let verdicts: Vec<(u64, Verdict)> = seen
        .iter()
        .map(|s| (s.line_no, s.verdict.clone()))
        .collect();
    assert_eq!(
        accepted(&seen),
        rows(FILE, 1, &[2_000_001, 2_000_002, 2_000_003, 2_000_004]),
        "{verdicts:?}"
    );
}

/// `drain` (what `collect --once` does) reads every file to its end, also when one read window
/// holds no complete line because it falls inside a line longer than the read limit.
#[test]
fn drain_reads_past_a_line_longer_than_the_read_limit() {
    let dir = tmp();
    let path = dir.path().join(FILE);
    let junk = "x".repeat(3 << 20);
    write(
        &path,
        &format!("{}{junk}\r\n{}", lines([1], "\r\n"), lines([2], "\r\n")),
    );
    let mut ing =
        mia::ingest::Ingestor::new(dir.path(), &[3], chrono_tz::America::New_York, 1 << 20)
            .unwrap();
    ing.rescan().unwrap();
    let seen = drain(&mut ing);
    let total = ing.counters().total();
    assert_eq!(
        (total.read, total.accepted, total.invalid),
        (3, 2, 1),
        "{seen:#?}"
    );
    assert!(ing.pending().is_empty(), "{:?}", ing.pending());
}

#[test]
fn a_line_longer_than_any_sierra_line_is_one_invalid_line_and_reading_goes_on() {
    let dir = tmp();
    let path = dir.path().join(FILE);
    write(&path, &lines([1], "\n"));
    let mut ing = ingestor(dir.path(), &[3]);
    assert_eq!(poll(&mut ing).len(), 1);

    // 3 MiB without a newline, appended in pieces, then the end of that line and a good line.
    let junk = "x".repeat(1 << 20);
    for _ in 0..3 {
        append(&path, &junk);
        let _ = poll(&mut ing);
    }
    append(&path, &format!("tail of the junk\n{}\n", quote(2)));
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.extend(poll(&mut ing));
    }
    let total = ing.counters().total();
    assert_eq!(
        (total.read, total.accepted, total.invalid),
        (3, 2, 1),
        "{seen:#?}"
    );
    let good = seen.iter().find(|s| s.accepted()).expect("the good line");
    assert_eq!(good.line_no, 3);
}

#[test]
fn a_deleted_file_is_not_an_error_and_is_dropped_at_the_next_rescan() {
    let dir = tmp();
    let path = dir.path().join(FILE);
    write(&path, &lines([1], "\n"));
    let other = "chart_3_trade_20250919.jsonl";
    write(&dir.path().join(other), "");
    let mut ing = ingestor(dir.path(), &[3]);
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[1]));
    assert_eq!(ing.sources().count(), 2);

    std::fs::remove_file(&path).unwrap();
    assert!(poll(&mut ing).is_empty());
    assert!(
        ing.take_unreadable().is_empty(),
        "a vanished file is not an unreadable one"
    );
    ing.rescan().unwrap();
    let names: Vec<String> = ing.sources().map(|s| s.rel.clone()).collect();
    assert_eq!(names, vec![other.to_owned()]);

    // Recreated under the same name, it is a new file read from its start.
    write(&path, &lines([7], "\n"));
    ing.rescan().unwrap();
    assert_eq!(accepted(&poll(&mut ing)), rows(FILE, 1, &[7]));
}
