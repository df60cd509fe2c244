//! The engine's state as `/status` serves it and `mia status` reads it.
//!
//! The runner builds a fresh [`Status`] after each step and publishes it; the HTTP server only
//! serializes what was published, so a request never waits for the engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::risk::KillState;

/// Version of the `/status` document; raised when a field changes meaning.
pub const STATUS_FORMAT: u32 = 1;

/// Everything the dashboard and `mia status` show.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Status {
    /// [`STATUS_FORMAT`].
    pub format: u32,
    /// mia's version.
    pub version: String,
    /// When the engine started (ISO 8601 UTC).
    pub started: String,
    /// The engine clock at this status (ISO 8601 UTC).
    pub now: String,
    /// `read-only`, `paper` or `live`.
    pub mode: String,
    /// The data folder being tailed.
    pub data_dir: String,
    /// The journal folder.
    pub journal_dir: String,
    /// The kill switch.
    pub kill_switch: KillView,
    /// The live set, then the shadow set if any.
    pub sets: Vec<SetView>,
    /// One per configured instrument.
    pub instruments: Vec<InstrumentView>,
    /// DTC sessions (live mode only).
    pub routes: Vec<RouteView>,
    /// Totals that match the journals line for line.
    pub counts: Counts,
    /// Ingest lines per chart.
    pub charts: Vec<ChartView>,
    /// The latest decisions of every set, newest first.
    pub recent_decisions: Vec<DecisionView>,
    /// The latest alerts, newest first.
    pub recent_alerts: Vec<AlertView>,
}

/// The kill switch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KillView {
    /// `NORMAL`, `HALT_ENTRIES`, `HALT_TRADING` or `EMERGENCY`.
    pub state: KillState,
    /// Since when (ISO 8601 UTC).
    pub since: String,
    /// Why, as a sentence (empty in NORMAL since start).
    pub reason: String,
    /// Number of changes ever journaled.
    pub seq: u64,
}

impl KillView {
    /// The view of a kill switch's status.
    pub fn of(status: &crate::risk::kill_switch::Status) -> KillView {
        KillView {
            state: status.state,
            since: status.since.to_iso_millis(),
            reason: status
                .trigger
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            seq: status.seq,
        }
    }
}

/// One rule set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SetView {
    /// `live` or `shadow`.
    pub name: String,
    /// Rule folder.
    pub dir: String,
    /// Content hash of the set in force.
    pub hash: String,
    /// Evaluations so far (decisions plus rule errors).
    pub evaluations: u64,
    /// Decisions by tier (`PREMIUM` … `NO_TRADE`).
    pub decisions: BTreeMap<String, u64>,
    /// Evaluations that ended in a rule error.
    pub rule_errors: u64,
    /// Reloads that swapped a new set in.
    pub reloads: u64,
    /// Reloads refused (the last good set stayed live).
    pub reload_failures: u64,
    /// The last reload, if any.
    pub last_reload: Option<ReloadView>,
    /// Where its orders go: `read-only`, `paper` or `live` (the shadow set is always `paper`).
    pub venue: String,
    /// Day P&L in dollars, realized plus unrealized.
    pub pnl: f64,
    /// Realized P&L of the day in dollars.
    pub realized: f64,
    /// Closed trades.
    pub trades: u64,
    /// Winning closed trades.
    pub wins: u64,
    /// Equity (cumulative realized P&L) after each closed trade, oldest first.
    pub equity: Vec<EquityView>,
    /// Signed position by instrument.
    pub positions: BTreeMap<String, i64>,
}

/// A reload of a rule set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReloadView {
    /// When (ISO 8601 UTC).
    pub at: String,
    /// `swapped`, `unchanged` or `failed`.
    pub outcome: String,
    /// The new hash, or every diagnostic of a failure.
    pub message: String,
}

/// One point of an equity curve.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EquityView {
    /// Exit time of the trade (ISO 8601 UTC).
    pub ts: String,
    /// Cumulative net P&L after it.
    pub equity: f64,
}

/// One instrument.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstrumentView {
    /// Name (symbol root).
    pub name: String,
    /// Last price.
    pub price: Option<f64>,
    /// Sources with their ages.
    pub sources: Vec<SourceView>,
}

/// The age of one source of an instrument.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SourceView {
    /// `minute`, `profile`, `vix` or `menthor_q`.
    pub source: String,
    /// Seconds since it was last updated; `None` when never.
    pub age_secs: Option<f64>,
    /// Older than its threshold.
    pub stale: bool,
}

/// A DTC session.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RouteView {
    /// Instrument.
    pub instrument: String,
    /// Server address.
    pub address: String,
    /// `connecting`, `ready`, `down` or `stopped`.
    pub state: String,
    /// Why it is down or stopped.
    pub reason: Option<String>,
}

/// Totals since start (the journals of this run have exactly these many lines of each kind).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Source lines read.
    pub lines_read: u64,
    /// Lines accepted into the unified journal.
    pub lines_accepted: u64,
    /// Lines rejected (invalid).
    pub lines_rejected: u64,
    /// Decision-journal lines (every set, rule errors included).
    pub decisions: u64,
    /// Orders sent to a venue (paper or live), every set.
    pub orders_submitted: u64,
    /// Fills reported by the venues.
    pub fills: u64,
    /// Orders the venue rejected.
    pub rejections: u64,
    /// Closed trades, every set.
    pub trades: u64,
}

/// Ingest counters of one chart.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChartView {
    /// Chart number.
    pub chart: u16,
    /// Lines read.
    pub read: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Seconds between the newest record's own time and now.
    pub lag_secs: Option<f64>,
}

/// One decision, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DecisionView {
    /// Engine time (ISO 8601 UTC).
    pub ts: String,
    /// Instrument.
    pub instrument: String,
    /// `live` or `shadow`.
    pub set: String,
    /// Rule set hash.
    pub rules: String,
    /// Score, 0 to 100 (0 on a rule error).
    pub score: f64,
    /// `long`, `short` or `flat` (empty on a rule error).
    pub direction: String,
    /// Tier (empty on a rule error).
    pub tier: String,
    /// What contributed: `rule +points: why`.
    pub reasons: Vec<String>,
    /// Hard rules that blocked it.
    pub vetoes: Vec<String>,
    /// `approved`, a refusal kind, or empty without risk.
    pub verdict: String,
    /// The refusal or the rule error as a sentence.
    pub detail: String,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertView {
    /// When (ISO 8601 UTC).
    pub ts: String,
    /// Its kind (`kill_switch`, `stale_data`, `rule_error`, `reload_failed`,
    /// `dtc_disconnected`, `drawdown`).
    pub kind: String,
    /// What happened.
    pub message: String,
}
