//! The simulated exchange behind `mia dtc-sim`: orders, OCO and bracket links, fills from one
//! price, positions and the fills of the day.
//!
//! It does no I/O and reads no clock: the server hands it the time of each event and sends the
//! [`Push`] values it returns to every logged-on connection. Keeping it pure is what lets the
//! order semantics be unit-tested without sockets.
//!
//! Fill rules (the sim has no spread, no queue and no slippage):
//! - market orders fill at the current price;
//! - a buy limit fills when price ≤ limit, a sell limit when price ≥ limit: an order that is
//!   marketable when it starts working fills at the current price, a resting one that the price
//!   reaches fills at its limit;
//! - a buy stop triggers when price ≥ stop, a sell stop when price ≤ stop, and fills at the price;
//! - a stop-limit becomes a limit at `Price2` when its stop triggers;
//! - fills are always complete (no partial fills).

use std::collections::{BTreeMap, HashSet};

use crate::dtc::message::{
    CancelOrder, CancelReplaceOrder, CurrentPositionsRequest, HistoricalOrderFillResponse,
    HistoricalOrderFillsRequest, OpenOrdersRequest, OrderUpdate, PositionUpdate,
    SecurityDefinitionForSymbolRequest, SecurityDefinitionResponse, SubmitFlattenPositionOrder,
    SubmitNewOcoOrder, SubmitNewSingleOrder, buy_sell, order_status, order_type, update_reason,
};
use crate::model::{ContractSpec, symbol_root};

/// The one trade account of the sim, as Sierra's simulated trading service names it.
pub const SIM_ACCOUNT: &str = "Sim1";

/// Milliseconds in a day, for `NumberOfDays` of a fills request.
const MS_PER_DAY: i64 = 86_400_000;

/// An order as the sim holds it (what [`super::SimHandle::orders`] returns).
#[derive(Debug, Clone, PartialEq)]
pub struct SimOrder {
    /// The sim's id (a decimal counter, unique for the server run).
    pub server_order_id: String,
    /// The client's id.
    pub client_order_id: String,
    /// Account.
    pub trade_account: String,
    /// Symbol, as sent.
    pub symbol: String,
    /// Exchange, as sent.
    pub exchange: String,
    /// `OrderTypeEnum` (a triggered stop-limit keeps 4).
    pub order_type: i32,
    /// `BuySellEnum`.
    pub buy_sell: i32,
    /// Limit or stop price.
    pub price1: Option<f64>,
    /// Limit price of a stop-limit.
    pub price2: Option<f64>,
    /// Ordered contracts.
    pub quantity: f64,
    /// Filled contracts.
    pub filled_quantity: f64,
    /// Average fill price.
    pub average_fill_price: Option<f64>,
    /// Time of the fill, milliseconds since the Unix epoch (0 before a fill).
    pub last_fill_date_time_ms: i64,
    /// `OrderStatusEnum`.
    pub status: i32,
    /// The bracket parent's server id (empty when the order has no parent).
    pub parent_server_order_id: String,
    /// The other leg's server id (empty when the order is not an OCO leg).
    pub oco_linked_server_order_id: String,
    /// A stop-limit whose stop price was reached: it now works as a limit at `price2`.
    pub is_triggered: bool,
}

impl SimOrder {
    /// Whether the order can still fill or be canceled.
    pub fn is_working(&self) -> bool {
        matches!(
            self.status,
            order_status::OPEN | order_status::PENDING_CHILD | order_status::PARTIALLY_FILLED
        )
    }

    fn signed(&self, quantity: f64) -> f64 {
        if self.buy_sell == buy_sell::BUY {
            quantity
        } else {
            -quantity
        }
    }
}

/// A position per (account, symbol).
#[derive(Debug, Clone, PartialEq)]
pub struct SimPosition {
    /// Account.
    pub trade_account: String,
    /// Symbol.
    pub symbol: String,
    /// Exchange of the last fill.
    pub exchange: String,
    /// Signed contracts: positive long, negative short.
    pub quantity: f64,
    /// Average entry price (0 when flat).
    pub average_price: f64,
}

/// One fill.
#[derive(Debug, Clone, PartialEq)]
pub struct SimFill {
    /// The filled order's server id.
    pub server_order_id: String,
    /// The filled order's client id.
    pub client_order_id: String,
    /// Account.
    pub trade_account: String,
    /// Symbol.
    pub symbol: String,
    /// `BuySellEnum`.
    pub buy_sell: i32,
    /// Fill price.
    pub price: f64,
    /// Contracts.
    pub quantity: f64,
    /// Time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Execution id, unique for the server run.
    pub execution_id: String,
}

/// An unsolicited message for every logged-on connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Push {
    /// ORDER_UPDATE.
    Order(Box<OrderUpdate>),
    /// POSITION_UPDATE.
    Position(PositionUpdate),
}

/// The fields of a new order, from a single order or one OCO leg.
#[derive(Debug, Clone)]
struct NewOrder {
    symbol: String,
    exchange: String,
    trade_account: String,
    client_order_id: String,
    order_type: i32,
    buy_sell: i32,
    price1: Option<f64>,
    price2: Option<f64>,
    quantity: f64,
}

impl From<&SubmitNewSingleOrder> for NewOrder {
    fn from(o: &SubmitNewSingleOrder) -> Self {
        NewOrder {
            symbol: o.symbol.clone(),
            exchange: o.exchange.clone(),
            trade_account: o.trade_account.clone(),
            client_order_id: o.client_order_id.clone(),
            order_type: o.order_type,
            buy_sell: o.buy_sell,
            price1: o.price1,
            price2: o.price2,
            quantity: o.quantity,
        }
    }
}

/// The two legs of an OCO. A bracket child with no quantity takes the parent's.
fn oco_legs(o: &SubmitNewOcoOrder, parent_quantity: Option<f64>) -> [NewOrder; 2] {
    let leg = |id: &str, kind: i32, side: i32, price: Option<f64>, quantity: f64| NewOrder {
        symbol: o.symbol.clone(),
        exchange: o.exchange.clone(),
        trade_account: o.trade_account.clone(),
        client_order_id: id.to_owned(),
        order_type: kind,
        buy_sell: side,
        price1: price,
        price2: None,
        quantity: match parent_quantity {
            Some(q) if quantity == 0.0 => q,
            _ => quantity,
        },
    };
    [
        leg(
            &o.client_order_id_1,
            o.order_type_1,
            o.buy_sell_1,
            o.price1_1,
            o.quantity_1,
        ),
        leg(
            &o.client_order_id_2,
            o.order_type_2,
            o.buy_sell_2,
            o.price1_2,
            o.quantity_2,
        ),
    ]
}

/// The order book and accounts of one server run.
#[derive(Debug)]
pub(crate) struct Exchange {
    price: f64,
    /// By numeric server id, so iteration is in arrival order.
    orders: BTreeMap<u64, SimOrder>,
    /// Orders whose fill price is the current price on their next evaluation: they just started
    /// working, so a marketable limit takes the market rather than its limit.
    fresh: HashSet<u64>,
    used_client_ids: HashSet<String>,
    received_client_ids: Vec<String>,
    positions: BTreeMap<(String, String), SimPosition>,
    fills: Vec<SimFill>,
    next_order_id: u64,
    next_execution_id: u64,
    reject_next: bool,
}

impl Exchange {
    /// An empty book at `price`.
    pub(crate) fn new(price: f64) -> Self {
        Exchange {
            price,
            orders: BTreeMap::new(),
            fresh: HashSet::new(),
            used_client_ids: HashSet::new(),
            received_client_ids: Vec::new(),
            positions: BTreeMap::new(),
            fills: Vec::new(),
            next_order_id: 1,
            next_execution_id: 1,
            reject_next: false,
        }
    }

    pub(crate) fn price(&self) -> f64 {
        self.price
    }

    pub(crate) fn orders(&self) -> Vec<SimOrder> {
        self.orders.values().cloned().collect()
    }

    pub(crate) fn received_client_ids(&self) -> Vec<String> {
        self.received_client_ids.clone()
    }

    pub(crate) fn positions(&self) -> Vec<SimPosition> {
        self.positions.values().cloned().collect()
    }

    pub(crate) fn fills(&self) -> Vec<SimFill> {
        self.fills.clone()
    }

    /// The next new order (single, OCO, bracket or flatten) is rejected.
    pub(crate) fn reject_next_order(&mut self) {
        self.reject_next = true;
    }

    /// Ends a pending reject-next-order.
    pub(crate) fn clear_reject_next(&mut self) {
        self.reject_next = false;
    }

    /// Moves the price and fills what it reaches.
    pub(crate) fn set_price(&mut self, price: f64, now_ms: i64) -> Vec<Push> {
        let mut out = Vec::new();
        if price.is_finite() {
            self.price = price;
            self.match_orders(now_ms, &mut out);
        }
        out
    }

    // ---- Order entry ------------------------------------------------------------------------

    /// SUBMIT_NEW_SINGLE_ORDER without `IsParentOrder`.
    pub(crate) fn submit_single(&mut self, o: &SubmitNewSingleOrder, now_ms: i64) -> Vec<Push> {
        let mut out = Vec::new();
        let order = NewOrder::from(o);
        self.received_client_ids.push(order.client_order_id.clone());
        if let Err(why) = self.admit(&[&order]) {
            self.reject(&order, &why, &mut out);
            return out;
        }
        let id = self.accept(order, order_status::OPEN, &mut out);
        self.fresh.insert(id);
        self.match_orders(now_ms, &mut out);
        out
    }

    /// A bracket parent that was not followed by its OCO.
    pub(crate) fn reject_lonely_parent(&mut self, o: &SubmitNewSingleOrder) -> Vec<Push> {
        let mut out = Vec::new();
        let order = NewOrder::from(o);
        self.received_client_ids.push(order.client_order_id.clone());
        self.reject(
            &order,
            "bracket parent (IsParentOrder=1) was not followed immediately by a \
             SUBMIT_NEW_OCO_ORDER naming it in ParentTriggerClientOrderID",
            &mut out,
        );
        out
    }

    /// SUBMIT_NEW_OCO_ORDER: a plain OCO (`parent` None) or the children of a bracket.
    pub(crate) fn submit_oco(
        &mut self,
        o: &SubmitNewOcoOrder,
        parent: Option<&SubmitNewSingleOrder>,
        now_ms: i64,
    ) -> Vec<Push> {
        let mut out = Vec::new();
        let parent = parent.map(NewOrder::from);
        let legs = oco_legs(o, parent.as_ref().map(|p| p.quantity));
        let all: Vec<&NewOrder> = parent.iter().chain(legs.iter()).collect();
        for order in &all {
            self.received_client_ids.push(order.client_order_id.clone());
        }
        let trigger = &o.parent_trigger_client_order_id;
        let check = match &parent {
            None if !trigger.is_empty() => Err(format!(
                "ParentTriggerClientOrderID `{trigger}` does not name the bracket parent sent \
                 just before this OCO"
            )),
            _ => self.admit(&all),
        };
        if let Err(why) = check {
            // "If any is rejected, all are": one ORDER_UPDATE per order of the group.
            for order in &all {
                self.reject(order, &why, &mut out);
            }
            return out;
        }
        let parent_id = parent.map(|p| self.accept(p, order_status::OPEN, &mut out));
        let child_status = match parent_id {
            Some(_) => order_status::PENDING_CHILD,
            None => order_status::OPEN,
        };
        let [first, second] = legs;
        let first = self.create(first, child_status, parent_id);
        let second = self.create(second, child_status, parent_id);
        for (id, other) in [(first, second), (second, first)] {
            if let Some(order) = self.orders.get_mut(&id) {
                order.oco_linked_server_order_id = other.to_string();
            }
        }
        for id in [first, second] {
            self.push_order(id, update_reason::NEW_ORDER_ACCEPTED, "", &mut out);
        }
        self.fresh
            .extend(parent_id.into_iter().chain([first, second]));
        self.match_orders(now_ms, &mut out);
        out
    }

    /// SUBMIT_FLATTEN_POSITION_ORDER: a market order for the opposite of the position.
    pub(crate) fn flatten(&mut self, f: &SubmitFlattenPositionOrder, now_ms: i64) -> Vec<Push> {
        let account = if f.trade_account.is_empty() {
            SIM_ACCOUNT
        } else {
            &f.trade_account
        };
        let position = self
            .positions
            .get(&(account.to_owned(), f.symbol.clone()))
            .map_or(0.0, |p| p.quantity);
        // The flattening order is a new order; a client that gives it no id gets one, so that
        // it still shows up in the order list.
        let client_order_id = if f.client_order_id.is_empty() {
            format!("sim-flatten-{}", self.next_order_id)
        } else {
            f.client_order_id.clone()
        };
        let order = SubmitNewSingleOrder {
            symbol: f.symbol.clone(),
            exchange: f.exchange.clone(),
            trade_account: account.to_owned(),
            client_order_id,
            order_type: order_type::MARKET,
            buy_sell: if position > 0.0 {
                buy_sell::SELL
            } else {
                buy_sell::BUY
            },
            quantity: position.abs(),
            is_automated_order: f.is_automated_order,
            ..SubmitNewSingleOrder::default()
        };
        if position == 0.0 {
            let mut out = Vec::new();
            let new = NewOrder::from(&order);
            self.received_client_ids.push(new.client_order_id.clone());
            self.reject(
                &new,
                "flatten: there is no position in this symbol",
                &mut out,
            );
            return out;
        }
        self.submit_single(&order, now_ms)
    }

    /// CANCEL_ORDER. Canceling an OCO leg cancels its sibling; canceling a bracket parent
    /// cancels its children.
    pub(crate) fn cancel(&mut self, c: &CancelOrder) -> Vec<Push> {
        let mut out = Vec::new();
        let Some(id) = self.find(&c.server_order_id, &c.client_order_id) else {
            out.push(unknown_order_update(
                &c.server_order_id,
                &c.client_order_id,
                &c.trade_account,
                update_reason::ORDER_CANCEL_REJECTED,
            ));
            return out;
        };
        if let Some(why) = self.not_working(id) {
            self.push_order(id, update_reason::ORDER_CANCEL_REJECTED, &why, &mut out);
            return out;
        }
        self.cancel_with_links(id, &mut out);
        out
    }

    /// CANCEL_REPLACE_ORDER: new prices (when their `IsSet` flag says so) and a new total
    /// quantity (0 keeps it). The server id does not change.
    pub(crate) fn cancel_replace(
        &mut self,
        c: &CancelReplaceOrder,
        price1_is_set: bool,
        price2_is_set: bool,
        now_ms: i64,
    ) -> Vec<Push> {
        let mut out = Vec::new();
        let reason = update_reason::ORDER_CANCEL_REPLACE_REJECTED;
        let Some(id) = self.find(&c.server_order_id, &c.client_order_id) else {
            out.push(unknown_order_update(
                &c.server_order_id,
                &c.client_order_id,
                &c.trade_account,
                reason,
            ));
            return out;
        };
        if let Some(why) = self.not_working(id) {
            self.push_order(id, reason, &why, &mut out);
            return out;
        }
        let Some(current) = self.orders.get(&id).cloned() else {
            return out;
        };
        let mut changed = NewOrder {
            symbol: current.symbol.clone(),
            exchange: current.exchange.clone(),
            trade_account: current.trade_account.clone(),
            client_order_id: current.client_order_id.clone(),
            order_type: current.order_type,
            buy_sell: current.buy_sell,
            price1: current.price1,
            price2: current.price2,
            quantity: current.quantity,
        };
        if price1_is_set && c.price1.is_some() {
            changed.price1 = c.price1;
        }
        if price2_is_set && c.price2.is_some() {
            changed.price2 = c.price2;
        }
        if c.quantity > 0.0 {
            changed.quantity = c.quantity;
        }
        if let Err(why) = validate_fields(&changed) {
            self.push_order(id, reason, &why, &mut out);
            return out;
        }
        if let Some(order) = self.orders.get_mut(&id) {
            order.price1 = changed.price1;
            order.price2 = changed.price2;
            order.quantity = changed.quantity;
        }
        self.push_order(
            id,
            update_reason::ORDER_CANCEL_REPLACE_COMPLETE,
            "",
            &mut out,
        );
        self.fresh.insert(id);
        self.match_orders(now_ms, &mut out);
        out
    }

    // ---- Requests ---------------------------------------------------------------------------

    /// OPEN_ORDERS_REQUEST: the working orders, or one update with `NoOrders`.
    pub(crate) fn open_orders(&self, r: &OpenOrdersRequest) -> Vec<OrderUpdate> {
        let working: Vec<&SimOrder> = self
            .orders
            .values()
            .filter(|o| o.is_working() && account_matches(&r.trade_account, &o.trade_account))
            .filter(|o| r.server_order_id.is_empty() || o.server_order_id == r.server_order_id)
            .collect();
        if working.is_empty() {
            return vec![OrderUpdate {
                request_id: r.request_id,
                total_num_messages: 1,
                message_number: 1,
                order_update_reason: update_reason::OPEN_ORDERS_REQUEST_RESPONSE,
                trade_account: r.trade_account.clone(),
                no_orders: true,
                ..OrderUpdate::default()
            }];
        }
        let total = count(working.len());
        working
            .into_iter()
            .zip(1..)
            .map(|(o, n)| OrderUpdate {
                request_id: r.request_id,
                total_num_messages: total,
                message_number: n,
                ..order_update(o, update_reason::OPEN_ORDERS_REQUEST_RESPONSE, "")
            })
            .collect()
    }

    /// CURRENT_POSITIONS_REQUEST: the open positions, or one update with `NoPositions`.
    pub(crate) fn current_positions(&self, r: &CurrentPositionsRequest) -> Vec<PositionUpdate> {
        let open: Vec<&SimPosition> = self
            .positions
            .values()
            .filter(|p| p.quantity != 0.0 && account_matches(&r.trade_account, &p.trade_account))
            .collect();
        if open.is_empty() {
            return vec![PositionUpdate {
                request_id: r.request_id,
                total_number_messages: 1,
                message_number: 1,
                trade_account: r.trade_account.clone(),
                no_positions: true,
                ..PositionUpdate::default()
            }];
        }
        let total = count(open.len());
        open.into_iter()
            .zip(1..)
            .map(|(p, n)| PositionUpdate {
                request_id: r.request_id,
                total_number_messages: total,
                message_number: n,
                unsolicited: false,
                ..position_update(p)
            })
            .collect()
    }

    /// HISTORICAL_ORDER_FILLS_REQUEST: the fills in the range, or one response with
    /// `NoOrderFills`.
    ///
    /// # Errors
    ///
    /// The reject text when the request has neither `NumberOfDays` nor `StartDateTime`.
    pub(crate) fn historical_fills(
        &self,
        r: &HistoricalOrderFillsRequest,
        now_ms: i64,
    ) -> Result<Vec<HistoricalOrderFillResponse>, String> {
        let since_ms = match (r.number_of_days, r.start_date_time) {
            (days, _) if days > 0 => now_ms - i64::from(days) * MS_PER_DAY,
            (_, start) if start > 0 => start * 1000,
            _ => {
                return Err("Must have either NumberOfDays or StartDateTime non-zero".to_owned());
            }
        };
        let fills: Vec<&SimFill> = self
            .fills
            .iter()
            .filter(|f| {
                f.time_ms >= since_ms && account_matches(&r.trade_account, &f.trade_account)
            })
            .collect();
        if fills.is_empty() {
            return Ok(vec![HistoricalOrderFillResponse {
                request_id: r.request_id,
                total_number_messages: 1,
                message_number: 1,
                trade_account: r.trade_account.clone(),
                no_order_fills: true,
                ..HistoricalOrderFillResponse::default()
            }]);
        }
        let total = count(fills.len());
        Ok(fills
            .into_iter()
            .zip(1..)
            .map(|(f, n)| HistoricalOrderFillResponse {
                request_id: r.request_id,
                total_number_messages: total,
                message_number: n,
                symbol: f.symbol.clone(),
                server_order_id: f.server_order_id.clone(),
                buy_sell: f.buy_sell,
                price: Some(f.price),
                date_time: f.time_ms / 1000,
                quantity: Some(f.quantity),
                unique_execution_id: f.execution_id.clone(),
                trade_account: f.trade_account.clone(),
                no_order_fills: false,
            })
            .collect())
    }

    // ---- Internals --------------------------------------------------------------------------

    /// Checks new orders (one, an OCO's two legs, or a bracket's three) before any is created.
    fn admit(&mut self, orders: &[&NewOrder]) -> Result<(), String> {
        if std::mem::take(&mut self.reject_next) {
            return Err("rejected by the sim's reject-next-order fault".to_owned());
        }
        let mut in_group = HashSet::new();
        for order in orders {
            let id = &order.client_order_id;
            if id.is_empty() {
                return Err("ClientOrderID is empty".to_owned());
            }
            if self.used_client_ids.contains(id) || !in_group.insert(id.as_str()) {
                return Err(format!(
                    "duplicate ClientOrderID `{id}`: already used in this trading session"
                ));
            }
            validate_fields(order)?;
        }
        Ok(())
    }

    fn reject(&mut self, order: &NewOrder, why: &str, out: &mut Vec<Push>) {
        tracing::info!(client_order_id = %order.client_order_id, why, "order rejected");
        // Any id the server has seen counts as used, so a client that retries a rejected id is
        // caught the way Sierra would catch it.
        self.used_client_ids.insert(order.client_order_id.clone());
        out.push(Push::Order(Box::new(OrderUpdate {
            total_num_messages: 1,
            message_number: 1,
            symbol: order.symbol.clone(),
            exchange: order.exchange.clone(),
            client_order_id: order.client_order_id.clone(),
            order_status: order_status::REJECTED,
            order_update_reason: update_reason::NEW_ORDER_REJECTED,
            order_type: order.order_type,
            buy_sell: order.buy_sell,
            price1: order.price1,
            price2: order.price2,
            order_quantity: Some(order.quantity),
            trade_account: order.trade_account.clone(),
            info_text: why.to_owned(),
            ..OrderUpdate::default()
        })));
    }

    /// Creates an order and sends its NEW_ORDER_ACCEPTED update.
    fn accept(&mut self, order: NewOrder, status: i32, out: &mut Vec<Push>) -> u64 {
        let id = self.create(order, status, None);
        self.push_order(id, update_reason::NEW_ORDER_ACCEPTED, "", out);
        id
    }

    fn create(&mut self, order: NewOrder, status: i32, parent: Option<u64>) -> u64 {
        let id = self.next_order_id;
        self.next_order_id += 1;
        self.used_client_ids.insert(order.client_order_id.clone());
        self.orders.insert(
            id,
            SimOrder {
                server_order_id: id.to_string(),
                client_order_id: order.client_order_id,
                trade_account: order.trade_account,
                symbol: order.symbol,
                exchange: order.exchange,
                order_type: order.order_type,
                buy_sell: order.buy_sell,
                price1: order.price1,
                price2: order.price2,
                quantity: order.quantity,
                filled_quantity: 0.0,
                average_fill_price: None,
                last_fill_date_time_ms: 0,
                status,
                parent_server_order_id: parent.map(|p| p.to_string()).unwrap_or_default(),
                oco_linked_server_order_id: String::new(),
                is_triggered: false,
            },
        );
        id
    }

    fn push_order(&self, id: u64, reason: i32, info: &str, out: &mut Vec<Push>) {
        if let Some(order) = self.orders.get(&id) {
            out.push(Push::Order(Box::new(order_update(order, reason, info))));
        }
    }

    /// By server id, else by client id (the latest order that has it).
    fn find(&self, server_order_id: &str, client_order_id: &str) -> Option<u64> {
        if let Ok(id) = server_order_id.parse::<u64>()
            && self.orders.contains_key(&id)
        {
            return Some(id);
        }
        if !server_order_id.is_empty() || client_order_id.is_empty() {
            return None;
        }
        self.orders
            .iter()
            .rev()
            .find(|(_, o)| o.client_order_id == client_order_id)
            .map(|(id, _)| *id)
    }

    /// Why an order can no longer be canceled or changed, if it cannot.
    fn not_working(&self, id: u64) -> Option<String> {
        let order = self.orders.get(&id)?;
        let state = match order.status {
            order_status::FILLED => "filled",
            order_status::CANCELED => "canceled",
            order_status::REJECTED => "rejected",
            _ => return None,
        };
        Some(format!(
            "order {} is already {state}",
            order.server_order_id
        ))
    }

    fn cancel_with_links(&mut self, id: u64, out: &mut Vec<Push>) {
        let mut to_cancel = vec![id];
        let mut idx = 0;
        while let Some(&next) = to_cancel.get(idx) {
            idx += 1;
            let Some(order) = self.orders.get(&next) else {
                continue;
            };
            let linked = order.oco_linked_server_order_id.parse::<u64>().ok();
            let children = self
                .orders
                .iter()
                .filter(|(_, o)| o.parent_server_order_id == order.server_order_id)
                .map(|(id, _)| *id);
            for other in linked.into_iter().chain(children).collect::<Vec<_>>() {
                if !to_cancel.contains(&other) {
                    to_cancel.push(other);
                }
            }
        }
        for id in to_cancel {
            let Some(order) = self.orders.get_mut(&id) else {
                continue;
            };
            if order.is_working() {
                order.status = order_status::CANCELED;
                self.fresh.remove(&id);
                self.push_order(id, update_reason::ORDER_CANCELED, "", out);
            }
        }
    }

    /// Fills every working order the price reaches, then what those fills make work (bracket
    /// children), until nothing more fills.
    fn match_orders(&mut self, now_ms: i64, out: &mut Vec<Push>) {
        loop {
            let fillable: Vec<(u64, f64)> = self
                .orders
                .iter_mut()
                .filter(|(_, o)| o.status == order_status::OPEN)
                .filter_map(|(id, o)| {
                    let fresh = self.fresh.contains(id);
                    fill_price(o, self.price, fresh).map(|p| (*id, p))
                })
                .collect();
            let Some(&(id, price)) = fillable.first() else {
                // What did not fill now rests: from here on it fills at its own price.
                self.fresh.clear();
                return;
            };
            self.fresh.remove(&id);
            // One fill at a time: it may cancel a sibling or activate children that were in
            // the list, so the list is recomputed after each.
            self.fill(id, price, now_ms, out);
        }
    }

    fn fill(&mut self, id: u64, price: f64, now_ms: i64, out: &mut Vec<Push>) {
        let Some(order) = self.orders.get_mut(&id) else {
            return;
        };
        order.status = order_status::FILLED;
        order.filled_quantity = order.quantity;
        order.average_fill_price = Some(price);
        order.last_fill_date_time_ms = now_ms;
        let order = order.clone();
        let execution_id = format!("E{}", self.next_execution_id);
        self.next_execution_id += 1;
        self.fills.push(SimFill {
            server_order_id: order.server_order_id.clone(),
            client_order_id: order.client_order_id.clone(),
            trade_account: order.trade_account.clone(),
            symbol: order.symbol.clone(),
            buy_sell: order.buy_sell,
            price,
            quantity: order.quantity,
            time_ms: now_ms,
            execution_id,
        });
        out.push(Push::Order(Box::new(OrderUpdate {
            last_fill_price: Some(price),
            last_fill_date_time: now_ms,
            last_fill_quantity: Some(order.quantity),
            ..order_update(&order, update_reason::ORDER_FILLED, "")
        })));
        let position = self.apply_to_position(&order, price);
        out.push(Push::Position(position_update(&position)));
        // The other leg of an OCO dies with this fill.
        if let Ok(linked) = order.oco_linked_server_order_id.parse::<u64>()
            && self.orders.get(&linked).is_some_and(SimOrder::is_working)
        {
            self.cancel_with_links(linked, out);
        }
        // A filled bracket parent puts its children to work.
        let children: Vec<u64> = self
            .orders
            .iter()
            .filter(|(_, o)| {
                o.parent_server_order_id == order.server_order_id
                    && o.status == order_status::PENDING_CHILD
            })
            .map(|(id, _)| *id)
            .collect();
        for child in children {
            if let Some(o) = self.orders.get_mut(&child) {
                o.status = order_status::OPEN;
            }
            self.fresh.insert(child);
            self.push_order(child, update_reason::GENERAL_ORDER_UPDATE, "", out);
        }
    }

    fn apply_to_position(&mut self, order: &SimOrder, price: f64) -> SimPosition {
        let key = (order.trade_account.clone(), order.symbol.clone());
        let position = self.positions.entry(key).or_insert_with(|| SimPosition {
            trade_account: order.trade_account.clone(),
            symbol: order.symbol.clone(),
            exchange: order.exchange.clone(),
            quantity: 0.0,
            average_price: 0.0,
        });
        let delta = order.signed(order.quantity);
        let before = position.quantity;
        let after = before + delta;
        position.average_price = if after == 0.0 {
            0.0
        } else if before == 0.0 || before.signum() == delta.signum() {
            (position.average_price * before.abs() + price * delta.abs()) / after.abs()
        } else if after.signum() != before.signum() {
            // Reversed through flat: the new position was all opened at this price.
            price
        } else {
            position.average_price
        };
        position.quantity = after;
        position.exchange = order.exchange.clone();
        position.clone()
    }
}

/// The price an order fills at now, if it fills.
fn fill_price(order: &mut SimOrder, price: f64, fresh: bool) -> Option<f64> {
    let buy = order.buy_sell == buy_sell::BUY;
    let limit = |limit: Option<f64>, fresh: bool| {
        let limit = limit?;
        let reached = if buy { price <= limit } else { price >= limit };
        reached.then_some(if fresh { price } else { limit })
    };
    let stop_reached = |stop: Option<f64>| {
        stop.is_some_and(|stop| if buy { price >= stop } else { price <= stop })
    };
    match order.order_type {
        order_type::MARKET => Some(price),
        order_type::LIMIT => limit(order.price1, fresh),
        order_type::STOP => stop_reached(order.price1).then_some(price),
        order_type::STOP_LIMIT if order.is_triggered => limit(order.price2, fresh),
        order_type::STOP_LIMIT if stop_reached(order.price1) => {
            order.is_triggered = true;
            limit(order.price2, true)
        }
        _ => None,
    }
}

/// Checks the fields of an order: account, symbol, side, quantity, type and its prices, ticks.
fn validate_fields(order: &NewOrder) -> Result<(), String> {
    if order.trade_account != SIM_ACCOUNT {
        return Err(format!(
            "unknown TradeAccount `{}` (the sim has only {SIM_ACCOUNT})",
            order.trade_account
        ));
    }
    let Some(spec) = ContractSpec::builtin(symbol_root(&order.symbol)) else {
        return Err(format!("unknown symbol `{}`", order.symbol));
    };
    if order.buy_sell != buy_sell::BUY && order.buy_sell != buy_sell::SELL {
        return Err(format!("BuySell {} is neither 1 nor 2", order.buy_sell));
    }
    if !(order.quantity.is_finite() && order.quantity > 0.0) {
        return Err(format!("Quantity {} is not positive", order.quantity));
    }
    let prices: &[(&str, Option<f64>)] = match order.order_type {
        order_type::MARKET => &[],
        order_type::LIMIT | order_type::STOP => &[("Price1", order.price1)],
        order_type::STOP_LIMIT => &[("Price1", order.price1), ("Price2", order.price2)],
        other => {
            return Err(format!(
                "OrderType {other} is not supported by mia dtc-sim (market, limit, stop, \
                 stop-limit are)"
            ));
        }
    };
    for (name, price) in prices {
        let Some(price) = price else {
            return Err(format!(
                "{name} is required for OrderType {}",
                order.order_type
            ));
        };
        let ticks = price / spec.tick_size;
        if !(price.is_finite() && *price > 0.0 && (ticks - ticks.round()).abs() < 1e-6) {
            return Err(format!(
                "{name} {price} is not a positive multiple of the tick {}",
                spec.tick_size
            ));
        }
    }
    Ok(())
}

fn account_matches(asked: &str, account: &str) -> bool {
    asked.is_empty() || asked == account
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// An unsolicited ORDER_UPDATE of an order (a batch of one).
fn order_update(o: &SimOrder, reason: i32, info: &str) -> OrderUpdate {
    OrderUpdate {
        total_num_messages: 1,
        message_number: 1,
        symbol: o.symbol.clone(),
        exchange: o.exchange.clone(),
        server_order_id: o.server_order_id.clone(),
        client_order_id: o.client_order_id.clone(),
        order_status: o.status,
        order_update_reason: reason,
        order_type: o.order_type,
        buy_sell: o.buy_sell,
        price1: o.price1,
        price2: o.price2,
        order_quantity: Some(o.quantity),
        filled_quantity: Some(o.filled_quantity),
        remaining_quantity: Some(o.quantity - o.filled_quantity),
        average_fill_price: o.average_fill_price,
        last_fill_price: o.average_fill_price,
        last_fill_date_time: o.last_fill_date_time_ms,
        last_fill_quantity: o.average_fill_price.map(|_| o.filled_quantity),
        trade_account: o.trade_account.clone(),
        info_text: info.to_owned(),
        parent_server_order_id: o.parent_server_order_id.clone(),
        oco_linked_order_server_order_id: o.oco_linked_server_order_id.clone(),
        ..OrderUpdate::default()
    }
}

/// The reject of a cancel or cancel-replace of an order the sim does not know.
fn unknown_order_update(server_id: &str, client_id: &str, account: &str, reason: i32) -> Push {
    Push::Order(Box::new(OrderUpdate {
        total_num_messages: 1,
        message_number: 1,
        server_order_id: server_id.to_owned(),
        client_order_id: client_id.to_owned(),
        order_status: order_status::UNSPECIFIED,
        order_update_reason: reason,
        trade_account: account.to_owned(),
        info_text: format!(
            "unknown order (ServerOrderID `{server_id}`, ClientOrderID `{client_id}`)"
        ),
        ..OrderUpdate::default()
    }))
}

/// An unsolicited POSITION_UPDATE.
fn position_update(p: &SimPosition) -> PositionUpdate {
    PositionUpdate {
        request_id: 0,
        total_number_messages: 1,
        message_number: 1,
        symbol: p.symbol.clone(),
        exchange: p.exchange.clone(),
        quantity: Some(p.quantity),
        average_price: Some(p.average_price),
        trade_account: p.trade_account.clone(),
        no_positions: false,
        unsolicited: true,
        open_profit_loss: None,
    }
}

/// SECURITY_DEFINITION_RESPONSE: the built-in contract spec of the symbol's root; like Sierra,
/// an unknown symbol is not rejected but answered with an empty description and tick 0.
pub(crate) fn security_definition(
    r: &SecurityDefinitionForSymbolRequest,
) -> SecurityDefinitionResponse {
    let root = symbol_root(&r.symbol);
    let spec = ContractSpec::builtin(root);
    SecurityDefinitionResponse {
        request_id: r.request_id,
        symbol: r.symbol.clone(),
        exchange: r.exchange.clone(),
        // SecurityTypeEnum: 1 = futures.
        security_type: i32::from(spec.is_some()),
        description: spec
            .map(|_| format!("{root} futures (mia dtc-sim)"))
            .unwrap_or_default(),
        min_price_increment: Some(spec.map_or(0.0, |s| s.tick_size)),
        price_display_format: spec.map_or(0, |s| decimals(s.tick_size)),
        currency_value_per_increment: Some(spec.map_or(0.0, |s| s.tick_value)),
        is_final_message: true,
        display_price_multiplier: Some(1.0),
    }
}

/// `PriceDisplayFormatEnum` DECIMAL_n for a tick size (0.25 → 2, 0.1 → 1, 1 → 0).
fn decimals(tick: f64) -> i32 {
    (0..=6)
        .find(|n| {
            let scaled = tick * 10f64.powi(*n);
            (scaled - scaled.round()).abs() < 1e-9
        })
        .unwrap_or(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    fn single(id: &str, kind: i32, side: i32, price: Option<f64>) -> SubmitNewSingleOrder {
        SubmitNewSingleOrder {
            symbol: "ESZ25_FUT_CME".into(),
            trade_account: SIM_ACCOUNT.into(),
            client_order_id: id.into(),
            order_type: kind,
            buy_sell: side,
            price1: price,
            quantity: 1.0,
            ..Default::default()
        }
    }

    fn bracket_oco(parent: &str, target: f64, stop: f64) -> SubmitNewOcoOrder {
        SubmitNewOcoOrder {
            symbol: "ESZ25_FUT_CME".into(),
            trade_account: SIM_ACCOUNT.into(),
            client_order_id_1: format!("{parent}-t"),
            order_type_1: order_type::LIMIT,
            buy_sell_1: buy_sell::SELL,
            price1_1: Some(target),
            quantity_1: 1.0,
            client_order_id_2: format!("{parent}-s"),
            order_type_2: order_type::STOP,
            buy_sell_2: buy_sell::SELL,
            price1_2: Some(stop),
            quantity_2: 1.0,
            parent_trigger_client_order_id: parent.into(),
            ..Default::default()
        }
    }

    /// (client id, status, reason) of each order update; positions as `pos <qty>`.
    fn summary(pushes: &[Push]) -> Vec<String> {
        pushes
            .iter()
            .map(|p| match p {
                Push::Order(u) => format!(
                    "{} {} {}",
                    u.client_order_id, u.order_status, u.order_update_reason
                ),
                Push::Position(p) => format!("pos {}", p.quantity.unwrap_or(f64::NAN)),
            })
            .collect()
    }

    #[test]
    fn limit_rests_then_fills_at_its_price_when_crossed() {
        let mut ex = Exchange::new(6500.0);
        let out = ex.submit_single(&single("a", order_type::LIMIT, 1, Some(6495.0)), T);
        assert_eq!(summary(&out), ["a 4 2"]);
        assert!(ex.set_price(6496.0, T).is_empty());
        let out = ex.set_price(6490.0, T);
        assert_eq!(summary(&out), ["a 7 4", "pos 1"]);
        let Push::Order(u) = &out[0] else { panic!() };
        assert_eq!(u.average_fill_price, Some(6495.0));
        assert_eq!(u.last_fill_date_time, T);
    }

    #[test]
    fn marketable_orders_fill_at_the_price() {
        let mut ex = Exchange::new(6500.0);
        let out = ex.submit_single(&single("m", order_type::MARKET, 2, None), T);
        assert_eq!(summary(&out), ["m 4 2", "m 7 4", "pos -1"]);
        let out = ex.submit_single(&single("l", order_type::LIMIT, 1, Some(6510.0)), T);
        assert_eq!(summary(&out), ["l 4 2", "l 7 4", "pos 0"]);
        assert_eq!(ex.fills()[1].price, 6500.0);
    }

    #[test]
    fn stops_trigger_on_the_right_side() {
        let mut ex = Exchange::new(6500.0);
        ex.submit_single(&single("bs", order_type::STOP, 1, Some(6505.0)), T);
        ex.submit_single(&single("ss", order_type::STOP, 2, Some(6490.0)), T);
        assert!(ex.set_price(6504.75, T).is_empty());
        assert_eq!(summary(&ex.set_price(6506.0, T)), ["bs 7 4", "pos 1"]);
        assert_eq!(summary(&ex.set_price(6489.0, T)), ["ss 7 4", "pos 0"]);
    }

    #[test]
    fn bracket_children_wait_for_the_parent_then_target_cancels_stop() {
        let mut ex = Exchange::new(6500.0);
        let parent = single("p", order_type::LIMIT, 1, Some(6495.0));
        let out = ex.submit_oco(&bracket_oco("p", 6505.0, 6490.0), Some(&parent), T);
        assert_eq!(summary(&out), ["p 4 2", "p-t 3 2", "p-s 3 2"]);
        let out = ex.set_price(6495.0, T);
        assert_eq!(summary(&out), ["p 7 4", "pos 1", "p-t 4 3", "p-s 4 3"]);
        let out = ex.set_price(6505.0, T);
        assert_eq!(summary(&out), ["p-t 7 4", "pos 0", "p-s 8 6"]);
        assert!(ex.orders().iter().all(|o| !o.is_working()));
    }

    #[test]
    fn group_rejects_and_duplicates() {
        let mut ex = Exchange::new(6500.0);
        ex.submit_single(&single("dup", order_type::LIMIT, 1, Some(6400.0)), T);
        let out = ex.submit_single(&single("dup", order_type::LIMIT, 1, Some(6400.0)), T);
        let Push::Order(u) = &out[0] else { panic!() };
        assert_eq!(
            (u.order_status, u.order_update_reason),
            (order_status::REJECTED, update_reason::NEW_ORDER_REJECTED)
        );
        assert!(u.info_text.contains("duplicate ClientOrderID"));
        let parent = single("p2", order_type::LIMIT, 1, Some(6400.1));
        let out = ex.submit_oco(&bracket_oco("p2", 6505.0, 6490.0), Some(&parent), T);
        assert_eq!(summary(&out), ["p2 9 8", "p2-t 9 8", "p2-s 9 8"]);
        let out = ex.submit_oco(&bracket_oco("nobody", 6505.0, 6490.0), None, T);
        assert_eq!(summary(&out), ["nobody-t 9 8", "nobody-s 9 8"]);
        ex.reject_next_order();
        let out = ex.submit_single(&single("r", order_type::MARKET, 1, None), T);
        let Push::Order(u) = &out[0] else { panic!() };
        assert!(u.info_text.contains("reject-next-order"));
        assert_eq!(ex.received_client_ids().len(), 8);
    }

    #[test]
    fn cancel_of_a_filled_order_keeps_its_status_and_cancel_replace_moves_price() {
        let mut ex = Exchange::new(6500.0);
        ex.submit_single(&single("f", order_type::MARKET, 1, None), T);
        let cancel = CancelOrder {
            client_order_id: "f".into(),
            server_order_id: "1".into(),
            ..Default::default()
        };
        assert_eq!(summary(&ex.cancel(&cancel)), ["f 7 9"]);
        ex.submit_single(&single("w", order_type::LIMIT, 2, Some(6520.0)), T);
        let replace = CancelReplaceOrder {
            server_order_id: "2".into(),
            price1: Some(6499.0),
            ..Default::default()
        };
        let out = ex.cancel_replace(&replace, true, false, T);
        assert_eq!(summary(&out), ["w 4 7", "w 7 4", "pos 0"]);
        let flat = SubmitFlattenPositionOrder {
            symbol: "ESZ25_FUT_CME".into(),
            trade_account: SIM_ACCOUNT.into(),
            client_order_id: "fl".into(),
            ..Default::default()
        };
        assert_eq!(summary(&ex.flatten(&flat, T)), ["fl 9 8"]);
    }

    #[test]
    fn positions_average_and_reverse() {
        let mut ex = Exchange::new(6500.0);
        ex.submit_single(&single("a", order_type::MARKET, 1, None), T);
        ex.set_price(6502.0, T);
        ex.submit_single(&single("b", order_type::MARKET, 1, None), T);
        assert_eq!(ex.positions()[0].average_price, 6501.0);
        let mut sell = single("c", order_type::MARKET, 2, None);
        sell.quantity = 3.0;
        ex.submit_single(&sell, T);
        assert_eq!(
            (ex.positions()[0].quantity, ex.positions()[0].average_price),
            (-1.0, 6502.0)
        );
    }

    #[test]
    fn security_definitions() {
        let known = security_definition(&SecurityDefinitionForSymbolRequest {
            request_id: 3,
            symbol: "MNQH26_FUT_CME".into(),
            ..Default::default()
        });
        assert_eq!(known.min_price_increment, Some(0.25));
        assert_eq!(known.price_display_format, 2);
        assert!(!known.description.is_empty());
        let unknown = security_definition(&SecurityDefinitionForSymbolRequest {
            symbol: "XYZ".into(),
            ..Default::default()
        });
        assert_eq!(
            (unknown.description.as_str(), unknown.min_price_increment),
            ("", Some(0.0))
        );
    }

    #[test]
    fn empty_requests_get_one_reply() {
        let ex = Exchange::new(6500.0);
        let orders = ex.open_orders(&OpenOrdersRequest {
            request_id: 5,
            ..Default::default()
        });
        assert!(orders[0].no_orders && orders[0].request_id == 5);
        let fills = ex.historical_fills(
            &HistoricalOrderFillsRequest {
                number_of_days: 1,
                ..Default::default()
            },
            T,
        );
        assert!(fills.unwrap()[0].no_order_fills);
        let none = ex.historical_fills(&HistoricalOrderFillsRequest::default(), T);
        assert!(none.is_err());
    }
}
