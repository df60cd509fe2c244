//! Ingest benchmarks (written once the simulator lands; see BENCHMARKS.md).

fn main() {}
