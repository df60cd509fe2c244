//! The Prometheus metrics of product.md §10, in the text exposition format.
//!
//! The families are `prometheus-client` types shared by handle: the engine increments them in
//! place and [`Metrics::render`] encodes the registry for `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::risk::KillState;

/// A chart number.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChartLabel {
    /// Chart number.
    pub chart: String,
}

/// A rule set (`live` or `shadow`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SetLabel {
    /// Set name.
    pub set: String,
}

/// A rule set and a tier.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    /// Set name.
    pub set: String,
    /// Tier.
    pub tier: String,
}

/// A rule set and a hard rule.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VetoLabel {
    /// Set name.
    pub set: String,
    /// Hard rule.
    pub rule: String,
}

/// A rule set and a reload outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabel {
    /// Set name.
    pub set: String,
    /// `swapped` or `failed`.
    pub outcome: String,
}

/// An instrument.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstrumentLabel {
    /// Instrument name.
    pub instrument: String,
}

/// An order status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrderLabel {
    /// Set name.
    pub set: String,
    /// `submitted`, `filled` or `rejected`.
    pub status: String,
}

/// A kill-switch state.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `NORMAL`, `HALT_ENTRIES`, `HALT_TRADING` or `EMERGENCY`.
    pub state: String,
}

/// An alert kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabel {
    /// Alert kind.
    pub kind: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the engine.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `mia_lines_read_total{chart}`.
    pub lines_read: Family<ChartLabel, Counter>,
    /// `mia_lines_rejected_total{chart}`.
    pub lines_rejected: Family<ChartLabel, Counter>,
    /// `mia_ingest_lag_seconds{chart}`: now minus the newest record's own time.
    pub ingest_lag: Family<ChartLabel, FloatGauge>,
    /// `mia_append_to_decision_seconds`: from the poll that read the line completing a bar to
    /// the decision journaled.
    pub append_to_decision: Histogram,
    /// `mia_rule_eval_seconds{set}`.
    pub rule_eval: HistogramFamily<SetLabel>,
    /// `mia_decisions_total{set,tier}`.
    pub decisions: Family<TierLabel, Counter>,
    /// `mia_rule_errors_total{set}`.
    pub rule_errors: Family<SetLabel, Counter>,
    /// `mia_vetoes_total{set,rule}`.
    pub vetoes: Family<VetoLabel, Counter>,
    /// `mia_reloads_total{set,outcome}`.
    pub reloads: Family<ReloadLabel, Counter>,
    /// `mia_dtc_connected{instrument}`: 1 when the session is ready.
    pub dtc_connected: Family<InstrumentLabel, Gauge>,
    /// `mia_orders_total{set,status}`.
    pub orders: Family<OrderLabel, Counter>,
    /// `mia_order_rejections_total`.
    pub rejections: Counter,
    /// `mia_pnl_dollars{set}`: the day's realized plus unrealized P&L.
    pub pnl: Family<SetLabel, FloatGauge>,
    /// `mia_kill_switch_state{state}`: 1 for the current state, 0 for the others.
    pub kill_switch: Family<StateLabel, Gauge>,
    /// `mia_alerts_total{kind}`.
    pub alerts: Family<AlertLabel, Counter>,
}

fn latency_histogram() -> Histogram {
    // 10 µs to about 10 s.
    Histogram::new(exponential_buckets(1e-5, 2.0, 21))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mia");
        let m = Metrics {
            lines_read: Family::default(),
            lines_rejected: Family::default(),
            ingest_lag: Family::default(),
            append_to_decision: latency_histogram(),
            rule_eval: Family::new_with_constructor(latency_histogram),
            decisions: Family::default(),
            rule_errors: Family::default(),
            vetoes: Family::default(),
            reloads: Family::default(),
            dtc_connected: Family::default(),
            orders: Family::default(),
            rejections: Counter::default(),
            pnl: Family::default(),
            kill_switch: Family::default(),
            alerts: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "lines_read",
            "Source lines read, per chart",
            m.lines_read.clone(),
        );
        registry.register(
            "lines_rejected",
            "Source lines rejected as invalid, per chart",
            m.lines_rejected.clone(),
        );
        registry.register(
            "ingest_lag_seconds",
            "Seconds between the newest record's own time and now, per chart",
            m.ingest_lag.clone(),
        );
        registry.register(
            "append_to_decision_seconds",
            "Seconds from the poll that read the line completing a bar to the decision journaled",
            m.append_to_decision.clone(),
        );
        registry.register(
            "rule_eval_seconds",
            "Seconds one evaluation of decide(s) took, per rule set",
            m.rule_eval.clone(),
        );
        registry.register(
            "decisions",
            "Decisions journaled, per rule set and tier",
            m.decisions.clone(),
        );
        registry.register(
            "rule_errors",
            "Evaluations that ended in a rule error, per rule set",
            m.rule_errors.clone(),
        );
        registry.register(
            "vetoes",
            "Decisions vetoed, per rule set and hard rule",
            m.vetoes.clone(),
        );
        registry.register(
            "reloads",
            "Rule set reloads, per rule set and outcome",
            m.reloads.clone(),
        );
        registry.register(
            "dtc_connected",
            "1 when the DTC session of the instrument is logged on and synchronised",
            m.dtc_connected.clone(),
        );
        registry.register(
            "orders",
            "Orders by rule set and status (submitted, filled, rejected)",
            m.orders.clone(),
        );
        registry.register(
            "order_rejections",
            "Orders rejected by a venue",
            m.rejections.clone(),
        );
        registry.register(
            "pnl_dollars",
            "The day's P&L in dollars, realized plus unrealized, per rule set",
            m.pnl.clone(),
        );
        registry.register(
            "kill_switch_state",
            "1 for the kill switch's current state, 0 for the others",
            m.kill_switch.clone(),
        );
        registry.register("alerts", "Alerts raised, per kind", m.alerts.clone());
        Metrics { registry, ..m }
    }

    /// Sets the kill-switch gauge to `state`.
    pub fn set_kill_state(&self, state: KillState) {
        for s in KillState::ALL {
            self.kill_switch
                .get_or_create(&StateLabel {
                    state: s.as_str().to_owned(),
                })
                .set(i64::from(s == state));
        }
    }

    /// The metrics in Prometheus text format (version 0.0.4 compatible; ends with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_labels() {
        let m = Metrics::new();
        m.lines_read
            .get_or_create(&ChartLabel { chart: "3".into() })
            .inc_by(7);
        m.decisions
            .get_or_create(&TierLabel {
                set: "live".into(),
                tier: "GOOD".into(),
            })
            .inc();
        m.set_kill_state(KillState::HaltEntries);
        m.append_to_decision.observe(0.0015);
        let text = m.render();
        assert!(
            text.contains("mia_lines_read_total{chart=\"3\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("mia_decisions_total{set=\"live\",tier=\"GOOD\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mia_kill_switch_state{state=\"HALT_ENTRIES\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mia_kill_switch_state{state=\"NORMAL\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("mia_append_to_decision_seconds_count 1"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }
}
