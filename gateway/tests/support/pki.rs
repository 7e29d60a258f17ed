//! A throwaway PKI made at test time, and signed subscriber tokens. Shared with the whole-system
//! tests (`e2e/tests/grpcurl.rs` includes this file), so it depends on nothing else here.

#![allow(dead_code, unreachable_pub)]

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// The HMAC secret subscriber tokens are signed with in these tests.
pub const JWT_SECRET: &str = "test-jwt-secret";

/// A subscriber token signed with [`JWT_SECRET`]: `exp` seconds from now (negative: already
/// expired) plus `claims`.
pub fn jwt(expires_in: i64, claims: serde_json::Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let mut claims = claims;
    claims["exp"] = (now + expires_in).into();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).expect("key"),
    )
    .expect("encodes")
}

/// A throwaway PKI in a temporary directory, removed on drop: a server CA and a server
/// certificate for `localhost` / 127.0.0.1; a separate client CA (for Publish) with a client
/// certificate; and a client certificate from the wrong CA.
pub struct Pki {
    dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_ca: PathBuf,
    pub client: (String, String),
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub rogue_client: (String, String),
}

impl Pki {
    pub fn generate() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "streamweaver-pki-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let server_ca = certificate_authority("StreamWeaver test CA");
        let client_ca = certificate_authority("StreamWeaver test publisher CA");
        let (server_cert, server_key) = leaf(
            &server_ca,
            "localhost",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(
            &client_ca,
            "stream-consumer",
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let rogue_client = leaf(
            &server_ca,
            "not-a-publisher",
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        Self {
            ca: write("ca.pem", &server_ca.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server-key.pem", &server_key),
            client_ca: write("client-ca.pem", &client_ca.pem()),
            client_cert: write("client.pem", &client.0),
            client_key: write("client-key.pem", &client.1),
            client,
            rogue_client,
            dir,
        }
    }

    /// Flags that turn TLS on, with the client CA for Publish if `mutual`.
    pub fn flags(&self, mutual: bool) -> Vec<String> {
        let mut flags = vec![
            "--tls-cert".to_owned(),
            path(&self.server_cert),
            "--tls-key".to_owned(),
            path(&self.server_key),
        ];
        if mutual {
            flags.extend(["--publish-client-ca".to_owned(), path(&self.client_ca)]);
        }
        flags
    }

    /// A TLS channel to `address` trusting the test CA, presenting `client` if given.
    pub async fn channel(
        &self,
        address: SocketAddr,
        client: Option<&(String, String)>,
    ) -> Result<Channel, tonic::transport::Error> {
        let ca = std::fs::read_to_string(&self.ca).expect("CA");
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("localhost");
        if let Some((cert, key)) = client {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Channel::from_shared(format!("https://{address}"))
            .expect("url")
            .tls_config(tls)?
            .connect()
            .await
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn path(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate signed by `issuer`, and its key, in PEM.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    subject_alt_names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(subject_alt_names).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}
