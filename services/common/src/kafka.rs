//! Kafka settings every StreamWeaver client shares, and topic creation.
//!
//! Nothing here special-cases the embedded broker: it is all plain Kafka protocol via rdkafka.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use clap::Args;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, Headers, OwnedHeaders, ToBytes},
    producer::FutureRecord,
};
use streamweaver_proto::v1::Event;

pub use crate::decode::{CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF};
use crate::decode::{RawRecord, decode};

/// Where the Kafka cluster is, as a flag with an environment fallback.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (host:port, comma-separated).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
}

impl KafkaArgs {
    /// A client configuration pointing at the cluster, with the settings every client shares.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", "streamweaver")
            // Fail fast at start-up instead of hanging on a wrong address.
            .set("socket.connection.setup.timeout.ms", "10000");
        config
    }
}

/// Errors creating topics.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The admin client could not be made.
    #[error("cannot create a Kafka admin client: {0}")]
    Client(#[source] rdkafka::error::KafkaError),
    /// The request failed as a whole (broker unreachable, timed out).
    #[error("cannot create topics: {0}")]
    Request(#[source] rdkafka::error::KafkaError),
    /// The broker refused one topic.
    #[error("cannot create topic {topic}: {code}")]
    Topic {
        /// Which topic.
        topic: String,
        /// What the broker said.
        code: RDKafkaErrorCode,
    },
}

/// Creates `topics` with `partitions` partitions each, leaving existing ones alone.
pub async fn ensure_topics(
    kafka: &KafkaArgs,
    topics: &[&str],
    partitions: i32,
) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> =
        kafka.client_config().create().map_err(TopicError::Client)?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(TopicError::Request)?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic, partitions, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicError::Topic { topic, code }),
        }
    }
    Ok(())
}

/// A record read from Kafka, as the decoder takes it.
pub fn raw_record<M: Message>(message: &M) -> RawRecord<'_> {
    let content_type = message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(CONTENT_TYPE_HEADER))
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
    });
    RawRecord {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key(),
        content_type,
        value: message.payload(),
        timestamp_ms: message.timestamp().to_millis(),
    }
}

/// A record of a Protobuf-encoded event for `topic`, keyed by `key`, with the `content-type`
/// header that says so.
pub fn protobuf_record<'a, K, V>(topic: &'a str, key: &'a K, value: &'a V) -> FutureRecord<'a, K, V>
where
    K: ToBytes + ?Sized,
    V: ToBytes + ?Sized,
{
    FutureRecord::to(topic)
        .key(key)
        .payload(value)
        .headers(OwnedHeaders::new().insert(Header {
            key: CONTENT_TYPE_HEADER,
            value: Some(CONTENT_TYPE_PROTOBUF),
        }))
}

/// Why a topic could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Kafka did not answer or refused.
    #[error("cannot read {topic}: {source}")]
    Kafka {
        /// The topic being read.
        topic: String,
        /// What rdkafka said.
        #[source]
        source: KafkaError,
    },
    /// The end of the log was not reached in time.
    #[error("cannot read {topic} to its end within {within:?}")]
    Timeout {
        /// The topic being read.
        topic: String,
        /// How long it tried.
        within: Duration,
    },
}

/// What [`read_tail`] found.
#[derive(Debug, Default)]
pub struct Tail {
    /// The events, in offset order per partition.
    pub events: Vec<Event>,
    /// Records that are not valid events (skipped).
    pub undecodable: usize,
}

/// Reads about the last `last` records (all of them when `None`) of every partition of `topic`
/// to the end of its log, decoded. Blocking (librdkafka calls): run it on a blocking thread. No
/// consumer group is joined and nothing is committed.
///
/// The end is where the broker says a partition has nothing more (partition EOF), not the high
/// watermark read beforehand: the embedded tansu 0.6 reports one past the first offset of the
/// last record batch as the high watermark, so the rest of a batch of several records would be
/// left out.
pub fn read_tail(
    kafka: &KafkaArgs,
    topic: &str,
    last: Option<i64>,
    within: Duration,
) -> Result<Tail, ReadError> {
    let failed = |source| ReadError::Kafka {
        topic: topic.to_owned(),
        source,
    };
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "streamweaver-tail-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(failed)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), within)
        .map_err(failed)?;
    let mut unfinished = BTreeSet::new();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition.id(), within)
            .map_err(failed)?;
        let start = last.map_or(low, |last| low.max(high - last));
        if start < high {
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Offset(start))
                .map_err(failed)?;
            unfinished.insert(partition.id());
        }
    }
    let mut tail = Tail::default();
    if unfinished.is_empty() {
        return Ok(tail);
    }
    consumer.assign(&assignment).map_err(failed)?;
    let deadline = std::time::Instant::now() + within;
    while !unfinished.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(ReadError::Timeout {
                topic: topic.to_owned(),
                within,
            });
        }
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                unfinished.remove(&partition);
                continue;
            }
            Some(Err(error)) => {
                tracing::debug!(topic, %error, "while reading to the end");
                continue;
            }
            Some(Ok(message)) => message,
        };
        match decode(&raw_record(&message), usize::MAX) {
            Ok(event) => tail.events.push(event),
            Err(_) => tail.undecodable += 1,
        }
    }
    Ok(tail)
}

/// Runs `call` with `client` on a blocking thread and waits for it. librdkafka calls that may
/// wait (on the broker, on its own threads) — seek, commit, store offsets, assign — must never
/// hold up an async worker; this is how to make them from async code.
pub async fn blocking<C, T>(
    client: &Arc<C>,
    call: impl FnOnce(&C) -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError>
where
    C: Send + Sync + 'static,
    T: Send + 'static,
{
    let client = Arc::clone(client);
    tokio::task::spawn_blocking(move || call(&client)).await
}
