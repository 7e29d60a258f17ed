//! `StreamService.Subscribe` for native gRPC and grpc-web clients (tonic-web translates the
//! latter in front of this same service).

use std::{pin::Pin, sync::Arc};

use futures::Stream;
use streamweaver_proto::v1::{
    SubscribeRequest, SubscribeResponse, stream_service_server::StreamService,
};
use tonic::{Request, Response, Status};

use crate::{
    expr::Expressions,
    filter::Filter,
    hub::Hub,
    ingest::RequireBearer,
    metrics::{Metrics, Transport},
};

/// The stream of one subscription as tonic sends it.
pub type SubscribeStream = Pin<Box<dyn Stream<Item = Result<SubscribeResponse, Status>> + Send>>;

/// The subscribe endpoint.
pub struct Subscriptions {
    hub: Arc<Hub>,
    metrics: Metrics,
    auth: Option<RequireBearer>,
    limit: usize,
    expressions: Expressions,
}

impl Subscriptions {
    /// Subscriptions to `hub`; with `auth`, subscribers need its token; at most `limit` at once;
    /// filter expressions compiled once each in `expressions`, for every transport.
    pub fn new(
        hub: Arc<Hub>,
        metrics: Metrics,
        auth: Option<RequireBearer>,
        limit: usize,
        expressions: Expressions,
    ) -> Self {
        Self {
            hub,
            metrics,
            auth,
            limit,
            expressions,
        }
    }

    /// Checks `request` and makes its filter, with its CEL expression compiled (or taken from
    /// the cache); a refusal is counted under `transport` and said as a gRPC status.
    pub async fn filter(
        &self,
        request: &SubscribeRequest,
        transport: Transport,
    ) -> Result<Filter, Status> {
        let refuse = |reason: &'static str, message: String| {
            self.metrics.refuse(transport.name(), reason);
            Status::invalid_argument(message)
        };
        let filter = Filter::from_request(request)
            .map_err(|error| refuse(error.reason(), error.to_string()))?;
        let expression = self
            .expressions
            .get(&request.filter)
            .await
            .map_err(|error| refuse(error.reason(), error.to_string()))?;
        Ok(filter.with_expression(expression))
    }

    /// Subscribers connected now, over every transport.
    pub fn connected(metrics: &Metrics) -> usize {
        use crate::metrics::TransportLabels;
        [
            Transport::Grpc,
            Transport::GrpcWeb,
            Transport::Websocket,
            Transport::Sse,
        ]
        .into_iter()
        .map(|transport| {
            metrics
                .subscribers
                .get_or_create(&TransportLabels { transport })
                .get()
        })
        .sum::<i64>()
        .max(0) as usize
    }

    /// Refuses a new subscriber when the gateway already has `limit`.
    pub fn check_capacity(&self, transport: Transport) -> Result<(), Status> {
        if Self::connected(&self.metrics) >= self.limit {
            self.metrics
                .refuse(transport.name(), "too_many_subscribers");
            return Err(Status::resource_exhausted(format!(
                "the gateway has its maximum of {} subscribers",
                self.limit
            )));
        }
        Ok(())
    }
}

/// grpc-web clients announce themselves; tonic-web keeps the header for the service to see.
fn transport_of<T>(request: &Request<T>) -> Transport {
    let metadata = request.metadata();
    let grpc_web = metadata.get("x-grpc-web").is_some()
        || metadata
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc-web"));
    if grpc_web {
        Transport::GrpcWeb
    } else {
        Transport::Grpc
    }
}

#[tonic::async_trait]
impl StreamService for Subscriptions {
    type SubscribeStream = SubscribeStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let transport = transport_of(&request);
        if let Some(auth) = &self.auth
            && !auth.allows(request.metadata())
        {
            self.metrics.refuse(transport.name(), "unauthenticated");
            return Err(Status::unauthenticated("a valid bearer token is required"));
        }
        self.check_capacity(transport)?;
        let request = request.into_inner();
        let filter = self.filter(&request, transport).await?;
        let subscription = self.hub.subscribe(filter, &request.resume_from, transport);
        tracing::debug!(transport = transport.name(), "subscriber joined");
        // The stream is dropped, and with it the subscription, as soon as the client leaves.
        let stream = futures::stream::unfold(subscription, |mut subscription| async move {
            let response = subscription.next().await?;
            Some((Ok(response), subscription))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
