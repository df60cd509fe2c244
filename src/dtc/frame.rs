//! DTC framing: the 16-byte binary encoding handshake, then NUL-terminated JSON messages.
//!
//! TCP delivers bytes in random lengths, so [`FrameDecoder`] buffers them: half a message is a
//! normal state that waits for more bytes, and one read may hold several messages. JSON strings
//! cannot contain a raw NUL (it would be `\u0000`), so splitting on `0x00` is exact.

use super::DtcError;

/// The DTC protocol version mia speaks (the header's `CURRENT_VERSION`).
pub const PROTOCOL_VERSION: i32 = 8;
/// `ENCODING_REQUEST` message type (binary, 16 bytes).
pub const ENCODING_REQUEST: u16 = 6;
/// `ENCODING_RESPONSE` message type (binary, 16 bytes).
pub const ENCODING_RESPONSE: u16 = 7;
/// Size of the binary encoding request and response.
pub const ENCODING_MESSAGE_SIZE: usize = 16;
/// Largest JSON message accepted; a peer that sends more without a NUL is broken.
pub const MAX_FRAME: usize = 1 << 20;

/// `EncodingEnum` of the DTC header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Fixed binary structs.
    Binary,
    /// Binary with variable-length strings.
    BinaryVls,
    /// NUL-terminated JSON objects (what mia uses).
    Json,
    /// JSON with positional arrays for high-frequency messages.
    JsonCompact,
    /// Protocol buffers.
    Protobuf,
}

impl Encoding {
    /// The wire value.
    pub fn code(self) -> i32 {
        match self {
            Encoding::Binary => 0,
            Encoding::BinaryVls => 1,
            Encoding::Json => 2,
            Encoding::JsonCompact => 3,
            Encoding::Protobuf => 4,
        }
    }

    /// The encoding of a wire value.
    pub fn from_code(code: i32) -> Option<Encoding> {
        Some(match code {
            0 => Encoding::Binary,
            1 => Encoding::BinaryVls,
            2 => Encoding::Json,
            3 => Encoding::JsonCompact,
            4 => Encoding::Protobuf,
            _ => return None,
        })
    }
}

/// The binary `ENCODING_REQUEST` (or `ENCODING_RESPONSE` with `message_type` 7): Size, Type,
/// ProtocolVersion, Encoding, ProtocolType "DTC", little-endian.
pub fn encoding_message(message_type: u16, encoding: Encoding) -> [u8; ENCODING_MESSAGE_SIZE] {
    let mut b = [0u8; ENCODING_MESSAGE_SIZE];
    b[0..2].copy_from_slice(&(ENCODING_MESSAGE_SIZE as u16).to_le_bytes());
    b[2..4].copy_from_slice(&message_type.to_le_bytes());
    b[4..8].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    b[8..12].copy_from_slice(&encoding.code().to_le_bytes());
    b[12..15].copy_from_slice(b"DTC");
    b
}

/// A parsed binary encoding request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingMessage {
    /// 6 (request) or 7 (response).
    pub message_type: u16,
    /// Peer's protocol version.
    pub protocol_version: i32,
    /// Encoding asked for or granted.
    pub encoding: Encoding,
}

/// Parses a binary encoding request or response.
///
/// # Errors
///
/// [`DtcError::Protocol`] when the bytes are not one.
pub fn parse_encoding_message(
    b: &[u8; ENCODING_MESSAGE_SIZE],
) -> Result<EncodingMessage, DtcError> {
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let i32_at = |i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let size = u16_at(0);
    let message_type = u16_at(2);
    if usize::from(size) != ENCODING_MESSAGE_SIZE
        || !(message_type == ENCODING_REQUEST || message_type == ENCODING_RESPONSE)
    {
        return Err(DtcError::Protocol(format!(
            "expected a 16-byte binary encoding message, got size {size} type {message_type} ({b:02x?})"
        )));
    }
    let code = i32_at(8);
    let encoding = Encoding::from_code(code)
        .ok_or_else(|| DtcError::Protocol(format!("unknown encoding {code}")))?;
    Ok(EncodingMessage {
        message_type,
        protocol_version: i32_at(4),
        encoding,
    })
}

/// Splits a byte stream into NUL-terminated JSON frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a NUL (so a long frame arriving one byte at a time
    /// is scanned once, not once per byte).
    scanned: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered that do not yet form a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, without its NUL; `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`DtcError::Protocol`] when more than [`MAX_FRAME`] bytes arrive without a NUL.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, DtcError> {
        match memchr::memchr(0, &self.buf[self.scanned..]) {
            Some(i) => {
                let end = self.scanned + i;
                let frame = self.buf[..end].to_vec();
                self.buf.drain(..=end);
                self.scanned = 0;
                Ok(Some(frame))
            }
            None if self.buf.len() > MAX_FRAME => Err(DtcError::Protocol(format!(
                "{} bytes without a message terminator",
                self.buf.len()
            ))),
            None => {
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_request_is_the_documented_byte_image() {
        assert_eq!(
            encoding_message(ENCODING_REQUEST, Encoding::Json),
            [
                0x10, 0x00, 0x06, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x44, 0x54,
                0x43, 0x00
            ]
        );
        let parsed = parse_encoding_message(&encoding_message(ENCODING_RESPONSE, Encoding::Json));
        assert_eq!(
            parsed.unwrap(),
            EncodingMessage {
                message_type: ENCODING_RESPONSE,
                protocol_version: 8,
                encoding: Encoding::Json
            }
        );
    }

    #[test]
    fn a_json_reply_is_not_an_encoding_message() {
        let mut b = [0u8; 16];
        b.copy_from_slice(b"{\"Type\":2,\"Resul");
        assert!(parse_encoding_message(&b).is_err());
    }

    #[test]
    fn split_and_coalesced_frames() {
        let mut d = FrameDecoder::new();
        d.push(b"{\"Type\":3}\0{\"Ty");
        assert_eq!(d.next_frame().unwrap().unwrap(), b"{\"Type\":3}");
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(b"pe\":5}");
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(b"\0\0");
        assert_eq!(d.next_frame().unwrap().unwrap(), b"{\"Type\":5}");
        assert_eq!(d.next_frame().unwrap().unwrap(), b"");
        assert_eq!((d.next_frame().unwrap(), d.pending()), (None, 0));
    }

    #[test]
    fn an_endless_frame_is_an_error() {
        let mut d = FrameDecoder::new();
        d.push(&vec![b'x'; MAX_FRAME + 1]);
        assert!(d.next_frame().is_err());
    }
}
