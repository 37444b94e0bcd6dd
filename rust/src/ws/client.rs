//! Drives the sans-IO WebSocket pieces over a (proxied) rustls connection and feeds the bridge.

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;

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
    let ws_tls = transport.ws_tls()?;
    let raw = tunnel::open(bare_host, port, pinned, transport.options.proxy.as_deref(), &ws_tls).await?;
    let mut io: BoxIo = if secure {
        let name = ServerName::try_from(bare_host.to_owned()).map_err(|e| protocol(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(ws_tls)
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
    let mut sent_close = false;
    // When either side last sent something; the timer below parks the zlib states once that is `PARK_AFTER` ago.
    // It is re-armed from this instant when it fires early, so a streaming socket costs no timer update per read.
    let mut last_traffic = Instant::now();
    let quiet = tokio::time::sleep(PARK_AFTER);
    tokio::pin!(quiet);
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
                    let mut out = Vec::with_capacity(payload.len() + 6);
                    frame::encode(&mut out, frame::PONG, false, &payload, mask());
                    if let Err(e) = io.write_all(&out).await {
                        return io_error(e);
                    }
                    continue;
                }
                Message::Close(code, reason) => {
                    if !sent_close {
                        let mut out = Vec::with_capacity(8);
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
        tokio::select! {
            read = read_into(io, decoder) => match read {
                Ok(0) => return Some(WsEvent::Closed { code: None, reason: String::new() }),
                Ok(_) => last_traffic = Instant::now(),
                Err(e) => return io_error(e),
            },
            () = &mut quiet, if assembler.can_park() || deflater.as_ref().is_some_and(Deflater::can_park) => {
                if last_traffic.elapsed() >= PARK_AFTER {
                    // Quiet (between turns, or a kept conversation): hold compressed history, not zlib states.
                    let deflater_parked = deflater.as_mut().is_some_and(Deflater::park);
                    if assembler.park() | deflater_parked {
                        trim_soon();
                    } else {
                        quiet.as_mut().reset(Instant::now() + PARK_RETRY);
                    }
                } else {
                    quiet.as_mut().reset(last_traffic + PARK_AFTER);
                }
            },
            command = commands.recv() => {
                // A send after a quiet spell is traffic too: the compressor it rebuilt stays for the turn.
                last_traffic = Instant::now();
                // Built per send and dropped after it: a turn's request frame can be tens of KiB, and the
                // socket then idles or streams for minutes.
                let mut out = Vec::new();
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
            }
        }
    }
}

/// How long a socket goes without traffic before its inflater and compressor park (`Inflater::park`,
/// `Deflater::park`). Parking costs about 0.7 ms (the window is compressed; the next message inflates it again in
/// 20 µs, and a parked compressor is rebuilt by replay before the next send), so it waits for a pause longer than
/// any gap between a streaming answer's events.
const PARK_AFTER: Duration = Duration::from_secs(2);
/// An inflater that could not park (its stream was ended) is not asked again sooner than this.
const PARK_RETRY: Duration = Duration::from_secs(600);

/// Whether a `malloc_trim` is already scheduled.
static TRIM_PENDING: AtomicBool = AtomicBool::new(false);

/// Return the memory that parked sockets freed to the system, a second after the first of a burst of parks.
///
/// glibc keeps freed memory in its arenas, so the ~300 KiB a socket's zlib states gave up stayed in the process's
/// RSS (measured: 150 kept conversations with real-sized requests dropped from 62 to 26 MiB of malloc'd memory
/// when they parked, RSS did not move). `malloc_trim` hands the arenas' free pages back; sockets go quiet
/// together after a burst, so the parks of one second share one trim (a few milliseconds, once a second at most).
fn trim_soon() {
    if TRIM_PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        tokio::time::sleep(TRIM_DELAY).await;
        TRIM_PENDING.store(false, Ordering::Release);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim has no preconditions; 0 keeps no extra pad at the top of the heap.
        unsafe {
            libc::malloc_trim(0);
        }
    });
}

const TRIM_DELAY: Duration = Duration::from_secs(1);

/// Size of the I/O thread's read buffer: a TLS record's plaintext (16 KiB).
const READ_SIZE: usize = 16 * 1024;

thread_local! {
    /// One read buffer per I/O thread instead of one per socket: a socket waiting for the server (all of its life
    /// but the moments a frame arrives) then holds no read buffer. `read_into` borrows it only inside one poll.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_SIZE]);
}

/// Read what the connection has (at most `READ_SIZE` bytes) and append it to `decoder`; 0 at the end of the stream.
///
/// The buffer is lent for the duration of one `poll_read` only: a reader that returns `Pending` has put nothing
/// into it (tokio's `AsyncRead` contract), so no bytes are in flight between polls.
async fn read_into(io: &mut BoxIo, decoder: &mut Decoder) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        READ_BUF.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    decoder.feed(buf.filled());
                    Poll::Ready(Ok(buf.filled().len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    })
    .await
}
