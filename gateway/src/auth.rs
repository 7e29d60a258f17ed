//! Who may publish and who may subscribe.
//!
//! **Publish** needs the static bearer secret `--publish-token` (compared in constant time) and,
//! with `--publish-client-ca`, a client certificate that verified against that CA on the
//! connection's TLS handshake (mutual TLS).
//!
//! **Subscribe** is open unless a JWT key is configured (`--subscribe-jwt-secret` for HS256/384/512,
//! `--subscribe-jwt-public-key` for RS*, PS*, ES256/384 or EdDSA). Then every subscriber presents
//! a signed token: gRPC and grpc-web as `authorization: Bearer <jwt>`; WebSocket as the
//! subprotocol `streamweaver.v1.bearer.<jwt>` or in a frame `{"authorization":"Bearer <jwt>"}`
//! (sent first, or again later to renew it) — never in the URL, which proxies and access logs
//! keep. Claims: `exp` (required), `topics` (the topics allowed; absent means all), `sub` (logged).
//! A subscription naming a topic outside `topics` is refused with PERMISSION_DENIED; one asking
//! for every topic is narrowed to the allowed ones. A subscription ends with UNAUTHENTICATED
//! when its token expires.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::{Stream, StreamExt};
use http::{HeaderMap, Uri, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use streamweaver_proto::{topics::Topic, v1::SubscribeRequest};
use subtle::ConstantTimeEq;
use tokio::time::Instant;
use tonic::{Code, Request, Status, metadata::MetadataMap, service::Interceptor};

use crate::{metrics::Metrics, serve::ConnectionInfo};

/// A WebSocket subprotocol carrying a subscriber's token: `streamweaver.v1.bearer.<jwt>`. The
/// server never selects it, so the token is never echoed back.
pub const BEARER_PROTOCOL_PREFIX: &str = "streamweaver.v1.bearer.";
/// Where a gRPC subscriber's token goes.
const GRPC_HINT: &str = "send `authorization: Bearer <token>`";
/// Where a WebSocket subscriber's token goes.
const WEBSOCKET_HINT: &str = "offer the subprotocol `streamweaver.v1.bearer.<token>` or send \
                              `{\"authorization\":\"Bearer <token>\"}` before subscribing";

/// Why a caller was not let in; each maps to a gRPC status code and a metrics reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token where one is required.
    #[error("a bearer token is required: {0}")]
    MissingToken(&'static str),
    /// The Publish secret did not match.
    #[error("a valid bearer token is required")]
    WrongSecret,
    /// The token is malformed, badly signed, or signed with an algorithm not accepted.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The token's `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// Publish needs a client certificate and the connection has none.
    #[error(
        "Publish requires mutual TLS: connect with a client certificate signed by the gateway's --publish-client-ca"
    )]
    ClientCertificateRequired,
    /// The token does not allow a topic the request names.
    #[error("the token does not allow topic {topic:?} (it allows {allowed})")]
    TopicNotAllowed {
        /// The topic asked for.
        topic: String,
        /// The topics the token allows, for the message.
        allowed: String,
    },
    /// The token allows no topic at all.
    #[error("the token allows no topics")]
    NoTopicAllowed,
    /// A token in the URL, where logs keep it.
    #[error(
        "tokens are not accepted in the URL, where proxies and logs keep them: {WEBSOCKET_HINT}"
    )]
    TokenInUrl,
}

impl AuthError {
    /// The gRPC status code.
    pub fn code(&self) -> Code {
        match self {
            Self::TopicNotAllowed { .. } | Self::NoTopicAllowed => Code::PermissionDenied,
            Self::TokenInUrl => Code::InvalidArgument,
            _ => Code::Unauthenticated,
        }
    }

    /// The status code's name, for WebSocket error frames.
    pub fn code_name(&self) -> &'static str {
        match self.code() {
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            _ => "UNAUTHENTICATED",
        }
    }

    /// A fixed label for `gateway_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingToken(_) | Self::WrongSecret => "unauthenticated",
            Self::InvalidToken(_) => "invalid_token",
            Self::Expired => "token_expired",
            Self::ClientCertificateRequired => "client_certificate_required",
            Self::TopicNotAllowed { .. } | Self::NoTopicAllowed => "topic_not_allowed",
            Self::TokenInUrl => "token_in_url",
        }
    }
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        Status::new(error.code(), error.to_string())
    }
}

/// A secret compared in constant time, so response timing does not tell how much of a guess
/// was right.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    /// Keeps `secret`.
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().into())
    }

    /// Whether `given` is the secret. Only the length can leak, as with any comparison.
    pub fn matches(&self, given: &[u8]) -> bool {
        self.0.as_ref().ct_eq(given).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The token of an `authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn bearer_in(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
}

/// `IngestService.Publish`'s gate: the bearer secret and, if required, a client certificate.
#[derive(Debug, Clone)]
pub struct PublishAuth {
    secret: Secret,
    require_client_certificate: bool,
    metrics: Metrics,
}

impl PublishAuth {
    /// Calls need `token`, and a verified client certificate if `require_client_certificate`.
    pub fn new(token: &str, require_client_certificate: bool, metrics: Metrics) -> Self {
        Self {
            secret: Secret::new(token),
            require_client_certificate,
            metrics,
        }
    }

    /// Whether a call with this metadata, on this connection, may publish.
    pub fn check(
        &self,
        metadata: &MetadataMap,
        connection: Option<&ConnectionInfo>,
    ) -> Result<(), AuthError> {
        let token = bearer_in(metadata).ok_or(AuthError::WrongSecret)?;
        if !self.secret.matches(token.as_bytes()) {
            return Err(AuthError::WrongSecret);
        }
        if self.require_client_certificate
            && connection
                .and_then(ConnectionInfo::client_identity)
                .is_none()
        {
            return Err(AuthError::ClientCertificateRequired);
        }
        Ok(())
    }
}

impl Interceptor for PublishAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let connection = request.extensions().get::<ConnectionInfo>();
        match self.check(request.metadata(), connection) {
            Ok(()) => {
                if let Some(identity) = connection.and_then(ConnectionInfo::client_identity) {
                    tracing::debug!(client = %identity.subject, "Publish over mutual TLS");
                }
                Ok(request)
            }
            Err(error) => {
                self.metrics.refuse("ingest", error.reason());
                Err(error.into())
            }
        }
    }
}

/// Why the subscriber-token settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// `--subscribe-jwt-secret` was given empty.
    #[error("--subscribe-jwt-secret must not be empty")]
    EmptySecret,
    /// The public key file cannot be read.
    #[error("--subscribe-jwt-public-key {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The public key file holds no RSA, EC or Ed25519 public key in PEM.
    #[error(
        "--subscribe-jwt-public-key {0}: not an RSA, EC (P-256, P-384) or Ed25519 public key in PEM"
    )]
    NotAKey(PathBuf),
}

/// A key and the algorithms it verifies.
struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

/// Verifies subscribers' JWTs; with no key configured, subscribing is open.
#[derive(Default)]
pub struct SubscriberAuth {
    verifiers: Vec<Verifier>,
    leeway: Duration,
}

impl fmt::Debug for SubscriberAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithms: Vec<_> = self
            .verifiers
            .iter()
            .flat_map(|v| v.validation.algorithms.iter())
            .collect();
        f.debug_struct("SubscriberAuth")
            .field("algorithms", &algorithms)
            .field("leeway", &self.leeway)
            .finish()
    }
}

/// The claims the gateway reads; `exp` is required and checked by the JWT library.
#[derive(Debug, Deserialize)]
struct Claims {
    /// Optional here so that a missing `exp` is reported by the validation, clearly.
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    topics: Option<Vec<String>>,
    #[serde(default)]
    sub: Option<String>,
}

impl SubscriberAuth {
    /// Tokens signed with `secret` (HMAC) and/or by the private half of the PEM public key at
    /// `public_key`; `exp` and `nbf` are allowed `leeway` of clock skew. Neither: open.
    pub fn new(
        secret: Option<&str>,
        public_key: Option<&Path>,
        leeway: Duration,
    ) -> Result<Self, AuthConfigError> {
        let mut verifiers = Vec::new();
        if let Some(secret) = secret {
            if secret.is_empty() {
                return Err(AuthConfigError::EmptySecret);
            }
            verifiers.push(Verifier {
                // Never fails for a secret; the error type is shared with PEM parsing.
                key: DecodingKey::from_secret(secret.as_bytes())
                    .map_err(|_| AuthConfigError::EmptySecret)?,
                validation: validation(&[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]),
            });
        }
        if let Some(path) = public_key {
            let pem = std::fs::read(path).map_err(|source| AuthConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let verifier = if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                Verifier {
                    key,
                    validation: validation(&[Algorithm::ES256, Algorithm::ES384]),
                }
            } else if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                use Algorithm::*;
                Verifier {
                    key,
                    validation: validation(&[RS256, RS384, RS512, PS256, PS384, PS512]),
                }
            } else if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
                Verifier {
                    key,
                    validation: validation(&[Algorithm::EdDSA]),
                }
            } else {
                return Err(AuthConfigError::NotAKey(path.to_owned()));
            };
            verifiers.push(verifier);
        }
        for verifier in &mut verifiers {
            verifier.validation.leeway = leeway.as_secs();
        }
        Ok(Self { verifiers, leeway })
    }

    /// Whether anyone may subscribe without a token.
    pub fn is_open(&self) -> bool {
        self.verifiers.is_empty()
    }

    /// Checks a token's signature and claims.
    pub fn verify(&self, token: &str) -> Result<Grant, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| AuthError::InvalidToken(describe(&error)))?;
        let verifier = self
            .verifiers
            .iter()
            .find(|v| v.validation.algorithms.contains(&header.alg))
            .ok_or_else(|| {
                AuthError::InvalidToken(format!(
                    "tokens signed with {:?} are not accepted here",
                    header.alg
                ))
            })?;
        let claims = jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::InvalidToken(describe(&error)),
            })?
            .claims;
        let exp = claims
            .exp
            .ok_or_else(|| AuthError::InvalidToken("the \"exp\" claim is required".into()))?;
        let topics = claims.topics.map(|names| {
            names
                .iter()
                // A topic this gateway does not know allows nothing here.
                .filter_map(|name| name.parse::<Topic>().ok())
                .collect()
        });
        Ok(Grant {
            topics,
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(exp) + self.leeway),
            subject: claims.sub,
        })
    }

    /// The grant of a gRPC or grpc-web subscriber, from its `authorization` metadata.
    pub fn check_metadata(&self, metadata: &MetadataMap) -> Result<Grant, AuthError> {
        if self.is_open() {
            return Ok(Grant::default());
        }
        let token = bearer_in(metadata).ok_or(AuthError::MissingToken(GRPC_HINT))?;
        self.verify(token)
    }
}

fn validation(algorithms: &[Algorithm]) -> Validation {
    let mut validation = Validation::new(algorithms[0]);
    validation.algorithms = algorithms.to_vec();
    validation.validate_nbf = true;
    // Audiences are not configured; a token that names one is not refused for it.
    validation.validate_aud = false;
    validation
}

/// A JWT error as a person reads it.
fn describe(error: &jsonwebtoken::errors::Error) -> String {
    match error.kind() {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::ImmatureSignature => "not valid yet (nbf)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the {claim:?} claim is required"),
        ErrorKind::InvalidAlgorithm => "signed with an algorithm this key does not verify".into(),
        _ => error.to_string(),
    }
}

/// What a verified token allows: which topics, until when. The default allows everything,
/// forever (subscribing is open).
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// Allowed topics; `None` means all.
    topics: Option<Vec<Topic>>,
    /// When the token stops being accepted (`exp` plus the leeway).
    expires_at: Option<SystemTime>,
    /// The token's `sub`, for logs.
    subject: Option<String>,
}

impl Grant {
    /// Checks `request` against the allowed topics: a topic outside them is refused; an empty
    /// topic list ("all") is narrowed to the allowed ones. Resume positions must be of allowed
    /// topics too. Unknown topic names are left for the request's own validation to report.
    pub fn authorize(&self, request: &mut SubscribeRequest) -> Result<(), AuthError> {
        let Some(allowed) = &self.topics else {
            return Ok(());
        };
        if allowed.is_empty() {
            return Err(AuthError::NoTopicAllowed);
        }
        if request.topics.is_empty() {
            request.topics = allowed.iter().map(|t| t.name().to_owned()).collect();
        }
        let named = request
            .topics
            .iter()
            .chain(request.resume_from.iter().map(|p| &p.topic));
        for name in named {
            if let Ok(topic) = name.parse::<Topic>()
                && !allowed.contains(&topic)
            {
                return Err(AuthError::TopicNotAllowed {
                    topic: name.clone(),
                    allowed: allowed
                        .iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    /// Whether a subscription to `topics` (empty: all) stays within this grant.
    fn covers(&self, topics: &[String]) -> Result<(), AuthError> {
        if topics.is_empty() && self.topics.is_some() {
            return Err(AuthError::TopicNotAllowed {
                topic: "(every topic)".into(),
                allowed: self
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.authorize(&mut SubscribeRequest {
            topics: topics.to_vec(),
            ..Default::default()
        })
    }

    /// When the subscription must end, as a tokio instant; `None`: never.
    pub fn deadline(&self) -> Option<Instant> {
        let left = self
            .expires_at?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Some(Instant::now() + left)
    }

    /// The token's subject, if it named one.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
}

/// Ends a gRPC response stream with UNAUTHENTICATED when `grant` expires.
pub fn until_expiry<S, T>(
    stream: S,
    grant: &Grant,
    metrics: Metrics,
    endpoint: &'static str,
) -> impl Stream<Item = Result<T, Status>> + Send + 'static
where
    S: Stream<Item = Result<T, Status>> + Send + 'static,
    T: Send + 'static,
{
    let Some(deadline) = grant.deadline() else {
        return futures::future::Either::Left(stream);
    };
    let state = (
        Box::pin(stream),
        Box::pin(tokio::time::sleep_until(deadline)),
        Some(metrics),
    );
    let stream = futures::stream::unfold(state, move |(mut stream, mut expiry, metrics)| {
        async move {
            // `None` once the expiry has been told: the stream ends.
            let metrics = metrics?;
            tokio::select! {
                biased;
                () = expiry.as_mut() => {
                    metrics.refuse(endpoint, AuthError::Expired.reason());
                    Some((Err(AuthError::Expired.into()), (stream, expiry, None)))
                }
                item = stream.next() => Some((item?, (stream, expiry, Some(metrics)))),
            }
        }
    });
    futures::future::Either::Right(stream)
}

/// A WebSocket frame that carries (or renews) the socket's token instead of a subscription.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizationFrame {
    authorization: String,
}

/// One WebSocket's authorization: the token in force and the topics of the subscription it
/// last allowed.
#[derive(Debug)]
pub struct SocketAuth {
    auth: Arc<SubscriberAuth>,
    grant: Option<Grant>,
    subscribed_topics: Option<Vec<String>>,
}

impl SocketAuth {
    /// A socket on a gateway where subscribing is open.
    pub fn open() -> Self {
        Self {
            auth: Arc::default(),
            grant: None,
            subscribed_topics: None,
        }
    }

    /// At the upgrade: refuses a token in the URL, and checks a token offered as a subprotocol.
    pub fn at_upgrade(
        auth: Arc<SubscriberAuth>,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Self, AuthError> {
        if token_in_url(uri) {
            return Err(AuthError::TokenInUrl);
        }
        let grant = match protocol_token(headers) {
            Some(token) if !auth.is_open() => Some(auth.verify(token)?),
            _ => None,
        };
        Ok(Self {
            auth,
            grant,
            subscribed_topics: None,
        })
    }

    /// If `text` is an authorization frame, takes its token (renewing the one in force) and says
    /// whether it was accepted; `None` if the frame is something else. A renewed token must
    /// allow the subscription in force.
    pub fn authorization_frame(&mut self, text: &str) -> Option<Result<(), AuthError>> {
        let frame: AuthorizationFrame = serde_json::from_str(text).ok()?;
        if self.auth.is_open() {
            return Some(Ok(()));
        }
        let token = bearer_token(&frame.authorization).unwrap_or(frame.authorization.trim());
        Some(self.auth.verify(token).and_then(|grant| {
            if let Some(topics) = &self.subscribed_topics {
                grant.covers(topics)?;
            }
            self.grant = Some(grant);
            Ok(())
        }))
    }

    /// Checks, and narrows, a subscription request against the token in force.
    pub fn authorize(&self, request: &mut SubscribeRequest) -> Result<(), AuthError> {
        if self.auth.is_open() {
            return Ok(());
        }
        let grant = self
            .grant
            .as_ref()
            .ok_or(AuthError::MissingToken(WEBSOCKET_HINT))?;
        if grant.deadline().is_some_and(|at| at <= Instant::now()) {
            return Err(AuthError::Expired);
        }
        grant.authorize(request)
    }

    /// Records the topics of the subscription now in force (after [`Self::authorize`] allowed it).
    pub fn subscribed(&mut self, request: &SubscribeRequest) {
        self.subscribed_topics = Some(request.topics.clone());
    }

    /// Whether a subscription has been allowed on this socket yet.
    pub fn has_subscribed(&self) -> bool {
        self.subscribed_topics.is_some()
    }

    /// When the token in force expires; `None`: no token, or open.
    pub fn deadline(&self) -> Option<Instant> {
        self.grant.as_ref().and_then(Grant::deadline)
    }

    /// The subject of the token in force, for logs.
    pub fn subject(&self) -> Option<&str> {
        self.grant.as_ref().and_then(Grant::subject)
    }
}

/// Whether the URL carries a token (`?token=`, `?access_token=`, `?authorization=`).
fn token_in_url(uri: &Uri) -> bool {
    uri.query().is_some_and(|query| {
        query.split('&').any(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            ["token", "access_token", "authorization"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
        })
    })
}

/// The token of a `streamweaver.v1.bearer.<jwt>` subprotocol offer, if any.
fn protocol_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|protocol| protocol.trim().strip_prefix(BEARER_PROTOCOL_PREFIX))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use streamweaver_proto::v1::Position;

    use super::*;

    const SECRET: &str = "unit-test-secret";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    }

    fn token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()).expect("key"),
        )
        .expect("encodes")
    }

    fn auth() -> SubscriberAuth {
        SubscriberAuth::new(Some(SECRET), None, Duration::ZERO).expect("valid")
    }

    #[test]
    fn secrets_match_exactly() {
        let secret = Secret::new("s3cret");
        assert!(secret.matches(b"s3cret"));
        assert!(!secret.matches(b"s3cre"));
        assert!(!secret.matches(b"s3cret!"));
        assert!(!secret.matches(b""));
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }

    #[test]
    fn publish_needs_the_bearer_secret() {
        let auth = PublishAuth::new("s3cret", false, Metrics::default());
        let with = |value: &str| {
            let mut metadata = MetadataMap::new();
            metadata.insert("authorization", value.parse().expect("ascii"));
            metadata
        };
        assert_eq!(auth.check(&with("Bearer s3cret"), None), Ok(()));
        assert_eq!(auth.check(&with("bearer s3cret"), None), Ok(()));
        assert!(auth.check(&with("Bearer s3cre"), None).is_err());
        assert!(auth.check(&with("s3cret"), None).is_err());
        assert!(auth.check(&MetadataMap::new(), None).is_err());
        let mtls = PublishAuth::new("s3cret", true, Metrics::default());
        assert_eq!(
            mtls.check(&with("Bearer s3cret"), None),
            Err(AuthError::ClientCertificateRequired)
        );
    }

    #[test]
    fn tokens_carry_expiry_and_topics() {
        let auth = auth();
        let grant = auth
            .verify(&token(
                json!({"exp": now() + 60, "topics": ["stock_trades"], "sub": "ana"}),
            ))
            .expect("valid");
        assert_eq!(grant.subject(), Some("ana"));
        assert!(grant.deadline().expect("expires") > Instant::now());
        assert_eq!(
            auth.verify(&token(json!({"exp": now() - 5})))
                .expect_err("expired"),
            AuthError::Expired
        );
        let missing_exp = auth
            .verify(&token(json!({"sub": "ana"})))
            .expect_err("no exp");
        assert!(missing_exp.to_string().contains("\"exp\""), "{missing_exp}");
        let forged = jsonwebtoken::encode(
            &Header::default(),
            &json!({"exp": now() + 60}),
            &EncodingKey::from_secret(b"another secret").expect("key"),
        )
        .expect("encodes");
        assert_eq!(
            auth.verify(&forged).expect_err("forged"),
            AuthError::InvalidToken("bad signature".into())
        );
        assert!(matches!(
            auth.verify("not a token"),
            Err(AuthError::InvalidToken(_))
        ));
    }

    #[test]
    fn topics_outside_the_claim_are_refused_and_all_is_narrowed() {
        let grant = auth()
            .verify(&token(
                json!({"exp": now() + 60, "topics": ["stock_trades", "server_logs", "future_topic"]}),
            ))
            .expect("valid");
        let mut all = SubscribeRequest::default();
        grant.authorize(&mut all).expect("narrowed");
        assert_eq!(all.topics, ["stock_trades", "server_logs"]);

        let mut social = SubscribeRequest {
            topics: vec!["social_feed".into()],
            ..Default::default()
        };
        let refused = grant.authorize(&mut social).expect_err("not allowed");
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(refused.to_string().contains("\"social_feed\""), "{refused}");

        let mut resume_elsewhere = SubscribeRequest {
            topics: vec!["stock_trades".into()],
            resume_from: vec![Position {
                topic: "social_feed".into(),
                partition: 0,
                offset: 3,
            }],
            ..Default::default()
        };
        assert!(grant.authorize(&mut resume_elsewhere).is_err());

        let unrestricted = auth()
            .verify(&token(json!({"exp": now() + 60})))
            .expect("valid");
        let mut any = SubscribeRequest::default();
        unrestricted.authorize(&mut any).expect("all topics");
        assert!(any.topics.is_empty());
    }

    #[test]
    fn websocket_tokens_come_from_the_subprotocol_or_a_frame_never_the_url() {
        let auth = Arc::new(auth());
        let uri = |text: &str| text.parse::<Uri>().expect("uri");
        assert_eq!(
            SocketAuth::at_upgrade(auth.clone(), &uri("/ws?token=abc"), &HeaderMap::new())
                .expect_err("url token"),
            AuthError::TokenInUrl
        );

        let jwt = token(json!({"exp": now() + 60, "topics": ["server_logs"]}));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            format!("streamweaver.v1.batch, {BEARER_PROTOCOL_PREFIX}{jwt}")
                .parse()
                .expect("header"),
        );
        let socket = SocketAuth::at_upgrade(auth.clone(), &uri("/ws"), &headers).expect("ok");
        assert!(socket.deadline().is_some());
        socket
            .authorize(&mut SubscribeRequest::default())
            .expect("narrowed to server_logs");

        let mut socket =
            SocketAuth::at_upgrade(auth.clone(), &uri("/ws"), &HeaderMap::new()).expect("ok");
        let refused = socket
            .authorize(&mut SubscribeRequest::default())
            .expect_err("no token yet");
        assert!(refused.to_string().contains("authorization"), "{refused}");
        assert!(socket.authorization_frame(r#"{"topics":[]}"#).is_none());
        let frame = json!({ "authorization": format!("Bearer {jwt}") }).to_string();
        assert_eq!(socket.authorization_frame(&frame), Some(Ok(())));
        let mut request = SubscribeRequest::default();
        socket.authorize(&mut request).expect("allowed");
        socket.subscribed(&request);

        // A renewal must allow the subscription in force.
        let stocks_only = token(json!({"exp": now() + 60, "topics": ["stock_trades"]}));
        let renewal = json!({ "authorization": format!("Bearer {stocks_only}") }).to_string();
        assert!(matches!(
            socket.authorization_frame(&renewal),
            Some(Err(AuthError::TopicNotAllowed { .. }))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn streams_end_with_unauthenticated_when_the_token_expires() {
        let grant = Grant {
            expires_at: Some(SystemTime::now() + Duration::from_secs(30)),
            ..Default::default()
        };
        let endless = futures::stream::repeat_with(|| Ok::<_, Status>(1)).then(|item| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            item
        });
        let items: Vec<_> = until_expiry(endless, &grant, Metrics::default(), "grpc")
            .collect()
            .await;
        let (last, delivered) = items.split_last().expect("items");
        assert!((28..=30).contains(&delivered.len()), "{}", delivered.len());
        assert!(delivered.iter().all(Result::is_ok));
        assert_eq!(
            last.as_ref().expect_err("expired").code(),
            Code::Unauthenticated
        );
    }
}
