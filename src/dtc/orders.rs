//! The order book of a DTC session, driven by ORDER_UPDATE and POSITION_UPDATE.
//!
//! Orders are keyed by ClientOrderID (ours, always known) and found by ServerOrderID when an
//! update lacks it. The status is the server's `OrderStatus`, never inferred from the update
//! reason: a rejected cancel (reason 9 or 10) leaves the order with the status the server
//! states, because the order is still working (`dtc.md` §1.4 and §4, "reject correlation").

use std::collections::BTreeMap;

use serde::Serialize;

use super::message::{OrderUpdate, PositionUpdate, order_status, update_reason};

/// What mia knows of one order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderState {
    /// Our id.
    pub client_order_id: String,
    /// The server's id (empty until accepted).
    pub server_order_id: String,
    /// `OrderStatusEnum` as the server last stated it (`ORDER_SENT` until it answers).
    pub status: i32,
    /// `BuySellEnum`.
    pub buy_sell: i32,
    /// `OrderTypeEnum`.
    pub order_type: i32,
    /// Limit or stop price.
    pub price1: Option<f64>,
    /// Ordered quantity.
    pub quantity: f64,
    /// Filled quantity.
    pub filled: f64,
    /// Average fill price.
    pub average_fill_price: Option<f64>,
    /// The server's last text (the reason of a reject).
    pub info_text: String,
}

impl OrderState {
    /// The order can still fill (working, pending, or a bracket child waiting for its parent).
    pub fn is_working(&self) -> bool {
        matches!(
            self.status,
            order_status::ORDER_SENT
                | order_status::PENDING_OPEN
                | order_status::PENDING_CHILD
                | order_status::OPEN
                | order_status::PENDING_CANCEL_REPLACE
                | order_status::PENDING_CANCEL
                | order_status::PARTIALLY_FILLED
        )
    }
}

/// What an update did to an order, when it is worth reporting.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum OrderEvent {
    /// The order was rejected; its text says why.
    Rejected {
        /// Our id.
        client_order_id: String,
        /// The server's reason.
        info_text: String,
    },
    /// A fill.
    Filled {
        /// Our id.
        client_order_id: String,
        /// Filled so far.
        filled: f64,
        /// Price of this fill.
        price: Option<f64>,
    },
    /// A cancel or cancel-replace was refused; the order keeps `status`.
    CancelRejected {
        /// Our id.
        client_order_id: String,
        /// Its status, as the server states it.
        status: i32,
        /// Why.
        info_text: String,
    },
}

/// Orders and positions of one session.
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    orders: BTreeMap<String, OrderState>,
    /// Signed position by symbol.
    positions: BTreeMap<String, (f64, Option<f64>)>,
}

impl OrderBook {
    /// Records an order we are about to send.
    pub fn sent(&mut self, order: OrderState) {
        self.orders.insert(order.client_order_id.clone(), order);
    }

    /// Applies an ORDER_UPDATE; returns what it did worth reporting.
    pub fn apply(&mut self, u: &OrderUpdate) -> Option<OrderEvent> {
        if u.no_orders {
            return None;
        }
        let key = if !u.client_order_id.is_empty() {
            Some(u.client_order_id.clone())
        } else {
            self.orders
                .values()
                .find(|o| !u.server_order_id.is_empty() && o.server_order_id == u.server_order_id)
                .map(|o| o.client_order_id.clone())
        };
        let key = key?;
        let order = self
            .orders
            .entry(key.clone())
            .or_insert_with(|| OrderState {
                client_order_id: key.clone(),
                server_order_id: String::new(),
                status: order_status::UNSPECIFIED,
                buy_sell: u.buy_sell,
                order_type: u.order_type,
                price1: u.price1,
                quantity: u.order_quantity.unwrap_or(0.0),
                filled: 0.0,
                average_fill_price: None,
                info_text: String::new(),
            });
        if !u.server_order_id.is_empty() {
            order.server_order_id.clone_from(&u.server_order_id);
        }
        if u.order_status != order_status::UNSPECIFIED {
            order.status = u.order_status;
        }
        if u.price1.is_some() {
            order.price1 = u.price1;
        }
        if let Some(q) = u.order_quantity {
            order.quantity = q;
        }
        if let Some(f) = u.filled_quantity {
            order.filled = f;
        }
        if u.average_fill_price.is_some() {
            order.average_fill_price = u.average_fill_price;
        }
        if !u.info_text.is_empty() {
            order.info_text.clone_from(&u.info_text);
        }
        Some(match u.order_update_reason {
            update_reason::NEW_ORDER_REJECTED => OrderEvent::Rejected {
                client_order_id: key,
                info_text: u.info_text.clone(),
            },
            update_reason::ORDER_FILLED | update_reason::ORDER_FILLED_PARTIALLY => {
                OrderEvent::Filled {
                    client_order_id: key,
                    filled: order.filled,
                    price: u.last_fill_price.or(u.average_fill_price),
                }
            }
            update_reason::ORDER_CANCEL_REJECTED | update_reason::ORDER_CANCEL_REPLACE_REJECTED => {
                OrderEvent::CancelRejected {
                    client_order_id: key,
                    status: order.status,
                    info_text: u.info_text.clone(),
                }
            }
            _ => return None,
        })
    }

    /// Applies a POSITION_UPDATE.
    pub fn apply_position(&mut self, p: &PositionUpdate) {
        if p.no_positions || p.symbol.is_empty() {
            return;
        }
        self.positions.insert(
            p.symbol.clone(),
            (p.quantity.unwrap_or(0.0), p.average_price),
        );
    }

    /// Forgets positions before a re-synchronisation (the server restates them).
    pub fn clear_positions(&mut self) {
        self.positions.clear();
    }

    /// An order by our id.
    pub fn get(&self, client_order_id: &str) -> Option<&OrderState> {
        self.orders.get(client_order_id)
    }

    /// Every order, by id.
    pub fn orders(&self) -> impl Iterator<Item = &OrderState> {
        self.orders.values()
    }

    /// Signed position of a symbol (0 when flat or unknown).
    pub fn position(&self, symbol: &str) -> f64 {
        self.positions.get(symbol).map_or(0.0, |p| p.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, status: i32, reason: i32) -> OrderUpdate {
        OrderUpdate {
            client_order_id: id.into(),
            server_order_id: format!("S{id}"),
            order_status: status,
            order_update_reason: reason,
            ..Default::default()
        }
    }

    #[test]
    fn a_cancel_reject_keeps_the_real_status() {
        let mut book = OrderBook::default();
        book.apply(&update(
            "a",
            order_status::OPEN,
            update_reason::NEW_ORDER_ACCEPTED,
        ));
        let change = book.apply(&update(
            "a",
            order_status::OPEN,
            update_reason::ORDER_CANCEL_REJECTED,
        ));
        assert!(matches!(
            change,
            Some(OrderEvent::CancelRejected {
                status: order_status::OPEN,
                ..
            })
        ));
        assert!(book.get("a").unwrap().is_working());
        // An update without ClientOrderID is matched by ServerOrderID.
        let mut filled = update("", order_status::FILLED, update_reason::ORDER_FILLED);
        filled.server_order_id = "Sa".into();
        filled.filled_quantity = Some(1.0);
        book.apply(&filled);
        let a = book.get("a").unwrap();
        assert_eq!(
            (a.status, a.filled, a.is_working()),
            (order_status::FILLED, 1.0, false)
        );
    }

    #[test]
    fn a_reject_carries_its_text() {
        let mut book = OrderBook::default();
        let mut u = update(
            "b",
            order_status::REJECTED,
            update_reason::NEW_ORDER_REJECTED,
        );
        u.info_text = "Sim: insufficient margin".into();
        assert_eq!(
            book.apply(&u),
            Some(OrderEvent::Rejected {
                client_order_id: "b".into(),
                info_text: "Sim: insufficient margin".into()
            })
        );
    }
}
