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

/// Uncompressed bytes a socket may have sent and still take the thread's spare compressor for each message
/// (rebuilt by replay) instead of keeping one of its own (see `Deflater`).
pub const REPLAY_LIMIT: usize = 64 << 10;
/// Uncompressed bytes a socket may have sent and still give up its own compressor when it goes quiet (`park`):
/// the rebuild replays them all before the next message (measured on this VM: 2.1 ms for 500 KiB of JSON).
pub const PARK_LIMIT: usize = 512 << 10;

/// Compresses outgoing messages, keeping the window between messages unless told not to (context takeover).
///
/// zlib's state for a 15-bit window is about 256 KiB, and a socket compresses one or two messages per turn, so
/// the state is held only while it is needed. Compression is deterministic: a fresh compressor fed the same
/// messages, each ended by the same sync flush, is in exactly the state a kept one would be in. So the socket keeps
/// what it sent as it went on the wire (compressed: a real client's 70 KiB turn is a few KiB), and a compressor is
/// rebuilt by inflating those frames and replaying them into the thread's spare compressor (reset), output
/// discarded. While the messages sent total at most `REPLAY_LIMIT` bytes that happens for every message; past it
/// the socket keeps the compressor between messages, and gives it up when it goes quiet (`park`, a kept
/// conversation between turns) as long as they total at most `PARK_LIMIT`; past that it keeps its compressor
/// for its life. Either way the bytes sent are those of one long-lived compressor.
pub struct Deflater {
    window_bits: u8,
    reset_each_message: bool,
    kept: Option<Compress>,
    /// The frames' payloads sent so far, back to back, and where each ends; `None` past `PARK_LIMIT`.
    sent: Option<(Vec<u8>, Vec<usize>)>,
    /// Uncompressed bytes sent so far.
    plain: usize,
}

impl Deflater {
    pub fn new(params: &DeflateParams) -> Self {
        Self {
            // zlib cannot produce an 8-bit raw window; 9 bits is within every 8-bit limit the peer can set.
            window_bits: params.client_max_window_bits.max(9),
            reset_each_message: params.client_no_context_takeover,
            kept: None,
            sent: Some((Vec::new(), Vec::new())),
            plain: 0,
        }
    }

    pub fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        if self.reset_each_message {
            // No context takeover: every message starts from a fresh state anyway.
            let mut inner = scratch(self.window_bits);
            let out = compress_message(&mut inner, payload);
            give_back(self.window_bits, inner);
            return out;
        }
        let mut inner = match self.kept.take() {
            Some(inner) => inner,
            None => self.rebuild(),
        };
        let out = compress_message(&mut inner, payload);
        self.plain += payload.len();
        if self.plain > PARK_LIMIT {
            self.sent = None;
        }
        if let Some((sent, ends)) = self.sent.as_mut() {
            sent.extend_from_slice(&out);
            ends.push(sent.len());
            // Held until the next message, which may be minutes away on a kept socket: no growth slack.
            sent.shrink_to_fit();
            ends.shrink_to_fit();
        }
        if self.plain <= REPLAY_LIMIT {
            give_back(self.window_bits, inner);
        } else {
            self.kept = Some(inner);
        }
        out
    }

    /// Give up a kept compressor if it can be rebuilt (see `PARK_LIMIT`). True if it did.
    pub fn park(&mut self) -> bool {
        if self.kept.is_some() && self.sent.is_some() {
            self.kept = None;
            return true;
        }
        false
    }

    /// Whether `park` would release a compressor.
    pub fn can_park(&self) -> bool {
        self.kept.is_some() && self.sent.is_some()
    }

    /// The thread's spare compressor in the state the messages sent so far left ours in.
    fn rebuild(&self) -> Compress {
        let mut inner = scratch(self.window_bits);
        let (sent, ends) = self.sent.as_ref().expect("a socket without a kept compressor keeps what it sent");
        if !ends.is_empty() {
            // What was sent is one raw deflate stream (context takeover): inflated in order, it gives back each
            // message exactly.
            let mut inflater = Decompress::new_with_window_bits(false, self.window_bits);
            let mut start = 0;
            for &end in ends {
                let message = inflate_message(&mut inflater, &sent[start..end], MAX_MESSAGE)
                    .expect("our own frames inflate");
                compress_message(&mut inner, &message);
                start = end;
            }
        }
        inner
    }

    /// Bytes this deflater holds between messages, beyond its own struct (for tests and benchmarks).
    pub fn held_bytes(&self) -> usize {
        let sent = self.sent.as_ref().map_or(0, |(sent, ends)| sent.capacity() + ends.capacity() * std::mem::size_of::<usize>());
        sent + if self.kept.is_some() { 256 << 10 } else { 0 }
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
///
/// With context takeover (the backend's way) the server's messages may refer to the last `2^window_bits` bytes of
/// everything it sent, so that window has to outlive each message: zlib keeps it in a 32 KiB buffer next to ~10
/// KiB of state. A socket that has gone quiet (a kept conversation between turns, for minutes) can `park`: the
/// window is taken out of the live inflater, compressed (JSON events shrink to a few KiB) and the inflater is
/// dropped. The next message first rebuilds an inflater whose history is that window, by inflating the parked
/// bytes and discarding the output; from there on it decodes exactly as the kept one would have.
pub struct Inflater {
    window_bits: u8,
    reset_each_message: bool,
    state: InflateState,
}

enum InflateState {
    /// Decoding; `history` is how much of the window holds data (bounded by the window size).
    Live { inner: Box<Decompress>, history: usize },
    /// Quiet: the window, deflated into a stand-alone raw stream (`compress_message` of a fresh compressor).
    Parked(Vec<u8>),
}

impl Inflater {
    pub fn new(params: &DeflateParams) -> Self {
        let window_bits = params.server_max_window_bits.max(9);
        Self {
            window_bits,
            reset_each_message: params.server_no_context_takeover,
            state: InflateState::Live { inner: Box::new(Decompress::new_with_window_bits(false, window_bits)), history: 0 },
        }
    }

    pub fn decompress(&mut self, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.unpark()?;
        let InflateState::Live { inner, history } = &mut self.state else { unreachable!("unparked above") };
        let out = inflate_message(inner, payload, MAX_MESSAGE)?;
        *history = (*history + out.len()).min(1 << self.window_bits);
        if self.reset_each_message {
            inner.reset(false);
            *history = 0;
        }
        Ok(out)
    }

    /// Give up the live inflater, keeping only its window compressed. Returns whether it parked; an inflater that
    /// cannot (already parked, or its stream was ended by the server) stays as it is.
    pub fn park(&mut self) -> bool {
        let InflateState::Live { inner, history } = &mut self.state else { return false };
        if self.reset_each_message || *history == 0 {
            // Nothing to carry over: a fresh inflater is the same state.
            self.state = InflateState::Parked(Vec::new());
            return true;
        }
        let Some(window) = take_window(inner, *history) else { return false };
        let mut compressor = scratch(self.window_bits);
        let mut parked = compress_message(&mut compressor, &window);
        give_back(self.window_bits, compressor);
        parked.shrink_to_fit();
        self.state = InflateState::Parked(parked);
        true
    }

    pub fn is_parked(&self) -> bool {
        matches!(self.state, InflateState::Parked(_))
    }

    /// Bytes this inflater holds between messages (for tests): zlib's window and state while live.
    pub fn held_bytes(&self) -> usize {
        match &self.state {
            InflateState::Live { .. } => (1 << self.window_bits) + (10 << 10),
            InflateState::Parked(bytes) => bytes.capacity(),
        }
    }

    fn unpark(&mut self) -> Result<(), String> {
        let InflateState::Parked(parked) = &self.state else { return Ok(()) };
        let mut inner = Box::new(Decompress::new_with_window_bits(false, self.window_bits));
        // Inflating the parked window through the new inflater makes it that inflater's history (the parked bytes
        // were compressed with the same window size); the output itself is not needed.
        let history = if parked.is_empty() { 0 } else {
            inflate_message(&mut inner, parked, 1 << self.window_bits).map_err(|e| format!("parked window: {e}"))?.len()
        };
        self.state = InflateState::Live { inner, history };
        Ok(())
    }
}

/// One message through `inner`: the payload, then the `00 00 ff ff` tail the sender removed (RFC 7692 §7.2.2).
fn inflate_message(inner: &mut Decompress, payload: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(payload.len() * 3 + 64);
    for input in [payload, &TAIL[..]] {
        let start_in = inner.total_in();
        loop {
            let consumed = (inner.total_in() - start_in) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
            if out.len() == out.capacity() {
                if out.len() >= limit {
                    return Err(format!("compressed message larger than {} MiB", limit >> 20));
                }
                out.reserve(out.capacity());
            }
            let before = (inner.total_in(), inner.total_out());
            match inner.decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync) {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("inflate: {e}")),
            }
            if (inner.total_in(), inner.total_out()) == before && out.len() < out.capacity() {
                break; // no progress with room left: the input is exhausted
            }
        }
    }
    Ok(out)
}

/// The last `history` bytes `inner` produced (its window), read out of the inflater itself: it is fed one
/// fixed-Huffman block of back-references at distance `history`, which copies the window to the output byte for
/// byte. zlib offers no way to read the window through flate2, and this needs no copy of the messages kept on the
/// side. `None` if the inflater does not take it (its stream was ended by a final block).
fn take_window(inner: &mut Decompress, history: usize) -> Option<Vec<u8>> {
    let block = copy_block(history);
    let mut window = Vec::with_capacity(history);
    let status = inner.decompress_vec(&block, &mut window, FlushDecompress::Sync);
    (status.is_ok() && window.len() == history).then_some(window)
}

/// A non-final deflate block with fixed Huffman codes (RFC 1951 §3.2.6) that copies the previous `distance`
/// bytes: matches of up to 258 bytes, all at `distance`, totalling `distance` bytes, then end-of-block.
fn copy_block(distance: usize) -> Vec<u8> {
    debug_assert!((1..=32768).contains(&distance));
    let mut bits = BitWriter::default();
    bits.put(0, 1); // BFINAL = 0
    bits.put(1, 2); // BTYPE = 01, fixed codes
    let mut left = distance;
    while left > 0 {
        // Matches are 3 to 258 bytes: leave at least 3 for the last one.
        let length = match left {
            0..=258 => left,
            259..=260 => left - 3,
            _ => 258,
        };
        if length < 3 {
            return Vec::new(); // a window of 1 or 2 bytes cannot be copied by a match; it is not parked
        }
        put_length(&mut bits, length);
        put_distance(&mut bits, distance);
        left -= length;
    }
    bits.put_code(0, 7); // end of block: literal/length code 256
    bits.finish()
}

const LENGTH_BASE: [u16; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
    6145, 8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA: [u8; 30] =
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

fn put_length(bits: &mut BitWriter, length: usize) {
    let index = LENGTH_BASE.iter().rposition(|&base| base as usize <= length).expect("length >= 3");
    let symbol = 257 + index as u32;
    // Fixed codes: 256-279 are 7 bits from 0, 280-287 are 8 bits from 0b1100_0000.
    if symbol < 280 {
        bits.put_code(symbol - 256, 7);
    } else {
        bits.put_code(0b1100_0000 + symbol - 280, 8);
    }
    bits.put((length - LENGTH_BASE[index] as usize) as u32, LENGTH_EXTRA[index]);
}

fn put_distance(bits: &mut BitWriter, distance: usize) {
    let index = DISTANCE_BASE.iter().rposition(|&base| base as usize <= distance).expect("distance >= 1");
    bits.put_code(index as u32, 5);
    bits.put((distance - DISTANCE_BASE[index] as usize) as u32, DISTANCE_EXTRA[index]);
}

/// Deflate's bit order: values least significant bit first, Huffman codes most significant bit first.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    filled: u8,
}

impl BitWriter {
    fn put(&mut self, value: u32, count: u8) {
        self.acc |= (value as u64) << self.filled;
        self.filled += count;
        while self.filled >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.filled -= 8;
        }
    }

    fn put_code(&mut self, code: u32, length: u8) {
        let reversed = code.reverse_bits() >> (32 - length as u32);
        self.put(reversed, length);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
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
        messages.insert(9, (0..25_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()); // past REPLAY_LIMIT
        messages.insert(30, (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()); // past PARK_LIMIT
        for park_every in [0, 1, 3] {
            let mut deflater = Deflater::new(&params());
            let mut inflater = Inflater::new(&params());
            let mut parked = 0;
            let sent: Vec<Vec<u8>> = messages
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    if park_every > 0 && i % park_every == 0 && deflater.park() {
                        parked += 1;
                    }
                    deflater.compress(m)
                })
                .collect();
            assert_eq!(sent, kept_forever(&messages), "parking every {park_every}");
            if park_every > 0 {
                assert!(parked >= 20 / park_every, "parked {parked} times");
            }
            for (wire, message) in sent.iter().zip(&messages) {
                assert_eq!(&inflater.decompress(wire).unwrap(), message);
            }
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
            assert!(deflater.held_bytes() < total / 2 + 1024, "{} held for {total} sent", deflater.held_bytes());
        }
        let turn = turn_messages(60).concat(); // a real client's first turn is about 70 KiB
        assert!(total + turn.len() > REPLAY_LIMIT);
        deflater.compress(&turn);
        assert!(deflater.kept.is_some(), "past REPLAY_LIMIT the compressor is kept between messages");
        assert!(deflater.park() && deflater.held_bytes() < (total + turn.len()) / 2, "and given up when quiet");
        deflater.compress(&vec![b'x'; PARK_LIMIT]);
        assert!(deflater.kept.is_some() && deflater.sent.is_none(), "past PARK_LIMIT it is kept for good");
        assert!(!deflater.park() && !deflater.can_park());
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

    /// Text no shorter match can shrink: whatever a later message repeats of it comes from far back in the window.
    fn noise(seed: u32, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                b'a' + ((x >> 16) % 26) as u8
            })
            .collect()
    }

    #[test]
    fn the_window_read_out_is_the_last_bytes_produced() {
        let sent = [noise(1, 20_000), noise(2, 20_000), noise(3, 7)].concat();
        for history in [3, 4, 257, 258, 259, 260, 261, 516, 1000, 20_007, 32_768] {
            let mut deflater = Compress::new_with_window_bits(Compression::default(), false, 15);
            let mut inflater = Decompress::new_with_window_bits(false, 15);
            let output = inflate_message(&mut inflater, &compress_message(&mut deflater, &sent), MAX_MESSAGE).unwrap();
            assert_eq!(output, sent);
            let window = take_window(&mut inflater, history).expect("the inflater takes the copy block");
            assert_eq!(window, &sent[sent.len() - history..], "history {history}");
        }
        assert!(copy_block(2).is_empty(), "a 2-byte window cannot be copied by a match");
    }

    #[test]
    fn a_parked_inflater_decodes_what_a_live_one_does() {
        // Each message repeats pieces of earlier ones up to ~40 KiB back, so the server's frames refer into the
        // whole window; the parked inflater must rebuild it exactly.
        let chunks: Vec<Vec<u8>> = (0..12).map(|i| noise(i, 5_000)).collect();
        let messages: Vec<Vec<u8>> = (0..24usize)
            .map(|i| {
                let mut m = format!(r#"{{"type":"response.output_text.delta","n":{i},"delta":""#).into_bytes();
                m.extend_from_slice(&chunks[i % 12]);
                m.extend_from_slice(&chunks[(i * 5 + 3) % 12][..1_000 + i * 100]);
                m.extend_from_slice(b"\"}");
                m
            })
            .chain([b"x".to_vec(), Vec::new(), b"ab".to_vec()])
            .collect();
        let wire = kept_forever(&messages);
        let mut live = Inflater::new(&params());
        let mut parking = Inflater::new(&params());
        assert!(parking.park() && parking.is_parked(), "a new inflater has no history to keep");
        for (i, (frame, message)) in wire.iter().zip(&messages).enumerate() {
            assert_eq!(&live.decompress(frame).unwrap(), message);
            assert_eq!(&parking.decompress(frame).unwrap(), message, "message {i} after parking");
            assert!(!parking.is_parked());
            assert!(parking.park(), "message {i}");
            assert!(parking.held_bytes() < live.held_bytes(), "{} parked vs {} live", parking.held_bytes(), live.held_bytes());
        }
    }

    #[test]
    fn a_parked_window_of_json_events_is_a_fraction_of_a_live_one() {
        let mut deflater = Deflater::new(&params());
        let mut inflater = Inflater::new(&params());
        for i in 0..400 {
            let event = format!(r#"{{"type":"response.output_text.delta","sequence_number":{i},"item_id":"msg_0a1b2c","output_index":0,"content_index":0,"delta":"word{} "}}"#, i * 7);
            assert_eq!(inflater.decompress(&deflater.compress(event.as_bytes())).unwrap(), event.as_bytes());
        }
        let live = inflater.held_bytes();
        assert!(inflater.park());
        assert!(inflater.held_bytes() * 8 < live, "parked {} of a live {live}", inflater.held_bytes());
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
