//! Integration tests of mia: one test binary (`cargo test --test it`), one module per area.
//!
//! Fixtures and golden files live in `tests/data/`; `MIA_BLESS=1` rewrites the golden files.

mod backtest;
mod browser;
mod check_rules;
mod cli;
mod crash;
mod dashboard;
mod dtc_client;
mod dtc_sim;
mod golden;
mod ingest;
mod journal;
mod live;
mod monitor;
mod props;
mod props_dtc;
mod quirks;
mod reload;
mod report;
mod risk;
mod rules;
mod shadow;
mod simulated;
mod support;
