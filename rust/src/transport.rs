//! HTTP transport: one pooled reqwest client per (profile, proxy, trust, timeouts), and the tokio
//! tasks that run a request or a stream and feed the bridge.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH};

use crate::bridge::Sender;
use crate::error::{ErrorKind, UpstreamError};
use crate::tls;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Default HTTPS of the real client: native-tls / OpenSSL, no ALPN, HTTP/1.1.
    OpenSsl,
    /// HTTPS with a custom CA: rustls + aws-lc-rs, ALPN h2,http/1.1.
    Rustls,
}

impl Profile {
    pub fn parse(name: &str) -> Result<Self, UpstreamError> {
        match name {
            "openssl" => Ok(Profile::OpenSsl),
            "rustls" => Ok(Profile::Rustls),
            other => Err(UpstreamError::new(
                ErrorKind::Protocol,
                format!("unknown TLS profile {other:?} (expected \"openssl\" or \"rustls\")"),
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    pub profile: Profile,
    pub proxy: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub connect_timeout_ms: u64,
    pub read_timeout_ms: Option<u64>,
    /// Accept and decode zstd and gzip response bodies (Codex 0.171.0). reqwest's decompression layer then
    /// adds `accept-encoding: zstd,gzip` after the caller's headers, which puts it where the real client
    /// has it: directly before `host` on HTTP/1.1, last on HTTP/2. Off: no accept-encoding (0.169.0).
    pub decompress: bool,
    /// Host name → address to connect to instead of resolving it (curl's `--resolve`). Only the TCP
    /// destination changes: SNI, certificate check and `Host` keep the real name. Sorted by host, so equal
    /// options share one transport.
    pub resolve: Vec<(String, SocketAddr)>,
}

impl Options {
    /// The address `host` is pinned to, if any. An explicit port in the URL wins over the pinned one,
    /// as in reqwest's resolver overrides.
    pub fn resolved(&self, host: &str, explicit_port: Option<u16>) -> Option<SocketAddr> {
        let host = host.to_ascii_lowercase();
        let (_, addr) = self.resolve.iter().find(|(name, _)| *name == host)?;
        let mut addr = *addr;
        if let Some(port) = explicit_port {
            addr.set_port(port);
        }
        Some(addr)
    }
}

/// What the trio side receives for an HTTP call.
pub enum HttpEvent {
    Head { status: u16, headers: Vec<(String, String)> },
    Chunk(Bytes),
    /// End of a streamed body.
    End,
    /// A buffered request's whole response.
    Complete { status: u16, headers: Vec<(String, String)>, body: Bytes },
    Failed(UpstreamError),
}

impl HttpEvent {
    pub fn from_panic(message: String) -> Self {
        HttpEvent::Failed(UpstreamError::new(ErrorKind::Internal, format!("panic in the transport: {message}")))
    }
}

pub struct Transport {
    pub options: Options,
    /// Checked when the transport is made (an unreadable `ca_file` or a bad proxy URL fails the client's
    /// construction); the TLS stacks are built from them at first use.
    extra_certs: Vec<rustls_pki_types::CertificateDer<'static>>,
    proxy: Option<reqwest::Proxy>,
    /// Built at the first HTTP request. A transport of the rustls profile carries only WebSockets and never
    /// builds it; one of the OpenSSL profile builds it at its first call. The process's first stack of each
    /// TLS library runs that library's start-up (~6 MiB of RSS for OpenSSL, ~2 MiB for rustls); later ones
    /// share its context or roots (`tls.rs`; docs/performance.md, "Idle RSS and memory per stream, fourth
    /// round").
    http: OnceLock<reqwest::Client>,
    /// rustls configuration for the WebSocket (same for both profiles, as in the real client), built at the
    /// first WebSocket.
    ws_tls: OnceLock<Arc<rustls::ClientConfig>>,
}

/// One transport per distinct options, shared by every Python `Client` that asks for the same ones,
/// so connections are pooled across requests.
pub fn transport_for(options: Options) -> Result<Arc<Transport>, UpstreamError> {
    static POOL: Mutex<Option<HashMap<Options, Arc<Transport>>>> = Mutex::new(None);
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let pool = pool.get_or_insert_with(HashMap::new);
    if let Some(existing) = pool.get(&options) {
        return Ok(existing.clone());
    }
    let transport = Arc::new(Transport::new(options.clone())?);
    pool.insert(options, transport.clone());
    Ok(transport)
}

impl Transport {
    fn new(options: Options) -> Result<Self, UpstreamError> {
        let extra_certs = match &options.ca_file {
            Some(path) => tls::load_pem_certs(path)?,
            None => Vec::new(),
        };
        for cert in &extra_certs {
            reqwest::Certificate::from_der(cert.as_ref()).map_err(|e| UpstreamError::from_reqwest(&e, false))?;
        }
        let proxy = match &options.proxy {
            Some(proxy) => Some(reqwest::Proxy::all(proxy).map_err(|e| UpstreamError::from_reqwest(&e, true))?),
            None => None,
        };
        Ok(Self { options, extra_certs, proxy, http: OnceLock::new(), ws_tls: OnceLock::new() })
    }

    fn http(&self) -> Result<&reqwest::Client, UpstreamError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let built = self.build_http()?;
        Ok(self.http.get_or_init(|| built)) // a concurrent first call may have won; both are equal
    }

    fn build_http(&self) -> Result<reqwest::Client, UpstreamError> {
        let options = &self.options;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(options.connect_timeout_ms))
            // Proxies only come from the options, never from the environment.
            .no_proxy();
        if let Some(ms) = options.read_timeout_ms {
            builder = builder.read_timeout(Duration::from_millis(ms));
        }
        builder = if options.decompress { builder.zstd(true).gzip(true) } else { builder.no_zstd().no_gzip() };
        builder = match options.profile {
            // The extra roots are in the shared connector.
            Profile::OpenSsl => builder.use_preconfigured_tls(tls::shared_openssl_connector(&self.extra_certs)?),
            Profile::Rustls => {
                tls::install_provider();
                let mut builder = builder.use_rustls_tls();
                for cert in &self.extra_certs {
                    let cert = reqwest::Certificate::from_der(cert.as_ref())
                        .map_err(|e| UpstreamError::from_reqwest(&e, false))?;
                    builder = builder.add_root_certificate(cert);
                }
                builder
            }
        };
        for (host, addr) in &options.resolve {
            builder = builder.resolve(host, *addr);
        }
        if let Some(proxy) = &self.proxy {
            builder = builder.proxy(proxy.clone());
        }
        builder.build().map_err(|e| UpstreamError::from_reqwest(&e, false))
    }

    /// The WebSocket's rustls configuration (built at the first WebSocket of this transport).
    pub fn ws_tls(&self) -> Result<Arc<rustls::ClientConfig>, UpstreamError> {
        if let Some(config) = self.ws_tls.get() {
            return Ok(config.clone());
        }
        let built = tls::websocket_config(&self.extra_certs)?;
        Ok(self.ws_tls.get_or_init(|| built).clone())
    }

    fn via_proxy(&self) -> bool {
        self.options.proxy.is_some()
    }

    /// Build the request with the caller's headers in the caller's order. reqwest/hyper then add only
    /// what the real client's stack adds too: `accept: */*` when absent, `host` when absent (HTTP/1.1),
    /// and `content-length` last.
    pub fn build(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
        zstd: bool,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Request, UpstreamError> {
        let bad = |what: String| UpstreamError::new(ErrorKind::Protocol, what);
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| bad(format!("bad method {method:?}")))?;
        let mut map = HeaderMap::with_capacity(headers.len() + 1);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(format!("bad header name {name:?}")))?;
            if name == CONTENT_LENGTH {
                continue; // computed from the body actually sent
            }
            let value = HeaderValue::from_str(value).map_err(|_| bad(format!("bad value for header {name}")))?;
            map.append(name, value);
        }
        let body = match body {
            Some(raw) if zstd => {
                if !map.contains_key(CONTENT_ENCODING) {
                    map.append(CONTENT_ENCODING, HeaderValue::from_static("zstd"));
                }
                Some(zstd_body(&raw).map_err(|e| bad(format!("zstd: {e}")))?)
            }
            other => other,
        };
        let mut builder = self.http()?.request(method, url).headers(map);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        builder.build().map_err(|e| UpstreamError::from_reqwest(&e, false))
    }

    /// Send and buffer the whole response.
    pub async fn run_request(self: Arc<Self>, request: reqwest::Request, tx: Sender<HttpEvent>) {
        let event = match self.fetch_all(request).await {
            Ok(complete) => complete,
            Err(err) => HttpEvent::Failed(err),
        };
        let _ = tx.send(event).await;
    }

    async fn fetch_all(&self, request: reqwest::Request) -> Result<HttpEvent, UpstreamError> {
        let response = self.http()?.execute(request).await.map_err(|e| UpstreamError::from_reqwest(&e, self.via_proxy()))?;
        let status = response.status().as_u16();
        let headers = header_pairs(response.headers());
        let body = response.bytes().await.map_err(|e| UpstreamError::from_reqwest(&e, false))?;
        Ok(HttpEvent::Complete { status, headers, body })
    }

    /// Send and stream the body chunk by chunk. Each send waits while the bridge is full, so a slow
    /// consumer stops the reads from the socket.
    pub async fn run_stream(self: Arc<Self>, request: reqwest::Request, tx: Sender<HttpEvent>) {
        let http = match self.http() {
            Ok(http) => http,
            Err(err) => {
                let _ = tx.send(HttpEvent::Failed(err)).await;
                return;
            }
        };
        let mut response = match http.execute(request).await {
            Ok(response) => response,
            Err(err) => {
                let _ = tx.send(HttpEvent::Failed(UpstreamError::from_reqwest(&err, self.via_proxy()))).await;
                return;
            }
        };
        let head = HttpEvent::Head { status: response.status().as_u16(), headers: header_pairs(response.headers()) };
        if tx.send(head).await.is_err() {
            return;
        }
        loop {
            let event = match response.chunk().await {
                Ok(Some(chunk)) => HttpEvent::Chunk(chunk),
                Ok(None) => HttpEvent::End,
                Err(err) => HttpEvent::Failed(UpstreamError::from_reqwest(&err, false)),
            };
            let last = !matches!(event, HttpEvent::Chunk(_));
            if tx.send(event).await.is_err() || last {
                return;
            }
        }
    }
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect()
}

/// The real client's request-body compression: one zstd frame at level 3, streamed (so no content
/// size in the header) and without checksum.
pub fn zstd_body(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = zstd::stream::Encoder::new(Vec::with_capacity(raw.len() / 3 + 64), 3)?;
    encoder.include_checksum(false)?;
    encoder.write_all(raw)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_keeps_the_pinned_port_unless_the_url_names_one() {
        let options = Options {
            profile: Profile::Rustls,
            proxy: None,
            ca_file: None,
            connect_timeout_ms: 1000,
            read_timeout_ms: None,
            decompress: false,
            resolve: vec![("chatgpt.com".into(), "127.0.0.1:8443".parse().unwrap())],
        };
        assert_eq!(options.resolved("ChatGPT.com", None), Some("127.0.0.1:8443".parse().unwrap()));
        assert_eq!(options.resolved("chatgpt.com", Some(9000)), Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(options.resolved("auth.openai.com", None), None);
    }

    #[test]
    fn zstd_body_has_no_checksum_and_no_content_size() {
        let raw = br#"{"model":"gpt-5.5","stream":true,"input":[]}"#.repeat(20);
        let frame = zstd_body(&raw).unwrap();
        assert_eq!(&frame[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        let descriptor = frame[4];
        assert_eq!(descriptor >> 6, 0, "frame content size flag must be 0");
        assert_eq!(descriptor & 0b100, 0, "checksum flag must be 0");
        assert_eq!(descriptor & 0b10_0000, 0, "not single-segment");
        // Window descriptor: exponent 11 → 2^(10+11) = 2 MiB, as in the capture.
        assert_eq!(frame[5], 11 << 3);
        assert_eq!(zstd::stream::decode_all(&frame[..]).unwrap(), raw);
    }
}
