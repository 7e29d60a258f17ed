//! What the gateway counts, served at `/metrics`.

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// How a subscriber is connected.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Transport {
    /// Native gRPC over HTTP/2.
    Grpc,
    /// grpc-web (browsers), over HTTP/1.1 or HTTP/2.
    GrpcWeb,
    /// WebSocket at `/ws`, proto3 JSON or protobuf.
    Websocket,
    /// Server-Sent Events at `/sse`.
    Sse,
}

/// Labels of per-transport metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    /// The transport.
    pub transport: Transport,
}

/// Labels of per-topic metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// The Kafka topic.
    pub topic: String,
}

/// Labels of refused input.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// Where it came in: `ingest`, `grpc`, `grpc-web`, `websocket` or `sse`.
    pub endpoint: &'static str,
    /// Why it was refused (a fixed set of short reasons).
    pub reason: &'static str,
}

/// The gateway's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Events taken in and fanned out.
    pub ingested: Family<TopicLabels, Counter>,
    /// Events dropped because their position had been seen already.
    pub duplicates: Counter,
    /// Requests, frames or events refused as bad input.
    pub refused: Family<RefusedLabels, Counter>,
    /// Subscribers connected now.
    pub subscribers: Family<TransportLabels, Gauge>,
    /// Events sent to subscribers.
    pub delivered: Family<TransportLabels, Counter>,
    /// Gap notices sent.
    pub gaps: Family<TransportLabels, Counter>,
    /// Events subscribers missed, as told in gap notices.
    pub missed: Family<TransportLabels, Counter>,
    /// Seconds from the producer's timestamp to the gateway taking the event in.
    pub ingest_lag: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            ingested: Family::default(),
            duplicates: Counter::default(),
            refused: Family::default(),
            subscribers: Family::default(),
            delivered: Family::default(),
            gaps: Family::default(),
            missed: Family::default(),
            ingest_lag: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        }
    }
}

impl Metrics {
    /// New metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "gateway_events_ingested",
            "Events taken in and fanned out",
            m.ingested.clone(),
        );
        registry.register(
            "gateway_events_duplicate",
            "Events dropped as already seen",
            m.duplicates.clone(),
        );
        registry.register(
            "gateway_refused",
            "Requests, frames or events refused as bad input",
            m.refused.clone(),
        );
        registry.register(
            "gateway_subscribers",
            "Subscribers connected now",
            m.subscribers.clone(),
        );
        registry.register(
            "gateway_events_delivered",
            "Events sent to subscribers",
            m.delivered.clone(),
        );
        registry.register(
            "gateway_gap_notices",
            "Gap notices sent to subscribers",
            m.gaps.clone(),
        );
        registry.register(
            "gateway_events_missed",
            "Events subscribers missed, as told in gap notices",
            m.missed.clone(),
        );
        registry.register(
            "gateway_ingest_lag_seconds",
            "Time from the producer's timestamp to the gateway taking the event in",
            m.ingest_lag.clone(),
        );
        m
    }

    /// Counts one piece of refused input.
    pub fn refuse(&self, endpoint: &'static str, reason: &'static str) {
        self.refused
            .get_or_create(&RefusedLabels { endpoint, reason })
            .inc();
    }
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.name(), encoder)
    }
}

impl Transport {
    /// The name used in logs and in [`RefusedLabels::endpoint`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::Websocket => "websocket",
            Self::Sse => "sse",
        }
    }
}
