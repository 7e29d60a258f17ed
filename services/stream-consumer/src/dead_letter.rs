//! The dead-letter topic: where records that are not valid events go, with the reason in a
//! header, so nothing is dropped silently and a person can inspect and replay them.

use std::time::Duration;

use rdkafka::{
    error::KafkaError,
    message::{Header, Headers, Message, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};

use streamweaver_common::decode::DecodeError;

/// Header carrying the decode error.
pub const ERROR_HEADER: &str = "streamweaver-error";
/// Header carrying where the record came from: `topic/partition/offset`.
pub const SOURCE_HEADER: &str = "streamweaver-source";

/// Writes refused records to the dead-letter topic.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    /// A writer to `topic` through `producer`.
    pub fn new(producer: FutureProducer, topic: String) -> Self {
        Self { producer, topic }
    }

    /// Copies `message` (key, value, headers) to the dead-letter topic with `error` attached,
    /// and waits until Kafka has it.
    pub async fn send(
        &self,
        message: &OwnedMessage,
        error: &DecodeError,
    ) -> Result<(), KafkaError> {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                headers = headers.insert(header);
            }
        }
        let source = format!(
            "{}/{}/{}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        let error_text = error.to_string();
        headers = headers
            .insert(Header {
                key: ERROR_HEADER,
                value: Some(&error_text),
            })
            .insert(Header {
                key: SOURCE_HEADER,
                value: Some(&source),
            });
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(value) = message.payload() {
            record = record.payload(value);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }
}
