//! permessage-deflate (RFC 7692), sans-IO: parameter negotiation and per-message (de)compression.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Largest decompressed message accepted, so a small compressed frame cannot exhaust memory.
pub const MAX_MESSAGE: usize = 64 << 20;

const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    /// Parse the server's `Sec-WebSocket-Extensions` answer to our offer.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut params = value.split(';').map(str::trim);
        if !params.next().is_some_and(|name| name.eq_ignore_ascii_case("permessage-deflate")) || value.contains(',') {
            return Err(format!("unexpected extension answer {value:?}"));
        }
        let mut out = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        for param in params {
            let (name, arg) = match param.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (param, None),
            };
            let bits = || -> Result<u8, String> {
                arg.and_then(|a| a.parse::<u8>().ok())
                    .filter(|b| (8..=15).contains(b))
                    .ok_or_else(|| format!("bad {name} in {value:?}"))
            };
            match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => out.server_no_context_takeover = true,
                "client_no_context_takeover" => out.client_no_context_takeover = true,
                "server_max_window_bits" => out.server_max_window_bits = bits()?,
                "client_max_window_bits" => out.client_max_window_bits = bits()?,
                _ => return Err(format!("unknown permessage-deflate parameter {name:?}")),
            }
        }
        Ok(out)
    }
}

/// Messages a socket may send before its compressor is kept instead of rebuilt (see `Deflater`).
pub const REPLAY_LIMIT: usize = 64 << 10;

/// Compresses outgoing messages, keeping the window between messages unless told not to (context takeover).
///
/// zlib's state for a 15-bit window is about 256 KiB, and a socket compresses one or two messages per turn, so
/// the state is held only while compressing. Compression is deterministic: a fresh compressor fed the same
/// messages, each ended by the same sync flush, is in exactly the state a kept one would be in. So while the
/// messages sent so far total at most `REPLAY_LIMIT` bytes only they are kept, and each new message takes the
/// thread's spare compressor (reset), replays them into it (output discarded), compresses, and gives it back;
/// past the limit the socket keeps a compressor of its own for its life, as it always did. Either way the bytes
/// sent are those of one long-lived compressor.
pub struct Deflater {
    window_bits: u8,
    reset_each_message: bool,
    kept: Option<Compress>,
    /// The messages sent so far, back to back, and where each ends; `None` once the compressor is kept.
    sent: Option<(Vec<u8>, Vec<usize>)>,
}

impl Deflater {
    pub fn new(params: &DeflateParams) -> Self {
        Self {
            // zlib cannot produce an 8-bit raw window; 9 bits is within every 8-bit limit the peer can set.
            window_bits: params.client_max_window_bits.max(9),
            reset_each_message: params.client_no_context_takeover,
            kept: None,
            sent: Some((Vec::new(), Vec::new())),
        }
    }

    pub fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        if let Some(inner) = self.kept.as_mut() {
            return compress_message(inner, payload);
        }
        let mut inner = scratch(self.window_bits);
        if self.reset_each_message {
            // No context takeover: every message starts from a fresh state anyway.
            let out = compress_message(&mut inner, payload);
            give_back(self.window_bits, inner);
            return out;
        }
        let (sent, ends) = self.sent.as_mut().expect("either kept or replayable");
        let mut start = 0;
        for &end in ends.iter() {
            compress_message(&mut inner, &sent[start..end]);
            start = end;
        }
        let out = compress_message(&mut inner, payload);
        if sent.len() + payload.len() <= REPLAY_LIMIT {
            sent.extend_from_slice(payload);
            ends.push(sent.len());
            give_back(self.window_bits, inner);
        } else {
            self.sent = None;
            self.kept = Some(inner);
        }
        out
    }

    /// Bytes this deflater holds between messages, beyond its own struct (for tests and benchmarks).
    pub fn held_bytes(&self) -> usize {
        match (&self.kept, &self.sent) {
            (Some(_), _) => 256 << 10,
            (None, Some((sent, ends))) => sent.capacity() + ends.capacity() * std::mem::size_of::<usize>(),
            (None, None) => 0,
        }
    }
}

thread_local! {
    /// One compressor per thread (the I/O runtime has two), reset for each use: replaying sockets then neither
    /// allocate nor free ~256 KiB per message, which glibc would keep in its arenas at the peak's size.
    static SCRATCH: std::cell::RefCell<Option<(u8, Compress)>> = const { std::cell::RefCell::new(None) };
}

/// A compressor in its initial state (`reset` is zlib's deflateReset: the same state as a new one).
fn scratch(window_bits: u8) -> Compress {
    match SCRATCH.with(|slot| slot.borrow_mut().take()) {
        Some((bits, mut inner)) if bits == window_bits => {
            inner.reset();
            inner
        }
        _ => Compress::new_with_window_bits(Compression::default(), false, window_bits),
    }
}

fn give_back(window_bits: u8, inner: Compress) {
    SCRATCH.with(|slot| *slot.borrow_mut() = Some((window_bits, inner)));
}

/// One message through `inner`, ended by a sync flush, with the flush's `00 00 ff ff` tail removed (RFC 7692).
fn compress_message(inner: &mut Compress, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    let start_in = inner.total_in();
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(256));
        }
        let consumed = (inner.total_in() - start_in) as usize;
        inner
            .compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
            .expect("deflate of in-memory data cannot fail");
        // zlib's rule: the sync flush is complete when it returns with output space left.
        if (inner.total_in() - start_in) as usize == payload.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    } else {
        // Nothing new to flush (an empty message right after a flush): zlib writes no block, and
        // RFC 7692 §7.2.3.6 allows a single empty stored block, which is "00" once the tail is removed.
        debug_assert!(payload.is_empty(), "sync flush did not end with 00 00 ff ff");
        out.clear();
        out.push(0x00);
    }
    out
}

/// Decompresses incoming messages.
pub struct Inflater {
    inner: Decompress,
    reset_each_message: bool,
}

impl Inflater {
    pub fn new(params: &DeflateParams) -> Self {
        Self {
            inner: Decompress::new_with_window_bits(false, params.server_max_window_bits.max(9)),
            reset_each_message: params.server_no_context_takeover,
        }
    }

    pub fn decompress(&mut self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(payload.len() * 3 + 64);
        for input in [payload, &TAIL[..]] {
            let start_in = self.inner.total_in();
            loop {
                let consumed = (self.inner.total_in() - start_in) as usize;
                if consumed == input.len() && out.len() < out.capacity() {
                    break;
                }
                if out.len() == out.capacity() {
                    if out.len() >= MAX_MESSAGE {
                        return Err("compressed message larger than 64 MiB".into());
                    }
                    out.reserve(out.capacity());
                }
                let before = (self.inner.total_in(), self.inner.total_out());
                match self.inner.decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync) {
                    Ok(Status::StreamEnd) => break,
                    Ok(_) => {}
                    Err(e) => return Err(format!("inflate: {e}")),
                }
                if (self.inner.total_in(), self.inner.total_out()) == before && out.len() < out.capacity() {
                    break; // no progress with room left: the input is exhausted
                }
            }
        }
        if self.reset_each_message {
            self.inner.reset(false);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DeflateParams {
        DeflateParams::parse("permessage-deflate").unwrap()
    }

    #[test]
    fn round_trip_with_context_takeover() {
        let mut deflater = Deflater::new(&params());
        let mut inflater = Inflater::new(&params());
        let message = br#"{"type":"response.create","model":"gpt-5.5","input":[]}"#.repeat(30);
        let first = deflater.compress(&message);
        let second = deflater.compress(&message);
        assert!(second.len() < first.len(), "the second message reuses the window");
        assert_eq!(inflater.decompress(&first).unwrap(), message);
        assert_eq!(inflater.decompress(&second).unwrap(), message);
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        assert_eq!(inflater.decompress(&deflater.compress(&big)).unwrap(), big);
        assert_eq!(inflater.decompress(&deflater.compress(b"")).unwrap(), b"");
    }

    /// The compressor of today's sockets: one state for the socket's life.
    fn kept_forever(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut inner = Compress::new_with_window_bits(Compression::default(), false, 15);
        messages.iter().map(|m| compress_message(&mut inner, m)).collect()
    }

    fn turn_messages(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                let text: String = (0..(i * 7919) % 3000).map(|j| char::from(b'a' + ((i * j) % 26) as u8)).collect();
                format!(r#"{{"type":"response.create","model":"gpt-5.5","input":[{{"text":"{text}"}}],"turn":{i}}}"#).into_bytes()
            })
            .collect()
    }

    #[test]
    fn replaying_sends_the_same_bytes_as_a_kept_compressor() {
        let mut messages = turn_messages(40);
        messages.insert(3, Vec::new());
        messages.insert(9, (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()); // crosses the limit
        let mut deflater = Deflater::new(&params());
        let mut inflater = Inflater::new(&params());
        let sent: Vec<Vec<u8>> = messages.iter().map(|m| deflater.compress(m)).collect();
        assert_eq!(sent, kept_forever(&messages));
        for (wire, message) in sent.iter().zip(&messages) {
            assert_eq!(&inflater.decompress(wire).unwrap(), message);
        }
    }

    #[test]
    fn a_reset_compressor_sends_what_a_new_one_does() {
        let messages = turn_messages(6);
        let mut used = Compress::new_with_window_bits(Compression::default(), false, 15);
        for message in &messages {
            compress_message(&mut used, message);
        }
        used.reset();
        let again: Vec<Vec<u8>> = messages.iter().map(|m| compress_message(&mut used, m)).collect();
        assert_eq!(again, kept_forever(&messages));
    }

    #[test]
    fn between_messages_only_the_sent_messages_are_held() {
        let messages = turn_messages(12);
        let mut deflater = Deflater::new(&params());
        let mut total = 0;
        for message in &messages {
            deflater.compress(message);
            total += message.len();
            assert!(deflater.kept.is_none());
            assert!(deflater.held_bytes() < 2 * total + 1024, "{} held for {total} sent", deflater.held_bytes());
        }
        let big = vec![b'x'; REPLAY_LIMIT];
        deflater.compress(&big);
        assert!(deflater.kept.is_some() && deflater.sent.is_none(), "past the limit the compressor is kept");
    }

    #[test]
    fn no_context_takeover_compresses_each_message_alone() {
        let p = DeflateParams::parse("permessage-deflate; client_no_context_takeover").unwrap();
        let mut deflater = Deflater::new(&p);
        let message = br#"{"type":"response.create"}"#.repeat(20);
        let first = deflater.compress(&message);
        assert_eq!(deflater.compress(&message), first);
        assert_eq!(deflater.held_bytes(), 0);
    }

    #[test]
    fn rfc7692_hello_example() {
        // RFC 7692 §7.2.3.1: "Hello" compressed with no context takeover.
        let mut inflater = Inflater::new(&params());
        assert_eq!(inflater.decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]).unwrap(), b"Hello");
    }

    #[test]
    fn negotiation() {
        let p = DeflateParams::parse("permessage-deflate; client_max_window_bits=10; server_no_context_takeover").unwrap();
        assert_eq!(p.client_max_window_bits, 10);
        assert!(p.server_no_context_takeover);
        assert!(DeflateParams::parse("permessage-deflate; foo").is_err());
        assert!(DeflateParams::parse("x-webkit-deflate-frame").is_err());
    }
}
