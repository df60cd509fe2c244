//! Replay: the pipeline of `mia run` over recorded chart files, in time order, with a replay
//! clock and paper execution (product.md §11): ingest, snapshot, features, the rules of the live
//! set and of an optional shadow set, risk, and the paper exchange, writing the decision, order
//! and trade journals.
//!
//! The shadow set sees exactly the snapshots and features the live set sees; it has its own
//! paper exchange and account, and its decisions are journaled with `set = "shadow"`. Nothing of
//! it reaches the live set's execution.
//!
//! Files are merged by record time (ties broken by file path, then line number, so the order is
//! the same on every machine). The replay clock is the latest record time seen. Rules are
//! evaluated once per one-minute bar of each instrument, when its first record arrives and
//! before it is applied: bar records carry the bar *start* time, so this is the moment the
//! previous bar is complete and nothing of the new one is known. Evaluating on every intrabar
//! snapshot would evaluate on values stamped with the bar start but only known later.
//!
//! **Invariant:** replay is deterministic: the same files, rules and config give byte-identical
//! journals. No wall-clock value reaches them unless timings are asked for.

use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Config;
use crate::engine::{Point, SetRun, session_date};
use crate::execution::Execution;
use crate::features::{FeatureConfig, FeatureEngine};
use crate::ingest::counters::Counters;
use crate::ingest::dedup::Dedup;
use crate::ingest::record::{LineContext, Payload, Record};
use crate::ingest::{Discovered, IngestError, Outcome, classify_line, discover};
use crate::journal::{Journal, JournalError};
use crate::model::{Timestamp, symbol_root};
use crate::risk::{KillState, RiskGate};
use crate::rules::{RuleError, RuleHost};
use crate::snapshot::SnapshotStore;

pub use crate::engine::SetSummary;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The data folder or a file could not be read.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The rules do not compile.
    #[error("the rules in {dir} cannot be used")]
    Rules {
        /// The rule folder.
        dir: PathBuf,
        /// The errors.
        source: RuleError,
    },
    /// The journal could not be written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Recorded data folder.
    pub data_dir: PathBuf,
    /// Where the decision journals go (existing `decisions_*.jsonl` there are replaced).
    pub out_dir: PathBuf,
    /// Live rule set folder.
    pub rules_dir: PathBuf,
    /// Shadow rule set folder, evaluated on the same snapshots.
    pub shadow_dir: Option<PathBuf>,
    /// First trading day to replay (files dated earlier are skipped).
    pub from: Option<chrono::NaiveDate>,
    /// Last trading day to replay.
    pub to: Option<chrono::NaiveDate>,
    /// Whether to journal the evaluation time in µs (makes journals differ between runs).
    pub timings: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    /// Line counters, as `collect` reports them.
    pub counters: Counters,
    /// Evaluation points (completed one-minute bars), each evaluated by every set.
    pub evaluations: u64,
    /// The live set, then the shadow set if any.
    pub sets: Vec<SetSummary>,
    /// Journal files written.
    pub journals: Vec<PathBuf>,
    /// Bytes of partial last lines left unread.
    pub partial_bytes: u64,
    /// Bytes of complete lines read.
    pub bytes_read: u64,
}

struct Cursor {
    file: Discovered,
    reader: BufReader<File>,
    line: Vec<u8>,
    /// The next accepted record of this file, waiting for its turn in the merge.
    next: Option<Record<'static>>,
}

impl Cursor {
    /// Reads on to the next accepted record, counting the invalid, duplicate and blank lines on
    /// the way (each line is parsed once). Returns its time, or `None` at the end of the file.
    fn advance(
        &mut self,
        tz: chrono_tz::Tz,
        dedup: &mut Dedup,
        summary: &mut ReplaySummary,
    ) -> Result<Option<Timestamp>, IngestError> {
        let ctx = LineContext {
            chart: self.file.name.chart,
            kind: self.file.name.kind.as_deref(),
            file_date: self.file.name.date,
            tz,
        };
        loop {
            self.line.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|source| IngestError::Io {
                    path: self.file.path.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            if self.line.last() != Some(&b'\n') {
                // A partial last line: Sierra was writing it. Leave it, as ingest does.
                summary.partial_bytes += n as u64;
                return Ok(None);
            }
            summary.bytes_read += n as u64;
            self.line.pop();
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                summary.counters.blank += 1;
                continue;
            }
            let Ok(text) = std::str::from_utf8(&self.line) else {
                let counts = summary.counters.entry(ctx.chart, ctx.kind.unwrap_or("?"));
                counts.read += 1;
                counts.invalid += 1;
                continue;
            };
            if let (Outcome::Accepted(record), _) =
                classify_line(text, &ctx, None, dedup, &mut summary.counters)
            {
                let ts = record.ts;
                self.next = Some(record.into_owned());
                return Ok(Some(ts));
            }
        }
    }
}

/// Replays `opts.data_dir` through snapshot, features, rules, risk and paper execution,
/// writing the decision, order and trade journals. `progress` hears (bytes read, total bytes).
/// `stop` ends the replay early, cleanly (open paper positions are flattened).
///
/// # Errors
///
/// [`ReplayError`] when the data cannot be read, a rule set does not compile or the journal
/// cannot be written. Bad lines and rule errors during evaluation are counted, not fatal.
pub fn run(
    config: &Config,
    opts: &ReplayOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplaySummary, ReplayError> {
    let host = RuleHost::new();
    let gate = config.risk.clone().map(RiskGate::new);
    let compile = |dir: &Path| {
        host.compile(dir).map_err(|source| ReplayError::Rules {
            dir: dir.to_owned(),
            source,
        })
    };
    let mut runs = vec![SetRun::new("live", compile(&opts.rules_dir)?, config)];
    if let Some(dir) = &opts.shadow_dir {
        runs.push(SetRun::new("shadow", compile(dir)?, config));
    }
    let tz = config.ingest.chart_time_zone;
    let files: Vec<Discovered> = discover(&opts.data_dir, &config.ingest.charts)?
        .into_iter()
        .filter(|f| match f.name.date {
            Some(d) => opts.from.is_none_or(|from| d >= from) && opts.to.is_none_or(|to| d <= to),
            None => true,
        })
        .collect();
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0))
        .sum();

    clear_journals(&opts.out_dir)?;
    let mut journal = Journal::create(&opts.out_dir, false)?;
    let mut summary = ReplaySummary::default();
    let mut dedup = Dedup::default();
    let mut cursors = Vec::with_capacity(files.len());
    let mut heap = BinaryHeap::new();
    for file in files {
        let reader = BufReader::with_capacity(
            1 << 16,
            File::open(&file.path).map_err(|source| IngestError::Io {
                path: file.path.clone(),
                source,
            })?,
        );
        let mut cursor = Cursor {
            file,
            reader,
            line: Vec::with_capacity(512),
            next: None,
        };
        if let Some(ts) = cursor.advance(tz, &mut dedup, &mut summary)? {
            heap.push(std::cmp::Reverse((ts, cursors.len(), summary.bytes_read)));
        }
        cursors.push(cursor);
    }

    let mut store = SnapshotStore::new(config);
    let mut features = FeatureEngine::new(FeatureConfig::default());
    let mut clock = Timestamp::default();
    let mut last_bar: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut since_commit = 0u32;
    while let Some(std::cmp::Reverse((ts, idx, _))) = heap.pop() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        clock = clock.max(ts);
        let cursor = &mut cursors[idx];
        let chart = cursor.file.name.chart;
        if let Some(record) = cursor.next.take() {
            // A new one-minute bar of an instrument: evaluate on the completed previous one.
            if let (Payload::Bar(_), Some(sym)) = (&record.payload, record.sym.as_deref()) {
                let root = symbol_root(sym);
                if let Some(inst) = config.instruments.get(root)
                    && inst.charts.minute == chart
                    && last_bar.get(root).is_none_or(|t| record.ts > *t)
                {
                    if last_bar.contains_key(root)
                        && let Some(snapshot) = store.get(root)
                    {
                        let point = Point::new(config, &store, snapshot, &mut features, clock);
                        for run in &mut runs {
                            run.step(
                                &point,
                                &host,
                                gate.as_ref(),
                                KillState::Normal,
                                opts.timings,
                                &mut journal,
                            )?;
                        }
                        summary.evaluations += 1;
                        since_commit += 1;
                    }
                    last_bar.insert(root.to_owned(), record.ts);
                }
            }
            store.apply(chart, &record, clock);
        }
        if let Some(next) = cursor.advance(tz, &mut dedup, &mut summary)? {
            // The running byte count breaks ties between equal times in read order.
            heap.push(std::cmp::Reverse((next, idx, summary.bytes_read)));
        }
        if since_commit >= 4_096 {
            journal.commit()?;
            since_commit = 0;
            progress(summary.bytes_read, total);
        }
    }
    // The data ends: positions still open are flattened at the last close.
    let end_date = session_date(config, clock);
    for run in &mut runs {
        // Paper's flatten cannot fail; the trait returns a Result for live routes.
        let _ = run.paper.flatten_all();
        run.drain(clock, &end_date, &mut journal)?;
    }
    journal.commit()?;
    progress(total, total);
    summary.sets = runs.into_iter().map(|r| r.summary).collect();
    summary.journals = journal
        .lengths()
        .keys()
        .map(|name| opts.out_dir.join(name))
        .collect();
    Ok(summary)
}

/// Removes the decision, order and trade journals of an earlier replay into the same folder, so
/// that a replay's output depends on its inputs only.
fn clear_journals(dir: &Path) -> Result<(), JournalError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = ["decisions_", "orders_", "trades_"]
            .iter()
            .any(|prefix| name.starts_with(prefix));
        if ours && name.ends_with(".jsonl") {
            std::fs::remove_file(entry.path()).map_err(|source| JournalError::Io {
                path: entry.path(),
                source,
            })?;
        }
    }
    Ok(())
}
