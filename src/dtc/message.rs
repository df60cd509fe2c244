//! Typed DTC messages in JSON encoding, with the exact, case-sensitive field names of the
//! official header (`dtc.md` §1.3), integer enums, and `Type` written first.
//!
//! Reading is tolerant, as the protocol asks: every field has a default, unknown fields are
//! ignored, unknown message types decode to [`Incoming::Unknown`], numbers may come as integers
//! or floats, flags as `0`/`1` or booleans, and a price or quantity that is absent, `null` or
//! `DBL_MAX` reads as `None` (unset).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DtcError;

/// A message with its DTC type number.
pub trait Message: Serialize + DeserializeOwned {
    /// The `Type` field.
    const TYPE: u16;
}

/// Encodes a message as JSON with `Type` first, followed by the NUL terminator.
///
/// # Errors
///
/// [`DtcError::Protocol`] when a number is not finite (serde_json would write `null`, which a
/// server reads as "unset": never send that).
pub fn encode<M: Message>(message: &M) -> Result<Vec<u8>, DtcError> {
    let body = serde_json::to_vec(message)
        .map_err(|e| DtcError::Protocol(format!("cannot encode message {}: {e}", M::TYPE)))?;
    if has_null(&body) {
        return Err(DtcError::Protocol(format!(
            "message {} has a value that is not a finite number",
            M::TYPE
        )));
    }
    let mut out = format!("{{\"Type\":{}", M::TYPE).into_bytes();
    // `body` is `{...}`: splice its fields after the type.
    if body.len() > 2 {
        out.push(b',');
        out.extend_from_slice(&body[1..]);
    } else {
        out.push(b'}');
    }
    out.push(0);
    Ok(out)
}

/// Whether JSON text has a `null` outside its strings (only a non-finite number makes one here).
fn has_null(json: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if json[i..].starts_with(b"null") {
            return true;
        }
    }
    false
}

#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "Type")]
    message_type: u16,
}

macro_rules! messages {
    ($($(#[$doc:meta])* $variant:ident = $ty:ident = $num:literal,)*) => {
        $(impl Message for $ty {
            const TYPE: u16 = $num;
        })*

        /// A decoded message.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Incoming {
            $($(#[$doc])* $variant($ty),)*
            /// A type mia does not use; read and discarded, as the protocol asks.
            Unknown(u16),
        }

        impl Incoming {
            /// The message's `Type`.
            pub fn message_type(&self) -> u16 {
                match self {
                    $(Incoming::$variant(_) => $num,)*
                    Incoming::Unknown(t) => *t,
                }
            }
        }

        /// Decodes one JSON frame (without its NUL).
        ///
        /// # Errors
        ///
        /// [`DtcError::Protocol`] when the frame is not a JSON object with a numeric `Type`, or a
        /// known type whose fields have the wrong JSON types.
        pub fn decode(frame: &[u8]) -> Result<Incoming, DtcError> {
            let bad = |e: serde_json::Error| {
                DtcError::Protocol(format!("bad message {}: {e}", String::from_utf8_lossy(frame)))
            };
            let peek: Peek = serde_json::from_slice(frame).map_err(bad)?;
            Ok(match peek.message_type {
                $($num => Incoming::$variant(serde_json::from_slice(frame).map_err(bad)?),)*
                other => Incoming::Unknown(other),
            })
        }
    };
}

messages! {
    /// LOGON_REQUEST.
    LogonRequest = LogonRequest = 1,
    /// LOGON_RESPONSE.
    LogonResponse = LogonResponse = 2,
    /// HEARTBEAT.
    Heartbeat = Heartbeat = 3,
    /// LOGOFF.
    Logoff = Logoff = 5,
    /// SUBMIT_NEW_OCO_ORDER.
    SubmitNewOcoOrder = SubmitNewOcoOrder = 201,
    /// CANCEL_ORDER.
    CancelOrder = CancelOrder = 203,
    /// CANCEL_REPLACE_ORDER.
    CancelReplaceOrder = CancelReplaceOrder = 204,
    /// SUBMIT_NEW_SINGLE_ORDER.
    SubmitNewSingleOrder = SubmitNewSingleOrder = 208,
    /// SUBMIT_FLATTEN_POSITION_ORDER.
    SubmitFlattenPositionOrder = SubmitFlattenPositionOrder = 209,
    /// OPEN_ORDERS_REQUEST.
    OpenOrdersRequest = OpenOrdersRequest = 300,
    /// ORDER_UPDATE.
    OrderUpdate = OrderUpdate = 301,
    /// OPEN_ORDERS_REJECT.
    OpenOrdersReject = OpenOrdersReject = 302,
    /// HISTORICAL_ORDER_FILLS_REQUEST.
    HistoricalOrderFillsRequest = HistoricalOrderFillsRequest = 303,
    /// HISTORICAL_ORDER_FILL_RESPONSE.
    HistoricalOrderFillResponse = HistoricalOrderFillResponse = 304,
    /// CURRENT_POSITIONS_REQUEST.
    CurrentPositionsRequest = CurrentPositionsRequest = 305,
    /// POSITION_UPDATE.
    PositionUpdate = PositionUpdate = 306,
    /// CURRENT_POSITIONS_REJECT.
    CurrentPositionsReject = CurrentPositionsReject = 307,
    /// HISTORICAL_ORDER_FILLS_REJECT.
    HistoricalOrderFillsReject = HistoricalOrderFillsReject = 308,
    /// TRADE_ACCOUNTS_REQUEST.
    TradeAccountsRequest = TradeAccountsRequest = 400,
    /// TRADE_ACCOUNT_RESPONSE.
    TradeAccountResponse = TradeAccountResponse = 401,
    /// SECURITY_DEFINITION_FOR_SYMBOL_REQUEST.
    SecurityDefinitionForSymbolRequest = SecurityDefinitionForSymbolRequest = 506,
    /// SECURITY_DEFINITION_RESPONSE.
    SecurityDefinitionResponse = SecurityDefinitionResponse = 507,
    /// SECURITY_DEFINITION_REJECT.
    SecurityDefinitionReject = SecurityDefinitionReject = 509,
    /// ENCODING_REQUEST sent in JSON (to a server preset to JSON).
    EncodingRequest = EncodingRequest = 6,
    /// ENCODING_RESPONSE sent in JSON.
    EncodingResponse = EncodingResponse = 7,
}

// ---- Field helpers --------------------------------------------------------------------------

/// Values at or above this are the binary encoding's `DBL_MAX` "unset".
const UNSET_ABOVE: f64 = 1e300;

/// A number that may be absent, `null` or `DBL_MAX` (all unset).
fn unset_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v: Option<serde_json::Number> = Option::deserialize(d)?;
    Ok(v.and_then(|n| n.as_f64())
        .filter(|x| x.is_finite() && x.abs() < UNSET_ABOVE))
}

/// An integer that may arrive as a float (`OrderReceivedDateTime` changed type between header
/// versions) or as `null`.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v: Option<serde_json::Number> = Option::deserialize(d)?;
    Ok(
        v.and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
            .unwrap_or(0),
    )
}

/// A flag: `0`/`1` on the wire, also read from JSON booleans.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Number(serde_json::Number),
    }
    Ok(match Option::<Flag>::deserialize(d)? {
        Some(Flag::Bool(b)) => b,
        Some(Flag::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        None => false,
    })
}

fn write_flag<S: Serializer>(value: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(u8::from(*value))
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(x: &i32) -> bool {
    *x == 0
}

// ---- Enums (int32 on the wire) --------------------------------------------------------------

/// `OrderTypeEnum`.
pub mod order_type {
    /// Market.
    pub const MARKET: i32 = 1;
    /// Limit.
    pub const LIMIT: i32 = 2;
    /// Stop.
    pub const STOP: i32 = 3;
    /// Stop-limit.
    pub const STOP_LIMIT: i32 = 4;
}

/// `BuySellEnum`.
pub mod buy_sell {
    /// Buy.
    pub const BUY: i32 = 1;
    /// Sell.
    pub const SELL: i32 = 2;
}

/// `TimeInForceEnum`.
pub mod time_in_force {
    /// Day.
    pub const DAY: i32 = 1;
    /// Good till canceled.
    pub const GOOD_TILL_CANCELED: i32 = 2;
}

/// `OrderStatusEnum`.
pub mod order_status {
    /// Unspecified.
    pub const UNSPECIFIED: i32 = 0;
    /// Set by the client itself when it sends an order; never by the server.
    pub const ORDER_SENT: i32 = 1;
    /// Pending open.
    pub const PENDING_OPEN: i32 = 2;
    /// A bracket child waiting for its parent to fill.
    pub const PENDING_CHILD: i32 = 3;
    /// Working.
    pub const OPEN: i32 = 4;
    /// Cancel-replace sent.
    pub const PENDING_CANCEL_REPLACE: i32 = 5;
    /// Cancel sent.
    pub const PENDING_CANCEL: i32 = 6;
    /// Filled.
    pub const FILLED: i32 = 7;
    /// Canceled.
    pub const CANCELED: i32 = 8;
    /// Rejected.
    pub const REJECTED: i32 = 9;
    /// Partially filled, still working.
    pub const PARTIALLY_FILLED: i32 = 10;
}

/// `OrderUpdateReasonEnum`.
pub mod update_reason {
    /// Part of the reply to OPEN_ORDERS_REQUEST.
    pub const OPEN_ORDERS_REQUEST_RESPONSE: i32 = 1;
    /// Accepted.
    pub const NEW_ORDER_ACCEPTED: i32 = 2;
    /// Any other change.
    pub const GENERAL_ORDER_UPDATE: i32 = 3;
    /// Filled.
    pub const ORDER_FILLED: i32 = 4;
    /// Partially filled.
    pub const ORDER_FILLED_PARTIALLY: i32 = 5;
    /// Canceled.
    pub const ORDER_CANCELED: i32 = 6;
    /// Cancel-replace done.
    pub const ORDER_CANCEL_REPLACE_COMPLETE: i32 = 7;
    /// Rejected.
    pub const NEW_ORDER_REJECTED: i32 = 8;
    /// A cancel was rejected: the order keeps its current status.
    pub const ORDER_CANCEL_REJECTED: i32 = 9;
    /// A cancel-replace was rejected: the order keeps its current status.
    pub const ORDER_CANCEL_REPLACE_REJECTED: i32 = 10;
}

/// `LogonStatusEnum`.
pub mod logon_status {
    /// Logged on.
    pub const SUCCESS: i32 = 1;
    /// Failed; may retry.
    pub const ERROR: i32 = 2;
    /// Failed; do not retry.
    pub const ERROR_NO_RECONNECT: i32 = 3;
    /// Reconnect to `ReconnectAddress`.
    pub const RECONNECT_NEW_ADDRESS: i32 = 4;
}

// ---- Session --------------------------------------------------------------------------------

/// LOGON_REQUEST (1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogonRequest {
    /// Protocol version (8).
    pub protocol_version: i32,
    /// User name (blank unless the server requires authentication).
    pub username: String,
    /// Password. Never logged: [`LogonRequest`]'s `Debug` is only for tests, and the client
    /// logs the request without it.
    pub password: String,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub general_text_data: String,
    /// Market-data feature flags.
    #[serde(rename = "Integer_1", skip_serializing_if = "is_zero")]
    pub integer_1: i32,
    /// Heartbeat interval, required.
    pub heartbeat_interval_in_seconds: i32,
    /// Trade account.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trade_account: String,
    /// Client name.
    pub client_name: String,
}

/// LOGON_RESPONSE (2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogonResponse {
    /// Protocol version.
    pub protocol_version: i32,
    /// [`logon_status`].
    pub result: i32,
    /// Why.
    pub result_text: String,
    /// Where to reconnect (result 4).
    pub reconnect_address: String,
    /// Server name.
    pub server_name: String,
    /// Trading messages are supported.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub trading_is_supported: bool,
    /// OCO orders are supported.
    #[serde(
        rename = "OCOOrdersSupported",
        deserialize_with = "flag",
        serialize_with = "write_flag"
    )]
    pub oco_orders_supported: bool,
    /// Cancel-replace is supported.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub order_cancel_replace_supported: bool,
    /// Security definitions are supported.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub security_definitions_supported: bool,
    /// Bracket orders are supported.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub bracket_orders_supported: bool,
}

/// HEARTBEAT (3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Heartbeat {
    /// Market-data messages dropped.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub num_dropped_messages: u32,
    /// Sender's time, seconds.
    #[serde(deserialize_with = "lenient_i64", skip_serializing_if = "is_zero_i64")]
    pub current_date_time: i64,
}

fn is_zero_u32(x: &u32) -> bool {
    *x == 0
}

fn is_zero_i64(x: &i64) -> bool {
    *x == 0
}

/// LOGOFF (5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Logoff {
    /// Why.
    pub reason: String,
    /// The client must not reconnect.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub do_not_reconnect: bool,
}

// ---- Accounts and symbols -------------------------------------------------------------------

/// TRADE_ACCOUNTS_REQUEST (400).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TradeAccountsRequest {
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
}

/// TRADE_ACCOUNT_RESPONSE (401).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TradeAccountResponse {
    /// Messages in the reply.
    pub total_number_messages: i32,
    /// This message's number, from 1.
    pub message_number: i32,
    /// The account (empty: the user has none).
    pub trade_account: String,
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Trading is disabled for this account.
    #[serde(
        deserialize_with = "flag",
        serialize_with = "write_flag",
        skip_serializing_if = "is_false"
    )]
    pub trading_is_disabled: bool,
}

/// SECURITY_DEFINITION_FOR_SYMBOL_REQUEST (506).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SecurityDefinitionForSymbolRequest {
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Full Sierra symbol.
    pub symbol: String,
    /// Exchange (Sierra ignores it; send empty).
    pub exchange: String,
}

/// SECURITY_DEFINITION_RESPONSE (507).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SecurityDefinitionResponse {
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Symbol.
    pub symbol: String,
    /// Exchange.
    pub exchange: String,
    /// Security type.
    pub security_type: i32,
    /// Description (empty for a symbol Sierra does not know: it never rejects).
    pub description: String,
    /// Tick size (0 for an unknown symbol).
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_price_increment: Option<f64>,
    /// Price display format.
    pub price_display_format: i32,
    /// Currency value of one tick.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub currency_value_per_increment: Option<f64>,
    /// Last message of the reply.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub is_final_message: bool,
    /// Prices on the wire are display prices × this (1 for Sierra's own services).
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_price_multiplier: Option<f64>,
}

/// SECURITY_DEFINITION_REJECT (509).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SecurityDefinitionReject {
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Why.
    pub reject_text: String,
}

// ---- Order entry ----------------------------------------------------------------------------

/// SUBMIT_NEW_SINGLE_ORDER (208).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SubmitNewSingleOrder {
    /// Full Sierra symbol.
    pub symbol: String,
    /// Exchange (empty for Sierra).
    pub exchange: String,
    /// Account.
    pub trade_account: String,
    /// Client's id: unique within the server's trading day.
    #[serde(rename = "ClientOrderID")]
    pub client_order_id: String,
    /// [`order_type`].
    pub order_type: i32,
    /// [`buy_sell`].
    pub buy_sell: i32,
    /// Limit or stop price.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub price1: Option<f64>,
    /// Limit price of a stop-limit.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub price2: Option<f64>,
    /// Contracts.
    pub quantity: f64,
    /// [`time_in_force`].
    pub time_in_force: i32,
    /// Sent by software.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub is_automated_order: bool,
    /// The parent of a bracket: its OCO must follow at once.
    #[serde(
        deserialize_with = "flag",
        serialize_with = "write_flag",
        skip_serializing_if = "is_false"
    )]
    pub is_parent_order: bool,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub free_form_text: String,
}

/// SUBMIT_NEW_OCO_ORDER (201): two legs, one cancels the other; with
/// `ParentTriggerClientOrderID`, the children of a bracket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SubmitNewOcoOrder {
    /// Full Sierra symbol.
    pub symbol: String,
    /// Exchange.
    pub exchange: String,
    /// First leg's id.
    #[serde(rename = "ClientOrderID_1")]
    pub client_order_id_1: String,
    /// First leg's type.
    #[serde(rename = "OrderType_1")]
    pub order_type_1: i32,
    /// First leg's side.
    #[serde(rename = "BuySell_1")]
    pub buy_sell_1: i32,
    /// First leg's price.
    #[serde(
        rename = "Price1_1",
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub price1_1: Option<f64>,
    /// First leg's quantity.
    #[serde(rename = "Quantity_1")]
    pub quantity_1: f64,
    /// Second leg's id.
    #[serde(rename = "ClientOrderID_2")]
    pub client_order_id_2: String,
    /// Second leg's type.
    #[serde(rename = "OrderType_2")]
    pub order_type_2: i32,
    /// Second leg's side.
    #[serde(rename = "BuySell_2")]
    pub buy_sell_2: i32,
    /// Second leg's price.
    #[serde(
        rename = "Price1_2",
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub price1_2: Option<f64>,
    /// Second leg's quantity.
    #[serde(rename = "Quantity_2")]
    pub quantity_2: f64,
    /// Time in force.
    pub time_in_force: i32,
    /// Account.
    pub trade_account: String,
    /// Sent by software.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub is_automated_order: bool,
    /// The bracket parent's ClientOrderID (empty for a plain OCO).
    #[serde(
        rename = "ParentTriggerClientOrderID",
        skip_serializing_if = "String::is_empty"
    )]
    pub parent_trigger_client_order_id: String,
    /// `PartialFillHandlingEnum` (1 = reduce the other leg).
    #[serde(skip_serializing_if = "is_zero")]
    pub partial_fill_handling: i32,
}

/// CANCEL_ORDER (203).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CancelOrder {
    /// Server's id.
    #[serde(rename = "ServerOrderID")]
    pub server_order_id: String,
    /// Client's id.
    #[serde(rename = "ClientOrderID")]
    pub client_order_id: String,
    /// Account.
    pub trade_account: String,
}

/// CANCEL_REPLACE_ORDER (204).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CancelReplaceOrder {
    /// Server's id.
    #[serde(rename = "ServerOrderID")]
    pub server_order_id: String,
    /// Client's id.
    #[serde(rename = "ClientOrderID")]
    pub client_order_id: String,
    /// New price 1 (kept when `Price1IsSet` is 0).
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub price1: Option<f64>,
    /// New price 2.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub price2: Option<f64>,
    /// New total quantity; 0 keeps it.
    pub quantity: f64,
    /// Price1 is to be changed.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub price1_is_set: bool,
    /// Price2 is to be changed.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub price2_is_set: bool,
    /// Account.
    pub trade_account: String,
}

/// SUBMIT_FLATTEN_POSITION_ORDER (209).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SubmitFlattenPositionOrder {
    /// Symbol.
    pub symbol: String,
    /// Exchange.
    pub exchange: String,
    /// Account.
    pub trade_account: String,
    /// Client's id for the flattening order.
    #[serde(rename = "ClientOrderID")]
    pub client_order_id: String,
    /// Sent by software.
    #[serde(deserialize_with = "flag", serialize_with = "write_flag")]
    pub is_automated_order: bool,
}

// ---- Trading state --------------------------------------------------------------------------

/// OPEN_ORDERS_REQUEST (300).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct OpenOrdersRequest {
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// All orders (1) or the one of `ServerOrderID`.
    pub request_all_orders: i32,
    /// Account.
    pub trade_account: String,
    /// The one order asked for when `RequestAllOrders` is 0.
    #[serde(rename = "ServerOrderID", skip_serializing_if = "String::is_empty")]
    pub server_order_id: String,
}

/// ORDER_UPDATE (301).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct OrderUpdate {
    /// Request id (0: unsolicited).
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Messages in the reply (note: `TotalNumMessages` here, not `TotalNumberMessages`).
    pub total_num_messages: i32,
    /// This message's number, from 1.
    pub message_number: i32,
    /// Symbol.
    pub symbol: String,
    /// Exchange.
    pub exchange: String,
    /// The server's id before a cancel-replace.
    #[serde(
        rename = "PreviousServerOrderID",
        skip_serializing_if = "String::is_empty"
    )]
    pub previous_server_order_id: String,
    /// Server's id.
    #[serde(rename = "ServerOrderID")]
    pub server_order_id: String,
    /// Client's id.
    #[serde(rename = "ClientOrderID")]
    pub client_order_id: String,
    /// [`order_status`].
    pub order_status: i32,
    /// [`update_reason`].
    pub order_update_reason: i32,
    /// [`order_type`].
    pub order_type: i32,
    /// [`buy_sell`].
    pub buy_sell: i32,
    /// Price 1.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub price1: Option<f64>,
    /// Price 2.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub price2: Option<f64>,
    /// Ordered quantity.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub order_quantity: Option<f64>,
    /// Filled so far.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub filled_quantity: Option<f64>,
    /// Left to fill.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub remaining_quantity: Option<f64>,
    /// Average fill price.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub average_fill_price: Option<f64>,
    /// Last fill price.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_fill_price: Option<f64>,
    /// Last fill time, milliseconds.
    #[serde(deserialize_with = "lenient_i64", skip_serializing_if = "is_zero_i64")]
    pub last_fill_date_time: i64,
    /// Last fill quantity.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_fill_quantity: Option<f64>,
    /// Account.
    pub trade_account: String,
    /// Free text from the server (the reason of a reject).
    pub info_text: String,
    /// The reply to OPEN_ORDERS_REQUEST has no order.
    #[serde(
        deserialize_with = "flag",
        serialize_with = "write_flag",
        skip_serializing_if = "is_false"
    )]
    pub no_orders: bool,
    /// Parent's server id (bracket children).
    #[serde(
        rename = "ParentServerOrderID",
        skip_serializing_if = "String::is_empty"
    )]
    pub parent_server_order_id: String,
    /// The other leg of an OCO.
    #[serde(
        rename = "OCOLinkedOrderServerOrderID",
        skip_serializing_if = "String::is_empty"
    )]
    pub oco_linked_order_server_order_id: String,
}

/// OPEN_ORDERS_REJECT (302), CURRENT_POSITIONS_REJECT (307), HISTORICAL_ORDER_FILLS_REJECT (308).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RequestReject {
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Why.
    pub reject_text: String,
}

/// OPEN_ORDERS_REJECT (302).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpenOrdersReject(pub RequestReject);
/// CURRENT_POSITIONS_REJECT (307).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CurrentPositionsReject(pub RequestReject);
/// HISTORICAL_ORDER_FILLS_REJECT (308).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HistoricalOrderFillsReject(pub RequestReject);

/// HISTORICAL_ORDER_FILLS_REQUEST (303).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HistoricalOrderFillsRequest {
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Days back (a range is required: 0 days and no start is rejected).
    pub number_of_days: i32,
    /// Account.
    pub trade_account: String,
    /// Start of the range, seconds (0: none; then `NumberOfDays` is required).
    #[serde(deserialize_with = "lenient_i64", skip_serializing_if = "is_zero_i64")]
    pub start_date_time: i64,
}

/// HISTORICAL_ORDER_FILL_RESPONSE (304).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HistoricalOrderFillResponse {
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Messages in the reply.
    pub total_number_messages: i32,
    /// This message's number.
    pub message_number: i32,
    /// Symbol.
    pub symbol: String,
    /// Server's id of the order.
    #[serde(rename = "ServerOrderID")]
    pub server_order_id: String,
    /// [`buy_sell`].
    pub buy_sell: i32,
    /// Fill price.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<f64>,
    /// Fill time, seconds.
    #[serde(deserialize_with = "lenient_i64")]
    pub date_time: i64,
    /// Fill quantity.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub quantity: Option<f64>,
    /// Execution id.
    #[serde(rename = "UniqueExecutionID")]
    pub unique_execution_id: String,
    /// Account.
    pub trade_account: String,
    /// The reply has no fill.
    #[serde(
        deserialize_with = "flag",
        serialize_with = "write_flag",
        skip_serializing_if = "is_false"
    )]
    pub no_order_fills: bool,
}

/// CURRENT_POSITIONS_REQUEST (305).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CurrentPositionsRequest {
    /// Request id.
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Account (empty: all).
    pub trade_account: String,
}

/// POSITION_UPDATE (306).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PositionUpdate {
    /// Request id (0: unsolicited).
    #[serde(rename = "RequestID")]
    pub request_id: i32,
    /// Messages in the reply.
    pub total_number_messages: i32,
    /// This message's number.
    pub message_number: i32,
    /// Symbol.
    pub symbol: String,
    /// Exchange.
    pub exchange: String,
    /// Signed contracts: positive long, negative short.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub quantity: Option<f64>,
    /// Average price.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub average_price: Option<f64>,
    /// Account.
    pub trade_account: String,
    /// The reply has no position.
    #[serde(
        deserialize_with = "flag",
        serialize_with = "write_flag",
        skip_serializing_if = "is_false"
    )]
    pub no_positions: bool,
    /// Pushed by the server, not a reply.
    #[serde(
        deserialize_with = "flag",
        serialize_with = "write_flag",
        skip_serializing_if = "is_false"
    )]
    pub unsolicited: bool,
    /// Open profit or loss.
    #[serde(
        deserialize_with = "unset_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub open_profit_loss: Option<f64>,
}

/// ENCODING_REQUEST (6) in JSON. The handshake is binary ([`super::frame::encoding_message`]);
/// this form is only for a server already preset to JSON, which may be asked in its own
/// encoding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EncodingRequest {
    /// Protocol version (8).
    pub protocol_version: i32,
    /// `EncodingEnum` asked for (2 = JSON).
    pub encoding: i32,
    /// "DTC".
    pub protocol_type: String,
}

/// ENCODING_RESPONSE (7) in JSON: the answer to an [`EncodingRequest`] sent in JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EncodingResponse {
    /// Protocol version (8).
    pub protocol_version: i32,
    /// `EncodingEnum` the server will use.
    pub encoding: i32,
    /// "DTC".
    pub protocol_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_is_written_first_and_names_are_exact() {
        let order = SubmitNewSingleOrder {
            symbol: "ESZ25_FUT_CME".into(),
            trade_account: "Sim1".into(),
            client_order_id: "20251124-ES-000001".into(),
            order_type: order_type::LIMIT,
            buy_sell: buy_sell::BUY,
            price1: Some(5900.25),
            quantity: 1.0,
            time_in_force: time_in_force::DAY,
            is_automated_order: true,
            is_parent_order: true,
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8(encode(&order).unwrap()).unwrap(),
            "{\"Type\":208,\"Symbol\":\"ESZ25_FUT_CME\",\"Exchange\":\"\",\"TradeAccount\":\"Sim1\",\"ClientOrderID\":\"20251124-ES-000001\",\"OrderType\":2,\"BuySell\":1,\"Price1\":5900.25,\"Quantity\":1.0,\"TimeInForce\":1,\"IsAutomatedOrder\":1,\"IsParentOrder\":1}\0"
        );
        let hb = encode(&Heartbeat::default()).unwrap();
        assert_eq!(hb, b"{\"Type\":3}\0");
    }

    #[test]
    fn logon_and_cancel_bytes() {
        let logon = LogonRequest {
            protocol_version: 8,
            heartbeat_interval_in_seconds: 10,
            client_name: "mia".into(),
            ..Default::default()
        };
        assert_eq!(
            encode(&logon).unwrap(),
            b"{\"Type\":1,\"ProtocolVersion\":8,\"Username\":\"\",\"Password\":\"\",\"HeartbeatIntervalInSeconds\":10,\"ClientName\":\"mia\"}\0"
        );
        let cancel = CancelOrder {
            server_order_id: "17".into(),
            client_order_id: "20251124-ES-1".into(),
            trade_account: "Sim1".into(),
        };
        assert_eq!(
            encode(&cancel).unwrap(),
            b"{\"Type\":203,\"ServerOrderID\":\"17\",\"ClientOrderID\":\"20251124-ES-1\",\"TradeAccount\":\"Sim1\"}\0"
        );
        let oco = SubmitNewOcoOrder {
            symbol: "ESZ25_FUT_CME".into(),
            client_order_id_1: "t".into(),
            order_type_1: order_type::LIMIT,
            buy_sell_1: buy_sell::SELL,
            price1_1: Some(5910.25),
            quantity_1: 1.0,
            client_order_id_2: "s".into(),
            order_type_2: order_type::STOP,
            buy_sell_2: buy_sell::SELL,
            price1_2: Some(5895.25),
            quantity_2: 1.0,
            time_in_force: time_in_force::DAY,
            trade_account: "Sim1".into(),
            is_automated_order: true,
            parent_trigger_client_order_id: "p".into(),
            partial_fill_handling: 1,
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8(encode(&oco).unwrap()).unwrap(),
            "{\"Type\":201,\"Symbol\":\"ESZ25_FUT_CME\",\"Exchange\":\"\",\"ClientOrderID_1\":\"t\",\"OrderType_1\":2,\"BuySell_1\":2,\"Price1_1\":5910.25,\"Quantity_1\":1.0,\"ClientOrderID_2\":\"s\",\"OrderType_2\":3,\"BuySell_2\":2,\"Price1_2\":5895.25,\"Quantity_2\":1.0,\"TimeInForce\":1,\"TradeAccount\":\"Sim1\",\"IsAutomatedOrder\":1,\"ParentTriggerClientOrderID\":\"p\",\"PartialFillHandling\":1}\0"
        );
    }

    #[test]
    fn non_finite_numbers_are_never_sent() {
        let order = SubmitNewSingleOrder {
            price1: Some(f64::NAN),
            ..Default::default()
        };
        assert!(encode(&order).is_err());
        let text = SubmitNewSingleOrder {
            free_form_text: "null, \"null\"".into(),
            ..Default::default()
        };
        assert!(encode(&text).is_ok());
    }

    #[test]
    fn unset_values_and_unknowns_are_tolerated() {
        let frame = br#"{"Type":301,"ServerOrderID":"7","ClientOrderID":"a","OrderStatus":4,"Price1":1.7976931348623157e308,"Price2":null,"FilledQuantity":0,"NoOrders":true,"SomethingNew":[1,2],"LastFillDateTime":1.7e12}"#;
        let Incoming::OrderUpdate(u) = decode(frame).unwrap() else {
            panic!()
        };
        assert_eq!(
            (
                u.price1,
                u.price2,
                u.order_quantity,
                u.filled_quantity,
                u.no_orders
            ),
            (None, None, None, Some(0.0), true)
        );
        assert_eq!(u.last_fill_date_time, 1_700_000_000_000);
        assert_eq!(
            decode(br#"{"Type":10100,"X":1}"#).unwrap(),
            Incoming::Unknown(10100)
        );
        assert!(decode(b"not json").is_err());
        assert!(decode(br#"{"NoType":1}"#).is_err());
    }

    #[test]
    fn logon_response_flags() {
        let frame = br#"{"Type":2,"Result":1,"TradingIsSupported":1,"OCOOrdersSupported":1,"BracketOrdersSupported":0}"#;
        let Incoming::LogonResponse(r) = decode(frame).unwrap() else {
            panic!()
        };
        assert!(r.trading_is_supported && r.oco_orders_supported && !r.bracket_orders_supported);
    }
}
