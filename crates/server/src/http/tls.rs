//! HTTPS served by the server itself: rustls with the ring provider (the only
//! crypto provider in the tree), certificate chain and key from PEM files.
//! Connections are accepted in `listen.rs`.

use std::{path::Path, sync::Arc};

use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    },
};

pub type Acceptor = TlsAcceptor;

/// Loads the certificate chain and key; errors name the configuration key.
pub fn acceptor(cert: &Path, key: &Path) -> Result<Acceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("key `tls.cert`: cannot read {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!("key `tls.cert`: {} holds no valid certificate: {e}", cert.display())
        })?;
    if certs.is_empty() {
        return Err(format!("key `tls.cert`: {} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!("key `tls.key`: cannot read a private key from {}: {e}", key.display())
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("key `tls.key`: does not match the certificate: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
