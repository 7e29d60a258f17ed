//! `/ws`: the same subscription, spoken as proto3 JSON over a WebSocket, one message per text
//! frame. The client sends a `SubscribeRequest` (and may send another at any time to change it);
//! the server sends `SubscribeResponse`s. A bad frame gets an `error` response and the socket
//! stays open. Pings find dead peers; a peer that stops reading only ever costs its own queue.
//!
//! A client that asks for the subprotocol [`BATCH_PROTOCOL`] gets each text frame as a JSON array
//! of the `SubscribeResponse`s ready at that moment instead: at thousands of events per second a
//! browser spends far less on a few large frames than on one frame per event.
//!
//! A client that asks for [`PROTOBUF_PROTOCOL`] speaks Protobuf instead, for services and for
//! pages that want to spend less CPU: each `SubscribeResponse` is a binary frame, and so is
//! each `SubscribeRequest` it sends.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{
        Query, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use prost::Message as _;
use serde::Deserialize;
use streamweaver_proto::v1::{
    StreamError, SubscribeRequest, SubscribeResponse, subscribe_response::Kind,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    hub::{Hub, Subscription},
    ingest::constant_time_eq,
    metrics::{Metrics, Transport},
    subscribe::Subscriptions,
};

/// Largest frame a client may send; a `SubscribeRequest` is small.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The subprotocol that asks for JSON arrays of responses, one array per frame.
pub const BATCH_PROTOCOL: &str = "streamweaver.v1.batch";
/// The subprotocol in which requests and responses are Protobuf, one per binary frame.
pub const PROTOBUF_PROTOCOL: &str = "streamweaver.v1.proto";
/// Most responses in one batched frame.
const MAX_BATCH: usize = 256;
/// WebSocket close code "going away", sent when the gateway shuts down.
const GOING_AWAY: u16 = 1001;

/// What the browser transports' handlers (`/ws`, `/sse`) need.
#[derive(Clone)]
pub struct WebSocketState {
    /// The hub to subscribe to.
    pub hub: Arc<Hub>,
    /// Where refusals are counted.
    pub metrics: Metrics,
    /// The subscribe endpoint, for its capacity check.
    pub subscriptions: Arc<Subscriptions>,
    /// Token subscribers must give (`?token=`; on `/sse` also `authorization: Bearer`), if any.
    pub subscribe_token: Option<Arc<str>>,
    /// Allowed browser origins; empty means any.
    pub allowed_origins: Arc<[String]>,
    /// How often to ping.
    pub ping_interval: Duration,
    /// Ends open sockets when the gateway stops.
    pub shutdown: CancellationToken,
}

impl WebSocketState {
    /// A 403 for a browser page of an origin not allowed (counted), or `None`. Browsers always
    /// send Origin; programs usually do not, and are not subject to CSRF.
    pub(crate) fn refuse_foreign_origin(
        &self,
        headers: &HeaderMap,
        transport: Transport,
    ) -> Option<Response> {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())?;
        if self.allowed_origins.is_empty() || self.allowed_origins.iter().any(|a| a == origin) {
            return None;
        }
        self.metrics.refuse(transport.name(), "origin_not_allowed");
        Some(
            (
                StatusCode::FORBIDDEN,
                format!("origin {origin} is not allowed\n"),
            )
                .into_response(),
        )
    }
}

/// Query parameters of `/ws`.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

/// Checks origin, credential and capacity, then upgrades the connection.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<WebSocketState>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
) -> Response {
    let endpoint = Transport::Websocket.name();
    if let Some(refusal) = state.refuse_foreign_origin(&headers, Transport::Websocket) {
        return refusal;
    }
    if let Some(expected) = &state.subscribe_token {
        let given = query.token.unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            state.metrics.refuse(endpoint, "unauthenticated");
            return (StatusCode::UNAUTHORIZED, "a valid ?token= is required\n").into_response();
        }
    }
    if let Err(status) = state.subscriptions.check_capacity(Transport::Websocket) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", status.message()),
        )
            .into_response();
    }
    let ws = ws.protocols([PROTOBUF_PROTOCOL, BATCH_PROTOCOL]);
    let framing = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(PROTOBUF_PROTOCOL) => Framing::Protobuf,
        Some(_) => Framing::Json { batch: MAX_BATCH },
        None => Framing::Json { batch: 1 },
    };
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            serve(sink, stream, state, framing)
        })
}

/// How a socket's frames are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// proto3 JSON text frames of up to `batch` responses (1: a lone object per frame).
    Json {
        /// Most responses per frame.
        batch: usize,
    },
    /// One `SubscribeResponse` per binary frame, requests likewise ([`PROTOBUF_PROTOCOL`]).
    Protobuf,
}

impl Framing {
    fn batch(self) -> usize {
        match self {
            Self::Json { batch } => batch,
            Self::Protobuf => 1,
        }
    }

    /// The responses as one frame.
    fn frame(self, responses: &[SubscribeResponse]) -> Message {
        match (self, responses) {
            (Self::Protobuf, [response]) => Message::Binary(response.encode_to_vec().into()),
            (Self::Protobuf, _) => Message::Binary(Default::default()),
            (Self::Json { batch }, responses) => to_frames(responses, batch > 1),
        }
    }

    /// A client's frame as a request, or a metrics reason and a message for the client.
    fn request(self, frame: &Message) -> Result<SubscribeRequest, (&'static str, String)> {
        match (self, frame) {
            (Self::Json { .. }, Message::Text(text)) => parse_request(text),
            (Self::Protobuf, Message::Binary(bytes)) => SubscribeRequest::decode(bytes.clone())
                .map_err(|error| {
                    (
                        "malformed_request",
                        format!("malformed SubscribeRequest: {error}"),
                    )
                }),
            (Self::Json { .. }, _) => Err((
                "binary_frame",
                "binary frames are not accepted: send a SubscribeRequest as proto3 JSON text"
                    .into(),
            )),
            (Self::Protobuf, _) => Err((
                "text_frame",
                format!(
                    "text frames are not accepted on {PROTOBUF_PROTOCOL}: send a \
                     SubscribeRequest as protobuf in a binary frame"
                ),
            )),
        }
    }
}

fn to_frame(response: &SubscribeResponse) -> Message {
    match serde_json::to_string(response) {
        Ok(json) => Message::Text(Utf8Bytes::from(json)),
        // Serialising a generated message cannot fail; be loud if it ever does.
        Err(error) => Message::Text(Utf8Bytes::from(format!(
            r#"{{"error":{{"code":"INTERNAL","message":"cannot encode a response: {error}"}}}}"#
        ))),
    }
}

/// The responses as one frame: a lone object, or (batching) a JSON array of them.
fn to_frames(responses: &[SubscribeResponse], batched: bool) -> Message {
    match responses {
        [response] if !batched => to_frame(response),
        responses => match serde_json::to_string(responses) {
            Ok(json) => Message::Text(Utf8Bytes::from(json)),
            Err(error) => Message::Text(Utf8Bytes::from(format!(
                r#"[{{"error":{{"code":"INTERNAL","message":"cannot encode responses: {error}"}}}}]"#
            ))),
        },
    }
}

fn error_response(code: &str, message: String) -> SubscribeResponse {
    SubscribeResponse {
        kind: Some(Kind::Error(StreamError {
            code: code.to_owned(),
            message,
        })),
    }
}

/// Serves one socket until the peer leaves, goes silent, or the gateway stops, in `framing`.
/// Generic over the socket halves so tests can drive it without a network.
pub async fn serve<S, R, E>(mut sink: S, mut stream: R, state: WebSocketState, framing: Framing)
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let batch = framing.batch();
    let mut subscription: Option<Subscription> = None;
    let mut ping = tokio::time::interval(state.ping_interval);
    ping.reset();
    let mut last_heard = Instant::now();
    let silent_limit = state.ping_interval * 3;

    loop {
        let outgoing = tokio::select! {
            () = state.shutdown.cancelled() => {
                let _ = sink.send(Message::Close(Some(CloseFrame {
                    code: GOING_AWAY,
                    reason: Utf8Bytes::from_static("gateway is shutting down"),
                }))).await;
                break;
            }
            incoming = stream.next() => {
                last_heard = Instant::now();
                match incoming {
                    None | Some(Ok(Message::Close(_))) => break,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "websocket read failed");
                        break;
                    }
                    Some(Ok(frame @ (Message::Text(_) | Message::Binary(_)))) => {
                        match subscribe(&state, framing, &frame).await {
                            Ok(new) => {
                                // Replacing the subscription drops the old one at once.
                                subscription = Some(new);
                                continue;
                            }
                            Err(message) => {
                                framing.frame(&[error_response("INVALID_ARGUMENT", message)])
                            }
                        }
                    }
                    // axum answers pings itself; either way the peer is alive.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                }
            }
            response = next_response(&mut subscription) => match response {
                Some(response) => {
                    let mut responses = vec![response];
                    // Batching: take whatever else is ready now, without waiting for more.
                    while responses.len() < batch {
                        match subscription.as_mut().and_then(|s| s.next().now_or_never()) {
                            Some(Some(response)) => responses.push(response),
                            _ => break,
                        }
                    }
                    framing.frame(&responses)
                }
                None => break,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > silent_limit {
                    tracing::debug!("websocket peer went silent; closing");
                    break;
                }
                Message::Ping(Default::default())
            }
        };
        // A peer that stops reading stalls only this loop; its subscription lags and is told.
        match tokio::time::timeout(silent_limit, sink.send(outgoing)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
}

async fn next_response(subscription: &mut Option<Subscription>) -> Option<SubscribeResponse> {
    match subscription {
        Some(subscription) => subscription.next().await,
        None => std::future::pending().await,
    }
}

/// Subscribes as `frame` asks, or says what is wrong (counted).
async fn subscribe(
    state: &WebSocketState,
    framing: Framing,
    frame: &Message,
) -> Result<Subscription, String> {
    let request = framing.request(frame).map_err(|(reason, message)| {
        state.metrics.refuse(Transport::Websocket.name(), reason);
        message
    })?;
    let filter = state
        .subscriptions
        .filter(&request, Transport::Websocket)
        .await
        .map_err(|status| status.message().to_owned())?;
    Ok(state
        .hub
        .subscribe(filter, &request.resume_from, Transport::Websocket))
}

/// Parses a text frame into a request, or a metrics reason and a message for the client.
fn parse_request(text: &str) -> Result<SubscribeRequest, (&'static str, String)> {
    serde_json::from_str(text).map_err(|error| {
        (
            "malformed_request",
            format!("malformed SubscribeRequest: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_in_the_proto3_json_mapping() {
        let request = parse_request(
            r#"{"topics":["server_logs"],"logLevels":["LOG_LEVEL_ERROR"],"resumeFrom":[{"topic":"server_logs","partition":1,"offset":"42"}],"filter":"log_entry.service == 'api'"}"#,
        )
        .expect("valid");
        assert_eq!(request.topics, vec!["server_logs"]);
        assert_eq!(request.log_levels, vec![4]);
        assert_eq!(request.resume_from[0].offset, 42);
        assert_eq!(request.filter, "log_entry.service == 'api'");
        assert!(parse_request("{}").is_ok());
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let (reason, message) = parse_request("{not json").expect_err("malformed");
        assert_eq!(reason, "malformed_request");
        assert!(
            message.starts_with("malformed SubscribeRequest: "),
            "{message}"
        );
        let (_, message) = parse_request(r#"{"logLevels":["LOUD"]}"#).expect_err("unknown level");
        assert!(message.contains("LOUD"), "{message}");
    }

    #[test]
    fn each_framing_reads_its_own_frames_only() {
        let request = SubscribeRequest {
            topics: vec!["stock_trades".into()],
            filter: "stock_trade.price > 1.0".into(),
            ..Default::default()
        };
        let binary = Message::Binary(request.encode_to_vec().into());
        assert_eq!(Framing::Protobuf.request(&binary), Ok(request.clone()));
        let json = Framing::Json { batch: 1 };
        assert_eq!(json.request(&binary).map_err(|e| e.0), Err("binary_frame"));
        let text = Message::Text(Utf8Bytes::from_static("{}"));
        assert_eq!(
            Framing::Protobuf.request(&text).map_err(|e| e.0),
            Err("text_frame")
        );
        let garbage = Message::Binary(vec![0xff, 0xff].into());
        assert_eq!(
            Framing::Protobuf.request(&garbage).map_err(|e| e.0),
            Err("malformed_request")
        );
        // A response is one binary frame of its Protobuf encoding.
        let response = error_response("INVALID_ARGUMENT", "no".into());
        assert_eq!(
            Framing::Protobuf.frame(std::slice::from_ref(&response)),
            Message::Binary(response.encode_to_vec().into())
        );
    }
}
