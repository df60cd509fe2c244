//! The per-set stage of the pipeline, shared by `mia replay` and the live runner `mia run`
//! (issue 8): at each completed one-minute bar, a rule set's exits, decision, risk verdict and
//! entry, journaled.
//!
//! A `Point` is what every set sees at one evaluation (snapshot, features, `s`), so the live
//! and shadow sets decide on exactly the same input; a `SetRun` is one set with its own
//! paper exchange and account.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::clock::Stopwatch;
use crate::config::{Config, StalenessConfig};
use crate::dtc::client::ClientEvent;
use crate::dtc::orders::OrderEvent;
use crate::execution::book::LiveBook;
use crate::execution::{
    Execution, ExecutionError, ExecutionMode, Live, OrderContext, OrderLine, OrderRecord, ReadOnly,
    Submitted, journal_order,
};
use crate::features::{FeatureEngine, Features};
use crate::ingest::naming::yyyymmdd;
use crate::journal::{Journal, JournalError};
use crate::model::{Timestamp, utc_to_local};
use crate::paper::{Paper, PaperEvent, update_account};
use crate::perf::Trade;
use crate::risk::{Account, KillState, MarketView, RiskGate, Verdict};
use crate::rules::input::market_input;
use crate::rules::reload::LiveRules;
use crate::rules::{Decision, Direction, RuleHost, RuleInput, RuleSet, Tier};
use crate::shadow::{Call, DecisionRecord, RuleSetRole};
use crate::snapshot::{MarketSnapshot, SnapshotStore};

/// What one rule set did during a run or a replay.
#[derive(Debug, Clone, Default)]
pub struct SetSummary {
    /// `live` or `shadow`.
    pub name: String,
    /// Hash of the rule set.
    pub rules_hash: String,
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
    /// Closed paper trades, in order.
    pub trades: Vec<Trade>,
    /// Every decision, as the shadow comparison reads them.
    pub records: Vec<DecisionRecord>,
}

/// One line of `decisions_YYYYMMDD.jsonl`.
#[derive(Debug, Serialize)]
pub(crate) struct DecisionLine<'a> {
    ts: String,
    /// Start of the completed one-minute bar decided on: with `instrument` and `set`, the key
    /// that a restarted `mia run` uses to decide every bar once.
    #[serde(skip_serializing_if = "Option::is_none")]
    bar: Option<String>,
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
    risk: Option<&'a Verdict>,
    /// Made after a restart, on a bar whose decision the crash lost: journaled, never executed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    recovered: bool,
}

/// `YYYYMMDD` of `now` in the exchange time zone (`undated` when out of range).
pub(crate) fn session_date(config: &Config, now: Timestamp) -> String {
    utc_to_local(now, config.session.time_zone)
        .map(|d| yyyymmdd(d.date()))
        .unwrap_or_else(|| "undated".to_owned())
}

/// One evaluation point: a completed one-minute bar of an instrument, with what every set sees.
pub(crate) struct Point<'a> {
    pub(crate) instrument: &'a str,
    pub(crate) now: Timestamp,
    pub(crate) date: String,
    pub(crate) snapshot: &'a MarketSnapshot,
    pub(crate) features: Features,
    input: RuleInput,
    in_session: bool,
    staleness: &'a StalenessConfig,
    /// A late decision on a bar that a crash left undecided ([`Point::recovered`]).
    recovered: bool,
}

impl<'a> Point<'a> {
    pub(crate) fn new(
        config: &'a Config,
        store: &SnapshotStore,
        snapshot: &'a MarketSnapshot,
        features: &mut FeatureEngine,
        now: Timestamp,
    ) -> Self {
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
        Point {
            instrument: &snapshot.instrument,
            now,
            date: session_date(config, now),
            snapshot,
            features: feats,
            input,
            in_session,
            staleness: &config.staleness,
            recovered: false,
        }
    }

    /// Marks the point as a late one, re-decided after a restart: its decisions are journaled
    /// with `"recovered": true` and their orders are never sent, since the market has moved on.
    pub(crate) fn recovered(mut self) -> Self {
        self.recovered = true;
        self
    }

    /// Start of the completed bar the point decides on.
    pub(crate) fn bar_start(&self) -> Option<Timestamp> {
        self.snapshot.bar.map(|b| b.start)
    }
}

/// Writes everything journaled so far (first of all the decision that approved the order) to
/// the journal files, and only then sends. A crash at any moment after an order reached the
/// venue leaves its decision in the journal, so a restart does not decide its bar again and
/// send it twice; and an order whose decision cannot be written is not sent.
fn write_ahead<T>(journal: &mut Journal, send: impl FnOnce() -> T) -> Result<T, JournalError> {
    journal.commit()?;
    Ok(send())
}

/// Where a set's approved orders go.
pub(crate) enum Venue {
    /// The built-in paper exchange of the set ([`SetRun::paper`]).
    Paper,
    /// Nowhere: each approved order is journaled as not sent.
    ReadOnly,
    /// DTC sessions to Sierra Chart; their fills come back through the book.
    Live(Box<Live>, LiveBook),
}

impl Venue {
    /// The execution mode this venue is.
    pub(crate) fn mode(&self) -> ExecutionMode {
        match self {
            Venue::Paper => ExecutionMode::Paper,
            Venue::ReadOnly => ExecutionMode::ReadOnly,
            Venue::Live(..) => ExecutionMode::Live,
        }
    }
}

/// What one step did, for the live runner's metrics, status and alerts.
#[derive(Debug, Default)]
pub(crate) struct StepReport {
    /// How long `decide(s)` took.
    pub(crate) eval: Duration,
    /// The decision, unless the evaluation failed.
    pub(crate) decision: Option<Decision>,
    /// The rule error.
    pub(crate) error: Option<String>,
    /// The risk verdict's kind (`approved` or the refusal's kind) and its sentence.
    pub(crate) verdict: Option<(String, String)>,
    /// Orders handed to the venue (0 or 1).
    pub(crate) submitted: u64,
    /// Why the venue refused the approved order.
    pub(crate) submit_error: Option<String>,
}

/// A rule set with its own venue, paper exchange and account.
pub(crate) struct SetRun {
    /// The set in force; the live runner swaps it on reload, and each step loads it once.
    pub(crate) rules: Arc<LiveRules>,
    pub(crate) venue: Venue,
    pub(crate) paper: Paper,
    pub(crate) account: Account,
    pub(crate) day: Option<String>,
    pub(crate) summary: SetSummary,
    /// Keep every decision in the summary (replay compares sets from them; a live run, which
    /// can last for days, does not).
    pub(crate) keep_records: bool,
}

impl SetRun {
    pub(crate) fn new(name: &str, set: RuleSet, config: &Config) -> Self {
        Self::with_venue(name, Arc::new(LiveRules::new(set)), Venue::Paper, config)
    }

    pub(crate) fn with_venue(
        name: &str,
        rules: Arc<LiveRules>,
        venue: Venue,
        config: &Config,
    ) -> Self {
        SetRun {
            paper: Paper::new(name, config.execution.paper),
            account: Account::default(),
            day: None,
            summary: SetSummary {
                name: name.to_owned(),
                rules_hash: rules.load().hash.clone(),
                ..SetSummary::default()
            },
            rules,
            venue,
            keep_records: true,
        }
    }

    /// Journals the venue's events (paper fills, closed trades) and brings the account up to
    /// date. Live fills are journaled as the session reported them ([`SetRun::poll_live`]).
    pub(crate) fn drain(
        &mut self,
        now: Timestamp,
        date: &str,
        journal: &mut Journal,
    ) -> Result<(), JournalError> {
        let events = match &mut self.venue {
            Venue::Live(_, book) => book.drain(),
            Venue::Paper | Venue::ReadOnly => self.paper.drain(),
        };
        let live = matches!(self.venue, Venue::Live(..));
        for event in events {
            update_account(&mut self.account, &event, now);
            match event {
                PaperEvent::Fill(fill) if !live => {
                    let line = OrderLine {
                        ts: now.to_iso_millis(),
                        instrument: &fill.instrument,
                        set: &self.summary.name,
                        record: &OrderRecord::fill(fill.clone()),
                    };
                    journal_order(journal, date, &line)?;
                }
                PaperEvent::Fill(_) => {}
                PaperEvent::Closed(trade) => {
                    journal.append_json(&format!("trades_{}.jsonl", trade.date), &trade)?;
                    self.summary.trades.push(trade);
                }
            }
        }
        Ok(())
    }

    /// The live venue's session events since the last call: each is journaled, fills go to
    /// the book, and the trades they close to the journal and the account. Returns the events
    /// for the runner's metrics and kill switch. Nothing for the other venues.
    pub(crate) fn poll_live(
        &mut self,
        now: Timestamp,
        date: &str,
        journal: &mut Journal,
    ) -> Result<Vec<(String, ClientEvent)>, JournalError> {
        let Venue::Live(live, book) = &mut self.venue else {
            return Ok(Vec::new());
        };
        let events = live.poll_events();
        for (instrument, event) in &events {
            if let ClientEvent::Order(OrderEvent::Filled {
                client_order_id,
                filled,
                price,
            }) = event
            {
                book.on_fill(client_order_id, *filled, *price, now);
            }
            let line = OrderLine {
                ts: now.to_iso_millis(),
                instrument,
                set: &self.summary.name,
                record: &OrderRecord::Session(event.clone()),
            };
            journal_order(journal, date, &line)?;
        }
        self.drain(now, date, journal)?;
        Ok(events)
    }

    /// Cancels the working orders and flattens every position of the venue (the kill switch).
    pub(crate) fn flatten(
        &mut self,
        now: Timestamp,
        date: &str,
        journal: &mut Journal,
    ) -> Result<Vec<String>, JournalError> {
        let mut failures = Vec::new();
        match &mut self.venue {
            Venue::Paper => {
                // Paper's flatten cannot fail; the trait returns a Result for live routes.
                let _ = self.paper.flatten_all();
            }
            Venue::ReadOnly => {}
            Venue::Live(live, book) => {
                for (instrument, result) in live.flatten_routes() {
                    match result {
                        Ok(Some(id)) => book.flattening(&instrument, &id),
                        Ok(None) => {}
                        Err(e) => failures.push(format!("{instrument}: {e}")),
                    }
                }
            }
        }
        self.drain(now, date, journal)?;
        Ok(failures)
    }

    /// Signed open contracts by instrument, as the venue holds them.
    pub(crate) fn positions(&self) -> BTreeMap<String, i64> {
        match &self.venue {
            Venue::Live(_, book) => book.positions(),
            Venue::Paper => self
                .account
                .positions
                .iter()
                .filter(|(_, n)| **n != 0)
                .map(|(k, n)| (k.clone(), *n))
                .collect(),
            Venue::ReadOnly => BTreeMap::new(),
        }
    }

    /// Exits on the completed bar, then the decision, its risk verdict under the kill switch's
    /// `kill` state, and the entry.
    pub(crate) fn step(
        &mut self,
        p: &Point<'_>,
        host: &RuleHost,
        gate: Option<&RiskGate>,
        kill: KillState,
        timings: bool,
        journal: &mut Journal,
    ) -> Result<StepReport, JournalError> {
        if self.day.as_deref() != Some(p.date.as_str()) {
            self.account.new_day();
            self.day = Some(p.date.clone());
        }
        if let (Some(bar), Venue::Paper) = (p.snapshot.bar, &self.venue) {
            self.paper.on_bar(p.instrument, bar.start, &bar.bar, p.now);
        }
        self.drain(p.now, &p.date, journal)?;
        self.account.unrealized_pnl = match &self.venue {
            Venue::Live(_, book) => book.unrealized(|i| {
                (i == p.instrument)
                    .then_some(p.snapshot.last_price)
                    .flatten()
            }),
            Venue::Paper | Venue::ReadOnly => self.paper.unrealized(),
        };

        let set = self.rules.load();
        self.summary.rules_hash.clone_from(&set.hash);
        let watch = Stopwatch::start();
        let result = host.evaluate(&set, &p.input);
        let mut report = StepReport {
            eval: watch.elapsed(),
            ..StepReport::default()
        };
        let eval_us = timings.then_some(report.eval.as_micros() as u64);
        let (decision, ops, error) = match &result {
            Ok(eval) => (Some(&eval.decision), eval.operations, None),
            Err(e) => {
                self.summary.rule_errors += 1;
                *self.summary.errors.entry(e.to_string()).or_default() += 1;
                (None, 0, Some(e.to_string()))
            }
        };
        let mut verdict = None;
        if let Some(d) = decision {
            *self
                .summary
                .decisions
                .entry((d.tier, d.direction))
                .or_default() += 1;
            for veto in &d.vetoes {
                *self.summary.vetoes.entry(veto.clone()).or_default() += 1;
            }
            if let Some(gate) = gate {
                let ages = p.snapshot.ages(p.now, p.staleness, p.in_session);
                let market = MarketView::of(p.snapshot, p.features.vix_policy, &ages);
                let v = gate.check(d, &market, &self.account, kill, p.now);
                let kind = v.refusal().map_or("approved", |r| r.kind());
                *self.summary.risk.entry(kind.to_owned()).or_default() += 1;
                report.verdict = Some((
                    kind.to_owned(),
                    v.refusal().map(ToString::to_string).unwrap_or_default(),
                ));
                verdict = Some(v);
            }
        }
        let line = DecisionLine {
            ts: p.now.to_iso_millis(),
            bar: p.bar_start().map(Timestamp::to_iso_millis),
            instrument: p.instrument,
            set: &self.summary.name,
            rules: &set.hash,
            decision,
            error,
            ops,
            eval_us,
            risk: verdict.as_ref(),
            recovered: p.recovered,
        };
        journal.append_json(&format!("decisions_{}.jsonl", p.date), &line)?;
        if self.keep_records {
            self.summary.records.push(DecisionRecord {
                ts: line.ts.clone(),
                instrument: p.instrument.to_owned(),
                set: if self.summary.name == "shadow" {
                    RuleSetRole::Shadow
                } else {
                    RuleSetRole::Live
                },
                rules: set.hash.clone(),
                outcome: match (decision, &line.error) {
                    (Some(d), _) => Ok(Call::from(d)),
                    (None, e) => Err(e.clone().unwrap_or_default()),
                },
            });
        }
        report.error = line.error.clone();
        report.decision = decision.cloned();

        if let (Some(Verdict::Approved(approved)), Some(d)) = (verdict, decision) {
            let order = approved.order().clone();
            let ctx = OrderContext {
                now: p.now,
                bar_start: p.snapshot.bar.map_or(p.now, |b| b.start),
                date: p.date.clone(),
                tier: d.tier,
                vix_policy: p.features.vix_policy,
                spec: p.snapshot.spec,
            };
            let sent = match &mut self.venue {
                _ if p.recovered => Err(ExecutionError::Late),
                Venue::Paper => self.paper.submit(approved, &ctx),
                Venue::ReadOnly => ReadOnly.submit(approved, &ctx),
                Venue::Live(live, book) => {
                    let sent = write_ahead(journal, || live.submit(approved, &ctx))?;
                    if let Ok(Submitted::Sent {
                        parent,
                        target,
                        stop,
                    }) = &sent
                    {
                        book.sent(order.clone(), ctx.clone(), parent, target, stop);
                    }
                    sent
                }
            };
            match sent {
                Ok(submitted) => {
                    if matches!(submitted, Submitted::Sent { .. }) {
                        report.submitted = 1;
                    }
                    let line = OrderLine {
                        ts: p.now.to_iso_millis(),
                        instrument: p.instrument,
                        set: &self.summary.name,
                        record: &OrderRecord::submitted(order, submitted),
                    };
                    journal_order(journal, &p.date, &line)?;
                }
                Err(e) => {
                    tracing::warn!(set = %self.summary.name, error = %e, "order not sent");
                    let line = OrderLine {
                        ts: p.now.to_iso_millis(),
                        instrument: p.instrument,
                        set: &self.summary.name,
                        record: &OrderRecord::not_sent(order, e.to_string()),
                    };
                    journal_order(journal, &p.date, &line)?;
                    report.submit_error = Some(e.to_string());
                }
            }
            self.drain(p.now, &p.date, journal)?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_sent_only_once_its_decision_is_in_the_journal_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), false).unwrap();
        journal
            .append_json("decisions_20251208.jsonl", &serde_json::json!({"bar": 1}))
            .unwrap();
        let path = dir.path().join("decisions_20251208.jsonl");
        let seen_at_send = write_ahead(&mut journal, || std::fs::read_to_string(&path).unwrap());
        assert_eq!(seen_at_send.unwrap(), "{\"bar\":1}\n");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_order_whose_decision_cannot_be_written_is_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        // Every write to /dev/full fails with "no space left on device".
        std::os::unix::fs::symlink("/dev/full", dir.path().join("decisions_20251208.jsonl"))
            .unwrap();
        let mut journal = Journal::create(dir.path(), false).unwrap();
        journal
            .append_json("decisions_20251208.jsonl", &serde_json::json!({"bar": 1}))
            .unwrap();
        let mut sent = false;
        let result = write_ahead(&mut journal, || sent = true);
        assert!(result.is_err());
        assert!(!sent, "the order went out without its decision on file");
    }
}
