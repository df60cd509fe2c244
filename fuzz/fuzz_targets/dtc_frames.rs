//! DTC bytes from a server: `mia::dtc::frame` (handshake, `FrameDecoder`) and
//! `mia::dtc::message::decode`.
//!
//! The input is what a server sends on one connection. As the sim server reads a client, a
//! stream that does not start with `{` begins with the 16-byte binary encoding message (the
//! binary handshake; `parse_encoding_message`), and everything after it is NUL-terminated JSON.
//! The JSON part is fed to a `FrameDecoder` three ways: all at once, in pieces of 1 to 64 bytes
//! (cut points derived from the input) and one byte at a time. Never a panic; the three give the
//! same frames and leave the same bytes pending, which are exactly the NUL-separated pieces of the
//! stream. Every non-empty frame (the client skips empty ones) decodes to a message or an error;
//! a decoded message of a type mia knows encodes again (`message::encode`) to a frame that decodes
//! to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mia::dtc::frame::{
    ENCODING_MESSAGE_SIZE, EncodingMessage, FrameDecoder, PROTOCOL_VERSION, encoding_message,
    parse_encoding_message,
};
use mia::dtc::message::{Incoming, decode, encode};

/// Feeds `chunks` one at a time, taking every frame out after each; returns the frames and the
/// bytes left pending.
fn frames<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Vec<u8>>, usize) {
    let mut decoder = FrameDecoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        // Inputs are far below `MAX_FRAME`, so a frame error is a bug.
        while let Some(frame) = decoder
            .next_frame()
            .expect("no frame error below MAX_FRAME")
        {
            out.push(frame);
        }
    }
    (out, decoder.pending())
}

/// FNV-1a of the input, the seed of the cut points.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Cuts `data` into pieces of 1 to 64 bytes, from a seed.
fn pieces(data: &[u8], mut seed: u64) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = (((seed >> 33) % 64) as usize + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// The binary handshake: whatever the 16 bytes, a parsed message or an error; a parsed one is
/// what `encoding_message` writes for its type and encoding (apart from the peer's version).
fn handshake(bytes: &[u8; ENCODING_MESSAGE_SIZE]) {
    if let Ok(m) = parse_encoding_message(bytes) {
        let again = parse_encoding_message(&encoding_message(m.message_type, m.encoding))
            .expect("what mia writes it parses");
        assert_eq!(
            again,
            EncodingMessage {
                protocol_version: PROTOCOL_VERSION,
                ..m
            }
        );
    }
}

/// Encodes a decoded message again; `None` for types mia does not know.
fn reencode(msg: &Incoming) -> Option<Vec<u8>> {
    macro_rules! arms {
        ($($variant:ident),* $(,)?) => {
            match msg {
                $(Incoming::$variant(m) => Some(encode(m)),)*
                Incoming::Unknown(_) => None,
            }
        };
    }
    let encoded = arms!(
        LogonRequest,
        LogonResponse,
        Heartbeat,
        Logoff,
        SubmitNewOcoOrder,
        CancelOrder,
        CancelReplaceOrder,
        SubmitNewSingleOrder,
        SubmitFlattenPositionOrder,
        OpenOrdersRequest,
        OrderUpdate,
        OpenOrdersReject,
        HistoricalOrderFillsRequest,
        HistoricalOrderFillResponse,
        CurrentPositionsRequest,
        PositionUpdate,
        CurrentPositionsReject,
        HistoricalOrderFillsReject,
        TradeAccountsRequest,
        TradeAccountResponse,
        SecurityDefinitionForSymbolRequest,
        SecurityDefinitionResponse,
        SecurityDefinitionReject,
        EncodingRequest,
        EncodingResponse,
    )?;
    Some(encoded.unwrap_or_else(|e| panic!("a decoded message does not encode: {e} ({msg:?})")))
}

fn check_message(frame: &[u8]) {
    let Ok(msg) = decode(frame) else {
        return;
    };
    let Some(mut bytes) = reencode(&msg) else {
        return;
    };
    assert_eq!(bytes.pop(), Some(0), "an encoded message ends with its NUL");
    assert!(
        !bytes.contains(&0),
        "an encoded message holds one NUL, at its end"
    );
    match decode(&bytes) {
        Ok(again) => assert_eq!(
            again,
            msg,
            "{} re-encoded as {} decodes differently",
            String::from_utf8_lossy(frame),
            String::from_utf8_lossy(&bytes)
        ),
        Err(e) => panic!(
            "{} re-encoded as {} does not decode: {e}",
            String::from_utf8_lossy(frame),
            String::from_utf8_lossy(&bytes)
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let json = match data {
        [b'{', ..] => data,
        _ if data.len() >= ENCODING_MESSAGE_SIZE => {
            let (head, rest) = data.split_at(ENCODING_MESSAGE_SIZE);
            handshake(head.try_into().expect("16 bytes"));
            rest
        }
        _ => data,
    };

    let (at_once, pending) = frames([json]);
    // The model: the NUL-separated pieces, the last one (without its NUL) pending.
    let mut parts: Vec<&[u8]> = json.split(|b| *b == 0).collect();
    let tail = parts.pop().expect("split yields at least one piece");
    assert_eq!(pending, tail.len());
    assert_eq!(at_once.len(), parts.len());
    assert!(at_once.iter().zip(&parts).all(|(f, p)| f == p));

    let split = frames(pieces(json, hash(data)));
    assert_eq!(
        split,
        (at_once.clone(), pending),
        "frames depend on how the stream is cut"
    );
    let bytewise = frames(json.chunks(1));
    assert_eq!(
        bytewise,
        (at_once.clone(), pending),
        "frames fed one byte at a time differ"
    );

    for frame in at_once.iter().filter(|f| !f.is_empty()) {
        check_message(frame);
    }
});
