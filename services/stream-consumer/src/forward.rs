//! The forwarding loop: Kafka records in, client-streaming `Publish` calls out, offsets stored
//! only once everything before them is done (at-least-once).
//!
//! Events go to the gateway as soon as they are read; a call is closed every `--ack-interval` so
//! the gateway's answer acknowledges what it carried, and the next call opens once that answer is
//! in (a pause of one round trip), so no two calls carry events at once. The answer must cover,
//! per partition, the highest offset sent: a partition it falls short on is counted, logged and
//! read again from its last stored offset. Bad records go to the dead-letter topic without
//! waiting for each delivery; a partition's offset is stored only once the gateway acknowledged
//! the events before it and the dead letters before it are delivered ([`Partitions`] keeps that
//! account, per assignment, only ever upwards). When a call fails, every partition goes back to
//! its last stored offset and the consumer reconnects with backoff; the gateway drops what it had
//! already seen, so nothing shows twice.
//!
//! Group rebalances reach the loop through the consumer's context ([`crate::rebalance`]): a
//! revoked partition's state is forgotten, and what was acknowledged for it is committed before
//! it goes. So do partitions found read past their log end ([`crate::log_end`]: a topic
//! recreated under the consumer): each starts over from the new log's beginning. Every librdkafka
//! call that may wait runs on a blocking thread, never on this task.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::FutureExt;
use prost::Message as _;
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer},
    error::{KafkaError, KafkaResult},
    message::{BorrowedMessage, Message, OwnedMessage},
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

use streamweaver_common::{
    decode::decode,
    kafka::{blocking, raw_record},
};

use crate::{
    config::ConsumerArgs,
    dead_letter::{DeadLetters, Delivered, Ticket},
    log_end::PastLogEnd,
    metrics::{Metrics, TopicLabels},
    partitions::{Carried, Partitions, TopicPartition},
    rebalance::{GroupChange, KafkaConsumer, Received},
};

/// Largest encoded size of one PublishRequest (the gateway accepts 4 MiB by default).
const MAX_REQUEST_BYTES: usize = 2 << 20;
/// How many PublishRequests may wait for the gateway before reading from Kafka pauses.
const REQUEST_QUEUE: usize = 16;
/// First wait after a failed call; doubles up to `--max-backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How long a closed call may wait for the gateway's answer before it counts as failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a seek may take.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a seek is tried before the loop gives up.
const SEEK_ATTEMPTS: u32 = 3;
/// How long shutdown waits for the last acknowledgements and dead-letter deliveries.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

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
    carried: Carried,
    task: JoinHandle<()>,
}

/// A closed call waiting for the gateway's answer (there is at most one).
struct PendingCall {
    id: u64,
    carried: Carried,
    closed: Instant,
    task: JoinHandle<()>,
}

/// Why forwarding stopped.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Kafka failed in a way the loop cannot recover from.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A partition could not be taken back to where it must be read again; going on would skip
    /// records, so the consumer stops and its successor resumes from the commits.
    #[error("cannot rewind {partition} to offset {offset}: {reason}")]
    Rewind {
        /// Which partition.
        partition: TopicPartition,
        /// Where it had to go.
        offset: i64,
        /// What librdkafka said.
        reason: String,
    },
}

/// The state of the forwarding loop.
pub struct Forwarder {
    consumer: Arc<KafkaConsumer>,
    changes: mpsc::UnboundedReceiver<GroupChange>,
    past_end: mpsc::UnboundedReceiver<Vec<PastLogEnd>>,
    client: GatewayClient,
    dead_letters: DeadLetters,
    partitions: Partitions,
    metrics: Metrics,
    args: ConsumerArgs,
    open: Option<OpenCall>,
    pending: Option<PendingCall>,
    answers_tx: mpsc::UnboundedSender<(u64, Result<PublishResponse, Status>)>,
    answers_rx: mpsc::UnboundedReceiver<(u64, Result<PublishResponse, Status>)>,
    next_call_id: u64,
    backoff: Duration,
}

impl Forwarder {
    /// A loop reading from `consumer` (already subscribed, what its context hands over
    /// arriving on `received`) and publishing through `client`.
    pub fn new(
        consumer: Arc<KafkaConsumer>,
        received: Received,
        client: GatewayClient,
        dead_letters: DeadLetters,
        metrics: Metrics,
        args: ConsumerArgs,
    ) -> Self {
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        Self {
            consumer,
            changes: received.changes,
            past_end: received.past_end,
            client,
            dead_letters,
            partitions: Partitions::default(),
            metrics,
            args,
            open: None,
            pending: None,
            answers_tx,
            answers_rx,
            next_call_id: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Forwards until `shutdown` is cancelled, then waits briefly for the last acknowledgements
    /// and dead-letter deliveries, commits, and closes the consumer.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ForwardError> {
        let result = self.forward_until(&shutdown).await;
        self.drain().await;
        result
    }

    async fn forward_until(&mut self, shutdown: &CancellationToken) -> Result<(), ForwardError> {
        let consumer = Arc::clone(&self.consumer);
        loop {
            let close_at = self
                .open
                .as_ref()
                .map(|call| call.opened + self.args.ack_interval);
            let answer_due = self
                .pending
                .as_ref()
                .map(|call| call.closed + ANSWER_TIMEOUT);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                Some(change) = self.changes.recv() => self.on_group_change(change).await,
                Some(past_end) = self.past_end.recv() => self.on_past_log_end(past_end).await,
                Some((id, answer)) = self.answers_rx.recv() => {
                    self.on_answer(id, answer, shutdown).await?;
                }
                delivered = self.dead_letters.delivered() => self.on_dead_letters(delivered).await?,
                () = sleep_until(close_at) => self.close_open_call(),
                () = sleep_until(answer_due) => {
                    self.metrics.publish_failures.inc();
                    self.rewind_all("the gateway did not answer in time", shutdown).await?;
                }
                // A new call may start only once the gateway has answered the previous one: the
                // gateway takes each partition's events in order, and two calls in flight at once
                // could be read interleaved.
                message = consumer.recv(), if self.pending.is_none() => {
                    let batch = read_batch(
                        &consumer,
                        message,
                        self.args.batch_max as usize,
                        &self.changes,
                    )?;
                    if !batch.is_empty()
                        && let Err(reason) = self.forward(&batch).await
                    {
                        self.rewind_all(&reason, shutdown).await?;
                    }
                }
            }
        }
    }

    /// Sends one batch of records: events to the open call, bad records to the dead letters.
    /// On `Err`, the batch was not (fully) handed over and the caller rewinds.
    async fn forward(&mut self, batch: &[OwnedMessage]) -> Result<(), String> {
        let mut events = Vec::with_capacity(batch.len());
        let mut carried = Vec::with_capacity(batch.len());
        for message in batch {
            self.metrics
                .consumed
                .get_or_create(&TopicLabels {
                    topic: message.topic().to_owned(),
                })
                .inc();
            let partition = TopicPartition::new(message.topic(), message.partition());
            let offset = message.offset();
            let Some(epoch) = self.partitions.read(&partition, offset) else {
                tracing::debug!(%partition, offset, "record of a partition no longer owned");
                continue;
            };
            match decode(&raw_record(message), self.args.max_value_bytes) {
                Ok(event) => {
                    events.push(event);
                    carried.push((partition, epoch, offset, true));
                }
                Err(error) => {
                    let ticket = Ticket::new(partition.clone(), offset, epoch);
                    self.dead_letters
                        .send(message, &error, ticket)
                        .await
                        .map_err(|e| format!("dead-letter topic refused a record: {e}"))?;
                    self.partitions.dead_letter_sent(&partition, offset, epoch);
                    carried.push((partition, epoch, offset, false));
                }
            }
        }
        if carried.is_empty() {
            return Ok(());
        }

        // Even a batch of dead letters only goes through a call: its answer says the events
        // before them in their partitions were acknowledged.
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
            for (partition, epoch, offset, event) in carried {
                call.carried.record(&partition, epoch, offset, event);
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
                carried: Carried::default(),
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
                carried: call.carried,
                closed: Instant::now(),
                task: call.task,
            });
        }
    }

    async fn on_answer(
        &mut self,
        id: u64,
        answer: Result<PublishResponse, Status>,
        shutdown: &CancellationToken,
    ) -> Result<(), ForwardError> {
        let pending = self.pending.as_ref().is_some_and(|call| call.id == id);
        let open = self.open.as_ref().is_some_and(|call| call.id == id);
        let reason = match answer {
            // Answers of calls dropped by a rewind arrive too; they are nobody's now.
            _ if !pending && !open => return Ok(()),
            Ok(response) if pending => {
                if self.acknowledge(&response).await? {
                    self.backoff = FIRST_BACKOFF;
                } else {
                    self.wait_backoff(shutdown).await;
                }
                return Ok(());
            }
            // The gateway ended a call we had not closed: it is going away.
            Ok(_) => "gateway ended the call early".to_owned(),
            Err(status) => format!("Publish failed: {status}"),
        };
        self.metrics.publish_failures.inc();
        self.rewind_all(&reason, shutdown).await
    }

    /// The gateway answered the pending call: stores what it covers, rewinds the partitions it
    /// fell short on. `Ok(false)` when it fell short on any.
    async fn acknowledge(&mut self, response: &PublishResponse) -> Result<bool, ForwardError> {
        let Some(call) = self.pending.take() else {
            return Ok(true);
        };
        self.metrics.acknowledged.inc_by(response.accepted);
        let outcome = self
            .partitions
            .acknowledge(&call.carried, &response.acknowledged);
        self.store(outcome.store).await;
        let complete = outcome.short.is_empty();
        let mut targets = Vec::new();
        for short in outcome.short {
            self.metrics
                .short_acknowledgements
                .get_or_create(&TopicLabels {
                    topic: short.partition.topic.clone(),
                })
                .inc();
            self.metrics.rewinds.inc();
            tracing::warn!(
                partition = %short.partition,
                sent = short.sent,
                acknowledged = ?short.acknowledged,
                rewind_to = ?short.rewind_to,
                "the gateway acknowledged less than was sent; reading the partition again"
            );
            if let Some(offset) = short.rewind_to {
                targets.push((short.partition, offset));
            }
        }
        self.seek(targets).await?;
        Ok(complete)
    }

    /// Dead letters came back: stores what they complete, rewinds where one failed. Takes every
    /// delivery that is ready at once, so a burst costs one store.
    async fn on_dead_letters(&mut self, first: Delivered) -> Result<(), ForwardError> {
        let mut store = HashMap::new();
        let mut rewind = HashMap::new();
        let mut next = Some(first);
        while let Some(Delivered { ticket, result }) = next {
            let Ticket {
                partition,
                offset,
                epoch,
                ..
            } = ticket;
            match result {
                Ok(()) => {
                    if let Some(stored) = self
                        .partitions
                        .dead_letter_delivered(&partition, offset, epoch)
                    {
                        store.insert(partition, stored);
                    }
                }
                Err(_) => {
                    if let Some(target) = self
                        .partitions
                        .dead_letter_failed(&partition, offset, epoch)
                    {
                        self.metrics.rewinds.inc();
                        rewind.insert(partition, target);
                    }
                }
            }
            next = self.dead_letters.ready();
        }
        self.store(store.into_iter().collect()).await;
        self.seek(rewind.into_iter().collect()).await
    }

    /// Hands a rebalance to librdkafka once this member's side of it is settled.
    async fn on_group_change(&mut self, change: GroupChange) {
        let partitions = change.partitions();
        let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
        let applied = match change {
            GroupChange::Assign(_) => {
                tracing::info!(partitions = ?names, "partitions assigned");
                self.partitions.assign(partitions);
                blocking(&self.consumer, move |consumer| change.apply(consumer)).await
            }
            GroupChange::Revoke(_) => {
                // Forget first: answers and deliveries still on their way no longer count.
                let commits = self.partitions.revoke(&partitions);
                tracing::info!(partitions = ?names, committing = commits.len(), "partitions revoked");
                let commits = offsets_list(&commits);
                blocking(&self.consumer, move |consumer| {
                    if commits.count() > 0
                        && !consumer.assignment_lost()
                        && let Err(error) = consumer.commit(&commits, CommitMode::Sync)
                    {
                        tracing::warn!(%error, "cannot commit revoked partitions");
                    }
                    change.apply(consumer)
                })
                .await
            }
        };
        match applied {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "cannot apply a rebalance"),
            Err(error) => tracing::error!(%error, "applying a rebalance failed"),
        }
        self.metrics
            .partitions_owned
            .set(self.partitions.len() as i64);
    }

    /// Partitions read past their log end (their topic was recreated): each starts over from
    /// the new log's beginning, as if newly assigned. The gateway, seeing their offsets go back,
    /// asks Kafka, finds the old events gone and tells subscribers their positions were reset.
    async fn on_past_log_end(&mut self, past_end: Vec<PastLogEnd>) {
        let mut list = TopicPartitionList::with_capacity(past_end.len());
        for PastLogEnd {
            partition,
            next_offset,
            log_end,
        } in past_end
        {
            if !self.partitions.restart(&partition) {
                continue;
            }
            tracing::warn!(%partition, next_offset, log_end, "the partition's log ends before where it is read (its topic was recreated?); reading it again from its start");
            self.metrics
                .log_restarts
                .get_or_create(&TopicLabels {
                    topic: partition.topic.clone(),
                })
                .inc();
            if let Err(error) =
                list.add_partition_offset(&partition.topic, partition.partition, Offset::Beginning)
            {
                tracing::warn!(%error, %partition, "cannot list a partition to restart");
            }
        }
        if list.count() == 0 {
            return;
        }
        let sought = blocking(&self.consumer, move |consumer| {
            consumer.seek_partitions(list, SEEK_TIMEOUT)
        })
        .await;
        let failed: Vec<String> = match sought {
            Ok(Ok(result)) => result
                .elements()
                .iter()
                .filter_map(|element| {
                    let error = element.error().err()?;
                    Some(format!(
                        "{}/{}: {error}",
                        element.topic(),
                        element.partition()
                    ))
                })
                .collect(),
            Ok(Err(error)) => vec![error.to_string()],
            Err(error) => vec![error.to_string()],
        };
        // The next report finds a partition still past its end and this is tried again.
        for failure in failed {
            tracing::warn!(failure, "cannot send a partition back to its start");
        }
    }

    /// Marks offsets as done so the next (auto-)commit takes them.
    async fn store(&self, offsets: Vec<(TopicPartition, i64)>) {
        if offsets.is_empty() {
            return;
        }
        let list = offsets_list(&offsets);
        match blocking(&self.consumer, move |consumer| {
            consumer.store_offsets(&list)
        })
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "offsets not stored"),
            Err(error) => tracing::error!(%error, "storing offsets failed"),
        }
    }

    /// Takes partitions back to where they must be read again, trying a few times. A partition
    /// that cannot be would skip records, so that stops the loop.
    async fn seek(&self, targets: Vec<(TopicPartition, i64)>) -> Result<(), ForwardError> {
        let mut left = targets;
        for attempt in 1..=SEEK_ATTEMPTS {
            if left.is_empty() {
                break;
            }
            let mut failed = self.seek_once(&left).await;
            for (partition, offset, reason) in &failed {
                tracing::warn!(%partition, offset, reason, attempt, "cannot rewind a partition");
            }
            if attempt == SEEK_ATTEMPTS
                && let Some((partition, offset, reason)) = failed.pop()
            {
                return Err(ForwardError::Rewind {
                    partition,
                    offset,
                    reason,
                });
            }
            if !failed.is_empty() {
                tokio::time::sleep(FIRST_BACKOFF).await;
            }
            left = failed
                .into_iter()
                .map(|(partition, offset, _)| (partition, offset))
                .collect();
        }
        Ok(())
    }

    /// One seek of `targets`; returns those that failed, and why.
    async fn seek_once(
        &self,
        targets: &[(TopicPartition, i64)],
    ) -> Vec<(TopicPartition, i64, String)> {
        let list = offsets_list(targets);
        let sought = blocking(&self.consumer, move |consumer| {
            consumer.seek_partitions(list, SEEK_TIMEOUT)
        })
        .await;
        let all_failed = |reason: String| {
            targets
                .iter()
                .map(|(partition, offset)| (partition.clone(), *offset, reason.clone()))
                .collect()
        };
        match sought {
            Ok(Ok(result)) => result
                .elements()
                .iter()
                .filter_map(|element| {
                    let error = element.error().err()?;
                    let partition = TopicPartition::new(element.topic(), element.partition());
                    let offset = element.offset().to_raw().unwrap_or_default();
                    Some((partition, offset, error.to_string()))
                })
                .collect(),
            Ok(Err(error)) => all_failed(error.to_string()),
            Err(error) => all_failed(error.to_string()),
        }
    }

    /// Drops every call in flight, takes every partition back to its last stored offset and
    /// waits before the next attempt.
    async fn rewind_all(
        &mut self,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> Result<(), ForwardError> {
        self.metrics.rewinds.inc();
        tracing::warn!(reason, retry_in = ?self.backoff, "rewinding to the last stored offsets");
        if let Some(call) = self.open.take() {
            call.task.abort();
        }
        if let Some(call) = self.pending.take() {
            call.task.abort();
        }
        let targets = self.partitions.rewind_all();
        self.seek(targets).await?;
        self.wait_backoff(shutdown).await;
        Ok(())
    }

    /// Waits the current backoff (or until shutdown) and doubles it.
    async fn wait_backoff(&mut self, shutdown: &CancellationToken) {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(self.backoff) => {}
        }
        self.backoff = (self.backoff * 2).min(self.args.max_backoff);
    }

    /// On shutdown: close the open call, take the answers and deliveries that come in time,
    /// commit, and close the consumer and the producer off the async workers.
    async fn drain(mut self) {
        self.close_open_call();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.pending.is_some() || self.dead_letters.in_flight() > 0 {
            let pending_id = self.pending.as_ref().map(|call| call.id);
            let step = tokio::select! {
                Some((id, answer)) = self.answers_rx.recv() => match answer {
                    Ok(response) if Some(id) == pending_id => {
                        self.acknowledge(&response).await.map(|_| ())
                    }
                    Err(status) if Some(id) == pending_id => {
                        tracing::warn!(%status, "last Publish failed; its events will be read again");
                        self.pending = None;
                        Ok(())
                    }
                    _ => Ok(()),
                },
                delivered = self.dead_letters.delivered() => self.on_dead_letters(delivered).await,
                () = tokio::time::sleep_until(deadline) => break,
            };
            if let Err(error) = step {
                tracing::warn!(%error, "while stopping");
            }
        }
        if let Some(call) = self.pending.take() {
            call.task.abort();
        }
        if self.dead_letters.in_flight() > 0 {
            tracing::warn!(
                undelivered = self.dead_letters.in_flight(),
                "dead letters not delivered at shutdown; their records will be read again"
            );
        }
        // From here on the consumer's context applies rebalances itself (closing revokes).
        drop(self.changes);
        let consumer = self.consumer;
        let producer = self.dead_letters.into_producer();
        let closed = tokio::task::spawn_blocking(move || {
            if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(%error, "nothing committed at shutdown");
            }
            drop(consumer);
            drop(producer);
        })
        .await;
        if let Err(error) = closed {
            tracing::error!(%error, "closing the Kafka clients failed");
        }
        tracing::info!("consumer stopped");
    }
}

/// The first record and whatever else is ready, up to `max`, as owned copies (the loop needs
/// the consumer again while they are in use). Stops early at a rebalance so a batch does not
/// straddle it. Only a fatal error is returned; others are logged.
fn read_batch(
    consumer: &KafkaConsumer,
    first: KafkaResult<BorrowedMessage<'_>>,
    max: usize,
    changes: &mpsc::UnboundedReceiver<GroupChange>,
) -> Result<Vec<OwnedMessage>, KafkaError> {
    let mut batch = Vec::new();
    let mut next = Some(first);
    while let Some(message) = next {
        match message {
            Ok(message) => batch.push(message.detach()),
            Err(error @ KafkaError::MessageConsumptionFatal(_)) => return Err(error),
            Err(error) => tracing::warn!(%error, "Kafka consumer error"),
        }
        if batch.len() >= max || !changes.is_empty() {
            break;
        }
        next = consumer.recv().now_or_never();
    }
    Ok(batch)
}

/// A partition list with an offset for each.
fn offsets_list(offsets: &[(TopicPartition, i64)]) -> TopicPartitionList {
    let mut list = TopicPartitionList::with_capacity(offsets.len());
    for (partition, offset) in offsets {
        if let Err(error) = list.add_partition_offset(
            &partition.topic,
            partition.partition,
            Offset::Offset(*offset),
        ) {
            tracing::warn!(%error, %partition, offset, "cannot list an offset");
        }
    }
    list
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
