//! Kafka settings every StreamWeaver client shares, and topic creation.
//!
//! Nothing here special-cases the embedded broker: it is all plain Kafka protocol via rdkafka.

use std::{sync::Arc, time::Duration};

use clap::Args;
use rdkafka::{
    ClientConfig, Message,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::RDKafkaErrorCode,
    message::Headers,
};

use crate::decode::RawRecord;
pub use crate::decode::{CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF};

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
