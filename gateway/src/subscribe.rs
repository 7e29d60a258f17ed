//! `StreamService.Subscribe` for native gRPC and grpc-web clients (tonic-web translates the
//! latter in front of this same service).
//!
//! The route is written by hand rather than generated, so that events go out as the bytes
//! every subscriber shares ([`SharedEvent::protobuf`](crate::event::SharedEvent::protobuf)):
//! [`codec::PreEncoded`] writes them as they are, with small buffers. It keeps the generated
//! service's name and path, so reflection, health, tonic-web and grpcurl see no difference.

pub mod codec;

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::{Stream, future::BoxFuture};
use prost::Message;
use streamweaver_proto::v1::SubscribeRequest;
use tonic::{Request, Response, Status, server::NamedService};

use crate::{
    auth::{self, SubscriberAuth},
    hub::{Ended, Hub, Outgoing, RequestError},
    metrics::{Metrics, Transport},
};

/// Largest `SubscribeRequest` accepted: a request is small, even with 1024 resume positions.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The generated service's name, kept.
pub const SERVICE_NAME: &str = "streamweaver.v1.StreamService";
const SUBSCRIBE_PATH: &str = "/streamweaver.v1.StreamService/Subscribe";

/// The stream of one subscription, as encoded responses.
pub type SubscribeStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

/// The subscribe endpoint.
pub struct Subscriptions {
    hub: Arc<Hub>,
    metrics: Metrics,
    auth: Arc<SubscriberAuth>,
    limit: usize,
}

impl Subscriptions {
    /// Subscriptions to `hub`, allowed by `auth`; at most `limit` at once.
    pub fn new(hub: Arc<Hub>, metrics: Metrics, auth: Arc<SubscriberAuth>, limit: usize) -> Self {
        Self {
            hub,
            metrics,
            auth,
            limit,
        }
    }

    /// Refuses a new subscriber when the gateway already has `limit`.
    pub fn check_capacity(&self, transport: Transport) -> Result<(), Status> {
        if self.metrics.connected() >= self.limit {
            self.metrics
                .refuse(transport.name(), "too_many_subscribers");
            return Err(Status::resource_exhausted(format!(
                "the gateway has its maximum of {} subscribers",
                self.limit
            )));
        }
        Ok(())
    }

    /// Checks and starts one subscription.
    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<SubscribeStream>, Status> {
        let transport = request
            .extensions()
            .get::<Transport>()
            .copied()
            .unwrap_or(Transport::Grpc);
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
        self.check_capacity(transport)?;
        let subscription = self
            .hub
            .subscribe(&request, transport)
            .await
            .map_err(|error| status_of_refusal(&error))?;
        tracing::debug!(
            transport = transport.name(),
            subject = grant.subject(),
            "subscriber joined"
        );
        // The stream is dropped, and with it the subscription, as soon as the client leaves.
        let stream = futures::stream::unfold(Some(subscription), |subscription| async move {
            let mut subscription = subscription?;
            match subscription.next().await {
                Ok(Outgoing::Event(event)) => {
                    Some((Ok(event.protobuf().clone()), Some(subscription)))
                }
                Ok(Outgoing::Message(message)) => {
                    Some((Ok(Bytes::from(message.encode_to_vec())), Some(subscription)))
                }
                // The status ends the stream; the subscription leaves the hub at once.
                Err(ended) => Some((Err(status_of(&ended)), None)),
            }
        });
        let stream = auth::until_expiry(stream, &grant, self.metrics.clone(), transport.name());
        Ok(Response::new(Box::pin(stream)))
    }
}

/// How a gRPC stream ends when its subscription does.
pub fn status_of(ended: &Ended) -> Status {
    match ended {
        Ended::ShuttingDown => Status::unavailable("gateway is shutting down"),
        Ended::TooSlow => Status::resource_exhausted(
            "subscriber fell behind (slow-client policy DISCONNECT); resume from the last positions",
        ),
        Ended::ReplayUnavailable(message) => Status::unavailable(message.clone()),
    }
}

/// How a refused subscribe request is answered: `INVALID_ARGUMENT` saying what is wrong (and,
/// for a filter expression, where), or `UNAVAILABLE` when the expression could not be checked
/// now.
pub fn status_of_refusal(error: &RequestError) -> Status {
    if error.is_unavailable() {
        Status::unavailable(error.to_string())
    } else {
        Status::invalid_argument(error.to_string())
    }
}

/// Marks a grpc-web request before tonic-web turns it into plain gRPC (it rewrites the
/// `content-type`), so that the route counts it as grpc-web; goes in front of tonic-web.
pub fn mark_grpc_web<B>(mut request: http::Request<B>) -> http::Request<B> {
    if transport_of(request.headers()) == Transport::GrpcWeb {
        request.extensions_mut().insert(Transport::GrpcWeb);
    }
    request
}

/// grpc-web clients announce themselves by `content-type` (and browsers' by `x-grpc-web`).
fn transport_of(headers: &http::HeaderMap) -> Transport {
    let grpc_web = headers.contains_key("x-grpc-web")
        || headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc-web"));
    if grpc_web {
        Transport::GrpcWeb
    } else {
        Transport::Grpc
    }
}

/// `StreamService` as a tower service: the hand-written route.
#[derive(Clone)]
pub struct StreamServiceRoute {
    subscriptions: Arc<Subscriptions>,
}

impl StreamServiceRoute {
    /// The route to `subscriptions`.
    pub fn new(subscriptions: Arc<Subscriptions>) -> Self {
        Self { subscriptions }
    }
}

impl NamedService for StreamServiceRoute {
    const NAME: &'static str = SERVICE_NAME;
}

/// The one method, as tonic's server-streaming handler sees it.
struct SubscribeMethod(Arc<Subscriptions>);

impl tonic::server::ServerStreamingService<SubscribeRequest> for SubscribeMethod {
    type Response = Bytes;
    type ResponseStream = SubscribeStream;
    type Future = BoxFuture<'static, Result<Response<SubscribeStream>, Status>>;

    fn call(&mut self, request: Request<SubscribeRequest>) -> Self::Future {
        let subscriptions = self.0.clone();
        Box::pin(async move { subscriptions.subscribe(request).await })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for StreamServiceRoute {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let subscriptions = self.subscriptions.clone();
        if request.uri().path() != SUBSCRIBE_PATH {
            return Box::pin(
                async move { Ok(Status::unimplemented("no such method").into_http()) },
            );
        }
        let mut request = request;
        let transport = request
            .extensions()
            .get::<Transport>()
            .copied()
            .unwrap_or_else(|| transport_of(request.headers()));
        request.extensions_mut().insert(transport);
        Box::pin(async move {
            let metrics = subscriptions.metrics.clone();
            let mut grpc = tonic::server::Grpc::new(codec::PreEncoded)
                .apply_max_message_size_config(Some(MAX_REQUEST_BYTES), None);
            let response = grpc
                .server_streaming(SubscribeMethod(subscriptions), request)
                .await;
            Ok(refuse_oversize(response, transport, &metrics))
        })
    }
}

/// tonic refuses an oversize request with its own words; say it plainly, and count it.
fn refuse_oversize(
    response: http::Response<tonic::body::Body>,
    transport: Transport,
    metrics: &Metrics,
) -> http::Response<tonic::body::Body> {
    let status = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok());
    if status != Some(tonic::Code::OutOfRange as i32) {
        return response;
    }
    metrics.refuse(transport.name(), "request_too_large");
    Status::out_of_range(format!(
        "a SubscribeRequest may be at most {MAX_REQUEST_BYTES} bytes"
    ))
    .into_http()
}
