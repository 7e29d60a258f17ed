//! TLS on the gateway's one port (rustls, with aws-lc-rs as its cryptography).
//!
//! ALPN offers `h2` and `http/1.1`, so gRPC, grpc-web, WebSocket and `/metrics` all keep working
//! behind TLS. With a client CA (`--publish-client-ca`), the handshake asks for a client
//! certificate without requiring one: subscribers connect as before, and what a verified
//! certificate proves is recorded on the connection for `IngestService.Publish` to require.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, RootCertStore, ServerConfig, ServerConnection,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    },
};

/// Why TLS could not be set up from the files given.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{flag} {path}: {source}")]
    Pem {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate authority could not be used as a trust anchor.
    #[error("{flag} {path}: {source}")]
    Anchor {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("--publish-client-ca: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Where the server's certificate and key, and optionally the client CA, are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first (`--tls-cert`).
    pub cert: PathBuf,
    /// PEM private key (`--tls-key`).
    pub key: PathBuf,
    /// PEM CA(s) that client certificates must chain to (`--publish-client-ca`).
    pub client_ca: Option<PathBuf>,
}

/// What a verified client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The certificate's subject, e.g. `CN=stream-consumer`.
    pub subject: String,
}

/// The TLS side of one connection, as handlers see it.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// The protocol ALPN settled on (`h2`, `http/1.1`), if any.
    pub alpn: Option<Vec<u8>>,
    /// The client's certificate, present only if it verified against the client CA.
    pub client: Option<ClientIdentity>,
}

/// Builds the acceptor from the PEM files.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let certs = read_certificates("--tls-cert", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Pem {
        flag: "--tls-key",
        path: files.key.clone(),
        source,
    })?;
    let provider = Arc::new(aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let flag = "--publish-client-ca";
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(flag, path)? {
                roots.add(cert).map_err(|source| TlsError::Anchor {
                    flag,
                    path: path.clone(),
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                // Subscribers need no certificate; Publish checks for one itself.
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_certificates(
    flag: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::Pem {
        flag,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(pem_error(rustls::pki_types::pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// What an established TLS connection says: ALPN, and the verified client certificate if any
/// (rustls only keeps peer certificates that passed the verifier).
pub fn info(connection: &ServerConnection) -> TlsInfo {
    let client = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| ClientIdentity {
            subject: match x509_parser::parse_x509_certificate(leaf) {
                Ok((_, cert)) => cert.subject().to_string(),
                // Verified by rustls, so this does not happen; stay usable if it does.
                Err(_) => "(unparsable subject)".into(),
            },
        });
    TlsInfo {
        alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
        client,
    }
}
