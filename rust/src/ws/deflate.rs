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

/// Compresses outgoing messages; keeps its window between messages unless told not to.
pub struct Deflater {
    inner: Compress,
    reset_each_message: bool,
}

impl Deflater {
    pub fn new(params: &DeflateParams) -> Self {
        // zlib cannot produce an 8-bit raw window; 9 bits is within every 8-bit limit the peer can set.
        let bits = params.client_max_window_bits.max(9);
        Self {
            inner: Compress::new_with_window_bits(Compression::default(), false, bits),
            reset_each_message: params.client_no_context_takeover,
        }
    }

    pub fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let start_in = self.inner.total_in();
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let consumed = (self.inner.total_in() - start_in) as usize;
            self.inner
                .compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
                .expect("deflate of in-memory data cannot fail");
            // zlib's rule: the sync flush is complete when it returns with output space left.
            if (self.inner.total_in() - start_in) as usize == payload.len() && out.len() < out.capacity() {
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
        if self.reset_each_message {
            self.inner.reset();
        }
        out
    }
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
