//! Property tests of the DTC frame decoder and message decoder (product.md §15: the client
//! survives split and coalesced frames and any bytes a peer sends).
//!
//! They run a bounded number of cases in `cargo test`; `PROPTEST_CASES=100000 cargo test --test
//! it props_dtc` runs longer (docs/fuzzing.md). Failures are saved under
//! `tests/data/proptest-regressions/` and replayed first on every later run.

use mia::dtc::frame::FrameDecoder;
use mia::dtc::message::{Heartbeat, Incoming, decode, encode};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    crate::support::proptest_config(cases, "tests/data/proptest-regressions/props_dtc.txt")
}

/// A frame body: any bytes but NUL (the terminator).
fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..200)
}

/// Feeds `chunks` one at a time and takes every frame out after each; stops at an error.
fn decode_all(chunks: &[Vec<u8>]) -> (Vec<Vec<u8>>, bool) {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

/// Cuts `bytes` at the given fractions of its length.
fn cut(bytes: &[u8], cuts: &[f64]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|f| (f * bytes.len() as f64) as usize)
        .collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .collect()
}

proptest! {
    #![proptest_config(config(512))]

    /// Frames come out whole and in order however the stream is split or coalesced.
    #[test]
    fn frames_survive_any_split(
        bodies in proptest::collection::vec(body(), 0..20),
        cuts in proptest::collection::vec(0.0f64..1.0, 0..30),
    ) {
        let mut stream = Vec::new();
        for b in &bodies {
            stream.extend_from_slice(b);
            stream.push(0);
        }
        let (frames, failed) = decode_all(&cut(&stream, &cuts));
        prop_assert!(!failed);
        prop_assert_eq!(frames, bodies);
    }

    /// Any bytes: the decoder returns frames or an error, never panics, and holds no more than
    /// what it was given.
    #[test]
    fn the_frame_decoder_never_panics(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
    ) {
        let given: usize = chunks.iter().map(Vec::len).sum();
        let (frames, _) = decode_all(&chunks);
        let taken: usize = frames.iter().map(|f| f.len() + 1).sum();
        prop_assert!(taken <= given);
    }

    /// Any frame decodes to a message or an error; never a panic.
    #[test]
    fn message_decoding_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes);
    }

    /// Valid messages with bytes flipped, cut or inserted: a message or an error, never a panic.
    #[test]
    fn message_decoding_never_panics_on_mutated_messages(
        which in 0usize..SAMPLES.len(),
        edits in proptest::collection::vec((0.0f64..1.0, any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = SAMPLES[which].as_bytes().to_vec();
        for (at, byte, op) in edits {
            let i = ((bytes.len() as f64) * at) as usize;
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.insert(i.min(bytes.len()), byte),
            }
        }
        let _ = decode(&bytes);
    }

    /// What mia encodes, it decodes to the same message.
    #[test]
    fn heartbeats_round_trip(dropped in any::<u32>(), time in any::<i64>()) {
        let sent = Heartbeat { num_dropped_messages: dropped, current_date_time: time };
        let mut frame = encode(&sent).unwrap();
        prop_assert_eq!(frame.pop(), Some(0));
        match decode(&frame) {
            Ok(Incoming::Heartbeat(got)) => prop_assert_eq!(got, sent),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}

/// Real-looking frames of the types mia reads (Sierra's field names and number styles).
const SAMPLES: &[&str] = &[
    r#"{"Type":2,"ProtocolVersion":8,"Result":1,"ResultText":"Logon OK","ServerName":"Sierra","MarketDepthUpdatesBestBidAndAsk":1,"TradingIsSupported":1,"OCOOrdersSupported":1,"OrderCancelReplaceSupported":1,"SymbolExchangeDelimiter":"","SecurityDefinitionsSupported":1,"HistoricalPriceDataSupported":0,"ResubscribeWhenMarketDataFeedAvailable":1,"MarketDepthIsSupported":1,"OneHistoricalPriceDataRequestPerConnection":0,"BracketOrdersSupported":1,"UseIntegerPriceOrderMessages":0,"UsesMultiplePositionsPerSymbolAndTradeAccount":0,"MarketDataSupported":1}"#,
    r#"{"Type":301,"RequestID":0,"TotalNumMessages":1,"MessageNumber":1,"Symbol":"ESZ25_FUT_CME","Exchange":"","PreviousServerOrderID":"","ServerOrderID":"1201","ClientOrderID":"20251208-ES-1","ExchangeOrderID":"","OrderStatus":7,"OrderUpdateReason":4,"OrderType":1,"BuySell":1,"Price1":0.0,"Price2":0.0,"TimeInForce":1,"GoodTillDateTime":0,"OrderQuantity":2.0,"FilledQuantity":2.0,"RemainingQuantity":0.0,"AverageFillPrice":6500.25,"LastFillPrice":6500.25,"LastFillDateTime":1765206000,"LastFillQuantity":2.0,"LastFillExecutionID":"E1","TradeAccount":"Sim1","InfoText":"","NoOrders":0,"ParentServerOrderID":"","OCOLinkedOrderServerOrderID":"","OpenOrClose":0,"PreviousClientOrderID":"","FreeFormText":"","OrderReceivedDateTime":1765206000}"#,
    r#"{"Type":306,"RequestID":0,"TotalNumberMessages":1,"MessageNumber":1,"Symbol":"ESZ25_FUT_CME","Exchange":"","Quantity":-2,"AveragePrice":6500.25,"PositionIdentifier":"","TradeAccount":"Sim1","NoPositions":0,"Unsolicited":1}"#,
    r#"{"Type":3,"NumDroppedMessages":0,"CurrentDateTime":1765206000}"#,
    r#"{"Type":5,"Reason":"server shutting down","DoNotReconnect":1}"#,
    r#"{"Type":401,"TotalNumberMessages":1,"MessageNumber":1,"TradeAccount":"Sim1","RequestID":3}"#,
];
