//! Raw connections for the WebSocket, directly or through the client's egress proxy (HTTP CONNECT over
//! http:// or https://, or SOCKS5 with optional credentials). reqwest does the same for HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ErrorKind, UpstreamError};

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type BoxIo = Box<dyn Io>;

fn proxy_error(message: impl Into<String>) -> UpstreamError {
    UpstreamError::new(ErrorKind::Proxy, message)
}

/// A byte stream to `host:port`, through `proxy` when given. `pinned` replaces the DNS lookup of `host`
/// (the `resolve` option); a proxy that resolves names itself is still given the name.
pub async fn open(
    host: &str,
    port: u16,
    pinned: Option<SocketAddr>,
    proxy: Option<&str>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<BoxIo, UpstreamError> {
    let Some(proxy) = proxy else {
        let connected = match pinned {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect((host, port)).await,
        };
        let tcp = connected.map_err(|e| UpstreamError::from_error(&e, false))?;
        let _ = tcp.set_nodelay(true);
        return Ok(Box::new(tcp));
    };
    let proxy = url::Url::parse(proxy).map_err(|e| proxy_error(format!("bad proxy URL: {e}")))?;
    let proxy_host = proxy.host_str().ok_or_else(|| proxy_error("proxy URL without host"))?;
    let proxy_host = proxy_host.trim_start_matches('[').trim_end_matches(']');
    let proxy_port = proxy.port_or_known_default().unwrap_or(1080);
    let user = percent_decode_str(proxy.username()).decode_utf8_lossy().into_owned();
    let password = percent_decode_str(proxy.password().unwrap_or("")).decode_utf8_lossy().into_owned();
    match proxy.scheme() {
        scheme @ ("socks5" | "socks5h") => {
            // Like reqwest: socks5 resolves the target here, socks5h lets the proxy resolve it.
            let target: tokio_socks::TargetAddr<'_> = if let (Some(addr), "socks5") = (pinned, scheme) {
                tokio_socks::TargetAddr::Ip(addr)
            } else if scheme == "socks5" {
                let addr = tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| UpstreamError::from_error(&e, false))?
                    .next()
                    .ok_or_else(|| UpstreamError::new(ErrorKind::Connect, format!("{host} has no address")))?;
                tokio_socks::TargetAddr::Ip(addr)
            } else {
                tokio_socks::TargetAddr::Domain(host.into(), port)
            };
            let stream = if user.is_empty() {
                tokio_socks::tcp::Socks5Stream::connect((proxy_host, proxy_port), target).await
            } else {
                tokio_socks::tcp::Socks5Stream::connect_with_password((proxy_host, proxy_port), target, &user, &password)
                    .await
            };
            let stream = stream.map_err(|e| UpstreamError::from_error(&e, true))?;
            Ok(Box::new(stream.into_inner()))
        }
        scheme @ ("http" | "https") => {
            let tcp = TcpStream::connect((proxy_host, proxy_port)).await.map_err(|e| UpstreamError::from_error(&e, true))?;
            let _ = tcp.set_nodelay(true);
            let auth = (!user.is_empty()).then(|| {
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            });
            if scheme == "https" {
                let name = ServerName::try_from(proxy_host.to_owned()).map_err(|e| proxy_error(e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| UpstreamError::from_error(&e, true))?;
                connect_tunnel(tls, host, port, auth.as_deref()).await
            } else {
                connect_tunnel(tcp, host, port, auth.as_deref()).await
            }
        }
        other => Err(proxy_error(format!("unsupported proxy scheme {other:?}"))),
    }
}

async fn connect_tunnel<S: Io + 'static>(
    mut stream: S,
    host: &str,
    port: u16,
    basic_auth: Option<&str>,
) -> Result<BoxIo, UpstreamError> {
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = basic_auth {
        request.push_str(&format!("Proxy-Authorization: Basic {auth}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| UpstreamError::from_error(&e, true))?;
    // Read byte by byte up to the blank line so no tunnel data is swallowed.
    let mut head = Vec::with_capacity(128);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(proxy_error("proxy answer to CONNECT is too long"));
        }
        let byte = stream.read_u8().await.map_err(|e| {
            proxy_error(format!("proxy closed the connection during CONNECT: {e}"))
        })?;
        head.push(byte);
    }
    let status_line = String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\r').unwrap_or(0)]).into_owned();
    let ok = status_line.split(' ').nth(1).is_some_and(|code| code.starts_with('2'));
    if !ok {
        return Err(proxy_error(format!("proxy refused the tunnel: {status_line}")));
    }
    Ok(Box::new(stream))
}
