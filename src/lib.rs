//! mia: Sierra Chart chart dumps in, scored trade setups and risk-checked orders out.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! ingest (tail chart_<N>_*.jsonl) ─> unified journal
//!    └─> snapshot (typed MarketSnapshot per instrument) ─> features ─> rules ─> risk ─> execution
//! ```
//!
//! See `ARCHITECTURE.md` for the code map and the invariants.

pub mod clock;
pub mod config;
pub mod features;
pub mod ingest;
pub mod journal;
pub mod model;
pub mod replay;
pub mod rules;
pub mod simulate;
pub mod snapshot;
