//! `mia dtc-sim` over real loopback TCP: raw bytes in, typed messages out.
//!
//! Every test starts its own sim on port 0 and talks to it with a plain `TcpStream`, the
//! `frame` helpers and the typed `message`s. Nothing sleeps and hopes: reads use socket
//! timeouts and loop until the expected message arrives or a deadline passes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mia::clock::Stopwatch;
use mia::dtc::frame::{ENCODING_REQUEST, Encoding, FrameDecoder, encoding_message};
use mia::dtc::message::{
    CancelOrder, CancelReplaceOrder, CurrentPositionsRequest, Heartbeat,
    HistoricalOrderFillsRequest, Incoming, LogonRequest, Message, OpenOrdersRequest, OrderUpdate,
    SecurityDefinitionForSymbolRequest, SubmitFlattenPositionOrder, SubmitNewOcoOrder,
    SubmitNewSingleOrder, TradeAccountsRequest, buy_sell, decode, encode, order_status, order_type,
    update_reason,
};
use mia::dtc::sim::{Fault, SIM_ACCOUNT, SimConfig, SimHandle, SimServer, load_prices};

use crate::support::{TestCommand, simulate_session, tmp, wait_until};

const SYMBOL: &str = "ESZ25_FUT_CME";
/// How long a test waits for a message it expects.
const DEADLINE: Duration = Duration::from_secs(10);

fn start(faults: Vec<Fault>) -> SimHandle {
    SimServer::start(SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        price: 6500.0,
        faults,
        ..SimConfig::default()
    })
    .expect("start the sim")
}

/// A raw DTC client.
struct Client {
    stream: TcpStream,
    decoder: FrameDecoder,
    /// Frames completed by each read (to see coalescing).
    frames_per_read: Vec<usize>,
}

impl Client {
    /// Connects and does the binary encoding handshake.
    fn connect(addr: SocketAddr) -> Client {
        let mut client = Client::connect_json(addr);
        client.write_raw(&encoding_message(ENCODING_REQUEST, Encoding::Json));
        let response = client.read_exact(16);
        assert_eq!(
            response,
            [
                0x10, 0x00, 0x07, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x44, 0x54,
                0x43, 0x00
            ]
        );
        client
    }

    /// Connects without a handshake (a client of a server preset to JSON).
    fn connect_json(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the sim");
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            decoder: FrameDecoder::new(),
            frames_per_read: Vec::new(),
        }
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn send<M: Message>(&mut self, message: &M) {
        self.write_raw(&encode(message).unwrap());
    }

    /// Reads exactly `n` bytes (the binary handshake), however they are split.
    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let watch = Stopwatch::start();
        let mut out = vec![0u8; n];
        let mut filled = 0;
        while filled < n {
            assert!(watch.elapsed() < DEADLINE, "timed out reading {n} bytes");
            match self.stream.read(&mut out[filled..]) {
                Ok(0) => panic!("closed after {filled} of {n} bytes"),
                Ok(k) => filled += k,
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        out
    }

    /// The next message within `within`; `None` on timeout. Panics when the server closes.
    fn next_within(&mut self, within: Duration) -> Option<Incoming> {
        self.try_next(within)
            .expect("the sim closed the connection")
    }

    /// The next message within `within`: `Ok(None)` on timeout, `Err(())` when closed.
    fn try_next(&mut self, within: Duration) -> Result<Option<Incoming>, ()> {
        let watch = Stopwatch::start();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(frame) = self.decoder.next_frame().unwrap() {
                return Ok(Some(decode(&frame).unwrap()));
            }
            if watch.elapsed() > within {
                return Ok(None);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    self.decoder.push(&buf[..n]);
                    // Each NUL ends a message.
                    let frames = buf[..n].iter().filter(|&&b| b == 0).count();
                    self.frames_per_read.push(frames);
                }
                Err(e) if is_timeout(&e) => {}
                Err(_) => return Err(()),
            }
        }
    }

    /// The next `n` messages that are not heartbeats.
    fn take(&mut self, n: usize) -> Vec<Incoming> {
        let watch = Stopwatch::start();
        let mut out = Vec::new();
        while out.len() < n {
            let left = DEADLINE.saturating_sub(watch.elapsed());
            match self.next_within(left) {
                Some(Incoming::Heartbeat(_)) => {}
                Some(message) => out.push(message),
                None => panic!("timed out after {out:#?}: expected {n} messages"),
            }
        }
        out
    }

    /// The next message that is not a heartbeat.
    fn one(&mut self) -> Incoming {
        self.take(1).remove(0)
    }

    /// The next ORDER_UPDATE.
    fn order_update(&mut self) -> OrderUpdate {
        match self.one() {
            Incoming::OrderUpdate(u) => u,
            other => panic!("expected ORDER_UPDATE, got {other:?}"),
        }
    }

    /// Logs on with a heartbeat interval and checks the LOGON_RESPONSE.
    fn logon(&mut self, heartbeat_secs: i32) {
        self.send(&LogonRequest {
            protocol_version: 8,
            heartbeat_interval_in_seconds: heartbeat_secs,
            client_name: "it".into(),
            ..Default::default()
        });
        let Incoming::LogonResponse(r) = self.one() else {
            panic!("expected LOGON_RESPONSE")
        };
        assert_eq!(r.result, 1);
        assert!(
            r.trading_is_supported
                && r.oco_orders_supported
                && r.bracket_orders_supported
                && r.order_cancel_replace_supported
                && r.security_definitions_supported
        );
        assert_eq!(r.server_name, "mia dtc-sim");
    }

    /// Waits until the server closes the connection (heartbeats are skipped).
    fn expect_closed(&mut self, within: Duration) -> Vec<Incoming> {
        let watch = Stopwatch::start();
        let mut seen = Vec::new();
        loop {
            assert!(
                watch.elapsed() < within,
                "the connection is still open; seen {seen:#?}"
            );
            match self.try_next(Duration::from_millis(100)) {
                Err(()) => return seen,
                Ok(Some(Incoming::Heartbeat(_)) | None) => {}
                Ok(Some(message)) => seen.push(message),
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn order(id: &str, kind: i32, side: i32, price: Option<f64>) -> SubmitNewSingleOrder {
    SubmitNewSingleOrder {
        symbol: SYMBOL.into(),
        trade_account: SIM_ACCOUNT.into(),
        client_order_id: id.into(),
        order_type: kind,
        buy_sell: side,
        price1: price,
        quantity: 1.0,
        time_in_force: 1,
        is_automated_order: true,
        ..Default::default()
    }
}

fn bracket_children(parent: &str, target: f64, stop: f64) -> SubmitNewOcoOrder {
    SubmitNewOcoOrder {
        symbol: SYMBOL.into(),
        trade_account: SIM_ACCOUNT.into(),
        client_order_id_1: format!("{parent}-target"),
        order_type_1: order_type::LIMIT,
        buy_sell_1: buy_sell::SELL,
        price1_1: Some(target),
        quantity_1: 1.0,
        client_order_id_2: format!("{parent}-stop"),
        order_type_2: order_type::STOP,
        buy_sell_2: buy_sell::SELL,
        price1_2: Some(stop),
        quantity_2: 1.0,
        time_in_force: 1,
        is_automated_order: true,
        parent_trigger_client_order_id: parent.into(),
        partial_fill_handling: 1,
        ..Default::default()
    }
}

fn status(u: &OrderUpdate) -> (&str, i32, i32) {
    (&u.client_order_id, u.order_status, u.order_update_reason)
}

// ---- Handshake and session -------------------------------------------------------------------

#[test]
fn documented_handshake_bytes_get_the_json_encoding_response() {
    let sim = start(vec![]);
    let mut client = Client::connect_json(sim.addr());
    client.write_raw(&[
        0x10, 0x00, 0x06, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x44, 0x54, 0x43,
        0x00,
    ]);
    let response = client.read_exact(16);
    assert_eq!(
        response,
        [
            0x10, 0x00, 0x07, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x44, 0x54,
            0x43, 0x00
        ]
    );
    client.logon(30);
}

#[test]
fn a_client_starting_with_json_needs_no_handshake() {
    let sim = start(vec![]);
    let mut client = Client::connect_json(sim.addr());
    client.write_raw(
        b"{\"Type\":1,\"ProtocolVersion\":8,\"HeartbeatIntervalInSeconds\":30,\"ClientName\":\"raw\"}\0",
    );
    let Incoming::LogonResponse(r) = client.one() else {
        panic!("expected LOGON_RESPONSE")
    };
    assert_eq!((r.result, r.server_name.as_str()), (1, "mia dtc-sim"));
    // A JSON ENCODING_REQUEST (allowed to a server preset to JSON) gets a JSON answer.
    client
        .write_raw(b"{\"Type\":6,\"ProtocolVersion\":8,\"Encoding\":2,\"ProtocolType\":\"DTC\"}\0");
    let Incoming::EncodingResponse(encoding) = client.one() else {
        panic!("expected ENCODING_RESPONSE")
    };
    assert_eq!(
        (encoding.encoding, encoding.protocol_type.as_str()),
        (2, "DTC")
    );
    wait_until(DEADLINE, "the logon is counted", || {
        sim.logons() == 1 && sim.connections() == 1
    });
}

#[test]
fn accounts_symbols_and_an_empty_account() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    client.send(&TradeAccountsRequest { request_id: 7 });
    let Incoming::TradeAccountResponse(account) = client.one() else {
        panic!("expected TRADE_ACCOUNT_RESPONSE")
    };
    assert_eq!(
        (
            account.trade_account.as_str(),
            account.request_id,
            account.total_number_messages,
            account.message_number
        ),
        ("Sim1", 7, 1, 1)
    );
    for (request_id, symbol, tick, described) in [(8, SYMBOL, 0.25, true), (9, "XYZ", 0.0, false)] {
        client.send(&SecurityDefinitionForSymbolRequest {
            request_id,
            symbol: symbol.into(),
            exchange: String::new(),
        });
        let Incoming::SecurityDefinitionResponse(def) = client.one() else {
            panic!("expected SECURITY_DEFINITION_RESPONSE (Sierra never rejects)")
        };
        assert_eq!(def.request_id, request_id);
        assert_eq!(def.min_price_increment, Some(tick));
        assert_eq!(def.display_price_multiplier, Some(1.0));
        assert_eq!(!def.description.is_empty(), described, "{def:?}");
    }
    client.send(&OpenOrdersRequest {
        request_id: 10,
        request_all_orders: 1,
        trade_account: SIM_ACCOUNT.into(),
        ..Default::default()
    });
    let none = client.order_update();
    assert!(none.no_orders && none.request_id == 10 && none.total_num_messages == 1);
    client.send(&CurrentPositionsRequest {
        request_id: 11,
        trade_account: SIM_ACCOUNT.into(),
    });
    let Incoming::PositionUpdate(p) = client.one() else {
        panic!("expected POSITION_UPDATE")
    };
    assert!(p.no_positions && p.request_id == 11);
    client.send(&HistoricalOrderFillsRequest {
        request_id: 12,
        number_of_days: 1,
        trade_account: SIM_ACCOUNT.into(),
        ..Default::default()
    });
    let Incoming::HistoricalOrderFillResponse(f) = client.one() else {
        panic!("expected HISTORICAL_ORDER_FILL_RESPONSE")
    };
    assert!(f.no_order_fills && f.request_id == 12);
    client.send(&HistoricalOrderFillsRequest {
        request_id: 13,
        ..Default::default()
    });
    let Incoming::HistoricalOrderFillsReject(reject) = client.one() else {
        panic!("expected HISTORICAL_ORDER_FILLS_REJECT without a range")
    };
    assert_eq!(reject.0.request_id, 13);
}

// ---- Orders ---------------------------------------------------------------------------------

#[test]
fn a_limit_order_fills_when_the_price_crosses_it() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    client.send(&order(
        "lim-1",
        order_type::LIMIT,
        buy_sell::BUY,
        Some(6495.0),
    ));
    let accepted = client.order_update();
    assert_eq!(
        status(&accepted),
        (
            "lim-1",
            order_status::OPEN,
            update_reason::NEW_ORDER_ACCEPTED
        )
    );
    assert!(!accepted.server_order_id.is_empty());
    sim.set_price(6495.25);
    sim.set_price(6494.75);
    let messages = client.take(2);
    let Incoming::OrderUpdate(filled) = &messages[0] else {
        panic!("expected ORDER_UPDATE first, got {messages:?}")
    };
    assert_eq!(
        status(filled),
        ("lim-1", order_status::FILLED, update_reason::ORDER_FILLED)
    );
    assert_eq!(filled.server_order_id, accepted.server_order_id);
    assert_eq!(filled.filled_quantity, Some(1.0));
    assert_eq!(filled.average_fill_price, Some(6495.0));
    assert_eq!(filled.last_fill_price, Some(6495.0));
    assert!(
        filled.last_fill_date_time > 1_600_000_000_000,
        "milliseconds"
    );
    let Incoming::PositionUpdate(position) = &messages[1] else {
        panic!("expected POSITION_UPDATE after the fill, got {messages:?}")
    };
    assert_eq!(
        (
            position.quantity,
            position.average_price,
            position.trade_account.as_str()
        ),
        (Some(1.0), Some(6495.0), "Sim1")
    );
    assert!(position.unsolicited && position.request_id == 0);
    assert_eq!(sim.position(SIM_ACCOUNT, SYMBOL), 1.0);
}

#[test]
fn a_bracket_whose_target_fills_cancels_the_stop_and_ends_flat() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    let mut parent = order("br-1", order_type::LIMIT, buy_sell::BUY, Some(6495.0));
    parent.is_parent_order = true;
    // Parent and OCO back to back in one write, as a client must send them.
    let mut bytes = encode(&parent).unwrap();
    bytes.extend(encode(&bracket_children("br-1", 6505.0, 6490.0)).unwrap());
    client.write_raw(&bytes);
    let accepted: Vec<OrderUpdate> = (0..3).map(|_| client.order_update()).collect();
    let parent_id = accepted[0].server_order_id.clone();
    assert_eq!(
        accepted.iter().map(status).collect::<Vec<_>>(),
        [
            (
                "br-1",
                order_status::OPEN,
                update_reason::NEW_ORDER_ACCEPTED
            ),
            (
                "br-1-target",
                order_status::PENDING_CHILD,
                update_reason::NEW_ORDER_ACCEPTED
            ),
            (
                "br-1-stop",
                order_status::PENDING_CHILD,
                update_reason::NEW_ORDER_ACCEPTED
            ),
        ]
    );
    assert!(
        accepted[1..]
            .iter()
            .all(|u| u.parent_server_order_id == parent_id)
    );
    assert_eq!(
        accepted[1].oco_linked_order_server_order_id,
        accepted[2].server_order_id
    );
    // The working orders come back as one batch of three with the RequestID.
    client.send(&OpenOrdersRequest {
        request_id: 1,
        request_all_orders: 1,
        trade_account: SIM_ACCOUNT.into(),
        ..Default::default()
    });
    let batch: Vec<OrderUpdate> = (0..3).map(|_| client.order_update()).collect();
    assert_eq!(
        batch
            .iter()
            .map(|u| (
                u.request_id,
                u.total_num_messages,
                u.message_number,
                u.order_update_reason
            ))
            .collect::<Vec<_>>(),
        (1..=3)
            .map(|n| (1, 3, n, update_reason::OPEN_ORDERS_REQUEST_RESPONSE))
            .collect::<Vec<_>>()
    );

    sim.set_price(6495.0);
    let fill = client.take(4);
    let updates: Vec<&OrderUpdate> = fill
        .iter()
        .filter_map(|m| match m {
            Incoming::OrderUpdate(u) => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(
        updates.iter().map(|u| status(u)).collect::<Vec<_>>(),
        [
            ("br-1", order_status::FILLED, update_reason::ORDER_FILLED),
            (
                "br-1-target",
                order_status::OPEN,
                update_reason::GENERAL_ORDER_UPDATE
            ),
            (
                "br-1-stop",
                order_status::OPEN,
                update_reason::GENERAL_ORDER_UPDATE
            ),
        ]
    );
    assert!(matches!(&fill[1], Incoming::PositionUpdate(p) if p.quantity == Some(1.0)));

    sim.set_price(6505.0);
    let exit = client.take(3);
    let Incoming::OrderUpdate(target) = &exit[0] else {
        panic!("{exit:?}")
    };
    assert_eq!(
        status(target),
        (
            "br-1-target",
            order_status::FILLED,
            update_reason::ORDER_FILLED
        )
    );
    assert!(matches!(&exit[1], Incoming::PositionUpdate(p) if p.quantity == Some(0.0)));
    let Incoming::OrderUpdate(stop) = &exit[2] else {
        panic!("{exit:?}")
    };
    assert_eq!(
        status(stop),
        (
            "br-1-stop",
            order_status::CANCELED,
            update_reason::ORDER_CANCELED
        )
    );
    assert_eq!(sim.position(SIM_ACCOUNT, SYMBOL), 0.0);
    client.send(&OpenOrdersRequest {
        request_id: 2,
        request_all_orders: 1,
        trade_account: SIM_ACCOUNT.into(),
        ..Default::default()
    });
    assert!(client.order_update().no_orders);
}

#[test]
fn a_parent_not_followed_by_its_oco_is_rejected() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    let mut parent = order("lonely", order_type::LIMIT, buy_sell::BUY, Some(6495.0));
    parent.is_parent_order = true;
    client.send(&parent);
    client.send(&TradeAccountsRequest { request_id: 3 });
    let messages = client.take(2);
    let Incoming::OrderUpdate(rejected) = &messages[0] else {
        panic!("{messages:?}")
    };
    assert_eq!(
        status(rejected),
        (
            "lonely",
            order_status::REJECTED,
            update_reason::NEW_ORDER_REJECTED
        )
    );
    assert!(rejected.info_text.contains("SUBMIT_NEW_OCO_ORDER"));
    assert!(matches!(&messages[1], Incoming::TradeAccountResponse(_)));
    assert!(sim.orders().is_empty());

    // A parent followed by nothing at all is rejected too, after a short wait.
    let mut parent = order("alone", order_type::MARKET, buy_sell::BUY, None);
    parent.is_parent_order = true;
    client.send(&parent);
    let rejected = client.order_update();
    assert_eq!(
        (rejected.client_order_id.as_str(), rejected.order_status),
        ("alone", order_status::REJECTED)
    );
    assert_eq!(sim.position(SIM_ACCOUNT, SYMBOL), 0.0);
}

#[test]
fn a_duplicate_client_order_id_is_rejected_with_info_text() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    let first = order("dup-1", order_type::LIMIT, buy_sell::BUY, Some(6400.0));
    client.send(&first);
    assert_eq!(client.order_update().order_status, order_status::OPEN);
    client.send(&first);
    let rejected = client.order_update();
    assert_eq!(
        status(&rejected),
        (
            "dup-1",
            order_status::REJECTED,
            update_reason::NEW_ORDER_REJECTED
        )
    );
    assert!(
        rejected.info_text.contains("duplicate ClientOrderID"),
        "{}",
        rejected.info_text
    );
    assert_eq!(sim.client_order_ids(), ["dup-1", "dup-1"]);
    assert_eq!(sim.orders().len(), 1);
}

#[test]
fn a_cancel_of_a_filled_order_is_rejected_and_keeps_filled() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    client.send(&order("mkt-1", order_type::MARKET, buy_sell::SELL, None));
    let accepted = client.order_update();
    let filled = client.order_update();
    assert_eq!(filled.order_status, order_status::FILLED);
    assert!(matches!(client.one(), Incoming::PositionUpdate(p) if p.quantity == Some(-1.0)));
    client.send(&CancelOrder {
        server_order_id: accepted.server_order_id.clone(),
        client_order_id: "mkt-1".into(),
        trade_account: SIM_ACCOUNT.into(),
    });
    let rejected = client.order_update();
    assert_eq!(
        status(&rejected),
        (
            "mkt-1",
            order_status::FILLED,
            update_reason::ORDER_CANCEL_REJECTED
        )
    );
    assert!(!rejected.info_text.is_empty());

    client.send(&order(
        "lim-2",
        order_type::LIMIT,
        buy_sell::SELL,
        Some(6600.0),
    ));
    let working = client.order_update();
    client.send(&CancelOrder {
        server_order_id: working.server_order_id,
        client_order_id: "lim-2".into(),
        trade_account: SIM_ACCOUNT.into(),
    });
    assert_eq!(
        status(&client.order_update()),
        (
            "lim-2",
            order_status::CANCELED,
            update_reason::ORDER_CANCELED
        )
    );
}

#[test]
fn cancel_replace_moves_the_price_and_flatten_closes_the_position() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    client.send(&order(
        "cr-1",
        order_type::LIMIT,
        buy_sell::BUY,
        Some(6400.0),
    ));
    let working = client.order_update();
    client.send(&CancelReplaceOrder {
        server_order_id: working.server_order_id.clone(),
        client_order_id: "cr-1".into(),
        price1: Some(6450.0),
        quantity: 0.0,
        price1_is_set: true,
        price2_is_set: false,
        trade_account: SIM_ACCOUNT.into(),
        ..Default::default()
    });
    let replaced = client.order_update();
    assert_eq!(
        status(&replaced),
        (
            "cr-1",
            order_status::OPEN,
            update_reason::ORDER_CANCEL_REPLACE_COMPLETE
        )
    );
    assert_eq!(
        (replaced.price1, replaced.order_quantity),
        (Some(6450.0), Some(1.0)),
        "Quantity 0 keeps the quantity"
    );
    sim.set_price(6450.0);
    assert_eq!(client.order_update().order_status, order_status::FILLED);
    assert!(matches!(client.one(), Incoming::PositionUpdate(p) if p.quantity == Some(1.0)));

    client.send(&SubmitFlattenPositionOrder {
        symbol: SYMBOL.into(),
        trade_account: SIM_ACCOUNT.into(),
        client_order_id: "flat-1".into(),
        is_automated_order: true,
        ..Default::default()
    });
    let messages = client.take(3);
    let Incoming::OrderUpdate(flatten) = &messages[1] else {
        panic!("{messages:?}")
    };
    assert_eq!(
        (flatten.buy_sell, flatten.order_type, flatten.order_status),
        (buy_sell::SELL, order_type::MARKET, order_status::FILLED)
    );
    assert!(matches!(&messages[2], Incoming::PositionUpdate(p) if p.quantity == Some(0.0)));
    assert_eq!(sim.position(SIM_ACCOUNT, SYMBOL), 0.0);
}

#[test]
fn order_updates_go_to_every_logged_on_connection() {
    let sim = start(vec![]);
    let mut trader = Client::connect(sim.addr());
    trader.logon(30);
    let mut watcher = Client::connect(sim.addr());
    watcher.logon(30);
    trader.send(&order("both-1", order_type::MARKET, buy_sell::BUY, None));
    for client in [&mut trader, &mut watcher] {
        let seen = client.take(3);
        assert!(
            matches!(&seen[1], Incoming::OrderUpdate(u) if u.order_status == order_status::FILLED)
        );
        assert!(matches!(&seen[2], Incoming::PositionUpdate(_)));
    }
}

// ---- Faults ---------------------------------------------------------------------------------

#[test]
fn split_frames_arrive_intact() {
    let sim = start(vec![Fault::SplitFrames]);
    // The 16-byte handshake answer arrives one byte at a time too.
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    client.send(&SecurityDefinitionForSymbolRequest {
        request_id: 1,
        symbol: SYMBOL.into(),
        exchange: String::new(),
    });
    assert!(matches!(
        client.one(),
        Incoming::SecurityDefinitionResponse(d) if d.min_price_increment == Some(0.25)
    ));
    client.send(&order("split-1", order_type::MARKET, buy_sell::BUY, None));
    assert_eq!(client.take(3).len(), 3);
}

#[test]
fn coalesced_frames_arrive_intact() {
    let sim = start(vec![Fault::CoalesceFrames]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    // Three requests in one write: their three answers come back in one write.
    let mut bytes = encode(&TradeAccountsRequest { request_id: 1 }).unwrap();
    for request_id in [2, 3] {
        bytes.extend(
            encode(&SecurityDefinitionForSymbolRequest {
                request_id,
                symbol: SYMBOL.into(),
                exchange: String::new(),
            })
            .unwrap(),
        );
    }
    client.frames_per_read.clear();
    client.write_raw(&bytes);
    let answers = client.take(3);
    assert!(matches!(&answers[0], Incoming::TradeAccountResponse(a) if a.request_id == 1));
    assert!(matches!(&answers[2], Incoming::SecurityDefinitionResponse(d) if d.request_id == 3));
    assert!(
        client.frames_per_read.iter().any(|&n| n > 1),
        "no read held more than one message: {:?}",
        client.frames_per_read
    );
}

#[test]
fn stop_heartbeats_makes_the_server_silent() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(1);
    // Heartbeats flow first, at the interval the client asked for.
    let watch = Stopwatch::start();
    loop {
        match client.next_within(DEADLINE) {
            Some(Incoming::Heartbeat(_)) => break,
            Some(_) => {}
            None => panic!("no heartbeat within {DEADLINE:?}"),
        }
    }
    assert!(watch.elapsed() < Duration::from_secs(3));
    sim.inject(Fault::Silence);
    client.send(&TradeAccountsRequest { request_id: 1 });
    // A silent server sends nothing at all, for well over two heartbeat intervals.
    let quiet = Stopwatch::start();
    while quiet.elapsed() < Duration::from_millis(2500) {
        if let Ok(Some(message)) = client.try_next(Duration::from_millis(100)) {
            // A heartbeat written just before the fault may still be in flight.
            assert!(
                quiet.elapsed() < Duration::from_millis(200)
                    && matches!(message, Incoming::Heartbeat(_)),
                "the silent server sent {message:?}"
            );
        }
    }
    // A new connection is served: a client that reconnects recovers.
    let mut again = Client::connect(sim.addr());
    again.logon(30);
}

#[test]
fn logoff_with_do_not_reconnect_arrives_then_the_connection_closes() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    sim.inject(Fault::Logoff);
    let seen = client.expect_closed(DEADLINE);
    assert!(
        matches!(seen.as_slice(), [Incoming::Logoff(l)] if l.do_not_reconnect && !l.reason.is_empty()),
        "{seen:?}"
    );
}

#[test]
fn disconnect_closes_every_connection() {
    let sim = start(vec![]);
    let mut clients = [Client::connect(sim.addr()), Client::connect(sim.addr())];
    for client in &mut clients {
        client.logon(30);
    }
    sim.inject(Fault::Disconnect);
    for client in &mut clients {
        assert!(client.expect_closed(DEADLINE).is_empty());
    }
    wait_until(DEADLINE, "no connection left", || sim.connections() == 0);
}

#[test]
fn reject_next_order_names_the_fault() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(30);
    sim.inject(Fault::RejectNextOrder);
    client.send(&order("rej-1", order_type::MARKET, buy_sell::BUY, None));
    let rejected = client.order_update();
    assert_eq!(rejected.order_status, order_status::REJECTED);
    assert!(
        rejected.info_text.contains("reject-next"),
        "{}",
        rejected.info_text
    );
    client.send(&order(
        "rej-2",
        order_type::LIMIT,
        buy_sell::BUY,
        Some(6000.0),
    ));
    assert_eq!(client.order_update().order_status, order_status::OPEN);
}

#[test]
fn a_silent_client_is_dropped_after_two_intervals() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    // Started before the logon: the sim's countdown starts when it reads the logon, so the
    // watch can only see more than the sim's 2 s, never less.
    let watch = Stopwatch::start();
    client.logon(1);
    client.expect_closed(DEADLINE);
    assert!(watch.elapsed() >= Duration::from_millis(1900));
}

#[test]
fn a_heartbeating_client_is_kept() {
    let sim = start(vec![]);
    let mut client = Client::connect(sim.addr());
    client.logon(1);
    let watch = Stopwatch::start();
    while watch.elapsed() < Duration::from_secs(3) {
        client.send(&Heartbeat::default());
        let _ = client.next_within(Duration::from_millis(400));
    }
    client.send(&TradeAccountsRequest { request_id: 4 });
    assert!(matches!(client.one(), Incoming::TradeAccountResponse(_)));
}

#[test]
fn a_bad_frame_closes_only_its_connection() {
    let sim = start(vec![]);
    let mut bad = Client::connect(sim.addr());
    bad.logon(30);
    bad.write_raw(b"{\"Type\":208,\"Quantity\":\"lots\"}\0");
    bad.expect_closed(DEADLINE);
    let mut garbage = Client::connect_json(sim.addr());
    garbage.write_raw(b"GET / HTTP/1.1\r\n\r\n");
    garbage.expect_closed(DEADLINE);
    let mut good = Client::connect(sim.addr());
    good.logon(30);
}

// ---- Prices and the binary ------------------------------------------------------------------

#[test]
fn recorded_bar_closes_drive_the_price() {
    let dir = tmp();
    simulate_session(dir.path(), 5, 3, false);
    let prices = load_prices(dir.path()).expect("prices");
    assert_eq!(prices.len(), 5, "{prices:?}");
    let sim = start(vec![]);
    sim.replay_prices(prices.clone(), Duration::from_millis(5));
    let last = prices[prices.len() - 1];
    wait_until(DEADLINE, "the last recorded close", || sim.price() == last);
}

#[test]
fn the_binary_prints_its_address_and_answers_a_logon() {
    let dir = tmp();
    let mut child = TestCommand::new([
        "dtc-sim",
        "--listen",
        "127.0.0.1:0",
        "--control",
        "127.0.0.1:0",
        "--price",
        "6500.25",
    ])
    .spawn(dir.path(), "sim");
    let stdout = dir.path().join("sim.stdout");
    let mut text = String::new();
    wait_until(DEADLINE, "the printed addresses", || {
        text = std::fs::read_to_string(&stdout).unwrap_or_default();
        text.contains("control on ")
    });
    let addr_of = |prefix: &str| -> SocketAddr {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
        line[prefix.len()..].trim().parse().unwrap()
    };
    let (addr, control) = (addr_of("listening on "), addr_of("control on "));
    let mut client = Client::connect(addr);
    client.logon(30);

    let mut ctl = TcpStream::connect(control).unwrap();
    ctl.set_read_timeout(Some(DEADLINE)).unwrap();
    ctl.write_all(b"price 6501.25\nstate\nfault nonsense\n")
        .unwrap();
    let mut replies = String::new();
    let mut buf = [0u8; 1024];
    while replies.lines().count() < 3 {
        let n = ctl.read(&mut buf).unwrap();
        assert!(n > 0, "control closed: {replies}");
        replies.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let lines: Vec<&str> = replies.lines().collect();
    assert_eq!(lines[0], "ok price 6501.25");
    assert!(
        lines[1].starts_with("ok price 6501.25 connections 1"),
        "{replies}"
    );
    assert!(lines[2].starts_with("error: unknown fault"), "{replies}");

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_binary_refuses_a_start_fault_that_would_do_nothing() {
    let ran = TestCommand::new(["dtc-sim", "--listen", "127.0.0.1:0", "--fault", "silent"]).run();
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr.contains("--fault silent@SECONDS"),
        "{}",
        ran.stderr
    );
    let ran = TestCommand::new(["dtc-sim", "--fault", "splat"]).run();
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("unknown fault"), "{}", ran.stderr);
}
