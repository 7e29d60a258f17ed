//! The gateway's one port: native gRPC, grpc-web, `/ws`, `/sse`, `/metrics`, `/healthz`,
//! `grpc.health.v1` and server reflection (v1 and v1alpha, for grpcurl 1.8).

use std::{sync::Arc, time::Duration};

use axum::{Router, http::HeaderValue, routing::get, serve::ListenerExt};
use streamweaver_common::metrics::{SharedRegistry, metrics_handler};
use streamweaver_proto::v1::ingest_service_server::IngestServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    config::GatewayArgs,
    hub::{Hub, HubSettings, Limits, PolicyDefaults},
    ingest::{Ingest, RequireBearer},
    metrics::Metrics,
    replay::Replayer,
    sse,
    subscribe::{StreamServiceRoute, Subscriptions},
    websocket::{self, WebSocketState},
};

/// How long shutdown waits for connections to finish before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A flag's value is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
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
        limits: Limits {
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
    let registry = SharedRegistry::default();
    let metrics = Metrics::register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    let replayer = Replayer::new(args.replay_settings())
        .map_err(|error| GatewayError::Config(format!("replay from Kafka: {error}")))?;
    replayer
        .metrics()
        .register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    let hub = Hub::new(hub_settings(&args), replayer, metrics.clone());
    let hub_task = tokio::spawn(hub.clone().run(shutdown.clone()));

    let subscribe_auth = args
        .subscribe_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(|token| RequireBearer::new(token, metrics.clone(), "grpc"));
    let subscriptions = Arc::new(Subscriptions::new(
        hub.clone(),
        metrics.clone(),
        subscribe_auth,
        args.max_subscribers,
    ));
    let ingest = Ingest::new(
        hub.clone(),
        metrics.clone(),
        args.ingest_idle_timeout,
        shutdown.clone(),
    );
    let publish_auth = RequireBearer::new(&args.publish_token, metrics.clone(), "ingest");

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
        subscribe_token: args
            .subscribe_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(Arc::from),
        allowed_origins: if args.allowed_origins.iter().any(|o| o == "*") {
            Arc::from([])
        } else {
            args.allowed_origins.clone().into()
        },
        ping_interval: args.ws_ping_interval,
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
        .merge(http)
        .layer(cors(&args.allowed_origins)?);

    tracing::info!(address = %listener.local_addr()?, "gateway listening");
    let drain = shutdown.clone();
    // Small frames go out at once: without TCP_NODELAY, Nagle's algorithm and delayed ACKs hold
    // a lone event back by up to 40 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        drain.cancelled().await;
        health.set_not_serving::<StreamServiceRoute>().await;
    });
    let server = tokio::spawn(server.into_future());
    shutdown.cancelled().await;
    match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
        Ok(Ok(result)) => result?,
        Ok(Err(join_error)) => tracing::error!(%join_error, "server task failed"),
        Err(_) => tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; stopping anyway"),
    }
    if let Err(join_error) = hub_task.await {
        tracing::error!(%join_error, "hub task failed");
    }
    tracing::info!("gateway stopped");
    Ok(())
}
