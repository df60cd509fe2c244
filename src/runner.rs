//! `mia run`: the live pipeline of product.md §9 (ingest, snapshot, features, the live and
//! shadow rule sets with hot reload, risk and the kill switch, execution, journals, monitor).
//!
//! Threads and channels:
//!
//! ```text
//! ingest thread ── Collector::follow: tail, unified journal, checkpoint ──┐ Msg::Batch
//! rule watchers (notify) ── check, test, swap (arc-swap) ─────────────────┤ Msg::Reload
//!                                                                         ▼
//! engine thread (the caller): snapshot ─ features ─ rules (live, shadow) ─ risk ─ venue
//!     │   decisions_, orders_, trades_YYYYMMDD.jsonl; kill switch; alerts
//!     └─> Published (status + metrics) ──> monitor HTTP server ──> Control (kill switch) ─┘
//! ```
//!
//! The engine thread is the only writer of the decision, order and trade journals, of the
//! kill switch and of the venues, so none of them needs a lock. Records reach it only after
//! their unified-journal batch is committed, so a decision never precedes the line it was made
//! on in the journals.
//!
//! Evaluation points are those of replay: a completed one-minute bar of an instrument, seen
//! when the first record of the next bar arrives. Records re-read after a restart (below the
//! checkpoint) rebuild the snapshot but are not decided on again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::clock::{Clock, Stopwatch};
use crate::config::Config;
use crate::dtc::DtcError;
use crate::dtc::client::{ClientConfig, ClientEvent, DtcClient, Secret, SessionStatus};
use crate::dtc::orders::OrderEvent;
use crate::engine::{Point, SetRun, SetSummary, StepReport, Venue, session_date};
use crate::execution::book::LiveBook;
use crate::execution::{ExecutionMode, Live};
use crate::features::{FeatureConfig, FeatureEngine};
use crate::ingest::collect::{CollectError, CollectOptions, Collector};
use crate::ingest::counters::Counters;
use crate::ingest::record::{Payload, Record};
use crate::journal::{Journal, JournalError};
use crate::model::{Timestamp, symbol_root};
use crate::monitor::alerts::{Alert, AlertKind, Alerts, DrawdownWatch, Severity};
use crate::monitor::metrics::{
    ChartLabel, InstrumentLabel, OrderLabel, ReloadLabel, SetLabel, TierLabel, VetoLabel,
};
use crate::monitor::server::{MonitorError, MonitorServer};
use crate::monitor::status::{
    ChartView, Counts, DecisionView, EquityView, InstrumentView, KillView, ReloadView, RouteView,
    STATUS_FORMAT, SetView, SourceView,
};
use crate::monitor::{Control, ControlAction, Published, Status};
use crate::risk::store::FileStore;
use crate::risk::{Health, KillState, KillSwitch, KillSwitchError, RiskGate};
use crate::rules::reload::{LiveRules, ReloadOutcome, Reloader, watch};
use crate::rules::{RuleError, RuleHost, check};
use crate::snapshot::SnapshotStore;

/// Why `mia run` could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Ingest could not start or go on.
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// A rule set does not compile or fails its checks.
    #[error("the rules in {dir} cannot be used")]
    Rules {
        /// The rule folder.
        dir: PathBuf,
        /// Every problem.
        source: RuleError,
    },
    /// A journal could not be written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The kill switch's state folder could not be read or written.
    #[error(transparent)]
    KillSwitch(#[from] KillSwitchError),
    /// A DTC session could not be set up.
    #[error("the DTC session of {instrument} cannot start")]
    Dtc {
        /// The instrument.
        instrument: String,
        /// Why.
        source: DtcError,
    },
    /// Paper and live execution need risk limits.
    #[error(
        "execution mode {0} needs a [risk] table in the config: without risk limits nothing can be traded (config/mia.toml documents every key)"
    )]
    NoRisk(&'static str),
    /// Live mode with no instrument to route.
    #[error("live mode needs at least one instrument with a symbol in the config")]
    NoRoute,
    /// The monitor's server could not start.
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    /// The alert webhook is misconfigured.
    #[error("alerts: {0}")]
    Alerts(String),
    /// The ingest thread stopped on an error.
    #[error("ingest stopped: {0}")]
    Ingest(String),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Data folder written by Sierra.
    pub data_dir: PathBuf,
    /// Journal folder (unified, rejects, decisions, orders, trades).
    pub journal_dir: PathBuf,
    /// State folder (ingest checkpoint, kill switch, ClientOrderIDs).
    pub state_dir: PathBuf,
    /// Live rule set.
    pub rules_dir: PathBuf,
    /// Shadow rule set.
    pub shadow_dir: Option<PathBuf>,
    /// Where the live set's approved orders go (the caller checked `--live`).
    pub mode: ExecutionMode,
    /// Address of the monitor's HTTP server; `None`: no server.
    pub monitor: Option<SocketAddr>,
}

impl RunOptions {
    /// The options of a configuration: its folders, rule sets, execution mode and monitor.
    pub fn from_config(config: &Config) -> RunOptions {
        RunOptions {
            data_dir: config.paths.data_dir.clone(),
            journal_dir: config.paths.journal_dir.clone(),
            state_dir: config.paths.state_dir.clone(),
            rules_dir: config.rules.dir.clone(),
            shadow_dir: config.rules.shadow_dir.clone(),
            mode: config.execution.mode,
            monitor: config.monitor.enabled.then_some(config.monitor.address),
        }
    }
}

/// What a run did, for the closing summary.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Evaluation points (completed one-minute bars).
    pub evaluations: u64,
    /// The live set, then the shadow set.
    pub sets: Vec<SetSummary>,
    /// Totals, as `/status` reported them last.
    pub counts: Counts,
    /// The kill switch at the end.
    pub kill_switch: KillState,
    /// The unified journal's folder.
    pub journal_dir: PathBuf,
}

/// Records of one committed ingest step: (chart, record, re-read after a restart).
struct Batch {
    records: Vec<(u16, Record<'static>, bool)>,
    /// Started when the step began reading: the latency of decisions made on it counts from
    /// here.
    read_at: Stopwatch,
    counters: Counters,
}

enum Msg {
    Batch(Batch),
    Reload(usize, ReloadOutcome),
    IngestEnded(Result<(), String>),
}

/// How often the engine checks the kill switch, the DTC sessions and the control channel, and
/// republishes the status, when no record arrives.
const TICK: Duration = Duration::from_millis(50);

/// A started run: everything is set up, nothing is read yet.
pub struct Runner {
    config: Config,
    opts: RunOptions,
    clock: Arc<dyn Clock>,
    collector: Collector,
    engine: Engine,
    server: Option<MonitorServer>,
    control: Receiver<Control>,
    reloaders: Vec<Reloader>,
    reload_rx: Receiver<Msg>,
    tx: Sender<Msg>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Checks the rule sets, opens the journals, the kill switch and the ingest checkpoint,
    /// starts the DTC sessions (live mode), the rule watchers and the monitor.
    ///
    /// # Errors
    ///
    /// [`RunError`] naming what cannot start.
    pub fn start(
        config: &Config,
        opts: RunOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Runner, RunError> {
        let gate = match (opts.mode, &config.risk) {
            (_, Some(risk)) => Some(RiskGate::new(risk.clone())),
            (ExecutionMode::ReadOnly, None) => None,
            (ExecutionMode::Paper, None) => return Err(RunError::NoRisk("paper")),
            (ExecutionMode::Live, None) => return Err(RunError::NoRisk("live")),
        };
        let host = Arc::new(RuleHost::new());
        let load = |dir: &Path| {
            check::load_checked(&host, dir).map_err(|source| RunError::Rules {
                dir: dir.to_owned(),
                source,
            })
        };
        let live_rules = Arc::new(LiveRules::new(load(&opts.rules_dir)?));
        let shadow_rules = match &opts.shadow_dir {
            Some(dir) => Some(Arc::new(LiveRules::new(load(dir)?))),
            None => None,
        };

        let mut collect = CollectOptions::from_config(config);
        collect.data_dir.clone_from(&opts.data_dir);
        collect.journal_dir.clone_from(&opts.journal_dir);
        collect.state_dir.clone_from(&opts.state_dir);
        let collector = Collector::open(collect, Arc::clone(&clock))?;

        let now = clock.now();
        let kill = KillSwitch::open(FileStore::new(&opts.state_dir), now)?;
        let decided = recover_engine_journals(&opts.journal_dir)?;
        let journal = Journal::create(&opts.journal_dir, config.ingest.fsync)?;
        let alerts = Alerts::new(&config.alerts).map_err(|e| RunError::Alerts(e.to_string()))?;

        let venue = match opts.mode {
            ExecutionMode::ReadOnly => Venue::ReadOnly,
            ExecutionMode::Paper => Venue::Paper,
            ExecutionMode::Live => {
                let password =
                    ClientConfig::password_from_env(&config.dtc, |name| std::env::var(name).ok())
                        .map_err(|source| RunError::Dtc {
                        instrument: "every instrument".to_owned(),
                        source,
                    })?;
                let mut routes = BTreeMap::new();
                for (name, inst) in &config.instruments {
                    if inst.symbol.is_none() {
                        continue;
                    }
                    let dtc = |source| RunError::Dtc {
                        instrument: name.clone(),
                        source,
                    };
                    let client_config =
                        ClientConfig::from_config(config, name, Secret(password.0.clone()))
                            .map_err(dtc)?;
                    let client = DtcClient::start(
                        ClientConfig {
                            state_dir: opts.state_dir.clone(),
                            ..client_config
                        },
                        Arc::clone(&clock),
                    )
                    .map_err(dtc)?;
                    routes.insert(name.clone(), client);
                }
                if routes.is_empty() {
                    return Err(RunError::NoRoute);
                }
                Venue::Live(
                    Box::new(Live::new(routes)),
                    LiveBook::new("live", config.execution.paper.commission_per_contract),
                )
            }
        };
        let mut sets = vec![SetRun::with_venue(
            "live",
            Arc::clone(&live_rules),
            venue,
            config,
        )];
        let mut dirs = vec![opts.rules_dir.clone()];
        if let (Some(rules), Some(dir)) = (&shadow_rules, &opts.shadow_dir) {
            sets.push(SetRun::with_venue(
                "shadow",
                Arc::clone(rules),
                Venue::Paper,
                config,
            ));
            dirs.push(dir.clone());
        }
        for set in &mut sets {
            set.keep_records = false;
        }

        let (tx, reload_rx) = mpsc::channel();
        let mut reloaders = Vec::new();
        let debounce = Duration::from_millis(config.rules.reload_debounce_ms);
        for (idx, set) in sets.iter().enumerate() {
            let tx = tx.clone();
            let reloader = watch(
                Arc::clone(&host),
                Arc::clone(&set.rules),
                debounce,
                move |outcome| {
                    let _ = tx.send(Msg::Reload(idx, outcome.clone()));
                },
            )
            .map_err(|source| RunError::Rules {
                dir: dirs[idx].clone(),
                source,
            })?;
            reloaders.push(reloader);
        }

        let published = Published::new();
        let (control_tx, control) = mpsc::channel();
        let server = match opts.monitor {
            Some(addr) => Some(MonitorServer::start(
                addr,
                Arc::clone(&published),
                control_tx,
            )?),
            None => None,
        };
        let drawdown = sets
            .iter()
            .map(|_| DrawdownWatch::new(config.alerts.drawdown_dollars))
            .collect();
        let engine = Engine {
            config: Arc::new(config.clone()),
            data_dir: opts.data_dir.display().to_string(),
            store: SnapshotStore::new(config),
            features: FeatureEngine::new(FeatureConfig::default()),
            host,
            gate,
            sets,
            dirs,
            kill,
            journal,
            alerts,
            drawdown,
            published,
            last_bar: BTreeMap::new(),
            decided,
            newest: BTreeMap::new(),
            counters: Counters::default(),
            reported: BTreeMap::new(),
            counts: Counts::default(),
            evaluations: 0,
            recent: Vec::new(),
            reloads: Vec::new(),
            reload_counts: Vec::new(),
            route_down: BTreeMap::new(),
            stale: BTreeSet::new(),
            started: now,
            last_sync: None,
            last_publish: None,
        };
        engine.published.metrics.set_kill_state(engine.kill.state());
        Ok(Runner {
            config: config.clone(),
            opts,
            clock,
            collector,
            engine,
            server,
            control,
            reloaders,
            reload_rx,
            tx,
        })
    }

    /// The dashboard's address, when the monitor runs.
    pub fn monitor_url(&self) -> Option<String> {
        self.server.as_ref().map(MonitorServer::url)
    }

    /// Runs until `stop` is set, then drains the files, journals what is left, flushes, and
    /// stops the threads.
    ///
    /// # Errors
    ///
    /// [`RunError`] when a journal cannot be written or ingest fails.
    pub fn run(self, stop: &AtomicBool) -> Result<RunSummary, RunError> {
        let Runner {
            config,
            opts,
            clock,
            mut collector,
            mut engine,
            server,
            control,
            reloaders,
            reload_rx,
            tx,
        } = self;
        let ingest_stop = Arc::new(AtomicBool::new(false));
        let ingest = {
            let tx = tx.clone();
            let ingest_stop = Arc::clone(&ingest_stop);
            std::thread::Builder::new()
                .name("ingest".into())
                .spawn(move || {
                    // Both callbacks touch the batch being built, one after the other.
                    let records = std::cell::RefCell::new(Vec::new());
                    let read_at = std::cell::Cell::new(Stopwatch::start());
                    let mut last_counters = Counters::default();
                    let result = collector.follow(
                        &ingest_stop,
                        &mut |source, record, replayed| {
                            let mut records = records.borrow_mut();
                            if records.is_empty() {
                                // Latency counts from the moment the step read the first line.
                                read_at.set(Stopwatch::start());
                            }
                            records.push((
                                source.name.chart,
                                record.clone().into_owned(),
                                replayed,
                            ));
                        },
                        &mut |collector| {
                            let counters = collector.ingestor().counters();
                            let mut records = records.borrow_mut();
                            if !records.is_empty() || *counters != last_counters {
                                last_counters = counters.clone();
                                let batch = Batch {
                                    records: std::mem::take(&mut *records),
                                    read_at: read_at.get(),
                                    counters: counters.clone(),
                                };
                                let _ = tx.send(Msg::Batch(batch));
                            }
                        },
                    );
                    let _ = tx.send(Msg::IngestEnded(result.map_err(|e| e.to_string())));
                })
                .map_err(|e| RunError::Ingest(e.to_string()))?
        };
        drop(tx);
        let mut failure = None;
        let mut ingest_done = false;
        let mut stopping = false;
        loop {
            if stop.load(Ordering::Relaxed) && !stopping {
                stopping = true;
                ingest_stop.store(true, Ordering::Relaxed);
            }
            match reload_rx.recv_timeout(TICK) {
                Ok(Msg::Batch(batch)) => engine.on_batch(clock.now(), batch)?,
                Ok(Msg::Reload(idx, outcome)) => engine.on_reload(clock.now(), idx, &outcome),
                Ok(Msg::IngestEnded(result)) => {
                    ingest_done = true;
                    if let Err(e) = result {
                        failure = Some(RunError::Ingest(e));
                        ingest_stop.store(true, Ordering::Relaxed);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => ingest_done = true,
            }
            let now = clock.now();
            while let Ok(request) = control.try_recv() {
                engine.on_control(now, request);
            }
            engine.housekeeping(now)?;
            if ingest_done {
                break;
            }
        }
        let _ = ingest.join();
        // Everything the ingest thread sent before it ended is in the channel.
        while let Ok(msg) = reload_rx.try_recv() {
            if let Msg::Batch(batch) = msg {
                engine.on_batch(clock.now(), batch)?;
            }
        }
        drop(reloaders);
        let now = clock.now();
        engine.housekeeping(now)?;
        engine.journal.commit()?;
        engine.publish(now);
        if let Some(server) = server {
            server.stop();
        }
        let counts = engine.totals();
        // Alerts still queued for the webhook get their chance before the process ends.
        engine
            .alerts
            .shutdown(Duration::from_secs(config.alerts.webhook_timeout_secs));
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(RunSummary {
            evaluations: engine.evaluations,
            sets: engine.sets.into_iter().map(|s| s.summary).collect(),
            counts,
            kill_switch: engine.kill.state(),
            journal_dir: opts.journal_dir,
        })
    }
}

/// How many decisions and reloads the status keeps.
const KEEP_RECENT: usize = 200;

/// The engine thread's state: everything after ingest.
struct Engine {
    config: Arc<Config>,
    data_dir: String,
    store: SnapshotStore,
    features: FeatureEngine,
    host: Arc<RuleHost>,
    gate: Option<RiskGate>,
    sets: Vec<SetRun>,
    dirs: Vec<PathBuf>,
    kill: KillSwitch<FileStore>,
    journal: Journal,
    alerts: Alerts,
    drawdown: Vec<DrawdownWatch>,
    published: Arc<Published>,
    /// Start of the last one-minute bar seen per instrument.
    last_bar: BTreeMap<String, Timestamp>,
    /// Start of the newest bar decided per (instrument, set) in the decision journals when the
    /// run started, as ISO-8601 (see [`recover_engine_journals`]).
    decided: BTreeMap<(String, String), String>,
    /// Newest record time per chart (ingest lag).
    newest: BTreeMap<u16, Timestamp>,
    counters: Counters,
    /// (read, invalid) per chart already added to the metrics.
    reported: BTreeMap<u16, (u64, u64)>,
    counts: Counts,
    evaluations: u64,
    /// Newest last.
    recent: Vec<DecisionView>,
    /// The last reload of each set.
    reloads: Vec<Option<ReloadView>>,
    /// Reloads swapped in and refused, per set.
    reload_counts: Vec<(u64, u64)>,
    /// Since when each DTC route has not been ready.
    route_down: BTreeMap<String, Timestamp>,
    /// (instrument, source) pairs stale at the last check.
    stale: BTreeSet<(String, String)>,
    started: Timestamp,
    last_sync: Option<Stopwatch>,
    last_publish: Option<Stopwatch>,
}

impl Engine {
    fn alert(&mut self, kind: AlertKind, severity: Severity, at: Timestamp, message: String) {
        self.published
            .metrics
            .alerts
            .get_or_create(&crate::monitor::metrics::AlertLabel {
                kind: kind.as_str().to_owned(),
            })
            .inc();
        self.alerts.raise(Alert {
            kind,
            severity,
            at,
            message,
        });
    }

    fn on_batch(&mut self, now: Timestamp, mut batch: Batch) -> Result<(), RunError> {
        // A batch holds what each file gained since the last step, file after file. In time
        // order, a bar is decided on the market as it was when the bar closed, as replay
        // decides it, even when a batch spans minutes (a restart catching up, a slow disk),
        // instead of on levels and profiles read from later lines of other files.
        // Most batches (one file, a quiet minute) are in order already: no sort, no buffer.
        if !batch.records.is_sorted_by_key(|(_, record, _)| record.ts) {
            batch.records.sort_by_key(|(_, record, _)| record.ts);
        }
        let mut fresh = 0u64;
        let config = Arc::clone(&self.config);
        let config = &*config;
        for (chart, record, replayed) in &batch.records {
            let chart = *chart;
            let newest = self.newest.entry(chart).or_default();
            *newest = (*newest).max(record.ts);
            // A new one-minute bar of an instrument: decide on the completed previous one.
            if let (Payload::Bar(_), Some(sym)) = (&record.payload, record.sym.as_deref()) {
                let root = symbol_root(sym);
                if let Some(inst) = config.instruments.get(root)
                    && inst.charts.minute == chart
                    && self.last_bar.get(root).is_none_or(|t| record.ts > *t)
                {
                    if self.last_bar.contains_key(root)
                        && self.evaluate(config, root, now, *replayed)?
                        && !replayed
                    {
                        fresh += 1;
                    }
                    self.last_bar.insert(root.to_owned(), record.ts);
                }
            }
            self.store.apply(chart, record, now);
        }
        self.journal.commit()?;
        if fresh > 0 {
            let secs = batch.read_at.elapsed().as_secs_f64();
            for _ in 0..fresh {
                self.published.metrics.append_to_decision.observe(secs);
            }
        }
        self.counters = batch.counters;
        let charts: BTreeSet<u16> = self.counters.rows().iter().map(|r| r.0).collect();
        for chart in charts {
            let total = self.counters.chart_total(chart);
            let label = ChartLabel {
                chart: chart.to_string(),
            };
            let seen = self.reported.entry(chart).or_default();
            let m = &self.published.metrics;
            m.lines_read
                .get_or_create(&label)
                .inc_by(total.read.saturating_sub(seen.0));
            m.lines_rejected
                .get_or_create(&label)
                .inc_by(total.invalid.saturating_sub(seen.1));
            *seen = (total.read, total.invalid);
        }
        Ok(())
    }

    /// Decides on the instrument's completed bar with every set that has not decided it yet
    /// ([`Engine::due`]); a bar re-read below the checkpoint after a restart (`replayed`) is a
    /// late, recovered decision. Returns whether any set decided.
    fn evaluate(
        &mut self,
        config: &Config,
        instrument: &str,
        now: Timestamp,
        replayed: bool,
    ) -> Result<bool, RunError> {
        let Some(snapshot) = self.store.get(instrument) else {
            return Ok(false);
        };
        let bar = snapshot.bar.map(|b| b.start.to_iso_millis());
        let due: Vec<bool> = self
            .sets
            .iter()
            .map(|set| self.due(instrument, &set.summary.name, bar.as_deref(), replayed))
            .collect();
        if !due.contains(&true) {
            // Decided before a restart. The features still see the bar, so that their state
            // (the dealer's bias EMA) is what it would have been without the restart.
            self.features.compute(snapshot);
            return Ok(false);
        }
        let mut point = Point::new(config, &self.store, snapshot, &mut self.features, now);
        if replayed {
            point = point.recovered();
        }
        let kill = self.kill.state();
        let mut reports = Vec::with_capacity(self.sets.len());
        for (set, _) in self.sets.iter_mut().zip(&due).filter(|(_, due)| **due) {
            let report = set.step(
                &point,
                &self.host,
                self.gate.as_ref(),
                kill,
                false,
                &mut self.journal,
            )?;
            reports.push((
                set.summary.name.clone(),
                set.summary.rules_hash.clone(),
                report,
            ));
        }
        let ts = point.now.to_iso_millis();
        drop(point);
        self.evaluations += 1;
        for (name, hash, report) in reports {
            self.record_step(now, instrument, &ts, &name, &hash, report);
        }
        Ok(true)
    }

    /// Whether `set` is to decide the bar starting at `bar`: not when the decision journals
    /// already hold its decision on this bar or a later one. That happens after a restart, for
    /// bars re-read below the checkpoint (`replayed`) and for bars re-read above it (a crash
    /// after the decision was written and before the ingest checkpoint was stored, which
    /// follows it). A replayed bar is decided only when a crash lost its decision: the journals
    /// hold an earlier decision of the set (or, for a set they do not know, of another set) on
    /// this instrument. An instrument with no decision at all is not recovered: its bars below
    /// the checkpoint were ingested before `mia run` decided anything (by `mia collect`, say),
    /// and deciding them now would flood the journal with a morning of late decisions.
    fn due(&self, instrument: &str, set: &str, bar: Option<&str>, replayed: bool) -> bool {
        let Some(bar) = bar else {
            return !replayed;
        };
        let upto = self
            .decided
            .get(&(instrument.to_owned(), set.to_owned()))
            .or_else(|| {
                self.decided
                    .iter()
                    .filter(|((i, _), _)| i == instrument)
                    .map(|(_, b)| b)
                    .max()
            });
        match upto {
            Some(upto) => bar > upto.as_str(),
            None => !replayed,
        }
    }

    fn record_step(
        &mut self,
        now: Timestamp,
        instrument: &str,
        ts: &str,
        set: &str,
        hash: &str,
        report: StepReport,
    ) {
        let m = &self.published.metrics;
        let set_label = SetLabel {
            set: set.to_owned(),
        };
        m.rule_eval
            .get_or_create(&set_label)
            .observe(report.eval.as_secs_f64());
        self.counts.decisions += 1;
        self.counts.orders_submitted += report.submitted;
        if report.submitted > 0 {
            m.orders
                .get_or_create(&OrderLabel {
                    set: set.to_owned(),
                    status: "submitted".to_owned(),
                })
                .inc();
        }
        let mut view = DecisionView {
            ts: ts.to_owned(),
            instrument: instrument.to_owned(),
            set: set.to_owned(),
            rules: hash.to_owned(),
            ..DecisionView::default()
        };
        if let Some(d) = &report.decision {
            m.decisions
                .get_or_create(&TierLabel {
                    set: set.to_owned(),
                    tier: d.tier.as_str().to_owned(),
                })
                .inc();
            for veto in &d.vetoes {
                m.vetoes
                    .get_or_create(&VetoLabel {
                        set: set.to_owned(),
                        rule: veto.clone(),
                    })
                    .inc();
            }
            view.score = d.score;
            view.direction = d.direction.as_str().to_owned();
            view.tier = d.tier.as_str().to_owned();
            view.reasons = d
                .reasons
                .iter()
                .map(|r| format!("{} {:+}: {}", r.rule, r.points, r.why))
                .collect();
            view.vetoes.clone_from(&d.vetoes);
        }
        if let Some((kind, detail)) = &report.verdict {
            view.verdict.clone_from(kind);
            view.detail.clone_from(detail);
        }
        if let Some(e) = &report.error {
            m.rule_errors.get_or_create(&set_label).inc();
            view.detail.clone_from(e);
            if set == "live" {
                self.kill.record_rule_error(now);
            }
            self.alert(
                AlertKind::RuleError,
                Severity::Warning,
                now,
                format!("{set} rules ({instrument}): {e}"),
            );
        }
        if let Some(e) = &report.submit_error {
            view.detail = format!("approved, not sent: {e}");
        }
        self.recent.push(view);
        if self.recent.len() > KEEP_RECENT {
            self.recent.remove(0);
        }
    }

    fn on_reload(&mut self, now: Timestamp, idx: usize, outcome: &ReloadOutcome) {
        let Some(set) = self.sets.get(idx) else {
            return;
        };
        let name = set.summary.name.clone();
        let dir = self.dirs[idx].display().to_string();
        let (label, message) = match outcome {
            ReloadOutcome::Swapped { from, to } => {
                tracing::info!(set = %name, %dir, from = %short(from), to = %short(to), "rules reloaded");
                ("swapped", format!("{} → {}", short(from), short(to)))
            }
            ReloadOutcome::Unchanged => ("unchanged", "same content".to_owned()),
            ReloadOutcome::Failed(e) => {
                let message = format!("{e}");
                self.alert(
                    AlertKind::ReloadFailed,
                    Severity::Warning,
                    now,
                    format!("{name} rules in {dir} not reloaded, the last good set stays live: {message}"),
                );
                ("failed", message)
            }
        };
        if label != "unchanged" {
            self.published
                .metrics
                .reloads
                .get_or_create(&ReloadLabel {
                    set: name,
                    outcome: label.to_owned(),
                })
                .inc();
        }
        if self.reloads.len() < self.sets.len() {
            self.reloads.resize(self.sets.len(), None);
            self.reload_counts.resize(self.sets.len(), (0, 0));
        }
        match label {
            "swapped" => self.reload_counts[idx].0 += 1,
            "failed" => self.reload_counts[idx].1 += 1,
            _ => {}
        }
        self.reloads[idx] = Some(ReloadView {
            at: now.to_iso_millis(),
            outcome: label.to_owned(),
            message,
        });
    }

    fn on_control(&mut self, now: Timestamp, request: Control) {
        let result = match &request.action {
            ControlAction::Engage { level, reason } => self.kill.engage(now, *level, reason),
            ControlAction::Reset { reason } => self.kill.reset(now, reason),
        };
        let answer = match result {
            Ok(change) => {
                if let Some(change) = change {
                    self.on_kill_change(now, &change.message, change.new);
                }
                Ok(self.kill_view())
            }
            Err(e) => Err(e.to_string()),
        };
        let _ = request.reply.send(answer);
    }

    fn kill_view(&self) -> KillView {
        KillView::of(self.kill.status())
    }

    /// A kill-switch change: alert, metrics, and for HALT_TRADING and EMERGENCY cancel every
    /// working order and flatten every venue.
    fn on_kill_change(&mut self, now: Timestamp, message: &str, state: KillState) {
        self.published.metrics.set_kill_state(state);
        let severity = if state == KillState::Normal {
            Severity::Warning
        } else {
            Severity::Critical
        };
        self.alert(
            AlertKind::KillSwitch,
            severity,
            now,
            format!("{}: {message}", state.as_str()),
        );
        if state.must_flatten() {
            let date = session_date(&self.config, now);
            for set in &mut self.sets {
                match set.flatten(now, &date, &mut self.journal) {
                    Ok(failures) => {
                        for f in failures {
                            tracing::error!(set = %set.summary.name, failure = %f, "flatten failed");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot journal the flatten"),
                }
            }
        }
        // The status is published at most every 200 ms, but a kill-switch change shows at once
        // (before an engage or reset from the dashboard is answered): whoever pressed it, or
        // polls /status, reads the new state next.
        self.publish_now(now);
    }

    /// DTC events, the kill switch's triggers, alerts, and the status.
    fn housekeeping(&mut self, now: Timestamp) -> Result<(), RunError> {
        let config = Arc::clone(&self.config);
        let config = &*config;
        let date = session_date(config, now);
        // Session events of the live venue.
        let mut events = Vec::new();
        for set in &mut self.sets {
            events.extend(set.poll_live(now, &date, &mut self.journal)?);
        }
        for (instrument, event) in events {
            self.on_session_event(now, &instrument, &event);
        }
        self.route_health(now);

        // Other processes (mia kill-switch, the KILL file) every 250 ms; triggers every tick.
        if self
            .last_sync
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(250))
        {
            self.last_sync = Some(Stopwatch::start());
            match self.kill.sync(now) {
                Ok(Some(change)) => self.on_kill_change(now, &change.message, change.new),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "kill switch state unreadable"),
            }
        }
        let in_session = self.store.in_session(now);
        let mut ages = Vec::new();
        let mut stale_now = BTreeSet::new();
        for inst in config.instruments.keys() {
            if let Some(snapshot) = self.store.get(inst) {
                for age in snapshot.ages(now, &config.staleness, in_session) {
                    if age.stale && age.age_secs.is_some() && in_session {
                        stale_now.insert((inst.clone(), age.source.as_str().to_owned()));
                    }
                    ages.push(age);
                }
            }
        }
        let newly: Vec<_> = stale_now.difference(&self.stale).cloned().collect();
        for (inst, source) in newly {
            self.alert(
                AlertKind::StaleData,
                Severity::Warning,
                now,
                format!("{inst}: {source} data is stale"),
            );
        }
        self.stale = stale_now;
        if let Some(risk) = &config.risk {
            let health = Health {
                pnl_day: self.sets[0].account.pnl_day(),
                route_down_since: self.route_down.values().min().copied(),
                in_session,
                ages,
            };
            match self.kill.evaluate(now, &health, risk) {
                Ok(Some(change)) => self.on_kill_change(now, &change.message, change.new),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "kill switch state cannot be stored"),
            }
        }
        for idx in 0..self.sets.len() {
            let pnl = self.sets[idx].account.pnl_day();
            let name = self.sets[idx].summary.name.clone();
            self.published
                .metrics
                .pnl
                .get_or_create(&SetLabel { set: name.clone() })
                .set(pnl);
            if let Some(drawdown) = self.drawdown[idx].update(pnl) {
                self.alert(
                    AlertKind::Drawdown,
                    Severity::Warning,
                    now,
                    format!("{name} set: {drawdown:.2} dollars below its peak of the day"),
                );
            }
        }
        self.journal.commit()?;
        if self
            .last_publish
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(200))
        {
            self.publish_now(now);
        }
        Ok(())
    }

    fn publish_now(&mut self, now: Timestamp) {
        self.last_publish = Some(Stopwatch::start());
        self.publish(now);
    }

    fn on_session_event(&mut self, now: Timestamp, instrument: &str, event: &ClientEvent) {
        let m = &self.published.metrics;
        match event {
            ClientEvent::Order(OrderEvent::Filled { .. }) => {
                self.counts.fills += 1;
                m.orders
                    .get_or_create(&OrderLabel {
                        set: "live".to_owned(),
                        status: "filled".to_owned(),
                    })
                    .inc();
            }
            ClientEvent::Order(OrderEvent::Rejected {
                client_order_id,
                info_text,
            }) => {
                self.counts.rejections += 1;
                m.rejections.inc();
                m.orders
                    .get_or_create(&OrderLabel {
                        set: "live".to_owned(),
                        status: "rejected".to_owned(),
                    })
                    .inc();
                self.kill.record_rejection(now);
                tracing::warn!(%instrument, %client_order_id, %info_text, "order rejected");
            }
            ClientEvent::Order(OrderEvent::CancelRejected { .. }) | ClientEvent::Ready { .. } => {}
            ClientEvent::Disconnected { reason } => self.alert(
                AlertKind::DtcDisconnected,
                Severity::Critical,
                now,
                format!("{instrument}: DTC connection lost: {reason}"),
            ),
            ClientEvent::LoggedOff {
                reason,
                do_not_reconnect,
            } => self.alert(
                AlertKind::DtcDisconnected,
                Severity::Critical,
                now,
                format!(
                    "{instrument}: the server logged off ({reason}){}",
                    if *do_not_reconnect {
                        "; it asked not to reconnect"
                    } else {
                        ""
                    }
                ),
            ),
        }
    }

    fn route_health(&mut self, now: Timestamp) {
        let Some(Venue::Live(live, _)) = self.sets.first().map(|s| &s.venue) else {
            return;
        };
        let mut states = Vec::new();
        for (instrument, client) in live.routes() {
            states.push((instrument.clone(), client.status() == SessionStatus::Ready));
        }
        for (instrument, ready) in states {
            self.published
                .metrics
                .dtc_connected
                .get_or_create(&InstrumentLabel {
                    instrument: instrument.clone(),
                })
                .set(i64::from(ready));
            if ready {
                self.route_down.remove(&instrument);
            } else {
                self.route_down.entry(instrument).or_insert(now);
            }
        }
    }

    fn publish(&self, now: Timestamp) {
        for (chart, newest) in &self.newest {
            self.published
                .metrics
                .ingest_lag
                .get_or_create(&ChartLabel {
                    chart: chart.to_string(),
                })
                .set(now.secs_since(*newest));
        }
        self.published.status.store(Arc::new(self.status(now)));
    }

    /// The totals: ingest's counters and the engine's own counts.
    fn totals(&self) -> Counts {
        let total = self.counters.total();
        Counts {
            lines_read: total.read,
            lines_accepted: total.accepted,
            lines_rejected: total.invalid,
            trades: self
                .sets
                .iter()
                .map(|s| s.summary.trades.len() as u64)
                .sum(),
            ..self.counts.clone()
        }
    }

    fn status(&self, now: Timestamp) -> Status {
        let config = &self.config;
        let in_session = self.store.in_session(now);
        let counts = self.totals();
        let sets = self
            .sets
            .iter()
            .enumerate()
            .map(|(idx, s)| {
                let mut decisions = BTreeMap::new();
                for ((tier, _), n) in &s.summary.decisions {
                    *decisions.entry(tier.as_str().to_owned()).or_insert(0) += n;
                }
                let mut equity = Vec::new();
                let mut cumulative = 0.0;
                for t in &s.summary.trades {
                    cumulative += t.pnl;
                    equity.push(EquityView {
                        ts: t.exit_time.clone(),
                        equity: (cumulative * 100.0).round() / 100.0,
                    });
                }
                let evaluations = s.summary.decisions.values().sum::<u64>() + s.summary.rule_errors;
                SetView {
                    name: s.summary.name.clone(),
                    dir: self.dirs[idx].display().to_string(),
                    hash: s.summary.rules_hash.clone(),
                    evaluations,
                    decisions,
                    rule_errors: s.summary.rule_errors,
                    reloads: self.reload_counts.get(idx).map_or(0, |c| c.0),
                    reload_failures: self.reload_counts.get(idx).map_or(0, |c| c.1),
                    last_reload: self.reloads.get(idx).cloned().flatten(),
                    venue: s.venue.mode().as_str().to_owned(),
                    pnl: s.account.pnl_day(),
                    realized: s.account.realized_pnl,
                    trades: s.summary.trades.len() as u64,
                    wins: s.summary.trades.iter().filter(|t| t.pnl > 0.0).count() as u64,
                    equity,
                    positions: s.positions(),
                }
            })
            .collect();
        let instruments = config
            .instruments
            .keys()
            .map(|name| {
                let snapshot = self.store.get(name);
                InstrumentView {
                    name: name.clone(),
                    price: snapshot.and_then(|s| s.last_price),
                    sources: snapshot
                        .map(|s| {
                            s.ages(now, &config.staleness, in_session)
                                .into_iter()
                                .map(|a| SourceView {
                                    source: a.source.as_str().to_owned(),
                                    age_secs: a.age_secs,
                                    stale: a.stale,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect();
        let routes = match self.sets.first().map(|s| &s.venue) {
            Some(Venue::Live(live, _)) => live
                .routes()
                .map(|(instrument, client)| {
                    let (state, reason) = match client.status() {
                        SessionStatus::Connecting => ("connecting", None),
                        SessionStatus::Ready => ("ready", None),
                        SessionStatus::Down(r) => ("down", Some(r)),
                        SessionStatus::Stopped(r) => ("stopped", Some(r)),
                    };
                    RouteView {
                        instrument: instrument.clone(),
                        address: config
                            .instruments
                            .get(instrument)
                            .and_then(|i| i.dtc_address.clone())
                            .unwrap_or_default(),
                        state: state.to_owned(),
                        reason,
                    }
                })
                .collect(),
            _ => Vec::new(),
        };
        let charts = self
            .counters
            .rows()
            .iter()
            .map(|r| r.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|chart| {
                let total = self.counters.chart_total(chart);
                ChartView {
                    chart,
                    read: total.read,
                    rejected: total.invalid,
                    lag_secs: self.newest.get(&chart).map(|t| now.secs_since(*t)),
                }
            })
            .collect();
        Status {
            format: STATUS_FORMAT,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started: self.started.to_iso_millis(),
            now: now.to_iso_millis(),
            mode: self.sets[0].venue.mode().as_str().to_owned(),
            data_dir: self.data_dir.clone(),
            journal_dir: self.journal.dir().display().to_string(),
            kill_switch: self.kill_view(),
            sets,
            instruments,
            routes,
            counts,
            charts,
            recent_decisions: self
                .recent
                .iter()
                .rev()
                .take(config.monitor.recent_decisions)
                .cloned()
                .collect(),
            recent_alerts: self.alerts.recent(),
        }
    }
}

/// Makes the engine's journals whole after a crash and reads how far they got.
///
/// The decision, order and trade journals are not cut back to the ingest checkpoint (their
/// lines are not the ingest's to replay): a line torn by a crash is cut instead
/// ([`crate::journal::cut_torn_tail`]). Returns the start of the newest decided bar per
/// (instrument, set) in the two newest decision journals, which the engine uses to re-decide
/// the bars whose decisions a crash lost and no other ([`Engine::due`]).
fn recover_engine_journals(dir: &Path) -> Result<BTreeMap<(String, String), String>, JournalError> {
    #[derive(serde::Deserialize)]
    struct Key {
        bar: Option<String>,
        instrument: String,
        set: String,
    }
    let mut decided = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(decided);
    };
    let mut decisions: Vec<PathBuf> = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let engine = ["decisions_", "orders_", "trades_"]
            .iter()
            .any(|p| name.starts_with(p));
        if !engine || !name.ends_with(".jsonl") {
            continue;
        }
        crate::journal::cut_torn_tail(&path)?;
        if name.starts_with("decisions_") {
            decisions.push(path);
        }
    }
    decisions.sort();
    for path in decisions.iter().rev().take(2) {
        let text = std::fs::read_to_string(path).map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
        for (n, line) in text.lines().enumerate() {
            match serde_json::from_str::<Key>(line) {
                Ok(Key {
                    bar: Some(bar),
                    instrument,
                    set,
                }) => {
                    let newest = decided.entry((instrument, set)).or_insert_with(String::new);
                    if bar > *newest {
                        *newest = bar;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(journal = %path.display(), line = n + 1, error = %e, "not a decision line");
                }
            }
        }
    }
    Ok(decided)
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
