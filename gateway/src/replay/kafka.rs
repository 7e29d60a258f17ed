//! The blocking side of the replay: librdkafka clients and the calls that wait on Kafka. Every
//! function here blocks, so it runs only on a blocking thread (`spawn_blocking`), never on an
//! async worker.
//!
//! librdkafka cannot `assign` without a consumer group, so readers carry a group id unique to
//! this gateway process; they never subscribe and never commit, so no group ever forms.
//!
//! A chunk is read by a fresh client, or by the one the chunk before it stopped with, kept a few
//! seconds for it: so nothing a reader prefetched outlives a read that stopped pulling, and no
//! client keeps a stale topic id across a delete and recreate for long (a librdkafka 2.12 client
//! that fetches a topic id tansu no longer knows crashes on the answer).
//!
//! What tansu 0.6 does differently from Kafka, and how each is handled here so both are right:
//! - a fetch from an offset inside a record batch (memory storage) returns the batches after it,
//!   so the offsets before them look like a hole: a hole at the start of a read is checked by
//!   stepping back until the batch holding the wanted offset is found;
//! - the same answer may repeat a batch: offsets that do not go forward are dropped;
//! - a fetch past the log end answers nothing instead of OFFSET_OUT_OF_RANGE, and ListOffsets
//!   "latest" may name the newest batch's first offset + 1: the log end is read from where a
//!   read meets end-of-partition (the fetch answer's high watermark);
//! - retention (SQLite storage) removes records without moving the log start a fetch answer
//!   reports, so a hole is checked against ListOffsets "earliest" (the first record held);
//! - ListOffsets by timestamp answers offset 0 when no record is that recent (memory storage
//!   also compares the time a batch was stored): an answer whose record is older than asked is
//!   corrected by a search over record timestamps.

use std::{
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, ClientContext, Message, Offset, TopicPartitionList,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, Consumer, ConsumerContext},
    error::{KafkaError, RDKafkaErrorCode},
    message::BorrowedMessage,
};
use streamweaver_common::{decode::decode, kafka::raw_record};
use streamweaver_proto::topics::Topic;

use super::{ReplayError, Watermarks, metrics::ReplayMetrics};
use crate::event::SharedEvent;

/// How long one call may wait on Kafka before the replay says it is unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one poll of a reader waits, so deadlines are checked often.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// The first step back to find the batch holding an offset; each next one doubles.
const FIRST_STEP_BACK: i64 = 16;
/// Steps back at most this far to find the batch holding an offset.
const MAX_STEP_BACK: i64 = 1 << 24;
/// How long what Kafka said of a topic's partitions is taken as still true.
const METADATA_FOR: Duration = Duration::from_millis(500);
/// How long a reader stopped at a chunk's limit is kept for the chunk after it.
const PARKED_FOR: Duration = Duration::from_secs(5);
/// Readers kept at most for the chunks after theirs.
const MAX_PARKED: usize = 16;
/// A read that met nothing for this long since its assign may start inside tansu's last batch.
const SILENCE_BEFORE_STEP_BACK: Duration = Duration::from_millis(250);
/// Per record, what a decoded event holds beyond its value and key (for memory bounds).
const EVENT_OVERHEAD_BYTES: usize = 160;

/// How much one chunk holds at most.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChunkLimits {
    /// Events per chunk.
    pub(super) events: usize,
    /// Bytes (values, keys and per-event overhead) per chunk.
    pub(super) bytes: usize,
    /// The read goes on after this chunk: a reader stopped by the limits is kept for it.
    pub(super) goes_on: bool,
}

impl ChunkLimits {
    /// One record, for a look at one offset.
    const ONE: Self = Self {
        events: 1,
        bytes: 1,
        goes_on: false,
    };
}

/// What one read of a partition found.
#[derive(Debug)]
pub(super) enum Fetched {
    /// Events from the offset asked for, in order; `next` is where the next read starts (every
    /// offset before it was looked at). `at_end`: the read met the log end.
    Events {
        events: Vec<SharedEvent>,
        bytes: usize,
        next: i64,
        at_end: bool,
    },
    /// Offsets `first..=last` are below the log start: Kafka no longer holds them.
    Missing { first: i64, last: i64 },
    /// The offset asked for is past the log end, or the partition is gone.
    Reset { now: Option<Watermarks> },
}

/// The settings every client of the replay is made with.
pub(super) struct Kafka {
    bootstrap_servers: String,
    fetch_wait_max_ms: u32,
    max_value_bytes: usize,
    group_id: String,
    metrics: ReplayMetrics,
    /// For metadata, ListOffsets and offsets-for-times: none of these needs a group or
    /// remembers a topic id. Made on first use, so a gateway nobody resumes from never connects.
    queries: OnceLock<BaseConsumer<Quiet>>,
    /// Readers that stopped at a chunk's limit, kept a moment for the read's next chunk.
    parked: Mutex<Vec<Parked>>,
    /// The partitions of each topic, and when Kafka said so.
    metadata: Mutex<Vec<TopicMetadata>>,
}

/// What Kafka said of a topic's partitions (`None`: no such topic), and when.
struct TopicMetadata {
    topic: Topic,
    at: Instant,
    partitions: Option<Vec<i32>>,
}

/// A reader positioned where a chunk ended.
struct Parked {
    topic: Topic,
    partition: i32,
    next: i64,
    since: Instant,
    reader: Reader,
}

/// An assign-only consumer.
type Reader = BaseConsumer<Quiet>;

impl Kafka {
    pub(super) fn new(
        bootstrap_servers: &str,
        fetch_wait_max_ms: u32,
        max_value_bytes: usize,
        metrics: ReplayMetrics,
    ) -> Result<Self, ReplayError> {
        Ok(Self {
            metrics,
            bootstrap_servers: bootstrap_servers.to_owned(),
            fetch_wait_max_ms,
            max_value_bytes,
            group_id: format!("streamweaver-gateway-replay-{:016x}", rand::random::<u64>()),
            queries: OnceLock::new(),
            parked: Mutex::new(Vec::new()),
            metadata: Mutex::new(Vec::new()),
        })
    }

    /// Closes the parked readers nobody took in time: a parked reader goes on fetching.
    pub(super) fn sweep_readers(&self) {
        let expired = {
            let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
            take_where(&mut parked, |p| p.since.elapsed() >= PARKED_FOR)
        };
        drop(expired);
    }

    /// The reader a chunk of this partition ending at `next` parked, if it is still there.
    fn unpark(&self, topic: Topic, partition: i32, next: i64) -> Option<Reader> {
        let (found, expired) = {
            let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
            let expired = take_where(&mut parked, |p| p.since.elapsed() >= PARKED_FOR);
            let found = take_where(&mut parked, |p| {
                (p.topic, p.partition, p.next) == (topic, partition, next)
            });
            (found, expired)
        };
        drop(expired);
        found.into_iter().next().map(|p| p.reader)
    }

    /// Keeps `reader` a moment for the chunk that starts at `next`: a reader that goes on needs
    /// no new assign (nor, on tansu, a search for the batch holding `next`).
    fn park(&self, topic: Topic, partition: i32, next: i64, reader: Reader) {
        let evicted = {
            let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
            let mut evicted = take_where(&mut parked, |p| p.since.elapsed() >= PARKED_FOR);
            if parked.len() >= MAX_PARKED {
                evicted.push(parked.remove(0));
            }
            parked.push(Parked {
                topic,
                partition,
                next,
                since: Instant::now(),
                reader,
            });
            evicted
        };
        // Closing a client waits on librdkafka: outside the lock.
        drop(evicted);
    }

    fn queries(&self) -> Result<&BaseConsumer<Quiet>, ReplayError> {
        if let Some(queries) = self.queries.get() {
            return Ok(queries);
        }
        let made = self
            .config()
            .create_with_context(Quiet)
            .map_err(|e| unavailable("cannot create a Kafka client", e))?;
        Ok(self.queries.get_or_init(|| made))
    }

    fn config(&self) -> ClientConfig {
        client_config(&self.bootstrap_servers)
    }

    /// A new reader: assign-only, never commits, reports end-of-partition, and fails on an
    /// offset out of range instead of jumping. Never one used before: a reader that fetched a
    /// topic which was then deleted and recreated crashes on tansu's answer (librdkafka 2.12
    /// fetches by topic id).
    fn reader(&self) -> Result<Reader, ReplayError> {
        self.config()
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "error")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            .set("fetch.error.backoff.ms", "20")
            // One fetch answer of at most 1 MiB per partition; little prefetched beyond it.
            .set("max.partition.fetch.bytes", "1048576")
            .set("fetch.max.bytes", "4194304")
            .set("queued.max.messages.kbytes", "2048")
            .create_with_context(Quiet)
            .map_err(|e| unavailable("cannot create a Kafka reader", e))
    }

    /// The partitions of `topic`, or `None` when Kafka does not know the topic (now), as Kafka
    /// said at most [`METADATA_FOR`] ago: a resume that names a thousand partitions asks once.
    pub(super) fn partitions(&self, topic: Topic) -> Result<Option<Vec<i32>>, ReplayError> {
        let cached = self
            .metadata()
            .iter()
            .find(|m| m.topic == topic && m.at.elapsed() < METADATA_FOR)
            .map(|m| m.partitions.clone());
        if let Some(partitions) = cached {
            return Ok(partitions);
        }
        let partitions = self.partitions_now(topic)?;
        let mut metadata = self.metadata();
        metadata.retain(|m| m.topic != topic);
        metadata.push(TopicMetadata {
            topic,
            at: Instant::now(),
            partitions: partitions.clone(),
        });
        Ok(partitions)
    }

    fn metadata(&self) -> std::sync::MutexGuard<'_, Vec<TopicMetadata>> {
        // Every update leaves the list whole, so a poisoned lock is still usable.
        self.metadata.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn partitions_now(&self, topic: Topic) -> Result<Option<Vec<i32>>, ReplayError> {
        let metadata = self
            .queries()?
            .fetch_metadata(Some(topic.name()), CALL_TIMEOUT)
            .map_err(|e| unavailable(&format!("metadata of {topic}"), e))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic.name()) else {
            return Ok(None);
        };
        match found.error() {
            None => {}
            Some(code)
                if RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition =>
            {
                return Ok(None);
            }
            Some(code) => {
                return Err(ReplayError::Unavailable(format!(
                    "metadata of {topic}: {}",
                    RDKafkaErrorCode::from(code)
                )));
            }
        }
        let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        Ok((!partitions.is_empty()).then_some(partitions))
    }

    /// ListOffsets "earliest" and "latest" of one partition, as Kafka answers them.
    fn list_offsets(&self, topic: Topic, partition: i32) -> Result<(i64, i64), ReplayError> {
        self.queries()?
            .fetch_watermarks(topic.name(), partition, CALL_TIMEOUT)
            .map_err(|e| unavailable(&format!("offsets of {topic}/{partition}"), e))
    }

    /// The first offset Kafka still holds.
    pub(super) fn log_start(&self, topic: Topic, partition: i32) -> Result<i64, ReplayError> {
        Ok(self.list_offsets(topic, partition)?.0)
    }

    /// Bounds of a partition exact enough to place `offset`: ListOffsets alone when the offset
    /// is below its "latest" (the log end is past it then), else the exact bounds.
    pub(super) fn bounds_at(
        &self,
        topic: Topic,
        partition: i32,
        offset: i64,
    ) -> Result<Watermarks, ReplayError> {
        let (low, latest) = self.list_offsets(topic, partition)?;
        if offset < latest {
            return Ok(Watermarks { low, high: latest });
        }
        self.watermarks(topic, partition)
    }

    /// Kafka's exact bounds of a partition: the log start from ListOffsets, the log end from
    /// where a read from the last batch meets end-of-partition.
    pub(super) fn watermarks(
        &self,
        topic: Topic,
        partition: i32,
    ) -> Result<Watermarks, ReplayError> {
        let (low, latest) = self.list_offsets(topic, partition)?;
        let reader = self.reader()?;
        let start = (latest - 1).max(low).max(0);
        assign(&reader, topic, partition, start)?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        let mut next = start;
        while Instant::now() < deadline {
            match reader.poll(POLL_SLICE) {
                Some(Ok(message)) if is_of(&message, topic, partition) => {
                    next = next.max(message.offset() + 1);
                }
                Some(Err(KafkaError::PartitionEOF(at))) if at == partition => {
                    return Ok(Watermarks {
                        low,
                        high: next.max(latest),
                    });
                }
                Some(Err(error)) if is_gone(&error) => {
                    return Err(ReplayError::UnknownPartition { topic, partition });
                }
                Some(_) | None => {}
            }
        }
        Err(ReplayError::Unavailable(format!(
            "the log end of {topic}/{partition} was not found within {CALL_TIMEOUT:?}"
        )))
    }

    /// Offsets `from..until` of one partition, up to `limits`. A read stopped by its limits
    /// parks its reader for the next chunk.
    pub(super) fn fetch(
        &self,
        topic: Topic,
        partition: i32,
        from: i64,
        until: i64,
        limits: ChunkLimits,
    ) -> Result<Fetched, ReplayError> {
        self.metrics.reads.inc();
        let (reader, mut cursor) = match self.unpark(topic, partition, from) {
            Some(reader) => (reader, Cursor::going_on(self, topic, partition, from)),
            None => {
                let reader = self.reader()?;
                let cursor = Cursor::new(self, &reader, topic, partition, from)?;
                (reader, cursor)
            }
        };
        let mut events = Vec::new();
        let mut bytes = 0usize;
        let mut at_end = false;
        let mut full = false;
        let deadline = Instant::now() + CALL_TIMEOUT;
        let mut last_error = None;
        loop {
            let polled = if Instant::now() >= deadline {
                return Err(ReplayError::Unavailable(format!(
                    "reading {topic}/{partition} at offset {}: no answer from Kafka within \
                     {CALL_TIMEOUT:?}{}",
                    cursor.next,
                    last_error.map(|e| format!(" ({e})")).unwrap_or_default()
                )));
            } else {
                reader.poll(POLL_SLICE)
            };
            let message = match polled {
                None => {
                    if events.is_empty() {
                        cursor.on_silence(&reader)?;
                    }
                    continue;
                }
                Some(Ok(message)) if is_of(&message, topic, partition) => message,
                // Left from the reader's last read.
                Some(Ok(_)) => continue,
                Some(Err(KafkaError::PartitionEOF(at))) if at == partition => {
                    at_end = true;
                    break;
                }
                // What was read so far goes out first; the next read meets the error again.
                Some(Err(error))
                    if !events.is_empty() && (is_out_of_range(&error) || is_gone(&error)) =>
                {
                    break;
                }
                Some(Err(error)) if is_out_of_range(&error) => {
                    return self.out_of_range(topic, partition, cursor.next);
                }
                Some(Err(error)) if is_gone(&error) => return Ok(Fetched::Reset { now: None }),
                Some(Err(error)) => {
                    // Transient (a broker restarting): librdkafka retries; wait for the deadline.
                    last_error = Some(error.to_string());
                    continue;
                }
            };
            let offset = message.offset();
            match cursor.on_record(&reader, offset)? {
                Step::Skip => continue,
                Step::Missing { first, last } => return Ok(Fetched::Missing { first, last }),
                Step::Take => {}
            }
            if offset >= until {
                cursor.next = until;
                break;
            }
            cursor.next = offset + 1;
            bytes += record_bytes(&message);
            match self.decode(&message) {
                Some(event) => events.push(event),
                None => {
                    self.metrics.skipped.inc();
                }
            }
            if cursor.next >= until {
                break;
            }
            if events.len() >= limits.events || bytes >= limits.bytes {
                full = true;
                break;
            }
        }
        self.metrics.events.inc_by(events.len() as u64);
        self.metrics.bytes.inc_by(bytes as u64);
        if full && limits.goes_on {
            self.park(topic, partition, cursor.next, reader);
        }
        Ok(Fetched::Events {
            events,
            bytes,
            next: cursor.next,
            at_end,
        })
    }

    /// Kafka said the offset is out of range: below the log start (missing) or past the end.
    fn out_of_range(
        &self,
        topic: Topic,
        partition: i32,
        offset: i64,
    ) -> Result<Fetched, ReplayError> {
        let now = self.watermarks(topic, partition)?;
        if offset < now.low {
            Ok(Fetched::Missing {
                first: offset,
                last: now.low - 1,
            })
        } else {
            Ok(Fetched::Reset { now: Some(now) })
        }
    }

    /// The event at exactly `offset`, if a valid one is there: `Ok(None)` for no record or a
    /// record that is not an event.
    pub(super) fn event_at(
        &self,
        topic: Topic,
        partition: i32,
        offset: i64,
    ) -> Result<Option<SharedEvent>, ReplayError> {
        let limits = ChunkLimits::ONE;
        match self.fetch(topic, partition, offset, offset + 1, limits)? {
            Fetched::Events { events, .. } => Ok(events.into_iter().find(|e| e.offset() == offset)),
            Fetched::Missing { .. } | Fetched::Reset { .. } => Ok(None),
        }
    }

    /// The offset and time (ms, the producer's) of the first event at or after `offset`, if
    /// any before `end`.
    fn first_event_from(
        &self,
        topic: Topic,
        partition: i32,
        offset: i64,
        end: i64,
    ) -> Result<Option<(i64, i64)>, ReplayError> {
        let limits = ChunkLimits::ONE;
        let mut from = offset;
        while from < end {
            match self.fetch(topic, partition, from, end, limits)? {
                Fetched::Events {
                    events,
                    next,
                    at_end,
                    ..
                } => {
                    if let Some(event) = events.first() {
                        let time = event.event().produced_at.as_ref().map_or(i64::MIN, |t| {
                            t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
                        });
                        return Ok(Some((event.offset(), time)));
                    }
                    if at_end || next <= from {
                        return Ok(None);
                    }
                    from = next;
                }
                Fetched::Missing { last, .. } => from = last + 1,
                Fetched::Reset { .. } => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Per partition, the first offset whose record is at or after `time_ms`, else the log end.
    pub(super) fn offsets_for_time(
        &self,
        topic: Topic,
        partitions: &[i32],
        time_ms: i64,
    ) -> Result<Vec<(i32, i64)>, ReplayError> {
        let mut asked = TopicPartitionList::new();
        for &partition in partitions {
            asked
                .add_partition_offset(topic.name(), partition, Offset::Offset(time_ms))
                .map_err(|e| unavailable("offsets for a time", e))?;
        }
        let answer = self
            .queries()?
            .offsets_for_times(asked, CALL_TIMEOUT)
            .map_err(|e| unavailable(&format!("offsets of {topic} for a time"), e))?;
        let mut offsets = Vec::with_capacity(partitions.len());
        for &partition in partitions {
            let answered = answer
                .find_partition(topic.name(), partition)
                .map(|e| e.offset());
            let bounds = self.watermarks(topic, partition)?;
            let offset = match answered {
                Some(Offset::Offset(offset)) if offset < bounds.high => self.check_time_answer(
                    topic,
                    partition,
                    offset.max(bounds.low),
                    bounds,
                    time_ms,
                )?,
                _ => bounds.high,
            };
            offsets.push((partition, offset));
        }
        Ok(offsets)
    }

    /// Kafka answers the first offset at or after the time; an answer whose record is older
    /// (tansu) is corrected by a binary search over record timestamps from there.
    fn check_time_answer(
        &self,
        topic: Topic,
        partition: i32,
        answered: i64,
        bounds: Watermarks,
        time_ms: i64,
    ) -> Result<i64, ReplayError> {
        match self.first_event_from(topic, partition, answered, bounds.high)? {
            None => return Ok(bounds.high),
            Some((_, timestamp)) if timestamp >= time_ms => return Ok(answered),
            Some(_) => {}
        }
        // The first offset from which the first record held is at or after the time.
        let (mut low, mut high) = (answered, bounds.high);
        let mut found = bounds.high;
        while low < high {
            let middle = low + (high - low) / 2;
            match self.first_event_from(topic, partition, middle, bounds.high)? {
                Some((offset, timestamp)) if timestamp >= time_ms => {
                    found = offset;
                    high = middle;
                }
                Some((offset, _)) => low = offset.max(middle) + 1,
                None => high = middle,
            }
        }
        Ok(found)
    }

    fn decode(&self, message: &BorrowedMessage<'_>) -> Option<SharedEvent> {
        let event = decode(&raw_record(message), self.max_value_bytes).ok()?;
        SharedEvent::new(event).ok()
    }
}

/// librdkafka's own reports, kept at debug level: end-of-partition is how every read ends, and
/// what goes wrong reaches the caller as a [`ReplayError`] (logged once, by the replay).
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::warn!(target: "librdkafka", facility, "{message}");
            }
            _ => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", %error, "{reason}");
    }
}

impl ConsumerContext for Quiet {}

fn client_config(bootstrap_servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("client.id", "streamweaver-gateway-replay")
        .set("socket.connection.setup.timeout.ms", "10000");
    config
}

/// Removes and returns the elements of `items` that match.
fn take_where<T>(items: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> Vec<T> {
    let (taken, kept) = std::mem::take(items)
        .into_iter()
        .partition(|item| matches(item));
    *items = kept;
    taken
}

/// What to do with a record a reader met.
enum Step {
    /// Not wanted: before the offset asked for, or a repeat.
    Skip,
    /// The next record of the read.
    Take,
    /// The offsets asked for are below the log start.
    Missing { first: i64, last: i64 },
}

/// A reader positioned at the start of a read, which finds the record batch that holds the
/// offset asked for (see the module's notes on tansu) before the read goes on.
struct Cursor<'a> {
    kafka: &'a Kafka,
    topic: Topic,
    partition: i32,
    from: i64,
    /// The next offset wanted.
    next: i64,
    /// Where the reader was last assigned.
    start: i64,
    assigned_at: Instant,
    /// How far the next step back goes.
    step: i64,
    /// The last offset met since the last assign (answers may repeat a batch).
    last_seen: i64,
    /// Since the last assign, a record before `from` was met: a hole after it is real.
    before_from: bool,
    /// The first record of the read was taken: holes after it are offsets without records.
    started: bool,
    log_start: Option<i64>,
}

impl<'a> Cursor<'a> {
    fn new(
        kafka: &'a Kafka,
        reader: &BaseConsumer<Quiet>,
        topic: Topic,
        partition: i32,
        from: i64,
    ) -> Result<Self, ReplayError> {
        assign(reader, topic, partition, from)?;
        Ok(Self {
            kafka,
            topic,
            partition,
            from,
            next: from,
            start: from,
            assigned_at: Instant::now(),
            step: FIRST_STEP_BACK,
            last_seen: from - 1,
            before_from: false,
            started: false,
            log_start: None,
        })
    }

    /// A cursor for a parked reader that goes on from `next`: its position is known.
    fn going_on(kafka: &'a Kafka, topic: Topic, partition: i32, next: i64) -> Self {
        Self {
            kafka,
            topic,
            partition,
            from: next,
            next,
            start: next,
            assigned_at: Instant::now(),
            step: FIRST_STEP_BACK,
            last_seen: next - 1,
            before_from: false,
            started: true,
            log_start: None,
        }
    }

    fn log_start(&mut self) -> Result<i64, ReplayError> {
        match self.log_start {
            Some(low) => Ok(low),
            None => Ok(*self
                .log_start
                .insert(self.kafka.log_start(self.topic, self.partition)?)),
        }
    }

    /// Assigns the reader further back, if it can go further; false when it cannot.
    fn step_back(&mut self, reader: &BaseConsumer<Quiet>) -> Result<bool, ReplayError> {
        let low = self.log_start()?;
        if self.start <= low || self.step > MAX_STEP_BACK {
            return Ok(false);
        }
        self.start = (self.from - self.step).max(low);
        self.step *= 2;
        assign(reader, self.topic, self.partition, self.start)?;
        self.assigned_at = Instant::now();
        self.last_seen = self.start - 1;
        self.before_from = false;
        Ok(true)
    }

    /// No answer yet: on tansu, a fetch from inside the last batch answers nothing.
    fn on_silence(&mut self, reader: &BaseConsumer<Quiet>) -> Result<(), ReplayError> {
        if !self.started
            && self.last_seen < self.start
            && self.assigned_at.elapsed() >= SILENCE_BEFORE_STEP_BACK
        {
            self.step_back(reader)?;
        }
        Ok(())
    }

    fn on_record(
        &mut self,
        reader: &BaseConsumer<Quiet>,
        offset: i64,
    ) -> Result<Step, ReplayError> {
        if offset <= self.last_seen {
            return Ok(Step::Skip);
        }
        self.last_seen = offset;
        if offset < self.next {
            self.before_from = true;
            return Ok(Step::Skip);
        }
        if offset > self.next && !self.started && !self.before_from {
            // A hole where the read starts: retention, tansu skipping the batch the offset is
            // inside, or offsets that hold no record.
            let low = self.log_start()?;
            if low > self.from {
                return Ok(Step::Missing {
                    first: self.from,
                    last: low.min(offset) - 1,
                });
            }
            if self.step_back(reader)? {
                return Ok(Step::Skip);
            }
        }
        self.started = true;
        Ok(Step::Take)
    }
}

/// Memory a record read back takes as a decoded event, roughly.
fn record_bytes(message: &BorrowedMessage<'_>) -> usize {
    message.payload_len() + message.key().map_or(0, <[u8]>::len) + EVENT_OVERHEAD_BYTES
}

fn assign(
    reader: &BaseConsumer<Quiet>,
    topic: Topic,
    partition: i32,
    offset: i64,
) -> Result<(), ReplayError> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic.name(), partition, Offset::Offset(offset))
        .map_err(|e| unavailable("assigning a partition", e))?;
    reader
        .assign(&assignment)
        .map_err(|e| unavailable(&format!("reading {topic}/{partition}"), e))
}

/// Whether `message` is of the partition being read (not one a reused reader read before).
fn is_of(message: &BorrowedMessage<'_>, topic: Topic, partition: i32) -> bool {
    message.partition() == partition && message.topic() == topic.name()
}

fn error_code(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    error.rdkafka_error_code()
}

/// Kafka said the offset is not in the log (with `auto.offset.reset=error`).
fn is_out_of_range(error: &KafkaError) -> bool {
    matches!(
        error_code(error),
        Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
    )
}

/// The topic or partition does not exist (any more).
fn is_gone(error: &KafkaError) -> bool {
    matches!(
        error_code(error),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopicId
        )
    )
}

fn unavailable(what: &str, error: KafkaError) -> ReplayError {
    ReplayError::Unavailable(format!("{what}: {error}"))
}
