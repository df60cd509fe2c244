//! Why risk refused a decision: a value with its figures, journaled with the decision.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::kill_switch::KillState;
use crate::model::{Level, Timestamp};

/// A refusal reason with the figures that decided it.
///
/// Serialized with a `kind` tag, for example
/// `{"kind":"daily_loss","loss":1012.5,"limit":1000.0}`. `Display` gives the sentence a trader
/// reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// The decision has no direction.
    Flat,
    /// Hard rules vetoed the decision.
    Vetoed {
        /// The rules that vetoed it.
        vetoes: Vec<String>,
    },
    /// The decision's size multiplier is zero (or not a number).
    ZeroSizeMult {
        /// The multiplier.
        size_mult: f64,
    },
    /// The kill switch is engaged.
    KillSwitch {
        /// Its state.
        state: KillState,
    },
    /// The instrument has no risk limits in the configuration.
    UnknownInstrument {
        /// The instrument.
        instrument: String,
    },
    /// The contract spec cannot price a tick.
    InvalidContractSpec {
        /// Tick size.
        tick_size: f64,
        /// Tick value in dollars.
        tick_value: f64,
    },
    /// The reference price is missing, not a number, zero or negative.
    InvalidPrice {
        /// The price (`null` in JSON when missing or NaN).
        price: Option<f64>,
    },
    /// A source risk depends on is stale.
    StaleData {
        /// `minute`, `vix` or `menthorq`.
        source: String,
        /// Its age in seconds, `None` when it was never received.
        age_secs: Option<f64>,
    },
    /// The time is outside every entry window.
    OutsideEntryWindow {
        /// Exchange time of the attempt, `YYYY-MM-DD HH:MM:SS` (weekday).
        local_time: String,
        /// The windows, for example `09:35-15:45 America/New_York`.
        windows: String,
    },
    /// Realized plus unrealized loss has reached the daily limit.
    DailyLoss {
        /// Loss of the day in dollars (positive).
        loss: f64,
        /// The limit.
        limit: f64,
    },
    /// Profit and loss of the day are not numbers, so the daily limit cannot be checked.
    UnknownPnl {
        /// Realized P&L.
        realized: f64,
        /// Unrealized P&L.
        unrealized: f64,
    },
    /// The day's entries are used up.
    TradesPerDay {
        /// Entries today.
        trades: u32,
        /// The limit.
        limit: u32,
    },
    /// Paused after a losing streak.
    LossStreak {
        /// Losses in a row.
        losses: u32,
        /// The limit.
        limit: u32,
        /// When entries resume.
        resume_at: Timestamp,
    },
    /// Cooling down after a stop-out.
    StopOutCooldown {
        /// When the last stop-out happened.
        stopped_at: Timestamp,
        /// When entries resume.
        resume_at: Timestamp,
    },
    /// The VIX policy is unknown, so the VIX multiplier cannot be chosen.
    VixUnknown,
    /// The VIX policy is `extreme`: no new entries.
    VixExtreme,
    /// A position in the other direction is open.
    OppositePosition {
        /// The signed position (contracts, negative short).
        position: i64,
    },
    /// The position limit is reached.
    PositionLimit {
        /// Absolute position now.
        position: u32,
        /// The limit.
        limit: u32,
    },
    /// The next opposing level is closer than the target: R:R below the minimum.
    RewardBelowMinimum {
        /// The opposing level.
        level: Level,
        /// Its distance from the entry, in ticks.
        level_ticks: i64,
        /// The target distance, in ticks.
        target_ticks: u32,
        /// The stop distance, in ticks.
        stop_ticks: u32,
    },
    /// The sizing formula gives less than one contract.
    SizeBelowOne {
        /// The product before flooring.
        raw: f64,
    },
    /// One contract already risks more than the per-trade cap.
    RiskPerTradeCap {
        /// Dollar risk of one contract.
        risk_per_contract: f64,
        /// Stop distance, in ticks.
        stop_ticks: u32,
        /// The cap.
        cap: f64,
    },
}

fn dollars(x: f64) -> String {
    format!("${x:.2}")
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Flat => f.write_str("no direction: flat decisions are not traded"),
            Refusal::Vetoed { vetoes } => write!(f, "vetoed by {}", vetoes.join(", ")),
            Refusal::ZeroSizeMult { size_mult } => {
                write!(f, "the decision's size multiplier is {size_mult}")
            }
            Refusal::KillSwitch { state } => write!(f, "the kill switch is {state}"),
            Refusal::UnknownInstrument { instrument } => {
                write!(
                    f,
                    "{instrument} has no [risk.instruments.{instrument}] limits"
                )
            }
            Refusal::InvalidContractSpec {
                tick_size,
                tick_value,
            } => write!(
                f,
                "invalid contract spec: tick {tick_size} worth {}",
                dollars(*tick_value)
            ),
            Refusal::InvalidPrice { price: Some(p) } => write!(f, "unusable price {p}"),
            Refusal::InvalidPrice { price: None } => f.write_str("no usable price"),
            Refusal::StaleData {
                source,
                age_secs: Some(age),
            } => write!(f, "{source} data is stale ({age:.0} s old)"),
            Refusal::StaleData {
                source,
                age_secs: None,
            } => write!(f, "no {source} data yet"),
            Refusal::OutsideEntryWindow {
                local_time,
                windows,
            } => write!(f, "{local_time} is outside the entry windows {windows}"),
            Refusal::DailyLoss { loss, limit } => write!(
                f,
                "daily loss {} has reached the {} limit",
                dollars(*loss),
                dollars(*limit)
            ),
            Refusal::UnknownPnl {
                realized,
                unrealized,
            } => write!(
                f,
                "the day's P&L is unknown (realized {realized}, unrealized {unrealized})"
            ),
            Refusal::TradesPerDay { trades, limit } => {
                write!(f, "{trades} trades today, the limit is {limit}")
            }
            Refusal::LossStreak {
                losses,
                limit,
                resume_at,
            } => write!(
                f,
                "{losses} losses in a row (limit {limit}): paused until {}",
                resume_at.to_iso_millis()
            ),
            Refusal::StopOutCooldown {
                stopped_at,
                resume_at,
            } => write!(
                f,
                "stopped out at {}: cooling down until {}",
                stopped_at.to_iso_millis(),
                resume_at.to_iso_millis()
            ),
            Refusal::VixUnknown => f.write_str("the VIX policy is unknown"),
            Refusal::VixExtreme => f.write_str("VIX policy extreme: no new entries"),
            Refusal::OppositePosition { position } => {
                write!(
                    f,
                    "a {position}-contract position in the other direction is open"
                )
            }
            Refusal::PositionLimit { position, limit } => write!(
                f,
                "position of {position} contract(s) is at the limit of {limit}"
            ),
            Refusal::RewardBelowMinimum {
                level,
                level_ticks,
                target_ticks,
                stop_ticks,
            } => write!(
                f,
                "{} is {level_ticks} ticks away, closer than the {target_ticks}-tick target \
                 of a {stop_ticks}-tick stop (R:R below the minimum)",
                level.name()
            ),
            Refusal::SizeBelowOne { raw } => {
                write!(
                    f,
                    "the sizing formula gives {raw:.3} contracts, less than one"
                )
            }
            Refusal::RiskPerTradeCap {
                risk_per_contract,
                stop_ticks,
                cap,
            } => write!(
                f,
                "one contract risks {} ({stop_ticks}-tick stop), more than the {} cap",
                dollars(*risk_per_contract),
                dollars(*cap)
            ),
        }
    }
}

impl Refusal {
    /// Returns the `kind` tag of the journal, for example `daily_loss`.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Flat => "flat",
            Refusal::Vetoed { .. } => "vetoed",
            Refusal::ZeroSizeMult { .. } => "zero_size_mult",
            Refusal::KillSwitch { .. } => "kill_switch",
            Refusal::UnknownInstrument { .. } => "unknown_instrument",
            Refusal::InvalidContractSpec { .. } => "invalid_contract_spec",
            Refusal::InvalidPrice { .. } => "invalid_price",
            Refusal::StaleData { .. } => "stale_data",
            Refusal::OutsideEntryWindow { .. } => "outside_entry_window",
            Refusal::DailyLoss { .. } => "daily_loss",
            Refusal::UnknownPnl { .. } => "unknown_pnl",
            Refusal::TradesPerDay { .. } => "trades_per_day",
            Refusal::LossStreak { .. } => "loss_streak",
            Refusal::StopOutCooldown { .. } => "stop_out_cooldown",
            Refusal::VixUnknown => "vix_unknown",
            Refusal::VixExtreme => "vix_extreme",
            Refusal::OppositePosition { .. } => "opposite_position",
            Refusal::PositionLimit { .. } => "position_limit",
            Refusal::RewardBelowMinimum { .. } => "reward_below_minimum",
            Refusal::SizeBelowOne { .. } => "size_below_one",
            Refusal::RiskPerTradeCap { .. } => "risk_per_trade_cap",
        }
    }
}
