//! TLS configuration of the real client's two stacks.
//!
//! rustls: version 0.23.46 with the aws-lc-rs provider installed as the process default, as Codex does
//! (reqwest's rustls backend picks up the default provider). OpenSSL: native-tls with the vendored 3.6
//! line; its hello is OpenSSL's own default, so nothing is configured there beyond extra trust.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Once};

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

/// The OpenSSL connector of every HTTPS client of the process that trusts `extra` besides the system roots
/// (one per distinct `extra`, shared by clones: a native-tls connector is a reference to one `SSL_CTX`).
///
/// An `SSL_CTX` of OpenSSL 3 holds ~850 KiB (its cipher, digest, group and signature tables), and a gateway
/// makes one client per egress proxy; reqwest would build a context per client. What it builds is native-tls's
/// defaults (certificate and host name checked, SNI on, the system roots) plus the extra roots, as here, and
/// the hello comes from the context's settings alone. A connection takes a fresh `SSL` from the context and
/// native-tls keeps no client sessions, so connections through different proxies share nothing but settings.
pub fn shared_openssl_connector(extra: &[CertificateDer<'static>]) -> Result<native_tls::TlsConnector, UpstreamError> {
    static CONNECTORS: Mutex<Option<HashMap<Vec<Vec<u8>>, native_tls::TlsConnector>>> = Mutex::new(None);
    let key: Vec<Vec<u8>> = extra.iter().map(|cert| cert.as_ref().to_vec()).collect();
    let mut connectors = CONNECTORS.lock().unwrap_or_else(|e| e.into_inner());
    let connectors = connectors.get_or_insert_with(HashMap::new);
    if let Some(existing) = connectors.get(&key) {
        return Ok(existing.clone());
    }
    let tls_error = |e: native_tls::Error| UpstreamError::new(ErrorKind::Tls, format!("OpenSSL context: {e}"));
    let mut builder = native_tls::TlsConnector::builder();
    for cert in extra {
        builder.add_root_certificate(native_tls::Certificate::from_der(cert.as_ref()).map_err(tls_error)?);
    }
    let connector = builder.build().map_err(tls_error)?;
    connectors.insert(key, connector.clone());
    Ok(connector)
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
/// except for ALPN. Each transport (one per egress proxy) gets its own configuration, so TLS sessions are
/// never resumed through another proxy than the one they began on; the roots are shared.
pub fn websocket_config(extra: &[CertificateDer<'static>]) -> Result<Arc<rustls::ClientConfig>, UpstreamError> {
    install_provider();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| UpstreamError::new(ErrorKind::Tls, e.to_string()))?
        .with_root_certificates(trusted_roots(extra)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The system's root certificates plus `extra`, read and parsed once per process for each distinct `extra`
/// (~130 KiB per store; a gateway has a WebSocket configuration per egress proxy).
fn trusted_roots(extra: &[CertificateDer<'static>]) -> Result<Arc<rustls::RootCertStore>, UpstreamError> {
    static STORES: Mutex<Option<HashMap<Vec<Vec<u8>>, Arc<rustls::RootCertStore>>>> = Mutex::new(None);
    let key: Vec<Vec<u8>> = extra.iter().map(|cert| cert.as_ref().to_vec()).collect();
    let mut stores = STORES.lock().unwrap_or_else(|e| e.into_inner());
    let stores = stores.get_or_insert_with(HashMap::new);
    if let Some(existing) = stores.get(&key) {
        return Ok(existing.clone());
    }
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
    let roots = Arc::new(roots);
    stores.insert(key, roots.clone());
    Ok(roots)
}
