//! Reading Kafka itself: what a resuming subscriber missed when the gateway's memory no longer
//! holds it (or the gateway has only just started), the offsets a start time or "earliest" points
//! at, and whether an offset that went backwards is a duplicate or a partition that started again.
//!
//! The gateway's ingest path stays the stream-consumer's `Publish` call; this component only
//! reads, assigning partitions itself and never committing, so it never disturbs anyone's
//! consumer group.
//!
//! A read goes a chunk at a time, pulled by its caller with one chunk fetched ahead, so a
//! subscriber that stops reading holds at most two chunks. Chunks are decoded once and shared:
//! a small cache (bounded in bytes) keeps recent ones by where they start, and subscribers that
//! ask for the same chunk while it is being read wait for that one read. At most
//! `max_concurrent_reads` calls wait on Kafka at once, each on a blocking thread.

mod cache;
mod kafka;
mod metrics;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use futures::{FutureExt, StreamExt, stream::BoxStream};
use streamweaver_proto::topics::Topic;
use tokio::sync::Semaphore;

pub use self::metrics::ReplayMetrics;
use self::{
    cache::{Chunk, ChunkFuture, ChunkKey, Chunks, Outcome},
    kafka::{ChunkLimits, Fetched, Kafka},
};
use crate::event::SharedEvent;

/// Events per chunk read from Kafka.
const CHUNK_EVENTS: usize = 2_000;
/// Bytes per chunk read from Kafka, as decoded events roughly take them.
const CHUNK_BYTES: usize = 1 << 20;

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
    inner: Arc<Inner>,
}

struct Inner {
    kafka: Kafka,
    slots: Arc<Semaphore>,
    chunks: Chunks,
    metrics: ReplayMetrics,
}

impl Replayer {
    /// A replayer reading the Kafka of `settings`; connects lazily.
    pub fn new(settings: ReplaySettings) -> Result<Self, ReplayError> {
        let metrics = ReplayMetrics::default();
        let kafka = Kafka::new(
            &settings.bootstrap_servers,
            settings.fetch_wait_max_ms,
            settings.max_value_bytes,
            metrics.clone(),
        )?;
        let inner = Arc::new(Inner {
            kafka,
            slots: Arc::new(Semaphore::new(settings.max_concurrent_reads.max(1))),
            chunks: Chunks::new(settings.cache_bytes),
            metrics,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep_readers(Arc::downgrade(&inner)));
        }
        Ok(Self { inner })
    }

    /// Its counters, to register with the gateway's `/metrics` (and for tests).
    pub fn metrics(&self) -> &ReplayMetrics {
        &self.inner.metrics
    }

    /// The partitions `topic` has now (`UnknownPartition`, naming partition 0, when Kafka does
    /// not know the topic).
    pub async fn partitions(&self, topic: Topic) -> Result<Vec<i32>, ReplayError> {
        self.blocking(move |kafka| kafka.partitions(topic))
            .await?
            .ok_or(ReplayError::UnknownPartition {
                topic,
                partition: 0,
            })
    }

    /// Kafka's bounds of one partition.
    pub async fn watermarks(
        &self,
        topic: Topic,
        partition: i32,
    ) -> Result<Watermarks, ReplayError> {
        self.existing(topic, partition).await?;
        self.blocking(move |kafka| kafka.watermarks(topic, partition))
            .await
    }

    /// Per partition of `topic`, the first offset whose record timestamp is at or after `time`
    /// (Kafka's offsets-for-times), or the partition's high watermark when there is none.
    pub async fn offsets_for_time(
        &self,
        topic: Topic,
        time: SystemTime,
    ) -> Result<Vec<(i32, i64)>, ReplayError> {
        let partitions = self.partitions(topic).await?;
        let time_ms = time.duration_since(UNIX_EPOCH).map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
        self.blocking(move |kafka| kafka.offsets_for_time(topic, &partitions, time_ms))
            .await
    }

    /// Offsets `from..until` of one partition, decoded, in order, pulled at the caller's pace (a
    /// caller that stops pulling holds a bounded amount of memory), shared with concurrent readers
    /// of the same offsets. Ends after the last chunk, after a `Reset`, or with an error.
    pub fn read(
        &self,
        topic: Topic,
        partition: i32,
        from: i64,
        until: i64,
    ) -> BoxStream<'static, Result<ReplayChunk, ReplayError>> {
        let read = Read {
            replayer: self.clone(),
            topic,
            partition,
            next: from.max(0),
            until,
            state: ReadState::Starting,
            ahead: None,
        };
        futures::stream::unfold(read, |mut read| async move {
            let step = read.step().await;
            step.map(|chunk| (chunk, read))
        })
        .boxed()
    }

    /// Whether Kafka holds `event` itself at its offset.
    pub async fn verify(&self, event: &SharedEvent) -> Result<Verdict, ReplayError> {
        let (topic, partition, offset) = (event.topic(), event.partition(), event.offset());
        match self.existing(topic, partition).await {
            Ok(()) => {}
            Err(ReplayError::UnknownPartition { .. }) => return Ok(Verdict::StartedAgain),
            Err(error) => return Err(error),
        }
        let expected = event.clone();
        self.blocking(move |kafka| {
            let now = kafka.bounds_at(topic, partition, offset)?;
            if now.high <= offset {
                return Ok(Verdict::StartedAgain);
            }
            if offset < now.low {
                return Err(ReplayError::Unavailable(format!(
                    "{topic}/{partition} no longer holds offset {offset} (it starts at {})",
                    now.low
                )));
            }
            let held = kafka.event_at(topic, partition, offset)?;
            Ok(match held {
                Some(held) if held.event() == expected.event() => Verdict::Same,
                _ => Verdict::StartedAgain,
            })
        })
        .await
    }

    /// Fails with `UnknownPartition` unless Kafka has this partition now. Checked before every
    /// read: a librdkafka client fetching a topic tansu no longer knows crashes on the answer.
    async fn existing(&self, topic: Topic, partition: i32) -> Result<(), ReplayError> {
        match self.blocking(move |kafka| kafka.partitions(topic)).await? {
            Some(partitions) if partitions.contains(&partition) => Ok(()),
            _ => Err(ReplayError::UnknownPartition { topic, partition }),
        }
    }

    /// Runs `call` on a blocking thread once a slot is free.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Kafka) -> Result<T, ReplayError> + Send + 'static,
    ) -> Result<T, ReplayError> {
        let metrics = &self.inner.metrics;
        let slot = match self.inner.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics.waited.inc();
                let _waiting = Waiting::new(metrics);
                self.inner
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| ReplayError::Unavailable("the replay is shutting down".into()))?
            }
        };
        let inner = self.inner.clone();
        // The slot goes with the call: a caller that goes away does not free it early.
        let result = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            call(&inner.kafka)
        })
        .await
        .unwrap_or_else(|join_error| {
            Err(ReplayError::Unavailable(format!(
                "a Kafka call failed: {join_error}"
            )))
        });
        if let Err(ReplayError::Unavailable(message)) = &result {
            metrics.errors.inc();
            tracing::warn!(%message, "replay: Kafka unavailable");
        }
        result
    }

    /// The chunk of one partition that starts at `from`: from the cache, from a read in flight,
    /// or read now (in a task of its own, so it completes into the cache even if nobody waits).
    fn chunk(&self, topic: Topic, partition: i32, from: i64, until: i64) -> ChunkFuture {
        let key = ChunkKey {
            topic,
            partition,
            from,
        };
        let replayer = self.clone();
        self.inner
            .chunks
            .get_or_read(key, &self.inner.metrics, move || {
                async move {
                    let limits = ChunkLimits {
                        events: CHUNK_EVENTS,
                        bytes: CHUNK_BYTES,
                        goes_on: true,
                    };
                    let fetched = replayer
                        .blocking(move |kafka| kafka.fetch(topic, partition, from, until, limits))
                        .await;
                    let outcome = fetched.map(|fetched| match fetched {
                        Fetched::Events {
                            events,
                            bytes,
                            next,
                            at_end,
                        } => Outcome::Events {
                            chunk: Arc::new(Chunk {
                                events: events.into(),
                                next,
                                bytes,
                            }),
                            at_end,
                        },
                        Fetched::Missing { first, last } => Outcome::Missing { first, last },
                        Fetched::Reset { now } => Outcome::Reset { now },
                    });
                    replayer.inner.chunks.finished(key, outcome.as_ref().ok());
                    outcome
                }
                .boxed()
            })
    }
}

/// Closes, every second, the readers parked for a next chunk nobody asked for; ends when the
/// replayer is dropped.
async fn sweep_readers(inner: std::sync::Weak<Inner>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        every.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || inner.kafka.sweep_readers()).await;
    }
}

/// Counts a call waiting for a slot for as long as it exists (a caller may go away waiting).
struct Waiting<'a>(&'a ReplayMetrics);

impl<'a> Waiting<'a> {
    fn new(metrics: &'a ReplayMetrics) -> Self {
        metrics.waiting.inc();
        Self(metrics)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.dec();
    }
}

/// Where a read is.
enum ReadState {
    /// Nothing asked of Kafka yet.
    Starting,
    /// Reading chunks.
    Reading,
    /// Nothing more to say.
    Done,
}

/// One read of a partition, driven by its caller's pulls.
struct Read {
    replayer: Replayer,
    topic: Topic,
    partition: i32,
    /// The next offset to read.
    next: i64,
    until: i64,
    state: ReadState,
    /// The chunk fetched ahead, and where it starts.
    ahead: Option<(i64, ChunkFuture)>,
}

impl Read {
    /// The next piece of the read, or `None` at its end.
    async fn step(&mut self) -> Option<Result<ReplayChunk, ReplayError>> {
        loop {
            match self.state {
                ReadState::Done => return None,
                ReadState::Starting => {
                    self.state = ReadState::Reading;
                    match self.start().await {
                        Ok(None) => continue,
                        Ok(Some(piece)) => return Some(Ok(piece)),
                        Err(error) => {
                            self.state = ReadState::Done;
                            return Some(Err(error));
                        }
                    }
                }
                ReadState::Reading => {}
            }
            if self.next >= self.until {
                self.state = ReadState::Done;
                return None;
            }
            let chunk = match self.ahead.take() {
                Some((from, chunk)) if from == self.next => chunk,
                _ => self
                    .replayer
                    .chunk(self.topic, self.partition, self.next, self.until),
            };
            match chunk.await {
                Err(error) => {
                    self.state = ReadState::Done;
                    return Some(Err(error));
                }
                Ok(Outcome::Reset { now }) => {
                    self.state = ReadState::Done;
                    return Some(Ok(ReplayChunk::Reset { now }));
                }
                Ok(Outcome::Missing { first, last }) => {
                    self.next = last + 1;
                    return Some(Ok(ReplayChunk::Missing {
                        first,
                        last: last.min(self.until - 1),
                    }));
                }
                Ok(Outcome::Events { chunk, at_end }) => {
                    let events = chunk.before(self.until);
                    self.next = chunk.next.max(self.next);
                    if at_end {
                        self.state = ReadState::Done;
                    } else if self.next < self.until {
                        let ahead =
                            self.replayer
                                .chunk(self.topic, self.partition, self.next, self.until);
                        self.ahead = Some((self.next, ahead));
                    }
                    if !events.is_empty() {
                        return Some(Ok(ReplayChunk::Events(events)));
                    }
                }
            }
        }
    }

    /// Checks where the read starts: a partition gone or started again (`Reset`), offsets below
    /// the log start (`Missing`), or nothing to say.
    async fn start(&mut self) -> Result<Option<ReplayChunk>, ReplayError> {
        let (topic, partition, from, until) = (self.topic, self.partition, self.next, self.until);
        if from >= until {
            return Ok(None);
        }
        match self.replayer.existing(topic, partition).await {
            Ok(()) => {}
            Err(ReplayError::UnknownPartition { .. }) => {
                self.state = ReadState::Done;
                return Ok(Some(ReplayChunk::Reset { now: None }));
            }
            Err(error) => return Err(error),
        }
        let now = self
            .replayer
            .blocking(move |kafka| kafka.bounds_at(topic, partition, from))
            .await?;
        if from > now.high {
            self.state = ReadState::Done;
            return Ok(Some(ReplayChunk::Reset { now: Some(now) }));
        }
        if from < now.low {
            let last = now.low.min(until) - 1;
            self.next = last + 1;
            return Ok(Some(ReplayChunk::Missing { first: from, last }));
        }
        Ok(None)
    }
}
