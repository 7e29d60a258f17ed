//! `StreamService.Subscribe` for native gRPC and grpc-web clients (tonic-web translates the
//! latter in front of this same service).

use std::{pin::Pin, sync::Arc};

use futures::Stream;
use streamweaver_proto::v1::{
    SubscribeRequest, SubscribeResponse, stream_service_server::StreamService,
};
use tonic::{Request, Response, Status};

use crate::{
    auth::{self, SubscriberAuth},
    filter::Filter,
    hub::Hub,
    metrics::{Metrics, Transport},
};

/// The stream of one subscription as tonic sends it.
pub type SubscribeStream = Pin<Box<dyn Stream<Item = Result<SubscribeResponse, Status>> + Send>>;

/// The subscribe endpoint.
pub struct Subscriptions {
    hub: Arc<Hub>,
    metrics: Metrics,
    auth: Arc<SubscriberAuth>,
}

impl Subscriptions {
    /// Subscriptions to `hub`, allowed by `auth`.
    pub fn new(hub: Arc<Hub>, metrics: Metrics, auth: Arc<SubscriberAuth>) -> Self {
        Self { hub, metrics, auth }
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
        let refused = |error: auth::AuthError| {
            self.metrics.refuse(transport.name(), error.reason());
            Status::from(error)
        };
        let grant = self
            .auth
            .check_metadata(request.metadata())
            .map_err(refused)?;
        let mut request = request.into_inner();
        grant.authorize(&mut request).map_err(refused)?;
        let filter = Filter::from_request(&request).map_err(|error| {
            self.metrics.refuse(transport.name(), error.reason());
            Status::invalid_argument(error.to_string())
        })?;
        let subscription = self.hub.subscribe(filter, &request.resume_from, transport);
        tracing::debug!(
            transport = transport.name(),
            subject = grant.subject(),
            "subscriber joined"
        );
        // The stream is dropped, and with it the subscription, as soon as the client leaves.
        let stream = futures::stream::unfold(subscription, |mut subscription| async move {
            let response = subscription.next().await?;
            Some((Ok(response), subscription))
        });
        let stream = auth::until_expiry(stream, &grant, self.metrics.clone(), transport.name());
        Ok(Response::new(Box::pin(stream)))
    }
}
