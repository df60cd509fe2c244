//! The monitor's HTTP server (being built).
