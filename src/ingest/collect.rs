//! `mia collect`: ingest plus the unified journal, crash-safe (product.md §4, §13).
//!
//! Each step polls the files, appends every accepted record to `mia_unified_YYYYMMDD.jsonl` and
//! every rejected line to `mia_rejects_YYYYMMDD.jsonl`, commits both, then stores the checkpoint.
//! See [`crate::journal`] for why that order makes a crash lose and duplicate nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::naming::yyyymmdd;
use super::record::Record;
use super::{IngestError, Ingestor, LineEvent, Outcome, SourceFile};
use crate::clock::{Clock, Stopwatch};
use crate::config::{Config, TypeFilter};
use crate::journal::{Checkpoint, Journal, JournalError};
use crate::model::utc_to_local;

/// Errors that stop `collect`.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Ingest could not start or go on.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The journal or checkpoint could not be written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// What `collect` needs to know.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Data folder written by Sierra.
    pub data_dir: PathBuf,
    /// Journal folder.
    pub journal_dir: PathBuf,
    /// State folder (checkpoint).
    pub state_dir: PathBuf,
    /// Charts to read.
    pub charts: Vec<u16>,
    /// Chart time zone.
    pub tz: Tz,
    /// Poll interval.
    pub poll_interval: Duration,
    /// Folder rescan interval.
    pub rescan_interval: Duration,
    /// Fsync each batch.
    pub fsync: bool,
    /// Read limit per file and poll.
    pub max_read: usize,
    /// Wake up on file-system change events as well as every `poll_interval`.
    pub watch: bool,
    /// Journal filters per chart.
    pub filters: BTreeMap<u16, TypeFilter>,
}

impl CollectOptions {
    /// Takes the options from a configuration.
    pub fn from_config(config: &Config) -> CollectOptions {
        CollectOptions {
            data_dir: config.paths.data_dir.clone(),
            journal_dir: config.paths.journal_dir.clone(),
            state_dir: config.paths.state_dir.clone(),
            charts: config.ingest.charts.clone(),
            tz: config.ingest.chart_time_zone,
            poll_interval: Duration::from_millis(config.ingest.poll_interval_ms),
            rescan_interval: Duration::from_millis(config.ingest.rescan_interval_ms),
            fsync: config.ingest.fsync,
            max_read: config.ingest.max_read_bytes,
            watch: config.ingest.watch,
            filters: config.ingest.filters.clone(),
        }
    }
}

/// One rejected line, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// File, relative to the data folder.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// The ingest-and-journal loop.
pub struct Collector {
    opts: CollectOptions,
    ingestor: Ingestor,
    journal: Journal,
    clock: Arc<dyn Clock>,
    rejects: Vec<Reject>,
    journaled: u64,
    warned: BTreeMap<String, u64>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// How many rejected lines are kept in memory for the report; a garbage file can have millions.
pub const KEEP_REJECTS: usize = 10_000;

/// How many rejected lines per file are logged as warnings; all of them go to the rejects
/// journal and the report.
const WARN_PER_FILE: u64 = 10;

impl Collector {
    /// Opens the data folder, restores the checkpoint and cuts the journals back to it.
    ///
    /// # Errors
    ///
    /// [`CollectError`] when the data folder is missing, the checkpoint belongs to another
    /// folder, or a journal cannot be opened.
    pub fn open(opts: CollectOptions, clock: Arc<dyn Clock>) -> Result<Collector, CollectError> {
        let mut ingestor = Ingestor::new(&opts.data_dir, &opts.charts, opts.tz, opts.max_read)?;
        ingestor.set_filters(opts.filters.clone());
        let checkpoint = Checkpoint::load(&opts.state_dir)?;
        let data = opts.data_dir.display().to_string();
        let journal_dir = opts.journal_dir.display().to_string();
        if let Some(cp) = &checkpoint
            && (cp.data_dir != data || cp.journal_dir != journal_dir)
        {
            return Err(JournalError::Mismatch {
                state: opts.state_dir.clone(),
                was_data: cp.data_dir.clone(),
                was_journal: cp.journal_dir.clone(),
                now_data: data,
            }
            .into());
        }
        let journal = Journal::open(
            &opts.journal_dir,
            checkpoint.as_ref(),
            &opts.state_dir,
            opts.fsync,
        )?;
        if let Some(cp) = checkpoint {
            ingestor.resume_from(cp.files);
        }
        ingestor.rescan()?;
        Ok(Collector {
            opts,
            ingestor,
            journal,
            clock,
            rejects: Vec::new(),
            journaled: 0,
            warned: BTreeMap::new(),
        })
    }

    /// Returns the ingestor (counters, sources, pending partial lines).
    pub fn ingestor(&self) -> &Ingestor {
        &self.ingestor
    }

    /// Returns the lines rejected since start (also those re-read after a restart), the first
    /// [`KEEP_REJECTS`] of them; the rejects journal has every one and the counters the total.
    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }

    /// Returns how many records this process appended to the unified journal.
    pub fn journaled(&self) -> u64 {
        self.journaled
    }

    /// Returns the journal folder.
    pub fn journal_dir(&self) -> &std::path::Path {
        self.journal.dir()
    }

    /// Polls once (until the files are drained when `drain`), journals, commits and stores the
    /// checkpoint. `on_record` sees every accepted record, replayed ones included (the snapshot
    /// uses it). Returns the number of lines read.
    ///
    /// # Errors
    ///
    /// [`CollectError`] when the journal or checkpoint cannot be written.
    pub fn step(
        &mut self,
        drain: bool,
        on_record: &mut dyn FnMut(&SourceFile, &Record<'_>),
    ) -> Result<u64, CollectError> {
        self.step_events(drain, &mut |source, record, _| on_record(source, record))
    }

    /// As [`Collector::step`], and `on_record` also hears whether the record was re-read after
    /// a restart (`true`: it was journaled and acted on before the checkpoint; `mia run`
    /// rebuilds its snapshot from it but does not decide on it again).
    ///
    /// # Errors
    ///
    /// [`CollectError`] when the journal or checkpoint cannot be written.
    pub fn step_events(
        &mut self,
        drain: bool,
        on_record: &mut dyn FnMut(&SourceFile, &Record<'_>, bool),
    ) -> Result<u64, CollectError> {
        let (lines, progressed) = self.read_and_write(drain, on_record)?;
        self.journal.sync()?;
        if progressed {
            self.store_checkpoint()?;
        }
        Ok(lines)
    }

    /// Polls once and writes the journal lines, without syncing them or storing the checkpoint.
    /// Returns the lines read and whether any byte was, in which case the caller syncs the
    /// journal and then stores the checkpoint (in that order: a checkpoint never points past
    /// lines that are not on the disk).
    fn read_and_write(
        &mut self,
        drain: bool,
        on_record: &mut dyn FnMut(&SourceFile, &Record<'_>, bool),
    ) -> Result<(u64, bool), CollectError> {
        let now = self.clock.now();
        let ingest_ts = now.to_iso_micros();
        let today = utc_to_local(now, self.opts.tz).map(|d| d.date());
        let mut failure: Option<JournalError> = None;
        let journal = &mut self.journal;
        let rejects = &mut self.rejects;
        let warned = &mut self.warned;
        let tz = self.opts.tz;
        let mut journaled = 0;
        // Records come in long runs of one date: name the journal once per run, not per record.
        let mut unified_name: (Option<NaiveDate>, String) = (None, String::new());
        let mut sink = |event: LineEvent<'_>| {
            if failure.is_some() {
                return;
            }
            let file_date = event.source.name.date;
            match &event.outcome {
                Outcome::Accepted(record) => {
                    on_record(event.source, record, event.replayed);
                    if event.replayed || event.filtered {
                        return;
                    }
                    let chart = event.source.name.chart;
                    let date = file_date
                        .or_else(|| utc_to_local(record.ts, tz).map(|d| d.date()))
                        .or(today);
                    if unified_name.1.is_empty() || unified_name.0 != date {
                        unified_name = (date, journal_name("unified", date));
                    }
                    match journal.buffer(&unified_name.1) {
                        Ok(buf) => {
                            write_unified(buf, record, chart, &ingest_ts, event.raw);
                            journaled += 1;
                        }
                        Err(e) => failure = Some(e),
                    }
                }
                Outcome::Invalid(reason) => {
                    let reason = reason.to_string();
                    if !event.replayed {
                        let count = warned.entry(event.source.rel.clone()).or_insert(0);
                        *count += 1;
                        if *count <= WARN_PER_FILE {
                            tracing::warn!(file = %event.source.rel, line = event.line_no, %reason, "rejected line");
                        }
                        match journal.buffer(&journal_name("rejects", file_date.or(today))) {
                            Ok(buf) => write_reject(buf, &event, &reason, &ingest_ts),
                            Err(e) => failure = Some(e),
                        }
                    }
                    if rejects.len() < KEEP_REJECTS {
                        rejects.push(Reject {
                            file: event.source.rel.clone(),
                            line: event.line_no,
                            reason,
                        });
                    }
                }
                Outcome::Duplicate(_) => {}
            }
        };
        let progress = if drain {
            self.ingestor.drain(&mut sink)
        } else {
            self.ingestor.poll(&mut sink)
        };
        if let Some(e) = failure {
            return Err(e.into());
        }
        self.journaled += journaled;
        self.journal.write()?;
        Ok((progress.lines, progress.bytes > 0))
    }

    fn store_checkpoint(&self) -> Result<(), CollectError> {
        Checkpoint {
            version: 1,
            data_dir: self.opts.data_dir.display().to_string(),
            journal_dir: self.opts.journal_dir.display().to_string(),
            journals: self.journal.lengths(),
            files: self.ingestor.offsets(),
        }
        .store(&self.opts.state_dir, self.opts.fsync)?;
        Ok(())
    }

    /// Runs until `stop` is set (or, with `once`, until the files are drained), rescanning for
    /// new files at the configured interval.
    ///
    /// # Errors
    ///
    /// [`CollectError`] when the journal cannot be written or the data folder disappears.
    pub fn run(
        &mut self,
        once: bool,
        stop: &AtomicBool,
        on_record: &mut dyn FnMut(&SourceFile, &Record<'_>),
    ) -> Result<(), CollectError> {
        if once {
            self.step(true, on_record)?;
            // Reading once, an unreadable file means lines not read: say so.
            if let Some((path, source)) = self.ingestor.take_unreadable().into_iter().next() {
                return Err(IngestError::Io { path, source }.into());
            }
            return Ok(());
        }
        self.follow(
            stop,
            &mut |source, record, _| on_record(source, record),
            &mut |_| {},
        )
    }

    /// Tails the files until `stop` is set: polls at the configured interval, rescans for new
    /// files, and after each committed step calls `after_step` (so a consumer acts on records
    /// only once they are journaled), then stores the checkpoint. A last drain at the end leaves
    /// nothing read but unjournaled behind.
    ///
    /// `after_step` comes as soon as the lines are written to the journal; their fsync and the
    /// checkpoint (its write, fsync and rename) come after it, so that neither is on the way
    /// from a line to the decision made on it. Written lines survive a crash of the process;
    /// only a crash of the machine can lose lines a consumer acted on, and the checkpoint, stored
    /// after the sync, then still points before them, so they are read again. A consumer must
    /// tolerate records it acted on coming back, not marked as replayed, after a crash between
    /// the two: `mia run` does not decide a bar twice (it knows the decided bars from its
    /// journal), and it sends a live order only once its decision is on the disk, so a bar
    /// whose decision a crash lost had no order out.
    ///
    /// # Errors
    ///
    /// [`CollectError`] when the journal cannot be written or the data folder disappears.
    pub fn follow(
        &mut self,
        stop: &AtomicBool,
        on_record: &mut dyn FnMut(&SourceFile, &Record<'_>, bool),
        after_step: &mut dyn FnMut(&Collector),
    ) -> Result<(), CollectError> {
        let wake = self
            .opts
            .watch
            .then(|| Wake::new(&self.opts.data_dir))
            .flatten();
        let mut since_rescan = Stopwatch::start();
        while !stop.load(Ordering::Relaxed) {
            let started = Stopwatch::start();
            if since_rescan.elapsed() >= self.opts.rescan_interval {
                let added = self.ingestor.rescan()?;
                if added > 0 {
                    tracing::info!(added, "new chart files");
                }
                since_rescan = Stopwatch::start();
            }
            let (_, progressed) = self.read_and_write(false, on_record)?;
            after_step(self);
            self.journal.sync()?;
            if progressed {
                self.store_checkpoint()?;
            }
            self.ingestor.take_unreadable();
            if let Some(rest) = self.opts.poll_interval.checked_sub(started.elapsed()) {
                match &wake {
                    Some(wake) => wake.wait(rest),
                    None => std::thread::sleep(rest),
                }
            }
        }
        let (_, progressed) = self.read_and_write(true, on_record)?;
        after_step(self);
        self.journal.sync()?;
        if progressed {
            self.store_checkpoint()?;
        }
        Ok(())
    }
}

/// Change events of the data folder, to read a line as soon as it is written rather than at the
/// next poll. Polling stays the guarantee: events are lost on SMB shares and under WSL, and a
/// burst of them is one wake-up.
struct Wake {
    events: std::sync::mpsc::Receiver<()>,
    // Dropping the watcher ends the events.
    _watcher: notify::RecommendedWatcher,
}

impl Wake {
    /// Watches `dir` and everything below it; `None` (polling only) when the system cannot.
    fn new(dir: &std::path::Path) -> Option<Wake> {
        use notify::Watcher;
        let (tx, events) = std::sync::mpsc::sync_channel(1);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| e.kind.is_modify() || e.kind.is_create()) {
                // A full channel already holds a wake-up: one is enough.
                let _ = tx.try_send(());
            }
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                tracing::info!(error = %e, "no file-system events; polling only");
                return None;
            }
        };
        if let Err(e) = watcher.watch(dir, notify::RecursiveMode::Recursive) {
            tracing::info!(dir = %dir.display(), error = %e, "cannot watch; polling only");
            return None;
        }
        Some(Wake {
            events,
            _watcher: watcher,
        })
    }

    /// Waits until a change event or `timeout`, whichever comes first.
    fn wait(&self, timeout: Duration) {
        let _ = self.events.recv_timeout(timeout);
    }
}

fn journal_name(what: &str, date: Option<NaiveDate>) -> String {
    match date {
        Some(date) => format!("mia_{what}_{}.jsonl", yyyymmdd(date)),
        None => format!("mia_{what}_undated.jsonl"),
    }
}

/// Appends one unified-journal line: `{"t","ts","sym","graph","type","ingest_ts","data"}` with
/// the source line verbatim as `data`, so that no field is lost or reformatted.
fn write_unified(buf: &mut Vec<u8>, record: &Record<'_>, chart: u16, ingest_ts: &str, raw: &str) {
    let _ = write!(
        buf,
        "{{\"t\":{},\"ts\":\"{}\",\"sym\":",
        record.t,
        record.ts.to_iso_millis()
    );
    match &record.sym {
        Some(sym) => {
            let _ = serde_json::to_writer(&mut *buf, sym.as_ref());
        }
        None => buf.extend_from_slice(b"null"),
    }
    let _ = write!(buf, ",\"graph\":{chart},\"type\":");
    let _ = serde_json::to_writer(&mut *buf, record.kind.as_ref());
    let _ = writeln!(buf, ",\"ingest_ts\":\"{ingest_ts}\",\"data\":{raw}}}");
}

fn write_reject(buf: &mut Vec<u8>, event: &LineEvent<'_>, reason: &str, ingest_ts: &str) {
    // Keep the start of the line for the report; a garbage line can be megabytes long.
    let raw: String = event.raw.chars().take(512).collect();
    let line = serde_json::json!({
        "file": event.source.rel,
        "line": event.line_no,
        "reason": reason,
        "raw": raw,
        "ingest_ts": ingest_ts,
    });
    let _ = serde_json::to_writer(&mut *buf, &line);
    buf.push(b'\n');
}
