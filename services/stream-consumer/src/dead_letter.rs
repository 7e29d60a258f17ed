//! The dead-letter topic: where records that are not valid events go, with the reason in a
//! header, so nothing is dropped silently and a person can inspect and replay them.
//!
//! Dead letters are handed to the producer without waiting for each delivery, so a burst of bad
//! records costs the good ones next to nothing; librdkafka batches them on the wire. Each
//! delivery comes back to the forwarding loop with the [`Ticket`] it was sent with, and only then
//! may the offset of the bad record be stored (at-least-once, for dead letters too).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, Headers, Message, OwnedHeaders, OwnedMessage},
    producer::{DeliveryFuture, FutureProducer, FutureRecord},
};
use streamweaver_common::decode::DecodeError;

use crate::{
    metrics::{DeadLetterLabels, Metrics, TopicLabels},
    partitions::{Epoch, TopicPartition},
};

/// Header carrying the decode error.
pub const ERROR_HEADER: &str = "streamweaver-error";
/// Header carrying where the record came from: `topic/partition/offset`.
pub const SOURCE_HEADER: &str = "streamweaver-source";
/// Header set when the record's value was too large to copy: its size in bytes.
pub const VALUE_OMITTED_HEADER: &str = "streamweaver-value-omitted";
/// How long a dead letter may wait for room in the producer's queue before it counts as failed.
const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// How often a warning about bad records is logged at most; the others are counted in it.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// What a dead letter was sent for; it comes back with the delivery.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The partition the bad record was read from.
    pub partition: TopicPartition,
    /// Its offset.
    pub offset: i64,
    /// The epoch it was read under.
    pub epoch: Epoch,
    reason: &'static str,
}

impl Ticket {
    /// The ticket of the bad record at `offset` of `partition`, read under `epoch`.
    pub fn new(partition: TopicPartition, offset: i64, epoch: Epoch) -> Self {
        Self {
            partition,
            offset,
            epoch,
            reason: "",
        }
    }
}

/// A dead letter's outcome.
#[derive(Debug)]
pub struct Delivered {
    /// What it was sent for.
    pub ticket: Ticket,
    /// Whether the dead-letter topic has it.
    pub result: Result<(), KafkaError>,
}

/// Writes refused records to the dead-letter topic.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    in_flight: FuturesUnordered<InFlight>,
    metrics: Metrics,
    bad_record_log: Throttle,
    failure_log: Throttle,
}

impl DeadLetters {
    /// A writer to `topic` through `producer`, counting in `metrics`.
    pub fn new(producer: FutureProducer, topic: String, metrics: Metrics) -> Self {
        Self {
            producer,
            topic,
            in_flight: FuturesUnordered::new(),
            metrics,
            bad_record_log: Throttle::default(),
            failure_log: Throttle::default(),
        }
    }

    /// Hands a copy of `message` (key, value, headers) with `error` attached to the producer,
    /// without waiting for its delivery: that comes back from [`DeadLetters::delivered`]. Waits
    /// only while the producer's queue is full. On `Err` nothing was sent.
    pub async fn send(
        &mut self,
        message: &OwnedMessage,
        error: &DecodeError,
        mut ticket: Ticket,
    ) -> Result<(), KafkaError> {
        if let Some(unlogged) = self.bad_record_log.allow() {
            tracing::warn!(
                topic = message.topic(),
                partition = message.partition(),
                offset = message.offset(),
                %error,
                unlogged_since_last = unlogged,
                "record is not an event; sending it to the dead-letter topic"
            );
        }
        ticket.reason = error.reason();
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
        let waiting_since = Instant::now();
        let delivery = loop {
            match self.producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if waiting_since.elapsed() < QUEUE_WAIT =>
                {
                    // Back-pressure: the broker is behind; reading waits until there is room.
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                    mut returned,
                )) if returned.payload.is_some() => {
                    // Too large to copy: the headers say where the original is and how large.
                    let value_size = message.payload().map_or(0, <[u8]>::len).to_string();
                    returned.payload = None;
                    returned.headers = returned.headers.map(|headers| {
                        headers.insert(Header {
                            key: VALUE_OMITTED_HEADER,
                            value: Some(&value_size),
                        })
                    });
                    record = returned;
                }
                Err((error, _)) => {
                    self.count_failure(&ticket, &error);
                    return Err(error);
                }
            }
        };
        self.in_flight.push(InFlight {
            delivery,
            ticket: Some(ticket),
        });
        self.metrics.dead_letters_pending.inc();
        Ok(())
    }

    /// The next dead letter delivered or failed; pending forever when none is in flight.
    /// Cancel-safe.
    pub async fn delivered(&mut self) -> Delivered {
        match self.in_flight.next().await {
            Some(delivered) => self.count(delivered),
            None => std::future::pending().await,
        }
    }

    /// A dead letter delivered or failed already, if any.
    pub fn ready(&mut self) -> Option<Delivered> {
        let delivered = self.in_flight.next().now_or_never()??;
        Some(self.count(delivered))
    }

    /// How many dead letters await their delivery.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The producer, to close it off the async workers.
    pub fn into_producer(self) -> FutureProducer {
        self.producer
    }

    fn count(&mut self, delivered: Delivered) -> Delivered {
        self.metrics.dead_letters_pending.dec();
        match &delivered.result {
            Ok(()) => {
                self.metrics
                    .dead_lettered
                    .get_or_create(&DeadLetterLabels {
                        topic: delivered.ticket.partition.topic.clone(),
                        reason: delivered.ticket.reason.to_owned(),
                    })
                    .inc();
            }
            Err(error) => self.count_failure(&delivered.ticket, error),
        }
        delivered
    }

    fn count_failure(&mut self, ticket: &Ticket, error: &KafkaError) {
        self.metrics
            .dead_letters_failed
            .get_or_create(&TopicLabels {
                topic: ticket.partition.topic.clone(),
            })
            .inc();
        if let Some(unlogged) = self.failure_log.allow() {
            tracing::error!(
                source = %ticket.partition,
                offset = ticket.offset,
                %error,
                unlogged_since_last = unlogged,
                "dead-letter topic did not take a record; it will be read again"
            );
        }
    }
}

/// One dead letter on its way.
struct InFlight {
    delivery: DeliveryFuture,
    ticket: Option<Ticket>,
}

impl Future for InFlight {
    type Output = Delivered;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Delivered> {
        let result = match self.delivery.poll_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(Ok(_))) => Ok(()),
            Poll::Ready(Ok(Err((error, _)))) => Err(error),
            Poll::Ready(Err(_)) => Err(KafkaError::Canceled),
        };
        match self.ticket.take() {
            Some(ticket) => Poll::Ready(Delivered { ticket, result }),
            // Polled again after it was ready: FuturesUnordered never does.
            None => Poll::Pending,
        }
    }
}

/// Lets a log line through at most once per [`WARN_EVERY`], counting the ones held back.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    /// `Some(lines held back since the last one)` when this one may be logged.
    fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_lets_one_line_a_second_through_and_counts_the_rest() {
        let mut throttle = Throttle::default();
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        throttle.last = throttle.last.and_then(|last| last.checked_sub(WARN_EVERY));
        assert_eq!(throttle.allow(), Some(2));
    }
}
