//! TLS for both ends: the STARTTLS server side (certificate from PEM files, or a
//! self-signed one for `--dev` and tests) and the client side towards the upstream
//! (webpki roots plus an optional private CA, ALPN `h2`). rustls with the ring provider.

mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use stream::Io;

#[derive(Debug)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    Pem {
        path: PathBuf,
        reason: String,
    },
    /// rustls refused the configuration (key does not match the certificate, ...).
    Config(rustls::Error),
    SelfSigned(rcgen::Error),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pem { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::Config(e) => write!(f, "TLS configuration rejected: {e}"),
            Self::SelfSigned(e) => write!(f, "cannot generate a self-signed certificate: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A certificate chain and its private key, loaded once and handed to every shard.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let pem_error = |path: &Path, reason: String| TlsError::Pem {
            path: path.to_owned(),
            reason,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| pem_error(cert, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(pem_error(cert, "no certificate found".into()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e.to_string()))?;
        Ok(Self { chain, key })
    }

    /// A fresh self-signed certificate for `names` (for `--dev` and tests). Also
    /// returns the certificate in PEM so a client can be told to trust it.
    pub fn self_signed(names: &[String]) -> Result<(Self, String), TlsError> {
        let certified =
            rcgen::generate_simple_self_signed(names.to_vec()).map_err(TlsError::SelfSigned)?;
        let pem = certified.cert.pem();
        let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let identity = Self {
            chain: vec![certified.cert.der().clone()],
            key,
        };
        Ok((identity, pem))
    }

    /// A server configuration for STARTTLS. Built per shard, so nothing (session cache
    /// included) is shared across cores.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(TlsError::Config)?
                .with_no_client_auth()
                .with_single_cert(self.chain.clone(), self.key.clone_key())
                .map_err(TlsError::Config)?;
        Ok(Arc::new(config))
    }
}

/// Trust anchors for the upstream: the webpki roots plus, optionally, a private CA.
#[derive(Clone, Debug)]
pub struct UpstreamTrust {
    extra: Vec<CertificateDer<'static>>,
}

impl UpstreamTrust {
    pub fn new(ca_file: Option<&Path>) -> Result<Self, TlsError> {
        let extra = match ca_file {
            None => Vec::new(),
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| TlsError::Pem {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?;
                if certs.is_empty() {
                    return Err(TlsError::Pem {
                        path: path.to_owned(),
                        reason: "no certificate found".into(),
                    });
                }
                certs
            }
        };
        Ok(Self { extra })
    }

    /// A client configuration offering ALPN `h2`, built per shard.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in &self.extra {
            roots.add(cert.clone()).map_err(TlsError::Config)?;
        }
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(TlsError::Config)?
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}
