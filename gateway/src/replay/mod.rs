//! Reading Kafka itself: what a resuming subscriber missed when the gateway's memory no longer
//! holds it (or the gateway has only just started), the offsets a start time or "earliest" points
//! at, and whether an offset that went backwards is a duplicate or a partition that started again.
//!
//! The gateway's ingest path stays the stream-consumer's `Publish` call; this component only reads,
//! with no consumer group (assign + seek per partition), so it never disturbs anyone's commits.
//!
//! CONTRACT (landed as a skeleton so the hub and the replay can be built side by side): the
//! signatures below are what the hub calls. The bodies are filled in by the replay work.

use std::{sync::Arc, time::SystemTime};

use futures::stream::BoxStream;
use streamweaver_proto::topics::Topic;

use crate::event::SharedEvent;

/// Why Kafka could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplayError {
    /// Kafka could not be reached or did not answer in time; the caller may retry.
    #[error("Kafka is unavailable: {0}")]
    Unavailable(String),
    /// The topic or partition does not exist (now).
    #[error("{topic} has no partition {partition}")]
    UnknownPartition {
        /// The topic asked for.
        topic: Topic,
        /// The partition asked for.
        partition: i32,
    },
}

/// A partition's bounds in Kafka: offsets `low..high` are held (`high` is the next offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// The first offset Kafka still holds.
    pub low: i64,
    /// The offset the next record will get (one past the last).
    pub high: i64,
}

/// One step of a read.
#[derive(Debug, Clone)]
pub enum ReplayChunk {
    /// Events in offset order (records that are not valid events are left out).
    Events(Arc<[SharedEvent]>),
    /// Offsets `first..=last` that Kafka no longer holds (retention, compaction, deleted records).
    Missing {
        /// First offset missing.
        first: i64,
        /// Last offset missing.
        last: i64,
    },
    /// The partition's offsets started again (its topic was recreated) or it is gone: what was
    /// asked for means nothing now. Nothing follows.
    Reset {
        /// Kafka's bounds of the partition now, when it still exists.
        now: Option<Watermarks>,
    },
}

/// What Kafka says of an event the hub holds, when a later `Publish` went back in offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Kafka holds this very event at its offset: what went backwards are duplicates.
    Same,
    /// Kafka holds something else at that offset, or its log ends before it: the partition's
    /// offsets started again.
    StartedAgain,
}

/// Settings of the replay component.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// `fetch.wait.max.ms` of the readers: low, since tansu answers only when it runs out.
    pub fetch_wait_max_ms: u32,
    /// Most reads from Kafka at once.
    pub max_concurrent_reads: usize,
    /// Largest value decoded (as the consumer's `--max-value-bytes`).
    pub max_value_bytes: usize,
    /// Bytes of decoded chunks kept for subscribers resuming from the same place.
    pub cache_bytes: usize,
}

/// The replay component: cheap to clone, shared by the hub and every subscription.
#[derive(Clone)]
pub struct Replayer {
    _settings: Arc<ReplaySettings>,
}

impl Replayer {
    /// A replayer reading the Kafka of `settings`; connects lazily.
    pub fn new(settings: ReplaySettings) -> Result<Self, ReplayError> {
        Ok(Self {
            _settings: Arc::new(settings),
        })
    }

    /// The partitions `topic` has now.
    pub async fn partitions(&self, _topic: Topic) -> Result<Vec<i32>, ReplayError> {
        Err(ReplayError::Unavailable("not implemented yet".into()))
    }

    /// Kafka's bounds of one partition.
    pub async fn watermarks(
        &self,
        _topic: Topic,
        _partition: i32,
    ) -> Result<Watermarks, ReplayError> {
        Err(ReplayError::Unavailable("not implemented yet".into()))
    }

    /// Per partition of `topic`, the first offset whose record timestamp is at or after `time`
    /// (Kafka's offsets-for-times), or the partition's high watermark when there is none.
    pub async fn offsets_for_time(
        &self,
        _topic: Topic,
        _time: SystemTime,
    ) -> Result<Vec<(i32, i64)>, ReplayError> {
        Err(ReplayError::Unavailable("not implemented yet".into()))
    }

    /// Offsets `from..until` of one partition, decoded, in order, pulled at the caller's pace (a
    /// caller that stops pulling holds a bounded amount of memory), shared with concurrent readers
    /// of the same offsets. Ends after the last chunk, after a `Reset`, or with an error.
    pub fn read(
        &self,
        _topic: Topic,
        _partition: i32,
        _from: i64,
        _until: i64,
    ) -> BoxStream<'static, Result<ReplayChunk, ReplayError>> {
        Box::pin(futures::stream::once(async {
            Err(ReplayError::Unavailable("not implemented yet".into()))
        }))
    }

    /// Whether Kafka holds `event` itself at its offset.
    pub async fn verify(&self, _event: &SharedEvent) -> Result<Verdict, ReplayError> {
        Err(ReplayError::Unavailable("not implemented yet".into()))
    }
}
