//! The per-set stage of the pipeline, shared by `mia replay` and the live runner `mia run`
//! (issue 8): at each completed one-minute bar, a rule set's exits, decision, risk verdict and
//! entry, journaled.
//!
//! A `Point` is what every set sees at one evaluation (snapshot, features, `s`), so the live
//! and shadow sets decide on exactly the same input; a `SetRun` is one set with its own
//! paper exchange and account.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::Stopwatch;
use crate::config::{Config, StalenessConfig};
use crate::execution::{Execution, OrderContext, OrderLine, OrderRecord, journal_order};
use crate::features::{FeatureEngine, Features};
use crate::ingest::naming::yyyymmdd;
use crate::journal::{Journal, JournalError};
use crate::model::{Timestamp, utc_to_local};
use crate::paper::{Paper, PaperEvent, update_account};
use crate::perf::Trade;
use crate::risk::{Account, KillState, MarketView, RiskGate, Verdict};
use crate::rules::input::market_input;
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
}

/// `YYYYMMDD` of `now` in the exchange time zone (`undated` when out of range).
pub(crate) fn session_date(config: &Config, now: Timestamp) -> String {
    utc_to_local(now, config.session.time_zone)
        .map(|d| yyyymmdd(d.date()))
        .unwrap_or_else(|| "undated".to_owned())
}

/// One evaluation point: a completed one-minute bar of an instrument, with what every set sees.
pub(crate) struct Point<'a> {
    instrument: &'a str,
    now: Timestamp,
    date: String,
    snapshot: &'a MarketSnapshot,
    features: Features,
    input: RuleInput,
    in_session: bool,
    staleness: &'a StalenessConfig,
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
        }
    }
}

/// A rule set with its own paper exchange and account.
pub(crate) struct SetRun {
    pub(crate) set: RuleSet,
    pub(crate) paper: Paper,
    pub(crate) account: Account,
    pub(crate) day: Option<String>,
    pub(crate) summary: SetSummary,
}

impl SetRun {
    pub(crate) fn new(name: &str, set: RuleSet, config: &Config) -> Self {
        SetRun {
            paper: Paper::new(name, config.execution.paper),
            account: Account::default(),
            day: None,
            summary: SetSummary {
                name: name.to_owned(),
                rules_hash: set.hash.clone(),
                ..SetSummary::default()
            },
            set,
        }
    }

    /// Journals the paper exchange's events and brings the account up to date.
    pub(crate) fn drain(
        &mut self,
        now: Timestamp,
        date: &str,
        journal: &mut Journal,
    ) -> Result<(), JournalError> {
        for event in self.paper.drain() {
            update_account(&mut self.account, &event, now);
            match event {
                PaperEvent::Fill(fill) => {
                    let line = OrderLine {
                        ts: now.to_iso_millis(),
                        instrument: &fill.instrument,
                        set: &self.summary.name,
                        record: &OrderRecord::fill(fill.clone()),
                    };
                    journal_order(journal, date, &line)?;
                }
                PaperEvent::Closed(trade) => {
                    journal.append_json(&format!("trades_{}.jsonl", trade.date), &trade)?;
                    self.summary.trades.push(trade);
                }
            }
        }
        Ok(())
    }

    /// Exits on the completed bar, then the decision, its risk verdict, and the entry.
    pub(crate) fn step(
        &mut self,
        p: &Point<'_>,
        host: &RuleHost,
        gate: Option<&RiskGate>,
        timings: bool,
        journal: &mut Journal,
    ) -> Result<(), JournalError> {
        if self.day.as_deref() != Some(p.date.as_str()) {
            self.account.new_day();
            self.day = Some(p.date.clone());
        }
        if let Some(bar) = p.snapshot.bar {
            self.paper.on_bar(p.instrument, bar.start, &bar.bar, p.now);
        }
        self.drain(p.now, &p.date, journal)?;
        self.account.unrealized_pnl = self.paper.unrealized();

        let watch = Stopwatch::start();
        let result = host.evaluate(&self.set, &p.input);
        let eval_us = timings.then(|| watch.elapsed().as_micros() as u64);
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
                let v = gate.check(d, &market, &self.account, KillState::Normal, p.now);
                let kind = v.refusal().map_or("approved", |r| r.kind());
                *self.summary.risk.entry(kind.to_owned()).or_default() += 1;
                verdict = Some(v);
            }
        }
        let line = DecisionLine {
            ts: p.now.to_iso_millis(),
            instrument: p.instrument,
            set: &self.summary.name,
            rules: &self.set.hash,
            decision,
            error,
            ops,
            eval_us,
            risk: verdict.as_ref(),
        };
        journal.append_json(&format!("decisions_{}.jsonl", p.date), &line)?;
        self.summary.records.push(DecisionRecord {
            ts: line.ts.clone(),
            instrument: p.instrument.to_owned(),
            set: if self.summary.name == "shadow" {
                RuleSetRole::Shadow
            } else {
                RuleSetRole::Live
            },
            rules: self.set.hash.clone(),
            outcome: match (decision, &line.error) {
                (Some(d), _) => Ok(Call::from(d)),
                (None, e) => Err(e.clone().unwrap_or_default()),
            },
        });

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
            match self.paper.submit(approved, &ctx) {
                Ok(submitted) => {
                    let line = OrderLine {
                        ts: p.now.to_iso_millis(),
                        instrument: p.instrument,
                        set: &self.summary.name,
                        record: &OrderRecord::submitted(order, submitted),
                    };
                    journal_order(journal, &p.date, &line)?;
                }
                Err(e) => tracing::warn!(error = %e, "paper order refused"),
            }
            self.drain(p.now, &p.date, journal)?;
        }
        Ok(())
    }
}
