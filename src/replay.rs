//! Replay: the pipeline over recorded chart files, in time order, with a replay clock
//! (product.md §11; first version: ingest, snapshot, features, rules and the decision journal).
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

use serde::Serialize;

use crate::clock::Stopwatch;
use crate::config::Config;
use crate::features::{FeatureConfig, FeatureEngine};
use crate::ingest::counters::Counters;
use crate::ingest::dedup::Dedup;
use crate::ingest::naming::yyyymmdd;
use crate::ingest::record::{LineContext, Payload, Record};
use crate::ingest::{Discovered, IngestError, Outcome, classify_line, discover};
use crate::journal::{Journal, JournalError};
use crate::model::{Timestamp, symbol_root, utc_to_local};
use crate::risk::{Account, KillState, MarketView, RiskGate, Verdict};
use crate::rules::input::market_input;
use crate::rules::{Decision, Direction, RuleError, RuleHost, RuleSet, Tier};
use crate::snapshot::SnapshotStore;

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
    /// Whether to journal the evaluation time in µs (makes journals differ between runs).
    pub timings: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    /// Line counters, as `collect` reports them.
    pub counters: Counters,
    /// Hash of the rule set.
    pub rules_hash: String,
    /// Evaluations made.
    pub evaluations: u64,
    /// Decisions by (tier, direction).
    pub decisions: BTreeMap<(Tier, Direction), u64>,
    /// Vetoes by hard rule.
    pub vetoes: BTreeMap<String, u64>,
    /// Evaluations that ended in a rule error.
    pub rule_errors: u64,
    /// Distinct rule error messages with their counts.
    pub errors: BTreeMap<String, u64>,
    /// Risk verdicts by kind (`approved`, or the refusal's kind), when the config has `[risk]`.
    pub risk: BTreeMap<String, u64>,
    /// Journal files written.
    pub journals: Vec<PathBuf>,
    /// Bytes of partial last lines left unread.
    pub partial_bytes: u64,
    /// Bytes of complete lines read.
    pub bytes_read: u64,
}

/// One line of `decisions_YYYYMMDD.jsonl`.
#[derive(Debug, Serialize)]
struct DecisionLine<'a> {
    ts: String,
    instrument: &'a str,
    set: &'a str,
    rules: &'a str,
    #[serde(flatten)]
    decision: Option<&'a Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    ops: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_us: Option<u64>,
    /// The risk gate's verdict on the decision (no execution in replay yet: a fresh account and
    /// a normal kill switch), when the config has `[risk]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    risk: Option<Verdict>,
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

/// Replays `opts.data_dir` through snapshot, features and rules, writing the decision journal.
/// `progress` hears (bytes read, total bytes). `stop` ends the replay early, cleanly.
///
/// # Errors
///
/// [`ReplayError`] when the data cannot be read, the rules do not compile or the journal cannot
/// be written. Bad lines and rule errors during evaluation are counted, not fatal.
pub fn run(
    config: &Config,
    opts: &ReplayOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplaySummary, ReplayError> {
    let host = RuleHost::new();
    let gate = config.risk.clone().map(RiskGate::new);
    let set = host
        .compile(&opts.rules_dir)
        .map_err(|source| ReplayError::Rules {
            dir: opts.rules_dir.clone(),
            source,
        })?;
    let tz = config.ingest.chart_time_zone;
    let files = discover(&opts.data_dir, &config.ingest.charts)?;
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0))
        .sum();

    clear_decision_journals(&opts.out_dir)?;
    let mut journal = Journal::create(&opts.out_dir, false)?;
    let mut summary = ReplaySummary {
        rules_hash: set.hash.clone(),
        ..ReplaySummary::default()
    };
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
                    if last_bar.contains_key(root) {
                        evaluate(
                            config,
                            &host,
                            gate.as_ref(),
                            &set,
                            &store,
                            &mut features,
                            root,
                            clock,
                            opts.timings,
                            &mut journal,
                            &mut summary,
                        )?;
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
    journal.commit()?;
    progress(total, total);
    summary.journals = journal
        .lengths()
        .keys()
        .map(|name| opts.out_dir.join(name))
        .collect();
    Ok(summary)
}

#[expect(
    clippy::too_many_arguments,
    reason = "the replay loop's state, passed explicitly"
)]
fn evaluate(
    config: &Config,
    host: &RuleHost,
    gate: Option<&RiskGate>,
    set: &RuleSet,
    store: &SnapshotStore,
    features: &mut FeatureEngine,
    instrument: &str,
    now: Timestamp,
    timings: bool,
    journal: &mut Journal,
    summary: &mut ReplaySummary,
) -> Result<(), ReplayError> {
    let Some(snapshot) = store.get(instrument) else {
        return Ok(());
    };
    let in_session = store.in_session(now);
    let feats = features.compute(snapshot);
    let input = market_input(
        snapshot,
        &feats,
        now,
        &config.session,
        &config.staleness,
        in_session,
    );
    let watch = Stopwatch::start();
    let result = host.evaluate(set, &input);
    let eval_us = timings.then(|| watch.elapsed().as_micros() as u64);
    summary.evaluations += 1;
    let line = match &result {
        Ok(eval) => {
            let d = &eval.decision;
            *summary.decisions.entry((d.tier, d.direction)).or_default() += 1;
            for veto in &d.vetoes {
                *summary.vetoes.entry(veto.clone()).or_default() += 1;
            }
            let risk = gate.map(|gate| {
                let ages = snapshot.ages(now, &config.staleness, in_session);
                let market = MarketView::of(snapshot, feats.vix_policy, &ages);
                let verdict = gate.check(d, &market, &Account::default(), KillState::Normal, now);
                let kind = verdict.refusal().map_or("approved", |r| r.kind());
                *summary.risk.entry(kind.to_owned()).or_default() += 1;
                verdict
            });
            DecisionLine {
                ts: now.to_iso_millis(),
                instrument,
                set: "live",
                rules: &set.hash,
                decision: Some(d),
                error: None,
                ops: eval.operations,
                eval_us,
                risk,
            }
        }
        Err(e) => {
            summary.rule_errors += 1;
            *summary.errors.entry(e.to_string()).or_default() += 1;
            DecisionLine {
                ts: now.to_iso_millis(),
                instrument,
                set: "live",
                rules: &set.hash,
                decision: None,
                error: Some(e.to_string()),
                ops: 0,
                eval_us,
                risk: None,
            }
        }
    };
    let date = utc_to_local(now, config.session.time_zone).map(|d| yyyymmdd(d.date()));
    let name = format!("decisions_{}.jsonl", date.as_deref().unwrap_or("undated"));
    Ok(journal.append_json(&name, &line)?)
}

/// Removes the decision journals of an earlier replay into the same folder, so that a replay's
/// output depends on its inputs only.
fn clear_decision_journals(dir: &Path) -> Result<(), JournalError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("decisions_") && name.ends_with(".jsonl") {
            std::fs::remove_file(entry.path()).map_err(|source| JournalError::Io {
                path: entry.path(),
                source,
            })?;
        }
    }
    Ok(())
}
