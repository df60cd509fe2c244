//! Native features computed from the market snapshot (placeholder, being written).
