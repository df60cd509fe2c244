//! Risk: the native gate between decisions and execution (product.md §8).
//!
//! [`RiskGate::check`] turns a rule [`Decision`] into either an [`Approved`] order or a
//! [`Refusal`] with its figures. It is pure: no I/O, no clock (time comes in as an argument).
//! The kill switch ([`KillSwitch`]) is the one part with state on disk, behind
//! [`KillSwitchStore`].
//!
//! Only this module can build an [`Approved`], and execution accepts nothing else.
//!
//! # The checks, in order (the first that fails is the refusal)
//!
//! 1. The decision is a candidate: a direction other than flat, no veto, `size_mult > 0`.
//! 2. The kill switch is `NORMAL`.
//! 3. The instrument has limits and a contract spec that can price a tick.
//! 4. The reference price (`last_price`) is finite and positive; the one-minute, VIX and
//!    MenthorQ sources are not stale (the 30-minute profile prices nothing risk uses).
//! 5. The time is in an entry window (exchange time zone, Monday to Friday).
//! 6. Day loss, trades per day, losing-streak pause, stop-out cooldown
//!    ([`limits::check_account`]).
//! 7. The VIX policy is known and not `extreme`.
//! 8. No position in the other direction, and room under the position limit.
//! 9. Stop and target ([`stops::place`]); refusal when an opposing level is closer than the
//!    target.
//! 10. Size ([`sizing`]): `floor(max_contracts × sizing_factor × size_mult × Kelly × VIX)`,
//!     then capped by the per-trade dollar risk and the position limit; zero is a refusal.
//!
//! # Decisions where product.md is silent
//!
//! - The tier multiplier is the decision's `size_mult`: the rule set owns the tier table
//!   (`rules/README.md`), and risk does not repeat it.
//! - Prices are handled in whole ticks of the instrument ([`ContractSpec`]), so that a stop of
//!   "7 ticks" is exactly 7 ticks on ES, NQ or RTY alike. Entry and levels are snapped to the tick.
//! - The protecting level is the nearest of its family *at or behind* the entry: a support at
//!   the entry price of a long protects it (its stop, 2 ticks, is widened to the 7-tick minimum).
//!   The opposing level is the nearest of the other family *at or ahead of* the entry. GEX,
//!   blind spots and swing levels play no part in stops.
//! - "In range": a level is in range when the stop behind it is at most `max_ticks` (20) wide.
//!   A farther level is ignored, not clamped, because a 20-tick stop in front of a level 30 ticks
//!   away protects nothing the 7-tick default would not; the stop is then 7 ticks.
//! - The target distance is `reward_ratio × stop` rounded *up* to a whole tick (7 → 18), so the
//!   reward is never below 2.5 R; an opposing level exactly at the target is accepted.
//! - The losing-streak pause runs `loss_pause_minutes` from the last loss; the streak ends only
//!   with a winning trade, so each further loss starts a new pause. Scratch trades count as
//!   losses (they cost commission).
//! - An entry against an open position is refused rather than netted: it would cancel the open
//!   position's bracket.
//! - Kill-switch states per trigger: daily loss and order rejections give `HALT_TRADING`; route
//!   down, stale data in the session and rule errors give `HALT_ENTRIES` (after a route outage the
//!   open brackets still sit at the exchange, and flattening on reconnection would close good
//!   positions on a network hiccup).

pub mod kill_switch;
pub mod limits;
mod order;
mod refusal;
pub mod sizing;
pub mod stops;
pub mod store;

use std::collections::BTreeMap;

use serde::Serialize;

pub use kill_switch::{Change, Health, KillState, KillSwitch, KillSwitchError, Status, Trigger};
pub use limits::{Account, Exit};
pub use order::{Approved, Order, Sizing};
pub use refusal::Refusal;
pub use store::{FileStore, KillSwitchStore, MemoryStore, StoreError};

use crate::config::RiskConfig;
use crate::features::VixPolicy;
use crate::model::{ContractSpec, Level, Timestamp};
use crate::rules::{Decision, Direction};
use crate::snapshot::{MarketSnapshot, Source, SourceAge};

/// The outcome of a risk check: an approved order or a refusal.
///
/// Serialized for the decision journal as `{"approved": {order}}` or
/// `{"refused": {"kind": …, figures}}`.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed.
    Approved(Approved),
    /// A check refused.
    Refused(Refusal),
}

impl Verdict {
    /// Returns the refusal, if refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Verdict::Refused(refusal) => Some(refusal),
            Verdict::Approved(_) => None,
        }
    }

    /// Returns the approved order, if approved.
    pub fn order(&self) -> Option<&Order> {
        match self {
            Verdict::Approved(approved) => Some(approved.order()),
            Verdict::Refused(_) => None,
        }
    }
}

/// What risk reads of the market of one instrument.
#[derive(Debug, Clone, Copy)]
pub struct MarketView<'a> {
    /// Instrument name (symbol root).
    pub instrument: &'a str,
    /// Contract spec: every dollar figure comes from it.
    pub spec: ContractSpec,
    /// Reference price for the entry (last trade).
    pub price: Option<f64>,
    /// MenthorQ levels.
    pub levels: &'a BTreeMap<Level, f64>,
    /// VIX policy (with hysteresis, from the features).
    pub vix_policy: Option<VixPolicy>,
    /// Source ages ([`MarketSnapshot::ages`]).
    pub ages: &'a [SourceAge],
}

impl<'a> MarketView<'a> {
    /// Builds the view of a snapshot, with the VIX policy of its features and its ages at the
    /// time of the check.
    pub fn of(
        snapshot: &'a MarketSnapshot,
        vix_policy: Option<VixPolicy>,
        ages: &'a [SourceAge],
    ) -> Self {
        Self {
            instrument: &snapshot.instrument,
            spec: snapshot.spec,
            price: snapshot.last_price,
            levels: &snapshot.levels,
            vix_policy,
            ages,
        }
    }
}

/// The risk gate: the configured limits, and the only maker of [`Approved`] orders.
#[derive(Debug, Clone)]
pub struct RiskGate {
    config: RiskConfig,
}

impl RiskGate {
    /// Creates a gate with these limits.
    pub fn new(config: RiskConfig) -> Self {
        Self { config }
    }

    /// Returns the limits.
    pub fn config(&self) -> &RiskConfig {
        &self.config
    }

    /// Checks a decision at `now` against the market, the account and the kill switch.
    pub fn check(
        &self,
        decision: &Decision,
        market: &MarketView<'_>,
        account: &Account,
        kill: KillState,
        now: Timestamp,
    ) -> Verdict {
        match self.try_approve(decision, market, account, kill, now) {
            Ok(order) => Verdict::Approved(Approved::new(order)),
            Err(refusal) => Verdict::Refused(refusal),
        }
    }

    fn try_approve(
        &self,
        decision: &Decision,
        market: &MarketView<'_>,
        account: &Account,
        kill: KillState,
        now: Timestamp,
    ) -> Result<Order, Refusal> {
        let cfg = &self.config;
        // 1. Candidates only.
        if decision.direction == Direction::Flat {
            return Err(Refusal::Flat);
        }
        if !decision.vetoes.is_empty() {
            return Err(Refusal::Vetoed {
                vetoes: decision.vetoes.clone(),
            });
        }
        // `!(x > 0)` also refuses NaN.
        if !(decision.size_mult > 0.0 && decision.size_mult.is_finite()) {
            return Err(Refusal::ZeroSizeMult {
                size_mult: decision.size_mult,
            });
        }
        // 2. Kill switch.
        if !kill.allows_entries() {
            return Err(Refusal::KillSwitch { state: kill });
        }
        // 3. Instrument.
        let limits =
            cfg.instruments
                .get(market.instrument)
                .ok_or_else(|| Refusal::UnknownInstrument {
                    instrument: market.instrument.to_owned(),
                })?;
        let spec = market.spec;
        let spec_ok = |x: f64| x.is_finite() && x > 0.0;
        if !(spec_ok(spec.tick_size) && spec_ok(spec.tick_value)) {
            return Err(Refusal::InvalidContractSpec {
                tick_size: spec.tick_size,
                tick_value: spec.tick_value,
            });
        }
        // 4. Prices.
        let entry_ticks =
            market
                .price
                .and_then(|p| stops::to_ticks(p, &spec))
                .ok_or(Refusal::InvalidPrice {
                    price: market.price.filter(|p| !p.is_nan()),
                })?;
        for source in [Source::Minute, Source::Vix, Source::MenthorQ] {
            if let Some(age) = market.ages.iter().find(|a| a.source == source && a.stale) {
                return Err(Refusal::StaleData {
                    source: kill_switch::source_name(source).to_owned(),
                    age_secs: age.age_secs,
                });
            }
        }
        // 5. and 6. Time and account.
        limits::check_window(now, cfg)?;
        limits::check_account(now, account, cfg)?;
        // 7. VIX.
        let vix_mult = match market.vix_policy {
            None => return Err(Refusal::VixUnknown),
            Some(VixPolicy::Extreme) => return Err(Refusal::VixExtreme),
            Some(policy) => sizing::vix_multiplier(policy),
        };
        // 8. Position.
        let position = account.position(market.instrument);
        let sign: i64 = if decision.direction == Direction::Long {
            1
        } else {
            -1
        };
        if position * sign < 0 {
            return Err(Refusal::OppositePosition { position });
        }
        let held = u32::try_from(position.unsigned_abs()).unwrap_or(u32::MAX);
        if held >= limits.max_position {
            return Err(Refusal::PositionLimit {
                position: held,
                limit: limits.max_position,
            });
        }
        // 9. Stop and target.
        let bracket = stops::place(
            decision.direction,
            entry_ticks,
            market.levels,
            &spec,
            &cfg.stop,
        )?;
        // 10. Size.
        let kelly_mult = sizing::kelly_multiplier(&account.closed_results, cfg);
        let raw = f64::from(limits.max_contracts)
            * cfg.sizing_factor
            * decision.size_mult
            * kelly_mult
            * vix_mult;
        let by_formula = sizing::floor_contracts(raw);
        let risk_per_contract = f64::from(bracket.stop_ticks) * spec.tick_value;
        let by_risk_cap = sizing::floor_contracts(cfg.max_risk_per_trade / risk_per_contract);
        let by_position = limits.max_position - held;
        if by_formula == 0 {
            return Err(Refusal::SizeBelowOne { raw });
        }
        if by_risk_cap == 0 {
            return Err(Refusal::RiskPerTradeCap {
                risk_per_contract,
                stop_ticks: bracket.stop_ticks,
                cap: cfg.max_risk_per_trade,
            });
        }
        let contracts = by_formula.min(by_risk_cap).min(by_position);
        let stop_ticks = i64::from(bracket.stop_ticks);
        let target_ticks = i64::from(bracket.target_ticks);
        Ok(Order {
            instrument: market.instrument.to_owned(),
            direction: decision.direction,
            contracts,
            entry: stops::from_ticks(entry_ticks, &spec),
            stop: stops::from_ticks(entry_ticks - sign * stop_ticks, &spec),
            target: stops::from_ticks(entry_ticks + sign * target_ticks, &spec),
            stop_ticks: bracket.stop_ticks,
            target_ticks: bracket.target_ticks,
            stop_level: bracket.stop_level,
            risk_dollars: risk_per_contract * f64::from(contracts),
            reward_dollars: f64::from(bracket.target_ticks)
                * spec.tick_value
                * f64::from(contracts),
            sizing: Sizing {
                max_contracts: limits.max_contracts,
                sizing_factor: cfg.sizing_factor,
                tier_mult: decision.size_mult,
                kelly_mult,
                vix_mult,
                raw,
                by_formula,
                by_risk_cap,
                by_position,
            },
            approved_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rules::Tier;

    fn gate() -> RiskGate {
        RiskGate::new(
            Config::reference()
                .risk
                .expect("[risk] in the reference file"),
        )
    }

    fn long() -> Decision {
        Decision {
            score: 85.0,
            direction: Direction::Long,
            tier: Tier::Strong,
            size_mult: 1.5,
            components: BTreeMap::new(),
            reasons: Vec::new(),
            vetoes: Vec::new(),
        }
    }

    fn fresh() -> Vec<SourceAge> {
        Source::ALL
            .into_iter()
            .map(|source| SourceAge {
                source,
                age_secs: Some(1.0),
                stale: false,
            })
            .collect()
    }

    /// Friday 2025-09-19 10:30 New York.
    fn now() -> Timestamp {
        Timestamp::from_secs(1_758_292_200)
    }

    fn check_price(price: Option<f64>) -> Verdict {
        let levels = BTreeMap::new();
        let ages = fresh();
        let market = MarketView {
            instrument: "ES",
            spec: ContractSpec::builtin("ES").unwrap(),
            price,
            levels: &levels,
            vix_policy: Some(VixPolicy::Normal),
            ages: &ages,
        };
        gate().check(
            &long(),
            &market,
            &Account::default(),
            KillState::Normal,
            now(),
        )
    }

    #[test]
    fn nan_zero_negative_infinite_and_missing_prices_are_refused() {
        for (price, journaled) in [
            (Some(f64::NAN), None),
            (Some(0.0), Some(0.0)),
            (Some(-6500.0), Some(-6500.0)),
            (Some(f64::INFINITY), Some(f64::INFINITY)),
            (None, None),
        ] {
            assert_eq!(
                check_price(price).refusal(),
                Some(&Refusal::InvalidPrice { price: journaled }),
                "{price:?}"
            );
        }
    }

    #[test]
    fn a_good_price_is_approved_and_journals_its_figures() {
        let verdict = check_price(Some(6500.0));
        let order = verdict.order().expect("approved");
        // STRONG: floor(4 × 0.5 × 1.5) = 3; 7-tick stop, $87.50 a contract.
        assert_eq!(order.contracts, 3);
        assert_eq!((order.stop, order.target), (6498.25, 6504.5));
        assert_eq!(order.risk_dollars, 262.5);
        let json = serde_json::to_value(&verdict).unwrap();
        assert_eq!(json["approved"]["contracts"], 3);
        assert_eq!(json["approved"]["sizing"]["tier_mult"], 1.5);
        assert_eq!(json["approved"]["direction"], "long");
    }

    #[test]
    fn refusals_journal_their_kind_and_figures() {
        let refusal = Refusal::DailyLoss {
            loss: 1012.5,
            limit: 1000.0,
        };
        let json = serde_json::to_string(&Verdict::Refused(refusal.clone())).unwrap();
        assert_eq!(
            json,
            r#"{"refused":{"kind":"daily_loss","loss":1012.5,"limit":1000.0}}"#
        );
        let back: Refusal =
            serde_json::from_str(r#"{"kind":"daily_loss","loss":1012.5,"limit":1000.0}"#).unwrap();
        assert_eq!(back, refusal);
        assert_eq!(refusal.kind(), "daily_loss");
        assert_eq!(
            refusal.to_string(),
            "daily loss $1012.50 has reached the $1000.00 limit"
        );
    }
}
