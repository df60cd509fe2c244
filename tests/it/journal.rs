//! Crash safety of the unified journal, in process: an uncommitted or torn journal tail is cut
//! back to the checkpoint, a lost checkpoint update is recovered, and a checkpoint that does
//! not match the folders is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mia::config::TypeFilter;
use mia::ingest::collect::{CollectError, CollectOptions, Collector};
use mia::journal::{Checkpoint, JournalError};
use pretty_assertions::assert_eq;

use crate::support::{
    append, collect_opts, copy_tree, counters_text, data_path, fixed_clock, open_collector,
    read_journals, tmp,
};

struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    journal: PathBuf,
    state: PathBuf,
}

impl Setup {
    /// A data folder with quotes and trades (with replays), bars with invalid lines, MenthorQ
    /// levels and chart-4 profile records: 21 accepted lines and 5 rejected ones.
    fn new() -> Setup {
        let dir = tmp();
        let data = dir.path().join("data");
        for case in ["duplicates", "invalid", "menthorq", "chart4"] {
            copy_tree(&data_path(&format!("ingest/quirks/{case}")), &data);
        }
        Setup {
            journal: dir.path().join("journal"),
            state: dir.path().join("state"),
            data,
            _dir: dir,
        }
    }

    fn opts(&self) -> CollectOptions {
        collect_opts(&self.data, &self.journal, &self.state)
    }

    fn open(&self) -> Collector {
        open_collector(self.opts())
    }

    fn try_open(&self, opts: CollectOptions) -> Result<Collector, CollectError> {
        Collector::open(opts, fixed_clock())
    }

    fn journals(&self) -> BTreeMap<String, String> {
        read_journals(&self.journal)
    }

    fn quotes(&self) -> PathBuf {
        self.data.join("chart_3_quote_20250919.jsonl")
    }
}

fn step(c: &mut Collector) -> u64 {
    c.step(true, &mut |_, _| {}).unwrap()
}

fn quote(seq: u32) -> String {
    format!(
        "{{\"t\":45919.{:06},\"sym\":\"ESZ25_FUT_CME\",\"type\":\"quote\",\"kind\":\"BIDASK\",\"bid\":6498.75000000,\"ask\":6499.00000000,\"bq\":14,\"aq\":9,\"seq\":{seq},\"chart\":3}}\r\n",
        564_000 + seq % 1000
    )
}

const UNIFIED: &str = "mia_unified_20250919.jsonl";
const REJECTS: &str = "mia_rejects_20250919.jsonl";

#[test]
fn an_uncommitted_and_torn_journal_tail_is_cut_back_to_the_checkpoint() {
    let s = Setup::new();
    let mut c = s.open();
    step(&mut c);
    let counters = counters_text(c.ingestor().counters());
    drop(c);
    let committed = s.journals();
    assert_eq!(committed[UNIFIED].lines().count(), 21);
    assert_eq!(committed[REJECTS].lines().count(), 5);

    // A crash after a write that no checkpoint covers: whole lines, then a torn one; and a
    // journal of another day that no checkpoint ever listed.
    append(
        &s.journal.join(UNIFIED),
        "{\"t\":45919.5,\"ts\":\"x\",\"sym\":null,\"graph\":3,\"type\":\"quote\",\"ingest_ts\":\"x\",\"data\":{}}\n{\"t\":459",
    );
    append(&s.journal.join(REJECTS), "{\"file\":\"chart_3_");
    append(&s.journal.join("mia_unified_20250920.jsonl"), "{\"t\":1}\n");

    let mut c = s.open();
    let mut after = s.journals();
    assert_eq!(
        after.remove("mia_unified_20250920.jsonl").as_deref(),
        Some(""),
        "a journal the checkpoint does not list holds only uncommitted lines"
    );
    assert_eq!(after, committed, "cut back to the committed lengths");

    // The restart re-reads the sources up to the checkpoint without journaling them again,
    // and rebuilds the counters exactly.
    step(&mut c);
    assert_eq!(c.journaled(), 0);
    assert_eq!(counters_text(c.ingestor().counters()), counters);
    assert_eq!(
        c.rejects().len(),
        5,
        "rejects are reported again, not journaled"
    );
    let mut after = s.journals();
    after.remove("mia_unified_20250920.jsonl");
    assert_eq!(after, committed);

    // New lines go on after the committed ones; a seq seen before the restart is still a
    // duplicate.
    append(&s.quotes(), &format!("{}{}", quote(102), quote(105)));
    step(&mut c);
    assert_eq!(c.journaled(), 1);
    let unified = &s.journals()[UNIFIED];
    assert!(unified.starts_with(&committed[UNIFIED]));
    let new: Vec<&str> = unified[committed[UNIFIED].len()..].lines().collect();
    assert_eq!(new.len(), 1);
    assert!(new[0].ends_with(&format!(",\"data\":{}}}", quote(105).trim_end())));
}

/// A garbage "line" longer than any Sierra line is one reject; a restart that re-reads it up to
/// the checkpoint must not report it to the rejects journal a second time.
#[test]
fn an_overlong_garbage_line_is_rejected_once_across_restarts() {
    let s = Setup::new();
    let junk = "x".repeat(3 << 20);
    append(&s.quotes(), &format!("{junk}\r\n{}", quote(108)));
    // Reads of 1 MiB: the junk never fits in one read, as with any line over the read limit.
    // Several polls, as when following (`drain` is tested on its own in ingest.rs).
    let mut opts = s.opts();
    opts.max_read = 1 << 20;
    let poll_all = |c: &mut Collector| {
        for _ in 0..8 {
            c.step(false, &mut |_, _| {}).unwrap();
        }
    };
    let mut c = Collector::open(opts.clone(), fixed_clock()).unwrap();
    poll_all(&mut c);
    assert!(c.ingestor().pending().is_empty());
    drop(c);
    let committed = s.journals();
    assert_eq!(
        committed[REJECTS].lines().count(),
        6,
        "5 fixture lines and the junk"
    );
    assert_eq!(committed[UNIFIED].lines().count(), 22);

    let mut c = Collector::open(opts, fixed_clock()).unwrap();
    poll_all(&mut c);
    assert_eq!(c.journaled(), 0);
    let after = s.journals();
    assert_eq!(after[UNIFIED], committed[UNIFIED]);
    assert_eq!(
        after[REJECTS].lines().count(),
        6,
        "the junk re-read up to the checkpoint was rejected again:\n{}",
        after[REJECTS]
            .lines()
            .filter(|l| l.contains("longer than"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Kill between the journal write and the checkpoint rename: the checkpoint on disk is the
/// previous one. The restart must produce exactly the journal of an uninterrupted run.
#[test]
fn a_lost_checkpoint_update_neither_loses_nor_duplicates_lines() {
    let s = Setup::new();
    let checkpoint = s.state.join(Checkpoint::FILE);
    let mut c = s.open();
    step(&mut c);
    let old_checkpoint = std::fs::read(&checkpoint).unwrap();

    append(
        &s.quotes(),
        &format!("{}{}{}", quote(106), quote(103), quote(107)),
    );
    append(
        &s.data.join("chart_3_basedata_20250919.jsonl"),
        "{\"t\":45919.6,\"type\":\"basedata\",\"c\":nan}\r\n",
    );
    step(&mut c);
    drop(c);
    let uninterrupted = s.journals();
    assert_eq!(uninterrupted[UNIFIED].lines().count(), 23);
    assert_eq!(uninterrupted[REJECTS].lines().count(), 6);

    std::fs::write(&checkpoint, &old_checkpoint).unwrap();
    let mut c = s.open();
    step(&mut c);
    assert_eq!(c.journaled(), 2);
    assert_eq!(s.journals(), uninterrupted);
    drop(c);

    // And a restart on an up-to-date checkpoint changes nothing.
    let mut c = s.open();
    step(&mut c);
    assert_eq!(c.journaled(), 0);
    assert_eq!(s.journals(), uninterrupted);
}

#[test]
fn a_journal_without_checkpoint_is_refused() {
    let s = Setup::new();
    let mut c = s.open();
    step(&mut c);
    drop(c);
    std::fs::remove_file(s.state.join(Checkpoint::FILE)).unwrap();
    let err = s.try_open(s.opts()).unwrap_err();
    assert!(
        matches!(err, CollectError::Journal(JournalError::Orphan { .. })),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(UNIFIED) || message.contains(REJECTS),
        "{message}"
    );
    assert!(message.contains(Checkpoint::FILE), "{message}");

    // Empty journals carry no offsets: they are no reason to refuse.
    let fresh = tmp();
    let journal = fresh.path().join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    std::fs::write(journal.join(UNIFIED), "").unwrap();
    let opts = collect_opts(&s.data, &journal, &fresh.path().join("state"));
    let mut c = Collector::open(opts, fixed_clock()).unwrap();
    step(&mut c);
    assert_eq!(read_journals(&journal)[UNIFIED].lines().count(), 21);
}

#[test]
fn a_checkpoint_of_another_data_or_journal_folder_is_refused() {
    let s = Setup::new();
    let mut c = s.open();
    step(&mut c);
    drop(c);
    let before = s.journals();

    let other = tmp();
    let other_data = other.path().join("data");
    std::fs::create_dir_all(&other_data).unwrap();
    let mut opts = s.opts();
    opts.data_dir = other_data.clone();
    let err = s.try_open(opts).unwrap_err();
    assert!(
        matches!(err, CollectError::Journal(JournalError::Mismatch { .. })),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&s.data.display().to_string())
            && message.contains(&other_data.display().to_string()),
        "names both folders: {message}"
    );

    let mut opts = s.opts();
    opts.journal_dir = other.path().join("journal");
    let err = s.try_open(opts).unwrap_err();
    assert!(
        matches!(err, CollectError::Journal(JournalError::Mismatch { .. })),
        "{err:?}"
    );
    assert_eq!(s.journals(), before, "a refused start touches nothing");
}

#[test]
fn a_corrupt_checkpoint_is_an_error_not_a_fresh_start() {
    let s = Setup::new();
    let mut c = s.open();
    step(&mut c);
    drop(c);
    let before = s.journals();
    std::fs::write(s.state.join(Checkpoint::FILE), "{\"version\":1,\"data_d").unwrap();
    let err = s.try_open(s.opts()).unwrap_err();
    assert!(
        matches!(
            err,
            CollectError::Journal(JournalError::CorruptCheckpoint { .. })
        ),
        "{err:?}"
    );
    assert_eq!(s.journals(), before);
}

/// A shorter journal than the checkpoint says (possible only with fsync off and a power cut)
/// keeps its complete lines and drops a torn last one.
#[test]
fn a_journal_shorter_than_its_checkpoint_keeps_its_complete_lines() {
    let s = Setup::new();
    let mut c = s.open();
    step(&mut c);
    drop(c);
    let path = s.journal.join(UNIFIED);
    let full = std::fs::read_to_string(&path).unwrap();
    let cut = full.len() - 10;
    std::fs::write(&path, &full[..cut]).unwrap();
    let _c = s.open();
    let kept = std::fs::read_to_string(&path).unwrap();
    let complete = &full[..=full[..cut].rfind('\n').unwrap()];
    assert_eq!(kept, complete);
}

fn checkpoint_files(state: &Path) -> BTreeMap<String, u64> {
    Checkpoint::load(state)
        .unwrap()
        .unwrap()
        .files
        .into_iter()
        .map(|(rel, off)| (rel, off.offset))
        .collect()
}

#[test]
fn the_checkpoint_records_line_start_offsets_of_every_file() {
    let s = Setup::new();
    append(&s.quotes(), "{\"t\":45919.5,\"sym\":\"ES");
    let mut c = s.open();
    step(&mut c);
    let mut want: BTreeMap<String, u64> = std::fs::read_dir(&s.data)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(want.len(), 9);
    // The partial last line of the quote file is not consumed.
    let partial = "{\"t\":45919.5,\"sym\":\"ES".len() as u64;
    *want.get_mut("chart_3_quote_20250919.jsonl").unwrap() -= partial;
    assert_eq!(checkpoint_files(&s.state), want);
}

#[test]
fn journal_filters_keep_types_out_of_the_journal_and_count_them() {
    let s = Setup::new();
    let mut opts = s.opts();
    opts.filters.insert(
        3,
        TypeFilter {
            include: None,
            exclude: ["quote".to_owned()].into(),
        },
    );
    let mut c = Collector::open(opts, fixed_clock()).unwrap();
    step(&mut c);
    let unified = &s.journals()[UNIFIED];
    assert_eq!(unified.lines().count(), 17, "21 accepted, 4 of them quotes");
    assert!(!unified.contains("\"type\":\"quote\""));
    let quotes = c
        .ingestor()
        .counters()
        .rows()
        .into_iter()
        .find(|(chart, kind, _)| *chart == 3 && kind == "quote")
        .unwrap()
        .2;
    assert_eq!(quotes.accepted, 4, "filtered lines are still accepted");
    assert_eq!(
        quotes.filtered, 4,
        "Counts::filtered is documented as the accepted lines kept out of the journal by a filter"
    );
}
