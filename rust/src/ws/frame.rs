//! WebSocket framing (RFC 6455 §5), sans-IO: client frame encoding, server frame decoding, and message
//! reassembly (fragments, control frames, permessage-deflate's RSV1). Fuzzed against a reference decoder in
//! rust/tests/ws_frame_fuzz.rs.

use super::deflate::{Inflater, MAX_MESSAGE};

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// Append one final, masked client frame.
pub fn encode(out: &mut Vec<u8>, opcode: u8, rsv1: bool, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | if rsv1 { 0x40 } else { 0 } | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
}

#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Accumulates bytes from the socket and yields complete frames.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, or `None` until more bytes are fed. A decoder that has handed out everything it
    /// was fed gives its buffer back, so a socket between frames holds no receive buffer at a burst's size.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        let frame = self.parse();
        if matches!(frame, Ok(None)) {
            self.release();
        }
        frame
    }

    /// Bytes of buffer this decoder holds (for tests).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = Vec::new();
        } else if self.buf.capacity() > 2 * self.buf.len() + 4096 {
            // A partial frame behind a burst: keep room for it, not for the burst.
            self.buf.shrink_to(2 * self.buf.len());
        }
    }

    fn parse(&mut self) -> Result<Option<Frame>, String> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        if b[0] & 0x30 != 0 {
            return Err("frame with RSV2/RSV3 set".into());
        }
        // RFC 6455 §5.1: a client must fail the connection on a masked frame, as tungstenite (the real client's
        // WebSocket library) does; the backend never masks.
        if b[1] & 0x80 != 0 {
            return Err("masked frame from the server".into());
        }
        let (len, at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as u64, 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()), 10),
            126 | 127 => return Ok(None),
            n => (n as u64, 2),
        };
        if len > MAX_MESSAGE as u64 {
            return Err("frame larger than 64 MiB".into());
        }
        let end = at + len as usize;
        if b.len() < end {
            return Ok(None);
        }
        let payload = b[at..end].to_vec();
        let frame = Frame { fin: b[0] & 0x80 != 0, rsv1: b[0] & 0x40 != 0, opcode: b[0] & 0x0f, payload };
        self.buf.drain(..end);
        Ok(Some(frame))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Close(Option<u16>, String),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

/// Turns frames into messages, inflating compressed ones.
pub struct Assembler {
    inflater: Option<Inflater>,
    opcode: Option<u8>,
    compressed: bool,
    parts: Vec<u8>,
}

impl Assembler {
    pub fn new(inflater: Option<Inflater>) -> Self {
        Self { inflater, opcode: None, compressed: false, parts: Vec::new() }
    }

    /// Between messages, let the inflater give up its live state (see `Inflater::park`). True if it did.
    pub fn park(&mut self) -> bool {
        self.inflater.as_mut().is_some_and(Inflater::park)
    }

    /// Whether there is a live inflater that `park` could release.
    pub fn can_park(&self) -> bool {
        self.inflater.as_ref().is_some_and(|inflater| !inflater.is_parked())
    }

    pub fn push(&mut self, frame: Frame) -> Result<Option<Message>, String> {
        if frame.opcode >= CLOSE {
            if !frame.fin || frame.payload.len() > 125 || frame.rsv1 {
                return Err("malformed control frame".into());
            }
            return match frame.opcode {
                CLOSE => close_message(&frame.payload).map(Some),
                PING => Ok(Some(Message::Ping(frame.payload))),
                PONG => Ok(Some(Message::Pong(frame.payload))),
                other => Err(format!("unknown control opcode {other:#x}")),
            };
        }
        match (frame.opcode, self.opcode) {
            (CONTINUATION, None) => return Err("continuation frame without a message".into()),
            (CONTINUATION, Some(_)) => {}
            (TEXT | BINARY, None) => {
                if frame.rsv1 && self.inflater.is_none() {
                    return Err("compressed frame without negotiated permessage-deflate".into());
                }
                self.opcode = Some(frame.opcode);
                self.compressed = frame.rsv1;
            }
            (TEXT | BINARY, Some(_)) => return Err("new message inside a fragmented one".into()),
            (other, _) => return Err(format!("unknown opcode {other:#x}")),
        }
        if self.parts.len() + frame.payload.len() > MAX_MESSAGE {
            return Err("message larger than 64 MiB".into());
        }
        self.parts.extend_from_slice(&frame.payload);
        if !frame.fin {
            return Ok(None);
        }
        let opcode = self.opcode.take().unwrap_or(BINARY);
        let mut data = std::mem::take(&mut self.parts);
        if std::mem::take(&mut self.compressed) {
            data = self.inflater.as_mut().expect("checked at the first frame").decompress(&data)?;
        }
        Ok(Some(if opcode == TEXT {
            Message::Text(String::from_utf8(data).map_err(|_| "text message is not UTF-8".to_string())?)
        } else {
            Message::Binary(data)
        }))
    }
}

fn close_message(payload: &[u8]) -> Result<Message, String> {
    match payload.len() {
        0 => Ok(Message::Close(None, String::new())),
        1 => Err("close frame with a 1-byte payload".into()),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
            Ok(Message::Close(Some(code), reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        if payload.len() < 126 {
            out.push(payload.len() as u8);
        } else {
            out.push(126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn encodes_the_rfc_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let mut out = Vec::new();
        encode(&mut out, TEXT, false, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn decodes_split_input_and_fragments() {
        let mut bytes = server_frame(0x01, b"Hel");
        bytes.extend(server_frame(0x89, b"ping"));
        bytes.extend(server_frame(0x80, b"lo"));
        bytes.extend(server_frame(0x82, &[7u8; 300]));
        let mut decoder = Decoder::default();
        let mut assembler = Assembler::new(None);
        let mut messages = Vec::new();
        for byte in bytes {
            decoder.feed(&[byte]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                messages.extend(assembler.push(frame).unwrap());
            }
        }
        assert_eq!(
            messages,
            vec![Message::Ping(b"ping".to_vec()), Message::Text("Hello".into()), Message::Binary(vec![7u8; 300])]
        );
    }

    #[test]
    fn a_drained_decoder_holds_no_buffer() {
        let mut decoder = Decoder::default();
        let mut burst = Vec::new();
        for _ in 0..40 {
            burst.extend(server_frame(0x81, &[b'x'; 400]));
        }
        let partial = server_frame(0x81, &[b'y'; 300]);
        burst.extend_from_slice(&partial[..100]);
        decoder.feed(&burst);
        let mut frames = 0;
        while decoder.next_frame().unwrap().is_some() {
            frames += 1;
        }
        assert_eq!(frames, 40);
        assert!(decoder.capacity() < 4096, "a 100-byte partial frame keeps {} bytes of a 16 KiB burst", decoder.capacity());
        decoder.feed(&partial[100..]);
        assert_eq!(decoder.next_frame().unwrap().unwrap().payload, vec![b'y'; 300]);
        assert!(decoder.next_frame().unwrap().is_none());
        assert_eq!(decoder.capacity(), 0);
    }

    #[test]
    fn rejects_compressed_frame_without_extension() {
        let mut assembler = Assembler::new(None);
        let frame = Frame { fin: true, rsv1: true, opcode: TEXT, payload: vec![1] };
        assert!(assembler.push(frame).is_err());
    }
}
