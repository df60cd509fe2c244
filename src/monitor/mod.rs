//! Monitoring of a running engine (product.md §10): Prometheus metrics, the `/status` document,
//! the dashboard, the kill-switch buttons, and alerts.
//!
//! The engine owns the state; the monitor only reads what the engine published ([`Published`])
//! and forwards kill-switch requests to the engine over a channel ([`Control`]), so the engine
//! stays the one writer of the kill switch and no request ever blocks a decision.

pub mod alerts;
pub mod metrics;
pub mod server;
pub mod status;

pub use metrics::Metrics;
pub use status::Status;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::risk::KillState;

/// What the engine publishes for the server: the latest [`Status`] and the metrics.
#[derive(Debug)]
pub struct Published {
    /// The latest status, replaced whole after each engine step.
    pub status: ArcSwap<Status>,
    /// The metrics, updated in place by the engine.
    pub metrics: Metrics,
}

impl Published {
    /// An empty status and fresh metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Published {
            status: ArcSwap::from_pointee(Status::default()),
            metrics: Metrics::new(),
        })
    }
}

/// A kill-switch request from the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlAction {
    /// Engage at this level with this reason.
    Engage {
        /// HALT_ENTRIES, HALT_TRADING or EMERGENCY.
        level: KillState,
        /// Why, as typed by the person.
        reason: String,
    },
    /// Return to NORMAL.
    Reset {
        /// Why.
        reason: String,
    },
}

/// A request and where its answer goes: the kill-switch state after it, or why it was refused.
#[derive(Debug)]
pub struct Control {
    /// What to do.
    pub action: ControlAction,
    /// The engine's answer.
    pub reply: std::sync::mpsc::Sender<Result<status::KillView, String>>,
}
