//! DTC: the protocol Sierra Chart speaks for order routing (product.md §9, `dtc.md`).
//!
//! - [`frame`]: the 16-byte binary encoding handshake, then NUL-terminated JSON frames, with a
//!   decoder for which half a message is a normal state.
//! - [`message`]: typed messages with the header's exact field names, `Type` first, tolerant
//!   reading (unset values, unknown fields and types).
//! - [`client`]: the session of one instrument: logon, heartbeats, accounts, security
//!   definition, re-synchronisation, brackets, cancels, reconnects.
//! - [`orders`]: the order book driven by ORDER_UPDATE and POSITION_UPDATE.
//! - [`ids`]: ClientOrderIDs never reused within a trading day, across restarts.
//! - [`sim`]: `mia dtc-sim`, a DTC server that behaves like Sierra Chart's trade simulation
//!   service (orders, OCO and brackets, fills from a price, fault injection) for tests and demos.
//!
//! JSON is the encoding (`dtc.md` §2.5): no struct padding to get wrong, appended header fields
//! are harmless, and a session can be read with `nc`.

pub mod client;
pub mod frame;
pub mod ids;
pub mod message;
pub mod orders;
pub mod sim;

/// Why a DTC exchange failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DtcError {
    /// The peer broke the protocol (bad handshake, a frame that is not a message, …).
    #[error("DTC protocol error: {0}")]
    Protocol(String),
    /// The connection failed or was closed.
    #[error("DTC connection: {0}")]
    Io(String),
    /// The configuration lacks something a session needs.
    #[error("DTC configuration: {0}")]
    Config(String),
    /// The session is not logged on and re-synchronised, so it sends no order.
    #[error("DTC session not ready: {0}")]
    NotReady(String),
}
