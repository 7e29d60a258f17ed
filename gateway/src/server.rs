//! The gateway's one port: native gRPC, grpc-web, `/ws`, `/sse`, `/metrics`, `/healthz`,
//! `grpc.health.v1` and server reflection (v1 and v1alpha, for grpcurl 1.8).

use std::{sync::Arc, time::Duration};

use axum::{Router, http::HeaderValue, routing::get};
use streamweaver_common::metrics::{SharedRegistry, metrics_handler};
use streamweaver_proto::v1::ingest_service_server::IngestServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    admission::{Admission, Limits},
    auth::{AuthConfigError, PublishAuth, SubscriberAuth},
    config::GatewayArgs,
    hub::{self, Hub, HubSettings, PolicyDefaults},
    ingest::Ingest,
    metrics::Metrics,
    replay::Replayer,
    serve::{self, ServeOptions},
    sse,
    subscribe::{self, StreamServiceRoute, Subscriptions},
    tls::{self, TlsError, TlsFiles},
    websocket::{self, WebSocketState},
};

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A flag's value is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The subscriber-token settings are unusable.
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    /// The reflection service could not be built from the descriptors.
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Headers a grpc-web or Connect client sends that a browser must be allowed to send.
const ALLOWED_HEADERS: &[&str] = &[
    "content-type",
    "authorization",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "connect-protocol-version",
    "connect-timeout-ms",
    "last-event-id",
];
/// Trailers-as-headers the browser must be allowed to read, or errors show as "missing trailer".
const EXPOSED_HEADERS: &[&str] = &["grpc-status", "grpc-message", "grpc-status-details-bin"];

fn cors(allowed_origins: &[String]) -> Result<CorsLayer, GatewayError> {
    let origins = if allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = allowed_origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin).map_err(|_| {
                    GatewayError::Config(format!("--allowed-origins: bad origin {origin:?}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    let names = |names: &[&'static str]| -> Vec<http::HeaderName> {
        names
            .iter()
            .map(|n| http::HeaderName::from_static(n))
            .collect()
    };
    Ok(CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([http::Method::GET, http::Method::POST, http::Method::OPTIONS])
        .allow_headers(names(ALLOWED_HEADERS))
        .expose_headers(names(EXPOSED_HEADERS))
        .max_age(Duration::from_secs(86_400)))
}

/// The hub's settings from the gateway's flags.
fn hub_settings(args: &GatewayArgs) -> HubSettings {
    HubSettings {
        limits: hub::Limits {
            events: args.subscriber_buffer as usize,
            bytes: usize::try_from(args.subscriber_buffer_bytes).unwrap_or(usize::MAX),
        },
        policy: PolicyDefaults {
            kind: args.slow_client_policy,
            sample_interval: args.sample_interval,
        },
        history: args.history,
        history_max_age: args.history_max_age,
        heartbeat: args.heartbeat,
        offset_check_timeout: args.offset_check_timeout,
        replay_retry_for: args.replay_retry_for,
    }
}

/// Serves the gateway on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    args: GatewayArgs,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    if args.publish_token.is_empty() {
        return Err(GatewayError::Config(
            "--publish-token must not be empty".into(),
        ));
    }
    let access = &args.access;
    let subscriber_auth = Arc::new(SubscriberAuth::new(
        access.subscribe_jwt_secret.as_deref(),
        access.subscribe_jwt_public_key.as_deref(),
        access.subscribe_jwt_leeway,
    )?);
    let tls = match (&args.connections.tls_cert, &args.connections.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(&TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: access.publish_client_ca.clone(),
        })?),
        _ => None,
    };
    let registry = SharedRegistry::default();
    let metrics = Metrics::register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    let replayer = Replayer::new(args.replay_settings())
        .map_err(|error| GatewayError::Config(format!("replay from Kafka: {error}")))?;
    replayer
        .metrics()
        .register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    let hub = Hub::new(hub_settings(&args), replayer, metrics.clone());
    let hub_task = tokio::spawn(hub.clone().run(shutdown.clone()));

    let admission = Admission::new(
        Limits {
            total: args.connections.max_connections as usize,
            per_address: args.connections.max_connections_per_ip as usize,
        },
        &mut registry.lock().unwrap_or_else(|e| e.into_inner()),
    );
    let subscriber_auth_is_open = subscriber_auth.is_open();
    let subscriptions = Arc::new(Subscriptions::new(
        hub.clone(),
        metrics.clone(),
        subscriber_auth.clone(),
        args.max_subscribers,
    ));
    let ingest = Ingest::new(
        hub.clone(),
        metrics.clone(),
        args.ingest_idle_timeout,
        shutdown.clone(),
    );
    let publish_auth = PublishAuth::new(
        &args.publish_token,
        access.publish_client_ca.is_some(),
        metrics.clone(),
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<StreamServiceRoute>().await;
    health.set_serving::<IngestServiceServer<Ingest>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(streamweaver_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };

    let grpc = Routes::new(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(StreamServiceRoute::new(subscriptions.clone()))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            IngestServiceServer::new(ingest).max_decoding_message_size(args.max_message_bytes),
            publish_auth,
        ))
        .prepare()
        .into_axum_router();

    let ws_state = WebSocketState {
        hub,
        metrics: metrics.clone(),
        subscriptions,
        auth: subscriber_auth,
        subscribe_timeout: args.connections.ws_subscribe_timeout,
        allowed_origins: if args.allowed_origins.iter().any(|o| o == "*") {
            Arc::from([])
        } else {
            args.allowed_origins.clone().into()
        },
        ping_interval: args.ws_ping_interval,
        batch_linger: args.ws_batch_linger,
        shutdown: shutdown.clone(),
    };
    let http = Router::new()
        .route("/ws", get(websocket::upgrade))
        .route("/sse", get(sse::handler))
        .with_state(ws_state)
        .route("/metrics", get(metrics_handler).with_state(registry))
        .route("/healthz", get(|| async { "ok\n" }));

    // grpc-web only in front of the gRPC routes: tonic-web answers other HTTP/1.1 requests with
    // 400, which would break /ws, /metrics and /healthz.
    let app = grpc
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(tower::util::MapRequestLayer::new(
            subscribe::mark_grpc_web::<axum::body::Body>,
        ))
        .merge(http)
        .layer(cors(&args.allowed_origins)?);

    tracing::info!(
        address = %listener.local_addr()?,
        tls = tls.is_some(),
        publish_mtls = access.publish_client_ca.is_some(),
        subscriber_tokens = !subscriber_auth_is_open,
        "gateway listening"
    );
    let drain = shutdown.clone();
    tokio::spawn(async move {
        drain.cancelled().await;
        health.set_not_serving::<StreamServiceRoute>().await;
    });
    let options = ServeOptions {
        header_read_timeout: args.connections.header_read_timeout,
        http2_keepalive_interval: args.connections.http2_keepalive_interval,
        http2_keepalive_timeout: args.connections.http2_keepalive_timeout,
        http2_max_concurrent_streams: args.connections.http2_max_concurrent_streams,
        drain_timeout: args.connections.drain_timeout,
    };
    serve::serve(listener, app, admission, tls, options, metrics, shutdown).await;
    if let Err(join_error) = hub_task.await {
        tracing::error!(%join_error, "hub task failed");
    }
    tracing::info!("gateway stopped");
    Ok(())
}
