//! Execution: where approved orders go (product.md §9).
//!
//! [`Execution::submit`] takes an [`Approved`] order by value and nothing else: only the risk
//! module can make one, so every order that reaches a venue passed risk (a type-level
//! guarantee, ARCHITECTURE.md). The approval is consumed: it cannot be sent twice.
//!
//! The implementation is chosen by the execution mode:
//! - [`ReadOnly`] (the default) sends nothing and says so;
//! - [`Live`] sends a bracket through the DTC session of the order's instrument;
//! - [`crate::paper::Paper`], the built-in simulated exchange, fills from bar prices.

use std::collections::BTreeMap;

pub mod book;

use serde::Serialize;

use crate::dtc::DtcError;
use crate::dtc::client::{Bracket, BracketIds, ClientEvent, DtcClient, Side};
use crate::features::VixPolicy;
use crate::journal::{Journal, JournalError};
use crate::model::{ContractSpec, Timestamp};
use crate::risk::{Approved, Order};
use crate::rules::{Direction, Tier};

/// The execution mode of config (`execution.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionMode {
    /// Decisions are journaled; nothing is sent.
    ReadOnly,
    /// Orders go to the built-in simulated exchange.
    Paper,
    /// Orders go to Sierra Chart over DTC.
    Live,
}

impl ExecutionMode {
    /// `read-only`, `paper` or `live`, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::ReadOnly => "read-only",
            ExecutionMode::Paper => "paper",
            ExecutionMode::Live => "live",
        }
    }
}

/// What became of a submitted order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Submitted {
    /// Read-only mode: journaled, not sent.
    NotSent,
    /// Sent as a bracket.
    Sent {
        /// Entry ClientOrderID.
        parent: String,
        /// Target ClientOrderID.
        target: String,
        /// Stop ClientOrderID.
        stop: String,
    },
}

/// Why an approved order could not be sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecutionError {
    /// No route is configured for the instrument.
    #[error("no order route for {0}: add it to [dtc] in the config")]
    NoRoute(String),
    /// The DTC session refused or failed.
    #[error(transparent)]
    Dtc(#[from] DtcError),
    /// The venue refused the order.
    #[error("{0}")]
    Refused(String),
    /// The decision was made late, after a restart, on a bar that a crash left undecided; the
    /// market has moved on, so its order is journaled and never sent.
    #[error("recovered after a restart: a late decision is never sent")]
    Late,
}

/// What execution needs to know about an order besides the order itself: when, and what it
/// came from (for journals and trade records).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderContext {
    /// Engine clock.
    pub now: Timestamp,
    /// Start of the last completed one-minute bar (the bar the decision was made on).
    pub bar_start: Timestamp,
    /// Trading day, `YYYYMMDD` in the exchange time zone.
    pub date: String,
    /// Tier of the decision.
    pub tier: Tier,
    /// VIX policy at the decision.
    pub vix_policy: Option<VixPolicy>,
    /// Contract spec of the instrument.
    pub spec: ContractSpec,
}

/// A venue for approved orders.
pub trait Execution: Send {
    /// The mode this implements.
    fn mode(&self) -> ExecutionMode;

    /// Sends an approved order as a bracket (entry, target, stop).
    ///
    /// # Errors
    ///
    /// [`ExecutionError`] when the route is missing or refuses; nothing was sent then, or the
    /// session reports what it did through its events.
    fn submit(
        &mut self,
        approved: Approved,
        ctx: &OrderContext,
    ) -> Result<Submitted, ExecutionError>;

    /// Cancels every working order and flattens every position (the kill switch's
    /// HALT_TRADING and EMERGENCY).
    ///
    /// # Errors
    ///
    /// The first route that failed; the others are still flattened.
    fn flatten_all(&mut self) -> Result<(), ExecutionError>;
}

/// Read-only: nothing leaves mia.
#[derive(Debug, Default)]
pub struct ReadOnly;

impl Execution for ReadOnly {
    fn mode(&self) -> ExecutionMode {
        ExecutionMode::ReadOnly
    }

    fn submit(
        &mut self,
        approved: Approved,
        _ctx: &OrderContext,
    ) -> Result<Submitted, ExecutionError> {
        tracing::info!(target: "execution", order = ?approved.order(), "read-only: order not sent");
        Ok(Submitted::NotSent)
    }

    fn flatten_all(&mut self) -> Result<(), ExecutionError> {
        Ok(())
    }
}

/// Live: one DTC session per instrument.
#[derive(Debug, Default)]
pub struct Live {
    routes: BTreeMap<String, DtcClient>,
}

impl Live {
    /// Live execution over these sessions, by instrument (`ES`, `NQ`, …).
    pub fn new(routes: BTreeMap<String, DtcClient>) -> Self {
        Self { routes }
    }

    /// The session of an instrument.
    pub fn route(&self, instrument: &str) -> Option<&DtcClient> {
        self.routes.get(instrument)
    }
}

impl Live {
    /// Cancels every working order and flattens the position of each route; returns each
    /// route's flattening order id (`None` when it was flat) or its error.
    pub fn flatten_routes(&self) -> Vec<(String, Result<Option<String>, DtcError>)> {
        self.routes
            .iter()
            .map(|(instrument, client)| (instrument.clone(), client.flatten()))
            .collect()
    }

    /// The instruments and their sessions.
    pub fn routes(&self) -> impl Iterator<Item = (&String, &DtcClient)> {
        self.routes.iter()
    }

    /// Every event the sessions have reported since the last call, by instrument, without
    /// waiting.
    pub fn poll_events(&self) -> Vec<(String, ClientEvent)> {
        let mut out = Vec::new();
        for (instrument, client) in &self.routes {
            while let Some(event) = client.next_event(std::time::Duration::ZERO) {
                out.push((instrument.clone(), event));
            }
        }
        out
    }
}

/// What the order journal records.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OrderRecord {
    /// An approved order and what execution did with it.
    Submitted {
        /// `"submitted"`.
        event: &'static str,
        /// The order as risk approved it.
        order: Order,
        /// Where it went.
        #[serde(flatten)]
        submitted: Submitted,
    },
    /// What a DTC session reported (fills, rejects with their InfoText, connection changes).
    Session(ClientEvent),
    /// An approved order the venue refused to take (the route was down, say).
    NotSent {
        /// `"not_sent"`.
        event: &'static str,
        /// The order as risk approved it.
        order: Order,
        /// Why.
        error: String,
    },
    /// A fill of the paper exchange.
    Fill {
        /// `"fill"`.
        event: &'static str,
        /// The fill.
        #[serde(flatten)]
        fill: crate::paper::Fill,
    },
}

impl OrderRecord {
    /// The record of a paper fill.
    pub fn fill(fill: crate::paper::Fill) -> Self {
        OrderRecord::Fill {
            event: "fill",
            fill,
        }
    }

    /// The record of an approved order the venue did not take.
    pub fn not_sent(order: Order, error: String) -> Self {
        OrderRecord::NotSent {
            event: "not_sent",
            order,
            error,
        }
    }

    /// The record of a submission.
    pub fn submitted(order: Order, submitted: Submitted) -> Self {
        OrderRecord::Submitted {
            event: "submitted",
            order,
            submitted,
        }
    }
}

/// One line of `orders_YYYYMMDD.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderLine<'a> {
    /// When it happened (engine clock).
    pub ts: String,
    /// Instrument.
    pub instrument: &'a str,
    /// The rule set whose order it is (`live`, or `shadow` in replay).
    pub set: &'a str,
    /// What happened.
    #[serde(flatten)]
    pub record: &'a OrderRecord,
}

/// Buffers an order-journal line in `journal` (file `orders_<date>.jsonl`, `date` as
/// `YYYYMMDD`); the caller commits.
///
/// # Errors
///
/// [`JournalError`] when the file cannot be written.
pub fn journal_order(
    journal: &mut Journal,
    date: &str,
    line: &OrderLine<'_>,
) -> Result<(), JournalError> {
    journal.append_json(&format!("orders_{date}.jsonl"), line)
}

/// The bracket of an approved order.
pub fn bracket(approved: &Approved) -> Bracket {
    let order = approved.order();
    Bracket {
        side: match order.direction {
            Direction::Short => Side::Sell,
            // Risk never approves a flat decision.
            Direction::Long | Direction::Flat => Side::Buy,
        },
        quantity: order.contracts,
        entry: None,
        target: order.target,
        stop: order.stop,
    }
}

impl Execution for Live {
    fn mode(&self) -> ExecutionMode {
        ExecutionMode::Live
    }

    fn submit(
        &mut self,
        approved: Approved,
        _ctx: &OrderContext,
    ) -> Result<Submitted, ExecutionError> {
        let instrument = approved.order().instrument.clone();
        let client = self
            .routes
            .get(&instrument)
            .ok_or(ExecutionError::NoRoute(instrument))?;
        let BracketIds {
            parent,
            target,
            stop,
        } = client.submit_bracket(bracket(&approved))?;
        Ok(Submitted::Sent {
            parent,
            target,
            stop,
        })
    }

    fn flatten_all(&mut self) -> Result<(), ExecutionError> {
        let mut first = None;
        for (instrument, client) in &self.routes {
            if let Err(e) = client.flatten() {
                tracing::error!(target: "execution", %instrument, error = %e, "flatten failed");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), |e| Err(e.into()))
    }
}
