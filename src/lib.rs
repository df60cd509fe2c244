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
//!
//! Three Sierra lines through the parser, the snapshot and the features, as replay does:
//!
//! ```
//! use mia::config::Config;
//! use mia::features::{FeatureConfig, FeatureEngine};
//! use mia::ingest::record::{LineContext, parse_line};
//! use mia::model::Level;
//! use mia::snapshot::SnapshotStore;
//!
//! let config = Config::reference();
//! let mut store = SnapshotStore::new(&config);
//! let lines = [
//!     (3, "basedata", r#"{"t":45919.646528,"sym":"ESZ25_FUT_CME","type":"basedata","i":14022,"o":6498.25,"h":6499.5,"l":6497.75,"c":6499.0,"v":1467,"bidvol":655,"askvol":812,"chart":3}"#),
//!     (10, "menthorq", r#"{"t":45919.645833,"sym":"ESZ25_FUT_CME","type":"menthorq_level","level_type":"put_support","price":6497.0,"subgraph":1,"study_id":1,"i":1403,"chart":10}"#),
//!     (8, "vix", r#"{"t":45919.646528,"type":"vix","i":6121,"last":15.42,"chart":8}"#),
//! ];
//! for (chart, kind, line) in lines {
//!     let ctx = LineContext {
//!         chart,
//!         kind: Some(kind),
//!         file_date: None,
//!         tz: config.ingest.chart_time_zone,
//!     };
//!     let record = parse_line(line, &ctx).expect("a valid Sierra line");
//!     store.apply(chart, &record, record.ts);
//! }
//! let es = store.get("ES").unwrap();
//! assert_eq!(es.last_price, Some(6499.0));
//! assert_eq!(es.levels[&Level::PutSupport], 6497.0);
//!
//! let features = FeatureEngine::new(FeatureConfig::default()).compute(es);
//! // Put support is 8 ticks below the last price.
//! assert_eq!(features.levels.support.below, Some(-8.0));
//! assert_eq!(features.vix_policy.map(|p| p.as_str()), Some("normal"));
//! ```

pub mod clock;
pub mod config;
pub mod dtc;
pub mod engine;
pub mod execution;
pub mod features;
pub mod ingest;
pub mod journal;
pub mod model;
pub mod monitor;
pub mod paper;
pub mod perf;
pub mod replay;
pub mod report;
pub mod risk;
pub mod rules;
pub mod runner;
pub mod shadow;
pub mod simulate;
pub mod snapshot;
