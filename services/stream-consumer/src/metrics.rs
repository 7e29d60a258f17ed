//! What the consumer counts, served on `--metrics-listen`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
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
    /// Records delivered to the dead-letter topic.
    pub dead_lettered: Family<DeadLetterLabels, Counter>,
    /// Dead letters handed to the producer and not delivered yet.
    pub dead_letters_pending: Gauge,
    /// Dead letters the dead-letter topic did not take (the record is read again).
    pub dead_letters_failed: Family<TopicLabels, Counter>,
    /// Answers that acknowledged less of a partition than was sent (the partition is rewound).
    pub short_acknowledgements: Family<TopicLabels, Counter>,
    /// Partitions this consumer owns in its group.
    pub partitions_owned: Gauge,
    /// Publish calls that failed (gateway away, refused, or cut off).
    pub publish_failures: Counter,
    /// Times the consumer went back to its last acknowledged offsets.
    pub rewinds: Counter,
    /// Partitions found read past their log end (topic recreated), sent back to their start.
    pub log_restarts: Family<TopicLabels, Counter>,
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
            "Records delivered to the dead-letter topic",
            metrics.dead_lettered.clone(),
        );
        registry.register(
            "consumer_dead_letters_pending",
            "Dead letters handed to the producer and not delivered yet",
            metrics.dead_letters_pending.clone(),
        );
        registry.register(
            "consumer_dead_letters_failed",
            "Dead letters the dead-letter topic did not take; the record is read again",
            metrics.dead_letters_failed.clone(),
        );
        registry.register(
            "consumer_short_acknowledgements",
            "Publish answers that acknowledged less of a partition than was sent",
            metrics.short_acknowledgements.clone(),
        );
        registry.register(
            "consumer_partitions_owned",
            "Partitions this consumer owns in its group",
            metrics.partitions_owned.clone(),
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
        registry.register(
            "consumer_log_restarts",
            "Partitions found read past their log end (their topic was recreated), read again from their start",
            metrics.log_restarts.clone(),
        );
        metrics
    }
}
