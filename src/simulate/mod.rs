//! Simulator of a Sierra Chart session (placeholder, being written).
