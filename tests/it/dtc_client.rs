//! mia's DTC client against the DTC simulator, over real loopback TCP.
//!
//! The simulator runs in-process (`SimServer`, the code behind `mia dtc-sim`), so each test can
//! move its price, inject faults and inspect what it received; one test uses the real
//! `mia dtc-sim` process.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use mia::clock::LiveClock;
use mia::dtc::DtcError;
use mia::dtc::client::{
    Bracket, ClientConfig, ClientEvent, DtcClient, Handshake, Secret, SessionStatus, Side,
};
use mia::dtc::message::order_status;
use mia::dtc::orders::OrderEvent;
use mia::dtc::sim::{Fault, SimConfig, SimHandle, SimServer};
use mia::execution::{Live, OrderLine, OrderRecord, journal_order};
use mia::journal::Journal;
use mia::model::Timestamp;

use super::support::{TestCommand, tmp, wait_until};

const SYMBOL: &str = "ESZ25_FUT_CME";
const WAIT: Duration = Duration::from_secs(20);

fn sim() -> SimHandle {
    SimServer::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        price: 6500.0,
        ..SimConfig::default()
    })
    .unwrap()
}

fn config(addr: &str, state: &Path) -> ClientConfig {
    ClientConfig {
        addr: addr.to_owned(),
        symbol: SYMBOL.into(),
        tick_size: 0.25,
        trade_account: "Sim1".into(),
        username: String::new(),
        password: Secret::default(),
        // Long enough that a test thread or session thread paused on a loaded machine is not
        // taken for a silent peer; the silence test shortens it.
        heartbeat: Duration::from_secs(5),
        handshake: Handshake::BinaryRequest,
        reconnect_initial: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(400),
        request_timeout: Duration::from_secs(5),
        id_prefix: "ES".into(),
        state_dir: state.to_owned(),
    }
}

fn start(addr: &str, state: &Path) -> DtcClient {
    let client = DtcClient::start(config(addr, state), Arc::new(LiveClock)).unwrap();
    wait_for(&client, "ready", |e| matches!(e, ClientEvent::Ready { .. }));
    client
}

/// Waits for an event matching `want`, skipping others.
fn wait_for(client: &DtcClient, what: &str, want: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
    let watch = mia::clock::Stopwatch::start();
    loop {
        let left = WAIT.checked_sub(watch.elapsed());
        let Some(left) = left else {
            panic!(
                "no {what} event within {WAIT:?}; status {:?}",
                client.status()
            )
        };
        if let Some(event) = client.next_event(left)
            && want(&event)
        {
            return event;
        }
    }
}

fn long(target: f64, stop: f64) -> Bracket {
    Bracket {
        side: Side::Buy,
        quantity: 1,
        entry: None,
        target,
        stop,
    }
}

fn status(client: &DtcClient, id: &str) -> i32 {
    client.order(id).map_or(-1, |o| o.status)
}

#[test]
fn a_bracket_whose_target_fills_cancels_the_stop_and_leaves_the_position_flat() {
    let state = tmp();
    let sim = sim();
    let client = start(&sim.addr().to_string(), state.path());
    let ids = client.submit_bracket(long(6505.0, 6495.0)).unwrap();
    // The market entry fills at once; the children wait for it, then work.
    wait_until(WAIT, "entry filled and children working", || {
        status(&client, &ids.parent) == order_status::FILLED
            && status(&client, &ids.target) == order_status::OPEN
            && status(&client, &ids.stop) == order_status::OPEN
            && client.position(SYMBOL) == 1.0
    });
    sim.set_price(6505.0);
    wait_until(WAIT, "target filled, stop canceled, flat", || {
        status(&client, &ids.target) == order_status::FILLED
            && status(&client, &ids.stop) == order_status::CANCELED
            && client.position(SYMBOL) == 0.0
    });
    assert_eq!(sim.position("Sim1", SYMBOL), 0.0);
    let target = client.order(&ids.target).unwrap();
    assert_eq!(
        (target.filled, target.average_fill_price),
        (1.0, Some(6505.0))
    );
}

#[test]
fn the_parent_and_its_oco_arrive_back_to_back() {
    let state = tmp();
    let sim = sim();
    let client = start(&sim.addr().to_string(), state.path());
    client.submit_bracket(long(6505.0, 6495.0)).unwrap();
    wait_until(WAIT, "the OCO", || {
        sim.received().iter().any(|r| r.message_type == 201)
    });
    let types: Vec<u16> = sim.received().iter().map(|r| r.message_type).collect();
    let parent = types.iter().position(|t| *t == 208).unwrap();
    assert_eq!(
        types[parent + 1],
        201,
        "nothing between the parent and its OCO: {types:?}"
    );
}

#[test]
fn split_and_coalesced_frames_are_read_whole() {
    for fault in [Fault::SplitFrames, Fault::CoalesceFrames] {
        let state = tmp();
        let sim = sim();
        sim.inject(fault);
        let client = start(&sim.addr().to_string(), state.path());
        let ids = client.submit_bracket(long(6505.0, 6495.0)).unwrap();
        sim.set_price(6494.0);
        wait_until(WAIT, "stop filled through the fault", || {
            status(&client, &ids.stop) == order_status::FILLED
                && status(&client, &ids.target) == order_status::CANCELED
                && client.position(SYMBOL) == 0.0
        });
    }
}

#[test]
fn a_silent_server_times_out_and_the_client_resyncs_before_the_next_order() {
    let state = tmp();
    let sim = sim();
    let client = DtcClient::start(
        ClientConfig {
            heartbeat: Duration::from_secs(1),
            ..config(&sim.addr().to_string(), state.path())
        },
        Arc::new(LiveClock),
    )
    .unwrap();
    wait_for(&client, "ready", |e| matches!(e, ClientEvent::Ready { .. }));
    sim.inject(Fault::Silence);
    // Silence keeps the connection open: only the heartbeat timeout (2 × 1 s) can notice.
    let gone = wait_for(&client, "disconnect", |e| {
        matches!(e, ClientEvent::Disconnected { .. })
    });
    let ClientEvent::Disconnected { reason } = gone else {
        unreachable!()
    };
    assert!(reason.contains("twice the heartbeat interval"), "{reason}");
    wait_for(&client, "second ready", |e| {
        matches!(e, ClientEvent::Ready { connection: 2, .. })
    });
    client.submit_bracket(long(6505.0, 6495.0)).unwrap();
    wait_until(WAIT, "the order on the new connection", || {
        sim.received().iter().any(|r| r.message_type == 201)
    });
    let second: Vec<u16> = sim
        .received()
        .iter()
        .filter(|r| r.connection == 2)
        .map(|r| r.message_type)
        .filter(|t| *t != 3)
        .collect();
    // Logon, accounts, security definition, open orders, positions, fills: then the order.
    assert_eq!(second, [1, 400, 506, 300, 305, 303, 208, 201]);
}

#[test]
fn orders_are_refused_while_the_route_is_down() {
    let state = tmp();
    let sim = sim();
    let addr = sim.addr().to_string();
    let client = start(&addr, state.path());
    sim.stop();
    wait_for(&client, "disconnect", |e| {
        matches!(e, ClientEvent::Disconnected { .. })
    });
    let err = client.submit_bracket(long(6505.0, 6495.0)).unwrap_err();
    assert!(matches!(err, DtcError::NotReady(_)), "{err}");
}

#[test]
fn logoff_with_do_not_reconnect_stops_for_good() {
    let state = tmp();
    let sim = sim();
    let client = start(&sim.addr().to_string(), state.path());
    sim.inject(Fault::Logoff);
    let event = wait_for(&client, "logoff", |e| {
        matches!(e, ClientEvent::LoggedOff { .. })
    });
    assert!(
        matches!(
            event,
            ClientEvent::LoggedOff {
                do_not_reconnect: true,
                ..
            }
        ),
        "{event:?}"
    );
    wait_until(WAIT, "the session thread to end", || client.is_finished());
    assert!(matches!(client.status(), SessionStatus::Stopped(r) if r.contains("DoNotReconnect")));
    // The thread has returned, so no reconnect can come; the server saw one logon.
    assert_eq!(sim.logons(), 1);
}

#[test]
fn a_rejected_order_carries_its_info_text_into_the_order_journal() {
    let state = tmp();
    let sim = sim();
    let client = start(&sim.addr().to_string(), state.path());
    sim.inject(Fault::RejectNextOrder);
    let ids = client.submit_bracket(long(6505.0, 6495.0)).unwrap();
    // The server rejects the three legs in three reports: wait for the last one, not the first.
    wait_until(WAIT, "the reject of the whole bracket", || {
        [&ids.parent, &ids.target, &ids.stop]
            .iter()
            .all(|id| status(&client, id) == order_status::REJECTED)
    });
    let parent = client.order(&ids.parent).unwrap();
    assert!(!parent.info_text.is_empty());
    // What the engine does with session events: poll them through execution and journal them.
    let live = Live::new(BTreeMap::from([("ES".to_owned(), client)]));
    let mut journal = Journal::create(&state.path().join("journal"), false).unwrap();
    let now = Timestamp::from_secs(1_763_999_999);
    // The book is updated just before its event is queued: poll until the three events are out.
    let mut events = Vec::new();
    wait_until(WAIT, "the three reject events", || {
        events.extend(live.poll_events());
        events
            .iter()
            .filter(|(_, e)| matches!(e, ClientEvent::Order(OrderEvent::Rejected { .. })))
            .count()
            == 3
    });
    for (instrument, event) in events {
        let line = OrderLine {
            ts: now.to_iso_millis(),
            instrument: &instrument,
            set: "live",
            record: &OrderRecord::Session(event),
        };
        journal_order(&mut journal, "20251124", &line).unwrap();
    }
    journal.commit().unwrap();
    let text = std::fs::read_to_string(state.path().join("journal/orders_20251124.jsonl")).unwrap();
    let rejects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["order"] == "rejected")
        .collect();
    // A bracket is rejected whole: the parent and both children, each with the server's text.
    let rejected: Vec<&str> = rejects
        .iter()
        .map(|r| r["client_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(rejected, [&ids.parent, &ids.target, &ids.stop], "{text}");
    for r in &rejects {
        assert_eq!(
            (&r["event"], &r["instrument"]),
            (&serde_json::json!("order"), &serde_json::json!("ES"))
        );
        assert_eq!(r["info_text"], serde_json::json!(parent.info_text));
    }
}

#[test]
fn client_order_ids_are_never_reused_across_a_restart() {
    let state = tmp();
    let sim = sim();
    let addr = sim.addr().to_string();
    let first = start(&addr, state.path());
    let a = first.submit_bracket(long(6505.0, 6495.0)).unwrap();
    first.stop();
    let second = start(&addr, state.path());
    let b = second.submit_bracket(long(6505.0, 6495.0)).unwrap();
    wait_until(WAIT, "both brackets at the server", || {
        sim.client_order_ids().len() == 6
    });
    let mut ids = sim.client_order_ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert_ne!(a.parent, b.parent);
    assert!(
        sim.orders()
            .iter()
            .all(|o| o.status != order_status::REJECTED)
    );
}

#[test]
fn client_against_the_dtc_sim_process() {
    let dir = tmp();
    let mut child = TestCommand::new(["dtc-sim", "--listen", "127.0.0.1:0", "--price", "6500"])
        .spawn(dir.path(), "sim");
    let out = dir.path().join("sim.stdout");
    let mut addr = String::new();
    wait_until(WAIT, "the sim's address", || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        match text
            .split_whitespace()
            .find(|w| w.starts_with("127.0.0.1:"))
        {
            Some(a) => {
                addr = a.trim_end_matches([',', '.']).to_owned();
                true
            }
            None => false,
        }
    });
    let client = start(&addr, &dir.path().join("state"));
    let ids = client.submit_bracket(long(6505.0, 6495.0)).unwrap();
    wait_until(WAIT, "entry filled", || {
        status(&client, &ids.parent) == order_status::FILLED && client.position(SYMBOL) == 1.0
    });
    client.flatten().unwrap();
    wait_until(WAIT, "flat after flatten", || {
        client.position(SYMBOL) == 0.0
            && status(&client, &ids.stop) == order_status::CANCELED
            && status(&client, &ids.target) == order_status::CANCELED
    });
    drop(client);
    let _ = child.kill();
    let _ = child.wait();
}
