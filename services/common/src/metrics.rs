//! Prometheus metrics: a registry per process and a small HTTP endpoint that serves it.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use prometheus_client::{encoding::text::encode, registry::Registry};
use tokio_util::sync::CancellationToken;

/// A registry shared between the code that registers metrics and the `/metrics` handler.
pub type SharedRegistry = Arc<Mutex<Registry>>;

/// The content type Prometheus expects for the text exposition format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders the registry in the OpenMetrics text format.
pub fn render(registry: &SharedRegistry) -> String {
    let mut body = String::new();
    let registry = registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(error) = encode(&mut body, &registry) {
        tracing::error!(%error, "cannot encode metrics");
    }
    body
}

/// An axum handler for `GET /metrics`.
pub async fn metrics_handler(State(registry): State<SharedRegistry>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&registry))
}

/// Serves `/metrics` and `/healthz` on `addr` until `shutdown` is cancelled.
///
/// The producers and the consumer use it; the gateway serves the same routes on its one port.
pub async fn serve(
    addr: SocketAddr,
    registry: SharedRegistry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the metrics endpoint to {addr}"))?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(registry);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("metrics endpoint failed")
}

/// Serves `/metrics` and `/healthz` on `addr`, when there is one, in a task of its own that
/// logs a failure rather than stopping the service it observes.
pub fn spawn_serve(
    addr: Option<SocketAddr>,
    registry: SharedRegistry,
    shutdown: CancellationToken,
) {
    let Some(addr) = addr else { return };
    tokio::spawn(async move {
        if let Err(error) = serve(addr, registry, shutdown).await {
            tracing::error!(error = format!("{error:#}"), "metrics endpoint stopped");
        }
    });
}
