//! Output files: routing of records to files per layout, buffered appending, and the per-file
//! bookkeeping that becomes the manifest.
//!
//! The bookkeeping is done from what the generator says about each line (its record type, bar
//! index, `seq`, validity), not by parsing the bytes back, so that a full day stays fast. The
//! tests re-derive every number independently from the files.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::{FileManifest, SimError};
use crate::ingest::naming::{Layout, source_path};

/// Every record type the simulator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Rec {
    Basedata,
    Depth,
    Quote,
    Trade,
    TradeSummary,
    Pvwap,
    Vwap,
    Vva,
    Nbcv,
    NbcvFootprint,
    CumulativeDelta,
    Atr,
    Vix3,
    C4Vwap,
    C4Vva,
    C4VvaPrevious,
    C4PreviousVp,
    C4PreviousVwap,
    C4Nbcv,
    C4CumulativeDelta,
    C4VolumeProfile,
    Vix8,
    MenthorqLevel,
    Correlation10,
    MenthorqDiag,
}

/// Number of [`Rec`] variants.
pub(crate) const N_REC: usize = 25;

impl Rec {
    pub(crate) const ALL: [Rec; N_REC] = [
        Rec::Basedata,
        Rec::Depth,
        Rec::Quote,
        Rec::Trade,
        Rec::TradeSummary,
        Rec::Pvwap,
        Rec::Vwap,
        Rec::Vva,
        Rec::Nbcv,
        Rec::NbcvFootprint,
        Rec::CumulativeDelta,
        Rec::Atr,
        Rec::Vix3,
        Rec::C4Vwap,
        Rec::C4Vva,
        Rec::C4VvaPrevious,
        Rec::C4PreviousVp,
        Rec::C4PreviousVwap,
        Rec::C4Nbcv,
        Rec::C4CumulativeDelta,
        Rec::C4VolumeProfile,
        Rec::Vix8,
        Rec::MenthorqLevel,
        Rec::Correlation10,
        Rec::MenthorqDiag,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The chart that writes this record.
    pub(crate) fn chart(self) -> u16 {
        match self {
            Rec::C4Vwap
            | Rec::C4Vva
            | Rec::C4VvaPrevious
            | Rec::C4PreviousVp
            | Rec::C4PreviousVwap
            | Rec::C4Nbcv
            | Rec::C4CumulativeDelta
            | Rec::C4VolumeProfile => 4,
            Rec::Vix8 => 8,
            Rec::MenthorqLevel | Rec::Correlation10 | Rec::MenthorqDiag => 10,
            _ => 3,
        }
    }

    /// The `<kind>` component of the file name the record goes to.
    pub(crate) fn file_kind(self) -> &'static str {
        match self {
            Rec::Basedata => "basedata",
            Rec::Depth => "depth",
            Rec::Quote => "quote",
            Rec::Trade => "trade",
            Rec::TradeSummary => "trade_summary",
            Rec::Pvwap => "pvwap",
            Rec::Vwap | Rec::C4Vwap => "vwap",
            Rec::Vva | Rec::C4Vva => "vva",
            Rec::Nbcv | Rec::NbcvFootprint | Rec::C4Nbcv => "nbcv",
            Rec::CumulativeDelta | Rec::C4CumulativeDelta => "cumulative_delta",
            Rec::Atr => "atr",
            Rec::Vix3 | Rec::Vix8 => "vix",
            Rec::C4VvaPrevious => "vva_previous",
            Rec::C4PreviousVp => "previous_vp",
            Rec::C4PreviousVwap => "previous_vwap",
            Rec::C4VolumeProfile => "volume_profile",
            Rec::MenthorqLevel | Rec::Correlation10 | Rec::MenthorqDiag => "menthorq",
        }
    }

    /// The name counted in the manifest's `types`: the `type` field, or the file kind for the
    /// chart-4 records, which have none.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Rec::NbcvFootprint => "nbcv_footprint",
            Rec::TradeSummary => "trade_summary",
            Rec::MenthorqLevel => "menthorq_level",
            Rec::Correlation10 => "correlation",
            Rec::MenthorqDiag => "menthorq_diag",
            other => other.file_kind(),
        }
    }
}

/// What the duplicate definition needs to know about a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A `quote` or `trade`: duplicates are decided on `seq`.
    Seq(u32),
    /// Any other record: duplicates are byte-identical repeats of the previous line of the same
    /// key. `i` is the bar index (`i` or `bar`), `sub` packs `study_id` and `subgraph` of
    /// `menthorq_level` lines, `alt_sym` marks the old decorated chart-10 symbol.
    Bar {
        i: Option<i64>,
        sub: Option<(u8, u8)>,
        alt_sym: bool,
    },
}

impl Key {
    /// A record without a bar index (`depth`, `trade_summary`, `menthorq_diag`).
    pub(crate) const NONE: Key = Key::Bar {
        i: None,
        sub: None,
        alt_sym: false,
    };

    /// A bar record.
    pub(crate) fn bar(i: i64) -> Key {
        Key::Bar {
            i: Some(i),
            sub: None,
            alt_sym: false,
        }
    }
}

/// The line is valid JSON or not (quirks write `nan` tokens and torn lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validity {
    Valid,
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DedupKey {
    rec: Rec,
    i: Option<i64>,
    sub: Option<(u8, u8)>,
    alt_sym: bool,
}

/// One output file and what has been written to it.
struct Sink {
    rel: String,
    path: PathBuf,
    chart: u16,
    kind: Option<&'static str>,
    writer: BufWriter<File>,
    crlf: bool,
    lines: u64,
    bytes: u64,
    tail: u64,
    invalid: Vec<u64>,
    duplicates: Vec<u64>,
    types: [u64; N_REC],
    max_seq: [Option<u32>; 2],
    last: HashMap<DedupKey, Vec<u8>>,
}

impl Sink {
    fn io(&self, source: std::io::Error) -> SimError {
        SimError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn write_line(
        &mut self,
        rec: Rec,
        key: Key,
        validity: Validity,
        line: &[u8],
    ) -> Result<u64, SimError> {
        let eol: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        if let Err(e) = self
            .writer
            .write_all(line)
            .and_then(|()| self.writer.write_all(eol))
        {
            return Err(self.io(e));
        }
        self.lines += 1;
        self.bytes += (line.len() + eol.len()) as u64;
        let n = self.lines;
        if validity == Validity::Invalid {
            // An unparsable line has no key for a reader, so it takes no part in duplicates.
            self.invalid.push(n);
            return Ok(n);
        }
        self.types[rec.index()] += 1;
        match key {
            Key::Seq(seq) => {
                // New T&S lines always carry a larger seq than anything before, and replays are
                // verbatim copies of earlier lines of the same type, so "seen before" is "not
                // above the maximum".
                let slot = usize::from(rec == Rec::Trade);
                match self.max_seq[slot] {
                    Some(max) if seq <= max => self.duplicates.push(n),
                    _ => self.max_seq[slot] = Some(seq),
                }
            }
            Key::Bar { i, sub, alt_sym } => {
                let key = DedupKey {
                    rec,
                    i,
                    sub,
                    alt_sym,
                };
                match self.last.get_mut(&key) {
                    Some(prev) => {
                        if prev.as_slice() == line {
                            self.duplicates.push(n);
                        } else {
                            prev.clear();
                            prev.extend_from_slice(line);
                        }
                    }
                    None => {
                        self.last.insert(key, line.to_vec());
                    }
                }
            }
        }
        Ok(n)
    }

    fn write_partial(&mut self, fragment: &[u8]) -> Result<(), SimError> {
        if let Err(e) = self.writer.write_all(fragment) {
            return Err(self.io(e));
        }
        self.bytes += fragment.len() as u64;
        self.tail += fragment.len() as u64;
        Ok(())
    }

    fn manifest(&self) -> FileManifest {
        let mut types = BTreeMap::new();
        for rec in Rec::ALL {
            let count = self.types[rec.index()];
            if count > 0 {
                *types.entry(rec.type_name().to_owned()).or_insert(0) += count;
            }
        }
        FileManifest {
            path: self.rel.clone(),
            chart: self.chart,
            kind: self.kind.map(str::to_owned),
            lines: self.lines,
            bytes: self.bytes,
            invalid: self.invalid.clone(),
            duplicates: self.duplicates.clone(),
            partial_tail_bytes: self.tail,
            // A file without lines has no line ending to speak of.
            crlf: self.crlf && self.lines > 0,
            types,
        }
    }
}

/// All output files of one run and the routing of records to them.
pub(crate) struct Outputs {
    sinks: Vec<Sink>,
    route: [usize; N_REC],
}

/// Returns `path` relative to `root` with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Creates (truncating) a file and reopens it in append mode, as the dumpers hold it.
fn open_fresh(path: &Path) -> Result<File, SimError> {
    let io = |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    File::create(path).map_err(io)?;
    OpenOptions::new().append(true).open(path).map_err(io)
}

/// The file a record would be written to, for the overwrite check made before anything is touched.
pub(crate) fn planned_paths(root: &Path, layout: Layout, day: NaiveDate) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Rec::ALL
        .iter()
        .map(|rec| source_path(root, layout, rec.chart(), rec.file_kind(), day))
        .collect();
    paths.push(source_path(root, layout, 3, "correlation", day));
    paths.push(source_path(root, layout, 8, "vix_close", day));
    paths.sort();
    paths.dedup();
    paths
}

impl Sink {
    /// Creates (or empties) the file at `path` and starts counting what is written to it.
    fn open(
        root: &Path,
        path: PathBuf,
        chart: u16,
        kind: Option<&'static str>,
        crlf: bool,
        buffer: usize,
    ) -> Result<Sink, SimError> {
        let file = open_fresh(&path)?;
        Ok(Sink {
            rel: relative(root, &path),
            chart,
            kind,
            writer: BufWriter::with_capacity(buffer, file),
            crlf,
            lines: 0,
            bytes: 0,
            tail: 0,
            invalid: Vec::new(),
            duplicates: Vec::new(),
            types: [0; N_REC],
            max_seq: [None, None],
            last: HashMap::new(),
            path,
        })
    }
}

impl Outputs {
    /// Opens every file of the layout. `crlf_charts` lists the charts whose lines end in CRLF.
    pub(crate) fn open(
        root: &Path,
        layout: Layout,
        day: NaiveDate,
        crlf_charts: &[u16],
    ) -> Result<Outputs, SimError> {
        let mut sinks: Vec<Sink> = Vec::new();
        let mut route = [0usize; N_REC];
        for rec in Rec::ALL {
            let path = source_path(root, layout, rec.chart(), rec.file_kind(), day);
            let idx = match sinks.iter().position(|s| s.path == path) {
                Some(idx) => idx,
                None => {
                    let kind = (layout != Layout::PerChart).then_some(rec.file_kind());
                    let crlf = crlf_charts.contains(&rec.chart());
                    sinks.push(Sink::open(root, path, rec.chart(), kind, crlf, 64 * 1024)?);
                    sinks.len() - 1
                }
            };
            route[rec.index()] = idx;
        }
        Ok(Outputs { sinks, route })
    }

    /// Creates an empty file that the dumpers touch but never fill; returns its relative path.
    pub(crate) fn touch_empty(
        &mut self,
        root: &Path,
        path: PathBuf,
        chart: u16,
        kind: &'static str,
    ) -> Result<String, SimError> {
        let sink = Sink::open(root, path, chart, Some(kind), false, 64)?;
        let rel = sink.rel.clone();
        self.sinks.push(sink);
        Ok(rel)
    }

    /// Appends one line (the line ending is added) and returns its 1-based line number.
    pub(crate) fn write(
        &mut self,
        rec: Rec,
        key: Key,
        validity: Validity,
        line: &[u8],
    ) -> Result<u64, SimError> {
        let idx = self.route[rec.index()];
        self.sinks[idx].write_line(rec, key, validity, line)
    }

    /// Appends bytes with no line ending: the torn tail of a file that is still being written.
    pub(crate) fn write_partial(&mut self, rec: Rec, fragment: &[u8]) -> Result<(), SimError> {
        let idx = self.route[rec.index()];
        self.sinks[idx].write_partial(fragment)
    }

    /// The relative path of the file that holds `rec`.
    pub(crate) fn rel_path(&self, rec: Rec) -> &str {
        &self.sinks[self.route[rec.index()]].rel
    }

    /// Whether the file of `rec` uses CRLF.
    pub(crate) fn is_crlf(&self, rec: Rec) -> bool {
        self.sinks[self.route[rec.index()]].crlf
    }

    /// Flushes every buffered file so that a tailing reader sees the lines.
    pub(crate) fn flush(&mut self) -> Result<(), SimError> {
        for sink in &mut self.sinks {
            if let Err(e) = sink.writer.flush() {
                return Err(sink.io(e));
            }
        }
        Ok(())
    }

    /// Total complete lines and bytes written so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.sinks
            .iter()
            .fold((0, 0), |(l, b), s| (l + s.lines, b + s.bytes))
    }

    /// The manifest entries, sorted by path.
    pub(crate) fn manifests(&self) -> Vec<FileManifest> {
        let mut files: Vec<FileManifest> = self.sinks.iter().map(Sink::manifest).collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }
}
