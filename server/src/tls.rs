//! TLS for client connections: a certificate chain and its private key,
//! both PEM files, served with rustls (ring's cryptography).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::tokio_rustls::rustls::ServerConfig;
use pgwire::tokio::tokio_rustls::rustls::crypto::ring::default_provider;
use pgwire::tokio::tokio_rustls::rustls::pki_types::pem::PemObject;
use pgwire::tokio::tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What TLS needs: the acceptor, and the certificate's PEM text for SCRAM
/// channel binding.
pub(crate) struct Tls {
    pub acceptor: TlsAcceptor,
    pub certificate_pem: Vec<u8>,
}

impl Tls {
    pub fn load(certificate: &Path, key: &Path) -> anyhow::Result<Self> {
        let certificate_pem = std::fs::read(certificate)
            .with_context(|| format!("cannot read --tls-cert {}", certificate.display()))?;
        let chain = CertificateDer::pem_slice_iter(&certificate_pem)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| {
                format!("--tls-cert {}: not PEM certificates", certificate.display())
            })?;
        anyhow::ensure!(
            !chain.is_empty(),
            "--tls-cert {}: no certificate in it",
            certificate.display()
        );
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("--tls-key {}: no PEM private key", key.display()))?;
        let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("the TLS certificate and key do not go together")?;
        // What PostgreSQL 17 clients ask for with sslnegotiation=direct.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate_pem,
        })
    }
}
