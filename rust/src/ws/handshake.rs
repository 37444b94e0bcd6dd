//! The opening handshake, sans-IO: the request bytes and the parsed 101 answer.

use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::deflate::DeflateParams;

/// What the real client offers (tungstenite with deflate).
pub const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// tungstenite writes these five first, capitalised, before the caller's headers.
const HANDSHAKE_NAMES: [&str; 5] = ["Host", "Connection", "Upgrade", "Sec-WebSocket-Version", "Sec-WebSocket-Key"];

/// `GET {target} HTTP/1.1` with: the five handshake headers (each unless the caller gave it), the
/// caller's headers in their order and case, then the deflate offer (unless the caller gave one).
pub fn request_bytes(target: &str, host: &str, key: &str, headers: &[(String, String)], deflate: bool) -> Vec<u8> {
    let given = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut out = Vec::with_capacity(512 + headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>());
    out.extend_from_slice(format!("GET {target} HTTP/1.1\r\n").as_bytes());
    for (name, value) in HANDSHAKE_NAMES.iter().zip([host, "Upgrade", "websocket", "13", key]) {
        if !given(name) {
            push_header(&mut out, name, value);
        }
    }
    for (name, value) in headers {
        push_header(&mut out, name, value);
    }
    if deflate && !given("sec-websocket-extensions") {
        push_header(&mut out, "sec-websocket-extensions", DEFLATE_OFFER);
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Whether a header name/value may be sent as is (no CR/LF injection, token name).
pub fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        && value.bytes().all(|b| b != b'\r' && b != b'\n' && b != 0)
}

/// 16 random bytes, base64.
pub fn new_key() -> String {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).expect("the OS random source failed");
    base64::engine::general_purpose::STANDARD.encode(raw)
}

pub fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parse the response head from `buf`. `Ok(None)`: need more bytes. On success, also the head's length.
pub fn parse_response(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let (true, Some(status)) = (version.starts_with("HTTP/1."), status) else {
        return Err(format!("bad status line {status_line:?}"));
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(Some((ResponseHead { status, headers }, end + 4)))
}

/// Check a 101 answer against our key and read the negotiated extension.
pub fn accept_response(head: &ResponseHead, key: &str, offered_deflate: bool) -> Result<Option<DeflateParams>, String> {
    let has_token = |name: &str, token: &str| {
        head.header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err("101 without Upgrade: websocket / Connection: upgrade".into());
    }
    if head.header("sec-websocket-accept") != Some(accept_for(key).as_str()) {
        return Err("wrong Sec-WebSocket-Accept".into());
    }
    match head.header("sec-websocket-extensions") {
        None => Ok(None),
        Some(_) if !offered_deflate => Err("server enabled an extension that was not offered".into()),
        Some(value) => DeflateParams::parse(value).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_capture() {
        let headers = vec![
            ("chatgpt-account-id".to_string(), "acc".to_string()),
            ("authorization".to_string(), "Bearer t".to_string()),
        ];
        let bytes = request_bytes("/backend-api/codex/responses", "chatgpt.com", "a2V5", &headers, true);
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "GET /backend-api/codex/responses HTTP/1.1\r\nHost: chatgpt.com\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: a2V5\r\n\
             chatgpt-account-id: acc\r\nauthorization: Bearer t\r\n\
             sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        );
    }

    #[test]
    fn rfc6455_accept_example() {
        assert_eq!(accept_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn parses_a_101() {
        let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
                    Sec-WebSocket-Extensions: permessage-deflate\r\n\r\nrest";
        let (head, used) = parse_response(raw).unwrap().unwrap();
        assert_eq!(head.status, 101);
        assert_eq!(&raw[used..], b"rest");
        let deflate = accept_response(&head, "dGhlIHNhbXBsZSBub25jZQ==", true).unwrap();
        assert!(deflate.is_some());
        assert!(parse_response(b"HTTP/1.1 101 Swi").unwrap().is_none());
    }
}
