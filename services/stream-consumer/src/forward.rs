//! The forwarding loop: Kafka records in, client-streaming `Publish` calls out, offsets stored
//! only once the gateway has acknowledged them (at-least-once).
//!
//! Events go to the gateway as soon as they are read; a call is closed every `--ack-interval` so
//! the gateway's answer acknowledges what it carried, and the next call opens once that answer is
//! in (a pause of one round trip), so no two calls carry events at once. When
//! a call fails, every partition goes back to its last acknowledged offset and the consumer
//! reconnects with backoff; the gateway drops what it had already seen, so nothing shows twice.

use std::{collections::HashMap, time::Duration};

use futures::FutureExt;
use prost::Message as _;
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
    message::{Message, OwnedMessage},
};
use streamweaver_proto::v1::{
    Event, PublishRequest, PublishResponse, ingest_service_client::IngestServiceClient,
};
use tokio::{sync::mpsc, task::JoinHandle, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{
    Status,
    codegen::InterceptedService,
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
    transport::Channel,
};

use streamweaver_common::{decode::decode, kafka::raw_record};

use crate::{
    config::ConsumerArgs,
    dead_letter::DeadLetters,
    metrics::{DeadLetterLabels, Metrics, TopicLabels},
};

/// Largest encoded size of one PublishRequest (the gateway accepts 4 MiB by default).
const MAX_REQUEST_BYTES: usize = 2 << 20;
/// How many PublishRequests may wait for the gateway before reading from Kafka pauses.
const REQUEST_QUEUE: usize = 16;
/// First wait after a failed call; doubles up to `--max-backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How long shutdown waits for the last acknowledgements.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

type TopicPartition = (String, i32);
/// The highest offset handled per partition.
type Positions = HashMap<TopicPartition, i64>;

/// Adds the publish credential to every call.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    /// `Bearer <token>`, or `None` when the token cannot be a header value.
    pub fn new(token: &str) -> Option<Self> {
        format!("Bearer {token}").parse().ok().map(Self)
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The gateway client with its credential.
pub type GatewayClient = IngestServiceClient<InterceptedService<Channel, BearerToken>>;

/// The call that is taking events now.
struct OpenCall {
    id: u64,
    requests: mpsc::Sender<PublishRequest>,
    opened: Instant,
    positions: Positions,
    task: JoinHandle<()>,
}

/// A closed call waiting for the gateway's answer (there is at most one).
struct PendingCall {
    id: u64,
    positions: Positions,
    task: JoinHandle<()>,
}

/// Why forwarding stopped.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Kafka failed in a way the loop cannot recover from.
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// The state of the forwarding loop.
pub struct Forwarder {
    consumer: StreamConsumer,
    client: GatewayClient,
    dead_letters: DeadLetters,
    metrics: Metrics,
    args: ConsumerArgs,
    open: Option<OpenCall>,
    pending: Option<PendingCall>,
    /// Where each partition restarts after a failure: the offset after the last acknowledged
    /// one, or the first offset read when nothing was acknowledged yet.
    rewind_to: HashMap<TopicPartition, i64>,
    answers_tx: mpsc::UnboundedSender<(u64, Result<PublishResponse, Status>)>,
    answers_rx: mpsc::UnboundedReceiver<(u64, Result<PublishResponse, Status>)>,
    next_call_id: u64,
    backoff: Duration,
}

impl Forwarder {
    /// A loop reading from `consumer` (already subscribed) and publishing through `client`.
    pub fn new(
        consumer: StreamConsumer,
        client: GatewayClient,
        dead_letters: DeadLetters,
        metrics: Metrics,
        args: ConsumerArgs,
    ) -> Self {
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        Self {
            consumer,
            client,
            dead_letters,
            metrics,
            args,
            open: None,
            pending: None,
            rewind_to: HashMap::new(),
            answers_tx,
            answers_rx,
            next_call_id: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Forwards until `shutdown` is cancelled, then waits briefly for the last acknowledgements
    /// and commits them.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ForwardError> {
        loop {
            let close_at = self
                .open
                .as_ref()
                .map(|call| call.opened + self.args.ack_interval);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some((id, answer)) = self.answers_rx.recv() => {
                    self.on_answer(id, answer, &shutdown).await;
                }
                () = sleep_until(close_at) => self.close_open_call(),
                // A new call may start only once the gateway has answered the previous one: the
                // gateway takes each partition's events in order, and two calls in flight at once
                // could be read interleaved.
                message = self.consumer.recv(), if self.pending.is_none() => {
                    let first = match message {
                        Ok(message) => message,
                        Err(error) => {
                            tracing::warn!(%error, "Kafka consumer error");
                            continue;
                        }
                    };
                    // Owned copies: the loop needs the consumer again while they are in use.
                    let mut batch = vec![first.detach()];
                    while batch.len() < self.args.batch_max as usize {
                        match self.consumer.recv().now_or_never() {
                            Some(Ok(message)) => batch.push(message.detach()),
                            Some(Err(error)) => tracing::warn!(%error, "Kafka consumer error"),
                            None => break,
                        }
                    }
                    if let Err(reason) = self.forward(&batch).await {
                        self.rewind(&reason, &shutdown).await;
                    }
                }
            }
        }
        self.drain().await;
        Ok(())
    }

    /// Sends one batch of records: events to the open call, bad records to the dead letters.
    /// On `Err`, the batch was not (fully) handed over and the caller rewinds.
    async fn forward(&mut self, batch: &[OwnedMessage]) -> Result<(), String> {
        let mut events = Vec::with_capacity(batch.len());
        let mut handled = Vec::with_capacity(batch.len());
        for message in batch {
            let partition = (message.topic().to_owned(), message.partition());
            self.rewind_to
                .entry(partition.clone())
                .or_insert(message.offset());
            self.metrics
                .consumed
                .get_or_create(&TopicLabels {
                    topic: message.topic().to_owned(),
                })
                .inc();
            match decode(&raw_record(message), self.args.max_value_bytes) {
                Ok(event) => events.push(event),
                Err(error) => {
                    tracing::warn!(
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        %error,
                        "record is not an event; sending it to the dead-letter topic"
                    );
                    self.dead_letters
                        .send(message, &error)
                        .await
                        .map_err(|e| format!("dead-letter topic refused a record: {e}"))?;
                    self.metrics
                        .dead_lettered
                        .get_or_create(&DeadLetterLabels {
                            topic: message.topic().to_owned(),
                            reason: error.reason().to_owned(),
                        })
                        .inc();
                }
            }
            handled.push((partition, message.offset()));
        }

        let call = self.open_call();
        let requests = call.requests.clone();
        for chunk in chunks_by_size(events, self.args.batch_max as usize) {
            requests
                .send(PublishRequest { events: chunk })
                .await
                .map_err(|_| "the Publish call ended early".to_owned())?;
        }
        // Only now is every record of the batch in the call, so its answer covers them.
        if let Some(call) = self.open.as_mut() {
            for (partition, offset) in handled {
                call.positions.insert(partition, offset);
            }
        }
        Ok(())
    }

    /// The open call, opening one when there is none.
    fn open_call(&mut self) -> &mut OpenCall {
        let client = &self.client;
        let answers = &self.answers_tx;
        let next_id = &mut self.next_call_id;
        self.open.get_or_insert_with(|| {
            *next_id += 1;
            let id = *next_id;
            let (requests, stream) = mpsc::channel(REQUEST_QUEUE);
            let mut client = client.clone();
            let answers = answers.clone();
            let task = tokio::spawn(async move {
                let answer = client
                    .publish(ReceiverStream::new(stream))
                    .await
                    .map(tonic::Response::into_inner);
                // The loop may have moved on (rewound); then nobody listens and that is fine.
                let _ = answers.send((id, answer));
            });
            OpenCall {
                id,
                requests,
                opened: Instant::now(),
                positions: Positions::new(),
                task,
            }
        })
    }

    /// Ends the open call's request stream, so the gateway answers it.
    fn close_open_call(&mut self) {
        if let Some(call) = self.open.take() {
            // Dropping the sender ends the client stream.
            self.pending = Some(PendingCall {
                id: call.id,
                positions: call.positions,
                task: call.task,
            });
        }
    }

    async fn on_answer(
        &mut self,
        id: u64,
        answer: Result<PublishResponse, Status>,
        shutdown: &CancellationToken,
    ) {
        let pending = self.pending.as_ref().is_some_and(|call| call.id == id);
        let open = self.open.as_ref().is_some_and(|call| call.id == id);
        match answer {
            // Answers of calls dropped by a rewind arrive too; they are nobody's now.
            _ if !pending && !open => {}
            Ok(response) if pending => self.acknowledge(&response),
            // The gateway ended a call we had not closed: it is going away.
            Ok(_) => self.rewind("gateway ended the call early", shutdown).await,
            Err(status) => {
                self.rewind(&format!("Publish failed: {status}"), shutdown)
                    .await;
            }
        }
    }

    /// The gateway took the pending call: its offsets may be committed.
    fn acknowledge(&mut self, response: &PublishResponse) {
        if let Some(call) = self.pending.take() {
            self.metrics.acknowledged.inc_by(response.accepted);
            self.store(&call.positions);
            self.backoff = FIRST_BACKOFF;
        }
    }

    /// Marks offsets as done so the next (auto-)commit takes them.
    fn store(&mut self, positions: &Positions) {
        if positions.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::with_capacity(positions.len());
        for ((topic, partition), offset) in positions {
            self.rewind_to
                .insert((topic.clone(), *partition), offset + 1);
            if let Err(error) =
                list.add_partition_offset(topic, *partition, Offset::Offset(offset + 1))
            {
                tracing::warn!(%error, topic, partition, "cannot record an offset");
            }
        }
        if let Err(error) = self.consumer.store_offsets(&list) {
            // After a rebalance the partition may belong to another consumer: it resumes from
            // the last commit, and the gateway drops what it already saw.
            tracing::debug!(%error, "offsets not stored");
        }
    }

    /// Drops every call in flight, goes back to the last acknowledged offsets and waits before
    /// the next attempt.
    async fn rewind(&mut self, reason: &str, shutdown: &CancellationToken) {
        self.metrics.publish_failures.inc();
        self.metrics.rewinds.inc();
        tracing::warn!(reason, retry_in = ?self.backoff, "gateway unavailable; rewinding");
        if let Some(call) = self.open.take() {
            call.task.abort();
        }
        if let Some(call) = self.pending.take() {
            call.task.abort();
        }
        match self.consumer.assignment() {
            Ok(assignment) => {
                let mut seek = TopicPartitionList::new();
                for element in assignment.elements() {
                    let key = (element.topic().to_owned(), element.partition());
                    if let Some(offset) = self.rewind_to.get(&key) {
                        let _ = seek.add_partition_offset(&key.0, key.1, Offset::Offset(*offset));
                    }
                }
                if seek.count() > 0
                    && let Err(error) = self.consumer.seek_partitions(seek, Duration::from_secs(10))
                {
                    tracing::error!(%error, "cannot rewind partitions");
                }
            }
            Err(error) => tracing::error!(%error, "cannot read the partition assignment"),
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(self.backoff) => {}
        }
        self.backoff = (self.backoff * 2).min(self.args.max_backoff);
    }

    /// On shutdown: close the open call, take the answers that come in time, commit.
    async fn drain(&mut self) {
        self.close_open_call();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while let Some(id) = self.pending.as_ref().map(|call| call.id) {
            match tokio::time::timeout_at(deadline, self.answers_rx.recv()).await {
                Ok(Some((answered, Ok(response)))) if answered == id => self.acknowledge(&response),
                Ok(Some((answered, Err(status)))) if answered == id => {
                    tracing::warn!(%status, "last Publish failed; its events will be read again");
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        if let Some(call) = self.pending.take() {
            call.task.abort();
        }
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(%error, "nothing committed at shutdown");
        }
        tracing::info!("consumer stopped");
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Splits events into requests of at most `max_events` events and about [`MAX_REQUEST_BYTES`].
fn chunks_by_size(events: Vec<Event>, max_events: usize) -> Vec<Vec<Event>> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for event in events {
        let size = event.encoded_len();
        if !chunk.is_empty() && (chunk.len() >= max_events || bytes + size > MAX_REQUEST_BYTES) {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += size;
        chunk.push(event);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_count_and_size() {
        let small = |offset| Event {
            offset,
            ..Default::default()
        };
        let chunks = chunks_by_size((0..10).map(small).collect(), 4);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        let offsets: Vec<i64> = chunks.iter().flatten().map(|e| e.offset).collect();
        assert_eq!(offsets, (0..10).collect::<Vec<_>>(), "order is kept");

        let big = |offset| Event {
            offset,
            key: "x".repeat(MAX_REQUEST_BYTES / 2),
            ..Default::default()
        };
        let chunks = chunks_by_size((0..3).map(big).collect(), 100);
        assert_eq!(chunks.len(), 3);
        assert!(chunks_by_size(Vec::new(), 4).is_empty());
    }
}
