//! What the gateway counts, served at `/metrics`.

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::{expr::ExprMetrics, hub::PolicyKind};

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
    pub topic: &'static str,
}

/// Labels of refused input.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// Where it came in: `ingest`, `grpc`, `grpc-web`, `websocket` or `sse`.
    pub endpoint: &'static str,
    /// Why it was refused (a fixed set of short reasons).
    pub reason: &'static str,
}

/// Labels of what a slow-client policy did.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyActionLabels {
    /// The policy.
    pub policy: PolicyKind,
    /// `gap` (skipped ahead), `disconnect` or `conflate` (a newer event superseded one).
    pub action: &'static str,
}

/// Labels of per-policy metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// The policy.
    pub policy: PolicyKind,
}

/// Labels of offset checks against Kafka.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OffsetCheckLabels {
    /// `backward` (an offset at or below the highest seen) or `jump` (far ahead of it).
    pub check: &'static str,
    /// `duplicate`, `started_again`, `within_log`, `beyond_log_end` or `unavailable`.
    pub result: &'static str,
}

/// Labels of backfill metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `memory` or `kafka`.
    pub source: &'static str,
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
    /// What slow-client policies did.
    pub slow_client_actions: Family<PolicyActionLabels, Counter>,
    /// Events dropped from queues by skipping ahead.
    pub skipped: Family<PolicyLabels, Counter>,
    /// Events superseded in queues by a newer one of the same key.
    pub conflated: Family<PolicyLabels, Counter>,
    /// Events queued for subscribers now.
    pub queued_events: Gauge,
    /// Bytes (encoded events) queued for subscribers now.
    pub queued_bytes: Gauge,
    /// Distinct filters now (subscribers with identical filters share one).
    pub filter_groups: Gauge,
    /// Events kept in memory for resumes, over every partition.
    pub history_events: Gauge,
    /// Offsets that went backwards or jumped, checked against Kafka.
    pub offset_checks: Family<OffsetCheckLabels, Counter>,
    /// Partitions whose offsets started again.
    pub partition_resets: Family<TopicLabels, Counter>,
    /// Events served to resuming subscribers, from memory or from Kafka.
    pub backfilled: Family<SourceLabels, Counter>,
    /// Subscriptions whose backfill is running now.
    pub backfills: Gauge,
    /// Backfills that gave up on Kafka: a stretch skipped with a gap notice, or the subscription ended.
    pub backfill_failures: Counter,
    /// What filter expressions cost and refused.
    pub expressions: ExprMetrics,
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
            slow_client_actions: Family::default(),
            skipped: Family::default(),
            conflated: Family::default(),
            queued_events: Gauge::default(),
            queued_bytes: Gauge::default(),
            filter_groups: Gauge::default(),
            history_events: Gauge::default(),
            offset_checks: Family::default(),
            partition_resets: Family::default(),
            backfilled: Family::default(),
            backfills: Gauge::default(),
            backfill_failures: Counter::default(),
            expressions: ExprMetrics::default(),
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
        registry.register(
            "gateway_slow_client_actions",
            "What slow-client policies did: gap (skipped ahead), disconnect, conflate",
            m.slow_client_actions.clone(),
        );
        registry.register(
            "gateway_events_skipped",
            "Events dropped from subscriber queues by skipping ahead",
            m.skipped.clone(),
        );
        registry.register(
            "gateway_events_conflated",
            "Events superseded in subscriber queues by a newer one of the same key",
            m.conflated.clone(),
        );
        registry.register(
            "gateway_queued_events",
            "Events queued for subscribers now",
            m.queued_events.clone(),
        );
        registry.register(
            "gateway_queued_bytes",
            "Bytes of encoded events queued for subscribers now",
            m.queued_bytes.clone(),
        );
        registry.register(
            "gateway_filter_groups",
            "Distinct subscription filters now",
            m.filter_groups.clone(),
        );
        registry.register(
            "gateway_history_events",
            "Events kept in memory for resumes",
            m.history_events.clone(),
        );
        registry.register(
            "gateway_offset_checks",
            "Offsets that went backwards or jumped far ahead, checked against Kafka",
            m.offset_checks.clone(),
        );
        registry.register(
            "gateway_partition_resets",
            "Partitions whose offsets started again",
            m.partition_resets.clone(),
        );
        registry.register(
            "gateway_backfilled_events",
            "Events served to resuming subscribers, from memory or from Kafka",
            m.backfilled.clone(),
        );
        registry.register(
            "gateway_backfills",
            "Subscriptions whose backfill is running now",
            m.backfills.clone(),
        );
        registry.register(
            "gateway_backfill_failures",
            "Backfills that gave up on Kafka: a stretch skipped with a gap notice, or the subscription ended",
            m.backfill_failures.clone(),
        );
        m.expressions.register(registry);
        m
    }

    /// Counts one piece of refused input.
    pub fn refuse(&self, endpoint: &'static str, reason: &'static str) {
        self.refused
            .get_or_create(&RefusedLabels { endpoint, reason })
            .inc();
    }

    /// Counts one offset check.
    pub fn offset_check(&self, check: &'static str, result: &'static str) {
        self.offset_checks
            .get_or_create(&OffsetCheckLabels { check, result })
            .inc();
    }

    /// Subscribers connected now, over every transport.
    pub fn connected(&self) -> usize {
        Transport::ALL
            .into_iter()
            .map(|transport| {
                self.subscribers
                    .get_or_create(&TransportLabels { transport })
                    .get()
            })
            .sum::<i64>()
            .max(0) as usize
    }
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.name(), encoder)
    }
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 4] = [Self::Grpc, Self::GrpcWeb, Self::Websocket, Self::Sse];

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
