//! `IngestService.Publish`: the client-streaming call the stream-consumer uses instead of the
//! original Python design's HTTP POST per message. Each message's events are checked into
//! [`SharedEvent`]s and handed to the hub a batch at a time.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use streamweaver_proto::{
    time,
    topics::Topic,
    v1::{Position, PublishRequest, PublishResponse, ingest_service_server::IngestService},
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    event::SharedEvent,
    hub::{Hub, Outcome},
    metrics::Metrics,
};

/// The ingest endpoint.
pub struct Ingest {
    hub: Arc<Hub>,
    metrics: Metrics,
    idle_timeout: Duration,
    shutdown: CancellationToken,
}

impl Ingest {
    /// Ingest into `hub`; a stream silent for `idle_timeout` is ended.
    pub fn new(
        hub: Arc<Hub>,
        metrics: Metrics,
        idle_timeout: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            hub,
            metrics,
            idle_timeout,
            shutdown,
        }
    }
}

#[tonic::async_trait]
impl IngestService for Ingest {
    async fn publish(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<PublishResponse>, Status> {
        let mut stream = request.into_inner();
        let mut response = PublishResponse::default();
        let mut acknowledged: HashMap<(Topic, i32), i64> = HashMap::new();
        loop {
            let message = tokio::select! {
                () = self.shutdown.cancelled() => {
                    // Unacknowledged: the consumer sends these again to the next gateway.
                    return Err(Status::unavailable("gateway is shutting down"));
                }
                message = tokio::time::timeout(self.idle_timeout, stream.message()) => message,
            };
            let batch = match message {
                Err(_) => {
                    self.metrics.refuse("ingest", "idle_timeout");
                    return Err(Status::deadline_exceeded(format!(
                        "Publish stream sent nothing for {:?}",
                        self.idle_timeout
                    )));
                }
                Ok(Err(status)) => {
                    // Oversize or undecodable messages arrive here from tonic's codec.
                    self.metrics.refuse("ingest", "bad_message");
                    return Err(status);
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(batch))) => batch,
            };
            let now = SystemTime::now();
            let mut events = Vec::with_capacity(batch.events.len());
            for event in batch.events {
                if let Some(age) = event.produced_at.as_ref().and_then(|t| time::age(t, now)) {
                    self.metrics.ingest_lag.observe(age.as_secs_f64());
                }
                let (topic, partition, offset) =
                    (event.topic.clone(), event.partition, event.offset);
                match SharedEvent::new(event) {
                    Ok(event) => events.push(event),
                    Err(invalid) => {
                        let reason = invalid.reason();
                        tracing::warn!(%topic, partition, offset, reason, "refused an event");
                        self.metrics.refuse("ingest", reason);
                        response.rejected += 1;
                    }
                }
            }
            let outcomes = self.hub.publish(&events).await;
            for (event, outcome) in events.iter().zip(outcomes) {
                match outcome {
                    Outcome::Accepted => response.accepted += 1,
                    Outcome::Duplicate => response.duplicates += 1,
                    Outcome::Refused(reason) => {
                        self.metrics.refuse("ingest", reason);
                        response.rejected += 1;
                        continue;
                    }
                }
                let highest = acknowledged
                    .entry((event.topic(), event.partition()))
                    .or_insert(event.offset());
                *highest = (*highest).max(event.offset());
            }
        }
        response.acknowledged = acknowledged
            .into_iter()
            .map(|((topic, partition), offset)| Position {
                topic: topic.name().to_owned(),
                partition,
                offset,
            })
            .collect();
        Ok(Response::new(response))
    }
}
