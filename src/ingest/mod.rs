//! Ingest: discovery, tailing and parsing of the Sierra dumper files (product.md §3).
//!
//! [`Ingestor`] finds every chart file below the data folder (three naming schemes), polls their
//! sizes, reads what was appended, splits complete lines (a partial last line waits for the next
//! read), parses, deduplicates and counts. It hands every line to a sink as a [`LineEvent`]; the
//! unified journal and the snapshot are sinks. It never stops on bad content: a bad line is an
//! event like any other.
//!
//! Offsets always point at the start of a line, so a checkpoint of offsets is enough to resume.

pub mod collect;
pub mod counters;
pub mod dedup;
pub mod naming;
pub mod record;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use self::counters::Counters;
use self::dedup::Dedup;
use self::naming::SourceName;
use self::record::{InvalidLine, LineContext, Record, parse_line};
use crate::config::TypeFilter;

/// Errors that stop ingestion (bad content never does).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The data folder does not exist or is not a folder.
    #[error("data folder {0} does not exist or is not a folder")]
    NoDataDir(PathBuf),
    /// A folder or file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A chart file being tailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the data folder, with `/` separators (stable across machines).
    pub rel: String,
    /// What the name says.
    pub name: SourceName,
}

/// Resume point of one file, as stored in the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffset {
    /// Byte offset of the first line not yet consumed.
    pub offset: u64,
    /// Hash of the first line (with its newline), to notice a replaced file.
    pub head: Option<u64>,
}

/// What happened to one line.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// A new, valid record.
    Accepted(Record<'a>),
    /// A valid record already seen.
    Duplicate(Record<'a>),
    /// A rejected line.
    Invalid(InvalidLine),
}

/// One line and what ingest made of it.
#[derive(Debug)]
pub struct LineEvent<'a> {
    /// The file.
    pub source: &'a SourceFile,
    /// 1-based line number in the file.
    pub line_no: u64,
    /// The line, without its line ending.
    pub raw: &'a str,
    /// What ingest made of it.
    pub outcome: Outcome<'a>,
    /// True while a restart re-reads lines that were journaled before it: they rebuild the
    /// counters, duplicate memory and snapshot, and must not be journaled again.
    pub replayed: bool,
    /// True for an accepted record whose type a configured filter keeps out of the journal.
    pub filtered: bool,
}

#[derive(Debug)]
struct Tailed {
    source: SourceFile,
    path: PathBuf,
    offset: u64,
    line_no: u64,
    head: Option<u64>,
    /// Lines before this offset were journaled before a restart.
    replay_until: u64,
    /// Inside a line longer than the read limit: skip to its end.
    skipping: bool,
    /// The file disappeared (warned once; dropped at the next rescan unless it comes back).
    missing: bool,
}

/// What one poll consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Lines read (blank lines excluded).
    pub lines: u64,
    /// Bytes consumed: offsets moved by this much (includes blank lines and skipped garbage).
    pub bytes: u64,
}

/// The tailing reader of one data folder.
#[derive(Debug)]
pub struct Ingestor {
    root: PathBuf,
    charts: BTreeSet<u16>,
    tz: Tz,
    max_read: usize,
    files: BTreeMap<String, Tailed>,
    resume: BTreeMap<String, FileOffset>,
    filters: BTreeMap<u16, TypeFilter>,
    dedup: Dedup,
    counters: Counters,
    buf: Vec<u8>,
    unreadable: Vec<(PathBuf, std::io::Error)>,
}

/// Longest a line may be; Sierra lines are under 1 KiB, so this only catches garbage.
const MAX_LINE: usize = 1 << 20;

impl Ingestor {
    /// Creates an ingestor for the chart files of `charts` below `root`.
    ///
    /// # Errors
    ///
    /// [`IngestError::NoDataDir`] when `root` is not a folder.
    pub fn new(root: &Path, charts: &[u16], tz: Tz, max_read: usize) -> Result<Self, IngestError> {
        if !root.is_dir() {
            return Err(IngestError::NoDataDir(root.to_owned()));
        }
        Ok(Self {
            root: root.to_owned(),
            charts: charts.iter().copied().collect(),
            tz,
            max_read: max_read.max(MAX_LINE),
            files: BTreeMap::new(),
            resume: BTreeMap::new(),
            filters: BTreeMap::new(),
            dedup: Dedup::default(),
            counters: Counters::default(),
            buf: Vec::new(),
            unreadable: Vec::new(),
        })
    }

    /// Sets where each file resumes after a restart. Lines before those offsets are read again
    /// as `replayed` events, so counters and duplicate memory come back exactly as they were.
    pub fn resume_from(&mut self, offsets: BTreeMap<String, FileOffset>) {
        self.resume = offsets;
    }

    /// Sets the per-chart journal filters: matching records are still accepted (the snapshot
    /// sees them) but counted as filtered and marked so on their event.
    pub fn set_filters(&mut self, filters: BTreeMap<u16, TypeFilter>) {
        self.filters = filters;
    }

    /// Returns the counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Returns the data folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the files being tailed, sorted by relative path.
    pub fn sources(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.values().map(|t| &t.source)
    }

    /// Returns the resume point of every file, for the checkpoint.
    pub fn offsets(&self) -> BTreeMap<String, FileOffset> {
        self.files
            .iter()
            .map(|(rel, t)| {
                (
                    rel.clone(),
                    FileOffset {
                        offset: t.offset,
                        head: t.head,
                    },
                )
            })
            .collect()
    }

    /// Returns how many bytes are waiting after the last complete line of each file with a
    /// partial last line (normal while Sierra is writing).
    pub fn pending(&self) -> Vec<(String, u64)> {
        self.files
            .values()
            .filter_map(|t| {
                let len = std::fs::metadata(&t.path).ok()?.len();
                (len > t.offset).then(|| (t.source.rel.clone(), len - t.offset))
            })
            .collect()
    }

    /// Scans the data folder for chart files not yet tailed (new charts, daily rotation) and
    /// checks that known files were not replaced. Returns how many files were added.
    ///
    /// # Errors
    ///
    /// [`IngestError`] when the data folder itself cannot be read; unreadable subfolders are
    /// skipped with a warning.
    pub fn rescan(&mut self) -> Result<usize, IngestError> {
        let charts: Vec<u16> = self.charts.iter().copied().collect();
        let found = discover(&self.root, &charts)?;
        // Drop files that disappeared and were not found again.
        self.files
            .retain(|rel, t| !t.missing || found.iter().any(|f| &f.rel == rel));
        let mut added = 0;
        for Discovered { rel, path, name } in found {
            if let Some(t) = self.files.get_mut(&rel) {
                if t.head.is_some() && first_line_hash(&t.path) != t.head {
                    tracing::warn!(file = %rel, "file was replaced; reading it again from the start");
                    reset(t);
                }
                continue;
            }
            let mut t = Tailed {
                source: SourceFile {
                    rel: rel.clone(),
                    name,
                },
                path,
                offset: 0,
                line_no: 0,
                head: None,
                replay_until: 0,
                skipping: false,
                missing: false,
            };
            if let Some(resume) = self.resume.remove(&rel).filter(|r| r.offset > 0) {
                let size = std::fs::metadata(&t.path).map(|m| m.len()).unwrap_or(0);
                if size >= resume.offset && first_line_hash(&t.path) == resume.head {
                    t.replay_until = resume.offset;
                } else {
                    tracing::warn!(file = %rel, "file changed while mia was stopped; reading it from the start");
                }
            }
            self.files.insert(rel, t);
            added += 1;
        }
        Ok(added)
    }

    /// Reads what was appended to every file and hands each complete line to `sink`.
    ///
    /// A file that cannot be read this time is skipped with a warning and retried at the next
    /// poll: Windows writers hold files briefly. A file that disappeared is warned about once
    /// and dropped at the next rescan.
    pub fn poll(&mut self, sink: &mut dyn FnMut(LineEvent<'_>)) -> Progress {
        let mut progress = Progress::default();
        let tz = self.tz;
        let max_read = self.max_read;
        for t in self.files.values_mut() {
            match read_appended(t, max_read, &mut self.buf) {
                Ok(true) => t.missing = false,
                Ok(false) => {
                    t.missing = false;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !t.missing {
                        tracing::warn!(file = %t.source.rel, "file disappeared");
                        t.missing = true;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(file = %t.source.rel, error = %e, "cannot read file; will retry");
                    self.unreadable.push((t.path.clone(), e));
                    continue;
                }
            }
            let before = t.offset;
            let filter = self.filters.get(&t.source.name.chart);
            progress.lines += process(
                t,
                &self.buf,
                tz,
                filter,
                &mut self.dedup,
                &mut self.counters,
                sink,
            );
            // `before` is taken after any reset (truncation, replacement): process only moves the
            // offset forward.
            progress.bytes += t.offset - before;
        }
        progress
    }

    /// Returns (and forgets) the files that could not be read since the last call. Following
    /// files, a read error is retried at the next poll; a one-shot read reports it.
    pub fn take_unreadable(&mut self) -> Vec<(PathBuf, std::io::Error)> {
        std::mem::take(&mut self.unreadable)
    }

    /// Polls until every file has been read to its current end (a first run over a backlog may
    /// need several reads per file). Stops when a poll consumes no byte, not when it reads no
    /// line: a read window can hold only blank lines or part of an overlong garbage line.
    pub fn drain(&mut self, sink: &mut dyn FnMut(LineEvent<'_>)) -> Progress {
        let mut total = Progress::default();
        loop {
            let step = self.poll(sink);
            total.lines += step.lines;
            total.bytes += step.bytes;
            if step.bytes == 0 {
                return total;
            }
        }
    }
}

fn reset(t: &mut Tailed) {
    t.offset = 0;
    t.line_no = 0;
    t.head = None;
    t.replay_until = 0;
    t.skipping = false;
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf, SourceName)>,
) -> std::io::Result<()> {
    // The organised tree is DATA_SIERRA_CHART/DATA_<YYYY>/<MONTH>/<YYYYMMDD>/CHART_<N>: depth 5.
    const MAX_DEPTH: usize = 6;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if depth == 0 => return Err(e),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read folder; skipping it");
            return Ok(());
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth < MAX_DEPTH {
                walk(root, &path, depth + 1, out)?;
            }
        } else if let Some(name) = entry.file_name().to_str().and_then(SourceName::parse) {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path, name));
        }
    }
    Ok(())
}

/// How much of a file's first line identifies the file (to tell a replaced file from a grown
/// one): the line with its `\n`, or its first `HEAD_BYTES` bytes when it is longer.
const HEAD_BYTES: usize = 4096;

/// The hash of the head of a file whose first line is complete (see [`head_hash`]).
fn first_line_hash(path: &Path) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let mut head = vec![0u8; HEAD_BYTES];
    let n = read_full(&mut file, &mut head).ok()?;
    match memchr::memchr(b'\n', &head[..n]) {
        Some(end) => Some(xxh3_64(&head[..=end])),
        // A first line longer than the head: its first HEAD_BYTES bytes.
        None if n == HEAD_BYTES => Some(xxh3_64(&head)),
        None => None,
    }
}

/// The head hash of a buffer read from offset 0 whose first line ends at `first` (the index
/// of its `\n`): the same bytes [`first_line_hash`] reads back from the file.
fn head_hash(buf: &[u8], first: usize) -> u64 {
    xxh3_64(&buf[..(first + 1).min(HEAD_BYTES)])
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Reads the bytes appended since the last read into `buf`. Returns false when there is nothing
/// new. Handles truncation (size below the offset).
fn read_appended(t: &mut Tailed, max_read: usize, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    // A stat is cheaper than an open, and most files have not grown since the last poll.
    let size = std::fs::metadata(&t.path)?.len();
    if size < t.offset {
        tracing::warn!(file = %t.source.rel, size, offset = t.offset, "file was truncated; reading it again from the start");
        reset(t);
    }
    if size == t.offset {
        return Ok(false);
    }
    // A file replaced by a larger one would otherwise be read from the middle of a line: check
    // its first line whenever it changed (one small read, only for files that grew).
    if t.head.is_some() && first_line_hash(&t.path) != t.head {
        tracing::warn!(file = %t.source.rel, "file was replaced; reading it again from the start");
        reset(t);
    }
    let mut file = File::open(&t.path)?;
    let want = usize::try_from(size - t.offset)
        .unwrap_or(usize::MAX)
        .min(max_read);
    buf.clear();
    buf.resize(want, 0);
    file.seek(SeekFrom::Start(t.offset))?;
    let n = read_full(&mut file, buf)?;
    buf.truncate(n);
    Ok(n > 0)
}

/// Splits `buf` (read at `t.offset`) into complete lines and processes them.
fn process(
    t: &mut Tailed,
    buf: &[u8],
    tz: Tz,
    filter: Option<&TypeFilter>,
    dedup: &mut Dedup,
    counters: &mut Counters,
    sink: &mut dyn FnMut(LineEvent<'_>),
) -> u64 {
    let Some(last_nl) = memchr::memrchr(b'\n', buf) else {
        if buf.len() >= MAX_LINE {
            // A "line" longer than any Sierra line: reject it as one invalid line and skip to
            // its end, so that a garbage file cannot stall the reader.
            if !t.skipping {
                t.line_no += 1;
                let replayed = t.offset < t.replay_until;
                emit_invalid(
                    t,
                    "",
                    InvalidLine::Json(format!("line longer than {MAX_LINE} bytes")),
                    replayed,
                    counters,
                    sink,
                );
            }
            t.skipping = true;
            t.offset += buf.len() as u64;
        }
        return 0;
    };
    if t.offset == 0 && t.head.is_none() {
        let first = memchr::memchr(b'\n', buf).unwrap_or(last_nl);
        t.head = Some(head_hash(buf, first));
    }
    let ctx = LineContext {
        chart: t.source.name.chart,
        kind: t.source.name.kind.as_deref(),
        file_date: t.source.name.date,
        tz,
    };
    let mut lines = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', &buf[..=last_nl]) {
        let mut line = &buf[start..end];
        let line_start = t.offset + start as u64;
        start = end + 1;
        if t.skipping {
            t.skipping = false;
            continue;
        }
        t.line_no += 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            counters.blank += 1;
            continue;
        }
        lines += 1;
        let replayed = line_start < t.replay_until;
        let Ok(text) = std::str::from_utf8(line) else {
            let raw = String::from_utf8_lossy(line);
            emit_invalid(
                t,
                &raw,
                InvalidLine::Json("not UTF-8".into()),
                replayed,
                counters,
                sink,
            );
            continue;
        };
        let (outcome, filtered) = classify_line(text, &ctx, filter, dedup, counters);
        sink(LineEvent {
            source: &t.source,
            line_no: t.line_no,
            raw: text,
            outcome,
            replayed,
            filtered,
        });
    }
    t.offset += (last_nl + 1) as u64;
    lines
}

/// Parses one line, decides accepted, duplicate or invalid, and counts it. Shared by the tailer
/// and replay, so that both read every line the same way. Returns the outcome and whether a
/// filter keeps an accepted record out of the journal.
pub fn classify_line<'a>(
    text: &'a str,
    ctx: &LineContext<'_>,
    filter: Option<&TypeFilter>,
    dedup: &mut Dedup,
    counters: &mut Counters,
) -> (Outcome<'a>, bool) {
    let file_kind = ctx.kind.unwrap_or("?");
    match parse_line(text, ctx) {
        Err(invalid) => {
            let counts = counters.entry(ctx.chart, file_kind);
            counts.read += 1;
            counts.invalid += 1;
            (Outcome::Invalid(invalid), false)
        }
        Ok(record) => {
            let counts = counters.entry(ctx.chart, &record.kind);
            counts.read += 1;
            if dedup.accept(ctx.chart, &record, text) {
                let filtered = filter.is_some_and(|f| !f.allows(&record.kind));
                counts.accepted += 1;
                counts.unknown += u64::from(!record.known);
                counts.flagged += u64::from(record.flagged);
                counts.filtered += u64::from(filtered);
                (Outcome::Accepted(record), filtered)
            } else {
                counts.duplicates += 1;
                (Outcome::Duplicate(record), false)
            }
        }
    }
}

/// A chart file found below a data folder.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// Path relative to the data folder, with `/` separators.
    pub rel: String,
    /// Full path.
    pub path: PathBuf,
    /// What its name says.
    pub name: SourceName,
}

/// Finds the chart files of `charts` below `root` (the three naming schemes), sorted by
/// relative path.
///
/// # Errors
///
/// [`IngestError`] when `root` is not a readable folder.
pub fn discover(root: &Path, charts: &[u16]) -> Result<Vec<Discovered>, IngestError> {
    if !root.is_dir() {
        return Err(IngestError::NoDataDir(root.to_owned()));
    }
    let mut found = Vec::new();
    walk(root, root, 0, &mut found).map_err(|source| IngestError::Io {
        path: root.to_owned(),
        source,
    })?;
    let mut files: Vec<Discovered> = found
        .into_iter()
        .filter(|(_, _, name)| charts.contains(&name.chart))
        .map(|(rel, path, name)| Discovered { rel, path, name })
        .collect();
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

fn emit_invalid(
    t: &Tailed,
    raw: &str,
    invalid: InvalidLine,
    replayed: bool,
    counters: &mut Counters,
    sink: &mut dyn FnMut(LineEvent<'_>),
) {
    let counts = counters.entry(
        t.source.name.chart,
        t.source.name.kind.as_deref().unwrap_or("?"),
    );
    counts.read += 1;
    counts.invalid += 1;
    sink(LineEvent {
        source: &t.source,
        line_no: t.line_no,
        raw,
        outcome: Outcome::Invalid(invalid),
        replayed,
        filtered: false,
    });
}
