//! What reading Kafka back costs, served at `/metrics` as `gateway_replay_*`.

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};

/// The replay component's counters; clones share the same values.
#[derive(Debug, Clone, Default)]
pub struct ReplayMetrics {
    /// Reads from Kafka (one per chunk fetched, not per subscriber served).
    pub reads: Counter,
    /// Events decoded from what was read.
    pub events: Counter,
    /// Bytes of record values and keys read.
    pub bytes: Counter,
    /// Reads waiting now for one of the `--replay-max-concurrent` slots.
    pub waiting: Gauge,
    /// Reads that had to wait for a slot.
    pub waited: Counter,
    /// Chunks served without a read of their own: from the cache, or by joining the same read
    /// in flight.
    pub cache_hits: Counter,
    /// Records read back that are not valid events (dead letters): skipped, not missed.
    pub skipped: Counter,
    /// Reads and queries that failed (Kafka unreachable, timed out).
    pub errors: Counter,
}

impl ReplayMetrics {
    /// Registers these counters in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "gateway_replay_reads",
            "Reads from Kafka for replays (one per chunk fetched)",
            self.reads.clone(),
        );
        registry.register(
            "gateway_replay_events",
            "Events read back from Kafka",
            self.events.clone(),
        );
        registry.register(
            "gateway_replay_bytes",
            "Bytes of records read back from Kafka",
            self.bytes.clone(),
        );
        registry.register(
            "gateway_replay_reads_waiting",
            "Reads from Kafka waiting now for a free slot",
            self.waiting.clone(),
        );
        registry.register(
            "gateway_replay_reads_waited",
            "Reads from Kafka that had to wait for a free slot",
            self.waited.clone(),
        );
        registry.register(
            "gateway_replay_cache_hits",
            "Replay chunks served from the cache or a read already in flight",
            self.cache_hits.clone(),
        );
        registry.register(
            "gateway_replay_records_skipped",
            "Records read back that are not valid events (dead letters)",
            self.skipped.clone(),
        );
        registry.register(
            "gateway_replay_errors",
            "Replay reads and Kafka queries that failed",
            self.errors.clone(),
        );
    }
}
