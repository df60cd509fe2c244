//! Paper execution: the built-in simulated exchange (product.md §9, "paper").
//!
//! It sits behind the same [`Execution`] interface as live DTC and takes only risk-approved
//! orders. A bracket fills from the prices of the one-minute bars:
//!
//! - the entry is a market order at the reference price the risk module priced it at, with
//!   `slippage_ticks` against the trade;
//! - from the next completed bar on, a bar whose range reaches the stop fills the stop (with the
//!   slippage of a stop order), one that reaches the target fills the target at its limit price
//!   (no slippage), and one that reaches both fills the stop: inside one bar the order of the
//!   high and the low is unknown, and assuming the worse keeps backtests honest;
//! - [`Execution::flatten_all`] and [`Paper::flatten`] close at the last close, with slippage;
//! - every fill pays `commission_per_contract` per contract.
//!
//! Pure: no I/O, no clock; the caller passes times and bars in and drains [`PaperEvent`]s.

use std::collections::BTreeMap;

use crate::execution::{Execution, ExecutionError, ExecutionMode, OrderContext, Submitted};
use crate::features::VixPolicy;
use crate::ingest::record::Bar;
use crate::model::{ContractSpec, Timestamp};
use crate::perf::{ExitReason, Trade};
use crate::risk::{Account, Approved, Exit, Order};
use crate::rules::{Direction, Tier};

/// Costs of paper fills.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperConfig {
    /// Dollars per contract per fill (entry and exit each pay it).
    pub commission_per_contract: f64,
    /// Ticks against the trade on market and stop fills.
    pub slippage_ticks: u32,
}

/// Which part of a bracket filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Leg {
    /// The entry.
    Entry,
    /// The target.
    Target,
    /// The stop.
    Stop,
    /// A flattening market order.
    Flatten,
}

/// A paper fill.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fill {
    /// The bracket's id (`P1`, `P2`, …).
    pub id: String,
    /// Instrument (the journal line carries it).
    #[serde(skip_serializing)]
    pub instrument: String,
    /// Which leg.
    pub leg: Leg,
    /// Direction of the trade the leg belongs to.
    pub direction: Direction,
    /// Fill price, slippage included.
    pub price: f64,
    /// Contracts.
    pub contracts: u32,
    /// When (the journal line's `ts`).
    #[serde(skip_serializing)]
    pub time: String,
}

/// What the paper exchange did, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PaperEvent {
    /// A fill.
    Fill(Fill),
    /// A trade closed.
    Closed(Trade),
}

/// One open bracket: what its exits and its trade record need. The live venue's book
/// (`execution::book`) keeps the same records for the brackets it sent over DTC.
#[derive(Debug, Clone)]
pub(crate) struct Position {
    id: String,
    pub(crate) instrument: String,
    direction: Direction,
    pub(crate) contracts: u32,
    spec: ContractSpec,
    entry: f64,
    entry_time: Timestamp,
    stop: f64,
    target: f64,
    risk_dollars: f64,
    tier: Tier,
    vix_policy: Option<VixPolicy>,
    date: String,
    /// Start of the last bar complete at entry: only later bars can fill the exits.
    entry_bar: Timestamp,
}

impl Position {
    /// The bracket of an approved `order`, entered at `entry` at `ctx.now`.
    pub(crate) fn open(id: String, order: &Order, ctx: &OrderContext, entry: f64) -> Self {
        Position {
            id,
            instrument: order.instrument.clone(),
            direction: order.direction,
            contracts: order.contracts,
            spec: ctx.spec,
            entry,
            entry_time: ctx.now,
            stop: order.stop,
            target: order.target,
            risk_dollars: order.risk_dollars,
            tier: ctx.tier,
            vix_policy: ctx.vix_policy,
            date: ctx.date.clone(),
            entry_bar: ctx.bar_start,
        }
    }

    fn sign(&self) -> f64 {
        if self.direction == Direction::Short {
            -1.0
        } else {
            1.0
        }
    }

    /// Signed contracts.
    pub(crate) fn signed(&self) -> i64 {
        let n = i64::from(self.contracts);
        if self.direction == Direction::Short {
            -n
        } else {
            n
        }
    }

    /// Unrealized P&L at `price`, in dollars.
    pub(crate) fn unrealized(&self, price: f64) -> f64 {
        self.sign() * (price - self.entry) / self.spec.tick_size
            * self.spec.tick_value
            * f64::from(self.contracts)
    }

    /// The entry fill's event.
    pub(crate) fn entry_fill(&self) -> PaperEvent {
        PaperEvent::Fill(Fill {
            id: self.id.clone(),
            instrument: self.instrument.clone(),
            leg: Leg::Entry,
            direction: self.direction,
            price: self.entry,
            contracts: self.contracts,
            time: self.entry_time.to_iso_millis(),
        })
    }

    /// The exit fill and the closed trade of the rule set `set`, the exit `leg` filled at
    /// `price` at `now`, with commission per contract on both fills.
    pub(crate) fn close(
        &self,
        set: &str,
        leg: Leg,
        price: f64,
        now: Timestamp,
        commission_per_contract: f64,
    ) -> [PaperEvent; 2] {
        let contracts = f64::from(self.contracts);
        let commission = 2.0 * commission_per_contract * contracts;
        let gross = self.unrealized(price);
        [
            PaperEvent::Fill(Fill {
                id: self.id.clone(),
                instrument: self.instrument.clone(),
                leg,
                direction: self.direction,
                price,
                contracts: self.contracts,
                time: now.to_iso_millis(),
            }),
            PaperEvent::Closed(Trade {
                set: set.to_owned(),
                instrument: self.instrument.clone(),
                date: self.date.clone(),
                direction: self.direction,
                tier: self.tier,
                vix_policy: self.vix_policy,
                contracts: self.contracts,
                entry_time: self.entry_time.to_iso_millis(),
                entry: self.entry,
                exit_time: now.to_iso_millis(),
                exit: price,
                exit_reason: match leg {
                    Leg::Target => ExitReason::Target,
                    Leg::Stop => ExitReason::Stop,
                    Leg::Entry | Leg::Flatten => ExitReason::Flatten,
                },
                commission,
                pnl: round_cents(gross - commission),
                risk_dollars: self.risk_dollars,
            }),
        ]
    }
}

/// The simulated exchange of one rule set.
#[derive(Debug)]
pub struct Paper {
    set: String,
    config: PaperConfig,
    next_id: u64,
    /// Open brackets by id (`P1`, `P2`, …; ids sort in opening order).
    positions: BTreeMap<u64, Position>,
    last_close: BTreeMap<String, f64>,
    /// The latest time the exchange was told (bars and orders): when `flatten_all` closes.
    now: Timestamp,
    events: Vec<PaperEvent>,
}

impl Paper {
    /// An exchange for the rule set `set` (`live` or `shadow`, written into its trades).
    pub fn new(set: &str, config: PaperConfig) -> Self {
        Self {
            set: set.to_owned(),
            config,
            next_id: 1,
            positions: BTreeMap::new(),
            last_close: BTreeMap::new(),
            now: Timestamp::default(),
            events: Vec::new(),
        }
    }

    /// The events since the last call, in order.
    pub fn drain(&mut self) -> Vec<PaperEvent> {
        std::mem::take(&mut self.events)
    }

    /// Signed open contracts in `instrument`.
    pub fn position(&self, instrument: &str) -> i64 {
        self.positions
            .values()
            .filter(|p| p.instrument == instrument)
            .map(Position::signed)
            .sum()
    }

    /// Unrealized P&L of the open positions at the last closes, in dollars.
    pub fn unrealized(&self) -> f64 {
        self.positions
            .values()
            .map(|p| {
                let close = self
                    .last_close
                    .get(&p.instrument)
                    .copied()
                    .unwrap_or(p.entry);
                p.unrealized(close)
            })
            .sum()
    }

    /// A completed one-minute bar of `instrument` (`start` is its start time, `now` the replay
    /// clock): fills the exits it reaches.
    pub fn on_bar(&mut self, instrument: &str, start: Timestamp, bar: &Bar, now: Timestamp) {
        self.last_close.insert(instrument.to_owned(), bar.close);
        self.now = self.now.max(now);
        let mut exits = Vec::new();
        for (id, p) in &self.positions {
            if p.instrument != instrument || start <= p.entry_bar {
                continue;
            }
            let (stop_hit, target_hit) = if p.direction == Direction::Short {
                (bar.high >= p.stop, bar.low <= p.target)
            } else {
                (bar.low <= p.stop, bar.high >= p.target)
            };
            // Both in one bar: the stop, because the order inside the bar is unknown.
            if stop_hit {
                exits.push((*id, Leg::Stop, p.stop - p.sign() * self.slippage(p)));
            } else if target_hit {
                exits.push((*id, Leg::Target, p.target));
            }
        }
        for (id, leg, price) in exits {
            self.close(id, leg, price, now);
        }
    }

    /// Closes every bracket of `instrument` at the last close, with slippage.
    pub fn flatten(&mut self, instrument: &str, now: Timestamp) {
        let open: Vec<(u64, f64)> = self
            .positions
            .iter()
            .filter(|(_, p)| p.instrument == instrument)
            .map(|(id, p)| {
                let close = self.last_close.get(instrument).copied().unwrap_or(p.entry);
                (*id, close - p.sign() * self.slippage(p))
            })
            .collect();
        for (id, price) in open {
            self.close(id, Leg::Flatten, price, now);
        }
    }

    fn slippage(&self, p: &Position) -> f64 {
        f64::from(self.config.slippage_ticks) * p.spec.tick_size
    }

    fn close(&mut self, id: u64, leg: Leg, price: f64, now: Timestamp) {
        if let Some(p) = self.positions.remove(&id) {
            let events = p.close(
                &self.set,
                leg,
                price,
                now,
                self.config.commission_per_contract,
            );
            self.events.extend(events);
        }
    }
}

/// Dollar figures to the cent, so that sums print the same on every machine.
fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Execution for Paper {
    fn mode(&self) -> ExecutionMode {
        ExecutionMode::Paper
    }

    fn submit(
        &mut self,
        approved: Approved,
        ctx: &OrderContext,
    ) -> Result<Submitted, ExecutionError> {
        let order = approved.into_order();
        let number = self.next_id;
        let id = format!("P{number}");
        self.next_id += 1;
        let sign = if order.direction == Direction::Short {
            -1.0
        } else {
            1.0
        };
        let slip = f64::from(self.config.slippage_ticks) * ctx.spec.tick_size;
        let entry = order.entry + sign * slip;
        self.now = self.now.max(ctx.now);
        let position = Position::open(id.clone(), &order, ctx, entry);
        self.events.push(position.entry_fill());
        self.positions.insert(number, position);
        Ok(Submitted::Sent {
            target: format!("{id}-T"),
            stop: format!("{id}-S"),
            parent: id,
        })
    }

    fn flatten_all(&mut self) -> Result<(), ExecutionError> {
        let open: std::collections::BTreeSet<String> = self
            .positions
            .values()
            .map(|p| p.instrument.clone())
            .collect();
        for instrument in open {
            self.flatten(&instrument, self.now);
        }
        Ok(())
    }
}

/// Brings `account` up to date with a paper event: entries count as trades of the day, closed
/// trades add their result, the losing streak, the stop-out cooldown and the Kelly history.
pub fn update_account(account: &mut Account, event: &PaperEvent, now: Timestamp) {
    match event {
        PaperEvent::Fill(f) if f.leg == Leg::Entry => {
            let n = i64::from(f.contracts);
            let signed = if f.direction == Direction::Short {
                -n
            } else {
                n
            };
            account.record_entry(&f.instrument, signed);
        }
        PaperEvent::Fill(_) => {}
        PaperEvent::Closed(t) => {
            let signed = if t.direction == Direction::Short {
                -i64::from(t.contracts)
            } else {
                i64::from(t.contracts)
            };
            let exit = match t.exit_reason {
                ExitReason::Stop => Exit::Stop,
                ExitReason::Target => Exit::Target,
                ExitReason::Flatten => Exit::Other,
            };
            account.record_exit(&t.instrument, signed, t.pnl, exit, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Config;
    use crate::risk::{KillState, MarketView, RiskGate, Verdict};
    use crate::rules::Decision;
    use crate::snapshot::{Source, SourceAge};

    const ES: ContractSpec = ContractSpec {
        tick_size: 0.25,
        tick_value: 12.5,
    };

    /// Friday 2025-09-19 10:30 New York, and the bar that closed then.
    fn t(minute: i64) -> Timestamp {
        Timestamp::from_secs(1_758_292_200 + 60 * minute)
    }

    /// A GOOD decision approved by the reference risk limits at 6500.00, with no MenthorQ level:
    /// a 7-tick stop and an 18-tick target (2.5 × 7 rounded up), 2 contracts
    /// (floor(4 × 0.5 × 1.0)).
    fn approved(direction: Direction) -> Approved {
        let gate = RiskGate::new(Config::reference().risk.expect("[risk]"));
        let decision = Decision {
            score: 75.0,
            direction,
            tier: Tier::Good,
            size_mult: 1.0,
            components: BTreeMap::new(),
            reasons: Vec::new(),
            vetoes: Vec::new(),
        };
        let levels = BTreeMap::new();
        let ages: Vec<SourceAge> = Source::ALL
            .into_iter()
            .map(|source| SourceAge {
                source,
                age_secs: Some(1.0),
                stale: false,
            })
            .collect();
        let market = MarketView {
            instrument: "ES",
            spec: ES,
            price: Some(6500.0),
            levels: &levels,
            vix_policy: Some(VixPolicy::Normal),
            ages: &ages,
        };
        match gate.check(
            &decision,
            &market,
            &Account::default(),
            KillState::Normal,
            t(0),
        ) {
            Verdict::Approved(a) => a,
            Verdict::Refused(r) => panic!("{r}"),
        }
    }

    fn paper_with(direction: Direction) -> Paper {
        let mut paper = Paper::new(
            "live",
            PaperConfig {
                commission_per_contract: 2.25,
                slippage_ticks: 1,
            },
        );
        paper.on_bar("ES", t(-1), &bar(6500.0, 6500.0, 6500.0), t(0));
        let ctx = OrderContext {
            now: t(0),
            bar_start: t(-1),
            date: "20250919".into(),
            tier: Tier::Good,
            vix_policy: Some(VixPolicy::Normal),
            spec: ES,
        };
        paper.submit(approved(direction), &ctx).unwrap();
        paper
    }

    fn bar(high: f64, low: f64, close: f64) -> Bar {
        Bar {
            open: close,
            high,
            low,
            close,
            volume: 100.0,
            bid_volume: 50.0,
            ask_volume: 50.0,
        }
    }

    fn closed(paper: &mut Paper) -> Vec<Trade> {
        paper
            .drain()
            .into_iter()
            .filter_map(|e| match e {
                PaperEvent::Closed(t) => Some(t),
                PaperEvent::Fill(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_long_reaches_its_target() {
        // Entry: market at 6500.00 + 1 tick of slippage = 6500.25. Target 6500 + 18 ticks =
        // 6504.50, filled at its limit. Gross (6504.50 − 6500.25) / 0.25 = 17 ticks × $12.50 ×
        // 2 = $425; commission 2 fills × 2 contracts × $2.25 = $9; net $416.
        let mut paper = paper_with(Direction::Long);
        paper.on_bar("ES", t(0), &bar(6504.5, 6500.0, 6504.0), t(1));
        let trades = closed(&mut paper);
        assert_eq!(trades.len(), 1);
        let trade = &trades[0];
        assert_eq!(
            (trade.entry, trade.exit, trade.exit_reason),
            (6500.25, 6504.5, ExitReason::Target)
        );
        assert_eq!((trade.commission, trade.pnl), (9.0, 416.0));
        assert_eq!(paper.position("ES"), 0);
    }

    #[test]
    fn a_long_hits_its_stop_with_slippage() {
        // Stop 6500 − 7 ticks = 6498.25, filled 1 tick worse at 6498.00. Gross (6498.00 −
        // 6500.25) = −9 ticks × $12.50 × 2 = −$225; net −$234.
        let mut paper = paper_with(Direction::Long);
        paper.on_bar("ES", t(0), &bar(6500.5, 6498.25, 6498.5), t(1));
        let trade = &closed(&mut paper)[0];
        assert_eq!(
            (trade.exit, trade.exit_reason, trade.pnl),
            (6498.0, ExitReason::Stop, -234.0)
        );
        assert!((trade.r_multiple() - (-234.0 / 175.0)).abs() < 1e-12);
    }

    #[test]
    fn a_bar_that_reaches_both_takes_the_stop() {
        let mut paper = paper_with(Direction::Short);
        // Short: entry 6499.75 (slippage down), stop 6501.75, target 6495.50; this bar spans
        // both: the stop fills, at 6502.00. Gross (6499.75 − 6502.00) = −9 ticks × 12.5 × 2.
        paper.on_bar("ES", t(0), &bar(6502.0, 6495.0, 6497.0), t(1));
        let trade = &closed(&mut paper)[0];
        assert_eq!((trade.entry, trade.exit), (6499.75, 6502.0));
        assert_eq!((trade.exit_reason, trade.pnl), (ExitReason::Stop, -234.0));
    }

    #[test]
    fn the_entry_bar_itself_cannot_fill_the_exits_and_flatten_closes_at_the_last_close() {
        let mut paper = paper_with(Direction::Long);
        // The bar the decision was made on (start t(-1)) again: ignored for exits.
        paper.on_bar("ES", t(-1), &bar(6510.0, 6490.0, 6500.0), t(0));
        assert!(closed(&mut paper).is_empty());
        paper.on_bar("ES", t(0), &bar(6502.0, 6499.0, 6501.0), t(1));
        assert_eq!(paper.position("ES"), 2);
        // Unrealized at 6501.00: 3 ticks × 12.5 × 2 = $75.
        assert_eq!(paper.unrealized(), 75.0);
        paper.flatten_all().unwrap();
        let trade = &closed(&mut paper)[0];
        // Market exit 1 tick under the close: 6500.75; 2 ticks × 12.5 × 2 − 9 = $41.
        assert_eq!(
            (trade.exit, trade.exit_reason, trade.pnl),
            (6500.75, ExitReason::Flatten, 41.0)
        );
    }

    #[test]
    fn the_account_follows_entries_and_exits() {
        let mut paper = paper_with(Direction::Long);
        let mut account = Account::default();
        paper.on_bar("ES", t(0), &bar(6500.5, 6498.0, 6498.5), t(1));
        for event in paper.drain() {
            update_account(&mut account, &event, t(1));
        }
        assert_eq!(account.trades_today, 1);
        assert_eq!(account.position("ES"), 0);
        assert_eq!(
            (account.realized_pnl, account.consecutive_losses),
            (-234.0, 1)
        );
        assert_eq!(account.last_stop_out_at, Some(t(1)));
        assert_eq!(account.closed_results, vec![-234.0]);
    }
}
