//! The order risk approves, and the [`Approved`] wrapper that only this module can build.

use serde::Serialize;

use crate::model::{Level, Timestamp};
use crate::rules::Direction;

/// How the size of an order was reached, every factor of product.md §8 kept for the journal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sizing {
    /// The instrument's `max_contracts`.
    pub max_contracts: u32,
    /// `sizing_factor`.
    pub sizing_factor: f64,
    /// The tier multiplier: the decision's `size_mult`.
    pub tier_mult: f64,
    /// The Kelly multiplier.
    pub kelly_mult: f64,
    /// The VIX multiplier.
    pub vix_mult: f64,
    /// The product of the five factors above, before flooring.
    pub raw: f64,
    /// `floor(raw)`.
    pub by_formula: u32,
    /// Contracts the per-trade dollar risk allows: `floor(cap / (stop ticks × tick value))`.
    pub by_risk_cap: u32,
    /// Contracts the position limit still allows.
    pub by_position: u32,
}

/// A bracket order: entry, protective stop and target.
///
/// Prices are on the instrument's tick grid; money comes from its contract spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    /// Instrument name (symbol root).
    pub instrument: String,
    /// `Long` or `Short`; never `Flat`.
    pub direction: Direction,
    /// Contracts, at least 1.
    pub contracts: u32,
    /// Entry price: the reference price snapped to the tick.
    pub entry: f64,
    /// Protective stop price.
    pub stop: f64,
    /// Target price.
    pub target: f64,
    /// Distance from entry to stop, in ticks.
    pub stop_ticks: u32,
    /// Distance from entry to target, in ticks.
    pub target_ticks: u32,
    /// The level the stop sits behind, `None` when no level was in range.
    pub stop_level: Option<Level>,
    /// Dollar risk of the whole order: stop ticks × tick value × contracts.
    pub risk_dollars: f64,
    /// Dollar reward at the target: target ticks × tick value × contracts.
    pub reward_dollars: f64,
    /// How the size was reached.
    pub sizing: Sizing,
    /// When risk approved it.
    pub approved_at: Timestamp,
}

/// An order that passed every risk check.
///
/// Its field is private and it has no public constructor, no `Clone` and no `Deserialize`, so
/// code outside `risk` can neither build one nor copy one: execution accepts only this type, and
/// "every order passed risk" is checked by the compiler (ARCHITECTURE.md).
///
/// ```compile_fail,E0451
/// use mia::risk::{Approved, Order};
///
/// fn forge(order: Order) -> Approved {
///     Approved { order } // error[E0451]: field `order` of struct `Approved` is private
/// }
/// ```
///
/// ```compile_fail,E0624
/// fn forge(order: mia::risk::Order) -> mia::risk::Approved {
///     mia::risk::Approved::new(order) // error[E0624]: `new` is private to `risk`
/// }
/// ```
///
/// ```compile_fail,E0599
/// use mia::risk::Approved;
///
/// fn copy(approved: Approved) -> (Approved, Approved) {
///     (approved.clone(), approved) // error[E0599]: Approved is not Clone: an approval is used once
/// }
/// ```
#[derive(Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Approved {
    order: Order,
}

impl Approved {
    /// Wraps an order that passed every check. Only the gate calls this.
    pub(super) fn new(order: Order) -> Self {
        Self { order }
    }

    /// Returns the approved order.
    pub fn order(&self) -> &Order {
        &self.order
    }

    /// Returns the order, giving up the approval (what is left cannot be submitted).
    pub fn into_order(self) -> Order {
        self.order
    }
}
