//! Typed upstream errors, independent of Python: the glue maps `ErrorKind` onto exception classes.

use std::error::Error as StdError;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Tls,
    Timeout,
    Proxy,
    Protocol,
    /// A bug on our side (a caught panic, an fd that could not be created).
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Proxy => "proxy",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Internal => "internal",
        }
    }
}

#[derive(Clone, Debug)]
pub struct UpstreamError {
    pub kind: ErrorKind,
    /// The whole cause chain, outermost first, joined with ": ".
    pub message: String,
    /// HTTP status when the failure was a refused WebSocket upgrade.
    pub status: Option<u16>,
}

impl UpstreamError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), status: None }
    }

    /// Classify any error by what its cause chain contains.
    pub fn from_error(err: &(dyn StdError + 'static), via_proxy: bool) -> Self {
        Self::new(classify(err, via_proxy), cause_chain(err))
    }

    pub fn from_reqwest(err: &reqwest::Error, via_proxy: bool) -> Self {
        let kind = if err.is_timeout() {
            ErrorKind::Timeout
        } else if err.is_connect() || err.is_builder() {
            classify(err, via_proxy)
        } else if chain_has::<rustls::Error>(err) || chain_has::<native_tls::Error>(err) {
            ErrorKind::Tls
        } else {
            ErrorKind::Protocol
        };
        Self::new(kind, cause_chain(err))
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

fn classify(err: &(dyn StdError + 'static), via_proxy: bool) -> ErrorKind {
    if chain_has::<rustls::Error>(err) || chain_has::<native_tls::Error>(err) {
        return ErrorKind::Tls;
    }
    let timed_out = walk(err).any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || e.downcast_ref::<tokio::time::error::Elapsed>().is_some()
    });
    if timed_out {
        ErrorKind::Timeout
    } else if via_proxy {
        // With a proxy, everything before the tunnel is up is the proxy's fault (refused, bad
        // credentials, tunnel refused).
        ErrorKind::Proxy
    } else {
        ErrorKind::Connect
    }
}

/// Each error of the chain, following io::Error's inner error too (tokio-rustls hides rustls errors there).
fn walk<'a>(err: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.source().or_else(|| {
            current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|inner| inner as _)
        });
        Some(current)
    })
}

fn chain_has<E: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    walk(err).any(|e| e.downcast_ref::<E>().is_some())
}

/// "outer: cause: root cause", skipping a link whose text the previous link already contains.
pub fn cause_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in walk(err) {
        let text = e.to_string();
        if parts.last().is_some_and(|prev| prev.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn tls_error_inside_io_error_is_found() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let err = Outer(std::io::Error::new(std::io::ErrorKind::InvalidData, inner));
        let classified = UpstreamError::from_error(&err, false);
        assert_eq!(classified.kind, ErrorKind::Tls);
        assert!(classified.message.starts_with("client error (Connect): "), "{}", classified.message);
        assert!(classified.message.contains("UnknownIssuer"), "{}", classified.message);
    }

    #[test]
    fn refused_is_connect_or_proxy() {
        let err = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(UpstreamError::from_error(&err, false).kind, ErrorKind::Connect);
        assert_eq!(UpstreamError::from_error(&err, true).kind, ErrorKind::Proxy);
    }
}
