//! Drives the sans-IO WebSocket pieces over a (proxied) rustls connection and feeds the bridge.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::deflate::{Deflater, Inflater};
use super::frame::{self, Assembler, Decoder, Message};
use super::handshake;
use crate::bridge::Sender;
use crate::error::{ErrorKind, UpstreamError};
use crate::transport::Transport;
use crate::tunnel::{self, BoxIo};

pub enum WsEvent {
    Open { headers: Vec<(String, String)> },
    Text(String),
    Binary(Vec<u8>),
    /// The connection is over: the server's close frame (code, reason), or none if it just hung up.
    Closed { code: Option<u16>, reason: String },
    Failed(UpstreamError),
}

impl WsEvent {
    pub fn from_panic(message: String) -> Self {
        WsEvent::Failed(UpstreamError::new(ErrorKind::Internal, format!("panic in the WebSocket task: {message}")))
    }
}

pub enum WsCommand {
    Text(String),
    Ping,
    Close(u16),
}

fn protocol(message: impl Into<String>) -> UpstreamError {
    UpstreamError::new(ErrorKind::Protocol, message)
}

struct Connected {
    io: BoxIo,
    headers: Vec<(String, String)>,
    deflater: Option<Deflater>,
    assembler: Assembler,
    decoder: Decoder,
}

async fn connect(transport: &Transport, url: &str, headers: &[(String, String)], deflate: bool) -> Result<Connected, UpstreamError> {
    let url = url::Url::parse(url).map_err(|e| protocol(format!("bad WebSocket URL {url:?}: {e}")))?;
    let secure = match url.scheme() {
        "wss" => true,
        "ws" => false,
        other => return Err(protocol(format!("WebSocket URL scheme must be ws or wss, not {other:?}"))),
    };
    if let Some((name, _)) = headers.iter().find(|(n, v)| !handshake::valid_header(n, v)) {
        return Err(protocol(format!("bad header {name:?}")));
    }
    let host = url.host_str().ok_or_else(|| protocol("WebSocket URL without host"))?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(443);
    let host_header = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let mut target = url.path().to_string();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let pinned = transport.options.resolved(bare_host, url.port());
    let raw = tunnel::open(bare_host, port, pinned, transport.options.proxy.as_deref(), &transport.ws_tls).await?;
    let mut io: BoxIo = if secure {
        let name = ServerName::try_from(bare_host.to_owned()).map_err(|e| protocol(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(transport.ws_tls.clone())
            .connect(name, raw)
            .await
            .map_err(|e| UpstreamError::from_error(&e, false))?;
        Box::new(tls)
    } else {
        raw
    };
    let key = handshake::new_key();
    let request = handshake::request_bytes(&target, &host_header, &key, headers, deflate);
    io.write_all(&request).await.map_err(|e| UpstreamError::from_error(&e, false))?;
    let mut buf = Vec::with_capacity(1024);
    let (head, used) = loop {
        if let Some(parsed) = handshake::parse_response(&buf).map_err(protocol)? {
            break parsed;
        }
        if buf.len() > 64 * 1024 {
            return Err(protocol("WebSocket handshake answer larger than 64 KiB"));
        }
        let n = io.read_buf(&mut buf).await.map_err(|e| UpstreamError::from_error(&e, false))?;
        if n == 0 {
            return Err(protocol("connection closed during the WebSocket handshake"));
        }
    };
    if head.status != 101 {
        // The backend explains refusals in JSON (a 429 carries its reset time there): read the body as far
        // as its content-length says, bounded in size and time, and put it in the message.
        read_refusal_body(&mut io, &mut buf, used, &head.headers).await;
        let body = String::from_utf8_lossy(&buf[used..buf.len().min(used + REFUSAL_BODY_LIMIT)]).into_owned();
        let mut message = format!("WebSocket upgrade refused with HTTP {}", head.status);
        if !body.trim().is_empty() {
            message.push_str(": ");
            message.push_str(body.trim());
        }
        let mut err = protocol(message);
        err.status = Some(head.status);
        return Err(err);
    }
    let params = handshake::accept_response(&head, &key, deflate).map_err(protocol)?;
    let mut decoder = Decoder::default();
    decoder.feed(&buf[used..]);
    Ok(Connected {
        io,
        headers: head.headers,
        deflater: params.as_ref().map(Deflater::new),
        assembler: Assembler::new(params.as_ref().map(Inflater::new)),
        decoder,
    })
}

const REFUSAL_BODY_LIMIT: usize = 4096;

async fn read_refusal_body(io: &mut BoxIo, buf: &mut Vec<u8>, used: usize, headers: &[(String, String)]) {
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(REFUSAL_BODY_LIMIT);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while buf.len() < used + length {
            match io.read_buf(&mut *buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

fn mask() -> [u8; 4] {
    let mut mask = [0u8; 4];
    getrandom::fill(&mut mask).expect("the OS random source failed");
    mask
}

/// The whole life of one WebSocket: handshake, then pump frames both ways until either side closes.
pub async fn run(
    transport: Arc<Transport>,
    url: String,
    headers: Vec<(String, String)>,
    deflate: bool,
    mut commands: mpsc::UnboundedReceiver<WsCommand>,
    tx: Sender<WsEvent>,
) {
    let connect_timeout = Duration::from_millis(transport.options.connect_timeout_ms);
    let connected = match tokio::time::timeout(connect_timeout, connect(&transport, &url, &headers, deflate)).await {
        Ok(Ok(connected)) => connected,
        Ok(Err(err)) => {
            let _ = tx.send(WsEvent::Failed(err)).await;
            return;
        }
        Err(_) => {
            let err = UpstreamError::new(ErrorKind::Timeout, format!("WebSocket connect timed out after {connect_timeout:?}"));
            let _ = tx.send(WsEvent::Failed(err)).await;
            return;
        }
    };
    let Connected { mut io, headers, mut deflater, mut assembler, mut decoder } = connected;
    if tx.send(WsEvent::Open { headers }).await.is_err() {
        return;
    }
    let final_event = pump(&mut io, &mut deflater, &mut assembler, &mut decoder, &mut commands, &tx).await;
    let _ = io.shutdown().await;
    if let Some(event) = final_event {
        let _ = tx.send(event).await;
    }
}

async fn pump(
    io: &mut BoxIo,
    deflater: &mut Option<Deflater>,
    assembler: &mut Assembler,
    decoder: &mut Decoder,
    commands: &mut mpsc::UnboundedReceiver<WsCommand>,
    tx: &Sender<WsEvent>,
) -> Option<WsEvent> {
    let io_error = |e: std::io::Error| Some(WsEvent::Failed(UpstreamError::from_error(&e, false)));
    let mut read_buf = Vec::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(1024);
    let mut sent_close = false;
    loop {
        // Everything already buffered first.
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Some(WsEvent::Failed(protocol(e))),
            };
            let message = match assembler.push(frame) {
                Ok(Some(message)) => message,
                Ok(None) => continue,
                Err(e) => return Some(WsEvent::Failed(protocol(e))),
            };
            let event = match message {
                Message::Text(text) => WsEvent::Text(text),
                Message::Binary(data) => WsEvent::Binary(data),
                Message::Pong(_) => continue,
                Message::Ping(payload) => {
                    out.clear();
                    frame::encode(&mut out, frame::PONG, false, &payload, mask());
                    if let Err(e) = io.write_all(&out).await {
                        return io_error(e);
                    }
                    continue;
                }
                Message::Close(code, reason) => {
                    if !sent_close {
                        out.clear();
                        let echo = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
                        frame::encode(&mut out, frame::CLOSE, false, &echo, mask());
                        let _ = io.write_all(&out).await;
                    }
                    return Some(WsEvent::Closed { code, reason });
                }
            };
            if tx.send(event).await.is_err() {
                return None;
            }
        }
        read_buf.clear();
        tokio::select! {
            read = io.read_buf(&mut read_buf) => match read {
                Ok(0) => return Some(WsEvent::Closed { code: None, reason: String::new() }),
                Ok(_) => decoder.feed(&read_buf),
                Err(e) => return io_error(e),
            },
            command = commands.recv() => {
                out.clear();
                match command {
                    None => return None, // the Python side is gone
                    Some(WsCommand::Text(text)) => match deflater {
                        Some(deflater) => frame::encode(&mut out, frame::TEXT, true, &deflater.compress(text.as_bytes()), mask()),
                        None => frame::encode(&mut out, frame::TEXT, false, text.as_bytes(), mask()),
                    },
                    Some(WsCommand::Ping) => frame::encode(&mut out, frame::PING, false, b"", mask()),
                    Some(WsCommand::Close(code)) => {
                        sent_close = true;
                        frame::encode(&mut out, frame::CLOSE, false, &code.to_be_bytes(), mask());
                    }
                }
                if let Err(e) = io.write_all(&out).await {
                    return io_error(e);
                }
                if out.capacity() > OUT_KEPT {
                    // A turn's request frame can be tens of KiB; the socket then idles or streams for minutes.
                    out = Vec::with_capacity(1024);
                }
            }
        }
    }
}

/// Capacity of the outgoing-frame buffer a socket keeps between sends.
const OUT_KEPT: usize = 16 * 1024;
