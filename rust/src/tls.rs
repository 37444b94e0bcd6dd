//! TLS configuration of the real client's two stacks.
//!
//! rustls: version 0.23.46 with the aws-lc-rs provider installed as the process default, as Codex does
//! (reqwest's rustls backend picks up the default provider). OpenSSL: native-tls with the vendored 3.6
//! line; its hello is OpenSSL's own default, so nothing is configured there beyond extra trust.

use std::path::Path;
use std::sync::{Arc, Once};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::{ErrorKind, UpstreamError};

/// Install aws-lc-rs as the process-wide rustls provider (once; a provider installed by someone else wins).
pub fn install_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// The certificates of a PEM file (for `ca_file`).
pub fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, UpstreamError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| UpstreamError::new(ErrorKind::Tls, format!("ca_file {}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| UpstreamError::new(ErrorKind::Tls, format!("ca_file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(UpstreamError::new(ErrorKind::Tls, format!("ca_file {}: no certificate found", path.display())));
    }
    Ok(certs)
}

/// The rustls configuration of the real client's WebSocket: system roots (+ `extra`), no ALPN.
/// It is built the way reqwest builds its own rustls config, so the hello matches the HTTPS one
/// except for ALPN.
pub fn websocket_config(extra: &[CertificateDer<'static>]) -> Result<Arc<rustls::ClientConfig>, UpstreamError> {
    install_provider();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // System stores hold a few certificates webpki cannot parse; skipping them is what reqwest does.
        let _ = roots.add(cert);
    }
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| UpstreamError::new(ErrorKind::Tls, format!("ca_file: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| UpstreamError::new(ErrorKind::Tls, e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
