//! Performance tracking (product.md §10): closed trades in, statistics out, per day and
//! overall, broken down by tier, VIX policy and direction. Used by replay, the shadow report,
//! the HTML report and, later, the live monitor. Pure: no I/O, no clock.

use serde::{Deserialize, Serialize};

use crate::features::VixPolicy;
use crate::rules::{Direction, Tier};

/// Why a trade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The target filled.
    Target,
    /// The stop filled.
    Stop,
    /// Flattened: end of the data, end of the day, or the kill switch.
    Flatten,
}

/// One closed trade, as `trades_YYYYMMDD.jsonl` holds it (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// `live` or `shadow`.
    pub set: String,
    /// Instrument (symbol root).
    pub instrument: String,
    /// Trading day of the entry, `YYYYMMDD` in the exchange time zone.
    pub date: String,
    /// Long or short.
    pub direction: Direction,
    /// Tier of the decision that opened it.
    pub tier: Tier,
    /// VIX policy when it opened.
    pub vix_policy: Option<VixPolicy>,
    /// Contracts.
    pub contracts: u32,
    /// Entry time, ISO 8601 UTC with milliseconds.
    pub entry_time: String,
    /// Entry fill price (slippage included).
    pub entry: f64,
    /// Exit time.
    pub exit_time: String,
    /// Exit fill price (slippage included).
    pub exit: f64,
    /// Why it ended.
    pub exit_reason: ExitReason,
    /// Commission paid, dollars (both sides).
    pub commission: f64,
    /// Net result in dollars, commission deducted.
    pub pnl: f64,
    /// Dollars at risk when it opened (entry to stop), for R multiples.
    pub risk_dollars: f64,
}

impl Trade {
    /// The result in R: net P&L over the initial risk.
    pub fn r_multiple(&self) -> f64 {
        if self.risk_dollars > 0.0 {
            self.pnl / self.risk_dollars
        } else {
            0.0
        }
    }
}
