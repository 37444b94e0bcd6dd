//! Fuzzing the WebSocket frame decoder and message assembler (rust/src/ws/frame.rs) inside `cargo test`.
//!
//! Seeded and deterministic (a failure prints its seed and case, and reproduces), no extra dependencies.
//! Several hundred thousand inputs: valid frame streams, the same streams with bits flipped, bytes cut or
//! inserted, and plain random bytes, each fed to the decoder split at random points. For every input the
//! incremental decoder must not panic and must agree exactly with `reference_decode`, a whole-buffer decoder
//! written from RFC 6455 §5.2: the same frames, then the same verdict (an error, or waiting for more bytes).

use _native::ws::deflate::MAX_MESSAGE;
use _native::ws::frame::{Assembler, Decoder, Frame, Message, BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT};

/// SplitMix64: tiny, fast, good enough to drive a fuzzer, and reproducible from one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn bytes_below(&mut self, n: usize) -> Vec<u8> {
        let len = self.below(n);
        self.bytes(len)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Every byte was consumed, or the rest is the start of a frame that needs more bytes.
    Waiting,
    Error,
}

/// The whole buffer at once, straight from RFC 6455 §5.2 (server → client: never masked), with the decoder's
/// own limit (a frame larger than MAX_MESSAGE is refused from its header, before its payload arrives).
fn reference_decode(bytes: &[u8]) -> (Vec<Frame>, Verdict) {
    let mut frames = Vec::new();
    let mut rest = bytes;
    loop {
        if rest.len() < 2 {
            return (frames, Verdict::Waiting);
        }
        let (first, second) = (rest[0], rest[1]);
        let rsv2_or_rsv3 = first & 0b0011_0000 != 0; // no negotiated extension defines them
        let masked = second & 0b1000_0000 != 0; // §5.1: a client fails the connection on a masked frame
        if rsv2_or_rsv3 || masked {
            return (frames, Verdict::Error);
        }
        let (length, header) = match second & 0x7f {
            126 => {
                if rest.len() < 4 {
                    return (frames, Verdict::Waiting);
                }
                (u64::from(u16::from_be_bytes([rest[2], rest[3]])), 4)
            }
            127 => {
                if rest.len() < 10 {
                    return (frames, Verdict::Waiting);
                }
                let mut be = [0u8; 8];
                be.copy_from_slice(&rest[2..10]);
                (u64::from_be_bytes(be), 10)
            }
            short => (u64::from(short), 2),
        };
        if length > MAX_MESSAGE as u64 {
            return (frames, Verdict::Error);
        }
        let end = header + length as usize;
        if rest.len() < end {
            return (frames, Verdict::Waiting);
        }
        frames.push(Frame {
            fin: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            opcode: first & 0x0f,
            payload: rest[header..end].to_vec(),
        });
        rest = &rest[end..];
    }
}

/// The decoder as the client drives it: feed what arrived, take every complete frame, stop at the first error.
fn incremental_decode(bytes: &[u8], cuts: &[usize]) -> (Vec<Frame>, Verdict) {
    let mut decoder = Decoder::default();
    let mut frames = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
        decoder.feed(&bytes[start..end]);
        start = end;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, Verdict::Error),
            }
        }
    }
    (frames, Verdict::Waiting)
}

/// Random, sorted cut points: sometimes every byte on its own, sometimes none at all.
fn random_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    match rng.below(10) {
        0 => (1..len).collect(),
        1 => Vec::new(),
        _ => {
            let mut cuts: Vec<usize> = (0..rng.below(8)).map(|_| rng.below(len + 1)).collect();
            cuts.sort_unstable();
            cuts
        }
    }
}

/// One server frame as a server may put it on the wire: any length form that holds the length (RFC 6455
/// asks for the minimal one, receivers accept the others), never masked.
fn encode_server_frame(out: &mut Vec<u8>, frame: &Frame, form: u8) {
    out.push(if frame.fin { 0x80 } else { 0 } | if frame.rsv1 { 0x40 } else { 0 } | frame.opcode);
    let len = frame.payload.len();
    match form {
        0 if len < 126 => out.push(len as u8),
        0 | 1 if len <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&frame.payload);
}

fn random_frame(rng: &mut Rng) -> Frame {
    let opcode = match rng.below(10) {
        0 => rng.below(16) as u8, // reserved opcodes too: framing does not judge them, the assembler does
        1 | 2 => PING,
        3 => CLOSE,
        4 => PONG,
        5 => CONTINUATION,
        6 | 7 => BINARY,
        _ => TEXT,
    };
    let len = match rng.below(1000) {
        0..=749 => rng.below(126),
        750..=979 => 126 + rng.below(1000),
        980..=994 => rng.below(usize::from(u16::MAX) + 1),
        _ => usize::from(u16::MAX) + 1 + rng.below(100), // only the 8-byte form holds it
    };
    Frame { fin: rng.chance(80), rsv1: rng.chance(20), opcode, payload: rng.bytes(len) }
}

fn valid_stream(rng: &mut Rng) -> (Vec<u8>, Vec<Frame>) {
    let mut bytes = Vec::new();
    let frames: Vec<Frame> = (0..1 + rng.below(6)).map(|_| random_frame(rng)).collect();
    for frame in &frames {
        encode_server_frame(&mut bytes, frame, rng.below(3) as u8);
    }
    (bytes, frames)
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(3) {
        if bytes.is_empty() {
            bytes.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes.truncate(at),
            2 => bytes.insert(at, rng.next() as u8),
            _ => bytes[at] = rng.next() as u8,
        }
    }
}

fn check(seed: u64, case: usize, bytes: &[u8], cuts: &[usize]) -> (Vec<Frame>, Verdict) {
    let expected = reference_decode(bytes);
    let got = incremental_decode(bytes, cuts);
    assert!(got == expected, "seed {seed:#x} case {case}: decoder and reference disagree on {bytes:02x?} cut at {cuts:?}");
    got
}

#[test]
fn valid_frame_streams_decode_identically_however_they_are_split() {
    let seed = 0x5eed_0001;
    let mut rng = Rng(seed);
    for case in 0..60_000 {
        let (bytes, frames) = valid_stream(&mut rng);
        let cuts = random_cuts(&mut rng, bytes.len());
        let (decoded, verdict) = check(seed, case, &bytes, &cuts);
        // Masking and RSV2/3 are never generated, and every frame is far below the limit: all of them decode.
        assert_eq!((decoded, verdict), (frames, Verdict::Waiting), "seed {seed:#x} case {case}");
    }
}

#[test]
fn damaged_frame_streams_agree_with_the_reference() {
    let seed = 0x5eed_0002;
    let mut rng = Rng(seed);
    for case in 0..150_000 {
        let (mut bytes, _) = valid_stream(&mut rng);
        mutate(&mut rng, &mut bytes);
        let cuts = random_cuts(&mut rng, bytes.len());
        check(seed, case, &bytes, &cuts);
    }
}

#[test]
fn random_bytes_never_panic_and_agree_with_the_reference() {
    let seed = 0x5eed_0003;
    let mut rng = Rng(seed);
    let mut errors = 0;
    for case in 0..150_000 {
        let mut bytes = rng.bytes_below(48);
        if !bytes.is_empty() && rng.chance(50) {
            bytes[0] &= 0x8f; // often a plausible first byte, so the decoder gets past it
        }
        if bytes.len() > 1 && rng.chance(50) {
            bytes[1] &= 0x7f;
        }
        let cuts = random_cuts(&mut rng, bytes.len());
        if check(seed, case, &bytes, &cuts).1 == Verdict::Error {
            errors += 1;
        }
    }
    assert!(errors > 10_000, "the generator should reach the error paths often ({errors})");
}

fn header_with_length(length: u64) -> Vec<u8> {
    let mut bytes = vec![0x82, 127];
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes
}

#[test]
fn oversized_frames_are_refused_from_their_header_alone() {
    for length in [MAX_MESSAGE as u64 + 1, u64::from(u32::MAX), 1 << 63, u64::MAX] {
        let mut decoder = Decoder::default();
        decoder.feed(&header_with_length(length));
        assert!(decoder.next_frame().is_err(), "length {length}");
    }
    // exactly the limit is a frame to wait for, not an error
    let mut decoder = Decoder::default();
    decoder.feed(&header_with_length(MAX_MESSAGE as u64));
    assert_eq!(decoder.next_frame(), Ok(None));
}

#[test]
fn masked_and_reserved_bit_frames_are_refused() {
    for bytes in [&[0x81u8, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0][..], &[0x91, 0x00], &[0xa1, 0x00], &[0xb2, 0x00]] {
        let mut decoder = Decoder::default();
        decoder.feed(bytes);
        assert!(decoder.next_frame().is_err(), "{bytes:02x?}");
    }
}

#[test]
fn the_assembler_never_panics_on_any_frame_sequence() {
    let seed = 0x5eed_0004;
    let mut rng = Rng(seed);
    for _ in 0..20_000 {
        let mut assembler = Assembler::new(None);
        for _ in 0..1 + rng.below(8) {
            let mut frame = random_frame(&mut rng);
            frame.payload.truncate(rng.below(200));
            match assembler.push(frame) {
                Ok(_) => {}
                Err(_) => break, // the client fails the connection here
            }
        }
    }
}

#[test]
fn fragmented_messages_reassemble_around_control_frames() {
    let seed = 0x5eed_0005;
    let mut rng = Rng(seed);
    for case in 0..20_000 {
        let text = rng.chance(50);
        let data = if text {
            let chars: String = (0..rng.below(300)).map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?')).collect();
            chars.into_bytes()
        } else {
            rng.bytes_below(300)
        };
        let mut cuts: Vec<usize> = (0..rng.below(5)).map(|_| rng.below(data.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(data.len());
        let mut bytes = Vec::new();
        let mut pings = Vec::new();
        let mut start = 0;
        for (i, &end) in cuts.iter().enumerate() {
            let opcode = if i > 0 { CONTINUATION } else if text { TEXT } else { BINARY };
            let last = i + 1 == cuts.len();
            encode_server_frame(&mut bytes, &Frame { fin: last, rsv1: false, opcode, payload: data[start..end].to_vec() }, 0);
            start = end;
            if !last && rng.chance(30) {
                let payload = rng.bytes_below(126);
                encode_server_frame(&mut bytes, &Frame { fin: true, rsv1: false, opcode: PING, payload: payload.clone() }, 0);
                pings.push(Message::Ping(payload));
            }
        }
        let (frames, verdict) = check(seed, case, &bytes, &random_cuts(&mut rng, bytes.len()));
        assert_eq!(verdict, Verdict::Waiting);
        let mut assembler = Assembler::new(None);
        let messages: Vec<Message> = frames.into_iter().filter_map(|f| assembler.push(f).unwrap()).collect();
        let whole = if text { Message::Text(String::from_utf8(data).unwrap()) } else { Message::Binary(data) };
        pings.push(whole);
        assert_eq!(messages, pings, "seed {seed:#x} case {case}");
    }
}
