//! What the consumer counts, served on `--metrics-listen`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

/// Labels of a per-topic counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// The Kafka topic.
    pub topic: String,
}

/// Labels of the dead-letter counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    /// The topic the bad record came from.
    pub topic: String,
    /// Why it was refused (a fixed set of values, see `DecodeError::reason`).
    pub reason: String,
}

/// The consumer's counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Records read from Kafka.
    pub consumed: Family<TopicLabels, Counter>,
    /// Events the gateway acknowledged.
    pub acknowledged: Counter,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: Family<DeadLetterLabels, Counter>,
    /// Publish calls that failed (gateway away, refused, or cut off).
    pub publish_failures: Counter,
    /// Times the consumer went back to its last acknowledged offsets.
    pub rewinds: Counter,
}

impl Metrics {
    /// New counters, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "consumer_records_consumed",
            "Records read from Kafka",
            metrics.consumed.clone(),
        );
        registry.register(
            "consumer_events_acknowledged",
            "Events the gateway acknowledged",
            metrics.acknowledged.clone(),
        );
        registry.register(
            "consumer_dead_letters",
            "Records sent to the dead-letter topic",
            metrics.dead_lettered.clone(),
        );
        registry.register(
            "consumer_publish_failures",
            "Publish calls to the gateway that failed",
            metrics.publish_failures.clone(),
        );
        registry.register(
            "consumer_rewinds",
            "Times the consumer went back to its last acknowledged offsets",
            metrics.rewinds.clone(),
        );
        metrics
    }
}
