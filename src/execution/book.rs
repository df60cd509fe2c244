//! The book of the live venue: which ClientOrderIDs belong to which approved bracket, and the
//! trades their fills make.
//!
//! A DTC session reports fills by ClientOrderID; the engine needs trades (for the trade journal,
//! the account that risk checks, and the equity curve). [`LiveBook`] remembers each bracket it
//! was told about and turns its fills into the same [`PaperEvent`]s as the paper exchange, so
//! that one code path journals trades and keeps the account for both venues.
//!
//! A fill is taken when its order is filled whole (Sierra fills a market bracket's legs whole;
//! a partial fill waits for the rest). A flattening order (kill switch) closes every open
//! bracket of its instrument at its price.

use std::collections::BTreeMap;

use super::OrderContext;
use crate::model::Timestamp;
use crate::paper::{Leg, PaperEvent, Position};
use crate::risk::Order;

#[derive(Debug)]
struct Bracket {
    /// The approved order and its context until the entry fills.
    pending: Option<(Order, OrderContext)>,
    /// The position once the entry filled.
    open: Option<Position>,
}

/// The brackets of one rule set on the live venue, and the events their fills make.
#[derive(Debug)]
pub struct LiveBook {
    set: String,
    commission_per_contract: f64,
    brackets: BTreeMap<String, Bracket>,
    /// ClientOrderID → (parent ClientOrderID, leg).
    legs: BTreeMap<String, (String, Leg)>,
    /// Flattening orders → instrument.
    flattens: BTreeMap<String, String>,
    events: Vec<PaperEvent>,
}

impl LiveBook {
    /// A book for the rule set `set`; trades pay `commission_per_contract` per fill.
    pub fn new(set: &str, commission_per_contract: f64) -> Self {
        LiveBook {
            set: set.to_owned(),
            commission_per_contract,
            brackets: BTreeMap::new(),
            legs: BTreeMap::new(),
            flattens: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// Remembers a bracket sent with these ClientOrderIDs.
    pub fn sent(
        &mut self,
        order: Order,
        ctx: OrderContext,
        parent: &str,
        target: &str,
        stop: &str,
    ) {
        self.legs
            .insert(parent.to_owned(), (parent.to_owned(), Leg::Entry));
        self.legs
            .insert(target.to_owned(), (parent.to_owned(), Leg::Target));
        self.legs
            .insert(stop.to_owned(), (parent.to_owned(), Leg::Stop));
        self.brackets.insert(
            parent.to_owned(),
            Bracket {
                pending: Some((order, ctx)),
                open: None,
            },
        );
    }

    /// Remembers a flattening order of `instrument`.
    pub fn flattening(&mut self, instrument: &str, client_order_id: &str) {
        self.flattens
            .insert(client_order_id.to_owned(), instrument.to_owned());
    }

    /// A fill reported by the session: `filled` contracts so far, at `price`, at `now`.
    pub fn on_fill(
        &mut self,
        client_order_id: &str,
        filled: f64,
        price: Option<f64>,
        now: Timestamp,
    ) {
        let Some(price) = price.filter(|p| p.is_finite() && *p > 0.0) else {
            tracing::warn!(%client_order_id, "fill without a price; position not updated");
            return;
        };
        if let Some(instrument) = self.flattens.get(client_order_id).cloned() {
            let open: Vec<String> = self
                .brackets
                .iter()
                .filter(|(_, b)| b.open.as_ref().is_some_and(|p| p.instrument == instrument))
                .map(|(id, _)| id.clone())
                .collect();
            for id in open {
                self.close(&id, Leg::Flatten, price, now);
            }
            return;
        }
        let Some((parent, leg)) = self.legs.get(client_order_id).cloned() else {
            return;
        };
        let Some(bracket) = self.brackets.get_mut(&parent) else {
            return;
        };
        match leg {
            Leg::Entry => {
                let Some((order, ctx)) = bracket
                    .pending
                    .take_if(|(o, _)| filled >= f64::from(o.contracts))
                else {
                    return;
                };
                let ctx = OrderContext { now, ..ctx };
                let position = Position::open(parent.clone(), &order, &ctx, price);
                self.events.push(position.entry_fill());
                bracket.open = Some(position);
            }
            Leg::Target | Leg::Stop | Leg::Flatten => {
                if bracket
                    .open
                    .as_ref()
                    .is_some_and(|p| filled >= f64::from(p.contracts))
                {
                    self.close(&parent, leg, price, now);
                }
            }
        }
    }

    fn close(&mut self, parent: &str, leg: Leg, price: f64, now: Timestamp) {
        if let Some(p) = self.brackets.get_mut(parent).and_then(|b| b.open.take()) {
            let events = p.close(&self.set, leg, price, now, self.commission_per_contract);
            self.events.extend(events);
        }
    }

    /// The events since the last call, in order.
    pub fn drain(&mut self) -> Vec<PaperEvent> {
        std::mem::take(&mut self.events)
    }

    /// Signed open contracts by instrument.
    pub fn positions(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for p in self.brackets.values().filter_map(|b| b.open.as_ref()) {
            *out.entry(p.instrument.clone()).or_default() += p.signed();
        }
        out
    }

    /// Unrealized P&L of the open brackets at `price` of their instrument, in dollars.
    pub fn unrealized(&self, price: impl Fn(&str) -> Option<f64>) -> f64 {
        self.brackets
            .values()
            .filter_map(|b| b.open.as_ref())
            .map(|p| price(&p.instrument).map_or(0.0, |x| p.unrealized(x)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContractSpec;
    use crate::perf::ExitReason;
    use crate::risk::Sizing;
    use crate::rules::{Direction, Tier};

    fn order(direction: Direction, contracts: u32) -> Order {
        Order {
            instrument: "ES".into(),
            direction,
            contracts,
            entry: 6500.0,
            stop: 6498.0,
            target: 6505.0,
            stop_ticks: 8,
            target_ticks: 20,
            stop_level: None,
            risk_dollars: 200.0,
            reward_dollars: 500.0,
            sizing: Sizing {
                max_contracts: 4,
                sizing_factor: 0.5,
                tier_mult: 1.0,
                kelly_mult: 1.0,
                vix_mult: 1.0,
                raw: 2.0,
                by_formula: 2,
                by_risk_cap: 2,
                by_position: 3,
            },
            approved_at: Timestamp::from_micros(1_000_000),
        }
    }

    fn ctx() -> OrderContext {
        OrderContext {
            now: Timestamp::from_micros(1_000_000),
            bar_start: Timestamp::from_micros(0),
            date: "20251208".into(),
            tier: Tier::Good,
            vix_policy: None,
            spec: ContractSpec {
                tick_size: 0.25,
                tick_value: 12.5,
            },
        }
    }

    fn trades(book: &mut LiveBook) -> Vec<crate::perf::Trade> {
        book.drain()
            .into_iter()
            .filter_map(|e| match e {
                PaperEvent::Closed(t) => Some(t),
                PaperEvent::Fill(_) => None,
            })
            .collect()
    }

    #[test]
    fn entry_then_target_makes_one_trade_at_the_fill_prices() {
        let mut book = LiveBook::new("live", 2.25);
        book.sent(order(Direction::Long, 2), ctx(), "A-1", "A-2", "A-3");
        book.on_fill("A-1", 2.0, Some(6500.25), Timestamp::from_micros(2_000_000));
        assert_eq!(book.positions()["ES"], 2);
        // 6501.25 − 6500.25 = 4 ticks × $12.50 × 2 = $100 unrealized.
        assert_eq!(book.unrealized(|_| Some(6501.25)), 100.0);
        book.on_fill("A-2", 2.0, Some(6505.0), Timestamp::from_micros(3_000_000));
        let t = trades(&mut book);
        assert_eq!(t.len(), 1);
        // 19 ticks × $12.50 × 2 = $475, less 2 fills × 2 contracts × $2.25 = $9.
        assert_eq!(t[0].pnl, 466.0);
        assert_eq!(t[0].exit_reason, ExitReason::Target);
        assert_eq!(t[0].entry, 6500.25);
        assert!(
            book.positions().is_empty(),
            "closed: {:?}",
            book.positions()
        );
    }

    #[test]
    fn a_partial_entry_waits_and_a_flatten_closes_the_short() {
        let mut book = LiveBook::new("live", 0.0);
        book.sent(order(Direction::Short, 2), ctx(), "B-1", "B-2", "B-3");
        book.on_fill("B-1", 1.0, Some(6500.0), Timestamp::from_micros(2_000_000));
        assert!(book.positions().is_empty(), "half filled is not open yet");
        book.on_fill("B-1", 2.0, Some(6500.0), Timestamp::from_micros(2_500_000));
        assert_eq!(book.positions()["ES"], -2);
        book.flattening("ES", "B-9");
        book.on_fill("B-9", 2.0, Some(6501.0), Timestamp::from_micros(3_000_000));
        let t = trades(&mut book);
        assert_eq!(t.len(), 1);
        // A short closed 4 ticks higher: −4 × $12.50 × 2.
        assert_eq!(t[0].pnl, -100.0);
        assert_eq!(t[0].exit_reason, ExitReason::Flatten);
        // The stop's fill after the flatten changes nothing.
        book.on_fill("B-3", 2.0, Some(6502.0), Timestamp::from_micros(4_000_000));
        assert!(trades(&mut book).is_empty());
    }
}
